//! Writing a stream of record batches to one Parquet file, atomically.
//!
//! In: a schema, writer properties and an iterator of batches. Out: `NAME.parquet`, written as
//! `NAME.parquet.tmp` first and renamed when complete (the temporary file is removed on error).
//! The `ArrowWriter` keeps only the *encoded* pages of the row group in progress, so a batch can
//! be dropped as soon as it is written: memory is bounded by one encoded row group, not the file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::thread;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{DatagenError, Result};

/// Rows per data page: small enough for useful page-level pruning.
pub(crate) const DATA_PAGE_ROW_LIMIT: usize = 20_000;

/// What was written (or found already present) for one output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    /// Total rows (0 when the file was skipped because it already existed).
    pub rows: u64,
    pub row_groups: usize,
    pub bytes: u64,
    /// True when the file already existed and was left untouched.
    pub skipped: bool,
}

/// Writer properties shared by every generated file: zstd level 1, page-level statistics, the
/// page index, `DATA_PAGE_ROW_LIMIT` rows per page. `max_row_group_rows = None` means one row
/// group for the whole file.
pub(crate) fn writer_properties(max_row_group_rows: Option<usize>) -> Result<WriterProperties> {
    if max_row_group_rows == Some(0) {
        return Err(DatagenError::InvalidArgument(
            "row groups must hold at least one row".to_string(),
        ));
    }
    let zstd_level = ZstdLevel::try_new(1).expect("zstd level 1 is valid");
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd_level))
        .set_max_row_group_row_count(max_row_group_rows)
        .set_max_row_group_bytes(None)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(DATA_PAGE_ROW_LIMIT)
        .build())
}

/// The temporary name a file is written under before the final rename.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `batches` to `path` through `path.tmp` + rename.
pub(crate) fn write_parquet_atomically<I>(
    path: &Path,
    schema: SchemaRef,
    properties: WriterProperties,
    batches: I,
) -> Result<WrittenFile>
where
    I: IntoIterator<Item = Result<RecordBatch>>,
{
    let temporary = temporary_path(path);
    let outcome = write_batches(&temporary, schema, properties, batches);
    match outcome {
        Ok((rows, row_groups)) => {
            std::fs::rename(&temporary, path).map_err(|e| DatagenError::io(path, e))?;
            let bytes = std::fs::metadata(path)
                .map_err(|e| DatagenError::io(path, e))?
                .len();
            Ok(WrittenFile {
                path: path.to_path_buf(),
                rows,
                row_groups,
                bytes,
                skipped: false,
            })
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}

fn write_batches<I>(
    temporary: &Path,
    schema: SchemaRef,
    properties: WriterProperties,
    batches: I,
) -> Result<(u64, usize)>
where
    I: IntoIterator<Item = Result<RecordBatch>>,
{
    let parquet_error = |source| DatagenError::Parquet {
        path: temporary.to_path_buf(),
        source,
    };
    let file = File::create(temporary).map_err(|e| DatagenError::io(temporary, e))?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).map_err(parquet_error)?;
    for batch in batches {
        writer.write(&batch?).map_err(parquet_error)?;
    }
    let metadata = writer.close().map_err(parquet_error)?;
    let rows = metadata.file_metadata().num_rows() as u64;
    Ok((rows, metadata.num_row_groups()))
}

/// Decoded batches that may wait between a generator thread and the writer.
const CHANNEL_BATCHES: usize = 4;

/// The batches of one generated table.
pub(crate) type GeneratedBatches =
    Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>;

/// Write the table `name` to `path` (with bloom filters for those of `bloom_filter_columns`
/// it has): a helper thread runs `generate` into a bounded channel
/// while this thread encodes what arrives, so generation and encoding overlap on two cores and
/// at most `CHANNEL_BATCHES` decoded batches plus one encoded row group are in memory.
pub(crate) fn write_generated_table(
    name: &str,
    path: &Path,
    schema: SchemaRef,
    row_group_rows: usize,
    bloom_filter_columns: &[String],
    generate: impl FnOnce() -> GeneratedBatches + Send + 'static,
) -> Result<WrittenFile> {
    let mut properties = writer_properties(Some(row_group_rows))?;
    let blooms: Vec<&String> = bloom_filter_columns
        .iter()
        .filter(|c| schema.field_with_name(c).is_ok())
        .collect();
    if !blooms.is_empty() {
        let mut builder = properties.into_builder();
        for column in blooms {
            builder =
                builder.set_column_bloom_filter_enabled(ColumnPath::from(column.as_str()), true);
        }
        properties = builder.build();
    }
    let (sender, receiver) = sync_channel(CHANNEL_BATCHES);
    let generator = thread::Builder::new()
        .name(format!("generate-{name}"))
        .spawn(move || {
            for batch in generate() {
                // A closed channel means the writer failed; it reports the error itself.
                if sender.send(batch).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| DatagenError::io(path, e))?;
    let table = name.to_string();
    let written = write_parquet_atomically(
        path,
        schema,
        properties,
        receiver.into_iter().map(move |batch| {
            batch.map_err(|source| DatagenError::Arrow {
                table: table.clone(),
                source,
            })
        }),
    );
    generator
        .join()
        .map_err(|_| DatagenError::GeneratorPanicked {
            table: name.to_string(),
        })?;
    written
}
