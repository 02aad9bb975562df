//! Type rules: the result type of every expression and the implicit casts SQL inserts.
//!
//! The rules follow DuckDB (the project's correctness oracle) where it matters for results:
//!
//! * `DECIMAL ± DECIMAL` → `DECIMAL(max(p1-s1, p2-s2) + max(s1, s2) + 1, max(s1, s2))`,
//!   `DECIMAL * DECIMAL` → `DECIMAL(p1 + p2 + 1, s1 + s2)` (precision capped at 38); both exact.
//! * `/` on numbers returns `DOUBLE` (so `1 / 2 = 0.5`), and any `DOUBLE` operand makes the
//!   result `DOUBLE`; dividing by zero follows IEEE (`1 / 0` is `inf`, `0 / 0` is `NaN`), and
//!   modulo by zero yields NULL.
//! * Integers mixed with decimals become `DECIMAL(width, 0)`; integers widen to the wider type.
//! * Comparisons cast both sides to a common type; a string literal compared with a date,
//!   timestamp, number or boolean is cast to that type.
//! * `sum` of integers is `BIGINT`, of `DECIMAL(p, s)` is `DECIMAL(38, s)`; `avg` is `DOUBLE`.
//! * `DATE ± INTERVAL` stays a `DATE` when the interval has no time part (DuckDB would
//!   return a `TIMESTAMP` at midnight; the value is the same).

use arrow::datatypes::{DataType, IntervalUnit, DECIMAL128_MAX_PRECISION};

use crate::error::{EngineError, Result};
use crate::logical::expr::{AggregateFunction, BinaryOp, Expr, ScalarFunction, WindowExpr};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
use crate::logical::window::WindowFunction;

/// The result type of `expr` over `schema`.
pub(crate) fn expr_type(expr: &Expr, schema: &PlanSchema) -> Result<DataType> {
    Ok(match expr {
        Expr::Column(c) => {
            let index = schema.index_of(c.relation.as_deref(), &c.name)?;
            schema.field(index).field.data_type().clone()
        }
        Expr::Literal(v) => v.data_type().clone(),
        Expr::Alias { expr, .. } => expr_type(expr, schema)?,
        Expr::Binary { left, op, right } => {
            if op.is_comparison() || matches!(op, BinaryOp::And | BinaryOp::Or) {
                DataType::Boolean
            } else if *op == BinaryOp::StringConcat {
                DataType::Utf8
            } else {
                arithmetic_type(&expr_type(left, schema)?, *op, &expr_type(right, schema)?)?
            }
        }
        Expr::Not(_)
        | Expr::IsNull { .. }
        | Expr::Between { .. }
        | Expr::InList { .. }
        | Expr::Like { .. } => DataType::Boolean,
        Expr::Negative(e) => expr_type(e, schema)?,
        Expr::Cast { to, .. } => to.clone(),
        Expr::Case {
            when_then,
            otherwise,
            ..
        } => {
            let mut types = Vec::new();
            for (_, then) in when_then {
                types.push(expr_type(then, schema)?);
            }
            if let Some(o) = otherwise {
                types.push(expr_type(o, schema)?);
            }
            common_type_of(&types)?
        }
        Expr::Function { func, args } => match func {
            ScalarFunction::Upper
            | ScalarFunction::Lower
            | ScalarFunction::Trim
            | ScalarFunction::LTrim
            | ScalarFunction::RTrim
            | ScalarFunction::Substring
            | ScalarFunction::Concat => DataType::Utf8,
            ScalarFunction::Length | ScalarFunction::Extract(_) | ScalarFunction::Grouping => {
                DataType::Int64
            }
            ScalarFunction::StartsWith
            | ScalarFunction::EndsWith
            | ScalarFunction::Contains
            | ScalarFunction::RegexpMatches => DataType::Boolean,
            ScalarFunction::Coalesce => {
                let types = args
                    .iter()
                    .map(|a| expr_type(a, schema))
                    .collect::<Result<Vec<_>>>()?;
                common_type_of(&types)?
            }
            ScalarFunction::Abs => expr_type(&args[0], schema)?,
            ScalarFunction::Round => match expr_type(&args[0], schema)? {
                // DuckDB's rule: the scale drops to the digits kept (0 for negative digits).
                DataType::Decimal128(p, s) => {
                    let digits = args.get(1).map_or(Some(0), constant_integer);
                    match digits {
                        Some(d) => DataType::Decimal128(p, d.clamp(0, i64::from(s)) as i8),
                        None => {
                            return Err(EngineError::NotSupported(
                                "round() of a DECIMAL with digits that are not a constant".into(),
                            ))
                        }
                    }
                }
                other => other,
            },
            ScalarFunction::Floor | ScalarFunction::Ceil => match expr_type(&args[0], schema)? {
                DataType::Decimal128(p, _) => DataType::Decimal128(p, 0),
                _ => DataType::Float64,
            },
            ScalarFunction::Sqrt
            | ScalarFunction::Ln
            | ScalarFunction::Log10
            | ScalarFunction::Exp
            | ScalarFunction::Power => DataType::Float64,
            ScalarFunction::Sign => DataType::Int8,
            ScalarFunction::Greatest | ScalarFunction::Least => {
                let types = args
                    .iter()
                    .map(|a| expr_type(a, schema))
                    .collect::<Result<Vec<_>>>()?;
                common_type_of(&types)?
            }
            ScalarFunction::Replace
            | ScalarFunction::Reverse
            | ScalarFunction::Left
            | ScalarFunction::Right
            | ScalarFunction::Lpad
            | ScalarFunction::Rpad
            | ScalarFunction::SplitPart
            | ScalarFunction::ConcatWs
            | ScalarFunction::RegexpReplace
            | ScalarFunction::RegexpExtract
            | ScalarFunction::Strftime => DataType::Utf8,
            ScalarFunction::Strptime { .. } => {
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)
            }
            ScalarFunction::Strpos | ScalarFunction::DateDiff(_) => DataType::Int64,
            ScalarFunction::DateTrunc(part) if part.micros().is_some() => {
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)
            }
            ScalarFunction::DateTrunc(_) | ScalarFunction::MakeDate | ScalarFunction::LastDay => {
                DataType::Date32
            }
        },
        Expr::Aggregate { func, args, .. } => match func {
            AggregateFunction::Count | AggregateFunction::ApproxCountDistinct => DataType::Int64,
            AggregateFunction::ApproxQuantile => expr_type(&args[0], schema)?,
            AggregateFunction::Avg
            | AggregateFunction::StddevSamp
            | AggregateFunction::StddevPop
            | AggregateFunction::VarSamp
            | AggregateFunction::VarPop => DataType::Float64,
            AggregateFunction::Sum => sum_type(&expr_type(&args[0], schema)?)?,
            AggregateFunction::ArgMin | AggregateFunction::ArgMax => expr_type(&args[0], schema)?,
            AggregateFunction::StringAgg { .. } => DataType::Utf8,
            AggregateFunction::CovarPop
            | AggregateFunction::CovarSamp
            | AggregateFunction::Corr => DataType::Float64,
            AggregateFunction::Quantile(kind) => {
                let input = expr_type(&args[0], schema)?;
                match input {
                    DataType::Decimal128(_, _) => input,
                    _ if kind.interpolates() => DataType::Float64,
                    _ => input,
                }
            }
            AggregateFunction::Min
            | AggregateFunction::Max
            | AggregateFunction::First
            | AggregateFunction::Last => expr_type(&args[0], schema)?,
        },
        Expr::Window(w) => match w.func {
            WindowFunction::Aggregate(func) => expr_type(
                &Expr::Aggregate {
                    func,
                    args: w.args.clone(),
                    distinct: false,
                },
                schema,
            )?,
            _ => {
                let types = w
                    .args
                    .iter()
                    .map(|a| expr_type(a, schema))
                    .collect::<Result<Vec<_>>>()?;
                w.result_type(&types)?
            }
        },
    })
}

/// The type `sum` returns for an input type.
pub(crate) fn sum_type(input: &DataType) -> Result<DataType> {
    Ok(match input {
        t if t.is_integer() => DataType::Int64,
        DataType::Decimal128(_, s) => DataType::Decimal128(DECIMAL128_MAX_PRECISION, *s),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
        DataType::Null => DataType::Int64,
        other => {
            return Err(EngineError::Type(format!(
                "sum() is not defined for {}",
                sql_type_name(other)
            )))
        }
    })
}

/// Human (SQL) name of an Arrow type for error messages.
pub(crate) fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            format!("{t}").to_uppercase()
        }
        DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        DataType::Interval(_) => "INTERVAL".into(),
        DataType::Null => "NULL".into(),
        other => format!("{other}"),
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || is_float(t) || matches!(t, DataType::Decimal128(_, _))
}

/// Decimal precision needed to hold every value of an integer type.
fn integer_digits(t: &DataType) -> u8 {
    match t {
        DataType::Int8 | DataType::UInt8 => 3,
        DataType::Int16 | DataType::UInt16 => 5,
        DataType::Int32 | DataType::UInt32 => 10,
        DataType::Int64 => 19,
        _ => 20,
    }
}

fn as_decimal(t: &DataType) -> (u8, i8) {
    match t {
        DataType::Decimal128(p, s) => (*p, *s),
        other => (integer_digits(other), 0),
    }
}

fn integer_rank(t: &DataType) -> u8 {
    match t {
        DataType::Int8 => 1,
        DataType::UInt8 | DataType::Int16 => 2,
        DataType::UInt16 | DataType::Int32 => 3,
        DataType::UInt32 | DataType::Int64 => 4,
        _ => 5,
    }
}

fn wider_integer(a: &DataType, b: &DataType) -> DataType {
    match integer_rank(a).max(integer_rank(b)) {
        1 => DataType::Int8,
        2 => DataType::Int16,
        3 => DataType::Int32,
        4 => DataType::Int64,
        _ => DataType::Decimal128(20, 0),
    }
}

/// Result type of `l op r` for arithmetic operators.
pub(crate) fn arithmetic_type(l: &DataType, op: BinaryOp, r: &DataType) -> Result<DataType> {
    let err = || {
        EngineError::Type(format!(
            "cannot apply '{}' to {} and {}",
            op.symbol(),
            sql_type_name(l),
            sql_type_name(r)
        ))
    };
    use DataType::*;
    Ok(match (l, r) {
        (Null, Null) => Null,
        (Null, t) | (t, Null) if is_numeric(t) => {
            if op == BinaryOp::Divide || (op == BinaryOp::IntegerDivide && !t.is_integer()) {
                Float64
            } else {
                t.clone()
            }
        }
        (Date32, Interval(_)) if matches!(op, BinaryOp::Plus | BinaryOp::Minus) => Date32,
        (Interval(_), Date32) if op == BinaryOp::Plus => Date32,
        (Timestamp(u, tz), Interval(_)) if matches!(op, BinaryOp::Plus | BinaryOp::Minus) => {
            Timestamp(*u, tz.clone())
        }
        (Date32, Date32) if op == BinaryOp::Minus => Int64,
        (Interval(IntervalUnit::MonthDayNano), Interval(IntervalUnit::MonthDayNano))
            if matches!(op, BinaryOp::Plus | BinaryOp::Minus) =>
        {
            Interval(IntervalUnit::MonthDayNano)
        }
        (a, b) if is_numeric(a) && is_numeric(b) => {
            if op == BinaryOp::Divide
                || (op == BinaryOp::IntegerDivide && !(a.is_integer() && b.is_integer()))
            {
                Float64
            } else if is_float(a) || is_float(b) {
                if *a == Float32 && *b == Float32 {
                    Float32
                } else {
                    Float64
                }
            } else if matches!(a, Decimal128(_, _)) || matches!(b, Decimal128(_, _)) {
                let (p1, s1) = as_decimal(a);
                let (p2, s2) = as_decimal(b);
                decimal_arithmetic(op, p1, s1, p2, s2)?
            } else {
                wider_integer(a, b)
            }
        }
        _ => return Err(err()),
    })
}

fn decimal_arithmetic(op: BinaryOp, p1: u8, s1: i8, p2: u8, s2: i8) -> Result<DataType> {
    let (p1, s1, p2, s2) = (p1 as i16, s1 as i16, p2 as i16, s2 as i16);
    let max = DECIMAL128_MAX_PRECISION as i16;
    Ok(match op {
        BinaryOp::Plus | BinaryOp::Minus => {
            let scale = s1.max(s2);
            let precision = (scale + (p1 - s1).max(p2 - s2) + 1).min(max);
            DataType::Decimal128(precision as u8, scale as i8)
        }
        BinaryOp::Multiply => {
            let scale = s1 + s2;
            if scale > max {
                return Err(EngineError::Type(format!(
                    "decimal multiplication result scale {scale} exceeds 38"
                )));
            }
            DataType::Decimal128((p1 + p2 + 1).min(max) as u8, scale as i8)
        }
        BinaryOp::Modulo => DataType::Float64,
        _ => DataType::Float64,
    })
}

/// The common type two values are compared (or unified) in.
pub(crate) fn comparison_type(l: &DataType, r: &DataType) -> Option<DataType> {
    use DataType::*;
    if l == r {
        return Some(l.clone());
    }
    Some(match (l, r) {
        (Null, t) | (t, Null) => t.clone(),
        (a, b) if is_numeric(a) && is_numeric(b) => {
            if is_float(a) || is_float(b) {
                Float64
            } else if matches!(a, Decimal128(_, _)) || matches!(b, Decimal128(_, _)) {
                let (p1, s1) = as_decimal(a);
                let (p2, s2) = as_decimal(b);
                let scale = s1.max(s2);
                let int_digits = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
                let precision =
                    (int_digits + scale as i16).min(DECIMAL128_MAX_PRECISION as i16) as u8;
                Decimal128(precision, scale)
            } else {
                wider_integer(a, b)
            }
        }
        (a, b) if is_string(a) && is_string(b) => {
            if *a == Utf8View || *b == Utf8View {
                Utf8View
            } else if *a == LargeUtf8 || *b == LargeUtf8 {
                LargeUtf8
            } else {
                Utf8
            }
        }
        (s, t) | (t, s)
            if is_string(s)
                && (is_numeric(t) || matches!(t, Date32 | Timestamp(_, _) | Boolean)) =>
        {
            t.clone()
        }
        (Date32, Timestamp(u, tz)) | (Timestamp(u, tz), Date32) => Timestamp(*u, tz.clone()),
        _ => return None,
    })
}

/// The common type of several values (CASE branches, COALESCE, IN lists).
pub(crate) fn common_type_of(types: &[DataType]) -> Result<DataType> {
    let mut acc = DataType::Null;
    for t in types {
        acc = unified_type(&acc, t).ok_or_else(|| {
            EngineError::Type(format!(
                "cannot mix {} and {} in one expression",
                sql_type_name(&acc),
                sql_type_name(t)
            ))
        })?;
    }
    Ok(acc)
}

/// The type that values of types `a` and `b` are unified in (a `UNION` column, `COALESCE`,
/// `CASE`): the comparison type, except that two decimals needing more than 38 digits together
/// keep their integer digits and give up scale (DuckDB's rule: `DECIMAL(38,1)` with
/// `DECIMAL(13,2)` is `DECIMAL(38,1)`), where a comparison stays exact.
pub(crate) fn unified_type(a: &DataType, b: &DataType) -> Option<DataType> {
    if let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) = (a, b) {
        let int_digits = (i16::from(*p1) - i16::from(*s1)).max(i16::from(*p2) - i16::from(*s2));
        let scale = i16::from(*s1.max(s2));
        let max = i16::from(DECIMAL128_MAX_PRECISION);
        if int_digits + scale > max {
            let scale = (max - int_digits).max(0);
            return Some(DataType::Decimal128(DECIMAL128_MAX_PRECISION, scale as i8));
        }
    }
    comparison_type(a, b)
}

/// The value of a constant integer expression (a literal, possibly cast or negated).
pub(crate) fn constant_integer(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(v) => v.as_i64(),
        Expr::Cast { expr, .. } => constant_integer(expr),
        Expr::Negative(expr) => constant_integer(expr).and_then(i64::checked_neg),
        _ => None,
    }
}

fn cast_to(expr: Expr, from: &DataType, to: &DataType) -> Expr {
    if from == to {
        return expr;
    }
    match expr {
        // Cast NULL literals eagerly so the plan shows typed NULLs.
        Expr::Literal(v) if v.is_null() => Expr::Literal(ScalarValue::null(to)),
        other => Expr::Cast {
            expr: Box::new(other),
            to: to.clone(),
        },
    }
}

/// Type-check `expr` against `schema` and insert the implicit casts SQL requires.
pub(crate) fn coerce(expr: Expr, schema: &PlanSchema) -> Result<Expr> {
    expr.transform_up(&mut |e| coerce_node(e, schema))
}

fn coerce_node(expr: Expr, schema: &PlanSchema) -> Result<Expr> {
    Ok(match expr {
        Expr::Binary { left, op, right } => {
            let lt = expr_type(&left, schema)?;
            let rt = expr_type(&right, schema)?;
            if op.is_comparison() {
                let common = comparison_type(&lt, &rt).ok_or_else(|| {
                    EngineError::Type(format!(
                        "cannot compare {} with {}",
                        sql_type_name(&lt),
                        sql_type_name(&rt)
                    ))
                })?;
                Expr::Binary {
                    left: Box::new(cast_to(*left, &lt, &common)),
                    op,
                    right: Box::new(cast_to(*right, &rt, &common)),
                }
            } else if matches!(op, BinaryOp::And | BinaryOp::Or) {
                for t in [&lt, &rt] {
                    if !matches!(t, DataType::Boolean | DataType::Null) {
                        return Err(EngineError::Type(format!(
                            "{op:?} needs BOOLEAN operands, got {}",
                            sql_type_name(t)
                        )));
                    }
                }
                Expr::Binary {
                    left: Box::new(cast_to(*left, &lt, &DataType::Boolean)),
                    op,
                    right: Box::new(cast_to(*right, &rt, &DataType::Boolean)),
                }
            } else if op == BinaryOp::StringConcat {
                Expr::Binary {
                    left: Box::new(cast_to(*left, &lt, &DataType::Utf8)),
                    op,
                    right: Box::new(cast_to(*right, &rt, &DataType::Utf8)),
                }
            } else {
                // Date + integer days.
                if matches!(op, BinaryOp::Plus | BinaryOp::Minus)
                    && lt == DataType::Date32
                    && rt.is_integer()
                {
                    if let Expr::Literal(v) = right.as_ref() {
                        if let Some(days) = v.as_i64() {
                            return Ok(Expr::Binary {
                                left,
                                op,
                                right: Box::new(Expr::Literal(ScalarValue::interval(
                                    0,
                                    days as i32,
                                    0,
                                ))),
                            });
                        }
                    }
                    return Err(EngineError::NotSupported(
                        "DATE plus a non-constant integer; use INTERVAL".into(),
                    ));
                }
                let result = arithmetic_type(&lt, op, &rt)?;
                let operand_type = |t: &DataType| -> DataType {
                    match &result {
                        DataType::Float64 | DataType::Float32 if is_numeric(t) => result.clone(),
                        DataType::Decimal128(_, _) if t.is_integer() => {
                            DataType::Decimal128(integer_digits(t), 0)
                        }
                        DataType::Decimal128(_, _) if *t == DataType::Null => {
                            DataType::Decimal128(1, 0)
                        }
                        r if r.is_integer() && (t.is_integer() || *t == DataType::Null) => {
                            r.clone()
                        }
                        _ => t.clone(),
                    }
                };
                let lo = operand_type(&lt);
                let ro = operand_type(&rt);
                Expr::Binary {
                    left: Box::new(cast_to(*left, &lt, &lo)),
                    op,
                    right: Box::new(cast_to(*right, &rt, &ro)),
                }
            }
        }
        Expr::Not(e) => {
            let t = expr_type(&e, schema)?;
            if !matches!(t, DataType::Boolean | DataType::Null) {
                return Err(EngineError::Type(format!(
                    "NOT needs a BOOLEAN operand, got {}",
                    sql_type_name(&t)
                )));
            }
            Expr::Not(Box::new(cast_to(*e, &t, &DataType::Boolean)))
        }
        Expr::Negative(e) => {
            let t = expr_type(&e, schema)?;
            if !is_numeric(&t) && !matches!(t, DataType::Interval(_) | DataType::Null) {
                return Err(EngineError::Type(format!(
                    "cannot negate {}",
                    sql_type_name(&t)
                )));
            }
            Expr::Negative(e)
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let types = [
                expr_type(&expr, schema)?,
                expr_type(&low, schema)?,
                expr_type(&high, schema)?,
            ];
            let common = common_type_of(&types)?;
            Expr::Between {
                expr: Box::new(cast_to(*expr, &types[0], &common)),
                low: Box::new(cast_to(*low, &types[1], &common)),
                high: Box::new(cast_to(*high, &types[2], &common)),
                negated,
            }
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let et = expr_type(&expr, schema)?;
            let mut types = vec![et.clone()];
            for item in &list {
                types.push(expr_type(item, schema)?);
            }
            let common = common_type_of(&types)?;
            Expr::InList {
                expr: Box::new(cast_to(*expr, &et, &common)),
                list: list
                    .into_iter()
                    .zip(types.iter().skip(1))
                    .map(|(e, t)| cast_to(e, t, &common))
                    .collect(),
                negated,
            }
        }
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => {
            let et = expr_type(&expr, schema)?;
            let pt = expr_type(&pattern, schema)?;
            let target = if is_string(&et) {
                et.clone()
            } else {
                DataType::Utf8
            };
            Expr::Like {
                expr: Box::new(cast_to(*expr, &et, &target)),
                pattern: Box::new(cast_to(*pattern, &pt, &target)),
                negated,
                case_insensitive,
            }
        }
        Expr::Case {
            operand,
            when_then,
            otherwise,
        } => {
            let mut result_types = Vec::new();
            for (_, t) in &when_then {
                result_types.push(expr_type(t, schema)?);
            }
            if let Some(o) = &otherwise {
                result_types.push(expr_type(o, schema)?);
            }
            let result = common_type_of(&result_types)?;
            let (operand, when_types) = match operand {
                Some(o) => {
                    let ot = expr_type(&o, schema)?;
                    let mut types = vec![ot.clone()];
                    for (w, _) in &when_then {
                        types.push(expr_type(w, schema)?);
                    }
                    let common = common_type_of(&types)?;
                    (
                        Some(Box::new(cast_to(*o, &ot, &common))),
                        Some((types, common)),
                    )
                }
                None => (None, None),
            };
            let mut new_when_then = Vec::new();
            for (i, (w, t)) in when_then.into_iter().enumerate() {
                let w = match &when_types {
                    Some((types, common)) => cast_to(w, &types[i + 1], common),
                    None => {
                        let wt = expr_type(&w, schema)?;
                        if !matches!(wt, DataType::Boolean | DataType::Null) {
                            return Err(EngineError::Type(format!(
                                "CASE WHEN condition must be BOOLEAN, got {}",
                                sql_type_name(&wt)
                            )));
                        }
                        cast_to(w, &wt, &DataType::Boolean)
                    }
                };
                let tt = expr_type(&t, schema)?;
                new_when_then.push((w, cast_to(t, &tt, &result)));
            }
            let otherwise = match otherwise {
                Some(o) => {
                    let ot = expr_type(&o, schema)?;
                    Some(Box::new(cast_to(*o, &ot, &result)))
                }
                None => None,
            };
            Expr::Case {
                operand,
                when_then: new_when_then,
                otherwise,
            }
        }
        Expr::Function { func, args } => coerce_function(func, args, schema)?,
        Expr::Window(w) => coerce_window(*w, schema)?,
        Expr::Aggregate {
            func,
            args,
            distinct,
        } => {
            let checked = if func.is_bivariate() { 2 } else { 1 };
            for arg in args.iter().take(checked) {
                let t = expr_type(arg, schema)?;
                // A t-digest summarizes numbers, dates and times (as numbers).
                if func == AggregateFunction::ApproxQuantile
                    && !(is_numeric(&t)
                        || matches!(
                            t,
                            DataType::Null | DataType::Date32 | DataType::Timestamp(..)
                        ))
                {
                    return Err(EngineError::Type(format!(
                        "approx_quantile() is not defined for {}",
                        sql_type_name(&t)
                    )));
                }
                if func.takes_numbers() && !is_numeric(&t) && t != DataType::Null {
                    return Err(EngineError::Type(format!(
                        "{}() is not defined for {}",
                        func.name(),
                        sql_type_name(&t)
                    )));
                }
            }
            Expr::Aggregate {
                func,
                args,
                distinct,
            }
        }
        other => other,
    })
}

/// Check a window call's arguments and cast them: offsets and counts to `BIGINT`, a `lag` or
/// `lead` default to the value's type.
fn coerce_window(mut w: WindowExpr, schema: &PlanSchema) -> Result<Expr> {
    let (min, max) = w.func.arity();
    if w.args.len() < min || w.args.len() > max {
        return Err(EngineError::Plan(format!(
            "{}() takes {} argument(s), got {}",
            w.func.name(),
            if min == max {
                min.to_string()
            } else {
                format!("{min} to {max}")
            },
            w.args.len()
        )));
    }
    if w.ignore_nulls
        && !matches!(
            w.func,
            WindowFunction::Lag
                | WindowFunction::Lead
                | WindowFunction::FirstValue
                | WindowFunction::LastValue
                | WindowFunction::NthValue
        )
    {
        return Err(EngineError::Plan(format!(
            "IGNORE NULLS applies to lag, lead, first_value, last_value and nth_value, not {}()",
            w.func.name()
        )));
    }
    let count_arg = |e: Expr, what: &str| -> Result<Expr> {
        let t = expr_type(&e, schema)?;
        if !(t.is_integer() || t == DataType::Null) {
            return Err(EngineError::Type(format!(
                "the {what} of {}() must be an integer, not {}",
                w.func.name(),
                sql_type_name(&t)
            )));
        }
        Ok(cast_to(e, &t, &DataType::Int64))
    };
    match w.func {
        WindowFunction::Aggregate(func) => {
            let coerced = coerce_node(
                Expr::Aggregate {
                    func,
                    args: std::mem::take(&mut w.args),
                    distinct: false,
                },
                schema,
            )?;
            let Expr::Aggregate { args, .. } = coerced else {
                return Err(EngineError::Internal("aggregate coercion".into()));
            };
            w.args = args;
        }
        WindowFunction::Ntile => {
            let n = w.args.remove(0);
            w.args.push(count_arg(n, "bucket count")?);
        }
        WindowFunction::NthValue => {
            let n = w.args.remove(1);
            w.args.push(count_arg(n, "row number")?);
        }
        WindowFunction::Lag | WindowFunction::Lead => {
            let value_type = expr_type(&w.args[0], schema)?;
            let mut rest = w.args.split_off(1).into_iter();
            if let Some(offset) = rest.next() {
                w.args.push(count_arg(offset, "offset")?);
            }
            if let Some(default) = rest.next() {
                let t = expr_type(&default, schema)?;
                let common = common_type_of(&[value_type.clone(), t.clone()])?;
                if common != value_type {
                    return Err(EngineError::Type(format!(
                        "the default of {}() is {}, which does not fit the value's type {}",
                        w.func.name(),
                        sql_type_name(&t),
                        sql_type_name(&value_type)
                    )));
                }
                w.args.push(cast_to(default, &t, &value_type));
            }
        }
        _ => {}
    }
    Ok(Expr::Window(Box::new(w)))
}

/// A date function's argument must be a `DATE` (or a string that reads as one, cast then).
fn date_argument(func: ScalarFunction, t: &DataType) -> Result<()> {
    let takes_timestamps = matches!(
        func,
        ScalarFunction::DateTrunc(_) | ScalarFunction::DateDiff(_)
    );
    match t {
        DataType::Date32 | DataType::Null => Ok(()),
        t if is_string(t) => Ok(()),
        DataType::Timestamp(_, None) if takes_timestamps => Ok(()),
        DataType::Timestamp(_, Some(_)) if takes_timestamps => Err(EngineError::NotSupported(
            format!("{}() of a TIMESTAMP WITH TIME ZONE", func.name()),
        )),
        DataType::Timestamp(..) => Err(EngineError::NotSupported(format!(
            "{}() of a TIMESTAMP (cast it to DATE)",
            func.name()
        ))),
        other => Err(EngineError::Type(format!(
            "{}() needs a DATE, got {}",
            func.name(),
            sql_type_name(other)
        ))),
    }
}

fn coerce_function(func: ScalarFunction, args: Vec<Expr>, schema: &PlanSchema) -> Result<Expr> {
    let arity = |min: usize, max: usize| -> Result<()> {
        if args.len() < min || args.len() > max {
            return Err(EngineError::Plan(format!(
                "{}() takes {} argument(s), got {}",
                func.name(),
                if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                },
                args.len()
            )));
        }
        Ok(())
    };
    let types = args
        .iter()
        .map(|a| expr_type(a, schema))
        .collect::<Result<Vec<_>>>()?;
    let string_arg = |e: Expr, t: &DataType| {
        if is_string(t) {
            e
        } else {
            cast_to(e, t, &DataType::Utf8)
        }
    };
    Ok(match func {
        ScalarFunction::Upper
        | ScalarFunction::Lower
        | ScalarFunction::Length
        | ScalarFunction::Trim
        | ScalarFunction::LTrim
        | ScalarFunction::RTrim => {
            arity(1, 1)?;
            let a = args.into_iter().next().expect("arity checked");
            Expr::Function {
                func,
                args: vec![string_arg(a, &types[0])],
            }
        }
        ScalarFunction::Substring => {
            arity(2, 3)?;
            let mut out = Vec::new();
            for (i, (a, t)) in args.into_iter().zip(types.iter()).enumerate() {
                if i == 0 {
                    out.push(string_arg(a, t));
                } else {
                    if !t.is_integer() && *t != DataType::Null {
                        return Err(EngineError::Type(format!(
                            "substring() positions must be integers, got {}",
                            sql_type_name(t)
                        )));
                    }
                    out.push(cast_to(a, t, &DataType::Int64));
                }
            }
            Expr::Function { func, args: out }
        }
        ScalarFunction::RegexpMatches => {
            arity(2, 2)?;
            match &args[1] {
                Expr::Literal(value) => {
                    if let Some(pattern) = value.as_str() {
                        if let Err(e) = regex::Regex::new(&pattern) {
                            return Err(EngineError::Plan(format!(
                                "invalid regular expression {pattern:?}: {e}"
                            )));
                        }
                    }
                }
                other => {
                    return Err(EngineError::NotSupported(format!(
                        "regexp_matches() with a non-constant pattern ({other})"
                    )))
                }
            }
            let out = args
                .into_iter()
                .zip(types.iter())
                .map(|(a, t)| cast_to(a, t, &DataType::Utf8))
                .collect();
            Expr::Function { func, args: out }
        }
        ScalarFunction::StartsWith | ScalarFunction::EndsWith | ScalarFunction::Contains => {
            arity(2, 2)?;
            let common = comparison_type(&types[0], &types[1])
                .filter(is_string)
                .unwrap_or(DataType::Utf8);
            let out = args
                .into_iter()
                .zip(types.iter())
                .map(|(a, t)| cast_to(a, t, &common))
                .collect();
            Expr::Function { func, args: out }
        }
        ScalarFunction::Concat => {
            if args.is_empty() {
                return Err(EngineError::Plan(
                    "concat() needs at least one argument".into(),
                ));
            }
            let out = args
                .into_iter()
                .zip(types.iter())
                .map(|(a, t)| cast_to(a, t, &DataType::Utf8))
                .collect();
            Expr::Function { func, args: out }
        }
        ScalarFunction::Coalesce => {
            if args.is_empty() {
                return Err(EngineError::Plan(
                    "coalesce() needs at least one argument".into(),
                ));
            }
            let common = common_type_of(&types)?;
            let out = args
                .into_iter()
                .zip(types.iter())
                .map(|(a, t)| cast_to(a, t, &common))
                .collect();
            Expr::Function { func, args: out }
        }
        ScalarFunction::Extract(_) => {
            arity(1, 1)?;
            match &types[0] {
                DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(_, _)
                | DataType::Null => {}
                other => {
                    return Err(EngineError::Type(format!(
                        "extract() needs a DATE or TIMESTAMP, got {}",
                        sql_type_name(other)
                    )))
                }
            }
            Expr::Function { func, args }
        }
        ScalarFunction::Grouping => {
            arity(1, 64)?;
            Expr::Function { func, args }
        }
        ScalarFunction::Floor
        | ScalarFunction::Ceil
        | ScalarFunction::Sqrt
        | ScalarFunction::Ln
        | ScalarFunction::Log10
        | ScalarFunction::Exp
        | ScalarFunction::Sign
        | ScalarFunction::Power => {
            let n = if func == ScalarFunction::Power { 2 } else { 1 };
            arity(n, n)?;
            for t in &types {
                if !is_numeric(t) && *t != DataType::Null {
                    return Err(EngineError::Type(format!(
                        "{}() needs a number, got {}",
                        func.name(),
                        sql_type_name(t)
                    )));
                }
            }
            Expr::Function { func, args }
        }
        ScalarFunction::Greatest | ScalarFunction::Least => {
            arity(1, usize::MAX)?;
            let common = common_type_of(&types)?;
            let args = args
                .into_iter()
                .zip(types.iter())
                .map(|(a, t)| cast_to(a, t, &common))
                .collect();
            Expr::Function { func, args }
        }
        ScalarFunction::Replace
        | ScalarFunction::Reverse
        | ScalarFunction::Left
        | ScalarFunction::Right
        | ScalarFunction::Strpos
        | ScalarFunction::Lpad
        | ScalarFunction::Rpad
        | ScalarFunction::SplitPart
        | ScalarFunction::ConcatWs
        | ScalarFunction::RegexpReplace
        | ScalarFunction::RegexpExtract => {
            // Which arguments are counts (BIGINT); the others are strings.
            let (min, max, counts): (usize, usize, &[usize]) = match func {
                ScalarFunction::Replace => (3, 3, &[]),
                ScalarFunction::Reverse => (1, 1, &[]),
                ScalarFunction::Left | ScalarFunction::Right => (2, 2, &[1]),
                ScalarFunction::Strpos => (2, 2, &[]),
                ScalarFunction::Lpad | ScalarFunction::Rpad => (3, 3, &[1]),
                ScalarFunction::SplitPart => (3, 3, &[2]),
                ScalarFunction::RegexpReplace => (3, 4, &[]),
                ScalarFunction::RegexpExtract => (2, 3, &[2]),
                _ => (2, usize::MAX, &[]),
            };
            arity(min, max)?;
            let mut out = Vec::with_capacity(args.len());
            for (i, (a, t)) in args.into_iter().zip(types.iter()).enumerate() {
                if counts.contains(&i) {
                    if !(t.is_integer() || *t == DataType::Null) {
                        return Err(EngineError::Type(format!(
                            "argument {} of {}() must be an integer, got {}",
                            i + 1,
                            func.name(),
                            sql_type_name(t)
                        )));
                    }
                    out.push(cast_to(a, t, &DataType::Int64));
                } else if func == ScalarFunction::ConcatWs || is_string(t) || *t == DataType::Null {
                    out.push(a);
                } else {
                    return Err(EngineError::Type(format!(
                        "argument {} of {}() must be a string, got {}",
                        i + 1,
                        func.name(),
                        sql_type_name(t)
                    )));
                }
            }
            Expr::Function { func, args: out }
        }
        ScalarFunction::DateTrunc(_) | ScalarFunction::LastDay => {
            arity(1, 1)?;
            date_argument(func, &types[0])?;
            Expr::Function { func, args }
        }
        ScalarFunction::Strftime => {
            arity(2, 2)?;
            if !matches!(
                types[0],
                DataType::Date32 | DataType::Timestamp(..) | DataType::Null
            ) {
                return Err(EngineError::Type(format!(
                    "strftime() formats a DATE or TIMESTAMP, got {}",
                    sql_type_name(&types[0])
                )));
            }
            if !is_string(&types[1]) && types[1] != DataType::Null {
                return Err(EngineError::Type(format!(
                    "the format of strftime() is a string, got {}",
                    sql_type_name(&types[1])
                )));
            }
            Expr::Function { func, args }
        }
        ScalarFunction::Strptime { .. } => {
            arity(2, 2)?;
            for (i, t) in types.iter().enumerate() {
                if !is_string(t) && *t != DataType::Null {
                    return Err(EngineError::Type(format!(
                        "argument {} of {}() must be a string, got {}",
                        i + 1,
                        func.name(),
                        sql_type_name(t)
                    )));
                }
            }
            Expr::Function { func, args }
        }
        ScalarFunction::DateDiff(_) => {
            arity(2, 2)?;
            for t in &types {
                date_argument(func, t)?;
            }
            Expr::Function { func, args }
        }
        ScalarFunction::MakeDate => {
            arity(3, 3)?;
            let args = args
                .into_iter()
                .zip(types.iter())
                .map(|(a, t)| {
                    if t.is_integer() || *t == DataType::Null {
                        Ok(cast_to(a, t, &DataType::Int64))
                    } else {
                        Err(EngineError::Type(format!(
                            "make_date() takes integers, got {}",
                            sql_type_name(t)
                        )))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Expr::Function { func, args }
        }
        ScalarFunction::Abs | ScalarFunction::Round => {
            arity(1, if func == ScalarFunction::Round { 2 } else { 1 })?;
            if !is_numeric(&types[0]) {
                return Err(EngineError::Type(format!(
                    "{}() needs a number, got {}",
                    func.name(),
                    sql_type_name(&types[0])
                )));
            }
            let mut out: Vec<Expr> = Vec::new();
            for (i, (a, t)) in args.into_iter().zip(types.iter()).enumerate() {
                out.push(if i == 0 {
                    a
                } else {
                    cast_to(a, t, &DataType::Int64)
                });
            }
            Expr::Function { func, args: out }
        }
    })
}
