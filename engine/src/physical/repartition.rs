//! Repartition: redistributes the rows of its input partitions by a hash of key columns, so
//! that every row with the same key reaches the same output partition.
//!
//! It is the exchange between a partial and a final aggregate: instead of merging all
//! partial states in one thread, each of the final aggregate's partitions merges the groups
//! whose keys hash to it, in parallel, each with its own share of the memory budget (and its
//! own spill files).
//!
//! ```text
//!   input 0 ──┐ hash(keys) % n   ┌──► channel 0 ──► output 0
//!   input 1 ──┼──────────────────┼──► channel 1 ──► output 1
//!   ...       ┘                  └──► ...
//! ```
//!
//! The first output partition to be executed starts one producer thread per input partition.
//! Producers split each batch by key hash and send the parts through bounded channels (two
//! batches per output), so a slow consumer stalls the producers rather than letting batches
//! pile up. An output partition dropped early (a LIMIT above) just stops receiving; the
//! producers stop once every output is gone, and the last output stream to be dropped waits
//! for them, so no thread outlives the query's stream.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::eval::PhysicalExpr;
use crate::memory::{referenced_bytes, InFlight, MemoryPart, Ticket};
use crate::metrics::OperatorMetrics;
use crate::physical::hashing::hash_columns;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Seed of the partitioning hash: unrelated to the hashes operators use internally (for
/// their tables and spill partitions), so a partition's keys still spread evenly there.
static HASHER: ahash::RandomState =
    ahash::RandomState::with_seeds(0x7265_7061, 0x7274_6974, 0x696f_6e21, 0x0bad_5eed);

/// Hash-repartition the input into `partitions` outputs by `keys`.
#[derive(Debug)]
pub(crate) struct RepartitionExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<PhysicalExpr>,
    partitions: usize,
    state: Mutex<State>,
    metrics: Arc<OperatorMetrics>,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    NotStarted,
    /// Producers running; receivers not yet handed out.
    Running {
        receivers: Vec<Option<Receiver<Queued>>>,
        producers: Arc<Producers>,
    },
}

/// The producer threads; joined when the last holder (an output stream) drops it.
#[derive(Debug)]
struct Producers {
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Producers {
    fn drop(&mut self) {
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

impl RepartitionExec {
    /// Repartition `input` by `keys` (evaluated on the input) into `partitions` outputs.
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<PhysicalExpr>,
        partitions: usize,
    ) -> Self {
        Self {
            input,
            keys,
            partitions: partitions.max(1),
            state: Mutex::new(State::NotStarted),
            metrics: Arc::default(),
        }
    }

    fn start(&self, ctx: &Arc<TaskContext>) -> Result<State> {
        let mut senders = Vec::with_capacity(self.partitions);
        let mut receivers = Vec::with_capacity(self.partitions);
        for _ in 0..self.partitions {
            let (s, r) = sync_channel(2);
            senders.push(s);
            receivers.push(Some(r));
        }
        let queued = InFlight::new(
            &ctx.memory_pool,
            "Repartition",
            MemoryPart::BatchesInFlight,
            Some(Arc::clone(&self.metrics)),
        );
        let mut handles = Vec::new();
        for input_partition in 0..self.input.output_partitions() {
            let input = Arc::clone(&self.input);
            let keys = self.keys.clone();
            let queued = queued.clone();
            let senders = senders.clone();
            let ctx = Arc::clone(ctx);
            let metrics = Arc::clone(&self.metrics);
            let handle = std::thread::Builder::new()
                .name(format!("ooc-repartition-{input_partition}"))
                .spawn(move || {
                    let on_panic = senders.clone();
                    crate::error::guard_panic(
                        &format!("the repartition of partition {input_partition}"),
                        || {
                            produce(
                                input,
                                input_partition,
                                &keys,
                                senders,
                                &ctx,
                                &metrics,
                                &queued,
                            )
                        },
                        |e| {
                            for s in &on_panic {
                                let _ = s.send(Err(EngineError::Internal(e.to_string())));
                            }
                        },
                    );
                })
                .map_err(|e| {
                    EngineError::Execution(format!("cannot start a worker thread: {e}"))
                })?;
            handles.push(handle);
        }
        Ok(State::Running {
            receivers,
            producers: Arc::new(Producers {
                handles: Mutex::new(handles),
            }),
        })
    }
}

/// One producer: split every batch of an input partition by key hash and send the parts.
fn produce(
    input: Arc<dyn ExecutionPlan>,
    partition: usize,
    keys: &[PhysicalExpr],
    senders: Vec<SyncSender<Queued>>,
    ctx: &Arc<TaskContext>,
    metrics: &OperatorMetrics,
    queued: &InFlight,
) {
    let mut open: Vec<Option<SyncSender<Queued>>> = senders.into_iter().map(Some).collect();
    let fail = |open: &mut Vec<Option<SyncSender<Queued>>>, e: EngineError| {
        // Every output learns about the error (the first one to report it wins upstream).
        for s in open.iter().flatten() {
            let _ = s.send(Err(EngineError::Execution(e.to_string())));
        }
    };
    let stream = match input.execute(partition, Arc::clone(ctx)) {
        Ok(s) => s,
        Err(e) => return fail(&mut open, e),
    };
    let n = open.len();
    for batch in stream {
        let batch = match batch.and_then(|b| ctx.check_cancelled().map(|_| b)) {
            Ok(b) => b,
            Err(e) => return fail(&mut open, e),
        };
        metrics.add_rows_in(batch.num_rows());
        let parts = match split(&batch, keys, n) {
            Ok(p) => p,
            Err(e) => return fail(&mut open, e),
        };
        for (p, part) in parts {
            if let Some(sender) = &open[p] {
                // The bytes the part's rows reference: a string-view part shares the data
                // buffers of the batch it was taken from, which are counted where they are held.
                let ticket = queued.ticket(referenced_bytes(&part));
                if sender.send(Ok((part, ticket))).is_err() {
                    open[p] = None; // that output is gone
                }
            }
        }
        if open.iter().all(Option::is_none) {
            return;
        }
    }
}

/// The rows of `batch` for each output partition.
fn split(
    batch: &RecordBatch,
    keys: &[PhysicalExpr],
    n: usize,
) -> Result<Vec<(usize, RecordBatch)>> {
    let rows = batch.num_rows();
    if n == 1 {
        return Ok(vec![(0, batch.clone())]);
    }
    let columns = keys
        .iter()
        .map(|k| k.evaluate(batch)?.into_array(rows))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let hashes = hash_columns(&columns, &HASHER)?;
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, &h) in hashes.iter().enumerate() {
        // Multiply-shift maps the hash onto 0..n without a division.
        let p = ((u128::from(h) * n as u128) >> 64) as usize;
        members[p].push(i as u32);
    }
    let mut out = Vec::with_capacity(n);
    for (p, rows_of) in members.into_iter().enumerate() {
        if rows_of.is_empty() {
            continue;
        }
        if rows_of.len() == rows {
            out.push((p, batch.clone()));
        } else {
            out.push((p, take_record_batch(batch, &UInt32Array::from(rows_of))?));
        }
    }
    Ok(out)
}

/// A batch in an output's queue, counted as in flight until it is taken.
type Queued = Result<(RecordBatch, Ticket)>;

/// One output partition: its channel, and a share in the producers (joined by the last).
struct OutputStream {
    receiver: Receiver<Queued>,
    _producers: Arc<Producers>,
    failed: bool,
}

impl Iterator for OutputStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.receiver.recv().ok()?;
        self.failed = item.is_err();
        Some(item.map(|(batch, _taken)| batch))
    }
}

impl ExecutionPlan for RepartitionExec {
    fn name(&self) -> &str {
        "Repartition"
    }

    fn details(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| match k {
                PhysicalExpr::Column(_, name) => name.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        format!(
            "hash([{}]) {} → {} partitions",
            keys.join(", "),
            self.input.output_partitions(),
            self.partitions
        )
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.input)]
    }

    fn output_partitions(&self) -> usize {
        self.partitions
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, State::NotStarted) {
            *state = self.start(&ctx)?;
        }
        let State::Running {
            receivers,
            producers,
        } = &mut *state
        else {
            return Err(EngineError::Internal("repartition not started".into()));
        };
        let receiver = receivers
            .get_mut(partition)
            .and_then(Option::take)
            .ok_or_else(|| {
                EngineError::Internal(format!("repartition output {partition} executed twice"))
            })?;
        let stream = OutputStream {
            receiver,
            _producers: Arc::clone(producers),
            failed: false,
        };
        // Once every output is handed out, only the streams hold the producers, so the last
        // one dropped joins them.
        if receivers.iter().all(Option::is_none) {
            *state = State::NotStarted;
        }
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
