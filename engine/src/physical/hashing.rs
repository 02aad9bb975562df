//! Row hashes of key columns, for splitting rows by key: the exchange between a partial and a
//! final aggregate ([`super::repartition`]) and an aggregate's spill partitions.
//!
//! Rows whose keys are equal as SQL group keys (NULLs equal) get equal hashes; nothing else is
//! promised, so each column is hashed in whatever way is cheapest:
//!
//! * integers, dates, times, timestamps and decimals by value;
//! * strings and binaries by their bytes;
//! * anything else (floats, whose `-0.0`/`NaN` need the row format's normalization; booleans,
//!   dictionaries, nested types) through Arrow's row encoding of all the key columns.
//!
//! With several key columns the per-column hashes are folded together row by row. NULL gets a
//! fixed hash of its own in every column. The path taken depends only on the key types, so
//! every batch of one stream is hashed the same way.

use std::hash::Hash;

use ahash::RandomState;
use arrow::array::{Array, ArrayRef, AsArray, GenericByteArray};
use arrow::datatypes::{
    ArrowPrimitiveType, ByteArrayType, DataType, Date32Type, Date64Type, Decimal128Type, Int16Type,
    Int32Type, Int64Type, Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::row::{RowConverter, SortField};

use crate::error::{EngineError, Result};

/// The hash of a NULL key value (any fixed value works: all NULLs of a column are one key).
const NULL_HASH: u64 = 0x6e75_6c6c;

/// One hash per row of `columns` (all of one length).
pub(crate) fn hash_columns(columns: &[ArrayRef], state: &RandomState) -> Result<Vec<u64>> {
    let Some((first, rest)) = columns.split_first() else {
        return Ok(Vec::new());
    };
    if columns.iter().all(|c| hashes_directly(c.data_type())) {
        let mut hashes = vec![0u64; first.len()];
        hash_column(first, state, &mut hashes, false)?;
        for column in rest {
            hash_column(column, state, &mut hashes, true)?;
        }
        return Ok(hashes);
    }
    let converter = RowConverter::new(
        columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(columns)?;
    Ok(rows.iter().map(|r| state.hash_one(r.as_ref())).collect())
}

/// Whether [`hash_column`] handles columns of type `t`.
fn hashes_directly(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Timestamp(_, _)
                | DataType::Decimal128(_, _)
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
        )
}

/// Hash every value of `column` into `hashes`: set them, or (`combine`) fold them into the
/// hashes of the columns before.
fn hash_column(
    column: &ArrayRef,
    state: &RandomState,
    hashes: &mut [u64],
    combine: bool,
) -> Result<()> {
    match column.data_type() {
        DataType::Int8 => by_value::<Int8Type>(column, state, hashes, combine),
        DataType::Int16 => by_value::<Int16Type>(column, state, hashes, combine),
        DataType::Int32 => by_value::<Int32Type>(column, state, hashes, combine),
        DataType::Int64 => by_value::<Int64Type>(column, state, hashes, combine),
        DataType::UInt8 => by_value::<UInt8Type>(column, state, hashes, combine),
        DataType::UInt16 => by_value::<UInt16Type>(column, state, hashes, combine),
        DataType::UInt32 => by_value::<UInt32Type>(column, state, hashes, combine),
        DataType::UInt64 => by_value::<UInt64Type>(column, state, hashes, combine),
        DataType::Date32 => by_value::<Date32Type>(column, state, hashes, combine),
        DataType::Date64 => by_value::<Date64Type>(column, state, hashes, combine),
        DataType::Decimal128(_, _) => by_value::<Decimal128Type>(column, state, hashes, combine),
        DataType::Time32(TimeUnit::Second) => {
            by_value::<Time32SecondType>(column, state, hashes, combine)
        }
        DataType::Time32(_) => by_value::<Time32MillisecondType>(column, state, hashes, combine),
        DataType::Time64(TimeUnit::Microsecond) => {
            by_value::<Time64MicrosecondType>(column, state, hashes, combine)
        }
        DataType::Time64(_) => by_value::<Time64NanosecondType>(column, state, hashes, combine),
        DataType::Timestamp(TimeUnit::Second, _) => {
            by_value::<TimestampSecondType>(column, state, hashes, combine)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            by_value::<TimestampMillisecondType>(column, state, hashes, combine)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            by_value::<TimestampMicrosecondType>(column, state, hashes, combine)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            by_value::<TimestampNanosecondType>(column, state, hashes, combine)
        }
        DataType::Utf8 => by_bytes(column.as_string::<i32>(), state, hashes, combine),
        DataType::LargeUtf8 => by_bytes(column.as_string::<i64>(), state, hashes, combine),
        DataType::Binary => by_bytes(column.as_binary::<i32>(), state, hashes, combine),
        DataType::LargeBinary => by_bytes(column.as_binary::<i64>(), state, hashes, combine),
        DataType::Utf8View => {
            let a = column.as_string_view();
            by_slice(hashes, state, combine, |r| {
                a.is_valid(r).then(|| a.value(r).as_bytes())
            })
        }
        DataType::BinaryView => {
            let a = column.as_binary_view();
            by_slice(hashes, state, combine, |r| {
                a.is_valid(r).then(|| a.value(r))
            })
        }
        other => {
            return Err(EngineError::Internal(format!(
                "key columns of type {other} cannot be hashed by value"
            )))
        }
    }
    Ok(())
}

/// Store `hash` for a row, or fold it into the row's hash so far.
#[inline]
fn put(slot: &mut u64, hash: u64, state: &RandomState, combine: bool) {
    *slot = if combine {
        state.hash_one((*slot, hash))
    } else {
        hash
    };
}

fn by_value<T>(column: &ArrayRef, state: &RandomState, hashes: &mut [u64], combine: bool)
where
    T: ArrowPrimitiveType,
    T::Native: Hash,
{
    let array = column.as_primitive::<T>();
    let nulls = array.logical_nulls();
    for (row, (slot, value)) in hashes.iter_mut().zip(array.values().iter()).enumerate() {
        let hash = if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            NULL_HASH
        } else {
            state.hash_one(value)
        };
        put(slot, hash, state, combine);
    }
}

fn by_bytes<T: ByteArrayType>(
    array: &GenericByteArray<T>,
    state: &RandomState,
    hashes: &mut [u64],
    combine: bool,
) where
    T::Native: AsRef<[u8]>,
{
    by_slice(hashes, state, combine, |row| {
        array.is_valid(row).then(|| array.value(row).as_ref())
    });
}

/// Hash the bytes `value(row)` of every row (`None` for NULL).
fn by_slice<'a>(
    hashes: &mut [u64],
    state: &RandomState,
    combine: bool,
    value: impl Fn(usize) -> Option<&'a [u8]>,
) {
    for (row, slot) in hashes.iter_mut().enumerate() {
        let hash = value(row).map_or(NULL_HASH, |bytes| state.hash_one(bytes));
        put(slot, hash, state, combine);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int32Array, Int64Array, StringArray, StringViewArray};

    use super::*;

    fn state() -> RandomState {
        RandomState::with_seeds(1, 2, 3, 4)
    }

    #[test]
    fn equal_keys_hash_alike_whatever_the_batch() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(1), Some(2)]));
        let b: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("x"),
            Some("y"),
            Some("x"),
            None,
        ]));
        let h = hash_columns(&[a.clone(), b.clone()], &state()).unwrap();
        assert_eq!(h[0], h[2]);
        assert_ne!(h[0], h[1]);
        // A slice of the same rows hashes the same.
        let s = hash_columns(&[a.slice(2, 2), b.slice(2, 2)], &state()).unwrap();
        assert_eq!(s, h[2..].to_vec());
        // Column order matters: (1, "x") is not ("x", 1).
        let swapped = hash_columns(&[b, a], &state()).unwrap();
        assert_ne!(swapped[0], h[0]);
    }

    #[test]
    fn nulls_are_one_key_and_differ_from_values() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![None, Some(0), None]));
        let b: ArrayRef = Arc::new(StringArray::from(vec![None, Some(""), None]));
        let h = hash_columns(&[a, b], &state()).unwrap();
        assert_eq!(h[0], h[2]);
        assert_ne!(h[0], h[1]);
    }

    #[test]
    fn floats_go_through_the_row_format() {
        // -0.0 and 0.0 are one key after normalization; the row path must be used for floats.
        let a: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 1.5, 2.5]));
        let h = hash_columns(&[a], &state()).unwrap();
        assert_eq!(h[0], h[1]);
        assert_ne!(h[0], h[2]);
    }
}
