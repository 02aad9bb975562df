//! The memory promise, measured on a child process: with `--memory-limit 8MB`, queries whose
//! state is many times the budget (a full sort of SF0.1 `lineitem`, about 100 MB decoded, and a
//! 80,000-group aggregate on (part, supplier)) spill, finish, and keep the process's peak RSS
//! within the README's promise of *limit + 160 MiB*. So does the 150,000-group aggregate on
//! `l_orderkey`, which needs no spill: `lineitem` is in order-key order, so it runs row group
//! by row group; and `lineitem` joined to all of `orders`, whose build side is split by key
//! windows of `lineitem`'s row groups.

mod common;

use std::process::Command;

/// The fixed overhead the README promises on top of `--memory-limit` (decode buffers, batches
/// in flight, the allocator's caches, the binary itself).
const OVERHEAD_MIB: f64 = 160.0;

/// Run `sql` with `--explain-analyze` under `limit_mib`; returns (report, peak RSS in MiB).
fn explain_analyze(sql: &str, limit_mib: usize) -> (String, f64) {
    let data = common::tpch_sf01_dir();
    let spill = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ooc"))
        .args(["query", "--no-progress", "--threads", "2", "--data"])
        .arg(&data)
        .args(["--memory-limit", &format!("{limit_mib}MB"), "--temp-dir"])
        .arg(spill.path())
        .args(["--explain-analyze", sql])
        .output()
        .expect("run ooc");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(spill.path()).unwrap().count(),
        0,
        "spill files left behind"
    );
    let line = report
        .lines()
        .find(|l| l.starts_with("peak RSS of this process:"))
        .unwrap_or_else(|| panic!("no peak RSS in:\n{report}"));
    let value = line.rsplit(':').next().unwrap().trim();
    let (number, unit) = value.split_once(' ').unwrap();
    let number: f64 = number.parse().unwrap();
    let mib = match unit {
        "KiB" => number / 1024.0,
        "MiB" => number,
        "GiB" => number * 1024.0,
        other => panic!("unit {other}"),
    };
    (report, mib)
}

#[test]
fn peak_rss_stays_within_limit_plus_overhead_on_data_ten_times_the_budget() {
    let limit = 8;
    for (sql, spiller) in [
        (
            "SELECT * FROM lineitem ORDER BY l_comment, l_orderkey, l_linenumber",
            "Sort:",
        ),
        (
            "SELECT l_partkey, l_suppkey, count(*), sum(l_extendedprice), max(l_comment) \
             FROM lineitem GROUP BY l_partkey, l_suppkey",
            "HashAggregate(final)",
        ),
        (
            "SELECT l_orderkey, count(*), sum(l_extendedprice), max(l_comment) \
             FROM lineitem GROUP BY l_orderkey",
            "HashAggregate:",
        ),
        (
            "SELECT o_orderpriority, l_shipmode, count(*), sum(l_extendedprice) \
             FROM lineitem JOIN orders ON l_orderkey = o_orderkey GROUP BY 1, 2",
            "HashJoin:",
        ),
    ] {
        let (report, rss) = explain_analyze(sql, limit);
        // The metrics line under the operator reports its spills.
        let lines: Vec<&str> = report.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(spiller))
            .unwrap_or_else(|| panic!("{sql}: no {spiller} in:\n{report}"));
        // The order-key aggregate runs per row group (its table holds one row group's
        // groups); the others spill.
        if spiller == "HashAggregate:" {
            assert!(
                lines[at].contains("per_row_group_of=l_orderkey"),
                "{sql}: expected a per-row-group aggregate:\n{report}"
            );
        } else if spiller == "HashJoin:" {
            // `orders` does not fit: it is split by key windows of `lineitem`'s row groups.
            assert!(
                lines[at + 1].contains("key_windows=") && lines[at + 1].contains("spills="),
                "{sql}: expected a join by key windows:\n{report}"
            );
        } else {
            assert!(
                lines[at + 1].contains("spills="),
                "{sql}: expected {spiller} to spill:\n{report}"
            );
        }
        assert!(
            rss <= limit as f64 + OVERHEAD_MIB,
            "{sql}: peak RSS {rss:.1} MiB above {limit} MiB + {OVERHEAD_MIB} MiB:\n{report}"
        );
        eprintln!("{sql}: peak RSS {rss:.1} MiB with an {limit} MiB budget");
    }
}

/// Window functions under the same budget: a sliding frame per supplier and a running sum
/// over one partition of every row stream (the window holds a few batches, not the
/// partition); functions that need a whole partition larger than the budget (its size for
/// `percent_rank` and `cume_dist`, its total for `sum(...) OVER ()`) send it to disk and compute it in two
/// passes. The answers are checked where they are known without another engine.
#[test]
fn windows_stream_or_spill_their_partitions_within_the_limit() {
    let limit = 8;
    for (sql, spills, expected) in [
        (
            "SELECT count(*), sum(n) FROM (SELECT count(*) OVER (PARTITION BY l_suppkey \
             ORDER BY l_shipdate, l_orderkey, l_linenumber ROWS BETWEEN 6 PRECEDING AND \
             CURRENT ROW) AS n FROM lineitem)",
            false,
            // 1,000 suppliers with at least 7 rows each: all but their first 6 rows see 7
            // (600,572 * 7 - 1,000 * 21).
            "600572|4183004",
        ),
        (
            "SELECT count(*), max(running) = (SELECT sum(l_quantity) FROM lineitem) FROM \
             (SELECT sum(l_quantity) OVER (ORDER BY l_shipdate, l_orderkey, l_linenumber) \
             AS running FROM lineitem)",
            false,
            "600572|true",
        ),
        (
            "SELECT count(*), min(pr), max(cd), min(total) = max(total), \
             max(total) = (SELECT sum(l_quantity) FROM lineitem) FROM (SELECT \
             percent_rank() OVER (ORDER BY l_shipdate) AS pr, \
             cume_dist() OVER (ORDER BY l_shipdate) AS cd, sum(l_quantity) OVER () AS total \
             FROM lineitem)",
            true,
            "600572|0.0|1.0|true|true",
        ),
    ] {
        let (report, rss) = explain_analyze(sql, limit);
        let lines: Vec<&str> = report.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with("Window:"))
            .unwrap_or_else(|| panic!("{sql}: no window in:\n{report}"));
        assert_eq!(
            lines[at + 1].contains("spills="),
            spills,
            "{sql}: expected the window {}to spill:\n{report}",
            if spills { "" } else { "not " }
        );
        assert!(
            rss <= limit as f64 + OVERHEAD_MIB,
            "{sql}: peak RSS {rss:.1} MiB above {limit} MiB + {OVERHEAD_MIB} MiB:\n{report}"
        );
        let result = query_result(sql, limit);
        assert_eq!(result, expected, "{sql}");
        eprintln!("{sql}: peak RSS {rss:.1} MiB with an {limit} MiB budget");
    }
}

/// A partition computed from disk gives the same answer as one held in memory, for every
/// kind of function that may need the partition's end: ranks by its size, aggregates over it
/// whole and to its end (with rows leaving at the start), the last value to its end, the
/// first value of a frame starting after the current row, and `lead`.
#[test]
fn a_window_partition_computed_from_disk_equals_one_in_memory() {
    let sql = "SELECT l_orderkey, l_linenumber, \
        percent_rank() OVER (ORDER BY l_shipdate) AS pr, \
        cume_dist() OVER (ORDER BY l_shipdate) AS cd, \
        ntile(7) OVER w AS nt, \
        sum(l_quantity) OVER () AS total, \
        max(l_comment) OVER () AS top, \
        sum(l_quantity) OVER (w ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS rest, \
        avg(l_extendedprice) OVER (w ROWS BETWEEN 3 PRECEDING AND UNBOUNDED FOLLOWING) AS tail_avg, \
        last_value(l_comment) OVER (w ROWS BETWEEN 2 PRECEDING AND UNBOUNDED FOLLOWING) AS lv, \
        first_value(l_orderkey) OVER (w ROWS BETWEEN 5 FOLLOWING AND UNBOUNDED FOLLOWING) AS fv, \
        lead(l_orderkey, 3) OVER w AS ld \
        FROM lineitem WINDOW w AS (ORDER BY l_shipdate, l_orderkey, l_linenumber) \
        ORDER BY l_orderkey, l_linenumber";
    let run = |limit: Option<&str>| {
        let data = common::tpch_sf01_dir();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ooc"));
        command
            .args([
                "query",
                "--no-progress",
                "--threads",
                "2",
                "--format",
                "csv",
                "--data",
            ])
            .arg(&data);
        if let Some(limit) = limit {
            command.args(["--memory-limit", limit]);
        }
        let out = command.arg(sql).output().expect("run ooc");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (report, _) = explain_analyze(sql, 8);
    assert!(
        report
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("Window:"))
            .nth(1)
            .is_some_and(|l| l.contains("spills=")),
        "expected a window to spill:\n{report}"
    );
    let from_disk = run(Some("8MB"));
    let in_memory = run(None);
    assert_eq!(from_disk.lines().count(), 600_573);
    assert!(from_disk == in_memory, "the answers differ");
}

/// The single-row result of `sql` under `limit_mib`, as `a|b|...`.
fn query_result(sql: &str, limit_mib: usize) -> String {
    let data = common::tpch_sf01_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_ooc"))
        .args([
            "query",
            "--no-progress",
            "--threads",
            "2",
            "--format",
            "csv",
            "--data",
        ])
        .arg(&data)
        .args(["--memory-limit", &format!("{limit_mib}MB"), sql])
        .output()
        .expect("run ooc");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1).unwrap_or_default().replace(',', "|")
}

/// A query killed outright (SIGKILL: no destructor runs) leaves its spill directory behind;
/// the next query that spills under the same `--temp-dir` removes it, as the kernel released
/// the dead process's lock on it.
#[test]
fn a_killed_querys_spill_directory_goes_with_the_next_spilling_query() {
    let data = common::tpch_sf01_dir();
    let spill = tempfile::tempdir().unwrap();
    let query = |sql: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ooc"));
        command
            .args(["query", "--no-progress", "--threads", "2", "--data"])
            .arg(&data)
            .args(["--memory-limit", "8MB", "--temp-dir"])
            .arg(spill.path())
            .arg(sql)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };
    let spill_files = || -> usize {
        std::fs::read_dir(spill.path())
            .unwrap()
            .flatten()
            .filter_map(|dir| std::fs::read_dir(dir.path()).ok())
            .flat_map(|files| files.flatten())
            .filter(|f| f.file_name().to_string_lossy().ends_with(".arrows"))
            .count()
    };
    let mut child = query("SELECT * FROM lineitem ORDER BY l_comment, l_orderkey, l_linenumber")
        .spawn()
        .expect("run ooc");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while spill_files() == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sort finished before it was seen spilling"
        );
        assert!(std::time::Instant::now() < deadline, "no spill file");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(spill.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "the killed query's directory");
    assert!(left[0]
        .file_name()
        .to_string_lossy()
        .starts_with("ooc-spill-"));
    let status =
        query("SELECT l_orderkey, count(*), max(l_comment) FROM lineitem GROUP BY l_orderkey")
            .status()
            .unwrap();
    assert!(status.success());
    let after: Vec<_> = std::fs::read_dir(spill.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(after.is_empty(), "left behind: {after:?}");
}
