//! Reading morsels: bounded row-group slices decoded from a memory map.
//!
//! A [`Morsel`] is at most `max_rows` rows of one row group. Reading it selects those rows with
//! a `RowSelection` (with the page index, pages outside the slice are skipped without being
//! decompressed), decodes only the projected columns, casts them to the data set's unified
//! types, and adds hive partition values and NULL columns for columns a file lacks. When the
//! reader is dropped, the pages of the column chunks it touched are released from the page
//! tables (`MADV_DONTNEED`), so mapped input never accumulates in the process's RSS.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions, UInt64Array};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::SchemaRef;
use memmap2::{Mmap, UncheckedAdvice};
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;

use crate::dataset::{ParquetDataset, RowGroupRef};
use crate::error::{IoError, Result};

/// A slice of a row group.
#[derive(Clone, Debug)]
pub struct Morsel {
    /// The row group.
    pub row_group: RowGroupRef,
    /// First row within the row group.
    pub row_offset: usize,
    /// Number of rows.
    pub num_rows: usize,
}

/// How to read a morsel.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Columns (names in the unified schema) in output order; `None`: all.
    pub projection: Option<Vec<String>>,
    /// Rows per batch; 0 means 8192.
    pub batch_size: usize,
    /// Incremented by the compressed bytes of the column chunks read (prorated to the slice).
    pub bytes_read: Option<Arc<AtomicU64>>,
}

/// Where each output column comes from.
#[derive(Clone, Debug)]
enum ColumnSource {
    /// Index into the parquet reader's output.
    File(usize),
    /// A hive partition value.
    Partition(ArrayRef),
    /// Not in this file.
    Null,
}

/// Iterator over the batches of one morsel.
pub struct MorselReader {
    inner: Option<ParquetRecordBatchReader>,
    sources: Vec<ColumnSource>,
    schema: SchemaRef,
    path: std::path::PathBuf,
    remaining_without_reader: usize,
    batch_size: usize,
    release: Vec<(usize, usize)>,
    map: Arc<Mmap>,
}

impl ParquetDataset {
    /// Split row groups into morsels of at most `max_rows` rows.
    pub fn plan_morsels(&self, row_groups: &[RowGroupRef], max_rows: usize) -> Vec<Morsel> {
        let slices: Vec<(RowGroupRef, Vec<Range<usize>>)> = row_groups
            .iter()
            .map(|&rg| {
                let rows = self.row_group_rows(rg);
                (
                    rg,
                    Vec::from([Range {
                        start: 0,
                        end: rows,
                    }]),
                )
            })
            .collect();
        self.plan_morsels_in(&slices, max_rows)
    }

    /// Split ranges of rows of row groups (ascending within each) into morsels of at most
    /// `max_rows` rows.
    pub fn plan_morsels_in(
        &self,
        slices: &[(RowGroupRef, Vec<Range<usize>>)],
        max_rows: usize,
    ) -> Vec<Morsel> {
        let max_rows = max_rows.max(1);
        let mut out = Vec::new();
        for (rg, ranges) in slices {
            for range in ranges {
                let mut offset = range.start;
                while offset < range.end {
                    let n = max_rows.min(range.end - offset);
                    out.push(Morsel {
                        row_group: *rg,
                        row_offset: offset,
                        num_rows: n,
                    });
                    offset += n;
                }
            }
        }
        out
    }

    /// Open a reader for one morsel.
    pub fn read_morsel(&self, morsel: &Morsel, options: &ReadOptions) -> Result<MorselReader> {
        let file = self.files().get(morsel.row_group.file).ok_or_else(|| {
            IoError::InvalidArgument(format!("no file {}", morsel.row_group.file))
        })?;
        let names: Vec<String> = match &options.projection {
            Some(p) => p.clone(),
            None => self
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        };
        let schema = self.project_schema(Some(&names))?;
        let batch_size = if options.batch_size == 0 {
            8192
        } else {
            options.batch_size
        };

        // Leaf columns of this file to read, in file order.
        let mut file_columns: Vec<usize> = names
            .iter()
            .filter_map(|n| file.schema.index_of(n).ok())
            .collect();
        file_columns.sort_unstable();
        file_columns.dedup();
        let sources = names
            .iter()
            .map(|n| {
                if let Ok(i) = file.schema.index_of(n) {
                    ColumnSource::File(file_columns.iter().position(|&c| c == i).unwrap_or(0))
                } else if let Some((_, v)) = file.partition_values.iter().find(|(k, _)| k == n) {
                    ColumnSource::Partition(Arc::clone(v))
                } else {
                    ColumnSource::Null
                }
            })
            .collect();

        let row_group = file.metadata.row_group(morsel.row_group.row_group);
        let rg_rows = row_group.num_rows().max(1) as u64;
        let mut release = Vec::new();
        let mut bytes = 0u64;
        let schema_descr = file.metadata.file_metadata().schema_descr();
        let mask = ProjectionMask::roots(schema_descr, file_columns.iter().copied());
        for (leaf, column) in row_group.columns().iter().enumerate() {
            let root = schema_descr.get_column_root_idx(leaf);
            if file_columns.contains(&root) {
                let (start, len) = column.byte_range();
                release.push((start as usize, len as usize));
                bytes += len * morsel.num_rows as u64 / rg_rows;
            }
        }
        if let Some(counter) = &options.bytes_read {
            counter.fetch_add(bytes, Ordering::Relaxed);
        }

        let inner = if file_columns.is_empty() {
            None
        } else {
            let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                file.bytes.clone(),
                file.reader_metadata.clone(),
            )
            .with_row_groups(vec![morsel.row_group.row_group])
            .with_projection(mask)
            .with_batch_size(batch_size);
            if morsel.row_offset > 0 || (morsel.num_rows as u64) < rg_rows {
                let mut selectors = Vec::new();
                if morsel.row_offset > 0 {
                    selectors.push(RowSelector::skip(morsel.row_offset));
                }
                selectors.push(RowSelector::select(morsel.num_rows));
                builder = builder.with_row_selection(RowSelection::from(selectors));
            }
            Some(builder.build().map_err(|e| IoError::CorruptFile {
                path: file.path.clone(),
                message: e.to_string(),
            })?)
        };
        Ok(MorselReader {
            inner,
            sources,
            schema,
            path: file.path.clone(),
            remaining_without_reader: morsel.num_rows,
            batch_size,
            release,
            map: Arc::clone(&file.map),
        })
    }
}

impl MorselReader {
    fn assemble(&self, columns: &[ArrayRef], num_rows: usize) -> Result<RecordBatch> {
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let mut out = Vec::with_capacity(self.sources.len());
        for (source, field) in self.sources.iter().zip(self.schema.fields()) {
            let array = match source {
                ColumnSource::File(i) => {
                    let a = &columns[*i];
                    if a.data_type() == field.data_type() {
                        Arc::clone(a)
                    } else {
                        cast_with_options(a, field.data_type(), &options)?
                    }
                }
                ColumnSource::Partition(v) => {
                    let indices = UInt64Array::from(vec![0u64; num_rows]);
                    let repeated = arrow::compute::take(v.as_ref(), &indices, None)?;
                    if repeated.data_type() == field.data_type() {
                        repeated
                    } else {
                        cast_with_options(&repeated, field.data_type(), &options)?
                    }
                }
                ColumnSource::Null => new_null_array(field.data_type(), num_rows),
            };
            out.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(num_rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            out,
            &options,
        )?)
    }
}

impl Iterator for MorselReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.inner.as_mut() {
            Some(reader) => {
                let batch = match reader.next()? {
                    Ok(b) => b,
                    Err(e) => {
                        self.inner = None;
                        return Some(Err(IoError::CorruptFile {
                            path: self.path.clone(),
                            message: e.to_string(),
                        }));
                    }
                };
                let n = batch.num_rows();
                Some(self.assemble(batch.columns(), n))
            }
            None => {
                if self.remaining_without_reader == 0 {
                    return None;
                }
                let n = self.remaining_without_reader.min(self.batch_size);
                self.remaining_without_reader -= n;
                Some(self.assemble(&[], n))
            }
        }
    }
}

impl Drop for MorselReader {
    fn drop(&mut self) {
        for &(start, len) in &self.release {
            release_pages(&self.map, start, len);
        }
    }
}

/// Drop the resident pages of `len` bytes at `start` of a file's map from the process's page
/// tables, so that bytes read once do not stay in its RSS.
pub(crate) fn release_pages(map: &Mmap, start: usize, len: usize) {
    if start.checked_add(len).is_some_and(|end| end <= map.len()) {
        // SAFETY: the map is a private read-only mapping of a file that ooc does not
        // modify. MADV_DONTNEED only drops the resident pages; the next access reads
        // the same bytes back from the page cache, so no reader observes a change.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, len) };
    }
}
