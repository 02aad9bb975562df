//! Who holds a query's reserved bytes: the current bytes of every holder (an operator and
//! the part of its state), a copy of them taken at the query's peak, the process's resident
//! memory near that peak, and a timeline of reserved bytes against resident memory.
//!
//! Every change of a reservation goes through the ledger under one mutex: the holder's bytes
//! and the total change together, so the total is always the sum of the holders, and the copy
//! taken whenever the total reaches a new high sums exactly to the query's peak. The copy is a
//! vector of a few dozen integers (holders are shared by the partitions of an operator and by
//! every reservation of one part), made only on a new high. Resident memory is read on the
//! way out of the lock, and only when the peak has grown by 2% (and 1 MiB) since the last
//! read, so a query reads it a few dozen times at most.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::process::{resident_memory, ResidentMemory};
use crate::metrics::OperatorMetrics;

/// What a holder's bytes are (the second level of the memory profile, below the operator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MemoryPart {
    /// An aggregate's groups: hash table, keys and accumulator states.
    Groups,
    /// A join's build side: rows and hash table.
    BuildSide,
    /// Rows buffered by a sort before they are sorted (and written as a run).
    SortBuffer,
    /// Rows read back from sorted runs or spilled partitions while they are merged.
    MergeBuffers,
    /// Rows gathered per partition before they are written to a spill file.
    SpillBuffers,
    /// Rows an operator keeps: top-k candidates, window partitions, materialized results.
    Rows,
    /// Per-row flags of a spilled join's probe side.
    ProbeBits,
    /// Column chunks and pages being decoded by a scan.
    DecodeBuffers,
    /// Batches produced and not yet consumed: queued between threads or operators.
    BatchesInFlight,
}

impl MemoryPart {
    /// Whether these are bytes in transit (decoded or queued batches), which exist whatever
    /// the budget says, rather than an operator's state, which it can spill.
    pub(crate) fn in_transit(self) -> bool {
        matches!(self, Self::DecodeBuffers | Self::BatchesInFlight)
    }

    /// The name reports use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Groups => "groups",
            Self::BuildSide => "build side",
            Self::SortBuffer => "sort buffer",
            Self::MergeBuffers => "merge buffers",
            Self::SpillBuffers => "spill buffers",
            Self::Rows => "rows",
            Self::ProbeBits => "probe bits",
            Self::DecodeBuffers => "decode buffers",
            Self::BatchesInFlight => "batches in flight",
        }
    }
}

/// One holder's bytes at the peak.
#[derive(Clone, Debug)]
pub(crate) struct HeldAtPeak {
    /// The consumer's name (without the partition).
    pub(crate) consumer: String,
    pub(crate) part: MemoryPart,
    /// The operator, when the reservation reports to one.
    pub(crate) operator: Option<Arc<OperatorMetrics>>,
    pub(crate) bytes: usize,
}

/// A point of the timeline: time since the query started, bytes reserved, resident memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelinePoint {
    /// Time since the query started.
    pub at: Duration,
    /// Bytes reserved from the pool.
    pub reserved: u64,
    /// The process's resident bytes (0 where they cannot be read).
    pub rss: u64,
    /// Of those, the bytes backed by files (mapped data files, cache entries).
    pub rss_file: u64,
}

/// What the ledger saw: the peak, who held it, and the timeline.
#[derive(Clone, Debug)]
pub(crate) struct LedgerReport {
    pub(crate) peak: usize,
    /// When the peak was reached, since the query started.
    pub(crate) peak_at: Duration,
    /// Every holder's bytes at the peak (holders holding nothing left out); sums to `peak`.
    pub(crate) at_peak: Vec<HeldAtPeak>,
    /// Resident memory read at the last new high that read it (within 2% + 1 MiB of the peak).
    pub(crate) rss_at_peak: Option<ResidentMemory>,
    /// Resident memory when the query started.
    pub(crate) rss_at_start: Option<ResidentMemory>,
    /// The highest resident memory the timeline and the peak reads saw.
    pub(crate) highest_rss: Option<ResidentMemory>,
    pub(crate) timeline: Vec<TimelinePoint>,
}

/// The most points a timeline keeps: when full, every other point goes and the sampling
/// interval doubles.
const TIMELINE_POINTS: usize = 400;
/// The first sampling interval.
pub(crate) const FIRST_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug)]
struct Holder {
    consumer: String,
    part: MemoryPart,
    operator: Option<Arc<OperatorMetrics>>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    holders: Vec<Holder>,
    total: usize,
    /// Of `total`, the bytes of holders in transit.
    transit: usize,
    peak: usize,
    at_peak: Vec<usize>,
    peak_at: Duration,
    /// Resident memory read at a new high, and the total it was read for.
    rss_at_peak: Option<(usize, ResidentMemory)>,
    /// The total from which the next new high reads resident memory.
    rss_mark: usize,
    highest_rss: Option<ResidentMemory>,
    timeline: Vec<TimelinePoint>,
    interval: Duration,
}

/// The per-holder accounting of one pool (see the module docs).
#[derive(Debug)]
pub(crate) struct Ledger {
    started: Instant,
    rss_at_start: Option<ResidentMemory>,
    state: Mutex<State>,
}

/// The outcome of a refused growth: the total reserved when it was refused.
pub(crate) struct Refused(pub(crate) usize);

impl Ledger {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            rss_at_start: resident_memory(),
            state: Mutex::new(State {
                interval: FIRST_SAMPLE_INTERVAL,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index of the holder for `consumer` (its partition suffix `[partition N]` dropped),
    /// `part` and `operator`, registered on first use.
    pub(crate) fn holder(
        &self,
        consumer: &str,
        part: MemoryPart,
        operator: Option<&Arc<OperatorMetrics>>,
    ) -> usize {
        let consumer = consumer.split("[partition").next().unwrap_or(consumer);
        let mut state = self.lock();
        let same_operator = |h: &Holder| match (&h.operator, operator) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if let Some(index) = state
            .holders
            .iter()
            .position(|h| h.part == part && same_operator(h) && h.consumer == consumer)
        {
            return index;
        }
        state.holders.push(Holder {
            consumer: consumer.to_string(),
            part,
            operator: operator.cloned(),
            bytes: 0,
        });
        state.holders.len() - 1
    }

    /// Add `bytes` to `holder` if the total stays within `limit`; the new total. Bytes in
    /// transit are never refused, and count against the limit up to a quarter of it:
    /// operators holding state always have at least three quarters of the budget, so a
    /// budget smaller than the scans' decode buffers still runs (spilling more) instead of
    /// failing.
    pub(crate) fn grow(&self, holder: usize, bytes: usize, limit: usize) -> Result<usize, Refused> {
        let mut state = self.lock();
        let transit = state.holders[holder].part.in_transit();
        let counted = state.total - state.transit + state.transit.min(limit / 4);
        let total = match (state.total.checked_add(bytes), counted.checked_add(bytes)) {
            (Some(total), _) if transit => total,
            (Some(total), Some(counted)) if counted <= limit => total,
            _ => return Err(Refused(state.total)),
        };
        state.total = total;
        if transit {
            state.transit += bytes;
        }
        state.holders[holder].bytes += bytes;
        if total <= state.peak {
            return Ok(total);
        }
        state.peak = total;
        state.peak_at = self.started.elapsed();
        let State {
            holders, at_peak, ..
        } = &mut *state;
        at_peak.clear();
        at_peak.extend(holders.iter().map(|h| h.bytes));
        if total < state.rss_mark {
            return Ok(total);
        }
        state.rss_mark = total + total / 50 + (1 << 20);
        drop(state);
        if let Some(rss) = resident_memory() {
            let mut state = self.lock();
            if state
                .rss_at_peak
                .is_none_or(|(read_for, _)| read_for <= total)
            {
                state.rss_at_peak = Some((total, rss));
            }
            note_highest(&mut state.highest_rss, rss);
        }
        Ok(total)
    }

    /// Take `bytes` from `holder`; whether its bytes are in transit.
    pub(crate) fn shrink(&self, holder: usize, bytes: usize) -> bool {
        let mut state = self.lock();
        let held = &mut state.holders[holder].bytes;
        let bytes = bytes.min(*held);
        *held -= bytes;
        state.total -= bytes;
        let transit = state.holders[holder].part.in_transit();
        if transit {
            state.transit -= bytes;
        }
        transit
    }

    /// The bytes held now.
    pub(crate) fn total(&self) -> usize {
        self.lock().total
    }

    /// The highest total so far.
    pub(crate) fn peak(&self) -> usize {
        self.lock().peak
    }

    /// Add a point to the timeline (reserved now, resident memory now); the interval until
    /// the next one.
    pub(crate) fn sample(&self) -> Duration {
        let rss = resident_memory();
        let at = self.started.elapsed();
        let mut state = self.lock();
        let point = TimelinePoint {
            at,
            reserved: state.total as u64,
            rss: rss.map_or(0, |r| r.total),
            rss_file: rss.map_or(0, |r| r.file),
        };
        if let Some(rss) = rss {
            note_highest(&mut state.highest_rss, rss);
        }
        if state.timeline.len() >= TIMELINE_POINTS {
            // Keep every other point (and the first), sample half as often.
            let mut index = 0;
            state.timeline.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            state.interval *= 2;
        }
        state.timeline.push(point);
        state.interval
    }

    /// What the ledger saw so far.
    pub(crate) fn report(&self) -> LedgerReport {
        let state = self.lock();
        let at_peak = state
            .holders
            .iter()
            .zip(&state.at_peak)
            .filter(|(_, &bytes)| bytes > 0)
            .map(|(h, &bytes)| HeldAtPeak {
                consumer: h.consumer.clone(),
                part: h.part,
                operator: h.operator.clone(),
                bytes,
            })
            .collect();
        LedgerReport {
            peak: state.peak,
            peak_at: state.peak_at,
            at_peak,
            rss_at_peak: state.rss_at_peak.map(|(_, rss)| rss),
            rss_at_start: self.rss_at_start,
            highest_rss: state.highest_rss,
            timeline: state.timeline.clone(),
        }
    }
}

fn note_highest(highest: &mut Option<ResidentMemory>, rss: ResidentMemory) {
    if highest.is_none_or(|h| rss.total > h.total) {
        *highest = Some(rss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_at_the_peak_sums_to_the_peak() {
        let ledger = Ledger::new();
        let a = ledger.holder("Sort[partition 0]", MemoryPart::SortBuffer, None);
        let b = ledger.holder("Sort[partition 1]", MemoryPart::SortBuffer, None);
        let c = ledger.holder("HashJoin(build)", MemoryPart::BuildSide, None);
        assert_eq!(a, b, "partitions share a holder");
        assert_ne!(a, c);
        ledger.grow(a, 100, 1000).ok();
        ledger.grow(c, 300, 1000).ok();
        ledger.shrink(a, 50);
        ledger.grow(c, 200, 1000).ok(); // peak: a 50 + c 500
        ledger.shrink(c, 500);
        ledger.grow(a, 400, 1000).ok(); // 450: below the peak
        assert!(ledger.grow(a, 600, 1000).is_err());
        let report = ledger.report();
        assert_eq!(report.peak, 550);
        let held: Vec<(String, usize)> = report
            .at_peak
            .iter()
            .map(|h| (h.consumer.clone(), h.bytes))
            .collect();
        assert_eq!(
            held,
            vec![
                ("Sort".to_string(), 50),
                ("HashJoin(build)".to_string(), 500)
            ]
        );
        assert_eq!(report.at_peak.iter().map(|h| h.bytes).sum::<usize>(), 550);
    }

    #[test]
    fn the_timeline_keeps_a_bounded_number_of_points() {
        let ledger = Ledger::new();
        let mut interval = FIRST_SAMPLE_INTERVAL;
        for _ in 0..1000 {
            interval = ledger.sample();
        }
        let report = ledger.report();
        assert!(report.timeline.len() <= TIMELINE_POINTS);
        assert!(report.timeline.len() > TIMELINE_POINTS / 4);
        assert!(interval >= FIRST_SAMPLE_INTERVAL * 4, "{interval:?}");
        assert!(report.timeline.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
