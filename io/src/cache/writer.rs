//! Writing a cache entry: batches go into an Arrow IPC file under a temporary name while the
//! query runs; [`EntryWriter::commit`] syncs it, renames it to its data file name, then writes
//! the manifest the same way. Until the manifest's rename the entry does not exist for any
//! reader; a writer dropped without committing (an error, a cancelled query, a result computed
//! too fast to be worth keeping) removes its temporary file, and one killed outright leaves a
//! temporary file that the cache removes later ([`super::ResultCache::prune`], and every
//! commit), once no process holds the key's lock.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use arrow::ipc::CompressionType;

use super::manifest::{InputRecord, Manifest, CACHE_FORMAT, CHUNK_BYTES};
use super::{sync_dir, CacheKey, ResultCache, ENGINE_VERSION};
use crate::error::{IoError, Result};

/// Counts the bytes written and the CRC-32 of every [`CHUNK_BYTES`] chunk of them.
struct Tracked<W> {
    inner: W,
    position: u64,
    crc: crc32fast::Hasher,
    chunks: String,
}

impl<W> Tracked<W> {
    /// Tracking from the first byte written to `inner`.
    fn new(inner: W) -> Self {
        Self {
            inner,
            position: 0,
            crc: crc32fast::Hasher::new(),
            chunks: String::new(),
        }
    }
}

impl<W: Write> Write for Tracked<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut data = &buf[..n];
        while !data.is_empty() {
            let room = (CHUNK_BYTES - self.position % CHUNK_BYTES) as usize;
            let take = room.min(data.len());
            self.crc.update(&data[..take]);
            self.position += take as u64;
            if self.position.is_multiple_of(CHUNK_BYTES) {
                self.close_chunk();
            }
            data = &data[take..];
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Tracked<W> {
    fn close_chunk(&mut self) {
        let crc = std::mem::take(&mut self.crc).finalize();
        self.chunks.push_str(&format!("{crc:08x}"));
    }
}

/// An Arrow IPC file being written under a temporary name, with the CRC-32 of every chunk:
/// the data file of a cache entry or an exchange file. Removed when dropped unfinished.
pub(super) struct TrackedFile {
    pub(super) temp: PathBuf,
    writer: Option<FileWriter<Tracked<BufWriter<File>>>>,
    pub(super) rows: u64,
    pub(super) batches: u64,
    pub(super) compression: bool,
    /// The columns, as `name: type`.
    pub(super) schema: Vec<String>,
}

impl TrackedFile {
    /// Start writing `temp`.
    pub(super) fn create(temp: PathBuf, schema: &Schema, compression: bool) -> Result<Self> {
        let file = File::create(&temp).map_err(io_err(&temp))?;
        let tracked = Tracked::new(BufWriter::with_capacity(1 << 20, file));
        let mut options = IpcWriteOptions::default();
        if compression {
            options = options.try_with_compression(Some(CompressionType::ZSTD))?;
        }
        let mut out = Self {
            temp,
            writer: None,
            rows: 0,
            batches: 0,
            compression,
            schema: schema
                .fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect(),
        };
        out.writer = Some(FileWriter::try_new_with_options(tracked, schema, options)?);
        Ok(out)
    }

    /// Bytes written so far.
    pub(super) fn bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.get_ref().position)
    }

    /// Append a batch (a full disk is an error naming the file).
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(IoError::InvalidArgument(format!(
                "{} was already finished",
                self.temp.display()
            )));
        };
        writer.write(batch).map_err(|e| match e {
            arrow::error::ArrowError::IoError(m, source) => IoError::Io {
                path: self.temp.clone(),
                source: std::io::Error::new(source.kind(), m),
            },
            other => other.into(),
        })?;
        self.rows += batch.num_rows() as u64;
        self.batches += 1;
        Ok(())
    }

    /// Write the footer, close the last chunk and sync the file (still under its temporary
    /// name). Returns its manifest for the data file name `data_file`: what the file holds,
    /// with the fields of the result cache (key, plan, inputs, compute time) left empty.
    pub(super) fn finish(&mut self, data_file: String) -> Result<Manifest> {
        let Some(mut writer) = self.writer.take() else {
            return Err(IoError::InvalidArgument(format!(
                "{} was already finished",
                self.temp.display()
            )));
        };
        writer.finish()?;
        let mut tracked = writer.into_inner()?;
        if !tracked.position.is_multiple_of(CHUNK_BYTES) {
            tracked.close_chunk();
        }
        let bytes = tracked.position;
        let chunk_crcs = std::mem::take(&mut tracked.chunks);
        let file = tracked.inner.into_inner().map_err(|e| IoError::Io {
            path: self.temp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&self.temp))?;
        Ok(Manifest {
            format: CACHE_FORMAT,
            engine_version: ENGINE_VERSION.to_string(),
            key: String::new(),
            plan_key: String::new(),
            data_file,
            plan: String::new(),
            inputs: Vec::new(),
            schema: std::mem::take(&mut self.schema),
            rows: self.rows,
            batches: self.batches,
            bytes,
            compression: if self.compression { "zstd" } else { "none" }.into(),
            chunk_crcs,
            compute_ms: 0,
            created_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        })
    }
}

/// Write `manifest` to `target` the safe way: to `temp` (in the same directory), synced,
/// renamed over `target`, the directory synced. On failure the temporary file is removed, and
/// so is `data` (the data file the manifest would have named), and the error names `target`.
pub(super) fn write_manifest(
    manifest: &Manifest,
    temp: &Path,
    target: &Path,
    data: &Path,
) -> Result<()> {
    let written = File::create(temp)
        .and_then(|mut f| {
            f.write_all(&manifest.to_json())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(temp, target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(temp);
        let _ = std::fs::remove_file(data);
        return Err(io_err(target)(e));
    }
    if let Some(dir) = target.parent() {
        sync_dir(dir);
    }
    Ok(())
}

impl Drop for TrackedFile {
    fn drop(&mut self) {
        // Not renamed into place by its owner: nothing to keep.
        self.writer = None;
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// What the engine knows about a result when it commits it.
#[derive(Clone, Debug, Default)]
pub struct CommitInfo {
    /// The plan key (see [`Manifest::plan_key`]).
    pub plan_key: String,
    /// The optimized plan, as text.
    pub plan: String,
    /// The input files.
    pub inputs: Vec<InputRecord>,
    /// Compute time.
    pub compute: Duration,
}

/// An entry being written. Holds the key's lock, so other processes wanting the same result
/// wait for it instead of computing it again.
pub struct EntryWriter {
    cache: ResultCache,
    key: CacheKey,
    _lock: Option<File>,
    file: TrackedFile,
    /// Whether the entry may outgrow the cache's size bound (an explicit persist).
    unbounded: bool,
}

impl std::fmt::Debug for EntryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryWriter")
            .field("key", &self.key)
            .field("temp", &self.file.temp)
            .field("rows", &self.file.rows)
            .finish()
    }
}

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |source| IoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A name no other writer uses: the process id and a per-process counter.
pub(super) fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{t:08x}", std::process::id())
}

impl EntryWriter {
    pub(super) fn new(
        cache: ResultCache,
        key: CacheKey,
        lock: Option<File>,
        schema: &Schema,
    ) -> Result<Self> {
        let temp = cache.dir().join(format!(".tmp-{key}-{}.arrow", nonce()));
        let compression = cache.compression();
        Ok(EntryWriter {
            file: TrackedFile::create(temp, schema, compression)?,
            cache,
            key,
            _lock: lock,
            unbounded: false,
        })
    }

    /// Let this entry grow beyond the cache's size bound (a result the user asked to keep,
    /// `persist`); it still makes older entries go when it is committed.
    pub fn unbounded(mut self) -> Self {
        self.unbounded = true;
        self
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.file.bytes()
    }

    /// Append a batch. Fails (and the entry should be abandoned) when the disk is full or the
    /// entry outgrows the cache's size bound.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.file.write(batch)?;
        let bound = self.cache.max_size();
        if !self.unbounded && self.bytes() > bound {
            return Err(IoError::InvalidArgument(format!(
                "the result outgrew the cache's size bound ({bound} bytes)"
            )));
        }
        Ok(())
    }

    /// Finish the file, sync it, rename it into place, then write the manifest: from then on
    /// the entry is served. Enforces the cache's size bound afterwards (least recently used
    /// entries go first; never the one just written). Returns the data file's size.
    pub fn commit(mut self, info: CommitInfo) -> Result<u64> {
        let dir = self.cache.dir().to_path_buf();
        let data_file = format!("{}-{}.arrow", self.key, nonce());
        let data_path = dir.join(&data_file);
        let mut manifest = self.file.finish(data_file.clone())?;
        std::fs::rename(&self.file.temp, &data_path).map_err(io_err(&data_path))?;
        manifest.key = self.key.to_string();
        manifest.plan_key = info.plan_key;
        manifest.plan = info.plan;
        manifest.inputs = info.inputs;
        manifest.compute_ms = info.compute.as_millis() as u64;
        let bytes = manifest.bytes;
        let manifest_path = self.cache.manifest_path(self.key);
        let previous = Manifest::read(&manifest_path).ok();
        // Named after the key: a leftover of a killed commit is found by it.
        let temp = dir.join(format!(".tmp-{}-{}.json", self.key, nonce()));
        write_manifest(&manifest, &temp, &manifest_path, &data_path)?;
        if let Some(old) = previous.filter(|m| m.data_file != data_file) {
            // Readers that mapped the old file keep their mapping.
            let _ = std::fs::remove_file(dir.join(old.data_file));
        }
        self.cache.enforce_bound(Some(self.key));
        Ok(bytes)
    }
}
