//! Top-k: `LIMIT n [OFFSET m]` directly above `ORDER BY` (possibly through a projection)
//! becomes a sort that keeps only `n + m` rows, which the physical planner runs as a
//! bounded-memory top-k with dynamic row-group pruning.

use crate::error::Result;
use crate::logical::plan::LogicalPlan;

pub(super) fn form_topk(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = plan.map_inputs(&mut form_topk)?;
    Ok(match plan {
        LogicalPlan::Limit {
            input,
            skip,
            fetch: Some(fetch),
        } => {
            let k = skip.saturating_add(fetch);
            let input = match *input {
                LogicalPlan::Sort {
                    input: sorted,
                    keys,
                    fetch: existing,
                } => LogicalPlan::Sort {
                    input: sorted,
                    keys,
                    fetch: Some(existing.map_or(k, |e| e.min(k))),
                },
                LogicalPlan::Projection {
                    input: inner,
                    exprs,
                    schema,
                } => match *inner {
                    LogicalPlan::Sort {
                        input: sorted,
                        keys,
                        fetch: existing,
                    } => LogicalPlan::Projection {
                        input: Box::new(LogicalPlan::Sort {
                            input: sorted,
                            keys,
                            fetch: Some(existing.map_or(k, |e| e.min(k))),
                        }),
                        exprs,
                        schema,
                    },
                    other => LogicalPlan::Projection {
                        input: Box::new(other),
                        exprs,
                        schema,
                    },
                },
                other => other,
            };
            LogicalPlan::Limit {
                input: Box::new(input),
                skip,
                fetch: Some(fetch),
            }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::form_topk;
    use crate::logical::expr_fn::{col, lit};
    use crate::logical::plan::{LogicalPlan, SortKey};
    use crate::optimizer::test_util::{abs_scan, assert_plan};

    fn by_a() -> Vec<SortKey> {
        vec![SortKey {
            expr: col("t.a"),
            ascending: true,
            nulls_first: false,
        }]
    }

    fn sorted() -> LogicalPlan {
        LogicalPlan::sort(abs_scan("t"), by_a()).unwrap()
    }

    #[test]
    fn limit_over_a_sort_keeps_skip_plus_fetch_rows_in_the_sort() {
        let plan = LogicalPlan::limit(sorted(), 2, Some(3));
        assert_plan(
            &form_topk(plan).unwrap(),
            "
            Limit: skip=2 fetch=3
              Sort: t.a ASC NULLS LAST fetch=5
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn top_k_is_formed_through_a_projection_between_limit_and_sort() {
        let projected = LogicalPlan::project(sorted(), vec![col("t.b")]).unwrap();
        let plan = LogicalPlan::limit(projected, 0, Some(10));
        assert_plan(
            &form_topk(plan).unwrap(),
            "
            Limit: skip=0 fetch=10
              Projection: t.b
                Sort: t.a ASC NULLS LAST fetch=10
                  TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_smaller_fetch_already_on_the_sort_is_kept() {
        let top_two = LogicalPlan::Sort {
            input: Box::new(abs_scan("t")),
            keys: by_a(),
            fetch: Some(2),
        };
        let plan = LogicalPlan::limit(top_two, 0, Some(10));
        assert_plan(
            &form_topk(plan).unwrap(),
            "
            Limit: skip=0 fetch=10
              Sort: t.a ASC NULLS LAST fetch=2
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_limit_without_a_sort_below_is_left_alone() {
        let plan = LogicalPlan::limit(abs_scan("t"), 0, Some(10));
        assert_plan(
            &form_topk(plan).unwrap(),
            "
            Limit: skip=0 fetch=10
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn an_offset_without_a_fetch_does_not_bound_the_sort() {
        let plan = LogicalPlan::limit(sorted(), 5, None);
        assert_plan(
            &form_topk(plan).unwrap(),
            "
            Limit: skip=5 fetch=all
              Sort: t.a ASC NULLS LAST
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_filter_between_limit_and_sort_prevents_top_k() {
        let filtered = LogicalPlan::filter(sorted(), col("t.b").gt(lit(15i64))).unwrap();
        let plan = LogicalPlan::limit(filtered, 0, Some(1));
        assert_plan(
            &form_topk(plan).unwrap(),
            "
            Limit: skip=0 fetch=1
              Filter: (t.b > 15)
                Sort: t.a ASC NULLS LAST
                  TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_sort_without_a_limit_is_left_alone() {
        assert_plan(
            &form_topk(sorted()).unwrap(),
            "
            Sort: t.a ASC NULLS LAST
              TableScan: t columns=[a, b, s]
            ",
        );
    }
}
