//! Group indices for a single fixed-width key column (`GROUP BY l_orderkey`).
//!
//! The commonest large group-by has one integer, date or decimal key. Its groups need no row
//! encoding: the distinct values are kept in a `Vec` of the native type (group `g`'s value at
//! index `g`), and the hash table holds only group indices (4 bytes per entry, the hash is
//! recomputed from the value when the table grows). NULL keys form one group whose slot in the
//! `Vec` holds a placeholder and that is never entered in the table. Emitting the keys hands
//! the `Vec` to an Arrow array without a copy.
//!
//! Against the general path this saves the per-batch packing and the row-format copy of every
//! new key, and takes about 12 bytes per group instead of 60.

use std::hash::Hash;
use std::sync::Arc;

use ahash::RandomState;
use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Int16Type, Int32Type,
    Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use hashbrown::HashTable;

use crate::error::{EngineError, Result};

/// Groups of a few fixed-width key columns held by value (one column here, two in
/// [`super::pair_groups`]).
pub(super) trait KeyTable: Send {
    /// Assign a group index to every row of `keys` (the key columns), creating groups as
    /// needed.
    fn intern(&mut self, keys: &[ArrayRef], groups: &mut Vec<u32>) -> Result<()>;
    /// Number of groups.
    fn len(&self) -> usize;
    /// The key columns of all groups in group-index order; empties the table (keeping its
    /// capacity).
    fn take_keys(&mut self) -> Result<Vec<ArrayRef>>;
    /// Bytes held.
    fn size(&self) -> usize;
}

/// Groups for a key column of type `data_type`, if it is one this path handles.
pub(super) fn for_type(data_type: &DataType) -> Option<Box<dyn KeyTable>> {
    fn make<T>(data_type: &DataType) -> Option<Box<dyn KeyTable>>
    where
        T: ArrowPrimitiveType,
        T::Native: Hash + Eq,
    {
        Some(Box::new(TypedGroups::<T>::new(data_type.clone())))
    }
    match data_type {
        DataType::Int8 => make::<Int8Type>(data_type),
        DataType::Int16 => make::<Int16Type>(data_type),
        DataType::Int32 => make::<Int32Type>(data_type),
        DataType::Int64 => make::<Int64Type>(data_type),
        DataType::UInt8 => make::<UInt8Type>(data_type),
        DataType::UInt16 => make::<UInt16Type>(data_type),
        DataType::UInt32 => make::<UInt32Type>(data_type),
        DataType::UInt64 => make::<UInt64Type>(data_type),
        DataType::Date32 => make::<Date32Type>(data_type),
        DataType::Date64 => make::<Date64Type>(data_type),
        DataType::Decimal128(_, _) => make::<Decimal128Type>(data_type),
        DataType::Timestamp(TimeUnit::Second, _) => make::<TimestampSecondType>(data_type),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            make::<TimestampMillisecondType>(data_type)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            make::<TimestampMicrosecondType>(data_type)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => make::<TimestampNanosecondType>(data_type),
        _ => None,
    }
}

struct TypedGroups<T: ArrowPrimitiveType> {
    /// The key type (carries a decimal's precision or a timestamp's time zone).
    data_type: DataType,
    /// Group `g`'s key at index `g`; the NULL group's slot holds a placeholder.
    values: Vec<T::Native>,
    null_group: Option<u32>,
    /// Indices of the non-NULL groups, hashed by their value.
    table: HashTable<u32>,
    hasher: RandomState,
}

impl<T> TypedGroups<T>
where
    T: ArrowPrimitiveType,
    T::Native: Hash + Eq,
{
    fn new(data_type: DataType) -> Self {
        Self {
            data_type,
            values: Vec::new(),
            null_group: None,
            table: HashTable::new(),
            hasher: RandomState::with_seeds(0x5eed, 0x0c, 0xa11, 0x9e37),
        }
    }

    fn next_group(&self) -> Result<u32> {
        u32::try_from(self.values.len()).map_err(|_| {
            EngineError::Execution("a hash aggregate holds more than 2^32 groups".into())
        })
    }
}

impl<T> KeyTable for TypedGroups<T>
where
    T: ArrowPrimitiveType,
    T::Native: Hash + Eq,
{
    fn intern(&mut self, keys: &[ArrayRef], groups: &mut Vec<u32>) -> Result<()> {
        let keys = keys[0].as_primitive_opt::<T>().ok_or_else(|| {
            EngineError::Execution(format!(
                "group key of type {} where {} was planned",
                keys[0].data_type(),
                self.data_type
            ))
        })?;
        groups.clear();
        groups.reserve(keys.len());
        // Make room for the worst case up front (every row a new group), so that inserting
        // never rehashes in the middle of the loop.
        let Self {
            values,
            table,
            hasher,
            ..
        } = self;
        table.reserve(keys.len(), |&g| hasher.hash_one(values[g as usize]));
        let nulls = keys.logical_nulls();
        // Sorted or clustered input (a file written in key order) repeats a key over
        // consecutive rows: those rows reuse the previous row's group without a lookup.
        let mut previous: Option<(T::Native, u32)> = None;
        for (row, &value) in keys.values().iter().enumerate() {
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                let group = match self.null_group {
                    Some(g) => g,
                    None => {
                        let g = self.next_group()?;
                        self.values.push(T::Native::default());
                        self.null_group = Some(g);
                        g
                    }
                };
                groups.push(group);
                continue;
            }
            if let Some((key, group)) = previous {
                if key == value {
                    groups.push(group);
                    continue;
                }
            }
            let hash = self.hasher.hash_one(value);
            let found = {
                let values = &self.values;
                self.table
                    .find(hash, |&g| values[g as usize] == value)
                    .copied()
            };
            let group = match found {
                Some(g) => g,
                None => {
                    let g = self.next_group()?;
                    let values = &mut self.values;
                    values.push(value);
                    let hasher = &self.hasher;
                    self.table
                        .insert_unique(hash, g, |&g| hasher.hash_one(values[g as usize]));
                    g
                }
            };
            previous = Some((value, group));
            groups.push(group);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        let values = std::mem::take(&mut self.values);
        let nulls = self.null_group.take().map(|g| {
            let mut valid = vec![true; values.len()];
            valid[g as usize] = false;
            NullBuffer::new(BooleanBuffer::from(valid))
        });
        // Keep the table's allocation: a spilling aggregate fills it to about the same size
        // again, and growing it step by step (rehashing at every doubling) is costly.
        self.table.clear();
        Ok(vec![Arc::new(
            PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls)
                .with_data_type(self.data_type.clone()),
        )])
    }

    fn size(&self) -> usize {
        // `allocation_size` counts every bucket and its control byte: `capacity()` is only
        // the 7/8 of the buckets that may be filled.
        self.values.capacity() * std::mem::size_of::<T::Native>() + self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Date32Array, Decimal128Array, Int64Array};

    use super::*;

    #[test]
    fn nulls_form_one_group_apart_from_the_placeholder_value() {
        let mut groups = for_type(&DataType::Int64).unwrap();
        let mut out = Vec::new();
        // 0 is the placeholder stored in the NULL group's slot: it must get its own group.
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(0), Some(7), None]));
        groups
            .intern(std::slice::from_ref(&keys), &mut out)
            .unwrap();
        assert_eq!(out, vec![0, 1, 2, 0]);
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), Some(0), None, Some(9)]));
        groups.intern(&[keys.slice(0, 4)], &mut out).unwrap();
        assert_eq!(out, vec![2, 1, 0, 3]);
        assert_eq!(groups.len(), 4);
        let keys = groups.take_keys().unwrap().remove(0);
        let expected: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(0), Some(7), Some(9)]));
        assert_eq!(keys.as_ref(), expected.as_ref());
        assert_eq!(groups.len(), 0);
    }

    #[test]
    fn keeps_the_key_type_and_reads_sliced_input() {
        let decimal = DataType::Decimal128(15, 2);
        let mut groups = for_type(&decimal).unwrap();
        let keys: ArrayRef = Arc::new(
            Decimal128Array::from(vec![5, 6, 5, 7])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        let mut out = Vec::new();
        groups.intern(&[keys.slice(1, 3)], &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(groups.take_keys().unwrap()[0].data_type(), &decimal);

        let mut dates = for_type(&DataType::Date32).unwrap();
        let keys: ArrayRef = Arc::new(Date32Array::from(vec![1, 1, 2]));
        dates.intern(&[keys], &mut out).unwrap();
        assert_eq!(out, vec![0, 0, 1]);
        // A column of another type than planned is an error, not a panic.
        let wrong: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(dates.intern(&[wrong], &mut out).is_err());
    }

    #[test]
    fn many_groups_survive_table_growth() {
        let mut groups = for_type(&DataType::Int64).unwrap();
        let mut out = Vec::new();
        for round in 0..2 {
            for chunk in 0..10u32 {
                let keys: ArrayRef = Arc::new(Int64Array::from_iter_values(
                    (0..10_000).map(|i| i64::from(chunk * 10_000 + i) * 7919 % 100_003),
                ));
                groups
                    .intern(std::slice::from_ref(&keys), &mut out)
                    .unwrap();
                if round == 1 {
                    // The second pass finds every key's group from the first.
                    let expected: Vec<u32> = (0..10_000).map(|i| chunk * 10_000 + i).collect();
                    assert_eq!(out, expected);
                }
            }
        }
        assert_eq!(groups.len(), 100_000);
    }
}
