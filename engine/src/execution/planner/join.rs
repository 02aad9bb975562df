//! Planning a join: which input is built and which probed, the physical join type, a hash
//! join (equi-join keys) or a nested loop join (none), and the links a hash join makes to the
//! probe side's scan: a key-range dynamic filter, and key windows when the scan reads row
//! groups in ascending key ranges.

use std::sync::Arc;

use arrow::datatypes::DataType;

use super::trace::{trace_scan, Through};
use super::{coalesce, PhysicalPlanner};
use crate::error::Result;
use crate::eval::create_physical_expr;
use crate::logical::cardinality::{estimate_bytes, estimate_rows};
use crate::logical::expr::Expr;
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::physical::joins::{
    HashJoinExec, JoinSide, KeySetUse, NestedLoopJoinExec, PhysicalJoinType,
};
use crate::physical::scan::DynamicFilter;
use crate::physical::ExecutionPlan;

impl PhysicalPlanner {
    /// Plan a join: pick the build side, map the logical join type onto probe/build
    /// semantics, and register a key-range dynamic filter on the probe-side scan.
    pub(super) fn create_join(
        &mut self,
        left: &LogicalPlan,
        right: &LogicalPlan,
        join_type: JoinType,
        on: &[(Expr, Expr)],
        filter: Option<&Expr>,
        schema: &PlanSchema,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        use PhysicalJoinType as P;
        let flexible = matches!(
            join_type,
            JoinType::Inner
                | JoinType::Left
                | JoinType::Right
                | JoinType::Full
                | JoinType::Semi
                | JoinType::Anti
        );
        let left_rows = estimate_rows(left);
        let right_rows = estimate_rows(right);
        // Build on the side that takes less memory (ties keep the right side, which join
        // ordering made the smaller one). Without keys the nested loop join only preserves its
        // probe side, and compares row counts: its cost is a product of them.
        let mut build_left = flexible && estimate_bytes(left) < estimate_bytes(right);
        if on.is_empty() {
            build_left = matches!(join_type, JoinType::Right)
                || (join_type == JoinType::Inner && left_rows < right_rows);
        }
        let physical_type = match (join_type, build_left) {
            (JoinType::Inner, _) => P::Inner,
            (JoinType::Left, false) | (JoinType::Right, true) => P::ProbeOuter,
            (JoinType::Left, true) | (JoinType::Right, false) => P::BuildOuter,
            (JoinType::Full, _) => P::FullOuter,
            (JoinType::Semi, false) => P::ProbeSemi,
            (JoinType::Semi, true) => P::BuildSemi,
            (JoinType::Anti, false) => P::ProbeAnti,
            (JoinType::Anti, true) => P::BuildAnti,
            (JoinType::AntiNullAware, _) => P::ProbeAntiNullAware,
            (JoinType::Single, _) => P::ProbeSingle,
        };
        let (probe_plan, build_plan) = if build_left {
            (right, left)
        } else {
            (left, right)
        };
        let (probe_side_of_left, build_side_of_left) = if build_left {
            (JoinSide::Build, JoinSide::Probe)
        } else {
            (JoinSide::Probe, JoinSide::Build)
        };
        let mut output: Vec<(JoinSide, usize)> = (0..left.schema().len())
            .map(|i| (probe_side_of_left, i))
            .collect();
        if !join_type.left_only() {
            output.extend((0..right.schema().len()).map(|i| (build_side_of_left, i)));
        }
        let keys: Vec<(&Expr, &Expr)> = on
            .iter()
            .map(|(l, r)| if build_left { (r, l) } else { (l, r) })
            .collect();
        let probe_schema = probe_plan.schema();
        let build_schema = build_plan.schema();
        let pair_schema = probe_schema.join(build_schema);
        let physical_filter = filter
            .map(|f| create_physical_expr(f, &pair_schema))
            .transpose()?;
        let mut display = format!("{join_type}");
        if !on.is_empty() {
            let k: Vec<String> = on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
            display.push_str(&format!(" on [{}]", k.join(", ")));
        }
        if let Some(f) = filter {
            display.push_str(&format!(" filter {f}"));
        }
        if build_left {
            display.push_str(" (build: left)");
        }
        let output_schema = schema.to_arrow();
        if on.is_empty() {
            let build = coalesce(self.create(build_plan)?);
            let probe = self.create(probe_plan)?;
            return Ok(Arc::new(NestedLoopJoinExec::try_new(
                probe,
                build,
                physical_filter,
                physical_type,
                output,
                output_schema,
                display,
            )?));
        }
        // A key-range filter for the probe scan, when the join drops unmatched probe rows.
        // The first integer key pair whose probe side is a plain scan column.
        let mut dynamic_filter = None;
        let mut dynamic_key = 0;
        let mut key_set = KeySetUse::None;
        if physical_type.drops_unmatched_probe_rows() {
            for (i, (probe_key, build_key)) in keys.iter().enumerate() {
                let Expr::Column(c) = probe_key else { continue };
                if !integer_key_pair(probe_key, build_key, probe_schema, build_schema)? {
                    continue;
                }
                if let Some(traced) = trace_scan(probe_plan, c, Through::EveryRow) {
                    let filter = DynamicFilter::new(1);
                    self.pending_filters
                        .entry(traced.scan)
                        .or_default()
                        .push(Arc::clone(&filter));
                    dynamic_filter = Some((filter, traced.column));
                    dynamic_key = i;
                    key_set = if traced.through_aggregate {
                        KeySetUse::FilterRows
                    } else if self.options.indexes.is_some() {
                        // A secondary index of the probe column may then read only the rows
                        // of the build's keys.
                        KeySetUse::IndexOnly
                    } else {
                        KeySetUse::None
                    };
                    break;
                }
            }
        }
        // A single integer key read straight from the probe scan: if that scan's row groups
        // hold ascending ranges of it, a build side too big for the budget is split by key
        // windows instead of hash partitions, and no probe row is written out.
        let mut window_column = None;
        if let [(Expr::Column(c), build_key)] = keys.as_slice() {
            let eligible = integer_key_pair(keys[0].0, build_key, probe_schema, build_schema)?;
            if let Some(traced) = trace_scan(probe_plan, c, Through::Values).filter(|_| eligible) {
                self.segment_columns
                    .entry(traced.scan)
                    .or_default()
                    .push(traced.column.clone());
                window_column = Some(traced.column);
            }
        }
        let build = coalesce(self.create(build_plan)?);
        let probe = self.create(probe_plan)?;
        let probe_segments = probe
            .key_segments()
            .filter(|s| window_column.as_ref() == Some(&s.column));
        let physical_on = keys
            .iter()
            .map(|(p, b)| {
                Ok((
                    create_physical_expr(p, probe_schema)?,
                    create_physical_expr(b, build_schema)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(
            HashJoinExec::try_new(
                probe,
                build,
                physical_on,
                physical_filter,
                physical_type,
                output,
                output_schema,
                dynamic_filter,
                display,
            )?
            .with_dynamic_key(dynamic_key)
            .with_key_set_filter(key_set)
            .with_probe_segments(probe_segments),
        ))
    }
}

/// Whether a join key pair is integer-like (integers, dates) and of one type on both sides:
/// what a key-range filter on the probe scan and key windows need.
fn integer_key_pair(
    probe_key: &Expr,
    build_key: &Expr,
    probe_schema: &PlanSchema,
    build_schema: &PlanSchema,
) -> Result<bool> {
    let probe_type = probe_key.data_type(probe_schema)?;
    Ok((probe_type.is_integer() || probe_type == DataType::Date32)
        && build_key.data_type(build_schema)? == probe_type)
}
