//! Order-preserving keys of column values: the byte strings a secondary index sorts, stores
//! and searches.
//!
//! Two kinds. Values of at most eight bytes (integers, dates, times, timestamps, durations,
//! decimals of precision ≤ 18, booleans and floats) are *fixed* keys: a `u64` whose unsigned
//! order is the values' SQL order, stored as its eight big-endian bytes. Strings and binaries,
//! and decimals too wide for 64 bits, are *byte* keys: the bytes themselves (the byte order
//! of UTF-8 is the order of code points, which is how ooc compares strings), or the sixteen
//! big-endian bytes of an order-preserving 128-bit integer. Comparing two keys of one column
//! as byte strings therefore compares the values.
//!
//! Floats: `-0.0` is keyed as `0.0` (they are equal in SQL), every NaN as one NaN, above every
//! number, as SQL orders it. A NaN literal is never looked up (whether NaN equals NaN is the
//! engine's business, not the index's).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type, UInt64Type};

/// How a column's values are keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A `u64` (stored as eight big-endian bytes).
    Fixed,
    /// A byte string of any length.
    Bytes,
}

impl KeyKind {
    pub(crate) fn tag(self) -> u8 {
        match self {
            KeyKind::Fixed => 0,
            KeyKind::Bytes => 1,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(KeyKind::Fixed),
            1 => Some(KeyKind::Bytes),
            _ => None,
        }
    }
}

const SIGN: u64 = 1 << 63;

/// The key kind of a column of `data_type`, or why it cannot be indexed.
pub(crate) fn kind_of(data_type: &DataType) -> Result<KeyKind, String> {
    use DataType::*;
    Ok(match data_type {
        Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Date32
        | Date64 | Time32(_) | Time64(_) | Duration(_) | Float16 | Float32 | Float64 => {
            KeyKind::Fixed
        }
        Timestamp(_, _) => KeyKind::Fixed,
        Decimal128(p, _) if *p <= 18 => KeyKind::Fixed,
        Decimal128(_, _) => KeyKind::Bytes,
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => {
            KeyKind::Bytes
        }
        other => return Err(format!("columns of type {other} cannot be indexed")),
    })
}

fn signed(v: i64) -> u64 {
    (v as u64) ^ SIGN
}

/// The keys of an `Int64` array.
fn signed_keys(array: &ArrayRef) -> Vec<u64> {
    array
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .map(|&v| signed(v))
        .collect()
}

fn float_key(v: f64) -> u64 {
    let v = if v == 0.0 { 0.0 } else { v };
    let v = if v.is_nan() { f64::NAN } else { v };
    let bits = v.to_bits();
    if bits & SIGN != 0 {
        !bits
    } else {
        bits ^ SIGN
    }
}

fn wide_key(v: i128) -> [u8; 16] {
    ((v as u128) ^ (1u128 << 127)).to_be_bytes()
}

/// The keys of an array's rows, as the index sorts them.
pub(crate) enum ArrayKeys {
    /// Fixed keys (NULL rows hold 0: check `valid`).
    Fixed(Vec<u64>),
    /// Byte keys, read through [`ArrayKeys::bytes`].
    Bytes(ArrayRef),
}

/// Keys of `array` (a column of `data_type`, whose kind is `kind_of(data_type)`), and which rows
/// are NULL.
pub(crate) fn keys_of(array: &ArrayRef) -> Result<ArrayKeys, String> {
    use DataType::*;
    let err = |e: arrow::error::ArrowError| e.to_string();
    Ok(match array.data_type() {
        Boolean => {
            let b = array.as_boolean();
            ArrayKeys::Fixed((0..b.len()).map(|i| b.value(i) as u64).collect())
        }
        UInt8 | UInt16 | UInt32 | UInt64 => {
            let a = cast(array, &UInt64).map_err(err)?;
            ArrayKeys::Fixed(a.as_primitive::<UInt64Type>().values().to_vec())
        }
        Int8 | Int16 | Int32 | Int64 | Date64 | Time64(_) | Duration(_) | Timestamp(_, _) => {
            ArrayKeys::Fixed(signed_keys(&cast(array, &Int64).map_err(err)?))
        }
        Date32 | Time32(_) => {
            let a = cast(&cast(array, &Int32).map_err(err)?, &Int64).map_err(err)?;
            ArrayKeys::Fixed(signed_keys(&a))
        }
        Float16 | Float32 | Float64 => {
            let a = cast(array, &Float64).map_err(err)?;
            ArrayKeys::Fixed(
                a.as_primitive::<Float64Type>()
                    .values()
                    .iter()
                    .map(|&v| float_key(v))
                    .collect(),
            )
        }
        Decimal128(p, _) if *p <= 18 => ArrayKeys::Fixed(
            array
                .as_primitive::<Decimal128Type>()
                .values()
                .iter()
                // Precision ≤ 18: every valid value fits in 64 bits (NULL slots may hold
                // anything; they are never keyed).
                .map(|&v| signed(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64))
                .collect(),
        ),
        Decimal128(_, _)
        | Utf8
        | LargeUtf8
        | Utf8View
        | Binary
        | LargeBinary
        | BinaryView
        | FixedSizeBinary(_) => ArrayKeys::Bytes(Arc::clone(array)),
        other => return Err(format!("columns of type {other} cannot be indexed")),
    })
}

impl ArrayKeys {
    /// The byte key of row `i` of a [`ArrayKeys::Bytes`] array, appended to `out`.
    pub(crate) fn bytes(&self, i: usize, out: &mut Vec<u8>) {
        let ArrayKeys::Bytes(array) = self else {
            return;
        };
        match array.data_type() {
            DataType::Utf8 => out.extend_from_slice(array.as_string::<i32>().value(i).as_bytes()),
            DataType::LargeUtf8 => {
                out.extend_from_slice(array.as_string::<i64>().value(i).as_bytes())
            }
            DataType::Utf8View => out.extend_from_slice(array.as_string_view().value(i).as_bytes()),
            DataType::Binary => out.extend_from_slice(array.as_binary::<i32>().value(i)),
            DataType::LargeBinary => out.extend_from_slice(array.as_binary::<i64>().value(i)),
            DataType::BinaryView => out.extend_from_slice(array.as_binary_view().value(i)),
            DataType::FixedSizeBinary(_) => {
                out.extend_from_slice(array.as_fixed_size_binary().value(i))
            }
            DataType::Decimal128(_, _) => {
                out.extend_from_slice(&wide_key(array.as_primitive::<Decimal128Type>().value(i)))
            }
            _ => {}
        }
    }
}

/// The key of a literal compared with a column of `data_type`: the literal is first converted
/// to that type exactly (`None` when it has no exact counterpart there, e.g. `2.5` for an
/// integer column, or is NULL or NaN).
pub(crate) fn literal_key(value: &ArrayRef, data_type: &DataType) -> Option<Vec<u8>> {
    if value.is_empty() || value.is_null(0) {
        return None;
    }
    if value.data_type().is_floating() {
        let f = cast(value, &DataType::Float64).ok()?;
        if f.as_primitive::<Float64Type>().value(0).is_nan() {
            return None;
        }
    }
    let exact = crate::prune::cast_literal(value, data_type)?;
    key_of_row(&exact, 0)
}

/// The key of row `i` of `array` (`None` when NULL).
pub(crate) fn key_of_row(array: &ArrayRef, i: usize) -> Option<Vec<u8>> {
    if array.is_null(i) {
        return None;
    }
    let one = array.slice(i, 1);
    match keys_of(&one).ok()? {
        ArrayKeys::Fixed(v) => v.first().map(|k| k.to_be_bytes().to_vec()),
        keys @ ArrayKeys::Bytes(_) => {
            let mut out = Vec::new();
            keys.bytes(0, &mut out);
            Some(out)
        }
    }
}

/// The smallest byte string greater than every string that starts with `prefix` (`None`
/// when there is none: the prefix is all `0xFF`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Decimal128Array, Float64Array, Int32Array, StringArray};

    fn fixed(a: ArrayRef) -> Vec<u64> {
        match keys_of(&a).unwrap() {
            ArrayKeys::Fixed(v) => v,
            ArrayKeys::Bytes(_) => panic!("expected fixed keys"),
        }
    }

    #[test]
    fn fixed_keys_keep_the_order_of_values() {
        let ints = fixed(Arc::new(Int32Array::from(vec![
            i32::MIN,
            -5,
            -1,
            0,
            1,
            7,
            i32::MAX,
        ])));
        assert!(ints.windows(2).all(|w| w[0] < w[1]));
        let floats = fixed(Arc::new(Float64Array::from(vec![
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            1e-300,
            3.0,
            f64::INFINITY,
            f64::NAN,
        ])));
        assert!(floats.windows(2).all(|w| w[0] < w[1]), "{floats:?}");
        // -0.0 and 0.0 are one key; every NaN another.
        let zeros = fixed(Arc::new(Float64Array::from(vec![
            -0.0,
            0.0,
            f64::NAN,
            -f64::NAN,
        ])));
        assert_eq!(zeros[0], zeros[1]);
        assert_eq!(zeros[2], zeros[3]);
        let decimals = fixed(Arc::new(
            Decimal128Array::from(vec![-1000, -1, 0, 99_999])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ));
        assert!(decimals.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn literals_are_keyed_in_the_column_type_or_not_at_all() {
        let int = Arc::new(Int32Array::from(vec![42])) as ArrayRef;
        let as_i64 = literal_key(&int, &DataType::Int64).unwrap();
        let stored = Arc::new(arrow::array::Int64Array::from(vec![42])) as ArrayRef;
        assert_eq!(as_i64, key_of_row(&stored, 0).unwrap());
        let half = Arc::new(Float64Array::from(vec![2.5])) as ArrayRef;
        assert_eq!(literal_key(&half, &DataType::Int64), None);
        let nan = Arc::new(Float64Array::from(vec![f64::NAN])) as ArrayRef;
        assert_eq!(literal_key(&nan, &DataType::Float64), None);
        let s = Arc::new(StringArray::from(vec!["abc"])) as ArrayRef;
        assert_eq!(
            literal_key(&s, &DataType::Utf8View).unwrap(),
            b"abc".to_vec()
        );
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[b'a', 0xFF]), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(&[0xFF]), None);
    }
}
