//! Spill files: compressed Arrow IPC streams in a per-query temporary directory.
//!
//! Operators that outgrow their memory reservation write batches out and read them back
//! later; this module only moves bytes, the operator decides what a file means (a sorted run,
//! one hash partition of a join or aggregate). Files are Arrow IPC streams compressed with
//! zstd, written through a buffered writer and read back batch by batch, so reading a spill
//! file costs one batch of memory, not the file. Columns are stored in narrower integer types
//! where that is exact (see [`super::narrow`]) and widened again when read.
//!
//! ```text
//!   SpillManager (directory, quota, bytes written)
//!     ├── SpillWriter ──finish()──► SpillFile "sort-run-0"  ──read()──► batches
//!     └── SpillWriter ──finish()──► SpillFile "join-build-p3"
//! ```
//!
//! Every message written (the stream's header, each batch with its dictionaries) has its
//! length and CRC-32 kept in memory with the file. Reading takes each message's bytes whole,
//! checks them, and only then decodes them: a byte changed on disk (a failing disk, another
//! process) is an error naming the file and the batch, never a wrong answer or a decoder
//! fed garbage.
//!
//! A file may also hold several independent *parts* ([`SpillManager::write_parts`]): an
//! aggregate's spill writes its 64 hash partitions into one file, not 64, and each part is read
//! on its own, by its byte range. Creating and deleting thousands of small files costs the
//! kernel more than writing their bytes. The file is deleted when its last part is dropped.
//!
//! The directory is created under the configured spill location (default: the system temp
//! directory) when the first file is created, so a query that never spills touches no disk,
//! and it is removed with everything in it when the manager is dropped, including after an
//! error or a cancelled query. A quota bounds the bytes a query may write: exceeding it,
//! like a full disk, fails the write with [`EngineError::Spill`] naming the file.
//!
//! A process killed outright (SIGKILL, the OOM killer, a power cut) runs no destructor, so
//! its directory stays behind. Each directory therefore holds a `.lock` file that the
//! process holds an exclusive advisory lock on for as long as the directory lives; the
//! kernel releases the lock when the process ends, however it ends. When a query creates
//! its spill directory it removes every sibling `ooc-spill-*` directory whose lock it can
//! take: their owners are gone. A directory whose lock is held (a query running in this or
//! another process, also in another container sharing the directory) is left alone.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;

use super::narrow::Narrowing;
use crate::error::{EngineError, Result};

/// Owner of a query's spill directory.
#[derive(Debug)]
pub(crate) struct SpillManager {
    parent: PathBuf,
    /// The directory and its locked `.lock` file (closed, and so unlocked, first on drop;
    /// `None` where the file system has no advisory locks).
    dir: OnceLock<(Option<File>, tempfile::TempDir)>,
    /// Held while the directory is being created.
    creating: Mutex<()>,
    quota: u64,
    written: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    files: AtomicUsize,
}

impl SpillManager {
    /// A spill location under `parent` (the system temp directory when `None`) allowing at
    /// most `quota` bytes of spill files at once. Nothing is created until the first file.
    pub(crate) fn new(parent: Option<&Path>, quota: u64) -> Self {
        Self {
            parent: parent
                .map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir),
            dir: OnceLock::new(),
            creating: Mutex::new(()),
            quota,
            written: Arc::new(AtomicU64::new(0)),
            peak: Arc::new(AtomicU64::new(0)),
            files: AtomicUsize::new(0),
        }
    }

    fn dir(&self) -> Result<&Path> {
        if let Some((_, dir)) = self.dir.get() {
            return Ok(dir.path());
        }
        // One thread creates the directory while the others wait: two threads spilling at
        // once must not both create one, or a process killed between the loser's creation
        // and its removal would leave two behind.
        let _creating = self
            .creating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, dir)) = self.dir.get() {
            return Ok(dir.path());
        }
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(&self.parent)
            .map_err(|e| EngineError::Spill {
                path: self.parent.display().to_string(),
                message: format!("cannot create a spill directory: {e}"),
            })?;
        // On a file system without advisory locks the directory has no `.lock`: spilling
        // works, and no sweeper ever removes it (nor does this query sweep).
        let lock = lock_directory(dir.path()).ok();
        let swept = lock.is_some();
        let (_, dir) = self.dir.get_or_init(|| (lock, dir));
        if swept {
            remove_abandoned_directories(&self.parent, dir.path());
        }
        Ok(dir.path())
    }

    /// The spill directory, once created.
    #[cfg(test)]
    pub(crate) fn path(&self) -> Option<&Path> {
        self.dir.get().map(|(_, d)| d.path())
    }

    /// Bytes currently held in spill files.
    #[cfg(test)]
    pub(crate) fn bytes_on_disk(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// The most bytes held in spill files at once.
    pub(crate) fn peak_bytes_on_disk(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Start a new spill file for batches of `schema`; `label` names it (for errors).
    /// Decimals of precision up to 18 are stored in 8 bytes.
    pub(crate) fn create(&self, label: &str, schema: &SchemaRef) -> Result<SpillWriter> {
        self.create_narrowed(label, Narrowing::by_type(schema))
    }

    /// Write `parts` (batches of `narrowing`'s in-memory schema, made one at a time as the
    /// iterator is advanced) into one new spill file, and return one [`SpillFile`] per part,
    /// in order, each reading back only its own part. The parts share one compression context
    /// and one stream header; the file is removed when the last of them is dropped.
    pub(crate) fn write_parts(
        &self,
        label: &str,
        narrowing: Narrowing,
        parts: impl IntoIterator<Item = Result<RecordBatch>>,
    ) -> Result<Vec<SpillFile>> {
        let mut writer = self.create_narrowed(label, narrowing)?;
        let mut ranges = Vec::new();
        for part in parts {
            let part = part?;
            let start = writer.bytes();
            let raw = writer.raw_bytes;
            writer.write(&part)?;
            ranges.push((start, writer.raw_bytes - raw, part.num_rows()));
        }
        let whole = writer.finish()?;
        // The stream header (the schema message) is read once, checked, and kept with every
        // part.
        let mut file = File::open(&whole.file.path).map_err(|e| whole.error(&e))?;
        let header = whole.header_from(&mut file)?;
        Ok(ranges
            .into_iter()
            .zip(whole.checks.iter())
            .map(|((start, raw_bytes, rows), check)| SpillFile {
                file: Arc::clone(&whole.file),
                header: Header::Read(Arc::clone(&header)),
                start,
                checks: vec![*check].into(),
                narrowing: Arc::clone(&whole.narrowing),
                schema: Arc::clone(&whole.schema),
                rows,
                raw_bytes,
                bytes: check.len,
            })
            .collect())
    }

    /// Start a new spill file whose columns are stored as `narrowing` says (for example
    /// [`Narrowing::fitted_to`] the batches a sorted run will hold).
    pub(crate) fn create_narrowed(&self, label: &str, narrowing: Narrowing) -> Result<SpillWriter> {
        let schema = Arc::clone(narrowing.schema_ref());
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        let path = self.dir()?.join(format!("{n:05}-{label}.arrows"));
        let spill_err = |message: String| EngineError::Spill {
            path: path.display().to_string(),
            message,
        };
        let file = File::create(&path).map_err(|e| spill_err(e.to_string()))?;
        let counting = CountingWriter {
            inner: BufWriter::with_capacity(WRITE_BUFFER, file),
            bytes: 0,
            crc: crc32fast::Hasher::new(),
            checked_from: 0,
            quota: self.quota,
            shared: Arc::clone(&self.written),
            peak: Arc::clone(&self.peak),
        };
        // Level 1: spill files are written once and read once, so speed matters more than
        // the last few percent of size. Each open writer also holds a compression context of a
        // few MiB, so operators keep few writers open at once.
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::ZSTD))
            .and_then(|o| o.try_with_compression_level(Some(1)))
            .map_err(|e| spill_err(e.to_string()))?;
        let mut writer = match StreamWriter::try_new_with_options(
            counting,
            narrowing.stored_schema(),
            options,
        ) {
            Ok(writer) => writer,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(spill_err(e.to_string()));
            }
        };
        let header = writer.get_mut().checked();
        Ok(SpillWriter {
            writer,
            header,
            checks: Vec::new(),
            path,
            narrowing: Arc::new(narrowing),
            schema,
            rows: 0,
            raw_bytes: 0,
            written: Arc::clone(&self.written),
            finished: false,
        })
    }
}

/// Buffer of each open spill writer and reader: operators may keep one writer per hash
/// partition open, so this stays small.
const WRITE_BUFFER: usize = 64 * 1024;

/// Counts bytes written and enforces the manager's quota.
struct CountingWriter {
    inner: BufWriter<File>,
    bytes: u64,
    /// CRC-32 of the bytes written since the last [`CountingWriter::checked`].
    crc: crc32fast::Hasher,
    /// Where the bytes `crc` covers start.
    checked_from: u64,
    quota: u64,
    shared: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let total = self.shared.fetch_add(buf.len() as u64, Ordering::Relaxed) + buf.len() as u64;
        if total > self.quota {
            self.shared.fetch_sub(buf.len() as u64, Ordering::Relaxed);
            return Err(std::io::Error::other(format!(
                "the spill quota of {} bytes (the max_temp_size setting) is exceeded",
                self.quota
            )));
        }
        self.peak.fetch_max(total, Ordering::Relaxed);
        match self.inner.write(buf) {
            Ok(n) => {
                // Give back what was counted but not written.
                self.shared
                    .fetch_sub((buf.len() - n) as u64, Ordering::Relaxed);
                self.bytes += n as u64;
                self.crc.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                self.shared.fetch_sub(buf.len() as u64, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl CountingWriter {
    /// The check of the bytes written since the last call, and a fresh start.
    fn checked(&mut self) -> Check {
        let check = Check {
            len: self.bytes - self.checked_from,
            crc: std::mem::take(&mut self.crc).finalize(),
        };
        self.checked_from = self.bytes;
        check
    }
}

/// Length and CRC-32 of one message (or run of messages) of a spill file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Check {
    len: u64,
    crc: u32,
}

/// An open spill file being written.
pub(crate) struct SpillWriter {
    writer: StreamWriter<CountingWriter>,
    /// Check of the stream's header (its schema message).
    header: Check,
    /// Check of each batch written.
    checks: Vec<Check>,
    path: PathBuf,
    narrowing: Arc<Narrowing>,
    schema: SchemaRef,
    rows: usize,
    raw_bytes: usize,
    written: Arc<AtomicU64>,
    finished: bool,
}

impl std::fmt::Debug for SpillWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl SpillWriter {
    /// Append a batch. String-view columns need no compaction first, however large the
    /// buffers they reference: they are stored as `Utf8`/`Binary`, which copies only the bytes
    /// the rows use (see [`Narrowing`]).
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let stored = self.narrowing.narrow(batch)?;
        self.writer.write(&stored).map_err(|e| EngineError::Spill {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        self.checks.push(self.writer.get_mut().checked());
        self.rows += batch.num_rows();
        self.raw_bytes += crate::memory::referenced_bytes(batch);
        Ok(())
    }

    /// Compressed bytes written so far, including what is still buffered: the position in
    /// the file where the next batch starts.
    pub(crate) fn bytes(&self) -> u64 {
        self.writer.get_ref().bytes
    }

    /// Close the file and hand it over for reading.
    pub(crate) fn finish(mut self) -> Result<SpillFile> {
        let err = |e: String| EngineError::Spill {
            path: self.path.display().to_string(),
            message: e,
        };
        self.writer.finish().map_err(|e| err(e.to_string()))?;
        let counting = self.writer.get_mut();
        counting.flush().map_err(|e| err(e.to_string()))?;
        let bytes = counting.bytes;
        // From here on the file belongs to the SpillFile.
        self.finished = true;
        Ok(SpillFile {
            file: Arc::new(DiskFile {
                path: self.path.clone(),
                bytes,
                written: Arc::clone(&self.written),
            }),
            header: Header::InFile(self.header),
            start: self.header.len,
            checks: std::mem::take(&mut self.checks).into(),
            narrowing: Arc::clone(&self.narrowing),
            schema: Arc::clone(&self.schema),
            rows: self.rows,
            raw_bytes: self.raw_bytes,
            bytes,
        })
    }
}

/// The name of every spill directory starts with this.
const DIR_PREFIX: &str = "ooc-spill-";

/// The file in a spill directory that its process holds locked.
const LOCK_FILE: &str = ".lock";

/// Create `dir`'s `.lock` and lock it. Locked under a temporary name, then renamed: a sweeper
/// only ever sees a `.lock` that is already locked (the lock belongs to the open file,
/// whatever its name). On failure nothing is left.
fn lock_directory(dir: &Path) -> std::io::Result<File> {
    let unready = dir.join(".lock-unready");
    let locked = File::create(&unready).and_then(|lock| {
        lock.lock()?;
        std::fs::rename(&unready, dir.join(LOCK_FILE))?;
        Ok(lock)
    });
    if locked.is_err() {
        let _ = std::fs::remove_file(&unready);
    }
    locked
}

/// Remove the spill directories under `parent` (other than `own`) whose process is gone: those
/// whose `.lock` this process can lock. Best effort: whatever cannot be read or removed is
/// left for a later query.
fn remove_abandoned_directories(parent: &Path, own: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !ours || path == own || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // No lock file: a directory being set up right now, or not ooc's; leave it.
        let Ok(lock) = File::open(path.join(LOCK_FILE)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for SpillWriter {
    /// A writer dropped before `finish` (a failed write, a cancelled query) removes its
    /// partial file and gives its bytes back to the quota.
    fn drop(&mut self) {
        if !self.finished {
            let bytes = self.writer.get_ref().bytes;
            self.written.fetch_sub(bytes, Ordering::Relaxed);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A finished file on disk; deleted (and its bytes returned to the quota) when dropped.
#[derive(Debug)]
struct DiskFile {
    path: PathBuf,
    bytes: u64,
    written: Arc<AtomicU64>,
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        self.written.fetch_sub(self.bytes, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A finished spill file, or one part of a file written by [`SpillManager::write_parts`]. The
/// file is deleted (and its bytes returned to the quota) when its last part is dropped.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: Arc<DiskFile>,
    /// The stream's header (its schema message).
    header: Header,
    /// Where this file's (or part's) batches start in the file.
    start: u64,
    /// The check of each of its batches, in order (they follow one another from `start`).
    checks: Arc<[Check]>,
    narrowing: Arc<Narrowing>,
    schema: SchemaRef,
    rows: usize,
    raw_bytes: usize,
    bytes: u64,
}

impl SpillFile {
    /// Rows in the file.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// In-memory size of the batches written (before compression).
    pub(crate) fn raw_bytes(&self) -> usize {
        self.raw_bytes
    }

    /// Compressed bytes on disk.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The stream header's bytes: kept, or read (and checked) from the start of `file`.
    fn header_from(&self, file: &mut File) -> Result<Arc<[u8]>> {
        match &self.header {
            Header::Read(bytes) => Ok(Arc::clone(bytes)),
            Header::InFile(check) => {
                file.seek(SeekFrom::Start(0)).map_err(|e| self.error(&e))?;
                let bytes = read_checked(file, *check, &self.file.path, "the header")?;
                Ok(bytes.into())
            }
        }
    }

    fn error(&self, e: &dyn std::fmt::Display) -> EngineError {
        EngineError::Spill {
            path: self.file.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Read the batches back in the order they were written, each message checked before it
    /// is decoded.
    pub(crate) fn read(
        &self,
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send + 'static> {
        let mut file = File::open(&self.file.path).map_err(|e| self.error(&e))?;
        let header = self.header_from(&mut file)?;
        let mut decoder = StreamDecoder::new();
        let mut schema = Buffer::from(header.to_vec());
        ooc_io::contain_panic(|| decoder.decode(&mut schema))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| self.error(&format!("cannot read the header: {e}")))?;
        file.seek(SeekFrom::Start(self.start))
            .map_err(|e| self.error(&e))?;
        let mut input = BufReader::with_capacity(WRITE_BUFFER, file);
        let path = self.file.path.clone();
        let narrowing = Arc::clone(&self.narrowing);
        let checks = Arc::clone(&self.checks);
        let mut next = 0;
        Ok(std::iter::from_fn(move || {
            let check = *checks.get(next)?;
            next += 1;
            let mut read = || -> Result<RecordBatch> {
                let what = format!("batch {next} of {}", checks.len());
                let bytes = read_checked(&mut input, check, &path, &what)?;
                ooc_io::check_ipc_messages(&bytes).map_err(|e| EngineError::Spill {
                    path: path.display().to_string(),
                    message: format!("cannot decode {what}: {e}"),
                })?;
                let mut buffer = Buffer::from(bytes);
                let stored = ooc_io::contain_panic(|| {
                    decoder.decode(&mut buffer).and_then(|b| match b {
                        // A batch without columns has an empty body: the decoder has read all
                        // of the message but only finishes it on its next byte. One byte it
                        // does not consume (the batch ends first) completes it.
                        None if buffer.is_empty() => decoder.decode(&mut Buffer::from(vec![0u8])),
                        other => Ok(other),
                    })
                })
                .and_then(|b| b.map_err(|e| e.to_string()))
                .and_then(|b| b.ok_or_else(|| "it holds no batch".to_string()))
                .map_err(|e| EngineError::Spill {
                    path: path.display().to_string(),
                    message: format!("cannot decode {what}: {e}"),
                })?;
                narrowing.widen(&stored)
            };
            let batch = read();
            if batch.is_err() {
                // Nothing after a bad message can be trusted to line up.
                next = checks.len();
            }
            Some(batch)
        }))
    }
}

/// Where a spill file's stream header is.
#[derive(Debug)]
enum Header {
    /// At the start of the file, with its check.
    InFile(Check),
    /// Read (and checked) already: the parts of one file share it.
    Read(Arc<[u8]>),
}

/// The next `check.len` bytes of `input`, if their CRC-32 is `check.crc`.
fn read_checked(input: &mut impl Read, check: Check, path: &Path, what: &str) -> Result<Vec<u8>> {
    let error = |message: String| EngineError::Spill {
        path: path.display().to_string(),
        message,
    };
    let mut bytes = vec![0; check.len as usize];
    input
        .read_exact(&mut bytes)
        .map_err(|e| error(format!("cannot read {what} ({} bytes): {e}", check.len)))?;
    let crc = crc32fast::hash(&bytes);
    if crc != check.crc {
        return Err(error(format!(
            "{what} is corrupt: its CRC-32 is {crc:08x} where {:08x} was written (the file \
             was changed on disk after it was written)",
            check.crc
        )));
    }
    Ok(bytes)
}

/// Entry point of the `spill_read` fuzz target (built only under `--cfg fuzzing`): `data` as a
/// spill file whose checks match it, read back whole. A panic, a hang or unbounded memory is a
/// finding; an error is the right answer.
#[cfg(fuzzing)]
pub(crate) fn fuzz_read(data: &[u8]) {
    let _ = read_framed(data);
}

/// The batches (or the error) of reading `data` as a spill file whose checks match it. The
/// first byte chooses the in-memory schema's narrowing; the rest are messages, each a
/// little-endian `u32` length and its bytes (the stream's header, then one batch with its
/// dictionaries each). `None`: no header.
#[cfg(any(test, fuzzing))]
fn read_framed(data: &[u8]) -> Option<Result<Vec<RecordBatch>>> {
    use arrow::datatypes::{DataType, Field, Schema};
    let (&choice, mut rest) = data.split_first()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("d", DataType::Decimal128(15, 2), true),
        Field::new("s", DataType::Utf8View, true),
        Field::new("t", DataType::Date32, true),
    ]));
    let narrowing = match choice % 3 {
        0 => Narrowing::by_type(&schema),
        1 => {
            // Fitted to small values: `a` and `d` stored as `Int16`.
            let empty = RecordBatch::new_empty(Arc::clone(&schema));
            Narrowing::fitted(&empty)
        }
        _ => Narrowing::by_type(&Arc::new(Schema::new(vec![Field::new(
            "k",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        )]))),
    };
    let mut checks = Vec::new();
    let mut bytes = Vec::new();
    while rest.len() >= 4 && checks.len() < 64 {
        let len =
            (u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize).min(rest.len() - 4);
        let message = &rest[4..4 + len];
        checks.push(Check {
            len: len as u64,
            crc: crc32fast::hash(message),
        });
        bytes.extend_from_slice(message);
        rest = &rest[4 + len..];
    }
    let (&header, checks) = checks.split_first()?;
    let path = tempfile::Builder::new()
        .suffix(".arrows")
        .tempfile()
        .ok()?
        .into_temp_path()
        .keep()
        .ok()?;
    std::fs::write(&path, &bytes).ok()?;
    let file = SpillFile {
        file: Arc::new(DiskFile {
            path,
            bytes: 0,
            written: Arc::new(AtomicU64::new(0)),
        }),
        header: Header::InFile(header),
        start: header.len,
        checks: checks.into(),
        schema: Arc::clone(narrowing.schema_ref()),
        narrowing: Arc::new(narrowing),
        rows: 0,
        raw_bytes: 0,
        bytes: bytes.len() as u64,
    };
    // The file is removed when `file` is dropped.
    Some(file.read().and_then(|batches| batches.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(start: i64, n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(start..start + n)),
                Arc::new(StringArray::from_iter(
                    (start..start + n).map(|i| (i % 3 != 0).then(|| format!("value-{i}"))),
                )),
            ],
        )
        .unwrap()
    }

    /// A batch message whose buffers point past the end of its body (its checks intact):
    /// arrow's IPC decoder panics on it; reading the spill file is an error naming the file
    /// and the batch (found by fuzzing, target `spill_read`).
    #[test]
    fn a_batch_with_buffers_past_its_body_is_an_error() {
        let data = include_bytes!("testdata/fuzz-spill-buffer-past-body.bin");
        let err = read_framed(data)
            .expect("the input has a header")
            .expect_err("the damaged batch was decoded");
        let message = err.to_string();
        assert!(message.contains(".arrows"), "{message}");
        assert!(message.contains("cannot decode batch 1 of"), "{message}");
    }

    /// A compressed buffer declaring exabytes decompressed (checks intact): arrow's decoder
    /// would allocate that much and abort the process; it is an error naming the file.
    #[test]
    fn an_impossible_decompressed_length_is_an_error() {
        let data = include_bytes!("testdata/fuzz-spill-huge-decompressed-length.bin");
        let err = read_framed(data)
            .expect("the input has a header")
            .expect_err("the damaged batch was decoded");
        let message = err.to_string();
        assert!(message.contains(".arrows"), "{message}");
        assert!(message.contains("bytes decompressed (at most"), "{message}");
    }

    /// A directory left by a killed process (its `.lock` not locked) goes when another query
    /// creates its spill directory; one whose lock is held stays, as do other entries.
    #[test]
    fn abandoned_spill_directories_are_removed_and_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let dir = parent.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("00000-sort-run.arrows"), b"data").unwrap();
            dir
        };
        let dead = make("ooc-spill-dead");
        std::fs::write(dead.join(LOCK_FILE), b"").unwrap();
        let live = make("ooc-spill-live");
        let held = File::create(live.join(LOCK_FILE)).unwrap();
        held.lock().unwrap();
        let unlocked = make("ooc-spill-being-created");
        let other = make("not-ooc");
        std::fs::write(other.join(LOCK_FILE), b"").unwrap();

        let manager = SpillManager::new(Some(parent.path()), u64::MAX);
        assert!(dead.exists(), "nothing is swept before the first spill");
        let mut writer = manager.create("run", &batch(0, 1).schema()).unwrap();
        writer.write(&batch(0, 100)).unwrap();
        let file = writer.finish().unwrap();
        assert!(!dead.exists(), "the dead process's directory is removed");
        assert!(live.join("00000-sort-run.arrows").exists());
        assert!(unlocked.exists() && other.exists());
        // A second manager (another query of this process) leaves the first one's alone.
        let second = SpillManager::new(Some(parent.path()), u64::MAX);
        let writer = second.create("run", &batch(0, 1).schema()).unwrap();
        drop(writer);
        let own = manager.path().unwrap().to_path_buf();
        assert!(own.join(LOCK_FILE).exists());
        assert_eq!(file.read().unwrap().count(), 1);
        drop(file);
        drop(manager);
        assert!(!own.exists());
        // Once its owner lets go, the live directory is abandoned too.
        drop(held);
        drop(second);
        let third = SpillManager::new(Some(parent.path()), u64::MAX);
        drop(third.create("run", &batch(0, 1).schema()).unwrap());
        assert!(!live.exists());
    }

    /// Threads that spill at once share one directory, and no second one ever exists, not
    /// even for a moment (a process killed in that moment would leave it behind).
    #[test]
    fn threads_spilling_at_once_create_one_directory() {
        for _ in 0..20 {
            let parent = tempfile::tempdir().unwrap();
            let manager = SpillManager::new(Some(parent.path()), u64::MAX);
            let threads = 8;
            let barrier = std::sync::Barrier::new(threads);
            let seen: Vec<usize> = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            drop(manager.create("run", &batch(0, 1).schema()).unwrap());
                            std::fs::read_dir(parent.path()).unwrap().count()
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            assert!(seen.iter().all(|&n| n == 1), "directories seen: {seen:?}");
        }
    }

    /// The spill files in `dir` (not its lock).
    fn spill_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != LOCK_FILE)
            .count()
    }

    #[test]
    fn batches_without_columns_keep_their_rows() {
        // A sort of rows nobody reads (ROW_NUMBER() OVER (ORDER BY 1)) spills such batches.
        let manager = SpillManager::new(None, u64::MAX);
        let schema = Arc::new(Schema::empty());
        let rows = |n| {
            let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(n));
            RecordBatch::try_new_with_options(Arc::clone(&schema), vec![], &options).unwrap()
        };
        let mut writer = manager.create("test", &schema).unwrap();
        for n in [3, 0, 5] {
            writer.write(&rows(n)).unwrap();
        }
        let file = writer.finish().unwrap();
        let back: Vec<usize> = file
            .read()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .collect();
        assert_eq!(back.iter().sum::<usize>(), 8, "{back:?}");
    }

    #[test]
    fn round_trip_compressed_and_cleaned_up() {
        let manager = SpillManager::new(None, u64::MAX);
        assert!(
            manager.path().is_none(),
            "nothing created before the first file"
        );
        let b1 = batch(0, 10_000);
        let b2 = batch(10_000, 5);
        let mut writer = manager.create("test", &b1.schema()).unwrap();
        writer.write(&b1).unwrap();
        writer.write(&b2).unwrap();
        let file = writer.finish().unwrap();
        let dir = manager.path().unwrap().to_path_buf();
        assert_eq!(file.rows(), 10_005);
        assert!(file.bytes() > 0);
        // Repetitive data compresses well below its in-memory size.
        assert!((file.bytes() as usize) < b1.get_array_memory_size() / 2);
        assert_eq!(manager.bytes_on_disk(), file.bytes());
        let back: Vec<RecordBatch> = file.read().unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(back, vec![b1, b2]);
        drop(file);
        assert_eq!(manager.bytes_on_disk(), 0);
        drop(manager);
        assert!(!dir.exists(), "spill directory removed on drop");
    }

    #[test]
    fn a_slice_of_a_string_view_column_spills_only_its_rows() {
        use arrow::array::{Array, AsArray, StringViewArray};
        // Strings longer than 12 bytes live in the data buffers, which a slice keeps whole.
        let long: StringViewArray = (0..100_000)
            .map(|i| Some(format!("a string long enough to be out of line {i}")))
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )]));
        let full = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(long)]).unwrap();
        let slice = full.slice(50_000, 100);
        let held: usize = slice
            .column(0)
            .as_string_view()
            .data_buffers()
            .iter()
            .map(|b| b.len())
            .sum();
        assert!(held > 1_000_000, "the slice pins {held} bytes");

        let manager = SpillManager::new(None, u64::MAX);
        let mut writer = manager.create("views", &schema).unwrap();
        writer.write(&slice).unwrap();
        let file = writer.finish().unwrap();
        assert!(file.bytes() < 10_000, "{} bytes on disk", file.bytes());
        assert!(file.raw_bytes() < 10_000, "{} raw bytes", file.raw_bytes());
        let back: Vec<RecordBatch> = file.read().unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].schema(), schema, "read back as Utf8View");
        assert_eq!(back[0].column(0).len(), 100);
        assert_eq!(
            back[0]
                .column(0)
                .as_string_view()
                .iter()
                .collect::<Vec<_>>(),
            slice.column(0).as_string_view().iter().collect::<Vec<_>>()
        );
    }

    /// Flip one bit of the byte at `at` in `path`.
    fn flip(path: &Path, at: u64) {
        use std::fs::OpenOptions;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut byte).unwrap();
        byte[0] ^= 0x10;
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&byte).unwrap();
    }

    #[test]
    fn a_byte_changed_on_disk_is_an_error_naming_the_file_and_batch() {
        let manager = SpillManager::new(None, u64::MAX);
        let batches = [batch(0, 5000), batch(5000, 5000), batch(10_000, 5000)];
        let write = || {
            let mut writer = manager.create("checked", &batches[0].schema()).unwrap();
            for b in &batches {
                writer.write(b).unwrap();
            }
            writer.finish().unwrap()
        };
        // A flip in the second batch: the first still reads, the second is an error and
        // nothing follows it.
        let file = write();
        let second = file.start + file.checks[0].len + file.checks[1].len / 2;
        flip(&file.file.path, second);
        let out: Vec<Result<RecordBatch>> = file.read().unwrap().collect();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap(), &batches[0]);
        let message = out[1].as_ref().unwrap_err().to_string();
        assert!(
            message.contains("batch 2 of 3 is corrupt") && message.contains("checked.arrows"),
            "{message}"
        );
        // A flip in the header: reading does not start.
        let file = write();
        flip(&file.file.path, 9);
        let message = file.read().err().expect("a corrupt header").to_string();
        assert!(message.contains("the header is corrupt"), "{message}");
        // A part of a shared file.
        let files = manager
            .write_parts(
                "parts",
                Narrowing::fitted(&batches[0]),
                batches.iter().cloned().map(Ok),
            )
            .unwrap();
        flip(&files[2].file.path, files[2].start + 20);
        assert_eq!(
            files[1].read().unwrap().next().unwrap().unwrap(),
            batches[1]
        );
        let message = files[2]
            .read()
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(message.contains("batch 1 of 1 is corrupt"), "{message}");
    }

    #[test]
    fn parts_of_one_file_read_back_alone_and_the_file_goes_with_the_last() {
        let manager = SpillManager::new(None, u64::MAX);
        let parts = [
            batch(0, 3000),
            batch(3000, 0),
            batch(5000, 17),
            batch(9000, 40_000),
        ];
        let schema = parts[0].schema();
        let files = manager
            .write_parts(
                "parts",
                Narrowing::fitted(&parts[3]),
                parts.iter().cloned().map(Ok),
            )
            .unwrap();
        assert_eq!(files.len(), 4);
        let dir = manager.path().unwrap().to_path_buf();
        assert_eq!(spill_files(&dir), 1, "one file for all parts");
        let total: u64 = files.iter().map(SpillFile::bytes).sum();
        assert!(total > 0 && total <= manager.bytes_on_disk());
        // Each part reads back exactly its own rows, in any order, more than once.
        for (file, part) in files.iter().zip(&parts).rev() {
            assert_eq!(file.rows(), part.num_rows());
            for _ in 0..2 {
                let back: Vec<RecordBatch> = file.read().unwrap().collect::<Result<_>>().unwrap();
                assert_eq!(back.len(), 1);
                assert_eq!(back[0].schema(), schema);
                assert_eq!(&back[0], part);
            }
        }
        let mut files = files;
        let last = files.pop().unwrap();
        drop(files);
        assert_eq!(spill_files(&dir), 1, "still held by a part");
        assert!(manager.bytes_on_disk() > 0);
        drop(last);
        assert_eq!(spill_files(&dir), 0);
        assert_eq!(manager.bytes_on_disk(), 0);
    }

    #[test]
    fn a_failed_part_leaves_no_file() {
        let manager = SpillManager::new(None, u64::MAX);
        let good = batch(0, 100);
        let parts = vec![
            Ok(good.clone()),
            Err(EngineError::Internal(
                "the second part could not be made".into(),
            )),
        ];
        let err = manager
            .write_parts("failing", Narrowing::fitted(&good), parts)
            .unwrap_err();
        assert!(err.to_string().contains("second part"), "{err}");
        let dir = manager.path().unwrap();
        assert_eq!(spill_files(dir), 0);
        assert_eq!(manager.bytes_on_disk(), 0);
    }

    #[test]
    fn quota_exceeded_is_a_clear_error() {
        let manager = SpillManager::new(None, 4096);
        let b = batch(0, 100_000);
        let mut writer = manager.create("big", &b.schema()).unwrap();
        let err = writer
            .write(&b)
            .and_then(|_| writer.finish().map(|_| ()))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("quota"), "{text}");
        assert!(text.contains("big"), "names the file: {text}");
    }
}
