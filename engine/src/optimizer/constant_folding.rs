//! Constant folding: evaluates sub-expressions without column references once at planning
//! time (`date '1998-12-01' - interval '90' day` becomes a date literal) and simplifies boolean
//! identities (`x AND TRUE` → `x`). Filters that fold to TRUE disappear.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::Schema;

use crate::error::Result;
use crate::logical::expr::{BinaryOp, Expr};
use crate::logical::plan::{LogicalPlan, SortKey};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
use crate::optimizer::map_inputs;
use crate::physical::expr::{create_physical_expr, ColumnarValue};

pub(super) fn fold_constants(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = map_inputs(plan, &mut fold_constants)?;
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

fn is_bool(e: &Expr, value: bool) -> bool {
    matches!(e, Expr::Literal(v) if v.as_bool() == Some(value))
}

/// Fold the constant parts of one expression.
pub fn fold_expr(expr: Expr) -> Result<Expr> {
    expr.transform_up(&mut |e| {
        // Boolean identities that hold under three-valued logic.
        if let Expr::Binary { left, op, right } = &e {
            match op {
                BinaryOp::And if is_bool(left, true) => return Ok(*right.clone()),
                BinaryOp::And if is_bool(right, true) => return Ok(*left.clone()),
                BinaryOp::And if is_bool(left, false) || is_bool(right, false) => {
                    return Ok(Expr::Literal(ScalarValue::boolean(false)))
                }
                BinaryOp::Or if is_bool(left, false) => return Ok(*right.clone()),
                BinaryOp::Or if is_bool(right, false) => return Ok(*left.clone()),
                BinaryOp::Or if is_bool(left, true) || is_bool(right, true) => {
                    return Ok(Expr::Literal(ScalarValue::boolean(true)))
                }
                _ => {}
            }
        }
        let foldable = !matches!(e, Expr::Literal(_) | Expr::Alias { .. }) && e.is_constant();
        if !foldable {
            return Ok(e);
        }
        match evaluate_constant(&e) {
            Ok(value) => Ok(Expr::Literal(value)),
            // Leave errors (e.g. an invalid cast) to execution, where they are reported with
            // their context, unless the expression can never succeed.
            Err(_) => Ok(e),
        }
    })
}

fn evaluate_constant(expr: &Expr) -> Result<ScalarValue> {
    let schema = PlanSchema::default();
    let physical = create_physical_expr(expr, &schema)?;
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)?;
    Ok(match physical.evaluate(&batch)? {
        ColumnarValue::Scalar(s) => s,
        ColumnarValue::Array(a) => ScalarValue::from_array_index(a.as_ref(), 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logical::expr_fn::{col, lit};

    #[test]
    fn folds_arithmetic_and_booleans() {
        let e = (lit(1i64) + lit(2i64)).lt(col("x"));
        let folded = fold_expr(e).unwrap();
        assert_eq!(folded.to_string(), "(3 < x)");
        let e = col("x").gt(lit(1i64)).and(lit(true));
        assert_eq!(fold_expr(e).unwrap().to_string(), "(x > 1)");
    }
}
