//! Date functions: `date_trunc`, `date_diff`, `make_date`, `last_day`, on `DATE` values (days
//! since 1970-01-01), with the proleptic Gregorian calendar computed here, and on `TIMESTAMP`
//! values: calendar parts on their date, time-of-day parts (`hour` ... `microsecond`) on the
//! microseconds since 1970-01-01 00:00.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Date32Type, Int64Type, TimeUnit, TimestampMicrosecondType};

use super::cast_array;
use crate::error::{EngineError, Result};
use crate::logical::expr::DatePart;

/// (year, month 1–12, day 1–31) of a day number.
fn civil(days: i32) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number of (year, month, day), if the date exists.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i32> {
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn dates(a: &ArrayRef) -> Result<ArrayRef> {
    cast_array(a, &DataType::Date32)
}

fn map_dates(a: &ArrayRef, f: impl Fn(i32) -> Option<i32>) -> Result<ArrayRef> {
    let a = dates(a)?;
    let out: Date32Array = a
        .as_primitive::<Date32Type>()
        .iter()
        .map(|d| d.and_then(&f))
        .collect();
    Ok(Arc::new(out))
}

fn timestamps(a: &ArrayRef) -> Result<ArrayRef> {
    cast_array(a, &DataType::Timestamp(TimeUnit::Microsecond, None))
}

/// `date_part('millisecond' | 'microsecond', t)`: the seconds of `t` with their fraction, in
/// that unit (`12.5` seconds: 12500 milliseconds).
pub(super) fn sub_second_part(part: DatePart, t: &ArrayRef) -> Result<ArrayRef> {
    let unit = part.micros().unwrap_or(1);
    let t = timestamps(t)?;
    let out: Int64Array = t
        .as_primitive::<TimestampMicrosecondType>()
        .iter()
        .map(|v| v.map(|v| v.rem_euclid(60_000_000) / unit))
        .collect();
    Ok(Arc::new(out))
}

/// `date_trunc(part, d)`: the first day of `d`'s year, quarter, month or ISO week (`day`:
/// `d` itself), a `DATE`; for a time-of-day part, the `TIMESTAMP` at the start of `d`'s hour,
/// minute, second, millisecond.
pub(super) fn date_trunc(part: DatePart, d: &ArrayRef) -> Result<ArrayRef> {
    if let Some(unit) = part.micros() {
        let t = timestamps(d)?;
        let out: TimestampMicrosecondArray = t
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.map(|v| v.div_euclid(unit) * unit))
            .collect();
        return Ok(Arc::new(out));
    }
    let first = |y: i64, m: u32| days_from_civil(y, m, 1);
    match part {
        DatePart::Year => map_dates(d, |v| first(civil(v).0, 1)),
        DatePart::Quarter => map_dates(d, |v| {
            let (y, m, _) = civil(v);
            first(y, (m - 1) / 3 * 3 + 1)
        }),
        DatePart::Month => map_dates(d, |v| {
            let (y, m, _) = civil(v);
            first(y, m)
        }),
        // Monday of the week: 1970-01-01 was a Thursday.
        DatePart::Week => map_dates(d, |v| Some(v - (v + 3).rem_euclid(7))),
        DatePart::Day => map_dates(d, Some),
        other => Err(EngineError::NotSupported(format!(
            "date_trunc() to {other:?} of a DATE"
        ))),
    }
}

/// `date_diff(part, a, b)`: the number of `part` boundaries from `a` to `b` (negative when `b`
/// is earlier).
pub(super) fn date_diff(part: DatePart, a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef> {
    if let Some(unit) = part.micros() {
        let (a, b) = (timestamps(a)?, timestamps(b)?);
        let (a, b) = (
            a.as_primitive::<TimestampMicrosecondType>(),
            b.as_primitive::<TimestampMicrosecondType>(),
        );
        let out: Int64Array = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| Some(y?.div_euclid(unit) - x?.div_euclid(unit)))
            .collect();
        return Ok(Arc::new(out));
    }
    let (a, b) = (dates(a)?, dates(b)?);
    let (a, b) = (
        a.as_primitive::<Date32Type>(),
        b.as_primitive::<Date32Type>(),
    );
    let months = |v: i32| {
        let (y, m, _) = civil(v);
        y * 12 + m as i64 - 1
    };
    let diff = |x: i32, y: i32| -> Result<i64> {
        Ok(match part {
            DatePart::Day => y as i64 - x as i64,
            DatePart::Week => (y as i64 - x as i64) / 7,
            DatePart::Month => months(y) - months(x),
            DatePart::Quarter => months(y).div_euclid(3) - months(x).div_euclid(3),
            DatePart::Year => civil(y).0 - civil(x).0,
            other => {
                return Err(EngineError::NotSupported(format!(
                    "date_diff() in {other:?} of DATEs"
                )))
            }
        })
    };
    let out = (0..a.len())
        .map(|i| {
            if a.is_null(i) || b.is_null(i) {
                Ok(None)
            } else {
                diff(a.value(i), b.value(i)).map(Some)
            }
        })
        .collect::<Result<Int64Array>>()?;
    Ok(Arc::new(out))
}

/// `make_date(year, month, day)`; an impossible date is an error naming it.
pub(super) fn make_date(y: &ArrayRef, m: &ArrayRef, d: &ArrayRef) -> Result<ArrayRef> {
    let cast = |a: &ArrayRef| cast_array(a, &DataType::Int64);
    let (y, m, d) = (cast(y)?, cast(m)?, cast(d)?);
    let (y, m, d) = (
        y.as_primitive::<Int64Type>(),
        m.as_primitive::<Int64Type>(),
        d.as_primitive::<Int64Type>(),
    );
    let out = (0..y.len())
        .map(|i| {
            if y.is_null(i) || m.is_null(i) || d.is_null(i) {
                return Ok(None);
            }
            let (yy, mm, dd) = (y.value(i), m.value(i), d.value(i));
            let day = u32::try_from(mm)
                .ok()
                .zip(u32::try_from(dd).ok())
                .and_then(|(mm, dd)| days_from_civil(yy, mm, dd));
            day.map(Some).ok_or_else(|| {
                EngineError::Execution(format!("make_date({yy}, {mm}, {dd}) is not a date"))
            })
        })
        .collect::<Result<Date32Array>>()?;
    Ok(Arc::new(out))
}

/// `last_day(d)`: the last day of `d`'s month.
pub(super) fn last_day(d: &ArrayRef) -> Result<ArrayRef> {
    map_dates(d, |v| {
        let (y, m, _) = civil(v);
        days_from_civil(y, m, days_in_month(y, m))
    })
}

/// A `strftime`/`strptime` format checked once: chrono's items, or an error naming the format.
fn parse_format(format: &str) -> Result<Vec<chrono::format::Item<'_>>> {
    let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
    if items
        .iter()
        .any(|i| matches!(i, chrono::format::Item::Error))
    {
        return Err(EngineError::Plan(format!(
            "invalid date format '{format}' (use strftime specifiers such as %Y-%m-%d %H:%M:%S)"
        )));
    }
    Ok(items)
}

/// The formats of a format column, checked and cached by text (usually one constant).
struct Formats<'a> {
    formats: &'a arrow::array::StringArray,
    cache: Vec<(&'a str, Vec<chrono::format::Item<'a>>)>,
}

impl<'a> Formats<'a> {
    fn get(&mut self, i: usize) -> Result<Option<&[chrono::format::Item<'a>]>> {
        if self.formats.is_null(i) {
            return Ok(None);
        }
        let text = self.formats.value(i);
        let position = match self.cache.iter().position(|(t, _)| *t == text) {
            Some(p) => p,
            None => {
                self.cache.push((text, parse_format(text)?));
                self.cache.len() - 1
            }
        };
        Ok(Some(&self.cache[position].1))
    }
}

/// `strftime(d, format)`: dates and timestamps (microseconds) as text.
pub(super) fn strftime(d: &ArrayRef, format: &ArrayRef) -> Result<ArrayRef> {
    use std::fmt::Write;
    let micros = match d.data_type() {
        DataType::Date32 => {
            let days = d.as_primitive::<Date32Type>();
            let as_micros: arrow::array::Int64Array = days
                .iter()
                .map(|v| v.map(|days| i64::from(days) * 86_400_000_000))
                .collect();
            as_micros
        }
        _ => {
            let cast = cast_array(d, &DataType::Int64)?;
            cast.as_primitive::<Int64Type>().clone()
        }
    };
    let formats = cast_array(format, &DataType::Utf8)?;
    let mut formats = Formats {
        formats: formats.as_string::<i32>(),
        cache: Vec::new(),
    };
    let mut out = arrow::array::StringBuilder::with_capacity(micros.len(), micros.len() * 16);
    let mut text = String::new();
    for i in 0..micros.len() {
        let Some(items) = formats.get(i)? else {
            out.append_null();
            continue;
        };
        if micros.is_null(i) {
            out.append_null();
            continue;
        }
        let Some(at) = chrono::DateTime::from_timestamp_micros(micros.value(i)) else {
            out.append_null();
            continue;
        };
        text.clear();
        write!(text, "{}", at.naive_utc().format_with_items(items.iter()))
            .map_err(|_| EngineError::Plan("strftime(): the format does not apply".into()))?;
        out.append_value(&text);
    }
    Ok(Arc::new(out.finish()))
}

/// `strptime(text, format)`: a TIMESTAMP (microseconds); a format without a time of day
/// gives midnight. Text that does not match fails the query when `strict`, else is NULL.
pub(super) fn strptime(text: &ArrayRef, format: &ArrayRef, strict: bool) -> Result<ArrayRef> {
    let text = cast_array(text, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let formats = cast_array(format, &DataType::Utf8)?;
    let mut formats = Formats {
        formats: formats.as_string::<i32>(),
        cache: Vec::new(),
    };
    let mut out = arrow::array::TimestampMicrosecondBuilder::with_capacity(text.len());
    for i in 0..text.len() {
        let Some(items) = formats.get(i)? else {
            out.append_null();
            continue;
        };
        if text.is_null(i) {
            out.append_null();
            continue;
        }
        let value = text.value(i);
        let mut parsed = chrono::format::Parsed::new();
        let result = chrono::format::parse(&mut parsed, value, items.iter())
            .ok()
            .and_then(|_| {
                parsed.to_naive_datetime_with_offset(0).ok().or_else(|| {
                    parsed
                        .to_naive_date()
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })
            });
        match result {
            Some(at) => out.append_value(at.and_utc().timestamp_micros()),
            None if strict => {
                return Err(EngineError::Execution(format!(
                    "strptime(): '{value}' does not match the format '{}'",
                    formats.formats.value(i)
                )))
            }
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        for days in [-719_468, -1, 0, 1, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), Some(days), "{days}");
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(days_from_civil(2023, 2, 29), None);
    }
}
