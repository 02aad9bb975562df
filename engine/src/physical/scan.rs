//! Parquet scan: reads the morsels (row-group slices) that survived pruning.
//!
//! Partitions claim morsels from a shared counter, so work is balanced dynamically. A morsel is
//! at most `morsel_rows` rows, so even a file with one huge row group is decoded in bounded
//! slices. Before reading a morsel the scan consults its *dynamic filters*: predicates that a
//! downstream top-k publishes while it runs (its current k-th value), which lets the scan skip
//! row groups whose statistics show they cannot improve the result.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use ooc_io::{Morsel, MorselReader, ParquetDataset, PruneExpr, PruneStats, ReadOptions};

use crate::error::Result;
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// A predicate published at run time by a downstream operator (one slot per publisher).
#[derive(Debug, Default)]
pub struct DynamicFilter {
    slots: Mutex<Vec<Option<PruneExpr>>>,
}

impl DynamicFilter {
    /// A filter with `publishers` slots.
    pub fn new(publishers: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Mutex::new(vec![None; publishers]),
        })
    }

    /// Replace the predicate of `slot`.
    pub fn publish(&self, slot: usize, predicate: PruneExpr) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slot < slots.len() {
            slots[slot] = Some(predicate);
        }
    }

    /// The currently published predicates.
    pub fn current(&self) -> Vec<PruneExpr> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Scan of a Parquet data set.
#[derive(Debug)]
pub struct ParquetScanExec {
    table_name: String,
    dataset: Arc<ParquetDataset>,
    projection: Vec<String>,
    schema: SchemaRef,
    morsels: Vec<Morsel>,
    prune_stats: PruneStats,
    pruning_predicate: Option<PruneExpr>,
    partitions: usize,
    fetch: Option<usize>,
    dynamic_filters: Vec<Arc<DynamicFilter>>,
    next_morsel: AtomicUsize,
    rows_emitted: AtomicUsize,
    skipped_dynamic: AtomicU64,
    metrics: Arc<OperatorMetrics>,
}

/// Everything the planner decided about a scan.
#[derive(Debug)]
pub struct ScanSpec {
    /// Name shown in plans.
    pub table_name: String,
    /// The files.
    pub dataset: Arc<ParquetDataset>,
    /// Column names to read, in output order.
    pub projection: Vec<String>,
    /// Predicate used for static pruning (shown in EXPLAIN).
    pub pruning_predicate: Option<PruneExpr>,
    /// Output partitions.
    pub partitions: usize,
    /// Rows per morsel.
    pub morsel_rows: usize,
    /// Stop after this many rows.
    pub fetch: Option<usize>,
    /// Run-time predicates from downstream operators.
    pub dynamic_filters: Vec<Arc<DynamicFilter>>,
    /// Read row groups in the order that suits a top-k on this column (`true`: descending).
    pub preferred_order: Option<(String, bool)>,
}

impl ParquetScanExec {
    /// Plan the morsels of a scan, pruning row groups with the static predicate.
    pub fn try_new(spec: ScanSpec) -> Result<Self> {
        let schema = spec.dataset.project_schema(Some(&spec.projection))?;
        let (mut row_groups, prune_stats) = match &spec.pruning_predicate {
            Some(predicate) => spec.dataset.prune(predicate),
            None => spec.dataset.prune(&PruneExpr::Unknown),
        };
        if let Some((column, descending)) = &spec.preferred_order {
            spec.dataset
                .order_row_groups(&mut row_groups, column, *descending);
        }
        let morsels = spec
            .dataset
            .plan_morsels(&row_groups, spec.morsel_rows.max(1));
        let partitions = spec.partitions.clamp(1, morsels.len().max(1));
        Ok(Self {
            table_name: spec.table_name,
            dataset: spec.dataset,
            projection: spec.projection,
            schema,
            morsels,
            prune_stats,
            pruning_predicate: spec.pruning_predicate,
            partitions,
            fetch: spec.fetch,
            dynamic_filters: spec.dynamic_filters,
            next_morsel: AtomicUsize::new(0),
            rows_emitted: AtomicUsize::new(0),
            skipped_dynamic: AtomicU64::new(0),
            metrics: Arc::default(),
        })
    }

    /// Pruning decisions per file.
    pub fn prune_stats(&self) -> &PruneStats {
        &self.prune_stats
    }

    /// Number of morsels planned.
    pub fn morsel_count(&self) -> usize {
        self.morsels.len()
    }

    fn skip_by_dynamic_filter(&self, morsel: &Morsel) -> bool {
        for filter in &self.dynamic_filters {
            for predicate in filter.current() {
                if !self
                    .dataset
                    .row_group_may_match(morsel.row_group, &predicate)
                {
                    return true;
                }
            }
        }
        false
    }
}

impl ExecutionPlan for ParquetScanExec {
    fn name(&self) -> &str {
        "ParquetScan"
    }

    fn details(&self) -> String {
        let mut out = format!(
            "{} columns=[{}]",
            self.table_name,
            self.projection.join(", ")
        );
        if let Some(p) = &self.pruning_predicate {
            out.push_str(&format!(" pruning=[{p}]"));
        }
        let kept: usize = self
            .prune_stats
            .files
            .iter()
            .map(|f| f.row_groups_kept)
            .sum();
        let total: usize = self
            .prune_stats
            .files
            .iter()
            .map(|f| f.row_groups_total)
            .sum();
        out.push_str(&format!(
            " row_groups={kept}/{total} files={} morsels={}",
            self.prune_stats.files.len(),
            self.morsels.len()
        ));
        if self.prune_stats.files.len() <= 8 && kept < total {
            for f in &self.prune_stats.files {
                out.push_str(&format!(
                    "\n      {}: row groups kept {}/{}{}",
                    f.path.display(),
                    f.row_groups_kept,
                    f.row_groups_total,
                    if f.file_pruned_by_partition {
                        " (pruned by partition value)"
                    } else {
                        ""
                    }
                ));
            }
        }
        if !self.dynamic_filters.is_empty() {
            out.push_str(" dynamic_filter=top-k");
        }
        if let Some(fetch) = self.fetch {
            out.push_str(&format!(" fetch={fetch}"));
        }
        out
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn output_partitions(&self) -> usize {
        self.partitions
    }

    fn execute(self: Arc<Self>, _partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        if _partition == 0 {
            ctx.progress
                .total
                .fetch_add(self.morsels.len() as u64, Ordering::Relaxed);
        }
        let options = ReadOptions {
            projection: Some(self.projection.clone()),
            batch_size: ctx.batch_size,
            bytes_read: Some(Arc::clone(&ctx.bytes_read)),
        };
        let stream = ScanStream {
            exec: Arc::clone(&self),
            ctx,
            options,
            current: None,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

struct ScanStream {
    exec: Arc<ParquetScanExec>,
    ctx: Arc<TaskContext>,
    options: ReadOptions,
    current: Option<MorselReader>,
}

impl ScanStream {
    fn finish_morsel(&mut self) {
        self.current = None;
        self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Iterator for ScanStream {
    type Item = Result<arrow::array::RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let exec = Arc::clone(&self.exec);
        loop {
            if let Some(fetch) = exec.fetch {
                if exec.rows_emitted.load(Ordering::Relaxed) >= fetch {
                    return None;
                }
            }
            if let Some(reader) = self.current.as_mut() {
                match reader.next() {
                    Some(Ok(batch)) => {
                        exec.rows_emitted
                            .fetch_add(batch.num_rows(), Ordering::Relaxed);
                        self.ctx
                            .progress
                            .rows
                            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                        return Some(Ok(batch));
                    }
                    Some(Err(e)) => {
                        self.finish_morsel();
                        return Some(Err(e.into()));
                    }
                    None => self.finish_morsel(),
                }
            }
            if let Err(e) = self.ctx.check_cancelled() {
                return Some(Err(e));
            }
            let index = exec.next_morsel.fetch_add(1, Ordering::Relaxed);
            let morsel = exec.morsels.get(index)?;
            if exec.skip_by_dynamic_filter(morsel) {
                let skipped = exec.skipped_dynamic.fetch_add(1, Ordering::Relaxed) + 1;
                exec.metrics.set_extra("morsels_skipped_dynamic", skipped);
                self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match exec.dataset.read_morsel(morsel, &self.options) {
                Ok(reader) => self.current = Some(reader),
                Err(e) => {
                    self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
                    return Some(Err(e.into()));
                }
            }
        }
    }
}
