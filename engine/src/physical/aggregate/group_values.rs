//! Group keys → dense group indices.
//!
//! A single key column of a fixed-width type (integers, dates, timestamps, decimals) has a
//! path of its own, [`super::primitive_groups`]: its values are the groups. So do two key
//! columns of at most 8 bytes each ([`super::pair_groups`]), packed into one 128-bit word. Otherwise two
//! representations share one hash table of `(hash, group index)` entries:
//!
//! * **Packed keys** (fast path): when every key column is a fixed-width value (integers, dates,
//!   timestamps, decimals, booleans) or a string view short enough to be stored inline (≤ 12
//!   bytes), each row's key is a few `u128` words: one per column plus a null mask. Hashing and
//!   comparing words is much cheaper than building byte strings.
//! * **Row format** (general path): any key types, encoded with Arrow's row format.
//!
//! Whatever the path, every group's key is also appended (a batch at a time) to a [`Rows`]
//! buffer, which converts back to arrays at the end. The first batch that does not fit the
//! packed layout (say, a 20-byte string) switches the operator to the general path for good,
//! re-hashing the groups seen so far.

use ahash::RandomState;
use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Int16Type, Int32Type, Int64Type, Int8Type,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::HashTable;

use super::pair_groups;
use super::primitive_groups::{self, PrimitiveGroups};
use crate::error::Result;

/// The distinct group keys seen so far.
pub struct GroupValues {
    /// The single fixed-width key column's groups, when that is the key.
    primitive: Option<Box<dyn PrimitiveGroups>>,
    converter: Option<RowConverter>,
    rows: Option<Rows>,
    table: HashTable<(u64, u32)>,
    hasher: RandomState,
    num_groups: usize,
    /// Packed keys of every group (stride `columns + 1`) while the fast path is in use.
    packed: Option<Vec<u128>>,
    columns: usize,
    scratch: Vec<u128>,
    new_groups: Vec<u32>,
}

/// Whether a key type can ever use the packed layout.
fn packable_type(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Date32
                | DataType::Date64
                | DataType::Decimal128(_, _)
                | DataType::Boolean
                | DataType::Utf8View
        )
        || matches!(t, DataType::Timestamp(_, _))
}

/// Write column `array`'s values as words into `out[row * stride + column]`; false if some value
/// does not fit (a long string).
fn pack_column(array: &ArrayRef, column: usize, stride: usize, out: &mut [u128]) -> bool {
    macro_rules! prim {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            for (row, v) in a.values().iter().enumerate() {
                out[row * stride + column] = *v as u128;
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Date32 => prim!(Date32Type),
        DataType::Date64 => prim!(Date64Type),
        DataType::Decimal128(_, _) => prim!(Decimal128Type),
        DataType::Timestamp(_, _) => {
            // Every timestamp unit stores i64 values; read them without a typed downcast
            // (which would be unit-specific).
            let data = array.to_data();
            let values = &data.buffers()[0].typed_data::<i64>()[data.offset()..][..data.len()];
            for (row, v) in values.iter().enumerate() {
                out[row * stride + column] = *v as u128;
            }
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            for row in 0..a.len() {
                out[row * stride + column] = a.value(row) as u128;
            }
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            for (row, view) in a.views().iter().enumerate() {
                // Inline views (length ≤ 12) hold the whole string: the view is the value.
                if (*view as u32) > 12 && a.is_valid(row) {
                    return false;
                }
                out[row * stride + column] = *view;
            }
        }
        _ => return false,
    }
    true
}

impl GroupValues {
    /// Groups keyed by columns of `types` (no types: a single global group).
    pub fn try_new(types: &[DataType]) -> Result<Self> {
        let (converter, rows) = if types.is_empty() {
            (None, None)
        } else {
            let converter =
                RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?;
            let rows = converter.empty_rows(1024, 16 * 1024);
            (Some(converter), Some(rows))
        };
        let packed = (!types.is_empty() && types.iter().all(packable_type)).then(Vec::new);
        let primitive = match types {
            [only] => primitive_groups::for_type(only),
            [first, second] => pair_groups::for_types(first, second),
            _ => None,
        };
        Ok(Self {
            primitive,
            converter,
            rows,
            table: HashTable::new(),
            hasher: RandomState::with_seeds(0x5eed, 0x0c, 0xa11, 0x9e37),
            num_groups: 0,
            packed,
            columns: types.len(),
            scratch: Vec::new(),
            new_groups: Vec::new(),
        })
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        match &self.primitive {
            Some(p) => p.len(),
            None => self.num_groups,
        }
    }

    /// Whether an emptied table may be used again as is (the single-column path keeps its
    /// hash table's capacity; the general path's state must be rebuilt).
    pub fn reusable(&self) -> bool {
        self.primitive.is_some()
    }

    /// True when no group exists yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Assign a group index to every row of `keys` (creating groups as needed).
    pub fn intern(
        &mut self,
        keys: &[ArrayRef],
        num_rows: usize,
        groups: &mut Vec<u32>,
    ) -> Result<()> {
        groups.clear();
        if let Some(primitive) = &mut self.primitive {
            return primitive.intern(keys, groups);
        }
        if self.converter.is_none() {
            self.num_groups = 1;
            groups.resize(num_rows, 0);
            return Ok(());
        }
        if self.packed.is_some() {
            if self.pack(keys, num_rows) {
                return self.intern_packed(keys, num_rows, groups);
            }
            self.switch_to_rows();
        }
        self.intern_rows(keys, num_rows, groups)
    }

    fn pack(&mut self, keys: &[ArrayRef], num_rows: usize) -> bool {
        let stride = self.columns + 1;
        self.scratch.clear();
        self.scratch.resize(num_rows * stride, 0);
        for (column, array) in keys.iter().enumerate() {
            if !pack_column(array, column, stride, &mut self.scratch) {
                return false;
            }
            if let Some(nulls) = array.logical_nulls() {
                for row in 0..num_rows {
                    if nulls.is_null(row) {
                        self.scratch[row * stride + column] = 0;
                        self.scratch[row * stride + self.columns] |= 1 << column;
                    }
                }
            }
        }
        true
    }

    fn intern_packed(
        &mut self,
        keys: &[ArrayRef],
        num_rows: usize,
        groups: &mut Vec<u32>,
    ) -> Result<()> {
        let stride = self.columns + 1;
        let packed = self.packed.as_mut().expect("packed mode");
        let table = &mut self.table;
        self.new_groups.clear();
        groups.reserve(num_rows);
        for row in 0..num_rows {
            let key = &self.scratch[row * stride..(row + 1) * stride];
            let hash = self.hasher.hash_one(key);
            let found = table.find(hash, |&(h, g)| {
                h == hash && &packed[g as usize * stride..(g as usize + 1) * stride] == key
            });
            let group = match found {
                Some(&(_, g)) => g,
                None => {
                    let g = self.num_groups as u32;
                    packed.extend_from_slice(key);
                    table.insert_unique(hash, (hash, g), |&(h, _)| h);
                    self.num_groups += 1;
                    self.new_groups.push(row as u32);
                    g
                }
            };
            groups.push(group);
        }
        if !self.new_groups.is_empty() {
            // Keep the row-format copy of the new keys for output (and a later switch).
            let indices = UInt32Array::from(std::mem::take(&mut self.new_groups));
            let new_keys = keys
                .iter()
                .map(|k| arrow::compute::take(k.as_ref(), &indices, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            if let (Some(converter), Some(rows)) = (&self.converter, &mut self.rows) {
                converter.append(rows, &new_keys)?;
            }
            self.new_groups = indices.values().to_vec();
            self.new_groups.clear();
        }
        Ok(())
    }

    /// Leave the packed path for good: re-hash every group by its row-format bytes.
    fn switch_to_rows(&mut self) {
        self.packed = None;
        self.table = HashTable::with_capacity(self.num_groups);
        if let Some(rows) = &self.rows {
            for (g, row) in rows.iter().enumerate() {
                let hash = self.hasher.hash_one(row.as_ref());
                self.table
                    .insert_unique(hash, (hash, g as u32), |&(h, _)| h);
            }
        }
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
    pub fn ensure_global_group(&mut self) {
        if self.converter.is_none() {
            self.num_groups = 1;
        }
    }

    /// The key columns of all groups in group-index order; resets the table.
    pub fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        if let Some(primitive) = &mut self.primitive {
            return primitive.take_keys();
        }
        self.table = HashTable::new();
        if self.converter.is_some() {
            self.num_groups = 0;
        }
        if let Some(packed) = &mut self.packed {
            packed.clear();
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
    pub fn size(&self) -> usize {
        if let Some(primitive) = &self.primitive {
            return primitive.size();
        }
        self.table.allocation_size()
            + self.rows.as_ref().map_or(0, |r| r.size())
            + self.packed.as_ref().map_or(0, |p| p.capacity() * 16)
            + self.scratch.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringViewArray};

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

    #[test]
    fn packed_and_row_paths_agree_and_switch_midway() {
        let types = [DataType::Utf8View, DataType::Int64];
        let short: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![
                Some("a"),
                None,
                Some("a"),
                Some("b"),
            ])),
            Arc::new(Int64Array::from(vec![Some(1), Some(1), Some(1), None])),
        ];
        let long: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![
                Some("a much longer string value"),
                Some("a"),
                None,
            ])),
            Arc::new(Int64Array::from(vec![Some(1), Some(1), Some(1)])),
        ];
        let mut gv = GroupValues::try_new(&types).unwrap();
        let got = intern_all(&mut gv, &[short.clone(), long.clone(), short.clone()]);
        assert_eq!(got, vec![0, 1, 0, 2, 3, 0, 1, 0, 1, 0, 2]);
        let keys = gv.take_keys().unwrap();
        assert_eq!(keys[0].len(), 4);
        let strings = keys[0].as_string_view();
        assert_eq!(strings.value(3), "a much longer string value");
        assert!(strings.is_null(1));
        assert!(keys[1].is_null(2));
    }

    #[test]
    fn timestamp_keys_of_every_unit_take_the_packed_path() {
        use arrow::array::{TimestampMillisecondArray, TimestampNanosecondArray};
        for ts in [
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(5),
                None,
                Some(5),
                Some(7),
            ])) as ArrayRef,
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(5),
                None,
                Some(5),
                Some(7),
            ])),
        ] {
            // Two key columns, so the single-column path does not take them.
            let other: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 1, 1]));
            let types = [ts.data_type().clone(), DataType::Int64];
            let mut gv = GroupValues::try_new(&types).unwrap();
            // A sliced input: the values start at the slice's offset.
            let got = intern_all(
                &mut gv,
                &[
                    vec![ts.clone(), other.clone()],
                    vec![ts.slice(1, 3), other.slice(1, 3)],
                ],
            );
            assert_eq!(got, vec![0, 1, 0, 2, 1, 0, 2]);
            assert!(gv.packed.is_some(), "{}", ts.data_type());
            let out = gv.take_keys().unwrap();
            let expected =
                arrow::compute::take(ts.as_ref(), &UInt32Array::from(vec![0, 1, 3]), None).unwrap();
            assert_eq!(out[0].as_ref(), expected.as_ref());
        }
    }
}
