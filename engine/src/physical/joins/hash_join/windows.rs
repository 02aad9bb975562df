//! Key windows: a build side too big for the budget, split by ranges of the key instead of
//! by hash, when the probe side arrives in key order.
//!
//! Data written in key order (`lineitem` by `l_orderkey`) has row groups whose ranges of the
//! key barely overlap, and a scan that claims whole row groups in that order reports which
//! one each partition is reading ([`KeySegments`]). A probe partition then only ever needs
//! the build rows whose keys fall in the range of the row group it reads. So when the build
//! side does not fit, its rows are routed to *windows*: one per probe row group (runs of
//! consecutive row groups when there are more than 256), each with the key range it covers. The lowest windows stay in memory
//! as far as the budget allows, the others are written out, and a probe partition loads the
//! window of its current row group when it gets there. Every probe row is joined against the
//! one window that holds every build row of its key, so no probe row is ever written out,
//! and all join types that emit probe rows (inner, outer, semi, anti, scalar) stay exact.
//!
//! ```text
//!   probe row groups:  [1..999] [999..2000] [2000..3100] ... (claimed in this order)
//!   windows:           w0 = [1..2000]       w1 = [2000..4200] ...
//!   build rows ──► by key ──► w0 (memory)   w1 (memory)  w2 (file)  w3 (file) ...
//!   probe partition at row group 7 ──► window of row group 7 (loaded on first use)
//! ```
//!
//! A build key equal to a boundary value that two windows share goes to both; a key outside
//! every window's range matches no probe row and is dropped. A window is released once every
//! partition has claimed a row group beyond it: partitions claim row groups in ascending
//! order, so no later probe row can need it. A window that cannot be loaded, even after the
//! windows behind it were released, is *deferred*: its probe rows are written out and it
//! becomes an ordinary grace job (see [`super::grace`]) after the probe input ends.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array};

use super::table::BuildSide;
use crate::error::Result;
use crate::memory::SpillFile;
use crate::physical::key_segments::KeySegments;
use crate::physical::TaskContext;

/// Most windows of a join: every probe row group its own window up to this many (smaller
/// windows hold less memory at once; at SF10 `lineitem` has 60 row groups of 1M rows).
const MAX_WINDOWS: usize = 256;

/// How long a partition waits for the windows behind it to be released before it defers the
/// window it could not load.
const LOAD_WAIT: Duration = Duration::from_secs(2);

/// Where a window's build rows are.
#[derive(Debug)]
pub(super) enum Window {
    /// Indexed in memory.
    Memory(Arc<BuildSide>),
    /// In spill files, not loaded yet.
    Disk(Vec<SpillFile>),
    /// Being loaded by a partition.
    Loading,
    /// Too big to load: joined as a grace job after the probe input (its build files).
    Deferred(Vec<SpillFile>),
    /// No probe row can need it any more (or it never held a row).
    Gone,
}

/// What a probe partition joins its rows of one window against.
pub(super) enum Acquired {
    /// The window's build rows.
    Build(Arc<BuildSide>),
    /// The window was deferred: write its probe rows out.
    Deferred,
}

#[derive(Debug, Default)]
struct State {
    windows: Vec<Window>,
    /// Windows loaded from spill files.
    loaded: usize,
    /// Windows deferred to grace jobs.
    deferred: usize,
}

/// The windows of one join.
#[derive(Debug)]
pub(super) struct KeyWindows {
    segments: Arc<KeySegments>,
    /// Per window: the `[lo, hi]` key range of its row groups, ascending.
    ranges: Vec<(i64, i64)>,
    /// Per probe segment (row group, in claiming order): its window.
    window_of_segment: Vec<usize>,
    state: Mutex<State>,
    changed: Condvar,
}

impl KeyWindows {
    /// Windows over the probe segments, or `None` unless they are claimed in ascending key
    /// order and there are at least two of them.
    pub(super) fn plan(segments: Arc<KeySegments>) -> Option<Self> {
        let bounds = segments.bounds();
        if bounds.len() < 2 || !segments.ascending() {
            return None;
        }
        let count = bounds.len().min(MAX_WINDOWS);
        // Consecutive segments, as evenly split as the count allows.
        let window_of_segment: Vec<usize> = (0..bounds.len())
            .map(|s| s * count / bounds.len())
            .collect();
        let mut ranges: Vec<(i64, i64)> = Vec::with_capacity(count);
        for (s, &(lo, hi)) in bounds.iter().enumerate() {
            match ranges.get_mut(window_of_segment[s]) {
                Some(range) => range.1 = range.1.max(hi),
                None => ranges.push((lo, hi)),
            }
        }
        Some(Self {
            segments,
            ranges,
            window_of_segment,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    /// Number of windows.
    pub(super) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Per window, the rows of `keys` that belong to it (a shared boundary value belongs to
    /// every window holding it; a NULL or out-of-range key to none).
    pub(super) fn route(&self, keys: &Int64Array) -> Vec<Vec<u32>> {
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); self.ranges.len()];
        for row in 0..keys.len() {
            if keys.is_null(row) {
                continue;
            }
            let v = keys.value(row);
            // The windows holding `v` are contiguous and end at the last one starting at or
            // below it.
            let mut w = self.ranges.partition_point(|r| r.0 <= v);
            while w > 0 && self.ranges[w - 1].1 >= v {
                members[w - 1].push(row as u32);
                w -= 1;
            }
        }
        members
    }

    /// Install the windows as the build left them.
    pub(super) fn install(&self, windows: Vec<Window>) {
        self.lock().windows = windows;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The window of the row group `partition` is reading.
    pub(super) fn window_of_partition(&self, partition: usize) -> Option<usize> {
        let segment = self.segments.current(partition).checked_sub(1)?;
        self.window_of_segment.get(segment).copied()
    }

    /// The lowest window a probe row can still need: that of the least advanced partition's
    /// claimed row group (a partition that has claimed none yet will claim one beyond every
    /// row group claimed so far).
    fn lowest_needed(&self) -> usize {
        let claims: Vec<usize> = (0..self.segments.partitions())
            .map(|p| self.segments.current(p))
            .collect();
        let highest = claims.iter().copied().max().unwrap_or(0);
        claims
            .into_iter()
            .map(|c| if c == 0 { highest } else { c })
            .filter_map(|c| c.checked_sub(1))
            .filter_map(|s| self.window_of_segment.get(s).copied())
            .min()
            .unwrap_or(0)
    }

    /// Release the windows below the lowest one still needed (deferred windows stay for
    /// their jobs).
    fn release_passed(&self, state: &mut State) {
        let lowest = self.lowest_needed();
        let mut released = false;
        for window in state.windows.iter_mut().take(lowest) {
            if matches!(window, Window::Memory(_) | Window::Disk(_)) {
                *window = Window::Gone;
                released = true;
            }
        }
        if released {
            self.changed.notify_all();
        }
    }

    /// The build rows of window `w` for a probe partition, loading them with `load` if they
    /// are on disk. `load` gives the files back when the budget has no room; the partition
    /// then waits for the windows behind it to be released, and defers the window when that
    /// does not help.
    pub(super) fn acquire(
        &self,
        w: usize,
        ctx: &TaskContext,
        mut load: impl FnMut(Vec<SpillFile>) -> Result<std::result::Result<BuildSide, Vec<SpillFile>>>,
    ) -> Result<Acquired> {
        let mut state = self.lock();
        loop {
            self.release_passed(&mut state);
            let Some(window) = state.windows.get_mut(w) else {
                return Err(super::broken("a key window out of range"));
            };
            match window {
                Window::Memory(build) => return Ok(Acquired::Build(Arc::clone(build))),
                Window::Deferred(_) => return Ok(Acquired::Deferred),
                Window::Gone => {
                    return Err(super::broken(
                        "a key window was released while still needed",
                    ))
                }
                Window::Loading => {
                    state = self
                        .changed
                        .wait_timeout(state, Duration::from_millis(20))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    ctx.check_cancelled()?;
                }
                Window::Disk(files) => {
                    let mut files = std::mem::take(files);
                    *window = Window::Loading;
                    drop(state);
                    let started = Instant::now();
                    let outcome = loop {
                        match load(files) {
                            Ok(Ok(build)) => break Ok(Some(build)),
                            Ok(Err(back)) => files = back,
                            Err(e) => break Err(e),
                        }
                        // No room: wait for partitions behind to move on, while any window
                        // other than this one still holds memory.
                        let mut state = self.lock();
                        self.release_passed(&mut state);
                        let others_hold = state
                            .windows
                            .iter()
                            .enumerate()
                            .any(|(i, x)| i != w && matches!(x, Window::Memory(_)));
                        if !others_hold || started.elapsed() >= LOAD_WAIT {
                            state.windows[w] = Window::Deferred(std::mem::take(&mut files));
                            state.deferred += 1;
                            self.changed.notify_all();
                            break Ok(None);
                        }
                        drop(
                            self.changed
                                .wait_timeout(state, Duration::from_millis(20))
                                .unwrap_or_else(|e| e.into_inner())
                                .0,
                        );
                        ctx.check_cancelled()?;
                    };
                    state = self.lock();
                    match outcome {
                        Ok(Some(build)) => {
                            let build = Arc::new(build);
                            state.windows[w] = Window::Memory(Arc::clone(&build));
                            state.loaded += 1;
                            self.changed.notify_all();
                            return Ok(Acquired::Build(build));
                        }
                        Ok(None) => return Ok(Acquired::Deferred),
                        Err(e) => {
                            // Leave nothing waiting on a load that will never finish.
                            state.windows[w] = Window::Gone;
                            self.changed.notify_all();
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    /// Whether some window was deferred.
    pub(super) fn any_deferred(&self) -> bool {
        self.lock().deferred > 0
    }

    /// At the end of the probe input: release every window and hand over the deferred ones
    /// (window, build files).
    pub(super) fn finish(&self) -> Vec<(usize, Vec<SpillFile>)> {
        let mut state = self.lock();
        let mut deferred = Vec::new();
        for (w, window) in state.windows.iter_mut().enumerate() {
            if let Window::Deferred(files) = std::mem::replace(window, Window::Gone) {
                deferred.push((w, files));
            }
        }
        self.changed.notify_all();
        deferred
    }

    /// A line for the metrics: windows, how many were loaded and deferred.
    pub(super) fn summary(&self, in_memory: usize) -> String {
        let state = self.lock();
        format!(
            "{} by {} ({in_memory} kept from the build, {} loaded, {} deferred)",
            self.ranges.len(),
            self.segments.column,
            state.loaded,
            state.deferred
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(bounds: &[(i64, i64)]) -> Option<KeyWindows> {
        let segments = KeySegments::plan("k".into(), bounds, 2)?;
        KeyWindows::plan(Arc::new(segments))
    }

    #[test]
    fn boundary_keys_go_to_both_windows_and_outsiders_to_none() {
        // 512 segments of 10 keys sharing their boundary values: 256 windows of two segments.
        let bounds: Vec<(i64, i64)> = (0..512).map(|s| (s * 10, s * 10 + 10)).collect();
        let w = windows(&bounds).unwrap();
        assert_eq!(w.len(), 256);
        assert_eq!(w.ranges[0], (0, 20));
        assert_eq!(w.ranges[1], (20, 40));
        let keys = Int64Array::from(vec![
            Some(5),
            Some(20),
            None,
            Some(-1),
            Some(5121),
            Some(39),
        ]);
        let members = w.route(&keys);
        assert_eq!(members[0], vec![0, 1]);
        assert_eq!(members[1], vec![1, 5]);
        assert!(members[2..].iter().all(Vec::is_empty));
        // Fewer segments: one window each.
        assert_eq!(windows(&bounds[..40]).unwrap().len(), 40);
    }

    #[test]
    fn segments_out_of_key_order_get_no_windows() {
        assert!(windows(&[(10, 20), (0, 9), (21, 30)]).is_none());
        assert!(windows(&[(0, 9)]).is_none());
        // Fewer segments than windows: one window each.
        assert_eq!(windows(&[(0, 9), (10, 19), (19, 30)]).unwrap().len(), 3);
    }

    #[test]
    fn a_point_window_between_neighbours_shares_its_key_with_both() {
        let w = windows(&[(0, 5), (5, 5), (5, 9)]).unwrap();
        let members = w.route(&Int64Array::from(vec![5]));
        assert_eq!(members, vec![vec![0], vec![0], vec![0]]);
    }
}
