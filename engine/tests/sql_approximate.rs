//! Approximate aggregates end to end: `approx_count_distinct` (HyperLogLog) and
//! `approx_quantile` (t-digest) against exact answers computed here, per group and overall,
//! in memory and under a memory limit small enough that the grouped states spill. DuckDB is
//! no oracle for these (its estimates differ by design), so the checks are error bounds.

mod common;

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::Int64Type;
use common::{batch, mix, write_parquet};

/// `t`: 300,000 rows; `g` = 0..99 (group `g` has about `30 · (g + 1)` distinct `v` values,
/// as strings too), `x` a skewed double.
fn fixture() -> (tempfile::TempDir, Vec<(i64, i64, String, f64)>) {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(i64, i64, String, f64)> = (0..300_000u64)
        .map(|i| {
            let g = (mix(i) % 100) as i64;
            let v = (mix(i ^ 0xabcdef) % (30 * (g as u64 + 1))) as i64 + g * 1_000_000;
            let u = (mix(i.wrapping_add(7)) >> 11) as f64 / (1u64 << 53) as f64;
            (g, v, format!("s{v}"), u * u * 1000.0)
        })
        .collect();
    let t = batch(vec![
        (
            "g",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "v",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ),
        (
            "s",
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.2.as_str()),
            )),
        ),
        (
            "x",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
        ),
    ]);
    write_parquet(&dir.path().join("t.parquet"), &t, 20_000);
    (dir, rows)
}

fn int_rows(session: &ooc_engine::Session, sql: &str) -> Vec<Vec<i64>> {
    let batches = session
        .sql(sql)
        .and_then(|df| df.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in &batches {
        for row in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| c.as_primitive::<Int64Type>().value(row))
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn approx_count_distinct_is_within_a_few_percent_per_group_and_spills() {
    let (dir, rows) = fixture();
    let mut exact = vec![std::collections::HashSet::new(); 100];
    for r in &rows {
        exact[r.0 as usize].insert(r.1);
    }
    let spill = tempfile::tempdir().unwrap();
    for limit in [None, Some(4 << 20)] {
        let s = common::session(dir.path(), limit, 1024, spill.path());
        let got = int_rows(
            &s,
            "SELECT g, approx_count_distinct(v), approx_count_distinct(s), count(DISTINCT v) \
             FROM t GROUP BY g ORDER BY g",
        );
        assert_eq!(got.len(), 100);
        for row in &got {
            let truth = exact[row[0] as usize].len() as f64;
            assert_eq!(row[3] as f64, truth);
            for estimate in [row[1], row[2]] {
                let error = (estimate as f64 - truth).abs() / truth;
                assert!(
                    error < 0.03,
                    "group {}: {estimate} for {truth} ({limit:?})",
                    row[0]
                );
            }
        }
        let all: std::collections::HashSet<i64> = rows.iter().map(|r| r.1).collect();
        if limit.is_some() {
            // The sketches of 100 groups (16 KiB each once dense) do not fit: they spill, and
            // merge back from the spill files.
            let mut stream = s
                .sql("SELECT g, approx_count_distinct(v), approx_count_distinct(s) FROM t GROUP BY g")
                .unwrap()
                .execute()
                .unwrap();
            let rows: usize = stream.by_ref().map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows, 100);
            assert!(
                common::spills(&stream, "HashAggregate") > 0,
                "expected a spill"
            );
        }
        let total = int_rows(&s, "SELECT approx_count_distinct(v) FROM t")[0][0];
        let error = (total as f64 - all.len() as f64).abs() / all.len() as f64;
        assert!(error < 0.03, "{total} for {}", all.len());
    }
}

#[test]
fn approx_quantile_is_close_in_rank_and_keeps_the_type() {
    let (dir, rows) = fixture();
    let mut sorted: Vec<f64> = rows.iter().map(|r| r.3).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = |value: f64| sorted.partition_point(|&v| v < value) as f64 / sorted.len() as f64;
    let spill = tempfile::tempdir().unwrap();
    for limit in [None, Some(4 << 20)] {
        let s = common::session(dir.path(), limit, 1024, spill.path());
        let batches = s
            .sql(
                "SELECT approx_quantile(x, 0.01), approx_quantile(x, 0.5), \
                 approx_quantile(x, 0.99), approx_quantile(x, 0.0), approx_quantile(x, 1.0) \
                 FROM t",
            )
            .and_then(|df| df.collect())
            .unwrap();
        let values: Vec<f64> = batches[0]
            .columns()
            .iter()
            .map(|c| c.as_primitive::<arrow::datatypes::Float64Type>().value(0))
            .collect();
        for (q, v) in [0.01, 0.5, 0.99].into_iter().zip(&values) {
            assert!((rank(*v) - q).abs() < 0.005, "q {q}: {v} ({limit:?})");
        }
        assert_eq!(values[3], sorted[0]);
        assert_eq!(values[4], sorted[sorted.len() - 1]);
        // Per group, an integer argument gives an integer quantile near the exact one.
        let got = int_rows(
            &s,
            "SELECT g, approx_quantile(v, 0.5), quantile_disc(v, 0.5), count(*) FROM t \
             GROUP BY g ORDER BY g",
        );
        for row in got {
            let spread = 30 * (row[0] + 1);
            assert!(
                (row[1] - row[2]).abs() <= spread / 50 + 1,
                "group {}: {} vs exact {}",
                row[0],
                row[1],
                row[2]
            );
        }
    }
    let s = common::session(dir.path(), None, 1024, spill.path());
    let e = s
        .sql("SELECT approx_quantile(s, 0.5) FROM t")
        .and_then(|df| df.collect())
        .unwrap_err();
    assert!(e.to_string().contains("not defined for VARCHAR"), "{e}");
    let e = s
        .sql("SELECT approx_quantile(x, 1.5) FROM t")
        .and_then(|df| df.collect())
        .unwrap_err();
    assert!(e.to_string().contains("between 0 and 1"), "{e}");
}
