//! A memory profile drawn as one self-contained SVG: on top, a flame graph of the bytes held
//! at the query's peak (query → operator → part, each frame as wide as its bytes, a tooltip
//! with the figures); below, the timeline of reserved bytes against the process's resident
//! memory, with the limit and the peak marked. No script, no external reference: the file
//! opens in a browser and renders inline in notebooks.

use std::fmt::Write as _;

use super::memory_profile::MemoryProfile;
use crate::memory::TimelinePoint;
use crate::metrics::{format_bytes, format_duration};

const WIDTH: f64 = 1000.0;
const MARGIN: f64 = 10.0;
const FRAME: f64 = 22.0;
const CHART_TOP: f64 = 150.0;
const CHART_HEIGHT: f64 = 220.0;
const AXIS: f64 = 70.0;
const HEIGHT: f64 = CHART_TOP + CHART_HEIGHT + 60.0;

/// The profile as an SVG document titled `title`.
pub(crate) fn render_svg(profile: &MemoryProfile, title: &str) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{MARGIN}" y="18" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let mut subtitle = format!(
        "peak reserved {} after {}",
        format_bytes(profile.peak_reserved),
        format_duration(profile.peak_at)
    );
    if let Some(rss) = profile.rss_at_peak {
        let _ = write!(subtitle, "; process RSS then {}", format_bytes(rss.total));
    }
    if let Some(outside) = profile.outside_pool() {
        let _ = write!(subtitle, "; outside the pool {}", format_bytes(outside));
    }
    if let Some(limit) = profile.limit {
        let _ = write!(subtitle, "; limit {}", format_bytes(limit));
    }
    let _ = write!(
        svg,
        r##"<text x="{MARGIN}" y="36" fill="#444">{}</text>"##,
        escape(&subtitle)
    );
    flame_graph(profile, &mut svg);
    timeline(profile, &mut svg);
    svg.push_str("</svg>\n");
    svg
}

/// The profile as an HTML page: the SVG and the text summary.
pub(crate) fn render_html(profile: &MemoryProfile, title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n{}<pre>{}</pre>\n</body></html>\n",
        escape(title),
        render_svg(profile, title),
        escape(&profile.summary())
    )
}

fn flame_graph(profile: &MemoryProfile, svg: &mut String) {
    let top = 48.0;
    let width = WIDTH - 2.0 * MARGIN;
    let total = profile.peak_reserved;
    if total == 0 {
        let _ = write!(
            svg,
            r##"<text x="{MARGIN}" y="{}" fill="#666">no operator reserved memory</text>"##,
            top + 15.0
        );
        return;
    }
    frame(
        svg,
        MARGIN,
        top,
        width,
        &format!("query: {} reserved at the peak", format_bytes(total)),
        &format!("query\n{} reserved at the peak", format_bytes(total)),
        "#d9534f",
    );
    let mut x = MARGIN;
    for (operator, bytes) in profile.per_operator() {
        let w = width * bytes as f64 / total as f64;
        let share = 100.0 * bytes as f64 / total as f64;
        frame(
            svg,
            x,
            top + FRAME + 2.0,
            w,
            &format!("{operator} {}", format_bytes(bytes)),
            &format!(
                "{operator}\n{} ({share:.1}% of the peak)",
                format_bytes(bytes)
            ),
            &color(&operator, 0),
        );
        let mut px = x;
        for held in profile.at_peak.iter().filter(|h| h.operator == operator) {
            let pw = width * held.bytes as f64 / total as f64;
            frame(
                svg,
                px,
                top + 2.0 * (FRAME + 2.0),
                pw,
                &format!("{} {}", held.part, format_bytes(held.bytes)),
                &format!(
                    "{operator}: {}\n{} ({:.1}% of the peak)",
                    held.part,
                    format_bytes(held.bytes),
                    100.0 * held.bytes as f64 / total as f64
                ),
                &color(&held.part, 1),
            );
            px += pw;
        }
        x += w;
    }
}

fn frame(svg: &mut String, x: f64, y: f64, w: f64, label: &str, tooltip: &str, fill: &str) {
    let _ = write!(
        svg,
        r#"<g><title>{}</title><rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{FRAME}" fill="{fill}" stroke="white" stroke-width="1" rx="2"/>"#,
        escape(tooltip),
        w.max(0.5)
    );
    // About 7 pixels per character: cut the label to the frame.
    let fits = ((w - 6.0) / 7.0).floor().max(0.0) as usize;
    if fits >= 3 {
        let text: String = if label.chars().count() > fits {
            let mut t: String = label.chars().take(fits.saturating_sub(1)).collect();
            t.push('…');
            t
        } else {
            label.to_string()
        };
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 4.0,
            y + 15.0,
            escape(&text)
        );
    }
    svg.push_str("</g>");
}

fn timeline(profile: &MemoryProfile, svg: &mut String) {
    let left = MARGIN + AXIS;
    let right = WIDTH - MARGIN - 10.0;
    let (top, bottom) = (CHART_TOP, CHART_TOP + CHART_HEIGHT);
    let points = &profile.timeline;
    let end = points
        .iter()
        .map(|p| p.at.as_secs_f64())
        .fold(profile.peak_at.as_secs_f64(), f64::max)
        .max(1e-3);
    let highest = points
        .iter()
        .map(|p| p.reserved.max(p.rss))
        .chain([profile.peak_reserved])
        .chain(profile.rss_at_peak.map(|r| r.total))
        .chain(profile.limit.filter(|&l| l < u64::MAX / 2))
        .max()
        .unwrap_or(0)
        .max(1 << 20) as f64
        * 1.05;
    let x_of = |seconds: f64| left + (right - left) * seconds / end;
    let y_of = |bytes: f64| bottom - (bottom - top) * bytes / highest;
    let _ = write!(
        svg,
        r##"<text x="{MARGIN}" y="{}" font-weight="bold">reserved bytes and process RSS over time</text><rect x="{left}" y="{top}" width="{}" height="{CHART_HEIGHT}" fill="none" stroke="#999"/>"##,
        top - 8.0,
        right - left
    );
    for i in 0..=4 {
        let bytes = highest * i as f64 / 4.0;
        let y = y_of(bytes);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            left - 4.0,
            y + 4.0,
            escape(&format_bytes(bytes as u64))
        );
        let seconds = end * i as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
            x_of(seconds),
            bottom + 16.0,
            escape(&format_duration(std::time::Duration::from_secs_f64(
                seconds
            )))
        );
    }
    if let Some(limit) = profile.limit.filter(|&l| (l as f64) < highest) {
        let y = y_of(limit as f64);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="#d9534f" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#d9534f">limit {}</text>"##,
            right - 4.0,
            y - 4.0,
            escape(&format_bytes(limit))
        );
    }
    let line = |svg: &mut String, values: &dyn Fn(&TimelinePoint) -> u64, colour: &str| {
        let coordinates: Vec<String> = points
            .iter()
            .map(|p| {
                format!(
                    "{:.1},{:.1}",
                    x_of(p.at.as_secs_f64()),
                    y_of(values(p) as f64)
                )
            })
            .collect();
        if !coordinates.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                coordinates.join(" ")
            );
        }
    };
    if points.iter().any(|p| p.rss > 0) {
        line(svg, &|p| p.rss, "#f0883e");
        line(svg, &|p| p.rss_file, "#9aa0a6");
    }
    line(svg, &|p| p.reserved, "#1f77b4");
    let (px, py) = (
        x_of(profile.peak_at.as_secs_f64()),
        y_of(profile.peak_reserved as f64),
    );
    let _ = write!(
        svg,
        r##"<circle cx="{px:.1}" cy="{py:.1}" r="4" fill="#1f77b4"><title>peak: {} reserved after {}</title></circle>"##,
        escape(&format_bytes(profile.peak_reserved)),
        escape(&format_duration(profile.peak_at))
    );
    let legend = bottom + 36.0;
    let _ = write!(
        svg,
        r##"<rect x="{left}" y="{:.1}" width="14" height="4" fill="#1f77b4"/><text x="{:.1}" y="{legend:.1}">reserved from the pool</text><rect x="{:.1}" y="{:.1}" width="14" height="4" fill="#f0883e"/><text x="{:.1}" y="{legend:.1}">process RSS</text><rect x="{:.1}" y="{:.1}" width="14" height="4" fill="#9aa0a6"/><text x="{:.1}" y="{legend:.1}">of which file-backed (mapped files)</text>"##,
        legend - 5.0,
        left + 20.0,
        left + 190.0,
        legend - 5.0,
        left + 210.0,
        left + 320.0,
        legend - 5.0,
        left + 340.0
    );
}

/// A stable colour per name: warm hues for operators, cool ones for parts.
fn color(name: &str, level: usize) -> String {
    let hash = name
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let (base, span) = if level == 0 { (0, 50) } else { (180, 70) };
    let hue = base + hash % span;
    let light = 62 + (hash >> 8) % 14;
    format!("hsl({hue},70%,{light}%)")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::memory_profile::HeldMemory;
    use crate::memory::process::ResidentMemory;
    use std::time::Duration;

    #[test]
    fn the_svg_draws_every_holder_and_the_timeline() {
        let mut profile = MemoryProfile {
            limit: Some(256 << 20),
            peak_reserved: 200 << 20,
            peak_at: Duration::from_millis(1500),
            rss_at_peak: Some(ResidentMemory {
                total: 260 << 20,
                file: 10 << 20,
            }),
            ..MemoryProfile::default()
        };
        for (operator, part, mib) in [
            ("HashJoin #4", "build side", 150u64),
            ("HashJoin #4", "spill buffers", 10),
            ("Sort <b> #1", "sort buffer", 40),
        ] {
            profile.at_peak.push(HeldMemory {
                operator: operator.into(),
                operator_index: None,
                part: part.into(),
                bytes: mib << 20,
            });
        }
        profile.timeline = (0..10)
            .map(|i| TimelinePoint {
                at: Duration::from_millis(300 * i),
                reserved: (i * 20) << 20,
                rss: (i * 20 + 60) << 20,
                rss_file: 10 << 20,
            })
            .collect();
        let svg = render_svg(&profile, "Q9 & co");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("Q9 &amp; co"));
        assert!(
            svg.contains("Sort &lt;b&gt; #1\n40.0 MiB (20.0% of the peak)"),
            "{svg}"
        );
        assert!(svg.contains("HashJoin #4: build side\n150.0 MiB (75.0% of the peak)"));
        assert!(svg.contains("limit 256.0 MiB"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        // The operators' frames span the width of the query's frame.
        assert_eq!(
            profile.per_operator()[0],
            ("HashJoin #4".to_string(), 160 << 20)
        );
        let html = render_html(&profile, "Q9");
        assert!(html.contains("<pre>at peak (after 1.50 s): reserved 200.0 MiB"));
    }
}
