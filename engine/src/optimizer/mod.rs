//! The logical optimizer: a fixed sequence of rewrite rules, one per module.
//!
//! Order matters: constants are folded first so that pushed-down predicates carry plain
//! literals the scan can prune with; predicates move down before projections are pruned so the
//! scan reads the columns its filters need; top-k is formed before the limit is pushed so a
//! `LIMIT` above a sort is not pushed into the scan.

pub mod cardinality;
mod constant_folding;
mod distinct_aggregate;
mod join_reorder;
mod limit_pushdown;
mod predicate_pushdown;
mod projection_pushdown;
mod topk;

use crate::error::Result;
use crate::logical::plan::LogicalPlan;

pub use constant_folding::fold_expr;
pub(crate) use predicate_pushdown::references_only;

/// Apply every rule once, in order.
pub fn optimize(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = constant_folding::fold_constants(plan)?;
    let plan = join_reorder::reorder_joins(plan)?;
    let plan = predicate_pushdown::push_down_predicates(plan)?;
    let plan = distinct_aggregate::rewrite_distinct_aggregates(plan)?;
    let plan = topk::form_topk(plan)?;
    let plan = limit_pushdown::push_down_limits(plan)?;
    projection_pushdown::push_down_projections(plan)
}

/// Rebuild `plan` with `f` applied to each input.
pub(crate) fn map_inputs(
    plan: LogicalPlan,
    f: &mut dyn FnMut(LogicalPlan) -> Result<LogicalPlan>,
) -> Result<LogicalPlan> {
    let inputs = plan
        .inputs()
        .into_iter()
        .cloned()
        .map(&mut *f)
        .collect::<Result<Vec<_>>>()?;
    if inputs.is_empty() {
        return Ok(plan);
    }
    plan.with_new_inputs(inputs)
}
