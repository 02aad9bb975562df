//! Per-operator runtime metrics: rows in and out, time, and the bytes an operator holds.
//!
//! Every physical operator owns an [`OperatorMetrics`]; partitions of the same operator running on
//! different threads update it concurrently (atomics). `--explain-analyze` prints them next to
//! the plan.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Counters of one operator, summed over its partitions.
#[derive(Debug, Default)]
pub(crate) struct OperatorMetrics {
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    batches_out: AtomicU64,
    elapsed_ns: AtomicU64,
    memory_current: AtomicI64,
    memory_peak: AtomicI64,
    spills: AtomicU64,
    spilled_rows: AtomicU64,
    spilled_bytes: AtomicU64,
    spilled_raw_bytes: AtomicU64,
    spill_ns: AtomicU64,
    extra: Mutex<Vec<(String, String)>>,
}

impl OperatorMetrics {
    /// Count input rows.
    pub(crate) fn add_rows_in(&self, rows: usize) {
        self.rows_in.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// Count an output batch.
    pub(crate) fn add_output(&self, rows: usize) {
        self.rows_out.fetch_add(rows as u64, Ordering::Relaxed);
        self.batches_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Add time spent producing output (including the time spent in children).
    pub(crate) fn add_elapsed(&self, elapsed: Duration) {
        self.elapsed_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Track held bytes (positive grows, negative shrinks) and the peak.
    pub(crate) fn add_memory(&self, delta: i64) {
        let now = self.memory_current.fetch_add(delta, Ordering::Relaxed) + delta;
        self.memory_peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Record one spill: `rows` rows taking `raw_bytes` in memory written as `bytes` compressed
    /// bytes in `elapsed`.
    pub(crate) fn add_spill(&self, rows: usize, raw_bytes: usize, bytes: u64, elapsed: Duration) {
        self.spills.fetch_add(1, Ordering::Relaxed);
        self.spilled_rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.spilled_raw_bytes
            .fetch_add(raw_bytes as u64, Ordering::Relaxed);
        self.spilled_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.spill_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// How many times the operator spilled.
    pub(crate) fn spill_count(&self) -> u64 {
        self.spills.load(Ordering::Relaxed)
    }

    /// Rows written to spill files.
    pub(crate) fn spilled_rows(&self) -> u64 {
        self.spilled_rows.load(Ordering::Relaxed)
    }

    /// Compressed bytes written to spill files.
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes.load(Ordering::Relaxed)
    }

    /// In-memory bytes of what was spilled.
    pub(crate) fn spilled_raw_bytes(&self) -> u64 {
        self.spilled_raw_bytes.load(Ordering::Relaxed)
    }

    /// Time spent writing spill files.
    pub(crate) fn spill_time(&self) -> Duration {
        Duration::from_nanos(self.spill_ns.load(Ordering::Relaxed))
    }

    /// Record a named extra value shown by explain-analyze (e.g. `row_groups_skipped_by_topk`).
    pub(crate) fn set_extra(&self, name: &str, value: impl ToString) {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        let value = value.to_string();
        match extra.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => extra.push((name.to_string(), value)),
        }
    }

    /// Rows received from children.
    pub(crate) fn rows_in(&self) -> u64 {
        self.rows_in.load(Ordering::Relaxed)
    }

    /// Rows produced.
    pub(crate) fn rows_out(&self) -> u64 {
        self.rows_out.load(Ordering::Relaxed)
    }

    /// Batches produced.
    pub(crate) fn batches_out(&self) -> u64 {
        self.batches_out.load(Ordering::Relaxed)
    }

    /// Time spent in this operator and its children, summed over threads.
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_ns.load(Ordering::Relaxed))
    }

    /// Highest number of bytes held at once.
    pub(crate) fn memory_peak(&self) -> u64 {
        self.memory_peak.load(Ordering::Relaxed).max(0) as u64
    }

    /// Extra named values.
    pub(crate) fn extra(&self) -> Vec<(String, String)> {
        self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Progress of a running query: morsels (row-group slices) done out of the total planned.
#[derive(Debug, Default)]
pub struct Progress {
    /// Morsels planned.
    pub total: AtomicU64,
    /// Morsels finished or skipped.
    pub done: AtomicU64,
    /// Rows read from scans.
    pub rows: AtomicU64,
}

/// Format a byte count for humans (`1.5 MiB`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Format a duration for humans (`12.3 ms`).
pub(crate) fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}
