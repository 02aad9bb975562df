//! Literals and type names: numbers (integers, exact decimals, doubles), strings, booleans,
//! `INTERVAL '...'`, SQL type names → Arrow types, date part names, and identifier case.

use arrow::datatypes::{DataType, TimeUnit};
use sqlparser::ast::{self, Value};

use crate::error::{EngineError, Result};
use crate::logical::expr::DatePart;
use crate::logical::hidden;
use crate::logical::scalar::ScalarValue;

/// An identifier as a name: quoted identifiers keep their case, others are lowercased.
pub(super) fn normalize_ident(ident: &ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// A name the query defines (a column alias, a table or CTE alias): refused when it could be
/// taken for one of planning's hidden names.
pub(super) fn defined_name(ident: &ast::Ident) -> Result<String> {
    hidden::check_user_name(&ident.value, "name")?;
    Ok(normalize_ident(ident))
}

pub(super) fn value_to_scalar(v: &Value) -> Result<ScalarValue> {
    Ok(match v {
        Value::Number(n, _) => number_literal(n)?,
        Value::SingleQuotedString(s)
        | Value::DoubleQuotedString(s)
        | Value::EscapedStringLiteral(s) => ScalarValue::utf8(s),
        Value::Boolean(b) => ScalarValue::boolean(*b),
        Value::Null => ScalarValue::null(&DataType::Null),
        other => return Err(EngineError::NotSupported(format!("literal {other}"))),
    })
}

/// Integer literals are INTEGER or BIGINT; literals with a point are exact DECIMALs; exponents
/// make a DOUBLE.
fn number_literal(n: &str) -> Result<ScalarValue> {
    if n.contains(['e', 'E']) {
        return n
            .parse::<f64>()
            .map(ScalarValue::float64)
            .map_err(|_| EngineError::Plan(format!("invalid number {n}")));
    }
    if let Some((int_part, frac_part)) = n.split_once('.') {
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let scale = frac_part.len();
        let precision = digits.len().max(scale).max(1);
        if precision > 38 {
            return n
                .parse::<f64>()
                .map(ScalarValue::float64)
                .map_err(|_| EngineError::Plan(format!("invalid number {n}")));
        }
        let value: i128 = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| EngineError::Plan(format!("invalid number {n}")))?
        };
        return ScalarValue::decimal128(value, precision as u8, scale as i8);
    }
    if let Ok(v) = n.parse::<i32>() {
        return Ok(ScalarValue::int32(v));
    }
    if let Ok(v) = n.parse::<i64>() {
        return Ok(ScalarValue::int64(v));
    }
    if let Ok(v) = n.parse::<i128>() {
        if n.len() <= 38 {
            return ScalarValue::decimal128(v, 38, 0);
        }
    }
    n.parse::<f64>()
        .map(ScalarValue::float64)
        .map_err(|_| EngineError::Plan(format!("invalid number {n}")))
}

pub(super) fn date_part(name: &str) -> Result<DatePart> {
    let lower = name.to_lowercase();
    Ok(match lower.trim_end_matches('s') {
        "year" => DatePart::Year,
        "quarter" => DatePart::Quarter,
        "month" => DatePart::Month,
        "week" => DatePart::Week,
        "day" => DatePart::Day,
        "dayofweek" | "dow" => DatePart::DayOfWeek,
        "dayofyear" | "doy" => DatePart::DayOfYear,
        "hour" => DatePart::Hour,
        "minute" => DatePart::Minute,
        "second" => DatePart::Second,
        "millisecond" | "m" => DatePart::Millisecond,
        "microsecond" | "u" => DatePart::Microsecond,
        _ => return Err(EngineError::NotSupported(format!("date part {name}"))),
    })
}

pub(super) fn interval_literal(interval: &ast::Interval) -> Result<ScalarValue> {
    let ast::Interval {
        value,
        leading_field,
        leading_precision,
        last_field,
        fractional_seconds_precision,
    } = interval;
    if let Some(last) = last_field {
        return Err(EngineError::NotSupported(format!(
            "an interval ending in a field ({} TO {last})",
            leading_field
                .as_ref()
                .map_or(String::new(), |f| f.to_string())
        )));
    }
    if leading_precision.is_some() || fractional_seconds_precision.is_some() {
        return Err(EngineError::NotSupported(
            "an interval with a field precision".into(),
        ));
    }
    let text = match value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            other => return Err(EngineError::Plan(format!("invalid interval value {other}"))),
        },
        other => {
            return Err(EngineError::NotSupported(format!(
                "non-constant interval {other}"
            )))
        }
    };
    let mut parts: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if let Some(field) = leading_field {
        parts.push(field.to_string());
    }
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    let mut i = 0;
    while i < parts.len() {
        let amount: i64 = parts[i]
            .parse()
            .map_err(|_| EngineError::Plan(format!("invalid interval '{text}'")))?;
        let unit = parts
            .get(i + 1)
            .map(|u| u.to_lowercase())
            .unwrap_or_else(|| "second".into());
        match unit.trim_end_matches('s') {
            "year" => months += 12 * amount,
            "month" => months += amount,
            "week" => days += 7 * amount,
            "day" => days += amount,
            "hour" => nanos += amount * 3_600_000_000_000,
            "minute" => nanos += amount * 60_000_000_000,
            "second" => nanos += amount * 1_000_000_000,
            other => {
                return Err(EngineError::Plan(format!(
                    "unknown interval unit '{other}'"
                )))
            }
        }
        i += 2;
    }
    Ok(ScalarValue::interval(months as i32, days as i32, nanos))
}

/// Convert a SQL type to an Arrow type.
pub(super) fn sql_type(t: &ast::DataType) -> Result<DataType> {
    sql_type_name(&t.to_string())
}

/// Convert a SQL type name (`INTEGER`, `DECIMAL(15,2)`, ...) to an Arrow type.
pub(super) fn sql_type_name(name: &str) -> Result<DataType> {
    let text = name.to_uppercase();
    let (base, params) = match text.split_once('(') {
        Some((b, p)) => (
            b.trim().to_string(),
            Some(p.trim_end_matches(')').to_string()),
        ),
        None => (text.trim().to_string(), None),
    };
    Ok(match base.as_str() {
        "TINYINT" | "INT1" => DataType::Int8,
        "SMALLINT" | "INT2" | "SHORT" => DataType::Int16,
        "INT" | "INTEGER" | "INT4" | "SIGNED" => DataType::Int32,
        "BIGINT" | "INT8" | "LONG" | "INT64" => DataType::Int64,
        "REAL" | "FLOAT4" | "FLOAT32" => DataType::Float32,
        "FLOAT" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" | "FLOAT64" => DataType::Float64,
        "DECIMAL" | "NUMERIC" | "DEC" => {
            let (p, s) = match params {
                Some(p) => {
                    let mut it = p.split(',').map(|x| x.trim().parse::<u8>());
                    let p = it.next().transpose().ok().flatten().unwrap_or(18);
                    let s = it.next().transpose().ok().flatten().unwrap_or(0);
                    (p, s)
                }
                None => (18, 3),
            };
            if p == 0 || p > 38 || s > p {
                return Err(EngineError::Type(format!("invalid DECIMAL({p},{s})")));
            }
            DataType::Decimal128(p, s as i8)
        }
        "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "CHARACTER VARYING" | "BPCHAR" => DataType::Utf8,
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "DATE" => DataType::Date32,
        "TIMESTAMP" | "DATETIME" | "TIMESTAMP WITHOUT TIME ZONE" => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        _ => return Err(EngineError::NotSupported(format!("type {name}"))),
    })
}
