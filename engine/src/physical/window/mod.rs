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
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, SchemaRef,
    TimestampMicrosecondType, DECIMAL128_MAX_PRECISION,
};
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};

pub(crate) use self::frame::{Bound, FrameSpec, Units};
use self::functions::{FrameAggregate, Offset, Pick, RankKind, Ranking, Value, WindowEvaluator};
pub(crate) use self::rows::KeyValue;
use self::rows::{Chunk, FunctionInput, KeyColumn, Numbers, PartitionRows};
use crate::error::{EngineError, Result};
use crate::eval::{normalize_zero_array, PhysicalExpr};
use crate::logical::expr::AggregateFunction;
use crate::memory::MemoryReservation;
use crate::metrics::OperatorMetrics;
use crate::physical::sort::PhysicalSortKey;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// What a window call computes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WindowKind {
    /// `row_number`.
    RowNumber,
    /// `rank`.
    Rank,
    /// `dense_rank`.
    DenseRank,
    /// `percent_rank`.
    PercentRank,
    /// `cume_dist`.
    CumeDist,
    /// `ntile` (bucket count: the second argument).
    Ntile,
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
            WindowKind::PercentRank | WindowKind::CumeDist | WindowKind::Ntile
        ) || (self.uses_frame() && self.frame.end == Bound::UnboundedFollowing)
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
        let ranking = |kind| -> Box<dyn WindowEvaluator> { Box::new(Ranking::new(kind, index)) };
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
            WindowKind::RowNumber => ranking(RankKind::RowNumber),
            WindowKind::Rank => ranking(RankKind::Rank),
            WindowKind::DenseRank => ranking(RankKind::DenseRank),
            WindowKind::PercentRank => ranking(RankKind::PercentRank),
            WindowKind::CumeDist => ranking(RankKind::CumeDist),
            WindowKind::Ntile => ranking(RankKind::Ntile),
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
        matches!(
            self.kind,
            WindowKind::Aggregate(
                AggregateFunction::Sum
                    | AggregateFunction::Avg
                    | AggregateFunction::StddevSamp
                    | AggregateFunction::StddevPop
                    | AggregateFunction::VarSamp
                    | AggregateFunction::VarPop
            )
        )
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
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }

    fn grows_with_input(&self) -> bool {
        self.calls.iter().any(WindowCall::needs_whole_partition)
    }
}

struct WindowStream {
    exec: Arc<WindowExec>,
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
}

impl Iterator for WindowStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let input = self.input.as_mut()?;
            let mut out = Vec::new();
            let step = match input.next() {
                Some(Ok(batch)) => {
                    self.exec.metrics.add_rows_in(batch.num_rows());
                    self.push_batch(&batch, &mut out)
                }
                Some(Err(e)) => Err(e),
                None => {
                    self.input = None;
                    self.finish_partition(&mut out)
                }
            };
            let batch = step.and_then(|()| {
                if out.is_empty() {
                    return Ok(None);
                }
                Ok(Some(concat_batches(&self.exec.schema, &out)?))
            });
            match batch {
                Ok(Some(b)) => return Some(Ok(b)),
                Ok(None) if self.input.is_none() => {
                    self.reservation.free();
                    return None;
                }
                Ok(None) => continue,
                Err(e) => {
                    self.input = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl WindowStream {
    /// Rows of `keys` in row format.
    fn key_rows(converter: &mut Option<RowConverter>, keys: &[ArrayRef]) -> Result<Option<Rows>> {
        if keys.is_empty() {
            return Ok(None);
        }
        if converter.is_none() {
            let fields = keys
                .iter()
                .map(|k| SortField::new(k.data_type().clone()))
                .collect();
            *converter = Some(RowConverter::new(fields)?);
        }
        let converter = converter.as_mut().expect("made above");
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

    fn push_batch(&mut self, batch: &RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let exec = Arc::clone(&self.exec);
        let partition_columns = exec
            .partition_by
            .iter()
            .map(|e| normalize_zero_array(e.evaluate(batch)?.into_array(n)?))
            .collect::<Result<Vec<_>>>()?;
        let order_columns = exec
            .order_by
            .iter()
            .map(|k| normalize_zero_array(k.expr.evaluate(batch)?.into_array(n)?))
            .collect::<Result<Vec<_>>>()?;
        let partition_rows = Self::key_rows(&mut self.partition_keys, &partition_columns)?;
        let order_rows = Self::key_rows(&mut self.order_keys, &order_columns)?;
        let new_partition = Self::starts(partition_rows.as_ref(), &mut self.last_partition, n);
        let mut new_group = Self::starts(order_rows.as_ref(), &mut self.last_order, n);
        for (g, p) in new_group.iter_mut().zip(&new_partition) {
            *g |= *p;
        }
        let keys = match &exec.range_key {
            Some(range) => Some(range_keys(&order_columns[0], range.descending)?),
            None => None,
        };
        let values = exec
            .calls
            .iter()
            .map(|c| {
                c.value
                    .as_ref()
                    .map(|e| e.evaluate(batch)?.into_array(n))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        let extras = exec
            .calls
            .iter()
            .map(|c| {
                c.extra
                    .as_ref()
                    .map(|e| e.evaluate(batch)?.into_array(n))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
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

        let mut start = 0;
        while start < n {
            let mut stop = start + 1;
            while stop < n && !new_partition[stop] {
                stop += 1;
            }
            if new_partition[start] && self.rows.end() > 0 {
                self.finish_partition(out)?;
            }
            let len = stop - start;
            let mut inputs = Vec::with_capacity(exec.calls.len());
            for (f, call) in exec.calls.iter().enumerate() {
                let value = values[f].as_ref().map(|v| v.slice(start, len));
                let ordered = match (&mut self.ordered[f], &value) {
                    (Some(converter), Some(v)) => {
                        Some(converter.convert_columns(&[Arc::clone(v)])?)
                    }
                    _ => None,
                };
                let numbers = numbers[f].as_ref().map(|n| match n {
                    Numbers::Exact(a) => Numbers::Exact(a.slice(start, len)),
                    Numbers::Float(a) => Numbers::Float(a.slice(start, len)),
                });
                let _ = call;
                inputs.push(FunctionInput {
                    values: value,
                    numbers,
                    ordered,
                    extra: extras[f].as_ref().map(|e| e.slice(start, len)),
                });
            }
            let ordered_bytes: usize = inputs
                .iter()
                .filter_map(|i| i.ordered.as_ref().map(Rows::size))
                .sum();
            let chunk = Chunk {
                start: 0,
                batch: batch.slice(start, len),
                groups: vec![],
                keys: keys.as_ref().map(|k| match k {
                    KeyColumn::Exact(v) => KeyColumn::Exact(v[start..stop].to_vec()),
                    KeyColumn::Float(v) => KeyColumn::Float(v[start..stop].to_vec()),
                }),
                inputs,
                bytes: bytes * len / n + ordered_bytes + if keys.is_some() { 24 * len } else { 0 },
            };
            self.rows.push(chunk, &new_group[start..stop]);
            self.reserve()?;
            self.drain(out)?;
            start = stop;
        }
        Ok(())
    }

    /// Account for the rows held (and fail, naming why they are held, when they do not fit).
    fn reserve(&mut self) -> Result<()> {
        match self
            .reservation
            .try_resize_or_spill_others(self.rows.bytes())
        {
            Ok(()) => Ok(()),
            Err(EngineError::ResourcesExhausted {
                consumer,
                requested,
                reserved,
                limit,
            }) => {
                let whole: Vec<&str> = self
                    .exec
                    .calls
                    .iter()
                    .filter(|c| c.needs_whole_partition())
                    .map(|c| c.display.as_str())
                    .collect();
                let why = if whole.is_empty() {
                    "the rows its frames span".to_string()
                } else {
                    format!("{} needs the whole partition", whole.join(", "))
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
            Err(e) => Err(e),
        }
    }

    /// Compute every row whose results are decided, emit them, and release what no later
    /// row needs.
    fn drain(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        let first = self.next_emit;
        'rows: while self.next_emit < self.rows.end() {
            let i = self.next_emit;
            for e in &mut self.evaluators {
                if !e.ready(i, &self.rows)? {
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
