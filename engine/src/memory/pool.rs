//! The memory pool and RAII reservations (see the module docs of [`crate::memory`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::ledger::{Ledger, LedgerReport, MemoryPart, Refused};
use crate::budget::{BudgetMember, BytesRead, MemoryBudget};
use crate::error::{EngineError, Result};
use crate::metrics::OperatorMetrics;

/// A budget of bytes shared by all reservations of a query: a fixed limit, or the query's
/// share of a [`MemoryBudget`] shared with the queries running at the same time.
#[derive(Debug)]
pub(crate) struct MemoryPool {
    limit: usize,
    budget: Option<Arc<MemoryBudget>>,
    /// Whether the pool has left its shared budget (its query ended).
    left: AtomicBool,
    /// Changes of reservations, plus the query's bytes read when given: whether the query
    /// moves (see [`crate::budget`]).
    changes: AtomicU64,
    progress: Option<BytesRead>,
    /// Bytes per holder, the copy at the peak, the timeline.
    ledger: Ledger,
    /// Set when the query ended: the timeline sampler stops.
    finished: AtomicBool,
    /// The timeline sampler, woken to stop.
    sampler: Mutex<Option<std::thread::Thread>>,
    /// The reservations of operators that can spill, to ask one of them to make room.
    spillable: Mutex<Vec<Weak<SpillRequest>>>,
}

/// How long a consumer that cannot spill waits for a spillable one to make room.
const SPILL_REQUEST_WAIT: Duration = Duration::from_secs(2);

/// The mailbox of a spillable reservation: the pool raises `requested` when a consumer that
/// cannot spill needs memory; the operator spills at its next batch boundary.
#[derive(Debug)]
struct SpillRequest {
    consumer: String,
    requested: AtomicBool,
    size: AtomicUsize,
}

impl MemoryPool {
    /// A pool with the given limit in bytes (`usize::MAX` for no limit).
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            budget: None,
            left: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            progress: None,
            ledger: Ledger::new(),
            finished: AtomicBool::new(false),
            sampler: Mutex::new(None),
            spillable: Mutex::new(Vec::new()),
        })
    }

    /// A pool without a limit (`memory_limit: None`; the default limit is half of the
    /// machine's memory, see [`default_memory_limit`](crate::default_memory_limit)).
    pub(crate) fn unbounded() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    /// A pool whose limit is its share of `budget`, for as long as it lives (see
    /// [`crate::budget`]).
    /// Waits for the query's turn when the budget already runs as many queries as it may;
    /// `progress` counts the bytes the query reads.
    pub(crate) fn in_budget(budget: &Arc<MemoryBudget>, progress: BytesRead) -> Arc<Self> {
        let pool = Arc::new(Self {
            limit: budget.limit(),
            budget: Some(Arc::clone(budget)),
            left: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            progress: Some(progress),
            ledger: Ledger::new(),
            finished: AtomicBool::new(false),
            sampler: Mutex::new(None),
            spillable: Mutex::new(Vec::new()),
        });
        let member: Weak<dyn BudgetMember> = Arc::downgrade(&pool) as Weak<dyn BudgetMember>;
        budget.join(member);
        pool
    }

    /// The budget in bytes: the fixed limit, or the current share of a shared budget.
    pub(crate) fn limit(&self) -> usize {
        match &self.budget {
            Some(budget) => budget.share(),
            None => self.limit,
        }
    }

    /// The query ended: its share goes back to the queries still running (also done when
    /// the pool is dropped; only the first call counts).
    pub(crate) fn leave_budget(&self) {
        if let Some(budget) = &self.budget {
            if !self.left.swap(true, Ordering::Relaxed) {
                budget.leave();
            }
        }
    }

    /// Bytes currently reserved by all consumers.
    pub(crate) fn reserved(&self) -> usize {
        self.ledger.total()
    }

    /// The highest value `reserved` has had.
    pub(crate) fn peak(&self) -> usize {
        self.ledger.peak()
    }

    /// Who held the peak, resident memory near it, and the timeline so far.
    pub(crate) fn ledger_report(&self) -> LedgerReport {
        self.ledger.report()
    }

    /// Sample reserved bytes and resident memory on a thread of its own until the query
    /// ends ([`finish`](Self::finish)) or the pool is dropped: the timeline of the report.
    pub(crate) fn start_timeline(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("ooc-memory-timeline".into())
            .spawn(move || {
                let mut interval = super::ledger::FIRST_SAMPLE_INTERVAL;
                loop {
                    std::thread::park_timeout(interval);
                    let Some(pool) = pool.upgrade() else { return };
                    interval = pool.ledger.sample();
                    if pool.finished.load(Ordering::Relaxed) {
                        return;
                    }
                }
            });
        // Without a thread the report has no timeline; the query runs all the same.
        if let Ok(handle) = spawned {
            *self.sampler.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.thread().clone());
        }
    }

    /// The query ended: the timeline takes its last point and its sampler stops.
    pub(crate) fn finish(&self) {
        if !self.finished.swap(true, Ordering::Relaxed) {
            if let Some(thread) = self
                .sampler
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                thread.unpark();
            }
        }
    }

    fn try_grow(&self, holder: usize, consumer: &str, bytes: usize) -> Result<()> {
        let limit = self.limit();
        match self.ledger.grow(holder, bytes, limit) {
            Ok(_) => {
                self.changes.fetch_add(1, Ordering::Relaxed);
                if let Some(budget) = &self.budget {
                    budget.grew(bytes);
                }
                Ok(())
            }
            Err(Refused(current)) => {
                let consumer = match &self.budget {
                    Some(budget) => format!(
                        "{consumer} (this query's share of a {} budget shared by {} queries)",
                        crate::metrics::format_bytes(budget.limit() as u64),
                        budget.active_queries()
                    ),
                    None => consumer.to_string(),
                };
                Err(EngineError::ResourcesExhausted {
                    consumer,
                    requested: bytes,
                    reserved: current,
                    limit,
                })
            }
        }
    }

    fn shrink(&self, holder: usize, bytes: usize) {
        let transit = self.ledger.shrink(holder, bytes);
        self.changes.fetch_add(1, Ordering::Relaxed);
        if let Some(budget) = &self.budget {
            // A shared budget divides operators' state; bytes in transit are each pool's own.
            if !transit {
                budget.shrank(bytes);
            }
        }
    }

    fn register(&self, request: &Arc<SpillRequest>) {
        let mut list = self.spillable.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(request));
    }

    /// Ask the spillable consumer holding the most memory (other than `asking`) to spill; its
    /// name, if there is one holding anything.
    fn request_spill(&self, asking: Option<&Arc<SpillRequest>>) -> Option<String> {
        let list = self.spillable.lock().unwrap_or_else(|e| e.into_inner());
        let victim = list
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|r| asking.is_none_or(|a| !Arc::ptr_eq(a, r)))
            .filter(|r| r.size.load(Ordering::Relaxed) > 0)
            .max_by_key(|r| r.size.load(Ordering::Relaxed))?;
        victim.requested.store(true, Ordering::Relaxed);
        Some(victim.consumer.clone())
    }
}

impl BudgetMember for MemoryPool {
    fn reserved(&self) -> usize {
        MemoryPool::reserved(self)
    }

    fn activity(&self) -> u64 {
        let read = self
            .progress
            .as_ref()
            .map_or(0, |p| p.load(Ordering::Relaxed));
        self.changes.load(Ordering::Relaxed).wrapping_add(read)
    }

    fn ask_to_spill(&self) {
        self.request_spill(None);
    }
}

impl Drop for MemoryPool {
    fn drop(&mut self) {
        self.finish();
        self.leave_budget();
    }
}

/// Bytes held by one consumer; returned to the pool on drop.
#[derive(Debug)]
pub(crate) struct MemoryReservation {
    pool: Arc<MemoryPool>,
    consumer: String,
    /// The pool ledger's holder the bytes count for.
    holder: usize,
    size: usize,
    metrics: Option<Arc<OperatorMetrics>>,
    /// Set for a consumer that can spill when asked to.
    request: Option<Arc<SpillRequest>>,
}

impl MemoryReservation {
    /// An empty reservation for `part` of `consumer`'s state, reporting to `metrics` if given.
    pub(crate) fn new(
        pool: &Arc<MemoryPool>,
        consumer: impl Into<String>,
        part: MemoryPart,
        metrics: Option<Arc<OperatorMetrics>>,
    ) -> Self {
        let consumer = consumer.into();
        let holder = pool.ledger.holder(&consumer, part, metrics.as_ref());
        Self {
            pool: Arc::clone(pool),
            consumer,
            holder,
            size: 0,
            metrics,
            request: None,
        }
    }

    /// An empty reservation of a consumer that spills when the pool asks it to (see
    /// [`spill_requested`](Self::spill_requested)).
    pub(crate) fn new_spillable(
        pool: &Arc<MemoryPool>,
        consumer: impl Into<String>,
        part: MemoryPart,
        metrics: Option<Arc<OperatorMetrics>>,
    ) -> Self {
        let mut reservation = Self::new(pool, consumer, part, metrics);
        let request = Arc::new(SpillRequest {
            consumer: reservation.consumer.clone(),
            requested: AtomicBool::new(false),
            size: AtomicUsize::new(0),
        });
        pool.register(&request);
        reservation.request = Some(request);
        reservation
    }

    /// Stop answering spill requests (the state became something that cannot be written out).
    pub(crate) fn stop_spilling(&mut self) {
        self.request = None;
    }

    /// Whether the pool asked this consumer to spill (since the last call): another consumer,
    /// one that cannot spill, needs memory. The operator should write its state out and free
    /// the reservation at its next opportunity.
    pub(crate) fn spill_requested(&self) -> bool {
        self.request
            .as_ref()
            .is_some_and(|r| r.requested.swap(false, Ordering::Relaxed))
    }

    /// Grow by `bytes`; if the budget has no room, ask the largest other spillable consumer to
    /// make some and wait for it (up to two seconds) before failing. For consumers that cannot
    /// spill themselves, or have spilled all they can, and have no other way out.
    pub(crate) fn try_grow_or_spill_others(&mut self, bytes: usize) -> Result<()> {
        let first = match self.try_grow(bytes) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let Some(victim) = self.pool.request_spill(self.request.as_ref()) else {
            return Err(first);
        };
        let start = Instant::now();
        while start.elapsed() < SPILL_REQUEST_WAIT {
            std::thread::sleep(Duration::from_millis(5));
            if self.try_grow(bytes).is_ok() {
                return Ok(());
            }
        }
        match self.try_grow(bytes) {
            Ok(()) => Ok(()),
            Err(EngineError::ResourcesExhausted {
                consumer,
                requested,
                reserved,
                limit,
            }) => Err(EngineError::ResourcesExhausted {
                consumer: format!("{consumer} (after asking {victim} to spill)"),
                requested,
                reserved,
                limit,
            }),
            Err(e) => Err(e),
        }
    }

    /// [`try_resize`](Self::try_resize) that grows with
    /// [`try_grow_or_spill_others`](Self::try_grow_or_spill_others).
    pub(crate) fn try_resize_or_spill_others(&mut self, size: usize) -> Result<()> {
        if size > self.size {
            self.try_grow_or_spill_others(size - self.size)
        } else {
            self.shrink(self.size - size);
            Ok(())
        }
    }

    /// Bytes currently held.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Grow by `bytes` or fail without changing anything.
    pub(crate) fn try_grow(&mut self, bytes: usize) -> Result<()> {
        self.pool.try_grow(self.holder, &self.consumer, bytes)?;
        self.size += bytes;
        if let Some(r) = &self.request {
            r.size.store(self.size, Ordering::Relaxed);
        }
        if let Some(metrics) = &self.metrics {
            metrics.add_memory(bytes as i64);
        }
        Ok(())
    }

    /// Give back `bytes` (at most what is held).
    pub(crate) fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.size);
        self.pool.shrink(self.holder, bytes);
        self.size -= bytes;
        if let Some(r) = &self.request {
            r.size.store(self.size, Ordering::Relaxed);
        }
        if let Some(metrics) = &self.metrics {
            metrics.add_memory(-(bytes as i64));
        }
    }

    /// Grow or shrink to exactly `size` bytes.
    pub(crate) fn try_resize(&mut self, size: usize) -> Result<()> {
        if size > self.size {
            self.try_grow(size - self.size)
        } else {
            self.shrink(self.size - size);
            Ok(())
        }
    }

    /// Move `bytes` (at most what is held) to a new reservation of the same consumer, which
    /// cannot spill; the pool's total does not change.
    pub(crate) fn split(&mut self, bytes: usize) -> MemoryReservation {
        let bytes = bytes.min(self.size);
        self.size -= bytes;
        if let Some(r) = &self.request {
            r.size.store(self.size, Ordering::Relaxed);
        }
        MemoryReservation {
            pool: Arc::clone(&self.pool),
            consumer: self.consumer.clone(),
            holder: self.holder,
            size: bytes,
            metrics: self.metrics.clone(),
            request: None,
        }
    }

    /// Release everything.
    pub(crate) fn free(&mut self) {
        self.shrink(self.size);
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.free();
    }
}

/// The bytes of batches that have left one operator and not yet reached the next: queued
/// between threads, or being decoded by a scan. They are counted whatever the budget says
/// (they exist already; refusing them would not free them), against the budget up to a
/// quarter of it, so a spilling operator that asks for memory sees them and spills earlier, and the
/// ledger shows them at the peak.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    pool: Arc<MemoryPool>,
    holder: usize,
    metrics: Option<Arc<OperatorMetrics>>,
}

impl InFlight {
    /// Batches of `consumer` (an operator's queue or output) that are `part`.
    pub(crate) fn new(
        pool: &Arc<MemoryPool>,
        consumer: &str,
        part: MemoryPart,
        metrics: Option<Arc<OperatorMetrics>>,
    ) -> Self {
        let holder = pool.ledger.holder(consumer, part, metrics.as_ref());
        Self {
            pool: Arc::clone(pool),
            holder,
            metrics,
        }
    }

    /// Count `bytes` until the ticket is dropped.
    pub(crate) fn ticket(&self, bytes: usize) -> Ticket {
        // Bytes in transit are never refused; a shared budget does not see them (they count
        // against this query's share only).
        let _ = self.pool.ledger.grow(self.holder, bytes, usize::MAX);
        self.pool.changes.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.add_memory(bytes as i64);
        }
        Ticket {
            owner: self.clone(),
            bytes,
        }
    }
}

/// Bytes counted by an [`InFlight`] until this is dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    owner: InFlight,
    bytes: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.owner.pool.shrink(self.owner.holder, self.bytes);
        if let Some(metrics) = &self.owner.metrics {
            metrics.add_memory(-(self.bytes as i64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_moves_bytes_without_changing_the_pool() {
        let pool = MemoryPool::new(1000);
        let mut whole = MemoryReservation::new_spillable(&pool, "build", MemoryPart::Rows, None);
        whole.try_grow(600).unwrap();
        let part = whole.split(250);
        assert_eq!(
            (whole.size(), part.size(), pool.reserved()),
            (350, 250, 600)
        );
        // More than is held moves only what is held.
        let rest = whole.split(10_000);
        assert_eq!((whole.size(), rest.size(), pool.reserved()), (0, 350, 600));
        drop(part);
        assert_eq!(pool.reserved(), 350);
        drop(rest);
        assert_eq!(pool.reserved(), 0);
    }

    #[test]
    fn batches_in_flight_count_beyond_the_limit_until_their_ticket_drops() {
        let pool = MemoryPool::new(100);
        let mut sort = MemoryReservation::new(&pool, "Sort", MemoryPart::SortBuffer, None);
        sort.try_grow(80).unwrap();
        let queue = InFlight::new(&pool, "Coalesce", MemoryPart::BatchesInFlight, None);
        let a = queue.ticket(30);
        let b = queue.ticket(10);
        assert_eq!((pool.reserved(), pool.peak()), (120, 120));
        // The operator that asks for room sees the queued bytes...
        assert!(sort.try_grow(1).is_err());
        drop(a);
        assert_eq!(pool.reserved(), 90);
        sort.try_grow(10).unwrap();
        assert!(sort.try_grow(1).is_err());
        drop(b);
        sort.try_grow(10).unwrap();
        // ...but only up to a quarter of the budget.
        let c = queue.ticket(80);
        sort.free();
        sort.try_grow(75).unwrap();
        assert!(sort.try_grow(1).is_err());
        drop(c);
        sort.try_grow(5).unwrap();
        let report = pool.ledger_report();
        let held: Vec<(&str, usize)> = report
            .at_peak
            .iter()
            .map(|h| (h.part.name(), h.bytes))
            .collect();
        assert_eq!(held, [("sort buffer", 100), ("batches in flight", 80)]);
    }

    #[test]
    fn reservations_account_and_release() {
        let pool = MemoryPool::new(100);
        let mut a = MemoryReservation::new(&pool, "a", MemoryPart::Rows, None);
        let mut b = MemoryReservation::new(&pool, "b", MemoryPart::Rows, None);
        a.try_grow(60).unwrap();
        let err = b.try_grow(50).unwrap_err().to_string();
        assert!(err.contains("b needs 50"), "{err}");
        assert!(err.contains("100-byte"), "{err}");
        b.try_resize(40).unwrap();
        assert_eq!(pool.reserved(), 100);
        drop(a);
        assert_eq!(pool.reserved(), 40);
        b.try_resize(10).unwrap();
        assert_eq!(pool.reserved(), 10);
        drop(b);
        assert_eq!(pool.reserved(), 0);
        assert_eq!(pool.peak(), 100);
    }

    #[test]
    fn a_consumer_that_cannot_spill_gets_room_from_the_largest_spillable_one() {
        let pool = MemoryPool::new(100);
        let mut small = MemoryReservation::new_spillable(&pool, "small", MemoryPart::Rows, None);
        let mut large = MemoryReservation::new_spillable(&pool, "large", MemoryPart::Rows, None);
        small.try_grow(20).unwrap();
        large.try_grow(70).unwrap();
        let mut needy = MemoryReservation::new(&pool, "needy", MemoryPart::Rows, None);
        std::thread::scope(|scope| {
            // The spillable operator: polls at its batch boundaries and frees when asked.
            let operator = scope.spawn(|| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(5) {
                    if large.spill_requested() {
                        large.free();
                        return true;
                    }
                    assert!(!small.spill_requested(), "the largest one is asked");
                    std::thread::sleep(Duration::from_millis(1));
                }
                false
            });
            needy.try_grow_or_spill_others(50).unwrap();
            assert!(operator.join().unwrap());
        });
        assert_eq!(pool.reserved(), 70);
        // Nobody spills: the error says whom it asked.
        let pool = MemoryPool::new(100);
        let mut stubborn =
            MemoryReservation::new_spillable(&pool, "stubborn", MemoryPart::Rows, None);
        stubborn.try_grow(90).unwrap();
        let mut needy = MemoryReservation::new(&pool, "needy", MemoryPart::Rows, None);
        let err = needy.try_grow_or_spill_others(50).unwrap_err().to_string();
        assert!(err.contains("after asking stubborn to spill"), "{err}");
        // No spillable consumer holding memory: fails at once.
        drop(stubborn);
        let mut other = MemoryReservation::new(&pool, "other", MemoryPart::Rows, None);
        other.try_grow(90).unwrap();
        let start = Instant::now();
        assert!(needy.try_grow_or_spill_others(50).is_err());
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_spillable_consumer_that_asks_for_room_asks_another_one() {
        // The asker holds the most, but asking itself would only wait: the other one is asked.
        let pool = MemoryPool::new(100);
        let mut other = MemoryReservation::new_spillable(&pool, "other", MemoryPart::Rows, None);
        let mut asker = MemoryReservation::new_spillable(&pool, "asker", MemoryPart::Rows, None);
        other.try_grow(30).unwrap();
        asker.try_grow(60).unwrap();
        std::thread::scope(|scope| {
            let operator = scope.spawn(|| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(5) {
                    if other.spill_requested() {
                        other.free();
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                false
            });
            asker.try_grow_or_spill_others(30).unwrap();
            assert!(operator.join().unwrap());
        });
        assert!(!asker.spill_requested());
        assert_eq!(pool.reserved(), 90);
    }

    #[test]
    fn queries_sharing_a_budget_hold_at_most_their_share() {
        let budget = MemoryBudget::new(1000);
        let first = MemoryPool::in_budget(&budget, BytesRead::default());
        let mut a = MemoryReservation::new_spillable(&first, "sort", MemoryPart::Rows, None);
        a.try_grow(800).unwrap();
        assert_eq!((budget.active_queries(), first.limit()), (1, 1000));
        // A second query halves the shares and asks the first, now above its share, to spill.
        let second = MemoryPool::in_budget(&budget, BytesRead::default());
        assert_eq!((first.limit(), second.limit()), (500, 500));
        assert!(a.spill_requested());
        let mut b = MemoryReservation::new(&second, "aggregate", MemoryPart::Rows, None);
        b.try_grow(500).unwrap();
        let err = b.try_grow(1).unwrap_err().to_string();
        assert!(
            err.contains("share of a 1000 B budget shared by 2 queries"),
            "{err}"
        );
        assert!(a.try_grow(1).is_err());
        assert_eq!((budget.reserved(), budget.peak_reserved()), (1300, 1300));
        a.free();
        assert_eq!(budget.reserved(), 500);
        // The second query ends (its stream finished): the first may have the whole budget.
        drop(b);
        second.leave_budget();
        assert_eq!(budget.active_queries(), 1);
        a.try_grow(1000).unwrap();
        drop(second);
        assert_eq!(budget.active_queries(), 1, "left once only");
        drop(a);
        drop(first);
        assert_eq!((budget.active_queries(), budget.reserved()), (0, 0));
    }

    #[test]
    fn a_query_beyond_the_running_limit_waits_for_one_to_end_or_stand_still() {
        let budget = MemoryBudget::with_max_running(1000, 1);
        let progress = BytesRead::default();
        let first = MemoryPool::in_budget(&budget, Arc::clone(&progress));
        let (waited, second) = std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                let start = Instant::now();
                let pool = MemoryPool::in_budget(&budget, BytesRead::default());
                (start.elapsed(), pool)
            });
            // The first query moves for 300 ms and ends: only then does the second start.
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(300) {
                progress.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(budget.active_queries(), 1);
            first.leave_budget();
            waiting.join().unwrap()
        });
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert_eq!((budget.active_queries(), budget.queries_waited()), (1, 1));
        // The second stands still (a stream nobody reads): a third starts after a while.
        let start = Instant::now();
        let third = MemoryPool::in_budget(&budget, BytesRead::default());
        assert!(start.elapsed() >= MemoryBudget::STALLED_AFTER);
        assert_eq!((budget.active_queries(), third.limit()), (2, 500));
        drop((second, third));
        assert_eq!(budget.active_queries(), 0);
    }
}
