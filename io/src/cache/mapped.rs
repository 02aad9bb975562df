//! A cache entry's data file, memory-mapped: an Arrow IPC file whose batches are decoded
//! straight from the mapping, so an uncompressed entry's columns point into the page cache
//! rather than being copied onto the heap.
//!
//! The file is checksummed in 64 KiB chunks ([`CHUNK_BYTES`]). Opening checks the file's size
//! against the manifest and the CRC-32 of every chunk (of the header and footer only, for
//! entries larger than [`EAGER_CHECK_BYTES`]). Otherwise a chunk is checked the first time
//! bytes in it are about to be used: a batch's message, then the buffers of the columns
//! decoded (a scan of two columns of a wide result reads and checks those two columns' bytes,
//! not the others). Anything that does not match is an error naming the file (at open, the
//! cache treats it as a miss).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::{read_footer_length, FileDecoder};
use arrow::ipc::{Block, MetadataVersion};
use memmap2::Mmap;

use arrow::datatypes::DataType;

use super::manifest::{Manifest, CHUNK_BYTES};
use crate::error::{IoError, Result};
use crate::ipc_check::check_ipc_messages;
use crate::read::contain_panic;

/// Entries up to this size are checked completely when opened (a few milliseconds), so that
/// damage anywhere is a miss; larger ones have their header and footer checked then, and each
/// batch when it is first decoded (damage found then is an error naming the file).
pub const EAGER_CHECK_BYTES: u64 = 64 << 20;

/// The same bound for a hit handed over unread (to a collected frame that checks the rest
/// when it first reads it): small, so that taking a hit costs a few milliseconds at any size,
/// even when the entry must come from disk.
pub const UNREAD_EAGER_CHECK_BYTES: u64 = 4 << 20;

/// The result stored in a cache entry, mapped into memory.
pub struct CachedResult {
    path: PathBuf,
    manifest: Manifest,
    buffer: Buffer,
    /// The mapping `buffer` points into (to drop pages a scan has passed).
    map: Arc<Mmap>,
    schema: SchemaRef,
    version: MetadataVersion,
    dictionaries: Vec<Block>,
    batches: Vec<Block>,
    /// The CRC-32 of each chunk, and whether it was checked.
    crcs: Vec<u32>,
    checked: Vec<AtomicBool>,
}

impl std::fmt::Debug for CachedResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedResult")
            .field("path", &self.path)
            .field("rows", &self.manifest.rows)
            .field("bytes", &self.manifest.bytes)
            .finish()
    }
}

fn corrupt(path: &Path, message: impl Into<String>) -> IoError {
    IoError::DamagedCacheEntry {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl CachedResult {
    /// Map `path` (the data file `manifest` names) and check its size, header and footer.
    pub(crate) fn open(path: &Path, manifest: Manifest, eager_check_bytes: u64) -> Result<Self> {
        let file = File::open(path).map_err(|source| IoError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| IoError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        if len != manifest.bytes {
            return Err(corrupt(
                path,
                format!("{len} bytes, the manifest says {}", manifest.bytes),
            ));
        }
        let crcs = manifest
            .chunk_crcs()
            .filter(|c| c.len() as u64 == len.div_ceil(CHUNK_BYTES))
            .ok_or_else(|| corrupt(path, "the manifest's checksums do not cover the file"))?;
        // SAFETY: entries are never written in place: a data file is complete (written under
        // a temporary name, synced, renamed) before its manifest names it, and is replaced
        // only by renaming another file over its name, which leaves this mapping intact.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| IoError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let map = Arc::new(map);
        let buffer = match NonNull::new(map.as_ptr() as *mut u8) {
            // SAFETY: the pointer and length describe the mapping, which `map` keeps alive for
            // as long as the buffer (and every array sliced from it) exists.
            Some(ptr) if !map.is_empty() => unsafe {
                Buffer::from_custom_allocation(ptr, map.len(), Arc::clone(&map) as _)
            },
            _ => return Err(corrupt(path, "empty data file")),
        };
        let checked = (0..crcs.len()).map(|_| AtomicBool::new(false)).collect();
        let mut result = Self {
            path: path.to_path_buf(),
            schema: Arc::new(arrow::datatypes::Schema::empty()),
            version: MetadataVersion::V5,
            dictionaries: Vec::new(),
            batches: Vec::new(),
            manifest,
            buffer,
            map,
            crcs,
            checked,
        };
        if len <= eager_check_bytes {
            result.check_range(0, len)?;
        } else {
            // The header, then the trailer that says where the footer starts.
            result.check_range(0, 1)?;
            result.check_range(len - 1, len)?;
        }
        result.read_footer()?;
        Ok(result)
    }

    fn read_footer(&mut self) -> Result<()> {
        let bytes = self.buffer.as_slice();
        let n = bytes.len();
        if n < 10 {
            return Err(corrupt(&self.path, "too short for an Arrow IPC file"));
        }
        let mut trailer = [0u8; 10];
        trailer.copy_from_slice(&bytes[n - 10..]);
        let footer_len = read_footer_length(trailer)?;
        let start = (n - 10)
            .checked_sub(footer_len)
            .ok_or_else(|| corrupt(&self.path, "footer longer than the file"))?;
        self.check_range(start as u64, n as u64)?;
        let footer = arrow::ipc::root_as_footer(&bytes[start..n - 10])
            .map_err(|e| corrupt(&self.path, format!("unreadable IPC footer: {e}")))?;
        let schema = footer
            .schema()
            .ok_or_else(|| corrupt(&self.path, "IPC footer without a schema"))?;
        self.schema = Arc::new(arrow::ipc::convert::try_fb_to_schema(schema)?);
        self.version = footer.version();
        self.dictionaries = footer
            .dictionaries()
            .map(|d| d.iter().copied().collect())
            .unwrap_or_default();
        self.batches = footer
            .recordBatches()
            .map(|d| d.iter().copied().collect())
            .unwrap_or_default();
        if self.batches.len() as u64 != self.manifest.batches {
            return Err(corrupt(
                &self.path,
                format!(
                    "{} batches, the manifest says {}",
                    self.batches.len(),
                    self.manifest.batches
                ),
            ));
        }
        for block in self.dictionaries.iter().chain(&self.batches) {
            // Each part is checked on its own: a negative length must not wrap into a
            // plausible end.
            let end = u64::try_from(block.offset()).ok().and_then(|offset| {
                let meta = u64::try_from(block.metaDataLength()).ok()?;
                let body = u64::try_from(block.bodyLength()).ok()?;
                offset.checked_add(meta)?.checked_add(body)
            });
            if end.is_none_or(|end| end > n as u64) {
                return Err(corrupt(&self.path, "an IPC block lies outside the file"));
            }
        }
        Ok(())
    }

    /// Check the CRC-32 of chunk `i` (once).
    fn check_chunk(&self, i: usize) -> Result<()> {
        if self.checked[i].load(Ordering::Acquire) {
            return Ok(());
        }
        let start = i as u64 * CHUNK_BYTES;
        let end = (start + CHUNK_BYTES).min(self.buffer.len() as u64);
        let bytes = &self.buffer.as_slice()[start as usize..end as usize];
        if crc32fast::hash(bytes) != self.crcs[i] {
            return Err(corrupt(
                &self.path,
                format!("checksum mismatch in bytes {start}..{end} of the cached result"),
            ));
        }
        self.checked[i].store(true, Ordering::Release);
        Ok(())
    }

    /// Check the chunks that hold bytes `start..end`.
    fn check_range(&self, start: u64, end: u64) -> Result<()> {
        if end <= start {
            return Ok(());
        }
        let first = (start / CHUNK_BYTES) as usize;
        let last = ((end - 1) / CHUNK_BYTES) as usize;
        (first..=last.min(self.crcs.len() - 1)).try_for_each(|i| self.check_chunk(i))
    }

    /// Check the chunks of `block` that decoding `projection` of it reads: its message, then
    /// the buffers of the projected columns (all of the block when the columns' buffers
    /// cannot be told apart: nested types).
    fn check_block(&self, block: &Block, projection: Option<&[usize]>) -> Result<()> {
        let start = block.offset() as u64;
        let body = start + block.metaDataLength() as u64;
        let end = body + block.bodyLength() as u64;
        self.check_range(start, body)?;
        let ranges = projection.and_then(|p| self.column_ranges(block, p));
        match ranges {
            Some(ranges) => ranges
                .into_iter()
                .try_for_each(|(a, b)| self.check_range(body + a, body + b)),
            None => self.check_range(body, end),
        }
    }

    /// Byte ranges, relative to the body of `block`, of the buffers of the `projection`'s
    /// columns; `None` when the layout cannot be followed (a nested column).
    fn column_ranges(&self, block: &Block, projection: &[usize]) -> Option<Vec<(u64, u64)>> {
        let meta = &self.buffer.as_slice()
            [block.offset() as usize..(block.offset() as usize + block.metaDataLength() as usize)];
        let prefix = if meta.get(..4)? == [0xff; 4] { 8 } else { 4 };
        let message = arrow::ipc::root_as_message(meta.get(prefix..)?).ok()?;
        let batch = message.header_as_record_batch()?;
        let buffers = batch.buffers()?;
        let mut variadic = batch
            .variadicBufferCounts()
            .map(|v| v.iter().collect::<Vec<i64>>())
            .unwrap_or_default()
            .into_iter();
        let body_len = block.bodyLength() as u64;
        let mut out = Vec::new();
        let mut index = 0;
        for (column, field) in self.schema.fields().iter().enumerate() {
            let count = buffer_count(field.data_type(), &mut variadic)?;
            if projection.contains(&column) {
                for k in index..index + count {
                    if k >= buffers.len() {
                        return None;
                    }
                    let b = buffers.get(k);
                    let (a, len) = (
                        u64::try_from(b.offset()).ok()?,
                        u64::try_from(b.length()).ok()?,
                    );
                    if a.checked_add(len)? > body_len {
                        return None;
                    }
                    out.push((a, a + len));
                }
            }
            index += count;
        }
        (index == buffers.len()).then_some(out)
    }

    fn block_bytes(&self, block: &Block) -> Buffer {
        let len = block.metaDataLength() as usize + block.bodyLength() as usize;
        self.buffer.slice_with_length(block.offset() as usize, len)
    }

    /// A decoder with the file's dictionaries loaded, reading only `projection` (all columns
    /// when `None`).
    pub fn decoder(self: &Arc<Self>, projection: Option<Vec<usize>>) -> Result<BatchDecoder> {
        // SAFETY: nothing is decoded before the CRC-32 of its bytes matched the one recorded
        // when they were written, and they were written by arrow's IPC writer from valid
        // arrays (an entry's data file is never modified after its rename). Validating them
        // again (UTF-8 and offsets of every string) would cost more than the CRC itself, and
        // would read every byte of a result that a hit is meant to hand out without copying.
        // Fuzz builds, whose inputs pass the checks by construction, validate.
        let mut decoder = unsafe {
            FileDecoder::new(Arc::clone(&self.schema), self.version)
                .with_skip_validation(!cfg!(fuzzing))
        };
        if let Some(p) = &projection {
            if let Some(&bad) = p.iter().find(|&&c| c >= self.schema.fields().len()) {
                return Err(IoError::InvalidArgument(format!(
                    "column {bad} of a cached result with {} columns",
                    self.schema.fields().len()
                )));
            }
            decoder = decoder.with_projection(p.clone());
        }
        for block in &self.dictionaries {
            self.check_block(block, None)?;
            let bytes = self.block_bytes(block);
            check_ipc_messages(&bytes).map_err(|e| corrupt(&self.path, e))?;
            contain_panic(|| decoder.read_dictionary(block, &bytes))
                .map_err(|e| corrupt(&self.path, format!("the IPC decoder failed: {e}")))??;
        }
        Ok(BatchDecoder {
            result: Arc::clone(self),
            projection,
            decoder,
            previous: std::sync::atomic::AtomicUsize::new(usize::MAX),
        })
    }

    /// Check the CRC-32s of the chunks not checked yet on `threads` background threads,
    /// while the caller decodes batches (which checks whatever the helpers have not reached).
    /// Worth it for entries larger than [`EAGER_CHECK_BYTES`]: checksumming reads every byte.
    pub fn check_in_background(self: &Arc<Self>, threads: usize) {
        let pending = self
            .checked
            .iter()
            .filter(|c| !c.load(Ordering::Relaxed))
            .count();
        if pending < 2 || threads == 0 {
            return;
        }
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..threads {
            let result = Arc::clone(self);
            let next = Arc::clone(&next);
            // Errors are found again (and reported) by the decoder that reaches the chunk.
            let _ = std::thread::Builder::new()
                .name("ooc-cache-check".into())
                .spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= result.checked.len() || result.check_chunk(i).is_err() {
                        break;
                    }
                });
        }
    }

    /// The result's schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Batches stored.
    pub fn num_batches(&self) -> usize {
        self.batches.len()
    }

    /// Rows stored.
    pub fn num_rows(&self) -> u64 {
        self.manifest.rows
    }

    /// The entry's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove this entry from its cache (when it is damaged): its manifest, if it still names
    /// this data file, then the data file.
    fn discard(&self) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let manifest = dir.join(format!("{}.json", self.manifest.key));
        let current = Manifest::read(&manifest).map(|m| m.data_file);
        if current.is_ok_and(|f| f == self.manifest.data_file) {
            let _ = std::fs::remove_file(&manifest);
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Check every chunk and decode every batch (what `ooc cache verify` does).
    pub(crate) fn check_all(self: &Arc<Self>) -> Result<()> {
        self.check_range(0, self.buffer.len() as u64)?;
        let decoder = self.decoder(None)?;
        (0..self.num_batches()).try_for_each(|i| decoder.batch(i).map(drop))
    }
}

/// Decodes the batches of a [`CachedResult`].
///
/// Each batch's pages are dropped from the process's mapping once the next batch is asked
/// for: a scan of a result (or of a distributed query's exchange files) would otherwise keep
/// every page it read resident, which counts in the process's RSS — what a container or a Dask
/// worker's nanny measures — although the kernel could drop it. Columns of earlier batches
/// still held downstream stay valid: their bytes are mapped back in from the page cache when
/// read again.
pub struct BatchDecoder {
    result: Arc<CachedResult>,
    projection: Option<Vec<usize>>,
    decoder: FileDecoder,
    /// The batch decoded last (`usize::MAX`: none yet).
    previous: std::sync::atomic::AtomicUsize,
}

impl BatchDecoder {
    /// Batch `i`, its bytes checked first. Uncompressed columns point into the mapping.
    pub fn batch(&self, i: usize) -> Result<RecordBatch> {
        let block = self.result.batches.get(i).ok_or_else(|| {
            IoError::InvalidArgument(format!(
                "batch {i} of a cached result with {} batches",
                self.result.batches.len()
            ))
        })?;
        if let Err(e) = self.result.check_block(block, self.projection.as_deref()) {
            self.result.discard();
            return Err(corrupt(
                &self.result.path,
                format!("{e}; the damaged entry was removed, run the query again"),
            ));
        }
        let previous = self.previous.swap(i, Ordering::Relaxed);
        if let Some(done) = self.result.batches.get(previous).filter(|_| previous != i) {
            let len = done.metaDataLength() as usize + done.bodyLength() as usize;
            crate::read::release_pages(&self.result.map, done.offset() as usize, len);
        }
        let bytes = self.result.block_bytes(block);
        check_ipc_messages(&bytes).map_err(|e| corrupt(&self.result.path, e))?;
        contain_panic(|| self.decoder.read_record_batch(block, &bytes))
            .map_err(|e| corrupt(&self.result.path, format!("the IPC decoder failed: {e}")))??
            .ok_or_else(|| corrupt(&self.result.path, format!("batch {i} is empty")))
    }
}

/// Buffers of a column of type `t` in a record batch message (validity, then offsets, values
/// or views, then a view column's data buffers, whose count `variadic` gives); `None` for
/// nested types, whose buffers include their children's.
fn buffer_count(t: &DataType, variadic: &mut impl Iterator<Item = i64>) -> Option<usize> {
    use DataType::*;
    Some(match t {
        Null => 0,
        Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float16
        | Float32 | Float64 | Date32 | Date64 | Time32(_) | Time64(_) | Timestamp(..)
        | Duration(_) | Interval(_) | Decimal32(..) | Decimal64(..) | Decimal128(..)
        | Decimal256(..) | FixedSizeBinary(_) => 2,
        Utf8 | LargeUtf8 | Binary | LargeBinary => 3,
        Utf8View | BinaryView => 2 + usize::try_from(variadic.next()?).ok()?,
        _ => return None,
    })
}
