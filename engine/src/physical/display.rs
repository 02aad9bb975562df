//! EXPLAIN text: a physical plan as an indented tree, with each operator's metrics when the
//! query has run.

use std::collections::HashMap;
use std::sync::Arc;

use super::ExecutionPlan;
use crate::metrics::{format_bytes, format_duration, OperatorMetrics};

/// Bytes each operator held at the query's peak, by the address of its metrics.
pub(crate) type AtPeakByOperator = HashMap<*const OperatorMetrics, u64>;

/// Render a physical plan as an indented tree.
pub(crate) fn display_plan(plan: &Arc<dyn ExecutionPlan>) -> String {
    let mut out = String::new();
    display_node(plan, None, 0, &mut out);
    out
}

/// Render a physical plan that has run, with metrics and each operator's bytes at the peak.
pub(crate) fn display_analyzed(
    plan: &Arc<dyn ExecutionPlan>,
    at_peak: &AtPeakByOperator,
) -> String {
    let mut out = String::new();
    display_node(plan, Some(at_peak), 0, &mut out);
    out
}

fn display_node(
    plan: &Arc<dyn ExecutionPlan>,
    analyze: Option<&AtPeakByOperator>,
    depth: usize,
    out: &mut String,
) {
    let indent = "  ".repeat(depth);
    let details = plan.details();
    out.push_str(&format!("{indent}{}", plan.name()));
    if !details.is_empty() {
        out.push_str(&format!(": {details}"));
    }
    if plan.grows_with_input() {
        out.push_str(if plan.can_spill() {
            " [may spill]"
        } else {
            " [memory grows with input, cannot spill]"
        });
    }
    out.push('\n');
    if let Some(at_peak) = analyze {
        let m = plan.metrics();
        let children_time: std::time::Duration =
            plan.children().iter().map(|c| c.metrics().elapsed()).sum();
        let own = m.elapsed().saturating_sub(children_time);
        let mut line = format!(
            "{indent}  ↳ rows_out={} batches={} time={} (incl. inputs {}) peak_mem={}",
            m.rows_out(),
            m.batches_out(),
            format_duration(own),
            format_duration(m.elapsed()),
            format_bytes(m.memory_peak())
        );
        if let Some(&held) = at_peak.get(&Arc::as_ptr(m)) {
            line.push_str(&format!(" at_peak={}", format_bytes(held)));
        }
        if m.rows_in() > 0 {
            line.push_str(&format!(" rows_in={}", m.rows_in()));
        }
        if m.spill_count() > 0 {
            line.push_str(&format!(
                " spills={} spilled_rows={} spilled={} (raw {}) spill_time={}",
                m.spill_count(),
                m.spilled_rows(),
                format_bytes(m.spilled_bytes()),
                format_bytes(m.spilled_raw_bytes()),
                format_duration(m.spill_time())
            ));
        }
        for (name, value) in m.extra() {
            line.push_str(&format!(" {name}={value}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    for child in plan.children() {
        display_node(&child, analyze, depth + 1, out);
    }
}
