//! Row order and feeds: with `RowOrder::Source` a scan streamed through filters and
//! projections hands out its rows in the files' order although four threads decode them;
//! `RowOrder::Shuffled` reads the slices in an order drawn from its seed (the same seed, the
//! same order); `DataFrame::feed` cuts the rows into exact-size batches and shuffles them, and
//! never loses or duplicates one, also for plans (aggregates) whose order it cannot fix.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;
use ooc_engine::feed::{FeedOptions, ShuffleOptions};
use ooc_engine::sink::{MatrixData, NpyType};
use ooc_engine::{RowOrder, Session, SessionConfig};

mod common;

const ROWS: i64 = 100_000;

/// `data.parquet`: `id` 0..ROWS in order, `v` = id / 2, in row groups of 3,000 rows (34 row
/// groups, so four threads interleave unless the order is kept).
fn session(dir: &std::path::Path, order: RowOrder) -> Session {
    let path = dir.join("data.parquet");
    if !path.exists() {
        let ids: Vec<i64> = (0..ROWS).collect();
        let values: Vec<f64> = (0..ROWS).map(|i| i as f64 / 2.0).collect();
        let batch = common::batch(vec![
            ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
            ("v", Arc::new(Float64Array::from(values))),
        ]);
        common::write_parquet(&path, &batch, 3_000);
    }
    let config = SessionConfig::default()
        .with_threads(4)
        .with_batch_size(1_000)
        .with_row_order(order);
    let session = Session::new(config);
    session.register_directory(dir).unwrap();
    session
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

fn run(session: &Session, sql: &str) -> Vec<i64> {
    ids(&session.sql(sql).unwrap().collect().unwrap())
}

#[test]
fn source_order_keeps_the_files_order_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path(), RowOrder::Source);
    assert_eq!(
        run(&s, "SELECT id FROM data"),
        (0..ROWS).collect::<Vec<_>>()
    );
    let filtered = run(&s, "SELECT id, v * 2 AS w FROM data WHERE id % 7 = 3");
    assert_eq!(
        filtered,
        (0..ROWS).filter(|i| i % 7 == 3).collect::<Vec<_>>()
    );
    let plan = s
        .sql("SELECT id FROM data")
        .unwrap()
        .explain(false)
        .unwrap();
    assert!(plan.contains("OrderedCoalesce"), "{plan}");
}

#[test]
fn shuffled_order_is_a_permutation_of_slices_fixed_by_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(
        &session(dir.path(), RowOrder::Shuffled { seed: 5 }),
        "SELECT id FROM data",
    );
    let b = run(
        &session(dir.path(), RowOrder::Shuffled { seed: 5 }),
        "SELECT id FROM data",
    );
    let c = run(
        &session(dir.path(), RowOrder::Shuffled { seed: 6 }),
        "SELECT id FROM data",
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, (0..ROWS).collect::<Vec<_>>());
    // Slices move, rows inside a slice keep their order.
    assert!(a.windows(2).filter(|w| w[1] != w[0] + 1).count() < 60);
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..ROWS).collect::<Vec<_>>());
}

#[test]
fn feeds_cut_exact_batches_and_shuffle_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path(), RowOrder::Any);
    let frame = || s.sql("SELECT id, v FROM data WHERE id >= 10").unwrap();
    let plain: Vec<_> = frame()
        .feed(FeedOptions {
            batch_size: Some(4_096),
            ..FeedOptions::default()
        })
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let sizes: Vec<usize> = plain.iter().map(|b| b.num_rows()).collect();
    assert!(sizes[..sizes.len() - 1].iter().all(|&n| n == 4_096));
    let ordered: Vec<i64> = plain
        .iter()
        .flat_map(|b| ids(&[b.clone().into_record_batch().unwrap()]))
        .collect();
    assert_eq!(ordered, (10..ROWS).collect::<Vec<_>>());
    let m = plain[0].to_matrix(NpyType::Float32).unwrap();
    assert_eq!((m.rows, m.columns), (4_096, 2));
    let MatrixData::Float32(values) = &m.data else {
        panic!("a float32 matrix holds f32s");
    };
    assert_eq!(&values[..4], &[10.0, 5.0, 11.0, 5.5]);

    let shuffled = |seed| -> Vec<i64> {
        frame()
            .feed(FeedOptions {
                batch_size: Some(1_000),
                drop_last: false,
                shuffle: Some(ShuffleOptions { seed, window: 4 }),
            })
            .unwrap()
            .flat_map(|b| ids(&[b.unwrap().into_record_batch().unwrap()]))
            .collect()
    };
    let (x, y, z) = (shuffled(1), shuffled(1), shuffled(2));
    assert_eq!(x, y);
    assert_ne!(x, z);
    let mut sorted = x.clone();
    sorted.sort();
    assert_eq!(sorted, (10..ROWS).collect::<Vec<_>>());
    // Rows are mixed within windows, not only slices moved: few neighbours stay neighbours.
    assert!(x.windows(2).filter(|w| w[1] == w[0] + 1).count() < 1_000);
}

#[test]
fn a_plan_whose_order_cannot_be_kept_still_feeds_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path(), RowOrder::Any);
    let frame = s
        .sql("SELECT id % 1000 AS k, count(*) AS n FROM data GROUP BY 1")
        .unwrap();
    let batches: Vec<_> = frame
        .feed(FeedOptions {
            batch_size: Some(300),
            drop_last: true,
            shuffle: Some(ShuffleOptions { seed: 9, window: 2 }),
        })
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.num_rows() == 300));
    let mut keys: Vec<i64> = batches
        .into_iter()
        .flat_map(|b| ids(&[b.into_record_batch().unwrap()]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 900);
}
