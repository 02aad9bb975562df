//! Binary operators: comparisons (with -0.0 equal to 0.0), Kleene AND/OR, and arithmetic
//! that stays exact on decimals (checked, rescaled to the planned type) and follows IEEE on
//! doubles. Where an operand's buffer is held by nothing else, decimal and float arithmetic
//! write into it (see the `in_place` module).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Scalar};
use arrow::compute::kernels::{boolean, cmp, numeric, zip::zip};
use arrow::compute::nullif;
use arrow::datatypes::DataType;

use super::{cast_array, datum_kernel, in_place, map_unary, null_as_false, ColumnarValue};
use crate::error::{EngineError, Result};
use crate::logical::expr::BinaryOp;
use crate::logical::scalar::ScalarValue;

pub(super) fn kleene(l: &ColumnarValue, r: &ColumnarValue, op: BinaryOp) -> Result<ColumnarValue> {
    let n = match (l, r) {
        (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
        _ => 1,
    };
    let both_scalar = matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
    let la = l.clone().into_array(n)?;
    let ra = r.clone().into_array(n)?;
    let out = match op {
        BinaryOp::And => boolean::and_kleene(la.as_boolean(), ra.as_boolean())?,
        _ => boolean::or_kleene(la.as_boolean(), ra.as_boolean())?,
    };
    let out: ArrayRef = Arc::new(out);
    Ok(if both_scalar {
        ColumnarValue::Scalar(ScalarValue::from_array(out))
    } else {
        ColumnarValue::Array(out)
    })
}

fn is_zero_mask(value: &ColumnarValue) -> Result<Option<ColumnarValue>> {
    let t = value.data_type();
    if !(t.is_numeric()) {
        return Ok(None);
    }
    let zero = ScalarValue::int32(0).cast_to(&t)?;
    let mask = datum_kernel(value, &ColumnarValue::Scalar(zero), |a, b| {
        Ok(Arc::new(cmp::eq(a, b)?))
    })?;
    Ok(Some(mask))
}

/// [`evaluate_binary`] taking its operands, so that decimal and float arithmetic can write
/// into an operand that nothing else holds (see [`in_place`]).
pub(super) fn evaluate_binary_owned(
    l: ColumnarValue,
    op: BinaryOp,
    r: ColumnarValue,
    result_type: &DataType,
) -> Result<ColumnarValue> {
    use BinaryOp::*;
    match op {
        Plus | Minus | Multiply if fast_decimal_applies(&l, op, &r) => {
            fast_decimal(l, op, r, result_type)
        }
        Plus | Minus | Multiply | Divide if float_applies(&l, &r, result_type) => {
            float_arithmetic(l, op, r)
        }
        _ => evaluate_binary(&l, op, &r, result_type),
    }
}

/// Both operands and the result are `DOUBLE`, at least one operand an array.
fn float_applies(l: &ColumnarValue, r: &ColumnarValue, result_type: &DataType) -> bool {
    *result_type == DataType::Float64
        && l.data_type() == DataType::Float64
        && r.data_type() == DataType::Float64
        && !matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)))
}

/// IEEE arithmetic on doubles (`x / 0` is ±inf or NaN, as in [`evaluate_binary`]).
fn float_arithmetic(l: ColumnarValue, op: BinaryOp, r: ColumnarValue) -> Result<ColumnarValue> {
    use arrow::datatypes::Float64Type;
    let f = match op {
        BinaryOp::Plus => |a: f64, b: f64| a + b,
        BinaryOp::Minus => |a: f64, b: f64| a - b,
        BinaryOp::Multiply => |a: f64, b: f64| a * b,
        _ => |a: f64, b: f64| a / b,
    };
    let scalar = |v: &ScalarValue| -> Option<f64> {
        let a = v.array().as_primitive::<Float64Type>();
        a.is_valid(0).then(|| a.value(0))
    };
    let out = match (l, r) {
        (ColumnarValue::Array(a), ColumnarValue::Array(b)) => in_place::binary(a, b, f)?,
        (ColumnarValue::Array(a), ColumnarValue::Scalar(v)) => match scalar(&v) {
            Some(y) => in_place::unary(a, |x| f(x, y)),
            None => arrow::array::Float64Array::new_null(a.len()),
        },
        (ColumnarValue::Scalar(v), ColumnarValue::Array(b)) => match scalar(&v) {
            Some(x) => in_place::unary(b, |y| f(x, y)),
            None => arrow::array::Float64Array::new_null(b.len()),
        },
        (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)) => {
            return Err(EngineError::Internal("float path on two scalars".into()))
        }
    };
    Ok(ColumnarValue::Array(Arc::new(out)))
}

fn evaluate_binary(
    l: &ColumnarValue,
    op: BinaryOp,
    r: &ColumnarValue,
    result_type: &DataType,
) -> Result<ColumnarValue> {
    use BinaryOp::*;
    let cmp_kernel = |f: fn(
        &dyn arrow::array::Datum,
        &dyn arrow::array::Datum,
    ) -> std::result::Result<BooleanArray, arrow::error::ArrowError>| {
        datum_kernel(l, r, move |a, b| Ok(Arc::new(f(a, b)?)))
    };
    if op.is_comparison() && l.data_type().is_floating() {
        // Arrow compares floats by total order, where -0.0 < 0.0; SQL says they are equal.
        let (l, r) = (normalize_zero(l)?, normalize_zero(r)?);
        return compare_values(&l, op, &r);
    }
    match op {
        Eq => cmp_kernel(cmp::eq),
        NotEq => cmp_kernel(cmp::neq),
        Lt => cmp_kernel(cmp::lt),
        LtEq => cmp_kernel(cmp::lt_eq),
        Gt => cmp_kernel(cmp::gt),
        GtEq => cmp_kernel(cmp::gt_eq),
        And | Or => kleene(l, r, op),
        Plus | Minus | Multiply if fast_decimal_applies(l, op, r) => {
            fast_decimal(l.clone(), op, r.clone(), result_type)
        }
        Plus => {
            datum_kernel(l, r, |a, b| numeric::add(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Minus => {
            datum_kernel(l, r, |a, b| numeric::sub(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Multiply => {
            datum_kernel(l, r, |a, b| numeric::mul(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Divide if result_type.is_floating() => {
            // `/` is floating-point division (as in DuckDB): x / 0 is ±inf or NaN.
            datum_kernel(l, r, |a, b| numeric::div(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Divide | Modulo | IntegerDivide => {
            // Integer division or remainder by zero yields NULL (as in DuckDB): replace zero
            // divisors by one, compute, then null out those rows.
            let zero_mask = is_zero_mask(r)?;
            let (divisor, mask) = match zero_mask {
                Some(mask) => {
                    let n = match (l, r) {
                        (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
                        _ => 1,
                    };
                    let mask_array = mask.into_array(n)?;
                    let mask_bool = null_as_false(mask_array.as_boolean());
                    if mask_bool.true_count() == 0 {
                        (r.clone(), None)
                    } else {
                        let one = ScalarValue::int32(1).cast_to(&r.data_type())?;
                        let rr = r.clone().into_array(n)?;
                        let fixed = zip(&mask_bool, &Scalar::new(one.array()), &rr)?;
                        (ColumnarValue::Array(fixed), Some((mask_bool, n)))
                    }
                }
                None => (r.clone(), None),
            };
            let out = if matches!(op, Divide | IntegerDivide) {
                datum_kernel(l, &divisor, |a, b| numeric::div(a, b))?
            } else {
                datum_kernel(l, &divisor, |a, b| numeric::rem(a, b))?
            };
            let out = match mask {
                Some((mask, n)) => {
                    let nulled = nullif(&out.into_array(n)?, &mask)?;
                    // Two constants give a constant.
                    if matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))) {
                        ColumnarValue::Scalar(ScalarValue::from_array(nulled))
                    } else {
                        ColumnarValue::Array(nulled)
                    }
                }
                None => out,
            };
            fix_type(out, result_type)
        }
        StringConcat => {
            let n = match (l, r) {
                (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
                _ => 1,
            };
            let la = cast_array(&l.clone().into_array(n)?, &DataType::Utf8)?;
            let ra = cast_array(&r.clone().into_array(n)?, &DataType::Utf8)?;
            let out: ArrayRef = Arc::new(
                arrow::compute::kernels::concat_elements::concat_elements_utf8(
                    la.as_string::<i32>(),
                    ra.as_string::<i32>(),
                )?,
            );
            // Two constants give a constant.
            Ok(
                if matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))) {
                    ColumnarValue::Scalar(ScalarValue::from_array(out))
                } else {
                    ColumnarValue::Array(out)
                },
            )
        }
    }
}

fn compare_values(l: &ColumnarValue, op: BinaryOp, r: &ColumnarValue) -> Result<ColumnarValue> {
    type Kernel = fn(
        &dyn arrow::array::Datum,
        &dyn arrow::array::Datum,
    ) -> std::result::Result<BooleanArray, arrow::error::ArrowError>;
    let kernel: Kernel = match op {
        BinaryOp::Eq => cmp::eq,
        BinaryOp::NotEq => cmp::neq,
        BinaryOp::Lt => cmp::lt,
        BinaryOp::LtEq => cmp::lt_eq,
        BinaryOp::Gt => cmp::gt,
        _ => cmp::gt_eq,
    };
    datum_kernel(l, r, move |a, b| Ok(Arc::new(kernel(a, b)?)))
}

/// Replace -0.0 by 0.0 and every NaN by the positive NaN (see [`canonical_f64`]).
pub(crate) fn normalize_zero(value: &ColumnarValue) -> Result<ColumnarValue> {
    use arrow::datatypes::{Float32Type, Float64Type};
    match value.data_type() {
        DataType::Float64 | DataType::Float32 if !is_normalized(value) => {
            map_unary(value.clone(), |a| {
                Ok(match a.data_type() {
                    DataType::Float64 => Arc::new(
                        a.as_primitive::<Float64Type>()
                            .unary::<_, Float64Type>(canonical_f64),
                    ) as ArrayRef,
                    _ => Arc::new(a.as_primitive::<Float32Type>().unary::<_, Float32Type>(
                        |x: f32| {
                            if x.is_nan() {
                                f32::NAN
                            } else {
                                x + 0.0
                            }
                        },
                    )),
                })
            })
        }
        _ => Ok(value.clone()),
    }
}

/// -0.0 as 0.0 (adding +0.0 does exactly that and keeps infinities), and every NaN as the one
/// positive NaN: `0.0 * inf` gives a NaN with the sign bit set, which the total order of
/// floats would put below -inf, where SQL has one NaN, above every number.
fn canonical_f64(x: f64) -> f64 {
    if x.is_nan() {
        f64::NAN
    } else {
        x + 0.0
    }
}

fn is_normalized(value: &ColumnarValue) -> bool {
    match value {
        ColumnarValue::Scalar(s) if s.data_type() == &DataType::Float64 => {
            let a = s.array().as_primitive::<arrow::datatypes::Float64Type>();
            a.is_null(0) || canonical_f64(a.value(0)).to_bits() == a.value(0).to_bits()
        }
        _ => false,
    }
}

/// Normalize -0.0 in a float array (for grouping and sorting keys).
pub(crate) fn normalize_zero_array(array: ArrayRef) -> Result<ArrayRef> {
    if array.data_type().is_floating() {
        let n = array.len();
        normalize_zero(&ColumnarValue::Array(array))?.into_array(n)
    } else {
        Ok(array)
    }
}

/// True when `l op r` on decimals cannot overflow i128 and needs no rescaling, so a plain
/// (unchecked) kernel is exact.
fn fast_decimal_applies(l: &ColumnarValue, op: BinaryOp, r: &ColumnarValue) -> bool {
    let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) =
        (l.data_type(), r.data_type())
    else {
        return false;
    };
    if matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))) {
        return false;
    }
    match op {
        BinaryOp::Multiply => (p1 as u16 + p2 as u16) < 38,
        BinaryOp::Plus | BinaryOp::Minus => {
            let scale = s1.max(s2) as i16;
            let integer_digits = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
            scale + integer_digits < 38 && s1 >= 0 && s2 >= 0
        }
        _ => false,
    }
}

fn fast_decimal(
    l: ColumnarValue,
    op: BinaryOp,
    r: ColumnarValue,
    result_type: &DataType,
) -> Result<ColumnarValue> {
    use arrow::array::{Decimal128Array, PrimitiveArray};
    use arrow::datatypes::Decimal128Type;
    let DataType::Decimal128(p, s) = result_type.clone() else {
        return Err(EngineError::Internal(format!(
            "decimal result type expected, got {result_type}"
        )));
    };
    let f = match op {
        BinaryOp::Multiply => |a: i128, b: i128| a.wrapping_mul(b),
        BinaryOp::Plus => |a: i128, b: i128| a.wrapping_add(b),
        _ => |a: i128, b: i128| a.wrapping_sub(b),
    };
    let scalar_value = |v: &ScalarValue| -> Option<i128> {
        let a = v.array().as_primitive::<Decimal128Type>();
        a.is_valid(0).then(|| a.value(0))
    };
    // Add and subtract need both sides at the result scale.
    let (l, r) = match (op, l.data_type(), r.data_type()) {
        (
            BinaryOp::Plus | BinaryOp::Minus,
            DataType::Decimal128(_, s1),
            DataType::Decimal128(_, s2),
        ) if s1 != s2 => (rescale(l, s)?, rescale(r, s)?),
        _ => (l, r),
    };
    let out: Decimal128Array = match (l, r) {
        (ColumnarValue::Array(a), ColumnarValue::Array(b)) => in_place::binary(a, b, f)?,
        (ColumnarValue::Array(a), ColumnarValue::Scalar(v)) => match scalar_value(&v) {
            Some(y) => in_place::unary(a, |x| f(x, y)),
            None => PrimitiveArray::new_null(a.len()),
        },
        (ColumnarValue::Scalar(v), ColumnarValue::Array(b)) => match scalar_value(&v) {
            Some(x) => in_place::unary(b, |y| f(x, y)),
            None => PrimitiveArray::new_null(b.len()),
        },
        _ => {
            return Err(EngineError::Internal(
                "fast decimal path on two scalars".into(),
            ))
        }
    };
    Ok(ColumnarValue::Array(Arc::new(
        out.with_precision_and_scale(p, s)?,
    )))
}

/// The same decimal values at a larger scale (exact: multiplies by a power of ten).
fn rescale(value: ColumnarValue, scale: i8) -> Result<ColumnarValue> {
    use arrow::datatypes::Decimal128Type;
    let DataType::Decimal128(p, s) = value.data_type() else {
        return Ok(value);
    };
    if s == scale {
        return Ok(value);
    }
    let factor = 10i128.pow((scale - s) as u32);
    let (p2, s2) = ((p as i16 + (scale - s) as i16).min(38) as u8, scale);
    let rescaled = |a: ArrayRef| -> Result<ArrayRef> {
        let out = in_place::unary::<Decimal128Type, _>(a, |x| x.wrapping_mul(factor));
        Ok(Arc::new(out.with_precision_and_scale(p2, s2)?))
    };
    Ok(match value {
        ColumnarValue::Array(a) => ColumnarValue::Array(rescaled(a)?),
        ColumnarValue::Scalar(v) => {
            ColumnarValue::Scalar(ScalarValue::from_array(rescaled(Arc::clone(v.array()))?))
        }
    })
}

/// Kernels may pick a different decimal precision than the planner; align to the planned type.
fn fix_type(value: ColumnarValue, result_type: &DataType) -> Result<ColumnarValue> {
    if value.data_type() == *result_type {
        return Ok(value);
    }
    match (&value, result_type) {
        (_, DataType::Decimal128(p, s)) if matches!(value.data_type(), DataType::Decimal128(_, vs) if vs == *s) =>
        {
            let (p, s) = (*p, *s);
            map_unary(value, move |a| {
                let array = a
                    .as_primitive::<arrow::datatypes::Decimal128Type>()
                    .clone()
                    .with_precision_and_scale(p, s)?;
                Ok(Arc::new(array))
            })
        }
        _ => {
            let to = result_type.clone();
            map_unary(value, move |a| cast_array(a, &to))
        }
    }
}
