//! Building one column's index in bounded memory: an external sort of (key, row) pairs.
//!
//! The column is read slice by slice. Each row's key and position go into a buffer; when the
//! buffer reaches its share of the memory limit it is sorted by key (then row) and written
//! to an unnamed temporary file as a *run*: keys in order, each with its rows as varint gaps.
//! At the end the runs are merged, and since run *i* holds only rows before those of run
//! *i + 1*, taking equal keys in run order keeps each key's rows ascending. With no run on
//! disk the buffer is sorted and written directly. NULL rows are collected apart, already in
//! order. The merged keys go to a [`ColumnWriter`] one by one, so the memory is the buffer,
//! a read buffer per run and the posting of one key.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use arrow::array::Array;

use super::format::{put_varint, ColumnMeta, ColumnWriter, CountingWriter, PostingBuilder};
use super::key::{keys_of, kind_of, ArrayKeys, KeyKind};
use crate::dataset::{ParquetDataset, RowGroupRef};
use crate::error::{IoError, Result};
use crate::read::ReadOptions;

/// Rows per slice read while building.
const SLICE_ROWS: usize = 131_072;
/// Smallest and largest buffer of (key, row) pairs.
const MIN_BUFFER: usize = 64 << 10;
const MAX_BUFFER: usize = 1 << 30;

/// (key, row) pairs waiting to be sorted.
enum Pairs {
    Fixed(Vec<(u64, u32)>),
    /// Keys in one arena: (offset, length, row).
    Bytes {
        arena: Vec<u8>,
        entries: Vec<(u32, u32, u32)>,
    },
}

impl Pairs {
    /// Pairs of `kind` for a buffer of `limit` bytes (fixed keys: allocated once, so that the
    /// buffer never doubles past its limit).
    fn new(kind: KeyKind, limit: usize) -> Self {
        match kind {
            KeyKind::Fixed => Pairs::Fixed(Vec::with_capacity(limit / 16)),
            KeyKind::Bytes => Pairs::Bytes {
                arena: Vec::new(),
                entries: Vec::new(),
            },
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Pairs::Fixed(v) => v.len() * 16,
            Pairs::Bytes { arena, entries } => arena.capacity() + entries.capacity() * 12,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Pairs::Fixed(v) => v.is_empty(),
            Pairs::Bytes { entries, .. } => entries.is_empty(),
        }
    }

    fn sort(&mut self) {
        match self {
            Pairs::Fixed(v) => v.sort_unstable(),
            Pairs::Bytes { arena, entries } => entries.sort_unstable_by(|a, b| {
                let ka = &arena[a.0 as usize..(a.0 + a.1) as usize];
                let kb = &arena[b.0 as usize..(b.0 + b.1) as usize];
                ka.cmp(kb).then(a.2.cmp(&b.2))
            }),
        }
    }

    /// Call `f` with each key (in order) and its rows; the pairs are sorted.
    fn for_each_key(
        &self,
        mut f: impl FnMut(&[u8], &[u32]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut rows: Vec<u32> = Vec::new();
        match self {
            Pairs::Fixed(v) => {
                let mut i = 0;
                while i < v.len() {
                    let key = v[i].0;
                    rows.clear();
                    while i < v.len() && v[i].0 == key {
                        rows.push(v[i].1);
                        i += 1;
                    }
                    f(&key.to_be_bytes(), &rows)?;
                }
            }
            Pairs::Bytes { arena, entries } => {
                let key_of = |e: &(u32, u32, u32)| &arena[e.0 as usize..(e.0 + e.1) as usize];
                let mut i = 0;
                while i < entries.len() {
                    let key = key_of(&entries[i]);
                    rows.clear();
                    while i < entries.len() && key_of(&entries[i]) == key {
                        rows.push(entries[i].2);
                        i += 1;
                    }
                    f(key, &rows)?;
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        match self {
            Pairs::Fixed(v) => v.clear(),
            Pairs::Bytes { arena, entries } => {
                arena.clear();
                entries.clear();
            }
        }
    }
}

/// A sorted run on disk.
struct Run {
    file: File,
}

/// Reads a run's keys back in order.
struct RunReader {
    input: BufReader<File>,
    key: Vec<u8>,
    rows: Vec<u32>,
}

fn read_varint(input: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8; 1];
        if input.read(&mut b)? == 0 {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(std::io::Error::other("truncated run"))
            };
        }
        v |= u64::from(b[0] & 0x7F) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(std::io::Error::other("bad varint in run"))
}

impl RunReader {
    /// The next key and its rows; `false` at the end.
    fn advance(&mut self) -> std::io::Result<bool> {
        let Some(len) = read_varint(&mut self.input)? else {
            return Ok(false);
        };
        self.key.resize(len as usize, 0);
        self.input.read_exact(&mut self.key)?;
        let count =
            read_varint(&mut self.input)?.ok_or_else(|| std::io::Error::other("truncated run"))?;
        self.rows.clear();
        let mut row = 0u64;
        for _ in 0..count {
            row += read_varint(&mut self.input)?
                .ok_or_else(|| std::io::Error::other("truncated run"))?;
            self.rows.push(row as u32);
        }
        Ok(true)
    }
}

/// What building a column needs besides the data.
pub(crate) struct BuildContext<'a> {
    pub(crate) memory_limit: usize,
    pub(crate) temp_dir: &'a Path,
    pub(crate) progress: Option<&'a (dyn Fn(u64) + Send + Sync)>,
}

/// Build the index of `column` of file `file` of `dataset` into `out`.
pub(crate) fn build_column<W: Write>(
    dataset: &ParquetDataset,
    file: usize,
    column: &str,
    context: &BuildContext<'_>,
    out: &mut CountingWriter<W>,
) -> Result<ColumnMeta> {
    let f = &dataset.files()[file];
    let io_error = |source: std::io::Error| IoError::Io {
        path: context.temp_dir.to_path_buf(),
        source,
    };
    let data_type = dataset
        .schema()
        .field_with_name(column)
        .map(|f| f.data_type().clone())
        .map_err(|_| IoError::InvalidArgument(format!("unknown column '{column}'")))?;
    let kind = kind_of(&data_type)
        .map_err(|e| IoError::InvalidArgument(format!("cannot index '{column}': {e}")))?;
    if f.num_rows() > u64::from(u32::MAX) {
        return Err(IoError::InvalidArgument(format!(
            "cannot index {}: it has {} rows, indexes cover files of up to 2^32 - 1 rows",
            f.path.display(),
            f.num_rows()
        )));
    }
    // Byte keys grow by doubling: a third of the limit leaves room for it.
    let share = match kind {
        KeyKind::Fixed => context.memory_limit / 2,
        KeyKind::Bytes => context.memory_limit / 3,
    };
    let buffer_limit = share.clamp(MIN_BUFFER, MAX_BUFFER);
    let mut pairs = Pairs::new(kind, buffer_limit);
    let mut runs: Vec<Run> = Vec::new();
    let mut nulls = PostingBuilder::new();
    let mut key = Vec::new();
    let options = ReadOptions {
        projection: Some(vec![column.to_string()]),
        batch_size: 8192,
        ..Default::default()
    };
    let mut first_row = 0u64;
    for rg in 0..f.metadata.num_row_groups() {
        let rg_ref = RowGroupRef {
            file,
            row_group: rg,
        };
        for morsel in dataset.plan_morsels(&[rg_ref], SLICE_ROWS) {
            let mut row = first_row + morsel.row_offset as u64;
            for batch in dataset.read_morsel(&morsel, &options)? {
                let batch = batch?;
                let array = batch.column(0);
                let keys = keys_of(array).map_err(IoError::InvalidArgument)?;
                let n = array.len();
                for i in 0..n {
                    let r = (row + i as u64) as u32;
                    if array.is_null(i) {
                        nulls.push(r);
                        continue;
                    }
                    match (&keys, &mut pairs) {
                        (ArrayKeys::Fixed(k), Pairs::Fixed(v)) => v.push((k[i], r)),
                        (ArrayKeys::Bytes(_), Pairs::Bytes { arena, entries }) => {
                            key.clear();
                            keys.bytes(i, &mut key);
                            let len = u32::try_from(key.len()).map_err(|_| {
                                IoError::InvalidArgument(format!(
                                    "a value of '{column}' is too long to index"
                                ))
                            })?;
                            entries.push((arena.len() as u32, len, r));
                            arena.extend_from_slice(&key);
                        }
                        _ => {
                            return Err(IoError::InvalidArgument(format!(
                                "column '{column}' changed type while being indexed"
                            )))
                        }
                    }
                }
                row += n as u64;
                if let Some(progress) = context.progress {
                    progress(n as u64);
                }
                let arena_full = matches!(&pairs, Pairs::Bytes { arena, .. } if arena.len() > (u32::MAX / 2) as usize);
                if pairs.bytes() >= buffer_limit || arena_full {
                    runs.push(spill(&mut pairs, context.temp_dir).map_err(io_error)?);
                }
            }
        }
        first_row += f.metadata.row_group(rg).num_rows().max(0) as u64;
    }
    let mut writer = ColumnWriter::new(out, column, data_type, kind);
    let write_error = |source: std::io::Error| IoError::Io {
        path: f.path.clone(),
        source,
    };
    if runs.is_empty() {
        pairs.sort();
        pairs
            .for_each_key(|key, rows| {
                let mut posting = PostingBuilder::new();
                rows.iter().for_each(|&r| posting.push(r));
                writer.add(out, key, posting)
            })
            .map_err(write_error)?;
    } else {
        if !pairs.is_empty() {
            runs.push(spill(&mut pairs, context.temp_dir).map_err(io_error)?);
        }
        drop(pairs);
        merge(runs, &mut writer, out).map_err(io_error)?;
    }
    writer.finish(out, nulls).map_err(write_error)
}

/// Sort the pairs and write them as a run.
fn spill(pairs: &mut Pairs, dir: &Path) -> std::io::Result<Run> {
    pairs.sort();
    let file = tempfile::tempfile_in(dir)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    pairs.for_each_key(|key, rows| {
        buf.clear();
        put_varint(&mut buf, key.len() as u64);
        buf.extend_from_slice(key);
        put_varint(&mut buf, rows.len() as u64);
        let mut last = 0u32;
        for &r in rows {
            put_varint(&mut buf, u64::from(r - last));
            last = r;
        }
        w.write_all(&buf)
    })?;
    pairs.clear();
    let file = w.into_inner().map_err(|e| e.into_error())?;
    Ok(Run { file })
}

/// Merge the runs into the column's section.
fn merge<W: Write>(
    runs: Vec<Run>,
    writer: &mut ColumnWriter,
    out: &mut CountingWriter<W>,
) -> std::io::Result<()> {
    let mut readers = Vec::with_capacity(runs.len());
    for mut run in runs {
        run.file.rewind()?;
        readers.push(RunReader {
            input: BufReader::with_capacity(256 << 10, run.file),
            key: Vec::new(),
            rows: Vec::new(),
        });
    }
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if r.advance()? {
            heap.push(Reverse((r.key.clone(), i)));
        }
    }
    let mut current: Option<(Vec<u8>, PostingBuilder)> = None;
    while let Some(Reverse((key, i))) = heap.pop() {
        match &mut current {
            Some((k, posting)) if *k == key => {
                readers[i].rows.iter().for_each(|&r| posting.push(r));
            }
            _ => {
                if let Some((k, posting)) = current.take() {
                    writer.add(out, &k, posting)?;
                }
                let mut posting = PostingBuilder::new();
                readers[i].rows.iter().for_each(|&r| posting.push(r));
                current = Some((key, posting));
            }
        }
        if readers[i].advance()? {
            heap.push(Reverse((readers[i].key.clone(), i)));
        }
    }
    if let Some((k, posting)) = current {
        writer.add(out, &k, posting)?;
    }
    Ok(())
}
