//! Distinct-aggregate rewrite: `count(DISTINCT x) ... GROUP BY g` becomes two ordinary
//! aggregations, `GROUP BY g, x` and then `count(x) GROUP BY g`.
//!
//! The rewritten form runs in parallel (two-phase) and uses the same hash tables as any
//! group-by, so it spills like one, instead of one set of values per group built on a single
//! thread. It applies when every aggregate of the node is `count(DISTINCT x)` on the same `x`
//! or a plain `count` (counted per `(g, x)` first, then summed: `n_unique` of the Python API
//! is `count(DISTINCT x)` plus one when `count(*) > count(x)`). Other shapes keep the
//! single-phase distinct accumulator.
//!
//! Distinct counts of several different arguments (`count(DISTINCT a), count(DISTINCT b)`,
//! nothing else) become one copy of the input per argument, `UNION ALL`ed: the copy for `a`
//! carries `a` in its own value column and NULL in the others. `GROUP BY g, va, vb` removes
//! the duplicates, and `count(va), count(vb) GROUP BY g` counts them: a NULL is counted by no
//! `count`, so each count sees exactly its argument's distinct values, and every group of the
//! input is there (each copy carries every input row's group). Both steps are ordinary
//! group-bys, so the query spills instead of holding every value set in memory. The input is
//! read once per argument.

use crate::error::Result;
use crate::logical::expr::{AggregateFunction, Column, Expr, ScalarFunction};
use crate::logical::plan::LogicalPlan;
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
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
    if let Some(rewritten) = several_distinct_counts(&input, &group_by, &aggregates, &schema)? {
        return Ok(rewritten);
    }
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

/// The rewrite of distinct counts of several arguments (see the module docs), or `None` when
/// the aggregates have another shape or the rewritten plan would not give the same columns.
fn several_distinct_counts(
    input: &LogicalPlan,
    group_by: &[Expr],
    aggregates: &[Expr],
    schema: &PlanSchema,
) -> Result<Option<LogicalPlan>> {
    // The different arguments, and which one each aggregate counts.
    let mut arguments: Vec<Expr> = Vec::new();
    let mut counted = Vec::with_capacity(aggregates.len());
    for agg in aggregates {
        match agg.clone().unalias() {
            Expr::Aggregate {
                func: AggregateFunction::Count,
                args,
                distinct: true,
            } if args.len() == 1 => {
                let i = match arguments.iter().position(|a| *a == args[0]) {
                    Some(i) => i,
                    None => {
                        arguments.push(args[0].clone());
                        arguments.len() - 1
                    }
                };
                counted.push(i);
            }
            _ => return Ok(None),
        }
    }
    if arguments.len() < 2 {
        return Ok(None);
    }
    let types = arguments
        .iter()
        .map(|a| a.data_type(input.schema()))
        .collect::<Result<Vec<_>>>()?;
    let value_column = |i: usize| format!("{DISTINCT_COLUMN}_{i}");
    let copies = (0..arguments.len())
        .map(|copy| {
            let mut exprs = group_by.to_vec();
            for (i, (argument, data_type)) in arguments.iter().zip(&types).enumerate() {
                let value = if i == copy {
                    argument.clone()
                } else {
                    Expr::Literal(ScalarValue::null(data_type))
                };
                exprs.push(value.alias(value_column(i)));
            }
            LogicalPlan::project(input.clone(), exprs)
        })
        .collect::<Result<Vec<_>>>()?;
    let union = LogicalPlan::union(copies)?;
    let columns: Vec<Expr> = union
        .schema()
        .fields()
        .iter()
        .map(|f| Expr::Column(Column::qualified(f.qualifier.clone(), f.name())))
        .collect();
    let distinct = LogicalPlan::aggregate(union, columns.clone(), Vec::new())?;
    let counts = aggregates
        .iter()
        .zip(&counted)
        .map(|(agg, &i)| {
            Expr::Aggregate {
                func: AggregateFunction::Count,
                args: vec![Expr::Column(Column::new(value_column(i)))],
                distinct: false,
            }
            .alias(agg.output_name())
        })
        .collect();
    let rewritten = LogicalPlan::aggregate(distinct, columns[..group_by.len()].to_vec(), counts)?;
    // The plans above refer to the aggregate's columns by qualifier and name: keep the
    // single-phase form if the rewrite cannot give exactly those.
    let same = rewritten.schema().len() == schema.len()
        && rewritten
            .schema()
            .fields()
            .iter()
            .zip(schema.fields())
            .all(|(new, old)| {
                new.qualifier == old.qualifier
                    && new.name() == old.name()
                    && new.field.data_type() == old.field.data_type()
            });
    Ok(same.then_some(rewritten))
}
