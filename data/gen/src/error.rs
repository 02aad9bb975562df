//! The error type of the generator library: one variant per cause, each naming the file.

use std::path::PathBuf;

/// Everything that can go wrong while generating a data set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatagenError {
    /// Creating, renaming or removing a file or folder failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Parquet writer rejected a batch or failed to finish the file.
    #[error("Parquet error while writing {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A generator produced an invalid Arrow batch.
    #[error("Arrow error while generating {table}: {source}")]
    Arrow {
        table: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A generator thread panicked; this is a bug in the generator.
    #[error("the generator thread for {table} panicked")]
    GeneratorPanicked { table: String },
    /// An argument was outside its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, DatagenError>;

impl DatagenError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatagenError::Io {
            path: path.into(),
            source,
        }
    }
}
