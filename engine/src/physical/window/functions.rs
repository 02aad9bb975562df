//! The window functions, each evaluated row by row as the partition streams past.
//!
//! An evaluator answers four questions for the operator: is row `i`'s result decided by the
//! rows received so far ([`WindowEvaluator::ready`])? what is it ([`evaluate`])? which rows
//! may it still read ([`needed_from`])? and, before rows are released, does it need a copy of
//! any of them ([`before_release`])?
//!
//! * Ranking functions need only the peer groups, and the partition's size for
//!   `percent_rank`, `cume_dist` and `ntile`.
//! * `lag` and `lead` look a fixed number of rows (or non-NULL values) back or ahead.
//! * Value functions and aggregates follow a [`FrameCursor`]. Aggregates keep the frame's
//!   state incrementally: rows entering at the frame's end are added, rows leaving at its
//!   start removed (sums, counts, averages and variances), and `min`/`max` keep a monotonic
//!   queue of candidates, so a sliding frame costs O(1) per row whatever its width. A frame
//!   that starts at the partition's first row never removes, and what it must remember of
//!   rows long released (the best `min` so far, the first value) is copied out.
//!
//! Results that are values of the argument (`min`, `lag`, `first_value`, ...) are recorded as
//! references to rows and gathered when the output batch is built.
//!
//! [`evaluate`]: WindowEvaluator::evaluate
//! [`needed_from`]: WindowEvaluator::needed_from
//! [`before_release`]: WindowEvaluator::before_release

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array,
};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::OwnedRow;

use crate::error::{EngineError, Result};
use crate::logical::expr::AggregateFunction;
use crate::physical::window::frame::{FrameCursor, FrameSpec};
use crate::physical::window::rows::{Numbers, PartitionRows};

/// One window function's evaluation over a partition.
pub(super) trait WindowEvaluator: Send {
    /// Whether row `i`'s result is decided by the rows received.
    fn ready(&mut self, i: usize, rows: &PartitionRows) -> Result<bool>;
    /// Compute row `i`'s result; rows are evaluated in order, each after `ready`.
    fn evaluate(&mut self, i: usize, rows: &PartitionRows) -> Result<()>;
    /// The first row that results of later rows may read.
    fn needed_from(&self) -> usize;
    /// Called before rows below `floor` are released: copy out any still referenced.
    fn before_release(&mut self, _floor: usize, _rows: &PartitionRows) -> Result<()> {
        Ok(())
    }
    /// The results of the rows evaluated since the last call.
    fn take_output(&mut self, rows: &PartitionRows) -> Result<ArrayRef>;
    /// Start over for the next partition.
    fn reset(&mut self);
    /// What a first pass over a partition replayed from disk found, for frames that reach
    /// its end before its rows arrive again.
    fn set_totals(&mut self, _totals: PartitionTotals) {}
}

/// What a first pass over a spilled partition computed for one function.
#[derive(Debug, Default)]
pub(super) struct PartitionTotals {
    /// The aggregate's state over the whole partition.
    pub(super) aggregate: Option<State>,
    /// The value of the partition's last row (or last non-NULL value, with IGNORE NULLS),
    /// and its row.
    pub(super) last: Option<(usize, ArrayRef)>,
}

/// A frame evaluated before it was computed (`ready` was not called or said no).
fn not_ready() -> EngineError {
    EngineError::Internal("window frame evaluated before it was decided".into())
}

/// Where a value result comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// The argument of a retained row.
    Row(usize),
    /// The extra argument (`lag`'s default) of a retained row.
    Extra(usize),
    /// A copied value, by number.
    Held(usize),
    /// NULL.
    Null,
}

/// Value results: references gathered into an array when the output is built.
#[derive(Debug, Default)]
struct Gather {
    sources: Vec<Source>,
    /// Copied values (one row each), by number; the numbers stay valid until `take`.
    held: Vec<ArrayRef>,
}

impl Gather {
    fn hold(&mut self, value: ArrayRef) -> usize {
        self.held.push(value);
        self.held.len() - 1
    }

    /// The gathered array; `keep` are held numbers still referenced afterwards, renumbered
    /// from 0 in the order given.
    fn take(
        &mut self,
        function: usize,
        data_type: &DataType,
        rows: &PartitionRows,
    ) -> Result<ArrayRef> {
        let sources = std::mem::take(&mut self.sources);
        let mut arrays: Vec<ArrayRef> = vec![new_null_array(data_type, 1)];
        let mut numbered: HashMap<(usize, bool), usize> = HashMap::new();
        let mut held_index: HashMap<usize, usize> = HashMap::new();
        let mut indices = Vec::with_capacity(sources.len());
        for source in sources {
            let index = match source {
                Source::Null => (0, 0),
                Source::Held(h) => {
                    let a = *held_index.entry(h).or_insert_with(|| {
                        arrays.push(Arc::clone(&self.held[h]));
                        arrays.len() - 1
                    });
                    (a, 0)
                }
                Source::Row(row) | Source::Extra(row) => {
                    let extra = matches!(source, Source::Extra(_));
                    let c = rows.chunk_index(row);
                    let chunk = &rows.chunks()[c];
                    let a = match numbered.get(&(c, extra)) {
                        Some(&a) => a,
                        None => {
                            let input = &chunk.inputs[function];
                            let array = if extra {
                                input.extra()?
                            } else {
                                input.values()?
                            };
                            arrays.push(Arc::clone(array));
                            numbered.insert((c, extra), arrays.len() - 1);
                            arrays.len() - 1
                        }
                    };
                    (a, row - chunk.start)
                }
            };
            indices.push(index);
        }
        let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        Ok(interleave(&refs, &indices)?)
    }
}

/// A row's value that may have to outlive the row: copied out before the row is released.
#[derive(Clone, Debug)]
pub(super) struct Pinned {
    row: usize,
    copy: Option<ArrayRef>,
}

impl Pinned {
    fn new(row: usize) -> Self {
        Self { row, copy: None }
    }

    /// Copy the value out if its row is about to be released.
    fn keep(&mut self, function: usize, floor: usize, rows: &PartitionRows) -> Result<()> {
        if self.copy.is_none() && self.row < floor {
            let (chunk, offset) = rows.locate(self.row);
            let values = chunk.inputs[function].values()?;
            // A copy of its own, not a slice keeping the chunk's buffers alive.
            self.copy = Some(interleave(&[values.as_ref()], &[(0, offset)])?);
        }
        Ok(())
    }

    fn source(&self, gather: &mut Gather) -> Source {
        match &self.copy {
            Some(copy) => Source::Held(gather.hold(Arc::clone(copy))),
            None => Source::Row(self.row),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Ranking

/// `row_number`, `rank`, `dense_rank`, `percent_rank`, `cume_dist`, `ntile`.
#[derive(Debug)]
pub(super) struct Ranking {
    kind: RankKind,
    function: usize,
    integers: Vec<Option<i64>>,
    floats: Vec<Option<f64>>,
    next: usize,
}

/// Which ranking function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RankKind {
    /// `row_number()`.
    RowNumber,
    /// `rank()`.
    Rank,
    /// `dense_rank()`.
    DenseRank,
    /// `percent_rank()`.
    PercentRank,
    /// `cume_dist()`.
    CumeDist,
    /// `ntile(n)`.
    Ntile,
}

impl Ranking {
    pub(super) fn new(kind: RankKind, function: usize) -> Self {
        Self {
            kind,
            function,
            integers: vec![],
            floats: vec![],
            next: 0,
        }
    }
}

impl WindowEvaluator for Ranking {
    fn ready(&mut self, i: usize, rows: &PartitionRows) -> Result<bool> {
        Ok(match self.kind {
            RankKind::RowNumber | RankKind::Rank | RankKind::DenseRank => true,
            RankKind::PercentRank | RankKind::Ntile => rows.total().is_some(),
            // The partition's size, and where the row's peer group ends.
            RankKind::CumeDist => {
                rows.total().is_some()
                    && (rows.complete() || rows.groups_seen() > rows.group_of(i) + 1)
            }
        })
    }

    fn evaluate(&mut self, i: usize, rows: &PartitionRows) -> Result<()> {
        self.next = i + 1;
        let group = rows.group_of(i);
        let group_start = rows.group_start(group).unwrap_or(0);
        match self.kind {
            RankKind::RowNumber => self.integers.push(Some(i as i64 + 1)),
            RankKind::Rank => self.integers.push(Some(group_start as i64 + 1)),
            RankKind::DenseRank => self.integers.push(Some(group as i64 + 1)),
            RankKind::PercentRank => {
                let n = rows.known_total()?;
                self.floats.push(Some(if n <= 1 {
                    0.0
                } else {
                    group_start as f64 / (n - 1) as f64
                }));
            }
            RankKind::CumeDist => {
                let n = rows.known_total()?;
                let end = rows.group_start(group + 1).unwrap_or(n);
                self.floats.push(Some(end as f64 / n as f64));
            }
            RankKind::Ntile => {
                let (chunk, offset) = rows.locate(i);
                let buckets = chunk.inputs[self.function]
                    .extra()?
                    .as_primitive::<Int64Type>();
                if buckets.is_null(offset) {
                    self.integers.push(None);
                } else {
                    let b = buckets.value(offset);
                    if b <= 0 {
                        return Err(EngineError::Execution(format!(
                            "ntile() needs a positive number of buckets, got {b}"
                        )));
                    }
                    let n = rows.known_total()?;
                    self.integers.push(Some(ntile(i, n, b as usize) as i64));
                }
            }
        }
        Ok(())
    }

    fn needed_from(&self) -> usize {
        self.next
    }

    fn take_output(&mut self, _rows: &PartitionRows) -> Result<ArrayRef> {
        Ok(match self.kind {
            RankKind::PercentRank | RankKind::CumeDist => {
                Arc::new(Float64Array::from(std::mem::take(&mut self.floats)))
            }
            _ => Arc::new(Int64Array::from(std::mem::take(&mut self.integers))),
        })
    }

    fn reset(&mut self) {
        self.next = 0;
    }
}

/// The bucket (1-based) of row `i` of `n` cut into `buckets`: the first `n % buckets`
/// buckets hold one row more than the others.
fn ntile(i: usize, n: usize, buckets: usize) -> usize {
    if n <= buckets {
        return i + 1;
    }
    let small = n / buckets;
    let large = small + 1;
    let larges = n % buckets;
    let in_large = larges * large;
    if i < in_large {
        i / large + 1
    } else {
        larges + (i - in_large) / small + 1
    }
}

// ---------------------------------------------------------------------------------------
// lag and lead

/// `lag` (`lead == false`) and `lead` with a constant offset.
#[derive(Debug)]
pub(super) struct Offset {
    function: usize,
    lead: bool,
    offset: usize,
    ignore_nulls: bool,
    has_default: bool,
    data_type: DataType,
    gather: Gather,
    next: usize,
    /// With IGNORE NULLS: `lag`'s last `offset` non-NULL rows before the current one, or
    /// `lead`'s non-NULL rows after it found so far.
    non_null: VecDeque<usize>,
    /// `lead` IGNORE NULLS: rows scanned for `non_null` so far.
    scanned: usize,
}

impl Offset {
    pub(super) fn new(
        function: usize,
        lead: bool,
        offset: usize,
        ignore_nulls: bool,
        has_default: bool,
        data_type: DataType,
    ) -> Self {
        Self {
            function,
            lead,
            offset,
            ignore_nulls,
            has_default,
            data_type,
            gather: Gather::default(),
            next: 0,
            non_null: VecDeque::new(),
            scanned: 0,
        }
    }

    fn default_source(&self, i: usize) -> Source {
        if self.has_default {
            Source::Extra(i)
        } else {
            Source::Null
        }
    }

    fn scan_ahead(&mut self, i: usize, rows: &PartitionRows) {
        self.scanned = self.scanned.max(i + 1);
        while self.scanned < rows.end() {
            if !rows.value_is_null(self.function, self.scanned) {
                self.non_null.push_back(self.scanned);
            }
            self.scanned += 1;
        }
        while self.non_null.front().is_some_and(|&r| r <= i) {
            self.non_null.pop_front();
        }
    }
}

impl WindowEvaluator for Offset {
    fn ready(&mut self, i: usize, rows: &PartitionRows) -> Result<bool> {
        if !self.lead || self.offset == 0 || rows.complete() {
            return Ok(true);
        }
        if self.ignore_nulls {
            self.scan_ahead(i, rows);
            Ok(self.non_null.len() >= self.offset)
        } else {
            let target = i.saturating_add(self.offset);
            Ok(target < rows.end() || rows.total().is_some_and(|n| target >= n))
        }
    }

    fn evaluate(&mut self, i: usize, rows: &PartitionRows) -> Result<()> {
        self.next = i + 1;
        let k = self.offset;
        let source = if k == 0 {
            Source::Row(i)
        } else if !self.ignore_nulls {
            let target = if self.lead {
                i.checked_add(k)
            } else {
                i.checked_sub(k)
            };
            match target {
                Some(t) if t < rows.end() => Source::Row(t),
                _ => self.default_source(i),
            }
        } else if self.lead {
            self.scan_ahead(i, rows);
            match self.non_null.get(k - 1) {
                Some(&t) => Source::Row(t),
                None => self.default_source(i),
            }
        } else {
            let source = if self.non_null.len() == k {
                Source::Row(self.non_null[0])
            } else {
                self.default_source(i)
            };
            if !rows.value_is_null(self.function, i) {
                self.non_null.push_back(i);
                if self.non_null.len() > k {
                    self.non_null.pop_front();
                }
            }
            source
        };
        self.gather.sources.push(source);
        Ok(())
    }

    fn needed_from(&self) -> usize {
        if self.lead {
            self.next
        } else if self.ignore_nulls {
            self.non_null
                .front()
                .copied()
                .unwrap_or(self.next)
                .min(self.next)
        } else {
            self.next.saturating_sub(self.offset)
        }
    }

    fn take_output(&mut self, rows: &PartitionRows) -> Result<ArrayRef> {
        self.gather.take(self.function, &self.data_type, rows)
    }

    fn reset(&mut self) {
        self.next = 0;
        self.non_null.clear();
        self.scanned = 0;
    }
}

// ---------------------------------------------------------------------------------------
// first_value, last_value, nth_value

/// Which value of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pick {
    First,
    Last,
    /// The n-th row (1-based).
    Nth(usize),
}

/// `first_value`, `last_value`, `nth_value`.
#[derive(Debug)]
pub(super) struct Value {
    function: usize,
    pick: Pick,
    ignore_nulls: bool,
    data_type: DataType,
    cursor: FrameCursor,
    pending: Option<(usize, usize)>,
    gather: Gather,
    /// Non-NULL rows of the frame (IGNORE NULLS), from `cursor`'s start to `added`.
    non_null: VecDeque<usize>,
    added: usize,
    /// The frame's current start and end.
    start: usize,
    end: usize,
    /// With an unbounded start: the chosen row once known (it never changes after).
    fixed: Option<Pinned>,
    /// `last_value` IGNORE NULLS with an unbounded start: the last non-NULL row so far.
    last_non_null: Option<Pinned>,
    /// A replayed partition's last (non-NULL) value, for frames ending at its end.
    last_of_partition: Option<(usize, ArrayRef)>,
}

impl Value {
    pub(super) fn new(
        function: usize,
        pick: Pick,
        ignore_nulls: bool,
        frame: FrameSpec,
        data_type: DataType,
    ) -> Self {
        Self {
            function,
            pick,
            ignore_nulls,
            data_type,
            cursor: FrameCursor::new(frame),
            pending: None,
            gather: Gather::default(),
            non_null: VecDeque::new(),
            added: 0,
            start: 0,
            end: 0,
            fixed: None,
            last_non_null: None,
            last_of_partition: None,
        }
    }

    fn nth(&self) -> usize {
        match self.pick {
            Pick::Nth(n) => n,
            _ => 1,
        }
    }

    fn unbounded_start(&self) -> bool {
        self.cursor.spec().unbounded_start()
    }
}

impl WindowEvaluator for Value {
    fn ready(&mut self, i: usize, rows: &PartitionRows) -> Result<bool> {
        self.pending = self.cursor.frame(i, rows);
        let Some((s, e)) = self.pending else {
            return Ok(false);
        };
        if e <= rows.end() {
            return Ok(true);
        }
        // A replayed partition whose frame reaches its end before its last rows arrive: the
        // last value comes from the first pass, the first or n-th row must have arrived.
        Ok(match self.pick {
            Pick::Last => self.last_of_partition.is_some() || s >= e,
            Pick::First | Pick::Nth(_) => {
                !self.ignore_nulls && (s + self.nth() - 1 < rows.end() || s + self.nth() > e)
            }
        })
    }

    fn evaluate(&mut self, _i: usize, rows: &PartitionRows) -> Result<()> {
        let (s, e) = self.pending.take().ok_or_else(not_ready)?;
        let f = self.function;
        if e > rows.end() && self.pick == Pick::Last {
            self.start = s;
            self.end = e;
            let source = match &self.last_of_partition {
                Some((row, value)) if s < e && *row >= s => {
                    Source::Held(self.gather.hold(Arc::clone(value)))
                }
                _ => Source::Null,
            };
            self.gather.sources.push(source);
            return Ok(());
        }
        let source = if !self.ignore_nulls {
            self.start = s;
            self.end = e;
            match self.pick {
                Pick::Last => {
                    if s < e {
                        Source::Row(e - 1)
                    } else {
                        Source::Null
                    }
                }
                Pick::First | Pick::Nth(_) => {
                    let n = match self.pick {
                        Pick::Nth(n) => n,
                        _ => 1,
                    };
                    let row = s + n - 1;
                    if row >= e {
                        Source::Null
                    } else if self.unbounded_start() {
                        let pin = self.fixed.get_or_insert_with(|| Pinned::new(row));
                        pin.source(&mut self.gather)
                    } else {
                        Source::Row(row)
                    }
                }
            }
        } else if self.unbounded_start() {
            // Rows only enter the frame: remember the first n non-NULL ones, or the last.
            while self.added < e {
                let row = self.added;
                self.added += 1;
                if rows.value_is_null(f, row) {
                    continue;
                }
                match self.pick {
                    Pick::Last => self.last_non_null = Some(Pinned::new(row)),
                    Pick::First | Pick::Nth(_) => {
                        let n = match self.pick {
                            Pick::Nth(n) => n,
                            _ => 1,
                        };
                        if self.non_null.len() < n {
                            self.non_null.push_back(row);
                            if self.non_null.len() == n {
                                self.fixed = Some(Pinned::new(row));
                            }
                        }
                    }
                }
            }
            self.start = 0;
            self.end = e;
            let chosen = match self.pick {
                Pick::Last => self.last_non_null.as_ref(),
                _ => self.fixed.as_ref(),
            };
            match chosen {
                Some(pin) => pin.source(&mut self.gather),
                None => Source::Null,
            }
        } else {
            if s >= self.added {
                self.non_null.clear();
                self.added = s;
            }
            while self.added < e {
                if !rows.value_is_null(f, self.added) {
                    self.non_null.push_back(self.added);
                }
                self.added += 1;
            }
            while self.non_null.front().is_some_and(|&r| r < s) {
                self.non_null.pop_front();
            }
            // Rows past the end (a frame ending before the current row) leave at the back.
            let visible = self.non_null.partition_point(|&r| r < e);
            self.start = s;
            self.end = e;
            let chosen = match self.pick {
                Pick::First => self.non_null.front().filter(|_| visible > 0),
                Pick::Last => visible.checked_sub(1).and_then(|v| self.non_null.get(v)),
                Pick::Nth(n) => self.non_null.get(n - 1).filter(|_| n <= visible),
            };
            match chosen {
                Some(&row) => Source::Row(row),
                None => Source::Null,
            }
        };
        self.gather.sources.push(source);
        Ok(())
    }

    fn needed_from(&self) -> usize {
        if self.unbounded_start() {
            // Pinned rows are copied out; the frame's end row is the only other candidate.
            match (self.ignore_nulls, self.pick) {
                (false, Pick::Last) => self.end.saturating_sub(1),
                _ => self.end,
            }
        } else {
            self.start.min(self.end.saturating_sub(1))
        }
    }

    fn before_release(&mut self, floor: usize, rows: &PartitionRows) -> Result<()> {
        for pin in [&mut self.fixed, &mut self.last_non_null]
            .into_iter()
            .flatten()
        {
            pin.keep(self.function, floor, rows)?;
        }
        Ok(())
    }

    fn take_output(&mut self, rows: &PartitionRows) -> Result<ArrayRef> {
        let out = self.gather.take(self.function, &self.data_type, rows)?;
        self.gather.held.clear();
        Ok(out)
    }

    fn reset(&mut self) {
        self.cursor.reset();
        self.pending = None;
        self.non_null.clear();
        self.added = 0;
        self.start = 0;
        self.end = 0;
        self.fixed = None;
        self.last_non_null = None;
        self.last_of_partition = None;
    }

    fn set_totals(&mut self, totals: PartitionTotals) {
        self.last_of_partition = totals.last;
    }
}

// ---------------------------------------------------------------------------------------
// Aggregates over frames

/// The running state of an aggregate over the rows in the frame.
#[derive(Clone, Debug)]
pub(super) enum State {
    /// `count(*)` or `count(x)`.
    Count { star: bool, count: i64 },
    /// Exact sums (integers, decimals) and their averages.
    ExactSum { sum: i128, count: i64 },
    /// Floating-point sums and averages.
    FloatSum { sum: f64, count: i64 },
    /// Welford's running mean and squared deviations.
    Variance { count: i64, mean: f64, m2: f64 },
    /// `min`/`max` over a frame that also loses rows: rows that may still become the
    /// answer, best first.
    Queue(VecDeque<usize>),
    /// `min`/`max` over a frame that only gains rows: the best so far.
    Best(Option<(OwnedRow, Pinned)>),
}

/// An aggregate over each row's frame.
#[derive(Debug)]
pub(super) struct FrameAggregate {
    function: usize,
    func: AggregateFunction,
    output: DataType,
    cursor: FrameCursor,
    pending: Option<(usize, usize)>,
    state: State,
    /// The rows in `state`: `[start, end)`.
    start: usize,
    end: usize,
    /// The scale of exact inputs (0 for integers).
    scale: i8,
    integers: Vec<Option<i64>>,
    exact: Vec<Option<i128>>,
    floats: Vec<Option<f64>>,
    gather: Gather,
    /// A replayed partition's state over all its rows, for frames ending at its end.
    whole: Option<State>,
}

impl FrameAggregate {
    pub(super) fn new(
        function: usize,
        func: AggregateFunction,
        star: bool,
        frame: FrameSpec,
        input: &DataType,
        output: DataType,
    ) -> Result<Self> {
        let state = Self::empty_state(func, star, input, frame.unbounded_start())?;
        Ok(Self {
            function,
            func,
            output,
            cursor: FrameCursor::new(frame),
            pending: None,
            state,
            start: 0,
            end: 0,
            scale: match input {
                DataType::Decimal128(_, s) => *s,
                _ => 0,
            },
            integers: vec![],
            exact: vec![],
            floats: vec![],
            gather: Gather::default(),
            whole: None,
        })
    }

    /// Add rows up to `to` (exclusive) to a frame that only grows, copying out what the
    /// state keeps of them: a first pass over a partition going to disk.
    pub(super) fn accumulate(&mut self, rows: &PartitionRows, to: usize) -> Result<()> {
        while self.end < to {
            self.update(self.end, true, rows)?;
            self.end += 1;
        }
        self.before_release(to, rows)
    }

    /// The state over every row added.
    pub(super) fn into_state(self) -> State {
        self.state
    }

    fn empty_state(
        func: AggregateFunction,
        star: bool,
        input: &DataType,
        only_grows: bool,
    ) -> Result<State> {
        Ok(match func {
            AggregateFunction::Count => State::Count { star, count: 0 },
            AggregateFunction::Sum | AggregateFunction::Avg => match input {
                DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                    State::FloatSum { sum: 0.0, count: 0 }
                }
                _ => State::ExactSum { sum: 0, count: 0 },
            },
            AggregateFunction::StddevSamp
            | AggregateFunction::StddevPop
            | AggregateFunction::VarSamp
            | AggregateFunction::VarPop => State::Variance {
                count: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AggregateFunction::Min | AggregateFunction::Max => {
                if only_grows {
                    State::Best(None)
                } else {
                    State::Queue(VecDeque::new())
                }
            }
            AggregateFunction::First | AggregateFunction::Last => {
                return Err(EngineError::Internal(
                    "first/last windows are value functions".into(),
                ))
            }
            AggregateFunction::Quantile(_)
            | AggregateFunction::ArgMin
            | AggregateFunction::ArgMax
            | AggregateFunction::CovarPop
            | AggregateFunction::CovarSamp
            | AggregateFunction::Corr
            | AggregateFunction::ApproxCountDistinct
            | AggregateFunction::ApproxQuantile
            | AggregateFunction::StringAgg { .. } => {
                return Err(EngineError::NotSupported(format!(
                    "{}() as a window function",
                    func.name()
                )))
            }
        })
    }

    fn clear_state(&mut self) {
        match &mut self.state {
            State::Count { count, .. } => *count = 0,
            State::ExactSum { sum, count } => {
                *sum = 0;
                *count = 0;
            }
            State::FloatSum { sum, count } => {
                *sum = 0.0;
                *count = 0;
            }
            State::Variance { count, mean, m2 } => {
                *count = 0;
                *mean = 0.0;
                *m2 = 0.0;
            }
            State::Queue(q) => q.clear(),
            State::Best(best) => *best = None,
        }
    }

    /// Add (`sign = 1`) or remove (`sign = -1`) `row`.
    fn update(&mut self, row: usize, add: bool, rows: &PartitionRows) -> Result<()> {
        let (chunk, offset) = rows.locate(row);
        let input = &chunk.inputs[self.function];
        let max = self.func == AggregateFunction::Max;
        match &mut self.state {
            State::Count { star, count } => {
                let counted = *star || input.values.as_ref().is_some_and(|v| v.is_valid(offset));
                if counted {
                    *count += if add { 1 } else { -1 };
                }
            }
            State::ExactSum { sum, count } => {
                let Some(Numbers::Exact(values)) = &input.numbers else {
                    return Err(EngineError::Internal("exact window sum input".into()));
                };
                if values.is_valid(offset) {
                    let v = values.value(offset);
                    let next = if add {
                        sum.checked_add(v)
                    } else {
                        sum.checked_sub(v)
                    };
                    *sum = next.ok_or_else(|| {
                        EngineError::Execution("window sum overflowed 128 bits".into())
                    })?;
                    *count += if add { 1 } else { -1 };
                }
            }
            State::FloatSum { sum, count } => {
                let Some(Numbers::Float(values)) = &input.numbers else {
                    return Err(EngineError::Internal("float window sum input".into()));
                };
                if values.is_valid(offset) {
                    let v = values.value(offset);
                    if add {
                        *sum += v;
                        *count += 1;
                    } else {
                        *sum -= v;
                        *count -= 1;
                        if *count == 0 {
                            *sum = 0.0;
                        }
                    }
                }
            }
            State::Variance { count, mean, m2 } => {
                let x = match &input.numbers {
                    Some(Numbers::Float(values)) => {
                        values.is_valid(offset).then(|| values.value(offset))
                    }
                    Some(Numbers::Exact(values)) => values
                        .is_valid(offset)
                        .then(|| values.value(offset) as f64 / 10f64.powi(values.scale() as i32)),
                    None => return Err(EngineError::Internal("variance input".into())),
                };
                if let Some(x) = x {
                    if add {
                        *count += 1;
                        let d = x - *mean;
                        *mean += d / *count as f64;
                        *m2 += d * (x - *mean);
                    } else if *count <= 1 {
                        *count = 0;
                        *mean = 0.0;
                        *m2 = 0.0;
                    } else {
                        let n = *count as f64;
                        let new_mean = (*mean * n - x) / (n - 1.0);
                        *m2 -= (x - *mean) * (x - new_mean);
                        *mean = new_mean;
                        *count -= 1;
                        if *m2 < 0.0 {
                            *m2 = 0.0;
                        }
                    }
                }
            }
            State::Queue(queue) => {
                let ordered = input.ordered()?;
                if add {
                    if input.values.as_ref().is_some_and(|v| v.is_null(offset)) {
                        return Ok(());
                    }
                    let new = ordered.row(offset);
                    while let Some(&back) = queue.back() {
                        let (c, o) = rows.locate(back);
                        let old = c.inputs[self.function].ordered()?.row(o);
                        let dominated = if max { old <= new } else { old >= new };
                        if !dominated {
                            break;
                        }
                        queue.pop_back();
                    }
                    queue.push_back(row);
                } else if queue.front() == Some(&row) {
                    queue.pop_front();
                }
            }
            State::Best(best) => {
                if !add {
                    return Err(EngineError::Internal("removal from a growing frame".into()));
                }
                if input.values.as_ref().is_some_and(|v| v.is_null(offset)) {
                    return Ok(());
                }
                let new = input.ordered()?.row(offset);
                let better = match best {
                    None => true,
                    Some((old, _)) => {
                        if max {
                            new > old.row()
                        } else {
                            new < old.row()
                        }
                    }
                };
                if better {
                    *best = Some((new.owned(), Pinned::new(row)));
                }
            }
        }
        Ok(())
    }

    fn push_result(&mut self) -> Result<()> {
        match &self.state {
            State::Count { count, .. } => self.integers.push(Some(*count)),
            State::ExactSum { sum, count } => {
                if self.func == AggregateFunction::Avg {
                    let DataType::Float64 = self.output else {
                        return Err(EngineError::Internal("avg output".into()));
                    };
                    self.floats.push(
                        (*count > 0).then(|| {
                            (*sum as f64 / 10f64.powi(self.exact_scale())) / *count as f64
                        }),
                    );
                } else {
                    self.exact.push((*count > 0).then_some(*sum));
                }
            }
            State::FloatSum { sum, count } => self.floats.push((*count > 0).then(|| {
                if self.func == AggregateFunction::Avg {
                    sum / *count as f64
                } else {
                    *sum
                }
            })),
            State::Variance { count, m2, .. } => {
                let n = *count as f64;
                let value = match self.func {
                    AggregateFunction::VarSamp => (*count > 1).then(|| m2 / (n - 1.0)),
                    AggregateFunction::VarPop => (*count > 0).then(|| m2 / n),
                    AggregateFunction::StddevSamp => (*count > 1).then(|| (m2 / (n - 1.0)).sqrt()),
                    _ => (*count > 0).then(|| (m2 / n).sqrt()),
                };
                self.floats.push(value);
            }
            State::Queue(queue) => {
                let source = queue.front().map_or(Source::Null, |&r| Source::Row(r));
                self.gather.sources.push(source);
            }
            State::Best(best) => {
                let source = match best {
                    Some((_, pin)) => pin.source(&mut self.gather),
                    None => Source::Null,
                };
                self.gather.sources.push(source);
            }
        }
        Ok(())
    }

    /// The scale of exact sums' input (0 for integers).
    fn exact_scale(&self) -> i32 {
        self.scale as i32
    }
}

impl WindowEvaluator for FrameAggregate {
    fn ready(&mut self, i: usize, rows: &PartitionRows) -> Result<bool> {
        self.pending = self.cursor.frame(i, rows);
        let Some((s, e)) = self.pending else {
            return Ok(false);
        };
        // A frame reaching past the rows received: only a replayed partition's frames to its
        // end, from the first pass's state (rows leaving at the start must have arrived).
        Ok(e <= rows.end() || (self.whole.is_some() && s <= rows.end()))
    }

    fn evaluate(&mut self, _i: usize, rows: &PartitionRows) -> Result<()> {
        let (s, e) = self.pending.take().ok_or_else(not_ready)?;
        if e > rows.end() && self.end < e {
            let whole = self
                .whole
                .clone()
                .ok_or_else(|| EngineError::Internal("window frame past its rows".into()))?;
            self.state = whole;
            self.start = 0;
            self.end = e;
        }
        if s >= self.end {
            // The new frame starts past everything held: start from empty.
            self.clear_state();
            self.start = s;
            self.end = s;
        }
        while self.end < e {
            self.update(self.end, true, rows)?;
            self.end += 1;
        }
        if !self.cursor.spec().unbounded_start() {
            while self.start < s {
                self.update(self.start, false, rows)?;
                self.start += 1;
            }
        }
        if let State::Queue(queue) = &mut self.state {
            while queue.front().is_some_and(|&r| r < s) {
                queue.pop_front();
            }
        }
        self.push_result()
    }

    fn needed_from(&self) -> usize {
        if self.cursor.spec().unbounded_start() {
            self.end
        } else {
            self.start
        }
    }

    fn before_release(&mut self, floor: usize, rows: &PartitionRows) -> Result<()> {
        if let State::Best(Some((_, pin))) = &mut self.state {
            pin.keep(self.function, floor, rows)?;
        }
        Ok(())
    }

    fn take_output(&mut self, rows: &PartitionRows) -> Result<ArrayRef> {
        Ok(match &self.state {
            State::Count { .. } => Arc::new(Int64Array::from(std::mem::take(&mut self.integers))),
            State::ExactSum { .. } if self.func == AggregateFunction::Sum => {
                let sums = std::mem::take(&mut self.exact);
                match &self.output {
                    DataType::Int64 => {
                        let out = sums
                            .into_iter()
                            .map(|v| {
                                v.map(|v| {
                                    i64::try_from(v).map_err(|_| {
                                        EngineError::Execution(format!(
                                            "sum {v} does not fit in BIGINT"
                                        ))
                                    })
                                })
                                .transpose()
                            })
                            .collect::<Result<Int64Array>>()?;
                        Arc::new(out)
                    }
                    DataType::Decimal128(p, s) => {
                        Arc::new(Decimal128Array::from(sums).with_precision_and_scale(*p, *s)?)
                    }
                    other => {
                        return Err(EngineError::Internal(format!(
                            "window sum cannot produce {other}"
                        )))
                    }
                }
            }
            State::Queue(_) | State::Best(_) => {
                let out = self.gather.take(self.function, &self.output, rows)?;
                self.gather.held.clear();
                out
            }
            _ => Arc::new(Float64Array::from(std::mem::take(&mut self.floats))),
        })
    }

    fn reset(&mut self) {
        self.cursor.reset();
        self.pending = None;
        self.clear_state();
        self.start = 0;
        self.end = 0;
        self.whole = None;
    }

    fn set_totals(&mut self, totals: PartitionTotals) {
        self.whole = totals.aggregate;
    }
}
