//! Tests of text reading: inference, chunking across quoted newlines, compression, bad records.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};

use super::chunks::csv_record_end;
use super::infer::sniff_delimiter;
use super::*;
use crate::error::IoError;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().to_string()
}

/// Every batch of the data set, cut into chunks of `chunk_bytes`.
fn read_all(
    dataset: TextDataset,
    columns: &[&str],
    chunk_bytes: usize,
) -> Result<Vec<RecordBatch>> {
    let dataset = Arc::new(dataset);
    let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let projection = dataset.projection_indices(&names)?;
    let mut chunker = TextChunker::new(Arc::clone(&dataset), chunk_bytes, None);
    let mut out = Vec::new();
    while let Some(chunk) = chunker.next_chunk()? {
        let decoder = ChunkDecoder::new(Arc::clone(&dataset), chunk, projection.clone(), 3)?;
        for batch in decoder {
            out.push(batch?);
        }
    }
    Ok(out)
}

fn ints(batches: &[RecordBatch], column: usize) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(column).as_primitive::<Int64Type>().clone();
            (0..a.len())
                .map(move |i| a.is_valid(i).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn strings(batches: &[RecordBatch], column: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(column).as_string::<i32>().clone();
            (0..a.len())
                .map(move |i| a.is_valid(i).then(|| a.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn csv_options() -> TextOptions {
    TextOptions::new(TextFormat::Csv(CsvOptions::default()))
}

#[test]
fn infers_types_header_and_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        b"id;name;price;day;ok\n1;ann;1.5;2024-01-02;true\n2;;2.25;2024-02-03;false\n",
    );
    let ds = TextDataset::open(&path, csv_options()).unwrap();
    let schema = ds.schema();
    let types: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("id".into(), DataType::Int64),
            ("name".into(), DataType::Utf8),
            ("price".into(), DataType::Float64),
            ("day".into(), DataType::Date32),
            ("ok".into(), DataType::Boolean),
        ]
    );
    assert_eq!(ds.csv_settings(), Some((b';', true)));
    assert_eq!(ds.estimated_rows(), 2);
    let batches = read_all(ds, &["name", "id"], 1 << 12).unwrap();
    assert_eq!(strings(&batches, 0), vec![Some("ann".into()), None]);
    assert_eq!(ints(&batches, 1), vec![Some(1), Some(2)]);
}

#[test]
fn headerless_files_get_column_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"1,x\n2,y\n");
    let ds = TextDataset::open(&path, csv_options()).unwrap();
    assert_eq!(ds.csv_settings(), Some((b',', false)));
    let names: Vec<String> = ds
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, vec!["column0", "column1"]);
    let batches = read_all(ds, &["column0"], 1 << 12).unwrap();
    assert_eq!(ints(&batches, 0), vec![Some(1), Some(2)]);
}

#[test]
fn record_ends_respect_quotes_and_escapes() {
    assert_eq!(csv_record_end(b"a,\"x\ny\"\nb", b'"', None, false), Some(8));
    assert_eq!(csv_record_end(b"a,\"x\ny", b'"', None, false), None);
    assert_eq!(csv_record_end(b"a\nb\nc", b'"', None, true), Some(2));
    assert_eq!(
        csv_record_end(b"a,\"x\\\"\n\"\nb", b'"', Some(b'\\'), false),
        Some(9)
    );
    // An escape as the buffer's last byte (the escaped byte is in the next read).
    assert_eq!(
        csv_record_end(b"a\n\"x\\", b'"', Some(b'\\'), false),
        Some(2)
    );
    assert_eq!(csv_record_end(b"\"\\", b'"', Some(b'\\'), false), None);
    assert_eq!(sniff_delimiter(b"a\tb\tc", b'"'), b'\t');
    assert_eq!(sniff_delimiter(b"\"a,b\"|c", b'"'), b'|');
    assert_eq!(sniff_delimiter(b"abc", b'"'), b',');
}

#[test]
fn tiny_chunks_never_split_a_quoted_newline() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,note\n");
    for i in 0..200 {
        text.push_str(&format!("{i},\"line one\nline \"\"two\"\" of {i}\"\n"));
    }
    let path = write(dir.path(), "q.csv", text.as_bytes());
    let ds = TextDataset::open(&path, csv_options()).unwrap();
    let batches = read_all(ds, &["id", "note"], 64).unwrap();
    let ids = ints(&batches, 0);
    assert_eq!(ids, (0..200).map(Some).collect::<Vec<_>>());
    assert_eq!(
        strings(&batches, 1)[7].as_deref(),
        Some("line one\nline \"two\" of 7")
    );
}

#[test]
fn gzip_and_zstd_files_are_read_and_globbed() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"k,v\n1,a\n2,b\n").unwrap();
    write(dir.path(), "part1.csv.gz", &gz.finish().unwrap());
    let zst = zstd::encode_all(&b"k,v\n3,c\n"[..], 3).unwrap();
    write(dir.path(), "part2.csv.zst", &zst);
    let glob = format!("{}/*.csv*", dir.path().display());
    let ds = TextDataset::open(&glob, csv_options()).unwrap();
    assert_eq!(ds.files()[0].compression, Compression::Gzip);
    assert_eq!(ds.files()[1].compression, Compression::Zstd);
    let batches = read_all(ds, &["k", "v"], 1 << 12).unwrap();
    assert_eq!(ints(&batches, 0), vec![Some(1), Some(2), Some(3)]);
}

#[test]
fn a_bad_value_names_file_line_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{i}\n"));
    }
    text.push_str("50,oops\n51,51\n");
    let path = write(dir.path(), "bad.csv", text.as_bytes());
    let mut options = csv_options();
    options.sample_rows = 10;
    let ds = TextDataset::open(&path, options.clone()).unwrap();
    let err = read_all(ds, &["b"], 1 << 12).unwrap_err();
    match &err {
        IoError::BadRecord { line, message, .. } => {
            assert_eq!(*line, 52);
            assert!(
                message.contains("'b'") && message.contains("oops"),
                "{message}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("bad.csv:52"), "{err}");

    // Skipped on request: every good row, the bad one counted.
    options.skip_bad_rows = true;
    let ds = Arc::new(TextDataset::open(&path, options).unwrap());
    let mut chunker = TextChunker::new(Arc::clone(&ds), 1 << 12, None);
    let chunk = chunker.next_chunk().unwrap().unwrap();
    let mut decoder = ChunkDecoder::new(Arc::clone(&ds), chunk, vec![0, 1], 16).unwrap();
    let batches: Vec<RecordBatch> = decoder.by_ref().map(|b| b.unwrap()).collect();
    let got = ints(&batches, 1);
    assert_eq!(got.len(), 51);
    assert!(!got.contains(&None));
    assert_eq!(decoder.skipped_rows(), 1);
    assert!(decoder.first_skip().unwrap().contains(":52:"));
}

#[test]
fn wrong_field_counts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "short.csv", b"a,b\n1,2\n3\n4,5\n");
    let ds = TextDataset::open(&path, csv_options()).unwrap();
    let err = read_all(ds, &["a"], 1 << 12).unwrap_err().to_string();
    assert!(
        err.contains("short.csv:3") && err.contains("expected 2 fields, found 1"),
        "{err}"
    );
}

#[test]
fn overrides_and_null_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "n.csv", b"a,b\n1,NA\n2,3.50\n");
    let mut options = csv_options();
    options.null_values = vec!["NA".into()];
    options.types = vec![("b".into(), DataType::Decimal128(10, 2))];
    let ds = TextDataset::open(&path, options.clone()).unwrap();
    assert_eq!(
        ds.schema().field(1).data_type(),
        &DataType::Decimal128(10, 2)
    );
    let batches = read_all(ds, &["b"], 1 << 12).unwrap();
    let b = batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Decimal128Type>();
    assert!(b.is_null(0));
    assert_eq!(b.value(1), 350);
    options.types = vec![("zz".into(), DataType::Int32)];
    let err = TextDataset::open(&path, options).unwrap_err().to_string();
    assert!(err.contains("'zz'") && err.contains("a, b"), "{err}");
}

#[test]
fn ndjson_is_read_and_bad_lines_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "e.ndjson",
        b"{\"a\": 1, \"s\": \"x\"}\n{\"a\": 2}\n\n{\"a\": 3, \"s\": \"z\"}\n",
    );
    let options = TextOptions::new(TextFormat::NdJson);
    let ds = TextDataset::open(&path, options.clone()).unwrap();
    assert_eq!(ds.schema().field(0).data_type(), &DataType::Int64);
    let batches = read_all(ds, &["s", "a"], 8).unwrap();
    assert_eq!(ints(&batches, 1), vec![Some(1), Some(2), Some(3)]);
    assert_eq!(
        strings(&batches, 0),
        vec![Some("x".into()), None, Some("z".into())]
    );

    let bad = write(
        dir.path(),
        "bad.ndjson",
        b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": oops}\n",
    );
    let ds = TextDataset::open(&bad, {
        let mut o = options.clone();
        o.sample_rows = 1;
        o
    })
    .unwrap();
    let err = read_all(ds, &["a"], 1 << 12).unwrap_err().to_string();
    assert!(err.contains("bad.ndjson:3"), "{err}");
}

#[test]
fn files_must_share_the_header() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.csv", b"a,b\n1,2\n");
    write(dir.path(), "2.csv", b"a,c\n1,2\n");
    let ds = TextDataset::open(&dir.path().to_string_lossy(), csv_options()).unwrap();
    let err = read_all(ds, &["a"], 1 << 12).unwrap_err().to_string();
    assert!(err.contains("2.csv") && err.contains("a, c"), "{err}");
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bom.csv", b"\xEF\xBB\xBFid,v\r\n1,a\r\n2,b\r\n");
    let ds = TextDataset::open(&path, csv_options()).unwrap();
    assert_eq!(ds.schema().field(0).name(), "id");
    let batches = read_all(ds, &["id", "v"], 1 << 12).unwrap();
    assert_eq!(ints(&batches, 0), vec![Some(1), Some(2)]);
    assert_eq!(
        strings(&batches, 1),
        vec![Some("a".into()), Some("b".into())]
    );
}
