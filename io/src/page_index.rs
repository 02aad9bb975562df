//! The Parquet page index of a file, decoded on demand.
//!
//! The page index (a column index of per-page min/max/null counts and an offset index of page
//! locations, for every column chunk) sits between the last row group and the footer. Reading
//! it whole when a file is opened costs time and heap in proportion to the file's pages: about
//! 3 ms and a few MiB for TPC-H SF10 `lineitem` (60 row groups × 16 columns × 50 pages), paid
//! even by a query whose row-group statistics rule out every row group. [`LazyPageIndex`]
//! implements parquet's [`PageIndexProvider`] over the mapped file instead: each column
//! chunk's column index and offset index are decoded the first time a reader asks for them,
//! and kept.
//!
//! An index that does not decode (a damaged file) is reported as absent for that column
//! chunk: page pruning then keeps every page of the chunk and the reader reads the whole
//! chunk, so the answer is the one the pages give. A file whose footer is damaged does not
//! open at all, as before.

use std::sync::OnceLock;

use bytes::Bytes;
use parquet::basic::Type;
use parquet::file::metadata::page_index::PageIndexProvider;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::index_reader::{decode_column_index, decode_offset_index};
use parquet::file::page_index::offset_index::OffsetIndexMetaData;

/// Where one column chunk's indexes lie in the file.
#[derive(Clone, Copy, Debug)]
struct ChunkIndexes {
    column_index: Option<(usize, usize)>,
    offset_index: Option<(usize, usize)>,
    physical_type: Type,
}

/// A page index whose parts are decoded when first asked for (see the module docs).
pub(crate) struct LazyPageIndex {
    bytes: Bytes,
    columns: usize,
    chunks: Vec<ChunkIndexes>,
    column_indexes: Vec<OnceLock<Option<ColumnIndexMetaData>>>,
    offset_indexes: Vec<OnceLock<Option<OffsetIndexMetaData>>>,
    has_column_indexes: bool,
    has_offset_indexes: bool,
}

impl std::fmt::Debug for LazyPageIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyPageIndex")
            .field("column_chunks", &self.chunks.len())
            .field("has_column_indexes", &self.has_column_indexes)
            .field("has_offset_indexes", &self.has_offset_indexes)
            .finish()
    }
}

/// The byte range `offset..offset + length` when it lies within a file of `size` bytes.
fn range(offset: Option<i64>, length: Option<i32>, size: usize) -> Option<(usize, usize)> {
    let start = usize::try_from(offset?).ok()?;
    let end = start.checked_add(usize::try_from(length?).ok()?)?;
    (end <= size && end > start).then_some((start, end))
}

impl LazyPageIndex {
    /// The page index of the file `bytes` whose footer is `metadata`; `None` when no column
    /// chunk has one.
    pub(crate) fn new(metadata: &ParquetMetaData, bytes: Bytes) -> Option<Self> {
        let size = bytes.len();
        let columns = metadata.file_metadata().schema_descr().num_columns();
        let mut chunks = Vec::with_capacity(metadata.num_row_groups() * columns);
        for group in metadata.row_groups() {
            if group.num_columns() != columns {
                // Not a footer the reader accepts; leave pages to the chunks themselves.
                return None;
            }
            for chunk in group.columns() {
                chunks.push(ChunkIndexes {
                    column_index: range(
                        chunk.column_index_offset(),
                        chunk.column_index_length(),
                        size,
                    ),
                    offset_index: range(
                        chunk.offset_index_offset(),
                        chunk.offset_index_length(),
                        size,
                    ),
                    physical_type: chunk.column_type(),
                });
            }
        }
        let has_column_indexes = chunks.iter().any(|c| c.column_index.is_some());
        let has_offset_indexes = chunks.iter().any(|c| c.offset_index.is_some());
        if !has_column_indexes && !has_offset_indexes {
            return None;
        }
        Some(Self {
            bytes,
            columns,
            column_indexes: chunks.iter().map(|_| OnceLock::new()).collect(),
            offset_indexes: chunks.iter().map(|_| OnceLock::new()).collect(),
            chunks,
            has_column_indexes,
            has_offset_indexes,
        })
    }

    fn slot(&self, row_group: usize, column: usize) -> Option<usize> {
        (column < self.columns)
            .then(|| row_group.checked_mul(self.columns)?.checked_add(column))
            .flatten()
            .filter(|&i| i < self.chunks.len())
    }
}

impl PageIndexProvider for LazyPageIndex {
    fn has_offset_indexes(&self) -> bool {
        self.has_offset_indexes
    }

    fn has_column_indexes(&self) -> bool {
        self.has_column_indexes
    }

    fn column_index(&self, row_group: usize, column: usize) -> Option<&ColumnIndexMetaData> {
        let i = self.slot(row_group, column)?;
        self.column_indexes[i]
            .get_or_init(|| {
                let chunk = &self.chunks[i];
                let (start, end) = chunk.column_index?;
                decode_column_index(&self.bytes[start..end], chunk.physical_type).ok()
            })
            .as_ref()
    }

    fn offset_index(&self, row_group: usize, column: usize) -> Option<&OffsetIndexMetaData> {
        let i = self.slot(row_group, column)?;
        self.offset_indexes[i]
            .get_or_init(|| {
                let (start, end) = self.chunks[i].offset_index?;
                decode_offset_index(&self.bytes[start..end]).ok()
            })
            .as_ref()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    use super::*;

    /// A file of 3 row groups of 1,000 rows, pages of 100 rows, with a page index.
    fn file() -> Bytes {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(100)
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, Arc::clone(&schema), Some(props)).unwrap();
        let a = Int64Array::from_iter_values(0..3000);
        let s = StringArray::from_iter((0..3000).map(|i| (i % 7 != 0).then(|| format!("v{i:05}"))));
        writer
            .write(&RecordBatch::try_new(schema, vec![Arc::new(a), Arc::new(s)]).unwrap())
            .unwrap();
        writer.close().unwrap();
        Bytes::from(out)
    }

    #[test]
    fn decodes_each_part_as_the_eager_reader_does() {
        let bytes = file();
        let eager = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&bytes)
            .unwrap();
        let bare = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Skip)
            .parse_and_finish(&bytes)
            .unwrap();
        let lazy = LazyPageIndex::new(&bare, bytes.clone()).unwrap();
        let index = eager.page_index().unwrap();
        assert!(lazy.has_column_indexes() && lazy.has_offset_indexes());
        for rg in 0..eager.num_row_groups() {
            for col in 0..2 {
                assert_eq!(lazy.column_index(rg, col), index.column_index(rg, col));
                assert_eq!(lazy.offset_index(rg, col), index.offset_index(rg, col));
                assert_eq!(
                    lazy.offset_index(rg, col).unwrap().page_locations().len(),
                    10
                );
            }
        }
        // Out of range: none, never a panic.
        assert!(lazy.column_index(3, 0).is_none() && lazy.offset_index(0, 2).is_none());
    }

    #[test]
    fn a_damaged_index_is_absent_for_its_chunk_only() {
        let bytes = file();
        let bare = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Skip)
            .parse_and_finish(&bytes)
            .unwrap();
        let (start, end) = {
            let chunk = bare.row_group(1).column(0);
            let start = chunk.offset_index_offset().unwrap() as usize;
            (start, start + chunk.offset_index_length().unwrap() as usize)
        };
        let mut damaged = bytes.to_vec();
        damaged[start..end].fill(0xff);
        let lazy = LazyPageIndex::new(&bare, Bytes::from(damaged)).unwrap();
        assert!(lazy.offset_index(1, 0).is_none());
        assert!(lazy.offset_index(0, 0).is_some() && lazy.offset_index(1, 1).is_some());
    }

    #[test]
    fn a_file_without_a_page_index_has_none() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_offset_index_disabled(true)
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, Arc::clone(&schema), Some(props)).unwrap();
        let a = Int64Array::from_iter_values(0..10);
        writer
            .write(&RecordBatch::try_new(schema, vec![Arc::new(a)]).unwrap())
            .unwrap();
        writer.close().unwrap();
        let bytes = Bytes::from(out);
        let bare = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Skip)
            .parse_and_finish(&bytes)
            .unwrap();
        assert!(LazyPageIndex::new(&bare, bytes).is_none());
    }
}
