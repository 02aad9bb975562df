//! File discovery, footers, hive partitions and schema unification.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use memmap2::Mmap;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::page_index::PageIndexProvider;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};

use crate::page_index::LazyPageIndex;

use crate::error::{IoError, Result};

/// The hive value meaning NULL.
const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// One Parquet file of a data set.
pub struct ParquetFile {
    /// Where it is.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when the file system reports one.
    pub modified: Option<std::time::SystemTime>,
    /// The footer (with the page index when the file has one).
    pub metadata: Arc<ParquetMetaData>,
    /// The file's own Arrow schema.
    pub schema: SchemaRef,
    /// Hive `key=value` pairs from the path, each value a length-1 array (null for
    /// `__HIVE_DEFAULT_PARTITION__`).
    pub partition_values: Vec<(String, ArrayRef)>,
    pub(crate) reader_metadata: ArrowReaderMetadata,
    pub(crate) map: Arc<Mmap>,
    pub(crate) bytes: Bytes,
    /// Device and inode of the file mapped, to tell the file at `path` now from another
    /// that replaced it ([`ParquetFile::check_unchanged`]). No descriptor is kept open: a
    /// glob of many thousands of files must not run out of them.
    identity: (u64, u64),
}

impl std::fmt::Debug for ParquetFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFile")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish()
    }
}

struct MapOwner(Arc<Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0[..]
    }
}

impl ParquetFile {
    /// Map `path` and read its footer.
    pub fn open(path: &Path, partition_values: Vec<(String, ArrayRef)>) -> Result<Self> {
        let file = File::open(path).map_err(|source| IoError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let stat = file.metadata().map_err(|source| IoError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let size = stat.len();
        let modified = stat.modified().ok();
        if size < 12 {
            return Err(IoError::CorruptFile {
                path: path.to_path_buf(),
                message: format!("file is {size} bytes, too small to hold a Parquet footer"),
            });
        }
        // SAFETY: the map is read-only; ooc never writes to input files. A file truncated by
        // another process while mapped would fault, which is the usual caveat of mapping files.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| IoError::Io {
            path: path.to_path_buf(),
            source: explain_map_error(source),
        })?;
        let map = Arc::new(map);
        let bytes = Bytes::from_owner(MapOwner(Arc::clone(&map)));
        // The footer now; the page index when a reader first asks for a column chunk's
        // (`LazyPageIndex`): a query that statistics answer never decodes it.
        let reader_metadata = crate::read::decode_step(path, || {
            let metadata = ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Skip)
                .parse_and_finish(&bytes)?;
            let page_index = LazyPageIndex::new(&metadata, bytes.clone())
                .map(|index| Arc::new(index) as Arc<dyn PageIndexProvider>);
            let metadata = metadata.into_builder().set_page_index(page_index).build();
            ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
        })?
        .map_err(|e| IoError::CorruptFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        // The footer has been decoded onto the heap: its mapped pages need not stay resident
        // (nor those of the page index, decoded later from the page cache, nor the pages they
        // describe, released after each read).
        release_metadata_pages(&map, reader_metadata.metadata(), size);
        Ok(Self {
            path: path.to_path_buf(),
            size,
            modified,
            metadata: Arc::clone(reader_metadata.metadata()),
            schema: Arc::clone(reader_metadata.schema()),
            partition_values,
            reader_metadata,
            map,
            bytes,
            identity: (
                std::os::unix::fs::MetadataExt::dev(&stat),
                std::os::unix::fs::MetadataExt::ino(&stat),
            ),
        })
    }

    /// Fail, naming the file, if it was truncated or rewritten in place since it was opened
    /// (its size or modification time differ). Reading its mapped pages then would give
    /// other bytes than the footer describes, or, past a truncation, kill the process with
    /// `SIGBUS`. Checked before every morsel is read; a file deleted or replaced by a rename
    /// is not a change (the mapping keeps the old file's bytes), nor is a path that cannot be
    /// looked up any more.
    pub fn check_unchanged(&self) -> Result<()> {
        let Ok(stat) = std::fs::metadata(&self.path) else {
            return Ok(());
        };
        let identity = (
            std::os::unix::fs::MetadataExt::dev(&stat),
            std::os::unix::fs::MetadataExt::ino(&stat),
        );
        if identity != self.identity {
            return Ok(());
        }
        let message = if stat.len() != self.size {
            format!(
                "it had {} bytes when the query started and has {} now (truncated or \
                 rewritten by another program); run the query again once it is complete",
                self.size,
                stat.len()
            )
        } else if stat.modified().ok() != self.modified {
            "it was rewritten in place after the query started (its modification time \
             changed); run the query again once it is complete"
                .to_string()
        } else {
            return Ok(());
        };
        Err(IoError::Changed {
            path: self.path.clone(),
            message,
        })
    }

    /// Number of rows according to the footer.
    pub fn num_rows(&self) -> u64 {
        self.metadata.file_metadata().num_rows().max(0) as u64
    }

    /// xxHash64 of the file's Parquet footer: its metadata, their length and the magic (or of
    /// the last eight bytes when the length is damaged; such a file does not open anyway).
    /// Identifies this version of the file where size and modification time may not (a
    /// rewrite within the file system's time resolution).
    pub fn footer_hash(&self) -> u64 {
        let bytes: &[u8] = &self.bytes;
        let n = bytes.len();
        let tail = n.saturating_sub(8);
        let len = bytes
            .get(tail..tail + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(0);
        let start = tail.checked_sub(len).unwrap_or(tail);
        twox_hash::XxHash64::oneshot(0, &bytes[start..])
    }
}

/// A failed `mmap` told as what it usually is: every file of a data set stays mapped while
/// the data set is open, and the kernel bounds a process's mappings (`vm.max_map_count`).
fn explain_map_error(error: std::io::Error) -> std::io::Error {
    if error.raw_os_error() != Some(libc::ENOMEM) {
        return error;
    }
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let limit = limit.map_or_else(|| "a limit".to_string(), |n| format!("{n}"));
    std::io::Error::new(
        error.kind(),
        format!(
            "cannot map it into memory ({error}): ooc maps every file of a data set, and the \
             kernel allows a process {limit} mappings (vm.max_map_count); query fewer files \
             at once, merge small files, or raise vm.max_map_count"
        ),
    )
}

/// Release the mapped pages of a file's footer and page index, from the first of the column
/// and offset indexes (they precede the footer) to the end of the file.
fn release_metadata_pages(
    map: &Mmap,
    metadata: &parquet::file::metadata::ParquetMetaData,
    size: u64,
) {
    let index_start = metadata
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .flat_map(|c| [c.column_index_offset(), c.offset_index_offset()])
        .flatten()
        .filter_map(|offset| u64::try_from(offset).ok())
        .min();
    // Without a page index: the last 64 KiB hold the footer of most files; a larger footer
    // keeps the rest of its pages mapped, which is harmless.
    let start = index_start
        .unwrap_or(size.saturating_sub(64 << 10))
        .min(size);
    if let (Ok(start), Ok(size)) = (usize::try_from(start), usize::try_from(size)) {
        crate::read::release_pages(map, start, size - start);
    }
}

/// A row group of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowGroupRef {
    /// Index into [`ParquetDataset::files`].
    pub file: usize,
    /// Row group index within that file.
    pub row_group: usize,
}

/// A set of Parquet files read as one table.
#[derive(Debug)]
pub struct ParquetDataset {
    files: Vec<ParquetFile>,
    schema: SchemaRef,
    partition_columns: Vec<String>,
    /// The locations it was opened from (files, directories or globs), as given.
    locations: Vec<String>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// Whether a file name found in a directory is a Parquet file.
pub(crate) fn is_parquet_name(name: &str) -> bool {
    name.ends_with(".parquet") || name.ends_with(".parq") || name.ends_with(".pq")
}

fn walk(dir: &Path, accept: fn(&str) -> bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| IoError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| IoError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if is_hidden(&name) {
            continue;
        }
        if path.is_dir() {
            walk(&path, accept, out)?;
        } else if accept(&name) {
            out.push(path);
        }
    }
    Ok(())
}

/// Files of one location plus the directory hive folders are relative to. Directories (given,
/// or matched by a glob) are walked for the files whose names `accept` takes.
pub(crate) fn discover(
    location: &str,
    accept: fn(&str) -> bool,
) -> Result<(Vec<PathBuf>, PathBuf)> {
    if has_glob(location) {
        let base: PathBuf = {
            let prefix: String = location
                .chars()
                .take_while(|c| !matches!(c, '*' | '?' | '['))
                .collect();
            match prefix.rfind('/') {
                Some(i) => PathBuf::from(&prefix[..i.max(1)]),
                None => PathBuf::from("."),
            }
        };
        let paths = glob::glob(location)
            .map_err(|e| IoError::InvalidArgument(format!("invalid glob '{location}': {e}")))?;
        let mut files = Vec::new();
        for p in paths {
            let p = p.map_err(|e| IoError::Io {
                path: e.path().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
            if p.is_file() {
                files.push(p);
            } else if p.is_dir() {
                walk(&p, accept, &mut files)?;
            }
        }
        return Ok((files, base));
    }
    let path = PathBuf::from(location);
    if !path.exists() {
        return Err(IoError::NoFiles {
            location: location.to_string(),
            kind: "Parquet",
        });
    }
    if path.is_dir() {
        let mut files = Vec::new();
        walk(&path, accept, &mut files)?;
        Ok((files, path))
    } else {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((vec![path], base))
    }
}

fn hive_pairs(path: &Path, base: &Path) -> Vec<(String, String)> {
    let relative = path.strip_prefix(base).unwrap_or(path);
    let mut pairs = Vec::new();
    if let Some(parent) = relative.parent() {
        for component in parent.components() {
            let text = component.as_os_str().to_string_lossy();
            if let Some((k, v)) = text.split_once('=') {
                if !k.is_empty() {
                    pairs.push((k.to_string(), v.to_string()));
                }
            }
        }
    }
    pairs
}

/// The common type of a column seen with types `a` and `b`, if the two are compatible.
pub(crate) fn unify_types(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let int_rank = |t: &DataType| -> Option<u8> {
        Some(match t {
            Int8 => 1,
            UInt8 | Int16 => 2,
            UInt16 | Int32 => 3,
            UInt32 | Int64 => 4,
            _ => return None,
        })
    };
    let decimal_of = |t: &DataType| -> Option<(i16, i16)> {
        match t {
            Decimal128(p, s) => Some((*p as i16, *s as i16)),
            _ => int_rank(t).map(|r| {
                (
                    match r {
                        1 => 3,
                        2 => 5,
                        3 => 10,
                        _ => 19,
                    },
                    0,
                )
            }),
        }
    };
    match (a, b) {
        (x, y) if int_rank(x).is_some() && int_rank(y).is_some() => {
            Some(match int_rank(x).max(int_rank(y)) {
                Some(1) => Int8,
                Some(2) => Int16,
                Some(3) => Int32,
                _ => Int64,
            })
        }
        (Float16 | Float32 | Float64, y) | (y, Float16 | Float32 | Float64)
            if matches!(y, Float16 | Float32 | Float64) || int_rank(y).is_some() =>
        {
            Some(Float64)
        }
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => Some(a.clone()),
        (Decimal128(_, _), _) | (_, Decimal128(_, _)) => {
            let (p1, s1) = decimal_of(a)?;
            let (p2, s2) = decimal_of(b)?;
            let scale = s1.max(s2);
            let precision = (p1 - s1).max(p2 - s2) + scale;
            (precision <= 38).then_some(Decimal128(precision as u8, scale as i8))
        }
        (Timestamp(u1, tz1), Timestamp(u2, tz2)) if tz1 == tz2 => {
            use arrow::datatypes::TimeUnit::*;
            let rank = |u: &arrow::datatypes::TimeUnit| match u {
                Second => 0,
                Millisecond => 1,
                Microsecond => 2,
                Nanosecond => 3,
            };
            Some(Timestamp(
                if rank(u1) >= rank(u2) { *u1 } else { *u2 },
                tz1.clone(),
            ))
        }
        _ => None,
    }
}

impl ParquetDataset {
    /// Open a file, a directory (recursively; hive `key=value` folders become columns) or a
    /// glob pattern.
    pub fn open(location: &str) -> Result<Self> {
        Self::open_many(&[location.to_string()])
    }

    /// Open the union of several locations.
    pub fn open_many(locations: &[String]) -> Result<Self> {
        let mut found: Vec<(PathBuf, Vec<(String, String)>)> = Vec::new();
        for location in locations {
            let (mut files, base) = discover(location, is_parquet_name)?;
            files.sort();
            if files.is_empty() {
                return Err(IoError::NoFiles {
                    location: location.clone(),
                    kind: "Parquet",
                });
            }
            for f in files {
                let pairs = hive_pairs(&f, &base);
                found.push((f, pairs));
            }
        }
        // Hive keys must agree across files.
        let keys: Vec<String> = found
            .first()
            .map(|(_, p)| p.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default();
        for (path, pairs) in &found {
            let these: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
            if these != keys {
                return Err(IoError::InvalidArgument(format!(
                    "hive partition folders differ: {} has keys [{}] but {} has [{}]",
                    found[0].0.display(),
                    keys.join(", "),
                    path.display(),
                    these.join(", ")
                )));
            }
        }
        // Partition value types: BIGINT if every value is an integer, else VARCHAR.
        let mut integer_key = vec![true; keys.len()];
        for (_, pairs) in &found {
            for (i, (_, v)) in pairs.iter().enumerate() {
                if v != HIVE_NULL && v.parse::<i64>().is_err() {
                    integer_key[i] = false;
                }
            }
        }
        let mut files = Vec::with_capacity(found.len());
        for (path, pairs) in found {
            let values = pairs
                .into_iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let array: ArrayRef = if v == HIVE_NULL {
                        if integer_key[i] {
                            Arc::new(Int64Array::from(vec![None::<i64>]))
                        } else {
                            Arc::new(StringArray::from(vec![None::<&str>]))
                        }
                    } else if integer_key[i] {
                        Arc::new(Int64Array::from(vec![v.parse::<i64>().unwrap_or_default()]))
                    } else {
                        Arc::new(StringArray::from(vec![v.as_str()]))
                    };
                    (k, array)
                })
                .collect();
            files.push(ParquetFile::open(&path, values)?);
        }
        let schema = unify_schemas(&files, &keys, &integer_key)?;
        Ok(Self {
            files,
            schema,
            partition_columns: keys,
            locations: locations.to_vec(),
        })
    }

    /// The locations the data set was opened from, as given (opening them again finds the
    /// same files, unless files were added or removed since).
    pub fn locations(&self) -> &[String] {
        &self.locations
    }

    /// The unified schema: file columns in first-seen order, then partition columns.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The files, sorted by path.
    pub fn files(&self) -> &[ParquetFile] {
        &self.files
    }

    /// Hive partition column names.
    pub fn partition_columns(&self) -> &[String] {
        &self.partition_columns
    }

    /// Total rows from the footers.
    pub fn num_rows(&self) -> u64 {
        self.files.iter().map(ParquetFile::num_rows).sum()
    }

    /// Average compressed bytes per row of the named top-level columns, from the column chunk
    /// sizes in the footers (`None` for a data set without rows).
    pub fn compressed_bytes_per_row(&self, columns: &[String]) -> Option<f64> {
        let mut bytes = 0i64;
        let mut rows = 0i64;
        for f in &self.files {
            for rg in f.metadata.row_groups() {
                rows += rg.num_rows();
                for c in rg.columns() {
                    let top = c.column_path().parts().first();
                    if top.is_some_and(|t| columns.iter().any(|n| n == t)) {
                        bytes += c.compressed_size();
                    }
                }
            }
        }
        (rows > 0).then(|| bytes as f64 / rows as f64)
    }

    /// Total row groups.
    pub fn num_row_groups(&self) -> usize {
        self.files.iter().map(|f| f.metadata.num_row_groups()).sum()
    }

    /// Every row group, in file order.
    pub fn all_row_groups(&self) -> Vec<RowGroupRef> {
        self.files
            .iter()
            .enumerate()
            .flat_map(|(file, f)| {
                (0..f.metadata.num_row_groups())
                    .map(move |row_group| RowGroupRef { file, row_group })
            })
            .collect()
    }

    /// Rows in one row group.
    pub fn row_group_rows(&self, rg: RowGroupRef) -> usize {
        self.files[rg.file]
            .metadata
            .row_group(rg.row_group)
            .num_rows()
            .max(0) as usize
    }

    /// The schema of `projection` (names of the unified schema, in the given order).
    pub fn project_schema(&self, projection: Option<&[String]>) -> Result<SchemaRef> {
        match projection {
            None => Ok(self.schema()),
            Some(names) => {
                let fields = names
                    .iter()
                    .map(|n| {
                        self.schema.field_with_name(n).cloned().map_err(|_| {
                            let valid: Vec<&str> = self
                                .schema
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect();
                            IoError::InvalidArgument(format!(
                                "unknown column '{n}'; valid columns: {}",
                                valid.join(", ")
                            ))
                        })
                    })
                    .collect::<Result<Vec<Field>>>()?;
                Ok(Arc::new(Schema::new(fields)))
            }
        }
    }
}

fn unify_schemas(
    files: &[ParquetFile],
    keys: &[String],
    integer_key: &[bool],
) -> Result<SchemaRef> {
    // name → (field, index of the first file that has it)
    let mut order: Vec<String> = Vec::new();
    let mut fields: BTreeMap<String, (Field, usize, usize)> = BTreeMap::new(); // (field, first file, count)
    for (i, file) in files.iter().enumerate() {
        for field in file.schema.fields() {
            match fields.get_mut(field.name()) {
                Some((existing, first, count)) => {
                    let unified =
                        unify_types(existing.data_type(), field.data_type()).ok_or_else(|| {
                            IoError::SchemaMismatch {
                                column: field.name().clone(),
                                first: files[*first].path.clone(),
                                first_type: existing.data_type().clone(),
                                second: file.path.clone(),
                                second_type: field.data_type().clone(),
                            }
                        })?;
                    let nullable = existing.is_nullable() || field.is_nullable();
                    *existing = Field::new(field.name(), unified, nullable);
                    *count += 1;
                }
                None => {
                    order.push(field.name().clone());
                    fields.insert(
                        field.name().clone(),
                        (
                            Field::new(
                                field.name(),
                                field.data_type().clone(),
                                field.is_nullable(),
                            ),
                            i,
                            1,
                        ),
                    );
                }
            }
        }
    }
    let mut out: Vec<Field> = order
        .iter()
        .map(|name| {
            let (field, _, count) = &fields[name];
            // A column missing from some files reads as NULL there.
            if *count < files.len() {
                field.clone().with_nullable(true)
            } else {
                field.clone()
            }
        })
        .collect();
    for (key, is_int) in keys.iter().zip(integer_key) {
        if fields.contains_key(key) {
            return Err(IoError::InvalidArgument(format!(
                "hive partition key '{key}' is also a column inside the files"
            )));
        }
        out.push(Field::new(
            key,
            if *is_int {
                DataType::Int64
            } else {
                DataType::Utf8
            },
            true,
        ));
    }
    Ok(Arc::new(Schema::new(out)))
}
