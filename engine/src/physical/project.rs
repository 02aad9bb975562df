//! Projection: computes one output column per expression.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::eval::PhysicalExpr;
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Streaming projection; keeps its input's partitioning.
#[derive(Debug)]
pub(crate) struct ProjectExec {
    input: Arc<dyn ExecutionPlan>,
    exprs: Vec<PhysicalExpr>,
    display: Vec<String>,
    schema: SchemaRef,
    metrics: Arc<OperatorMetrics>,
}

impl ProjectExec {
    /// Compute `exprs` over `input`, producing `schema`.
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        exprs: Vec<PhysicalExpr>,
        display: Vec<String>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            input,
            exprs,
            display,
            schema,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for ProjectExec {
    fn name(&self) -> &str {
        "Projection"
    }

    fn details(&self) -> String {
        self.display.join(", ")
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
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
        let stream = input.map(move |batch| {
            let batch = batch?;
            let n = batch.num_rows();
            let columns = this
                .exprs
                .iter()
                .map(|e| e.evaluate(&batch)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(n));
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&this.schema),
                columns,
                &options,
            )?)
        });
        Ok(instrument(Box::new(stream), metrics))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
