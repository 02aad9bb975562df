//! Union: the partitions of all inputs side by side (`UNION ALL`).
//!
//! Output partition `p` is the `p`-th partition counted across the inputs in order, so the
//! inputs run in parallel under a coalesce and nothing is buffered here. Inputs already have
//! the union's column types (the logical plan casts them).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// `UNION ALL` of inputs with identical column types.
#[derive(Debug)]
pub(crate) struct UnionExec {
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    schema: SchemaRef,
    metrics: Arc<OperatorMetrics>,
}

impl UnionExec {
    /// Concatenate `inputs`; `schema` gives the output names.
    pub(crate) fn new(inputs: Vec<Arc<dyn ExecutionPlan>>, schema: SchemaRef) -> Self {
        Self {
            inputs,
            schema,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for UnionExec {
    fn name(&self) -> &str {
        "Union"
    }

    fn details(&self) -> String {
        format!("{} inputs", self.inputs.len())
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        self.inputs.clone()
    }

    fn output_partitions(&self) -> usize {
        self.inputs.iter().map(|i| i.output_partitions()).sum()
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let mut p = partition;
        for input in &self.inputs {
            let n = input.output_partitions();
            if p < n {
                let stream = Arc::clone(input).execute(p, ctx)?;
                let schema = Arc::clone(&self.schema);
                // Re-label batches with the union's field names.
                let relabeled = stream.map(move |batch| {
                    let batch = batch?;
                    Ok(RecordBatch::try_new(
                        Arc::clone(&schema),
                        batch.columns().to_vec(),
                    )?)
                });
                return Ok(instrument(Box::new(relabeled), Arc::clone(&self.metrics)));
            }
            p -= n;
        }
        Err(EngineError::Internal(format!(
            "union has no partition {partition}"
        )))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
