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
