//! The memory profile of a query: who held the pool's bytes at the query's peak (each
//! operator and the part of its state), the process's resident memory then and at the start,
//! and the timeline of reserved bytes against resident memory. Rendered as the summary
//! EXPLAIN ANALYZE prints, as JSON for tools, and as a self-contained SVG (module
//! [`svg`](super::memory_svg)).
//!
//! The copy at the peak comes from the pool's ledger (`crate::memory`), which changes a
//! holder's bytes and the total together: the holders listed here sum exactly to
//! `peak_reserved`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::memory::process::ResidentMemory;
use crate::memory::{LedgerReport, TimelinePoint};
use crate::metrics::{format_bytes, format_duration, OperatorMetrics};
use crate::physical::{AtPeakByOperator, ExecutionPlan};

/// Bytes one holder had at the query's peak.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldMemory {
    /// The operator: its name and its position in the plan (`HashJoin #4`, numbered as
    /// [`QueryStream::operator_stats`](super::QueryStream::operator_stats) lists them), or
    /// the consumer's name when it reports to no operator.
    pub operator: String,
    /// The operator's index in `operator_stats`, if it is one.
    pub operator_index: Option<usize>,
    /// What the bytes are: `groups`, `build side`, `sort buffer`, `spill buffers`, ...
    pub part: String,
    /// Bytes held at the peak.
    pub bytes: u64,
}

/// Who held the memory at the query's peak, and the timeline (see the module docs).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct MemoryProfile {
    /// The query's budget in bytes (`None`: no limit).
    pub limit: Option<u64>,
    /// The most bytes reserved from the pool at once.
    pub peak_reserved: u64,
    /// When the peak was reached, since the query started.
    pub peak_at: Duration,
    /// Every holder's bytes at the peak, largest first; sums to `peak_reserved`.
    pub at_peak: Vec<HeldMemory>,
    /// The process's resident memory at the peak (read when the pool reached a new high
    /// within 2% and 1 MiB of it).
    pub rss_at_peak: Option<ResidentMemory>,
    /// The process's resident memory when the query started.
    pub rss_at_start: Option<ResidentMemory>,
    /// The highest resident memory seen while the query ran (timeline and peak reads).
    pub highest_rss: Option<ResidentMemory>,
    /// Reserved bytes and resident memory over time (a few hundred points at most).
    pub timeline: Vec<TimelinePoint>,
}

impl MemoryProfile {
    /// Build the profile of `plan` from its pool's ledger report.
    pub(crate) fn new(plan: &Arc<dyn ExecutionPlan>, report: LedgerReport, limit: usize) -> Self {
        let mut operators = HashMap::new();
        number_operators(plan, &mut 0, &mut operators);
        let mut at_peak: Vec<HeldMemory> = report
            .at_peak
            .iter()
            .map(|held| {
                let operator = held
                    .operator
                    .as_ref()
                    .and_then(|m| operators.get(&Arc::as_ptr(m)));
                HeldMemory {
                    operator: match operator {
                        Some((index, name)) => format!("{name} #{index}"),
                        None => held.consumer.clone(),
                    },
                    operator_index: operator.map(|(index, _)| *index),
                    part: held.part.name().to_string(),
                    bytes: held.bytes as u64,
                }
            })
            .collect();
        // Holders of the same operator and part (reservations named differently) add up.
        at_peak.sort_by(|a, b| (&a.operator, &a.part).cmp(&(&b.operator, &b.part)));
        at_peak.dedup_by(|next, kept| {
            let same = next.operator == kept.operator && next.part == kept.part;
            if same {
                kept.bytes += next.bytes;
            }
            same
        });
        at_peak.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.operator.cmp(&b.operator)));
        Self {
            limit: (limit != usize::MAX).then_some(limit as u64),
            peak_reserved: report.peak as u64,
            peak_at: report.peak_at,
            at_peak,
            rss_at_peak: report.rss_at_peak,
            rss_at_start: report.rss_at_start,
            highest_rss: report.highest_rss,
            timeline: report.timeline,
        }
    }

    /// Bytes each operator held at the peak, by the address of its metrics.
    pub(crate) fn by_operator(report: &LedgerReport) -> AtPeakByOperator {
        let mut held = AtPeakByOperator::new();
        for h in &report.at_peak {
            if let Some(m) = &h.operator {
                *held.entry(Arc::as_ptr(m)).or_default() += h.bytes as u64;
            }
        }
        held
    }

    /// Resident bytes at the peak that the pool does not account for.
    pub fn outside_pool(&self) -> Option<u64> {
        self.rss_at_peak
            .map(|rss| rss.total.saturating_sub(self.peak_reserved))
    }

    /// Bytes per operator at the peak (the sum of its parts), largest first.
    pub fn per_operator(&self) -> Vec<(String, u64)> {
        let mut sums: Vec<(String, u64)> = Vec::new();
        for held in &self.at_peak {
            match sums.iter_mut().find(|(name, _)| *name == held.operator) {
                Some(slot) => slot.1 += held.bytes,
                None => sums.push((held.operator.clone(), held.bytes)),
            }
        }
        sums.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        sums
    }

    /// The lines EXPLAIN ANALYZE prints: the sum at the peak, resident memory, what is
    /// outside the pool, then each holder.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "at peak (after {}): reserved {} = Σ operators",
            format_duration(self.peak_at),
            format_bytes(self.peak_reserved)
        );
        if let Some(rss) = self.rss_at_peak {
            out.push_str(&format!(
                "; process RSS {} (anon {}, file {})",
                format_bytes(rss.total),
                format_bytes(rss.anon()),
                format_bytes(rss.file)
            ));
        }
        if let Some(outside) = self.outside_pool() {
            out.push_str(&format!("; outside the pool {}", format_bytes(outside)));
            if let Some(start) = self.rss_at_start {
                out.push_str(&format!(
                    " (of which {} before the query started)",
                    format_bytes(start.total)
                ));
            }
        }
        out.push('\n');
        for held in &self.at_peak {
            out.push_str(&format!(
                "  {:>10}  {} {}\n",
                format_bytes(held.bytes),
                held.operator,
                held.part
            ));
        }
        out
    }

    /// The profile as a self-contained SVG titled `title`: a flame graph of the bytes held at
    /// the peak (query, operator, part) over the timeline of reserved bytes and RSS.
    pub fn to_svg(&self, title: &str) -> String {
        super::memory_svg::render_svg(self, title)
    }

    /// [`to_svg`](Self::to_svg) in an HTML page, followed by the [`summary`](Self::summary).
    pub fn to_html(&self, title: &str) -> String {
        super::memory_svg::render_html(self, title)
    }

    /// The profile as JSON text: limit, peak, RSS at the peak and at the start, the holders
    /// at the peak and the timeline.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }

    /// The profile as a JSON value (see [`QueryStream::report_json`](super::QueryStream::report_json)).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let rss = |r: Option<ResidentMemory>| {
            r.map(|r| json!({"total": r.total, "anon": r.anon(), "file": r.file}))
        };
        json!({
            "limit_bytes": self.limit,
            "peak_reserved_bytes": self.peak_reserved,
            "peak_at_seconds": self.peak_at.as_secs_f64(),
            "peak_rss_bytes": self.rss_at_peak.map(|r| r.total),
            "rss_at_peak": rss(self.rss_at_peak),
            "rss_at_start": rss(self.rss_at_start),
            "highest_rss": rss(self.highest_rss),
            "outside_pool_bytes": self.outside_pool(),
            "at_peak": self.at_peak.iter().map(|h| json!({
                "operator": h.operator,
                "operator_index": h.operator_index,
                "part": h.part,
                "bytes": h.bytes,
            })).collect::<Vec<_>>(),
            "timeline": self.timeline.iter().map(|p| json!({
                "seconds": p.at.as_secs_f64(),
                "reserved_bytes": p.reserved,
                "rss_bytes": p.rss,
                "rss_file_bytes": p.rss_file,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Number the operators depth first, as `operator_stats` lists them.
fn number_operators(
    plan: &Arc<dyn ExecutionPlan>,
    next: &mut usize,
    out: &mut HashMap<*const OperatorMetrics, (usize, String)>,
) {
    let index = *next;
    *next += 1;
    out.entry(Arc::as_ptr(plan.metrics()))
        .or_insert_with(|| (index, plan.name().to_string()));
    for child in plan.children() {
        number_operators(&child, next, out);
    }
}
