//! Row groups as key segments: what a scan and a segmented aggregate above it share.
//!
//! Data written in key order (`lineitem` by `l_orderkey`, an event log by date) has row groups
//! whose ranges of that key barely overlap: the footer statistics show `[1, 999939]`,
//! `[999939, 1999525]`, ... A group-by on the key then needs no global hash table. Each row
//! group is a *segment*: its keys occur in no other row group, except a boundary value shared
//! with a neighbour (the writer cut the row groups by row count, in the middle of an order).
//!
//! The scan claims whole row groups per partition and records which one each partition is
//! reading ([`KeySegments::current`]); operators in between pass batches through one at a time,
//! so the aggregate knows the segment of every batch it receives. When its partition moves on,
//! the groups of the segment it left are final and are emitted. Rows whose key is a shared
//! boundary value go to a small side table instead; at the end of the segment its groups are
//! *deposited* here as partial states, per value, and the depositor that completes a value's
//! set (every row group holding the value has deposited) merges them and emits them. Values
//! whose holders never deposit (a row group skipped at run time, or all of whose rows were
//! filtered out) are merged by the last partition to finish.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use arrow::array::RecordBatch;

/// Segments of a scan whose row groups hold disjoint ranges of `column` (but for shared
/// boundary values).
#[derive(Debug)]
pub(crate) struct KeySegments {
    /// The key column, as the scan names it.
    pub column: String,
    /// Per segment (a row group, in the scan's claiming order): its `[min, max]` of the key.
    bounds: Vec<(i64, i64)>,
    /// Per segment: the key values it shares with other segments.
    shared: Vec<Vec<i64>>,
    /// Per shared value: how many segments hold it.
    holders: HashMap<i64, usize>,
    /// Per partition: the segment it claimed last, plus one (0: none yet).
    claimed: Vec<AtomicUsize>,
    /// Partial states deposited per shared value, with the number of holders still to come.
    deposits: Mutex<HashMap<i64, (usize, Vec<RecordBatch>)>>,
    /// Partitions whose aggregate has consumed all of its input.
    finished: AtomicUsize,
}

impl KeySegments {
    /// Segments for row groups with these `[min, max]` bounds of `column` (in claiming order),
    /// read by `partitions` partitions; `None` unless the ranges overlap at most in single
    /// boundary values.
    pub(crate) fn plan(column: String, bounds: &[(i64, i64)], partitions: usize) -> Option<Self> {
        let mut sorted = bounds.to_vec();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0].1 > w[1].0) {
            return None;
        }
        let mut holders: HashMap<i64, usize> = HashMap::new();
        for w in sorted.windows(2) {
            if w[0].1 == w[1].0 {
                holders.insert(w[0].1, 0);
            }
        }
        for &(lo, hi) in bounds {
            for v in [lo, hi] {
                if let Some(n) = holders.get_mut(&v) {
                    *n += 1;
                }
                if lo == hi {
                    break;
                }
            }
        }
        let shared = bounds
            .iter()
            .map(|&(lo, hi)| {
                let mut values: Vec<i64> = [lo, hi]
                    .into_iter()
                    .filter(|v| holders.contains_key(v))
                    .collect();
                values.dedup();
                values
            })
            .collect();
        Some(Self {
            column,
            bounds: bounds.to_vec(),
            shared,
            holders,
            claimed: (0..partitions.max(1))
                .map(|_| AtomicUsize::new(0))
                .collect(),
            deposits: Mutex::new(HashMap::new()),
            finished: AtomicUsize::new(0),
        })
    }

    /// Record that `partition` claimed segment `segment` (called by the scan).
    pub(crate) fn claim(&self, partition: usize, segment: usize) {
        if let Some(c) = self.claimed.get(partition) {
            c.store(segment + 1, Ordering::Relaxed);
        }
    }

    /// The segment (plus one; 0 before the first) that `partition`'s latest batch came from.
    pub(crate) fn current(&self, partition: usize) -> usize {
        self.claimed
            .get(partition)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The key values segment `current` (as returned by [`current`](Self::current)) shares
    /// with other segments.
    pub(crate) fn shared_keys(&self, current: usize) -> &[i64] {
        current
            .checked_sub(1)
            .and_then(|i| self.shared.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// Hand over one holder's partial states of `key`'s groups (possibly none). Returns every
    /// deposit of `key` once all its holders have made theirs.
    pub(crate) fn deposit(
        &self,
        key: i64,
        states: Option<RecordBatch>,
    ) -> Option<Vec<RecordBatch>> {
        let holders = *self.holders.get(&key)?;
        let mut deposits = self.deposits.lock().unwrap_or_else(|e| e.into_inner());
        let entry = deposits.entry(key).or_insert_with(|| (holders, Vec::new()));
        entry.0 = entry.0.saturating_sub(1);
        entry.1.extend(states);
        if entry.0 > 0 {
            return None;
        }
        deposits.remove(&key).map(|(_, states)| states)
    }

    /// One partition's aggregate consumed all of its input. For the last of them, every
    /// deposit still waiting for a holder (one that never delivered rows).
    pub(crate) fn finish_partition(&self) -> Option<Vec<RecordBatch>> {
        let done = self.finished.fetch_add(1, Ordering::AcqRel) + 1;
        if done < self.claimed.len() {
            return None;
        }
        let mut deposits = self.deposits.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            deposits
                .drain()
                .flat_map(|(_, (_, states))| states)
                .collect(),
        )
    }

    /// The `[min, max]` key bounds of each segment, in claiming order.
    pub(crate) fn bounds(&self) -> &[(i64, i64)] {
        &self.bounds
    }

    /// Whether the segments are claimed in ascending key order: every segment's keys are at
    /// least as large as those of the segments claimed before it (a boundary value may be
    /// shared). Partitions claim segments in order, so then no partition ever receives a key
    /// below the smallest key of the segments being read.
    pub(crate) fn ascending(&self) -> bool {
        self.bounds.windows(2).all(|w| w[0].1 <= w[1].0)
    }

    /// Number of partitions reading the segments.
    pub(crate) fn partitions(&self) -> usize {
        self.claimed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::KeySegments;

    #[test]
    fn boundary_values_are_shared_and_overlaps_refused() {
        // Row groups cut in the middle of a key, claimed out of key order.
        let s = KeySegments::plan("k".into(), &[(10, 20), (1, 10), (20, 20), (20, 30)], 2)
            .expect("disjoint but for boundary values");
        assert_eq!(s.shared_keys(0), &[] as &[i64]);
        assert_eq!(s.shared_keys(1), &[10, 20]);
        assert_eq!(s.shared_keys(2), &[10]);
        assert_eq!(s.shared_keys(3), &[20]);
        assert_eq!(s.shared_keys(4), &[20]);
        assert_eq!(s.holders[&10], 2);
        assert_eq!(s.holders[&20], 3);
        assert!(KeySegments::plan("k".into(), &[(1, 10), (9, 20)], 2).is_none());
        assert!(KeySegments::plan("k".into(), &[(1, 5), (7, 9)], 2)
            .is_some_and(|s| s.holders.is_empty()));
    }

    #[test]
    fn a_value_is_released_when_its_last_holder_deposits_or_at_the_end() {
        let s = KeySegments::plan("k".into(), &[(1, 10), (10, 20), (20, 30)], 2).unwrap();
        assert!(s.deposit(10, None).is_none());
        assert_eq!(s.deposit(10, None).map(|v| v.len()), Some(0));
        // A value no segment shares is refused.
        assert!(s.deposit(15, None).is_none());
        assert!(s.deposit(20, None).is_none());
        assert!(s.finish_partition().is_none());
        // The second holder of 20 never came: the last partition gets what is waiting.
        assert_eq!(s.finish_partition().map(|v| v.len()), Some(0));
    }
}
