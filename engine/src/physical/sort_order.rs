//! The order of a buffer's rows under a list of sort keys: the permutation a sort gathers by.
//!
//! Comparing rows column by column through `dyn` comparators (Arrow's `lexsort_to_indices`)
//! costs a virtual call and a bounds check per column per comparison. Most sort keys are
//! integers, dates or decimals with a modest range over one buffer, so they are instead packed
//! into one unsigned integer per row (the *normalized key*):
//!
//! ```text
//!   key 1 (shipdate: 2 526 days → 12 bits) │ key 2 (orderkey: 60M → 26 bits) │ key 3 (3 bits) │ row
//!   ───────────────────────────── u64, compared as one integer ───────────────────────────────────
//! ```
//!
//! Each key becomes its rank in `[0, max - min]` (reversed when descending), shifted by one
//! when NULLs sort first, or with NULL as the largest code when they sort last. When the codes
//! and the row index fit in 64 bits, the rows are sorted as plain `u64`s; up to 128 bits as
//! `u128`s. The row index in the low bits makes the order total, so an unstable sort gives the
//! stable order. Keys that do not pack (strings, floats, wide ranges) are compared in Arrow's
//! row format, one `memcmp` per comparison; a single such key uses Arrow's own sort.

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::compute::{lexsort_to_indices, SortColumn};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Int16Type, Int32Type,
    Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::row::{RowConverter, SortField};

use crate::error::{EngineError, Result};

/// The permutation that sorts `columns` (all of one length), stable: equal rows keep their
/// input order.
pub(crate) fn sort_indices(columns: &[SortColumn]) -> Result<Vec<u32>> {
    let Some(first) = columns.first() else {
        return Ok(Vec::new());
    };
    let rows = first.values.len();
    if rows > u32::MAX as usize {
        return Err(EngineError::Internal(format!(
            "cannot sort {rows} rows in one buffer"
        )));
    }
    if let Some(keys) = packed_keys(columns) {
        return Ok(keys.sort(rows));
    }
    if columns.len() == 1 {
        let indices = lexsort_to_indices(columns, None)?;
        return Ok(indices.values().to_vec());
    }
    let fields = columns
        .iter()
        .map(|c| {
            SortField::new_with_options(c.values.data_type().clone(), c.options.unwrap_or_default())
        })
        .collect();
    let converter = RowConverter::new(fields)?;
    let arrays: Vec<ArrayRef> = columns.iter().map(|c| c.values.clone()).collect();
    let encoded = converter.convert_columns(&arrays)?;
    let mut order: Vec<u32> = (0..rows as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        encoded
            .row(a as usize)
            .cmp(&encoded.row(b as usize))
            .then(a.cmp(&b))
    });
    Ok(order)
}

/// One key column's codes: `code(row)` in `[0, 2^bits)`.
struct KeyCodes {
    codes: Vec<u64>,
    bits: u32,
}

/// Every key's codes, when together they take at most 128 bits besides the row index.
struct PackedKeys {
    columns: Vec<KeyCodes>,
    bits: u32,
}

impl PackedKeys {
    fn sort(self, rows: usize) -> Vec<u32> {
        let index_bits = bits_for(rows.saturating_sub(1) as u128);
        if self.bits + index_bits <= 64 {
            // Key columns in order, most significant first, then the row index.
            let mut keys: Vec<u64> = vec![0; rows];
            for column in &self.columns {
                for (key, &code) in keys.iter_mut().zip(&column.codes) {
                    *key = shl(*key, column.bits) | code;
                }
            }
            for (i, key) in keys.iter_mut().enumerate() {
                *key = (*key << index_bits) | i as u64;
            }
            keys.sort_unstable();
            let mask = (1u64 << index_bits).wrapping_sub(1);
            keys.into_iter().map(|k| (k & mask) as u32).collect()
        } else {
            let mut keys: Vec<u128> = vec![0; rows];
            for column in &self.columns {
                for (key, &code) in keys.iter_mut().zip(&column.codes) {
                    *key = (*key << column.bits) | u128::from(code);
                }
            }
            for (i, key) in keys.iter_mut().enumerate() {
                *key = (*key << 32) | i as u128;
            }
            keys.sort_unstable();
            keys.into_iter().map(|k| k as u32).collect()
        }
    }
}

/// `key << bits`, which is 0 for a shift by the whole width (only ever of a zero key: a
/// 64-bit key column is then the only one with codes).
fn shl(key: u64, bits: u32) -> u64 {
    key.checked_shl(bits).unwrap_or(0)
}

/// Bits needed to hold `max` (0 for 0).
fn bits_for(max: u128) -> u32 {
    128 - max.leading_zeros()
}

fn packed_keys(columns: &[SortColumn]) -> Option<PackedKeys> {
    let mut packed = PackedKeys {
        columns: Vec::with_capacity(columns.len()),
        bits: 0,
    };
    for column in columns {
        let codes = key_codes(column)?;
        packed.bits += codes.bits;
        // The u128 path keeps 32 bits for the row index.
        if packed.bits > 96 {
            return None;
        }
        packed.columns.push(codes);
    }
    Some(packed)
}

fn key_codes(column: &SortColumn) -> Option<KeyCodes> {
    let array = &column.values;
    let options = column.options.unwrap_or_default();
    macro_rules! codes {
        ($t:ty) => {
            primitive_codes(
                array.as_primitive::<$t>(),
                options.descending,
                options.nulls_first,
            )
        };
    }
    match array.data_type() {
        DataType::Int8 => codes!(Int8Type),
        DataType::Int16 => codes!(Int16Type),
        DataType::Int32 => codes!(Int32Type),
        DataType::Int64 => codes!(Int64Type),
        DataType::UInt8 => codes!(UInt8Type),
        DataType::UInt16 => codes!(UInt16Type),
        DataType::UInt32 => codes!(UInt32Type),
        DataType::UInt64 => codes!(UInt64Type),
        DataType::Date32 => codes!(Date32Type),
        DataType::Date64 => codes!(Date64Type),
        DataType::Decimal128(_, _) => codes!(Decimal128Type),
        DataType::Timestamp(TimeUnit::Second, _) => codes!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => codes!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => codes!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => codes!(TimestampNanosecondType),
        _ => None,
    }
}

/// Codes of an integer-like column: the rank of each value in its range, with NULL below or
/// above every value. `None` when the range needs more than 64 bits.
fn primitive_codes<T>(
    array: &PrimitiveArray<T>,
    descending: bool,
    nulls_first: bool,
) -> Option<KeyCodes>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128> + Ord,
{
    let has_nulls = array.null_count() > 0;
    let range = if has_nulls {
        array.iter().flatten().fold(None, |range, v| {
            Some(match range {
                None => (v, v),
                Some((lo, hi)) => (if v < lo { v } else { lo }, if v > hi { v } else { hi }),
            })
        })
    } else {
        let values = array.values();
        values
            .iter()
            .min()
            .copied()
            .zip(values.iter().max().copied())
    };
    let (lo, hi): (i128, i128) = match range {
        Some((lo, hi)) => (lo.into(), hi.into()),
        // Empty or all NULL: every row has the same code.
        None => {
            return Some(KeyCodes {
                codes: vec![0; array.len()],
                bits: 0,
            })
        }
    };
    let span = u128::try_from(hi.checked_sub(lo)?).ok()?;
    // Values take codes [0, span]; NULL takes one more.
    let levels_max = span + u128::from(has_nulls);
    if levels_max > u128::from(u64::MAX) {
        return None;
    }
    let span = span as u64;
    let value_shift = u64::from(has_nulls && nulls_first);
    // Only used with NULLs present, when `span + 1` fits (checked above).
    let null_code = if nulls_first { 0 } else { span.wrapping_add(1) };
    let rank = |v: T::Native| -> u64 {
        let r = (v.into() - lo) as u64;
        (if descending { span - r } else { r }) + value_shift
    };
    let codes = if has_nulls {
        array
            .values()
            .iter()
            .enumerate()
            .map(|(i, &v)| if array.is_null(i) { null_code } else { rank(v) })
            .collect()
    } else {
        array.values().iter().map(|&v| rank(v)).collect()
    };
    Some(KeyCodes {
        codes,
        bits: bits_for(levels_max),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray};
    use arrow::compute::SortOptions;

    use super::*;

    fn column(values: ArrayRef, descending: bool, nulls_first: bool) -> SortColumn {
        SortColumn {
            values,
            options: Some(SortOptions {
                descending,
                nulls_first,
            }),
        }
    }

    /// What `sort_indices` must return: Arrow's lexicographic sort, made stable by the index.
    fn expected(columns: &[SortColumn]) -> Vec<u32> {
        let rows = columns[0].values.len();
        let mut with_index = columns.to_vec();
        with_index.push(column(
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            false,
            false,
        ));
        lexsort_to_indices(&with_index, None)
            .unwrap()
            .values()
            .to_vec()
    }

    /// A small pseudo-random generator, so the test needs no extra crate.
    fn values(seed: u64, n: usize, modulo: i64) -> Vec<i64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % modulo as u64) as i64 - modulo / 3
            })
            .collect()
    }

    #[test]
    fn packed_keys_sort_like_arrow_in_every_direction_and_null_placement() {
        let n = 5000;
        for descending in [false, true] {
            for nulls_first in [false, true] {
                let a: Int64Array = values(1, n, 7)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i % 11 != 0).then_some(v))
                    .collect();
                let b =
                    Date32Array::from_iter_values(values(2, n, 40).into_iter().map(|v| v as i32));
                let c: Decimal128Array = values(3, n, 1000)
                    .into_iter()
                    .map(|v| (v % 13 != 0).then_some(i128::from(v)))
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(15, 2)
                    .unwrap();
                let columns = vec![
                    column(Arc::new(a), descending, nulls_first),
                    column(Arc::new(b), !descending, nulls_first),
                    column(Arc::new(c), descending, !nulls_first),
                ];
                assert!(packed_keys(&columns).is_some(), "these keys pack");
                assert_eq!(sort_indices(&columns).unwrap(), expected(&columns));
            }
        }
    }

    #[test]
    fn wide_ranges_take_the_u128_path_or_the_row_format() {
        let n = 3000;
        let wide = |seed| {
            Arc::new(Int64Array::from_iter_values(
                values(seed, n, 1000)
                    .into_iter()
                    .map(|v| v.wrapping_mul(i64::MAX / 500)),
            )) as ArrayRef
        };
        // Two 64-bit ranges: 128 bits, more than the u128 path holds besides the index.
        let two = vec![column(wide(4), false, false), column(wide(5), true, false)];
        assert!(packed_keys(&two).is_none());
        assert_eq!(sort_indices(&two).unwrap(), expected(&two));
        // One 64-bit range and a small key: the u128 path.
        let small = Arc::new(Int64Array::from_iter_values(values(6, n, 5))) as ArrayRef;
        let mixed = vec![column(small, false, false), column(wide(7), false, true)];
        assert!(packed_keys(&mixed).is_some_and(|p| p.bits > 32));
        assert_eq!(sort_indices(&mixed).unwrap(), expected(&mixed));
        // Extremes: i64::MIN..i64::MAX spans exactly 64 bits.
        let extremes = Arc::new(Int64Array::from(vec![
            i64::MAX,
            i64::MIN,
            0,
            -1,
            1,
            i64::MIN,
        ]));
        let cols = vec![column(extremes, false, false)];
        assert_eq!(sort_indices(&cols).unwrap(), vec![1, 5, 3, 2, 4, 0]);
    }

    #[test]
    fn strings_floats_and_all_null_keys_sort_too() {
        let s = Arc::new(StringArray::from(vec![
            Some("b"),
            None,
            Some("a"),
            Some("b"),
            Some(""),
            None,
        ])) as ArrayRef;
        let f = Arc::new(Float64Array::from(vec![1.0, 2.0, f64::NAN, -0.5, 3.0, 2.0])) as ArrayRef;
        let nulls = Arc::new(Int64Array::from(vec![None::<i64>; 6])) as ArrayRef;
        for columns in [
            vec![
                column(Arc::clone(&s), false, true),
                column(Arc::clone(&f), true, false),
            ],
            vec![column(Arc::clone(&f), false, false)],
            vec![
                column(Arc::clone(&nulls), false, false),
                column(s, true, true),
            ],
            vec![column(nulls, true, true)],
        ] {
            assert_eq!(sort_indices(&columns).unwrap(), expected(&columns));
        }
    }
}
