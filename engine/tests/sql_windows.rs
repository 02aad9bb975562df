//! Window functions through the SQL front end: what they answer on a small table (the golden
//! tests compare many more with DuckDB), and the errors for what SQL does not allow or ooc
//! does not plan, each naming the construct.

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use ooc_engine::{Session, SessionConfig};

/// `t(id, k, v)`: ids 0..10, k = id % 3, v NULL for every third id.
fn session() -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..10)),
            Arc::new(Int64Array::from_iter_values((0..10).map(|i| i % 3))),
            Arc::new(StringArray::from_iter(
                (0..10).map(|i| (i % 3 != 0).then(|| format!("v{i}"))),
            )),
        ],
    )
    .unwrap();
    common::write_parquet(&dir.path().join("t.parquet"), &batch, 4);
    let session = Session::new(SessionConfig::default().with_threads(2));
    session
        .register_parquet("t", dir.path().join("t.parquet").to_str().unwrap())
        .unwrap();
    (dir, session)
}

fn rows(session: &Session, sql: &str) -> Vec<String> {
    let batches = session
        .sql(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    common::render(&batches)
}

fn error(session: &Session, sql: &str) -> String {
    match session.sql(sql).and_then(|df| df.collect()) {
        Ok(batches) => panic!(
            "{sql}: expected an error, got {:?}",
            common::render(&batches)
        ),
        Err(e) => e.to_string(),
    }
}

#[test]
fn ranking_offsets_and_running_sums() {
    let (_dir, s) = session();
    assert_eq!(
        rows(
            &s,
            "SELECT id, row_number() OVER w, sum(id) OVER w, lag(id) OVER w, \
             lead(id, 1, -1) OVER w FROM t WINDOW w AS (PARTITION BY k ORDER BY id) \
             ORDER BY id"
        ),
        [
            "0|1|0|NULL|3",
            "1|1|1|NULL|4",
            "2|1|2|NULL|5",
            "3|2|3|0|6",
            "4|2|5|1|7",
            "5|2|7|2|8",
            "6|3|9|3|9",
            "7|3|12|4|-1",
            "8|3|15|5|-1",
            "9|4|18|6|-1",
        ]
    );
}

#[test]
fn qualify_filters_on_window_results() {
    let (_dir, s) = session();
    // The last id of every k.
    assert_eq!(
        rows(
            &s,
            "SELECT k, id FROM t QUALIFY row_number() OVER (PARTITION BY k ORDER BY id DESC) = 1 \
             ORDER BY k"
        ),
        ["0|9", "1|7", "2|8"]
    );
    // Over a grouped result, with the aggregate inside the window.
    assert_eq!(
        rows(
            &s,
            "SELECT k, count(*) AS n FROM t GROUP BY k \
             QUALIFY rank() OVER (ORDER BY count(*) DESC) = 1"
        ),
        ["0|4"]
    );
}

#[test]
fn both_spellings_of_ignore_nulls_agree() {
    let (_dir, s) = session();
    let inside = rows(
        &s,
        "SELECT id, lag(v IGNORE NULLS) OVER (ORDER BY id), \
         last_value(v IGNORE NULLS) OVER (ORDER BY id) FROM t ORDER BY id",
    );
    let after = rows(
        &s,
        "SELECT id, lag(v) IGNORE NULLS OVER (ORDER BY id), \
         last_value(v) IGNORE NULLS OVER (ORDER BY id) FROM t ORDER BY id",
    );
    assert_eq!(inside, after);
    assert_eq!(inside[3], "3|v2|v2");
    assert_eq!(inside[4], "4|v2|v4");
}

#[test]
fn named_windows_inherit_and_refuse_redefinition() {
    let (_dir, s) = session();
    assert_eq!(
        rows(
            &s,
            "SELECT id, sum(id) OVER (w ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) \
             FROM t WINDOW w AS (PARTITION BY k) ORDER BY id LIMIT 4"
        ),
        ["0|0", "1|1", "2|2", "3|3"]
    );
    let err = error(&s, "SELECT sum(id) OVER w FROM t WINDOW v AS (ORDER BY id)");
    assert!(
        err.contains("window w is not defined (defined: v)"),
        "{err}"
    );
    let err = error(
        &s,
        "SELECT sum(id) OVER (w PARTITION BY id) FROM t WINDOW w AS (PARTITION BY k)",
    );
    assert!(err.contains("cannot have its own PARTITION BY"), "{err}");
}

#[test]
fn misuse_is_an_error_that_says_what_is_wrong() {
    let (_dir, s) = session();
    for (sql, expected) in [
        ("SELECT row_number() FROM t", "needs an OVER clause"),
        (
            "SELECT id FROM t WHERE row_number() OVER (ORDER BY id) > 2",
            "not allowed in WHERE",
        ),
        ("SELECT id FROM t QUALIFY id > 2", "has no window function"),
        (
            "SELECT upper(v) OVER (ORDER BY id) FROM t",
            "not a window or aggregate function",
        ),
        (
            "SELECT nth_value(id, 0) OVER (ORDER BY id) FROM t",
            "must be at least 1",
        ),
        (
            "SELECT sum(id) OVER (ORDER BY id ROWS BETWEEN -1 PRECEDING AND CURRENT ROW) FROM t",
            "non-negative integer",
        ),
        (
            "SELECT sum(id) OVER (ORDER BY k, id RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) \
             FROM t",
            "exactly one ORDER BY key",
        ),
        (
            "SELECT sum(id) OVER (ORDER BY id RANGE BETWEEN INTERVAL 1 DAY PRECEDING AND \
             CURRENT ROW) FROM t",
            "does not fit an ORDER BY key of type BIGINT",
        ),
        (
            "SELECT sum(id) OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND 1 PRECEDING) FROM t",
            "cannot start at CURRENT ROW and end at 1 PRECEDING",
        ),
        (
            "SELECT lag(id, k) OVER (ORDER BY id) FROM t",
            "not a constant",
        ),
        ("SELECT sum(sum(id) OVER ()) FROM t", "window"),
        (
            "SELECT ntile(0) OVER (ORDER BY id) FROM t",
            "positive number of buckets",
        ),
    ] {
        let err = error(&s, sql);
        assert!(err.contains(expected), "{sql}: {err}");
    }
}
