//! Source that replays a result stored in the result cache (`ooc_io::cache`): the batches of
//! a memory-mapped Arrow IPC file, decoded without copying (each checked against its CRC-32
//! first). Nothing it hands out is on the heap, so nothing is reserved from the pool.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use ooc_io::cache::CachedResult;

use crate::error::Result;
use crate::metrics::{format_bytes, format_duration, OperatorMetrics};
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Streams the batches of a cache entry.
#[derive(Debug)]
pub(crate) struct CachedResultExec {
    result: Arc<CachedResult>,
    metrics: Arc<OperatorMetrics>,
}

impl CachedResultExec {
    pub(crate) fn new(result: Arc<CachedResult>) -> Self {
        Self {
            result,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for CachedResultExec {
    fn name(&self) -> &str {
        "CachedResult"
    }

    fn details(&self) -> String {
        let m = self.result.manifest();
        format!(
            "hit key={} rows={} bytes={} computed in {} file={}",
            m.key,
            m.rows,
            format_bytes(m.bytes),
            format_duration(std::time::Duration::from_millis(m.compute_ms)),
            self.result.path().display()
        )
    }

    fn schema(&self) -> SchemaRef {
        self.result.schema()
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn output_partitions(&self) -> usize {
        1
    }

    fn execute(self: Arc<Self>, _partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        // The caller's thread decodes and checks from the first batch on; helpers check ahead.
        self.result
            .check_in_background(ctx.threads.saturating_sub(1).max(1));
        let decoder = self.result.decoder(None)?;
        let batches = (0..self.result.num_batches()).map(move |i| {
            ctx.check_cancelled()?;
            Ok(decoder.batch(i)?)
        });
        Ok(instrument(Box::new(batches), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
