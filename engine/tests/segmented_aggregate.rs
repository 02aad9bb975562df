//! Group-bys on a key whose row groups hold disjoint ranges (data written in key order) run
//! row group by row group, in a single phase: the answers equal those of the same rows in
//! random order (which take the two-phase path), whatever the budget and batch size, including
//! keys split across row groups, row groups that a filter empties at run time, row groups
//! pruned before the scan, and segments that spill.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

mod common;

use common::{entries, mix, session, spills};

const ROWS: usize = 300_000;

/// Every row as text, sorted.
fn render(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = common::render(batches);
    rows.sort();
    rows
}
const ROW_GROUP_ROWS: usize = 50_000;
const MIB: usize = 1024 * 1024;

/// The same 300,000 rows twice: `sorted` in key order (`o` ascending, 1–3 rows a key, so
/// row groups of 50,000 rows split keys at their boundaries; `day` ascending too), and
/// `shuffled` in random order. In the fourth row group `v` is NULL throughout.
fn write_tables(dir: &Path) {
    let mut o = Vec::with_capacity(ROWS);
    let mut key = 0i64;
    while o.len() < ROWS {
        key += 1 + (mix(key as u64) % 3) as i64;
        for _ in 0..1 + mix(key as u64 ^ 77) % 3 {
            o.push(key);
        }
    }
    o.truncate(ROWS);
    let n = ROWS as u64;
    let p: Vec<i64> = (0..n).map(|i| (mix(i + 1) % 5) as i64).collect();
    let v: Vec<Option<i64>> = (0..ROWS)
        .map(|i| {
            let in_null_group = (3 * ROW_GROUP_ROWS..4 * ROW_GROUP_ROWS).contains(&i);
            (!in_null_group && i % 11 != 0).then(|| (mix(i as u64 + 5) % 1000) as i64 - 400)
        })
        .collect();
    let d: Vec<i128> = (0..n).map(|i| (mix(i + 9) % 1_000_000) as i128).collect();
    let s: Vec<String> = (0..n)
        .map(|i| format!("s{:06}", mix(i + 3) % 100_000))
        .collect();
    let day: Vec<i32> = (0..ROWS).map(|i| 10_000 + (i / 1_500) as i32).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("o", Arc::new(Int64Array::from(o))),
        ("p", Arc::new(Int64Array::from(p))),
        ("v", Arc::new(Int64Array::from(v))),
        (
            "d",
            Arc::new(
                Decimal128Array::from(d)
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
        ),
        ("s", Arc::new(StringArray::from(s))),
        ("day", Arc::new(Date32Array::from(day))),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let sorted =
        RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut order: Vec<u32> = (0..ROWS as u32).collect();
    order.sort_by_key(|&i| mix(u64::from(i) ^ 0x5eed));
    let shuffled = arrow::compute::take_record_batch(&sorted, &UInt32Array::from(order)).unwrap();
    for (name, batch) in [("sorted", &sorted), ("shuffled", &shuffled)] {
        let file = std::fs::File::create(dir.join(format!("{name}.parquet"))).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
    }
}

/// Queries over `{t}`, run on both tables.
const QUERIES: &[&str] = &[
    "SELECT o, count(*) AS n, sum(v) AS sv, avg(v) AS av, min(s) AS ms, max(d) AS md \
     FROM {t} GROUP BY o",
    // Two keys; the segmenting one second.
    "SELECT p, o, count(*) AS n, sum(d) AS sd FROM {t} GROUP BY p, o",
    // A filter that empties the fourth row group at run time (it cannot be pruned).
    "SELECT o, count(*) AS n, sum(v) AS sv FROM {t} WHERE v + 0 > -1000 GROUP BY o",
    // Row groups pruned by statistics before the scan.
    "SELECT o, count(*) AS n FROM {t} WHERE o < 75000 OR o > 175000 GROUP BY o",
    // A date key, renamed by a subquery; HAVING above.
    "SELECT dd, count(*) AS n, sum(p) AS sp FROM (SELECT day AS dd, p FROM {t}) x \
     GROUP BY dd HAVING count(*) > 1",
    // A distinct count: the group-by on (o, p) it becomes is segmented.
    "SELECT o, count(DISTINCT p) AS np, count(*) AS n FROM {t} GROUP BY o",
];

#[test]
fn segmented_group_by_equals_the_two_phase_answer() {
    let data = tempfile::tempdir().unwrap();
    write_tables(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    for template in QUERIES {
        let sorted_sql = template.replace("{t}", "sorted");
        let shuffled_sql = template.replace("{t}", "shuffled");
        let reference = {
            let s = session(data.path(), None, 8192, spill_dir.path());
            let frame = s.sql(&shuffled_sql).unwrap();
            let plan = frame.explain(false).unwrap();
            assert!(
                !plan.contains("per_row_group_of"),
                "{shuffled_sql}: the shuffled table is not segmented:\n{plan}"
            );
            render(&frame.collect().unwrap())
        };
        assert!(
            reference.len() > 100,
            "{sorted_sql}: {} rows",
            reference.len()
        );
        for limit in [None, Some(16 * MIB), Some(64 * MIB)] {
            for batch_size in [1000, 8192, 50_000] {
                let label = format!("{sorted_sql} at {limit:?}, batch size {batch_size}");
                let s = session(data.path(), limit, batch_size, spill_dir.path());
                let mut stream = s.sql(&sorted_sql).unwrap().execute().unwrap();
                let batches: Vec<RecordBatch> = stream
                    .by_ref()
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                let plan = stream.plan_text();
                assert!(
                    plan.contains("per_row_group_of"),
                    "{label}: expected a segmented aggregate:\n{plan}"
                );
                let rows = render(&batches);
                assert_eq!(rows.len(), reference.len(), "{label}: row count");
                assert!(
                    rows == reference,
                    "{label}: rows differ from the two-phase run"
                );
                assert_eq!(stream.reserved(), 0, "{label}: pool back to zero");
                drop(stream);
                assert_eq!(
                    entries(spill_dir.path()).len(),
                    0,
                    "{label}: spill files left"
                );
            }
        }
    }
}

#[test]
fn a_segment_too_large_for_the_budget_spills_and_is_merged_before_the_next() {
    // About 25,000 groups a row group with two string states and a decimal one: more than a
    // 4 MiB budget's share, so every segment spills (straight to its partitions, the key being
    // nearly unique) and is merged before the next one starts.
    let data = tempfile::tempdir().unwrap();
    write_tables(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let sql = "SELECT o, count(*) AS n, min(s) AS ms, max(s) AS xs, sum(d) AS sd FROM {t} \
               GROUP BY o";
    let reference = {
        let s = session(data.path(), None, 8192, spill_dir.path());
        render(
            &s.sql(&sql.replace("{t}", "shuffled"))
                .unwrap()
                .collect()
                .unwrap(),
        )
    };
    for batch_size in [1000, 8192] {
        let s = session(data.path(), Some(4 * MIB), batch_size, spill_dir.path());
        let mut stream = s
            .sql(&sql.replace("{t}", "sorted"))
            .unwrap()
            .execute()
            .unwrap();
        let batches: Vec<RecordBatch> = stream.by_ref().collect::<Result<_, _>>().unwrap();
        assert!(
            stream.plan_text().contains("per_row_group_of=o"),
            "batch size {batch_size}: not segmented"
        );
        assert!(
            render(&batches) == reference,
            "batch size {batch_size}: rows differ"
        );
        assert!(
            spills(&stream, "HashAggregate") >= 6,
            "batch size {batch_size}: expected each segment to spill, got {}",
            spills(&stream, "HashAggregate")
        );
        assert_eq!(stream.reserved(), 0, "pool back to zero");
        drop(stream);
        assert_eq!(entries(spill_dir.path()).len(), 0, "spill files left");
    }
}

#[test]
fn overlapping_ranges_or_a_computed_key_keep_the_two_phase_plan() {
    let data = tempfile::tempdir().unwrap();
    write_tables(data.path());
    let spill_dir = tempfile::tempdir().unwrap();
    let s = session(data.path(), None, 8192, spill_dir.path());
    for sql in [
        // `p` takes five values in every row group.
        "SELECT p, count(*) FROM sorted GROUP BY p",
        // A computed key.
        "SELECT o + 1 AS k, count(*) FROM sorted GROUP BY 1",
    ] {
        let plan = s.sql(sql).unwrap().explain(false).unwrap();
        assert!(!plan.contains("per_row_group_of"), "{sql}:\n{plan}");
        assert!(!plan.contains("whole_row_groups_by"), "{sql}:\n{plan}");
    }
    let plan = s
        .sql("SELECT o, count(*) FROM sorted GROUP BY o")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(plan.contains("whole_row_groups_by=o"), "{plan}");
}
