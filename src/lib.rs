//! # ooc
//!
//! An out-of-core columnar dataframe engine: SQL and dataframe queries over Parquet data much
//! larger than memory, with bounded peak memory. This facade re-exports the engine
//! ([`ooc_engine`]) and the Parquet layer ([`ooc_io`]); the `ooc` binary is the command-line
//! front end (`ooc query`, `ooc schema`).
//!
//! ```no_run
//! let session = ooc::Session::default();
//! session.register_parquet("lineitem", "data/sf1/lineitem.parquet").unwrap();
//! let batches = session.sql("SELECT count(*) FROM lineitem").unwrap().collect().unwrap();
//! ```

pub use ooc_engine::*;
pub use ooc_io as io;
