//! Window: computes window functions over input sorted by partition and order keys.
//!
//! ```text
//!   sorted input ──► split at partition changes ──► chunks of the current partition
//!                                                        │  (peer groups, RANGE key,
//!                                                        ▼   function arguments)
//!                       rows whose frames are decided ──► evaluators ──► output batch
//!                                                        │
//!                                   rows no frame reaches any more are released
//! ```
//!
//! The operator streams: a row is emitted as soon as every function's result for it is
//! decided by the rows received, and rows are released once no later row's frame (or `lag`)
//! can reach them. So a running sum over one huge partition, or a sliding frame, holds only
//! the rows between its frame's ends, whatever the partition's size; only functions that
//! need the partition's size (`percent_rank`, `cume_dist`, `ntile`) or its end (frames to
//! `UNBOUNDED FOLLOWING`, and so whole-partition aggregates) hold a partition until it ends.
//! What is held is reserved from the query's memory budget; a partition that does not fit is
//! reported with its size and the function that needs it whole.
//!
//! The input comes from a sort (which spills) on the partition keys then the order keys.

mod frame;
mod functions;
mod rows;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, concat_batches, interleave};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, SchemaRef,
    TimestampMicrosecondType, DECIMAL128_MAX_PRECISION,
};
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};

pub(crate) use self::frame::{Bound, FrameSpec, Units};
pub(crate) use self::functions::RankKind;
use self::functions::{
    FrameAggregate, Offset, PartitionTotals, Pick, Ranking, Value, WindowEvaluator,
};
pub(crate) use self::rows::KeyValue;
use self::rows::{Chunk, FunctionInput, KeyColumn, Numbers, PartitionRows};
use crate::error::{EngineError, Result};
use crate::eval::{normalize_zero_array, PhysicalExpr};
use crate::logical::expr::AggregateFunction;
use crate::memory::{MemoryPart, MemoryReservation, SpillFile, SpillWriter};
use crate::metrics::OperatorMetrics;
use crate::physical::sort::PhysicalSortKey;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// What a window call computes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WindowKind {
    /// A ranking function (`ntile`'s bucket count: the second argument).
    Ranking(RankKind),
    /// `lag` by a constant number of rows (default: the second argument, if any).
    Lag { offset: usize, has_default: bool },
    /// `lead` likewise.
    Lead { offset: usize, has_default: bool },
    /// `first_value`.
    FirstValue,
    /// `last_value`.
    LastValue,
    /// `nth_value` with a constant n (1-based).
    NthValue(usize),
    /// An aggregate; `count(*)` has no argument.
    Aggregate(AggregateFunction),
}

/// One window call of a window operator.
#[derive(Clone, Debug)]
pub(crate) struct WindowCall {
    /// What it computes.
    pub(crate) kind: WindowKind,
    /// The value argument (absent for ranking functions and `count(*)`).
    pub(crate) value: Option<PhysicalExpr>,
    /// A per-row second argument (`ntile`'s bucket count, `lag`'s default).
    pub(crate) extra: Option<PhysicalExpr>,
    /// The frame.
    pub(crate) frame: FrameSpec,
    /// IGNORE NULLS.
    pub(crate) ignore_nulls: bool,
    /// The value argument's type.
    pub(crate) input_type: DataType,
    /// The result type.
    pub(crate) output_type: DataType,
    /// Text for EXPLAIN.
    pub(crate) display: String,
}

impl WindowCall {
    /// True when results can only be decided at the partition's end.
    fn needs_whole_partition(&self) -> bool {
        matches!(
            self.kind,
            WindowKind::Ranking(RankKind::PercentRank | RankKind::CumeDist | RankKind::Ntile)
        ) || (self.uses_frame() && self.frame.end == Bound::UnboundedFollowing)
    }

    /// The value function a call is evaluated as, if any.
    fn value_function(&self) -> Option<Pick> {
        match self.kind {
            WindowKind::FirstValue | WindowKind::Aggregate(AggregateFunction::First) => {
                Some(Pick::First)
            }
            WindowKind::LastValue | WindowKind::Aggregate(AggregateFunction::Last) => {
                Some(Pick::Last)
            }
            WindowKind::NthValue(n) => Some(Pick::Nth(n)),
            _ => None,
        }
    }

    /// Whether the call can be computed over a partition read back from disk, with what a
    /// first pass found: frames ending at the partition's end need the aggregate over all
    /// rows (removing rows from it as their start moves only for sums, counts, averages and
    /// variances) or the last value.
    fn computable_from_disk(&self) -> bool {
        if !self.uses_frame() || self.frame.end != Bound::UnboundedFollowing {
            return true;
        }
        match (self.value_function(), &self.kind) {
            (Some(Pick::Last), _) => true,
            (Some(_), _) => !self.ignore_nulls,
            (None, WindowKind::Aggregate(AggregateFunction::Min | AggregateFunction::Max)) => {
                self.frame.unbounded_start()
            }
            _ => true,
        }
    }

    fn uses_frame(&self) -> bool {
        matches!(
            self.kind,
            WindowKind::FirstValue
                | WindowKind::LastValue
                | WindowKind::NthValue(_)
                | WindowKind::Aggregate(_)
        )
    }

    fn evaluator(&self, index: usize) -> Result<Box<dyn WindowEvaluator>> {
        let value = |pick| -> Box<dyn WindowEvaluator> {
            Box::new(Value::new(
                index,
                pick,
                self.ignore_nulls,
                self.frame,
                self.output_type.clone(),
            ))
        };
        Ok(match &self.kind {
            WindowKind::Ranking(kind) => Box::new(Ranking::new(*kind, index)),
            WindowKind::Lag {
                offset,
                has_default,
            }
            | WindowKind::Lead {
                offset,
                has_default,
            } => Box::new(Offset::new(
                index,
                matches!(self.kind, WindowKind::Lead { .. }),
                *offset,
                self.ignore_nulls,
                *has_default,
                self.output_type.clone(),
            )),
            WindowKind::FirstValue | WindowKind::Aggregate(AggregateFunction::First) => {
                value(Pick::First)
            }
            WindowKind::LastValue | WindowKind::Aggregate(AggregateFunction::Last) => {
                value(Pick::Last)
            }
            WindowKind::NthValue(n) => value(Pick::Nth(*n)),
            WindowKind::Aggregate(func) => Box::new(FrameAggregate::new(
                index,
                *func,
                self.value.is_none(),
                self.frame,
                &self.input_type,
                self.output_type.clone(),
            )?),
        })
    }

    /// How its argument is read, per chunk.
    fn reads_numbers(&self) -> bool {
        matches!(self.kind, WindowKind::Aggregate(func) if func.takes_numbers())
    }

    fn reads_ordered(&self) -> bool {
        matches!(
            self.kind,
            WindowKind::Aggregate(AggregateFunction::Min | AggregateFunction::Max)
        )
    }
}

/// The `RANGE` key of a window whose frames have value offsets: its single `ORDER BY` key.
#[derive(Clone, Debug)]
pub(crate) struct RangeKey {
    /// Descending order (keys are negated so that they ascend).
    pub(crate) descending: bool,
}

/// Window functions with one partitioning and ordering over input sorted by both.
#[derive(Debug)]
pub(crate) struct WindowExec {
    input: Arc<dyn ExecutionPlan>,
    partition_by: Vec<PhysicalExpr>,
    order_by: Vec<PhysicalSortKey>,
    calls: Vec<WindowCall>,
    range_key: Option<RangeKey>,
    schema: SchemaRef,
    metrics: Arc<OperatorMetrics>,
}

impl WindowExec {
    /// Compute `calls` over `input` (sorted by `partition_by` then `order_by`); the output is
    /// the input's columns then one per call, as `schema` says.
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        partition_by: Vec<PhysicalExpr>,
        order_by: Vec<PhysicalSortKey>,
        calls: Vec<WindowCall>,
        range_key: Option<RangeKey>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            input,
            partition_by,
            order_by,
            calls,
            range_key,
            schema,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for WindowExec {
    fn name(&self) -> &str {
        "Window"
    }

    fn details(&self) -> String {
        self.calls
            .iter()
            .map(|c| c.display.clone())
            .collect::<Vec<_>>()
            .join(", ")
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

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let input = Arc::clone(&self.input).execute(partition, Arc::clone(&ctx))?;
        let reservation = MemoryReservation::new(
            &ctx.memory_pool,
            format!("Window[partition {partition}]"),
            MemoryPart::Rows,
            Some(Arc::clone(&self.metrics)),
        );
        let evaluators = self
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| c.evaluator(i))
            .collect::<Result<Vec<_>>>()?;
        let ordered = self
            .calls
            .iter()
            .map(|c| {
                c.reads_ordered()
                    .then(|| RowConverter::new(vec![SortField::new(c.input_type.clone())]))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stream = WindowStream {
            exec: Arc::clone(&self),
            ctx: Arc::clone(&ctx),
            pending: None,
            spilling: None,
            replay: None,
            input: Some(input),
            partition_keys: None,
            order_keys: None,
            last_partition: None,
            last_order: None,
            ordered,
            rows: PartitionRows::default(),
            evaluators,
            next_emit: 0,
            reservation,
            ready: std::collections::VecDeque::new(),
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }

    fn grows_with_input(&self) -> bool {
        self.calls.iter().any(WindowCall::needs_whole_partition)
    }

    fn can_spill(&self) -> bool {
        self.grows_with_input() && self.calls.iter().all(WindowCall::computable_from_disk)
    }
}

struct WindowStream {
    exec: Arc<WindowExec>,
    ctx: Arc<TaskContext>,
    input: Option<BatchStream>,
    /// Row-format converters of the partition and order keys (made on the first batch).
    partition_keys: Option<RowConverter>,
    order_keys: Option<RowConverter>,
    /// The last row's keys, to tell whether the next batch continues its partition or group.
    last_partition: Option<OwnedRow>,
    last_order: Option<OwnedRow>,
    /// Per call, a converter of its argument to row format (`min`, `max`).
    ordered: Vec<Option<RowConverter>>,
    rows: PartitionRows,
    evaluators: Vec<Box<dyn WindowEvaluator>>,
    /// The next row of the partition to compute.
    next_emit: usize,
    reservation: MemoryReservation,
    /// An input batch being cut into partitions.
    pending: Option<Prepared>,
    /// The current partition, too large to hold, going to disk.
    spilling: Option<Spilling>,
    /// A spilled partition being computed from disk.
    replay: Option<Replay>,
    /// Output batches computed but not yet handed out.
    ready: std::collections::VecDeque<RecordBatch>,
}

/// An input batch with what the window reads of it.
struct Prepared {
    batch: RecordBatch,
    /// Rows that start a partition, and rows that start a peer group.
    new_partition: Vec<bool>,
    new_group: Vec<bool>,
    keys: Option<KeyColumn>,
    values: Vec<Option<ArrayRef>>,
    extras: Vec<Option<ArrayRef>>,
    numbers: Vec<Option<Numbers>>,
    /// Bytes of the batch and its evaluated arguments.
    bytes: usize,
    /// The next row to take.
    next: usize,
}

/// A partition going to disk, and the first pass over it.
struct Spilling {
    writer: SpillWriter,
    /// The rows passing through the first pass (each chunk released once read).
    rows: PartitionRows,
    /// Per call: an aggregate over all rows (frames to the partition's end).
    aggregates: Vec<Option<FrameAggregate>>,
    /// Per call: the last (non-NULL) value so far (`last_value` to the partition's end).
    last: Vec<Option<Option<(usize, ArrayRef)>>>,
    /// Time spent writing.
    time: std::time::Duration,
}

/// A spilled partition read back.
struct Replay {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    /// The file (deleted, and its bytes returned to the spill quota, when dropped).
    _file: SpillFile,
    /// The last row's order keys, for peer groups across batches.
    last_order: Option<OwnedRow>,
}

impl Iterator for WindowStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(batch) = self.ready.pop_front() {
            return Some(Ok(batch));
        }
        loop {
            let mut out = Vec::new();
            let batch_size = self.ctx.batch_size.max(1);
            let step = self.step(&mut out).and_then(|finished| {
                if out.is_empty() {
                    return Ok((None, finished));
                }
                let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
                if rows <= batch_size {
                    // Small pieces (a partition each) leave together.
                    return Ok((Some(concat_batches(&self.exec.schema, &out)?), finished));
                }
                // Pieces of up to a batch leave in batches of about `batch_size` rows.
                let mut group: Vec<RecordBatch> = Vec::new();
                let mut group_rows = 0;
                for piece in out {
                    if group_rows + piece.num_rows() > batch_size && !group.is_empty() {
                        let batch = concat_batches(&self.exec.schema, &group)?;
                        self.ready.push_back(batch);
                        group.clear();
                        group_rows = 0;
                    }
                    group_rows += piece.num_rows();
                    group.push(piece);
                }
                if !group.is_empty() {
                    let batch = concat_batches(&self.exec.schema, &group)?;
                    self.ready.push_back(batch);
                }
                Ok((self.ready.pop_front(), finished))
            });
            match step {
                Ok((Some(batch), _)) => return Some(Ok(batch)),
                Ok((None, true)) => {
                    self.reservation.free();
                    return None;
                }
                Ok((None, false)) => continue,
                Err(e) => {
                    self.input = None;
                    self.pending = None;
                    self.replay = None;
                    self.spilling = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl WindowStream {
    /// Make progress: replay a spilled partition, cut the pending batch, or read the next.
    /// Returns true once everything has been emitted.
    fn step(&mut self, out: &mut Vec<RecordBatch>) -> Result<bool> {
        if let Some(replay) = self.replay.as_mut() {
            match replay.batches.next() {
                Some(batch) => {
                    let batch = batch?;
                    self.replay_batch(&batch, out)?;
                }
                None => {
                    self.replay = None;
                    self.finish_partition(out)?;
                }
            }
            return Ok(false);
        }
        if self.pending.is_some() {
            self.take_pending(out)?;
            return Ok(false);
        }
        let Some(input) = self.input.as_mut() else {
            return Ok(true);
        };
        match input.next() {
            Some(Ok(batch)) => {
                self.exec.metrics.add_rows_in(batch.num_rows());
                if batch.num_rows() > 0 {
                    let mut last_partition = self.last_partition.take();
                    let mut last_order = self.last_order.take();
                    let prepared = self.prepare(batch, Some(&mut last_partition), &mut last_order);
                    self.last_partition = last_partition;
                    self.last_order = last_order;
                    self.pending = Some(prepared?);
                    self.take_pending(out)?;
                }
            }
            Some(Err(e)) => return Err(e),
            None => {
                self.input = None;
                self.end_partition(out)?;
            }
        }
        Ok(false)
    }

    /// Rows of `keys` in row format.
    fn key_rows(converter: &mut Option<RowConverter>, keys: &[ArrayRef]) -> Result<Option<Rows>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let converter = match converter {
            Some(c) => c,
            None => {
                let fields = keys
                    .iter()
                    .map(|k| SortField::new(k.data_type().clone()))
                    .collect();
                converter.insert(RowConverter::new(fields)?)
            }
        };
        Ok(Some(converter.convert_columns(keys)?))
    }

    /// Where rows of `batch` start something new: `starts[i]` when row `i`'s keys differ
    /// from the previous row's (the first row is compared with the last of the batch before).
    fn starts(rows: Option<&Rows>, last: &mut Option<OwnedRow>, n: usize) -> Vec<bool> {
        let Some(rows) = rows else {
            return vec![false; n];
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let new = if i == 0 {
                last.as_ref().is_none_or(|l| l.row() != rows.row(0))
            } else {
                rows.row(i) != rows.row(i - 1)
            };
            out.push(new);
        }
        if n > 0 {
            *last = Some(rows.row(n - 1).owned());
        }
        out
    }

    /// Evaluate what the window reads of `batch`: keys, boundaries, arguments.
    fn prepare(
        &mut self,
        batch: RecordBatch,
        last_partition: Option<&mut Option<OwnedRow>>,
        last_order: &mut Option<OwnedRow>,
    ) -> Result<Prepared> {
        let n = batch.num_rows();
        let exec = Arc::clone(&self.exec);
        // Without `last_partition`, the rows are known to be of one partition.
        let partition_exprs = if last_partition.is_some() {
            exec.partition_by.as_slice()
        } else {
            &[]
        };
        let partition_columns = partition_exprs
            .iter()
            .map(|e| normalize_zero_array(e.evaluate(&batch)?.into_array(n)?))
            .collect::<Result<Vec<_>>>()?;
        let order_columns = exec
            .order_by
            .iter()
            .map(|k| normalize_zero_array(k.expr.evaluate(&batch)?.into_array(n)?))
            .collect::<Result<Vec<_>>>()?;
        let partition_rows = Self::key_rows(&mut self.partition_keys, &partition_columns)?;
        let order_rows = Self::key_rows(&mut self.order_keys, &order_columns)?;
        let new_partition = match last_partition {
            Some(last) => Self::starts(partition_rows.as_ref(), last, n),
            None => vec![false; n],
        };
        let mut new_group = Self::starts(order_rows.as_ref(), last_order, n);
        for (g, p) in new_group.iter_mut().zip(&new_partition) {
            *g |= *p;
        }
        let keys = match &exec.range_key {
            Some(range) => Some(range_keys(&order_columns[0], range.descending)?),
            None => None,
        };
        let evaluate_each = |exprs: Vec<Option<&PhysicalExpr>>| {
            exprs
                .into_iter()
                .map(|e| e.map(|e| e.evaluate(&batch)?.into_array(n)).transpose())
                .collect::<Result<Vec<_>>>()
        };
        let values = evaluate_each(exec.calls.iter().map(|c| c.value.as_ref()).collect())?;
        let extras = evaluate_each(exec.calls.iter().map(|c| c.extra.as_ref()).collect())?;
        let numbers = exec
            .calls
            .iter()
            .zip(&values)
            .map(|(c, v)| match v {
                Some(v) if c.reads_numbers() => numbers_of(v).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut bytes = batch.get_array_memory_size();
        for a in values.iter().chain(&extras).flatten() {
            bytes += a.get_array_memory_size();
        }
        Ok(Prepared {
            batch,
            new_partition,
            new_group,
            keys,
            values,
            extras,
            numbers,
            bytes,
            next: 0,
        })
    }

    /// Rows `start..stop` of a prepared batch as a chunk (numbered when pushed).
    fn chunk(&mut self, p: &Prepared, start: usize, stop: usize) -> Result<Chunk> {
        let len = stop - start;
        let n = p.batch.num_rows();
        let mut inputs = Vec::with_capacity(self.exec.calls.len());
        for f in 0..self.exec.calls.len() {
            let value = p.values[f].as_ref().map(|v| v.slice(start, len));
            let ordered = match (&mut self.ordered[f], &value) {
                (Some(converter), Some(v)) => Some(converter.convert_columns(&[Arc::clone(v)])?),
                _ => None,
            };
            let numbers = p.numbers[f].as_ref().map(|n| match n {
                Numbers::Exact(a) => Numbers::Exact(a.slice(start, len)),
                Numbers::Float(a) => Numbers::Float(a.slice(start, len)),
            });
            inputs.push(FunctionInput {
                values: value,
                numbers,
                ordered,
                extra: p.extras[f].as_ref().map(|e| e.slice(start, len)),
            });
        }
        let ordered_bytes: usize = inputs
            .iter()
            .filter_map(|i| i.ordered.as_ref().map(Rows::size))
            .sum();
        Ok(Chunk {
            start: 0,
            batch: p.batch.slice(start, len),
            groups: vec![],
            keys: p.keys.as_ref().map(|k| match k {
                KeyColumn::Exact(v) => KeyColumn::Exact(v[start..stop].to_vec()),
                KeyColumn::Float(v) => KeyColumn::Float(v[start..stop].to_vec()),
            }),
            inputs,
            bytes: p.bytes * len / n + ordered_bytes + if p.keys.is_some() { 24 * len } else { 0 },
        })
    }

    /// Cut the pending batch at partition changes and compute what each part decides. Stops
    /// early when a partition that went to disk ends: it is computed first.
    fn take_pending(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        let n = p.batch.num_rows();
        while p.next < n {
            let start = p.next;
            if p.new_partition[start] && (self.rows.end() > 0 || self.spilling.is_some()) {
                p.new_partition[start] = false;
                self.end_partition(out)?;
                if self.replay.is_some() {
                    self.pending = Some(p);
                    return Ok(());
                }
            }
            let mut stop = start + 1;
            while stop < n && !p.new_partition[stop] {
                stop += 1;
            }
            let chunk = self.chunk(&p, start, stop)?;
            if self.spilling.is_some() {
                self.spill_chunk(chunk)?;
            } else {
                self.rows.push(chunk, &p.new_group[start..stop]);
                self.reserve()?;
                if self.spilling.is_none() {
                    self.drain(out)?;
                }
            }
            p.next = stop;
        }
        Ok(())
    }

    /// The current partition has ended: compute what is left of it, or start reading it back
    /// if it went to disk.
    fn end_partition(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        let Some(spilling) = self.spilling.take() else {
            return self.finish_partition(out);
        };
        let Spilling {
            writer,
            rows,
            aggregates,
            last,
            time,
        } = spilling;
        let started = std::time::Instant::now();
        let file = writer.finish()?;
        self.exec.metrics.add_spill(
            file.rows(),
            file.raw_bytes(),
            file.bytes(),
            time + started.elapsed(),
        );
        self.rows.reset();
        self.rows.set_known_total(rows.end());
        for ((e, aggregate), last) in self.evaluators.iter_mut().zip(aggregates).zip(last) {
            e.reset();
            e.set_totals(PartitionTotals {
                aggregate: aggregate.map(FrameAggregate::into_state),
                last: last.flatten(),
            });
        }
        self.next_emit = 0;
        self.replay = Some(Replay {
            batches: Box::new(file.read()?),
            _file: file,
            last_order: None,
        });
        Ok(())
    }

    /// One batch of a spilled partition, read back.
    fn replay_batch(&mut self, batch: &RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        // All rows are of one partition: only peer groups are told apart.
        let mut last_order = self.replay.as_mut().and_then(|r| r.last_order.take());
        let prepared = self.prepare(batch.clone(), None, &mut last_order);
        if let Some(replay) = self.replay.as_mut() {
            replay.last_order = last_order;
        }
        let prepared = prepared?;
        let chunk = self.chunk(&prepared, 0, n)?;
        self.rows.push(chunk, &prepared.new_group);
        self.reserve()?;
        self.drain(out)
    }
    /// Compute every row whose results are decided, emit them, and release what no later
    /// row needs.
    /// Rows decided at once (a whole partition when its end arrives) leave in batches of at
    /// most `batch_size` rows.
    fn drain(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        let batch_size = self.ctx.batch_size.max(1);
        loop {
            let first = self.next_emit;
            let mut blocked = false;
            'rows: while self.next_emit < self.rows.end() && self.next_emit - first < batch_size {
                let i = self.next_emit;
                for e in &mut self.evaluators {
                    if !e.ready(i, &self.rows)? {
                        blocked = true;
                        break 'rows;
                    }
                }
                for e in &mut self.evaluators {
                    e.evaluate(i, &self.rows)?;
                }
                self.next_emit += 1;
            }
            if self.next_emit > first {
                let slices = self.rows.slices(first, self.next_emit);
                let input = concat_batches(&self.exec.input.schema(), &slices)?;
                let mut columns = input.columns().to_vec();
                for e in &mut self.evaluators {
                    columns.push(e.take_output(&self.rows)?);
                }
                out.push(RecordBatch::try_new(
                    Arc::clone(&self.exec.schema),
                    columns,
                )?);
            }
            if blocked || self.next_emit == first || self.next_emit >= self.rows.end() {
                break;
            }
        }
        let floor = self
            .evaluators
            .iter()
            .map(|e| e.needed_from())
            .min()
            .unwrap_or(self.next_emit)
            .min(self.next_emit);
        for e in &mut self.evaluators {
            e.before_release(floor, &self.rows)?;
        }
        self.rows.release(floor);
        Ok(())
    }

    /// The partition has ended: compute its remaining rows and start over.
    fn finish_partition(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        if self.rows.end() == 0 {
            return Ok(());
        }
        self.rows.set_complete();
        self.drain(out)?;
        if self.next_emit != self.rows.end() {
            return Err(EngineError::Internal(format!(
                "window partition ended with rows {}..{} undecided",
                self.next_emit,
                self.rows.end()
            )));
        }
        self.rows.reset();
        self.next_emit = 0;
        for e in &mut self.evaluators {
            e.reset();
        }
        self.reservation.shrink(self.reservation.size());
        Ok(())
    }

    /// Account for the rows held. When they do not fit and a function needs the whole
    /// partition, the partition goes to disk (see [`Spilling`]); otherwise the error says
    /// how many rows one partition's frames hold.
    fn reserve(&mut self) -> Result<()> {
        let (consumer, requested, reserved, limit) = match self
            .reservation
            .try_resize_or_spill_others(self.rows.bytes())
        {
            Ok(()) => return Ok(()),
            Err(EngineError::ResourcesExhausted {
                consumer,
                requested,
                reserved,
                limit,
            }) => (consumer, requested, reserved, limit),
            Err(e) => return Err(e),
        };
        let whole: Vec<&WindowCall> = self
            .exec
            .calls
            .iter()
            .filter(|c| c.needs_whole_partition())
            .collect();
        let unspillable = self.exec.calls.iter().find(|c| !c.computable_from_disk());
        if self.replay.is_none() && !whole.is_empty() && unspillable.is_none() {
            return self.start_spilling();
        }
        let why = match (whole.first(), unspillable) {
            (Some(_), Some(c)) => format!(
                "{} cannot be computed from disk, so the partition must fit",
                c.display
            ),
            (Some(c), None) => format!("{} needs the whole partition", c.display),
            (None, _) => "the rows its frames span".to_string(),
        };
        Err(EngineError::ResourcesExhausted {
            consumer: format!(
                "{consumer}: {} rows of one window partition are held ({why})",
                self.rows.end() - self.rows.chunks().front().map_or(0, |c| c.start)
            ),
            requested,
            reserved,
            limit,
        })
    }

    /// Send the current partition to disk: the rows held so far, then the rest as it comes;
    /// a first pass over them computes what frames reaching the partition's end need.
    fn start_spilling(&mut self) -> Result<()> {
        debug_assert_eq!(self.next_emit, 0, "a partition going to disk emitted rows");
        let writer = self
            .ctx
            .spill
            .create("window-partition", &self.exec.input.schema())?;
        let mut aggregates = Vec::with_capacity(self.exec.calls.len());
        let mut last = Vec::with_capacity(self.exec.calls.len());
        for (i, call) in self.exec.calls.iter().enumerate() {
            let to_end = call.uses_frame() && call.frame.end == Bound::UnboundedFollowing;
            aggregates.push(match &call.kind {
                WindowKind::Aggregate(func) if to_end && call.value_function().is_none() => {
                    Some(FrameAggregate::new(
                        i,
                        *func,
                        call.value.is_none(),
                        FrameSpec {
                            units: Units::Rows,
                            start: Bound::UnboundedPreceding,
                            end: Bound::CurrentRow,
                        },
                        &call.input_type,
                        call.output_type.clone(),
                    )?)
                }
                _ => None,
            });
            last.push((to_end && call.value_function() == Some(Pick::Last)).then_some(None));
        }
        let spilling = Spilling {
            writer,
            rows: PartitionRows::default(),
            aggregates,
            last,
            time: std::time::Duration::ZERO,
        };
        let held = std::mem::take(&mut self.rows);
        for e in &mut self.evaluators {
            e.reset();
        }
        self.reservation.shrink(self.reservation.size());
        self.spilling = Some(spilling);
        for chunk in held.into_chunks() {
            self.spill_chunk(chunk)?;
        }
        Ok(())
    }

    /// Write rows of a partition going to disk, after the first pass has read them.
    fn spill_chunk(&mut self, chunk: Chunk) -> Result<()> {
        let Some(spilling) = self.spilling.as_mut() else {
            return Err(EngineError::Internal(
                "window rows spilled outside a spilling partition".into(),
            ));
        };
        let flags = vec![false; chunk.len()];
        spilling.rows.push(chunk, &flags);
        let end = spilling.rows.end();
        let Some(chunk) = spilling.rows.chunks().back() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        spilling.writer.write(&chunk.batch)?;
        spilling.time += started.elapsed();
        for (i, last) in spilling.last.iter_mut().enumerate() {
            let Some(last) = last else { continue };
            let values = chunk.inputs[i].values()?;
            let ignore_nulls = self.exec.calls[i].ignore_nulls;
            let found = (0..chunk.len())
                .rev()
                .find(|&r| !ignore_nulls || values.is_valid(r));
            if let Some(r) = found {
                *last = Some((chunk.start + r, interleave(&[values.as_ref()], &[(0, r)])?));
            }
        }
        for aggregate in spilling.aggregates.iter_mut().flatten() {
            aggregate.accumulate(&spilling.rows, end)?;
        }
        spilling.rows.release(end);
        Ok(())
    }
}

/// An argument of a sum, average or variance as numbers: floats as `f64`, integers and
/// decimals as unscaled 128-bit values.
fn numbers_of(values: &ArrayRef) -> Result<Numbers> {
    Ok(match values.data_type() {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Numbers::Float(
            cast(values, &DataType::Float64)?
                .as_primitive::<Float64Type>()
                .clone(),
        ),
        DataType::Decimal128(_, s) => Numbers::Exact(
            cast(values, &DataType::Decimal128(DECIMAL128_MAX_PRECISION, *s))?
                .as_primitive::<Decimal128Type>()
                .clone(),
        ),
        DataType::Null => Numbers::Exact(
            cast(values, &DataType::Decimal128(DECIMAL128_MAX_PRECISION, 0))?
                .as_primitive::<Decimal128Type>()
                .clone(),
        ),
        t if t.is_integer() => Numbers::Exact(
            cast(values, &DataType::Decimal128(DECIMAL128_MAX_PRECISION, 0))?
                .as_primitive::<Decimal128Type>()
                .clone(),
        ),
        other => {
            return Err(EngineError::Type(format!(
                "window aggregate over {other} is not numeric"
            )))
        }
    })
}

/// The `RANGE` key as numbers that ascend in the window's order.
fn range_keys(key: &ArrayRef, descending: bool) -> Result<KeyColumn> {
    let sign = if descending { -1 } else { 1 };
    Ok(match key.data_type() {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let f = cast(key, &DataType::Float64)?;
            let f = f.as_primitive::<Float64Type>();
            KeyColumn::Float(f.iter().map(|v| v.map(|v| v * sign as f64)).collect())
        }
        DataType::Decimal128(_, _) => {
            let d = key.as_primitive::<Decimal128Type>();
            KeyColumn::Exact(d.iter().map(|v| v.map(|v| v * sign)).collect())
        }
        DataType::Date32 => {
            let d = key.as_primitive::<Date32Type>();
            KeyColumn::Exact(d.iter().map(|v| v.map(|v| v as i128 * sign)).collect())
        }
        DataType::Timestamp(_, _) => {
            let t = cast(
                key,
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            )?;
            let t = t.as_primitive::<TimestampMicrosecondType>();
            KeyColumn::Exact(t.iter().map(|v| v.map(|v| v as i128 * sign)).collect())
        }
        t if t.is_integer() => {
            let i = cast(key, &DataType::Int64)?;
            let i = i.as_primitive::<Int64Type>();
            KeyColumn::Exact(i.iter().map(|v| v.map(|v| v as i128 * sign)).collect())
        }
        other => return Err(EngineError::Internal(format!("RANGE key of type {other}"))),
    })
}
