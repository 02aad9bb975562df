//! String functions beyond the basics: `replace`, `reverse`, `left`, `right`, `strpos`
//! (`position`), `lpad`, `rpad`, `split_part`, `concat_ws`, `regexp_replace`,
//! `regexp_extract`. Positions and lengths count characters, not bytes; NULL in, NULL out (but
//! `concat_ws` skips NULL parts).

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

/// `pattern` with RE2's (and so DuckDB's) ASCII-only classes: `\w`, `\d`, `\s` and `\b` (and
/// their negations) mean ASCII there, Unicode in the `regex` crate.
pub(crate) fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(&next) = chars.peek() else {
                    out.push(c);
                    continue;
                };
                chars.next();
                let (outside, inside) = match next {
                    'w' => ("[0-9A-Za-z_]", Some("0-9A-Za-z_")),
                    'W' => ("[^0-9A-Za-z_]", None),
                    'd' => ("[0-9]", Some("0-9")),
                    'D' => ("[^0-9]", None),
                    's' => ("[\\t\\n\\f\\r ]", Some("\\t\\n\\f\\r ")),
                    'S' => ("[^\\t\\n\\f\\r ]", None),
                    'b' if !in_class => ("(?-u:\\b)", None),
                    'B' if !in_class => ("(?-u:\\B)", None),
                    _ => {
                        out.push('\\');
                        out.push(next);
                        continue;
                    }
                };
                match (in_class, inside) {
                    (false, _) => out.push_str(outside),
                    (true, Some(members)) => out.push_str(members),
                    (true, None) => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a member, not the end.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out
}

/// A regular expression for a constant pattern and flags (`i`: case-insensitive, `c`:
/// case-sensitive, `g`: every match, for `regexp_replace`); returns it and the `g` flag.
pub(super) fn regex(pattern: &str, flags: &str) -> Result<(regex::Regex, bool)> {
    let mut builder = regex::RegexBuilder::new(&ascii_classes(pattern));
    let mut global = false;
    for flag in flags.chars() {
        match flag {
            'i' => {
                builder.case_insensitive(true);
            }
            'c' => {
                builder.case_insensitive(false);
            }
            'g' => global = true,
            other => {
                return Err(crate::error::EngineError::NotSupported(format!(
                    "regular expression flag '{other}' (supported: g, i, c)"
                )))
            }
        }
    }
    let re = builder.build().map_err(|e| {
        crate::error::EngineError::Plan(format!("invalid regular expression '{pattern}': {e}"))
    })?;
    Ok((re, global))
}

/// `regexp_replace(s, pattern, replacement[, flags])`: the first match (every match with
/// `g`) replaced; `\1`..`\9` in the replacement are the groups, as in DuckDB.
pub(super) fn regexp_replace(
    s: &ArrayRef,
    re: &regex::Regex,
    replacement: &str,
    global: bool,
) -> Result<ArrayRef> {
    // DuckDB's `\N` group references in the regex crate's `${N}` syntax; `$` is literal.
    let mut template = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => template.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    template.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    template.push('\\');
                    chars.next();
                }
                _ => template.push('\\'),
            },
            other => template.push(other),
        }
    }
    let s = strings(s)?;
    let a = s.as_string::<i32>();
    build(s.len(), &[Arc::clone(&s)], |i| {
        let text = a.value(i);
        Some(if global {
            re.replace_all(text, template.as_str()).into_owned()
        } else {
            re.replace(text, template.as_str()).into_owned()
        })
    })
}

/// `regexp_extract(s, pattern[, group])`: the group (0: the whole match) of the first match,
/// or the empty string when nothing matches.
pub(super) fn regexp_extract(s: &ArrayRef, re: &regex::Regex, group: usize) -> Result<ArrayRef> {
    if group >= re.captures_len() {
        return Err(crate::error::EngineError::Plan(format!(
            "regexp_extract() group {group} does not exist in '{}'",
            re.as_str()
        )));
    }
    let s = strings(s)?;
    let a = s.as_string::<i32>();
    build(s.len(), &[Arc::clone(&s)], |i| {
        Some(
            re.captures(a.value(i))
                .and_then(|c| c.get(group))
                .map_or(String::new(), |m| m.as_str().to_string()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::ascii_classes;

    #[test]
    fn classes_become_ascii_as_in_re2() {
        assert_eq!(
            ascii_classes(r"^(\w)(\w*)"),
            "^([0-9A-Za-z_])([0-9A-Za-z_]*)"
        );
        assert_eq!(ascii_classes(r"[\d.]+\b"), r"[0-9.]+(?-u:\b)");
        assert_eq!(ascii_classes(r"\\w"), r"\\w");
        assert_eq!(ascii_classes(r"[]\w]"), "[]0-9A-Za-z_]");
    }
}
