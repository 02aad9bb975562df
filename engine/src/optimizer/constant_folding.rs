//! Constant folding: evaluates sub-expressions without column references once at planning
//! time (`date '1998-12-01' - interval '90' day` becomes a date literal) and simplifies boolean
//! identities (`x AND TRUE` → `x`). Filters that fold to TRUE disappear; a filter with a
//! conjunct that folds to FALSE or NULL becomes `false`.

use crate::error::Result;
use crate::eval::constant::fold_expr;
use crate::logical::expr::Expr;
use crate::logical::plan::{LogicalPlan, SortKey};

/// Fewest equalities an `OR` needs to become an `IN` list.
const MIN_EQUALITIES_FOR_IN: usize = 3;

/// `x = a OR x = b OR …` — every disjunct an equality of the same expression with a constant —
/// as `x IN (a, b, …)`, wherever such an `OR` occurs in `expr`. The same rows pass (NULL
/// included: both give NULL for a NULL `x`, and for a NULL constant where no other matches),
/// and a long list is then one set lookup per row instead of a comparison per constant (an OR
/// of 990 equalities took 10 s over SF1 `lineitem`; generated SQL and `reduce(or_, …)` in
/// Python write them).
fn equalities_to_in_lists(expr: Expr) -> Result<Expr> {
    use crate::logical::expr::BinaryOp;
    expr.transform_down(&mut |e| {
        let Expr::Binary {
            op: BinaryOp::Or, ..
        } = e
        else {
            return None;
        };
        // The disjuncts, without recursion over a long chain.
        let mut disjuncts = Vec::new();
        let mut stack = vec![e];
        while let Some(next) = stack.pop() {
            match next {
                Expr::Binary {
                    left,
                    op: BinaryOp::Or,
                    right,
                } => {
                    stack.push(right);
                    stack.push(left);
                }
                other => disjuncts.push(other),
            }
        }
        if disjuncts.len() < MIN_EQUALITIES_FOR_IN {
            return None;
        }
        let mut tested: Option<&Expr> = None;
        let mut list = Vec::with_capacity(disjuncts.len());
        for d in disjuncts {
            let Expr::Binary {
                left,
                op: BinaryOp::Eq,
                right,
            } = d
            else {
                return None;
            };
            let (subject, constant) = match (left.as_ref(), right.as_ref()) {
                (x, c @ Expr::Literal(_)) if !matches!(x, Expr::Literal(_)) => (x, c),
                (c @ Expr::Literal(_), x) if !matches!(x, Expr::Literal(_)) => (x, c),
                _ => return None,
            };
            match tested {
                Some(t) if t != subject => return None,
                _ => tested = Some(subject),
            }
            list.push(constant.clone());
        }
        Some(Expr::InList {
            expr: Box::new(tested?.clone()),
            list,
            negated: false,
        })
    })
}

pub(super) fn fold_constants(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = plan.map_inputs(&mut fold_constants)?;
    Ok(match plan {
        LogicalPlan::Filter { input, predicate } => {
            let mut predicate = equalities_to_in_lists(fold_expr(predicate)?)?;
            // A conjunct that is constantly FALSE or NULL rejects every row: so does the
            // filter, without evaluating its other conjuncts (which might fail on rows no
            // answer needs, as an overflow would).
            let rejects = |e: &Expr| matches!(e, Expr::Literal(v) if v.is_null() || v.as_bool() == Some(false));
            if !rejects(&predicate) && predicate.clone().split_conjunction().iter().any(rejects) {
                predicate = Expr::Literal(crate::logical::scalar::ScalarValue::boolean(false));
            }
            match &predicate {
                Expr::Literal(v) if v.as_bool() == Some(true) => *input,
                _ => LogicalPlan::Filter { input, predicate },
            }
        }
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } => {
            let exprs = exprs.into_iter().map(fold_expr).collect::<Result<_>>()?;
            LogicalPlan::Projection {
                input,
                exprs,
                schema,
            }
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            schema,
        } => LogicalPlan::Aggregate {
            input,
            group_by: group_by.into_iter().map(fold_expr).collect::<Result<_>>()?,
            aggregates: aggregates
                .into_iter()
                .map(fold_expr)
                .collect::<Result<_>>()?,
            schema,
        },
        LogicalPlan::Sort { input, keys, fetch } => LogicalPlan::Sort {
            input,
            keys: keys
                .into_iter()
                .map(|k| {
                    Ok(SortKey {
                        expr: fold_expr(k.expr)?,
                        ..k
                    })
                })
                .collect::<Result<_>>()?,
            fetch,
        },
        LogicalPlan::TableScan(mut scan) => {
            scan.filters = scan
                .filters
                .into_iter()
                .map(fold_expr)
                .collect::<Result<_>>()?;
            LogicalPlan::TableScan(scan)
        }
        LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            schema,
        } => LogicalPlan::Join {
            left,
            right,
            join_type,
            on: on
                .into_iter()
                .map(|(l, r)| Ok((fold_expr(l)?, fold_expr(r)?)))
                .collect::<Result<_>>()?,
            filter: filter.map(fold_expr).transpose()?,
            schema,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::fold_constants;
    use crate::logical::expr_fn::{col, lit, sum};
    use crate::logical::plan::{JoinType, LogicalPlan, SortKey};
    use crate::optimizer::test_util::{abs_scan, assert_plan, with_scan_filters};

    #[test]
    fn constant_arithmetic_in_a_filter_becomes_a_literal() {
        let predicate = col("t.a").gt(lit(1i64) + lit(2i64));
        let plan = LogicalPlan::filter(abs_scan("t"), predicate).unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Filter: (t.a > 3)
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_filter_that_folds_to_true_disappears() {
        // `x OR TRUE` is TRUE whatever x is, NULL included.
        let predicate = col("t.a").gt(lit(5i64)).or(lit(1i64).eq(lit(1i64)));
        let plan = LogicalPlan::filter(abs_scan("t"), predicate).unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_conjunct_that_folds_to_true_is_dropped_from_the_filter() {
        let predicate = col("t.a").gt(lit(5i64)).and(lit(2i64).gt(lit(1i64)));
        let plan = LogicalPlan::filter(abs_scan("t"), predicate).unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Filter: (t.a > 5)
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_conjunct_that_folds_to_null_makes_the_filter_false() {
        // `t.a * 1000 > 5 AND NULL = t.b` rejects every row: nothing else is evaluated.
        let null = crate::logical::expr::Expr::Literal(crate::logical::scalar::ScalarValue::null(
            &DataType::Int64,
        ));
        let predicate = (col("t.a") * lit(1000i64))
            .gt(lit(5i64))
            .and(null.eq(col("t.b")));
        let plan = LogicalPlan::filter(abs_scan("t"), predicate).unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Filter: false
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_filter_that_folds_to_false_stays() {
        let predicate = col("t.a").gt(lit(5i64)).and(lit(1i64).gt(lit(2i64)));
        let plan = LogicalPlan::filter(abs_scan("t"), predicate).unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Filter: false
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn expressions_over_columns_are_left_alone() {
        let predicate = (col("t.a") + col("t.b")).gt(col("t.a") * lit(2i64));
        let filtered = LogicalPlan::filter(abs_scan("t"), predicate).unwrap();
        let plan =
            LogicalPlan::project(filtered, vec![(col("t.a") + col("t.b")).alias("total")]).unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Projection: (t.a + t.b) AS total
              Filter: ((t.a + t.b) > (t.a * 2))
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn an_invalid_cast_is_left_for_execution_to_report() {
        let plan = LogicalPlan::project(
            abs_scan("t"),
            vec![lit("abc").cast(DataType::Int64).alias("n"), col("t.a")],
        )
        .unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Projection: CAST('abc' AS Int64) AS n, t.a
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_folded_projection_keeps_its_column_name() {
        let plan =
            LogicalPlan::project(abs_scan("t"), vec![lit(1i64) + lit(2i64), col("t.a")]).unwrap();
        let folded = fold_constants(plan).unwrap();
        assert_plan(
            &folded,
            "
            Projection: 3 AS (1 + 2), t.a
              TableScan: t columns=[a, b, s]
            ",
        );
        assert_eq!(folded.schema().field(0).name(), "(1 + 2)");
    }

    #[test]
    fn aggregate_arguments_and_scan_filters_are_folded() {
        let scan = with_scan_filters(abs_scan("t"), vec![col("t.b").gt(lit(2i64) + lit(2i64))]);
        let plan = LogicalPlan::aggregate(
            scan,
            vec![col("t.s")],
            vec![sum(col("t.a") * (lit(1i64) + lit(1i64)))],
        )
        .unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[sum((t.a * 2)) AS sum((t.a * (1 + 1)))]
              TableScan: t columns=[a, b, s] filters=[(t.b > 4)]
            ",
        );
    }

    #[test]
    fn sort_keys_are_folded() {
        let key = SortKey {
            expr: col("t.a") + lit(2i64) * lit(3i64),
            ascending: false,
            nulls_first: false,
        };
        let plan = LogicalPlan::sort(abs_scan("t"), vec![key]).unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Sort: (t.a + 6) DESC NULLS LAST
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn constants_in_a_join_condition_are_folded() {
        // `t LEFT JOIN u ON t.a = u.a AND u.b > t.b + (1 + 1)`: the SQL front end keeps the
        // two-sided conjunct as the join's residual filter.
        let plan = LogicalPlan::join(
            abs_scan("t"),
            abs_scan("u"),
            JoinType::Left,
            vec![(col("t.a"), col("u.a"))],
            Some(col("u.b").gt(col("t.b") + (lit(1i64) + lit(1i64)))),
        )
        .unwrap();
        assert_plan(
            &fold_constants(plan).unwrap(),
            "
            Join: Left on=[t.a = u.a] filter=(u.b > (t.b + 2))
              TableScan: t columns=[a, b, s]
              TableScan: u columns=[a, b, s]
            ",
        );
    }
}
