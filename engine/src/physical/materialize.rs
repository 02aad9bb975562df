//! Materialize: computes its input once and replays it to every consumer.
//!
//! A common table expression referenced more than once (TPC-H Q15's `revenue0`) is planned as
//! one `MaterializeExec` shared by all references. The first consumer to open a stream runs the
//! input to completion while the others wait; each consumer then reads the result in order.
//!
//! The result is held in memory (and reserved in the pool) as long as it takes at most a
//! quarter of the budget (the rest of the query runs beside it), through a spool
//! (`physical::spool`). When a batch does not fit, or the pool asks this operator to make
//! room for one that cannot spill, everything held so far and every later batch go to one
//! spill file instead, and the memory is given back; consumers then read that file, each
//! with its own reader, one batch at a time.
//!
//! ```text
//!   input ──► batches in memory ──(no room)──► spill file ─┬─► consumer 1
//!                                                         └─► consumer 2
//! ```
//!
//! The choice is made once, while computing: a result that fitted stays in memory until its
//! last reader is done with it (the planner counts the readers), or until the query ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::memory::{MemoryPart, MemoryReservation};
use crate::metrics::OperatorMetrics;
use crate::physical::spool::{Spool, Spooled};
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// The result (with the reservation holding it, if in memory), or the error computing it.
type Computed = std::result::Result<Arc<Spooled>, String>;

/// Computes its (single-partition) input once; every `execute` replays the result.
#[derive(Debug)]
pub(crate) struct MaterializeExec {
    input: Arc<dyn ExecutionPlan>,
    name: String,
    state: Mutex<Option<Computed>>,
    /// Readers in the plan ([`add_reader`](Self::add_reader)) and readers done so far: the
    /// result is released when the last one finishes.
    readers: AtomicUsize,
    finished: AtomicUsize,
    metrics: Arc<OperatorMetrics>,
}

impl MaterializeExec {
    /// Materialize `input` (one partition); `name` is shown in plans.
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, name: String) -> Self {
        Self {
            input,
            name,
            state: Mutex::new(None),
            readers: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            metrics: Arc::default(),
        }
    }

    /// Count one more reader of the result (one per reference in the plan).
    pub(crate) fn add_reader(&self) {
        self.readers.fetch_add(1, Ordering::Relaxed);
    }

    /// A reader has read the whole result; after the last one, the result and its memory
    /// (or spill file) are released. A reader opened again later would compute it anew.
    fn reader_done(&self) {
        let done = self.finished.fetch_add(1, Ordering::AcqRel) + 1;
        if done == self.readers.load(Ordering::Relaxed) {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(state.as_ref(), Some(Ok(_))) {
                *state = None;
            }
            self.finished.store(0, Ordering::Relaxed);
        }
    }

    fn compute(&self, ctx: &Arc<TaskContext>) -> Result<Arc<Spooled>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(computed) = state.as_ref() {
            return computed.clone().map_err(EngineError::Execution);
        }
        let result = self.run(ctx).map(Arc::new);
        *state = Some(result.as_ref().map(Arc::clone).map_err(|e| e.to_string()));
        result
    }

    /// Run the input to its end, in memory while the budget has room, else into a spill file.
    fn run(&self, ctx: &Arc<TaskContext>) -> Result<Spooled> {
        let reservation = MemoryReservation::new_spillable(
            &ctx.memory_pool,
            format!("Materialize({})", self.name),
            MemoryPart::Rows,
            Some(Arc::clone(&self.metrics)),
        );
        // The result is held while the rest of the query runs: a quarter of the budget at most.
        let share = ctx.memory_pool.limit() / 4;
        let mut spool = Spool::new(reservation, share, self.input.schema(), "materialize", None);
        for batch in Arc::clone(&self.input).execute(0, Arc::clone(ctx))? {
            ctx.check_cancelled()?;
            let batch = batch?;
            self.metrics.add_rows_in(batch.num_rows());
            spool.push(ctx, &batch)?;
        }
        spool.finish(&self.metrics)
    }
}

impl ExecutionPlan for MaterializeExec {
    fn name(&self) -> &str {
        "Materialize"
    }

    fn details(&self) -> String {
        format!("{} (computed once, shared)", self.name)
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

    fn grows_with_input(&self) -> bool {
        true
    }

    fn can_spill(&self) -> bool {
        true
    }

    fn execute(self: Arc<Self>, _partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let this = Arc::clone(&self);
        let mut replay: Option<Replay> = None;
        let stream = std::iter::from_fn(move || {
            if replay.is_none() {
                let opened = this.compute(&ctx).and_then(|stored| {
                    Ok(match &*stored {
                        Spooled::Memory(..) => Replay::Memory(Arc::clone(&stored), 0),
                        Spooled::Disk(file) => Replay::Disk {
                            reader: Box::new(file.read()?),
                            _file: Arc::clone(&stored),
                        },
                    })
                });
                match opened {
                    Ok(r) => replay = Some(r),
                    Err(e) => return Some(Err(e)),
                }
            }
            let next = match replay.as_mut()? {
                Replay::Memory(stored, next) => {
                    let Spooled::Memory(batches, _) = &**stored else {
                        return None;
                    };
                    let batch = batches.get(*next).cloned();
                    *next += 1;
                    batch.map(Ok)
                }
                Replay::Disk { reader, .. } => reader.next(),
                Replay::Done => return None,
            };
            if next.is_none() {
                replay = Some(Replay::Done);
                this.reader_done();
            }
            next
        });
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

/// One consumer's position in the result: the next batch held in memory, or its own reader
/// of the spill file (holding the result, so the file outlives the reader).
enum Replay {
    Memory(Arc<Spooled>, usize),
    Disk {
        reader: BatchStream,
        _file: Arc<Spooled>,
    },
    /// Read to its end.
    Done,
}
