//! Distinct-aggregate rewrite: `count(DISTINCT x) ... GROUP BY g` becomes two ordinary
//! aggregations, `GROUP BY g, x` and then `count(x) GROUP BY g`.
//!
//! The rewritten form runs in parallel (two-phase) and uses the same hash tables as any
//! group-by, instead of one set of values per group built on a single thread. It applies when
//! every aggregate of the node is `count(DISTINCT x)` on the same `x`; other shapes keep the
//! single-phase distinct accumulator.

use crate::error::Result;
use crate::logical::expr::{AggregateFunction, Column, Expr};
use crate::logical::plan::LogicalPlan;
use crate::optimizer::map_inputs;

const DISTINCT_COLUMN: &str = "__ooc_distinct_value";

pub(super) fn rewrite_distinct_aggregates(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = map_inputs(plan, &mut rewrite_distinct_aggregates)?;
    let LogicalPlan::Aggregate {
        input,
        group_by,
        aggregates,
        schema,
    } = plan
    else {
        return Ok(plan);
    };
    let mut argument: Option<Expr> = None;
    let mut rewritable = !aggregates.is_empty();
    for agg in &aggregates {
        match agg.clone().unalias() {
            Expr::Aggregate {
                func: AggregateFunction::Count,
                args,
                distinct: true,
            } if args.len() == 1 => match &argument {
                None => argument = Some(args[0].clone()),
                Some(a) if *a == args[0] => {}
                Some(_) => rewritable = false,
            },
            _ => rewritable = false,
        }
    }
    let (true, Some(argument)) = (rewritable, argument) else {
        return Ok(LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        });
    };
    let mut inner_groups = group_by.clone();
    inner_groups.push(argument.alias(DISTINCT_COLUMN));
    let inner = LogicalPlan::aggregate(*input, inner_groups, vec![])?;
    let outer_groups: Vec<Expr> = (0..group_by.len())
        .map(|i| {
            let f = inner.schema().field(i);
            Expr::Column(Column::qualified(f.qualifier.clone(), f.name()))
        })
        .collect();
    let outer_aggregates: Vec<Expr> = aggregates
        .iter()
        .map(|agg| {
            Expr::Aggregate {
                func: AggregateFunction::Count,
                args: vec![Expr::Column(Column::new(DISTINCT_COLUMN))],
                distinct: false,
            }
            .alias(agg.output_name())
        })
        .collect();
    let rewritten = LogicalPlan::aggregate(inner, outer_groups, outer_aggregates)?;
    debug_assert_eq!(rewritten.schema().len(), schema.len());
    Ok(rewritten)
}
