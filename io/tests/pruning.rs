//! Row-group pruning and slice reads on small files with known statistics.
//!
//! Each file has 10 row groups of 10 rows: `x` = 0..99 (row group i holds 10i..10i+9), `n` is
//! NULL in row groups 0–1 and `x` otherwise, `f` floats with a NaN in row group 9, `s` strings.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use ooc_io::{CmpOp, IoError, ParquetDataset, PruneExpr, ReadOptions};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

fn fixture() -> (tempfile::TempDir, ParquetDataset) {
    let dir = tempfile::tempdir().unwrap();
    let x: Vec<i64> = (0..100).collect();
    let n: Vec<Option<i64>> = x.iter().map(|&v| (v >= 20).then_some(v)).collect();
    let f: Vec<f64> = x
        .iter()
        .map(|&v| if v == 95 { f64::NAN } else { v as f64 })
        .collect();
    let s: Vec<String> = x.iter().map(|v| format!("k{:03}", v)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new("n", DataType::Int64, true),
        Field::new("f", DataType::Float64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(x)) as ArrayRef,
            Arc::new(Int64Array::from(n)),
            Arc::new(Float64Array::from(f)),
            Arc::new(StringArray::from(s)),
        ],
    )
    .unwrap();
    let path = dir.path().join("t.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(10))
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

fn cmp(column: &str, op: CmpOp, value: ArrayRef) -> PruneExpr {
    PruneExpr::Compare {
        column: column.into(),
        op,
        value,
    }
}

/// Indices of the row groups kept.
fn kept(ds: &ParquetDataset, e: &PruneExpr) -> Vec<usize> {
    ds.prune(e).0.iter().map(|rg| rg.row_group).collect()
}

#[test]
fn comparisons_prune_by_min_max() {
    let (_d, ds) = fixture();
    assert_eq!(kept(&ds, &cmp("x", CmpOp::Eq, int(42))), vec![4]);
    assert_eq!(kept(&ds, &cmp("x", CmpOp::Lt, int(10))), vec![0]);
    assert_eq!(kept(&ds, &cmp("x", CmpOp::LtEq, int(10))), vec![0, 1]);
    assert_eq!(kept(&ds, &cmp("x", CmpOp::Gt, int(89))), vec![9]);
    assert_eq!(kept(&ds, &cmp("x", CmpOp::GtEq, int(89))), vec![8, 9]);
    assert_eq!(kept(&ds, &cmp("x", CmpOp::NotEq, int(42))).len(), 10);
    // A literal of another integer width is cast exactly.
    let v: ArrayRef = Arc::new(Int32Array::from(vec![42]));
    assert_eq!(kept(&ds, &cmp("x", CmpOp::Eq, v)), vec![4]);
    // A non-integral literal cannot be cast exactly: never prune wrongly.
    let v: ArrayRef = Arc::new(Float64Array::from(vec![42.5]));
    assert_eq!(kept(&ds, &cmp("x", CmpOp::Eq, v)).len(), 10);
}

#[test]
fn between_in_and_or_not() {
    let (_d, ds) = fixture();
    let between = PruneExpr::Between {
        column: "x".into(),
        low: int(15),
        high: int(25),
        negated: false,
    };
    assert_eq!(kept(&ds, &between), vec![1, 2]);
    let not_between = PruneExpr::Between {
        column: "x".into(),
        low: int(10),
        high: int(89),
        negated: true,
    };
    assert_eq!(kept(&ds, &not_between), vec![0, 9]);
    let in_list = PruneExpr::InList {
        column: "x".into(),
        values: vec![int(3), int(77)],
        negated: false,
    };
    assert_eq!(kept(&ds, &in_list), vec![0, 7]);
    let or = PruneExpr::Or(vec![
        cmp("x", CmpOp::Lt, int(5)),
        cmp("x", CmpOp::Gt, int(95)),
    ]);
    assert_eq!(kept(&ds, &or), vec![0, 9]);
    let and = PruneExpr::And(vec![
        cmp("x", CmpOp::GtEq, int(30)),
        cmp("x", CmpOp::Lt, int(50)),
    ]);
    assert_eq!(kept(&ds, &and), vec![3, 4]);
    // NOT (x < 90) keeps only row groups where some x >= 90.
    assert_eq!(
        kept(&ds, &PruneExpr::Not(Box::new(cmp("x", CmpOp::Lt, int(90))))),
        vec![9]
    );
    assert_eq!(kept(&ds, &PruneExpr::Unknown).len(), 10);
}

#[test]
fn nulls_are_neither_true_nor_false() {
    let (_d, ds) = fixture();
    // Row groups 0 and 1 are all NULL in n: no comparison can be TRUE there, nor its negation.
    assert_eq!(
        kept(&ds, &cmp("n", CmpOp::GtEq, int(0))),
        (2..10).collect::<Vec<_>>()
    );
    assert_eq!(
        kept(&ds, &PruneExpr::Not(Box::new(cmp("n", CmpOp::Lt, int(0))))),
        (2..10).collect::<Vec<_>>()
    );
    assert_eq!(
        kept(
            &ds,
            &PruneExpr::IsNull {
                column: "n".into(),
                negated: false
            }
        ),
        vec![0, 1]
    );
    assert_eq!(
        kept(
            &ds,
            &PruneExpr::IsNull {
                column: "n".into(),
                negated: true
            }
        ),
        (2..10).collect::<Vec<_>>()
    );
    // NOT IN with the value absent everywhere keeps all non-NULL row groups.
    let not_in = PruneExpr::InList {
        column: "n".into(),
        values: vec![int(-1)],
        negated: true,
    };
    assert_eq!(kept(&ds, &not_in), (2..10).collect::<Vec<_>>());
}

#[test]
fn floats_and_strings_never_prune_wrongly() {
    let (_d, ds) = fixture();
    // NaN (row group 9) is above every number in SQL, but absent from the statistics.
    let gt: ArrayRef = Arc::new(Float64Array::from(vec![1000.0]));
    assert!(kept(&ds, &cmp("f", CmpOp::Gt, gt)).contains(&9));
    let lt: ArrayRef = Arc::new(Float64Array::from(vec![5.0]));
    assert_eq!(kept(&ds, &cmp("f", CmpOp::Lt, lt)), vec![0]);
    let s: ArrayRef = Arc::new(StringArray::from(vec!["k050"]));
    assert_eq!(kept(&ds, &cmp("s", CmpOp::Eq, s)), vec![5]);
    // An unknown column never prunes.
    assert_eq!(kept(&ds, &cmp("nope", CmpOp::Eq, int(1))).len(), 10);
}

#[test]
fn morsels_slice_row_groups_and_read_the_same_rows() {
    let (_d, ds) = fixture();
    let all = ds.all_row_groups();
    let morsels = ds.plan_morsels(&all, 3);
    assert_eq!(
        morsels.len(),
        40,
        "10 rows per row group in slices of 3: 4 morsels each"
    );
    let options = ReadOptions {
        projection: Some(vec!["s".into(), "x".into()]),
        batch_size: 2,
        bytes_read: None,
        late_filter: None,
        read_as: Vec::new(),
        constants: Vec::new(),
    };
    let mut xs = Vec::new();
    for m in &morsels {
        for batch in ds.read_morsel(m, &options).unwrap() {
            let batch = batch.unwrap();
            assert!(batch.num_rows() <= 2);
            assert_eq!(
                batch.schema().field(0).name(),
                "s",
                "projection order is honoured"
            );
            let x = batch
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            xs.extend(x.values().iter().copied());
        }
    }
    assert_eq!(xs, (0..100).collect::<Vec<i64>>());
}

#[test]
fn order_row_groups_best_first() {
    let (_d, ds) = fixture();
    let mut rgs = ds.all_row_groups();
    ds.order_row_groups(&mut rgs, "x", true);
    assert_eq!(rgs.first().unwrap().row_group, 9);
    ds.order_row_groups(&mut rgs, "x", false);
    assert_eq!(rgs.first().unwrap().row_group, 0);
}

#[test]
fn missing_locations_and_bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ParquetDataset::open(dir.path().to_str().unwrap()),
        Err(IoError::NoFiles { .. })
    ));
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, vec![7u8; 100]).unwrap();
    match ParquetDataset::open(bad.to_str().unwrap()) {
        Err(IoError::CorruptFile { path, .. }) => assert_eq!(path, bad),
        other => panic!("{other:?}"),
    }
}
