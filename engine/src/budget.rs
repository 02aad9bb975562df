//! A memory budget shared by the queries that run at the same time: the process's budget, as
//! a notebook user sets it, not each query's.
//!
//! A leaf: it knows no pool, only what it asks of one ([`BudgetMember`]). Every query still
//! has its own memory pool (module `memory`); a pool made for a budget joins it for as long
//! as the query runs, and its limit is then not fixed but the
//! query's fair share: the budget divided by the number of queries running. When a query
//! starts, every running query holding more than the new share is asked to spill (the
//! spillable consumer holding the most, at its next batch boundary), and every query's next
//! growth beyond its share fails the way growth beyond a fixed limit does, so the operators
//! that hold data spill. When a query ends, the others' shares grow again. A query plans its
//! morsels and buffers for the share it will have when it starts.
//!
//! The queries that run also cost memory outside their pools (batches being decoded and
//! passed between operators, mapped input pages), tens of MiB each whatever their share, so
//! a budget runs at most [`MemoryBudget::DEFAULT_MAX_RUNNING`] queries at once (or as many
//! as it is made with): a query started beyond that waits, in the order they came, until
//! one ends. A waiting query does not wait for queries that do not move (a stream whose
//! consumer stopped reading keeps its query running): when no running query has read a
//! byte or changed a reservation for [`MemoryBudget::STALLED_AFTER`], the next one starts
//! anyway.
//!
//! What a share cannot take back at once: bytes held by a consumer that can no longer spill
//! (a hash join probing its built table, a merge in progress) stay until it finishes, so the
//! sum of the pools may pass the budget for a while after a query joins; it does not grow
//! further, since no pool grows beyond its share.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// What a budget asks of a query's memory pool, which joins it while the query runs.
pub(crate) trait BudgetMember: Send + Sync + std::fmt::Debug {
    /// Bytes the query holds.
    fn reserved(&self) -> usize;
    /// A number that changes while the query moves (reservations change, bytes are read).
    fn activity(&self) -> u64;
    /// Ask the query's spillable consumer holding the most to spill (its share shrank).
    fn ask_to_spill(&self);
}

/// A budget of bytes shared fairly by the queries that run with it at the same time (see the
/// module docs). Made by [`MemoryBudget::new`]; a
/// [`SessionConfig`](crate::SessionConfig) carries it to every query run with that config.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    max_running: usize,
    active: AtomicUsize,
    queue: Mutex<Queue>,
    turn: Condvar,
    reserved: AtomicUsize,
    peak: AtomicUsize,
    waited: AtomicUsize,
}

/// The running queries' pools and the order of the waiting ones.
#[derive(Debug, Default)]
struct Queue {
    members: Vec<Weak<dyn BudgetMember>>,
    next_ticket: u64,
    serving: u64,
}

impl MemoryBudget {
    /// Queries a budget runs at once unless made with another number.
    pub const DEFAULT_MAX_RUNNING: usize = 4;

    /// How long the running queries must all stand still before a waiting query starts
    /// anyway.
    pub const STALLED_AFTER: Duration = Duration::from_secs(1);

    /// A budget of `limit` bytes running at most [`Self::DEFAULT_MAX_RUNNING`] queries at
    /// once.
    pub fn new(limit: usize) -> Arc<Self> {
        Self::with_max_running(limit, Self::DEFAULT_MAX_RUNNING)
    }

    /// A budget of `limit` bytes running at most `max_running` queries at once (at least 1).
    pub fn with_max_running(limit: usize, max_running: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            max_running: max_running.max(1),
            active: AtomicUsize::new(0),
            queue: Mutex::new(Queue::default()),
            turn: Condvar::new(),
            reserved: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            waited: AtomicUsize::new(0),
        })
    }

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Most queries it runs at once.
    pub fn max_running(&self) -> usize {
        self.max_running
    }

    /// Queries running with it now.
    pub fn active_queries(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Bytes reserved now by all its queries together.
    pub fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// The most bytes its queries held together at any moment.
    pub fn peak_reserved(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Queries that had to wait for their turn, so far.
    pub fn queries_waited(&self) -> usize {
        self.waited.load(Ordering::Relaxed)
    }

    /// Each running query's share.
    pub(crate) fn share(&self) -> usize {
        self.limit / self.active_queries().max(1)
    }

    /// The share of a query about to start.
    pub(crate) fn share_of_next(&self) -> usize {
        self.limit / (self.active_queries() + 1).min(self.max_running)
    }

    /// `pool` joins, once it is its turn (see the module docs): the shares shrink, and the
    /// queries holding more than theirs are asked to spill.
    pub(crate) fn join(&self, pool: Weak<dyn BudgetMember>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        let mut waited = false;
        // The running queries' activity when it was last seen to change.
        let mut still: Option<(Instant, u64)> = None;
        loop {
            queue.members.retain(|m| m.strong_count() > 0);
            if queue.serving == ticket {
                if self.active_queries() < self.max_running {
                    break;
                }
                let activity: u64 = queue
                    .members
                    .iter()
                    .filter_map(Weak::upgrade)
                    .map(|m| m.activity())
                    .fold(0, u64::wrapping_add);
                match still {
                    Some((since, seen)) if seen == activity => {
                        if since.elapsed() >= Self::STALLED_AFTER {
                            break;
                        }
                    }
                    _ => still = Some((Instant::now(), activity)),
                }
            }
            waited = true;
            queue = self
                .turn
                .wait_timeout(queue, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if waited {
            self.waited.fetch_add(1, Ordering::Relaxed);
        }
        queue.serving += 1;
        self.active.fetch_add(1, Ordering::Relaxed);
        let share = self.share();
        for member in queue.members.iter().filter_map(Weak::upgrade) {
            if member.reserved() > share {
                member.ask_to_spill();
            }
        }
        queue.members.push(pool);
        self.turn.notify_all();
    }

    /// A pool's query ended: the next waiting query may start.
    pub(crate) fn leave(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        let _queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.turn.notify_all();
    }

    pub(crate) fn grew(&self, bytes: usize) {
        let now = self.reserved.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn shrank(&self, bytes: usize) {
        self.reserved.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The bytes a query's scans read, a sign that it moves (its pool adds its own changes).
pub(crate) type BytesRead = Arc<AtomicU64>;
