//! `ooc._ooc`: the extension module behind the `ooc` Python package.
//!
//! The Python package (`python/ooc/`) holds the user-facing API (`LazyFrame`, `Expr`, `col`,
//! ...) and delegates every plan-building step to the classes here, which wrap the engine's
//! [`DataFrame`](ooc::DataFrame) builder and logical [`Expr`](ooc::Expr). There is
//! no second engine: a lazy query builds the same logical plan SQL does.
//!
//! Execution happens on a worker thread with the GIL released; the calling thread waits for
//! batches and checks for signals so that Ctrl-C cancels the query (see the `run` module).

mod arrow_ffi;
mod cache;
mod config;
mod distributed;
mod errors;
mod expr;
mod frame;
mod index;
mod run;

use pyo3::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _ooc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    ooc::allocator::tune_mimalloc();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    cache::register(m)?;
    errors::register(m)?;
    config::register(m)?;
    distributed::register(m)?;
    expr::register(m)?;
    frame::register(m)?;
    index::register(m)?;
    Ok(())
}
