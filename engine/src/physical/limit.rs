//! Limit: skips `skip` rows and passes at most `fetch` rows, then stops pulling its input.
//!
//! On a partitioned input the planner places a per-partition limit of `skip + fetch` below a
//! coalesce and the exact limit above it.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Per-partition skip/fetch.
#[derive(Debug)]
pub(crate) struct LimitExec {
    input: Arc<dyn ExecutionPlan>,
    skip: usize,
    fetch: Option<usize>,
    metrics: Arc<OperatorMetrics>,
}

impl LimitExec {
    /// Skip `skip` rows then return up to `fetch` rows of each input partition.
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, skip: usize, fetch: Option<usize>) -> Self {
        Self {
            input,
            skip,
            fetch,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for LimitExec {
    fn name(&self) -> &str {
        "Limit"
    }

    fn details(&self) -> String {
        format!(
            "skip={} fetch={}",
            self.skip,
            self.fetch.map_or("all".to_string(), |f| f.to_string())
        )
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

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let mut input = Some(Arc::clone(&self.input).execute(partition, ctx)?);
        let mut to_skip = self.skip;
        let mut remaining = self.fetch.unwrap_or(usize::MAX);
        let stream = std::iter::from_fn(move || loop {
            if remaining == 0 {
                input = None; // release the input (and stop its producers) as soon as we are done
                return None;
            }
            let batch = match input.as_mut()?.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            let mut batch = batch;
            if to_skip > 0 {
                if batch.num_rows() <= to_skip {
                    to_skip -= batch.num_rows();
                    continue;
                }
                batch = batch.slice(to_skip, batch.num_rows() - to_skip);
                to_skip = 0;
            }
            if batch.num_rows() > remaining {
                batch = batch.slice(0, remaining);
            }
            remaining -= batch.num_rows();
            if batch.num_rows() > 0 {
                return Some(Ok(batch));
            }
        });
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
