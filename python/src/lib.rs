//! `ooc._ooc`: the extension module behind the `ooc` Python package.
//!
//! The Python package (`python/ooc/`) holds the user-facing API (`LazyFrame`, `Expr`, `col`,
//! ...) and delegates every plan-building step to the classes here, which wrap the engine's
//! [`DataFrame`](ooc_engine::DataFrame) builder and logical [`Expr`](ooc_engine::Expr). There is
//! no second engine: a lazy query builds the same logical plan SQL does.
//!
//! Execution happens on a worker thread with the GIL released; the calling thread waits for
//! batches and checks for signals so that Ctrl-C cancels the query (see [`run`]).

mod arrow_ffi;
mod config;
mod errors;
mod expr;
mod frame;
mod run;

use pyo3::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's runtime option setter (`mi_option_set` in mimalloc.h).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay`: return freed pages to the OS after 10 ms, as the CLI does (see
/// `PURGE_DELAY_MS` in the CLI's `main.rs` for the measurements behind it).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

#[pymodule]
fn _ooc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // SAFETY: mi_option_set only stores an integer option.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    config::register(m)?;
    expr::register(m)?;
    frame::register(m)?;
    Ok(())
}
