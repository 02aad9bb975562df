//! Front ends: SQL text and dataframe builder calls, turned into logical plans. Nothing here
//! optimizes, plans operators or runs anything.
//!
//! - [`sql`]: `sqlparser` AST → logical plan, including subquery decorrelation;
//! - [`builder`]: the plans behind [`DataFrame`](crate::DataFrame)'s builder methods;
//! - [`aggregates`]: aggregate extraction, shared by both;
//! - [`windows`]: window calls planned into window nodes, shared by both;
//! - [`set_operations`]: `UNION`, `INTERSECT`, `EXCEPT` (with or without `ALL`), shared by
//!   both.

pub(crate) mod aggregates;
pub(crate) mod builder;
pub(crate) mod set_operations;
pub(crate) mod sql;
pub(crate) mod windows;
