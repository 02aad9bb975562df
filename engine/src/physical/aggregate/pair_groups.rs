//! Group indices for two fixed-width key columns of at most 8 bytes each
//! (`GROUP BY l_partkey, l_suppkey`).
//!
//! Each row's key is packed into one `u128` (first column's bits low, second column's high)
//! plus a two-bit NULL mask; a NULL value's bits are zero, so rows equal as SQL group keys
//! (NULLs equal) pack equal. Groups keep their packed key at their index and the hash table
//! holds 4-byte group indices, as in [`super::primitive_groups`]. Emitting the keys unpacks
//! the words back into two arrays of the original types.

use ahash::RandomState;
use arrow::array::{make_array, Array, ArrayData, ArrayRef};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow::datatypes::DataType;
use hashbrown::HashTable;

use super::packed_groups::fixed_width;
use super::primitive_groups::KeyTable;
use crate::error::{EngineError, Result};

/// Groups for key columns of types `first` and `second`, if both are integers, dates, times or
/// timestamps of at most 8 bytes.
pub(super) fn for_types(first: &DataType, second: &DataType) -> Option<Box<dyn KeyTable>> {
    let widths = [key_width(first)?, key_width(second)?];
    Some(Box::new(PairGroups {
        types: [first.clone(), second.clone()],
        widths,
        keys: Vec::new(),
        masks: Vec::new(),
        table: HashTable::new(),
        hasher: RandomState::with_seeds(0x5eed, 0x0c, 0xa11, 0x9e37),
        words: [Vec::new(), Vec::new()],
    }))
}

/// Bytes of one value of `t`, for the types whose equality is equality of their bits and that
/// take at most 8 bytes.
fn key_width(t: &DataType) -> Option<usize> {
    fixed_width(t).filter(|&width| width <= 8)
}

struct PairGroups {
    types: [DataType; 2],
    widths: [usize; 2],
    /// Group `g`'s packed key at index `g`.
    keys: Vec<u128>,
    /// Group `g`'s NULL mask (bit 0: first column NULL, bit 1: second).
    masks: Vec<u8>,
    table: HashTable<u32>,
    hasher: RandomState,
    /// Scratch: each input column's values as zero-extended words.
    words: [Vec<u64>; 2],
}

/// Append `array`'s values (of `width` bytes) to `out` as zero-extended words.
fn read_words(array: &ArrayRef, width: usize, out: &mut Vec<u64>) -> Result<()> {
    let data = array.to_data();
    let (offset, len) = (data.offset(), data.len());
    let buffer = data
        .buffers()
        .first()
        .ok_or_else(|| EngineError::Internal("a fixed-width array without values".into()))?;
    out.clear();
    match width {
        8 => out.extend_from_slice(&buffer.typed_data::<u64>()[offset..offset + len]),
        4 => out.extend(
            buffer.typed_data::<u32>()[offset..offset + len]
                .iter()
                .map(|&v| u64::from(v)),
        ),
        2 => out.extend(
            buffer.typed_data::<u16>()[offset..offset + len]
                .iter()
                .map(|&v| u64::from(v)),
        ),
        1 => out.extend(
            buffer.as_slice()[offset..offset + len]
                .iter()
                .map(|&v| u64::from(v)),
        ),
        _ => return Err(EngineError::Internal(format!("key width {width}"))),
    }
    Ok(())
}

/// An array of `data_type` (`width` bytes a value) from words and an optional null mask.
fn write_words(
    data_type: &DataType,
    width: usize,
    words: impl ExactSizeIterator<Item = u64>,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef> {
    let len = words.len();
    let values = match width {
        8 => Buffer::from_vec(words.collect::<Vec<u64>>()),
        4 => Buffer::from_vec(words.map(|w| w as u32).collect::<Vec<u32>>()),
        2 => Buffer::from_vec(words.map(|w| w as u16).collect::<Vec<u16>>()),
        1 => Buffer::from_vec(words.map(|w| w as u8).collect::<Vec<u8>>()),
        _ => return Err(EngineError::Internal(format!("key width {width}"))),
    };
    let data = ArrayData::builder(data_type.clone())
        .len(len)
        .add_buffer(values)
        .nulls(nulls)
        .build()?;
    Ok(make_array(data))
}

impl KeyTable for PairGroups {
    fn intern(&mut self, keys: &[ArrayRef], groups: &mut Vec<u32>) -> Result<()> {
        for (column, array) in keys.iter().enumerate() {
            if array.data_type() != &self.types[column] {
                return Err(EngineError::Execution(format!(
                    "group key of type {} where {} was planned",
                    array.data_type(),
                    self.types[column]
                )));
            }
            read_words(array, self.widths[column], &mut self.words[column])?;
        }
        let num_rows = keys[0].len();
        let nulls = [keys[0].logical_nulls(), keys[1].logical_nulls()];
        groups.clear();
        groups.reserve(num_rows);
        let Self {
            keys: stored,
            masks,
            table,
            hasher,
            words,
            ..
        } = self;
        table.reserve(num_rows, |&g| {
            hasher.hash_one((stored[g as usize], masks[g as usize]))
        });
        let mut previous: Option<(u128, u8, u32)> = None;
        let pairs = words[0][..num_rows].iter().zip(&words[1][..num_rows]);
        for (row, (&first, &second)) in pairs.enumerate() {
            let mut mask = 0u8;
            let mut key = 0u128;
            for (column, word) in [first, second].into_iter().enumerate() {
                if nulls[column].as_ref().is_some_and(|n| n.is_null(row)) {
                    mask |= 1 << column;
                } else {
                    key |= u128::from(word) << (64 * column);
                }
            }
            if let Some((k, m, group)) = previous {
                if k == key && m == mask {
                    groups.push(group);
                    continue;
                }
            }
            let hash = hasher.hash_one((key, mask));
            let found = table
                .find(hash, |&g| {
                    stored[g as usize] == key && masks[g as usize] == mask
                })
                .copied();
            let group = match found {
                Some(g) => g,
                None => {
                    let g = u32::try_from(stored.len()).map_err(|_| {
                        EngineError::Execution(
                            "a hash aggregate holds more than 2^32 groups".into(),
                        )
                    })?;
                    stored.push(key);
                    masks.push(mask);
                    table.insert_unique(hash, g, |&g| {
                        hasher.hash_one((stored[g as usize], masks[g as usize]))
                    });
                    g
                }
            };
            previous = Some((key, mask, group));
            groups.push(group);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        let keys = std::mem::take(&mut self.keys);
        let masks = std::mem::take(&mut self.masks);
        // Keep the table's allocation for the next round (see `primitive_groups`).
        self.table.clear();
        (0..2)
            .map(|column| {
                let nulls = masks.iter().any(|m| m & (1 << column) != 0).then(|| {
                    NullBuffer::new(BooleanBuffer::from_iter(
                        masks.iter().map(|m| m & (1 << column) == 0),
                    ))
                });
                let words = keys.iter().map(|k| (k >> (64 * column)) as u64);
                write_words(&self.types[column], self.widths[column], words, nulls)
            })
            .collect()
    }

    fn size(&self) -> usize {
        self.keys.capacity() * 16
            + self.masks.capacity()
            + self.table.allocation_size()
            + (self.words[0].capacity() + self.words[1].capacity()) * 8
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Int32Array, Int64Array, UInt8Array};

    use super::*;

    #[test]
    fn null_and_zero_are_different_keys_and_types_survive() {
        let mut groups = for_types(&DataType::Int64, &DataType::Int32).unwrap();
        let a: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(0),
            None,
            Some(0),
            Some(-5),
            Some(0),
            None,
        ]));
        let b: ArrayRef = Arc::new(Int32Array::from(vec![
            Some(0),
            Some(0),
            None,
            Some(-1),
            Some(0),
            Some(0),
        ]));
        let mut out = Vec::new();
        groups.intern(&[a.clone(), b.clone()], &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 2, 3, 0, 1]);
        // A sliced batch finds the same groups.
        groups
            .intern(&[a.slice(3, 3), b.slice(3, 3)], &mut out)
            .unwrap();
        assert_eq!(out, vec![3, 0, 1]);
        let keys = groups.take_keys().unwrap();
        let expected_a: ArrayRef =
            Arc::new(Int64Array::from(vec![Some(0), None, Some(0), Some(-5)]));
        let expected_b: ArrayRef =
            Arc::new(Int32Array::from(vec![Some(0), Some(0), None, Some(-1)]));
        assert_eq!(keys[0].as_ref(), expected_a.as_ref());
        assert_eq!(keys[1].as_ref(), expected_b.as_ref());
        assert_eq!(groups.len(), 0);
    }

    #[test]
    fn narrow_types_and_unsupported_ones() {
        let mut groups = for_types(&DataType::UInt8, &DataType::Date32).unwrap();
        let a: ArrayRef = Arc::new(UInt8Array::from(vec![255, 1, 255]));
        let b: ArrayRef = Arc::new(Date32Array::from(vec![7, 7, 7]));
        let mut out = Vec::new();
        groups.intern(&[a, b], &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 0]);
        let keys = groups.take_keys().unwrap();
        assert_eq!(
            keys[0].as_ref(),
            &UInt8Array::from(vec![255, 1]) as &dyn Array
        );
        assert_eq!(
            keys[1].as_ref(),
            &Date32Array::from(vec![7, 7]) as &dyn Array
        );
        assert!(for_types(&DataType::Int64, &DataType::Utf8View).is_none());
        assert!(for_types(&DataType::Decimal128(15, 2), &DataType::Int64).is_none());
        assert!(for_types(&DataType::Float64, &DataType::Int64).is_none());
    }
}
