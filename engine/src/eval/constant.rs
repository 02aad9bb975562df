//! Constant evaluation: sub-expressions without column references are computed once, at
//! planning time (`date '1998-12-01' - interval '90' day` becomes a date literal), and boolean
//! identities that hold under three-valued logic are simplified (`x AND TRUE` → `x`).
//!
//! The optimizer folds every expression of a plan with [`fold_expr`]; the SQL front end uses it
//! for values that must be constant (`LIMIT`, negative literals).

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::Schema;

use super::{create_physical_expr, ColumnarValue};
use crate::error::Result;
use crate::logical::expr::{BinaryOp, Expr};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;

fn is_bool(e: &Expr, value: bool) -> bool {
    matches!(e, Expr::Literal(v) if v.as_bool() == Some(value))
}

fn is_null(e: &Expr) -> bool {
    matches!(e, Expr::Literal(v) if v.is_null())
}

/// Fold the constant parts of one expression.
pub(crate) fn fold_expr(expr: Expr) -> Result<Expr> {
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
                // A comparison with NULL is NULL, whatever the other side holds.
                op if op.is_comparison() && (is_null(left) || is_null(right)) => {
                    return Ok(Expr::Literal(ScalarValue::null(
                        &arrow::datatypes::DataType::Boolean,
                    )))
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
