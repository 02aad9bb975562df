//! Distinct-aggregate rewrite: `count(DISTINCT x) ... GROUP BY g` becomes two ordinary
//! aggregations, `GROUP BY g, x` and then `count(x) GROUP BY g`.
//!
//! The rewritten form runs in parallel (two-phase) and uses the same hash tables as any
//! group-by, so it spills like one, instead of one set of values per group built on a single
//! thread. It applies when every aggregate of the node is `count(DISTINCT x)` on the same `x`
//! or a plain `count` (counted per `(g, x)` first, then summed: `n_unique` of the Python API
//! is `count(DISTINCT x)` plus one when `count(*) > count(x)`). Other shapes keep the
//! single-phase distinct accumulator.

use crate::error::Result;
use crate::logical::expr::{AggregateFunction, Column, Expr, ScalarFunction};
use crate::logical::plan::LogicalPlan;
use crate::logical::scalar::ScalarValue;
use crate::optimizer::map_inputs;

const DISTINCT_COLUMN: &str = "__ooc_distinct_value";
const PARTIAL_COLUMN: &str = "__ooc_partial_count_";

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
    // Each aggregate: the distinct count, or a plain count computed per (groups, x) first
    // and summed after (what `n_unique` needs besides the distinct count).
    let mut argument: Option<Expr> = None;
    let mut rewritable = !aggregates.is_empty();
    let mut partials: Vec<Expr> = Vec::new();
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
            count @ Expr::Aggregate {
                func: AggregateFunction::Count,
                distinct: false,
                ..
            } => partials.push(count.alias(format!("{PARTIAL_COLUMN}{}", partials.len()))),
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
    let global = group_by.is_empty();
    let mut inner_groups = group_by.clone();
    inner_groups.push(argument.alias(DISTINCT_COLUMN));
    let inner = LogicalPlan::aggregate(*input, inner_groups, partials)?;
    let outer_groups: Vec<Expr> = (0..group_by.len())
        .map(|i| {
            let f = inner.schema().field(i);
            Expr::Column(Column::qualified(f.qualifier.clone(), f.name()))
        })
        .collect();
    let mut partial = 0;
    let outer_aggregates: Vec<Expr> = aggregates
        .iter()
        .map(|agg| {
            let (func, column) = match agg.clone().unalias() {
                Expr::Aggregate { distinct: true, .. } => {
                    (AggregateFunction::Count, DISTINCT_COLUMN.to_string())
                }
                _ => {
                    partial += 1;
                    (
                        AggregateFunction::Sum,
                        format!("{PARTIAL_COLUMN}{}", partial - 1),
                    )
                }
            };
            Expr::Aggregate {
                func,
                args: vec![Expr::Column(Column::new(column))],
                distinct: false,
            }
            .alias(agg.output_name())
        })
        .collect();
    let rewritten = LogicalPlan::aggregate(inner, outer_groups, outer_aggregates)?;
    debug_assert_eq!(rewritten.schema().len(), schema.len());
    if partial == 0 || !global {
        return Ok(rewritten);
    }
    // Without GROUP BY an empty input still gives one row, where a count is 0 but a sum of
    // counts over no rows is NULL.
    let columns = rewritten
        .schema()
        .fields()
        .iter()
        .zip(&aggregates)
        .map(|(f, agg)| {
            let column = Expr::Column(Column::qualified(f.qualifier.clone(), f.name()));
            match agg.clone().unalias() {
                Expr::Aggregate {
                    distinct: false, ..
                } => Expr::Function {
                    func: ScalarFunction::Coalesce,
                    args: vec![column, Expr::Literal(ScalarValue::int64(0))],
                }
                .alias(f.name()),
                _ => column,
            }
        })
        .collect();
    LogicalPlan::project(rewritten, columns)
}
