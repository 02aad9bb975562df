//! The result cache: query results kept on disk under a key that names everything they depend
//! on, and mapped back into memory when the same query runs again.
//!
//! The engine computes the key ([`CacheKey`]) from the optimized plan, the options that change
//! results, the engine's version and this module's format, and a fingerprint of every input
//! file ([`InputRecord`]: path, size, modification time and a hash of the Parquet footer). This
//! module stores and finds entries; it knows nothing of plans.
//!
//! ```text
//!  cache dir/
//!    KEY.json               manifest: plan, inputs, schema, rows, chunk CRCs (commit point)
//!    KEY-NONCE.arrow        the result, an Arrow IPC file (uncompressed by default)
//!    KEY.lock               held by the process computing KEY
//!    .tmp-KEY-NONCE.arrow   being written
//! ```
//!
//! * **Hits cost page cache, not heap**: the data file is memory-mapped and its batches are
//!   decoded from the mapping without copying ([`CachedResult`]). Before any of its bytes are
//!   used they are checked against the CRC-32s of its 64 KiB chunks in the manifest (only the
//!   chunks a scan reads: the columns it projects); an entry that does not match
//!   (or whose manifest is damaged, or of another format or engine version) is a miss.
//! * **Never torn**: data and manifest are written under temporary names, synced and renamed,
//!   manifest last. A process killed at any moment leaves either the old entry, the new one,
//!   or no entry, plus temporary files that later commits and [`ResultCache::prune`] remove
//!   once no process holds the key's lock.
//! * **Computed once**: [`ResultCache::claim`] takes the key's lock (an advisory file lock,
//!   released by the kernel however the holder ends); a second process or thread that wants
//!   the same result waits for the first and then reads its entry.
//! * **Bounded**: after each commit, least recently used entries (by the manifest's
//!   modification time, which a hit touches) are removed until the cache fits its bound
//!   (default: the smaller of 10 GB and a tenth of the free space of its file system).

mod exchange;
pub(crate) mod manifest;
pub(crate) mod mapped;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use exchange::{open_exchange_file, ExchangeFile, ExchangeWriter};
pub use manifest::{InputRecord, Manifest, CACHE_FORMAT, CHUNK_BYTES};
pub use mapped::{BatchDecoder, CachedResult, EAGER_CHECK_BYTES, UNREAD_EAGER_CHECK_BYTES};
pub use writer::{CommitInfo, EntryWriter};

use crate::dataset::ParquetFile;
use crate::error::{IoError, Result};

/// A file name part no other writer uses (the process id, a per-process counter and the
/// clock's nanoseconds).
pub fn unique_name() -> String {
    writer::nonce()
}

/// The engine version recorded in (and required of) every entry.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The default size bound's ceiling: 10 GB.
pub const DEFAULT_MAX_SIZE: u64 = 10_000_000_000;

/// A 128-bit content key (xxHash3-128 of the canonical description of a result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub u128);

impl CacheKey {
    /// The key of `canonical` (the engine's description of a result).
    pub fn of(canonical: &[u8]) -> Self {
        CacheKey(twox_hash::XxHash3_128::oneshot(canonical))
    }

    /// Parse 32 hexadecimal digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 32)
            .then(|| u128::from_str_radix(text, 16).ok())
            .flatten()
            .map(CacheKey)
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Where the cache lives and how big it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// The directory (created when missing).
    pub dir: PathBuf,
    /// Most bytes of entries; `None`: the smaller of [`DEFAULT_MAX_SIZE`] and a tenth of the
    /// free space of the directory's file system.
    pub max_size: Option<u64>,
    /// Compress new entries with zstd (smaller on disk; a hit then decompresses onto the heap
    /// instead of mapping the file).
    pub compression: bool,
    /// Entries up to this size are checked completely when opened (default
    /// [`EAGER_CHECK_BYTES`]); larger ones chunk by chunk as they are read.
    pub eager_check_bytes: u64,
}

impl CacheOptions {
    /// Options for `dir` with the default bound, uncompressed.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_size: None,
            compression: false,
            eager_check_bytes: EAGER_CHECK_BYTES,
        }
    }
}

/// The platform's user cache directory for ooc: `$OOC_CACHE_DIR` when set, else
/// `$XDG_CACHE_HOME/ooc` or `~/.cache/ooc` (Linux and other Unix), `~/Library/Caches/ooc`
/// (macOS), `%LOCALAPPDATA%\ooc\cache` (Windows); the system temporary directory's `ooc-cache`
/// when none of these is known.
pub fn default_cache_dir() -> PathBuf {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env("OOC_CACHE_DIR") {
        return dir;
    }
    let platform = if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Caches/ooc"))
    } else if cfg!(windows) {
        env("LOCALAPPDATA").map(|h| h.join("ooc").join("cache"))
    } else {
        env("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| env("HOME").map(|h| h.join(".cache")))
            .map(|c| c.join("ooc"))
    };
    platform.unwrap_or_else(|| std::env::temp_dir().join("ooc-cache"))
}

/// Free bytes of the file system holding `dir` (`None` when unknown).
fn free_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a NUL-terminated string and `stat` a valid, writable statvfs.
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
        (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// The fingerprint of a Parquet input: path, size, modification time, footer hash.
pub fn parquet_input(file: &ParquetFile) -> InputRecord {
    InputRecord {
        path: absolute(&file.path),
        size: file.size,
        mtime_ns: nanos(file.modified),
        content_hash: file.footer_hash(),
    }
}

/// The fingerprint of any other input file (CSV, NDJSON): path, size, modification time and
/// a hash of its first and last 64 KiB.
pub fn file_input(path: &Path) -> Result<InputRecord> {
    use std::io::{Read, Seek, SeekFrom};
    let err = |source| IoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    const EDGE: u64 = 64 * 1024;
    let mut bytes = Vec::with_capacity(2 * EDGE as usize);
    (&mut file)
        .take(EDGE)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if meta.len() > EDGE {
        file.seek(SeekFrom::Start(meta.len().saturating_sub(EDGE).max(EDGE)))
            .map_err(err)?;
        file.take(EDGE).read_to_end(&mut bytes).map_err(err)?;
    }
    Ok(InputRecord {
        path: absolute(path),
        size: meta.len(),
        mtime_ns: nanos(meta.modified().ok()),
        content_hash: twox_hash::XxHash64::oneshot(0, &bytes),
    })
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn nanos(time: Option<SystemTime>) -> u128 {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// Make renames in `dir` durable (best effort; not every platform can sync a directory).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Why a lookup found nothing to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Miss {
    /// What was (not) found.
    pub reason: String,
    /// An entry exists but is damaged (the caller should say so: it will be replaced).
    pub damaged: bool,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The entry, mapped and checked.
    Hit(std::sync::Arc<CachedResult>),
    /// Nothing usable.
    Miss(Miss),
}

/// What [`ResultCache::claim`] gives: the result (perhaps after waiting for another process
/// that was computing it) or the right to compute and store it.
#[derive(Debug)]
pub enum Claim {
    /// The entry.
    Hit(std::sync::Arc<CachedResult>),
    /// Compute the result and store it through [`EntryClaim::writer`]; `Miss` says why.
    Compute(EntryClaim, Miss),
}

/// The right to compute and store a key's entry: holds the key's lock until the writer it
/// makes is committed or dropped.
#[derive(Debug)]
pub struct EntryClaim {
    cache: ResultCache,
    key: CacheKey,
    lock: Option<File>,
}

impl EntryClaim {
    /// Start writing the entry, with the result's schema.
    pub fn writer(self, schema: &arrow::datatypes::Schema) -> Result<EntryWriter> {
        EntryWriter::new(self.cache, self.key, self.lock, schema)
    }
}

/// An entry as `ooc cache list` shows it.
#[derive(Clone, Debug)]
pub struct EntryInfo {
    /// The manifest.
    pub manifest: Manifest,
    /// Bytes on disk (data file and manifest).
    pub disk_bytes: u64,
    /// When it was last served or written.
    pub last_access: SystemTime,
    /// The names it was persisted under (`ooc query --persist NAME`): a named entry is never
    /// evicted by the size bound.
    pub names: Vec<String>,
}

/// Totals of a cache directory.
#[derive(Clone, Debug)]
pub struct CacheStats {
    /// The directory.
    pub dir: PathBuf,
    /// Entries.
    pub entries: usize,
    /// Bytes on disk of the entries.
    pub bytes: u64,
    /// The size bound.
    pub max_size: u64,
    /// Rows of all entries.
    pub rows: u64,
    /// Compute time stored: what one hit on every entry saves, in milliseconds.
    pub compute_ms: u64,
    /// Files left by killed writers (removed by `prune`).
    pub leftovers: usize,
}

/// What [`ResultCache::prune`], [`ResultCache::verify`] or [`ResultCache::clear`] did.
#[derive(Clone, Debug, Default)]
pub struct PruneReport {
    /// Entries checked (verify) or considered.
    pub checked: usize,
    /// Keys of the entries removed, with the reason.
    pub removed: Vec<(String, String)>,
    /// Bytes freed.
    pub freed: u64,
    /// Leftover files of killed writers removed.
    pub leftovers: usize,
}

/// A result cache in one directory. Cheap to clone; several processes may use one directory.
#[derive(Clone, Debug)]
pub struct ResultCache {
    dir: PathBuf,
    max_size: u64,
    compression: bool,
    eager_check_bytes: u64,
}

impl ResultCache {
    /// Open (creating when missing) the cache described by `options`.
    pub fn open(options: &CacheOptions) -> Result<Self> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| IoError::Io {
            path: dir.clone(),
            source,
        })?;
        let tag = dir.join("CACHEDIR.TAG");
        if !tag.exists() {
            let _ = std::fs::write(
                &tag,
                "Signature: 8a477f597d28d172789f06886806bc55\n\
                 # This directory holds ooc's result cache.\n",
            );
        }
        let max_size = options.max_size.unwrap_or_else(|| {
            free_space(&dir).map_or(DEFAULT_MAX_SIZE, |free| (free / 10).min(DEFAULT_MAX_SIZE))
        });
        Ok(Self {
            dir,
            max_size,
            compression: options.compression,
            eager_check_bytes: options.eager_check_bytes,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size bound in bytes.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    pub(crate) fn compression(&self) -> bool {
        self.compression
    }

    fn manifest_path(&self, key: CacheKey) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.lock"))
    }

    /// Whether `key` has an entry (without opening or checking it).
    pub fn has(&self, key: CacheKey) -> bool {
        self.manifest_path(key).is_file()
    }

    /// Find `key`'s entry, map it and check its header and footer. A hit counts as an access.
    pub fn lookup(&self, key: CacheKey) -> Lookup {
        match self.open_entry(key) {
            Ok(result) => {
                touch(&self.manifest_path(key));
                Lookup::Hit(result)
            }
            Err(miss) => Lookup::Miss(miss),
        }
    }

    fn open_entry(&self, key: CacheKey) -> std::result::Result<std::sync::Arc<CachedResult>, Miss> {
        let path = self.manifest_path(key);
        let damaged = |reason: String| Miss {
            reason,
            damaged: true,
        };
        let manifest = match Manifest::read(&path) {
            Ok(m) => m,
            Err(IoError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Miss {
                    reason: "no entry for this key".into(),
                    damaged: false,
                })
            }
            Err(e) => return Err(damaged(e.to_string())),
        };
        if manifest.format != CACHE_FORMAT || manifest.engine_version != ENGINE_VERSION {
            return Err(Miss {
                reason: format!(
                    "the entry was written by engine {} (cache format {}), this is {ENGINE_VERSION} (format {CACHE_FORMAT})",
                    manifest.engine_version, manifest.format
                ),
                damaged: false,
            });
        }
        if manifest.key != key.to_string() || manifest.data_file.contains(['/', '\\']) {
            return Err(damaged(format!("{} names another entry", path.display())));
        }
        let data = self.dir.join(&manifest.data_file);
        CachedResult::open(&data, manifest, self.eager_check_bytes)
            .map(std::sync::Arc::new)
            .map_err(|e| damaged(e.to_string()))
    }

    /// The entry for `key`, or the right to compute it. When another process (or thread) is
    /// computing `key`, waits until it has finished, then looks again.
    pub fn claim(&self, key: CacheKey) -> Claim {
        let first = match self.lookup(key) {
            Lookup::Hit(result) => return Claim::Hit(result),
            Lookup::Miss(miss) => miss,
        };
        let lock_path = self.lock_path(&key.to_string());
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ok();
        let lock = lock.and_then(|file| match file.try_lock() {
            Ok(()) => Some(file),
            Err(std::fs::TryLockError::WouldBlock) => file.lock().ok().map(|()| file),
            // No advisory locks here: compute without one (a rare duplicate computation).
            Err(std::fs::TryLockError::Error(_)) => None,
        });
        // What killed writers left behind goes now (not ours: we hold our key's lock).
        self.remove_leftovers();
        // Someone may have stored it while we waited for the lock.
        let miss = match self.lookup(key) {
            Lookup::Hit(result) => return Claim::Hit(result),
            Lookup::Miss(miss) if miss.damaged || !first.damaged => miss,
            Lookup::Miss(_) => first,
        };
        let claim = EntryClaim {
            cache: self.clone(),
            key,
            lock,
        };
        Claim::Compute(claim, miss)
    }

    /// Every entry whose manifest reads, oldest access first.
    pub fn entries(&self) -> Vec<EntryInfo> {
        let mut out = Vec::new();
        for (_, path) in self.files() {
            let name = file_name(&path);
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            if CacheKey::parse(key).is_none() {
                continue;
            }
            let Ok(manifest) = Manifest::read(&path) else {
                continue;
            };
            let meta = std::fs::metadata(&path).ok();
            let meta_len = meta.as_ref().map_or(0, |m| m.len());
            let last_access = meta.and_then(|m| m.modified().ok()).unwrap_or(UNIX_EPOCH);
            let data_len =
                std::fs::metadata(self.dir.join(&manifest.data_file)).map_or(0, |m| m.len());
            out.push(EntryInfo {
                manifest,
                disk_bytes: meta_len + data_len,
                last_access,
                names: Vec::new(),
            });
        }
        for (name, key) in self.names() {
            if let Some(e) = out.iter_mut().find(|e| e.manifest.key == key.to_string()) {
                e.names.push(name);
            }
        }
        out.sort_by_key(|e| e.last_access);
        out
    }

    fn files(&self) -> Vec<(String, PathBuf)> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        read.filter_map(|e| e.ok())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect()
    }

    /// Totals.
    pub fn stats(&self) -> CacheStats {
        let entries = self.entries();
        CacheStats {
            dir: self.dir.clone(),
            entries: entries.len(),
            bytes: entries.iter().map(|e| e.disk_bytes).sum(),
            max_size: self.max_size,
            rows: entries.iter().map(|e| e.manifest.rows).sum(),
            compute_ms: entries.iter().map(|e| e.manifest.compute_ms).sum(),
            leftovers: self.leftovers(&entries).len(),
        }
    }

    /// Files that no manifest names: temporary files and data files of killed writers, and
    /// manifests that do not parse. Only those whose key no process holds locked.
    fn leftovers(&self, entries: &[EntryInfo]) -> Vec<PathBuf> {
        let named: std::collections::HashSet<&str> = entries
            .iter()
            .map(|e| e.manifest.data_file.as_str())
            .collect();
        let live: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.manifest.key.as_str()).collect();
        let mut out = Vec::new();
        for (name, path) in self.files() {
            let key = name.trim_start_matches(".tmp-").get(..32).unwrap_or("");
            if CacheKey::parse(key).is_none() || name.ends_with(".lock") {
                continue;
            }
            let stray = name.starts_with(".tmp-")
                || (name.ends_with(".arrow") && !named.contains(name.as_str()))
                || (name.ends_with(".json") && !live.contains(key));
            if stray && !self.key_busy(key) {
                out.push(path);
            }
        }
        out
    }

    fn remove_leftovers(&self) -> usize {
        let entries = self.entries();
        self.leftovers(&entries)
            .iter()
            .filter(|path| std::fs::remove_file(path).is_ok())
            .count()
    }

    /// Whether a process holds `key`'s lock (computing it).
    fn key_busy(&self, key: &str) -> bool {
        let Ok(file) = File::options().write(true).open(self.lock_path(key)) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        }
    }

    /// Remove least recently used entries until the cache fits `max_size` (default: its
    /// bound), and the leftovers of killed writers.
    pub fn prune(&self, max_size: Option<u64>) -> PruneReport {
        self.prune_except(max_size.unwrap_or(self.max_size), None)
    }

    pub(crate) fn enforce_bound(&self, keep: Option<CacheKey>) {
        self.prune_except(self.max_size, keep);
    }

    fn prune_except(&self, max_size: u64, keep: Option<CacheKey>) -> PruneReport {
        let entries = self.entries();
        let mut report = PruneReport {
            checked: entries.len(),
            ..PruneReport::default()
        };
        for path in self.leftovers(&entries) {
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            if std::fs::remove_file(&path).is_ok() {
                report.leftovers += 1;
                report.freed += len;
            }
        }
        let mut total: u64 = entries.iter().map(|e| e.disk_bytes).sum();
        let keep = keep.map(|k| k.to_string());
        for entry in &entries {
            if total <= max_size {
                break;
            }
            if Some(&entry.manifest.key) == keep.as_ref() || !entry.names.is_empty() {
                continue;
            }
            self.remove(entry);
            total -= entry.disk_bytes;
            report.freed += entry.disk_bytes;
            report
                .removed
                .push((entry.manifest.key.clone(), "least recently used".into()));
        }
        report
    }

    /// Give `key`'s entry the name `name` (letters, digits and `_`, not starting with a
    /// digit: a table name in SQL): [`ResultCache::open_named`] finds it, and the size bound
    /// never evicts it until [`ResultCache::unname`]. A name given again moves to the new key.
    pub fn name(&self, name: &str, key: CacheKey) -> Result<()> {
        check_name(name)?;
        let path = self.dir.join(format!("{name}.name"));
        let temp = self
            .dir
            .join(format!(".tmp-name-{name}-{}", writer::nonce()));
        let written =
            std::fs::write(&temp, key.to_string()).and_then(|()| std::fs::rename(&temp, &path));
        written.map_err(|source| {
            let _ = std::fs::remove_file(&temp);
            IoError::Io { path, source }
        })?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Every name and the key it names.
    pub fn names(&self) -> Vec<(String, CacheKey)> {
        let mut out: Vec<(String, CacheKey)> = self
            .files()
            .into_iter()
            .filter_map(|(file, path)| {
                let name = file.strip_suffix(".name")?;
                let key = CacheKey::parse(std::fs::read_to_string(path).ok()?.trim())?;
                Some((name.to_string(), key))
            })
            .collect();
        out.sort();
        out
    }

    /// The entry named `name`, mapped and checked.
    pub fn open_named(&self, name: &str) -> Result<std::sync::Arc<CachedResult>> {
        check_name(name)?;
        let path = self.dir.join(format!("{name}.name"));
        let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => IoError::InvalidArgument(format!(
                "no result persisted as '{name}' in {}",
                self.dir.display()
            )),
            _ => IoError::Io {
                path: path.clone(),
                source,
            },
        })?;
        let key = CacheKey::parse(text.trim()).ok_or_else(|| IoError::DamagedCacheEntry {
            path: path.clone(),
            message: "not a cache key".into(),
        })?;
        self.open_entry(key).map_err(|miss| {
            IoError::InvalidArgument(format!(
                "the result persisted as '{name}' cannot be read: {}",
                miss.reason
            ))
        })
    }

    /// Remove the name `name`, and its entry unless another name keeps it. Returns whether
    /// the name existed.
    pub fn unname(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        let path = self.dir.join(format!("{name}.name"));
        let Some(key) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| CacheKey::parse(t.trim()))
        else {
            return Ok(false);
        };
        let _ = std::fs::remove_file(&path);
        let key = key.to_string();
        if let Some(entry) = self
            .entries()
            .into_iter()
            .find(|e| e.manifest.key == key && e.names.is_empty())
        {
            self.remove(&entry);
        }
        Ok(true)
    }

    fn remove(&self, entry: &EntryInfo) {
        // The manifest first: from then on the entry is not served.
        let _ = std::fs::remove_file(self.dir.join(format!("{}.json", entry.manifest.key)));
        let _ = std::fs::remove_file(self.dir.join(&entry.manifest.data_file));
    }

    /// Check every entry completely (every segment's CRC, every batch decoded); remove the
    /// bad ones.
    pub fn verify(&self) -> PruneReport {
        let entries = self.entries();
        let mut report = PruneReport {
            checked: entries.len(),
            ..PruneReport::default()
        };
        for entry in &entries {
            let Some(key) = CacheKey::parse(&entry.manifest.key) else {
                continue;
            };
            let problem = match self.open_entry(key) {
                Ok(result) => result.check_all().err().map(|e| e.to_string()),
                Err(miss) if miss.damaged => Some(miss.reason),
                Err(_) => None,
            };
            if let Some(reason) = problem {
                self.remove(entry);
                report.freed += entry.disk_bytes;
                report.removed.push((entry.manifest.key.clone(), reason));
            }
        }
        report
    }

    /// Remove every entry, name and leftover (entries being written by running processes
    /// finish and appear afterwards).
    pub fn clear(&self) -> PruneReport {
        for (name, path) in self.files() {
            if name.ends_with(".name") {
                let _ = std::fs::remove_file(path);
            }
        }
        let mut report = self.prune_except(0, None);
        for (name, path) in self.files() {
            if name.ends_with(".lock") && !self.key_busy(name.trim_end_matches(".lock")) {
                let _ = std::fs::remove_file(path);
            }
        }
        report.checked = report.removed.len();
        report
    }
}

/// A name for a persisted result: a SQL identifier.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(IoError::InvalidArgument(format!(
            "'{name}' is not a name for a persisted result (letters, digits and _, not starting \
             with a digit)"
        )))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Record an access (the manifest's modification time; best effort).
fn touch(path: &Path) {
    if let Ok(file) = File::options().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}
