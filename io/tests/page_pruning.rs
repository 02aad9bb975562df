//! Page-level pruning on a file with known page statistics.
//!
//! One row group of 1,000 rows in pages of 100: `x` = 0..999 (page i holds 100i..100i+99),
//! `y` = x % 7 (every value on every page), `n` NULL for x < 300 and x otherwise.

// Selections are lists of row ranges, often of one.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use ooc_io::{CmpOp, ParquetDataset, PruneExpr, ReadOptions, RowGroupRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

fn write(page_statistics: bool) -> (tempfile::TempDir, ParquetDataset) {
    let dir = tempfile::tempdir().unwrap();
    let x: Vec<i64> = (0..1000).collect();
    let y: Vec<i64> = x.iter().map(|v| v % 7).collect();
    let n: Vec<Option<i64>> = x.iter().map(|&v| (v >= 300).then_some(v)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new("y", DataType::Int64, false),
        Field::new("n", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(x)) as ArrayRef,
            Arc::new(Int64Array::from(y)),
            Arc::new(Int64Array::from(n)),
        ],
    )
    .unwrap();
    let path = dir.path().join("t.parquet");
    let statistics = if page_statistics {
        EnabledStatistics::Page
    } else {
        EnabledStatistics::Chunk
    };
    let props = WriterProperties::builder()
        .set_data_page_row_count_limit(100)
        .set_write_batch_size(100)
        .set_statistics_enabled(statistics)
        .build();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let ds = ParquetDataset::open(path.to_str().unwrap()).unwrap();
    (dir, ds)
}

fn int(v: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![v]))
}

fn cmp(column: &str, op: CmpOp, v: i64) -> PruneExpr {
    PruneExpr::Compare {
        column: column.into(),
        op,
        value: int(v),
    }
}

const RG: RowGroupRef = RowGroupRef {
    file: 0,
    row_group: 0,
};

fn rows(ds: &ParquetDataset, e: &PruneExpr) -> Option<Vec<Range<usize>>> {
    ds.prune_pages(RG, e).map(|s| s.rows)
}

#[test]
fn pages_are_kept_by_their_statistics() {
    let (_d, ds) = write(true);
    let point = ds.prune_pages(RG, &cmp("x", CmpOp::Eq, 425)).unwrap();
    assert_eq!(point.rows, vec![400..500]);
    assert_eq!((point.pages_kept, point.pages_total), (1, 10));
    let between = PruneExpr::Between {
        column: "x".into(),
        low: int(250),
        high: int(420),
        negated: false,
    };
    assert_eq!(rows(&ds, &between), Some(vec![200..500]));
    // A conjunct no page can rule out keeps every row; the other still narrows.
    let both = PruneExpr::And(vec![cmp("x", CmpOp::GtEq, 950), cmp("y", CmpOp::Eq, 3)]);
    let s = ds.prune_pages(RG, &both).unwrap();
    assert_eq!(s.rows, vec![900..1000]);
    assert_eq!((s.pages_kept, s.pages_total), (2, 20));
    // OR over one column: both ends.
    let ends = PruneExpr::Or(vec![cmp("x", CmpOp::Lt, 100), cmp("x", CmpOp::Gt, 900)]);
    assert_eq!(rows(&ds, &ends), Some(vec![0..100, 900..1000]));
    // IS NULL keeps the pages with NULLs; a value no page holds keeps nothing.
    let nulls = PruneExpr::IsNull {
        column: "n".into(),
        negated: false,
    };
    assert_eq!(rows(&ds, &nulls), Some(vec![0..300]));
    assert_eq!(rows(&ds, &cmp("x", CmpOp::Eq, 5000)), Some(vec![]));
    // Contradicting conjuncts on two columns: nothing.
    let none = PruneExpr::And(vec![cmp("x", CmpOp::Lt, 150), cmp("n", CmpOp::GtEq, 0)]);
    assert_eq!(rows(&ds, &none), Some(vec![]));
}

#[test]
fn what_pages_cannot_decide_is_not_narrowed() {
    let (_d, ds) = write(true);
    // One conjunct over two columns: no page statistics apply.
    let mixed = PruneExpr::Or(vec![cmp("x", CmpOp::Eq, 5), cmp("y", CmpOp::Eq, 2)]);
    assert_eq!(rows(&ds, &mixed), None);
    assert_eq!(rows(&ds, &PruneExpr::Unknown), None);
    assert_eq!(rows(&ds, &cmp("missing", CmpOp::Eq, 1)), None);
    // Without page statistics in the file, nothing is narrowed.
    let (_d2, chunk_only) = write(false);
    assert_eq!(rows(&chunk_only, &cmp("x", CmpOp::Eq, 425)), None);
}

#[test]
fn the_kept_rows_are_read_and_hold_every_match() {
    let (_d, ds) = write(true);
    let e = PruneExpr::Or(vec![cmp("x", CmpOp::Eq, 123), cmp("x", CmpOp::Eq, 876)]);
    let selection = ds.prune_pages(RG, &e).unwrap();
    let morsels = ds.plan_morsels_in(&[(RG, selection.rows)], 64);
    let mut read = Vec::new();
    for morsel in &morsels {
        let options = ReadOptions {
            projection: Some(vec!["x".into()]),
            ..ReadOptions::default()
        };
        for batch in ds.read_morsel(morsel, &options).unwrap() {
            let batch = batch.unwrap();
            read.extend(
                batch
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
    }
    let expected: Vec<i64> = (100..200).chain(800..900).collect();
    assert_eq!(read, expected);
}
