//! Coalesce: merges the partitions of its input into one stream.
//!
//! Each input partition is driven by its own thread and sends batches through a bounded channel
//! (`2 × partitions` batches), which bounds the work in flight: when the consumer is slow the
//! producers block instead of piling up batches. Dropping the output stream closes the channel,
//! which stops the producers at their next send (used by LIMIT and by errors), and waits for
//! them: once a query's stream is gone, none of its threads still holds data or spill files.
//!
//! Partition drivers are plain threads rather than rayon tasks on purpose: a driver blocks on
//! its bounded channel while the consumer is busy, and a pipeline may contain several coalesces
//! (an aggregate over a derived table that is itself aggregated). Blocking tasks on a fixed-size
//! pool would deadlock once every pool thread waits on a consumer that needs a pool thread.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Merge all partitions of `input` into one, in arrival order.
#[derive(Debug)]
pub(crate) struct CoalesceExec {
    input: Arc<dyn ExecutionPlan>,
    metrics: Arc<OperatorMetrics>,
}

impl CoalesceExec {
    /// Merge the partitions of `input`.
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self {
            input,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for CoalesceExec {
    fn name(&self) -> &str {
        "Coalesce"
    }

    fn details(&self) -> String {
        format!("{} partitions", self.input.output_partitions())
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.input)]
    }

    fn output_partitions(&self) -> usize {
        1
    }

    fn execute(self: Arc<Self>, _partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let partitions = self.input.output_partitions();
        if partitions == 1 {
            let stream = Arc::clone(&self.input).execute(0, ctx)?;
            return Ok(instrument(stream, Arc::clone(&self.metrics)));
        }
        let (sender, receiver) = sync_channel(2 * partitions);
        let mut handles = Vec::with_capacity(partitions);
        for partition in 0..partitions {
            let input = Arc::clone(&self.input);
            let ctx = Arc::clone(&ctx);
            let sender = sender.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ooc-partition-{partition}"))
                .spawn(move || {
                    drive_partition(input, partition, ctx, |item| sender.send(item).is_ok());
                })
                .map_err(|e| {
                    EngineError::Execution(format!("cannot start a worker thread: {e}"))
                })?;
            handles.push(handle);
        }
        drop(sender);
        let stream = CoalesceStream {
            receiver: Some(receiver),
            handles,
            failed: false,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

/// Run `partition` of `input` on the calling thread, handing each batch to `send` (which
/// returns `false` once nobody listens). Returns `true` when the partition ran to its end, and
/// `false` when it stopped early: after an error (which it sent), a cancelled query (sent as
/// [`EngineError::Cancelled`]) or a consumer that went away.
pub(crate) fn drive_partition(
    input: Arc<dyn ExecutionPlan>,
    partition: usize,
    ctx: Arc<TaskContext>,
    mut send: impl FnMut(Result<arrow::array::RecordBatch>) -> bool,
) -> bool {
    let stream = match input.execute(partition, Arc::clone(&ctx)) {
        Ok(s) => s,
        Err(e) => {
            send(Err(e));
            return false;
        }
    };
    for item in stream {
        let failed = item.is_err();
        if !send(item) || failed {
            return false;
        }
        if ctx.check_cancelled().is_err() {
            send(Err(EngineError::Cancelled));
            return false;
        }
    }
    true
}

/// The merged stream; joins the partition threads when dropped.
struct CoalesceStream {
    receiver: Option<Receiver<Result<arrow::array::RecordBatch>>>,
    handles: Vec<JoinHandle<()>>,
    failed: bool,
}

impl Iterator for CoalesceStream {
    type Item = Result<arrow::array::RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.receiver.as_ref()?.recv().ok()?;
        self.failed = item.is_err();
        Some(item)
    }
}

impl Drop for CoalesceStream {
    fn drop(&mut self) {
        // Closing the channel makes every producer's next send fail, so each stops after the
        // batch it is working on.
        drop(self.receiver.take());
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}
