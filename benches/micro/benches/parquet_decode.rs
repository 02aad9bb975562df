//! Parquet decode throughput per column type, through ooc-io's morsel reader.
//!
//! One file of 1 Mi `lineitem`-shaped rows is written as `ooc-datagen` writes TPC-H (zstd
//! level 1, page statistics and the page index, 20 000-row pages, here 256 Ki-row row groups).
//! Each iteration reads one column, or all of them, morsel by morsel (128 Ki rows, the
//! engine's default) on one thread, exactly as a scan partition does: memory-mapped column
//! chunks, decompression, decoding, and the cast to the data set's unified schema (a no-op
//! here). Throughput is rows/s and decoded Arrow bytes/s.
//!
//! | benchmark          | column            | Parquet encoding it exercises                  |
//! |--------------------|-------------------|------------------------------------------------|
//! | `int64`            | `l_orderkey`      | plain INT64 (too many values for a dictionary) |
//! | `decimal128_15_2`  | `l_extendedprice` | INT64 widened to i128 on decode                |
//! | `date32`           | `l_shipdate`      | dictionary INT32 (2526 values)                 |
//! | `string_low_card`  | `l_shipmode`      | dictionary BYTE_ARRAY (7 values)               |
//! | `string_high_card` | `l_comment`       | plain BYTE_ARRAY, nearly all distinct          |
//! | `all_columns`      | all 9             | everything at once                             |

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ooc_io::{Morsel, ParquetDataset, ReadOptions};
use ooc_micro_bench::{lineitem, slice_bytes, tune_allocator, BATCH_ROWS, SAMPLE_SIZE, WARM_UP};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

const ROWS: usize = 1 << 20;
const ROW_GROUP_ROWS: usize = 1 << 18;
const MORSEL_ROWS: usize = 1 << 17;

/// Write the test file as the TPC-H generator would.
fn write_file(path: &Path) {
    let batch = lineitem(ROWS);
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(20_000)
        .build();
    let file = std::fs::File::create(path).expect("create the Parquet file");
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).expect("Parquet writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// Decode `projection` from every morsel; returns (rows, decoded bytes).
fn decode(dataset: &ParquetDataset, morsels: &[Morsel], projection: &[String]) -> (u64, u64) {
    let options = ReadOptions {
        projection: Some(projection.to_vec()),
        batch_size: BATCH_ROWS,
        bytes_read: None,
        late_filter: None,
        read_as: Vec::new(),
        constants: Vec::new(),
    };
    let (mut rows, mut bytes) = (0u64, 0u64);
    for morsel in morsels {
        for batch in dataset.read_morsel(morsel, &options).expect("open morsel") {
            let batch = black_box(batch.expect("decode"));
            rows += batch.num_rows() as u64;
            bytes += slice_bytes(std::slice::from_ref(&batch));
        }
    }
    (rows, bytes)
}

fn parquet_decode(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lineitem.parquet");
    write_file(&path);
    let dataset = ParquetDataset::open(path.to_str().expect("UTF-8 path")).expect("open");
    let morsels = dataset.plan_morsels(&dataset.all_row_groups(), MORSEL_ROWS);
    let metadata = &dataset.files()[0].metadata;
    let all: Vec<String> = dataset
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let cases: [(&str, Vec<String>); 6] = [
        ("int64", vec!["l_orderkey".into()]),
        ("decimal128_15_2", vec!["l_extendedprice".into()]),
        ("date32", vec!["l_shipdate".into()]),
        ("string_low_card", vec!["l_shipmode".into()]),
        ("string_high_card", vec!["l_comment".into()]),
        ("all_columns", all.clone()),
    ];

    let mut group = c.benchmark_group("parquet_decode");
    for (name, projection) in cases {
        // Bytes on disk for the report: compressed column chunk sizes over all row groups.
        let compressed: i64 = metadata
            .row_groups()
            .iter()
            .flat_map(|rg| rg.columns())
            .filter(|chunk| {
                projection
                    .iter()
                    .any(|p| chunk.column_path().string() == *p)
            })
            .map(|chunk| chunk.compressed_size())
            .sum();
        let (rows, bytes) = decode(&dataset, &morsels, &projection);
        eprintln!(
            "parquet_decode/{name}: {rows} rows, {:.1} MiB compressed on disk, {:.1} MiB decoded",
            compressed as f64 / (1 << 20) as f64,
            bytes as f64 / (1 << 20) as f64
        );
        group.throughput(Throughput::ElementsAndBytes {
            elements: rows,
            bytes,
        });
        group.bench_function(name, |b| b.iter(|| decode(&dataset, &morsels, &projection)));
    }
    group.finish();
}

fn config() -> Criterion {
    tune_allocator();
    Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        // The slowest cases here take 40–220 ms an iteration: 3 s fits 55 of them.
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = parquet_decode
}
criterion_main!(benches);
