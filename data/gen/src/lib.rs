//! Seeded test-data generators for ooc.
//!
//! Three data sets come out of this crate, both as Parquet files in one folder:
//!
//! - [`generate_tpch`]: the eight TPC-H tables (`lineitem.parquet`, `orders.parquet`, …) made by
//!   the `tpchgen` / `tpchgen-arrow` crates, streamed batch by batch so that peak memory does not
//!   grow with the scale factor.
//! - [`generate_tpcds`]: the 25 TPC-DS tables, made by the `tpcdsgen` / `tpcdsgen-arrow`
//!   crates (the data `tpcgen-cli tpcds parquet` writes), streamed the same way.
//! - [`generate_edge`]: a small, deterministic edge-case data set (every Arrow type the engine
//!   reads, NULLs, NaN and infinities, extreme dates, 1 MiB strings, thousands of one-row row
//!   groups, an empty file, and optionally one row group that decodes to more than 512 MB).
//!
//! ```text
//!  generator (tpchgen / seeded SplitMix64) ─► RecordBatch stream ─► ArrowWriter (zstd, page index)
//!                                                                    └─► NAME.parquet.tmp ─rename─► NAME.parquet
//! ```
//!
//! Every file is written to `NAME.parquet.tmp` and renamed into place, so a reader never sees a
//! half-written file. The binary `ooc-datagen` is thin glue over this library; the integration
//! tests of the workspace call the library directly.

mod edge;
mod error;
mod parquet_output;
mod seeded_random;
mod tpcds;
mod tpch;

pub use edge::{generate_edge, EDGE_TYPES_ROWS, EDGE_TYPES_ROW_GROUP_ROWS, MANY_ROW_GROUPS_COUNT};
pub use error::{DatagenError, Result};
pub use parquet_output::WrittenFile;
pub use tpcds::generate_tpcds;
pub use tpch::{generate_tpch, generate_tpch_with_options, TpchOptions, TpchTable};
