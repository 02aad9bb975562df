//! Constant folding: evaluates sub-expressions without column references once at planning
//! time (`date '1998-12-01' - interval '90' day` becomes a date literal) and simplifies boolean
//! identities (`x AND TRUE` → `x`). Filters that fold to TRUE disappear.

use crate::error::Result;
use crate::eval::constant::fold_expr;
use crate::logical::expr::Expr;
use crate::logical::plan::{LogicalPlan, SortKey};

pub(super) fn fold_constants(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = plan.map_inputs(&mut fold_constants)?;
    Ok(match plan {
        LogicalPlan::Filter { input, predicate } => {
            let predicate = fold_expr(predicate)?;
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
        other => other,
    })
}
