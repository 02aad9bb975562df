//! Hash aggregation (GROUP BY and global aggregates).
//!
//! Runs in one of three modes:
//!
//! * `Partial`: per input partition, groups raw rows and emits one row of *state* per group;
//! * `Final`: merges partial states arriving from all partitions (after a coalesce) and emits
//!   the final values;
//! * `Single`: both at once on a single stream (used for `count(DISTINCT ...)`, whose state is a
//!   set that is not merged).
//!
//! The table's memory is reserved from the query pool after each batch. Under a budget:
//!
//! * a partial aggregate emits its state early (the final aggregate merges it);
//! * a final or single aggregate **spills**: it writes its groups, as partial states, into 64
//!   hash partitions on disk and starts over with an empty table. When the input ends, the
//!   partitions are merged one at a time; a partition still too large for the budget is split
//!   again with other hash bits (up to [`MAX_SPILL_LEVEL`] times).
//!
//! ```text
//!   input ──► table ──(over budget)──► state batch ──hash(keys)──► partition files 0..63
//!                                                                        │ one at a time
//!   output ◄── final values ◄── table ◄── merge states ◄─────────────────┘
//! ```
//!
//! When the table spills while it holds almost as many groups as it was fed rows (a group-by
//! on a key with few repeats, such as one group per order), hashing the rest of the input into
//! a large table would only postpone the same spill: each probe of a table far larger than
//! the caches costs several memory round trips. The aggregate then stops hashing the input
//! and sends its rows straight to the partitions (as state rows), buffering
//! [`DIRECT_SPILL_BYTES`] at a time; each partition is small enough to merge in a table that
//! stays in cache. Under a budget such a table does so as soon as it outgrows
//! `EARLY_DIRECT_SPILL_BYTES`, even if the budget would let it grow further.
//!
//! Over a scan whose row groups hold disjoint ranges of a group key (the footer statistics
//! show it; `lineitem` is written in `l_orderkey` order), the aggregate runs in a single phase
//! on each partition, *segmented*: the scan hands each partition whole row groups and reports
//! when it moves on to the next ([`KeySegments`]). No other row group holds a key of the one
//! just left, so its groups are final: they are emitted and the table starts over. The table
//! holds one row group's groups at a time, and there is no repartition and no second phase.
//! Rows whose key is a boundary value shared with another row group go to a side table whose
//! states are merged across partitions once every holder of the value has delivered them
//! (see [`crate::physical::key_segments`]). A segment whose groups outgrow the budget spills
//! as above and is merged before the next segment starts.
//!
//! The optimizer rewrites `DISTINCT` aggregates into ordinary group-bys
//! (`optimizer::distinct_aggregate`). Only where it cannot does a single-phase aggregate keep
//! `count(DISTINCT x)` value sets, which do not spill; a budget too small for them fails with
//! an error naming the operator.

pub mod accumulator;
pub mod group_values;
mod interner;
mod packed_groups;
mod pair_groups;
mod primitive_groups;
mod spill;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{EngineError, Result};
use crate::eval::{normalize_zero_array, ExprCache, PhysicalExpr};
use crate::logical::expr::AggregateFunction;
use crate::memory::referenced_bytes;
use crate::memory::{MemoryReservation, SpillFile};
use crate::metrics::OperatorMetrics;
use crate::physical::key_segments::KeySegments;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};
use accumulator::{create_accumulator, state_fields, GroupAccumulator};
use group_values::GroupValues;
use spill::{split_pieces, SpillPartitions, Written};

/// How many times a spilled partition may be split again before the aggregate gives up.
pub const MAX_SPILL_LEVEL: u32 = 4;

/// A partial aggregate emits its state and starts over once it holds this many groups.
const PARTIAL_FLUSH_GROUPS: usize = 256 * 1024;

/// Rows a partial aggregate sees before it may decide that grouping does not pay.
const PASS_THROUGH_MIN_ROWS: usize = 64 * 1024;

/// Input bytes a spilling aggregate that partitions its input directly buffers before it
/// writes them to the partitions (at most half its share of the budget).
pub const DIRECT_SPILL_BYTES: usize = 32 * 1024 * 1024;

/// A spilled partition is merged in pieces of at most about this many rows each when it fits
/// in memory (see `AggregateStream::merge_in_pieces`), in at most `1 << MAX_MERGE_PIECE_BITS`.
const MERGE_PIECE_ROWS: usize = 4096;
const MAX_MERGE_PIECE_BITS: u32 = 4;

/// Under a budget, a table of the input larger than this that holds more than one group per
/// `DIRECT_SPILL_DIVISOR` rows spills and partitions the rest of its input directly, even
/// when the budget would let it grow: at SF10 the (`l_partkey`, `l_suppkey`) group-by under
/// 1GB took 7% less time and 270 MiB instead of 585 MiB of peak RSS.
const EARLY_DIRECT_SPILL_BYTES: usize = 64 * 1024 * 1024;

/// A spilling table holding more than this many groups per `DIRECT_SPILL_DIVISOR` rows fed to
/// it (fewer than two rows a group) sends the rest of the input straight to the partitions.
const DIRECT_SPILL_DIVISOR: usize = 2;

/// Which half of a two-phase aggregation an operator performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateMode {
    /// Raw rows in, states out.
    Partial,
    /// States in, final values out.
    Final,
    /// Raw rows in, final values out.
    Single,
}

/// One aggregate call.
#[derive(Clone, Debug)]
pub struct AggregateSpec {
    /// The function.
    pub func: AggregateFunction,
    /// `DISTINCT` inside the call.
    pub distinct: bool,
    /// Argument expressions over the raw input (empty for `count(*)`).
    pub args: Vec<PhysicalExpr>,
    /// Type of the (first) argument; `Null` for `count(*)`.
    pub input_type: DataType,
    /// Type of the final value.
    pub output_type: DataType,
    /// Number of state columns.
    pub state_width: usize,
    /// Display name.
    pub name: String,
}

/// Hash aggregate operator.
#[derive(Debug)]
pub struct AggregateExec {
    mode: AggregateMode,
    input: Arc<dyn ExecutionPlan>,
    group_exprs: Vec<PhysicalExpr>,
    group_types: Vec<DataType>,
    group_names: Vec<String>,
    aggregates: Vec<AggregateSpec>,
    schema: SchemaRef,
    /// Group keys followed by the partial state of each aggregate.
    state_schema: SchemaRef,
    /// Single phase per input partition, emitting each row group's groups when the scan
    /// moves past it: the scan's tracker and the index of the group key it segments by.
    segments: Option<(Arc<KeySegments>, usize)>,
    /// Spilled partitions merged piece by piece, over all streams (for the metrics).
    merged_in_pieces: AtomicUsize,
    metrics: Arc<OperatorMetrics>,
}

impl AggregateExec {
    /// Create an aggregate. In `Final` mode `group_exprs` must be the first input columns and
    /// the states follow in aggregate order.
    pub fn new(
        mode: AggregateMode,
        input: Arc<dyn ExecutionPlan>,
        group_exprs: Vec<PhysicalExpr>,
        group_types: Vec<DataType>,
        group_names: Vec<String>,
        aggregates: Vec<AggregateSpec>,
        schema: SchemaRef,
    ) -> Self {
        let mut fields: Vec<Field> = group_types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("group_{i}"), t.clone(), true))
            .collect();
        for spec in &aggregates {
            // Distinct counts have no mergeable state; their aggregates never spill.
            if let Ok(state) = state_fields(spec.func, &spec.input_type, &spec.name) {
                fields.extend(state);
            }
        }
        Self {
            state_schema: Arc::new(Schema::new(fields)),
            mode,
            input,
            group_exprs,
            group_types,
            group_names,
            aggregates,
            schema,
            segments: None,
            merged_in_pieces: AtomicUsize::new(0),
            metrics: Arc::default(),
        }
    }

    /// Aggregate each input partition on its own, segment by segment (single mode only): the
    /// input's batches come from whole row groups whose ranges of group key `key` are disjoint
    /// but for shared boundary values, and `segments` says which row group each came from.
    pub fn with_key_segments(mut self, segments: Arc<KeySegments>, key: usize) -> Self {
        self.segments = Some((segments, key));
        self
    }
}

impl AggregateExec {
    /// Whether this aggregate writes its table to disk when it outgrows the budget: final and
    /// single-phase group-bys whose states merge (no distinct value sets).
    fn spillable(&self) -> bool {
        self.mode != AggregateMode::Partial
            && !self.group_exprs.is_empty()
            && !self.aggregates.iter().any(|a| a.distinct)
    }
}

impl ExecutionPlan for AggregateExec {
    fn name(&self) -> &str {
        match self.mode {
            AggregateMode::Partial => "HashAggregate(partial)",
            AggregateMode::Final => "HashAggregate(final)",
            AggregateMode::Single => "HashAggregate",
        }
    }

    fn details(&self) -> String {
        let aggs: Vec<&str> = self.aggregates.iter().map(|a| a.name.as_str()).collect();
        let segmented = match &self.segments {
            Some((s, _)) => format!(" per_row_group_of={}", s.column),
            None => String::new(),
        };
        format!(
            "group_by=[{}] aggregates=[{}]{segmented}",
            self.group_names.join(", "),
            aggs.join(", ")
        )
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.input)]
    }

    fn output_partitions(&self) -> usize {
        match self.mode {
            AggregateMode::Partial | AggregateMode::Final => self.input.output_partitions(),
            AggregateMode::Single if self.segments.is_some() => self.input.output_partitions(),
            AggregateMode::Single => 1,
        }
    }

    fn grows_with_input(&self) -> bool {
        // A partial aggregate holds at most its share of the budget: it emits its groups
        // early instead of growing (see `soft_limit`).
        let partial_groups =
            self.mode == AggregateMode::Partial && !self.aggregates.iter().any(|a| a.distinct);
        !partial_groups
            && (!self.group_exprs.is_empty() || self.aggregates.iter().any(|a| a.distinct))
    }

    fn can_spill(&self) -> bool {
        self.spillable()
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let input = Arc::clone(&self.input).execute(partition, Arc::clone(&ctx))?;
        let consumer = format!("{}[partition {partition}]", self.name());
        let metrics = Some(Arc::clone(&self.metrics));
        let reservation = if self.spillable() && self.mode != AggregateMode::Partial {
            MemoryReservation::new_spillable(&ctx.memory_pool, consumer, metrics)
        } else {
            MemoryReservation::new(&ctx.memory_pool, consumer, metrics)
        };
        // A partial aggregate whose groups barely reduce its input emits its state early and
        // starts over, so that only the final aggregate holds every group; under a budget it
        // also flushes once it holds its share of it.
        let limit = ctx.memory_pool.limit();
        let (flush_groups, soft_limit) = match self.mode {
            AggregateMode::Partial if !self.group_exprs.is_empty() => (
                PARTIAL_FLUSH_GROUPS,
                limit / (4 * self.input.output_partitions().max(1)),
            ),
            // A spilling aggregate writes its table out well before the budget is reached: the
            // state batch it writes is about as large as the table itself.
            // Each partition of a final aggregate has its share.
            _ if self.spillable() => (
                usize::MAX,
                limit / (3 * self.input.output_partitions().max(1)),
            ),
            _ => (usize::MAX, usize::MAX),
        };
        let state = AggregateState::new(Arc::clone(&self), reservation)?;
        let stream = AggregateStream {
            exec: Arc::clone(&self),
            ctx,
            input: Some(input),
            state,
            flush_groups,
            soft_limit,
            spill: None,
            writing: None,
            pending: Vec::new(),
            output: None,
            rows_since_reset: 0,
            pass_through: false,
            direct: None,
            segments: self.segments.clone(),
            partition,
            segment: 0,
            held: None,
            side: None,
            queued: Vec::new(),
            held_bytes: 0,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

/// The stream of one output partition: consumes the input, spilling the table to hash
/// partitions on disk when it outgrows the budget, then merges the partitions one at a time.
struct AggregateStream {
    exec: Arc<AggregateExec>,
    ctx: Arc<TaskContext>,
    input: Option<BatchStream>,
    state: AggregateState,
    /// A partial aggregate emits its state at this many groups.
    flush_groups: usize,
    /// Table size (bytes) at which the table is flushed (partial) or spilled.
    soft_limit: usize,
    /// Where the input's state went, once it spilled.
    spill: Option<SpillPartitions>,
    /// The spill being written in the background, if any.
    writing: Option<SpillJob>,
    /// Spilled partitions still to merge, with their partitioning level (last is next).
    pending: Vec<(Vec<SpillFile>, u32)>,
    /// The batch being emitted, and how much of it has been.
    output: Option<(RecordBatch, usize)>,
    /// Input rows consumed since the table was last emptied.
    rows_since_reset: usize,
    /// A partial aggregate whose groups barely reduce its input stops hashing and turns every
    /// row into a state row of its own (the final aggregate does the grouping once).
    pass_through: bool,
    /// A spilling aggregate whose table barely reduced its input sends the rest of the input
    /// straight to the spill partitions: the state rows waiting to be written.
    direct: Option<DirectBuffer>,
    /// Segmented: the scan's row-group tracker with the key's index, this stream's partition
    /// and the segment of the table's groups (as [`KeySegments::current`] numbers them).
    segments: Option<(Arc<KeySegments>, usize)>,
    partition: usize,
    segment: usize,
    /// The first batch of a new segment, held back while the previous one is emitted.
    held: Option<RecordBatch>,
    /// Segmented: the groups of the segment's rows whose key other segments share.
    side: Option<AggregateState>,
    /// Finished batches waiting for `output`.
    queued: Vec<RecordBatch>,
    /// Rows of a spilled partition read into memory and not merged yet (their bytes).
    held_bytes: usize,
}

/// State rows waiting to be written to the spill partitions, and their bytes.
#[derive(Default)]
struct DirectBuffer {
    batches: Vec<RecordBatch>,
    bytes: usize,
}

/// A spill write on a thread of its own. The stream keeps consuming its input meanwhile: the
/// final aggregate's partitions are fed by one repartition, so a partition that stopped to
/// write would soon stall the producers, and with them every other partition.
struct SpillJob {
    handle: std::thread::JoinHandle<Result<Written>>,
    /// Bytes the batches being written hold; they stay reserved until the write ends.
    bytes: usize,
}

impl Iterator for AggregateStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some((batch, offset)) = self.output.as_mut() {
                if *offset < batch.num_rows() {
                    let len = self.ctx.batch_size.min(batch.num_rows() - *offset);
                    let slice = batch.slice(*offset, len);
                    *offset += len;
                    return Some(Ok(slice));
                }
                self.output = None;
            }
            if let Some(batch) = self.queued.pop() {
                self.output = Some((batch, 0));
                continue;
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.input = None;
                    self.held = None;
                    self.abandon_write();
                    self.pending.clear();
                    self.spill = None;
                    self.direct = None;
                    self.state.reservation.free();
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Drop for AggregateStream {
    /// No writer thread outlives the stream.
    fn drop(&mut self) {
        self.abandon_write();
    }
}

impl AggregateStream {
    /// Make progress: consume an input batch, or finish the input, or merge one spilled
    /// partition. False once everything has been emitted.
    fn step(&mut self) -> Result<bool> {
        // Spilled partitions of a finished segment are merged before the input goes on.
        if let Some(input) = self.input.as_mut().filter(|_| self.pending.is_empty()) {
            let next = match self.held.take() {
                Some(batch) => Some(Ok(batch)),
                None => input.next(),
            };
            match next {
                Some(batch) => {
                    let mut batch = batch?;
                    if let Some((segments, _)) = &self.segments {
                        let segment = segments.current(self.partition);
                        if segment != self.segment {
                            let previous = std::mem::replace(&mut self.segment, segment);
                            if previous != 0 {
                                self.held = Some(batch);
                                self.finish_segment(previous)?;
                                return Ok(true);
                            }
                        }
                        self.exec.metrics.add_rows_in(batch.num_rows());
                        batch = self.divert_shared_keys(batch)?;
                        if batch.num_rows() == 0 {
                            return Ok(true);
                        }
                    } else {
                        self.exec.metrics.add_rows_in(batch.num_rows());
                    }
                    if self.pass_through {
                        self.output = Some((self.state.row_states(&batch)?, 0));
                        return Ok(true);
                    }
                    if self.direct.is_some() {
                        return self.buffer_direct(batch).map(|()| true);
                    }
                    self.rows_since_reset += batch.num_rows();
                    match self.exec.mode {
                        AggregateMode::Final => self.state.consume_states(&batch)?,
                        _ => self.state.consume_raw(&batch)?,
                    }
                    self.after_consume(0)?;
                }
                None => {
                    self.input = None;
                    if self.segments.is_some() {
                        return self.finish_segmented_input().map(|()| true);
                    }
                    if self.spill.is_none() {
                        let batch = self.state.take(self.exec.mode == AggregateMode::Partial)?;
                        self.state.reservation.free();
                        if batch.num_rows() > 0 || self.exec.group_exprs.is_empty() {
                            self.output = Some((batch, 0));
                        } else {
                            return Ok(false);
                        }
                    } else {
                        self.spill_table()?;
                        self.flush_direct()?;
                        self.direct = None;
                        self.finish_spilling()?;
                    }
                }
            }
            return Ok(true);
        }
        let Some((files, level)) = self.pending.pop() else {
            return Ok(false);
        };
        // Merge one partition: every group of it lands in this table, unless it is still too
        // large, in which case it is split again with the next level's hash bits.
        let rows: usize = files.iter().map(SpillFile::rows).sum();
        let raw: usize = files.iter().map(SpillFile::raw_bytes).sum();
        let piece_bits = rows
            .div_ceil(MERGE_PIECE_ROWS)
            .next_power_of_two()
            .trailing_zeros()
            .min(MAX_MERGE_PIECE_BITS);
        if piece_bits > 0
            && raw <= self.soft_limit
            && self
                .state
                .reservation
                .try_resize(self.state.size() + raw)
                .is_ok()
        {
            return self.merge_in_pieces(files, level, piece_bits, raw);
        }
        for file in files {
            self.ctx.check_cancelled()?;
            for batch in file.read()? {
                let batch = batch?;
                self.state.consume_states(&batch)?;
                self.after_consume(level + 1)?;
            }
        }
        if self.spill.is_none() {
            let batch = self.state.take(false)?;
            self.state.reservation.free();
            self.output = Some((batch, 0));
        } else {
            self.spill_table()?;
            self.finish_spilling()?;
        }
        Ok(true)
    }

    /// Merge a spilled partition that fits in memory piece by piece: its rows are read, split
    /// by further hash bits into `1 << piece_bits` pieces of disjoint keys, and each piece is
    /// merged in a table of its own and emitted. A table of a piece stays in the processor's
    /// cache where one of the whole partition would not: merging the partitions of the
    /// (`l_partkey`, `l_suppkey`) group-by at SF10 (about 450,000 state rows and 62,000
    /// groups each) spent most of its time waiting for memory on three dependent loads a row.
    fn merge_in_pieces(
        &mut self,
        files: Vec<SpillFile>,
        level: u32,
        piece_bits: u32,
        raw: usize,
    ) -> Result<bool> {
        let keys = self.exec.group_exprs.len();
        // A table kept from the input phase has room for far more groups than a piece: its
        // entries would be spread over all of that memory.
        if self.state.groups.is_empty() {
            self.state.groups = GroupValues::try_new(&self.exec.group_types)?;
        }
        let mut pieces: Vec<Vec<RecordBatch>> = (0..1 << piece_bits).map(|_| Vec::new()).collect();
        for file in files {
            self.ctx.check_cancelled()?;
            for batch in file.read()? {
                for (piece, rows) in split_pieces(&batch?, keys, level, piece_bits)?
                    .into_iter()
                    .enumerate()
                {
                    if rows.num_rows() > 0 {
                        pieces[piece].push(rows);
                    }
                }
            }
        }
        self.held_bytes = raw;
        for piece in pieces {
            let bytes: usize = piece.iter().map(RecordBatch::get_array_memory_size).sum();
            for batch in piece {
                self.state.consume_states(&batch)?;
                drop(batch);
                self.after_consume(level + 1)?;
            }
            self.held_bytes = self.held_bytes.saturating_sub(bytes);
            // A piece that outgrew the budget went to the next level's partitions with the
            // rest of this partition; otherwise its groups are final.
            if self.spill.is_none() && !self.state.groups.is_empty() {
                let batch = self.state.take(false)?;
                self.queued.push(batch);
            }
        }
        self.held_bytes = 0;
        if self.spill.is_some() {
            self.spill_table()?;
            self.finish_spilling()?;
        }
        self.state.reservation.free();
        let merged = self.exec.merged_in_pieces.fetch_add(1, Ordering::Relaxed) + 1;
        self.exec
            .metrics
            .set_extra("partitions_merged_in_pieces", merged);
        Ok(true)
    }

    /// Account for the table after a batch; flush or spill it when it is too large.
    fn after_consume(&mut self, level: u32) -> Result<()> {
        let size = self.state.size() + self.writing_bytes() + self.held_bytes;
        // The pool asks a spilling aggregate to spill when an operator that cannot needs room.
        let asked = self.state.reservation.spill_requested() && !self.state.groups.is_empty();
        // A table of the input that has outgrown the caches while holding nearly a group per
        // row is not worth growing further: it spills now and sends the rest of the input
        // straight to the partitions, which are merged in tables that stay in cache.
        let barely_reduces = self.exec.spillable()
            && self.ctx.memory_pool.limit() != usize::MAX
            && level == 0
            && self.segments.is_none()
            && size > EARLY_DIRECT_SPILL_BYTES
            && self.state.groups.len() * DIRECT_SPILL_DIVISOR > self.rows_since_reset;
        let fits = !asked
            && !barely_reduces
            && size <= self.soft_limit
            && self.state.reservation.try_resize(size).is_ok();
        if self.exec.mode == AggregateMode::Partial && self.input.is_some() {
            if !fits || self.state.groups.len() >= self.flush_groups {
                // Fewer than 1.25 rows per group: grouping here saves the final aggregate
                // almost nothing.
                if self.state.groups.len() * 5 > self.rows_since_reset * 4
                    && self.rows_since_reset >= PASS_THROUGH_MIN_ROWS
                {
                    self.pass_through = true;
                    self.exec.metrics.set_extra("pass_through", "yes");
                }
                self.rows_since_reset = 0;
                let batch = self.state.take(true)?;
                self.state.reset()?;
                self.state.reservation.free();
                self.output = Some((batch, 0));
            }
            return Ok(());
        }
        if fits {
            return Ok(());
        }
        if !self.exec.spillable() {
            // Report the overflow against the budget.
            return self.state.reservation.try_resize_or_spill_others(size);
        }
        if level > MAX_SPILL_LEVEL {
            return Err(EngineError::ResourcesExhausted {
                consumer: format!(
                    "{} (after {MAX_SPILL_LEVEL} rounds of repartitioning)",
                    self.exec.name()
                ),
                requested: size,
                reserved: self.ctx.memory_pool.reserved(),
                limit: self.ctx.memory_pool.limit(),
            });
        }
        if self.spill.is_none() {
            self.spill = Some(SpillPartitions::new(
                level,
                Arc::clone(&self.exec.state_schema),
            ));
        }
        // A table of the input (not a partition being merged) that holds nearly one group per
        // row fed to it: the rest of the input goes straight to the partitions.
        if level == 0 && self.state.groups.len() * DIRECT_SPILL_DIVISOR > self.rows_since_reset {
            self.direct = Some(DirectBuffer::default());
            self.exec.metrics.set_extra("direct_spill", "yes");
        }
        self.rows_since_reset = 0;
        self.spill_table()
    }

    /// Segmented: send the rows of `batch` whose key the current segment shares with others
    /// to the side table; the rest is returned.
    fn divert_shared_keys(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let Some((segments, key)) = self.segments.clone() else {
            return Ok(batch);
        };
        let shared = segments.shared_keys(self.segment);
        if shared.is_empty() {
            return Ok(batch);
        }
        let keys = self.exec.group_exprs[key]
            .evaluate(&batch)?
            .into_array(batch.num_rows())?;
        let mask = key_mask(&keys, shared)?;
        if mask.true_count() == 0 {
            return Ok(batch);
        }
        let diverted = arrow::compute::filter_record_batch(&batch, &mask)?;
        let side = match self.side.as_mut() {
            Some(side) => side,
            None => {
                let side = self.shared_key_table()?;
                self.side.insert(side)
            }
        };
        side.consume_raw(&diverted)?;
        let size = side.size();
        side.reservation.try_resize_or_spill_others(size)?;
        let rest = arrow::compute::not(&mask)?;
        Ok(arrow::compute::filter_record_batch(&batch, &rest)?)
    }

    /// Segmented: the input ended. Finish the last segment; the last partition to finish also
    /// merges the shared keys whose holders did not all deliver.
    fn finish_segmented_input(&mut self) -> Result<()> {
        if self.segment != 0 {
            self.finish_segment(self.segment)?;
        }
        let Some((segments, _)) = self.segments.clone() else {
            return Ok(());
        };
        if let Some(waiting) = segments.finish_partition() {
            if !waiting.is_empty() {
                let merged = self.merge_deposits(waiting)?;
                self.queued.push(merged);
            }
        }
        Ok(())
    }

    /// An empty table for the groups of shared boundary keys, with a reservation of its own
    /// (they are few: the rows of at most two key values a row group).
    fn shared_key_table(&self) -> Result<AggregateState> {
        let reservation = MemoryReservation::new(
            &self.ctx.memory_pool,
            format!(
                "{}[partition {}] shared keys",
                self.exec.name(),
                self.partition
            ),
            Some(Arc::clone(&self.exec.metrics)),
        );
        AggregateState::new(Arc::clone(&self.exec), reservation)
    }

    /// Final values of the groups in deposited partial states.
    fn merge_deposits(&mut self, states: Vec<RecordBatch>) -> Result<RecordBatch> {
        let mut merged = self.shared_key_table()?;
        for batch in &states {
            merged.consume_states(batch)?;
            let size = merged.size();
            merged.reservation.try_resize_or_spill_others(size)?;
        }
        drop(states);
        let out = merged.take(false)?;
        merged.reservation.free();
        Ok(out)
    }

    /// A segmented aggregate's input moved on from segment `finished`: every group of the
    /// table is final. Emit them (or, if the segment spilled, queue its partitions for
    /// merging), and deposit the side table's groups under their shared keys.
    fn finish_segment(&mut self, finished: usize) -> Result<()> {
        if let Some((segments, key)) = self.segments.clone() {
            let states = match self.side.as_mut() {
                Some(side) if !side.groups.is_empty() => {
                    let states = side.take(true)?;
                    side.reset()?;
                    side.reservation.free();
                    Some(states)
                }
                _ => None,
            };
            for &value in segments.shared_keys(finished) {
                let rows = match &states {
                    Some(states) => {
                        let mask = key_mask(states.column(key), &[value])?;
                        let rows = arrow::compute::filter_record_batch(states, &mask)?;
                        (rows.num_rows() > 0).then_some(rows)
                    }
                    None => None,
                };
                if let Some(all) = segments.deposit(value, rows) {
                    if !all.is_empty() {
                        let merged = self.merge_deposits(all)?;
                        self.queued.push(merged);
                    }
                }
            }
        }
        self.rows_since_reset = 0;
        if self.spill.is_none() {
            let batch = self.state.take(false)?;
            self.state.reset()?;
            self.state.reservation.free();
            if batch.num_rows() > 0 {
                self.output = Some((batch, 0));
            }
            return Ok(());
        }
        self.spill_table()?;
        self.flush_direct()?;
        self.direct = None;
        self.finish_spilling()
    }

    /// Bytes of the spill being written in the background.
    fn writing_bytes(&self) -> usize {
        self.writing.as_ref().map_or(0, |job| job.bytes)
    }

    /// Hand the table's groups, as partial states, to the spill partitions and start over.
    fn spill_table(&mut self) -> Result<()> {
        if self.state.groups.is_empty() {
            return Ok(());
        }
        let batch = self.state.take(true)?;
        self.state.reset()?;
        let bytes = batch.get_array_memory_size();
        self.start_write(vec![batch], bytes)
    }

    /// Buffer an input batch, as state rows, for the spill partitions; write the buffer out
    /// once it holds [`DIRECT_SPILL_BYTES`] or its reservation cannot grow.
    fn buffer_direct(&mut self, batch: RecordBatch) -> Result<()> {
        let states = match self.exec.mode {
            AggregateMode::Final => batch,
            _ => self.state.row_states(&batch)?,
        };
        let Some(buffer) = self.direct.as_mut() else {
            return Err(EngineError::Internal("no direct spill buffer".into()));
        };
        // The bytes its rows reference: string views taken from a join's build side point
        // into the build side's buffers, which `get_array_memory_size` counted in full for
        // every batch (Q16 under 256MB wrote 42 spill rounds for 73 MB of state; 4 now).
        buffer.bytes += referenced_bytes(&states);
        buffer.batches.push(states);
        let bytes = buffer.bytes;
        let limit = DIRECT_SPILL_BYTES.min(self.soft_limit / 2);
        let asked = self.state.reservation.spill_requested();
        // Writing the buffer concatenates it first: twice its bytes are held at that moment.
        let held = self.state.size() + self.writing_bytes() + 2 * bytes;
        if asked || bytes >= limit || self.state.reservation.try_resize(held).is_err() {
            self.flush_direct()?;
        }
        Ok(())
    }

    /// Hand the buffered state rows to the spill partitions.
    fn flush_direct(&mut self) -> Result<()> {
        let Some(buffer) = self.direct.as_mut() else {
            return Ok(());
        };
        if buffer.batches.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut buffer.batches);
        let bytes = std::mem::take(&mut buffer.bytes);
        let held = if batches.len() > 1 { 2 * bytes } else { bytes };
        self.start_write(batches, held)
    }

    /// Write `batches` (holding `bytes`) into the spill partitions on a thread of their own,
    /// once the write before them has ended: at most one write is in flight.
    fn start_write(&mut self, batches: Vec<RecordBatch>, bytes: usize) -> Result<()> {
        self.finish_write()?;
        let writer = self
            .spill
            .as_ref()
            .ok_or_else(|| EngineError::Internal("a spill write without partitions".into()))?
            .writer();
        let ctx = Arc::clone(&self.ctx);
        let keys = self.exec.group_exprs.len();
        let handle = std::thread::Builder::new()
            .name("ooc-agg-spill".into())
            .spawn(move || writer.write(batches, keys, &ctx))
            .map_err(|e| EngineError::Internal(format!("cannot start a spill thread: {e}")))?;
        self.writing = Some(SpillJob { handle, bytes });
        // The batches stay reserved until they are written. The reservation may already be
        // short of them (a spill starts when it cannot grow); it is never grown past the
        // budget here, and shrinks back once the write ends.
        let held = self.state.size() + bytes;
        let _ = self.state.reservation.try_resize(held);
        Ok(())
    }

    /// Wait for the spill being written, if any, and file its parts under their partitions.
    fn finish_write(&mut self) -> Result<()> {
        let Some(job) = self.writing.take() else {
            return Ok(());
        };
        let written = job
            .handle
            .join()
            .map_err(|_| EngineError::Internal("a spill thread panicked".into()))??;
        self.exec
            .metrics
            .add_spill(written.rows, written.raw, written.bytes, written.time);
        self.spill
            .as_mut()
            .ok_or_else(|| EngineError::Internal("a spill write without partitions".into()))?
            .add(written);
        let held = self.state.size();
        self.state
            .reservation
            .try_resize(held.min(self.state.reservation.size()))?;
        Ok(())
    }

    /// After the last write of a level: queue its partitions for merging.
    fn finish_spilling(&mut self) -> Result<()> {
        self.finish_write()?;
        if let Some(spill) = self.spill.take() {
            self.pending.extend(spill.finish());
        }
        self.state.reservation.free();
        Ok(())
    }

    /// Wait for a write in flight and drop what it wrote (after an error, or when the stream
    /// is dropped early).
    fn abandon_write(&mut self) {
        if let Some(job) = self.writing.take() {
            let _ = job.handle.join();
        }
    }
}

struct AggregateState {
    exec: Arc<AggregateExec>,
    groups: GroupValues,
    accumulators: Vec<Box<dyn GroupAccumulator>>,
    reservation: MemoryReservation,
    group_indices: Vec<u32>,
    cache: ExprCache,
}

impl AggregateState {
    fn new(exec: Arc<AggregateExec>, reservation: MemoryReservation) -> Result<Self> {
        let mut state = Self {
            groups: GroupValues::try_new(&exec.group_types)?,
            accumulators: Vec::new(),
            reservation,
            group_indices: Vec::new(),
            cache: ExprCache::for_exprs(
                exec.group_exprs
                    .iter()
                    .chain(exec.aggregates.iter().flat_map(|a| &a.args)),
            ),
            exec,
        };
        state.reset()?;
        Ok(state)
    }

    /// A fresh, empty table (buffers of the old one are released).
    fn reset(&mut self) -> Result<()> {
        // After `take` the groups are empty; the single-key table keeps its capacity for the
        // next round (it is counted in `size`, so the reservation covers it).
        if !self.groups.is_empty() || !self.groups.reusable() {
            self.groups = GroupValues::try_new(&self.exec.group_types)?;
        }
        self.accumulators = self
            .exec
            .aggregates
            .iter()
            .map(|a| create_accumulator(a.func, a.distinct, &a.input_type, &a.output_type))
            .collect::<Result<_>>()?;
        Ok(())
    }

    fn size(&self) -> usize {
        self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// Add raw input rows.
    fn consume_raw(&mut self, batch: &RecordBatch) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        let n = batch.num_rows();
        let cache = &mut self.cache;
        cache.clear();
        let keys = exec
            .group_exprs
            .iter()
            .map(|e| normalize_zero_array(e.evaluate_cached(batch, cache)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        self.groups.intern(&keys, n, &mut self.group_indices)?;
        let total = self.groups.len();
        for (spec, acc) in exec.aggregates.iter().zip(self.accumulators.iter_mut()) {
            let values = spec
                .args
                .iter()
                .map(|e| e.evaluate_cached(batch, &mut self.cache)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            acc.update(&values, &self.group_indices, total)?;
        }
        Ok(())
    }

    /// Merge partial states: the group keys come first, then each aggregate's state columns.
    fn consume_states(&mut self, batch: &RecordBatch) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        let n = batch.num_rows();
        let width = exec.group_types.len();
        let keys = batch.columns()[..width].to_vec();
        self.groups.intern(&keys, n, &mut self.group_indices)?;
        let total = self.groups.len();
        let mut column = width;
        for (spec, acc) in exec.aggregates.iter().zip(self.accumulators.iter_mut()) {
            let states = batch.columns()[column..column + spec.state_width].to_vec();
            column += spec.state_width;
            acc.merge(&states, &self.group_indices, total)?;
        }
        Ok(())
    }

    /// Every row of a raw batch as its own partial state row (no hashing).
    fn row_states(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let exec = Arc::clone(&self.exec);
        let n = batch.num_rows();
        let cache = &mut self.cache;
        cache.clear();
        let mut columns = exec
            .group_exprs
            .iter()
            .map(|e| normalize_zero_array(e.evaluate_cached(batch, cache)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let groups: Vec<u32> = (0..n as u32).collect();
        for spec in &exec.aggregates {
            let mut acc = create_accumulator(
                spec.func,
                spec.distinct,
                &spec.input_type,
                &spec.output_type,
            )?;
            let values = spec
                .args
                .iter()
                .map(|e| e.evaluate_cached(batch, &mut self.cache)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            acc.update(&values, &groups, n)?;
            acc.ensure_groups(n);
            columns.extend(acc.state()?);
        }
        conform(columns, &exec.state_schema, n)
    }

    /// Emit every group, as partial states (`as_state`) or final values, and empty the table.
    fn take(&mut self, as_state: bool) -> Result<RecordBatch> {
        let exec = Arc::clone(&self.exec);
        if exec.group_exprs.is_empty() {
            // A global aggregate always has its one group, even without input.
            self.groups.ensure_global_group();
        }
        let total = self.groups.len();
        let mut columns = self.groups.take_keys()?;
        for acc in &mut self.accumulators {
            // Make sure every accumulator covers every group (e.g. global group without input).
            acc.ensure_groups(total);
            if as_state {
                columns.extend(acc.state()?);
            } else {
                columns.push(acc.evaluate()?);
            }
        }
        let schema = if as_state {
            &exec.state_schema
        } else {
            &exec.schema
        };
        conform(columns, schema, total)
    }
}

/// Rows of the integer or date array `keys` whose value is one of `values` (never NULL).
fn key_mask(keys: &ArrayRef, values: &[i64]) -> Result<arrow::array::BooleanArray> {
    use arrow::array::AsArray;
    let ints = match keys.data_type() {
        DataType::Int64 => Arc::clone(keys),
        _ => crate::eval::cast_array(keys, &DataType::Int64)?,
    };
    let ints = ints.as_primitive::<arrow::datatypes::Int64Type>();
    Ok(ints
        .iter()
        .map(|v| Some(v.is_some_and(|v| values.contains(&v))))
        .collect())
}

/// A batch of `schema` from `columns`, casting any column whose type differs (accumulators
/// produce their natural types; the plan may have typed the output wider).
fn conform(columns: Vec<ArrayRef>, schema: &SchemaRef, rows: usize) -> Result<RecordBatch> {
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                crate::eval::cast_array(&c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}
