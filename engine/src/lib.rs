//! # ooc-engine
//!
//! The query engine of **ooc**, an out-of-core columnar dataframe engine: it answers analytical
//! queries over Parquet data much larger than memory by streaming row groups (and slices of
//! them) through operators whose state is accounted against a memory budget.
//!
//! ```text
//!  SQL text ──► frontend::sql ──┐
//!                               ├─► logical plan ─► optimizer ─► physical plan ─► batches
//!  Rust    ──► DataFrame ───────┘   (what)          (rules)      (streaming operators)
//! ```
//!
//! Start with [`Session`]: register Parquet tables, then call [`Session::sql`] or
//! [`Session::scan_parquet`] and chain dataframe methods; [`DataFrame::collect`] runs the query,
//! [`DataFrame::execute`] streams it, [`DataFrame::explain`] shows the plan and its metrics.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch, StringArray};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use ooc_engine::logical::expr_fn::{col, lit, sum};
//! use ooc_engine::{Session, SessionConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A small Parquet file to query.
//! let dir = tempfile::tempdir()?;
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("city", DataType::Utf8, false),
//!     Field::new("sales", DataType::Int64, false),
//! ]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![
//!     Arc::new(StringArray::from(vec!["Oslo", "Lima", "Oslo"])),
//!     Arc::new(Int64Array::from(vec![10, 20, 30])),
//! ])?;
//! let file = std::fs::File::create(dir.path().join("sales.parquet"))?;
//! let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)?;
//! writer.write(&batch)?;
//! writer.close()?;
//!
//! let session = Session::new(SessionConfig::default().with_threads(2));
//! session.register_directory(dir.path())?; // table `sales`
//!
//! // SQL ...
//! let batches = session.sql("SELECT city, sum(sales) AS total FROM sales GROUP BY city ORDER BY city")?.collect()?;
//! assert_eq!(batches[0].num_rows(), 2);
//!
//! // ... or the dataframe builder: the same logical plan, streamed batch by batch.
//! let df = session
//!     .table("sales")?
//!     .filter(col("sales").gt(lit(15i64)))?
//!     .aggregate(vec![col("city")], vec![sum(col("sales")).alias("total")])?;
//! let mut rows = 0;
//! for batch in df.execute()? {
//!     rows += batch?.num_rows();
//! }
//! assert_eq!(rows, 2);
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench;
pub(crate) mod budget;
mod config;
mod dataframe;
pub mod distributed;
pub mod error;
mod eval;
mod execution;
pub mod feed;
mod frontend;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod logical;
mod memory;
mod metrics;
mod optimizer;
mod physical;
mod session;
pub mod sink;

pub use budget::MemoryBudget;
pub use config::{default_memory_limit, parse_size, CacheSettings, RowOrder, SessionConfig};
pub use dataframe::DataFrame;
pub use error::{EngineError, Result};
pub use execution::{
    peak_rss_bytes, HeldMemory, MemoryProfile, OperatorStats, QueryStream, StoredResult,
};
pub use logical::expr::{Expr, MAX_EXPR_DEPTH};
pub use logical::plan::{JoinType, LogicalPlan, SortKey};
pub use memory::process::{resident_memory, ResidentMemory};
pub use memory::TimelinePoint;
pub use metrics::{format_bytes, Progress};
pub use session::Session;
