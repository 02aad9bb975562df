//! Bloom-filter pruning on a file whose statistics cannot prune.
//!
//! 10 row groups of 100 rows; `k` = (i × 7919) mod 1000 spreads each row group over the whole
//! range, so min/max keep every row group for `k = v`; `s` = "v{k}", `d` = k + 0.05 as
//! DECIMAL(15,2), all three with bloom filters; `plain` = k without one.

use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use ooc_io::{CmpOp, ParquetDataset, PruneExpr, RowGroupRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

fn k_of(i: i64) -> i64 {
    (i * 7919) % 1000
}

fn fixture() -> (tempfile::TempDir, ParquetDataset) {
    let dir = tempfile::tempdir().unwrap();
    let k: Vec<i64> = (0..1000).map(k_of).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
        Field::new("d", DataType::Decimal128(15, 2), false),
        Field::new("plain", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(k.clone())) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                k.iter().map(|v| format!("v{v}")),
            )),
            Arc::new(
                Decimal128Array::from_iter_values(k.iter().map(|&v| v as i128 * 100 + 5))
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
            Arc::new(Int64Array::from(k)),
        ],
    )
    .unwrap();
    let mut props = WriterProperties::builder().set_max_row_group_row_count(Some(100));
    for column in ["k", "s", "d"] {
        let path = ColumnPath::from(column);
        props = props
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_max_ndv(path.clone(), 100)
            .set_column_bloom_filter_fpp(path, 0.001);
    }
    let path = dir.path().join("t.parquet");
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        schema,
        Some(props.build()),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    (dir, ParquetDataset::open(path.to_str().unwrap()).unwrap())
}

/// The row groups bloom filters rule out.
fn excluded(ds: &ParquetDataset, e: &PruneExpr) -> Vec<usize> {
    (0..10)
        .filter(|&row_group| ds.bloom_excludes(RowGroupRef { file: 0, row_group }, e))
        .collect()
}

fn eq(column: &str, value: ArrayRef) -> PruneExpr {
    PruneExpr::Compare {
        column: column.into(),
        op: CmpOp::Eq,
        value,
    }
}

fn int(v: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![v]))
}

/// The row group holding the row whose `k` is `v`.
fn home(v: i64) -> usize {
    (0..1000).position(|i| k_of(i) == v).unwrap() / 100
}

#[test]
fn present_values_keep_their_row_group_and_absent_ones_are_ruled_out() {
    let (_d, ds) = fixture();
    assert!(ds.has_bloom_filters());
    for v in [0, 17, 423, 999] {
        let out = excluded(&ds, &eq("k", int(v)));
        assert!(
            !out.contains(&home(v)),
            "k = {v} lives in row group {}",
            home(v)
        );
        // False positives are rare at this size: most other row groups go.
        assert!(out.len() >= 8, "k = {v}: {out:?}");
    }
    assert!(excluded(&ds, &eq("k", int(5000))).len() >= 9);
    // IN keeps the row groups of each of its values.
    let both = PruneExpr::InList {
        column: "k".into(),
        values: vec![int(17), int(423)],
        negated: false,
    };
    let out = excluded(&ds, &both);
    assert!(
        !out.contains(&home(17)) && !out.contains(&home(423)),
        "{out:?}"
    );
    assert!(out.len() >= 6, "{out:?}");
}

#[test]
fn strings_and_decimals_are_probed_as_stored() {
    let (_d, ds) = fixture();
    let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let out = excluded(&ds, &eq("s", s("v423")));
    assert!(!out.contains(&home(423)) && out.len() >= 8, "{out:?}");
    assert!(excluded(&ds, &eq("s", s("nope"))).len() >= 9);
    let dec = |unscaled: i128| {
        Arc::new(
            Decimal128Array::from(vec![unscaled])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ) as ArrayRef
    };
    let out = excluded(&ds, &eq("d", dec(42305)));
    assert!(!out.contains(&home(423)) && out.len() >= 8, "{out:?}");
    // The same value at another scale is cast exactly first.
    let rescaled = Arc::new(
        Decimal128Array::from(vec![423050i128])
            .with_precision_and_scale(16, 3)
            .unwrap(),
    ) as ArrayRef;
    assert!(!excluded(&ds, &eq("d", rescaled)).contains(&home(423)));
    // An integer literal compared with a decimal column: 423 is 423.00, absent everywhere.
    assert!(excluded(&ds, &eq("d", int(423))).len() >= 9);
}

#[test]
fn what_a_filter_cannot_decide_keeps_the_row_group() {
    let (_d, ds) = fixture();
    // No bloom filter on the column.
    assert!(excluded(&ds, &eq("plain", int(5000))).is_empty());
    // Not an equality: a bloom filter says nothing.
    for e in [
        PruneExpr::Compare {
            column: "k".into(),
            op: CmpOp::NotEq,
            value: int(5000),
        },
        PruneExpr::InList {
            column: "k".into(),
            values: vec![int(5000)],
            negated: true,
        },
        PruneExpr::Or(vec![eq("k", int(5000)), eq("plain", int(1))]),
    ] {
        assert!(excluded(&ds, &e).is_empty(), "{e}");
    }
    // A literal that does not cast exactly to the column's type is not probed.
    let half = Arc::new(arrow::array::Float64Array::from(vec![0.5])) as ArrayRef;
    assert!(excluded(&ds, &eq("k", half)).is_empty());
    // One conjunct is enough to rule a row group out.
    let and = PruneExpr::And(vec![eq("plain", int(1)), eq("k", int(5000))]);
    assert!(excluded(&ds, &and).len() >= 9);
}
