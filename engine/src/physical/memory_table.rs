//! In-memory source: streams record batches the caller already holds (for example an Arrow
//! table handed over from Python), sliced to the session's batch size, without copying.
//!
//! The batches are split round-robin over the output partitions so the operators above run in
//! parallel. Their memory belongs to the caller, so it is not reserved from the query's pool.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Streams shared in-memory batches.
#[derive(Debug)]
pub(crate) struct MemoryExec {
    schema: SchemaRef,
    batches: Arc<Vec<RecordBatch>>,
    partitions: usize,
    metrics: Arc<OperatorMetrics>,
}

impl MemoryExec {
    /// A source over `batches` (of `schema`), split into at most `partitions` partitions.
    pub(crate) fn new(
        schema: SchemaRef,
        batches: Arc<Vec<RecordBatch>>,
        partitions: usize,
    ) -> Self {
        let partitions = partitions.clamp(1, batches.len().max(1));
        Self {
            schema,
            batches,
            partitions,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for MemoryExec {
    fn name(&self) -> &str {
        "MemoryTable"
    }

    fn details(&self) -> String {
        let rows: usize = self.batches.iter().map(|b| b.num_rows()).sum();
        format!("{rows} rows in {} batches", self.batches.len())
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

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let batch_size = ctx.batch_size.max(1);
        let schema = Arc::clone(&self.schema);
        let batches = Arc::clone(&self.batches);
        let step = self.partitions;
        let slices = (partition..batches.len())
            .step_by(step)
            .flat_map(move |i| {
                let rows = batches[i].num_rows();
                let batches = Arc::clone(&batches);
                (0..rows.max(1))
                    .step_by(batch_size)
                    .map(move |offset| (Arc::clone(&batches), i, offset))
            })
            .map(move |(batches, i, offset)| {
                ctx.check_cancelled()?;
                let batch = &batches[i];
                let len = batch_size.min(batch.num_rows() - offset.min(batch.num_rows()));
                let slice = batch.slice(offset.min(batch.num_rows()), len);
                Ok(RecordBatch::try_new_with_options(
                    Arc::clone(&schema),
                    slice.columns().to_vec(),
                    &arrow::array::RecordBatchOptions::new().with_row_count(Some(len)),
                )?)
            });
        Ok(instrument(Box::new(slices), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
