//! Hash joins whose build side does not fit, with a probe side written in key order: the build
//! rows are split by key windows of the probe's row groups instead of hash partitions, and
//! no probe row is written out. The answers equal those of the same probe rows in random
//! order (which take the ordinary grace hash join), for inner, outer, semi and anti joins,
//! whatever the budget and batch size, including build keys outside every window, NULL build
//! keys, keys on window boundaries, and a window too big to load (deferred to a grace job).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, UInt32Array};

mod common;

use common::{batch, entries, mix, session};

const FACT_ROWS: usize = 300_000;
const MIB: usize = 1024 * 1024;

fn write(dir: &Path, name: &str, batch: &RecordBatch, row_group_rows: usize) {
    common::write_parquet(&dir.join(format!("{name}.parquet")), batch, row_group_rows);
}

fn shuffle(batch: &RecordBatch, seed: u64) -> RecordBatch {
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by_key(|&i| mix(u64::from(i) ^ seed));
    arrow::compute::take_record_batch(batch, &UInt32Array::from(order)).unwrap()
}

/// `fact` (300,000 rows in `o` order, 1–3 rows a key, row groups of 10,000 rows that split
/// keys at their boundaries; no NULL keys, which would keep the scan from claiming whole row
/// groups) and `fact_shuffled`, the same rows in
/// random order. `dim`: one row per key for about three keys in four of `fact`'s range, plus
/// keys below and above it and NULL keys, in random order. `dup`: `dim` plus 60,000 rows on
/// 40 keys of one narrow range (a window far bigger than the others).
fn write_tables(dir: &Path) -> i64 {
    let mut o: Vec<Option<i64>> = Vec::with_capacity(FACT_ROWS);
    let mut key = 0i64;
    while o.len() < FACT_ROWS {
        key += 1 + (mix(key as u64) % 3) as i64;
        for _ in 0..1 + mix(key as u64 ^ 77) % 3 {
            o.push(Some(key));
        }
    }
    o.truncate(FACT_ROWS);
    let max_key = key;
    let v: Vec<i64> = (0..FACT_ROWS as u64)
        .map(|i| (mix(i + 5) % 1000) as i64)
        .collect();
    // A wide column, so that `fact` is the bigger side and the probe side.
    let c: Vec<String> = (0..FACT_ROWS as u64)
        .map(|i| format!("comment {:032x}", mix(i ^ 0xc0)))
        .collect();
    let fact = batch(vec![
        ("o", Arc::new(Int64Array::from(o))),
        ("v", Arc::new(Int64Array::from(v))),
        ("c", Arc::new(StringArray::from(c))),
    ]);
    write(dir, "fact", &fact, 10_000);
    write(dir, "fact_shuffled", &shuffle(&fact, 0x5eed), 10_000);

    let mut k: Vec<Option<i64>> = (-50..max_key + 50)
        .filter(|&k| !mix(k as u64 ^ 0xd1).is_multiple_of(4))
        .map(Some)
        .collect();
    k.extend([None, None, None]);
    let n = k.len() as u64;
    let pri: Vec<String> = (0..n).map(|i| format!("{}-PRI", mix(i) % 5)).collect();
    let w: Vec<i64> = (0..n).map(|i| (mix(i ^ 0xabc) % 100) as i64).collect();
    let dim = batch(vec![
        ("k", Arc::new(Int64Array::from(k.clone()))),
        ("pri", Arc::new(StringArray::from(pri.clone()))),
        ("w", Arc::new(Int64Array::from(w.clone()))),
    ]);
    write(dir, "dim", &shuffle(&dim, 3), 1 << 20);

    // 60,000 more rows on 40 keys of one narrow range.
    let (mut k2, mut pri2, mut w2) = (k, pri, w);
    for i in 0..60_000u64 {
        k2.push(Some(100_000 + (i % 40) as i64 * 3));
        pri2.push(format!("{}-DUP", i % 7));
        w2.push((i % 13) as i64);
    }
    let dup = batch(vec![
        ("k", Arc::new(Int64Array::from(k2))),
        ("pri", Arc::new(StringArray::from(pri2))),
        ("w", Arc::new(Int64Array::from(w2))),
    ]);
    write(dir, "dup", &shuffle(&dup, 4), 1 << 20);
    max_key
}

/// Every row as text, sorted.
fn render(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = common::render(batches);
    rows.sort();
    rows
}

/// Run `sql` on `fact`, and on `fact_shuffled` for the reference; returns the EXPLAIN ANALYZE
/// text of the run on `fact`.
fn check(data: &Path, spill_dir: &Path, template: &str, limit: usize, batch_size: usize) -> String {
    let label = format!(
        "{template} under {} KiB, batch size {batch_size}",
        limit >> 10
    );
    let reference = {
        let s = session(data, None, 8192, spill_dir);
        let frame = s.sql(&template.replace("{f}", "fact_shuffled")).unwrap();
        render(&frame.collect().unwrap())
    };
    assert!(reference.len() > 10, "{label}: {} rows", reference.len());
    let s = session(data, Some(limit), batch_size, spill_dir);
    let mut stream = s
        .sql(&template.replace("{f}", "fact"))
        .unwrap()
        .execute()
        .unwrap();
    let batches: Vec<RecordBatch> = stream
        .by_ref()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let report = stream.report();
    let rows = render(&batches);
    assert_eq!(rows.len(), reference.len(), "{label}: row count\n{report}");
    assert!(rows == reference, "{label}: rows differ\n{report}");
    assert_eq!(stream.reserved(), 0, "{label}: pool back to zero");
    drop(stream);
    assert_eq!(entries(spill_dir).len(), 0, "{label}: spill files left");
    report
}

/// The `key_windows=` line's counts: (windows, kept, loaded, deferred).
fn window_counts(report: &str) -> Option<(usize, usize, usize, usize)> {
    let text = report.split("key_windows=").nth(1)?;
    let numbers: Vec<usize> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect();
    Some((numbers[0], numbers[1], numbers[2], numbers[3]))
}

/// Queries over `{f}`, with budgets (MiB) below their build side's size.
const QUERIES: &[(&str, [usize; 3])] = &[
    (
        "SELECT pri, w, count(*) AS n, sum(v) AS sv, max(c) AS mc FROM {f} JOIN dim ON o = k \
         GROUP BY pri, w",
        [6, 8, 12],
    ),
    (
        "SELECT o, v, c, pri, w FROM {f} JOIN dim ON o = k WHERE w < 90",
        [6, 8, 12],
    ),
    // Unmatched fact rows (keys missing from dim) come out with NULLs.
    (
        "SELECT o, v, c, pri FROM {f} LEFT JOIN dim ON o = k",
        [6, 8, 12],
    ),
    (
        "SELECT v, count(*) AS n, max(c) AS mc FROM {f} WHERE o IN (SELECT k FROM dim) \
         GROUP BY v",
        [3, 4, 6],
    ),
    (
        "SELECT v, count(*) AS n, max(c) AS mc FROM {f} \
         WHERE NOT EXISTS (SELECT 1 FROM dim WHERE k = o AND w < 70) GROUP BY v",
        [3, 4, 6],
    ),
];

#[test]
fn key_window_joins_equal_the_grace_hash_join() {
    let data = tempfile::tempdir().unwrap();
    write_tables(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    for (template, budgets) in QUERIES {
        for (limit, batch_size) in budgets.iter().zip([1000, 8192, 50_000]) {
            let limit = limit * MIB;
            let report = check(data.path(), spill_dir.path(), template, limit, batch_size);
            let Some((windows, kept, loaded, deferred)) = window_counts(&report) else {
                panic!("{template} under {limit}: no key windows\n{report}");
            };
            assert_eq!(
                windows, 30,
                "{template}: one window per row group\n{report}"
            );
            assert!(loaded > 0, "{template}: some windows were loaded\n{report}");
            assert_eq!(kept + loaded + deferred, windows, "{report}");
            // The probe side is never written out.
            assert!(
                !report.contains("join-probe") && deferred == 0,
                "{template}: {report}"
            );
        }
    }
}

#[test]
fn a_window_too_big_to_load_becomes_a_grace_job() {
    let data = tempfile::tempdir().unwrap();
    write_tables(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    for template in [
        "SELECT pri, w, count(*) AS n, sum(v) AS sv, max(c) AS mc FROM {f} JOIN dup ON o = k \
         GROUP BY pri, w",
        "SELECT v, count(*) AS n, max(c) AS mc FROM {f} WHERE o NOT IN (SELECT k FROM dup \
         WHERE k IS NOT NULL AND w < 5) GROUP BY v",
        "SELECT o, v, c, pri FROM {f} LEFT JOIN dup ON o = k",
    ] {
        for batch_size in [1000, 8192] {
            let report = check(data.path(), spill_dir.path(), template, 2 * MIB, batch_size);
            if template.contains("NOT IN") {
                // NOT IN needs the whole build side's NULLs: never by windows.
                assert!(window_counts(&report).is_none(), "{report}");
                continue;
            }
            let (_, _, _, deferred) = window_counts(&report)
                .unwrap_or_else(|| panic!("{template}: no key windows\n{report}"));
            assert!(
                deferred >= 1,
                "{template}: expected a deferred window\n{report}"
            );
            assert!(report.contains("grace_jobs="), "{report}");
        }
    }
}

#[test]
fn a_shuffled_probe_side_keeps_the_hash_partitions() {
    let data = tempfile::tempdir().unwrap();
    write_tables(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let s = session(data.path(), Some(2 * MIB), 8192, spill_dir.path());
    let sql = "SELECT pri, max(c) FROM fact_shuffled JOIN dim ON o = k GROUP BY pri";
    let mut stream = s.sql(sql).unwrap().execute().unwrap();
    let _: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
    let report = stream.report();
    assert!(!report.contains("key_windows"), "{report}");
    assert!(report.contains("spilled"), "{report}");
    let plan = s
        .sql("SELECT pri, max(c) FROM fact JOIN dim ON o = k GROUP BY pri")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(plan.contains("key_windows_by=o"), "{plan}");
    assert!(plan.contains("whole_row_groups_by=o"), "{plan}");
}
