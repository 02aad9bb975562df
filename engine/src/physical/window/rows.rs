//! The rows of the current window partition that are still needed.
//!
//! Rows arrive in chunks (slices of input batches, in partition order). Each chunk carries what
//! the window functions read besides the input columns: every row's peer group, the single
//! `ORDER BY` key as a number for `RANGE` frames with offsets, and each function's evaluated
//! arguments. Rows are numbered from 0 within their partition. Once every function has moved
//! past a row (and it has been emitted), whole chunks before it are released, so a partition
//! is held only as far as its frames reach, not whole.

use std::collections::VecDeque;

use arrow::array::{Array, ArrayRef, Decimal128Array, Float64Array, RecordBatch};
use arrow::row::Rows;

/// A number of the `RANGE` key, in ascending order (descending keys are negated), with NULL
/// below or above every value as the sort put it.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub(crate) enum KeyValue {
    /// An integer, a decimal's unscaled value, days or microseconds.
    Exact(i128),
    /// A floating-point number.
    Float(f64),
}

impl KeyValue {
    /// `self + offset` (saturating).
    pub(crate) fn plus(self, offset: KeyValue) -> KeyValue {
        match (self, offset) {
            (KeyValue::Exact(a), KeyValue::Exact(b)) => KeyValue::Exact(a.saturating_add(b)),
            (KeyValue::Float(a), KeyValue::Float(b)) => KeyValue::Float(a + b),
            (a, _) => a,
        }
    }

    /// `self - offset` (saturating).
    pub(crate) fn minus(self, offset: KeyValue) -> KeyValue {
        match (self, offset) {
            (KeyValue::Exact(a), KeyValue::Exact(b)) => KeyValue::Exact(a.saturating_sub(b)),
            (KeyValue::Float(a), KeyValue::Float(b)) => KeyValue::Float(a - b),
            (a, _) => a,
        }
    }
}

/// The `RANGE` key of a chunk's rows.
#[derive(Debug)]
pub(super) enum KeyColumn {
    /// Exact keys; NULL entries are `None`.
    Exact(Vec<Option<i128>>),
    /// Floating-point keys.
    Float(Vec<Option<f64>>),
}

/// A function argument as numbers, for aggregates.
#[derive(Debug)]
pub(super) enum Numbers {
    /// Integers and decimals as unscaled 128-bit values.
    Exact(Decimal128Array),
    /// Floating-point values.
    Float(Float64Array),
}

/// What one window function reads of a chunk's rows.
#[derive(Debug, Default)]
pub(super) struct FunctionInput {
    /// The first argument (the value a value or offset function returns, or an aggregate's).
    pub(super) values: Option<ArrayRef>,
    /// The first argument as numbers (sums, averages, variances).
    pub(super) numbers: Option<Numbers>,
    /// The first argument in row format, for comparing (`min`, `max`).
    pub(super) ordered: Option<Rows>,
    /// A second argument evaluated per row (`ntile`'s bucket count, `lag`'s default, ...).
    pub(super) extra: Option<ArrayRef>,
}

impl FunctionInput {
    /// The first argument (an internal error if the call has none).
    pub(super) fn values(&self) -> crate::error::Result<&ArrayRef> {
        self.values
            .as_ref()
            .ok_or_else(|| missing("value argument"))
    }

    /// The per-row second argument.
    pub(super) fn extra(&self) -> crate::error::Result<&ArrayRef> {
        self.extra
            .as_ref()
            .ok_or_else(|| missing("second argument"))
    }

    /// The first argument in row format.
    pub(super) fn ordered(&self) -> crate::error::Result<&Rows> {
        self.ordered
            .as_ref()
            .ok_or_else(|| missing("argument in row format"))
    }
}

fn missing(what: &str) -> crate::error::EngineError {
    crate::error::EngineError::Internal(format!("window function without its {what}"))
}

/// Consecutive rows of one partition.
#[derive(Debug)]
pub(super) struct Chunk {
    /// Number of the first row within the partition.
    pub(super) start: usize,
    /// The input columns.
    pub(super) batch: RecordBatch,
    /// Peer group of every row (0 is the partition's first group).
    pub(super) groups: Vec<usize>,
    /// The `RANGE` key, when a frame needs it.
    pub(super) keys: Option<KeyColumn>,
    /// Per function, what it reads.
    pub(super) inputs: Vec<FunctionInput>,
    /// Bytes held.
    pub(super) bytes: usize,
}

impl Chunk {
    /// Rows in the chunk.
    pub(super) fn len(&self) -> usize {
        self.batch.num_rows()
    }
}

/// The retained rows of the partition being computed.
#[derive(Debug, Default)]
pub(super) struct PartitionRows {
    chunks: VecDeque<Chunk>,
    /// Rows received so far.
    end: usize,
    /// The partition's last row has been received.
    complete: bool,
    /// The partition's size when known before its rows arrive (a partition replayed from
    /// disk).
    known_total: Option<usize>,
    /// First row of each peer group from `first_group` on.
    group_starts: VecDeque<usize>,
    first_group: usize,
    /// Bytes held by the chunks.
    bytes: usize,
}

impl PartitionRows {
    /// Rows received so far.
    pub(super) fn end(&self) -> usize {
        self.end
    }

    /// True when the partition's last row has been received.
    pub(super) fn complete(&self) -> bool {
        self.complete
    }

    /// The partition's row count, once known.
    pub(super) fn total(&self) -> Option<usize> {
        if self.complete {
            Some(self.end)
        } else {
            self.known_total
        }
    }

    /// The partition has `total` rows, of which none has been received yet.
    pub(super) fn set_known_total(&mut self, total: usize) {
        self.known_total = Some(total);
    }

    /// The partition's row count, for a function that is only ready once it is known.
    pub(super) fn known_total(&self) -> crate::error::Result<usize> {
        self.total().ok_or_else(|| {
            crate::error::EngineError::Internal(
                "window function evaluated before its partition's size was known".into(),
            )
        })
    }

    /// Mark the partition as complete.
    pub(super) fn set_complete(&mut self) {
        self.complete = true;
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The retained chunks.
    pub(super) fn chunks(&self) -> &VecDeque<Chunk> {
        &self.chunks
    }

    /// Peer groups started so far.
    pub(super) fn groups_seen(&self) -> usize {
        self.first_group + self.group_starts.len()
    }

    /// Append rows. `new_groups[i]` is true when row `i` of the chunk starts a peer group;
    /// the chunk's `groups` are filled in here.
    pub(super) fn push(&mut self, mut chunk: Chunk, new_groups: &[bool]) {
        chunk.start = self.end;
        let mut group = self.groups_seen();
        chunk.groups = Vec::with_capacity(new_groups.len());
        for (i, &new) in new_groups.iter().enumerate() {
            if new || (self.end == 0 && i == 0) {
                self.group_starts.push_back(self.end + i);
                group = self.groups_seen();
            }
            chunk.groups.push(group - 1);
        }
        chunk.bytes += chunk.groups.capacity() * std::mem::size_of::<usize>();
        self.end += chunk.len();
        self.bytes += chunk.bytes;
        self.chunks.push_back(chunk);
    }

    /// The chunk holding `row` and the row's offset in it.
    pub(super) fn locate(&self, row: usize) -> (&Chunk, usize) {
        let index = self
            .chunks
            .partition_point(|c| c.start + c.len() <= row)
            .min(self.chunks.len() - 1);
        let chunk = &self.chunks[index];
        debug_assert!(row >= chunk.start && row < chunk.start + chunk.len());
        (chunk, row - chunk.start)
    }

    /// Index of the chunk holding `row` among [`chunks`](Self::chunks).
    pub(super) fn chunk_index(&self, row: usize) -> usize {
        self.chunks.partition_point(|c| c.start + c.len() <= row)
    }

    /// The peer group of `row`.
    pub(super) fn group_of(&self, row: usize) -> usize {
        let (chunk, offset) = self.locate(row);
        chunk.groups[offset]
    }

    /// The first row of peer group `group`: known once the group has started; a group past
    /// the last one of a complete partition starts at its end. `None` while undecided.
    pub(super) fn group_start(&self, group: usize) -> Option<usize> {
        if group < self.first_group {
            // Released groups end before every retained row; frames never reach back there.
            return Some(self.group_starts.front().copied().unwrap_or(0));
        }
        match self.group_starts.get(group - self.first_group) {
            Some(&start) => Some(start),
            None => self.complete.then_some(self.end),
        }
    }

    /// The `RANGE` key of `row`.
    pub(super) fn key(&self, row: usize) -> Option<KeyValue> {
        let (chunk, offset) = self.locate(row);
        match chunk.keys.as_ref()? {
            KeyColumn::Exact(v) => v[offset].map(KeyValue::Exact),
            KeyColumn::Float(v) => v[offset].map(KeyValue::Float),
        }
    }

    /// Release the chunks that end at or before `floor` and the peer groups that do.
    pub(super) fn release(&mut self, floor: usize) {
        while let Some(front) = self.chunks.front() {
            if front.start + front.len() > floor {
                break;
            }
            self.bytes -= front.bytes;
            self.chunks.pop_front();
        }
        while self.group_starts.len() >= 2 && self.group_starts[1] <= floor {
            self.group_starts.pop_front();
            self.first_group += 1;
        }
    }

    /// The retained chunks, taken out.
    pub(super) fn into_chunks(self) -> VecDeque<Chunk> {
        self.chunks
    }

    /// Start over for the next partition.
    pub(super) fn reset(&mut self) {
        *self = PartitionRows::default();
    }

    /// The input columns of rows `from..to` (all retained), one slice per chunk.
    pub(super) fn slices(&self, from: usize, to: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for chunk in &self.chunks {
            let (start, stop) = (chunk.start, chunk.start + chunk.len());
            if stop <= from || start >= to {
                continue;
            }
            let a = from.max(start) - start;
            let b = to.min(stop) - start;
            out.push(chunk.batch.slice(a, b - a));
        }
        out
    }

    /// Whether `row`'s first argument of function `f` is NULL.
    pub(super) fn value_is_null(&self, f: usize, row: usize) -> bool {
        let (chunk, offset) = self.locate(row);
        chunk.inputs[f]
            .values
            .as_ref()
            .is_none_or(|v| v.is_null(offset))
    }
}
