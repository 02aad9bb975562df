//! Arithmetic that writes into an operand's buffer when nothing else holds it.
//!
//! The operands of an inner arithmetic node are often temporaries: `1 - l_discount` exists only
//! to be multiplied by `l_extendedprice`. When such an array is uniquely owned (not a column of
//! the input batch, not kept in a sub-expression cache), the result overwrites its values
//! instead of filling a fresh buffer, so `price * (1 - discount) * (1 + tax)` allocates one
//! array per batch instead of three. When both operands are shared, the kernels allocate as
//! usual; the result is the same either way.

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::compute::binary_mut;
use arrow::datatypes::ArrowPrimitiveType;
use arrow::error::ArrowError;

/// `array` as a primitive array of `T`, giving up the `ArrayRef` so that the buffers are
/// uniquely owned when nothing else holds them.
fn owned<T: ArrowPrimitiveType>(array: ArrayRef) -> PrimitiveArray<T> {
    let primitive = array.as_primitive::<T>().clone();
    drop(array);
    primitive
}

/// `f(a[i], b[i])` for every row (NULL where either is NULL), written into `a`'s or `b`'s
/// buffer when one is uniquely owned. `f` must not fail: it also runs on the values under
/// NULLs. The result has `a`'s data type (callers set decimal precision and scale).
pub(crate) fn binary<T, F>(a: ArrayRef, b: ArrayRef, f: F) -> Result<PrimitiveArray<T>, ArrowError>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native, T::Native) -> T::Native,
{
    let a = owned::<T>(a);
    let a = match binary_mut(a, b.as_primitive::<T>(), &f) {
        Ok(result) => return result,
        Err(a) => a,
    };
    let b = owned::<T>(b);
    match binary_mut(b, &a, |y, x| f(x, y)) {
        Ok(result) => result.map(|out| out.with_data_type(a.data_type().clone())),
        Err(b) => arrow::compute::binary(&a, &b, f),
    }
}

/// `f(a[i])` for every row, written into `a`'s buffer when it is uniquely owned.
pub(crate) fn unary<T, F>(a: ArrayRef, f: F) -> PrimitiveArray<T>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native) -> T::Native,
{
    match owned::<T>(a).unary_mut(&f) {
        Ok(out) => out,
        Err(a) => a.unary(f),
    }
}

/// Whether `array`'s values buffer is the one `other` has (the result was written in place).
#[cfg(test)]
fn same_values<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>, other: *const u8) -> bool {
    array.values().inner().as_ptr() == other
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Float64Array;
    use arrow::datatypes::Float64Type;

    use super::*;

    #[test]
    fn a_temporary_is_overwritten_and_a_shared_array_is_not() {
        let temporary: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]));
        let address = temporary
            .as_primitive::<Float64Type>()
            .values()
            .inner()
            .as_ptr();
        let column: ArrayRef = Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0]));
        let keep = Arc::clone(&column);
        // The temporary on the right: the result reuses its buffer.
        let out = binary::<Float64Type, _>(Arc::clone(&column), temporary, |x, y| x - y).unwrap();
        assert_eq!(out, Float64Array::from(vec![9.0, 18.0, 27.0]));
        assert!(same_values(&out, address));
        // Both shared: a new buffer, inputs untouched.
        let out2 =
            binary::<Float64Type, _>(Arc::clone(&column), Arc::clone(&keep), |x, y| x * y).unwrap();
        assert_eq!(out2, Float64Array::from(vec![100.0, 400.0, 900.0]));
        assert_eq!(keep.as_primitive::<Float64Type>().value(0), 10.0);
        // NULLs of either side.
        let with_null: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(2.0)]));
        let out3 = binary::<Float64Type, _>(with_null, Arc::new(out2), |x, y| x + y).unwrap();
        assert_eq!(
            out3,
            Float64Array::from(vec![Some(101.0), None, Some(902.0)])
        );
        let address = out3.values().inner().as_ptr();
        let out4 = unary::<Float64Type, _>(Arc::new(out3), |x| x * 2.0);
        assert!(same_values(&out4, address));
        assert_eq!(
            out4,
            Float64Array::from(vec![Some(202.0), None, Some(1804.0)])
        );
    }
}
