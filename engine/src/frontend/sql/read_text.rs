//! `read_csv(...)` and `read_ndjson(...)` / `read_json(...)`: text files in FROM, with
//! DuckDB's option names. Every option is either applied or refused by name.
//!
//! ```sql
//! SELECT * FROM read_csv('data/*.csv.gz', delim = '|', header = false,
//!                        nullstr = ['NA', ''], types = {'price': 'DECIMAL(15,2)'},
//!                        ignore_errors = true, sample_size = 100000)
//! ```

use sqlparser::ast::{self, FunctionArg, FunctionArgExpr, TableFactor, Value};

use super::literals::sql_type_name;
use super::not_supported;
use crate::error::{EngineError, Result};
use ooc_io::{Compression, CsvOptions, TextFormat, TextOptions};

/// Which table function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TextFunction {
    Csv,
    NdJson,
}

impl TextFunction {
    /// The table function of this name, if it reads text.
    pub(super) fn from_name(name: &str) -> Option<Self> {
        match name {
            "read_csv" | "read_csv_auto" => Some(TextFunction::Csv),
            "read_json" | "read_json_auto" | "read_ndjson" | "read_ndjson_auto" => {
                Some(TextFunction::NdJson)
            }
            _ => None,
        }
    }
}

/// The locations and options of a `read_csv(...)` / `read_ndjson(...)` call.
pub(super) fn text_function_args(
    function: TextFunction,
    name: &str,
    args: &[FunctionArg],
    at: &TableFactor,
) -> Result<(Vec<String>, TextOptions)> {
    let mut csv = CsvOptions::default();
    let mut options = TextOptions::new(match function {
        TextFunction::Csv => TextFormat::Csv(CsvOptions::default()),
        TextFunction::NdJson => TextFormat::NdJson,
    });
    let mut locations = Vec::new();
    for arg in args {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) if locations.is_empty() => {
                locations = strings(expr).ok_or_else(|| {
                    EngineError::Plan(format!(
                        "{name}() needs a path string or a list of them, got {expr}"
                    ))
                })?;
            }
            FunctionArg::Named {
                name: option, arg, ..
            } => {
                let FunctionArgExpr::Expr(value) = arg else {
                    return Err(not_supported(format!("{name} option {option} = {arg}"), at));
                };
                let option = option.value.to_lowercase();
                let bad = || {
                    EngineError::Plan(format!(
                        "{name}(): invalid value {value} for option {option}"
                    ))
                };
                match (function, option.as_str()) {
                    (TextFunction::Csv, "delim" | "sep" | "delimiter") => {
                        csv.delimiter = Some(single_byte(value).ok_or_else(bad)?)
                    }
                    (TextFunction::Csv, "header") => {
                        csv.has_header = Some(boolean(value).ok_or_else(bad)?)
                    }
                    (TextFunction::Csv, "quote") => {
                        csv.quote = single_byte(value).ok_or_else(bad)?
                    }
                    (TextFunction::Csv, "escape") => {
                        csv.escape = Some(single_byte(value).ok_or_else(bad)?)
                    }
                    (TextFunction::Csv, "comment") => {
                        csv.comment = Some(single_byte(value).ok_or_else(bad)?)
                    }
                    (TextFunction::Csv, "nullstr" | "null_padding_str" | "na_values") => {
                        options.null_values = strings(value).ok_or_else(bad)?
                    }
                    (_, "types" | "dtypes" | "column_types") => {
                        options.types = column_types(value).ok_or_else(bad)??
                    }
                    (_, "sample_size") => {
                        let n = integer(value).ok_or_else(bad)?;
                        options.sample_rows = if n < 0 { usize::MAX } else { n.max(1) as usize };
                    }
                    (_, "ignore_errors") => {
                        options.skip_bad_rows = boolean(value).ok_or_else(bad)?
                    }
                    (_, "compression") => {
                        let text = string(value).ok_or_else(bad)?;
                        options.compression = Compression::parse(&text)?;
                    }
                    (_, "auto_detect") if boolean(value) == Some(true) => {}
                    (TextFunction::NdJson, "format")
                        if matches!(
                            string(value).as_deref(),
                            Some("newline_delimited" | "nd" | "auto")
                        ) => {}
                    _ => {
                        return Err(not_supported(
                            format!("{name} option {option} = {value}"),
                            at,
                        ))
                    }
                }
            }
            other => {
                return Err(not_supported(format!("{name} argument {other}"), at));
            }
        }
    }
    if locations.is_empty() {
        return Err(EngineError::Plan(format!("{name}() needs a path")));
    }
    if function == TextFunction::Csv {
        options.format = TextFormat::Csv(csv);
    }
    Ok((locations, options))
}

fn string(expr: &ast::Expr) -> Option<String> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A string or a list of strings.
fn strings(expr: &ast::Expr) -> Option<Vec<String>> {
    match expr {
        ast::Expr::Array(ast::Array { elem, .. }) => elem.iter().map(string).collect(),
        other => string(other).map(|s| vec![s]),
    }
}

fn single_byte(expr: &ast::Expr) -> Option<u8> {
    let s = string(expr)?;
    let s = match s.as_str() {
        "\\t" => "\t".to_string(),
        _ => s,
    };
    match s.as_bytes() {
        [b] => Some(*b),
        _ => None,
    }
}

fn boolean(expr: &ast::Expr) -> Option<bool> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Some(*b),
            Value::Number(n, _) => match n.as_str() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            },
            _ => None,
        },
        _ => string(expr).and_then(|s| match s.to_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }),
    }
}

fn integer(expr: &ast::Expr) -> Option<i64> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => integer(expr).map(|n| -n),
        _ => None,
    }
}

/// `{'col': 'TYPE', ...}` (a DuckDB struct literal) or `['col TYPE', ...]`... as pairs.
fn column_types(expr: &ast::Expr) -> Option<Result<Vec<(String, arrow::datatypes::DataType)>>> {
    let pairs: Vec<(String, String)> = match expr {
        ast::Expr::Dictionary(fields) => fields
            .iter()
            .map(|f| Some((f.key.value.clone(), string(&f.value)?)))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some(
        pairs
            .into_iter()
            .map(|(column, type_name)| Ok((column, sql_type_name(&type_name)?)))
            .collect(),
    )
}
