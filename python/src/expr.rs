//! `PyExpr`: a logical expression of the engine, built from Python.
//!
//! The Python `ooc.Expr` class wraps one of these and maps operators and methods
//! (`col("a") + 1`, `.sum()`, `.str.contains(...)`) to the constructors here. Names follow the
//! dataframe convention: an expression is named after its alias, else after the first column
//! it reads, else `literal`.

use std::sync::Arc;

use arrow::array::{ArrayRef, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, TimeUnit, DECIMAL128_MAX_PRECISION};
use ooc::{
    AggregateFunction, BinaryOp, Column, DatePart, Expr, FrameBound, FrameUnits, QuantileKind,
    ScalarFunction, ScalarValue, SortKey, WindowExpr, WindowFrame, WindowFunction, MAX_EXPR_DEPTH,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::IntoPyResult;

/// A logical expression.
#[pyclass(name = "PyExpr", module = "ooc._ooc", frozen)]
#[derive(Clone)]
pub struct PyExpr {
    pub(crate) expr: Expr,
}

impl From<Expr> for PyExpr {
    fn from(expr: Expr) -> Self {
        Self { expr }
    }
}

fn function(func: ScalarFunction, args: Vec<Expr>) -> Expr {
    Expr::Function { func, args }
}

fn aggregate(func: AggregateFunction, arg: Option<Expr>, distinct: bool) -> Expr {
    Expr::Aggregate {
        func,
        args: arg.into_iter().collect(),
        distinct,
    }
}

/// A window call over the whole input (`.over(...)` narrows it to partitions and may order it).
fn window(
    func: WindowFunction,
    args: Vec<Expr>,
    order_by: Vec<SortKey>,
    frame: WindowFrame,
) -> Expr {
    Expr::Window(Box::new(WindowExpr {
        func,
        args,
        partition_by: vec![],
        order_by,
        frame,
        ignore_nulls: false,
    }))
}

/// `ROWS BETWEEN start AND CURRENT ROW`.
fn rows_to_current(start: FrameBound) -> WindowFrame {
    WindowFrame {
        units: FrameUnits::Rows,
        start,
        end: FrameBound::CurrentRow,
    }
}

/// Whether a window call's result depends on the order of rows, so that it needs one.
fn needs_order(w: &WindowExpr) -> bool {
    match w.func {
        WindowFunction::RowNumber
        | WindowFunction::Lag
        | WindowFunction::Lead
        | WindowFunction::FirstValue
        | WindowFunction::LastValue
        | WindowFunction::NthValue => true,
        WindowFunction::Aggregate(_) => !w.frame.is_whole_partition(),
        _ => false,
    }
}

/// An error naming the first window call of `expr` that depends on row order but has none
/// (ooc's streams have no row order of their own, so "the previous row" needs an order).
pub(crate) fn check_window_order(expr: &Expr) -> PyResult<()> {
    let mut missing: Option<String> = None;
    expr.walk(&mut |n| {
        if let Expr::Window(w) = n {
            if missing.is_none() && w.order_by.is_empty() && needs_order(w) {
                missing = Some(w.func.name().to_string());
            }
        }
    });
    match missing {
        Some(name) => Err(PyValueError::new_err(format!(
            "{name} depends on the order of rows, and ooc's rows have no order of their own: \
             give one with .over(..., order_by=...)"
        ))),
        None => Ok(()),
    }
}

fn binary_op(op: &str) -> PyResult<BinaryOp> {
    Ok(match op {
        "+" => BinaryOp::Plus,
        "-" => BinaryOp::Minus,
        "*" => BinaryOp::Multiply,
        "/" => BinaryOp::Divide,
        "%" => BinaryOp::Modulo,
        "==" => BinaryOp::Eq,
        "!=" => BinaryOp::NotEq,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::LtEq,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::GtEq,
        "&" => BinaryOp::And,
        "|" => BinaryOp::Or,
        other => return Err(PyValueError::new_err(format!("unknown operator {other}"))),
    })
}

/// Parse a dtype name as the Python package spells it (`int64`, `decimal(15,2)`, ...).
pub(crate) fn parse_dtype(name: &str) -> PyResult<DataType> {
    let lower = name.trim().to_lowercase().replace(' ', "");
    Ok(match lower.as_str() {
        "bool" | "boolean" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "str" | "string" | "utf8" => DataType::Utf8,
        "date" => DataType::Date32,
        "datetime" | "datetime[us]" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "datetime[ms]" => DataType::Timestamp(TimeUnit::Millisecond, None),
        "datetime[ns]" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        other => {
            if let Some(inner) = other
                .strip_prefix("decimal(")
                .and_then(|s| s.strip_suffix(')'))
            {
                let (p, s) = inner.split_once(',').unwrap_or((inner, "0"));
                let p: u8 = p.parse().map_err(|_| bad_dtype(name))?;
                let s: i8 = s.parse().map_err(|_| bad_dtype(name))?;
                if p == 0 || p > DECIMAL128_MAX_PRECISION || s < 0 || s as u8 > p {
                    return Err(bad_dtype(name));
                }
                DataType::Decimal128(p, s)
            } else {
                return Err(bad_dtype(name));
            }
        }
    })
}

fn bad_dtype(name: &str) -> PyErr {
    PyValueError::new_err(format!(
        "unknown dtype '{name}' (expected Boolean, Int8..Int64, UInt8..UInt64, Float32, \
         Float64, String, Date, Datetime or Decimal(precision, scale))"
    ))
}

/// The dtype name of an Arrow type, as the Python package spells it.
pub(crate) fn dtype_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "Boolean".into(),
        DataType::Int8 => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::UInt8 => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "String".into(),
        DataType::Date32 | DataType::Date64 => "Date".into(),
        DataType::Timestamp(unit, _) => {
            let unit = match unit {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            };
            format!("Datetime({unit})")
        }
        DataType::Decimal128(p, s) => format!("Decimal({p}, {s})"),
        DataType::Null => "Null".into(),
        other => other.to_string(),
    }
}

/// A decimal literal from its text (`"12.50"`, `"-3"`, `"1E+2"` is rejected).
fn decimal_literal(text: &str) -> PyResult<ScalarValue> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return Err(PyValueError::new_err(format!(
            "cannot use Decimal('{text}') as a literal (special values and exponents are not supported)"
        )));
    }
    let all: String = format!("{int}{frac}");
    let trimmed = all.trim_start_matches('0');
    let precision = trimmed.len().max(frac.len()).max(1);
    if precision > DECIMAL128_MAX_PRECISION as usize {
        return Err(PyValueError::new_err(format!(
            "Decimal('{text}') has more than {DECIMAL128_MAX_PRECISION} digits"
        )));
    }
    let mut value: i128 = if trimmed.is_empty() {
        0
    } else {
        trimmed
            .parse()
            .map_err(|_| PyValueError::new_err(format!("invalid decimal '{text}'")))?
    };
    if negative {
        value = -value;
    }
    ScalarValue::decimal128(value, precision as u8, frac.len() as i8).py()
}

/// A literal from a Python value the package has already classified (`kind`).
#[pyfunction]
fn lit(kind: &str, value: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
    let scalar = match kind {
        "null" => ScalarValue::null(&DataType::Null),
        "bool" => ScalarValue::boolean(value.extract()?),
        "int" => match value.extract::<i64>() {
            Ok(v) => ScalarValue::int64(v),
            Err(_) => {
                let text: String = value.str()?.extract()?;
                decimal_literal(&text)?
            }
        },
        "float" => ScalarValue::float64(value.extract()?),
        "str" => ScalarValue::utf8(&value.extract::<String>()?),
        "date" => ScalarValue::date32(value.extract()?),
        "datetime" => {
            let micros: i64 = value.extract()?;
            let array: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![micros]));
            ScalarValue::from_array(array)
        }
        "decimal" => decimal_literal(&value.extract::<String>()?)?,
        other => {
            return Err(PyTypeError::new_err(format!(
                "cannot use a value of kind {other} as a literal"
            )))
        }
    };
    Ok(Expr::Literal(scalar).into())
}

/// A column reference (the name is used as is: dots are part of it).
/// `row_number()`: 1, 2, ... in the order of `.over(..., order_by=...)`.
#[pyfunction]
fn row_number() -> PyExpr {
    window(
        WindowFunction::RowNumber,
        vec![],
        vec![],
        WindowFrame::default_for(true),
    )
    .into()
}

/// The strings of `exprs` joined by `separator`: NULL when one is NULL, or with
/// `ignore_nulls` the non-NULL ones only (`''` when there are none), as Polars does.
#[pyfunction]
fn concat_str(
    exprs: Vec<PyRef<'_, PyExpr>>,
    separator: &str,
    ignore_nulls: bool,
) -> PyResult<PyExpr> {
    let args: Vec<Expr> = exprs
        .iter()
        .map(|e| e.expr.clone().cast(DataType::Utf8))
        .collect();
    if args.is_empty() {
        return Err(PyValueError::new_err(
            "concat_str() needs at least one expression",
        ));
    }
    let separator = Expr::Literal(ScalarValue::utf8(separator));
    if ignore_nulls {
        let mut all = vec![separator];
        all.extend(args);
        return Ok(Expr::Function {
            func: ScalarFunction::ConcatWs,
            args: all,
        }
        .into());
    }
    let concat = |a: Expr, b: Expr| a.binary(BinaryOp::StringConcat, b);
    let joined = args
        .into_iter()
        .reduce(|acc, e| concat(concat(acc, separator.clone()), e))
        .ok_or_else(|| PyValueError::new_err("concat_str() needs at least one expression"))?;
    Ok(joined.into())
}

#[pyfunction]
fn col(name: &str) -> PyExpr {
    Expr::Column(Column::new(name)).into()
}

/// `count(*)`: the number of rows.
#[pyfunction]
fn count_rows() -> PyExpr {
    aggregate(AggregateFunction::Count, None, false).into()
}

/// A two-argument aggregate: `cov` (with `ddof` 0 or 1), `corr`, `arg_min`, `arg_max`,
/// `string_agg` (value, separator).
#[pyfunction]
#[pyo3(signature = (func, a, b, ddof=1))]
fn aggregate2(
    func: &str,
    a: PyRef<'_, PyExpr>,
    b: PyRef<'_, PyExpr>,
    ddof: u8,
) -> PyResult<PyExpr> {
    let func = match (func, ddof) {
        ("cov", 0) => AggregateFunction::CovarPop,
        ("cov", 1) => AggregateFunction::CovarSamp,
        ("cov", other) => {
            return Err(PyValueError::new_err(format!(
                "cov() takes ddof 0 or 1, got {other}"
            )))
        }
        ("corr", _) => AggregateFunction::Corr,
        ("arg_min", _) => AggregateFunction::ArgMin,
        ("arg_max", _) => AggregateFunction::ArgMax,
        ("string_agg", _) => {
            return Ok(Expr::Aggregate {
                func: AggregateFunction::StringAgg {
                    keys: 0,
                    descending: 0,
                    nulls_first: 0,
                },
                args: vec![
                    a.expr.clone().cast(DataType::Utf8),
                    b.expr.clone().cast(DataType::Utf8),
                ],
                distinct: false,
            }
            .into())
        }
        (other, _) => return Err(PyValueError::new_err(format!("unknown aggregate {other}"))),
    };
    Ok(Expr::Aggregate {
        func,
        args: vec![a.expr.clone(), b.expr.clone()],
        distinct: false,
    }
    .into())
}

/// `CASE WHEN c1 THEN v1 ... ELSE otherwise END`.
#[pyfunction]
#[pyo3(signature = (conditions, values, otherwise=None))]
fn when_then(
    conditions: Vec<PyRef<'_, PyExpr>>,
    values: Vec<PyRef<'_, PyExpr>>,
    otherwise: Option<PyRef<'_, PyExpr>>,
) -> PyExpr {
    Expr::Case {
        operand: None,
        when_then: conditions
            .iter()
            .zip(values.iter())
            .map(|(c, v)| (c.expr.clone(), v.expr.clone()))
            .collect(),
        otherwise: otherwise.map(|o| Box::new(o.expr.clone())),
    }
    .into()
}

/// The engine's text for a date part, as the Python `.dt` namespace names it.
fn date_part(name: &str) -> PyResult<DatePart> {
    Ok(match name {
        "year" => DatePart::Year,
        "quarter" => DatePart::Quarter,
        "month" => DatePart::Month,
        "week" => DatePart::Week,
        "day" => DatePart::Day,
        "weekday" => DatePart::DayOfWeek,
        "ordinal_day" => DatePart::DayOfYear,
        "hour" => DatePart::Hour,
        "minute" => DatePart::Minute,
        "second" => DatePart::Second,
        other => return Err(PyValueError::new_err(format!("unknown date part {other}"))),
    })
}

#[pymethods]
impl PyExpr {
    fn binary(&self, op: &str, other: PyRef<'_, PyExpr>) -> PyResult<PyExpr> {
        // A chain of operators nests one level per operator: refused past the SQL front end's
        // limit, before the tree gets deep enough for the recursion over it (cloning,
        // planning, evaluating, dropping) to exhaust a thread's stack.
        if self.expr.deeper_than(MAX_EXPR_DEPTH - 1) || other.expr.deeper_than(MAX_EXPR_DEPTH - 1) {
            return Err(PyValueError::new_err(format!(
                "expression nested more than {MAX_EXPR_DEPTH} levels deep (a chain of operators \
                 counts one level per operator); split it, or use is_in([...]) for long lists \
                 of alternatives"
            )));
        }
        Ok(self
            .expr
            .clone()
            .binary(binary_op(op)?, other.expr.clone())
            .into())
    }

    fn not_(&self) -> PyExpr {
        Expr::Not(Box::new(self.expr.clone())).into()
    }

    fn neg(&self) -> PyExpr {
        Expr::Negative(Box::new(self.expr.clone())).into()
    }

    fn alias(&self, name: &str) -> PyExpr {
        self.expr.clone().alias(name).into()
    }

    fn cast(&self, dtype: &str) -> PyResult<PyExpr> {
        Ok(Expr::Cast {
            expr: Box::new(self.expr.clone()),
            to: parse_dtype(dtype)?,
        }
        .into())
    }

    fn is_null(&self) -> PyExpr {
        self.expr.clone().is_null().into()
    }

    fn is_not_null(&self) -> PyExpr {
        self.expr.clone().is_not_null().into()
    }

    fn is_in(&self, values: Vec<PyRef<'_, PyExpr>>) -> PyExpr {
        let list = values.iter().map(|v| v.expr.clone()).collect();
        self.expr.clone().in_list(list, false).into()
    }

    /// `low <= self <= high` with the bounds' inclusion given by `closed`.
    fn is_between(
        &self,
        low: PyRef<'_, PyExpr>,
        high: PyRef<'_, PyExpr>,
        closed: &str,
    ) -> PyResult<PyExpr> {
        let e = self.expr.clone();
        let (l, h) = (low.expr.clone(), high.expr.clone());
        Ok(match closed {
            "both" => e.between(l, h),
            "left" => e.clone().gt_eq(l).and(e.lt(h)),
            "right" => e.clone().gt(l).and(e.lt_eq(h)),
            "none" => e.clone().gt(l).and(e.lt(h)),
            other => {
                return Err(PyValueError::new_err(format!(
                    "closed must be 'both', 'left', 'right' or 'none', not '{other}'"
                )))
            }
        }
        .into())
    }

    fn fill_null(&self, value: PyRef<'_, PyExpr>) -> PyExpr {
        function(
            ScalarFunction::Coalesce,
            vec![self.expr.clone(), value.expr.clone()],
        )
        .into()
    }

    fn like(&self, pattern: &str, negated: bool, case_insensitive: bool) -> PyExpr {
        Expr::Like {
            expr: Box::new(self.expr.clone()),
            pattern: Box::new(Expr::Literal(ScalarValue::utf8(pattern))),
            negated,
            case_insensitive,
        }
        .into()
    }

    /// An aggregate of this expression: sum, mean, min, max, count, n_unique,
    /// approx_n_unique, first, last, std, std_pop, var, var_pop.
    fn agg(&self, func: &str) -> PyResult<PyExpr> {
        let e = self.expr.clone();
        let simple = |f| aggregate(f, Some(e.clone()), false);
        Ok(match func {
            "sum" => simple(AggregateFunction::Sum),
            "mean" => simple(AggregateFunction::Avg),
            "min" => simple(AggregateFunction::Min),
            "max" => simple(AggregateFunction::Max),
            "count" => simple(AggregateFunction::Count),
            "first" => simple(AggregateFunction::First),
            "last" => simple(AggregateFunction::Last),
            "std" => simple(AggregateFunction::StddevSamp),
            "std_pop" => simple(AggregateFunction::StddevPop),
            "var" => simple(AggregateFunction::VarSamp),
            "var_pop" => simple(AggregateFunction::VarPop),
            "median" => simple(AggregateFunction::Quantile(QuantileKind::Median)),
            "n_unique" | "approx_n_unique" => {
                // Distinct values, NULL counted as one value when present (as dataframe
                // libraries count it; SQL's count(DISTINCT) leaves NULL out).
                let distinct = if func == "n_unique" {
                    aggregate(AggregateFunction::Count, Some(e.clone()), true)
                } else {
                    simple(AggregateFunction::ApproxCountDistinct)
                };
                let has_null = aggregate(AggregateFunction::Count, None, false)
                    .gt(simple(AggregateFunction::Count));
                let one_if_null = Expr::Case {
                    operand: None,
                    when_then: vec![(has_null, Expr::Literal(ScalarValue::int64(1)))],
                    otherwise: Some(Box::new(Expr::Literal(ScalarValue::int64(0)))),
                };
                distinct + one_if_null
            }
            other => return Err(PyValueError::new_err(format!("unknown aggregate {other}"))),
        }
        .into())
    }

    /// The `q` quantile of the non-NULL values, picked or interpolated as `interpolation`
    /// says (`nearest`, `lower`, `higher`, `midpoint`, `linear`; `equiprobable` is SQL's
    /// `quantile_disc`).
    fn quantile(&self, q: f64, interpolation: &str) -> PyResult<PyExpr> {
        if !(0.0..=1.0).contains(&q) {
            return Err(PyValueError::new_err(format!(
                "quantile must be between 0 and 1, got {q}"
            )));
        }
        let kind = match interpolation {
            "nearest" => QuantileKind::Nearest,
            "lower" => QuantileKind::Lower,
            "higher" => QuantileKind::Higher,
            "midpoint" => QuantileKind::Midpoint,
            "linear" => QuantileKind::Linear,
            "equiprobable" => QuantileKind::Discrete,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown interpolation {other:?}; expected nearest, lower, higher, \
                     midpoint, linear or equiprobable"
                )))
            }
        };
        Ok(Expr::Aggregate {
            func: AggregateFunction::Quantile(kind),
            args: vec![self.expr.clone(), Expr::Literal(ScalarValue::float64(q))],
            distinct: false,
        }
        .into())
    }

    /// A string function: contains, regex, starts_with, ends_with, upper, lower, len, slice.
    #[pyo3(signature = (name, args))]
    fn str_fn(&self, name: &str, args: Vec<PyRef<'_, PyExpr>>) -> PyResult<PyExpr> {
        let mut all = vec![self.expr.clone()];
        all.extend(args.iter().map(|a| a.expr.clone()));
        let func = match name {
            "contains" => ScalarFunction::Contains,
            "regex" => ScalarFunction::RegexpMatches,
            "starts_with" => ScalarFunction::StartsWith,
            "ends_with" => ScalarFunction::EndsWith,
            "upper" => ScalarFunction::Upper,
            "lower" => ScalarFunction::Lower,
            "len" => ScalarFunction::Length,
            "slice" => ScalarFunction::Substring,
            "strip" => ScalarFunction::Trim,
            "lstrip" => ScalarFunction::LTrim,
            "rstrip" => ScalarFunction::RTrim,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown string function {other}"
                )))
            }
        };
        Ok(function(func, all).into())
    }

    fn dt_part(&self, part: &str) -> PyResult<PyExpr> {
        Ok(function(
            ScalarFunction::Extract(date_part(part)?),
            vec![self.expr.clone()],
        )
        .into())
    }

    fn abs(&self) -> PyExpr {
        function(ScalarFunction::Abs, vec![self.expr.clone()]).into()
    }

    fn round(&self, decimals: i64) -> PyExpr {
        function(
            ScalarFunction::Round,
            vec![
                self.expr.clone(),
                Expr::Literal(ScalarValue::int64(decimals)),
            ],
        )
        .into()
    }

    /// `rank(method, descending)`: ranks of the values (NULL stays NULL), over the whole input
    /// unless `.over(...)` narrows it; methods as dataframe libraries name them.
    fn rank(&self, method: &str, descending: bool) -> PyResult<PyExpr> {
        let x = self.expr.clone();
        let order = vec![SortKey {
            expr: x.clone(),
            ascending: !descending,
            nulls_first: false,
        }];
        let default_frame = WindowFrame::default_for(true);
        let ranked = |func| window(func, vec![], order.clone(), default_frame.clone());
        // The number of rows up to the last tie: the largest rank of the ties.
        let max = window(
            WindowFunction::Aggregate(AggregateFunction::Count),
            vec![],
            order.clone(),
            default_frame.clone(),
        );
        let (value, integer) = match method {
            "min" => (ranked(WindowFunction::Rank), true),
            "max" => (max, true),
            "dense" => (ranked(WindowFunction::DenseRank), true),
            "ordinal" => (ranked(WindowFunction::RowNumber), true),
            "average" => {
                let sum = ranked(WindowFunction::Rank) + max;
                let as_float = Expr::Cast {
                    expr: Box::new(sum),
                    to: DataType::Float64,
                };
                (as_float / Expr::Literal(ScalarValue::float64(2.0)), false)
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "rank method must be 'average', 'min', 'max', 'dense' or 'ordinal', \
                     not '{other}'"
                )))
            }
        };
        let value = if integer {
            Expr::Cast {
                expr: Box::new(value),
                to: DataType::UInt32,
            }
        } else {
            value
        };
        Ok(Expr::Case {
            operand: None,
            when_then: vec![(
                x.is_null(),
                Expr::Literal(ScalarValue::null(&value_type(integer))),
            )],
            otherwise: Some(Box::new(value)),
        }
        .into())
    }

    /// `cum_sum`, `cum_min`, `cum_max`, `cum_count`: running aggregates in the order
    /// `.over(..., order_by=...)` gives (NULL where the value is NULL, but for the count).
    fn cumulative(&self, func: &str) -> PyResult<PyExpr> {
        let func = match func {
            "sum" => AggregateFunction::Sum,
            "min" => AggregateFunction::Min,
            "max" => AggregateFunction::Max,
            "count" => AggregateFunction::Count,
            other => return Err(PyValueError::new_err(format!("unknown cumulative {other}"))),
        };
        let running = window(
            WindowFunction::Aggregate(func),
            vec![self.expr.clone()],
            vec![],
            rows_to_current(FrameBound::UnboundedPreceding),
        );
        if func == AggregateFunction::Count {
            return Ok(running.into());
        }
        // A NULL value's running sum (or min, max) is NULL, as dataframe libraries have it.
        Ok(Expr::Case {
            operand: None,
            when_then: vec![(self.expr.clone().is_not_null(), running)],
            otherwise: None,
        }
        .into())
    }

    /// `shift(n, fill_value)`: the value `n` rows before (after, for a negative `n`).
    #[pyo3(signature = (n, fill_value=None))]
    fn shift(&self, n: i64, fill_value: Option<PyRef<'_, PyExpr>>) -> PyExpr {
        let func = if n >= 0 {
            WindowFunction::Lag
        } else {
            WindowFunction::Lead
        };
        let mut args = vec![
            self.expr.clone(),
            Expr::Literal(ScalarValue::int64(n.unsigned_abs() as i64)),
        ];
        args.extend(fill_value.map(|f| f.expr.clone()));
        window(func, args, vec![], WindowFrame::default_for(true)).into()
    }

    /// `rolling_mean/sum/min/max/std/var(window_size, min_samples)`: the aggregate of the
    /// current row and the `window_size - 1` before it, NULL until `min_samples` (by
    /// default `window_size`) of them are not NULL.
    #[pyo3(signature = (func, window_size, min_samples=None))]
    fn rolling(
        &self,
        func: &str,
        window_size: usize,
        min_samples: Option<usize>,
    ) -> PyResult<PyExpr> {
        let agg = match func {
            "mean" => AggregateFunction::Avg,
            "sum" => AggregateFunction::Sum,
            "min" => AggregateFunction::Min,
            "max" => AggregateFunction::Max,
            "std" => AggregateFunction::StddevSamp,
            "var" => AggregateFunction::VarSamp,
            other => return Err(PyValueError::new_err(format!("unknown rolling {other}"))),
        };
        if window_size == 0 {
            return Err(PyValueError::new_err("window_size must be at least 1"));
        }
        let min_samples = min_samples.unwrap_or(window_size);
        let frame = rows_to_current(FrameBound::Preceding(ScalarValue::int64(
            window_size as i64 - 1,
        )));
        let x = self.expr.clone();
        let value = window(
            WindowFunction::Aggregate(agg),
            vec![x.clone()],
            vec![],
            frame.clone(),
        );
        let samples = window(
            WindowFunction::Aggregate(AggregateFunction::Count),
            vec![x],
            vec![],
            frame,
        );
        Ok(Expr::Case {
            operand: None,
            when_then: vec![(
                samples.gt_eq(Expr::Literal(ScalarValue::int64(min_samples as i64))),
                value,
            )],
            otherwise: None,
        }
        .into())
    }

    /// Compute this expression per partition of `partition_by` (every aggregate in it over
    /// its whole partition, broadcast to its rows), with `order_by` ordering the rows of
    /// order-dependent functions (`shift`, `cum_sum`, `rolling_*`).
    #[pyo3(signature = (partition_by, order_by, descending, nulls_last))]
    fn over(
        &self,
        partition_by: Vec<PyRef<'_, PyExpr>>,
        order_by: Vec<PyRef<'_, PyExpr>>,
        descending: bool,
        nulls_last: bool,
    ) -> PyResult<PyExpr> {
        let partition_by: Vec<Expr> = partition_by.iter().map(|e| e.expr.clone()).collect();
        let order_by: Vec<SortKey> = order_by
            .iter()
            .map(|e| SortKey {
                expr: e.expr.clone(),
                ascending: !descending,
                nulls_first: !nulls_last,
            })
            .collect();
        let mut error: Option<PyErr> = None;
        let rewritten = self
            .expr
            .clone()
            .transform_up(&mut |n| {
                Ok(match n {
                    Expr::Aggregate {
                        func,
                        args,
                        distinct,
                    } => {
                        if distinct && error.is_none() {
                            error = Some(PyValueError::new_err(
                                "n_unique() over a window is not supported",
                            ));
                        }
                        Expr::Window(Box::new(WindowExpr {
                            func: WindowFunction::Aggregate(func),
                            args,
                            partition_by: partition_by.clone(),
                            order_by: vec![],
                            frame: WindowFrame::default_for(false),
                            ignore_nulls: false,
                        }))
                    }
                    Expr::Window(mut w) if w.partition_by.is_empty() => {
                        w.partition_by = partition_by.clone();
                        if w.order_by.is_empty() && needs_order(&w) {
                            w.order_by = order_by.clone();
                        }
                        Expr::Window(w)
                    }
                    other => other,
                })
            })
            .py()?;
        if let Some(e) = error {
            return Err(e);
        }
        check_window_order(&rewritten)?;
        Ok(rewritten.into())
    }

    /// The output name: the alias, else the first column read, else `literal`.
    fn output_name(&self) -> String {
        output_name(&self.expr)
    }

    fn is_aggregate(&self) -> bool {
        self.expr.contains_aggregate()
    }

    fn __repr__(&self) -> String {
        self.expr.to_string()
    }
}

/// The type of a rank's NULL: `UInt32`, or `Float64` for the average method.
fn value_type(integer: bool) -> DataType {
    if integer {
        DataType::UInt32
    } else {
        DataType::Float64
    }
}

/// The dataframe naming rule (see the module docs).
pub(crate) fn output_name(expr: &Expr) -> String {
    if let Expr::Alias { name, .. } = expr {
        return name.clone();
    }
    let mut first: Option<String> = None;
    expr.walk(&mut |n| {
        if first.is_none() {
            if let Expr::Column(c) = n {
                first = Some(c.name.clone());
            }
        }
    });
    first.unwrap_or_else(|| "literal".to_string())
}

/// The expression named by the dataframe rule (an alias is added unless it is a bare column).
pub(crate) fn named(expr: &Expr) -> Expr {
    match expr {
        Expr::Alias { .. } | Expr::Column(_) => expr.clone(),
        other => other.clone().alias(output_name(other)),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExpr>()?;
    m.add_function(wrap_pyfunction!(col, m)?)?;
    m.add_function(wrap_pyfunction!(row_number, m)?)?;
    m.add_function(wrap_pyfunction!(concat_str, m)?)?;
    m.add_function(wrap_pyfunction!(lit, m)?)?;
    m.add_function(wrap_pyfunction!(count_rows, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate2, m)?)?;
    m.add_function(wrap_pyfunction!(when_then, m)?)?;
    Ok(())
}
