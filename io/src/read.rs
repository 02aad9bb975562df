//! Reading morsels: bounded row-group slices decoded from a memory map.
//!
//! A [`Morsel`] is at most `max_rows` rows of one row group. Reading it selects those rows with
//! a `RowSelection` (with the page index, pages outside the slice are skipped without being
//! decompressed), decodes only the projected columns, casts them to the data set's unified
//! types, and adds hive partition values and NULL columns for columns a file lacks. When the
//! reader is dropped, the pages of the column chunks it touched are released from the page
//! tables (`MADV_DONTNEED`), so mapped input never accumulates in the process's RSS.
//!
//! With a [`LateFilter`] a morsel is read in two steps (*late materialization*): the
//! filter's columns are decoded and the filter evaluated on them, batch by batch, keeping
//! only the passing rows of those columns; then the other columns are decoded for the passing
//! rows only (a `RowSelection`: values of other rows are skipped, and pages without a passing
//! row are not even decompressed). No column is decoded twice. The caller decides per morsel
//! whether this pays (it does when few rows pass).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, UInt64Array,
};
use arrow::compute::{cast_with_options, filter_record_batch, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use memmap2::{Mmap, UncheckedAdvice};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelectionPolicy, RowSelector,
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
    /// Number of rows from `row_offset` (the span of the morsel).
    pub num_rows: usize,
    /// The rows of the span to read, as ranges within the row group (ascending, disjoint,
    /// inside the span); `None`: all of them. Rows that an index or page statistics rule out
    /// are skipped this way: the reader reads only the pages of the rows selected.
    pub selection: Option<Arc<[Range<usize>]>>,
}

impl Morsel {
    /// The ranges of rows read (within the row group).
    pub fn ranges(&self) -> Vec<Range<usize>> {
        match &self.selection {
            Some(ranges) => ranges.to_vec(),
            None => {
                let all = Range {
                    start: self.row_offset,
                    end: self.row_offset + self.num_rows,
                };
                vec![all]
            }
        }
    }

    /// How many rows are read.
    pub fn selected_rows(&self) -> usize {
        match &self.selection {
            Some(ranges) => ranges.iter().map(|r| r.len()).sum(),
            None => self.num_rows,
        }
    }
}

/// Selectors reading `ranges` (ascending, disjoint) of a row group.
fn selectors_of(ranges: &[Range<usize>]) -> Vec<RowSelector> {
    let mut out = Vec::with_capacity(ranges.len() * 2);
    let mut at = 0;
    for r in ranges {
        if r.start > at {
            out.push(RowSelector::skip(r.start - at));
        }
        if !r.is_empty() {
            out.push(RowSelector::select(r.len()));
        }
        at = r.end.max(at);
    }
    out
}

/// The rows of `ranges` that `passed` selects, where `passed` runs over the rows of `ranges`
/// one after another (as ranges within the row group).
fn select_within(ranges: &[Range<usize>], passed: &[RowSelector]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut ranges = ranges.iter().cloned();
    let mut current = ranges.next();
    for selector in passed {
        let mut n = selector.row_count;
        while n > 0 {
            let Some(r) = current.as_mut() else {
                return out;
            };
            let take = n.min(r.len());
            if !selector.skip && take > 0 {
                match out.last_mut() {
                    Some(last) if last.end == r.start => last.end += take,
                    _ => out.push(r.start..r.start + take),
                }
            }
            r.start += take;
            n -= take;
            if r.start >= r.end {
                current = ranges.next();
            }
        }
    }
    out
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
    /// A filter to evaluate while reading, decoding the other columns only for the rows that
    /// pass (see the module docs). Ignored when one of its columns is not stored in the file
    /// (a partition value, a missing column), or when none of the other columns holds values
    /// worth skipping (strings or binaries stored as bytes): [`MorselReader::filtered`] then
    /// says so.
    pub late_filter: Option<LateFilter>,
    /// Columns (names in the unified schema) delivered as another type than the data set's,
    /// converted straight from the stored values (with the rules of Arrow's `cast`, invalid
    /// values an error). A decimal stored as `INT32` or `INT64` is then decoded in that width
    /// (`Decimal32`, `Decimal64`: the decoded integers themselves) and never widened to 128
    /// bits on its way to a float.
    pub read_as: Vec<(String, DataType)>,
    /// Columns (names in the unified schema) known to hold one value in every row read, each
    /// with that value (a length-1 array): they are not read from the file. An index that
    /// selected exactly the rows where `col = v` knows this of `col`. No late filter is
    /// evaluated with constants (the rows are already the ones selected).
    pub constants: Vec<(String, ArrayRef)>,
}

/// The predicate of a filter evaluated while reading.
pub type LatePredicate = dyn Fn(&RecordBatch) -> std::result::Result<BooleanArray, Box<dyn std::error::Error + Send + Sync>>
    + Send
    + Sync;

/// A filter evaluated while reading a morsel, before the columns it does not read are decoded.
#[derive(Clone)]
pub struct LateFilter {
    /// The columns the predicate reads (names in the unified schema), in the order of the
    /// batch it is given.
    pub columns: Vec<String>,
    /// TRUE keeps a row; FALSE and NULL drop it.
    pub predicate: Arc<LatePredicate>,
}

impl std::fmt::Debug for LateFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateFilter")
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
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
    /// Column of the rows kept by a late filter.
    Kept(usize),
}

/// Iterator over the batches of one morsel.
pub struct MorselReader {
    inner: Option<ParquetRecordBatchReader>,
    /// With a late filter: its columns for the rows that passed, and how many of those rows
    /// were handed out.
    kept: Option<(RecordBatch, usize)>,
    /// Rows read for the late filter, and rows that passed it (`None` without one).
    late_counts: Option<(usize, usize)>,
    sources: Vec<ColumnSource>,
    schema: SchemaRef,
    path: std::path::PathBuf,
    remaining_without_reader: usize,
    batch_size: usize,
    release: Vec<(usize, usize)>,
    map: Arc<Mmap>,
    /// An estimate of the bytes the reader holds while it decodes (see
    /// [`decode_bytes`](MorselReader::decode_bytes)).
    decode_bytes: usize,
    /// Copy view columns into buffers of their own: the rows read are a sparse selection,
    /// whose views would keep whole decompressed pages alive.
    compact: bool,
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
            // Consecutive ranges of a row group make one morsel (a span and a selection)
            // until it holds `max_rows` rows.
            let mut current: Vec<Range<usize>> = Vec::new();
            let mut count = 0;
            let flush = |current: &mut Vec<Range<usize>>, out: &mut Vec<Morsel>| {
                let (Some(first), Some(last)) = (current.first(), current.last()) else {
                    return;
                };
                let (start, end) = (first.start, last.end);
                out.push(Morsel {
                    row_group: *rg,
                    row_offset: start,
                    num_rows: end - start,
                    selection: (current.len() > 1).then(|| Arc::from(current.as_slice())),
                });
                current.clear();
            };
            for range in ranges {
                let mut r = range.clone();
                while !r.is_empty() {
                    let take = (max_rows - count).min(r.len());
                    current.push(r.start..r.start + take);
                    count += take;
                    r.start += take;
                    if count == max_rows {
                        flush(&mut current, &mut out);
                        count = 0;
                    }
                }
            }
            flush(&mut current, &mut out);
        }
        out
    }

    /// Open a reader for one morsel.
    pub fn read_morsel(&self, morsel: &Morsel, options: &ReadOptions) -> Result<MorselReader> {
        let file = self.files().get(morsel.row_group.file).ok_or_else(|| {
            IoError::InvalidArgument(format!("no file {}", morsel.row_group.file))
        })?;
        file.check_unchanged()?;
        let names: Vec<String> = match &options.projection {
            Some(p) => p.clone(),
            None => self
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        };
        let schema = with_types(self.project_schema(Some(&names))?, &options.read_as);
        let batch_size = if options.batch_size == 0 {
            8192
        } else {
            options.batch_size
        };

        // Root columns of this file to read, in file order (each name's first field, as
        // `Schema::index_of` finds it; by hash, for files of thousands of columns).
        let wanted: std::collections::HashSet<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !options.constants.iter().any(|(c, _)| c == n))
            .collect();
        let mut seen = std::collections::HashSet::with_capacity(wanted.len());
        let file_columns: Vec<usize> = file
            .schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| wanted.contains(f.name().as_str()) && seen.insert(f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let mut read_root = vec![false; file.schema.fields().len()];
        for &c in &file_columns {
            read_root[c] = true;
        }

        let row_group = file.metadata.row_group(morsel.row_group.row_group);
        let rg_rows = row_group.num_rows().max(1) as u64;
        let ranges = morsel.ranges();
        let selected = morsel.selected_rows();
        let mut release = Vec::new();
        let mut decode_bytes = 0;
        let mut leaves = Vec::new();
        let schema_descr = file.metadata.file_metadata().schema_descr();
        let mask = ProjectionMask::roots(schema_descr, file_columns.iter().copied());
        for (leaf, column) in row_group.columns().iter().enumerate() {
            let root = schema_descr.get_column_root_idx(leaf);
            if read_root.get(root).copied().unwrap_or(false) {
                // The chunk's bytes, checked (the parquet crate's `byte_range` panics on the
                // negative offsets of a corrupt footer).
                let start = column
                    .dictionary_page_offset()
                    .unwrap_or(column.data_page_offset());
                let len = column.compressed_size();
                let end = start.checked_add(len);
                if start < 0 || len < 0 || end.is_none_or(|end| end as u64 > file.size) {
                    return Err(IoError::CorruptFile {
                        path: file.path.clone(),
                        message: format!(
                            "column chunk {leaf} of row group {} lies outside the file \
                             (offset {start}, {len} bytes, file of {} bytes)",
                            morsel.row_group.row_group, file.size
                        ),
                    });
                }
                release.push((start as usize, len as usize));
                decode_bytes += decode_working_set(file, morsel.row_group.row_group, leaf, column);
                leaves.push(leaf);
            }
        }
        // The reader reserves a batch's worth of every column it decodes: keep that to a few
        // MiB for files of thousands of columns (8 bytes a value as the estimate), and to the
        // morsel's rows for small row groups.
        let batch_size = batch_size
            .min((WIDE_BATCH_BYTES / (8 * leaves.len().max(1))).max(MIN_WIDE_BATCH_ROWS))
            .min(morsel.num_rows.max(1));
        let selectors = selectors_of(&ranges);
        let sliced = morsel.selection.is_some()
            || morsel.row_offset > 0
            || (morsel.num_rows as u64) < rg_rows;
        // A slice may need none of a chunk's dictionary (see `page_header`).
        let no_dictionary = if sliced {
            crate::page_header::dictionaries_not_needed(
                file,
                morsel.row_group.row_group,
                &leaves,
                &ranges,
            )
        } else {
            Vec::new()
        };
        let bytes: u64 = leaves
            .iter()
            .map(|&leaf| {
                let dictionary = !no_dictionary.contains(&leaf);
                chunk_bytes_read(file, morsel, leaf, &ranges, rg_rows, dictionary)
            })
            .sum();
        if let Some(counter) = &options.bytes_read {
            counter.fetch_add(bytes, Ordering::Relaxed);
        }
        let corrupt_metadata = |e: parquet::errors::ParquetError| IoError::CorruptFile {
            path: file.path.clone(),
            message: e.to_string(),
        };
        let mut reader_metadata =
            narrow_decimals(file, &options.read_as).map_err(corrupt_metadata)?;
        if !no_dictionary.is_empty() {
            reader_metadata = crate::page_header::without_dictionaries(
                &reader_metadata,
                morsel.row_group.row_group,
                &no_dictionary,
            )
            .map_err(corrupt_metadata)?;
        }
        let builder = || {
            ParquetRecordBatchReaderBuilder::new_with_metadata(
                file.bytes.clone(),
                reader_metadata.clone(),
            )
            .with_row_groups(vec![morsel.row_group.row_group])
            .with_batch_size(batch_size)
        };
        let corrupt = |e: parquet::errors::ParquetError| IoError::CorruptFile {
            path: file.path.clone(),
            message: e.to_string(),
        };

        // Late materialization when every column of the filter is stored in the file.
        let late = options
            .late_filter
            .as_ref()
            .filter(|_| options.constants.is_empty());
        let late = late.and_then(|filter| {
            let indices: Option<Vec<usize>> = filter
                .columns
                .iter()
                .map(|n| file.schema.index_of(n).ok())
                .collect();
            Some((filter, indices?))
        });
        // ... and when some other column is worth skipping rows of (see `skipping_pays`).
        let late = late.filter(|(_, filter_columns)| {
            file_columns
                .iter()
                .filter(|c| !filter_columns.contains(c))
                .any(|&c| skipping_pays(row_group, schema_descr, c))
        });
        if let Some((filter, filter_columns)) = late {
            let filter_schema = self.project_schema(Some(&filter.columns))?;
            let mut sorted = filter_columns.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let mask = ProjectionMask::roots(schema_descr, sorted.iter().copied());
            let mut first = builder().with_projection(mask);
            if sliced {
                first = first.with_row_selection(RowSelection::from(selectors.clone()));
            }
            // The filter's columns, batch by batch: evaluate, keep the passing rows, and note
            // which rows passed (runs of selected and skipped rows of the morsel).
            let filter_sources: Vec<ColumnSource> = filter_columns
                .iter()
                .map(|c| ColumnSource::File(sorted.iter().position(|s| s == c).unwrap_or(0)))
                .collect();
            let mut passed_selectors = Vec::new();
            let mut kept = Vec::new();
            let mut passed = 0;
            let mut filter_reader = first.build().map_err(corrupt)?;
            while let Some(batch) = decode_step(&file.path, || filter_reader.next())? {
                let batch = batch.map_err(|e| IoError::CorruptFile {
                    path: file.path.clone(),
                    message: e.to_string(),
                })?;
                let n = batch.num_rows();
                let columns =
                    assemble_with(&filter_sources, &filter_schema, batch.columns(), None, n)?;
                let mask = (filter.predicate)(&columns).map_err(IoError::Filter)?;
                if mask.len() != n {
                    return Err(IoError::InvalidArgument(format!(
                        "a filter gave {} values for {n} rows",
                        mask.len()
                    )));
                }
                let mask = if mask.null_count() > 0 {
                    arrow::compute::prep_null_mask_filter(&mask)
                } else {
                    mask
                };
                append_runs(&mut passed_selectors, &mask);
                let rows = mask.true_count();
                passed += rows;
                if rows > 0 {
                    kept.push(filter_record_batch(&columns, &mask)?);
                }
            }
            let kept = arrow::compute::concat_batches(&filter_schema, &kept)?;
            // The other stored columns, for the passing rows only.
            let rest: Vec<usize> = file_columns
                .iter()
                .copied()
                .filter(|c| !filter_columns.contains(c))
                .collect();
            let sources = column_sources(file, &names, &rest, &filter.columns, &[]);
            let inner = if rest.is_empty() || passed == 0 {
                None
            } else {
                let selection = selectors_of(&select_within(&ranges, &passed_selectors));
                let mask = ProjectionMask::roots(schema_descr, rest.iter().copied());
                // As selectors: the reader would otherwise take a selection of short runs as a
                // mask, decoding every row and filtering them.
                Some(
                    builder()
                        .with_projection(mask)
                        .with_row_selection(RowSelection::from(selection))
                        .with_row_selection_policy(RowSelectionPolicy::Selectors)
                        .build()
                        .map_err(corrupt)?,
                )
            };
            return Ok(MorselReader {
                inner,
                kept: Some((kept, 0)),
                late_counts: Some((selected, passed)),
                sources,
                schema,
                path: file.path.clone(),
                remaining_without_reader: passed,
                batch_size,
                release,
                map: Arc::clone(&file.map),
                decode_bytes,
                compact: true,
            });
        }

        let inner = if file_columns.is_empty() {
            None
        } else {
            let mut builder = builder().with_projection(mask);
            if sliced {
                builder = builder.with_row_selection(RowSelection::from(selectors));
            }
            Some(builder.build().map_err(corrupt)?)
        };
        Ok(MorselReader {
            inner,
            kept: None,
            late_counts: None,
            sources: column_sources(file, &names, &file_columns, &[], &options.constants),
            schema,
            path: file.path.clone(),
            remaining_without_reader: selected,
            batch_size,
            release,
            map: Arc::clone(&file.map),
            decode_bytes,
            // A selection, or a slice of fewer rows than a batch: rows picked out of pages.
            compact: morsel.selection.is_some() || selected < batch_size.min(8192),
        })
    }
}

/// What decoding column chunk `leaf` of `row_group` holds in memory at once, estimated from
/// the footer: its dictionary page and its largest data page, each once decompressed and once
/// decoded (the decoded dictionary, the values of the page being read). Page sizes come from
/// the offset index when the file has one (else a page is taken to be the whole chunk, at
/// most 1 MiB compressed); uncompressed sizes from the chunk's compression ratio.
fn decode_working_set(
    file: &crate::dataset::ParquetFile,
    row_group: usize,
    leaf: usize,
    column: &parquet::file::metadata::ColumnChunkMetaData,
) -> usize {
    let compressed = column.compressed_size().max(1) as f64;
    let ratio = (column.uncompressed_size().max(0) as f64 / compressed).max(1.0);
    let dictionary = column
        .dictionary_page_offset()
        .map_or(0, |d| (column.data_page_offset() - d).max(0)) as f64;
    use parquet::file::metadata::page_index::PageIndexProvider;
    let largest_page = file
        .metadata
        .page_index()
        .and_then(|index| {
            let index: &dyn PageIndexProvider = index.as_ref();
            index
                .offset_index(row_group, leaf)?
                .page_locations()
                .iter()
                .map(|p| p.compressed_page_size.max(0) as f64)
                .reduce(f64::max)
        })
        .unwrap_or_else(|| compressed.min((1 << 20) as f64));
    (2.0 * ratio * (dictionary + largest_page)) as usize
}

/// Compressed bytes of column chunk `leaf` that reading `ranges` of the morsel's row group
/// touches: with an offset index, the pages overlapping the ranges (and the dictionary page,
/// when it is read);
/// without one, the chunk prorated to the rows read.
fn chunk_bytes_read(
    file: &crate::dataset::ParquetFile,
    morsel: &Morsel,
    leaf: usize,
    ranges: &[Range<usize>],
    rg_rows: u64,
    dictionary: bool,
) -> u64 {
    let rg = morsel.row_group.row_group;
    let column = file.metadata.row_group(rg).column(leaf);
    let chunk = column.compressed_size().max(0) as u64;
    use parquet::file::metadata::page_index::PageIndexProvider;
    let pages = file.metadata.page_index().and_then(|index| {
        let index: &dyn PageIndexProvider = index.as_ref();
        index
            .offset_index(rg, leaf)
            .map(|o| o.page_locations().to_vec())
    });
    let selected: usize = ranges.iter().map(|r| r.len()).sum();
    let Some(pages) = pages.filter(|p| !p.is_empty()) else {
        return chunk * selected as u64 / rg_rows;
    };
    let start = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset())
        .max(0) as u64;
    let mut bytes = if dictionary {
        (pages[0].offset.max(0) as u64).saturating_sub(start)
    } else {
        0
    };
    for (i, page) in pages.iter().enumerate() {
        let first = page.first_row_index.max(0) as usize;
        let end = pages
            .get(i + 1)
            .map_or(rg_rows as usize, |p| p.first_row_index.max(0) as usize);
        if ranges.iter().any(|r| r.start < end && first < r.end) {
            bytes += page.compressed_page_size.max(0) as u64;
        }
    }
    bytes.min(chunk)
}

/// Run `step`, turning a panic inside it into `Err` with the panic's message. The Arrow IPC
/// and Parquet decoders still panic on some inputs that pass their checks (a buffer past the
/// end of a message body, a dictionary index past the end of an FLBA dictionary; both found by
/// fuzzing), and a damaged file must be an error, never a crash. What panicked is not used
/// again afterwards.
pub fn contain_panic<T>(step: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Run one step of the Parquet decoder, turning a panic into a corrupt-file error naming the
/// file (see [`contain_panic`]). The decoder is not used again after such an error.
pub(crate) fn decode_step<T>(path: &std::path::Path, step: impl FnOnce() -> T) -> Result<T> {
    contain_panic(step).map_err(|message| IoError::CorruptFile {
        path: path.to_path_buf(),
        message: format!("the Parquet decoder failed: {message}"),
    })
}

/// `schema` with the fields named in `read_as` changed to the types given there (the schema
/// of batches read with [`ReadOptions::read_as`]).
pub fn with_types(schema: SchemaRef, read_as: &[(String, DataType)]) -> SchemaRef {
    if read_as.is_empty() {
        return schema;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match read_as.iter().find(|(n, _)| n == f.name()) {
            Some((_, t)) => f.as_ref().clone().with_data_type(t.clone()),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The reader metadata of `file` for reading the columns of `read_as` converted: those that
/// hold decimals stored as `INT32` or `INT64` are decoded as `Decimal32` or `Decimal64` (the
/// decoded integers as they are) instead of being widened to `Decimal128`; the file's own
/// metadata when there is no such column.
fn narrow_decimals(
    file: &crate::dataset::ParquetFile,
    read_as: &[(String, DataType)],
) -> parquet::errors::Result<ArrowReaderMetadata> {
    use parquet::basic::Type as PhysicalType;
    // Every morsel comes here: nothing to look at without columns to convert.
    if read_as.is_empty() {
        return Ok(file.reader_metadata.clone());
    }
    let descr = file.metadata.file_metadata().schema_descr();
    let mut narrowed = false;
    let fields: Vec<Field> = file
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(root, field)| {
            let wanted = read_as.iter().any(|(n, _)| n == field.name());
            let DataType::Decimal128(precision, scale) = field.data_type() else {
                return field.as_ref().clone();
            };
            if !wanted {
                return field.as_ref().clone();
            }
            // The column's one leaf, when the root is a primitive column.
            let leaves: Vec<usize> = (0..descr.num_columns())
                .filter(|&leaf| descr.get_column_root_idx(leaf) == root)
                .collect();
            let narrow = match leaves.as_slice() {
                [leaf] => match descr.column(*leaf).physical_type() {
                    PhysicalType::INT32 => Some(DataType::Decimal32(*precision, *scale)),
                    PhysicalType::INT64 => Some(DataType::Decimal64(*precision, *scale)),
                    _ => None,
                },
                _ => None,
            };
            match narrow {
                Some(t) => {
                    narrowed = true;
                    field.as_ref().clone().with_data_type(t)
                }
                None => field.as_ref().clone(),
            }
        })
        .collect();
    if !narrowed {
        return Ok(file.reader_metadata.clone());
    }
    let hint = Arc::new(Schema::new_with_metadata(
        fields,
        file.schema.metadata().clone(),
    ));
    ArrowReaderMetadata::try_new(
        Arc::clone(&file.metadata),
        ArrowReaderOptions::new().with_schema(hint),
    )
}

/// Whether reading only some rows of the root column `root` pays, against decoding all of
/// them: it does for strings and binaries stored as their bytes, whose values are copied one
/// by one. Numbers, dates and dictionary-encoded strings decode so fast that selecting rows
/// (a call into the reader per run of rows) costs more than it saves: on SF10 TPC-H, reading
/// them late made Q6, Q10, Q15 and Q20 9–22% slower.
fn skipping_pays(
    row_group: &parquet::file::metadata::RowGroupMetaData,
    schema: &parquet::schema::types::SchemaDescriptor,
    root: usize,
) -> bool {
    use parquet::basic::{Encoding, Type as PhysicalType};
    row_group
        .columns()
        .iter()
        .enumerate()
        .filter(|(leaf, _)| schema.get_column_root_idx(*leaf) == root)
        .any(|(_, column)| {
            let bytes = matches!(
                column.column_type(),
                PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY
            );
            let all_dictionary = column.dictionary_page_offset().is_some()
                && column.page_encoding_stats_mask().is_some_and(|mask| {
                    mask.is_only(Encoding::PLAIN_DICTIONARY)
                        || mask.is_only(Encoding::RLE_DICTIONARY)
                });
            bytes && !all_dictionary
        })
}

/// Where each of `names` comes from: one of `kept` (a late filter's columns, kept for the
/// rows that passed), one of the file's root columns `read` (in file order, as the reader
/// returns them), a hive partition value, or nowhere (NULLs).
fn column_sources(
    file: &crate::dataset::ParquetFile,
    names: &[String],
    read: &[usize],
    kept: &[String],
    constants: &[(String, ArrayRef)],
) -> Vec<ColumnSource> {
    names
        .iter()
        .map(|n| {
            if let Some((_, v)) = constants.iter().find(|(c, _)| c == n) {
                ColumnSource::Partition(Arc::clone(v))
            } else if let Some(j) = kept.iter().position(|c| c == n) {
                ColumnSource::Kept(j)
            } else if let Ok(i) = file.schema.index_of(n) {
                ColumnSource::File(read.iter().position(|&c| c == i).unwrap_or(0))
            } else if let Some((_, v)) = file.partition_values.iter().find(|(k, _)| k == n) {
                ColumnSource::Partition(Arc::clone(v))
            } else {
                ColumnSource::Null
            }
        })
        .collect()
}

/// Append to `selectors` the runs of TRUE (select) and FALSE (skip) of `mask` (no NULLs).
fn append_runs(selectors: &mut Vec<RowSelector>, mask: &BooleanArray) {
    let mut push = |select: bool, n: usize| {
        if n == 0 {
            return;
        }
        match selectors.last_mut() {
            Some(last) if last.skip != select => last.row_count += n,
            _ => selectors.push(if select {
                RowSelector::select(n)
            } else {
                RowSelector::skip(n)
            }),
        }
    };
    let mut at = 0;
    for (start, end) in mask.values().set_slices() {
        push(false, start - at);
        push(true, end - start);
        at = end;
    }
    push(false, mask.len() - at);
}

/// The output batch of `schema` from the reader's `columns` and the values of `sources`
/// (`kept`: the late filter's columns for these rows).
fn assemble_with(
    sources: &[ColumnSource],
    schema: &SchemaRef,
    columns: &[ArrayRef],
    kept: Option<&RecordBatch>,
    num_rows: usize,
) -> Result<RecordBatch> {
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(sources.len());
    for (source, field) in sources.iter().zip(schema.fields()) {
        let array = match source {
            ColumnSource::File(i) => {
                let a = &columns[*i];
                if a.data_type() == field.data_type() {
                    Arc::clone(a)
                } else {
                    cast_with_options(a, field.data_type(), &options)?
                }
            }
            ColumnSource::Kept(j) => match kept {
                Some(kept) => {
                    let a = kept.column(*j);
                    if a.data_type() == field.data_type() {
                        Arc::clone(a)
                    } else {
                        cast_with_options(a, field.data_type(), &options)?
                    }
                }
                None => {
                    return Err(IoError::InvalidArgument(
                        "a kept column without the filter's rows".into(),
                    ))
                }
            },
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
        Arc::clone(schema),
        out,
        &options,
    )?)
}

/// A string or binary view column with its values copied into buffers of their own: read
/// for a few selected rows, its views would otherwise keep every decompressed page they
/// point into alive (tens of times the bytes of the values, for the batches in flight).
fn compact_views(array: &ArrayRef) -> ArrayRef {
    use arrow::array::AsArray;
    match array.data_type() {
        arrow::datatypes::DataType::Utf8View => Arc::new(array.as_string_view().gc()),
        arrow::datatypes::DataType::BinaryView => Arc::new(array.as_binary_view().gc()),
        _ => Arc::clone(array),
    }
}

impl MorselReader {
    /// Whether the batches are filtered already (a late filter was given and applied).
    pub fn filtered(&self) -> bool {
        self.kept.is_some()
    }

    /// With a late filter applied: the rows it was evaluated on and the rows that passed.
    pub fn late_counts(&self) -> Option<(usize, usize)> {
        self.late_counts
    }

    /// The next `n` rows of the late filter's columns.
    fn take_kept(&mut self, n: usize) -> Option<RecordBatch> {
        let (kept, at) = self.kept.as_mut()?;
        let n = n.min(kept.num_rows().saturating_sub(*at));
        let slice = kept.slice(*at, n);
        *at += n;
        Some(slice)
    }
}

impl Iterator for MorselReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.inner.as_mut() {
            Some(reader) => {
                let batch = match decode_step(&self.path, || reader.next()) {
                    Ok(next) => match next? {
                        Ok(b) => b,
                        Err(e) => {
                            // Nothing more comes from a reader that failed.
                            self.inner = None;
                            self.remaining_without_reader = 0;
                            return Some(Err(IoError::CorruptFile {
                                path: self.path.clone(),
                                message: e.to_string(),
                            }));
                        }
                    },
                    Err(e) => {
                        self.inner = None;
                        self.remaining_without_reader = 0;
                        return Some(Err(e));
                    }
                };
                let n = batch.num_rows();
                let kept = self.take_kept(n);
                let columns: Vec<ArrayRef> = if kept.is_some() || self.compact {
                    batch.columns().iter().map(compact_views).collect()
                } else {
                    batch.columns().to_vec()
                };
                Some(assemble_with(
                    &self.sources,
                    &self.schema,
                    &columns,
                    kept.as_ref(),
                    n,
                ))
            }
            None => {
                if self.remaining_without_reader == 0 {
                    return None;
                }
                let n = self.remaining_without_reader.min(self.batch_size);
                self.remaining_without_reader -= n;
                let kept = self.take_kept(n);
                Some(assemble_with(
                    &self.sources,
                    &self.schema,
                    &[],
                    kept.as_ref(),
                    n,
                ))
            }
        }
    }
}

impl MorselReader {
    /// An estimate of the bytes the reader holds while it decodes: for each column it reads,
    /// the dictionary page and the largest data page, decompressed and decoded. Not counted:
    /// the batches it returns, which belong to the caller.
    pub fn decode_bytes(&self) -> usize {
        self.decode_bytes
    }
}

impl Drop for MorselReader {
    fn drop(&mut self) {
        for &(start, len) in &self.release {
            release_pages(&self.map, start, len);
        }
    }
}

/// A batch's values of all decoded columns together stay under this (see `read_morsel`).
const WIDE_BATCH_BYTES: usize = 16 << 20;
/// ... but a batch has at least this many rows.
const MIN_WIDE_BATCH_ROWS: usize = 64;

/// The largest page-cache folio a file mapping may map at once (a PMD, 2 MiB on x86-64 and
/// arm64 with 4 KiB pages). A fault maps more than the page it touches: the kernel's
/// fault-around maps up to 64 KiB of cached neighbours, and a large folio is mapped whole,
/// so reading one column chunk can map up to a folio of the chunks beside it (columns the
/// query never reads). Folios are aligned to their size in the file, so every page a read of
/// `start..end` may have mapped lies within that range widened to this alignment.
const LARGEST_FOLIO: usize = 2 << 20;

/// Drop the resident pages of `len` bytes at `start` of a file's map from the process's page
/// tables, so that bytes read once do not stay in its RSS: the range widened to
/// [`LARGEST_FOLIO`] alignment, which also covers what faults mapped around it.
pub(crate) fn release_pages(map: &Mmap, start: usize, len: usize) {
    let Some(end) = start.checked_add(len).filter(|&end| end <= map.len()) else {
        return;
    };
    let start = start & !(LARGEST_FOLIO - 1);
    let end = end
        .checked_next_multiple_of(LARGEST_FOLIO)
        .unwrap_or(end)
        .min(map.len());
    // SAFETY: the map is a private read-only mapping of a file that ooc does not modify.
    // MADV_DONTNEED only drops the resident pages (also those of a neighbouring range another
    // reader may be using); the next access maps the same bytes again from the page cache,
    // so no reader observes a change.
    let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) };
}
