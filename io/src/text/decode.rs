//! Decoding a chunk of records into record batches of the projected columns.
//!
//! The fast path is arrow's CSV and JSON decoders, a batch at a time. When one of them fails
//! (a value that does not parse as its column's type, a record with the wrong number of
//! fields, malformed JSON), the rest of the chunk, from the start of the failed batch, goes
//! through a slow path that reads record by record and knows each record's line: every value
//! is converted with arrow's casts, and the first bad record is reported as
//! `file:line: column 'c': cannot read 'v' as Int64` — or, with `skip_bad_rows`, every bad
//! record is dropped and counted. Chunks without errors never pay for the slow path.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{cast_with_options, filter_record_batch, CastOptions};
use arrow::datatypes::{DataType, Schema, SchemaRef};

use super::{TextChunk, TextDataset, TextFormat};
use crate::error::{IoError, Result};

enum State {
    Csv(Box<arrow::csv::reader::Decoder>),
    Json(arrow::json::reader::Decoder),
    /// Batches from the slow path, then done.
    Slow(VecDeque<RecordBatch>),
}

/// The record batches of one chunk (an iterator; see the module documentation).
pub struct ChunkDecoder {
    dataset: Arc<TextDataset>,
    chunk: TextChunk,
    projection: Vec<usize>,
    schema: SchemaRef,
    batch_size: usize,
    offset: usize,
    input_ended: bool,
    state: State,
    skipped: u64,
    first_skip: Option<String>,
}

impl std::fmt::Debug for ChunkDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkDecoder")
            .field("file", &self.chunk.file)
            .field("first_line", &self.chunk.first_line)
            .field("offset", &self.offset)
            .finish()
    }
}

impl ChunkDecoder {
    /// Decode `chunk`'s columns `projection` (indices into the data set's schema) in batches
    /// of `batch_size` rows.
    pub fn new(
        dataset: Arc<TextDataset>,
        chunk: TextChunk,
        projection: Vec<usize>,
        batch_size: usize,
    ) -> Result<Self> {
        let schema = Arc::new(dataset.schema().project(&projection)?);
        let batch_size = batch_size.max(1);
        let state = fast_decoder(&dataset, &projection, &schema, batch_size)?;
        Ok(Self {
            dataset,
            chunk,
            projection,
            schema,
            batch_size,
            offset: 0,
            input_ended: false,
            state,
            skipped: 0,
            first_skip: None,
        })
    }

    /// Records skipped as bad so far (only with `skip_bad_rows`).
    pub fn skipped_rows(&self) -> u64 {
        self.skipped
    }

    /// The first skipped record's place and reason.
    pub fn first_skip(&self) -> Option<&str> {
        self.first_skip.as_deref()
    }

    fn path(&self) -> &std::path::Path {
        &self.dataset.files()[self.chunk.file].path
    }

    /// The line `offset` of the chunk is on.
    fn line_at(&self, offset: usize) -> u64 {
        self.chunk.first_line
            + memchr::memchr_iter(b'\n', &self.chunk.bytes[..offset]).count() as u64
    }

    /// One batch from the fast path; `Err` carries arrow's error.
    fn next_fast(&mut self) -> std::result::Result<Option<RecordBatch>, arrow::error::ArrowError> {
        let bytes = &self.chunk.bytes;
        loop {
            let (consumed, full) = match &mut self.state {
                State::Csv(d) => {
                    let n = d.decode(&bytes[self.offset..])?;
                    (n, d.capacity() == 0)
                }
                State::Json(d) => {
                    let n = d.decode(&bytes[self.offset..])?;
                    (n, d.len() >= self.batch_size)
                }
                State::Slow(_) => return Ok(None),
            };
            self.offset += consumed;
            if full {
                break;
            }
            if self.offset >= bytes.len() {
                if !self.input_ended {
                    self.input_ended = true;
                    if let State::Csv(d) = &mut self.state {
                        // An empty buffer ends the last record (the chunk may lack a final
                        // newline).
                        d.decode(&[])?;
                    }
                }
                break;
            }
            if consumed == 0 {
                break;
            }
        }
        match &mut self.state {
            State::Csv(d) => d.flush(),
            State::Json(d) => {
                if self.offset >= bytes.len() && d.has_partial_record() {
                    return Err(arrow::error::ArrowError::JsonError(
                        "the last record is incomplete".into(),
                    ));
                }
                d.flush()
            }
            State::Slow(_) => Ok(None),
        }
    }

    /// Re-read the chunk from `start` record by record.
    fn slow_path(&mut self, start: usize) -> Result<VecDeque<RecordBatch>> {
        let first_line = self.line_at(start);
        let bytes = std::mem::take(&mut self.chunk.bytes);
        let result = match self.dataset.options().format {
            TextFormat::Csv(_) => self.slow_csv(&bytes[start..], first_line),
            TextFormat::NdJson => self.slow_json(&bytes[start..], first_line),
        };
        self.chunk.bytes = bytes;
        self.offset = self.chunk.bytes.len();
        result
    }

    fn bad(&mut self, line: u64, message: String) -> Result<()> {
        if self.dataset.options().skip_bad_rows {
            self.skipped += 1;
            if self.first_skip.is_none() {
                self.first_skip = Some(format!("{}:{line}: {message}", self.path().display()));
            }
            Ok(())
        } else {
            Err(IoError::BadRecord {
                path: self.path().to_path_buf(),
                line,
                message,
            })
        }
    }

    fn slow_csv(&mut self, bytes: &[u8], first_line: u64) -> Result<VecDeque<RecordBatch>> {
        let Some(layout) = self.dataset.csv_layout().cloned() else {
            return Ok(VecDeque::new());
        };
        let mut builder = csv::ReaderBuilder::new();
        builder
            .has_headers(false)
            .flexible(true)
            .delimiter(layout.delimiter)
            .quote(layout.quote)
            .comment(layout.comment);
        if let Some(e) = layout.escape.filter(|&e| e != layout.quote) {
            builder.escape(Some(e)).double_quote(false);
        }
        let mut reader = builder.from_reader(bytes);
        let width = self.dataset.schema().fields().len();
        let null_regex = self.dataset.null_regex().cloned();
        let mut out = VecDeque::new();
        let mut pending = Pending::new(self.projection.len());
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = first_line + e.position().map_or(0, |p| p.line().saturating_sub(1));
                    self.flush_pending(&mut pending, &mut out)?;
                    self.bad(line, format!("unreadable record: {e}"))?;
                    continue;
                }
            }
            let line = first_line + record.position().map_or(0, |p| p.line().saturating_sub(1));
            if record.len() != width {
                // A blank line is not a record.
                if record.len() == 1 && record[0].is_empty() {
                    continue;
                }
                self.flush_pending(&mut pending, &mut out)?;
                self.bad(
                    line,
                    format!("expected {width} fields, found {}", record.len()),
                )?;
                continue;
            }
            let mut values = Vec::with_capacity(self.projection.len());
            let mut utf8_error = None;
            for &i in &self.projection {
                match std::str::from_utf8(&record[i]) {
                    Ok(v) if v.is_empty() || null_regex.as_ref().is_some_and(|r| r.is_match(v)) => {
                        values.push(None)
                    }
                    Ok(v) => values.push(Some(v.to_string())),
                    Err(_) => {
                        utf8_error = Some(self.dataset.schema().field(i).name().clone());
                        break;
                    }
                }
            }
            if let Some(column) = utf8_error {
                self.flush_pending(&mut pending, &mut out)?;
                self.bad(
                    line,
                    format!("column '{column}': the value is not valid UTF-8"),
                )?;
                continue;
            }
            pending.push(line, values);
            if pending.lines.len() >= self.batch_size {
                self.flush_pending(&mut pending, &mut out)?;
            }
        }
        self.flush_pending(&mut pending, &mut out)?;
        Ok(out)
    }

    /// Convert the pending records' values to the column types; bad values are reported or
    /// their records dropped.
    fn flush_pending(
        &mut self,
        pending: &mut Pending,
        out: &mut VecDeque<RecordBatch>,
    ) -> Result<()> {
        if pending.lines.is_empty() {
            return Ok(());
        }
        let rows = pending.lines.len();
        let mut keep = vec![true; rows];
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.projection.len());
        let mut errors: Vec<(usize, String)> = Vec::new();
        for (c, values) in pending.columns.iter().enumerate() {
            let field = self.schema.field(c);
            let strings: StringArray = values.iter().map(|v| v.as_deref()).collect();
            let converted = match field.data_type() {
                DataType::Utf8 => Arc::new(strings.clone()) as ArrayRef,
                target => {
                    let options = CastOptions {
                        safe: true,
                        ..CastOptions::default()
                    };
                    let trimmed: StringArray =
                        values.iter().map(|v| v.as_deref().map(str::trim)).collect();
                    cast_with_options(&trimmed, target, &options)?
                }
            };
            for (row, kept) in keep.iter_mut().enumerate() {
                if converted.is_null(row) && strings.is_valid(row) && *kept {
                    *kept = false;
                    errors.push((
                        row,
                        format!(
                            "column '{}': cannot read '{}' as {}",
                            field.name(),
                            strings.value(row),
                            field.data_type()
                        ),
                    ));
                }
            }
            columns.push(converted);
        }
        errors.sort_by_key(|(row, _)| *row);
        for (row, message) in errors {
            self.bad(pending.lines[row], message)?;
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let batch = if keep.iter().all(|&k| k) {
            batch
        } else {
            filter_record_batch(&batch, &BooleanArray::from(keep))?
        };
        if batch.num_rows() > 0 {
            out.push_back(batch);
        }
        *pending = Pending::new(self.projection.len());
        Ok(())
    }

    fn slow_json(&mut self, bytes: &[u8], first_line: u64) -> Result<VecDeque<RecordBatch>> {
        let mut out = VecDeque::new();
        let mut rows: Vec<RecordBatch> = Vec::new();
        let mut decoder = json_decoder(&self.schema, 1)?;
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line_no = first_line + n as u64;
            let decoded = decoder
                .decode(line)
                .and_then(|_| {
                    if decoder.has_partial_record() {
                        Err(arrow::error::ArrowError::JsonError(
                            "the record is incomplete".into(),
                        ))
                    } else {
                        Ok(())
                    }
                })
                .and_then(|_| decoder.flush());
            match decoded {
                Ok(Some(batch)) => rows.push(batch),
                Ok(None) => {}
                Err(e) => {
                    decoder = json_decoder(&self.schema, 1)?;
                    self.bad(line_no, e.to_string())?;
                }
            }
            if rows.len() >= self.batch_size {
                out.push_back(arrow::compute::concat_batches(&self.schema, &rows)?);
                rows.clear();
            }
        }
        if !rows.is_empty() {
            out.push_back(arrow::compute::concat_batches(&self.schema, &rows)?);
        }
        Ok(out)
    }
}

/// Records read by the slow path, not yet converted.
struct Pending {
    lines: Vec<u64>,
    columns: Vec<Vec<Option<String>>>,
}

impl Pending {
    fn new(width: usize) -> Self {
        Self {
            lines: Vec::new(),
            columns: vec![Vec::new(); width],
        }
    }

    fn push(&mut self, line: u64, values: Vec<Option<String>>) {
        self.lines.push(line);
        for (column, value) in self.columns.iter_mut().zip(values) {
            column.push(value);
        }
    }
}

fn json_decoder(schema: &SchemaRef, batch_size: usize) -> Result<arrow::json::reader::Decoder> {
    Ok(arrow::json::ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_size)
        .build_decoder()?)
}

fn fast_decoder(
    dataset: &TextDataset,
    projection: &[usize],
    schema: &SchemaRef,
    batch_size: usize,
) -> Result<State> {
    Ok(match (&dataset.options().format, dataset.csv_layout()) {
        (TextFormat::Csv(_), Some(layout)) => {
            let mut format = arrow::csv::reader::Format::default()
                .with_header(false)
                .with_delimiter(layout.delimiter)
                .with_quote(layout.quote);
            if let Some(e) = layout.escape {
                format = format.with_escape(e);
            }
            if let Some(c) = layout.comment {
                format = format.with_comment(c);
            }
            if let Some(r) = dataset.null_regex() {
                format = format.with_null_regex(r.clone());
            }
            let full: Arc<Schema> = dataset.schema();
            State::Csv(Box::new(
                arrow::csv::ReaderBuilder::new(full)
                    .with_format(format)
                    .with_batch_size(batch_size)
                    .with_projection(projection.to_vec())
                    .build_decoder(),
            ))
        }
        _ => State::Json(json_decoder(schema, batch_size)?),
    })
}

impl Iterator for ChunkDecoder {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if let State::Slow(queue) = &mut self.state {
            return queue.pop_front().map(Ok);
        }
        let batch_start = self.offset;
        match self.next_fast() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(_) => match self.slow_path(batch_start) {
                Ok(mut queue) => {
                    let first = queue.pop_front();
                    self.state = State::Slow(queue);
                    first.map(Ok)
                }
                Err(e) => {
                    self.state = State::Slow(VecDeque::new());
                    Some(Err(e))
                }
            },
        }
    }
}
