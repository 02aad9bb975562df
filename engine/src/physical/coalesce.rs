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

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::memory::{referenced_bytes, InFlight, MemoryPart, Ticket};
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
        let queued = InFlight::new(
            &ctx.memory_pool,
            "Coalesce",
            MemoryPart::BatchesInFlight,
            Some(Arc::clone(&self.metrics)),
        );
        let mut handles = Vec::with_capacity(partitions);
        for partition in 0..partitions {
            let input = Arc::clone(&self.input);
            let ctx = Arc::clone(&ctx);
            let sender: SyncSender<Queued> = sender.clone();
            let queued = queued.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ooc-partition-{partition}"))
                .spawn(move || {
                    crate::error::guard_panic(
                        &format!("the worker of partition {partition}"),
                        || {
                            drive_partition(input, partition, ctx, |item| {
                                // Counted from the moment it is queued until it is taken.
                                let item = item.map(|batch| {
                                    let ticket = queued.ticket(referenced_bytes(&batch));
                                    (batch, ticket)
                                });
                                sender.send(item).is_ok()
                            });
                        },
                        |e| {
                            let _ = sender.send(Err(e));
                        },
                    );
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

/// A batch in the queue, counted as in flight until it is taken.
type Queued = Result<(arrow::array::RecordBatch, Ticket)>;

/// The merged stream; joins the partition threads when dropped.
struct CoalesceStream {
    receiver: Option<Receiver<Queued>>,
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
        Some(item.map(|(batch, _taken)| batch))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

    use crate::error::{EngineError, Result};
    use crate::eval::PhysicalExpr;
    use crate::memory::MemoryPool;
    use crate::metrics::OperatorMetrics;
    use crate::physical::ordered_coalesce::OrderedCoalesceExec;
    use crate::physical::repartition::RepartitionExec;
    use crate::physical::{BatchStream, ExecutionPlan, TaskContext};

    use super::CoalesceExec;

    /// Two partitions: the first gives a batch, the second panics after one.
    #[derive(Debug, Default)]
    struct PanickingExec {
        metrics: Arc<OperatorMetrics>,
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
    }

    impl ExecutionPlan for PanickingExec {
        fn name(&self) -> &str {
            "Panicking"
        }
        fn details(&self) -> String {
            String::new()
        }
        fn schema(&self) -> SchemaRef {
            schema()
        }
        fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
            vec![]
        }
        fn output_partitions(&self) -> usize {
            2
        }
        fn execute(
            self: Arc<Self>,
            partition: usize,
            _ctx: Arc<TaskContext>,
        ) -> Result<BatchStream> {
            let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(vec![1]))])?;
            Ok(Box::new((0..2).map(move |i| {
                if partition == 1 && i == 1 {
                    panic!("a bug in an operator");
                }
                Ok(batch.clone())
            })))
        }
        fn metrics(&self) -> &Arc<OperatorMetrics> {
            &self.metrics
        }
    }

    fn context() -> Arc<TaskContext> {
        Arc::new(TaskContext {
            memory_pool: MemoryPool::new(usize::MAX),
            batch_size: 8192,
            threads: 2,
            bytes_read: Arc::default(),
            warnings: Arc::default(),
            progress: Arc::default(),
            cancelled: Arc::default(),
            spill: Arc::new(crate::memory::SpillManager::new(None, u64::MAX)),
        })
    }

    fn outcome(plan: Arc<dyn ExecutionPlan>) -> Result<usize> {
        let mut rows = 0;
        for p in 0..plan.output_partitions() {
            for batch in Arc::clone(&plan).execute(p, context())? {
                rows += batch?.num_rows();
            }
        }
        Ok(rows)
    }

    #[test]
    fn a_panicking_worker_fails_the_query_instead_of_ending_its_stream() {
        let input: Arc<dyn ExecutionPlan> = Arc::new(PanickingExec::default());
        let plans: Vec<Arc<dyn ExecutionPlan>> = vec![
            Arc::new(CoalesceExec::new(Arc::clone(&input))),
            Arc::new(OrderedCoalesceExec::new(Arc::clone(&input), 2)),
            Arc::new(CoalesceExec::new(Arc::new(RepartitionExec::new(
                Arc::clone(&input),
                vec![PhysicalExpr::Column(0, "v".into())],
                2,
            )))),
        ];
        for plan in plans {
            let name = plan.name().to_string();
            match outcome(plan) {
                Err(EngineError::Internal(message)) => {
                    assert!(
                        message.contains("a bug in an operator"),
                        "{name}: {message}"
                    )
                }
                other => panic!("{name}: a panic gave {other:?}, not an internal error"),
            }
        }
    }
}
