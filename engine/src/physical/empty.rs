//! A single row without columns: the input of `SELECT` without `FROM`.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Schema, SchemaRef};

use crate::error::Result;
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Produces one row with no columns.
#[derive(Debug, Default)]
pub(crate) struct EmptyRowExec {
    metrics: Arc<OperatorMetrics>,
}

impl ExecutionPlan for EmptyRowExec {
    fn name(&self) -> &str {
        "EmptyRow"
    }

    fn details(&self) -> String {
        String::new()
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn output_partitions(&self) -> usize {
        1
    }

    fn execute(self: Arc<Self>, _partition: usize, _ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let options = RecordBatchOptions::new().with_row_count(Some(1));
        let batch = RecordBatch::try_new_with_options(self.schema(), vec![], &options)?;
        Ok(instrument(
            Box::new(std::iter::once(Ok(batch))),
            Arc::clone(&self.metrics),
        ))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
