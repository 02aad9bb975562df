//! # ooc
//!
//! An out-of-core columnar dataframe engine: SQL and dataframe queries over Parquet data much
//! larger than memory, with bounded peak memory.
//!
//! This crate is ooc's public Rust API; everything it re-exports is stable to use, everything
//! else in the workspace is internal. Start with a [`Session`]: register Parquet tables, then
//! [`Session::sql`] or [`Session::scan_parquet`] hand out lazy [`DataFrame`]s; build on them
//! with the [`expr_fn`] helpers, and [`DataFrame::collect`], [`DataFrame::execute`] (a
//! [`QueryStream`] of batches with per-operator [`OperatorStats`]) or [`sink::write_file`]
//! run them.
//!
//! ```no_run
//! use ooc::expr_fn::{col, lit, sum};
//!
//! # fn main() -> ooc::Result<()> {
//! let session = ooc::Session::default();
//! session.register_parquet("lineitem", "data/sf1/lineitem.parquet")?;
//! let by_sql = session
//!     .sql("SELECT l_returnflag, sum(l_quantity) FROM lineitem GROUP BY 1")?
//!     .collect()?;
//! let by_builder = session
//!     .table("lineitem")?
//!     .filter(col("l_quantity").lt(lit(10i64)))?
//!     .aggregate(vec![col("l_returnflag")], vec![sum(col("l_quantity")).alias("qty")])?
//!     .collect()?;
//! # Ok(()) }
//! ```
//!
//! The `ooc` binary built from this package is the command-line front end (`ooc query`,
//! `ooc schema`); the Python library (`import ooc`) is built on this same API.

#![warn(missing_docs)]

pub mod allocator;

pub use ooc_engine::distributed;
pub use ooc_engine::feed;
pub use ooc_engine::logical::expr::{
    AggregateFunction, BinaryOp, Column, DatePart, QuantileKind, ScalarFunction,
};
pub use ooc_engine::logical::expr_fn;
pub use ooc_engine::logical::scalar::ScalarValue;
pub use ooc_engine::logical::window::{
    FrameBound, FrameUnits, WindowExpr, WindowFrame, WindowFunction,
};
pub use ooc_engine::sink;
pub use ooc_engine::{
    default_memory_limit, format_bytes, parse_size, peak_rss_bytes, resident_memory, CacheSettings,
    DataFrame, EngineError, Expr, HeldMemory, JoinType, LogicalPlan, MemoryBudget, MemoryProfile,
    OperatorStats, Progress, QueryStream, ResidentMemory, Result, RowOrder, Session, SessionConfig,
    SortKey, StoredResult, TimelinePoint, MAX_EXPR_DEPTH,
};

/// Secondary indexes of Parquet files (sidecars of roaring bitmaps): build, list and drop
/// them; scans use them by themselves (see [`SessionConfig::use_indexes`]).
pub mod index {
    pub use ooc_io::index::{
        create_indexes, drop_indexes, list_indexes, sidecar_path, IndexBuildOptions, IndexReport,
        IndexedColumn,
    };
}

/// The result cache: results stored on disk under a key of their plan and input files, and
/// mapped back when the same query runs again (see [`SessionConfig::cache`]); list, check and
/// trim a cache directory.
pub mod cache {
    pub use ooc_io::cache::{
        default_cache_dir, CacheKey, CacheOptions, CacheStats, EntryInfo, Manifest, PruneReport,
        ResultCache,
    };
}

/// Reading files directly: Parquet data sets (a file, a glob or a directory, with their
/// schemas unified) and a human-readable description of their footers; the options of CSV
/// and NDJSON scans ([`Session::scan_text`], [`Session::register_text`]).
pub mod io {
    pub use ooc_io::{
        describe, Compression, CsvOptions, IoError, ParquetDataset, TextDataset, TextFormat,
        TextOptions,
    };
}
