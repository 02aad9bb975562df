//! Parquet output whose columns are encoded and compressed on several threads.
//!
//! Parquet's `ArrowWriter` encodes one column after another on the calling thread. For a wide
//! result (a sorted `lineitem` has 16 columns) encoding and compressing is most of the cost of
//! writing, and it would run on one core while the others wait. This writer keeps one
//! `ArrowColumnWriter` per leaf column for the row group being written; incoming batches are
//! buffered up to [`DISPATCH_ROWS`] rows, then worker threads claim columns one at a time and
//! encode that column of every buffered batch:
//!
//! ```text
//!   batches ──► buffer (≤ DISPATCH_ROWS rows) ──► workers claim columns ──► column writers
//!                                                                             │ row group full
//!                              file ◄── column chunks appended in order ◄─────┘
//! ```
//!
//! A row group closes at [`MAX_ROW_GROUP_ROWS`] rows or once its encoded pages, which the
//! column writers hold in memory, exceed [`MAX_ROW_GROUP_BYTES`]; its chunks are then written
//! to the file in column order. The file carries the Arrow schema, as `ArrowWriter`'s does.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn,
    ArrowRowGroupWriterFactory,
};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use crate::error::{EngineError, Result};

/// Rows buffered before the workers encode them: enough that each worker has real work per
/// round, few enough that the buffer stays a few MiB.
pub(crate) const DISPATCH_ROWS: usize = 64 * 1024;

/// Most rows in one row group.
pub(crate) const MAX_ROW_GROUP_ROWS: usize = 1 << 20;

/// Most bytes of encoded data held before a row group is closed.
pub(crate) const MAX_ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// A Parquet file being written, see the module docs.
pub(crate) struct ParallelParquetWriter<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Column writers of the row group being written, one per leaf column.
    columns: Vec<Mutex<ArrowColumnWriter>>,
    row_groups: usize,
    rows_in_group: usize,
    buffer: Vec<RecordBatch>,
    buffered_rows: usize,
    threads: usize,
}

impl<W: Write + Send> ParallelParquetWriter<W> {
    /// Start a file of batches of `schema` on `out`, encoding with up to `threads` threads.
    pub(crate) fn try_new(
        out: W,
        schema: SchemaRef,
        mut props: WriterProperties,
        threads: usize,
    ) -> Result<Self> {
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&schema)?;
        add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let file =
            SerializedFileWriter::new(out, parquet_schema.root_schema_ptr(), Arc::new(props))?;
        let factory = ArrowRowGroupWriterFactory::new(&file, Arc::clone(&schema));
        let columns = wrap(factory.create_column_writers(0)?);
        Ok(Self {
            file,
            factory,
            schema,
            columns,
            row_groups: 0,
            rows_in_group: 0,
            buffer: Vec::new(),
            buffered_rows: 0,
            threads: threads.max(1),
        })
    }

    /// Append a batch.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut batch = batch.clone();
        // A row group ends exactly at MAX_ROW_GROUP_ROWS: split a batch that crosses it.
        while self.rows_in_group + self.buffered_rows + batch.num_rows() > MAX_ROW_GROUP_ROWS {
            let room = MAX_ROW_GROUP_ROWS - self.rows_in_group - self.buffered_rows;
            self.push(batch.slice(0, room));
            batch = batch.slice(room, batch.num_rows() - room);
            self.encode_buffer()?;
            self.close_row_group()?;
        }
        self.push(batch);
        if self.buffered_rows >= DISPATCH_ROWS {
            self.encode_buffer()?;
            if self.encoded_bytes() > MAX_ROW_GROUP_BYTES {
                self.close_row_group()?;
            }
        }
        Ok(())
    }

    /// Write what is buffered, the footer, and flush the output.
    pub(crate) fn close(mut self) -> Result<()> {
        self.encode_buffer()?;
        self.close_row_group()?;
        self.file.close()?;
        Ok(())
    }

    fn push(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.buffered_rows += batch.num_rows();
            self.buffer.push(batch);
        }
    }

    /// Bytes the column writers hold for the current row group.
    fn encoded_bytes(&self) -> usize {
        self.columns
            .iter()
            .map(|c| c.lock().map_or(0, |c| c.memory_size()))
            .sum()
    }

    /// Encode the buffered batches into the column writers, columns spread over the threads.
    fn encode_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // The leaves of every column of every buffered batch: leaves[batch][leaf].
        let leaves = self
            .buffer
            .iter()
            .map(|batch| {
                let mut out = Vec::with_capacity(self.columns.len());
                for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
                    out.extend(compute_leaves(field, column)?);
                }
                Ok(out)
            })
            .collect::<Result<Vec<Vec<ArrowLeafColumn>>>>()?;
        let next = AtomicUsize::new(0);
        let columns = &self.columns;
        let work = || -> Result<()> {
            loop {
                let leaf = next.fetch_add(1, Ordering::Relaxed);
                let Some(writer) = columns.get(leaf) else {
                    return Ok(());
                };
                let mut writer = writer.lock().map_err(|_| {
                    EngineError::Internal("a Parquet column writer panicked".into())
                })?;
                for batch in &leaves {
                    writer.write(&batch[leaf])?;
                }
            }
        };
        let helpers = self.threads.min(columns.len()).saturating_sub(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..helpers).map(|_| scope.spawn(work)).collect();
            let mut result = work();
            for handle in handles {
                let joined = handle.join().unwrap_or_else(|_| {
                    Err(EngineError::Internal("a Parquet encoder panicked".into()))
                });
                result = result.and(joined);
            }
            result
        })?;
        self.rows_in_group += self.buffered_rows;
        self.buffer.clear();
        self.buffered_rows = 0;
        Ok(())
    }

    /// Close the current row group (if it has rows) and start the next.
    fn close_row_group(&mut self) -> Result<()> {
        if self.rows_in_group == 0 {
            return Ok(());
        }
        self.row_groups += 1;
        let next = wrap(self.factory.create_column_writers(self.row_groups)?);
        let writers = std::mem::replace(&mut self.columns, next);
        let chunks = writers
            .into_iter()
            .map(|w| {
                w.into_inner()
                    .map_err(|_| EngineError::Internal("a Parquet column writer panicked".into()))?
                    .close()
                    .map_err(EngineError::from)
            })
            .collect::<Result<Vec<ArrowColumnChunk>>>()?;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.rows_in_group = 0;
        Ok(())
    }
}

fn wrap(writers: Vec<ArrowColumnWriter>) -> Vec<Mutex<ArrowColumnWriter>> {
    writers.into_iter().map(Mutex::new).collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array, StringViewArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    #[test]
    fn round_trips_across_row_groups_with_the_arrow_schema() {
        let n = MAX_ROW_GROUP_ROWS + 1000;
        let ids: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..n as i64).map(|i| (i % 7 != 0).then_some(i)),
        ));
        let text: ArrayRef = Arc::new(StringViewArray::from_iter_values(
            (0..n).map(|i| format!("row number {i}")),
        ));
        let batch = RecordBatch::try_from_iter(vec![("id", ids), ("text", text)]).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        let mut writer = ParallelParquetWriter::try_new(
            &mut file,
            batch.schema(),
            WriterProperties::default(),
            2,
        )
        .unwrap();
        // Batches of uneven sizes, the last crossing the row-group boundary.
        let mut offset = 0;
        for len in [10, 70_000, n - 70_010] {
            writer.write(&batch.slice(offset, len)).unwrap();
            offset += len;
        }
        writer.close().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 2);
        assert_eq!(
            reader.metadata().row_group(0).num_rows(),
            MAX_ROW_GROUP_ROWS as i64
        );
        // The Arrow types come back (string views, not plain strings).
        assert_eq!(reader.schema().as_ref(), batch.schema().as_ref());
        let back: Vec<RecordBatch> = reader
            .build()
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        let back = arrow::compute::concat_batches(&batch.schema(), &back).unwrap();
        assert_eq!(back, batch);
    }
}
