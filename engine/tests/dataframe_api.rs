//! The dataframe builder (the API the Python library drives): joins with dataframe-style
//! column names, group-by over expressions of aggregates, with_columns / rename / drop /
//! distinct, in-memory tables and SQL views over dataframes.

mod common;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use ooc_engine::logical::expr_fn::{col, count_star, lit, sum};
use ooc_engine::{DataFrame, EngineError, JoinType, Session, SessionConfig, SortKey};

fn table(session: &Session, name: &str, ids: Vec<Option<i64>>, names: Vec<&str>) -> DataFrame {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("x", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(StringArray::from(names)),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    // Two batches, so that the in-memory source is split over partitions.
    let halves = vec![
        batch.slice(0, batch.num_rows() / 2),
        batch.slice(
            batch.num_rows() / 2,
            batch.num_rows() - batch.num_rows() / 2,
        ),
    ];
    session.read_batches(name, schema, halves).unwrap()
}

fn fixture() -> (Session, DataFrame, DataFrame) {
    let session = Session::new(SessionConfig::default().with_threads(2).with_batch_size(2));
    let left = table(
        &session,
        "l",
        vec![Some(1), Some(2), Some(3), None],
        vec!["p", "q", "r", "s"],
    );
    let right = table(
        &session,
        "r",
        vec![Some(1), Some(3), Some(3), Some(4), None],
        vec!["a", "b", "c", "d", "e"],
    );
    (session, left, right)
}

fn render(frame: DataFrame) -> (Vec<String>, Vec<String>) {
    let names = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = common::render(&frame.collect().unwrap());
    rows.sort();
    (names, rows)
}

fn join(how: JoinType) -> (Vec<String>, Vec<String>) {
    let (_, left, right) = fixture();
    render(
        left.join(right, how, vec![col("id")], vec![col("id")], "_right")
            .unwrap(),
    )
}

#[test]
fn joins_name_columns_like_dataframe_libraries() {
    assert_eq!(
        join(JoinType::Inner),
        (
            vec!["id".into(), "x".into(), "x_right".into()],
            vec!["1|p|a".into(), "3|r|b".into(), "3|r|c".into()]
        )
    );
    let (names, rows) = join(JoinType::Left);
    assert_eq!(names, ["id", "x", "x_right"]);
    assert_eq!(rows, ["1|p|a", "2|q|NULL", "3|r|b", "3|r|c", "NULL|s|NULL"]);
    let (names, rows) = join(JoinType::Right);
    assert_eq!(names, ["x", "id", "x_right"]);
    assert_eq!(rows, ["NULL|4|d", "NULL|NULL|e", "p|1|a", "r|3|b", "r|3|c"]);
    let (names, rows) = join(JoinType::Full);
    assert_eq!(names, ["id", "x", "id_right", "x_right"]);
    assert_eq!(rows.len(), 7);
    assert!(rows.contains(&"NULL|s|NULL|NULL".to_string()));
    assert!(rows.contains(&"NULL|NULL|NULL|e".to_string()));
    assert_eq!(join(JoinType::Semi).1, ["1|p", "3|r"]);
    assert_eq!(join(JoinType::Anti).1, ["2|q", "NULL|s"]);
    // A cross join has no keys.
    let (_, left, right) = fixture();
    let (names, rows) = render(
        left.join(right, JoinType::Inner, vec![], vec![], "_r")
            .unwrap(),
    );
    assert_eq!(names, ["id", "x", "id_r", "x_r"]);
    assert_eq!(rows.len(), 20);
}

#[test]
fn group_by_takes_expressions_over_aggregates() {
    let (_, left, _) = fixture();
    let frame = left
        .with_columns(vec![(col("id") % lit(2i64)).alias("parity")])
        .unwrap()
        .group_by(
            vec![col("parity")],
            vec![
                (sum(col("id")) * lit(10i64) + count_star()).alias("score"),
                count_star().alias("n"),
            ],
        )
        .unwrap();
    let (names, rows) = render(frame);
    assert_eq!(names, ["parity", "score", "n"]);
    assert_eq!(rows, ["0|21|1", "1|42|2", "NULL|NULL|1"]);

    // A bare column in an aggregation is an error that says what to do.
    let (_, left, _) = fixture();
    let err = left.group_by(vec![col("id")], vec![col("x")]).unwrap_err();
    assert!(matches!(err, EngineError::Plan(_)), "{err}");
    assert!(err.to_string().contains("outside of an aggregate"), "{err}");
}

#[test]
fn rename_drop_distinct_sort_and_sql_views() {
    let (session, left, right) = fixture();
    let renamed = left
        .clone()
        .rename(&[("x".into(), "label".into())])
        .unwrap();
    assert_eq!(render(renamed.clone()).0, ["id", "label"]);
    assert_eq!(
        render(renamed.drop_columns(&["id".into()]).unwrap()).1,
        ["p", "q", "r", "s"]
    );
    let err = left.clone().drop_columns(&["nope".into()]).unwrap_err();
    assert!(matches!(err, EngineError::ColumnNotFound { .. }), "{err}");

    let ids = right
        .clone()
        .select(vec![col("id")])
        .unwrap()
        .distinct()
        .unwrap();
    assert_eq!(render(ids).1, ["1", "3", "4", "NULL"]);

    let sorted = left
        .clone()
        .sort(vec![SortKey {
            expr: col("id"),
            ascending: false,
            nulls_first: true,
        }])
        .unwrap()
        .collect()
        .unwrap();
    let ids: Vec<Option<i64>> = sorted
        .iter()
        .flat_map(|b| {
            let a = b
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            (0..a.len())
                .map(move |i| a.is_valid(i).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, [None, Some(3), Some(2), Some(1)]);

    // A dataframe registered as a view is a table for SQL.
    session.register_view("lefty", &left);
    session.register_view("righty", &right);
    let (_, rows) = render(
        session
            .sql("SELECT l.x, count(*) AS n FROM lefty l JOIN righty r ON l.id = r.id GROUP BY 1")
            .unwrap(),
    );
    assert_eq!(rows, ["p|1", "r|2"]);
    assert!(session.table_names().contains(&"lefty".to_string()));
}

#[test]
fn a_missing_join_key_is_named_as_written_with_its_sides_columns() {
    let (session, left, _) = fixture();
    let other = session
        .read_batches(
            "o",
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)])),
            vec![],
        )
        .unwrap();
    for (left_key, right_key, missing, valid) in [
        ("id", "id", "id", vec!["k"]),
        ("nope", "k", "nope", vec!["id", "x"]),
    ] {
        let err = left
            .clone()
            .join(
                other.clone(),
                JoinType::Inner,
                vec![col(left_key)],
                vec![col(right_key)],
                "_right",
            )
            .unwrap_err();
        match err {
            EngineError::ColumnNotFound { name, valid: v, .. } => {
                assert_eq!(name, missing);
                assert_eq!(v, valid);
            }
            other => panic!("expected ColumnNotFound, got {other:?}"),
        }
    }
}
