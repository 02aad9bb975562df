//! Predicate pushdown: moves each conjunct of a filter as close to the data as it can go.
//!
//! Conjuncts pass through projections (column references are replaced by the projected
//! expressions), aliases (re-qualified), sorts, and aggregates when they only reference grouping
//! keys. Conjuncts that reach a scan become the scan's filters: the scan applies them and the
//! physical planner also uses them to prune files and row groups from statistics. Conjuncts
//! that cannot move stay in a filter where they stopped.

use crate::error::Result;
use crate::logical::expr::{Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;

pub(super) fn push_down_predicates(plan: LogicalPlan) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::Filter { input, predicate } => {
            push_into(*input, predicate.split_conjunction())
        }
        other => other.map_inputs(&mut push_down_predicates),
    }
}

fn filter_above(plan: LogicalPlan, conjuncts: Vec<Expr>) -> Result<LogicalPlan> {
    match Expr::conjunction(conjuncts) {
        Some(predicate) => LogicalPlan::filter(plan, predicate),
        None => Ok(plan),
    }
}

/// Replace references to `schema`'s columns by `replacement(index)`; `None` if some column
/// cannot be replaced.
fn substitute(
    expr: &Expr,
    schema: &PlanSchema,
    replacement: &dyn Fn(usize) -> Option<Expr>,
) -> Option<Expr> {
    let mut ok = true;
    let rewritten = expr
        .clone()
        .transform_down(&mut |e| match e {
            Expr::Column(c) => {
                let found = schema
                    .try_index_of(c.relation.as_deref(), &c.name)
                    .ok()
                    .flatten();
                match found.and_then(replacement) {
                    Some(r) => Some(r),
                    None => {
                        ok = false;
                        Some(e.clone())
                    }
                }
            }
            _ => None,
        })
        .ok()?;
    ok.then_some(rewritten)
}

fn push_into(plan: LogicalPlan, conjuncts: Vec<Expr>) -> Result<LogicalPlan> {
    if conjuncts.is_empty() {
        return push_down_predicates(plan);
    }
    match plan {
        LogicalPlan::Filter { input, predicate } => {
            let mut all = conjuncts;
            all.extend(predicate.split_conjunction());
            push_into(*input, all)
        }
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } => {
            let mut pushed = Vec::new();
            let mut kept = Vec::new();
            for c in conjuncts {
                match substitute(&c, &schema, &|i| Some(exprs[i].clone().unalias())) {
                    Some(rewritten) => pushed.push(rewritten),
                    None => kept.push(c),
                }
            }
            let new_input = push_into(*input, pushed)?;
            filter_above(LogicalPlan::project(new_input, exprs)?, kept)
        }
        LogicalPlan::SubqueryAlias {
            input,
            alias,
            schema,
        } => {
            let inner_schema = input.schema().clone();
            let mut pushed = Vec::new();
            let mut kept = Vec::new();
            for c in conjuncts {
                let rewritten = substitute(&c, &schema, &|i| {
                    let f = inner_schema.field(i);
                    Some(Expr::Column(Column::qualified(
                        f.qualifier.clone(),
                        f.name(),
                    )))
                });
                match rewritten {
                    Some(r) => pushed.push(r),
                    None => kept.push(c),
                }
            }
            let new_input = push_into(*input, pushed)?;
            filter_above(LogicalPlan::alias(new_input, alias), kept)
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        } => {
            let mut pushed = Vec::new();
            let mut kept = Vec::new();
            let groups = group_by.len();
            for c in conjuncts {
                match substitute(&c, &schema, &|i| {
                    (i < groups).then(|| group_by[i].clone().unalias())
                }) {
                    Some(r) => pushed.push(r),
                    None => kept.push(c),
                }
            }
            let new_input = push_into(*input, pushed)?;
            filter_above(
                LogicalPlan::aggregate(new_input, group_by, aggregates)?,
                kept,
            )
        }
        LogicalPlan::Sort {
            input,
            keys,
            fetch: None,
        } => {
            let new_input = push_into(*input, conjuncts)?;
            Ok(LogicalPlan::Sort {
                input: Box::new(new_input),
                keys,
                fetch: None,
            })
        }
        LogicalPlan::TableScan(mut scan) => {
            for c in conjuncts {
                let c = crate::logical::types::coerce(c, scan.schema())?;
                if !scan.filters.contains(&c) {
                    scan.filters.push(c);
                }
            }
            Ok(LogicalPlan::TableScan(scan))
        }
        LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            ..
        } => {
            let (to_left_ok, to_right_ok) = match join_type {
                JoinType::Inner => (true, true),
                JoinType::Left
                | JoinType::Single
                | JoinType::Semi
                | JoinType::Anti
                | JoinType::AntiNullAware => (true, false),
                JoinType::Right => (false, true),
                JoinType::Full => (false, false),
            };
            let mut to_left = Vec::new();
            let mut to_right = Vec::new();
            let mut kept = Vec::new();
            for c in conjuncts {
                if to_left_ok && c.references_only(left.schema()) {
                    to_left.push(c);
                } else if to_right_ok && !join_type.left_only() && c.references_only(right.schema())
                {
                    to_right.push(c);
                } else {
                    kept.push(c);
                }
            }
            let new_left = push_into(*left, to_left)?;
            let new_right = push_into(*right, to_right)?;
            filter_above(
                LogicalPlan::join(new_left, new_right, join_type, on, filter)?,
                kept,
            )
        }
        other => {
            let other = push_down_predicates(other)?;
            filter_above(other, conjuncts)
        }
    }
}
