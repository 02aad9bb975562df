//! [`QueryStream`]: a running query as an iterator of result batches, with the figures a front
//! end reports: per-operator statistics, bytes read, peak reserved memory, spill bytes, wall
//! time, and the EXPLAIN ANALYZE report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::memory_profile::MemoryProfile;
use super::StoredResult;
use crate::error::Result;
pub use crate::memory::process::peak_rss_bytes;
use crate::metrics::{format_bytes, format_duration, Progress};
use crate::physical::{display_analyzed, display_plan, BatchStream, ExecutionPlan, TaskContext};

/// What one operator of a query did: rows, time, memory and spilling.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OperatorStats {
    /// Depth in the plan (0 for the root).
    pub depth: usize,
    /// Operator name (`HashAggregate(final)`, `ParquetScan`, ...).
    pub name: String,
    /// The operator's parameters, as EXPLAIN shows them.
    pub details: String,
    /// Rows received from its inputs (0 where the operator does not count them).
    pub rows_in: u64,
    /// Rows produced.
    pub rows_out: u64,
    /// Batches produced.
    pub batches_out: u64,
    /// Time spent in this operator, without its inputs (summed over threads).
    pub own_time: Duration,
    /// Time spent in this operator and its inputs (summed over threads).
    pub total_time: Duration,
    /// The most bytes the operator held at once.
    pub peak_memory: u64,
    /// Whether the operator's memory grows with its input.
    pub grows_with_input: bool,
    /// Whether the operator writes its state to disk when its memory cannot grow.
    pub can_spill: bool,
    /// How many times it spilled.
    pub spills: u64,
    /// Rows written to spill files.
    pub spilled_rows: u64,
    /// Compressed bytes written to spill files.
    pub spilled_bytes: u64,
    /// In-memory bytes of what was spilled.
    pub spilled_raw_bytes: u64,
    /// Time spent writing spill files.
    pub spill_time: Duration,
    /// Operator-specific figures (`row_groups_pruned`, `per_row_group_of`, ...).
    pub extra: Vec<(String, String)>,
}

impl OperatorStats {
    /// The operator-specific figure called `name`, if the operator reported one.
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every operator's metrics, in the order of [`collect_operator_stats`].
fn collect_operator_metrics(
    plan: &Arc<dyn ExecutionPlan>,
    out: &mut Vec<Arc<crate::metrics::OperatorMetrics>>,
) {
    out.push(Arc::clone(plan.metrics()));
    for child in &plan.children() {
        collect_operator_metrics(child, out);
    }
}

fn collect_operator_stats(
    plan: &Arc<dyn ExecutionPlan>,
    depth: usize,
    out: &mut Vec<OperatorStats>,
) {
    let m = plan.metrics();
    let children = plan.children();
    let inputs_time: Duration = children.iter().map(|c| c.metrics().elapsed()).sum();
    out.push(OperatorStats {
        depth,
        name: plan.name().to_string(),
        details: plan.details(),
        rows_in: m.rows_in(),
        rows_out: m.rows_out(),
        batches_out: m.batches_out(),
        own_time: m.elapsed().saturating_sub(inputs_time),
        total_time: m.elapsed(),
        peak_memory: m.memory_peak(),
        grows_with_input: plan.grows_with_input(),
        can_spill: plan.can_spill(),
        spills: m.spill_count(),
        spilled_rows: m.spilled_rows(),
        spilled_bytes: m.spilled_bytes(),
        spilled_raw_bytes: m.spilled_raw_bytes(),
        spill_time: m.spill_time(),
        extra: m.extra(),
    });
    for child in &children {
        collect_operator_stats(child, depth + 1, out);
    }
}

/// A running query: an iterator of result batches with access to its metrics.
pub struct QueryStream {
    plan: Arc<dyn ExecutionPlan>,
    ctx: Arc<TaskContext>,
    stream: Option<BatchStream>,
    started: Instant,
    finished: Option<Duration>,
}

impl QueryStream {
    /// Start running `plan` (which has one output partition) with `ctx`.
    pub(crate) fn start(plan: Arc<dyn ExecutionPlan>, ctx: Arc<TaskContext>) -> Result<Self> {
        let started = Instant::now();
        ctx.memory_pool.start_timeline();
        let stream = Arc::clone(&plan).execute(0, Arc::clone(&ctx))?;
        Ok(Self {
            plan,
            ctx,
            stream: Some(stream),
            started,
            finished: None,
        })
    }
}

impl QueryStream {
    /// The result schema.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// The cache hit this query hands over unread (`CacheSettings::defer_hits`): its stream
    /// ends at once, and the result is read through [`StoredResult::read`].
    pub fn stored_result(&self) -> Option<StoredResult> {
        self.plan.stored_result().map(StoredResult::new)
    }

    /// The query's worker threads (the session's setting); output writers use as many.
    pub fn threads(&self) -> usize {
        self.ctx.threads
    }

    /// The physical plan being run, as EXPLAIN shows it (without metrics).
    pub fn plan_text(&self) -> String {
        display_plan(&self.plan)
    }

    /// What each operator has done so far (all of it once the stream has ended), in plan order:
    /// each operator, then its inputs, depth first.
    pub fn operator_stats(&self) -> Vec<OperatorStats> {
        let mut out = Vec::new();
        collect_operator_stats(&self.plan, 0, &mut out);
        out
    }

    /// Progress counters (row groups done / total).
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.ctx.progress)
    }

    /// A flag that cancels the query when set.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ctx.cancelled)
    }

    /// Bytes read from files so far (compressed, as on disk).
    pub fn bytes_read(&self) -> u64 {
        self.ctx.bytes_read.load(Ordering::Relaxed)
    }

    /// Warnings of the query so far (bad records a scan skipped, ...).
    pub fn warnings(&self) -> Vec<String> {
        self.ctx.warnings()
    }

    /// Peak bytes reserved from the memory pool.
    pub fn peak_reserved(&self) -> usize {
        self.ctx.memory_pool.peak()
    }

    /// Bytes reserved from the memory pool right now (zero once the query has ended).
    pub fn reserved(&self) -> usize {
        self.ctx.memory_pool.reserved()
    }

    /// The most bytes of spill files held at once.
    pub fn peak_spill_bytes(&self) -> u64 {
        self.ctx.spill.peak_bytes_on_disk()
    }

    /// Wall time so far (or until the stream ended).
    pub fn elapsed(&self) -> Duration {
        self.finished.unwrap_or_else(|| self.started.elapsed())
    }

    /// Who held the memory at the query's peak, resident memory then, and the timeline so
    /// far (all of it once the stream has ended).
    pub fn memory_profile(&self) -> MemoryProfile {
        let report = self.ctx.memory_pool.ledger_report();
        MemoryProfile::new(&self.plan, report, self.ctx.memory_pool.limit())
    }

    /// The memory profile as a self-contained SVG: a flame graph of the bytes held at the
    /// peak (query, operator, part) over the timeline of reserved bytes and resident memory.
    pub fn memory_profile_svg(&self, title: &str) -> String {
        self.memory_profile().to_svg(title)
    }

    /// [`memory_profile_svg`](Self::memory_profile_svg) in an HTML page with the summary.
    pub fn memory_profile_html(&self, title: &str) -> String {
        self.memory_profile().to_html(title)
    }

    /// The report as JSON: per-operator metrics (with bytes at the peak), the totals, the
    /// holders at the peak, and the timeline.
    pub fn report_json(&self) -> String {
        use serde_json::json;
        let report = self.ctx.memory_pool.ledger_report();
        let at_peak = MemoryProfile::by_operator(&report);
        let profile = MemoryProfile::new(&self.plan, report, self.ctx.memory_pool.limit());
        let mut metrics = Vec::new();
        collect_operator_metrics(&self.plan, &mut metrics);
        let operators: Vec<serde_json::Value> = self
            .operator_stats()
            .into_iter()
            .zip(metrics)
            .enumerate()
            .map(|(index, (op, m))| {
                json!({
                    "index": index,
                    "depth": op.depth,
                    "name": op.name,
                    "details": op.details,
                    "rows_in": op.rows_in,
                    "rows_out": op.rows_out,
                    "batches_out": op.batches_out,
                    "own_seconds": op.own_time.as_secs_f64(),
                    "total_seconds": op.total_time.as_secs_f64(),
                    "peak_memory_bytes": op.peak_memory,
                    "at_peak_bytes": at_peak.get(&Arc::as_ptr(&m)).copied().unwrap_or(0),
                    "spills": op.spills,
                    "spilled_rows": op.spilled_rows,
                    "spilled_bytes": op.spilled_bytes,
                    "extra": op.extra.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        let mut value = profile.to_json();
        if let Some(object) = value.as_object_mut() {
            object.insert("wall_seconds".into(), json!(self.elapsed().as_secs_f64()));
            object.insert("bytes_read".into(), json!(self.bytes_read()));
            object.insert(
                "peak_spill_bytes".into(),
                json!(self.ctx.spill.peak_bytes_on_disk()),
            );
            object.insert("process_peak_rss_bytes".into(), json!(peak_rss_bytes()));
            object.insert("warnings".into(), json!(self.warnings()));
            object.insert("operators".into(), json!(operators));
        }
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// The plan with per-operator metrics and the query's totals.
    pub fn report(&self) -> String {
        let report = self.ctx.memory_pool.ledger_report();
        let at_peak = MemoryProfile::by_operator(&report);
        let profile = MemoryProfile::new(&self.plan, report, self.ctx.memory_pool.limit());
        let mut out = display_analyzed(&self.plan, &at_peak);
        out.push_str(&format!(
            "\nwall time: {}\nbytes read from files: {}\npeak reserved operator memory: {}\n",
            format_duration(self.elapsed()),
            format_bytes(self.bytes_read()),
            format_bytes(self.peak_reserved() as u64),
        ));
        let spill = &self.ctx.spill;
        if spill.peak_bytes_on_disk() > 0 {
            out.push_str(&format!(
                "peak spill bytes on disk: {}\n",
                format_bytes(spill.peak_bytes_on_disk())
            ));
        }
        for warning in self.warnings() {
            out.push_str(&format!("warning: {warning}\n"));
        }
        if let Some(rss) = peak_rss_bytes() {
            out.push_str(&format!(
                "peak RSS of this process: {}\n",
                format_bytes(rss)
            ));
        }
        out.push_str(&profile.summary());
        out
    }
}

impl Iterator for QueryStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.stream.as_mut()?.next();
        if item.is_none() || matches!(item, Some(Err(_))) {
            if item.is_some() {
                // After an error, stop every producer before the stream (and its threads,
                // which it waits for) is dropped.
                self.ctx.cancelled.store(true, Ordering::Relaxed);
            }
            self.stream = None;
            self.finished = Some(self.started.elapsed());
            self.ctx.memory_pool.finish();
            self.ctx.memory_pool.leave_budget();
        }
        item
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        // Stop producers that may still be running (e.g. after an early LIMIT or an error).
        self.ctx.cancelled.store(true, Ordering::Relaxed);
        self.stream = None;
        self.ctx.memory_pool.finish();
        self.ctx.memory_pool.leave_budget();
    }
}
