//! Helpers shared by the engine's integration tests: reproducible pseudo-random numbers,
//! batches written as Parquet, sessions under a budget, rows rendered as text, spill directory listings and operator
//! metrics gathered over a plan.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use ooc_engine::{QueryStream, Session, SessionConfig};

/// A pseudo-random but reproducible sequence (SplitMix64).
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A batch of nullable columns named as given.
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// Write `batch` to a Parquet file at `path`, in row groups of `row_group_rows` rows.
pub fn write_parquet(path: &Path, batch: &RecordBatch, row_group_rows: usize) {
    let file = std::fs::File::create(path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// Every row as `a|b|c` text (NULL as `NULL`), in output order.
pub fn render(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// A two-thread session over the tables in `dir`, spilling under `spill_dir`.
pub fn session(dir: &Path, limit: Option<usize>, batch_size: usize, spill_dir: &Path) -> Session {
    let config = SessionConfig::default()
        .with_threads(2)
        .with_batch_size(batch_size)
        .with_memory_limit(limit)
        .with_temp_dir(Some(spill_dir.to_path_buf()));
    let session = Session::new(config);
    session.register_directory(dir).unwrap();
    session
}

/// Every file and directory under `dir`.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        out.push(e.path().display().to_string());
        if e.path().is_dir() {
            out.extend(entries(&e.path()));
        }
    }
    out
}

/// Spill rounds of the operators whose name starts with `prefix`.
pub fn spills(stream: &QueryStream, prefix: &str) -> u64 {
    stream
        .operator_stats()
        .iter()
        .filter(|op| op.name.starts_with(prefix))
        .map(|op| op.spills)
        .sum()
}
