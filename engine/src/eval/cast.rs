//! Casts with SQL semantics: a value that does not fit the target type is an error, never a
//! silent NULL, and casting to an integer rounds as DuckDB does.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::DataType;

use crate::error::{EngineError, Result};

/// Casting to an integer rounds like DuckDB: decimals half away from zero, floats half to
/// even. Returns the rounded values as Int64/Float64 (then cast exactly), or `None` when the
/// source needs no rounding.
fn round_for_integer_cast(array: &dyn Array) -> Result<Option<ArrayRef>> {
    match array.data_type() {
        DataType::Decimal128(_, scale) if *scale > 0 => {
            let divisor = 10i128.pow(*scale as u32);
            let a = array.as_primitive::<arrow::datatypes::Decimal128Type>();
            let mut out = Vec::with_capacity(a.len());
            for v in a.iter() {
                out.push(match v {
                    None => None,
                    Some(v) => {
                        let (q, r) = (v / divisor, v % divisor);
                        let q = if r.abs() * 2 >= divisor {
                            q + v.signum()
                        } else {
                            q
                        };
                        Some(i64::try_from(q).map_err(|_| {
                            EngineError::Execution(format!(
                                "value {q} is out of range for an integer"
                            ))
                        })?)
                    }
                });
            }
            Ok(Some(Arc::new(Int64Array::from(out))))
        }
        DataType::Float32 | DataType::Float64 => {
            let a = cast_with_options(array, &DataType::Float64, &CastOptions::default())?;
            let rounded: arrow::array::Float64Array = a
                .as_primitive::<arrow::datatypes::Float64Type>()
                .unary(|x| x.round_ties_even());
            Ok(Some(Arc::new(rounded)))
        }
        _ => Ok(None),
    }
}

/// Cast with SQL semantics: invalid values are errors, not silent NULLs.
pub(crate) fn cast_array(array: &dyn Array, to: &DataType) -> Result<ArrayRef> {
    if array.data_type() == to {
        return Ok(arrow::array::make_array(array.to_data()));
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let rounded = if to.is_integer() {
        round_for_integer_cast(array)?
    } else {
        None
    };
    if let Some(rounded) = &rounded {
        if rounded.data_type() == to {
            return Ok(Arc::clone(rounded));
        }
    }
    let source: &dyn Array = rounded.as_deref().unwrap_or(array);
    cast_with_options(source, to, &options).map_err(|e| {
        EngineError::Execution(format!(
            "cannot cast {} to {}: {e}",
            crate::logical::types::sql_type_name(array.data_type()),
            crate::logical::types::sql_type_name(to)
        ))
    })
}
