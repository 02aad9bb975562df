//! Ordered-set aggregates (`median`, `quantile_cont`, `quantile_disc`, the Python API's
//! `quantile(q, interpolation)`) become a sort and ordinary aggregates, so they are exact and
//! spill like any sort, however many values a group has: no accumulator holds a group's
//! values.
//!
//! For each different argument `x`, a window node numbers the rows of each group in the
//! order of `x` (NULLs last) and counts the group's non-NULL values:
//!
//! ```text
//! rn = row_number() OVER (PARTITION BY g ORDER BY x NULLS LAST)
//! n  = count(x)     OVER (PARTITION BY g ORDER BY x NULLS LAST
//!                         ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
//! ```
//!
//! The rows keep all their columns, so the node's other aggregates are computed over the
//! windows' output unchanged. A quantile picks the values at one or two ranks, each with
//! `max(CASE WHEN rn = rank THEN x END)` (one row of the group matches), where the rank is a
//! function of `n` and the fraction `p`: with `h = (n - 1) p`, `floor h + 1` and `ceil h + 1`
//! for the interpolating kinds, `max(ceil(n p), 1)` for `quantile_disc`. A projection above the
//! aggregate interpolates: `lo + (hi - lo) (h - floor h)`. For decimals the interpolated part
//! is truncated to the column's scale (DuckDB's result), the rest stays exact. A group whose
//! values are all NULL has no row at any rank, so its quantile is NULL.
//!
//! The node is left alone (and execution refuses the quantile by name) when the rewrite would
//! not give the node's exact columns.

use arrow::datatypes::DataType;

use crate::error::{EngineError, Result};
use crate::logical::expr::{AggregateFunction, Column, Expr, QuantileKind, ScalarFunction};
use crate::logical::hidden;
use crate::logical::plan::{LogicalPlan, SortKey};
use crate::logical::scalar::ScalarValue;
use crate::logical::window::{FrameBound, FrameUnits, WindowExpr, WindowFrame, WindowFunction};

pub(super) fn rewrite_ordered_set_aggregates(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = plan.map_inputs(&mut rewrite_ordered_set_aggregates)?;
    let LogicalPlan::Aggregate {
        input,
        group_by,
        aggregates,
        schema,
    } = plan
    else {
        return Ok(plan);
    };
    if !aggregates.iter().any(|a| quantile_of(a).is_some()) {
        return Ok(LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        });
    }
    let rewritten = rewrite(&input, &group_by, &aggregates)?;
    if rewritten.schema().same_columns(&schema) {
        Ok(rewritten)
    } else {
        Err(EngineError::Internal(format!(
            "the quantile rewrite changed the columns of {}",
            aggregates
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// `(kind, value, fraction)` of a quantile aggregate.
fn quantile_of(agg: &Expr) -> Option<(QuantileKind, Expr, f64)> {
    let Expr::Aggregate {
        func: AggregateFunction::Quantile(kind),
        args,
        ..
    } = agg.clone().unalias()
    else {
        return None;
    };
    let fraction = match (kind, args.get(1)) {
        (QuantileKind::Median, _) => 0.5,
        (_, Some(Expr::Literal(v))) => v.as_f64()?,
        _ => return None,
    };
    Some((kind, args.into_iter().next()?, fraction))
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::new(name))
}

fn int(v: i64) -> Expr {
    Expr::Literal(ScalarValue::int64(v))
}

fn float(v: f64) -> Expr {
    Expr::Literal(ScalarValue::float64(v))
}

fn function(func: ScalarFunction, args: Vec<Expr>) -> Expr {
    Expr::Function { func, args }
}

fn max_of(e: Expr) -> Expr {
    Expr::Aggregate {
        func: AggregateFunction::Max,
        args: vec![e],
        distinct: false,
    }
}

fn rewrite(input: &LogicalPlan, group_by: &[Expr], aggregates: &[Expr]) -> Result<LogicalPlan> {
    let name = |n: usize| hidden::name(hidden::Role::Quantile, n);
    let mut counter = 0usize;
    let mut fresh = || {
        counter += 1;
        name(counter)
    };
    let partition: Vec<Expr> = group_by.iter().map(|g| g.clone().unalias()).collect();
    // One window node per different argument: (argument, rank column, count column).
    let mut windows: Vec<(Expr, String, String)> = Vec::new();
    let mut plan = input.clone();
    for agg in aggregates {
        let Some((_, value, _)) = quantile_of(agg) else {
            continue;
        };
        if windows.iter().any(|(v, _, _)| *v == value) {
            continue;
        }
        let (rank, count) = (fresh(), fresh());
        let order_by = vec![SortKey {
            expr: value.clone(),
            ascending: true,
            nulls_first: false,
        }];
        let call = |func: WindowFunction, args: Vec<Expr>| {
            Expr::Window(Box::new(WindowExpr {
                func,
                args,
                partition_by: partition.clone(),
                order_by: order_by.clone(),
                frame: WindowFrame {
                    units: FrameUnits::Rows,
                    start: FrameBound::UnboundedPreceding,
                    end: FrameBound::UnboundedFollowing,
                },
                ignore_nulls: false,
            }))
        };
        plan = LogicalPlan::window(
            plan,
            vec![
                call(WindowFunction::RowNumber, vec![]).alias(rank.clone()),
                call(
                    WindowFunction::Aggregate(AggregateFunction::Count),
                    vec![value.clone()],
                )
                .alias(count.clone()),
            ],
        )?;
        windows.push((value, rank, count));
    }
    // The aggregates over the windows' output, and what the projection above makes of them.
    let mut new_aggregates = Vec::new();
    let mut finals = Vec::new();
    for agg in aggregates {
        let output = agg.output_name();
        let Some((kind, value, p)) = quantile_of(agg) else {
            new_aggregates.push(agg.clone());
            finals.push(column(&output));
            continue;
        };
        let value_type = value.data_type(input.schema())?;
        let Some((_, rank, count)) = windows.iter().find(|(v, _, _)| *v == value) else {
            return Err(EngineError::Internal(format!("no window for {value}")));
        };
        let (rank, count) = (column(rank), column(count));
        let at = |position: Expr| {
            max_of(Expr::Case {
                operand: None,
                when_then: vec![(rank.clone().eq(position), value.clone())],
                otherwise: None,
            })
        };
        // h = (n - 1) * p, and the 1-based ranks around it.
        let h = |n: Expr| (n - int(1)).cast(DataType::Float64) * float(p);
        let floor_rank =
            function(ScalarFunction::Floor, vec![h(count.clone())]).cast(DataType::Int64) + int(1);
        let ceil_rank =
            function(ScalarFunction::Ceil, vec![h(count.clone())]).cast(DataType::Int64) + int(1);
        let (lo, hi, n) = (fresh(), fresh(), fresh());
        match kind {
            QuantileKind::Discrete => {
                let position = function(
                    ScalarFunction::Greatest,
                    vec![
                        function(
                            ScalarFunction::Ceil,
                            vec![count.clone().cast(DataType::Float64) * float(p)],
                        )
                        .cast(DataType::Int64),
                        int(1),
                    ],
                );
                new_aggregates.push(at(position).alias(lo.clone()));
                finals.push(column(&lo).alias(output));
            }
            QuantileKind::Lower => {
                new_aggregates.push(at(floor_rank).alias(lo.clone()));
                finals.push(column(&lo).alias(output));
            }
            QuantileKind::Higher => {
                new_aggregates.push(at(ceil_rank).alias(lo.clone()));
                finals.push(column(&lo).alias(output));
            }
            QuantileKind::Median
            | QuantileKind::Linear
            | QuantileKind::Midpoint
            | QuantileKind::Nearest => {
                new_aggregates.push(at(floor_rank).alias(lo.clone()));
                new_aggregates.push(at(ceil_rank).alias(hi.clone()));
                new_aggregates.push(max_of(count.clone()).alias(n.clone()));
                let h = h(column(&n));
                let fraction = match kind {
                    QuantileKind::Midpoint => float(0.5),
                    _ => h.clone() - function(ScalarFunction::Floor, vec![h.clone()]),
                };
                let result = match kind {
                    QuantileKind::Nearest => nearest(column(&lo), column(&hi), fraction),
                    _ => interpolate(column(&lo), column(&hi), fraction, &value_type),
                };
                finals.push(result.alias(output));
            }
        }
    }
    let aggregate = LogicalPlan::aggregate(plan, group_by.to_vec(), new_aggregates)?;
    let mut exprs: Vec<Expr> = aggregate
        .schema()
        .fields()
        .iter()
        .take(group_by.len())
        .map(|f| {
            Expr::Column(Column {
                relation: f.qualifier.clone(),
                name: f.name().to_string(),
            })
        })
        .collect();
    exprs.extend(finals);
    LogicalPlan::project(aggregate, exprs)
}

/// `lo + (hi - lo) * fraction`: a `DOUBLE`, or for a decimal the decimal with the interpolated
/// part truncated to its scale.
fn interpolate(lo: Expr, hi: Expr, fraction: Expr, value_type: &DataType) -> Expr {
    match value_type {
        DataType::Decimal128(precision, scale) => {
            let unit = 10f64.powi(i32::from(*scale));
            // A tiny nudge keeps exact products such as 0.29 * 100 = 28.999... from being
            // truncated a unit short.
            let scaled = function(
                ScalarFunction::Floor,
                vec![
                    (hi.clone() - lo.clone()).cast(DataType::Float64) * fraction * float(unit)
                        + float(1e-7),
                ],
            );
            let delta = (scaled / float(unit)).cast(DataType::Decimal128(*precision, *scale));
            (lo + delta).cast(DataType::Decimal128(*precision, *scale))
        }
        _ => {
            let lo = lo.cast(DataType::Float64);
            let hi = hi.cast(DataType::Float64);
            lo.clone() + (hi - lo) * fraction
        }
    }
}

/// The value at the rank nearest to `h`, halves rounded up (Polars' `nearest`).
fn nearest(lo: Expr, hi: Expr, fraction: Expr) -> Expr {
    Expr::Case {
        operand: None,
        when_then: vec![(fraction.lt(float(0.5)), lo)],
        otherwise: Some(Box::new(hi)),
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite_ordered_set_aggregates;
    use crate::logical::expr::{AggregateFunction, Expr, QuantileKind};
    use crate::logical::expr_fn::{col, lit, sum};
    use crate::logical::plan::LogicalPlan;
    use crate::optimizer::test_util::{abs_scan, assert_plan};

    fn quantile(kind: QuantileKind, args: Vec<Expr>) -> Expr {
        Expr::Aggregate {
            func: AggregateFunction::Quantile(kind),
            args,
            distinct: false,
        }
    }

    fn aggregate(group_by: Vec<Expr>, aggregates: Vec<Expr>) -> LogicalPlan {
        LogicalPlan::aggregate(abs_scan("t"), group_by, aggregates).unwrap()
    }

    #[test]
    fn an_aggregate_without_quantiles_is_left_alone() {
        let plan = aggregate(vec![col("t.s")], vec![sum(col("t.a"))]);
        assert_plan(
            &rewrite_ordered_set_aggregates(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[sum(t.a) AS sum(t.a)]
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_median_becomes_a_numbering_window_and_two_picked_ranks() {
        let plan = aggregate(
            vec![col("t.s")],
            vec![
                quantile(QuantileKind::Median, vec![col("t.a")]),
                sum(col("t.b")),
            ],
        );
        let schema = plan.schema().clone();
        let rewritten = rewrite_ordered_set_aggregates(plan).unwrap();
        assert_plan(
            &rewritten,
            "
            Projection: t.s, (CAST(#q3 AS Float64) + ((CAST(#q4 AS Float64) - CAST(#q3 AS Float64)) * ((CAST((#q5 - 1) AS Float64) * 0.5) - floor((CAST((#q5 - 1) AS Float64) * 0.5))))) AS median(t.a), sum(t.b)
              Aggregate: group_by=[t.s] aggregates=[max(CASE WHEN (#q1 = (CAST(floor((CAST((#q2 - 1) AS Float64) * 0.5)) AS Int64) + 1)) THEN t.a END) AS #q3, max(CASE WHEN (#q1 = (CAST(ceil((CAST((#q2 - 1) AS Float64) * 0.5)) AS Int64) + 1)) THEN t.a END) AS #q4, max(#q2) AS #q5, sum(t.b) AS sum(t.b)]
                Window: row_number() OVER (PARTITION BY t.s ORDER BY t.a ASC NULLS LAST) AS #q1, count(t.a) OVER (PARTITION BY t.s ORDER BY t.a ASC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS #q2
                  TableScan: t columns=[a, b, s]
            ",
        );
        assert_eq!(rewritten.schema().fields().len(), schema.fields().len());
        for (new, old) in rewritten.schema().fields().iter().zip(schema.fields()) {
            assert_eq!(new.name(), old.name());
            assert_eq!(new.field.data_type(), old.field.data_type());
        }
    }

    #[test]
    fn quantiles_of_one_argument_share_its_window() {
        let plan = aggregate(
            vec![],
            vec![
                quantile(QuantileKind::Discrete, vec![col("t.a"), lit(0.25)]),
                quantile(QuantileKind::Lower, vec![col("t.a"), lit(0.5)]),
                quantile(QuantileKind::Higher, vec![col("t.b"), lit(0.5)]),
            ],
        );
        assert_plan(
            &rewrite_ordered_set_aggregates(plan).unwrap(),
            "
            Projection: #q5 AS quantile_disc(t.a, 0.25), #q8 AS quantile_lower(t.a, 0.5), #q11 AS quantile_higher(t.b, 0.5)
              Aggregate: group_by=[] aggregates=[max(CASE WHEN (#q1 = greatest(CAST(ceil((CAST(#q2 AS Float64) * 0.25)) AS Int64), 1)) THEN t.a END) AS #q5, max(CASE WHEN (#q1 = (CAST(floor((CAST((#q2 - 1) AS Float64) * 0.5)) AS Int64) + 1)) THEN t.a END) AS #q8, max(CASE WHEN (#q3 = (CAST(ceil((CAST((#q4 - 1) AS Float64) * 0.5)) AS Int64) + 1)) THEN t.b END) AS #q11]
                Window: row_number() OVER (ORDER BY t.b ASC NULLS LAST) AS #q3, count(t.b) OVER (ORDER BY t.b ASC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS #q4
                  Window: row_number() OVER (ORDER BY t.a ASC NULLS LAST) AS #q1, count(t.a) OVER (ORDER BY t.a ASC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS #q2
                    TableScan: t columns=[a, b, s]
            ",
        );
    }
}
