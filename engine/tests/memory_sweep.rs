//! Bounded memory: the same queries under budgets of 16, 64 and 256 MiB and three batch sizes
//! give exactly the unlimited answer, spill where the budget is too small to hold their state,
//! and leave the memory pool at zero and the spill directory empty. Also the errors for a spill
//! quota that is exceeded and for a spill directory that cannot be created.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray, StringViewArray,
};
use arrow::datatypes::{Field, Schema};
use ooc_engine::{QueryStream, Session, SessionConfig};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

mod common;

use common::{entries, mix, render, session, spills};

const ROWS: usize = 400_000;
const MIB: usize = 1024 * 1024;

/// `t`: 400,000 rows in 4 files' worth of row groups. `k` has 200,000 distinct values, `s`
/// about 150,000 distinct strings of 14–26 bytes, `v` has NULLs, `d` is DECIMAL(15,2).
fn write_table(dir: &Path) {
    let k: Vec<i64> = (0..ROWS as u64)
        .map(|i| (mix(i) % 200_000) as i64)
        .collect();
    let s: Vec<Option<String>> = (0..ROWS as u64)
        .map(|i| {
            let h = mix(i ^ 0xabcdef);
            (!h.is_multiple_of(97)).then(|| {
                format!(
                    "item-{:08}-{}",
                    (h >> 8) % 150_000,
                    "z".repeat((h % 13) as usize)
                )
            })
        })
        .collect();
    let v: Vec<Option<i64>> = (0..ROWS as u64)
        .map(|i| (!i.is_multiple_of(13)).then(|| (mix(i + 7) % 1_000) as i64 - 500))
        .collect();
    let d: Vec<i128> = (0..ROWS as u64)
        .map(|i| (mix(i + 11) % 10_000_000) as i128)
        .collect();
    let f: Vec<f64> = (0..ROWS as u64)
        .map(|i| (mix(i + 13) % 1000) as f64 / 8.0)
        .collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("k", Arc::new(Int64Array::from(k))),
        ("s", Arc::new(StringArray::from(s))),
        ("v", Arc::new(Int64Array::from(v))),
        (
            "d",
            Arc::new(
                Decimal128Array::from(d)
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
        ),
        ("f", Arc::new(Float64Array::from(f))),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let file = std::fs::File::create(dir.join("t.parquet")).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100_000))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    // A small dimension table for the join.
    let dim = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("dk", arrow::datatypes::DataType::Int64, false),
            Field::new("band", arrow::datatypes::DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..1000)),
            Arc::new(Int64Array::from_iter_values((0..1000).map(|i| i % 7))),
        ],
    )
    .unwrap();
    write_parquet(&dir.join("dim.parquet"), &dim);
}

/// Write `batch` to a Parquet file at `path` with the default writer settings.
fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

struct Case {
    name: &'static str,
    sql: &'static str,
    /// Whether the result order is part of the answer.
    ordered: bool,
    /// Operator expected to spill at 16 MiB.
    spiller: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "group by with many groups",
        sql: "SELECT k, count(*) AS n, sum(v) AS sv, min(s) AS ms, max(d) AS md, avg(f) AS af \
              FROM t GROUP BY k",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "two-key group by with a string key",
        sql: "SELECT k % 1000 AS a, s, count(*) AS n, sum(d) AS sd FROM t GROUP BY 1, 2",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "count distinct",
        sql: "SELECT count(DISTINCT s) AS n FROM t",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "distinct count next to plain counts (n_unique)",
        sql: "SELECT k % 100 AS g, count(DISTINCT s) AS n, count(*) AS r, count(s) AS p \
              FROM t GROUP BY 1",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "distinct counts of several arguments",
        sql: "SELECT k % 100 AS g, count(DISTINCT s) AS ns, count(DISTINCT v) AS nv, \
              count(DISTINCT d) AS nd FROM t GROUP BY 1",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "global distinct counts of several arguments",
        sql: "SELECT count(DISTINCT s) AS ns, count(DISTINCT k) AS nk FROM t",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "distinct sum, average and count beside other aggregates",
        sql: "SELECT k % 100 AS g, sum(DISTINCT v) AS sdv, avg(DISTINCT v) AS adv, \
              count(DISTINCT v) AS ndv, sum(v) AS sv, max(s) AS ms, count(*) AS n \
              FROM t GROUP BY 1",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "global distinct count beside an average (one input copy per aggregate kind)",
        sql: "SELECT count(DISTINCT s) AS ns, sum(DISTINCT k) AS sk, avg(v) AS av, \
              count(*) AS n, min(s) AS ms FROM t",
        ordered: false,
        spiller: Some("HashAggregate"),
    },
    Case {
        name: "full sort",
        sql: "SELECT s, k, v, d, f FROM t ORDER BY s DESC NULLS LAST, k, v NULLS FIRST, d, f",
        ordered: true,
        spiller: Some("Sort"),
    },
    Case {
        name: "top-k of more rows than the budget holds (planned as a sort and a limit)",
        sql: "SELECT s, k, v FROM t ORDER BY s DESC, k, v LIMIT 300000",
        ordered: true,
        spiller: Some("Sort"),
    },
    Case {
        name: "join with an aggregate on top",
        sql: "SELECT band, count(*) AS n, sum(v) AS sv FROM t JOIN dim ON k % 1000 = dk \
              GROUP BY band",
        ordered: false,
        spiller: None,
    },
    Case {
        name: "self join on a key with 200k values (grace hash join)",
        sql: "SELECT a.k % 100 AS g, count(*) AS n, sum(b.v) AS sv, max(b.s) AS ms \
              FROM t a JOIN t b ON a.k = b.k GROUP BY 1",
        ordered: false,
        spiller: Some("HashJoin"),
    },
    Case {
        name: "a common table expression read twice, larger than the budget",
        sql: "WITH x AS (SELECT k, s, v, d FROM t) \
              SELECT a.k % 100 AS g, count(*) AS n, sum(b.v) AS sv, max(a.s) AS ms, \
              sum(b.d) AS sd FROM x a JOIN x b ON a.k = b.k GROUP BY 1",
        ordered: false,
        spiller: Some("Materialize"),
    },
    Case {
        name: "left join whose unmatched rows must survive spilling",
        sql: "SELECT a.k % 10 AS g, count(*) AS n, count(b.v) AS nv, sum(b.v) AS sv \
              FROM t a LEFT JOIN (SELECT k, v, s FROM t WHERE v > 100) b ON a.k = b.k \
              GROUP BY 1",
        ordered: false,
        spiller: None,
    },
];

#[test]
fn budgets_and_batch_sizes_give_the_unlimited_answer() {
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let reference = {
            let s = session(data.path(), None, 8192, spill_dir.path());
            let mut rows = render(&s.sql(case.sql).unwrap().collect().unwrap());
            if !case.ordered {
                rows.sort();
            }
            rows
        };
        assert!(
            reference.len() > 1
                || case.name.contains("count distinct")
                || case.name.starts_with("global")
        );
        for limit in [16 * MIB, 64 * MIB, 256 * MIB] {
            for batch_size in [1000, 8192, 50_000] {
                let label = format!(
                    "{} at {} MiB, batch size {batch_size}",
                    case.name,
                    limit / MIB
                );
                let s = session(data.path(), Some(limit), batch_size, spill_dir.path());
                let mut stream = s.sql(case.sql).unwrap().execute().unwrap();
                let batches: Vec<RecordBatch> = stream
                    .by_ref()
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                let mut rows = render(&batches);
                if !case.ordered {
                    rows.sort();
                }
                assert_eq!(rows.len(), reference.len(), "{label}: row count");
                assert!(
                    rows == reference,
                    "{label}: rows differ from the unlimited run"
                );
                if let (Some(op), 16) = (case.spiller, limit / MIB) {
                    assert!(spills(&stream, op) > 0, "{label}: expected {op} to spill");
                    assert!(stream.peak_spill_bytes() > 0, "{label}");
                }
                assert_eq!(stream.reserved(), 0, "{label}: pool back to zero");
                drop(stream);
                assert!(
                    entries(spill_dir.path()).is_empty(),
                    "{label}: spill files left behind: {:?}",
                    entries(spill_dir.path())
                );
            }
        }
    }
}

/// Largest peak of reserved memory of an operator whose name starts with `prefix`.
fn memory_peak(stream: &QueryStream, prefix: &str) -> u64 {
    stream
        .operator_stats()
        .iter()
        .filter(|op| op.name.starts_with(prefix))
        .map(|op| op.peak_memory)
        .max()
        .unwrap_or(0)
}

/// A top-k holds its k rows, not the string buffers of every batch they were picked from.
#[test]
fn top_k_accounts_for_its_rows_not_their_source_buffers() {
    let data = tempfile::tempdir().unwrap();
    // Strings stored as views (as TPC-H's are), longer than the 12 bytes a view inlines.
    let rows = 200_000u64;
    let batch = RecordBatch::try_from_iter([
        (
            "s",
            Arc::new(StringViewArray::from_iter_values((0..rows).map(|i| {
                format!("a string of some length, number {:08}", mix(i) % 1_000_000)
            }))) as ArrayRef,
        ),
        (
            "v",
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| (mix(i + 1) % 5000) as i64),
            )),
        ),
        ("k", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
    ])
    .unwrap();
    write_parquet(&data.path().join("t.parquet"), &batch);
    let spill_dir = tempfile::tempdir().unwrap();
    let sql = "SELECT s, k, v FROM t ORDER BY v DESC, s LIMIT 20";
    let reference = {
        let s = session(data.path(), None, 8192, spill_dir.path());
        render(
            &s.sql(&sql.replace("LIMIT 20", ""))
                .unwrap()
                .collect()
                .unwrap(),
        )[..20]
            .to_vec()
    };
    for batch_size in [1000, 8192] {
        let s = session(data.path(), Some(16 * MIB), batch_size, spill_dir.path());
        let mut stream = s.sql(sql).unwrap().execute().unwrap();
        let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(render(&batches), reference, "batch size {batch_size}");
        let peak = memory_peak(&stream, "TopK");
        // 20 rows of ~40 bytes, the strings compacted; without compaction this was the
        // buffers of every batch that contributed a row, several MiB.
        assert!(
            peak > 0 && peak < 256 * 1024,
            "batch size {batch_size}: TopK peak {peak} bytes"
        );
    }
}

/// The `name=value` pairs an operator whose name starts with `prefix` reports, anywhere in
/// the plan.
fn extras(stream: &QueryStream, prefix: &str) -> Vec<(String, String)> {
    stream
        .operator_stats()
        .into_iter()
        .filter(|op| op.name.starts_with(prefix))
        .flat_map(|op| op.extra)
        .collect()
}

#[test]
fn a_group_by_on_a_nearly_unique_key_partitions_its_input_straight_to_disk() {
    // (d, k) is nearly unique: a table over it reduces nothing, so once the final aggregate
    // spills, the rest of its input goes straight to the partitions. The answer is unchanged,
    // whatever the batch size, and nothing is left behind.
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let sql = "SELECT d, k, count(*) AS n, sum(v) AS sv, max(s) AS ms FROM t GROUP BY d, k";
    let reference = {
        let s = session(data.path(), None, 8192, spill_dir.path());
        let mut rows = render(&s.sql(sql).unwrap().collect().unwrap());
        rows.sort();
        rows
    };
    assert!(reference.len() > 390_000, "{} groups", reference.len());
    for batch_size in [1000, 8192, 50_000] {
        let s = session(data.path(), Some(16 * MIB), batch_size, spill_dir.path());
        let mut stream = s.sql(sql).unwrap().execute().unwrap();
        let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
        let mut rows = render(&batches);
        rows.sort();
        assert!(rows == reference, "batch size {batch_size}: rows differ");
        let reported = extras(&stream, "HashAggregate(final)");
        assert!(
            reported
                .iter()
                .any(|(k, v)| k == "direct_spill" && v == "yes"),
            "batch size {batch_size}: {reported:?}"
        );
        assert!(spills(&stream, "HashAggregate(final)") > 1);
        assert_eq!(stream.reserved(), 0, "pool back to zero");
        drop(stream);
        assert!(entries(spill_dir.path()).is_empty());
    }
}

#[test]
fn a_spilled_partition_that_fits_is_merged_in_pieces_of_disjoint_keys() {
    // One thread: each of the 64 partitions of the nearly unique (d, k) group-by gets about
    // 6,000 state rows, enough to be merged as two pieces, each in a table of its own.
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let sql = "SELECT d, k, count(*) AS n, sum(v) AS sv, avg(f) AS af FROM t GROUP BY d, k";
    let one_thread = |limit: Option<usize>, batch_size: usize| {
        let config = SessionConfig::default()
            .with_threads(1)
            .with_batch_size(batch_size)
            .with_memory_limit(limit)
            .with_temp_dir(Some(spill_dir.path().to_path_buf()));
        let s = Session::new(config);
        s.register_directory(data.path()).unwrap();
        s
    };
    let mut reference = render(&one_thread(None, 8192).sql(sql).unwrap().collect().unwrap());
    reference.sort();
    for batch_size in [1000, 8192] {
        let s = one_thread(Some(16 * MIB), batch_size);
        let mut stream = s.sql(sql).unwrap().execute().unwrap();
        let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
        let mut rows = render(&batches);
        rows.sort();
        assert!(rows == reference, "batch size {batch_size}: rows differ");
        let reported = extras(&stream, "HashAggregate");
        assert!(
            reported
                .iter()
                .any(|(k, v)| k == "partitions_merged_in_pieces" && v.parse::<u64>().unwrap() > 0),
            "batch size {batch_size}: {reported:?}"
        );
        assert_eq!(stream.reserved(), 0, "pool back to zero");
        drop(stream);
        assert!(entries(spill_dir.path()).is_empty());
    }
}

#[test]
fn a_large_table_of_nearly_unique_keys_spills_before_the_budget_is_reached() {
    // 600,000 distinct keys with five aggregates make a table of well over 64 MiB. Under a
    // 1 GiB budget it would fit, but growing it would gain nothing: it spills and partitions
    // the rest straight to disk, with the same answer as the unlimited (in-memory) run.
    let data = tempfile::tempdir().unwrap();
    let n = 600_000u64;
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("k", arrow::datatypes::DataType::Int64, false),
            Field::new("v", arrow::datatypes::DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| (mix(i) >> 1) as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| (i % 1000) as i64),
            )),
        ],
    )
    .unwrap();
    write_parquet(&data.path().join("u.parquet"), &batch);
    let spill_dir = tempfile::tempdir().unwrap();
    let sql = "SELECT k, count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi \
               FROM u GROUP BY k";
    let mut reference = render(
        &session(data.path(), None, 8192, spill_dir.path())
            .sql(sql)
            .unwrap()
            .collect()
            .unwrap(),
    );
    reference.sort();
    assert_eq!(reference.len(), n as usize);
    let s = session(data.path(), Some(1024 * MIB), 8192, spill_dir.path());
    let mut stream = s.sql(sql).unwrap().execute().unwrap();
    let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
    let mut rows = render(&batches);
    rows.sort();
    assert!(rows == reference, "rows differ from the unlimited run");
    let reported = extras(&stream, "HashAggregate(final)");
    assert!(
        reported
            .iter()
            .any(|(k, v)| k == "direct_spill" && v == "yes"),
        "{reported:?}"
    );
    assert_eq!(stream.reserved(), 0, "pool back to zero");
    drop(stream);
    assert!(entries(spill_dir.path()).is_empty());
}

/// A group-by that spills rows of a join output straight to disk counts the strings those
/// rows reference, not the whole build-side buffer every batch's views point into: counted
/// that way, every batch filled the buffer on its own and became a spill round of its own.
#[test]
fn direct_spilling_counts_the_strings_rows_reference_not_shared_buffers() {
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    // A 200,000-row dimension with 40-byte labels: smaller than `t`, so the join's build side,
    // whose label buffer (about 8 MB) every probe output batch points into.
    let rows = 200_000i64;
    let dim = RecordBatch::try_from_iter([
        (
            "dk",
            Arc::new(Int64Array::from_iter_values(0..rows)) as ArrayRef,
        ),
        (
            "label",
            Arc::new(StringViewArray::from_iter_values(
                (0..rows).map(|i| format!("label of dimension row number {i:010}")),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    write_parquet(&data.path().join("wide_dim.parquet"), &dim);
    let spill_dir = tempfile::tempdir().unwrap();
    let sql = "SELECT label, v, count(*) AS n FROM t JOIN wide_dim ON k = dk GROUP BY label, v";
    let reference = {
        let s = session(data.path(), None, 8192, spill_dir.path());
        let mut rows = render(&s.sql(sql).unwrap().collect().unwrap());
        rows.sort();
        rows
    };
    assert!(reference.len() > 300_000, "{} groups", reference.len());
    let s = session(data.path(), Some(16 * MIB), 8192, spill_dir.path());
    let mut stream = s.sql(sql).unwrap().execute().unwrap();
    let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
    let mut got = render(&batches);
    got.sort();
    assert!(got == reference, "rows differ from the unlimited run");
    let reported = extras(&stream, "HashAggregate(final)");
    assert!(
        reported
            .iter()
            .any(|(k, v)| k == "direct_spill" && v == "yes"),
        "{reported:?}"
    );
    // 400,000 input rows in about 50 batches of 8192: counting each batch's shared label
    // buffer made about one round per batch (47); counting what the rows reference, 22.
    let rounds = spills(&stream, "HashAggregate(final)");
    assert!(
        (1..=32).contains(&rounds),
        "{rounds} spill rounds for about 25 MB of state rows"
    );
    assert_eq!(stream.reserved(), 0, "pool back to zero");
}

#[test]
fn spill_quota_exceeded_is_a_named_error_and_leaves_nothing() {
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let config = SessionConfig::default()
        .with_threads(2)
        .with_memory_limit(Some(16 * MIB))
        .with_temp_dir(Some(spill_dir.path().to_path_buf()))
        .with_max_temp_size(Some(256 * 1024));
    let s = Session::new(config);
    s.register_directory(data.path()).unwrap();
    for sql in [
        "SELECT s, k, v FROM t ORDER BY s, k, v",
        "SELECT k, count(*), min(s) FROM t GROUP BY k",
    ] {
        let err = s.sql(sql).unwrap().collect().unwrap_err().to_string();
        assert!(err.contains("quota"), "{sql}: {err}");
        // The setting is named as the library calls it, never by a CLI flag.
        assert!(err.contains("max_temp_size"), "{sql}: {err}");
        assert!(!err.contains("--"), "{sql}: {err}");
        assert!(
            entries(spill_dir.path()).is_empty(),
            "{sql}: left behind {:?}",
            entries(spill_dir.path())
        );
    }
}

#[test]
fn unusable_spill_directory_is_a_named_error() {
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    // A regular file where the spill directory should be: creating anything under it fails,
    // also for root (which ignores permission bits).
    let not_a_dir = data.path().join("t.parquet");
    let config = SessionConfig::default()
        .with_threads(2)
        .with_memory_limit(Some(16 * MIB))
        .with_temp_dir(Some(not_a_dir.clone()));
    let s = Session::new(config);
    s.register_directory(data.path()).unwrap();
    let err = s
        .sql("SELECT s, k FROM t ORDER BY s, k")
        .unwrap()
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("spill"), "{err}");
    assert!(err.contains(&not_a_dir.display().to_string()), "{err}");
    // A query that fits in memory never touches the spill directory.
    let rows = s.sql("SELECT count(*) FROM t").unwrap().collect().unwrap();
    assert_eq!(render(&rows), vec![ROWS.to_string()]);
}

#[test]
fn too_small_a_budget_is_a_named_error_and_joins_without_keys_spill() {
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    // A budget below one batch of the scan: nothing can make room for it.
    let tiny = session(data.path(), Some(4096), 8192, spill_dir.path());
    let err = tiny
        .sql("SELECT k, count(*) FROM t GROUP BY k")
        .unwrap()
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("4096"), "names the budget: {err}");
    assert!(err.contains("HashAggregate"), "names the operator: {err}");
    assert!(entries(spill_dir.path()).is_empty());
    let s = session(data.path(), Some(2 * MIB), 8192, spill_dir.path());
    let unlimited = session(data.path(), None, 8192, spill_dir.path());
    // The build side of a nested loop join (a join on no equality; a left join builds its
    // right side) that does not fit is written out and joined block by block, and the
    // probe rows without a match over all blocks are kept once.
    let sql = "SELECT count(*) AS n, count(b.v) AS nv, sum(b.v) AS sv, max(b.s) AS ms \
               FROM (SELECT v AS w FROM t WHERE k < 5) a LEFT JOIN t b ON b.v < a.w - 900";
    let reference = render(&unlimited.sql(sql).unwrap().collect().unwrap());
    let mut stream = s.sql(sql).unwrap().execute().unwrap();
    let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(render(&batches), reference, "{sql}");
    assert!(spills(&stream, "NestedLoopJoin") > 0, "{sql}: no spill");
    assert_eq!(stream.reserved(), 0);
    drop(stream);
    assert!(entries(spill_dir.path()).is_empty());
    // Distinct aggregates, alone or beside others, are rewritten into group-bys that spill:
    // the same budget is enough.
    for sql in [
        "SELECT count(DISTINCT s) AS ns, count(DISTINCT k) AS nk FROM t",
        "SELECT count(DISTINCT s) AS ns, sum(v) AS sv FROM t",
        "SELECT count(DISTINCT s) AS ns, avg(DISTINCT v) AS av, avg(k) AS ak FROM t",
    ] {
        let reference = render(&unlimited.sql(sql).unwrap().collect().unwrap());
        assert_eq!(
            render(&s.sql(sql).unwrap().collect().unwrap()),
            reference,
            "{sql}"
        );
        assert!(entries(spill_dir.path()).is_empty());
    }
}

/// A budget smaller than one input batch: the sort writes each such batch out as a run of
/// its own and merges them, instead of failing.
#[test]
fn sort_with_a_budget_below_one_batch_spills_each_batch() {
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let sql = "SELECT s, k, v FROM t ORDER BY s DESC NULLS LAST, k, v";
    let reference = render(
        &session(data.path(), None, 50_000, spill_dir.path())
            .sql(sql)
            .unwrap()
            .collect()
            .unwrap(),
    );
    // A 50,000-row batch of these columns is about 2 MiB.
    let s = session(data.path(), Some(MIB), 50_000, spill_dir.path());
    let mut stream = s.sql(sql).unwrap().execute().unwrap();
    let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(
        render(&batches) == reference,
        "rows differ from the unlimited run"
    );
    assert!(spills(&stream, "Sort") >= 8, "each batch is a run");
    assert_eq!(stream.reserved(), 0);
    drop(stream);
    assert!(entries(spill_dir.path()).is_empty());
}

/// Queries run at the same time from several threads with one shared budget: each holds at
/// most its share (the budget over the queries running), so together they stay near the
/// budget where six separate budgets would allow six times as much; every answer is the
/// unlimited one, and the budget is back to no query and no byte afterwards.
#[test]
fn concurrent_queries_share_one_budget() {
    let data = tempfile::tempdir().unwrap();
    write_table(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| c.spiller.is_some())
        .take(6)
        .collect();
    let references: Vec<Vec<String>> = cases
        .iter()
        .map(|case| {
            let s = session(data.path(), None, 8192, spill_dir.path());
            let mut rows = render(&s.sql(case.sql).unwrap().collect().unwrap());
            rows.sort();
            rows
        })
        .collect();
    let limit = 32 * MIB;
    let config = SessionConfig::default()
        .with_threads(2)
        .with_shared_memory_limit(Some(limit))
        .with_temp_dir(Some(spill_dir.path().to_path_buf()));
    let budget = Arc::clone(config.memory_budget.as_ref().unwrap());
    let session = Session::new(config);
    session.register_directory(data.path()).unwrap();
    let spilled: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .zip(&references)
            .map(|(case, reference)| {
                let session = &session;
                scope.spawn(move || {
                    let mut stream = session.sql(case.sql).unwrap().execute().unwrap();
                    let batches: Vec<RecordBatch> = stream
                        .by_ref()
                        .collect::<Result<_, _>>()
                        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                    let mut rows = render(&batches);
                    rows.sort();
                    assert!(rows == *reference, "{}: rows differ", case.name);
                    stream.peak_spill_bytes()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        spilled.iter().any(|&b| b > 0),
        "no query spilled: {spilled:?}"
    );
    let peak = budget.peak_reserved();
    eprintln!("six queries under one {limit}-byte budget held at most {peak} bytes together");
    assert!(
        peak <= limit + limit / 2,
        "the queries held {peak} bytes together, against a shared budget of {limit}"
    );
    assert_eq!((budget.active_queries(), budget.reserved()), (0, 0));
    assert!(entries(spill_dir.path()).is_empty());
}
