//! Schema inference from a sample of the first file: the CSV delimiter (when not given), the
//! header (when not given), then each column's type from the sampled values (integers, floats,
//! booleans, dates and timestamps, else text; a column with no value in the sample is text).

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema};

use super::chunks::open_reader;
use super::{CsvLayout, CsvOptions, TextFile, TextFormat, TextOptions};
use crate::error::{IoError, Result};

/// What the sample showed.
pub(crate) struct Inferred {
    pub(crate) schema: Schema,
    /// Records sampled.
    pub(crate) rows: u64,
    /// Bytes of the file on disk the sample took (an estimate: readers read ahead).
    pub(crate) bytes: u64,
    /// The sample reached the end of the file (`rows` is then the file's record count).
    pub(crate) complete: bool,
    pub(crate) csv: Option<CsvLayout>,
}

pub(crate) fn infer(
    file: &TextFile,
    options: &TextOptions,
    null_regex: Option<&regex::Regex>,
) -> Result<Inferred> {
    match &options.format {
        TextFormat::Csv(csv) => infer_csv(file, csv, options, null_regex),
        TextFormat::NdJson => infer_ndjson(file, options),
    }
}

fn arrow_error(file: &TextFile, e: arrow::error::ArrowError) -> IoError {
    IoError::BadRecord {
        path: file.path.clone(),
        line: 0,
        message: format!("while inferring the schema: {e}"),
    }
}

fn infer_csv(
    file: &TextFile,
    csv: &CsvOptions,
    options: &TextOptions,
    null_regex: Option<&regex::Regex>,
) -> Result<Inferred> {
    let delimiter = match csv.delimiter {
        Some(d) => d,
        None => sniff_delimiter(&first_line(file)?, csv.quote),
    };
    // Records with too few fields do not stop the inference; reading reports them.
    let mut format = Format::default()
        .with_delimiter(delimiter)
        .with_quote(csv.quote)
        .with_truncated_rows(true);
    if let Some(e) = csv.escape {
        format = format.with_escape(e);
    }
    if let Some(c) = csv.comment {
        format = format.with_comment(c);
    }
    if let Some(r) = null_regex {
        format = format.with_null_regex(r.clone());
    }
    let has_header = match csv.has_header {
        Some(h) => h,
        None => {
            header_evidence(file, &format, options.sample_rows.min(1000))?
                || first_record_is_names(file, delimiter, csv.quote)?
        }
    };
    format = format.with_header(has_header);
    let counter = Arc::new(AtomicU64::new(0));
    let reader = open_reader(file, Some(Arc::clone(&counter)))?;
    let (schema, rows) = format
        .infer_schema(reader, Some(options.sample_rows))
        .map_err(|e| arrow_error(file, e))?;
    let schema = clean_names(text_for_unknown(schema), has_header);
    Ok(Inferred {
        schema,
        rows: rows as u64,
        bytes: counter.load(Ordering::Relaxed),
        complete: rows < options.sample_rows,
        csv: Some(CsvLayout {
            delimiter,
            has_header,
            quote: csv.quote,
            escape: csv.escape,
            comment: csv.comment,
        }),
    })
}

fn infer_ndjson(file: &TextFile, options: &TextOptions) -> Result<Inferred> {
    let counter = Arc::new(AtomicU64::new(0));
    let reader = BufReader::new(open_reader(file, Some(Arc::clone(&counter)))?);
    let (schema, rows) = arrow::json::reader::infer_json_schema(reader, Some(options.sample_rows))
        .map_err(|e| arrow_error(file, e))?;
    Ok(Inferred {
        schema: text_for_unknown(schema),
        rows: rows as u64,
        bytes: counter.load(Ordering::Relaxed),
        complete: rows < options.sample_rows,
        csv: None,
    })
}

/// The first line of the file (at most 64 KiB of it), decompressed.
fn first_line(file: &TextFile) -> Result<Vec<u8>> {
    let mut reader = open_reader(file, None)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader
            .read(&mut buf[filled..])
            .map_err(|source| IoError::Io {
                path: file.path.clone(),
                source,
            })?;
        if n == 0 {
            break;
        }
        filled += n;
        if buf[..filled].contains(&b'\n') {
            break;
        }
    }
    buf.truncate(filled);
    if let Some(end) = memchr::memchr(b'\n', &buf) {
        buf.truncate(end);
    }
    Ok(buf)
}

/// The candidate (`,` tab `|` `;`) that occurs most often outside quotes in `line`; `,` if
/// none does.
pub(crate) fn sniff_delimiter(line: &[u8], quote: u8) -> u8 {
    let candidates = [b',', b'\t', b'|', b';'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in line {
        if b == quote {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = candidates.iter().position(|&c| c == b) {
                counts[i] += 1;
            }
        }
    }
    let (best, count) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i)))
        .map(|(i, c)| (candidates[i], *c))
        .unwrap_or((b',', 0));
    if count == 0 {
        b','
    } else {
        best
    }
}

/// Whether the first record looks like a header by the types of the records after it: one of
/// its values is text (not a number, date or boolean) in a column whose other values are not.
fn header_evidence(file: &TextFile, format: &Format, sample: usize) -> Result<bool> {
    let (schema, _) = format
        .clone()
        .with_header(true)
        .infer_schema(open_reader(file, None)?, Some(sample))
        .map_err(|e| arrow_error(file, e))?;
    Ok(schema.fields().iter().any(|f| {
        let first = f.name().trim();
        !matches!(f.data_type(), DataType::Utf8 | DataType::Null)
            && first.parse::<f64>().is_err()
            && !looks_like_date(first)
            && !matches!(first.to_ascii_lowercase().as_str(), "true" | "false")
    }))
}

/// When type evidence is inconclusive (every column text), a first record whose values are
/// all non-empty and neither numbers nor dates is taken for a header.
fn first_record_is_names(file: &TextFile, delimiter: u8, quote: u8) -> Result<bool> {
    let line = first_line(file)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .quote(quote)
        .from_reader(line.as_slice());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record.iter().all(|v| {
            let v = v.trim();
            !v.is_empty() && v.parse::<f64>().is_err() && !looks_like_date(v)
        })),
        _ => Ok(false),
    }
}

fn looks_like_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// Columns the sample had no value for are read as text.
fn text_for_unknown(schema: Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Null => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone().with_nullable(true),
        })
        .collect();
    Schema::new(fields)
}

/// Without a header, columns are `column0`, `column1`, ... (DuckDB's names). Empty header
/// names become `column<i>`, repeated ones get `_1`, `_2`, ... appended.
fn clean_names(schema: Schema, has_header: bool) -> Schema {
    let mut seen = std::collections::HashSet::new();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let trimmed = if has_header { f.name().trim() } else { "" };
            let base = if trimmed.is_empty() {
                format!("column{i}")
            } else {
                trimmed.to_string()
            };
            let mut name = base.clone();
            let mut n = 0;
            while !seen.insert(name.to_lowercase()) {
                n += 1;
                name = format!("{base}_{n}");
            }
            Field::new(name, f.data_type().clone(), true)
        })
        .collect();
    Schema::new(fields)
}
