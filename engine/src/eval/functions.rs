//! The scalar function library: string functions (`upper`, `substring`, `trim`, `LIKE`
//! helpers, ...), date parts, `coalesce`, `abs`, `round`. One `match` on
//! [`ScalarFunction`] dispatches to Arrow kernels or to small loops here.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, Scalar, StringBuilder};
use arrow::compute::kernels::{cmp, numeric, zip::zip};
use arrow::compute::DatePart as ArrowDatePart;
use arrow::datatypes::DataType;

use super::{cast_array, datum_kernel, ColumnarValue};
use crate::error::{EngineError, Result};
use crate::logical::expr::{DatePart, ScalarFunction};
use crate::logical::scalar::ScalarValue;

fn string_map(
    value: &ColumnarValue,
    n: usize,
    f: impl Fn(&str) -> String,
) -> Result<ColumnarValue> {
    let scalar = matches!(value, ColumnarValue::Scalar(_));
    let array = cast_array(
        &value.clone().into_array(if scalar { 1 } else { n })?,
        &DataType::Utf8,
    )?;
    let strings = array.as_string::<i32>();
    let mut builder = StringBuilder::with_capacity(strings.len(), strings.value_data().len());
    for s in strings.iter() {
        match s {
            Some(s) => builder.append_value(f(s)),
            None => builder.append_null(),
        }
    }
    let out: ArrayRef = Arc::new(builder.finish());
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::from_array(out))
    } else {
        ColumnarValue::Array(out)
    })
}

pub(super) fn evaluate_function(
    func: ScalarFunction,
    args: Vec<ColumnarValue>,
    result_type: &DataType,
    n: usize,
) -> Result<ColumnarValue> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if all_scalar { 1 } else { n };
    let wrap = |a: ArrayRef| {
        if all_scalar {
            ColumnarValue::Scalar(ScalarValue::from_array(a))
        } else {
            ColumnarValue::Array(a)
        }
    };
    match func {
        ScalarFunction::Upper => string_map(&args[0], n, |s| s.to_uppercase()),
        ScalarFunction::Lower => string_map(&args[0], n, |s| s.to_lowercase()),
        ScalarFunction::Trim => string_map(&args[0], n, |s| s.trim_matches(' ').to_string()),
        ScalarFunction::LTrim => string_map(&args[0], n, |s| s.trim_start_matches(' ').to_string()),
        ScalarFunction::RTrim => string_map(&args[0], n, |s| s.trim_end_matches(' ').to_string()),
        ScalarFunction::Length => {
            let array = cast_array(&args[0].clone().into_array(rows)?, &DataType::Utf8)?;
            let out: Int64Array = array
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(|s| s.chars().count() as i64))
                .collect();
            Ok(wrap(Arc::new(out)))
        }
        ScalarFunction::Substring => {
            let strings = cast_array(&args[0].clone().into_array(rows)?, &DataType::Utf8)?;
            let strings = strings.as_string::<i32>();
            let starts = args[1].clone().into_array(rows)?;
            let starts = starts.as_primitive::<arrow::datatypes::Int64Type>();
            let lengths = match args.get(2) {
                Some(l) => Some(l.clone().into_array(rows)?),
                None => None,
            };
            let lengths = lengths
                .as_ref()
                .map(|l| l.as_primitive::<arrow::datatypes::Int64Type>());
            let mut builder = StringBuilder::with_capacity(rows, 0);
            for i in 0..rows {
                if strings.is_null(i) || starts.is_null(i) || lengths.is_some_and(|l| l.is_null(i))
                {
                    builder.append_null();
                    continue;
                }
                builder.append_value(sql_substring(
                    strings.value(i),
                    starts.value(i),
                    lengths.map(|l| l.value(i)),
                ));
            }
            Ok(wrap(Arc::new(builder.finish())))
        }
        ScalarFunction::StartsWith | ScalarFunction::EndsWith | ScalarFunction::Contains => {
            use arrow::compute::kernels::comparison as like;
            datum_kernel(&args[0], &args[1], move |a, b| {
                let out = match func {
                    ScalarFunction::StartsWith => like::starts_with(a, b)?,
                    ScalarFunction::EndsWith => like::ends_with(a, b)?,
                    _ => like::contains(a, b)?,
                };
                Ok(Arc::new(out))
            })
        }
        ScalarFunction::RegexpMatches => {
            let pattern = match &args[1] {
                ColumnarValue::Scalar(s) => match s.as_str() {
                    Some(p) => p,
                    None => {
                        return Ok(ColumnarValue::Scalar(ScalarValue::null(&DataType::Boolean)))
                    }
                },
                ColumnarValue::Array(_) => {
                    return Err(EngineError::NotSupported(
                        "regexp_matches() with a non-constant pattern".into(),
                    ))
                }
            };
            let strings = cast_array(&args[0].clone().into_array(rows)?, &DataType::Utf8)?;
            // RE2's ASCII classes, as DuckDB has them.
            let pattern = super::strings::ascii_classes(&pattern);
            let out =
                arrow::compute::regexp_is_match_scalar(strings.as_string::<i32>(), &pattern, None)?;
            Ok(wrap(Arc::new(out)))
        }
        ScalarFunction::RegexpReplace | ScalarFunction::RegexpExtract => {
            let text = |i: usize, what: &str| -> Result<Option<String>> {
                match args.get(i) {
                    None => Ok(Some(String::new())),
                    Some(ColumnarValue::Scalar(s)) => Ok(s.as_str()),
                    Some(ColumnarValue::Array(_)) => Err(EngineError::NotSupported(format!(
                        "{}() with a non-constant {what}",
                        func.name()
                    ))),
                }
            };
            let null = || Ok(ColumnarValue::Scalar(ScalarValue::null(&DataType::Utf8)));
            let Some(pattern) = text(1, "pattern")? else {
                return null();
            };
            let values = args[0].clone().into_array(rows)?;
            let out = if func == ScalarFunction::RegexpReplace {
                let (Some(replacement), Some(flags)) = (text(2, "replacement")?, text(3, "flags")?)
                else {
                    return null();
                };
                let (re, global) = super::strings::regex(&pattern, &flags)?;
                super::strings::regexp_replace(&values, &re, &replacement, global)?
            } else {
                let group = match args.get(2) {
                    None => 0,
                    Some(ColumnarValue::Scalar(s)) => match s.as_i64() {
                        Some(g) => usize::try_from(g).map_err(|_| {
                            EngineError::Plan(format!("regexp_extract() group {g} is negative"))
                        })?,
                        None => return null(),
                    },
                    Some(ColumnarValue::Array(_)) => {
                        return Err(EngineError::NotSupported(
                            "regexp_extract() with a non-constant group".into(),
                        ))
                    }
                };
                let (re, _) = super::strings::regex(&pattern, "")?;
                super::strings::regexp_extract(&values, &re, group)?
            };
            Ok(wrap(out))
        }
        ScalarFunction::Concat => {
            let strings = args
                .into_iter()
                .map(|a| cast_array(&a.into_array(rows)?, &DataType::Utf8))
                .collect::<Result<Vec<_>>>()?;
            let bytes: usize = strings
                .iter()
                .map(|s| s.as_string::<i32>().value_data().len())
                .sum();
            let mut builder = StringBuilder::with_capacity(rows, bytes);
            let mut row = String::new();
            for i in 0..rows {
                row.clear();
                for s in &strings {
                    let s = s.as_string::<i32>();
                    if s.is_valid(i) {
                        row.push_str(s.value(i));
                    }
                }
                builder.append_value(&row);
            }
            Ok(wrap(Arc::new(builder.finish())))
        }
        ScalarFunction::Coalesce => {
            let mut iter = args.into_iter().rev();
            let mut acc = iter
                .next()
                .expect("coalesce has arguments")
                .into_array(rows)?;
            for value in iter {
                let value = value.into_array(rows)?;
                let mask = arrow::compute::is_not_null(&value)?;
                acc = zip(&mask, &value, &acc)?;
            }
            if acc.data_type() != result_type {
                acc = cast_array(&acc, result_type)?;
            }
            Ok(wrap(acc))
        }
        ScalarFunction::Extract(part) => {
            let array = args[0].clone().into_array(rows)?;
            let arrow_part = match part {
                DatePart::Year => ArrowDatePart::Year,
                DatePart::Quarter => ArrowDatePart::Quarter,
                DatePart::Month => ArrowDatePart::Month,
                DatePart::Week => ArrowDatePart::Week,
                DatePart::Day => ArrowDatePart::Day,
                DatePart::DayOfWeek => ArrowDatePart::DayOfWeekSunday0,
                DatePart::DayOfYear => ArrowDatePart::DayOfYear,
                DatePart::Hour => ArrowDatePart::Hour,
                DatePart::Minute => ArrowDatePart::Minute,
                DatePart::Second => ArrowDatePart::Second,
                // Seconds with their fraction, which Arrow's parts do not give.
                DatePart::Millisecond | DatePart::Microsecond => {
                    return Ok(wrap(super::dates::sub_second_part(part, &array)?))
                }
            };
            let out = arrow::compute::date_part(&array, arrow_part)?;
            Ok(wrap(cast_array(&out, &DataType::Int64)?))
        }
        ScalarFunction::Floor
        | ScalarFunction::Ceil
        | ScalarFunction::Sqrt
        | ScalarFunction::Ln
        | ScalarFunction::Log10
        | ScalarFunction::Exp
        | ScalarFunction::Power
        | ScalarFunction::Sign
        | ScalarFunction::Greatest
        | ScalarFunction::Least
        | ScalarFunction::Replace
        | ScalarFunction::Reverse
        | ScalarFunction::Left
        | ScalarFunction::Right
        | ScalarFunction::Strpos
        | ScalarFunction::Lpad
        | ScalarFunction::Rpad
        | ScalarFunction::SplitPart
        | ScalarFunction::ConcatWs
        | ScalarFunction::DateTrunc(_)
        | ScalarFunction::DateDiff(_)
        | ScalarFunction::MakeDate
        | ScalarFunction::LastDay
        | ScalarFunction::Strftime
        | ScalarFunction::Strptime { .. } => {
            let arrays = args
                .into_iter()
                .map(|a| a.into_array(rows))
                .collect::<Result<Vec<_>>>()?;
            Ok(wrap(library(func, &arrays)?))
        }
        ScalarFunction::Grouping => Err(EngineError::Plan(
            "grouping() is only valid in a SELECT with GROUP BY".into(),
        )),
        ScalarFunction::Abs => {
            let array = args[0].clone().into_array(rows)?;
            let zero = ScalarValue::int32(0).cast_to(array.data_type())?;
            let negative = cmp::lt(&array, &Scalar::new(zero.array()))?;
            let negated = numeric::neg(&array)?;
            Ok(wrap(zip(&negative, &negated, &array)?))
        }
        ScalarFunction::Round => {
            let array = args[0].clone().into_array(rows)?;
            let digits = match args.get(1) {
                Some(ColumnarValue::Scalar(s)) => s.as_i64(),
                Some(_) => {
                    return Err(EngineError::NotSupported(
                        "round() with digits that are not a constant".into(),
                    ))
                }
                None => Some(0),
            };
            // round(x, NULL) is NULL.
            let Some(digits) = digits else {
                return Ok(wrap(arrow::array::new_null_array(result_type, rows)));
            };
            let out = super::math::round(&array, digits, result_type)?;
            Ok(wrap(out))
        }
    }
}

/// The functions of [`super::math`], [`super::strings`] and [`super::dates`], over arrays of
/// one length.
fn library(func: ScalarFunction, a: &[ArrayRef]) -> Result<ArrayRef> {
    use super::{dates, math, strings};
    match func {
        ScalarFunction::Floor => math::round_to_integer(&a[0], false),
        ScalarFunction::Ceil => math::round_to_integer(&a[0], true),
        ScalarFunction::Sqrt => math::float_map(&a[0], f64::sqrt),
        ScalarFunction::Ln => math::float_map(&a[0], f64::ln),
        ScalarFunction::Log10 => math::float_map(&a[0], f64::log10),
        ScalarFunction::Exp => math::float_map(&a[0], f64::exp),
        ScalarFunction::Power => math::power(&a[0], &a[1]),
        ScalarFunction::Sign => math::sign(&a[0]),
        ScalarFunction::Greatest => math::extreme(a, true),
        ScalarFunction::Least => math::extreme(a, false),
        ScalarFunction::Replace => strings::replace(&a[0], &a[1], &a[2]),
        ScalarFunction::Reverse => strings::reverse(&a[0]),
        ScalarFunction::Left => strings::edge(&a[0], &a[1], true),
        ScalarFunction::Right => strings::edge(&a[0], &a[1], false),
        ScalarFunction::Strpos => strings::strpos(&a[0], &a[1]),
        ScalarFunction::Lpad => strings::pad(&a[0], &a[1], &a[2], true),
        ScalarFunction::Rpad => strings::pad(&a[0], &a[1], &a[2], false),
        ScalarFunction::SplitPart => strings::split_part(&a[0], &a[1], &a[2]),
        ScalarFunction::ConcatWs => strings::concat_ws(&a[0], &a[1..]),
        ScalarFunction::DateTrunc(part) => dates::date_trunc(part, &a[0]),
        ScalarFunction::DateDiff(part) => dates::date_diff(part, &a[0], &a[1]),
        ScalarFunction::MakeDate => dates::make_date(&a[0], &a[1], &a[2]),
        ScalarFunction::LastDay => dates::last_day(&a[0]),
        ScalarFunction::Strftime => dates::strftime(&a[0], &a[1]),
        ScalarFunction::Strptime { strict } => dates::strptime(&a[0], &a[1], strict),
        other => Err(EngineError::Internal(format!(
            "{} is not a library function",
            other.name()
        ))),
    }
}

/// SQL `substring(s, start, length)`: 1-based character positions; positions before the start
/// of the string count against the length.
pub(crate) fn sql_substring(s: &str, start: i64, length: Option<i64>) -> String {
    let end = match length {
        Some(l) if l < 0 => return String::new(),
        Some(l) => start.saturating_add(l),
        None => i64::MAX,
    };
    let first = start.max(1);
    if end <= first {
        return String::new();
    }
    s.chars()
        .skip((first - 1) as usize)
        .take(usize::try_from(end - first).unwrap_or(usize::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_follows_sql() {
        assert_eq!(sql_substring("hello", 2, Some(3)), "ell");
        assert_eq!(sql_substring("hello", 0, Some(3)), "he");
        assert_eq!(sql_substring("straße", 5, None), "ße");
        assert_eq!(sql_substring("abc", 5, Some(2)), "");
    }
}
