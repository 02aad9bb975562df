//! Memory accounting: one budget per query, shared by every operator that holds data, and
//! the compressed spill files operators write when their share does not fit. This module
//! knows bytes, reservations and files; it knows no operator.
//!
//! ```text
//!   MemoryPool (limit, reserved, peak)
//!     ├── MemoryReservation "HashAggregate(final)"  ── grows with groups      (spillable)
//!     ├── MemoryReservation "Sort"                  ── grows with buffered rows (spillable)
//!     ├── MemoryReservation "HashJoin(build)"       ── grows with build rows  (spillable)
//!     └── MemoryReservation "TopK"                  ── k rows at most         (not spillable)
//! ```
//!
//! Operators never allocate against the budget directly: they hold a [`MemoryReservation`] and
//! resize it to the bytes they actually keep (`try_resize`). A reservation that cannot grow
//! returns [`EngineError::ResourcesExhausted`](crate::EngineError::ResourcesExhausted) naming the
//! consumer, the request and the budget; dropping a reservation returns its bytes to the pool.
//! Each reservation also updates its operator's metrics, so `--explain-analyze` can show the
//! peak bytes every operator held.
//!
//! Operators whose state grows with their input create their reservation with
//! [`MemoryReservation::new_spillable`] and spill when it cannot grow: sorts, final and single
//! aggregates, hash join builds, materialized CTEs and nested loop join build sides (through
//! the spool). What stays is small and bounded (a top-k's k rows, a partial aggregate, which
//! flushes early, the working set of one spilled partition being merged). When such a
//! consumer, or a spilling operator's own bounded working set, finds the budget full, it calls
//! `try_grow_or_spill_others`: the pool raises a flag on the spillable reservation holding the
//! most, that operator writes its state out at its next batch boundary, and the request is
//! retried for up to two seconds before it fails with an error naming the consumer that asked
//! and the budget.
//!
//! Queries that run at the same time may share one [`MemoryBudget`] (the Python library's
//! process-wide `memory_limit`): each pool's limit is then its fair share of it, which shrinks
//! as queries start and grows as they end (module [`crate::budget`]).

mod accounting;
mod ledger;
mod narrow;
mod pool;
pub(crate) mod process;
mod spill;
#[cfg(fuzzing)]
pub(crate) use spill::fuzz_read as fuzz_spill_read;

pub(crate) use accounting::{referenced_bytes, used_bytes};
pub use ledger::TimelinePoint;
pub(crate) use ledger::{LedgerReport, MemoryPart};
pub(crate) use narrow::Narrowing;
pub(crate) use pool::{InFlight, MemoryPool, MemoryReservation, Ticket};
pub(crate) use spill::{SpillFile, SpillManager, SpillWriter};
