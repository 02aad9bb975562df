//! Distinct-aggregate rewrite: an aggregate node with `DISTINCT` aggregates becomes ordinary
//! group-bys, which run in parallel (two-phase) and spill like any group-by, instead of one
//! set of values per group built on a single thread that cannot spill.
//!
//! `min`, `max`, `first` and `last` ignore `DISTINCT` (duplicates do not change them), so
//! only `count`, `sum` and `avg` of `DISTINCT x` need a rewrite. The input is copied once per
//! distinct argument, and each copy is grouped on its own: `GROUP BY g, a` over the copy for
//! argument `a` removes its duplicate values. The copies' groups are then lined up, each
//! value in its own column with NULL in the others, and `UNION ALL`ed; `GROUP BY g` applies
//! each distinct aggregate to its value column (`count`, `sum` and `avg` ignore NULLs, so
//! each sees exactly its argument's distinct values). Every group of the input is there:
//! each copy carries every input row's group. Grouping each copy apart keeps each table's
//! key to the groups and one value: in one table keyed by `(g, a1, …, ak)`, a string
//! argument with millions of values would carry every other argument's (NULL) column too,
//! and a copy of a few values would share the spilling table of one of many.
//!
//! The other aggregates of the node are computed in the first step and combined in the
//! second. When they are all `count`, `sum`, `min` or `max`, the first copy carries their
//! arguments: the first step computes them per `(g, a1)` and the second combines the partial
//! results (a count is the sum of partial counts, a minimum the minimum of minima). With one
//! distinct argument this is just `GROUP BY g, x`, then `GROUP BY g`: the Python API's
//! `n_unique` (a distinct count plus `count(*)`) is such a node.
//!
//! `avg`, `first` and `last` do not combine that way. When one is present, the other
//! aggregates are computed by a group-by of their own over one more copy of the input (one
//! row per group), lined up and `UNION ALL`ed with the value groups: NULL partial results
//! beside the values, NULL values beside the partial results. The second step then takes
//! each such aggregate from the single row per group that holds it (`min` of it; a count is
//! the sum). The value groups, the part that spills, carry only their keys. The input is
//! read once per copy.
//!
//! Without `GROUP BY` an empty input still gives one row, where a count is 0 but a sum of
//! partial counts over no rows is NULL: counts are wrapped in `coalesce(…, 0)` there.
//!
//! The rewrite keeps the node when its result would not have exactly the node's columns
//! (names, qualifiers, types).

use crate::error::Result;
use crate::logical::expr::{AggregateFunction, Column, Expr, ScalarFunction};
use crate::logical::hidden;
use crate::logical::plan::LogicalPlan;
use crate::logical::scalar::ScalarValue;

/// What one aggregate of the node computes.
#[derive(Clone, Debug)]
enum Role {
    /// `func(DISTINCT arguments[argument])`: `count`, `sum` or `avg`.
    Distinct {
        func: AggregateFunction,
        argument: usize,
    },
    /// An aggregate of every row (`arg` is `None` for `count(*)`).
    Plain {
        func: AggregateFunction,
        arg: Option<Expr>,
    },
}

pub(super) fn rewrite_distinct_aggregates(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = plan.map_inputs(&mut rewrite_distinct_aggregates)?;
    let LogicalPlan::Aggregate {
        input,
        group_by,
        aggregates,
        schema,
    } = plan
    else {
        return Ok(plan);
    };
    if !aggregates.iter().any(is_distinct) {
        return Ok(LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        });
    }
    let Some((roles, arguments)) = roles(&aggregates) else {
        return Ok(LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        });
    };
    if arguments.is_empty() {
        // Only aggregates that ignore DISTINCT: the plain form merges in two phases.
        let aggregates = aggregates.into_iter().map(without_distinct).collect();
        return Ok(LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        });
    }
    let decomposable = roles.iter().all(|r| match r {
        Role::Distinct { .. } => true,
        Role::Plain { func, .. } => matches!(
            func,
            AggregateFunction::Count
                | AggregateFunction::Sum
                | AggregateFunction::Min
                | AggregateFunction::Max
        ),
    });
    let names: Vec<String> = aggregates.iter().map(Expr::output_name).collect();
    let rewritten = grouped_twice(&input, &group_by, &roles, &arguments, &names, decomposable);
    // A rewrite that cannot be built (or would not give the node's columns) leaves the
    // single-phase node, which is correct, only unable to spill its value sets.
    match rewritten {
        Ok(rewritten) if rewritten.schema().same_columns(&schema) => Ok(rewritten),
        _ => Ok(LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        }),
    }
}

fn is_distinct(agg: &Expr) -> bool {
    matches!(
        agg.clone().unalias(),
        Expr::Aggregate { distinct: true, .. }
    )
}

/// `agg` without its `DISTINCT` (for aggregates that duplicates do not change).
fn without_distinct(agg: Expr) -> Expr {
    let name = agg.output_name();
    match agg.unalias() {
        Expr::Aggregate { func, args, .. } => Expr::Aggregate {
            func,
            args,
            distinct: false,
        }
        .alias(name),
        other => other.alias(name),
    }
}

/// The role of each aggregate and the different distinct arguments, or `None` when an
/// aggregate has a shape the rewrite does not know.
fn roles(aggregates: &[Expr]) -> Option<(Vec<Role>, Vec<Expr>)> {
    let mut arguments: Vec<Expr> = Vec::new();
    let mut roles = Vec::with_capacity(aggregates.len());
    for agg in aggregates {
        let Expr::Aggregate {
            func,
            args,
            distinct,
        } = agg.clone().unalias()
        else {
            return None;
        };
        let needs_distinct = distinct
            && matches!(
                func,
                AggregateFunction::Count
                    | AggregateFunction::Sum
                    | AggregateFunction::Avg
                    | AggregateFunction::StddevSamp
                    | AggregateFunction::StddevPop
                    | AggregateFunction::VarSamp
                    | AggregateFunction::VarPop
            );
        if needs_distinct {
            let [arg] = <[Expr; 1]>::try_from(args).ok()?;
            let argument = match arguments.iter().position(|a| *a == arg) {
                Some(i) => i,
                None => {
                    arguments.push(arg);
                    arguments.len() - 1
                }
            };
            roles.push(Role::Distinct { func, argument });
        } else {
            if args.len() > 1 {
                return None;
            }
            roles.push(Role::Plain {
                func,
                arg: args.into_iter().next(),
            });
        }
    }
    Some((roles, arguments))
}

/// `func(column)`, named `name`.
fn aggregate_of(func: AggregateFunction, column: &str, name: &str) -> Expr {
    Expr::Aggregate {
        func,
        args: vec![Expr::Column(Column::new(column))],
        distinct: false,
    }
    .alias(name)
}

/// The aggregate combining a plain aggregate's first-step results into its final value.
fn combining(func: AggregateFunction) -> AggregateFunction {
    match func {
        AggregateFunction::Count | AggregateFunction::Sum => AggregateFunction::Sum,
        AggregateFunction::Max => AggregateFunction::Max,
        // Exactly one first-step group holds a non-NULL result (see the module docs).
        AggregateFunction::Min
        | AggregateFunction::Avg
        | AggregateFunction::First
        | AggregateFunction::Last
        | AggregateFunction::StddevSamp
        | AggregateFunction::StddevPop
        | AggregateFunction::VarSamp
        | AggregateFunction::VarPop
        // (Quantiles are rewritten into sorts before this rule; two-argument aggregates
        // leave the node alone, see `roles`.)
        | AggregateFunction::Quantile(_)
        | AggregateFunction::ArgMin
        | AggregateFunction::ArgMax
        | AggregateFunction::CovarPop
        | AggregateFunction::CovarSamp
        | AggregateFunction::Corr
        | AggregateFunction::ApproxCountDistinct
        | AggregateFunction::ApproxQuantile
        | AggregateFunction::StringAgg { .. } => AggregateFunction::Min,
    }
}

/// The rewrite of the module docs: input copies (one per distinct argument, and one for the
/// other aggregates unless they ride on the first), each grouped, lined up and `UNION ALL`ed,
/// then grouped again.
fn grouped_twice(
    input: &LogicalPlan,
    group_by: &[Expr],
    roles: &[Role],
    arguments: &[Expr],
    names: &[String],
    decomposable: bool,
) -> Result<LogicalPlan> {
    let groups = group_by.len();
    let argument_types = arguments
        .iter()
        .map(|a| a.data_type(input.schema()))
        .collect::<Result<Vec<_>>>()?;
    // The plain aggregates: (role index, function, argument, its type); count(*) counts 1.
    let mut plain = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        if let Role::Plain { func, arg } = role {
            let arg = arg.clone().unwrap_or(Expr::Literal(ScalarValue::int64(1)));
            let data_type = arg.data_type(input.schema())?;
            plain.push((i, *func, arg, data_type));
        }
    }
    let value_column = |i: usize| hidden::name(hidden::Role::DistinctValue, i);
    let plain_column = |i: usize| hidden::name(hidden::Role::PlainArgument, i);
    let partial_column = |i: usize| hidden::name(hidden::Role::PartialAggregate, i);
    let partials = || -> Vec<Expr> {
        plain
            .iter()
            .map(|(i, func, _, _)| aggregate_of(*func, &plain_column(*i), &partial_column(*i)))
            .collect()
    };
    // Copy `c` carries argument `c`, the first also the plain arguments when they ride on it,
    // and each copy is grouped on its own: the group-by's key is the groups and that one
    // value, so a wide or string argument does not widen every other copy's keys (and a copy
    // of few values collapses at once instead of sharing a table with one of many).
    let mut steps = Vec::with_capacity(arguments.len() + 1);
    for (copy, argument) in arguments.iter().enumerate() {
        let riding = decomposable && copy == 0;
        let mut exprs = group_by.to_vec();
        exprs.push(argument.clone().alias(value_column(copy)));
        if riding {
            for (i, _, arg, _) in &plain {
                exprs.push(arg.clone().alias(plain_column(*i)));
            }
        }
        let projected = LogicalPlan::project(input.clone(), exprs)?;
        let keys = projected.schema().column_exprs()[..=groups].to_vec();
        let aggregates = if riding { partials() } else { Vec::new() };
        let step = LogicalPlan::aggregate(projected, keys, aggregates)?;
        steps.push((Some(copy), riding, step));
    }
    if !decomposable && !plain.is_empty() {
        // The other aggregates over their own copy, one row per group.
        let mut exprs = group_by.to_vec();
        for (i, _, arg, _) in &plain {
            exprs.push(arg.clone().alias(plain_column(*i)));
        }
        let own = LogicalPlan::project(input.clone(), exprs)?;
        let own_groups = own.schema().column_exprs()[..groups].to_vec();
        steps.push((
            None,
            true,
            LogicalPlan::aggregate(own, own_groups, partials())?,
        ));
    }
    // Line the steps up for the second group-by: the groups, every value column (NULL but for
    // the step's own) and every partial result (NULL but in the step that computed them).
    let partial_types = match steps.iter().find(|(_, partials, _)| *partials) {
        Some((value, _, step)) => {
            let offset = groups + usize::from(value.is_some());
            (0..plain.len())
                .map(|k| step.schema().field(offset + k).field.data_type().clone())
                .collect()
        }
        None => Vec::new(),
    };
    let first = if steps.len() == 1 {
        // One distinct argument: its step already has that layout.
        steps.remove(0).2
    } else {
        let lined_up = steps
            .into_iter()
            .map(|(value, with_partials, step)| {
                let columns = step.schema().column_exprs();
                let mut exprs = columns[..groups].to_vec();
                for (i, data_type) in argument_types.iter().enumerate() {
                    exprs.push(if value == Some(i) {
                        columns[groups].clone()
                    } else {
                        Expr::Literal(ScalarValue::null(data_type)).alias(value_column(i))
                    });
                }
                let offset = groups + usize::from(value.is_some());
                for (k, ((i, _, _, _), data_type)) in plain.iter().zip(&partial_types).enumerate() {
                    exprs.push(if with_partials {
                        columns[offset + k].clone()
                    } else {
                        Expr::Literal(ScalarValue::null(data_type)).alias(partial_column(*i))
                    });
                }
                LogicalPlan::project(step, exprs)
            })
            .collect::<Result<Vec<_>>>()?;
        LogicalPlan::union(lined_up)?
    };
    let final_aggregates = roles
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (role, name))| match role {
            Role::Distinct { func, argument } => {
                aggregate_of(*func, &value_column(*argument), name)
            }
            Role::Plain { func, .. } => aggregate_of(combining(*func), &partial_column(i), name),
        })
        .collect();
    let final_groups = first.schema().column_exprs()[..groups].to_vec();
    let last = LogicalPlan::aggregate(first, final_groups, final_aggregates)?;
    zero_empty_counts(last, group_by.is_empty(), roles)
}

/// Without `GROUP BY`, wrap the combined plain counts of `plan` in `coalesce(…, 0)`: over an
/// empty input the sum of partial counts is NULL where the count is 0.
fn zero_empty_counts(plan: LogicalPlan, global: bool, roles: &[Role]) -> Result<LogicalPlan> {
    let plain_count = |r: &Role| {
        matches!(
            r,
            Role::Plain {
                func: AggregateFunction::Count,
                ..
            }
        )
    };
    if !global || !roles.iter().any(plain_count) {
        return Ok(plan);
    }
    let columns = plan
        .schema()
        .fields()
        .iter()
        .zip(roles)
        .map(|(f, role)| {
            let column = Expr::Column(Column::qualified(f.qualifier.clone(), f.name()));
            if plain_count(role) {
                Expr::Function {
                    func: ScalarFunction::Coalesce,
                    args: vec![column, Expr::Literal(ScalarValue::int64(0))],
                }
                .alias(f.name())
            } else {
                column
            }
        })
        .collect();
    LogicalPlan::project(plan, columns)
}

#[cfg(test)]
mod tests {
    use super::rewrite_distinct_aggregates;
    use crate::logical::expr::{AggregateFunction, Expr};
    use crate::logical::expr_fn::{avg, col, count, count_distinct, count_star, min, sum};
    use crate::logical::plan::LogicalPlan;
    use crate::optimizer::test_util::{abs_scan, assert_plan};

    fn distinct(func: AggregateFunction, args: Vec<Expr>) -> Expr {
        Expr::Aggregate {
            func,
            args,
            distinct: true,
        }
    }

    fn aggregate(group_by: Vec<Expr>, aggregates: Vec<Expr>) -> LogicalPlan {
        LogicalPlan::aggregate(abs_scan("t"), group_by, aggregates).unwrap()
    }

    #[test]
    fn an_aggregate_without_distinct_is_left_alone() {
        let plan = aggregate(vec![col("t.s")], vec![count(col("t.a")), sum(col("t.b"))]);
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[count(t.a) AS count(t.a), sum(t.b) AS sum(t.b)]
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn min_and_max_distinct_only_lose_their_distinct() {
        let plan = aggregate(
            vec![col("t.s")],
            vec![
                distinct(AggregateFunction::Min, vec![col("t.a")]),
                distinct(AggregateFunction::Max, vec![col("t.b")]),
            ],
        );
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[min(t.a) AS min(DISTINCT t.a), max(t.b) AS max(DISTINCT t.b)]
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_distinct_count_of_two_arguments_is_left_alone() {
        let plan = aggregate(
            vec![col("t.s")],
            vec![distinct(
                AggregateFunction::Count,
                vec![col("t.a"), col("t.b")],
            )],
        );
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[count(DISTINCT t.a, t.b) AS count(DISTINCT t.a, t.b)]
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_distinct_count_groups_by_the_value_and_then_by_the_groups() {
        let plan = aggregate(vec![col("t.s")], vec![count_distinct(col("t.a"))]);
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[count(#distinct0) AS count(DISTINCT t.a)]
              Aggregate: group_by=[t.s, #distinct0] aggregates=[]
                Projection: t.s, t.a AS #distinct0
                  TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn plain_count_sum_and_min_ride_on_the_first_copy_as_partial_results() {
        let plan = aggregate(
            vec![col("t.s")],
            vec![
                count_distinct(col("t.a")),
                count_star(),
                sum(col("t.b")),
                min(col("t.b")),
            ],
        );
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[count(#distinct0) AS count(DISTINCT t.a), sum(#partial1) AS count(*), sum(#partial2) AS sum(t.b), min(#partial3) AS min(t.b)]
              Aggregate: group_by=[t.s, #distinct0] aggregates=[count(#arg1) AS #partial1, sum(#arg2) AS #partial2, min(#arg3) AS #partial3]
                Projection: t.s, t.a AS #distinct0, 1 AS #arg1, t.b AS #arg2, t.b AS #arg3
                  TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn without_group_by_plain_counts_are_wrapped_in_coalesce() {
        let plan = aggregate(
            vec![],
            vec![count_distinct(col("t.a")), count_star(), sum(col("t.b"))],
        );
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Projection: count(DISTINCT t.a), coalesce(count(*), 0) AS count(*), sum(t.b)
              Aggregate: group_by=[] aggregates=[count(#distinct0) AS count(DISTINCT t.a), sum(#partial1) AS count(*), sum(#partial2) AS sum(t.b)]
                Aggregate: group_by=[#distinct0] aggregates=[count(#arg1) AS #partial1, sum(#arg2) AS #partial2]
                  Projection: t.a AS #distinct0, 1 AS #arg1, t.b AS #arg2
                    TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn two_distinct_arguments_are_grouped_apart_and_lined_up_in_a_union() {
        let plan = aggregate(
            vec![col("t.s")],
            vec![
                count_distinct(col("t.a")),
                distinct(AggregateFunction::Sum, vec![col("t.b")]),
            ],
        );
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[count(#distinct0) AS count(DISTINCT t.a), sum(#distinct1) AS sum(DISTINCT t.b)]
              Union
                Projection: t.s, #distinct0, NULL AS #distinct1
                  Aggregate: group_by=[t.s, #distinct0] aggregates=[]
                    Projection: t.s, t.a AS #distinct0
                      TableScan: t columns=[a, b, s]
                Projection: t.s, NULL AS #distinct0, #distinct1
                  Aggregate: group_by=[t.s, #distinct1] aggregates=[]
                    Projection: t.s, t.b AS #distinct1
                      TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn avg_beside_a_distinct_aggregate_is_computed_over_its_own_copy() {
        let plan = aggregate(
            vec![col("t.s")],
            vec![count_distinct(col("t.a")), avg(col("t.b"))],
        );
        assert_plan(
            &rewrite_distinct_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[count(#distinct0) AS count(DISTINCT t.a), min(#partial1) AS avg(t.b)]
              Union
                Projection: t.s, #distinct0, NULL AS #partial1
                  Aggregate: group_by=[t.s, #distinct0] aggregates=[]
                    Projection: t.s, t.a AS #distinct0
                      TableScan: t columns=[a, b, s]
                Projection: t.s, NULL AS #distinct0, #partial1
                  Aggregate: group_by=[t.s] aggregates=[avg(#arg1) AS #partial1]
                    Projection: t.s, t.b AS #arg1
                      TableScan: t columns=[a, b, s]
            ",
        );
    }
}
