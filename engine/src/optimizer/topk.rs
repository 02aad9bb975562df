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
