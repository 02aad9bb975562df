//! String functions beyond the basics: `replace`, `reverse`, `left`, `right`, `strpos`
//! (`position`), `lpad`, `rpad`, `split_part`, `concat_ws`. Positions and lengths count
//! characters, not bytes; NULL in, NULL out (but `concat_ws` skips NULL parts).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Int64Type};

use super::cast_array;
use crate::error::Result;

fn strings(a: &ArrayRef) -> Result<ArrayRef> {
    cast_array(a, &DataType::Utf8)
}

/// A string result per row from `f`, NULL where any argument is.
fn build(rows: usize, args: &[ArrayRef], f: impl Fn(usize) -> Option<String>) -> Result<ArrayRef> {
    let mut builder = StringBuilder::with_capacity(rows, 0);
    for i in 0..rows {
        if args.iter().any(|a| a.is_null(i)) {
            builder.append_null();
            continue;
        }
        match f(i) {
            Some(s) => builder.append_value(s),
            None => builder.append_null(),
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// `replace(s, from, to)`: every occurrence.
pub(super) fn replace(s: &ArrayRef, from: &ArrayRef, to: &ArrayRef) -> Result<ArrayRef> {
    let (s, from, to) = (strings(s)?, strings(from)?, strings(to)?);
    let (a, b, c) = (
        s.as_string::<i32>(),
        from.as_string::<i32>(),
        to.as_string::<i32>(),
    );
    build(
        s.len(),
        &[Arc::clone(&s), Arc::clone(&from), Arc::clone(&to)],
        |i| {
            let pattern = b.value(i);
            Some(if pattern.is_empty() {
                a.value(i).to_string()
            } else {
                a.value(i).replace(pattern, c.value(i))
            })
        },
    )
}

/// `reverse(s)`, by characters.
pub(super) fn reverse(s: &ArrayRef) -> Result<ArrayRef> {
    let s = strings(s)?;
    let a = s.as_string::<i32>();
    build(s.len(), &[Arc::clone(&s)], |i| {
        Some(a.value(i).chars().rev().collect())
    })
}

/// `left(s, n)` (`from_left`) or `right(s, n)`: the first or last `n` characters; a negative
/// `n` drops that many from the other end.
pub(super) fn edge(s: &ArrayRef, n: &ArrayRef, from_left: bool) -> Result<ArrayRef> {
    let s = strings(s)?;
    let a = s.as_string::<i32>();
    let counts = n.as_primitive::<Int64Type>();
    build(s.len(), &[Arc::clone(&s), Arc::clone(n)], |i| {
        let chars: Vec<char> = a.value(i).chars().collect();
        let len = chars.len() as i64;
        let k = counts.value(i);
        let keep = if k >= 0 { k.min(len) } else { (len + k).max(0) } as usize;
        Some(if from_left {
            chars[..keep].iter().collect()
        } else {
            chars[chars.len() - keep..].iter().collect()
        })
    })
}

/// `strpos(s, sub)`: the 1-based character position of the first `sub` in `s`, 0 if none.
pub(super) fn strpos(s: &ArrayRef, sub: &ArrayRef) -> Result<ArrayRef> {
    let (s, sub) = (strings(s)?, strings(sub)?);
    let (a, b) = (s.as_string::<i32>(), sub.as_string::<i32>());
    let out: Int64Array = (0..s.len())
        .map(|i| {
            if a.is_null(i) || b.is_null(i) {
                return None;
            }
            let hay = a.value(i);
            Some(match hay.find(b.value(i)) {
                Some(byte) => hay[..byte].chars().count() as i64 + 1,
                None => 0,
            })
        })
        .collect();
    Ok(Arc::new(out))
}

/// `lpad(s, n, fill)` (`left`) or `rpad`: `s` cut or padded with `fill` to `n` characters.
pub(super) fn pad(s: &ArrayRef, n: &ArrayRef, fill: &ArrayRef, left: bool) -> Result<ArrayRef> {
    let (s, fill) = (strings(s)?, strings(fill)?);
    let (a, f) = (s.as_string::<i32>(), fill.as_string::<i32>());
    let counts = n.as_primitive::<Int64Type>();
    build(
        s.len(),
        &[Arc::clone(&s), Arc::clone(n), Arc::clone(&fill)],
        |i| {
            let target = counts.value(i).max(0) as usize;
            let chars: Vec<char> = a.value(i).chars().collect();
            if chars.len() >= target {
                return Some(chars[..target].iter().collect());
            }
            let filler: Vec<char> = f.value(i).chars().collect();
            if filler.is_empty() {
                return Some(a.value(i).to_string());
            }
            let padding: String = filler.iter().cycle().take(target - chars.len()).collect();
            Some(if left {
                padding + a.value(i)
            } else {
                a.value(i).to_string() + &padding
            })
        },
    )
}

/// `split_part(s, delimiter, n)`: the n-th (1-based; negative counts from the end) part, or
/// the empty string past the last.
pub(super) fn split_part(s: &ArrayRef, delimiter: &ArrayRef, n: &ArrayRef) -> Result<ArrayRef> {
    let (s, delimiter) = (strings(s)?, strings(delimiter)?);
    let (a, d) = (s.as_string::<i32>(), delimiter.as_string::<i32>());
    let index = n.as_primitive::<Int64Type>();
    build(
        s.len(),
        &[Arc::clone(&s), Arc::clone(&delimiter), Arc::clone(n)],
        |i| {
            let text = a.value(i);
            let parts: Vec<&str> = if d.value(i).is_empty() {
                vec![text]
            } else {
                text.split(d.value(i)).collect()
            };
            let k = index.value(i);
            let part = if k > 0 {
                parts.get(k as usize - 1)
            } else if k < 0 {
                parts
                    .len()
                    .checked_sub(k.unsigned_abs() as usize)
                    .and_then(|j| parts.get(j))
            } else {
                None
            };
            Some(part.map_or(String::new(), |p| p.to_string()))
        },
    )
}

/// `concat_ws(separator, parts...)`: the non-NULL parts joined; NULL if the separator is.
pub(super) fn concat_ws(separator: &ArrayRef, parts: &[ArrayRef]) -> Result<ArrayRef> {
    let separator = strings(separator)?;
    let sep = separator.as_string::<i32>();
    let parts = parts.iter().map(strings).collect::<Result<Vec<_>>>()?;
    let views: Vec<&StringArray> = parts.iter().map(|p| p.as_string::<i32>()).collect();
    build(separator.len(), &[Arc::clone(&separator)], |i| {
        let values: Vec<&str> = views
            .iter()
            .filter(|v| v.is_valid(i))
            .map(|v| v.value(i))
            .collect();
        Some(values.join(sep.value(i)))
    })
}
