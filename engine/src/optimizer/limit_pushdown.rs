//! Limit pushdown: a `LIMIT` whose input is a scan (through projections and aliases only, with
//! no filter in between) tells the scan to stop after `skip + fetch` rows.

use crate::error::Result;
use crate::logical::plan::LogicalPlan;

pub(super) fn push_down_limits(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = plan.map_inputs(&mut push_down_limits)?;
    Ok(match plan {
        LogicalPlan::Limit {
            input,
            skip,
            fetch: Some(fetch),
        } => {
            let input = with_scan_fetch(*input, skip.saturating_add(fetch));
            LogicalPlan::Limit {
                input: Box::new(input),
                skip,
                fetch: Some(fetch),
            }
        }
        other => other,
    })
}

fn with_scan_fetch(plan: LogicalPlan, rows: usize) -> LogicalPlan {
    match plan {
        LogicalPlan::TableScan(mut scan) if scan.filters.is_empty() => {
            scan.fetch = Some(scan.fetch.map_or(rows, |f| f.min(rows)));
            LogicalPlan::TableScan(scan)
        }
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } => LogicalPlan::Projection {
            input: Box::new(with_scan_fetch(*input, rows)),
            exprs,
            schema,
        },
        LogicalPlan::SubqueryAlias {
            input,
            alias,
            schema,
        } => LogicalPlan::SubqueryAlias {
            input: Box::new(with_scan_fetch(*input, rows)),
            alias,
            schema,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::push_down_limits;
    use crate::logical::expr_fn::{col, lit};
    use crate::logical::plan::{LogicalPlan, SortKey};
    use crate::optimizer::test_util::{abs_scan, assert_plan, with_scan_fetch, with_scan_filters};

    #[test]
    fn limit_over_a_scan_stops_the_scan_after_skip_plus_fetch_rows() {
        let plan = LogicalPlan::limit(abs_scan("t"), 2, Some(3));
        assert_plan(
            &push_down_limits(plan).unwrap(),
            "
            Limit: skip=2 fetch=3
              TableScan: t columns=[a, b, s] fetch=5
            ",
        );
    }

    #[test]
    fn limit_reaches_the_scan_through_projections_and_aliases() {
        let projected = LogicalPlan::project(abs_scan("t"), vec![col("t.a")]).unwrap();
        let aliased = LogicalPlan::alias(projected, "x");
        let plan = LogicalPlan::limit(aliased, 0, Some(2));
        assert_plan(
            &push_down_limits(plan).unwrap(),
            "
            Limit: skip=0 fetch=2
              SubqueryAlias: x
                Projection: t.a
                  TableScan: t columns=[a, b, s] fetch=2
            ",
        );
    }

    #[test]
    fn a_smaller_fetch_already_on_the_scan_is_kept() {
        let plan = LogicalPlan::limit(with_scan_fetch(abs_scan("t"), 1), 0, Some(10));
        assert_plan(
            &push_down_limits(plan).unwrap(),
            "
            Limit: skip=0 fetch=10
              TableScan: t columns=[a, b, s] fetch=1
            ",
        );
    }

    #[test]
    fn limit_does_not_reach_a_scan_under_a_filter() {
        let filtered = LogicalPlan::filter(abs_scan("t"), col("t.a").gt(lit(1i64))).unwrap();
        let plan = LogicalPlan::limit(filtered, 0, Some(2));
        assert_plan(
            &push_down_limits(plan).unwrap(),
            "
            Limit: skip=0 fetch=2
              Filter: (t.a > 1)
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn limit_does_not_reach_a_scan_with_filters_of_its_own() {
        let scan = with_scan_filters(abs_scan("t"), vec![col("t.a").gt(lit(1i64))]);
        let plan = LogicalPlan::limit(scan, 0, Some(2));
        assert_plan(
            &push_down_limits(plan).unwrap(),
            "
            Limit: skip=0 fetch=2
              TableScan: t columns=[a, b, s] filters=[(t.a > 1)]
            ",
        );
    }

    #[test]
    fn limit_does_not_pass_a_sort() {
        let key = SortKey {
            expr: col("t.b"),
            ascending: false,
            nulls_first: true,
        };
        let sorted = LogicalPlan::sort(abs_scan("t"), vec![key]).unwrap();
        let plan = LogicalPlan::limit(sorted, 0, Some(2));
        assert_plan(
            &push_down_limits(plan).unwrap(),
            "
            Limit: skip=0 fetch=2
              Sort: t.b DESC NULLS FIRST
                TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn an_offset_without_a_fetch_leaves_the_scan_unbounded() {
        let plan = LogicalPlan::limit(abs_scan("t"), 3, None);
        assert_plan(
            &push_down_limits(plan).unwrap(),
            "
            Limit: skip=3 fetch=all
              TableScan: t columns=[a, b, s]
            ",
        );
    }
}
