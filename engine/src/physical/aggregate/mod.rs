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
//!
//! | module               | what it holds                                                    |
//! |----------------------|------------------------------------------------------------------|
//! | this one             | the plan node: mode, aggregates, `execute`                       |
//! | [`stream`]           | a partition's stream: consume, flush or spill, merge partitions  |
//! | [`state`]            | the table: group keys and accumulators, taken as values or states |
//! | [`segments`]         | segmented input: emitting a row group's groups, shared keys      |
//! | [`writer`]           | the background spill writer                                      |
//! | [`spill`]            | spill partitions: routing state rows, merging in pieces          |
//! | [`group_values`]     | group keys → group ids, by key layout (`primitive_groups`, `pair_groups`, `packed_groups`, `interner`) |
//! | [`accumulator`]      | per-aggregate accumulators and their state columns               |

pub(crate) mod accumulator;
pub(crate) mod group_values;
mod hyperloglog;
mod interner;
mod packed_groups;
mod pair_groups;
mod primitive_groups;
mod segments;
mod spill;
mod state;
mod stream;
mod tdigest;
mod writer;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;
use crate::eval::PhysicalExpr;
use crate::logical::expr::AggregateFunction;
use crate::memory::{InFlight, MemoryPart, MemoryReservation};
use crate::metrics::OperatorMetrics;
use crate::physical::key_segments::KeySegments;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};
use accumulator::state_fields;
use state::AggregateState;
use stream::AggregateStream;

/// How many times a spilled partition may be split again before the aggregate gives up.
pub(crate) const MAX_SPILL_LEVEL: u32 = 4;

/// A partial aggregate emits its state and starts over once it holds this many groups.
const PARTIAL_FLUSH_GROUPS: usize = 256 * 1024;

/// Rows a partial aggregate sees before it may decide that grouping does not pay.
const PASS_THROUGH_MIN_ROWS: usize = 64 * 1024;

/// Input bytes a spilling aggregate that partitions its input directly buffers before it
/// writes them to the partitions (at most half its share of the budget).
pub(crate) const DIRECT_SPILL_BYTES: usize = 32 * 1024 * 1024;

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
pub(crate) enum AggregateMode {
    /// Raw rows in, states out.
    Partial,
    /// States in, final values out.
    Final,
    /// Raw rows in, final values out.
    Single,
}

/// One aggregate call.
#[derive(Clone, Debug)]
pub(crate) struct AggregateSpec {
    /// The function.
    pub func: AggregateFunction,
    /// `DISTINCT` inside the call.
    pub distinct: bool,
    /// Argument expressions over the raw input (empty for `count(*)`).
    pub args: Vec<PhysicalExpr>,
    /// Type of the (first) argument; `Null` for `count(*)`.
    pub input_type: DataType,
    /// Types of all the arguments.
    pub arg_types: Vec<DataType>,
    /// Type of the final value.
    pub output_type: DataType,
    /// Number of state columns.
    pub state_width: usize,
    /// Display name.
    pub name: String,
}

/// Hash aggregate operator.
#[derive(Debug)]
pub(crate) struct AggregateExec {
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
    pub(crate) fn new(
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
    pub(crate) fn with_key_segments(mut self, segments: Arc<KeySegments>, key: usize) -> Self {
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
            MemoryReservation::new_spillable(
                &ctx.memory_pool,
                consumer,
                MemoryPart::Groups,
                metrics,
            )
        } else {
            MemoryReservation::new(&ctx.memory_pool, consumer, MemoryPart::Groups, metrics)
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
        let emitting = InFlight::new(
            &ctx.memory_pool,
            self.name(),
            MemoryPart::BatchesInFlight,
            Some(Arc::clone(&self.metrics)),
        );
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
            emitting,
            output_counted: None,
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
