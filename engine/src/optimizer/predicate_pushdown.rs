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
use crate::logical::window;

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
                // Without GROUP BY the aggregate returns one row even for no input: a
                // predicate (necessarily without columns) must stay above it.
                if groups == 0 {
                    kept.push(c);
                    continue;
                }
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
        LogicalPlan::Window { input, exprs, .. } => {
            // A conjunct over partition keys only removes whole partitions, which leaves the
            // others' results alone: it can filter the window's input.
            let keys = window::partition_columns(&exprs);
            let (pushed, kept): (Vec<Expr>, Vec<Expr>) = conjuncts.into_iter().partition(|c| {
                let columns = c.columns();
                !columns.is_empty() && columns.iter().all(|col| keys.contains(col))
            });
            let new_input = push_into(*input, pushed)?;
            filter_above(LogicalPlan::window(new_input, exprs)?, kept)
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

#[cfg(test)]
mod tests {
    use super::push_down_predicates;
    use crate::logical::expr_fn::{col, count_star, lit, sum};
    use crate::logical::plan::{JoinType, LogicalPlan, SortKey};
    use crate::optimizer::test_util::{abs_scan, assert_plan, sales, stores};

    fn by_a() -> Vec<SortKey> {
        vec![SortKey {
            expr: col("t.a"),
            ascending: true,
            nulls_first: false,
        }]
    }

    fn sales_join_stores(join_type: JoinType) -> LogicalPlan {
        LogicalPlan::join(
            sales(),
            stores(),
            join_type,
            vec![(col("sales.store"), col("stores.id"))],
            None,
        )
        .unwrap()
    }

    #[test]
    fn conjuncts_over_a_scan_become_its_filters() {
        let predicate = col("t.a").gt(lit(1i64)).and(col("t.b").eq(lit(20i64)));
        let plan = LogicalPlan::filter(abs_scan("t"), predicate).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            TableScan: t columns=[a, b, s] filters=[(t.a > 1), (t.b = 20)]
            ",
        );
    }

    #[test]
    fn a_filter_moves_through_a_projection_onto_the_projected_expressions() {
        let projected = LogicalPlan::project(
            abs_scan("t"),
            vec![(col("t.a") + col("t.b")).alias("total"), col("t.s")],
        )
        .unwrap();
        let predicate = col("total").gt(lit(10i64)).and(col("s").eq(lit("x")));
        let plan = LogicalPlan::filter(projected, predicate).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Projection: (t.a + t.b) AS total, t.s
              TableScan: t columns=[a, b, s] filters=[((t.a + t.b) > 10), (t.s = 'x')]
            ",
        );
    }

    #[test]
    fn a_filter_on_a_grouping_key_moves_below_the_aggregate_and_one_on_an_aggregate_stays() {
        let aggregated = LogicalPlan::aggregate(
            abs_scan("t"),
            vec![col("t.s")],
            vec![sum(col("t.a")).alias("total")],
        )
        .unwrap();
        let predicate = col("total").gt(lit(5i64)).and(col("t.s").eq(lit("x")));
        let plan = LogicalPlan::filter(aggregated, predicate).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Filter: (total > 5)
              Aggregate: group_by=[t.s] aggregates=[sum(t.a) AS total]
                TableScan: t columns=[a, b, s] filters=[(t.s = 'x')]
            ",
        );
    }

    #[test]
    fn a_filter_moves_through_an_alias_with_its_columns_requalified() {
        let aliased = LogicalPlan::alias(abs_scan("t"), "x");
        let plan = LogicalPlan::filter(aliased, col("x.a").gt(lit(1i64))).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            SubqueryAlias: x
              TableScan: t columns=[a, b, s] filters=[(t.a > 1)]
            ",
        );
    }

    #[test]
    fn a_filter_moves_below_a_sort() {
        let sorted = LogicalPlan::sort(abs_scan("t"), by_a()).unwrap();
        let plan = LogicalPlan::filter(sorted, col("t.b").lt(lit(30i64))).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Sort: t.a ASC NULLS LAST
              TableScan: t columns=[a, b, s] filters=[(t.b < 30)]
            ",
        );
    }

    #[test]
    fn a_filter_stays_above_a_sort_that_keeps_only_its_first_rows() {
        let top_two = LogicalPlan::Sort {
            input: Box::new(abs_scan("t")),
            keys: by_a(),
            fetch: Some(2),
        };
        let plan = LogicalPlan::filter(top_two, col("t.b").lt(lit(30i64))).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Filter: (t.b < 30)
              Sort: t.a ASC NULLS LAST fetch=2
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_filter_stays_above_a_limit() {
        let limited = LogicalPlan::limit(abs_scan("t"), 0, Some(2));
        let plan = LogicalPlan::filter(limited, col("t.a").gt(lit(1i64))).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Filter: (t.a > 1)
              Limit: skip=0 fetch=2
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn conjuncts_go_to_the_inner_join_side_they_reference_and_mixed_ones_stay_above() {
        let predicate = col("sales.amount")
            .gt(lit(5i64))
            .and(col("stores.region").eq(lit("north")))
            .and(col("sales.amount").gt(col("stores.id")));
        let plan = LogicalPlan::filter(sales_join_stores(JoinType::Inner), predicate).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Filter: (sales.amount > stores.id)
              Join: Inner on=[sales.store = stores.id]
                TableScan: sales columns=[store, item, amount] filters=[(sales.amount > 5)]
                TableScan: stores columns=[id, region] filters=[(stores.region = 'north')]
            ",
        );
    }

    #[test]
    fn filter_does_not_move_below_the_null_supplying_side_of_a_left_join() {
        let predicate = col("sales.amount")
            .gt(lit(5i64))
            .and(col("stores.region").is_null());
        let plan = LogicalPlan::filter(sales_join_stores(JoinType::Left), predicate).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Filter: stores.region IS NULL
              Join: Left on=[sales.store = stores.id]
                TableScan: sales columns=[store, item, amount] filters=[(sales.amount > 5)]
                TableScan: stores columns=[id, region]
            ",
        );
    }

    #[test]
    fn filter_does_not_move_below_either_side_of_a_full_join() {
        let predicate = col("sales.amount")
            .gt(lit(5i64))
            .and(col("stores.region").eq(lit("north")));
        let plan = LogicalPlan::filter(sales_join_stores(JoinType::Full), predicate).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Filter: ((sales.amount > 5) AND (stores.region = 'north'))
              Join: Full on=[sales.store = stores.id]
                TableScan: sales columns=[store, item, amount]
                TableScan: stores columns=[id, region]
            ",
        );
    }

    #[test]
    fn a_predicate_without_columns_stays_above_an_aggregate_without_group_by() {
        // `SELECT count(*) FROM t HAVING 1 = 0` after constant folding.
        let aggregated = LogicalPlan::aggregate(abs_scan("t"), vec![], vec![count_star()]).unwrap();
        let plan = LogicalPlan::filter(aggregated, lit(false)).unwrap();
        assert_plan(
            &push_down_predicates(plan).unwrap(),
            "
            Filter: false
              Aggregate: group_by=[] aggregates=[count(*) AS count(*)]
                TableScan: t columns=[a, b, s]
            ",
        );
    }
}
