//! Cutting text files into chunks of whole records.
//!
//! The files of a data set are read one after the other, decompressed as they stream, into a
//! buffer of about `chunk_bytes`; a chunk ends after the last record terminator in the buffer
//! and the rest is carried into the next one. For NDJSON that is the last newline. For CSV it
//! is the last newline outside a quoted field: the cutter tracks quotes (and the escape
//! character, when there is one) from the start of the buffer, which is always the start of a
//! record, so a quoted field with line breaks is never split. A record longer than the buffer
//! grows it until the record ends. Each chunk carries the line its first record starts on, so
//! errors name the line in the file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Compression, TextDataset, TextFile, TextFormat};
use crate::error::{IoError, Result};

/// Whole records cut from one file.
#[derive(Debug)]
pub struct TextChunk {
    /// Index of the file in [`TextDataset::files`].
    pub file: usize,
    /// The line (1-based) the first record starts on.
    pub first_line: u64,
    /// The records' bytes, decompressed.
    pub bytes: Vec<u8>,
    /// Whether this is the file's last chunk.
    pub last_of_file: bool,
}

/// Counts the bytes read from disk (before decompression).
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Drops a UTF-8 byte order mark at the start of a stream (spreadsheet exports begin with
/// one; it would otherwise end up in the first column's name).
struct SkipBom<R> {
    inner: R,
    /// Bytes read while looking for the mark that were not one, served first.
    head: Vec<u8>,
    checked: bool,
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            self.checked = true;
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                let read = self.inner.read(&mut head[n..])?;
                if read == 0 {
                    break;
                }
                n += read;
            }
            if head[..n] != [0xEF, 0xBB, 0xBF] {
                self.head = head[..n].to_vec();
            }
        }
        if !self.head.is_empty() {
            let n = self.head.len().min(buf.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// A reader of `file`'s decompressed bytes; `counter` (if any) counts bytes read from disk.
pub(crate) fn open_reader(
    file: &TextFile,
    counter: Option<Arc<AtomicU64>>,
) -> Result<Box<dyn Read + Send>> {
    let raw = File::open(&file.path).map_err(|source| IoError::Io {
        path: file.path.clone(),
        source,
    })?;
    let raw: Box<dyn Read + Send> = match counter {
        Some(count) => Box::new(CountingReader { inner: raw, count }),
        None => Box::new(raw),
    };
    let decompressed: Box<dyn Read + Send> =
        match file.compression {
            Compression::None => raw,
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::with_capacity(1 << 16, raw),
            )),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(
                |source| IoError::Io {
                    path: file.path.clone(),
                    source,
                },
            )?),
        };
    Ok(Box::new(SkipBom {
        inner: decompressed,
        head: Vec::new(),
        checked: false,
    }))
}

/// The file being cut.
struct OpenFile {
    index: usize,
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// The line `buf[0]` is on.
    line: u64,
    eof: bool,
    header_pending: bool,
}

/// Hands out the chunks of a data set's files in order (see the module documentation).
pub struct TextChunker {
    dataset: Arc<TextDataset>,
    next_file: usize,
    current: Option<OpenFile>,
    chunk_bytes: usize,
    bytes_read: Option<Arc<AtomicU64>>,
    header_names: Option<Vec<String>>,
}

impl std::fmt::Debug for TextChunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextChunker")
            .field("next_file", &self.next_file)
            .field("chunk_bytes", &self.chunk_bytes)
            .finish()
    }
}

impl TextChunker {
    /// Chunks of about `chunk_bytes` bytes; bytes read from disk are added to `bytes_read`.
    pub fn new(
        dataset: Arc<TextDataset>,
        chunk_bytes: usize,
        bytes_read: Option<Arc<AtomicU64>>,
    ) -> Self {
        Self {
            dataset,
            next_file: 0,
            current: None,
            chunk_bytes: chunk_bytes.max(1 << 12),
            bytes_read,
            header_names: None,
        }
    }

    /// The next chunk, or `None` after the last file's last one.
    pub fn next_chunk(&mut self) -> Result<Option<TextChunk>> {
        loop {
            if self.current.is_none() {
                let Some(file) = self.dataset.files().get(self.next_file) else {
                    return Ok(None);
                };
                let reader = open_reader(file, self.bytes_read.clone())?;
                let header_pending = self
                    .dataset
                    .csv_layout()
                    .is_some_and(|layout| layout.has_header);
                self.current = Some(OpenFile {
                    index: self.next_file,
                    reader,
                    buf: Vec::new(),
                    line: 1,
                    eof: false,
                    header_pending,
                });
                self.next_file += 1;
            }
            let Some(open) = self.current.as_mut() else {
                continue;
            };
            let path = &self.dataset.files()[open.index].path;
            let mut want = self.chunk_bytes;
            let cut = loop {
                fill(open, want, path)?;
                match record_end(&self.dataset, &open.buf, open.header_pending) {
                    Some(end) => break Some(end),
                    None if open.eof => break None,
                    // A record longer than the buffer: read on until it ends.
                    None => want = open.buf.len() * 2,
                }
            };
            if open.header_pending {
                open.header_pending = false;
                let end = cut.unwrap_or(open.buf.len());
                let header: Vec<u8> = open.buf.drain(..end).collect();
                open.line += count_newlines(&header);
                let names = header_names(&self.dataset, &header);
                match &self.header_names {
                    None => self.header_names = Some(names),
                    Some(first) if *first != names => {
                        let files = self.dataset.files();
                        return Err(IoError::InvalidArgument(format!(
                            "schema mismatch: {} has columns [{}] but {} has [{}]",
                            files[0].path.display(),
                            first.join(", "),
                            path.display(),
                            names.join(", ")
                        )));
                    }
                    Some(_) => {}
                }
                continue;
            }
            let end = match cut {
                Some(end) if !(open.eof && end == open.buf.len()) => end,
                _ => open.buf.len(),
            };
            let last_of_file = open.eof && end == open.buf.len();
            let rest = open.buf.split_off(end);
            let bytes = std::mem::replace(&mut open.buf, rest);
            let first_line = open.line;
            open.line += count_newlines(&bytes);
            let file = open.index;
            if last_of_file {
                self.current = None;
            }
            if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                if last_of_file {
                    return Ok(Some(TextChunk {
                        file,
                        first_line,
                        bytes: Vec::new(),
                        last_of_file,
                    }));
                }
                continue;
            }
            return Ok(Some(TextChunk {
                file,
                first_line,
                bytes,
                last_of_file,
            }));
        }
    }
}

/// Read until `open.buf` holds `want` bytes or the file ends.
fn fill(open: &mut OpenFile, want: usize, path: &std::path::Path) -> Result<()> {
    while !open.eof && open.buf.len() < want {
        let start = open.buf.len();
        let grow = (want - start).max(1 << 16);
        open.buf.resize(start + grow, 0);
        let n = loop {
            match open.reader.read(&mut open.buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    open.buf.truncate(start);
                    return Err(IoError::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        };
        open.buf.truncate(start + n);
        if n == 0 {
            open.eof = true;
        }
    }
    Ok(())
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// One past the last (with `first`: the first) record terminator in `buf`, which starts at a
/// record's start.
fn record_end(dataset: &TextDataset, buf: &[u8], first: bool) -> Option<usize> {
    match (&dataset.options().format, dataset.csv_layout()) {
        (TextFormat::Csv(_), Some(layout)) => csv_record_end(
            buf,
            layout.quote,
            layout.escape.filter(|&e| e != layout.quote),
            first,
        ),
        _ if first => memchr::memchr(b'\n', buf).map(|i| i + 1),
        _ => memchr::memrchr(b'\n', buf).map(|i| i + 1),
    }
}

/// One past the last (with `first`: the first) newline outside quotes. With `escape` (other
/// than the quote), the byte after it inside quotes is taken literally.
pub(crate) fn csv_record_end(
    buf: &[u8],
    quote: u8,
    escape: Option<u8>,
    first: bool,
) -> Option<usize> {
    let mut quoted = false;
    let mut last = None;
    let mut i = 0;
    match escape {
        None => {
            for pos in memchr::memchr2_iter(b'\n', quote, buf) {
                if buf[pos] == quote {
                    quoted = !quoted;
                } else if !quoted {
                    last = Some(pos + 1);
                    if first {
                        break;
                    }
                }
            }
        }
        Some(escape) => {
            while let Some(offset) = memchr::memchr3(b'\n', quote, escape, &buf[i..]) {
                let pos = i + offset;
                let b = buf[pos];
                if b == escape && quoted {
                    // The escaped byte is taken literally (an escape ending the buffer
                    // escapes a byte not read yet).
                    i = pos + 2;
                    if i >= buf.len() {
                        break;
                    }
                    continue;
                }
                if b == quote {
                    quoted = !quoted;
                } else if b == b'\n' && !quoted {
                    last = Some(pos + 1);
                    if first {
                        break;
                    }
                }
                i = pos + 1;
                if i >= buf.len() {
                    break;
                }
            }
        }
    }
    last
}

/// The column names in a header record.
fn header_names(dataset: &TextDataset, header: &[u8]) -> Vec<String> {
    let Some(layout) = dataset.csv_layout() else {
        return Vec::new();
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(layout.delimiter)
        .quote(layout.quote)
        .from_reader(header);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => record.iter().map(|v| v.trim().to_string()).collect(),
        _ => Vec::new(),
    }
}
