//! Streaming writers for each output format.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::atomic::AtomicFile;
use super::parquet::ParallelParquetWriter;
use crate::error::{EngineError, Result};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Comma-separated values with a header.
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    NdJson,
    /// zstd-compressed Parquet.
    Parquet,
    /// A NumPy `.npy` 2-D array of [`WriteOptions::npy_dtype`] (a file only).
    Npy,
    /// Aligned text table.
    Table,
}

impl OutputFormat {
    /// The format implied by a file name's extension.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            "ndjson" | "jsonl" => Some(Self::NdJson),
            "parquet" | "pq" => Some(Self::Parquet),
            "npy" => Some(Self::Npy),
            "txt" => Some(Self::Table),
            _ => None,
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.to_lowercase().as_str() {
            "csv" => Self::Csv,
            "json" => Self::Json,
            "ndjson" | "jsonl" => Self::NdJson,
            "parquet" => Self::Parquet,
            "npy" => Self::Npy,
            "table" => Self::Table,
            other => {
                return Err(format!(
                    "unknown format '{other}' (expected csv, json, ndjson, parquet, npy or table)"
                ))
            }
        })
    }
}

/// Writer settings.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// How NULL is written in CSV (default: empty).
    pub null_string: String,
    /// Threads encoding Parquet column chunks (default, `None`: one per core). Front ends pass
    /// the query's thread count, so that a query limited to some cores writes on as many.
    pub threads: Option<usize>,
    /// The element type of a `.npy` file (default `float32`).
    pub npy_dtype: super::NpyType,
    /// Columns of a Parquet file that get a bloom filter in every row group.
    pub bloom_filter_columns: Vec<String>,
}

/// Bloom filters are asked for Parquet output only, and for columns of the output.
fn check_bloom_filter_columns(
    schema: &SchemaRef,
    format: OutputFormat,
    columns: &[String],
) -> Result<()> {
    if columns.is_empty() {
        return Ok(());
    }
    if format != OutputFormat::Parquet {
        return Err(EngineError::Plan(format!(
            "bloom filters are written in Parquet files only, not in {format:?} output"
        )));
    }
    for column in columns {
        if schema.field_with_name(column).is_err() {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(EngineError::Plan(format!(
                "no column '{column}' for a bloom filter; the output's columns are: {}",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// Stream `batches` into the file `path` in `format`, atomically: the rows go to a temporary
/// file next to it, renamed to `path` only once the last one is written, so a failed or
/// killed query never leaves a partial file under that name. Returns the rows written.
pub fn write_file(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    format: OutputFormat,
    options: &WriteOptions,
) -> Result<usize> {
    if format == OutputFormat::Table {
        return Err(EngineError::Plan(
            "a file needs a file format (csv, json, ndjson or parquet), not table".into(),
        ));
    }
    check_bloom_filter_columns(&schema, format, &options.bloom_filter_columns)?;
    let mut file = AtomicFile::create(path)?;
    let rows = if format == OutputFormat::Npy {
        super::numpy::write_npy(schema, batches, options.npy_dtype, &mut file)
    } else {
        write_batches(schema, batches, format, options, &mut file)
    };
    let rows = rows.map_err(|e| file.explain(e))?;
    file.commit()?;
    Ok(rows)
}

/// Stream `batches` into `out` in `format`; returns the number of rows written.
/// `Table` is not handled here (see [`format_table`](super::format_table)).
pub fn write_batches<W: Write + Send>(
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    format: OutputFormat,
    options: &WriteOptions,
    out: W,
) -> Result<usize> {
    let mut rows = 0;
    match format {
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_null(options.null_string.clone())
                .with_timestamp_format("%Y-%m-%d %H:%M:%S%.f".to_string())
                .with_date_format("%Y-%m-%d".to_string())
                .build(out);
            let mut wrote_any = false;
            for batch in batches {
                let batch = batch?;
                rows += batch.num_rows();
                writer.write(&batch)?;
                wrote_any = true;
            }
            if !wrote_any {
                // Header only for empty results.
                writer.write(&RecordBatch::new_empty(Arc::clone(&schema)))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(out);
            for batch in batches {
                let batch = batch?;
                rows += batch.num_rows();
                writer.write(&batch)?;
            }
            writer.finish()?;
            let mut out = writer.into_inner();
            if rows == 0 {
                out.write_all(b"[]").map_err(|e| EngineError::Output {
                    path: "output".into(),
                    source: e,
                })?;
            }
            out.write_all(b"\n").map_err(|e| EngineError::Output {
                path: "output".into(),
                source: e,
            })?;
        }
        OutputFormat::NdJson => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            for batch in batches {
                let batch = batch?;
                rows += batch.num_rows();
                writer.write(&batch)?;
            }
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            // zstd level 1, as for the generated data: level 3 made the sort of SF1 lineitem
            // to Parquet (6M rows, 114 MiB written) about 2 s slower of 12 s, for no smaller
            // file (pyarrow writes that table in 114 MiB at level 1 and 119 MiB at level 3).
            let mut props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?));
            for column in &options.bloom_filter_columns {
                props =
                    props.set_column_bloom_filter_enabled(ColumnPath::from(column.as_str()), true);
            }
            let props = props.build();
            let threads = options
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1);
            // Encoding runs on its own thread (and its helpers), so that it overlaps with the
            // operators producing the next batches on this one. The channel holds two of the
            // writer's dispatches (2 × 64Ki rows): while the encoders work on one, the producer
            // fills the next instead of waiting (a sort's final merge into Parquet, SF10
            // lineitem: 83 → 77 s with 4 batches → 16). At 8Ki rows a batch that is some tens
            // of MiB for the widest tables, within the promise's fixed margin.
            let (sender, receiver) = std::sync::mpsc::sync_channel::<RecordBatch>(16);
            rows = std::thread::scope(|scope| -> Result<usize> {
                let encoder = std::thread::Builder::new()
                    .name("ooc-parquet-writer".into())
                    .spawn_scoped(scope, move || -> Result<()> {
                        let mut writer =
                            ParallelParquetWriter::try_new(out, schema, props, threads)?;
                        for batch in receiver {
                            writer.write(&batch)?;
                        }
                        writer.close()
                    })
                    .map_err(|e| {
                        EngineError::Internal(format!("cannot start the Parquet writer: {e}"))
                    })?;
                let mut rows = 0;
                let mut failed = None;
                for batch in batches {
                    match batch {
                        Ok(batch) => {
                            rows += batch.num_rows();
                            // A closed channel means the encoder failed: its error is below.
                            if sender.send(batch).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                drop(sender);
                let encoded = encoder.join().unwrap_or_else(|_| {
                    Err(EngineError::Internal("the Parquet writer panicked".into()))
                });
                match failed {
                    Some(e) => Err(e),
                    None => encoded.map(|()| rows),
                }
            })?;
        }
        OutputFormat::Table => {
            return Err(EngineError::Internal(
                "table output is formatted, not streamed".into(),
            ));
        }
        OutputFormat::Npy => {
            return Err(EngineError::Plan(
                "a .npy array is written to a file (-o out.npy), not to a stream".into(),
            ));
        }
    }
    Ok(rows)
}
