//! A few rows read from the plain-encoded pages of a chunk whose dictionary overflowed: the
//! dictionary page is not read, and the values are right wherever the selection falls (in the
//! dictionary-encoded pages at the start too).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use ooc_io::{Morsel, ParquetDataset, ReadOptions, RowGroupRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const ROWS: i64 = 4000;

fn fixture(dir: &std::path::Path) -> ParquetDataset {
    let path = dir.join("t.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values((0..ROWS).map(|i| i * 7919))) as ArrayRef,
            Arc::new(StringArray::from_iter(
                (0..ROWS).map(|i| (i % 11 != 0).then(|| format!("value-{i}"))),
            )),
        ],
    )
    .unwrap();
    // A 2 KiB dictionary limit: each chunk falls back to plain after a few pages.
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(2000))
        .set_dictionary_page_size_limit(2048)
        .set_data_page_row_count_limit(100)
        .set_write_batch_size(100)
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    ParquetDataset::open(path.to_str().unwrap()).unwrap()
}

fn read(ds: &ParquetDataset, morsel: &Morsel) -> (Vec<(i64, Option<String>)>, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let options = ReadOptions {
        projection: Some(vec!["k".into(), "s".into()]),
        bytes_read: Some(Arc::clone(&counter)),
        ..ReadOptions::default()
    };
    let mut out = Vec::new();
    for batch in ds.read_morsel(morsel, &options).unwrap() {
        let batch = batch.unwrap();
        let k = batch.column(0).as_primitive::<Int64Type>();
        let s = batch.column(1).as_string::<i32>();
        for i in 0..batch.num_rows() {
            out.push((k.value(i), s.is_valid(i).then(|| s.value(i).to_string())));
        }
    }
    (out, counter.load(Ordering::Relaxed))
}

fn expected(rows: impl Iterator<Item = usize>, rg: usize) -> Vec<(i64, Option<String>)> {
    rows.map(|r| {
        let i = (rg * 2000 + r) as i64;
        (i * 7919, (i % 11 != 0).then(|| format!("value-{i}")))
    })
    .collect()
}

#[test]
fn rows_of_plain_pages_are_read_without_the_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path());
    let meta = &ds.files()[0].metadata;
    let column = meta.row_group(0).column(0);
    let dictionary = column
        .dictionary_page_offset()
        .expect("k starts dictionary-encoded");
    let dictionary_bytes = (column.data_page_offset() - dictionary) as u64;
    for rg in 0..2 {
        for (start, len, selection) in [
            (0usize, 3usize, None),
            (1500, 1, None),
            (1999, 1, None),
            (150, 700, None),
            (
                10,
                1980,
                Some(vec![10..12, 500..501, 1700..1710, 1985..1990]),
            ),
            (1200, 700, Some(vec![1200..1201, 1899..1900])),
        ] {
            let morsel = Morsel {
                row_group: RowGroupRef {
                    file: 0,
                    row_group: rg,
                },
                row_offset: start,
                num_rows: len,
                selection: selection.clone().map(|s| Arc::from(s.as_slice())),
            };
            let rows: Vec<usize> = match &selection {
                Some(ranges) => ranges.iter().flat_map(|r| r.clone()).collect(),
                None => (start..start + len).collect(),
            };
            let (got, bytes) = read(&ds, &morsel);
            assert_eq!(
                got,
                expected(rows.into_iter(), rg),
                "rows {start}+{len} {selection:?}"
            );
            if start >= 1500 && len == 1 {
                assert!(
                    bytes < dictionary_bytes,
                    "one plain row read {bytes} bytes; the dictionary alone is {dictionary_bytes}"
                );
            }
        }
    }
}
