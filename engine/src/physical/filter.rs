//! Filter: keeps the rows for which a predicate is TRUE (NULL and FALSE are dropped).
//!
//! Above a Parquet scan, the same predicate may also have been applied by the scan itself to
//! the morsels it read with late materialization; the filter then sees only rows that pass,
//! and evaluates the predicate on them again (few rows, by the scan's choice).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::eval::PhysicalExpr;
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Streaming filter; keeps its input's partitioning.
#[derive(Debug)]
pub(crate) struct FilterExec {
    input: Arc<dyn ExecutionPlan>,
    predicate: PhysicalExpr,
    display: String,
    metrics: Arc<OperatorMetrics>,
    /// Rows in and out, shared with a scan below that filters some morsels itself.
    counts: Option<Arc<FilterCounts>>,
}

/// Rows a filter saw and let through, counted where it runs (above a scan, or within it):
/// the scan's choice of late materialization rests on their ratio.
#[derive(Debug, Default)]
pub(crate) struct FilterCounts {
    /// Rows the predicate was evaluated on.
    pub rows_in: AtomicU64,
    /// Rows that passed.
    pub rows_out: AtomicU64,
}

impl FilterCounts {
    /// Add `rows_in` rows seen, `rows_out` of them passed.
    pub(crate) fn add(&self, rows_in: usize, rows_out: usize) {
        self.rows_in.fetch_add(rows_in as u64, Ordering::Relaxed);
        self.rows_out.fetch_add(rows_out as u64, Ordering::Relaxed);
    }

    /// The fraction of rows that passed, once at least `min_rows` were seen.
    pub(crate) fn pass_ratio(&self, min_rows: u64) -> Option<f64> {
        let rows_in = self.rows_in.load(Ordering::Relaxed);
        let rows_out = self.rows_out.load(Ordering::Relaxed);
        (rows_in >= min_rows.max(1)).then(|| rows_out as f64 / rows_in as f64)
    }
}

impl FilterExec {
    /// Filter `input` by `predicate` (`display` is its SQL text for EXPLAIN).
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        predicate: PhysicalExpr,
        display: String,
    ) -> Self {
        Self {
            input,
            predicate,
            display,
            metrics: Arc::default(),
            counts: None,
        }
    }

    /// Also count rows in and out into `counts`.
    pub(crate) fn with_counts(mut self, counts: Arc<FilterCounts>) -> Self {
        self.counts = Some(counts);
        self
    }
}

impl ExecutionPlan for FilterExec {
    fn name(&self) -> &str {
        "Filter"
    }

    fn details(&self) -> String {
        self.display.clone()
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.input)]
    }

    fn output_partitions(&self) -> usize {
        self.input.output_partitions()
    }

    fn key_segments(&self) -> Option<Arc<crate::physical::key_segments::KeySegments>> {
        self.input.key_segments()
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        // A filter that rejects every row (a conjunct folded to FALSE or NULL) does not run
        // its input: nothing it computes could reach the answer, not even its errors.
        if let PhysicalExpr::Literal(v) = &self.predicate {
            if v.is_null() || v.as_bool() == Some(false) {
                return Ok(instrument(
                    Box::new(std::iter::empty()),
                    Arc::clone(&self.metrics),
                ));
            }
        }
        let input = Arc::clone(&self.input).execute(partition, ctx)?;
        let metrics = Arc::clone(&self.metrics);
        let this = Arc::clone(&self);
        let stream = input.filter_map(move |batch| {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            this.metrics.add_rows_in(batch.num_rows());
            let result = this
                .predicate
                .evaluate_mask(&batch)
                .and_then(|mask| Ok(filter_record_batch(&batch, &mask)?));
            if let (Some(counts), Ok(out)) = (&this.counts, &result) {
                counts.add(batch.num_rows(), out.num_rows());
            }
            match result {
                Ok(out) if out.num_rows() == 0 => None,
                other => Some(other),
            }
        });
        Ok(instrument(Box::new(stream), metrics))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
