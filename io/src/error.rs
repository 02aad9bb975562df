//! The error type of `ooc-io`: every failure names the file (and column, or line) it concerns.

use std::path::PathBuf;

use arrow::datatypes::DataType;
use arrow::error::ArrowError;

/// Result alias of this crate.
pub type Result<T, E = IoError> = std::result::Result<T, E>;

/// Errors reading data sets (Parquet, CSV, NDJSON).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system refused an operation on `path`.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a readable Parquet file (truncated, not Parquet, corrupt pages).
    #[error("{} is not a valid Parquet file: {message}", path.display())]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An input file was truncated or rewritten in place after the query opened it.
    #[error("{} changed while the query read it: {message}", path.display())]
    Changed {
        /// The input file.
        path: PathBuf,
        /// What changed.
        message: String,
    },
    /// A file of the result cache (`ooc_io::cache`) whose bytes are not what was written.
    #[error("{}: damaged result cache entry: {message}", path.display())]
    DamagedCacheEntry {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Two files disagree on the type of a column.
    #[error("schema mismatch for column '{column}': {} has {first_type} but {} has {second_type}", first.display(), second.display())]
    SchemaMismatch {
        /// The column.
        column: String,
        /// A file with the first type.
        first: PathBuf,
        /// The first type.
        first_type: DataType,
        /// A file with the conflicting type.
        second: PathBuf,
        /// The conflicting type.
        second_type: DataType,
    },
    /// Nothing matched the location.
    #[error("no {kind} files found at '{location}'")]
    NoFiles {
        /// The path, glob or directory as given.
        location: String,
        /// What was looked for (`Parquet`, `CSV`, `NDJSON`).
        kind: &'static str,
    },
    /// A record of a text file (CSV, NDJSON) that cannot be read as the schema says.
    #[error("{}:{line}: {message}", path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// The line the record starts on (1-based, counting the header).
        line: u64,
        /// What is wrong, naming the column and the value.
        message: String,
    },
    /// A bad argument (e.g. an unknown column in a projection).
    #[error("{0}")]
    InvalidArgument(String),
    /// An Arrow kernel failed.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// A filter evaluated while reading ([`crate::LateFilter`]) failed.
    #[error(transparent)]
    Filter(Box<dyn std::error::Error + Send + Sync>),
}
