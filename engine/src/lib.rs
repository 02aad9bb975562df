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
//! ```no_run
//! use ooc_engine::{Session, SessionConfig};
//!
//! # fn main() -> ooc_engine::Result<()> {
//! let session = Session::new(SessionConfig::default().with_threads(4));
//! session.register_directory(std::path::Path::new("data/sf1"))?;
//! let df = session.sql("SELECT l_returnflag, sum(l_quantity) AS qty FROM lineitem GROUP BY 1 ORDER BY 1")?;
//! for batch in df.execute()? {
//!     println!("{} rows", batch?.num_rows());
//! }
//! # Ok(()) }
//! ```

pub mod error;
pub mod frontend;
pub mod logical;
pub mod memory;
pub mod metrics;
pub mod optimizer;
pub mod physical;
pub mod session;
pub mod sink;

pub use error::{EngineError, Result};
pub use frontend::dataframe::{peak_rss_bytes, DataFrame, QueryStream};
pub use logical::expr::Expr;
pub use logical::plan::{LogicalPlan, SortKey};
pub use session::{Session, SessionConfig};
