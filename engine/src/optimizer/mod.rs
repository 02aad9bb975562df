//! The logical optimizer: a fixed sequence of rewrite rules, one per module.
//!
//! Order matters: constants are folded first so that pushed-down predicates carry plain
//! literals the scan can prune with; predicates move down before projections are pruned so the
//! scan reads the columns its filters need; top-k is formed before the limit is pushed so a
//! `LIMIT` above a sort is not pushed into the scan.

mod constant_folding;
mod distinct_aggregate;
mod join_reorder;
mod limit_pushdown;
mod ordered_set_aggregate;
mod predicate_pushdown;
mod projection_pushdown;
#[cfg(test)]
mod test_util;
mod topk;

use crate::error::Result;
use crate::logical::plan::LogicalPlan;

/// Apply every rule once, in order.
pub(crate) fn optimize(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = constant_folding::fold_constants(plan)?;
    let plan = join_reorder::reorder_joins(plan)?;
    let plan = predicate_pushdown::push_down_predicates(plan)?;
    let plan = ordered_set_aggregate::rewrite_ordered_set_aggregates(plan)?;
    let plan = distinct_aggregate::rewrite_distinct_aggregates(plan)?;
    let plan = topk::form_topk(plan)?;
    let plan = limit_pushdown::push_down_limits(plan)?;
    projection_pushdown::push_down_projections(plan)
}
