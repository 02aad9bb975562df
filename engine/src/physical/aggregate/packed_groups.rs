//! Group indices for keys of several fixed-width or string columns
//! (`GROUP BY p_brand, p_type, p_size, ps_suppkey`), and for a single string column.
//!
//! Each group's key is stored as a few bytes of fixed width: a NULL mask for the fixed-width
//! columns, then every column's value in its own width (4 bytes for an `Int32`, 16 for a
//! `Decimal128`, one for a boolean), with each string replaced by its 4-byte id in the column's
//! [`Interner`]. Keys are hashed and compared as plain byte slices, and the hash table holds
//! group indices only (the hash is recomputed from the key when the table grows).
//!
//! Against Arrow's row format this stores each distinct string once instead of once a group,
//! and takes neither the row encoding's per-value overhead nor a cached hash per entry: TPC-H
//! Q16's inner group-by takes about 30 bytes a group instead of about 100. A single string
//! column needs no packed key at all: its interned id is the group index.

use std::sync::Arc;

use ahash::RandomState;
use arrow::array::{make_array, Array, ArrayData, ArrayRef, AsArray, BooleanArray};
use arrow::buffer::{BooleanBuffer, MutableBuffer, NullBuffer};
use arrow::datatypes::DataType;
use hashbrown::HashTable;

use super::interner::{intern_array, internable, Interner};
use super::primitive_groups::KeyTable;
use crate::error::{EngineError, Result};

/// Groups for key columns of `types`, if every one is a fixed-width type whose equality is
/// equality of its bits, a boolean or a string or binary type.
pub(super) fn for_types(types: &[DataType]) -> Option<Box<dyn KeyTable>> {
    if let [only] = types {
        if internable(only) {
            return Some(Box::new(StringGroups {
                data_type: only.clone(),
                interner: Interner::new(),
            }));
        }
    }
    let columns = types
        .iter()
        .map(|t| {
            if internable(t) {
                Some(Column::Interned(Interner::new()))
            } else if t == &DataType::Boolean {
                Some(Column::Boolean)
            } else {
                fixed_width(t).map(|width| Column::Fixed { width })
            }
        })
        .collect::<Option<Vec<_>>>()?;
    if columns.is_empty() {
        return None;
    }
    let mask_bytes = types.len().div_ceil(8);
    let mut offsets = Vec::with_capacity(columns.len());
    let mut stride = mask_bytes;
    for column in &columns {
        offsets.push(stride);
        stride += column.width();
    }
    Some(Box::new(PackedGroups {
        types: types.to_vec(),
        columns,
        offsets,
        stride,
        keys: Vec::new(),
        len: 0,
        table: HashTable::new(),
        hasher: RandomState::with_seeds(0x5eed, 0x0c, 0xa11, 0x9e37),
        scratch: Vec::new(),
    }))
}

/// Bytes of one value of `t`, for the fixed-width types whose equality is equality of bits.
pub(super) fn fixed_width(t: &DataType) -> Option<usize> {
    let fixed = t.is_integer()
        || matches!(
            t,
            DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Timestamp(_, _)
                | DataType::Duration(_)
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _)
        );
    fixed.then(|| t.primitive_width()).flatten()
}

/// How one key column is stored in a packed key.
enum Column {
    /// Its values' bytes, `width` of them.
    Fixed { width: usize },
    /// One byte, 0 or 1.
    Boolean,
    /// The value's 4-byte id.
    Interned(Interner),
}

impl Column {
    fn width(&self) -> usize {
        match self {
            Column::Fixed { width } => *width,
            Column::Boolean => 1,
            Column::Interned(_) => 4,
        }
    }
}

struct PackedGroups {
    types: Vec<DataType>,
    columns: Vec<Column>,
    /// Where each column's bytes start in a key (the NULL mask comes first).
    offsets: Vec<usize>,
    /// Bytes of one key.
    stride: usize,
    /// Group `g`'s key at `g * stride`.
    keys: Vec<u8>,
    len: usize,
    /// Group indices, hashed by their key.
    table: HashTable<u32>,
    hasher: RandomState,
    /// The current batch's keys.
    scratch: Vec<u8>,
}

fn type_error(found: &DataType, planned: &DataType) -> EngineError {
    EngineError::Execution(format!(
        "group key of type {found} where {planned} was planned"
    ))
}

/// Group `g`'s key in `stored`.
#[inline]
fn key_at(stored: &[u8], stride: usize, g: u32) -> &[u8] {
    let at = g as usize * stride;
    &stored[at..at + stride]
}

/// Copy the `W`-byte values of `values` (one a row) into each row's key at `offset`.
fn copy_fixed<const W: usize>(values: &[u8], out: &mut [u8], stride: usize, offset: usize) {
    for (row, value) in values.chunks_exact(W).enumerate() {
        let at = row * stride + offset;
        out[at..at + W].copy_from_slice(value);
    }
}

impl PackedGroups {
    /// Write every row's key for `keys` into `scratch`.
    fn pack(&mut self, keys: &[ArrayRef], num_rows: usize) -> Result<()> {
        let stride = self.stride;
        let out = &mut self.scratch;
        out.clear();
        out.resize(num_rows * stride, 0);
        for (column, ((array, kind), &offset)) in keys
            .iter()
            .zip(&mut self.columns)
            .zip(&self.offsets)
            .enumerate()
        {
            if array.data_type() != &self.types[column] {
                return Err(type_error(array.data_type(), &self.types[column]));
            }
            match kind {
                Column::Interned(interner) => {
                    intern_array(interner, array.as_ref(), |row, id| {
                        let at = row * stride + offset;
                        out[at..at + 4].copy_from_slice(&id.to_le_bytes());
                    })?;
                    // NULL has an id of its own: no mask bit is needed.
                    continue;
                }
                Column::Boolean => {
                    let values = array.as_boolean().values();
                    for row in 0..num_rows {
                        out[row * stride + offset] = u8::from(values.value(row));
                    }
                }
                Column::Fixed { width } => {
                    let width = *width;
                    let data = array.to_data();
                    let buffer = data.buffers().first().ok_or_else(|| {
                        EngineError::Internal("a fixed-width array without values".into())
                    })?;
                    let start = data.offset() * width;
                    let values = &buffer.as_slice()[start..start + num_rows * width];
                    match width {
                        1 => copy_fixed::<1>(values, out, stride, offset),
                        2 => copy_fixed::<2>(values, out, stride, offset),
                        4 => copy_fixed::<4>(values, out, stride, offset),
                        8 => copy_fixed::<8>(values, out, stride, offset),
                        16 => copy_fixed::<16>(values, out, stride, offset),
                        32 => copy_fixed::<32>(values, out, stride, offset),
                        _ => return Err(EngineError::Internal(format!("key width {width}"))),
                    }
                }
            }
            // A NULL's value bytes are zeroed, so keys equal as SQL groups (NULLs equal) are
            // equal bytes.
            if let Some(nulls) = array.logical_nulls().filter(|n| n.null_count() > 0) {
                let width = kind.width();
                for row in (0..num_rows).filter(|&row| nulls.is_null(row)) {
                    let at = row * stride;
                    out[at + offset..at + offset + width].fill(0);
                    out[at + column / 8] |= 1 << (column % 8);
                }
            }
        }
        Ok(())
    }
}

impl KeyTable for PackedGroups {
    fn intern(&mut self, keys: &[ArrayRef], groups: &mut Vec<u32>) -> Result<()> {
        if keys.len() != self.columns.len() {
            return Err(EngineError::Internal(format!(
                "{} group key columns where {} were planned",
                keys.len(),
                self.columns.len()
            )));
        }
        let num_rows = keys[0].len();
        self.pack(keys, num_rows)?;
        groups.clear();
        groups.reserve(num_rows);
        let Self {
            keys: stored,
            len,
            table,
            hasher,
            scratch,
            stride,
            ..
        } = self;
        let stride = *stride;
        // Room for the worst case (every row a new group), so that the loop never rehashes.
        table.reserve(num_rows, |&g| hasher.hash_one(key_at(stored, stride, g)));
        for key in scratch.chunks_exact(stride) {
            let hash = hasher.hash_one(key);
            let found = table
                .find(hash, |&g| key_at(stored, stride, g) == key)
                .copied();
            let group = match found {
                Some(g) => g,
                None => {
                    let g = u32::try_from(*len).map_err(|_| {
                        EngineError::Execution(
                            "a hash aggregate holds more than 2^32 groups".into(),
                        )
                    })?;
                    stored.extend_from_slice(key);
                    *len += 1;
                    table.insert_unique(hash, g, |&g| hasher.hash_one(key_at(stored, stride, g)));
                    g
                }
            };
            groups.push(group);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.len
    }

    fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        let (n, stride) = (self.len, self.stride);
        // The keys and the strings go to the output; only the table's allocation is kept for
        // the next round (a spilling aggregate fills it to about the same size again).
        let keys = std::mem::take(&mut self.keys);
        self.len = 0;
        self.table.clear();
        let keys = &keys[..n * stride];
        let mut out = Vec::with_capacity(self.columns.len());
        for (column, (kind, &offset)) in self.columns.iter_mut().zip(&self.offsets).enumerate() {
            let data_type = &self.types[column];
            let nulls = || {
                let is_valid = |key: &[u8]| key[column / 8] & (1 << (column % 8)) == 0;
                let valid = BooleanBuffer::from_iter(keys.chunks_exact(stride).map(is_valid));
                Some(NullBuffer::new(valid)).filter(|n| n.null_count() > 0)
            };
            let array: ArrayRef = match kind {
                Column::Interned(interner) => {
                    let ids: Vec<u32> = keys
                        .chunks_exact(stride)
                        .map(|k| {
                            let mut id = [0u8; 4];
                            id.copy_from_slice(&k[offset..offset + 4]);
                            u32::from_le_bytes(id)
                        })
                        .collect();
                    std::mem::take(interner).into_array(&ids, data_type)?
                }
                Column::Boolean => {
                    let values =
                        BooleanBuffer::from_iter(keys.chunks_exact(stride).map(|k| k[offset] != 0));
                    Arc::new(BooleanArray::new(values, nulls()))
                }
                Column::Fixed { width } => {
                    let width = *width;
                    let mut values = MutableBuffer::with_capacity(n * width);
                    for key in keys.chunks_exact(stride) {
                        values.extend_from_slice(&key[offset..offset + width]);
                    }
                    let data = ArrayData::builder(data_type.clone())
                        .len(n)
                        .add_buffer(values.into())
                        .nulls(nulls())
                        .build()?;
                    make_array(data)
                }
            };
            out.push(array);
        }
        Ok(out)
    }

    fn size(&self) -> usize {
        let interned: usize = self
            .columns
            .iter()
            .map(|c| match c {
                Column::Interned(interner) => interner.size(),
                _ => 0,
            })
            .sum();
        self.keys.capacity() + self.table.allocation_size() + self.scratch.capacity() + interned
    }
}

/// A single string or binary key column: the interned id is the group index.
struct StringGroups {
    data_type: DataType,
    interner: Interner,
}

impl KeyTable for StringGroups {
    fn intern(&mut self, keys: &[ArrayRef], groups: &mut Vec<u32>) -> Result<()> {
        let [array] = keys else {
            return Err(EngineError::Internal(format!(
                "{} group key columns where one was planned",
                keys.len()
            )));
        };
        if array.data_type() != &self.data_type {
            return Err(type_error(array.data_type(), &self.data_type));
        }
        groups.clear();
        groups.reserve(array.len());
        intern_array(&mut self.interner, array.as_ref(), |_, id| groups.push(id))
    }

    fn len(&self) -> usize {
        self.interner.len()
    }

    fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        let interner = std::mem::take(&mut self.interner);
        let values = match self.data_type {
            // The strings' bytes become the output's buffer.
            DataType::Utf8View | DataType::BinaryView => {
                let ids: Vec<u32> = (0..interner.len() as u32).collect();
                interner.into_array(&ids, &self.data_type)?
            }
            _ => interner.values(&self.data_type)?,
        };
        Ok(vec![values])
    }

    fn size(&self) -> usize {
        self.interner.size()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Date32Array, Decimal128Array, Int32Array, Int64Array, StringArray, StringViewArray,
        UInt32Array,
    };

    use super::*;

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringViewArray::from(values.to_vec()))
    }

    #[test]
    fn mixed_columns_group_by_value_with_nulls_apart_from_zero_and_empty() {
        let types = [
            DataType::Utf8View,
            DataType::Int32,
            DataType::Decimal128(15, 2),
            DataType::Boolean,
        ];
        let mut groups = for_types(&types).unwrap();
        let a = strings(&[
            Some("a string longer than twelve bytes"),
            None,
            Some(""),
            Some("a string longer than twelve bytes"),
            None,
            Some(""),
        ]);
        let b: ArrayRef = Arc::new(Int32Array::from(vec![
            Some(0),
            Some(0),
            None,
            Some(0),
            Some(0),
            None,
        ]));
        let c: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(5), Some(5), Some(5), Some(5), Some(5), None])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        let d: ArrayRef = Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(true),
            Some(false),
            Some(true),
            Some(true),
            Some(false),
        ]));
        let mut out = Vec::new();
        groups
            .intern(&[a.clone(), b.clone(), c.clone(), d.clone()], &mut out)
            .unwrap();
        assert_eq!(out, vec![0, 1, 2, 0, 1, 3]);
        // A sliced batch finds the same groups.
        groups
            .intern(
                &[a.slice(3, 3), b.slice(3, 3), c.slice(3, 3), d.slice(3, 3)],
                &mut out,
            )
            .unwrap();
        assert_eq!(out, vec![0, 1, 3]);
        assert_eq!(groups.len(), 4);
        let keys = groups.take_keys().unwrap();
        let take = |array: &ArrayRef| {
            arrow::compute::take(array.as_ref(), &UInt32Array::from(vec![0, 1, 2, 5]), None)
                .unwrap()
        };
        for (got, input) in keys.iter().zip([a, b, c, d]) {
            assert_eq!(got.as_ref(), take(&input).as_ref());
        }
        assert_eq!(keys[2].data_type(), &DataType::Decimal128(15, 2));
        assert_eq!(groups.len(), 0);
        // The table starts over after `take_keys`.
        let again = [
            strings(&[Some("z")]),
            Arc::new(Int32Array::from(vec![1])) as ArrayRef,
            Arc::new(
                Decimal128Array::from(vec![1])
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
            Arc::new(BooleanArray::from(vec![false])),
        ];
        groups.intern(&again, &mut out).unwrap();
        assert_eq!(out, vec![0]);
        assert_eq!(
            groups.take_keys().unwrap()[0].as_string_view().value(0),
            "z"
        );
    }

    #[test]
    fn many_groups_survive_table_growth() {
        let types = [DataType::Utf8, DataType::Int64, DataType::Date32];
        let mut groups = for_types(&types).unwrap();
        let mut out = Vec::new();
        for round in 0..2 {
            for chunk in 0..10i64 {
                let ids: Vec<i64> = (0..10_000).map(|i| chunk * 10_000 + i).collect();
                let names: ArrayRef = Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| format!("name {}", i % 97)),
                ));
                let numbers: ArrayRef = Arc::new(Int64Array::from(ids.clone()));
                let days: ArrayRef = Arc::new(Date32Array::from_iter_values(
                    ids.iter().map(|i| (i % 3) as i32),
                ));
                groups.intern(&[names, numbers, days], &mut out).unwrap();
                if round == 1 {
                    let expected: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
                    assert_eq!(out, expected);
                }
            }
        }
        assert_eq!(groups.len(), 100_000);
        let keys = groups.take_keys().unwrap();
        assert_eq!(keys[0].as_string::<i32>().value(99_999), "name 89");
        assert_eq!(
            keys[1]
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(5),
            5
        );
    }

    #[test]
    fn a_single_string_column_uses_its_ids_as_groups() {
        let mut groups = for_types(&[DataType::Utf8View]).unwrap();
        let mut out = Vec::new();
        let keys = strings(&[Some("b"), None, Some("b"), Some("a"), None]);
        groups.intern(&[keys], &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 0, 2, 1]);
        let keys = groups.take_keys().unwrap();
        assert_eq!(
            keys[0].as_ref(),
            strings(&[Some("b"), None, Some("a")]).as_ref()
        );
        // A column of another type than planned is an error, not a panic.
        let wrong: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(groups
            .intern(std::slice::from_ref(&wrong), &mut out)
            .is_err());
        let mut pair = for_types(&[DataType::Utf8View, DataType::Int64]).unwrap();
        assert!(pair.intern(&[wrong.clone(), wrong], &mut out).is_err());
    }

    #[test]
    fn floats_and_nested_types_are_left_to_the_row_format() {
        assert!(for_types(&[DataType::Float64, DataType::Int64]).is_none());
        assert!(for_types(&[]).is_none());
        let list = DataType::new_list(DataType::Int32, true);
        assert!(for_types(&[DataType::Utf8, list]).is_none());
    }
}
