//! Following a column of a logical plan down to the scan that reads it.
//!
//! Several planning decisions link an operator to a scan below it: a top-k publishes a
//! dynamic filter to the scan of its first sort key and asks it to read row groups in that
//! key's order; an aggregate (or a hash join) asks the scan of a key column to claim whole row
//! groups; a join publishes its build side's key range to the probe side's scan. Each needs the
//! scan that produces a column, found by [`trace_scan`], and scans are told apart by the number
//! [`LogicalPlan::number_scans`] gave them.

use crate::logical::expr::{Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;

/// Which operators a column may be followed through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Through {
    /// Operators that pass the scan's values on unchanged (projections, filters, sorts,
    /// limits, aliases): for reading row groups in a key's order or claiming whole row groups.
    Values,
    /// Only operators that keep every scan row passing their own predicates (no limit, no
    /// top-k), and also grouping keys and the row-preserving side of inner and semi joins: a
    /// scan pruned by a join's key range then loses exactly the rows the join would drop.
    EveryRow,
}

/// The scan a column comes from.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TracedColumn {
    /// The scan's number in the plan.
    pub(super) scan: usize,
    /// The column's name in the scan.
    pub(super) column: String,
    /// Whether the way down passed a grouping key (only with [`Through::EveryRow`]).
    pub(super) through_aggregate: bool,
}

/// The scan that produces `column` of `plan`, followed through the operators `through` allows.
pub(super) fn trace_scan(
    plan: &LogicalPlan,
    column: &Column,
    through: Through,
) -> Option<TracedColumn> {
    let every_row = through == Through::EveryRow;
    match plan {
        LogicalPlan::TableScan(scan) => {
            if every_row && scan.fetch.is_some() {
                return None;
            }
            let index = position(scan.schema(), column)?;
            Some(TracedColumn {
                scan: scan.id(),
                column: scan.schema().field(index).name().to_string(),
                through_aggregate: false,
            })
        }
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } => match exprs[position(schema, column)?].clone().unalias() {
            Expr::Column(inner) => trace_scan(input, &inner, through),
            _ => None,
        },
        LogicalPlan::Filter { input, .. } => trace_scan(input, column, through),
        LogicalPlan::Sort { input, fetch, .. } if fetch.is_none() || !every_row => {
            trace_scan(input, column, through)
        }
        LogicalPlan::Limit { input, .. } if !every_row => trace_scan(input, column, through),
        LogicalPlan::SubqueryAlias { input, schema, .. } => {
            let field = input.schema().field(position(schema, column)?);
            let inner = Column::qualified(field.qualifier.clone(), field.name());
            trace_scan(input, &inner, through)
        }
        // A grouping key: dropping the input rows of a key drops exactly that key's group.
        LogicalPlan::Aggregate {
            input,
            group_by,
            schema,
            ..
        } if every_row => match group_by.get(position(schema, column)?)?.clone().unalias() {
            Expr::Column(inner) => trace_scan(input, &inner, through).map(|traced| TracedColumn {
                through_aggregate: true,
                ..traced
            }),
            _ => None,
        },
        // An input column of a window node: its values pass unchanged, and only whole
        // partitions may be dropped below one.
        LogicalPlan::Window { input, exprs, .. } => {
            let index = position(input.schema(), column)?;
            let field = input.schema().field(index);
            let inner = Column::qualified(field.qualifier.clone(), field.name());
            if every_row
                && !crate::logical::window::partition_columns(exprs)
                    .iter()
                    .any(|k| position(input.schema(), k) == Some(index))
            {
                return None;
            }
            trace_scan(input, &inner, through)
        }
        // Through the row-preserving side of an inner or semi join.
        LogicalPlan::Join {
            left,
            right,
            join_type,
            ..
        } if every_row => {
            let in_left = position(left.schema(), column).is_some();
            match join_type {
                JoinType::Inner | JoinType::Semi if in_left => trace_scan(left, column, through),
                JoinType::Inner if !in_left => trace_scan(right, column, through),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The index of `column` in `schema`, if it resolves there unambiguously.
fn position(schema: &PlanSchema, column: &Column) -> Option<usize> {
    schema
        .try_index_of(column.relation.as_deref(), &column.name)
        .ok()
        .flatten()
}
