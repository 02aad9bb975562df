//! Ordered coalesce: merges the partitions of its input into one stream, partition 0's rows
//! first, then partition 1's, and so on.
//!
//! It sits on a scan with one partition per slice of the files (see
//! [`crate::physical::scan::UnitAssignment`]) and the filters and projections above it, when
//! the rows must come out in a reproducible order ([`crate::config::RowOrder`]). A plain
//! [`crate::physical::coalesce`] hands on batches in the order the threads produce them.
//!
//! The first `window` partitions run at once, each on its own thread, and each sends its
//! batches through a channel of its own. The consumer reads the oldest partition's channel to
//! the end, then starts the next partition and moves on to the following channel. The other
//! partitions of the window keep working meanwhile, so up to `window` slices are decoded in
//! parallel; what waits is at most the output of `window` slices, which the scan keeps small
//! for this reason. Dropping the stream closes every channel and waits for the threads.

use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Merge all partitions of `input` into one, in partition order.
#[derive(Debug)]
pub(crate) struct OrderedCoalesceExec {
    input: Arc<dyn ExecutionPlan>,
    /// Partitions running at once.
    window: usize,
    metrics: Arc<OperatorMetrics>,
}

impl OrderedCoalesceExec {
    /// Merge the partitions of `input` in order, running up to `window` of them at once.
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, window: usize) -> Self {
        Self {
            input,
            window: window.max(1),
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for OrderedCoalesceExec {
    fn name(&self) -> &str {
        "OrderedCoalesce"
    }

    fn details(&self) -> String {
        format!(
            "{} partitions in order, {} at once",
            self.input.output_partitions(),
            self.window
        )
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
        let stream = OrderedStream {
            partitions: self.input.output_partitions(),
            input: Arc::clone(&self.input),
            ctx,
            window: self.window,
            next_to_start: 0,
            running: VecDeque::new(),
            failed: false,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

/// One partition at work on its thread.
struct Running {
    receiver: Receiver<Result<RecordBatch>>,
    handle: JoinHandle<()>,
}

struct OrderedStream {
    input: Arc<dyn ExecutionPlan>,
    ctx: Arc<TaskContext>,
    partitions: usize,
    window: usize,
    next_to_start: usize,
    /// The partitions of the window, oldest (the one being handed on) first.
    running: VecDeque<Running>,
    failed: bool,
}

impl OrderedStream {
    fn start(&self, partition: usize) -> Result<Running> {
        let (sender, receiver) = channel();
        let input = Arc::clone(&self.input);
        let ctx = Arc::clone(&self.ctx);
        let handle = std::thread::Builder::new()
            .name(format!("ooc-slice-{partition}"))
            .spawn(move || {
                let stream = match input.execute(partition, Arc::clone(&ctx)) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = sender.send(Err(e));
                        return;
                    }
                };
                for item in stream {
                    let failed = item.is_err();
                    if sender.send(item).is_err() || failed {
                        return;
                    }
                    if ctx.check_cancelled().is_err() {
                        let _ = sender.send(Err(EngineError::Cancelled));
                        return;
                    }
                }
            })
            .map_err(|e| EngineError::Execution(format!("cannot start a worker thread: {e}")))?;
        Ok(Running { receiver, handle })
    }
}

impl Iterator for OrderedStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            while self.running.len() < self.window && self.next_to_start < self.partitions {
                match self.start(self.next_to_start) {
                    Ok(running) => self.running.push_back(running),
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
                self.next_to_start += 1;
            }
            let head = self.running.front()?;
            match head.receiver.recv() {
                Ok(item) => {
                    self.failed = item.is_err();
                    return Some(item);
                }
                // The oldest partition is done: move on to the next one.
                Err(_) => {
                    if let Some(done) = self.running.pop_front() {
                        let _ = done.handle.join();
                    }
                }
            }
        }
    }
}

impl Drop for OrderedStream {
    fn drop(&mut self) {
        // Closing the channels makes every producer's next send fail, so each stops after the
        // batch it is working on.
        let running: Vec<Running> = self.running.drain(..).collect();
        let handles: Vec<JoinHandle<()>> = running
            .into_iter()
            .map(|r| {
                drop(r.receiver);
                r.handle
            })
            .collect();
        for handle in handles {
            let _ = handle.join();
        }
    }
}
