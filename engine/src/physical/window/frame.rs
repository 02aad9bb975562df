//! Frame bounds, row by row.
//!
//! For every standard frame both ends move forward (never back) as the current row does, so a
//! [`FrameCursor`] keeps its last answer and scans on from there: `ROWS` bounds are arithmetic,
//! `GROUPS` and `RANGE ... CURRENT ROW` bounds are peer-group starts, and `RANGE` offsets scan
//! the key. A bound that depends on rows not yet received is `None` (the row must wait); one
//! past the partition's end is clipped to it once the partition is complete.

use crate::physical::window::rows::{KeyValue, PartitionRows};

/// One end of a frame, with its offset resolved for the window's key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Bound {
    /// The partition's first row.
    UnboundedPreceding,
    /// Rows or peer groups before (`ROWS`, `GROUPS`).
    PrecedingCount(usize),
    /// Key values before (`RANGE`).
    PrecedingValue(KeyValue),
    /// The current row (its peer group's edge for `RANGE` and `GROUPS`).
    CurrentRow,
    /// Rows or peer groups after.
    FollowingCount(usize),
    /// Key values after.
    FollowingValue(KeyValue),
    /// The partition's last row.
    UnboundedFollowing,
}

/// How bounds are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Units {
    /// Rows.
    Rows,
    /// Key values (peer groups for `CURRENT ROW`).
    Range,
    /// Peer groups.
    Groups,
}

/// A frame specification.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FrameSpec {
    /// Units.
    pub(crate) units: Units,
    /// First row.
    pub(crate) start: Bound,
    /// Last row (inclusive in SQL; the cursor returns an exclusive end).
    pub(crate) end: Bound,
}

impl FrameSpec {
    /// True when the frame always starts at the partition's first row.
    pub(crate) fn unbounded_start(&self) -> bool {
        self.start == Bound::UnboundedPreceding
    }
}

/// Computes `[start, end)` of each row's frame, rows in order.
#[derive(Debug)]
pub(super) struct FrameCursor {
    spec: FrameSpec,
    /// Last start and end computed (the next answers are at or after them).
    start: usize,
    end: usize,
}

impl FrameCursor {
    pub(super) fn new(spec: FrameSpec) -> Self {
        Self {
            spec,
            start: 0,
            end: 0,
        }
    }

    /// The frame's specification.
    pub(super) fn spec(&self) -> &FrameSpec {
        &self.spec
    }

    /// Start over for a new partition.
    pub(super) fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// The frame of row `i` as `[start, end)` with `start <= end`, or `None` while rows not
    /// yet received decide it.
    pub(super) fn frame(&mut self, i: usize, rows: &PartitionRows) -> Option<(usize, usize)> {
        let end = self.bound(self.spec.end, true, i, rows)?;
        let start = self.bound(self.spec.start, false, i, rows)?.min(end);
        self.start = start;
        self.end = end;
        Some((start, end))
    }

    /// One bound of row `i`'s frame (`is_end`: the exclusive end, else the start).
    fn bound(&self, bound: Bound, is_end: bool, i: usize, rows: &PartitionRows) -> Option<usize> {
        let received = rows.end();
        // A position past the rows received: decided once the partition's size is known and
        // the position is past it (clipped to it), or once the rows up to it arrive.
        let clip = |p: usize| {
            if p <= received {
                Some(p)
            } else {
                rows.total().filter(|&n| p >= n)
            }
        };
        let after = usize::from(is_end);
        match bound {
            Bound::UnboundedPreceding => Some(0),
            Bound::UnboundedFollowing => rows.total(),
            Bound::CurrentRow => match self.spec.units {
                Units::Rows => Some(i + after),
                Units::Range | Units::Groups => rows.group_start(rows.group_of(i) + after),
            },
            Bound::PrecedingCount(k) => match self.spec.units {
                Units::Groups => {
                    let g = rows.group_of(i) + after;
                    if g < k {
                        Some(0)
                    } else {
                        rows.group_start(g - k)
                    }
                }
                _ => Some((i + after).saturating_sub(k)),
            },
            Bound::FollowingCount(k) => match self.spec.units {
                Units::Groups => rows.group_start(rows.group_of(i) + k + after),
                _ => clip(i.saturating_add(k).saturating_add(after)),
            },
            Bound::PrecedingValue(offset) | Bound::FollowingValue(offset) => {
                let Some(v) = rows.key(i) else {
                    // A NULL key: offsets reach exactly the NULL peers.
                    return rows.group_start(rows.group_of(i) + after);
                };
                let target = if matches!(bound, Bound::PrecedingValue(_)) {
                    v.minus(offset)
                } else {
                    v.plus(offset)
                };
                // The first row whose key is >= target (start) or > target (end); the scan
                // goes on from this bound's last answer.
                let mut j = if is_end { self.end } else { self.start };
                while j < received {
                    let beyond = match rows.key(j) {
                        Some(k) if is_end => k > target,
                        Some(k) => k >= target,
                        // NULLs sort before or after every value; before is skipped,
                        // after ends the scan.
                        None => j > i,
                    };
                    if beyond {
                        return Some(j);
                    }
                    j += 1;
                }
                rows.complete().then_some(received)
            }
        }
    }
}
