//! Result sinks: CSV, JSON, newline-delimited JSON, Parquet, NumPy `.npy` arrays and terminal
//! tables, and the numeric matrices ([`Matrix`]) that `.npy` files and model inputs hold.
//!
//! Writers consume a stream of batches and never hold more than one batch, except the terminal
//! table, which keeps at most [`TABLE_MAX_ROWS`] rows ([`TableCut`]), and Parquet, which
//! encodes its columns on several threads in rounds of up to 64 Ki rows (a row group's encoded
//! pages stay below 32 MiB). Files are written with [`write_file`]: a hidden temporary file in
//! the destination directory, renamed over the destination only after the last byte is
//! written, so a failed or killed query never leaves a partial result under the requested
//! name. Both the CLI and the Python library write through it.
//!
//! The sink knows batches and files, no plans.

mod atomic;
mod matrix;
mod numpy;
mod parquet;
mod table;
mod writers;

pub use atomic::write_text_file;
pub(crate) use matrix::{column_as, Element};
pub use matrix::{Matrix, MatrixData, NpyType};
pub use table::{format_table, TableCut, TABLE_MAX_ROWS};
pub use writers::{write_batches, write_file, OutputFormat, WriteOptions};
