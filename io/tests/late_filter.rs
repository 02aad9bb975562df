//! Late materialization: a morsel read with a [`LateFilter`] gives exactly the rows of the
//! same morsel read whole and then filtered, for every kind of column and any slice.
//!
//! One row group of 5,000 rows in pages of 500: `k` = 0..4999, `s` a string per row (stored
//! as bytes, unless asked for as a dictionary), `n` NULL for every third row, `m` = k % 10
//! (the filter column of most tests).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use ooc_io::{LateFilter, Morsel, ParquetDataset, ReadOptions, RowGroupRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const ROWS: i64 = 5000;

fn write(dir: &std::path::Path, name: &str) -> String {
    write_with(dir, name, false)
}

/// With `dictionary`, `s` is dictionary-encoded (the writer's default for so few values).
fn write_with(dir: &std::path::Path, name: &str, dictionary: bool) -> String {
    let k: Vec<i64> = (0..ROWS).collect();
    let s: Vec<String> = k
        .iter()
        .map(|v| format!("row number {v:05} of the file"))
        .collect();
    let n: Vec<Option<i64>> = k.iter().map(|&v| (v % 3 != 0).then_some(v * 2)).collect();
    let m: Vec<i64> = k.iter().map(|v| v % 10).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
        Field::new("m", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(k)) as ArrayRef,
            Arc::new(StringArray::from(s)),
            Arc::new(Int64Array::from(n)),
            Arc::new(Int64Array::from(m)),
        ],
    )
    .unwrap();
    let path = dir.join(name);
    let props = WriterProperties::builder()
        .set_data_page_row_count_limit(500)
        .set_write_batch_size(500)
        .set_column_dictionary_enabled("s".into(), dictionary)
        .build();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    path.to_str().unwrap().to_string()
}

/// A filter on the named columns given as a closure over them.
fn late(
    columns: &[&str],
    f: impl Fn(&RecordBatch) -> BooleanArray + Send + Sync + 'static,
) -> LateFilter {
    LateFilter {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        predicate: Arc::new(move |batch| Ok(f(batch))),
    }
}

fn read(
    ds: &ParquetDataset,
    morsel: &Morsel,
    late_filter: Option<LateFilter>,
) -> (RecordBatch, bool) {
    let options = ReadOptions {
        projection: Some(vec!["s".into(), "m".into(), "n".into(), "k".into()]),
        batch_size: 700,
        bytes_read: None,
        late_filter,
        read_as: Vec::new(),
        constants: Vec::new(),
    };
    let reader = ds.read_morsel(morsel, &options).unwrap();
    let filtered = reader.filtered();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let schema = ds.project_schema(options.projection.as_deref()).unwrap();
    (
        arrow::compute::concat_batches(&schema, &batches).unwrap(),
        filtered,
    )
}

fn morsel(row_offset: usize, num_rows: usize) -> Morsel {
    Morsel {
        row_group: RowGroupRef {
            file: 0,
            row_group: 0,
        },
        row_offset,
        num_rows,
        selection: None,
    }
}

/// `m` (column 0 of the filter's batch) in `values`.
fn m_in(values: &'static [i64]) -> impl Fn(&RecordBatch) -> BooleanArray + Send + Sync {
    move |b: &RecordBatch| {
        b.column(0)
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| values.contains(&v)))
            .collect()
    }
}

#[test]
fn late_rows_equal_filtered_whole_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ds = ParquetDataset::open(&write(dir.path(), "t.parquet")).unwrap();
    for (offset, rows) in [(0, 5000), (1234, 2000), (4999, 1), (300, 0)] {
        let m = morsel(offset, rows);
        let (whole, filtered) = read(&ds, &m, None);
        assert!(!filtered);
        assert_eq!(whole.num_rows(), rows);
        for values in [&[3i64][..], &[0, 9], &[], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]] {
            let values: &'static [i64] = Vec::leak(values.to_vec());
            let (late_rows, filtered) = read(&ds, &m, Some(late(&["m"], m_in(values))));
            assert!(filtered);
            let mask = m_in(values)(&whole.project(&[1]).unwrap());
            let expected = filter_record_batch(&whole, &mask).unwrap();
            assert_eq!(
                late_rows, expected,
                "slice {offset}+{rows}, m in {values:?}"
            );
        }
    }
}

#[test]
fn null_is_not_true_and_filters_on_several_columns() {
    let dir = tempfile::tempdir().unwrap();
    let ds = ParquetDataset::open(&write(dir.path(), "t.parquet")).unwrap();
    let m = morsel(100, 4000);
    // n > 5000 AND k < 4000 (columns given in this order: n, k); NULL n drops the row.
    let predicate = |b: &RecordBatch| -> BooleanArray {
        let n = b.column(0).as_primitive::<Int64Type>();
        let k = b.column(1).as_primitive::<Int64Type>();
        n.iter()
            .zip(k.iter())
            .map(|(n, k)| Some(n? > 5000 && k? < 4000))
            .collect()
    };
    let (late_rows, filtered) = read(&ds, &m, Some(late(&["n", "k"], predicate)));
    assert!(filtered);
    let k = late_rows.column(3).as_primitive::<Int64Type>();
    let expected: Vec<i64> = (2501..4000).filter(|v| v % 3 != 0).collect();
    assert_eq!(k.values().to_vec(), expected);
    let s = late_rows.column(0).as_string::<i32>();
    assert_eq!(s.value(0), "row number 02501 of the file");
    assert_eq!(late_rows.column(2).null_count(), 0);
}

#[test]
fn a_filter_on_a_column_the_file_lacks_is_left_to_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let ds = ParquetDataset::open(&write(dir.path(), "t.parquet")).unwrap();
    let (rows, filtered) = read(&ds, &morsel(0, 5000), Some(late(&["missing"], m_in(&[1]))));
    assert!(!filtered);
    assert_eq!(rows.num_rows(), 5000);
}

#[test]
fn a_failing_filter_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ds = ParquetDataset::open(&write(dir.path(), "t.parquet")).unwrap();
    let failing = LateFilter {
        columns: vec!["m".into()],
        predicate: Arc::new(|_| Err("division by zero in the filter".into())),
    };
    let options = ReadOptions {
        projection: Some(vec!["k".into(), "m".into(), "s".into()]),
        late_filter: Some(failing),
        ..ReadOptions::default()
    };
    let err = ds.read_morsel(&morsel(0, 5000), &options).err().unwrap();
    assert!(err.to_string().contains("division by zero"), "{err}");
}

#[test]
fn only_columns_worth_skipping_are_read_late() {
    let dir = tempfile::tempdir().unwrap();
    let m = morsel(0, 5000);
    // Strings in a dictionary, numbers: nothing is worth skipping rows of.
    let ds = ParquetDataset::open(&write_with(dir.path(), "d.parquet", true)).unwrap();
    let (rows, filtered) = read(&ds, &m, Some(late(&["m"], m_in(&[3]))));
    assert!(!filtered);
    assert_eq!(rows.num_rows(), 5000);
    let numbers = ReadOptions {
        projection: Some(vec!["k".into(), "m".into()]),
        late_filter: Some(late(&["m"], m_in(&[3]))),
        ..ReadOptions::default()
    };
    let dir2 = tempfile::tempdir().unwrap();
    let plain = ParquetDataset::open(&write(dir2.path(), "p.parquet")).unwrap();
    assert!(!plain.read_morsel(&m, &numbers).unwrap().filtered());
    // The same strings stored as bytes: read late.
    let (rows, filtered) = read(&plain, &m, Some(late(&["m"], m_in(&[3]))));
    assert!(filtered);
    assert_eq!(rows.num_rows(), 500);
}
