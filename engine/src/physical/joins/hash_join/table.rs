//! The in-memory build side of a hash join: build rows in one batch, indexed by key.
//!
//! Keys are hashed once per row. A single integer-like key (integers, dates) is hashed as an
//! `i64` with a cheap bit mixer and compared as a number; any other key, including
//! multi-column keys, is encoded with Arrow's row format, hashed with a fixed-seed hasher and
//! compared as bytes. The same hash picks a row's hash partition (see [`partition_at`]), on the
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
use crate::memory::MemoryReservation;
use crate::physical::expr::{normalize_zero_array, PhysicalExpr};

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
    /// Arrow's row format, with an estimate of an encoded row's bytes (offset included).
    Rows(RowConverter, usize),
}

/// The keys of a batch, encoded and hashed.
pub(super) struct Keys {
    /// The integer key, for [`KeyEncoding::Int`].
    pub int: Option<Int64Array>,
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
    pub fn is_valid(&self, i: usize) -> bool {
        self.valid.as_ref().is_none_or(|v| v.is_valid(i))
    }

    /// The partition of each row at `level`; rows with a NULL key go to partition 0.
    pub fn partitions(&self, level: u32) -> Vec<u8> {
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
    pub fn for_types(types: &[DataType]) -> Result<Self> {
        if types.len() == 1 && is_int_key(&types[0]) {
            Ok(Self::Int)
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
    pub fn keys(&self, exprs: &[&PhysicalExpr], batch: &RecordBatch) -> Result<Keys> {
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
                    int: Some(values),
                    rows: None,
                    hashes,
                    valid,
                }
            }
            Self::Rows(converter, _) => {
                let rows = converter.convert_columns(&arrays)?;
                let hashes = rows.iter().map(|r| HASHER.hash_one(r.as_ref())).collect();
                Keys {
                    int: None,
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
    },
    /// (hash, first row); equality compares the encoded rows.
    Rows {
        tables: Vec<HashTable<(u64, u32)>>,
        rows: Rows,
    },
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
    /// Next build row with the same key, or [`NONE`].
    pub next: Vec<u32>,
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
/// - integer keys: a 4-byte slot (12 bytes a row) and the keys as `i64` (8);
/// - row-format keys: a 16-byte (hash, row) slot (39 bytes a row) and the encoded key;
/// - both: a chain link (4), the hash held while indexing (8), the partition lists (up to 8).
///
/// An estimate below the truth is memory nobody accounted for: at 48 bytes a row (when the
/// integer slot was 16 bytes), TPC-H Q9 at SF10 under 1GB indexed all 15M orders and peaked
/// at 1.3 GiB of RSS.
pub(super) fn index_bytes_per_row(encoding: &KeyEncoding) -> usize {
    const LISTS: usize = 4 + 8 + 8;
    match encoding {
        KeyEncoding::Int => 12 + 8 + LISTS,
        KeyEncoding::Rows(_, row_bytes) => 39 + row_bytes + LISTS,
    }
}

impl BuildSide {
    /// Index `batch` by the keys `exprs`. `reservation` already holds the batch; it grows by
    /// the index and becomes the build side's.
    pub fn index(
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
        let table = match encoding {
            KeyEncoding::Int => {
                let values = keys.int.clone().ok_or_else(missing)?;
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
                KeyTable::Int { maps, values }
            }
            KeyEncoding::Rows(..) => {
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
        let actual = batch.get_array_memory_size() + table_bytes + n * 4;
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
    pub fn any_spilled(&self) -> bool {
        self.spilled.iter().any(|&s| s)
    }

    /// The first build row whose key equals probe row `row`'s, or [`NONE`].
    #[inline]
    pub fn first_match(&self, probe: &Keys, row: usize) -> u32 {
        let h = probe.hashes[row];
        match &self.table {
            KeyTable::Int { maps, values } => {
                let v = probe.int.as_ref().map_or(0, |a| a.value(row));
                maps[partition_at(h, 0)]
                    .find(h, |&first| values.value(first as usize) == v)
                    .map_or(NONE, |&first| first)
            }
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

    /// Record that build row `build_row` matched.
    #[inline]
    pub fn mark(&self, build_row: u32) {
        let i = build_row as usize;
        self.matched[i / 64].fetch_or(1 << (i % 64), Ordering::Relaxed);
    }

    /// Whether build row `build_row` matched.
    pub fn is_marked(&self, build_row: usize) -> bool {
        self.matched[build_row / 64].load(Ordering::Relaxed) & (1 << (build_row % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int32Array, StringArray};

    use super::*;

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
