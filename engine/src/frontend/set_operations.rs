//! Set operations, shared by SQL (`UNION`, `INTERSECT`, `EXCEPT`, each with or without
//! `ALL`) and the dataframe builder (`union`, `intersect`, `except`): columns match by
//! position, names come from the left input, and NULLs equal each other.
//!
//! `UNION ALL` chains flatten into one union node; `UNION` groups the union by every column.
//! `INTERSECT` and `EXCEPT` are a counted aggregation (see [`intersect_or_except`]), so they
//! run, and spill, as any group-by; with `ALL`, each side's duplicates are first numbered
//! 1, 2, ..., and the n-th copy of a row is kept when the other side has (INTERSECT) or lacks
//! (EXCEPT) an n-th copy, which gives min(m, n) or max(m - n, 0) copies.

use crate::error::{EngineError, Result};
use crate::logical::expr::{AggregateFunction, BinaryOp, Column, Expr};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::LogicalPlan;
use crate::logical::scalar::ScalarValue;
use crate::logical::window::{WindowExpr, WindowFrame, WindowFunction};

/// Run `operation` on inputs whose output names are made distinct, then give the result the
/// left input's names back (which may repeat: `SELECT 0, 0 UNION SELECT 1, 2`).
fn with_distinct_names(
    left: LogicalPlan,
    right: LogicalPlan,
    operation: impl FnOnce(LogicalPlan, LogicalPlan) -> Result<LogicalPlan>,
) -> Result<LogicalPlan> {
    let (Some(left_names), right_names) =
        (left.distinct_output_names(), right.distinct_output_names())
    else {
        return match right.distinct_output_names() {
            Some(names) => operation(left, right.rename_outputs(&names)?),
            None => operation(left, right),
        };
    };
    let original: Vec<String> = left
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let left = left.rename_outputs(&left_names)?;
    let right = match right_names {
        Some(names) => right.rename_outputs(&names)?,
        None => right,
    };
    operation(left, right)?.rename_outputs(&original)
}

/// `left UNION [ALL] right`.
pub(crate) fn union(left: LogicalPlan, right: LogicalPlan, all: bool) -> Result<LogicalPlan> {
    with_distinct_names(left, right, |l, r| union_of(l, r, all))
}

fn union_of(left: LogicalPlan, right: LogicalPlan, all: bool) -> Result<LogicalPlan> {
    // Flatten chains of UNION ALL into one node.
    let mut inputs = Vec::new();
    for p in [left, right] {
        match p {
            LogicalPlan::Union { inputs: inner, .. } => inputs.extend(inner),
            other => inputs.push(other),
        }
    }
    let union = LogicalPlan::union(inputs)?;
    if all {
        return Ok(union);
    }
    let columns = union.schema().column_exprs();
    // A DISTINCT result stops the flattening of a following UNION ALL.
    LogicalPlan::aggregate(union, columns, vec![])
        .map(|p| LogicalPlan::alias(p, hidden::name(Role::Union, 0)))
}

/// `left INTERSECT [ALL] right` (`intersect`) or `left EXCEPT [ALL] right`.
pub(crate) fn intersect_or_except(
    left: LogicalPlan,
    right: LogicalPlan,
    intersect: bool,
    all: bool,
) -> Result<LogicalPlan> {
    if left.schema().len() != right.schema().len() {
        return counted_set_operation(left, right, intersect);
    }
    with_distinct_names(left, right, |l, r| {
        intersect_or_except_of(l, r, intersect, all)
    })
}

fn intersect_or_except_of(
    left: LogicalPlan,
    right: LogicalPlan,
    intersect: bool,
    all: bool,
) -> Result<LogicalPlan> {
    if !all {
        return counted_set_operation(left, right, intersect);
    }
    let result = counted_set_operation(numbered_copies(left)?, numbered_copies(right)?, intersect)?;
    let width = result.schema().len() - 1;
    let columns = result.schema().column_exprs()[..width].to_vec();
    LogicalPlan::project(result, columns)
}

/// `plan` with one more column numbering the copies of each distinct row 1, 2, ... (a
/// `row_number()` window partitioned by every column).
fn numbered_copies(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut columns = plan.schema().column_exprs();
    let copy = hidden::name(Role::SetSide, 3);
    let number = Expr::Window(Box::new(WindowExpr {
        func: WindowFunction::RowNumber,
        args: vec![],
        partition_by: columns.clone(),
        order_by: vec![],
        frame: WindowFrame::default_for(false),
        ignore_nulls: false,
    }))
    .alias(copy.clone());
    let numbered = LogicalPlan::window(plan, vec![number])?;
    columns.push(Expr::Column(Column::new(copy)));
    LogicalPlan::project(numbered, columns)
}

/// `left INTERSECT right` (`intersect`) or `left EXCEPT right`, with SQL's set semantics
/// (distinct rows; NULLs equal each other), as a counted aggregation: the rows of both inputs,
/// each tagged with its side, grouped by all columns; a group is kept when both sides have it
/// (INTERSECT) or only the left one does (EXCEPT). It runs, and spills, as any group-by.
fn counted_set_operation(
    left: LogicalPlan,
    right: LogicalPlan,
    intersect: bool,
) -> Result<LogicalPlan> {
    let what = if intersect { "INTERSECT" } else { "EXCEPT" };
    if left.schema().len() != right.schema().len() {
        return Err(EngineError::Plan(format!(
            "{what} inputs have different numbers of columns: {} and {}",
            left.schema().len(),
            right.schema().len()
        )));
    }
    let tag = hidden::name(Role::SetSide, 0);
    let tagged = |plan: LogicalPlan, side: i32| -> Result<LogicalPlan> {
        let mut exprs = plan.schema().column_exprs();
        exprs.push(Expr::Literal(ScalarValue::int32(side)).alias(tag.clone()));
        LogicalPlan::project(plan, exprs)
    };
    let union = LogicalPlan::union(vec![tagged(left, 0)?, tagged(right, 1)?])?;
    let width = union.schema().len() - 1;
    let mut keys = union.schema().column_exprs();
    keys.truncate(width);
    let (lowest, highest) = (
        hidden::name(Role::SetSide, 1),
        hidden::name(Role::SetSide, 2),
    );
    let side = || Expr::Column(Column::new(tag.clone()));
    let aggregates = vec![
        Expr::Aggregate {
            func: AggregateFunction::Min,
            args: vec![side()],
            distinct: false,
        }
        .alias(lowest.clone()),
        Expr::Aggregate {
            func: AggregateFunction::Max,
            args: vec![side()],
            distinct: false,
        }
        .alias(highest.clone()),
    ];
    let grouped = LogicalPlan::aggregate(union, keys, aggregates)?;
    let is = |name: &str, value: i32| {
        Expr::Column(Column::new(name))
            .binary(BinaryOp::Eq, Expr::Literal(ScalarValue::int32(value)))
    };
    let keep = if intersect {
        // Both sides: the smallest tag is the left's, the largest the right's.
        is(&lowest, 0).binary(BinaryOp::And, is(&highest, 1))
    } else {
        is(&highest, 0)
    };
    let kept = LogicalPlan::filter(grouped, keep)?;
    let mut columns = kept.schema().column_exprs();
    columns.truncate(width);
    // Aliased like a distinct UNION, so that a following UNION ALL does not flatten into it.
    Ok(LogicalPlan::alias(
        LogicalPlan::project(kept, columns)?,
        hidden::name(Role::Union, 0),
    ))
}
