//! The per-query state every operator receives: the memory pool, the spill manager, batch and
//! morsel sizes, the cancel flag and the counters a front end reads while the query runs.
//! Execution builds one per query; operators only read it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::memory::{MemoryPool, SpillManager};
use crate::metrics::Progress;

/// Per-query execution state shared by all operators.
#[derive(Debug)]
pub(crate) struct TaskContext {
    /// The query's memory budget.
    pub(crate) memory_pool: Arc<MemoryPool>,
    /// Target rows per batch.
    pub(crate) batch_size: usize,
    /// Worker threads (partitions per scan).
    pub(crate) threads: usize,
    /// Compressed bytes read from Parquet files.
    pub(crate) bytes_read: Arc<AtomicU64>,
    /// Progress counters for progress bars.
    pub(crate) progress: Arc<Progress>,
    /// Set to cancel the query; operators stop at the next batch.
    pub(crate) cancelled: Arc<AtomicBool>,
    /// Where operators write spill files (created on first use, removed with the query).
    pub(crate) spill: Arc<SpillManager>,
}

impl TaskContext {
    /// Fail with [`EngineError::Cancelled`] if the query was cancelled.
    pub(crate) fn check_cancelled(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }
}
