//! Secondary indexes: for columns the data is not sorted by, which rows hold which values.
//!
//! An index lives in a *sidecar* file per data file — beside it (`.NAME.ooc-index`), or in
//! an index directory for data one cannot write next to (`NAME-HASH.ooc-index`, the hash
//! being that of the data file's absolute path). A sidecar holds the indexes of one or more
//! columns of its file: per distinct value, the rows that hold it (the `format` module has the
//! layout). A predicate on indexed columns is answered as a roaring bitmap of rows
//! ([`Sidecar::select`]), which the scan turns into row groups and row selections, so that
//! a lookup of a value that a few rows hold reads only the pages of those rows.
//!
//! **Never a wrong answer from a stale index.** A sidecar records the size, modification time
//! and a hash of the Parquet footer of the file it was built from; [`open_index`] ignores it
//! (and says why) when any of them differs, and a sidecar that is damaged — truncated, bit
//! flips, an unknown version — is ignored with its reason too, or (when the damage is in a
//! part read later) gives an error that the scan treats the same way: the file is then
//! scanned as if it had no index.
//!
//! Building ([`create_indexes`]) reads each column slice by slice and sorts (key, row) pairs
//! externally under a memory limit (the `build` module); the sidecar is written to a temporary
//! file, synced and renamed over the old one, so a reader sees the old sidecar or the new
//! one, never a part, and a killed build leaves a temporary file that the next build or drop
//! of that sidecar removes.

mod build;
mod format;
mod key;
mod lookup;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use arrow::datatypes::DataType;

pub use format::Sidecar;
pub use lookup::IndexMatch;

use format::{write_footer, ColumnMeta, CountingWriter, Fingerprint, Footer, MAGIC};

use crate::dataset::{ParquetDataset, ParquetFile};
use crate::error::{IoError, Result};

/// The end of every sidecar's file name.
pub const SIDECAR_SUFFIX: &str = ".ooc-index";

/// Where the sidecar of `data_file` is: beside it, or in `index_dir`.
pub fn sidecar_path(data_file: &Path, index_dir: Option<&Path>) -> PathBuf {
    let name = data_file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    match index_dir {
        None => data_file.with_file_name(format!(".{name}{SIDECAR_SUFFIX}")),
        Some(dir) => {
            let absolute =
                std::fs::canonicalize(data_file).unwrap_or_else(|_| data_file.to_path_buf());
            let hash = twox_hash::XxHash64::oneshot(0, absolute.to_string_lossy().as_bytes());
            dir.join(format!("{name}-{hash:016x}{SIDECAR_SUFFIX}"))
        }
    }
}

/// What the sidecar must record for `file` to be current.
fn fingerprint(file: &ParquetFile) -> Fingerprint {
    let (mtime_secs, mtime_nanos) = file
        .modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
    Fingerprint {
        size: file.size,
        mtime_secs,
        mtime_nanos,
        footer_hash: file.footer_hash(),
    }
}

/// A data file's index, as a query finds it.
#[derive(Clone, Debug)]
pub enum IndexStatus {
    /// No sidecar.
    Absent,
    /// A current sidecar.
    Ready(Arc<Sidecar>),
    /// A sidecar that is not used, and why (stale, damaged, another version).
    Ignored {
        /// The sidecar.
        sidecar: PathBuf,
        /// Why it is ignored.
        reason: String,
    },
}

/// The index of `file`, looked for in `index_dir` first (when given), then beside the file.
pub fn open_index(file: &ParquetFile, index_dir: Option<&Path>) -> IndexStatus {
    let candidates = index_dir
        .map(|d| sidecar_path(&file.path, Some(d)))
        .into_iter()
        .chain([sidecar_path(&file.path, None)]);
    for path in candidates {
        if !path.exists() {
            continue;
        }
        return match Sidecar::open(&path) {
            Err(reason) => IndexStatus::Ignored {
                sidecar: path,
                reason: format!("damaged: {reason}"),
            },
            Ok(sidecar) => match staleness(&sidecar, file) {
                Some(reason) => IndexStatus::Ignored {
                    sidecar: path,
                    reason,
                },
                None => IndexStatus::Ready(Arc::new(sidecar)),
            },
        };
    }
    IndexStatus::Absent
}

/// Why `sidecar` does not describe `file` as it is now (`None`: it does).
fn staleness(sidecar: &Sidecar, file: &ParquetFile) -> Option<String> {
    let recorded = &sidecar.footer.fingerprint;
    let now = fingerprint(file);
    let what = if recorded.size != now.size {
        "its size"
    } else if (recorded.mtime_secs, recorded.mtime_nanos) != (now.mtime_secs, now.mtime_nanos) {
        "its modification time"
    } else if recorded.footer_hash != now.footer_hash || sidecar.footer.num_rows != file.num_rows()
    {
        "its Parquet footer"
    } else {
        return None;
    };
    Some(format!(
        "stale: {} changed since it was indexed ({what} differs)",
        file.path.display()
    ))
}

/// How to build indexes.
#[derive(Clone)]
pub struct IndexBuildOptions {
    /// Where sidecars go (`None`: beside the data files).
    pub index_dir: Option<PathBuf>,
    /// Bytes the build may hold (its sort buffer takes a half or a third of them).
    pub memory_limit: usize,
    /// Where sorted runs are spilled (`None`: the system's temporary directory).
    pub temp_dir: Option<PathBuf>,
    /// Called with the number of rows read, as they are read (for a progress bar: the
    /// total is the rows of the files times the columns built).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl std::fmt::Debug for IndexBuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuildOptions")
            .field("index_dir", &self.index_dir)
            .field("memory_limit", &self.memory_limit)
            .field("temp_dir", &self.temp_dir)
            .finish()
    }
}

/// One indexed column of a sidecar.
#[derive(Clone, Debug)]
pub struct IndexedColumn {
    /// The column.
    pub name: String,
    /// Its type when indexed.
    pub data_type: DataType,
    /// Distinct non-NULL values.
    pub distinct: u64,
    /// Non-NULL rows.
    pub rows: u64,
    /// NULL rows.
    pub nulls: u64,
    /// Bytes of its section in the sidecar.
    pub bytes: u64,
}

impl IndexReport {
    /// A data file without a sidecar.
    fn absent(file: &ParquetFile) -> Self {
        Self {
            data_file: file.path.clone(),
            sidecar: None,
            bytes: 0,
            columns: Vec::new(),
            ignored: None,
        }
    }
}

impl From<&ColumnMeta> for IndexedColumn {
    fn from(c: &ColumnMeta) -> Self {
        Self {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            distinct: c.distinct,
            rows: c.rows,
            nulls: c.nulls,
            bytes: c.section_len,
        }
    }
}

/// The indexes of one data file.
#[derive(Clone, Debug)]
pub struct IndexReport {
    /// The data file.
    pub data_file: PathBuf,
    /// Its sidecar (`None`: it has none).
    pub sidecar: Option<PathBuf>,
    /// Bytes of the sidecar.
    pub bytes: u64,
    /// The columns it indexes.
    pub columns: Vec<IndexedColumn>,
    /// `None` when the sidecar is current (or absent); otherwise why it is not used.
    pub ignored: Option<String>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |source| IoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Check that `columns` can be indexed in `dataset`: known, stored in the files, of a type
/// with keys.
fn check_columns(dataset: &ParquetDataset, columns: &[String]) -> Result<()> {
    if columns.is_empty() {
        return Err(IoError::InvalidArgument(
            "no column to index was given".into(),
        ));
    }
    let schema = dataset.schema();
    for c in columns {
        let field = schema.field_with_name(c).map_err(|_| {
            let valid: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            IoError::InvalidArgument(format!(
                "unknown column '{c}'; valid columns: {}",
                valid.join(", ")
            ))
        })?;
        if dataset.partition_columns().contains(c) {
            return Err(IoError::InvalidArgument(format!(
                "'{c}' is a hive partition column (its value is in the folder names, which \
                 already prune files); it cannot be indexed"
            )));
        }
        key::kind_of(field.data_type())
            .map_err(|e| IoError::InvalidArgument(format!("cannot index '{c}': {e}")))?;
    }
    Ok(())
}

/// Build (or rebuild) the indexes of `columns` for every file of `dataset`. Columns already
/// indexed in a current sidecar are rebuilt; its other columns are kept.
pub fn create_indexes(
    dataset: &ParquetDataset,
    columns: &[String],
    options: &IndexBuildOptions,
) -> Result<Vec<IndexReport>> {
    check_columns(dataset, columns)?;
    if let Some(dir) = &options.index_dir {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let temp_dir = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let progress = options.progress.clone();
    let context = build::BuildContext {
        memory_limit: options.memory_limit,
        temp_dir: &temp_dir,
        progress: progress.as_deref(),
    };
    let mut reports = Vec::new();
    for (i, file) in dataset.files().iter().enumerate() {
        let target = sidecar_path(&file.path, options.index_dir.as_deref());
        // Columns of a current sidecar that are not rebuilt are kept.
        let existing = Sidecar::open(&target)
            .ok()
            .filter(|s| staleness(s, file).is_none());
        let kept = existing
            .as_ref()
            .map(|s| s.columns_except(columns))
            .unwrap_or_default();
        let present: Vec<&String> = columns
            .iter()
            .filter(|c| file.schema.field_with_name(c).is_ok())
            .collect();
        let footer = write_sidecar(&target, file, existing.as_ref(), &kept, false, |out| {
            present
                .iter()
                .map(|c| build::build_column(dataset, i, c, &context, out))
                .collect()
        })?;
        reports.push(report_of(file, &target, Some(&footer), None));
    }
    Ok(reports)
}

fn report_of(
    file: &ParquetFile,
    sidecar: &Path,
    footer: Option<&Footer>,
    ignored: Option<String>,
) -> IndexReport {
    IndexReport {
        data_file: file.path.clone(),
        sidecar: Some(sidecar.to_path_buf()),
        bytes: std::fs::metadata(sidecar).map(|m| m.len()).unwrap_or(0),
        columns: footer
            .map(|f| f.columns.iter().map(IndexedColumn::from).collect())
            .unwrap_or_default(),
        ignored,
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temporary files of `target` left by processes that no longer run.
fn remove_abandoned(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Write a sidecar for `file` at `target`: the sections `kept` of `existing`, then the
/// columns `build` writes; through a temporary file renamed into place. It records `file` as
/// it is now, or, with `keep_fingerprint`, what `existing` recorded.
fn write_sidecar(
    target: &Path,
    file: &ParquetFile,
    existing: Option<&Sidecar>,
    kept: &[usize],
    keep_fingerprint: bool,
    build: impl FnOnce(&mut CountingWriter<BufWriter<File>>) -> Result<Vec<ColumnMeta>>,
) -> Result<Footer> {
    remove_abandoned(target);
    let temp = target.with_file_name(format!(
        "{}.tmp-{}-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    struct Guard<'a>(&'a Path, bool);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if !self.1 {
                let _ = std::fs::remove_file(self.0);
            }
        }
    }
    let mut guard = Guard(&temp, false);
    let handle = File::create(&temp).map_err(io_err(&temp))?;
    let mut out = CountingWriter::new(BufWriter::with_capacity(1 << 20, handle));
    out.write_all(MAGIC).map_err(io_err(&temp))?;
    let mut columns = Vec::new();
    if let Some(old) = existing {
        for &c in kept {
            let mut meta = old.footer.columns[c].clone();
            meta.section_offset = out.written;
            out.write_all(old.section(c)).map_err(io_err(&temp))?;
            columns.push(meta);
        }
    }
    columns.extend(build(&mut out)?);
    let footer = match existing.filter(|_| keep_fingerprint) {
        Some(old) => Footer {
            columns,
            ..old.footer.clone()
        },
        None => Footer {
            data_path: std::fs::canonicalize(&file.path).unwrap_or_else(|_| file.path.clone()),
            fingerprint: fingerprint(file),
            num_rows: file.num_rows(),
            columns,
        },
    };
    write_footer(&mut out, &footer).map_err(io_err(&temp))?;
    let handle = out.into_inner().into_inner().map_err(|e| IoError::Io {
        path: temp.clone(),
        source: e.into_error(),
    })?;
    handle.sync_all().map_err(io_err(&temp))?;
    std::fs::rename(&temp, target).map_err(io_err(target))?;
    guard.1 = true;
    Ok(footer)
}

/// The indexes of every file of `dataset` (looked for as queries look for them).
pub fn list_indexes(dataset: &ParquetDataset, index_dir: Option<&Path>) -> Vec<IndexReport> {
    dataset
        .files()
        .iter()
        .map(|file| match open_index(file, index_dir) {
            IndexStatus::Absent => IndexReport::absent(file),
            IndexStatus::Ready(s) => report_of(file, &s.path, Some(&s.footer), None),
            IndexStatus::Ignored { sidecar, reason } => {
                let footer = Sidecar::open(&sidecar).ok().map(|s| s.footer);
                report_of(file, &sidecar, footer.as_ref(), Some(reason))
            }
        })
        .collect()
}

/// Remove the indexes of `columns` (all of them when `None`) from the sidecars of the files
/// of `dataset` in `index_dir` (or beside the files); a sidecar left without columns, or
/// damaged, is deleted. Returns what remains of each sidecar touched.
pub fn drop_indexes(
    dataset: &ParquetDataset,
    columns: Option<&[String]>,
    index_dir: Option<&Path>,
) -> Result<Vec<IndexReport>> {
    let mut reports = Vec::new();
    for file in dataset.files() {
        let target = sidecar_path(&file.path, index_dir);
        if !target.exists() {
            continue;
        }
        let remove = |target: &Path| -> Result<IndexReport> {
            remove_abandoned(target);
            std::fs::remove_file(target).map_err(io_err(target))?;
            Ok(IndexReport::absent(file))
        };
        let Some(columns) = columns else {
            reports.push(remove(&target)?);
            continue;
        };
        let Ok(old) = Sidecar::open(&target) else {
            reports.push(remove(&target)?);
            continue;
        };
        let kept = old.columns_except(columns);
        if kept.len() == old.footer.columns.len() {
            continue;
        }
        if kept.is_empty() {
            reports.push(remove(&target)?);
            continue;
        }
        // The kept sections keep the fingerprint they were built with: dropping a column
        // of a stale sidecar must not make the others look current.
        let stale = staleness(&old, file);
        let footer = write_sidecar(&target, file, Some(&old), &kept, true, |_| Ok(Vec::new()))?;
        reports.push(report_of(file, &target, Some(&footer), stale));
    }
    Ok(reports)
}
