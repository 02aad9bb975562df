//! Result sinks: CSV, JSON, newline-delimited JSON, Parquet and terminal tables.
//!
//! Writers consume a stream of batches and never hold more than one batch, except the terminal
//! table, which shows at most [`TABLE_MAX_ROWS`] rows, and Parquet, which encodes its columns
//! on several threads in rounds of up to [`parquet::DISPATCH_ROWS`] rows (its row group's
//! encoded pages stay below [`parquet::MAX_ROW_GROUP_BYTES`]). Files are written through
//! [`AtomicFile`]: a hidden temporary file in the destination directory, renamed over the
//! destination only after the last byte is written, so a failed or killed query never leaves a
//! partial result under the requested name.

mod atomic;
pub mod parquet;
mod table;
mod writers;

pub use atomic::AtomicFile;
pub use table::{format_table, TABLE_MAX_ROWS};
pub use writers::{write_batches, OutputFormat, WriteOptions};
