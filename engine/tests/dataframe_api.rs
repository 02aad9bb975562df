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

/// A table whose column names look like the names planning used to give its own columns
/// (`__agg0`, `__sq1`, `__value`, `__corr0`, `__left`, `__ooc_sort_1`, `#agg0`).
fn lookalike_table(session: &Session) -> DataFrame {
    let names = [
        "__agg0",
        "__agg1",
        "__sq1",
        "__value",
        "__corr0",
        "__left",
        "__ooc_sort_1",
        "#agg0",
    ];
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let column =
        |f: fn(i64) -> i64| -> ArrayRef { Arc::new(Int64Array::from_iter_values((0..6).map(f))) };
    let columns = vec![
        column(|i| i % 2),   // __agg0: a group key
        column(|i| i * 10),  // __agg1
        column(|i| i),       // __sq1
        column(|i| i + 1),   // __value
        column(|i| i % 3),   // __corr0
        column(|i| i % 2),   // __left
        column(|i| 5 - i),   // __ooc_sort_1
        column(|i| 100 + i), // #agg0
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    session.read_batches("t", schema, vec![batch]).unwrap()
}

/// Planning's hidden names cannot collide with user columns, however those are named: a user
/// column named `__agg1` was taken for an aggregate of `group_by`, and one named `__agg0`
/// grouped by beside an aggregate made two output columns of that name.
#[test]
fn user_columns_named_like_internal_ones_are_ordinary_columns() {
    let session = Session::new(SessionConfig::default().with_threads(2));
    let t = lookalike_table(&session);
    let grouped = t
        .clone()
        .group_by(
            vec![col("__agg0")],
            vec![
                (sum(col("__agg1")) + col("__agg0")).alias("__agg1"),
                sum(col("#agg0")).alias("#agg0"),
                count_star().alias("n"),
            ],
        )
        .unwrap()
        .sort(vec![SortKey {
            expr: col("__agg0"),
            ascending: true,
            nulls_first: false,
        }])
        .unwrap();
    let (names, rows) = render(grouped);
    assert_eq!(names, ["__agg0", "__agg1", "#agg0", "n"]);
    // Keys 0 (rows 0, 2, 4) and 1 (rows 1, 3, 5).
    assert_eq!(rows, ["0|60|306|3", "1|91|309|3"]);
    // A column outside any aggregate is still refused, even when named like an aggregate.
    let err = t
        .clone()
        .group_by(vec![col("__agg0")], vec![col("__agg1")])
        .unwrap_err();
    assert!(err.to_string().contains("'__agg1'"), "{err}");

    // SQL over the same columns: grouping, a hidden sort key, a scalar subquery, a correlated
    // subquery and a join side, each beside a user column of the old internal name.
    session.register_view("t", &t);
    let sql = |q: &str| -> Vec<String> {
        common::render(
            &session
                .sql(q)
                .unwrap_or_else(|e| panic!("{q}: {e}"))
                .collect()
                .unwrap(),
        )
    };
    assert_eq!(
        sql("SELECT __agg0, sum(__agg1) AS s FROM t GROUP BY __agg0 ORDER BY sum(__ooc_sort_1)"),
        ["1|90", "0|60"]
    );
    assert_eq!(
        sql("SELECT __value FROM t WHERE __value > (SELECT avg(__value) FROM t) ORDER BY __ooc_sort_1"),
        ["6", "5", "4"]
    );
    assert_eq!(
        sql("SELECT __sq1 FROM t a WHERE __agg1 = (SELECT max(b.__agg1) FROM t b WHERE b.__corr0 = a.__corr0) ORDER BY __sq1"),
        ["3", "4", "5"]
    );
    assert_eq!(
        sql("SELECT count(*) FROM t a JOIN t b ON a.__left = b.__agg0"),
        ["18"]
    );
}

/// A name containing the character planning reserves for its own names is refused, wherever
/// it comes from, with an error that says why.
#[test]
fn names_with_the_reserved_character_are_refused() {
    let session = Session::new(SessionConfig::default());
    let schema = Arc::new(Schema::new(vec![Field::new(
        "\u{1}agg0",
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    let err = session.read_batches("t", schema, vec![batch]).unwrap_err();
    assert!(err.to_string().contains("U+0001"), "{err}");
    let (_, left, _) = fixture();
    let err = left
        .clone()
        .select(vec![col("id").alias("\u{1}x")])
        .unwrap_err();
    assert!(err.to_string().contains("reserves"), "{err}");
    let err = left
        .rename(&[("id".to_string(), "a\u{1}".to_string())])
        .unwrap_err();
    assert!(err.to_string().contains("reserves"), "{err}");
    let err = session.sql("SELECT 1 AS \"\u{1}agg0\"").unwrap_err();
    assert!(err.to_string().contains("reserves"), "{err}");
}

/// Window calls through the builder: `with_columns` computes them (several windows in one
/// call), and `filter` on one keeps the input's columns.
#[test]
fn windows_in_with_columns_and_filter() {
    use ooc_engine::logical::expr::AggregateFunction;
    use ooc_engine::logical::expr_fn::window;
    use ooc_engine::logical::window::WindowFunction;

    let (_session, _left, right) = fixture();
    let ranked = right
        .clone()
        .with_columns(vec![
            window(WindowFunction::RowNumber, vec![])
                .over(vec![col("id")], vec![(col("x"), false)])
                .alias("n"),
            window(WindowFunction::Aggregate(AggregateFunction::Count), vec![])
                .over(vec![col("id")], vec![])
                .alias("size"),
        ])
        .unwrap();
    let (names, rows) = render(ranked);
    assert_eq!(names, ["id", "x", "n", "size"]);
    assert_eq!(
        rows,
        ["1|a|1|1", "3|b|2|2", "3|c|1|2", "4|d|1|1", "NULL|e|1|1"]
    );
    let last_per_id = right
        .filter(
            window(WindowFunction::RowNumber, vec![])
                .over(vec![col("id")], vec![(col("x"), false)])
                .eq(lit(1i64)),
        )
        .unwrap();
    let (names, rows) = render(last_per_id);
    assert_eq!(names, ["id", "x"]);
    assert_eq!(rows, ["1|a", "3|c", "4|d", "NULL|e"]);
}
