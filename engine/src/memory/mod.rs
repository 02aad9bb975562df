//! Memory accounting: one budget per query, shared by every operator that holds data.
//!
//! ```text
//!   MemoryPool (limit, reserved, peak)
//!     ├── MemoryReservation "HashAggregate[partial, partition 0]"  ── grows with groups
//!     ├── MemoryReservation "Sort"                                 ── grows with buffered rows
//!     └── MemoryReservation "Collect"                              ── grows with the result
//! ```
//!
//! Operators never allocate against the budget directly: they hold a [`MemoryReservation`] and
//! resize it to the bytes they actually keep (`try_resize`). A reservation that cannot grow
//! returns [`EngineError::ResourcesExhausted`](crate::EngineError::ResourcesExhausted) naming the
//! consumer, the request and the budget; dropping a reservation returns its bytes to the pool.
//! Each reservation also updates its operator's metrics, so `--explain-analyze` can show the
//! peak bytes every operator held.
//!
//! Operators that can spill (sorts, spilling aggregates, hash join builds) create their
//! reservation with [`MemoryReservation::new_spillable`]. When an operator that cannot spill
//! (a materialized CTE, a nested loop join's build, a top-k heap) finds the budget full, it
//! calls `try_grow_or_spill_others`: the pool raises a flag on the spillable reservation
//! holding the most, that operator writes its state out at its next batch boundary, and the
//! request is retried for up to two seconds before it fails with an error naming the consumer
//! it asked.

mod accounting;
mod narrow;
mod pool;
mod spill;

pub(crate) use accounting::{referenced_bytes, used_bytes};
pub(crate) use narrow::Narrowing;
pub(crate) use pool::{MemoryPool, MemoryReservation};
pub(crate) use spill::{SpillFile, SpillManager, SpillWriter};
