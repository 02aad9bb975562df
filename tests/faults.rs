//! Faults: `ooc query` killed outright (SIGKILL: no destructor runs, nothing is flushed) at
//! random moments while it writes its output (`-o` Parquet, CSV, `.npy`) or spills, and
//! `ooc index create` while it writes a sidecar.
//!
//! After every kill the destination is still the complete file of an earlier run, never a
//! part of the killed one; a temporary file left by the killed process is never read and goes
//! with the next write to the same destination; a spill directory left behind goes with the
//! next query that spills there. The last run, not killed, gives the expected file, and
//! nothing else is left in either directory.
//!
//! Kills per kind: `OOC_FAULT_KILLS` (default 8; `make faults` runs 50). Each run is watched
//! until it starts writing (its own temporary file, or its own spill file, appears) and
//! killed at a moment drawn from the rest of an unkilled run's time; the test checks that most
//! kills found the query still writing, so that it tests what it claims to.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The query every case writes: all of SF0.1 `lineitem` (600k rows) in a total order, so
/// that a completed run always writes the same bytes.
const QUERY: &str = "SELECT l_orderkey, l_linenumber, l_partkey, l_quantity, l_extendedprice, \
                     l_shipdate, l_comment FROM lineitem ORDER BY l_orderkey, l_linenumber";

/// Numeric columns only, for the `.npy` matrix.
const NUMERIC_QUERY: &str = "SELECT l_orderkey, l_linenumber, l_partkey, l_quantity, \
                             l_extendedprice FROM lineitem ORDER BY l_orderkey, l_linenumber";

fn kills() -> usize {
    std::env::var("OOC_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// A deterministic fraction in [0, 1) for kill `i` of `kind`.
fn fraction(kind: &str, i: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain(i.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn query(data: &Path, sql: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ooc"));
    command
        .args(["query", "--no-progress", "--threads", "2", "--data"])
        .arg(data)
        .args(extra)
        .arg(sql)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Run `command` to completion, asserting success; its wall time.
fn run(mut command: Command) -> Duration {
    let start = Instant::now();
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

/// What became of a run [`kill_while_writing`] started.
enum Fate {
    /// Killed; whether it was still writing then.
    Killed { writing: bool },
    /// It finished first, after this long (what the next runs' kill moments come from).
    Finished(Duration),
}

/// Start `command`, wait until `writing(pid)` (it writes), then kill it after `fraction` of
/// the time `full` leaves.
fn kill_while_writing(
    mut command: Command,
    full: Duration,
    fraction: f64,
    writing: &dyn Fn(u32) -> bool,
) -> Fate {
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let start = Instant::now();
    while !writing(pid) {
        if child.try_wait().unwrap().is_some() {
            return Fate::Finished(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let until = start.elapsed() + full.saturating_sub(start.elapsed()).mul_f64(fraction);
    while start.elapsed() < until {
        if child.try_wait().unwrap().is_some() {
            return Fate::Finished(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let still = writing(pid);
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    Fate::Killed { writing: still }
}

/// Run `attempt` (given the run time to draw kill moments from, and the attempt's number)
/// until `n` runs were killed, at most `4 n` times; a run that finishes first sets the run
/// time for the next ones (the machine may have become faster). Returns the kills that found
/// the query writing; asserts all `n` kills happened.
fn kill_n_times(
    n: usize,
    mut full: Duration,
    attempt: &mut dyn FnMut(Duration, usize) -> Fate,
) -> usize {
    let (mut killed, mut writing) = (0, 0);
    for i in 0..4 * n {
        if killed == n {
            break;
        }
        match attempt(full, i) {
            Fate::Killed { writing: w } => {
                killed += 1;
                writing += usize::from(w);
            }
            Fate::Finished(took) => full = took,
        }
    }
    assert_eq!(killed, n, "{n} kills wanted in {} runs", 4 * n);
    writing
}

/// Kill writes of `-o out.EXT` at random moments; see the module docs.
fn killed_writes(extension: &str, sql: &str) {
    let data = common::tpch_sf01_dir();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("out.{extension}");
    let out: PathBuf = dir.path().join(&name);
    let reference = dir.path().join(format!("reference.{extension}"));
    let args = |path: &Path| vec!["-o".to_string(), path.display().to_string()];
    let reference_args = args(&reference);
    let refs: Vec<&str> = reference_args.iter().map(String::as_str).collect();
    // The second run's time, with the data in the page cache as for the killed runs.
    run(query(&data, sql, &refs));
    let full = run(query(&data, sql, &refs));
    let expected = std::fs::read(&reference).unwrap();
    std::fs::remove_file(&reference).unwrap();

    let out_args = args(&out);
    let outs: Vec<&str> = out_args.iter().map(String::as_str).collect();
    // A complete result is in place; no killed run may replace it by a part of one.
    run(query(&data, sql, &outs));
    let n = kills();
    let writing = kill_n_times(n, full, &mut |full, i| {
        let own_temporary = |pid: u32| {
            let prefix = format!(".{name}.ooc-tmp-{pid}-");
            names(dir.path())
                .iter()
                .any(|n| n.starts_with(&prefix) && !n.ends_with(".new"))
        };
        let fate = kill_while_writing(
            query(&data, sql, &outs),
            full,
            fraction(extension, i),
            &own_temporary,
        );
        assert!(
            std::fs::read(&out).unwrap() == expected,
            "run {i}: {name} is not the complete result"
        );
        // What the killed run left: at most its own temporary file, never read, and the
        // earlier runs' temporaries are gone (this run removed them when it started).
        let left: Vec<String> = names(dir.path())
            .into_iter()
            .filter(|n| n.contains(".ooc-tmp-"))
            .collect();
        assert!(left.len() <= 1, "run {i}: temporaries pile up: {left:?}");
        fate
    });
    assert!(
        writing * 2 >= n,
        "only {writing} of {n} kills hit the query while it wrote"
    );
    run(query(&data, sql, &outs));
    assert!(std::fs::read(&out).unwrap() == expected);
    assert_eq!(names(dir.path()), vec![name], "only the result is left");
    eprintln!("{extension}: {n} kills, {writing} while writing");
}

#[test]
fn killed_parquet_output_leaves_nothing_partial() {
    killed_writes("parquet", QUERY);
}

#[test]
fn killed_csv_output_leaves_nothing_partial() {
    killed_writes("csv", QUERY);
}

#[test]
fn killed_npy_output_leaves_nothing_partial() {
    killed_writes("npy", NUMERIC_QUERY);
}

/// Kills while a sort spills under 8MB: each run starts by removing the directories of
/// the killed ones; the last run's answer is right and leaves the temp directory empty.
#[test]
fn killed_index_builds_leave_the_complete_sidecar() {
    let data = common::tpch_sf01_dir();
    let dir = tempfile::tempdir().unwrap();
    let lineitem = dir.path().join("lineitem.parquet");
    std::fs::copy(data.join("lineitem.parquet"), &lineitem).unwrap();
    let sidecar = dir.path().join(".lineitem.parquet.ooc-index");
    let build = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ooc"));
        command
            .args(["index", "create", "--no-progress", "--memory-limit", "16MB"])
            .arg(&lineitem)
            .args(["--columns", "l_partkey,l_suppkey,l_comment"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    run(build());
    let full = run(build());
    // A build writes the same bytes each time: what a killed one must never replace.
    let expected = std::fs::read(&sidecar).unwrap();
    let n = kills();
    let writing = kill_n_times(n, full, &mut |full, i| {
        let own_temporary = |pid: u32| {
            let prefix = format!(".lineitem.parquet.ooc-index.tmp-{pid}-");
            names(dir.path()).iter().any(|n| n.starts_with(&prefix))
        };
        let fate = kill_while_writing(build(), full, fraction("index", i), &own_temporary);
        assert!(
            std::fs::read(&sidecar).unwrap() == expected,
            "run {i}: the sidecar is not the complete one"
        );
        let left: Vec<String> = names(dir.path())
            .into_iter()
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.len() <= 1, "run {i}: temporaries pile up: {left:?}");
        fate
    });
    assert!(
        writing * 2 >= n,
        "only {writing} of {n} kills hit the build while it wrote"
    );
    // Queries use the complete sidecar; the next build removes what the last kill left.
    let out = Command::new(env!("CARGO_BIN_EXE_ooc"))
        .args(["query", "--explain", "--data"])
        .arg(dir.path())
        .arg("SELECT count(*) FROM lineitem WHERE l_partkey = 7")
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("index=[l_partkey = 7]"), "{plan}");
    run(build());
    assert_eq!(
        names(dir.path()),
        vec![
            ".lineitem.parquet.ooc-index".to_string(),
            "lineitem.parquet".to_string()
        ]
    );
    eprintln!("index: {n} kills, {writing} while writing");
}

#[test]
fn killed_spills_are_removed_by_the_next_spilling_query() {
    let data = common::tpch_sf01_dir();
    let spill = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let result = out.path().join("sorted.csv");
    let temp = spill.path().display().to_string();
    let result_arg = result.display().to_string();
    let extra = [
        "--memory-limit",
        "8MB",
        "--temp-dir",
        temp.as_str(),
        "-o",
        result_arg.as_str(),
    ];
    run(query(&data, QUERY, &extra));
    let full = run(query(&data, QUERY, &extra));
    let expected = std::fs::read(&result).unwrap();
    let n = kills();
    let spilling = kill_n_times(n, full, &mut |full, i| {
        // A spill file in a directory the runs before did not leave.
        let before = names(spill.path());
        let own_spill = |_pid: u32| {
            std::fs::read_dir(spill.path())
                .unwrap()
                .flatten()
                .any(|dir| {
                    !before.contains(&dir.file_name().to_string_lossy().into_owned())
                        && std::fs::read_dir(dir.path()).is_ok_and(|files| {
                            files
                                .flatten()
                                .any(|f| f.file_name().to_string_lossy().ends_with(".arrows"))
                        })
                })
        };
        let fate = kill_while_writing(
            query(&data, QUERY, &extra),
            full,
            fraction("spill", i),
            &own_spill,
        );
        // At most the killed run's own directory: it removed those of the runs before.
        assert!(
            names(spill.path()).len() <= 1,
            "run {i}: spill directories pile up: {:?}",
            names(spill.path())
        );
        fate
    });
    assert!(
        spilling * 2 >= n,
        "only {spilling} of {n} kills hit the query while it spilled"
    );
    eprintln!("spill: {n} kills, {spilling} while spilling");
    run(query(&data, QUERY, &extra));
    assert!(std::fs::read(&result).unwrap() == expected);
    assert!(names(spill.path()).is_empty(), "{:?}", names(spill.path()));
    assert_eq!(names(out.path()), vec!["sorted.csv".to_string()]);
}

/// Eight processes spilling at once under one `--temp-dir`: none removes another's live
/// spill directory (each holds its lock), every result is the same, and the directory is
/// empty afterwards.
#[test]
fn eight_processes_share_one_temp_directory() {
    let data = common::tpch_sf01_dir();
    let spill = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let temp = spill.path().display().to_string();
    let reference = out.path().join("reference.csv");
    let reference_arg = reference.display().to_string();
    run(query(&data, QUERY, &["-o", reference_arg.as_str()]));
    let expected = std::fs::read(&reference).unwrap();
    let results: Vec<PathBuf> = (0..8)
        .map(|i| out.path().join(format!("sorted{i}.csv")))
        .collect();
    let children: Vec<_> = results
        .iter()
        .map(|result| {
            let result_arg = result.display().to_string();
            query(
                &data,
                QUERY,
                &[
                    "--memory-limit",
                    "8MB",
                    "--temp-dir",
                    temp.as_str(),
                    "-o",
                    result_arg.as_str(),
                ],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for result in &results {
        assert!(
            std::fs::read(result).unwrap() == expected,
            "{}",
            result.display()
        );
    }
    assert!(names(spill.path()).is_empty(), "{:?}", names(spill.path()));
}

/// `ooc query --cache` killed while it stores its result: the cache never serves a part of
/// one. Every run is a miss (its filter differs, not its rows), so that every kill can find a
/// cache write under way; after each kill `ooc cache verify` finds no bad entry, and what a
/// killed run left is removed by the next run's write. At the end every entry that was
/// committed is a hit with the complete result.
#[test]
fn killed_cache_writes_never_serve_a_partial_entry() {
    let data = common::tpch_sf01_dir();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let sql = |i: usize| {
        format!(
            "SELECT l_orderkey, l_linenumber, l_partkey, l_quantity, l_extendedprice, \
             l_shipdate, l_comment FROM lineitem WHERE l_orderkey > -{i} \
             ORDER BY l_orderkey, l_linenumber"
        )
    };
    let cached = |i: usize| {
        let mut command = query(
            &data,
            &sql(i),
            &[
                "--format",
                "csv",
                "--cache",
                "--cache-min-time",
                "0",
                "--cache-max-size",
                "400MB",
            ],
        );
        command.env("OOC_CACHE_DIR", &cache);
        command
    };
    let csv = |mut command: Command| {
        let out = command.stdout(Stdio::piped()).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let expected = csv(query(&data, &sql(0), &["--format", "csv"]));
    run(cached(1_000_000));
    let full = run(cached(1_000_001));
    let verify = || {
        let out = Command::new(env!("CARGO_BIN_EXE_ooc"))
            .args(["cache", "verify", "--cache-dir"])
            .arg(&cache)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.contains(" 0 removed"),
            "{text}"
        );
    };
    let n = kills();
    let writing = kill_n_times(n, full, &mut |full, i| {
        let own_temporary = |pid: u32| {
            let tag = format!("-{pid}-");
            names(&cache)
                .iter()
                .any(|n| n.starts_with(".tmp-") && n.ends_with(".arrow") && n.contains(&tag))
        };
        let fate = kill_while_writing(cached(i + 1), full, fraction("cache", i), &own_temporary);
        verify();
        let temporaries = names(&cache)
            .into_iter()
            .filter(|n| n.starts_with(".tmp-"))
            .count();
        assert!(temporaries <= 1, "run {i}: temporaries pile up");
        fate
    });
    assert!(
        writing * 2 >= n,
        "only {writing} of {n} kills hit the query while it stored its result"
    );
    // The entries committed before the kills are hits with the complete result, and so is
    // every key a killed run wanted (computed again, or stored by a run that finished); the
    // next write (a new key) removes what the last kill left.
    for i in [1_000_001, 1_000_000, 1, n, 2_000_000] {
        assert!(csv(cached(i)) == expected, "query {i}: wrong result");
    }
    verify();
    assert!(!names(&cache).iter().any(|n| n.starts_with(".tmp-")));
    eprintln!("cache: {n} kills, {writing} while writing");
}
