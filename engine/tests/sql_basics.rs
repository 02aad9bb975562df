//! End-to-end SQL tests on small hand-written Parquet files: every operator, NULL semantics,
//! pruning and error messages, with exact expected results.

mod common;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use ooc_engine::{EngineError, Session, SessionConfig};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

fn write_parquet(path: &std::path::Path, batch: &RecordBatch, row_group_rows: usize) {
    let file = std::fs::File::create(path).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// A table `t` of 1000 rows: id 0..999, k = id % 7 (NULL when id % 10 == 0), price decimal,
/// name strings, d dates, x floats.
fn fixture() -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let ids: Vec<i64> = (0..n).collect();
    let k: Vec<Option<i32>> = ids
        .iter()
        .map(|&i| {
            if i % 10 == 0 {
                None
            } else {
                Some((i % 7) as i32)
            }
        })
        .collect();
    let price: Vec<i128> = ids.iter().map(|&i| i as i128 * 125).collect(); // i * 1.25
    let names: Vec<Option<String>> = ids
        .iter()
        .map(|&i| {
            if i % 13 == 0 {
                None
            } else {
                Some(format!("Name{:03}", i % 50))
            }
        })
        .collect();
    let dates: Vec<i32> = ids.iter().map(|&i| 10_000 + i as i32).collect();
    let x: Vec<f64> = ids.iter().map(|&i| i as f64 / 4.0).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int32, true),
        Field::new("price", DataType::Decimal128(15, 2), false),
        Field::new("name", DataType::Utf8, true),
        Field::new("d", DataType::Date32, false),
        Field::new("x", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(Int32Array::from(k)),
        Arc::new(
            Decimal128Array::from(price)
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from(names)),
        Arc::new(Date32Array::from(dates)),
        Arc::new(Float64Array::from(x)),
    ];
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    write_parquet(&dir.path().join("t.parquet"), &batch, 100);
    let session = Session::new(SessionConfig::default().with_threads(2).with_batch_size(64));
    session.register_directory(dir.path()).unwrap();
    (dir, session)
}

/// Run a query and render every row as `a|b|c` text.
fn rows(session: &Session, sql: &str) -> Vec<String> {
    let batches = session
        .sql(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    common::render(&batches)
}

fn error(session: &Session, sql: &str) -> EngineError {
    match session.sql(sql).and_then(|df| df.collect()) {
        Ok(_) => panic!("expected an error for {sql}"),
        Err(e) => e,
    }
}

#[test]
fn global_aggregates() {
    let (_dir, s) = fixture();
    assert_eq!(
        rows(
            &s,
            "SELECT count(*), count(k), sum(price), min(id), max(name), avg(x) FROM t"
        ),
        vec!["1000|900|624375.00|0|Name049|124.875"]
    );
}

/// Several scalar subqueries in one condition go where the condition's columns are: the first
/// was attached to the first FROM relation and the condition, on another, could not see its
/// value (TPC-DS 54: "column 'sq1.value0' not found").
#[test]
fn scalar_subqueries_of_one_condition_join_the_same_relation() {
    let (_dir, s) = fixture();
    assert_eq!(
        rows(
            &s,
            "SELECT count(*) FROM t a, t b WHERE a.id = b.id \
             AND b.id BETWEEN (SELECT min(id) + 10 FROM t) AND (SELECT min(id) + 19 FROM t)"
        ),
        vec!["10"]
    );
}

/// A condition without columns over an aggregate without GROUP BY filters its one row; it was
/// pushed below the aggregate, which then returned a row of zeros (found by the optimizer's
/// unit tests).
#[test]
fn a_constant_condition_over_a_global_aggregate_filters_its_row() {
    let (_dir, s) = fixture();
    assert!(rows(&s, "SELECT count(*) FROM t HAVING 1 = 0").is_empty());
    assert!(rows(
        &s,
        "SELECT * FROM (SELECT count(*) AS n FROM t) x WHERE 1 = 0"
    )
    .is_empty());
    assert_eq!(
        rows(&s, "SELECT count(*) FROM t HAVING 1 = 1"),
        vec!["1000"]
    );
    // Grouped, the condition may go below the aggregate: no input row, no group.
    assert!(rows(&s, "SELECT k, count(*) FROM t GROUP BY k HAVING 1 = 0").is_empty());
}

#[test]
fn group_by_with_nulls_and_order() {
    let (_dir, s) = fixture();
    let got = rows(
        &s,
        "SELECT k, count(*) AS n FROM t GROUP BY k ORDER BY k NULLS FIRST",
    );
    assert_eq!(got[0], "NULL|100");
    assert_eq!(got.len(), 8);
    let total: i64 = got
        .iter()
        .map(|r| r.split('|').nth(1).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 1000);
    let desc = rows(&s, "SELECT k, count(*) FROM t GROUP BY 1 ORDER BY 1 DESC");
    assert_eq!(
        desc.last().unwrap(),
        "NULL|100",
        "DESC puts NULLs last by default (like DuckDB)"
    );
}

#[test]
fn filters_three_valued_logic() {
    let (_dir, s) = fixture();
    // k = NULL rows are neither in k = 3 nor in NOT (k = 3).
    let a = rows(&s, "SELECT count(*) FROM t WHERE k = 3");
    let b = rows(&s, "SELECT count(*) FROM t WHERE NOT (k = 3)");
    let a: i64 = a[0].parse().unwrap();
    let b: i64 = b[0].parse().unwrap();
    assert_eq!(a + b, 900);
    assert_eq!(
        rows(&s, "SELECT count(*) FROM t WHERE k IN (1, NULL)"),
        rows(&s, "SELECT count(*) FROM t WHERE k = 1")
    );
    assert_eq!(
        rows(&s, "SELECT count(*) FROM t WHERE k NOT IN (1, NULL)"),
        vec!["0"]
    );
    assert_eq!(
        rows(&s, "SELECT count(*) FROM t WHERE k IS NULL OR k > 5"),
        vec!["228"]
    );
}

#[test]
fn expressions_and_functions() {
    let (_dir, s) = fixture();
    assert_eq!(
        rows(&s, "SELECT id, price * 2 + 1, upper(name), length(name), substring(name, 2, 3), CASE WHEN k > 3 THEN 'big' WHEN k IS NULL THEN 'none' ELSE 'small' END, coalesce(k, -1), extract(year from d), d + interval '1' month FROM t WHERE id IN (7, 10) ORDER BY id"),
        vec![
            "7|18.50|NAME007|7|ame|small|0|1997|1997-06-26",
            "10|26.00|NAME010|7|ame|none|-1|1997|1997-06-29",
        ]
    );
    assert_eq!(
        rows(&s, "SELECT 1 / 0, 7 % 0, 10 / 4, CAST('12' AS INTEGER) + 1"),
        vec!["inf|NULL|2.5|13"]
    );
    assert_eq!(
        rows(
            &s,
            "SELECT count(*) FROM t WHERE name LIKE 'Name00%' AND name ILIKE 'name001'"
        ),
        vec!["19"]
    );
}

#[test]
fn sort_topk_limit_offset_distinct() {
    let (_dir, s) = fixture();
    assert_eq!(
        rows(&s, "SELECT id FROM t ORDER BY id DESC LIMIT 3"),
        vec!["999", "998", "997"]
    );
    assert_eq!(
        rows(&s, "SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 5"),
        vec!["5", "6"]
    );
    assert_eq!(
        rows(&s, "SELECT id FROM t ORDER BY x * -1 LIMIT 1"),
        vec!["999"]
    );
    assert_eq!(
        rows(&s, "SELECT count(*) FROM (SELECT DISTINCT k FROM t) sub"),
        vec!["8"]
    );
    assert_eq!(rows(&s, "SELECT id FROM t LIMIT 4").len(), 4);
    let sorted = rows(
        &s,
        "SELECT name, id FROM t ORDER BY name NULLS FIRST, id DESC",
    );
    assert_eq!(sorted.len(), 1000);
    assert!(sorted[0].starts_with("NULL|"));
}

#[test]
fn full_sorts_key_on_select_list_columns_without_hidden_copies() {
    let (_dir, s) = fixture();
    // k is NULL when id % 10 == 0, else id % 7; d grows with id.
    let key = |id: i64| ((id % 10 != 0).then_some(id % 7), -id);
    let mut expected: Vec<i64> = (0..1000).collect();
    expected.sort_by_key(|&id| key(id));
    for sql in [
        "SELECT * FROM t ORDER BY k NULLS FIRST, d DESC",
        "SELECT * FROM t ORDER BY t.k NULLS FIRST, t.d DESC",
        "SELECT t.* FROM t ORDER BY k NULLS FIRST, d DESC",
    ] {
        let plan = s.sql(sql).unwrap().explain(false).unwrap();
        assert!(
            !plan.contains("#sort"),
            "{sql}: a key copied through the sort\n{plan}"
        );
        let ids: Vec<i64> = rows(&s, sql)
            .iter()
            .map(|r| r.split('|').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, expected, "{sql}");
    }
    // An aliased column is still the same column.
    let plan = s
        .sql("SELECT id AS i, name FROM t ORDER BY id DESC")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(!plan.contains("#sort"), "{plan}");
    assert_eq!(
        rows(&s, "SELECT id AS i FROM t ORDER BY id DESC LIMIT 2"),
        vec!["999", "998"]
    );
    // A key outside the select list is carried as a hidden column and dropped after.
    let hidden = rows(&s, "SELECT id FROM t ORDER BY d DESC");
    assert_eq!(hidden.len(), 1000);
    assert_eq!(hidden[0], "999");
}

#[test]
fn having_ctes_and_derived_tables() {
    let (_dir, s) = fixture();
    assert_eq!(
        rows(&s, "WITH g AS (SELECT k, sum(price) AS total FROM t WHERE k IS NOT NULL GROUP BY k) SELECT k FROM g WHERE total > 90000 ORDER BY total DESC"),
        rows(&s, "SELECT k FROM t WHERE k IS NOT NULL GROUP BY k HAVING sum(price) > 90000 ORDER BY sum(price) DESC")
    );
    assert_eq!(
        rows(&s, "SELECT count(DISTINCT name), count(DISTINCT k) FROM t"),
        vec!["50|7"]
    );
    // A single distinct argument is rewritten into two group-bys; same answer as by hand.
    assert_eq!(rows(&s, "SELECT count(DISTINCT name) FROM t"), vec!["50"]);
    assert_eq!(
        rows(&s, "SELECT k, count(DISTINCT name) AS n FROM t GROUP BY k ORDER BY k NULLS FIRST"),
        rows(&s, "SELECT k, count(name) AS n FROM (SELECT DISTINCT k, name FROM t) d GROUP BY k ORDER BY k NULLS FIRST")
    );
    let plan = s
        .sql("SELECT k, count(DISTINCT name) FROM t GROUP BY k")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(
        plan.contains("name AS #distinct0") && plan.contains("group_by=[t.k, #distinct0]"),
        "{plan}"
    );
    // Several distinct arguments beside an average: each argument's copy is grouped by the
    // group key and that argument only, and the answer is the one computed by hand.
    let sql = "SELECT k, count(DISTINCT name) AS names, sum(DISTINCT id % 5) AS residues, \
               avg(price) AS mean, count(*) AS n FROM t GROUP BY k ORDER BY k NULLS FIRST";
    let plan = s.sql(sql).unwrap().explain(false).unwrap();
    assert!(
        plan.contains("group_by=[t.k, #distinct0] aggregates=[]")
            && plan.contains("group_by=[t.k, #distinct1] aggregates=[]")
            && !plan.contains("#distinct0, #distinct1]"),
        "{plan}"
    );
    let by_hand = "SELECT a.k, a.names, b.residues, c.mean, c.n \
         FROM (SELECT k, count(name) AS names FROM (SELECT DISTINCT k, name FROM t) x GROUP BY k) a \
         JOIN (SELECT k, sum(r) AS residues FROM (SELECT DISTINCT k, id % 5 AS r FROM t) y GROUP BY k) b \
           ON a.k = b.k OR (a.k IS NULL AND b.k IS NULL) \
         JOIN (SELECT k, avg(price) AS mean, count(*) AS n FROM t GROUP BY k) c \
           ON a.k = c.k OR (a.k IS NULL AND c.k IS NULL) \
         ORDER BY a.k NULLS FIRST";
    let expected = rows(&s, by_hand);
    assert_eq!(expected.len(), 8);
    assert_eq!(rows(&s, sql), expected);
}

#[test]
fn pruning_skips_row_groups() {
    let (_dir, s) = fixture();
    let plan = s
        .sql("SELECT count(*) FROM t WHERE id >= 950")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(plan.contains("row_groups=1/10"), "{plan}");
    let plan = s
        .sql("SELECT count(*) FROM t WHERE id BETWEEN 120 AND 130 OR id IN (999)")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(plan.contains("row_groups=2/10"), "{plan}");
    let analyzed = s
        .sql("SELECT id FROM t ORDER BY id DESC LIMIT 5")
        .unwrap()
        .explain(true)
        .unwrap();
    assert!(analyzed.contains("morsels_skipped_dynamic"), "{analyzed}");
}

#[test]
fn page_statistics_skip_pages() {
    // One row group of 1,000 rows in pages of 100: `id` ascending, `k` = id % 7 everywhere.
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<i64> = (0..1000).collect();
    let k: Vec<i64> = ids.iter().map(|i| i % 7).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Int64Array::from(k)),
        ],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_data_page_row_count_limit(100)
        .set_write_batch_size(100)
        .build();
    let file = std::fs::File::create(dir.path().join("p.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let s = Session::new(SessionConfig::default().with_threads(2).with_batch_size(64));
    s.register_directory(dir.path()).unwrap();
    let cases = [
        ("id BETWEEN 250 AND 420 AND k = 3", "pages=6/20", "24|8052"),
        ("id = 425", "pages=1/10", "1|425"),
        ("id < 100 OR id >= 990", "pages=2/10", "110|14895"),
        ("id > 300 AND id < 250", "pages=0/10", "0|NULL"),
    ];
    for (condition, pages, answer) in cases {
        let sql = format!("SELECT count(*), sum(id) FROM p WHERE {condition}");
        let plan = s.sql(&sql).unwrap().explain(false).unwrap();
        assert!(plan.contains(pages), "{condition}: {plan}");
        assert_eq!(rows(&s, &sql), vec![answer.to_string()], "{condition}");
    }
}

#[test]
fn selective_filters_decode_the_other_columns_late() {
    // 200,000 rows in row groups of 20,000: `id`, `k` = id % 100, a string per row.
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<i64> = (0..200_000).collect();
    let k: Vec<i64> = ids.iter().map(|i| i % 100).collect();
    let text: Vec<String> = ids.iter().map(|i| format!("comment {i}")).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("t", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Int64Array::from(k)),
            Arc::new(arrow::array::StringArray::from(text)),
        ],
    )
    .unwrap();
    // `t` stored as bytes, as the writer does for strings with many distinct values.
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(20_000))
        .set_column_dictionary_enabled("t".into(), false)
        .build();
    let file = std::fs::File::create(dir.path().join("w.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let s = Session::new(SessionConfig::default().with_threads(2));
    s.register_directory(dir.path()).unwrap();
    let late_morsels = |analyzed: &str| -> usize {
        analyzed
            .split("morsels_late_materialized=")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // 1% of the rows pass, and the strings are worth skipping: once the filter has seen a
    // batch every morsel is read late (the first of each of the two threads is read whole).
    let sql = "SELECT count(*), sum(id), min(t), max(t) FROM w WHERE k = 42";
    assert_eq!(
        rows(&s, sql),
        vec!["2000|199984000|comment 100042|comment 99942".to_string()]
    );
    let analyzed = s.sql(sql).unwrap().explain(true).unwrap();
    assert!(analyzed.contains("late_filter=[k]"), "{analyzed}");
    assert!((8..=9).contains(&late_morsels(&analyzed)), "{analyzed}");
    // Nothing but numbers to read late: every morsel is read whole.
    let sql = "SELECT count(*), sum(id) FROM w WHERE k = 42";
    let analyzed = s.sql(sql).unwrap().explain(true).unwrap();
    assert_eq!(late_morsels(&analyzed), 0, "{analyzed}");
    assert_eq!(rows(&s, sql), vec!["2000|199984000".to_string()]);
    // 90% pass: the scan reads whole morsels and filters them.
    let sql = "SELECT count(*), sum(id), min(t) FROM w WHERE k < 90 AND t <> 'comment 5'";
    assert_eq!(
        rows(&s, sql),
        vec!["179999|17999009995|comment 0".to_string()]
    );
    let analyzed = s.sql(sql).unwrap().explain(true).unwrap();
    assert_eq!(late_morsels(&analyzed), 0, "{analyzed}");
    // A predicate that fails while read late (rows from 100,000 on, past the first morsels
    // read whole) fails as it would above the scan.
    let sql = "SELECT count(*), min(t) FROM w WHERE k = 42 AND \
               CAST(CASE WHEN id >= 100000 THEN 'x' ELSE '1' END AS INT) = 1";
    let late_error = error(&s, sql);
    assert!(
        matches!(late_error, EngineError::Execution(_) | EngineError::Type(_)),
        "{late_error:?}"
    );
    // A filter on every column the scan reads leaves nothing to read late.
    let plan = s
        .sql("SELECT count(*) FROM w WHERE k = 42")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(!plan.contains("late_filter"), "{plan}");
}

#[test]
fn helpful_errors() {
    let (_dir, s) = fixture();
    match error(&s, "SELECT nmae FROM t") {
        EngineError::ColumnNotFound {
            suggestion, valid, ..
        } => {
            assert_eq!(suggestion.as_deref(), Some("name"));
            assert!(valid.contains(&"price".to_string()));
        }
        other => panic!("{other}"),
    }
    match error(&s, "SELECT * FROM tt") {
        EngineError::TableNotFound { suggestion, .. } => {
            assert_eq!(suggestion.as_deref(), Some("t"))
        }
        other => panic!("{other}"),
    }
    match error(&s, "SELECT id\nFROM t WHERE") {
        EngineError::Syntax { line, .. } => assert_eq!(line, 2),
        other => panic!("{other}"),
    }
    assert!(matches!(
        error(&s, "SELECT 'abc' + 1"),
        EngineError::Type(_)
    ));
    assert!(matches!(
        error(&s, "SELECT id, count(*) FROM t"),
        EngineError::Plan(_)
    ));
    assert!(error(&s, "SELECT CAST(name AS INTEGER) FROM t")
        .to_string()
        .contains("cannot cast"));
}

#[test]
fn high_cardinality_group_by_is_exact_across_partial_flushes() {
    // 600k rows, 300k groups: each partial aggregate flushes its state several times.
    let dir = tempfile::tempdir().unwrap();
    let n = 600_000i64;
    let keys: Vec<i64> = (0..n).map(|i| (i * 7919) % 300_000).collect();
    let values: Vec<i64> = (0..n).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(keys)),
            Arc::new(Int64Array::from(values)),
        ],
    )
    .unwrap();
    write_parquet(&dir.path().join("big.parquet"), &batch, 50_000);
    let s = Session::new(SessionConfig::default().with_threads(2));
    s.register_directory(dir.path()).unwrap();
    assert_eq!(
        rows(&s, "SELECT count(*), sum(n), sum(total), min(n), max(n) FROM (SELECT key, count(*) AS n, sum(v) AS total FROM big GROUP BY key) g"),
        vec![format!("300000|600000|{}|2|2", n * (n - 1) / 2)]
    );
    // The final aggregate runs in two partitions fed by a hash repartition: a LIMIT that
    // stops reading early must not leave its producers hanging.
    for _ in 0..20 {
        assert_eq!(
            rows(
                &s,
                "SELECT count(*) FROM (SELECT key, count(*) AS n FROM big GROUP BY key LIMIT 3) t"
            ),
            vec!["3".to_string()]
        );
    }
    let plan = s
        .sql("SELECT key, count(*) FROM big GROUP BY key")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(
        plan.contains("Repartition: hash([group_0]) 2 → 2 partitions"),
        "{plan}"
    );
}

#[test]
fn first_last_regexp_and_float_to_integer_casts() {
    let (_dir, session) = fixture();
    // CAST of a float column rounds half to even (x = id / 4: 0.25 → 0, 0.5 → 0, 0.75 → 1,
    // 1.25 → 1, 1.5 → 2, 2.5 → 2).
    assert_eq!(
        rows(
            &session,
            "SELECT CAST(x AS BIGINT), CAST(x AS INTEGER) FROM t WHERE id IN (1, 2, 3, 5, 6, 10) ORDER BY id"
        ),
        ["0|0", "0|0", "1|1", "1|1", "2|2", "2|2"]
    );
    // first/last per group are values of that group (with one thread: the first and last
    // rows in file order).
    let one = Session::new(SessionConfig::default().with_threads(1).with_batch_size(64));
    one.register_parquet("t", _dir.path().join("t.parquet").to_str().unwrap())
        .unwrap();
    assert_eq!(
        rows(
            &one,
            "SELECT k, first(id), last(id), first(name) FROM t WHERE k IS NOT NULL GROUP BY k ORDER BY k LIMIT 3"
        ),
        ["0|7|994|Name007", "1|1|995|Name001", "2|2|996|Name002"]
    );
    // first() keeps a NULL first value (id 0 has k NULL and name NULL).
    assert_eq!(
        rows(&one, "SELECT first(name), first(k), last(k) FROM t"),
        ["NULL|NULL|5"]
    );
    // With two threads, first/last still return a value of the right group.
    assert_eq!(
        rows(
            &session,
            "SELECT count(*) FROM (SELECT k, first(id) AS f FROM t GROUP BY k) s WHERE f % 7 <> coalesce(k, f % 7) AND k IS NOT NULL"
        ),
        ["0"]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT count(*) FROM t WHERE regexp_matches(name, '^Name0[0-4]7$')"
        ),
        rows(
            &session,
            "SELECT count(*) FROM t WHERE name IN ('Name007', 'Name017', 'Name027', 'Name037', 'Name047')"
        )
    );
    let err = error(
        &session,
        "SELECT count(*) FROM t WHERE regexp_matches(name, 'a(')",
    );
    assert!(
        err.to_string().contains("invalid regular expression"),
        "{err}"
    );
}

/// DISTINCT aggregates beside `first`/`last`, which keep NULLs: the rewrite into input copies
/// must not let a copy's NULL value reach them (with one thread, `first` is the first row of
/// the group in file order). Also `sum`/`avg(DISTINCT)` and an empty input.
#[test]
fn distinct_aggregates_beside_first_and_last() {
    let (dir, _) = fixture();
    let one = Session::new(SessionConfig::default().with_threads(1).with_batch_size(64));
    one.register_parquet("t", dir.path().join("t.parquet").to_str().unwrap())
        .unwrap();
    let got = rows(
        &one,
        "SELECT k, first(name), first(id), last(id), count(DISTINCT name), \
         sum(DISTINCT id % 5), avg(DISTINCT id % 4) FROM t GROUP BY k ORDER BY k NULLS FIRST",
    );
    let mut expected = Vec::new();
    for key in std::iter::once(None).chain((0..7).map(Some)) {
        let members: Vec<i64> = (0..1000i64)
            .filter(|i| (i % 10 != 0).then_some(i % 7) == key)
            .collect();
        let name = |i: i64| (i % 13 != 0).then(|| format!("Name{:03}", i % 50));
        let names: std::collections::BTreeSet<String> =
            members.iter().filter_map(|&i| name(i)).collect();
        let fives: std::collections::BTreeSet<i64> = members.iter().map(|i| i % 5).collect();
        let fours: std::collections::BTreeSet<i64> = members.iter().map(|i| i % 4).collect();
        let average = fours.iter().sum::<i64>() as f64 / fours.len() as f64;
        expected.push(format!(
            "{}|{}|{}|{}|{}|{}|{average:?}",
            key.map_or("NULL".to_string(), |k| k.to_string()),
            name(members[0]).unwrap_or("NULL".into()),
            members[0],
            members[members.len() - 1],
            names.len(),
            fives.iter().sum::<i64>(),
        ));
    }
    assert_eq!(got, expected);
    // The group of k = 1 starts with a named row, and holds rows without a name.
    assert!(expected[2].starts_with("1|Name001|1|"), "{}", expected[2]);
    assert_eq!(
        rows(
            &one,
            "SELECT first(id), count(DISTINCT name), avg(DISTINCT id), count(*) FROM t \
             WHERE id < 0"
        ),
        vec!["NULL|0|NULL|0"]
    );
}

/// `count(DISTINCT x)` next to plain counts (the Python API's `n_unique` is such a mix) is
/// rewritten into two group-bys; the answers stay those of the definition, also on no rows.
#[test]
fn distinct_count_with_plain_counts() {
    let (_dir, s) = fixture();
    assert_eq!(
        rows(
            &s,
            "SELECT count(DISTINCT name), count(*), count(name) FROM t"
        ),
        vec!["50|1000|923"]
    );
    assert_eq!(
        rows(
            &s,
            "SELECT count(DISTINCT name), count(*), count(name) FROM t WHERE id < 0"
        ),
        vec!["0|0|0"]
    );
    let got = rows(
        &s,
        "SELECT k, count(DISTINCT name), count(*), count(name) FROM t GROUP BY k \
         ORDER BY k NULLS FIRST",
    );
    let mut expected = Vec::new();
    for key in std::iter::once(None).chain((0..7).map(Some)) {
        let members: Vec<i64> = (0..1000i64)
            .filter(|i| {
                let k = (i % 10 != 0).then_some(i % 7);
                k == key
            })
            .collect();
        let names: Vec<i64> = members.iter().filter(|i| *i % 13 != 0).copied().collect();
        let distinct: std::collections::BTreeSet<i64> = names.iter().map(|i| i % 50).collect();
        let k = key.map_or("NULL".to_string(), |k| k.to_string());
        expected.push(format!(
            "{k}|{}|{}|{}",
            distinct.len(),
            members.len(),
            names.len()
        ));
    }
    assert_eq!(got, expected);
}

/// Casts of decimal columns to floats fold into the scan (a decimal stored as INT32 or INT64 is
/// then decoded in that width), with the very values the cast gives; a column also read as
/// itself, or filtered by the scan, is not folded.
#[test]
fn decimal_to_float_casts_fold_into_the_scan() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float32Type, Float64Type};
    let dir = tempfile::tempdir().unwrap();
    let n = 5_000i64;
    // Values beyond 2^24 and 2^53 units, negative and NULL: each width, each rounding case.
    let unscaled = |i: i64, bound: i128| -> Option<i128> {
        (i % 11 != 0).then(|| {
            let v = (common::mix(i as u64) as i128) % bound;
            if i % 2 == 0 {
                v
            } else {
                -v
            }
        })
    };
    let d9: Decimal128Array = (0..n)
        .map(|i| unscaled(i, 999_999_999))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(9, 2)
        .unwrap();
    let d15: Decimal128Array = (0..n)
        .map(|i| unscaled(i, 999_999_999_999_999))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(15, 4)
        .unwrap();
    let d30: Decimal128Array = (0..n)
        .map(|i| unscaled(i, 10i128.pow(29)))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(30, 3)
        .unwrap();
    let k = Int64Array::from((0..n).collect::<Vec<_>>());
    let batch = common::batch(vec![
        ("d9", Arc::new(d9.clone()) as ArrayRef),
        ("d15", Arc::new(d15.clone())),
        ("d30", Arc::new(d30.clone())),
        ("k", Arc::new(k)),
    ]);
    write_parquet(&dir.path().join("t.parquet"), &batch, 1_500);
    let session = Session::new(
        SessionConfig::default()
            .with_threads(2)
            .with_batch_size(700),
    );
    session.register_directory(dir.path()).unwrap();

    let sql = "SELECT k, CAST(d9 AS DOUBLE) AS a, CAST(d15 AS REAL) AS b, \
               CAST(d30 AS DOUBLE) AS c, CAST(d15 AS REAL) + 1 AS e \
               FROM t WHERE k % 3 = 0 ORDER BY k";
    let plan = session.sql(sql).unwrap().explain(false).unwrap();
    for folded in ["d9 AS DOUBLE", "d15 AS REAL", "d30 AS DOUBLE"] {
        assert!(plan.contains(folded), "{folded} not folded:\n{plan}");
    }
    let out = session.sql(sql).unwrap().collect().unwrap();
    let expected = |a: &Decimal128Array, to: &DataType| {
        arrow::compute::cast(&(Arc::new(a.clone()) as ArrayRef), to).unwrap()
    };
    let (a64, b32, c64) = (
        expected(&d9, &DataType::Float64),
        expected(&d15, &DataType::Float32),
        expected(&d30, &DataType::Float64),
    );
    let mut rows = 0;
    for b in &out {
        let keys = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        for r in 0..b.num_rows() {
            let i = keys.value(r) as usize;
            assert_eq!(i % 3, 0);
            for (col, want) in [(1, &a64), (3, &c64)] {
                let got = b.column(col).as_primitive::<Float64Type>();
                let want = want.as_primitive::<Float64Type>();
                assert_eq!(got.is_null(r), want.is_null(i));
                if !want.is_null(i) {
                    assert_eq!(got.value(r).to_bits(), want.value(i).to_bits(), "row {i}");
                }
            }
            let got = b.column(2).as_primitive::<Float32Type>();
            let plus = arrow::compute::cast(b.column(4), &DataType::Float64).unwrap();
            let plus = plus.as_primitive::<Float64Type>();
            let want = b32.as_primitive::<Float32Type>();
            assert_eq!(got.is_null(r), want.is_null(i));
            if !want.is_null(i) {
                assert_eq!(got.value(r).to_bits(), want.value(i).to_bits(), "row {i}");
                let sum = f64::from(want.value(i)) + 1.0;
                assert!(
                    (plus.value(r) - sum).abs() <= 1e-6 * sum.abs().max(1.0),
                    "row {i}"
                );
            }
            rows += 1;
        }
    }
    assert_eq!(rows, (n as usize).div_ceil(3));

    // Through a projection that only picks and renames columns.
    let sql = "SELECT CAST(x AS REAL) AS b, y FROM (SELECT d15 AS x, k AS y FROM t) q ORDER BY y";
    let plan = session.sql(sql).unwrap().explain(false).unwrap();
    assert!(plan.contains("d15 AS REAL"), "not folded:\n{plan}");
    let out = session.sql(sql).unwrap().collect().unwrap();
    let got: Vec<Option<f32>> = out
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<Float32Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect();
    let want: Vec<Option<f32>> = b32.as_primitive::<Float32Type>().iter().collect();
    assert_eq!(got, want);

    // Read as itself too, or filtered in the scan: not folded, and the same values.
    for sql in [
        "SELECT k, CAST(d15 AS REAL) AS b, d15 FROM t WHERE k % 3 = 0 ORDER BY k",
        "SELECT k, CAST(d15 AS REAL) AS b FROM t WHERE k % 3 = 0 AND d15 IS NOT NULL ORDER BY k",
        "SELECT k, CAST(d15 AS REAL) AS b, CAST(d15 AS DOUBLE) AS b2 FROM t WHERE k % 3 = 0 ORDER BY k",
    ] {
        let plan = session.sql(sql).unwrap().explain(false).unwrap();
        assert!(!plan.contains("d15 AS REAL"), "folded:\n{plan}");
        let out = session.sql(sql).unwrap().collect().unwrap();
        let want = b32.as_primitive::<Float32Type>();
        for b in &out {
            let keys = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
            let got = b.column(1).as_primitive::<Float32Type>();
            for r in 0..b.num_rows() {
                let i = keys.value(r) as usize;
                assert_eq!(got.is_null(r), want.is_null(i));
                if !want.is_null(i) {
                    assert_eq!(got.value(r).to_bits(), want.value(i).to_bits());
                }
            }
        }
    }
}

#[test]
fn expressions_nested_too_deeply_are_refused_not_a_crash() {
    let (_dir, session) = fixture();
    // A chain of 999 operators plans and runs (on the planner's own deep stack, then as a
    // plan of that depth on the worker threads).
    let chain = |n: usize| vec!["1"; n].join(" + ");
    assert_eq!(
        rows(&session, &format!("SELECT {} AS s", chain(999))),
        ["999"]
    );
    // Beyond the limit: a named error, for chains and for nested calls alike (20,000
    // operators overflowed the main thread's stack before).
    for sql in [
        format!("SELECT {} AS s", chain(20_000)),
        format!("SELECT {}1{}", "abs(".repeat(1500), ")".repeat(1500)),
    ] {
        // (The parser refuses nested calls itself, past its own recursion limit.)
        let message = error(&session, &sql).to_string();
        assert!(
            message.contains("nested more than 1000 levels")
                || message.contains("nested too deeply"),
            "{message}"
        );
    }
}

#[test]
fn or_chains_of_equalities_become_in_lists() {
    let (_dir, session) = fixture();
    let sql = "SELECT count(*) FROM t WHERE id = 1 OR id = 2 OR 3 = id OR id = 40";
    let plan = session.sql(sql).unwrap().explain(false).unwrap();
    assert!(plan.contains("id IN (1, 2, 3, 40)"), "{plan}");
    // Two expressions, or a non-equality: left as they are.
    let plan = session
        .sql("SELECT count(*) FROM t WHERE id = 1 OR k = 2 OR id = 3")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(!plan.contains(" IN ("), "{plan}");
}
