//! The per-query state every operator receives: the memory pool, the spill manager, batch and
//! morsel sizes, the cancel flag and the counters a front end reads while the query runs.
//! Execution builds one per query; operators only read it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Bytes read from files (compressed, as on disk).
    pub(crate) bytes_read: Arc<AtomicU64>,
    /// Progress counters for progress bars.
    pub(crate) progress: Arc<Progress>,
    /// Set to cancel the query; operators stop at the next batch.
    pub(crate) cancelled: Arc<AtomicBool>,
    /// Where operators write spill files (created on first use, removed with the query).
    pub(crate) spill: Arc<SpillManager>,
    /// Things the user should know about a query that succeeded (bad records skipped, ...),
    /// by topic; a later message on a topic replaces the earlier one.
    pub(crate) warnings: Arc<Mutex<BTreeMap<String, String>>>,
}

impl TaskContext {
    /// Record (or replace) the warning on `topic`.
    pub(crate) fn set_warning(&self, topic: &str, message: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_string(), message);
    }

    /// The warnings so far, by topic.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Fail with [`EngineError::Cancelled`] if the query was cancelled.
    pub(crate) fn check_cancelled(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }
}
