//! The engine's single error type.
//!
//! Every fallible function in `ooc-engine` returns [`Result`]. Variants are grouped by cause so
//! that front ends can map them to exit codes or exception classes: planning problems the user
//! can fix (unknown names, type errors, SQL syntax), data problems (I/O, corrupt files), resource
//! limits, and internal bugs.

use std::fmt;

use arrow::error::ArrowError;
use ooc_io::IoError;

/// Result alias used throughout the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Everything that can go wrong while planning or running a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The SQL text could not be parsed.
    #[error("SQL syntax error: {message}{}", location_suffix(*line, *column))]
    Syntax {
        /// Parser message without the location.
        message: String,
        /// 1-based line, 0 when unknown.
        line: u64,
        /// 1-based column, 0 when unknown.
        column: u64,
    },
    /// A column name that does not exist in the input.
    #[error("column '{name}' not found{}; valid columns: {}", suggestion_suffix(suggestion), valid.join(", "))]
    ColumnNotFound {
        /// The name as written.
        name: String,
        /// The names that would have been valid here.
        valid: Vec<String>,
        /// The closest valid name, if any is close.
        suggestion: Option<String>,
    },
    /// A table name that is not registered.
    #[error("table '{name}' not found{}; known tables: {}", suggestion_suffix(suggestion), if valid.is_empty() { "(none registered)".to_string() } else { valid.join(", ") })]
    TableNotFound {
        /// The name as written.
        name: String,
        /// Registered table names.
        valid: Vec<String>,
        /// The closest registered name.
        suggestion: Option<String>,
    },
    /// An expression whose operand types do not fit.
    #[error("type error: {0}")]
    Type(String),
    /// A valid query using a feature the engine does not support (yet).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// Any other planning error (ambiguous names, misplaced aggregates, ...).
    #[error("planning error: {0}")]
    Plan(String),
    /// An error while evaluating data (overflow, invalid cast of a value, ...).
    #[error("execution error: {0}")]
    Execution(String),
    /// The memory budget cannot satisfy a reservation.
    #[error("resources exhausted: {consumer} needs {requested} more bytes, but {reserved} of the {limit}-byte memory limit are reserved")]
    ResourcesExhausted {
        /// The operator that asked.
        consumer: String,
        /// The additional bytes requested.
        requested: usize,
        /// Bytes reserved by all consumers at that moment.
        reserved: usize,
        /// The budget.
        limit: usize,
    },
    /// Reading input data failed (missing file, corrupt Parquet, schema mismatch, ...).
    #[error(transparent)]
    Io(#[from] IoError),
    /// Writing output failed.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The destination.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing or reading a spill file failed (disk full, quota exceeded, file removed).
    #[error("spilling to {path} failed: {message}")]
    Spill {
        /// The spill file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An Arrow kernel failed.
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    /// Parquet encoding failed while writing output.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The query was cancelled.
    #[error("query cancelled")]
    Cancelled,
    /// A bug in ooc: please report it.
    #[error("internal error (this is a bug in ooc): {0}")]
    Internal(String),
}

impl EngineError {
    /// True for errors caused by the query text rather than the data or the machine.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            EngineError::Syntax { .. }
                | EngineError::ColumnNotFound { .. }
                | EngineError::TableNotFound { .. }
                | EngineError::Type(_)
                | EngineError::NotSupported(_)
                | EngineError::Plan(_)
        )
    }
}

impl EngineError {
    /// The error for a panic caught on `thread` (its message, when it has one), so that a bug in
    /// a worker ends the query with an error instead of silently ending its stream early.
    pub fn from_panic(thread: &str, payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        EngineError::Internal(format!("{thread} panicked: {message}"))
    }
}

/// Run `work`; a panic inside it becomes [`EngineError::from_panic`], handed to `report`.
pub(crate) fn guard_panic(thread: &str, work: impl FnOnce(), report: impl FnOnce(EngineError)) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        report(EngineError::from_panic(thread, payload));
    }
}

fn location_suffix(line: u64, column: u64) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}, column {column}")
    }
}

fn suggestion_suffix(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
pub(crate) fn closest_name<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&lower, &candidate.to_lowercase());
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    let (distance, candidate) = best?;
    let allowed = (name.chars().count() / 3).max(1) + 1;
    (distance <= allowed).then(|| candidate.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Shorthand for building an [`EngineError::Plan`].
pub(crate) fn plan_err<T>(message: impl fmt::Display) -> Result<T> {
    Err(EngineError::Plan(message.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["l_orderkey", "l_quantity", "l_shipdate"];
        assert_eq!(
            closest_name("l_quantty", names).as_deref(),
            Some("l_quantity")
        );
        assert_eq!(
            closest_name("L_SHIPDATE", names).as_deref(),
            Some("l_shipdate")
        );
        assert_eq!(closest_name("price", names), None);
    }
}
