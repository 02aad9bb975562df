//! The sidecar file: one per data file, holding the indexes of some of its columns.
//!
//! ```text
//! "OOCIDX\0\x01"                      magic (8 bytes)
//! column section 1, column section 2, …
//! footer                              what the sidecar indexes (below)
//! footer length (u32 LE), CRC-32 of the footer (u32 LE), "OOCIDX\0\x01"
//! ```
//!
//! Integers in the footer and in sections are LEB128 varints unless said otherwise; offsets
//! inside a section are relative to its start, so a section can be copied into another
//! sidecar unchanged. A column section is a sequence of blocks followed by a directory:
//!
//! ```text
//! block:      postings of up to 128 keys, then the block's key entries:
//!             postings start (relative offset), then per key: length of the prefix shared
//!             with the previous key, suffix length, suffix, rows, posting length, posting
//!             encoding (u8), posting CRC-32 (u32 LE)
//! nulls:      the posting of the NULL rows
//! directory:  per block: first key (length, bytes), offset, length, CRC-32 (u32 LE),
//!             keys, rows
//! ```
//!
//! A posting is the rows (positions in the data file) holding one key, in one of two
//! encodings chosen per key by size: ascending positions as varint gaps (small for rare
//! values), or a serialized roaring bitmap (small for frequent ones). Keys are sorted as
//! byte strings (see [`super::key`]).
//!
//! The footer records the data file (its path, size, modification time and a hash of its
//! Parquet footer) and per column its name, type, key kind, counts and where its section,
//! directory and NULL posting are. Every part read is checked against its CRC before use: a
//! damaged sidecar is detected where it is damaged, without reading all of it.

use std::io::{self, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use memmap2::Mmap;
use roaring::RoaringBitmap;

use super::key::KeyKind;

/// First and last eight bytes of a sidecar.
pub(crate) const MAGIC: &[u8; 8] = b"OOCIDX\0\x01";
/// Version of the footer's layout.
pub(crate) const FORMAT_VERSION: u64 = 1;
/// Keys per block: a lookup decodes one block of keys.
const KEYS_PER_BLOCK: usize = 128;
/// Rows of one key from which its posting is also built as a roaring bitmap, and the smaller
/// encoding kept. Below it, gaps are always smaller: roaring stores at least two bytes per row.
const ROARING_MIN_ROWS: u64 = 4096;
/// Bytes of gaps of one key beyond which they are no longer kept when a bitmap is being
/// built: the bitmap (at most a bit per row of the file) then bounds the memory of one key.
const GAPS_CAP: usize = 8 << 20;

const ENCODING_GAPS: u8 = 0;
const ENCODING_ROARING: u8 = 1;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads a byte slice front to back; every read is checked (a damaged sidecar gives an error,
/// never a panic).
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 64 bits".into())
    }

    fn usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.varint()?).map_err(|e| e.to_string())
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.buf.get(self.pos..end).ok_or("truncated bytes")?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.usize()?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|e| e.to_string())
    }
}

/// The rows of one key, built in ascending order.
#[derive(Default)]
pub(crate) struct PostingBuilder {
    count: u64,
    last: Option<u32>,
    gaps: Option<Vec<u8>>,
    bitmap: Option<RoaringBitmap>,
}

impl PostingBuilder {
    pub(crate) fn new() -> Self {
        Self {
            gaps: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// Add a row; rows come in strictly ascending order.
    pub(crate) fn push(&mut self, row: u32) {
        if let Some(gaps) = &mut self.gaps {
            put_varint(gaps, u64::from(row - self.last.map_or(0, |l| l)));
        }
        self.last = Some(row);
        self.count += 1;
        if let Some(bitmap) = &mut self.bitmap {
            // Rows ascend.
            let _ = bitmap.try_push(row);
        } else if self.count == ROARING_MIN_ROWS {
            let mut bitmap = RoaringBitmap::new();
            if let Some(gaps) = &self.gaps {
                let mut rows = Vec::new();
                // Only this builder wrote these gaps.
                let _ = decode_gaps(gaps, &mut rows);
                bitmap.append(rows).ok();
            }
            self.bitmap = Some(bitmap);
        }
        if self.bitmap.is_some() && self.gaps.as_ref().is_some_and(|g| g.len() > GAPS_CAP) {
            self.gaps = None;
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The encoding and bytes of the posting: the smaller of the two.
    pub(crate) fn finish(self) -> (u8, Vec<u8>) {
        let bitmap = self.bitmap.map(|mut b| {
            b.optimize();
            b
        });
        match (self.gaps, bitmap) {
            (Some(gaps), Some(b)) if gaps.len() <= b.serialized_size() => (ENCODING_GAPS, gaps),
            (_, Some(b)) => {
                let mut out = Vec::with_capacity(b.serialized_size());
                // Writing to a Vec does not fail.
                let _ = b.serialize_into(&mut out);
                (ENCODING_ROARING, out)
            }
            (Some(gaps), None) => (ENCODING_GAPS, gaps),
            (None, None) => (ENCODING_GAPS, Vec::new()),
        }
    }
}

fn decode_gaps(bytes: &[u8], rows: &mut Vec<u32>) -> Result<(), String> {
    let mut c = Cursor::new(bytes);
    let mut row = 0u64;
    let mut first = true;
    while !c.at_end() {
        let gap = c.varint()?;
        if !first && gap == 0 {
            return Err("rows of a posting do not ascend".into());
        }
        first = false;
        row = row.checked_add(gap).ok_or("row overflow")?;
        rows.push(u32::try_from(row).map_err(|_| "row past 2^32")?);
    }
    Ok(())
}

/// Rows gathered from postings: gap-encoded ones as a list, bitmaps as a union.
#[derive(Default)]
pub(crate) struct RowCollector {
    rows: Vec<u32>,
    bitmap: RoaringBitmap,
}

impl RowCollector {
    pub(crate) fn finish(mut self) -> RoaringBitmap {
        self.rows.sort_unstable();
        self.rows.dedup();
        // Sorted and deduplicated just above.
        if let Ok(list) = RoaringBitmap::from_sorted_iter(self.rows) {
            self.bitmap |= list;
        }
        self.bitmap
    }
}

/// Where a posting is, inside its column's section.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PostingRef {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) encoding: u8,
    pub(crate) crc: u32,
}

impl PostingRef {
    fn write(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.len);
        out.push(self.encoding);
        out.extend_from_slice(&self.crc.to_le_bytes());
    }

    fn read(c: &mut Cursor<'_>) -> Result<Self, String> {
        Ok(Self {
            offset: c.varint()?,
            len: c.varint()?,
            encoding: c.u8()?,
            crc: c.u32()?,
        })
    }
}

/// What the footer says of one indexed column.
#[derive(Clone, Debug)]
pub(crate) struct ColumnMeta {
    pub(crate) name: String,
    pub(crate) data_type: DataType,
    pub(crate) kind: KeyKind,
    /// Distinct non-NULL values.
    pub(crate) distinct: u64,
    /// Non-NULL rows.
    pub(crate) rows: u64,
    pub(crate) nulls: u64,
    /// Absolute offset and length of the section in the sidecar.
    pub(crate) section_offset: u64,
    pub(crate) section_len: u64,
    /// Directory (relative to the section).
    pub(crate) directory: PostingRef,
    pub(crate) blocks: u64,
    pub(crate) null_posting: PostingRef,
}

impl ColumnMeta {
    fn write(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.name.as_bytes());
        put_bytes(out, self.data_type.to_string().as_bytes());
        out.push(self.kind.tag());
        for v in [
            self.distinct,
            self.rows,
            self.nulls,
            self.section_offset,
            self.section_len,
            self.blocks,
        ] {
            put_varint(out, v);
        }
        self.directory.write(out);
        self.null_posting.write(out);
    }

    fn read(c: &mut Cursor<'_>) -> Result<Self, String> {
        let name = c.string()?;
        let type_text = c.string()?;
        let data_type: DataType = type_text
            .parse()
            .map_err(|e| format!("unknown column type '{type_text}': {e}"))?;
        let kind = KeyKind::from_tag(c.u8()?).ok_or("unknown key kind")?;
        Ok(Self {
            name,
            data_type,
            kind,
            distinct: c.varint()?,
            rows: c.varint()?,
            nulls: c.varint()?,
            section_offset: c.varint()?,
            section_len: c.varint()?,
            blocks: c.varint()?,
            directory: PostingRef::read(c)?,
            null_posting: PostingRef::read(c)?,
        })
    }
}

/// What a sidecar was built from: the data file as it was then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) size: u64,
    pub(crate) mtime_secs: u64,
    pub(crate) mtime_nanos: u32,
    /// xxHash64 of the Parquet footer (metadata, its length and the magic).
    pub(crate) footer_hash: u64,
}

/// The footer of a sidecar.
#[derive(Clone, Debug)]
pub(crate) struct Footer {
    pub(crate) data_path: PathBuf,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) num_rows: u64,
    pub(crate) columns: Vec<ColumnMeta>,
}

impl Footer {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, FORMAT_VERSION);
        put_bytes(&mut out, self.data_path.to_string_lossy().as_bytes());
        put_varint(&mut out, self.fingerprint.size);
        put_varint(&mut out, self.fingerprint.mtime_secs);
        put_varint(&mut out, u64::from(self.fingerprint.mtime_nanos));
        out.extend_from_slice(&self.fingerprint.footer_hash.to_le_bytes());
        put_varint(&mut out, self.num_rows);
        put_varint(&mut out, self.columns.len() as u64);
        for c in &self.columns {
            c.write(&mut out);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut c = Cursor::new(bytes);
        let version = c.varint()?;
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this ooc reads version {FORMAT_VERSION}"
            ));
        }
        let data_path = PathBuf::from(c.string()?);
        let fingerprint = Fingerprint {
            size: c.varint()?,
            mtime_secs: c.varint()?,
            mtime_nanos: u32::try_from(c.varint()?).map_err(|e| e.to_string())?,
            footer_hash: c.u64()?,
        };
        let num_rows = c.varint()?;
        let n = c.usize()?;
        let mut columns = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            columns.push(ColumnMeta::read(&mut c)?);
        }
        Ok(Self {
            data_path,
            fingerprint,
            num_rows,
            columns,
        })
    }
}

/// A writer that knows how many bytes it has written.
pub(crate) struct CountingWriter<W: Write> {
    inner: W,
    pub(crate) written: u64,
}

impl<W: Write> CountingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self { inner, written: 0 }
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

/// Writes one column's section: keys in ascending order, each with its posting.
pub(crate) struct ColumnWriter {
    name: String,
    data_type: DataType,
    kind: KeyKind,
    section_start: u64,
    prev_key: Vec<u8>,
    block_entries: Vec<u8>,
    block_first_key: Option<Vec<u8>>,
    block_postings_start: u64,
    block_keys: u64,
    block_rows: u64,
    directory: Vec<u8>,
    blocks: u64,
    distinct: u64,
    rows: u64,
}

impl ColumnWriter {
    pub(crate) fn new<W: Write>(
        out: &CountingWriter<W>,
        name: &str,
        data_type: DataType,
        kind: KeyKind,
    ) -> Self {
        Self {
            name: name.to_string(),
            data_type,
            kind,
            section_start: out.written,
            prev_key: Vec::new(),
            block_entries: Vec::new(),
            block_first_key: None,
            block_postings_start: 0,
            block_keys: 0,
            block_rows: 0,
            directory: Vec::new(),
            blocks: 0,
            distinct: 0,
            rows: 0,
        }
    }

    fn relative<W: Write>(&self, out: &CountingWriter<W>) -> u64 {
        out.written - self.section_start
    }

    fn write_posting<W: Write>(
        &self,
        out: &mut CountingWriter<W>,
        posting: PostingBuilder,
    ) -> io::Result<PostingRef> {
        let offset = self.relative(out);
        let (encoding, bytes) = posting.finish();
        out.write_all(&bytes)?;
        Ok(PostingRef {
            offset,
            len: bytes.len() as u64,
            encoding,
            crc: crc32fast::hash(&bytes),
        })
    }

    /// Add `key` (greater than every key added before) with its rows.
    pub(crate) fn add<W: Write>(
        &mut self,
        out: &mut CountingWriter<W>,
        key: &[u8],
        posting: PostingBuilder,
    ) -> io::Result<()> {
        if self.block_first_key.is_none() {
            self.block_first_key = Some(key.to_vec());
            self.block_postings_start = self.relative(out);
            self.prev_key.clear();
        }
        let rows = posting.count();
        let posting = self.write_posting(out, posting)?;
        let shared = self
            .prev_key
            .iter()
            .zip(key)
            .take_while(|(a, b)| a == b)
            .count();
        let e = &mut self.block_entries;
        put_varint(e, shared as u64);
        put_bytes(e, &key[shared..]);
        put_varint(e, rows);
        put_varint(e, posting.len);
        e.push(posting.encoding);
        e.extend_from_slice(&posting.crc.to_le_bytes());
        self.prev_key.clear();
        self.prev_key.extend_from_slice(key);
        self.block_keys += 1;
        self.block_rows += rows;
        self.distinct += 1;
        self.rows += rows;
        if self.block_keys as usize == KEYS_PER_BLOCK {
            self.flush_block(out)?;
        }
        Ok(())
    }

    fn flush_block<W: Write>(&mut self, out: &mut CountingWriter<W>) -> io::Result<()> {
        let Some(first) = self.block_first_key.take() else {
            return Ok(());
        };
        let mut block = Vec::with_capacity(self.block_entries.len() + 10);
        put_varint(&mut block, self.block_postings_start);
        block.extend_from_slice(&self.block_entries);
        let offset = self.relative(out);
        out.write_all(&block)?;
        put_bytes(&mut self.directory, &first);
        put_varint(&mut self.directory, offset);
        put_varint(&mut self.directory, block.len() as u64);
        self.directory
            .extend_from_slice(&crc32fast::hash(&block).to_le_bytes());
        put_varint(&mut self.directory, self.block_keys);
        put_varint(&mut self.directory, self.block_rows);
        self.block_entries.clear();
        self.block_keys = 0;
        self.block_rows = 0;
        self.blocks += 1;
        Ok(())
    }

    /// Write the last block, the NULL rows and the directory.
    pub(crate) fn finish<W: Write>(
        mut self,
        out: &mut CountingWriter<W>,
        nulls: PostingBuilder,
    ) -> io::Result<ColumnMeta> {
        self.flush_block(out)?;
        let null_count = nulls.count();
        let null_posting = self.write_posting(out, nulls)?;
        let directory = PostingRef {
            offset: self.relative(out),
            len: self.directory.len() as u64,
            encoding: 0,
            crc: crc32fast::hash(&self.directory),
        };
        out.write_all(&self.directory)?;
        let section_len = self.relative(out);
        Ok(ColumnMeta {
            name: self.name,
            data_type: self.data_type,
            kind: self.kind,
            distinct: self.distinct,
            rows: self.rows,
            nulls: null_count,
            section_offset: self.section_start,
            section_len,
            directory,
            blocks: self.blocks,
            null_posting,
        })
    }
}

/// Write the footer and trailer of a sidecar.
pub(crate) fn write_footer<W: Write>(
    out: &mut CountingWriter<W>,
    footer: &Footer,
) -> io::Result<()> {
    let bytes = footer.encode();
    out.write_all(&bytes)?;
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(&crc32fast::hash(&bytes).to_le_bytes())?;
    out.write_all(MAGIC)
}

/// One block of a column's directory.
#[derive(Clone, Debug)]
pub(crate) struct BlockRef {
    pub(crate) first_key: Vec<u8>,
    offset: u64,
    len: u64,
    crc: u32,
    pub(crate) keys: u64,
    pub(crate) rows: u64,
}

/// One key of a block, with its rows.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) key: Vec<u8>,
    pub(crate) rows: u64,
    pub(crate) posting: PostingRef,
}

/// Whether `bytes` have the CRC-32 `crc`. Fuzz builds take every checksum as correct, so that
/// invented bytes reach the decoders behind the checks (see `crate::fuzzing`).
fn checksum_ok(bytes: &[u8], crc: u32) -> bool {
    cfg!(fuzzing) || crc32fast::hash(bytes) == crc
}

/// A sidecar opened for reading (memory-mapped; parts are checked as they are read).
pub struct Sidecar {
    pub(crate) path: PathBuf,
    map: Mmap,
    pub(crate) footer: Footer,
    directories: Vec<std::sync::OnceLock<Result<Vec<BlockRef>, String>>>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar").field("path", &self.path).finish()
    }
}

impl Sidecar {
    /// Map `path` and check its footer (`Err`: why the sidecar cannot be used).
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        // SAFETY: a read-only map of a file ooc writes only by renaming a new file over it,
        // which leaves this mapping on the old contents. A sidecar truncated in place by
        // another program could fault; the checks below catch a sidecar that is merely short.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| e.to_string())?;
        let n = map.len();
        if n < 2 * MAGIC.len() + 8 || &map[..8] != MAGIC || &map[n - 8..] != MAGIC {
            return Err("not an ooc index (bad magic or truncated)".into());
        }
        let mut t = Cursor::new(&map[n - 16..n - 8]);
        let footer_len = t.u32()? as usize;
        let crc = t.u32()?;
        let start = (n - 16)
            .checked_sub(footer_len)
            .filter(|&s| s >= 8)
            .ok_or("footer length past the start of the file")?;
        let bytes = &map[start..n - 16];
        if !checksum_ok(bytes, crc) {
            return Err("footer checksum mismatch".into());
        }
        let footer = Footer::decode(bytes)?;
        for c in &footer.columns {
            let end = c.section_offset.checked_add(c.section_len);
            if c.section_offset < 8 || end.is_none_or(|e| e > start as u64) {
                return Err(format!(
                    "section of column '{}' lies outside the file",
                    c.name
                ));
            }
        }
        let directories = footer.columns.iter().map(|_| Default::default()).collect();
        Ok(Self {
            path: path.to_path_buf(),
            map,
            footer,
            directories,
        })
    }

    /// Where the sidecar is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Positions of the indexed columns not named in `columns`.
    pub(crate) fn columns_except(&self, columns: &[String]) -> Vec<usize> {
        (0..self.footer.columns.len())
            .filter(|&i| !columns.contains(&self.footer.columns[i].name))
            .collect()
    }

    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.footer.columns.iter().position(|c| c.name == name)
    }

    /// The bytes of a column's section.
    pub(crate) fn section(&self, column: usize) -> &[u8] {
        let c = &self.footer.columns[column];
        // Checked against the file's length in `open`.
        &self.map[c.section_offset as usize..(c.section_offset + c.section_len) as usize]
    }

    fn part(&self, column: usize, at: &PostingRef, what: &str) -> Result<&[u8], String> {
        let section = self.section(column);
        let start = usize::try_from(at.offset).map_err(|e| e.to_string())?;
        let len = usize::try_from(at.len).map_err(|e| e.to_string())?;
        let bytes = start
            .checked_add(len)
            .and_then(|end| section.get(start..end))
            .ok_or_else(|| {
                format!(
                    "{what} of column '{}' lies outside its section",
                    self.footer.columns[column].name
                )
            })?;
        if !checksum_ok(bytes, at.crc) {
            return Err(format!(
                "{what} of column '{}' fails its checksum",
                self.footer.columns[column].name
            ));
        }
        Ok(bytes)
    }

    pub(crate) fn directory(&self, column: usize) -> Result<&[BlockRef], String> {
        let parsed = self.directories[column].get_or_init(|| {
            let bytes = self.part(column, &self.footer.columns[column].directory, "directory")?;
            let mut c = Cursor::new(bytes);
            let mut blocks = Vec::new();
            while !c.at_end() {
                let n = c.usize()?;
                blocks.push(BlockRef {
                    first_key: c.bytes(n)?.to_vec(),
                    offset: c.varint()?,
                    len: c.varint()?,
                    crc: c.u32()?,
                    keys: c.varint()?,
                    rows: c.varint()?,
                });
            }
            if blocks.len() as u64 != self.footer.columns[column].blocks {
                return Err("directory has the wrong number of blocks".into());
            }
            if blocks.windows(2).any(|w| w[0].first_key >= w[1].first_key) {
                return Err("directory keys do not ascend".into());
            }
            Ok(blocks)
        });
        parsed.as_deref().map_err(Clone::clone)
    }

    /// The keys of block `b` of a column, with their rows.
    pub(crate) fn block(&self, column: usize, block: &BlockRef) -> Result<Vec<Entry>, String> {
        let at = PostingRef {
            offset: block.offset,
            len: block.len,
            encoding: 0,
            crc: block.crc,
        };
        let bytes = self.part(column, &at, "a key block")?;
        let mut c = Cursor::new(bytes);
        let mut posting_offset = c.varint()?;
        // Every entry takes several bytes: a damaged key count must not size the vector.
        let mut entries = Vec::with_capacity((block.keys as usize).min(bytes.len()));
        let mut key: Vec<u8> = Vec::new();
        while !c.at_end() {
            let shared = c.usize()?;
            let n = c.usize()?;
            if shared > key.len() {
                return Err("key block is damaged".into());
            }
            key.truncate(shared);
            key.extend_from_slice(c.bytes(n)?);
            let rows = c.varint()?;
            let len = c.varint()?;
            let encoding = c.u8()?;
            let crc = c.u32()?;
            entries.push(Entry {
                key: key.clone(),
                rows,
                posting: PostingRef {
                    offset: posting_offset,
                    len,
                    encoding,
                    crc,
                },
            });
            posting_offset = posting_offset.checked_add(len).ok_or("offset overflow")?;
        }
        if entries.len() as u64 != block.keys
            || entries.first().map(|e| &e.key) != Some(&block.first_key)
        {
            return Err("key block disagrees with the directory".into());
        }
        Ok(entries)
    }

    /// Add the rows of a posting to `rows`.
    pub(crate) fn read_posting(
        &self,
        column: usize,
        posting: &PostingRef,
        rows: &mut RowCollector,
    ) -> Result<(), String> {
        let bytes = self.part(column, posting, "a posting")?;
        match posting.encoding {
            ENCODING_GAPS => decode_gaps(bytes, &mut rows.rows),
            ENCODING_ROARING => {
                let bitmap = RoaringBitmap::deserialize_from(bytes).map_err(|e| e.to_string())?;
                rows.bitmap |= bitmap;
                Ok(())
            }
            other => Err(format!("unknown posting encoding {other}")),
        }
    }

    /// The entries of a column whose keys lie between `low` and `high`, or `Ok(None)` when
    /// they hold more than `max_rows` rows (counted from the directory before any posting is
    /// read).
    pub(crate) fn entries_between(
        &self,
        column: usize,
        low: Bound<&[u8]>,
        high: Bound<&[u8]>,
        max_rows: u64,
    ) -> Result<Option<Vec<Entry>>, String> {
        let blocks = self.directory(column)?;
        // The first block that may hold `low`: the last one starting at or before it.
        let first = match low {
            Bound::Unbounded => 0,
            Bound::Included(k) | Bound::Excluded(k) => blocks
                .partition_point(|b| b.first_key.as_slice() <= k)
                .saturating_sub(1),
        };
        let above_low = |key: &[u8]| match low {
            Bound::Unbounded => true,
            Bound::Included(k) => key >= k,
            Bound::Excluded(k) => key > k,
        };
        let below_high = |key: &[u8]| match high {
            Bound::Unbounded => true,
            Bound::Included(k) => key <= k,
            Bound::Excluded(k) => key < k,
        };
        // The blocks that may hold keys in the range.
        let last = match high {
            Bound::Unbounded => blocks.len(),
            Bound::Included(_) | Bound::Excluded(_) => {
                first + blocks[first..].partition_point(|b| below_high(&b.first_key))
            }
        };
        if first >= last {
            return Ok(Some(Vec::new()));
        }
        // Rows of the blocks strictly inside, first: no block is read when they exceed.
        let inner: u64 = blocks[first + 1..last.saturating_sub(1).max(first + 1)]
            .iter()
            .map(|b| b.rows)
            .sum();
        if inner > max_rows {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut rows = 0u64;
        for (i, block) in blocks[first..last].iter().enumerate() {
            let edge = i == 0 || first + i + 1 == last;
            if !edge {
                rows += block.rows;
                if rows > max_rows {
                    return Ok(None);
                }
                out.extend(self.block(column, block)?);
                continue;
            }
            for e in self.block(column, block)? {
                if above_low(&e.key) && below_high(&e.key) {
                    rows += e.rows;
                    if rows > max_rows {
                        return Ok(None);
                    }
                    out.push(e);
                }
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory entry claiming 2^40 keys for a block whose bytes are intact: the reader
    /// reserved room for all of them before reading one (an allocation of terabytes; found by
    /// fuzzing, target `index_read`). Now the block is refused as disagreeing.
    #[test]
    fn a_damaged_key_count_does_not_size_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet.ooc-index");
        let seed = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/index_read/four_columns"
        );
        std::fs::copy(seed, &path).unwrap();
        let sidecar = Sidecar::open(&path).unwrap();
        let mut block = sidecar.directory(0).unwrap()[0].clone();
        assert!(sidecar.block(0, &block).is_ok());
        block.keys = 1 << 40;
        let err = sidecar.block(0, &block).unwrap_err();
        assert!(err.contains("disagrees with the directory"), "{err}");
    }
}
