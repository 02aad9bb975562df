//! Numeric functions: `floor`, `ceil` (exact on decimals), `sqrt`, `ln`, `log10`, `exp`,
//! `power`, `sign` (in `DOUBLE`, as DuckDB computes them), and `greatest`/`least`, which skip
//! NULLs (NULL only when every argument is).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int8Array,
};
use arrow::compute::kernels::{boolean, cmp, zip::zip};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type};

use super::{cast_array, null_as_false};
use crate::error::{EngineError, Result};

/// `f` over every value as `DOUBLE`.
pub(super) fn float_map(values: &ArrayRef, f: impl Fn(f64) -> f64) -> Result<ArrayRef> {
    let floats = cast_array(values, &DataType::Float64)?;
    let out: Float64Array = floats.as_primitive::<Float64Type>().unary(f);
    Ok(Arc::new(out))
}

/// `power(base, exponent)` in `DOUBLE`.
pub(super) fn power(base: &ArrayRef, exponent: &ArrayRef) -> Result<ArrayRef> {
    let b = cast_array(base, &DataType::Float64)?;
    let e = cast_array(exponent, &DataType::Float64)?;
    let out: Float64Array = arrow::compute::binary(
        b.as_primitive::<Float64Type>(),
        e.as_primitive::<Float64Type>(),
        |x: f64, y: f64| x.powf(y),
    )?;
    Ok(Arc::new(out))
}

/// `sign(x)`: -1, 0 or 1 as `TINYINT`.
pub(super) fn sign(values: &ArrayRef) -> Result<ArrayRef> {
    let floats = cast_array(values, &DataType::Float64)?;
    let out: Int8Array = floats.as_primitive::<Float64Type>().unary(|v: f64| {
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    });
    Ok(Arc::new(out))
}

/// `floor` (`up == false`) or `ceil` of decimals, exactly, to scale 0; of anything else, in
/// `DOUBLE`.
pub(super) fn round_to_integer(values: &ArrayRef, up: bool) -> Result<ArrayRef> {
    match values.data_type() {
        DataType::Decimal128(p, s) => {
            let divisor = 10i128.pow(*s as u32);
            let out: Decimal128Array = values.as_primitive::<Decimal128Type>().unary(|v: i128| {
                let q = v.div_euclid(divisor);
                let exact = v.rem_euclid(divisor) == 0;
                if up && !exact {
                    q + 1
                } else {
                    q
                }
            });
            Ok(Arc::new(out.with_precision_and_scale(*p, 0)?))
        }
        _ => float_map(values, if up { f64::ceil } else { f64::floor }),
    }
}

/// `round(x, digits)`, half away from zero: exact on decimals (to `result_type`'s scale) and
/// integers (negative digits round to tens, hundreds...), in `DOUBLE` on floats.
pub(super) fn round(values: &ArrayRef, digits: i64, result_type: &DataType) -> Result<ArrayRef> {
    let overflow = || {
        EngineError::Execution(format!(
            "round(x, {digits}) overflows {}",
            crate::logical::types::sql_type_name(values.data_type())
        ))
    };
    // v / 10^drop, rounded half away from zero, as a multiple of 10^drop when `keep_scale`.
    fn half_away(v: i128, divisor: i128) -> i128 {
        let q = v / divisor;
        let r = v % divisor;
        if r.unsigned_abs() * 2 >= divisor.unsigned_abs() {
            q + v.signum()
        } else {
            q
        }
    }
    match (values.data_type(), result_type) {
        (DataType::Decimal128(_, s), DataType::Decimal128(p, out_scale)) => {
            let s = i64::from(*s);
            if digits >= s {
                return cast_array(values, result_type);
            }
            // Digits dropped; with negative digits the result keeps scale 0 and is scaled back.
            let drop = (s - digits) as u32;
            let back = (-digits).max(0) as u32;
            let a = values.as_primitive::<Decimal128Type>();
            let out: Decimal128Array = match 10i128.checked_pow(drop) {
                Some(divisor) => {
                    let scale_back = 10i128.checked_pow(back).ok_or_else(overflow)?;
                    a.try_unary(|v| {
                        half_away(v, divisor)
                            .checked_mul(scale_back)
                            .ok_or_else(|| arrow::error::ArrowError::ComputeError(String::new()))
                    })
                    .map_err(|_| overflow())?
                }
                // More digits dropped than any value has: every value rounds to 0.
                None => a.unary(|_| 0),
            };
            Ok(Arc::new(out.with_precision_and_scale(*p, *out_scale)?))
        }
        (t, _) if t.is_integer() => {
            if digits >= 0 {
                return Ok(Arc::clone(values));
            }
            let wide = cast_array(values, &DataType::Decimal128(38, 0))?;
            let rounded = round(&wide, digits, &DataType::Decimal128(38, 0))?;
            cast_array(&rounded, values.data_type()).map_err(|_| overflow())
        }
        _ => {
            let as_f64 = cast_array(values, &DataType::Float64)?;
            let factor = 10f64.powi(digits.clamp(-400, 400) as i32);
            let out: Float64Array = as_f64
                .as_primitive::<Float64Type>()
                .unary(|v| (v * factor).round() / factor);
            cast_array(&out, result_type)
        }
    }
}

/// `greatest` (`largest == true`) or `least` of arguments of one type, NULLs skipped.
pub(super) fn extreme(args: &[ArrayRef], largest: bool) -> Result<ArrayRef> {
    let Some((first, rest)) = args.split_first() else {
        return Err(EngineError::Plan(
            "greatest()/least() need an argument".into(),
        ));
    };
    let mut result = Arc::clone(first);
    for next in rest {
        let better = if largest {
            cmp::gt(next, &result)?
        } else {
            cmp::lt(next, &result)?
        };
        // Take `next` where it is better, or where the result so far is NULL.
        let missing = BooleanArray::from(
            (0..result.len())
                .map(|i| result.is_null(i))
                .collect::<Vec<_>>(),
        );
        let take = boolean::or(&null_as_false(&better), &missing)?;
        result = zip(&take, next, &result)?;
    }
    Ok(result)
}
