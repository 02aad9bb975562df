//! Group keys → dense group indices.
//!
//! Most keys are held by value in a layout of their own ([`KeyTable`]):
//!
//! * a single fixed-width column (integers, dates, timestamps, decimals):
//!   [`super::primitive_groups`], whose values are the groups;
//! * two such columns of at most 8 bytes each: [`super::pair_groups`], packed into one
//!   128-bit word;
//! * any other mix of fixed-width, boolean and string or binary columns (and a single string
//!   column): [`super::packed_groups`], compact fixed-width byte keys in which each string is
//!   an id of its column's interner.
//!
//! The rest (floating-point or nested keys) is encoded with Arrow's row format, and a hash
//! table of `(hash, group index)` entries finds each row's group.

use ahash::RandomState;
use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::HashTable;

use super::packed_groups;
use super::pair_groups;
use super::primitive_groups::{self, KeyTable};
use crate::error::Result;

/// The distinct group keys seen so far.
pub(crate) struct GroupValues {
    /// The key's groups, when a layout of their own holds them.
    by_value: Option<Box<dyn KeyTable>>,
    converter: Option<RowConverter>,
    rows: Option<Rows>,
    table: HashTable<(u64, u32)>,
    hasher: RandomState,
    num_groups: usize,
}

impl GroupValues {
    /// Groups keyed by columns of `types` (no types: a single global group).
    pub(crate) fn try_new(types: &[DataType]) -> Result<Self> {
        let by_value = match types {
            [] => None,
            [only] => primitive_groups::for_type(only).or_else(|| packed_groups::for_types(types)),
            [first, second] => {
                pair_groups::for_types(first, second).or_else(|| packed_groups::for_types(types))
            }
            _ => packed_groups::for_types(types),
        };
        Self::with_layout(types, by_value)
    }

    fn with_layout(types: &[DataType], by_value: Option<Box<dyn KeyTable>>) -> Result<Self> {
        let (converter, rows) = if types.is_empty() || by_value.is_some() {
            (None, None)
        } else {
            let converter =
                RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?;
            let rows = converter.empty_rows(1024, 16 * 1024);
            (Some(converter), Some(rows))
        };
        Ok(Self {
            by_value,
            converter,
            rows,
            table: HashTable::new(),
            hasher: RandomState::with_seeds(0x5eed, 0x0c, 0xa11, 0x9e37),
            num_groups: 0,
        })
    }

    /// Groups keyed by columns of `types`, always in Arrow's row format (to check the other
    /// layouts against).
    #[cfg(test)]
    fn in_row_format(types: &[DataType]) -> Result<Self> {
        Self::with_layout(types, None)
    }

    /// Number of groups.
    pub(crate) fn len(&self) -> usize {
        match &self.by_value {
            Some(p) => p.len(),
            None => self.num_groups,
        }
    }

    /// Whether an emptied table may be used again as is (a layout of its own keeps its
    /// allocations for the next round; the row format's state must be rebuilt).
    pub(crate) fn reusable(&self) -> bool {
        self.by_value.is_some()
    }

    /// True when no group exists yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Assign a group index to every row of `keys` (creating groups as needed).
    pub(crate) fn intern(
        &mut self,
        keys: &[ArrayRef],
        num_rows: usize,
        groups: &mut Vec<u32>,
    ) -> Result<()> {
        groups.clear();
        if let Some(by_value) = &mut self.by_value {
            return by_value.intern(keys, groups);
        }
        if self.converter.is_none() {
            self.num_groups = 1;
            groups.resize(num_rows, 0);
            return Ok(());
        }
        self.intern_rows(keys, num_rows, groups)
    }

    fn intern_rows(
        &mut self,
        keys: &[ArrayRef],
        num_rows: usize,
        groups: &mut Vec<u32>,
    ) -> Result<()> {
        let (Some(converter), Some(stored)) = (&self.converter, &mut self.rows) else {
            return Ok(());
        };
        let new_rows = converter.convert_columns(keys)?;
        groups.reserve(num_rows);
        let table = &mut self.table;
        for row in new_rows.iter() {
            let bytes = row.as_ref();
            let hash = self.hasher.hash_one(bytes);
            let found = table.find(hash, |&(h, g)| {
                h == hash && stored.row(g as usize).as_ref() == bytes
            });
            let group = match found {
                Some(&(_, g)) => g,
                None => {
                    let g = self.num_groups as u32;
                    stored.push(row);
                    table.insert_unique(hash, (hash, g), |&(h, _)| h);
                    self.num_groups += 1;
                    g
                }
            };
            groups.push(group);
        }
        Ok(())
    }

    /// Make sure the global group exists even without input (for `SELECT count(*) FROM empty`).
    pub(crate) fn ensure_global_group(&mut self) {
        if self.converter.is_none() && self.by_value.is_none() {
            self.num_groups = 1;
        }
    }

    /// The key columns of all groups in group-index order; resets the table.
    pub(crate) fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        if let Some(by_value) = &mut self.by_value {
            return by_value.take_keys();
        }
        self.table = HashTable::new();
        if self.converter.is_some() {
            self.num_groups = 0;
        }
        match (&self.converter, self.rows.take()) {
            (Some(converter), Some(rows)) => {
                let keys = converter.convert_rows(rows.iter())?;
                self.rows = Some(converter.empty_rows(0, 0));
                Ok(keys)
            }
            _ => Ok(vec![]),
        }
    }

    /// Bytes held.
    pub(crate) fn size(&self) -> usize {
        if let Some(by_value) = &self.by_value {
            return by_value.size();
        }
        self.table.allocation_size() + self.rows.as_ref().map_or(0, |r| r.size())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Array, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array,
        StringViewArray, TimestampMillisecondArray,
    };

    use arrow::buffer::NullBuffer;

    use super::*;

    fn intern_all(gv: &mut GroupValues, batches: &[Vec<ArrayRef>]) -> Vec<u32> {
        let mut all = Vec::new();
        let mut groups = Vec::new();
        for keys in batches {
            gv.intern(keys, keys[0].len(), &mut groups).unwrap();
            all.extend_from_slice(&groups);
        }
        all
    }

    /// A batch of `n` rows of every key type, from a small pseudo-random generator, with
    /// NULLs, empty and long strings, sliced at `offset`.
    fn mixed_batch(seed: u64, n: usize, offset: usize) -> Vec<ArrayRef> {
        let mut state = seed;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        let words = [
            "",
            "a",
            "Brand#45",
            "MEDIUM POLISHED BRASS",
            "STANDARD ANODIZED TIN",
        ];
        let rows = n + offset;
        let mut strings = Vec::new();
        let mut ints = Vec::new();
        let mut decimals = Vec::new();
        let mut flags = Vec::new();
        let mut stamps = Vec::new();
        for _ in 0..rows {
            strings.push((next(9) != 0).then(|| words[next(5) as usize]));
            // A NULL's slot holds a value too: it must not tell NULL rows apart.
            ints.push((next(4) as i32 - 1, next(13) != 0));
            decimals.push((next(11) != 0).then(|| next(3) as i128 * 1_000_000_007));
            flags.push((next(7) != 0).then(|| next(2) == 0));
            stamps.push((next(5) != 0).then(|| next(2) as i64 * 86_400_000));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(strings)),
            Arc::new(Int32Array::new(
                ints.iter().map(|&(v, _)| v).collect(),
                Some(NullBuffer::from(
                    ints.iter().map(|&(_, valid)| valid).collect::<Vec<_>>(),
                )),
            )),
            Arc::new(
                Decimal128Array::from(decimals)
                    .with_precision_and_scale(38, 2)
                    .unwrap(),
            ),
            Arc::new(BooleanArray::from(flags)),
            Arc::new(TimestampMillisecondArray::from(stamps)),
        ];
        columns.iter().map(|c| c.slice(offset, n)).collect()
    }

    #[test]
    fn every_layout_agrees_with_the_row_format() {
        let all = mixed_batch(1, 1, 0);
        let types: Vec<DataType> = all.iter().map(|c| c.data_type().clone()).collect();
        // Every subset of the columns in both orders: single columns, pairs, and wider keys
        // each take their own layout.
        for subset in 1..(1u32 << types.len()) {
            let mut picked: Vec<usize> = (0..types.len())
                .filter(|c| subset & (1 << c) != 0)
                .collect();
            for reversed in [false, true] {
                if reversed {
                    picked.reverse();
                }
                let key_types: Vec<DataType> = picked.iter().map(|&c| types[c].clone()).collect();
                let batches: Vec<Vec<ArrayRef>> = (0..4)
                    .map(|b| {
                        let batch = mixed_batch(b + 7, 500, b as usize * 3);
                        picked.iter().map(|&c| Arc::clone(&batch[c])).collect()
                    })
                    .collect();
                let mut fast = GroupValues::try_new(&key_types).unwrap();
                let mut rows = GroupValues::in_row_format(&key_types).unwrap();
                assert!(fast.by_value.is_some(), "{key_types:?}");
                assert_eq!(
                    intern_all(&mut fast, &batches),
                    intern_all(&mut rows, &batches),
                    "{key_types:?}"
                );
                assert_eq!(fast.len(), rows.len());
                let (got, expected) = (fast.take_keys().unwrap(), rows.take_keys().unwrap());
                for (g, e) in got.iter().zip(&expected) {
                    assert_eq!(g.as_ref(), e.as_ref(), "{key_types:?}");
                }
                assert!(fast.is_empty());
                // After `take_keys` the same table starts over from group 0.
                assert_eq!(intern_all(&mut fast, &batches[..1])[0], 0);
            }
        }
    }

    #[test]
    fn float_keys_take_the_row_format() {
        let types = [DataType::Float64, DataType::Int64];
        let mut gv = GroupValues::try_new(&types).unwrap();
        assert!(gv.by_value.is_none());
        let keys: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![Some(1.5), None, Some(1.5)])),
            Arc::new(Int64Array::from(vec![1, 1, 1])),
        ];
        assert_eq!(intern_all(&mut gv, &[keys]), vec![0, 1, 0]);
        let out = gv.take_keys().unwrap();
        assert!(out[0].is_null(1));
        assert_eq!(out[1].len(), 2);
    }
}
