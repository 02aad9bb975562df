//! Cardinality estimates: how many rows a plan is expected to produce.
//!
//! Join ordering and the choice of a hash join's build side only need estimates that rank
//! plans correctly, so the model is deliberately simple:
//!
//! - a scan produces the row count from the Parquet footers;
//! - each predicate keeps a fixed fraction of rows by its shape (equality with a constant keeps
//!   5%, a range a third, `LIKE` 10%, ...); conjunctions multiply, disjunctions add;
//! - an equi-join produces `|L| × |R| / d`, where `d` is the smaller number of distinct key
//!   values of the two sides. The number of distinct values of an integer key is bounded by
//!   the width of its min/max range from the footer statistics and by its table's row count,
//!   which recognizes both key/foreign-key joins (`l_orderkey = o_orderkey`: each lineitem
//!   finds one order) and many-to-many joins on small domains (`c_nationkey = s_nationkey`).

use arrow::datatypes::DataType;

use crate::logical::expr::{BinaryOp, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan, TableScan};

/// Fraction of rows a predicate keeps.
pub(crate) fn selectivity(expr: &Expr) -> f64 {
    match expr {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => selectivity(left) * selectivity(right),
        Expr::Binary {
            left,
            op: BinaryOp::Or,
            right,
        } => (selectivity(left) + selectivity(right)).min(1.0),
        Expr::Binary { left, op, right } if op.is_comparison() => {
            let column_vs_column = !left.columns().is_empty() && !right.columns().is_empty();
            match op {
                BinaryOp::Eq if column_vs_column => 0.1,
                BinaryOp::Eq => 0.05,
                BinaryOp::NotEq => 0.9,
                _ => 0.33,
            }
        }
        Expr::Between { negated, .. } => {
            if *negated {
                0.75
            } else {
                0.25
            }
        }
        Expr::InList { list, negated, .. } => {
            let s = (0.05 * list.len() as f64).min(0.5);
            if *negated {
                1.0 - s
            } else {
                s
            }
        }
        Expr::Like { negated, .. } => {
            if *negated {
                0.9
            } else {
                0.1
            }
        }
        Expr::IsNull { negated, .. } => {
            if *negated {
                0.95
            } else {
                0.05
            }
        }
        Expr::Not(inner) => 1.0 - selectivity(inner),
        Expr::Alias { expr, .. } => selectivity(expr),
        Expr::Literal(v) => match v.as_bool() {
            Some(true) => 1.0,
            _ => 0.0,
        },
        _ => 0.5,
    }
}

/// Estimated output rows of `plan`.
pub(crate) fn estimate_rows(plan: &LogicalPlan) -> f64 {
    let rows = match plan {
        LogicalPlan::TableScan(scan) => {
            let base = scan.source.num_rows() as f64;
            let mut rows = scan.filters.iter().map(selectivity).product::<f64>() * base;
            if let Some(fetch) = scan.fetch {
                rows = rows.min(fetch as f64);
            }
            rows
        }
        LogicalPlan::Filter { input, predicate } => estimate_rows(input) * selectivity(predicate),
        LogicalPlan::Projection { input, .. }
        | LogicalPlan::Window { input, .. }
        | LogicalPlan::SubqueryAlias { input, .. }
        | LogicalPlan::SharedCte { input, .. } => estimate_rows(input),
        LogicalPlan::Sort { input, fetch, .. } => {
            let rows = estimate_rows(input);
            fetch.map_or(rows, |f| rows.min(f as f64))
        }
        LogicalPlan::Limit { input, fetch, .. } => {
            let rows = estimate_rows(input);
            fetch.map_or(rows, |f| rows.min(f as f64))
        }
        LogicalPlan::Aggregate {
            input, group_by, ..
        } => {
            if group_by.is_empty() {
                1.0
            } else {
                let input_rows = estimate_rows(input);
                let mut groups = 1.0f64;
                for g in group_by {
                    let ndv = match g.clone().unalias() {
                        Expr::Column(c) => column_ndv(input, &c),
                        _ => None,
                    };
                    groups *= ndv.unwrap_or(input_rows / 10.0);
                }
                groups.min(input_rows)
            }
        }
        // Planned after estimates are used (distributed stages).
        LogicalPlan::PhasedAggregate { input, .. } => estimate_rows(input),
        LogicalPlan::EmptyRow { .. } => 1.0,
        LogicalPlan::Memory(table) => table.num_rows() as f64,
        LogicalPlan::Union { inputs, .. } => inputs.iter().map(estimate_rows).sum(),
        LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            ..
        } => {
            let l = estimate_rows(left);
            let r = estimate_rows(right);
            let residual = filter.as_ref().map_or(1.0, selectivity);
            match join_type {
                JoinType::Inner | JoinType::Full | JoinType::Left | JoinType::Right => {
                    let d = join_divisor(left, right, on);
                    let inner = l * r / d * residual;
                    match join_type {
                        JoinType::Left => inner.max(l),
                        JoinType::Right => inner.max(r),
                        JoinType::Full => inner.max(l).max(r),
                        _ => inner,
                    }
                }
                JoinType::Semi => l * 0.5,
                JoinType::Anti | JoinType::AntiNullAware => l * 0.5,
                JoinType::Single => l,
            }
        }
    };
    rows.max(1.0)
}

/// Estimated bytes a plan's output takes in memory: its rows times an estimated row width.
/// A hash join holds its build side, so the side with fewer *bytes* is the cheaper one to
/// build: a 15M-row table of four columns costs more than 20M rows of one key column.
pub(crate) fn estimate_bytes(plan: &LogicalPlan) -> f64 {
    estimate_rows(plan) * row_width(plan)
}

/// Estimated in-memory bytes of one row of a plan's output (at least 1).
pub(crate) fn row_width(plan: &LogicalPlan) -> f64 {
    let width: f64 = plan
        .schema()
        .fields()
        .iter()
        .map(|f| value_width(f.field.data_type()))
        .sum();
    width.max(1.0)
}

/// Estimated in-memory bytes of one value of type `t` (strings: a view plus a short payload).
fn value_width(t: &DataType) -> f64 {
    match t {
        DataType::Boolean => 0.125,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => 28.0,
        DataType::Utf8View | DataType::BinaryView => 32.0,
        DataType::Dictionary(key, _) => value_width(key),
        other => other.primitive_width().map_or(16.0, |w| w as f64),
    }
}

/// The divisor of `|L| × |R|` for an equi-join on `on`: the product of each key pair's
/// smaller distinct count, capped by the larger side's row count before filters (a join can
/// produce no fewer rows than "each row of the bigger table matches at most once" implies).
pub(crate) fn join_divisor(left: &LogicalPlan, right: &LogicalPlan, on: &[(Expr, Expr)]) -> f64 {
    if on.is_empty() {
        return 1.0;
    }
    let mut divisor = 1.0f64;
    for (l, r) in on {
        let dl = key_ndv(left, l);
        let dr = key_ndv(right, r);
        divisor *= dl.min(dr).max(1.0);
    }
    let cap = base_rows(left).min(base_rows(right)).max(1.0);
    divisor.min(cap)
}

fn key_ndv(plan: &LogicalPlan, key: &Expr) -> f64 {
    let mut e = key;
    while let Expr::Cast { expr, .. } | Expr::Alias { expr, .. } = e {
        e = expr;
    }
    let ndv = match e {
        Expr::Column(c) => column_ndv(plan, c),
        _ => None,
    };
    ndv.unwrap_or_else(|| base_rows(plan))
}

/// Rows of `plan` ignoring filters (the size of the tables it reads).
pub(crate) fn base_rows(plan: &LogicalPlan) -> f64 {
    match plan {
        LogicalPlan::TableScan(scan) => (scan.source.num_rows() as f64).max(1.0),
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Projection { input, .. }
        | LogicalPlan::SubqueryAlias { input, .. }
        | LogicalPlan::SharedCte { input, .. }
        | LogicalPlan::Sort { input, .. } => base_rows(input),
        LogicalPlan::Join {
            left,
            right,
            join_type,
            ..
        } if !join_type.left_only() => base_rows(left).max(base_rows(right)),
        LogicalPlan::Join { left, .. } => base_rows(left),
        other => estimate_rows(other),
    }
}

/// Upper bound of the distinct values of `column` in `plan`'s output, from the scan it comes
/// from: the table's row count, and the width of the value range for integer columns.
pub(crate) fn column_ndv(plan: &LogicalPlan, column: &Column) -> Option<f64> {
    let (scan, name) = trace_to_scan(plan, column)?;
    let rows = (scan.source.num_rows() as f64).max(1.0);
    Some(match scan.source.integer_range(&name) {
        Some((lo, hi)) => rows.min((hi as f64 - lo as f64) + 1.0),
        None => rows,
    })
}

/// Follow a column through projections, filters, aliases and joins to its scan.
pub(crate) fn trace_to_scan<'a>(
    plan: &'a LogicalPlan,
    column: &Column,
) -> Option<(&'a TableScan, String)> {
    let index = plan
        .schema()
        .try_index_of(column.relation.as_deref(), &column.name)
        .ok()??;
    match plan {
        LogicalPlan::TableScan(scan) => Some((scan, scan.schema().field(index).name().to_string())),
        LogicalPlan::Projection { input, exprs, .. } => match exprs[index].clone().unalias() {
            Expr::Column(inner) => trace_to_scan(input, &inner),
            _ => None,
        },
        LogicalPlan::Filter { input, .. } | LogicalPlan::Sort { input, .. } => {
            trace_to_scan(input, column)
        }
        LogicalPlan::SubqueryAlias { input, .. } => {
            let f = input.schema().field(index);
            trace_to_scan(input, &Column::qualified(f.qualifier.clone(), f.name()))
        }
        LogicalPlan::Join { left, right, .. } => {
            let left_len = left.schema().len();
            let (side, i) = if index < left_len {
                (left.as_ref(), index)
            } else {
                (right.as_ref(), index - left_len)
            };
            let f = side.schema().field(i);
            trace_to_scan(side, &Column::qualified(f.qualifier.clone(), f.name()))
        }
        _ => None,
    }
}
