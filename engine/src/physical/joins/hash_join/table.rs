//! The in-memory build side of a hash join: build rows in one batch, indexed by key.
//!
//! Keys are hashed once per row. A single integer-like key (integers, dates) is hashed as an
//! `i64` with a cheap bit mixer and compared as a number. Several integer-like keys (TPC-H's
//! `(ps_partkey, ps_suppkey)`, `(l_suppkey, s_nationkey)`) are hashed by chaining that mixer
//! over the columns; the build side then packs each row's keys into one `u64` from the
//! value ranges it holds (offset from the minimum, in as many bits as the range needs), so a
//! lookup compares one number, and a probe key outside a range is known not to match before
//! the table is read. Build sides whose ranges need more than 64 bits compare the columns one
//! by one. Any other key is encoded with Arrow's row format, hashed with a fixed-seed hasher
//! and compared as bytes. The same hash picks a row's hash partition (see [`partition_at`]), on the
//! build side and on the probe side, at every level of a grace hash join.
//!
//! The index is split into [`PARTITIONS`] tables by the level-0 partition. Each table maps a
//! distinct key to its first build row; `next` chains the other rows with the same key, in
//! build order. Rows with a NULL key are kept in the batch (outer and anti joins emit them)
//! but never indexed.

use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::hash_table::HashTable;

use crate::error::{EngineError, Result};
use crate::eval::{normalize_zero_array, PhysicalExpr};
use crate::memory::MemoryReservation;

/// "No row": the end of a chain.
pub(super) const NONE: u32 = u32::MAX;

/// Hash partitions per level.
pub(super) const PARTITIONS: usize = 16;

/// The deepest partitioning level: a partition still too big at this level is joined in
/// chunks of the build side instead of being split again.
pub(super) const MAX_LEVEL: u32 = 3;

/// Fixed-seed hasher: the same key lands in the same partition on both sides.
static HASHER: ahash::RandomState = ahash::RandomState::with_seeds(1, 2, 3, 4);

/// Hash of an integer key: the 64-bit finalizer of MurmurHash3, a few multiplies and shifts
/// that mix every input bit into every output bit (cheaper than a general-purpose hasher).
#[inline]
fn hash_int(v: i64) -> u64 {
    let mut h = v as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hash of several integer keys: each column's value is folded into the hash of the ones
/// before it and mixed again. Both sides of a join hash the same way, whatever the ranges.
fn hash_ints(columns: &[Int64Array]) -> Vec<u64> {
    let mut hashes: Vec<u64> = columns[0].values().iter().map(|&v| hash_int(v)).collect();
    for column in &columns[1..] {
        for (h, &v) in hashes.iter_mut().zip(column.values().iter()) {
            *h = hash_int((h.rotate_left(29) ^ v as u64) as i64);
        }
    }
    hashes
}

/// The partition of a hash at a partitioning level: four bits from 40 + 4 × level on. The
/// bits are used neither for the bucket index of a table (low bits) nor for hashbrown's
/// control-byte tag (the top seven bits), so the rows of one partition still spread over
/// their table, and each level splits a partition by bits its parent level did not look at.
#[inline]
pub(super) fn partition_at(hash: u64, level: u32) -> usize {
    ((hash >> (40 + 4 * level)) & (PARTITIONS as u64 - 1)) as usize
}

pub(super) fn is_int_key(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Date32
    )
}

/// The key of an integer-like column as `i64`.
pub(super) fn int_values(array: &ArrayRef) -> Result<Int64Array> {
    let a = match array.data_type() {
        DataType::Date32 => cast(&cast(array, &DataType::Int32)?, &DataType::Int64)?,
        _ => cast(array, &DataType::Int64)?,
    };
    Ok(a.as_primitive::<Int64Type>().clone())
}

/// Rows whose keys are all non-NULL (`None`: all of them).
fn valid_keys(keys: &[ArrayRef]) -> Option<NullBuffer> {
    let mut acc: Option<NullBuffer> = None;
    for k in keys {
        acc = NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref());
    }
    acc
}

/// How a join's keys are hashed and compared; the same for both sides.
#[derive(Debug)]
pub(super) enum KeyEncoding {
    /// One integer-like key, as `i64`.
    Int,
    /// Several integer-like keys (this many), each as `i64`.
    Ints(usize),
    /// Arrow's row format, with an estimate of an encoded row's bytes (offset included).
    Rows(RowConverter, usize),
}

/// The keys of a batch, encoded and hashed.
pub(super) struct Keys {
    /// The integer keys, for [`KeyEncoding::Int`] (one) and [`KeyEncoding::Ints`].
    pub ints: Vec<Int64Array>,
    /// The encoded keys, for [`KeyEncoding::Rows`].
    pub rows: Option<Rows>,
    /// Each row's hash (meaningless where a key is NULL).
    pub hashes: Vec<u64>,
    /// Rows whose keys are all non-NULL (`None`: all of them).
    pub valid: Option<NullBuffer>,
}

impl Keys {
    /// Whether row `i` has no NULL key.
    #[inline]
    pub(super) fn is_valid(&self, i: usize) -> bool {
        self.valid.as_ref().is_none_or(|v| v.is_valid(i))
    }

    /// The partition of each row at `level`; rows with a NULL key go to partition 0.
    pub(super) fn partitions(&self, level: u32) -> Vec<u8> {
        (0..self.hashes.len())
            .map(|i| {
                if self.is_valid(i) {
                    partition_at(self.hashes[i], level) as u8
                } else {
                    0
                }
            })
            .collect()
    }
}

/// Row-format bytes of a string key of up to 32 bytes (see [`KeyEncoding::for_types`]).
const STRING_KEY_BYTES: usize = 1 + 4 * (8 + 1);

impl KeyEncoding {
    /// The encoding for keys of these types.
    pub(super) fn for_types(types: &[DataType]) -> Result<Self> {
        if types.len() == 1 && is_int_key(&types[0]) {
            Ok(Self::Int)
        } else if types.len() > 1 && types.iter().all(is_int_key) {
            Ok(Self::Ints(types.len()))
        } else {
            // A fixed-width value encodes as a validity byte and its bytes. A string of up to
            // 32 bytes takes a sentinel byte and up to four 8-byte mini-blocks, each with a
            // continuation byte: 37 bytes at most (longer ones take 33 bytes per 32, and are
            // counted at their real size once indexed). Each row also has an 8-byte offset.
            let row_bytes = 8 + types
                .iter()
                .map(|t| t.primitive_width().map_or(STRING_KEY_BYTES, |w| 1 + w))
                .sum::<usize>();
            Ok(Self::Rows(
                RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?,
                row_bytes,
            ))
        }
    }

    /// Evaluate `exprs` (one side's keys) on `batch`, encode and hash them. `-0.0` is
    /// normalized to `0.0` first, so the two zeros join.
    pub(super) fn keys(&self, exprs: &[&PhysicalExpr], batch: &RecordBatch) -> Result<Keys> {
        let n = batch.num_rows();
        let arrays = exprs
            .iter()
            .map(|e| normalize_zero_array(e.evaluate(batch)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let valid = valid_keys(&arrays);
        Ok(match self {
            Self::Int => {
                let values = int_values(&arrays[0])?;
                let hashes = values.values().iter().map(|&v| hash_int(v)).collect();
                Keys {
                    ints: vec![values],
                    rows: None,
                    hashes,
                    valid,
                }
            }
            Self::Ints(_) => {
                let ints = arrays.iter().map(int_values).collect::<Result<Vec<_>>>()?;
                Keys {
                    hashes: hash_ints(&ints),
                    ints,
                    rows: None,
                    valid,
                }
            }
            Self::Rows(converter, _) => {
                let rows = converter.convert_columns(&arrays)?;
                let hashes = rows.iter().map(|r| HASHER.hash_one(r.as_ref())).collect();
                Keys {
                    ints: Vec::new(),
                    rows: Some(rows),
                    hashes,
                    valid,
                }
            }
        })
    }
}

/// The index of the build rows: the first row of each distinct key, one table per level-0
/// partition.
enum KeyTable {
    /// First rows only; equality reads the key from `values`. A 4-byte slot rather than a
    /// 16-byte (key, row) one: the index of 15M orders takes 170 MB instead of 570.
    Int {
        maps: Vec<HashTable<u32>>,
        values: Int64Array,
        /// Which keys exist, when the key range is narrow enough for a bitmap of at most 4
        /// bytes a row: a probe key not in it skips the table. TPC-H Q9 probes all 60M
        /// `lineitem` rows against the 108K `%green%` parts (keys within 1..=2M): 95% of them
        /// stop at a 250 KB bitmap instead of searching a table.
        present: Option<KeyBitmap>,
    },
    /// One integer key whose values are dense: `first[key - min]` is the first build row
    /// with that key. One memory access instead of a table's three (control bytes, slot,
    /// key), and no key values to keep: equality is the position.
    Dense { first: Vec<u32>, min: i64 },
    /// Several integer keys packed into one number per build row (see [`Packing`]); equality
    /// reads the packed key from `packed`.
    Packed {
        maps: Vec<HashTable<u32>>,
        packed: Vec<u64>,
        packing: Packing,
        /// A bitmap of one key column's values, when one is narrow and sparse enough (see
        /// [`sparse_bitmap`]): TPC-H Q9 probes all 60M `lineitem` rows by (`l_suppkey`,
        /// `l_partkey`) against the 435K `partsupp` rows of `%green%` parts, whose
        /// `ps_partkey`s fill 5% of their range.
        present: Option<(usize, KeyBitmap)>,
    },
    /// Several integer keys whose ranges do not pack into 64 bits; equality compares each
    /// column.
    Ints {
        maps: Vec<HashTable<u32>>,
        columns: Vec<Int64Array>,
    },
    /// (hash, first row); equality compares the encoded rows.
    Rows {
        tables: Vec<HashTable<(u64, u32)>>,
        rows: Rows,
    },
}

/// One bit per value of a key range.
struct KeyBitmap {
    min: i64,
    bits: Vec<u64>,
}

impl KeyBitmap {
    /// Whether `v` is one of the keys.
    #[inline]
    fn contains(&self, v: i64) -> bool {
        let i = v as i128 - self.min as i128;
        i >= 0
            && (i as u128) < self.bits.len() as u128 * 64
            && self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }
}

/// A key bitmap takes at most this many bits per indexed row (4 bytes).
const BITMAP_BITS_PER_ROW: u64 = 32;

/// A bitmap in front of a table of several keys is kept only if at most this share of its
/// bits are set: a probe row passes it about that often when its keys spread over the range.
const SPARSE_BITMAP_FILL: f64 = 0.5;

/// The bitmap of the values of one of `columns` (over the rows `valid` keeps) with the
/// fewest bits set for its range, if its range is narrow enough and it is sparse enough to
/// stop most probe rows: (column, bitmap).
fn sparse_bitmap(columns: &[Int64Array], valid: Option<&NullBuffer>) -> Option<(usize, KeyBitmap)> {
    let mut best: Option<(f64, usize, KeyBitmap)> = None;
    for (c, column) in columns.iter().enumerate() {
        let Some((min, span, count)) = value_range(column, valid) else {
            continue;
        };
        if span >= BITMAP_BITS_PER_ROW * count {
            continue;
        }
        let mut bits = vec![0u64; (span / 64 + 1) as usize];
        for (i, &v) in column.values().iter().enumerate() {
            if valid.is_none_or(|m| m.is_valid(i)) {
                let b = (v as i128 - min as i128) as usize;
                bits[b / 64] |= 1 << (b % 64);
            }
        }
        let set: u64 = bits.iter().map(|w| u64::from(w.count_ones())).sum();
        let fill = set as f64 / (span as f64 + 1.0);
        if fill <= SPARSE_BITMAP_FILL && best.as_ref().is_none_or(|(f, _, _)| fill < *f) {
            best = Some((fill, c, KeyBitmap { min, bits }));
        }
    }
    best.map(|(_, c, bitmap)| (c, bitmap))
}

/// A dense table takes at most this many 4-byte slots per indexed row, 20 bytes: no more
/// than a hash table's slots and key values take (see [`index_bytes_per_row`]), so the
/// estimate made before building stays an upper bound. TPC-H's orders (15M keys in
/// `1..=60M`) qualify.
const DENSE_SLOTS_PER_ROW: u64 = 5;

/// The smallest value, the width of the value range and the number of values of `column`
/// over the rows `valid` keeps (`None` without such rows).
fn value_range(column: &Int64Array, valid: Option<&NullBuffer>) -> Option<(i64, u64, u64)> {
    let mut range: Option<(i64, i64)> = None;
    let mut count = 0u64;
    for (i, &v) in column.values().iter().enumerate() {
        if valid.is_none_or(|m| m.is_valid(i)) {
            range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
            count += 1;
        }
    }
    let (lo, hi) = range?;
    Some((lo, (hi as i128 - lo as i128) as u64, count))
}

/// How several integer keys pack into one `u64`: column `c` contributes `value - min[c]`,
/// which is at most `span[c]`, shifted left by `shift[c]`. Two rows' keys are equal exactly
/// when their packed numbers are, and a value outside `[min, min + span]` matches no build row.
#[derive(Debug)]
struct Packing {
    min: Vec<i64>,
    span: Vec<u64>,
    shift: Vec<u32>,
}

impl Packing {
    /// The packing of these build keys over the rows that `valid` keeps, or `None` when their
    /// ranges need more than 64 bits together (or no row is valid).
    fn of(columns: &[Int64Array], valid: Option<&NullBuffer>) -> Option<Self> {
        let (mut min, mut span, mut shift) = (Vec::new(), Vec::new(), Vec::new());
        let mut bits = 0u32;
        for column in columns {
            let (lo, width, _) = value_range(column, valid)?;
            let need = 64 - width.leading_zeros();
            shift.push(bits);
            bits += need;
            if bits > 64 {
                return None;
            }
            min.push(lo);
            span.push(width);
        }
        Some(Self { min, span, shift })
    }

    /// The packed key of row `row`, or `None` when a value is outside the build side's range.
    #[inline]
    fn pack(&self, columns: &[Int64Array], row: usize) -> Option<u64> {
        let mut key = 0u64;
        for (c, column) in columns.iter().enumerate() {
            let offset = column.value(row) as i128 - self.min[c] as i128;
            if offset < 0 || offset > self.span[c] as i128 {
                return None;
            }
            // A shift of 64 only happens for a zero-width column, whose offset is 0.
            key |= (offset as u64).checked_shl(self.shift[c]).unwrap_or(0);
        }
        Some(key)
    }
}

/// Facts about the whole build side, which NULL-aware and empty-side logic needs even when
/// only a part of the build side is in memory.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BuildFacts {
    /// Rows of the whole build side.
    pub rows: usize,
    /// Whether any build row has a NULL key.
    pub has_null_key: bool,
}

/// Build rows in memory, indexed by key.
pub(super) struct BuildSide {
    /// The rows (of the partitions held in memory).
    pub batch: RecordBatch,
    table: KeyTable,
    /// Next build row with the same key, or [`NONE`]; empty when every key is unique.
    next: Vec<u32>,
    /// Build rows matched by some probe row (for build-side outputs).
    matched: Vec<AtomicU64>,
    /// Level-0 partitions whose rows are in spill files instead of `batch`.
    pub spilled: [bool; PARTITIONS],
    /// The whole build side.
    pub facts: BuildFacts,
    /// Rows per level-0 partition (for the metrics).
    pub partition_rows: Vec<usize>,
    _reservation: MemoryReservation,
}

impl std::fmt::Debug for BuildSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildSide")
            .field("rows", &self.batch.num_rows())
            .field("spilled", &self.spilled)
            .finish()
    }
}

/// Bytes the index of `rows` build rows needs beyond the rows themselves, an upper bound.
/// hashbrown fills at most 7/8 of its buckets and rounds their number up to a power of two,
/// so a row takes up to 16/7 buckets, each a slot and a control byte:
/// - integer keys: a 4-byte slot (12 bytes a row), the keys as `i64` (8) and a bitmap of
///   the keys present (up to 4), or instead a dense table of up to 20 bytes a row;
/// - several integer keys: a 4-byte slot (12), each key as `i64` (8 each) and the packed key
///   (8), both held while the table is built, and a bitmap of one key's values (up to 4);
/// - row-format keys: a 16-byte (hash, row) slot (39 bytes a row) and the encoded key;
/// - both: a chain link (4), the hash held while indexing (8), the partition lists (up to 8).
///
/// An estimate below the truth is memory nobody accounted for: at 48 bytes a row (when the
/// integer slot was 16 bytes), TPC-H Q9 at SF10 under 1GB indexed all 15M orders and peaked
/// at 1.3 GiB of RSS.
pub(super) fn index_bytes_per_row(encoding: &KeyEncoding) -> usize {
    const LISTS: usize = 4 + 8 + 8;
    match encoding {
        KeyEncoding::Int => 12 + 8 + 4 + LISTS,
        KeyEncoding::Ints(columns) => 12 + 8 * columns + 8 + 4 + LISTS,
        KeyEncoding::Rows(_, row_bytes) => 39 + row_bytes + LISTS,
    }
}

impl BuildSide {
    /// Index `batch` by the keys `exprs`. `reservation` already holds the batch; it grows by
    /// the index and becomes the build side's.
    pub(super) fn index(
        batch: RecordBatch,
        exprs: &[&PhysicalExpr],
        encoding: &KeyEncoding,
        mut reservation: MemoryReservation,
        spilled: [bool; PARTITIONS],
        mut facts: BuildFacts,
    ) -> Result<Self> {
        let n = batch.num_rows();
        if n >= NONE as usize {
            return Err(EngineError::NotSupported(format!(
                "a hash join build side of {n} rows in memory (at most {} rows)",
                NONE - 1
            )));
        }
        let keys = encoding.keys(exprs, &batch)?;
        facts.has_null_key |= keys.valid.as_ref().is_some_and(|v| v.null_count() > 0);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); PARTITIONS];
        for i in (0..n).filter(|&i| keys.is_valid(i)) {
            members[partition_at(keys.hashes[i], 0)].push(i as u32);
        }
        let mut next = vec![NONE; n];
        let mut table_bytes = 0;
        let missing = || EngineError::Internal("hash join: keys not encoded as expected".into());
        let range = match encoding {
            KeyEncoding::Int => keys
                .ints
                .first()
                .and_then(|values| value_range(values, keys.valid.as_ref())),
            _ => None,
        };
        let dense = range
            .filter(|&(_, span, valid)| span < DENSE_SLOTS_PER_ROW * valid)
            .map(|(min, span, _)| (min, span));
        let table = match (encoding, dense) {
            (KeyEncoding::Int, Some((min, span))) => {
                let values = keys.ints.first().ok_or_else(missing)?;
                let mut first = vec![NONE; span as usize + 1];
                // In reverse, so chains list build rows in their original order.
                for i in (0..n).rev().filter(|&i| keys.is_valid(i)) {
                    let slot = &mut first[(values.value(i) as i128 - min as i128) as usize];
                    next[i] = *slot;
                    *slot = i as u32;
                }
                table_bytes += first.capacity() * 4;
                KeyTable::Dense { first, min }
            }
            (KeyEncoding::Int, None) => {
                let values = keys.ints.first().cloned().ok_or_else(missing)?;
                let key = |row: u32| values.value(row as usize);
                let mut maps = Vec::with_capacity(PARTITIONS);
                for rows_of_partition in &members {
                    let mut map: HashTable<u32> = HashTable::with_capacity(rows_of_partition.len());
                    // Insert in reverse so chains list build rows in their original order.
                    for &i in rows_of_partition.iter().rev() {
                        let v = key(i);
                        let h = keys.hashes[i as usize];
                        match map.find_mut(h, |&first| key(first) == v) {
                            Some(first) => {
                                next[i as usize] = *first;
                                *first = i;
                            }
                            None => {
                                map.insert_unique(h, i, |&first| hash_int(key(first)));
                            }
                        }
                    }
                    table_bytes += map.allocation_size();
                    maps.push(map);
                }
                // The key values may share the batch's buffer; counted apart all the same.
                table_bytes += values.get_buffer_memory_size();
                let present = range
                    .filter(|&(_, span, valid)| span < BITMAP_BITS_PER_ROW * valid)
                    .map(|(min, span, _)| {
                        let mut bits = vec![0u64; (span / 64 + 1) as usize];
                        for i in (0..n).filter(|&i| keys.is_valid(i)) {
                            let b = (values.value(i) as i128 - min as i128) as usize;
                            bits[b / 64] |= 1 << (b % 64);
                        }
                        table_bytes += bits.capacity() * 8;
                        KeyBitmap { min, bits }
                    });
                KeyTable::Int {
                    maps,
                    values,
                    present,
                }
            }
            (KeyEncoding::Ints(_), _) => {
                let columns = &keys.ints;
                if columns.is_empty() {
                    return Err(missing());
                }
                let packing = Packing::of(columns, keys.valid.as_ref());
                // Valid rows get their packed key; the others are never looked at.
                let packed: Option<Vec<u64>> = packing.as_ref().map(|p| {
                    (0..n)
                        .map(|i| {
                            if keys.is_valid(i) {
                                p.pack(columns, i).unwrap_or(0)
                            } else {
                                0
                            }
                        })
                        .collect()
                });
                let mut maps = Vec::with_capacity(PARTITIONS);
                for rows_of_partition in &members {
                    let mut map: HashTable<u32> = HashTable::with_capacity(rows_of_partition.len());
                    for &i in rows_of_partition.iter().rev() {
                        let h = keys.hashes[i as usize];
                        let found = match &packed {
                            Some(packed) => {
                                let v = packed[i as usize];
                                map.find_mut(h, |&first| packed[first as usize] == v)
                            }
                            None => map.find_mut(h, |&first| {
                                columns
                                    .iter()
                                    .all(|c| c.value(first as usize) == c.value(i as usize))
                            }),
                        };
                        match found {
                            Some(first) => {
                                next[i as usize] = *first;
                                *first = i;
                            }
                            None => {
                                map.insert_unique(h, i, |&first| keys.hashes[first as usize]);
                            }
                        }
                    }
                    table_bytes += map.allocation_size();
                    maps.push(map);
                }
                match (packed, packing) {
                    (Some(packed), Some(packing)) => {
                        table_bytes += packed.capacity() * 8;
                        let present = sparse_bitmap(columns, keys.valid.as_ref());
                        if let Some((_, bitmap)) = &present {
                            table_bytes += bitmap.bits.capacity() * 8;
                        }
                        KeyTable::Packed {
                            maps,
                            packed,
                            packing,
                            present,
                        }
                    }
                    _ => {
                        table_bytes += columns
                            .iter()
                            .map(|c| c.get_buffer_memory_size())
                            .sum::<usize>();
                        KeyTable::Ints {
                            maps,
                            columns: columns.clone(),
                        }
                    }
                }
            }
            (KeyEncoding::Rows(..), _) => {
                let rows = keys.rows.as_ref().ok_or_else(missing)?;
                let mut tables = Vec::with_capacity(PARTITIONS);
                for rows_of_partition in &members {
                    let mut table: HashTable<(u64, u32)> =
                        HashTable::with_capacity(rows_of_partition.len());
                    for &i in rows_of_partition.iter().rev() {
                        let row = rows.row(i as usize);
                        let h = keys.hashes[i as usize];
                        match table
                            .find_mut(h, |&(eh, first)| eh == h && rows.row(first as usize) == row)
                        {
                            Some(entry) => {
                                next[i as usize] = entry.1;
                                entry.1 = i;
                            }
                            None => {
                                table.insert_unique(h, (h, i), |&(eh, _)| eh);
                            }
                        }
                    }
                    table_bytes += table.allocation_size();
                    tables.push(table);
                }
                table_bytes += rows.size();
                KeyTable::Rows {
                    tables,
                    rows: keys.rows.ok_or_else(missing)?,
                }
            }
        };
        // The caller reserved an upper bound for the index; settle on what it takes. If the
        // actual size is larger and the budget is gone, the estimate stays reserved.
        // Unique keys (a primary key, as on most dimension tables) need no chains.
        if next.iter().all(|&j| j == NONE) {
            next = Vec::new();
        }
        let actual = batch.get_array_memory_size() + table_bytes + next.capacity() * 4;
        let _ = reservation.try_resize(actual);
        let matched = (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Ok(Self {
            batch,
            table,
            next,
            matched,
            spilled,
            facts,
            partition_rows: members.iter().map(Vec::len).collect(),
            _reservation: reservation,
        })
    }

    /// Whether some partitions are in spill files.
    pub(super) fn any_spilled(&self) -> bool {
        self.spilled.iter().any(|&s| s)
    }

    /// The first build row whose key equals probe row `row`'s, or [`NONE`].
    #[inline]
    pub(super) fn first_match(&self, probe: &Keys, row: usize) -> u32 {
        let h = probe.hashes[row];
        match &self.table {
            KeyTable::Int {
                maps,
                values,
                present,
            } => {
                let v = probe.ints.first().map_or(0, |a| a.value(row));
                if present.as_ref().is_some_and(|p| !p.contains(v)) {
                    return NONE;
                }
                maps[partition_at(h, 0)]
                    .find(h, |&first| values.value(first as usize) == v)
                    .map_or(NONE, |&first| first)
            }
            KeyTable::Dense { first, min } => {
                let v = probe.ints.first().map_or(0, |a| a.value(row));
                let slot = v as i128 - *min as i128;
                if slot < 0 || slot >= first.len() as i128 {
                    NONE
                } else {
                    first[slot as usize]
                }
            }
            KeyTable::Packed {
                maps,
                packed,
                packing,
                present,
            } => {
                if let Some((c, bitmap)) = present {
                    if !probe
                        .ints
                        .get(*c)
                        .is_some_and(|a| bitmap.contains(a.value(row)))
                    {
                        return NONE;
                    }
                }
                let Some(v) = packing.pack(&probe.ints, row) else {
                    return NONE;
                };
                maps[partition_at(h, 0)]
                    .find(h, |&first| packed[first as usize] == v)
                    .map_or(NONE, |&first| first)
            }
            KeyTable::Ints { maps, columns } => maps[partition_at(h, 0)]
                .find(h, |&first| {
                    columns
                        .iter()
                        .zip(&probe.ints)
                        .all(|(b, p)| b.value(first as usize) == p.value(row))
                })
                .map_or(NONE, |&first| first),
            KeyTable::Rows { tables, rows } => {
                let Some(probe_rows) = &probe.rows else {
                    return NONE;
                };
                let key = probe_rows.row(row);
                tables[partition_at(h, 0)]
                    .find(h, |&(eh, first)| eh == h && rows.row(first as usize) == key)
                    .map_or(NONE, |&(_, first)| first)
            }
        }
    }

    /// How the keys are indexed, for `--explain-analyze`: `dense`, `hash` (`+bitmap` when
    /// a bitmap of the keys goes first), `packed`, `columns` or `rows`, and `unique` when no
    /// two build rows share a key.
    pub(super) fn index_kind(&self) -> String {
        let kind = match &self.table {
            KeyTable::Dense { .. } => "dense",
            KeyTable::Int {
                present: Some(_), ..
            } => "hash+bitmap",
            KeyTable::Int { present: None, .. } => "hash",
            KeyTable::Packed {
                present: Some(_), ..
            } => "packed+bitmap",
            KeyTable::Packed { present: None, .. } => "packed",
            KeyTable::Ints { .. } => "columns",
            KeyTable::Rows { .. } => "rows",
        };
        if self.next.is_empty() {
            format!("{kind}, unique")
        } else {
            kind.to_string()
        }
    }

    /// The build row after `build_row` with the same key, or [`NONE`].
    #[inline]
    pub(super) fn next_match(&self, build_row: u32) -> u32 {
        self.next.get(build_row as usize).copied().unwrap_or(NONE)
    }

    /// Record that build row `build_row` matched.
    #[inline]
    pub(super) fn mark(&self, build_row: u32) {
        let i = build_row as usize;
        self.matched[i / 64].fetch_or(1 << (i % 64), Ordering::Relaxed);
    }

    /// Whether build row `build_row` matched.
    pub(super) fn is_marked(&self, build_row: usize) -> bool {
        self.matched[build_row / 64].load(Ordering::Relaxed) & (1 << (build_row % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::memory::MemoryPool;

    /// A batch of two nullable `Int64` key columns `a` and `b`.
    fn pairs(rows: &[(Option<i64>, Option<i64>)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        let a: ArrayRef = Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.0)));
        let b: ArrayRef = Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1)));
        RecordBatch::try_new(schema, vec![a, b]).unwrap()
    }

    /// Index `build` on its columns, then every build row matching each probe row through
    /// the index (in build order), and the index kind.
    fn index_and_probe(build: RecordBatch, probe: &RecordBatch) -> (Vec<Vec<u32>>, String) {
        let exprs: Vec<PhysicalExpr> = (0..build.num_columns())
            .map(|i| PhysicalExpr::Column(i, format!("c{i}")))
            .collect();
        let exprs: Vec<&PhysicalExpr> = exprs.iter().collect();
        let types: Vec<DataType> = build
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let encoding = KeyEncoding::for_types(&types).unwrap();
        let pool = MemoryPool::unbounded();
        let side = BuildSide::index(
            build,
            &exprs,
            &encoding,
            MemoryReservation::new(&pool, "build", crate::memory::MemoryPart::BuildSide, None),
            [false; PARTITIONS],
            BuildFacts::default(),
        )
        .unwrap();
        let keys = encoding.keys(&exprs, probe).unwrap();
        let found = (0..probe.num_rows())
            .map(|row| {
                let mut out = Vec::new();
                if keys.is_valid(row) {
                    let mut j = side.first_match(&keys, row);
                    while j != NONE {
                        out.push(j);
                        j = side.next_match(j);
                    }
                }
                out
            })
            .collect();
        (found, side.index_kind())
    }

    /// Build rows matching each probe row on two `Int64` keys, and whether they were packed.
    fn matches(
        build: &[(Option<i64>, Option<i64>)],
        probe: &[(Option<i64>, Option<i64>)],
    ) -> (Vec<Vec<u32>>, bool) {
        assert!(matches!(
            KeyEncoding::for_types(&[DataType::Int64, DataType::Int64]).unwrap(),
            KeyEncoding::Ints(2)
        ));
        let (found, kind) = index_and_probe(pairs(build), &pairs(probe));
        (found, kind.starts_with("packed"))
    }

    /// The same, by comparing every pair.
    fn naive(
        build: &[(Option<i64>, Option<i64>)],
        probe: &[(Option<i64>, Option<i64>)],
    ) -> Vec<Vec<u32>> {
        probe
            .iter()
            .map(|p| {
                (0..build.len() as u32)
                    .filter(|&j| {
                        let b = build[j as usize];
                        p.0.is_some() && p.1.is_some() && b == *p
                    })
                    .collect()
            })
            .collect()
    }

    /// Build rows matching each probe row on one nullable `Int64` key, and the index kind.
    fn single_key_matches(build: &[Option<i64>], probe: &[Option<i64>]) -> (Vec<Vec<u32>>, String) {
        let batch = |v: &[Option<i64>]| {
            let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
            let k: ArrayRef = Arc::new(Int64Array::from_iter(v.iter().copied()));
            RecordBatch::try_new(schema, vec![k]).unwrap()
        };
        index_and_probe(batch(build), &batch(probe))
    }

    #[test]
    fn a_dense_integer_key_is_indexed_by_position() {
        // Keys -40..=80 in steps of 3 (41 slots for 42 rows), two rows each but one, NULLs.
        let mut build: Vec<Option<i64>> = (-40i64..=80).step_by(3).map(Some).collect();
        build.extend((-40i64..=78).step_by(3).map(Some));
        build.push(None);
        let probe: Vec<Option<i64>> = (-100i64..120).map(Some).chain([None]).collect();
        let expected: Vec<Vec<u32>> = probe
            .iter()
            .map(|p| {
                (0..build.len() as u32)
                    .filter(|&j| p.is_some() && build[j as usize] == *p)
                    .collect()
            })
            .collect();
        let expect = |build: &[Option<i64>]| -> Vec<Vec<u32>> {
            probe
                .iter()
                .map(|p| {
                    (0..build.len() as u32)
                        .filter(|&j| p.is_some() && build[j as usize] == *p)
                        .collect()
                })
                .collect()
        };
        let (found, kind) = single_key_matches(&build, &probe);
        assert_eq!(kind, "dense", "121 slots for 81 keyed rows");
        assert_eq!(found, expected);
        assert_eq!(found.iter().map(Vec::len).sum::<usize>(), 81);
        // Unique keys need no chains.
        let unique: Vec<Option<i64>> = (-40i64..=80).step_by(3).map(Some).collect();
        let (found, kind) = single_key_matches(&unique, &probe);
        assert_eq!(kind, "dense, unique");
        assert_eq!(found, expect(&unique));
        // Keys 10 apart: too sparse for a dense table, not for a bitmap in front of the hash.
        let spread: Vec<Option<i64>> = (0..50)
            .map(|i| Some(i * 10 - 100))
            .chain([Some(-100), None])
            .collect();
        let (found, kind) = single_key_matches(&spread, &probe);
        assert_eq!(kind, "hash+bitmap");
        assert_eq!(found, expect(&spread));
        assert_eq!(found.iter().map(Vec::len).sum::<usize>(), 23);
        // Sparse keys (including both ends of i64) use the hash table, with the same answers.
        let build = vec![Some(i64::MIN), Some(0), Some(i64::MAX), Some(0), None];
        let probe = vec![Some(0), Some(i64::MAX), Some(i64::MIN), Some(1), None];
        let (found, kind) = single_key_matches(&build, &probe);
        assert_eq!(kind, "hash");
        assert_eq!(found, vec![vec![1, 3], vec![2], vec![0], vec![], vec![]]);
    }

    #[test]
    fn several_integer_keys_pack_into_one_number_and_match_exactly() {
        // Negative values, duplicates, NULLs in either column, probe values just outside
        // each build range and inside it but absent.
        let mut build = Vec::new();
        for i in -20i64..20 {
            build.push((Some(i * 3), Some(-i % 7)));
            build.push((Some(i * 3), Some(-i % 7)));
        }
        build.push((None, Some(1)));
        build.push((Some(3), None));
        let mut probe: Vec<(Option<i64>, Option<i64>)> = Vec::new();
        for a in -65i64..65 {
            for b in -8i64..9 {
                probe.push((Some(a), Some(b)));
            }
        }
        probe.push((None, Some(1)));
        probe.push((Some(3), None));
        let (found, packed) = matches(&build, &probe);
        assert!(packed, "ranges of 7 and 4 bits pack");
        assert_eq!(found, naive(&build, &probe));
        assert!(found.iter().map(Vec::len).sum::<usize>() >= 80);
    }

    #[test]
    fn a_sparse_key_column_puts_a_bitmap_in_front_of_the_packed_table() {
        // Q9's shape: the second key fills its whole range (every supplier), the first a
        // tenth of it (a few parts): the bitmap is of the first.
        let mut build = Vec::new();
        for part in (0..400i64).step_by(10) {
            for supplier in 0..4i64 {
                build.push((Some(part), Some(supplier)));
            }
        }
        build.push((Some(130), Some(2)));
        build.push((None, Some(1)));
        build.push((Some(20), None));
        let mut probe = Vec::new();
        for part in -5i64..410 {
            for supplier in [-1, 0, 2, 3, 4] {
                probe.push((Some(part), Some(supplier)));
            }
        }
        probe.push((None, Some(1)));
        probe.push((Some(20), None));
        let (found, kind) = index_and_probe(pairs(&build), &pairs(&probe));
        assert_eq!(kind, "packed+bitmap");
        assert_eq!(found, naive(&build, &probe));
        assert_eq!(found.iter().map(Vec::len).sum::<usize>(), 40 * 3 + 1);
        // Both columns dense: a bitmap would stop nothing, and there is none.
        let dense: Vec<_> = (0..200i64).map(|i| (Some(i / 4), Some(i % 4))).collect();
        let (found, kind) = index_and_probe(pairs(&dense), &pairs(&probe));
        assert_eq!(kind, "packed, unique");
        assert_eq!(found, naive(&dense, &probe));
    }

    #[test]
    fn integer_keys_whose_ranges_exceed_64_bits_are_compared_column_by_column() {
        let build = vec![
            (Some(i64::MIN), Some(i64::MAX)),
            (Some(i64::MAX), Some(i64::MIN)),
            (Some(0), Some(0)),
            (Some(0), Some(0)),
            (Some(-1), Some(1)),
        ];
        let probe = vec![
            (Some(0), Some(0)),
            (Some(i64::MAX), Some(i64::MIN)),
            (Some(i64::MIN), Some(i64::MAX)),
            (Some(i64::MIN), Some(i64::MIN)),
            (Some(1), Some(-1)),
            (Some(-1), Some(1)),
        ];
        let (found, packed) = matches(&build, &probe);
        assert!(!packed, "two full 64-bit ranges do not pack");
        assert_eq!(found, naive(&build, &probe));
        // One full range beside a constant column still packs, and the far ends still match.
        let build = vec![(Some(i64::MIN), Some(5)), (Some(i64::MAX), Some(5))];
        let probe = vec![
            (Some(i64::MIN), Some(5)),
            (Some(i64::MAX), Some(5)),
            (Some(i64::MAX), Some(4)),
            (Some(i64::MIN), Some(6)),
        ];
        let (found, packed) = matches(&build, &probe);
        assert!(packed);
        assert_eq!(found, naive(&build, &probe));
    }

    #[test]
    fn the_row_estimate_bounds_keys_with_strings_of_up_to_32_bytes() {
        let types = [DataType::Utf8, DataType::Int32];
        let KeyEncoding::Rows(converter, row_bytes) = KeyEncoding::for_types(&types).unwrap()
        else {
            panic!("a string key is encoded as rows");
        };
        for len in [0, 1, 8, 9, 24, 25, 31, 32] {
            let n = 1000;
            let strings: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                format!("{i:0>len$}")
                    .chars()
                    .take(len.max(1))
                    .collect::<String>()
            })));
            let ints: ArrayRef = Arc::new(Int32Array::from_iter_values(0..n));
            let rows = converter.convert_columns(&[strings, ints]).unwrap();
            let per_row = (0..rows.num_rows())
                .map(|i| rows.row(i).as_ref().len())
                .max()
                .unwrap();
            assert!(
                per_row + 8 <= row_bytes,
                "strings of {len} bytes: {per_row} + 8 bytes a row, estimate {row_bytes}"
            );
        }
    }
}
