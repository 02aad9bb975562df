//! A cache entry's data file, memory-mapped: an Arrow IPC file whose batches are decoded
//! straight from the mapping, so an uncompressed entry's columns point into the page cache
//! rather than being copied onto the heap.
//!
//! Opening checks the file's size against the manifest and the CRC-32 of every segment (of
//! the header and footer only, for entries larger than [`EAGER_CHECK_BYTES`], whose batches
//! are then checked the first time each is decoded). Anything that does not match is an error
//! naming the file (at open, the cache treats it as a miss).

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

use super::manifest::{Manifest, Segment};
use crate::error::{IoError, Result};

/// Entries up to this size are checked completely when opened (a few milliseconds), so that
/// damage anywhere is a miss; larger ones have their header and footer checked then, and each
/// batch when it is first decoded (damage found then is an error naming the file).
pub const EAGER_CHECK_BYTES: u64 = 64 << 20;

/// The result stored in a cache entry, mapped into memory.
pub struct CachedResult {
    path: PathBuf,
    manifest: Manifest,
    buffer: Buffer,
    schema: SchemaRef,
    version: MetadataVersion,
    dictionaries: Vec<Block>,
    batches: Vec<Block>,
    /// Which segments have had their CRC checked.
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
    IoError::CorruptFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl CachedResult {
    /// Map `path` (the data file `manifest` names) and check its size, header and footer.
    pub(crate) fn open(path: &Path, manifest: Manifest) -> Result<Self> {
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
        let covered: u64 = manifest.segments.iter().map(|s| s.len).sum();
        let contiguous = manifest
            .segments
            .windows(2)
            .all(|w| w[0].offset + w[0].len == w[1].offset);
        if covered != len || !contiguous || manifest.segments.first().map(|s| s.offset) != Some(0) {
            return Err(corrupt(
                path,
                "the manifest's segments do not cover the file",
            ));
        }
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
                Buffer::from_custom_allocation(ptr, map.len(), map.clone())
            },
            _ => return Err(corrupt(path, "empty data file")),
        };
        let checked = (0..manifest.segments.len())
            .map(|_| AtomicBool::new(false))
            .collect();
        let mut result = Self {
            path: path.to_path_buf(),
            schema: Arc::new(arrow::datatypes::Schema::empty()),
            version: MetadataVersion::V5,
            dictionaries: Vec::new(),
            batches: Vec::new(),
            manifest,
            buffer,
            checked,
        };
        if len <= EAGER_CHECK_BYTES {
            (0..result.manifest.segments.len()).try_for_each(|i| result.check_segment(i))?;
        } else {
            let last = result.manifest.segments.len() - 1;
            result.check_segment(0)?;
            result.check_segment(last)?;
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
            let end =
                block.offset() as u64 + block.metaDataLength() as u64 + block.bodyLength() as u64;
            if block.offset() < 0 || end > n as u64 {
                return Err(corrupt(&self.path, "an IPC block lies outside the file"));
            }
        }
        Ok(())
    }

    /// Check the CRC-32 of segment `i` (once).
    fn check_segment(&self, i: usize) -> Result<()> {
        if self.checked[i].load(Ordering::Acquire) {
            return Ok(());
        }
        let Segment { offset, len, crc32 } = self.manifest.segments[i];
        let bytes = &self.buffer.as_slice()[offset as usize..(offset + len) as usize];
        if crc32fast::hash(bytes) != crc32 {
            return Err(corrupt(
                &self.path,
                format!(
                    "checksum mismatch in bytes {offset}..{} of the cached result",
                    offset + len
                ),
            ));
        }
        self.checked[i].store(true, Ordering::Release);
        Ok(())
    }

    /// Check the segments that hold `block`.
    fn check_block(&self, block: &Block) -> Result<()> {
        let start = block.offset() as u64;
        let end = start + block.metaDataLength() as u64 + block.bodyLength() as u64;
        let segments = &self.manifest.segments;
        let first = segments.partition_point(|s| s.offset + s.len <= start);
        let mut i = first;
        while i < segments.len() && segments[i].offset < end {
            self.check_segment(i)?;
            i += 1;
        }
        Ok(())
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
        let mut decoder = unsafe {
            FileDecoder::new(Arc::clone(&self.schema), self.version).with_skip_validation(true)
        };
        if let Some(p) = projection {
            if let Some(&bad) = p.iter().find(|&&c| c >= self.schema.fields().len()) {
                return Err(IoError::InvalidArgument(format!(
                    "column {bad} of a cached result with {} columns",
                    self.schema.fields().len()
                )));
            }
            decoder = decoder.with_projection(p);
        }
        for block in &self.dictionaries {
            self.check_block(block)?;
            decoder.read_dictionary(block, &self.block_bytes(block))?;
        }
        Ok(BatchDecoder {
            result: Arc::clone(self),
            decoder,
        })
    }

    /// Check the CRC-32s of the segments not checked yet on `threads` background threads,
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
            // Errors are found again (and reported) by the decoder that reaches the segment.
            let _ = std::thread::Builder::new()
                .name("ooc-cache-check".into())
                .spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= result.checked.len() || result.check_segment(i).is_err() {
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

    /// Check every segment (what `ooc cache verify` does).
    pub(crate) fn check_all(self: &Arc<Self>) -> Result<()> {
        (0..self.manifest.segments.len()).try_for_each(|i| self.check_segment(i))?;
        let decoder = self.decoder(None)?;
        (0..self.num_batches()).try_for_each(|i| decoder.batch(i).map(drop))
    }
}

/// Decodes the batches of a [`CachedResult`].
pub struct BatchDecoder {
    result: Arc<CachedResult>,
    decoder: FileDecoder,
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
        if let Err(e) = self.result.check_block(block) {
            self.result.discard();
            return Err(corrupt(
                &self.result.path,
                format!("{e}; the damaged entry was removed, run the query again"),
            ));
        }
        let bytes = self.result.block_bytes(block);
        self.decoder
            .read_record_batch(block, &bytes)?
            .ok_or_else(|| corrupt(&self.result.path, format!("batch {i} is empty")))
    }
}
