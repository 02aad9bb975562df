//! Who held the memory at the peak: `--explain-analyze --format json` and `--memory-profile`
//! on a child process, over TPC-H SF0.1 under a budget that makes the state spill. The
//! holders listed at the peak sum exactly to the pool's peak; operators' state stays within
//! the budget (batches in transit, decoded or queued, are counted beyond it); the largest
//! state holder is the operator and part that holds the state (the sort's buffer, the
//! aggregate's groups, the join's build side), the process's RSS at the peak is read, and the
//! SVG draws that holder.

mod common;

use std::process::Command;

fn run(args: &[&str], sql: &str) -> std::process::Output {
    let data = common::tpch_sf01_dir();
    let spill = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ooc"))
        .args(["query", "--no-progress", "--threads", "2", "--data"])
        .arg(&data)
        .arg("--temp-dir")
        .arg(spill.path())
        .args(args)
        .arg(sql)
        .output()
        .expect("run ooc");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const CASES: [(&str, &str, &str); 3] = [
    (
        "SELECT * FROM lineitem ORDER BY l_comment, l_orderkey, l_linenumber",
        "Sort #",
        "sort buffer",
    ),
    (
        "SELECT l_partkey, l_suppkey, count(*), sum(l_extendedprice), max(l_comment) \
         FROM lineitem GROUP BY l_partkey, l_suppkey",
        "HashAggregate(final) #",
        "groups",
    ),
    (
        "SELECT o_orderpriority, l_shipmode, count(*), sum(l_extendedprice) \
         FROM lineitem JOIN orders ON l_orderkey = o_orderkey GROUP BY 1, 2",
        "HashJoin #",
        "build side",
    ),
];

#[test]
fn the_holders_at_the_peak_sum_to_the_peak_and_name_the_real_holder() {
    for (sql, operator, part) in CASES {
        let out = run(
            &[
                "--memory-limit",
                "16MB",
                "--explain-analyze",
                "--format",
                "json",
            ],
            sql,
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let peak = report["peak_reserved_bytes"].as_u64().unwrap();
        let held = report["at_peak"].as_array().unwrap();
        let sum: u64 = held.iter().map(|h| h["bytes"].as_u64().unwrap()).sum();
        assert!(peak > 1 << 20, "{sql}: peak {peak}");
        assert_eq!(sum, peak, "{sql}: {held:?}");
        let transit = |h: &&serde_json::Value| {
            h["part"] == "batches in flight" || h["part"] == "decode buffers"
        };
        let state: Vec<&serde_json::Value> = held.iter().filter(|h| !transit(h)).collect();
        let state_bytes: u64 = state.iter().map(|h| h["bytes"].as_u64().unwrap()).sum();
        assert!(
            state_bytes <= 16 << 20,
            "{sql}: state {state_bytes} above the limit"
        );
        // Largest first; the largest state holder is the operator holding the state.
        let sizes: Vec<u64> = held.iter().map(|h| h["bytes"].as_u64().unwrap()).collect();
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        let top = state[0];
        assert!(
            top["operator"].as_str().unwrap().starts_with(operator) && top["part"] == part,
            "{sql}: {held:?}"
        );
        // The operator's entry in the metrics carries the same bytes at the peak.
        let index = top["operator_index"].as_u64().unwrap() as usize;
        let op = &report["operators"][index];
        let of_operator: u64 = held
            .iter()
            .filter(|h| h["operator_index"].as_u64() == Some(index as u64))
            .map(|h| h["bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(op["at_peak_bytes"].as_u64(), Some(of_operator), "{op}");
        assert!(
            op["name"].as_str().is_some_and(|n| operator.starts_with(n)),
            "{op}"
        );
        // Resident memory at the peak is at least what the pool held; the timeline runs
        // forward and saw the reservations.
        let rss = report["rss_at_peak"]["total"].as_u64().unwrap();
        assert!(rss >= peak, "{sql}: RSS {rss} below the pool's peak {peak}");
        assert_eq!(
            report["outside_pool_bytes"].as_u64(),
            Some(rss - peak),
            "{sql}"
        );
        let timeline = report["timeline"].as_array().unwrap();
        assert!(!timeline.is_empty() && timeline.len() <= 400, "{sql}");
        let seconds: Vec<f64> = timeline
            .iter()
            .map(|p| p["seconds"].as_f64().unwrap())
            .collect();
        assert!(seconds.windows(2).all(|w| w[0] <= w[1]), "{seconds:?}");
        assert!(timeline
            .iter()
            .all(|p| p["reserved_bytes"].as_u64().unwrap() <= peak));
        assert_eq!(report["limit_bytes"].as_u64(), Some(16 << 20));
    }
}

#[test]
fn explain_analyze_shows_bytes_at_the_peak_per_operator_and_in_total() {
    let (sql, operator, part) = CASES[2];
    let out = run(&["--memory-limit", "16MB", "--explain-analyze"], sql);
    let report = String::from_utf8_lossy(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.starts_with("at peak (after "))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        line.contains("= Σ operators; process RSS") && line.contains("outside the pool"),
        "{line}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.contains(operator) && l.trim_end().ends_with(part)),
        "{report}"
    );
    assert!(report.contains(" at_peak="), "{report}");
}

#[test]
fn memory_profile_writes_an_svg_that_draws_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (sql, operator, part)) in CASES.iter().enumerate() {
        let path = dir.path().join(format!("profile{i}.svg"));
        let out = run(
            &[
                "--memory-limit",
                "16MB",
                "--format",
                "csv",
                "-o",
                dir.path().join("out.csv").to_str().unwrap(),
                "--memory-profile",
                path.to_str().unwrap(),
            ],
            sql,
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("memory profile written"));
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // The query's frame first, then the operators', then each operator's parts.
        let titles: Vec<&str> = svg.split("<title>").skip(1).collect();
        assert!(titles[0].starts_with("query\n"), "{}", titles[0]);
        assert!(
            titles
                .iter()
                .any(|t| t.starts_with(operator) && t.contains(&format!(": {part}\n"))),
            "{svg}"
        );
        assert!(svg.contains("<polyline"), "no timeline");
    }
    // An .html profile carries the summary too; nothing else is left in the directory.
    let html = dir.path().join("profile.html");
    run(
        &[
            "--memory-limit",
            "16MB",
            "--explain-analyze",
            "--memory-profile",
            html.to_str().unwrap(),
        ],
        CASES[0].0,
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<pre>at peak (after "), "{page}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "out.csv",
            "profile.html",
            "profile0.svg",
            "profile1.svg",
            "profile2.svg"
        ]
    );
}

#[test]
fn explain_analyze_refuses_an_output_format_it_cannot_print() {
    let data = common::tpch_sf01_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_ooc"))
        .args(["query", "--no-progress", "--data"])
        .arg(&data)
        .args(["--explain-analyze", "--format", "parquet", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--format json") && err.contains("parquet"),
        "{err}"
    );
}
