//! Filter: keeps the rows for which a predicate is TRUE (NULL and FALSE are dropped).

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
        }
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
