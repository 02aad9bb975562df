//! Physical expressions: logical expressions with columns resolved to input positions,
//! evaluated batch-at-a-time with Arrow kernels.
//!
//! Literals stay scalars ([`ColumnarValue::Scalar`]) through the kernels instead of being
//! broadcast to full arrays, so `l_discount * (1 - 0.05)` allocates one array, not three.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int64Array,
    Int64Builder, RecordBatch, Scalar, StringArray, StringBuilder,
};
use arrow::compute::kernels::{boolean, cmp, numeric, zip::zip};
use arrow::compute::{cast_with_options, nullif, CastOptions, DatePart as ArrowDatePart};
use arrow::datatypes::DataType;

use crate::error::{EngineError, Result};
use crate::logical::expr::{BinaryOp, DatePart, Expr, ScalarFunction};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
use crate::physical::in_place;

/// The result of evaluating an expression on a batch.
#[derive(Clone, Debug)]
pub enum ColumnarValue {
    /// One value per row.
    Array(ArrayRef),
    /// The same value for every row.
    Scalar(ScalarValue),
}

impl ColumnarValue {
    /// Materialize as an array of `num_rows` rows.
    pub fn into_array(self, num_rows: usize) -> Result<ArrayRef> {
        match self {
            ColumnarValue::Array(a) => Ok(a),
            ColumnarValue::Scalar(s) => s.to_array_of_size(num_rows),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            ColumnarValue::Array(a) => a.data_type().clone(),
            ColumnarValue::Scalar(s) => s.data_type().clone(),
        }
    }
}

/// Apply a Datum kernel to two columnar values, keeping scalar ⊕ scalar a scalar.
fn datum_kernel(
    l: &ColumnarValue,
    r: &ColumnarValue,
    f: impl Fn(
        &dyn arrow::array::Datum,
        &dyn arrow::array::Datum,
    ) -> std::result::Result<ArrayRef, arrow::error::ArrowError>,
) -> Result<ColumnarValue> {
    let out = match (l, r) {
        (ColumnarValue::Array(a), ColumnarValue::Array(b)) => ColumnarValue::Array(f(a, b)?),
        (ColumnarValue::Array(a), ColumnarValue::Scalar(b)) => {
            ColumnarValue::Array(f(a, &Scalar::new(b.array()))?)
        }
        (ColumnarValue::Scalar(a), ColumnarValue::Array(b)) => {
            ColumnarValue::Array(f(&Scalar::new(a.array()), b)?)
        }
        (ColumnarValue::Scalar(a), ColumnarValue::Scalar(b)) => ColumnarValue::Scalar(
            ScalarValue::from_array(f(&Scalar::new(a.array()), &Scalar::new(b.array()))?),
        ),
    };
    Ok(out)
}

/// Results of sub-expressions already computed for the current batch, so that expressions
/// sharing a sub-expression (`price * (1 - discount)` in two aggregates) compute it once.
///
/// Only sub-expressions that occur more than once are kept: a kept result is held by the
/// cache, so the arithmetic above it cannot write into its buffer (see [`in_place`]).
#[derive(Default)]
pub struct ExprCache {
    entries: Vec<(PhysicalExpr, ColumnarValue)>,
    /// Sub-expressions that occur more than once; `None`: keep every result.
    shared: Option<Vec<PhysicalExpr>>,
}

impl ExprCache {
    /// A cache for evaluating all of `exprs` on each batch.
    pub fn for_exprs<'a>(exprs: impl IntoIterator<Item = &'a PhysicalExpr>) -> Self {
        let mut seen: Vec<(&PhysicalExpr, usize)> = Vec::new();
        fn count<'a>(e: &'a PhysicalExpr, seen: &mut Vec<(&'a PhysicalExpr, usize)>) {
            let children: Vec<&PhysicalExpr> = match e {
                PhysicalExpr::Binary(l, _, r, _) => vec![l, r],
                PhysicalExpr::Cast(c, _) => vec![c],
                _ => return,
            };
            match seen.iter_mut().find(|(s, _)| *s == e) {
                Some((_, n)) => *n += 1,
                None => seen.push((e, 1)),
            }
            for c in children {
                count(c, seen);
            }
        }
        for e in exprs {
            count(e, &mut seen);
        }
        Self {
            entries: Vec::new(),
            shared: Some(
                seen.into_iter()
                    .filter(|&(_, n)| n > 1)
                    .map(|(e, _)| e.clone())
                    .collect(),
            ),
        }
    }

    /// Forget everything (call once per batch).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn get(&self, expr: &PhysicalExpr) -> Option<ColumnarValue> {
        self.entries
            .iter()
            .find(|(e, _)| e == expr)
            .map(|(_, v)| v.clone())
    }

    fn keeps(&self, expr: &PhysicalExpr) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.contains(expr))
    }

    fn keep(&mut self, expr: &PhysicalExpr, value: &ColumnarValue) {
        if self.keeps(expr) {
            self.entries.push((expr.clone(), value.clone()));
        }
    }
}

/// An executable expression over a known input schema.
#[derive(Clone, Debug, PartialEq)]
pub enum PhysicalExpr {
    /// Input column by position.
    Column(usize, String),
    /// Constant.
    Literal(ScalarValue),
    /// Binary operator.
    Binary(Box<PhysicalExpr>, BinaryOp, Box<PhysicalExpr>, DataType),
    /// Boolean NOT.
    Not(Box<PhysicalExpr>),
    /// Arithmetic negation.
    Negative(Box<PhysicalExpr>),
    /// IS [NOT] NULL.
    IsNull(Box<PhysicalExpr>, bool),
    /// [NOT] IN list of values.
    InList(Box<PhysicalExpr>, Vec<PhysicalExpr>, bool),
    /// [NOT] [I]LIKE.
    Like(Box<PhysicalExpr>, Box<PhysicalExpr>, bool, bool),
    /// Searched CASE (simple CASE is rewritten into equality conditions).
    Case(
        Vec<(PhysicalExpr, PhysicalExpr)>,
        Option<Box<PhysicalExpr>>,
        DataType,
    ),
    /// CAST.
    Cast(Box<PhysicalExpr>, DataType),
    /// Scalar function.
    Function(ScalarFunction, Vec<PhysicalExpr>, DataType),
}

/// Compile a (coerced) logical expression against `schema`.
pub fn create_physical_expr(expr: &Expr, schema: &PlanSchema) -> Result<PhysicalExpr> {
    let compile = |e: &Expr| create_physical_expr(e, schema);
    Ok(match expr {
        Expr::Column(c) => PhysicalExpr::Column(
            schema.index_of(c.relation.as_deref(), &c.name)?,
            c.name.clone(),
        ),
        Expr::Literal(v) => PhysicalExpr::Literal(v.clone()),
        Expr::Alias { expr, .. } => compile(expr)?,
        Expr::Binary { left, op, right } => PhysicalExpr::Binary(
            Box::new(compile(left)?),
            *op,
            Box::new(compile(right)?),
            expr.data_type(schema)?,
        ),
        Expr::Not(e) => PhysicalExpr::Not(Box::new(compile(e)?)),
        Expr::Negative(e) => PhysicalExpr::Negative(Box::new(compile(e)?)),
        Expr::IsNull { expr, negated } => PhysicalExpr::IsNull(Box::new(compile(expr)?), *negated),
        Expr::Between {
            expr: e,
            low,
            high,
            negated,
        } => {
            let e = compile(e)?;
            let ge = PhysicalExpr::Binary(
                Box::new(e.clone()),
                BinaryOp::GtEq,
                Box::new(compile(low)?),
                DataType::Boolean,
            );
            let le = PhysicalExpr::Binary(
                Box::new(e),
                BinaryOp::LtEq,
                Box::new(compile(high)?),
                DataType::Boolean,
            );
            let both =
                PhysicalExpr::Binary(Box::new(ge), BinaryOp::And, Box::new(le), DataType::Boolean);
            if *negated {
                PhysicalExpr::Not(Box::new(both))
            } else {
                both
            }
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => PhysicalExpr::InList(
            Box::new(compile(expr)?),
            list.iter().map(compile).collect::<Result<_>>()?,
            *negated,
        ),
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => PhysicalExpr::Like(
            Box::new(compile(expr)?),
            Box::new(compile(pattern)?),
            *negated,
            *case_insensitive,
        ),
        Expr::Case {
            operand,
            when_then,
            otherwise,
        } => {
            let result_type = expr.data_type(schema)?;
            let mut branches = Vec::new();
            for (w, t) in when_then {
                let condition = match operand {
                    Some(o) => PhysicalExpr::Binary(
                        Box::new(compile(o)?),
                        BinaryOp::Eq,
                        Box::new(compile(w)?),
                        DataType::Boolean,
                    ),
                    None => compile(w)?,
                };
                branches.push((condition, compile(t)?));
            }
            let otherwise = otherwise
                .as_ref()
                .map(|o| compile(o).map(Box::new))
                .transpose()?;
            PhysicalExpr::Case(branches, otherwise, result_type)
        }
        Expr::Cast { expr, to } => PhysicalExpr::Cast(Box::new(compile(expr)?), to.clone()),
        Expr::Function { func, args } => PhysicalExpr::Function(
            *func,
            args.iter().map(compile).collect::<Result<_>>()?,
            expr.data_type(schema)?,
        ),
        Expr::Aggregate { .. } => {
            return Err(EngineError::Internal(format!(
                "aggregate {expr} reached expression evaluation"
            )))
        }
    })
}

impl PhysicalExpr {
    /// Evaluate on a batch, reusing and recording shared sub-expressions in `cache`.
    pub fn evaluate_cached(
        &self,
        batch: &RecordBatch,
        cache: &mut ExprCache,
    ) -> Result<ColumnarValue> {
        match self {
            PhysicalExpr::Binary(l, op, r, result_type) => {
                if let Some(v) = cache.get(self) {
                    return Ok(v);
                }
                let lv = l.evaluate_cached(batch, cache)?;
                let rv = r.evaluate_cached(batch, cache)?;
                let v = evaluate_binary_owned(lv, *op, rv, result_type)?;
                cache.keep(self, &v);
                Ok(v)
            }
            PhysicalExpr::Cast(e, to) => {
                if let Some(v) = cache.get(self) {
                    return Ok(v);
                }
                let to = to.clone();
                let v = map_unary(e.evaluate_cached(batch, cache)?, move |a| {
                    cast_array(a, &to)
                })?;
                cache.keep(self, &v);
                Ok(v)
            }
            other => other.evaluate(batch),
        }
    }

    /// Evaluate on a batch.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        match self {
            PhysicalExpr::Column(i, _) => Ok(ColumnarValue::Array(Arc::clone(batch.column(*i)))),
            PhysicalExpr::Literal(v) => Ok(ColumnarValue::Scalar(v.clone())),
            PhysicalExpr::Binary(l, op, r, result_type) => {
                let lv = l.evaluate(batch)?;
                let rv = r.evaluate(batch)?;
                evaluate_binary_owned(lv, *op, rv, result_type)
            }
            PhysicalExpr::Not(e) => map_unary(e.evaluate(batch)?, |a| {
                Ok(Arc::new(boolean::not(a.as_boolean())?))
            }),
            PhysicalExpr::Negative(e) => map_unary(e.evaluate(batch)?, |a| Ok(numeric::neg(a)?)),
            PhysicalExpr::IsNull(e, negated) => {
                let negated = *negated;
                map_unary(e.evaluate(batch)?, move |a| {
                    let out = if negated {
                        arrow::compute::is_not_null(a)?
                    } else {
                        arrow::compute::is_null(a)?
                    };
                    Ok(Arc::new(out))
                })
            }
            PhysicalExpr::InList(e, list, negated) => {
                let value = e.evaluate(batch)?;
                let mut acc: Option<ColumnarValue> = None;
                for item in list {
                    let item = item.evaluate(batch)?;
                    let eq = datum_kernel(&value, &item, |a, b| Ok(Arc::new(cmp::eq(a, b)?)))?;
                    acc = Some(match acc {
                        None => eq,
                        Some(prev) => kleene(&prev, &eq, BinaryOp::Or)?,
                    });
                }
                let acc = acc.unwrap_or(ColumnarValue::Scalar(ScalarValue::boolean(false)));
                if *negated {
                    map_unary(acc, |a| Ok(Arc::new(boolean::not(a.as_boolean())?)))
                } else {
                    Ok(acc)
                }
            }
            PhysicalExpr::Like(e, pattern, negated, case_insensitive) => {
                let value = e.evaluate(batch)?;
                let pattern = pattern.evaluate(batch)?;
                let (negated, ci) = (*negated, *case_insensitive);
                datum_kernel(&value, &pattern, move |a, b| {
                    use arrow::compute::kernels::comparison as like;
                    let out = match (negated, ci) {
                        (false, false) => like::like(a, b)?,
                        (true, false) => like::nlike(a, b)?,
                        (false, true) => like::ilike(a, b)?,
                        (true, true) => like::nilike(a, b)?,
                    };
                    Ok(Arc::new(out))
                })
            }
            PhysicalExpr::Case(branches, otherwise, result_type) => {
                let n = batch.num_rows();
                let mut acc = match otherwise {
                    Some(o) => o.evaluate(batch)?.into_array(n)?,
                    None => new_null_array(result_type, n),
                };
                for (condition, then) in branches.iter().rev() {
                    let mask = condition.evaluate(batch)?.into_array(n)?;
                    let mask = null_as_false(mask.as_boolean());
                    let then = then.evaluate(batch)?;
                    acc = match then {
                        ColumnarValue::Array(t) => zip(&mask, &t, &acc)?,
                        ColumnarValue::Scalar(t) => zip(&mask, &Scalar::new(t.array()), &acc)?,
                    };
                }
                Ok(ColumnarValue::Array(acc))
            }
            PhysicalExpr::Cast(e, to) => {
                let to = to.clone();
                map_unary(e.evaluate(batch)?, move |a| cast_array(a, &to))
            }
            PhysicalExpr::Function(func, args, result_type) => {
                let values = args
                    .iter()
                    .map(|a| a.evaluate(batch))
                    .collect::<Result<Vec<_>>>()?;
                evaluate_function(*func, values, result_type, batch.num_rows())
            }
        }
    }

    /// Evaluate a boolean expression into a filter mask (NULL counts as false).
    pub fn evaluate_mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let value = self.evaluate(batch)?.into_array(batch.num_rows())?;
        let mask = value.as_boolean_opt().ok_or_else(|| {
            EngineError::Internal(format!("predicate evaluated to {}", value.data_type()))
        })?;
        Ok(if mask.null_count() > 0 {
            null_as_false(mask)
        } else {
            mask.clone()
        })
    }
}

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

/// A filter mask where NULL counts as false.
pub fn null_as_false(mask: &BooleanArray) -> BooleanArray {
    match mask.nulls() {
        Some(nulls) if nulls.null_count() > 0 => {
            BooleanArray::new(mask.values() & nulls.inner(), None)
        }
        _ => BooleanArray::new(mask.values().clone(), None),
    }
}

/// Cast with SQL semantics: invalid values are errors, not silent NULLs.
pub fn cast_array(array: &dyn Array, to: &DataType) -> Result<ArrayRef> {
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

fn map_unary(
    value: ColumnarValue,
    f: impl Fn(&dyn Array) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    Ok(match value {
        ColumnarValue::Array(a) => ColumnarValue::Array(f(&a)?),
        ColumnarValue::Scalar(s) => ColumnarValue::Scalar(ScalarValue::from_array(f(s.array())?)),
    })
}

fn kleene(l: &ColumnarValue, r: &ColumnarValue, op: BinaryOp) -> Result<ColumnarValue> {
    let n = match (l, r) {
        (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
        _ => 1,
    };
    let both_scalar = matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
    let la = l.clone().into_array(n)?;
    let ra = r.clone().into_array(n)?;
    let out = match op {
        BinaryOp::And => boolean::and_kleene(la.as_boolean(), ra.as_boolean())?,
        _ => boolean::or_kleene(la.as_boolean(), ra.as_boolean())?,
    };
    let out: ArrayRef = Arc::new(out);
    Ok(if both_scalar {
        ColumnarValue::Scalar(ScalarValue::from_array(out))
    } else {
        ColumnarValue::Array(out)
    })
}

fn is_zero_mask(value: &ColumnarValue) -> Result<Option<ColumnarValue>> {
    let t = value.data_type();
    if !(t.is_numeric()) {
        return Ok(None);
    }
    let zero = ScalarValue::int32(0).cast_to(&t)?;
    let mask = datum_kernel(value, &ColumnarValue::Scalar(zero), |a, b| {
        Ok(Arc::new(cmp::eq(a, b)?))
    })?;
    Ok(Some(mask))
}

/// [`evaluate_binary`] taking its operands, so that decimal and float arithmetic can write
/// into an operand that nothing else holds (see [`in_place`]).
fn evaluate_binary_owned(
    l: ColumnarValue,
    op: BinaryOp,
    r: ColumnarValue,
    result_type: &DataType,
) -> Result<ColumnarValue> {
    use BinaryOp::*;
    match op {
        Plus | Minus | Multiply if fast_decimal_applies(&l, op, &r) => {
            fast_decimal(l, op, r, result_type)
        }
        Plus | Minus | Multiply | Divide if float_applies(&l, &r, result_type) => {
            float_arithmetic(l, op, r)
        }
        _ => evaluate_binary(&l, op, &r, result_type),
    }
}

/// Both operands and the result are `DOUBLE`, at least one operand an array.
fn float_applies(l: &ColumnarValue, r: &ColumnarValue, result_type: &DataType) -> bool {
    *result_type == DataType::Float64
        && l.data_type() == DataType::Float64
        && r.data_type() == DataType::Float64
        && !matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)))
}

/// IEEE arithmetic on doubles (`x / 0` is ±inf or NaN, as in [`evaluate_binary`]).
fn float_arithmetic(l: ColumnarValue, op: BinaryOp, r: ColumnarValue) -> Result<ColumnarValue> {
    use arrow::datatypes::Float64Type;
    let f = match op {
        BinaryOp::Plus => |a: f64, b: f64| a + b,
        BinaryOp::Minus => |a: f64, b: f64| a - b,
        BinaryOp::Multiply => |a: f64, b: f64| a * b,
        _ => |a: f64, b: f64| a / b,
    };
    let scalar = |v: &ScalarValue| -> Option<f64> {
        let a = v.array().as_primitive::<Float64Type>();
        a.is_valid(0).then(|| a.value(0))
    };
    let out = match (l, r) {
        (ColumnarValue::Array(a), ColumnarValue::Array(b)) => in_place::binary(a, b, f)?,
        (ColumnarValue::Array(a), ColumnarValue::Scalar(v)) => match scalar(&v) {
            Some(y) => in_place::unary(a, |x| f(x, y)),
            None => arrow::array::Float64Array::new_null(a.len()),
        },
        (ColumnarValue::Scalar(v), ColumnarValue::Array(b)) => match scalar(&v) {
            Some(x) => in_place::unary(b, |y| f(x, y)),
            None => arrow::array::Float64Array::new_null(b.len()),
        },
        (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)) => {
            return Err(EngineError::Internal("float path on two scalars".into()))
        }
    };
    Ok(ColumnarValue::Array(Arc::new(out)))
}

fn evaluate_binary(
    l: &ColumnarValue,
    op: BinaryOp,
    r: &ColumnarValue,
    result_type: &DataType,
) -> Result<ColumnarValue> {
    use BinaryOp::*;
    let cmp_kernel = |f: fn(
        &dyn arrow::array::Datum,
        &dyn arrow::array::Datum,
    ) -> std::result::Result<BooleanArray, arrow::error::ArrowError>| {
        datum_kernel(l, r, move |a, b| Ok(Arc::new(f(a, b)?)))
    };
    if op.is_comparison() && l.data_type().is_floating() {
        // Arrow compares floats by total order, where -0.0 < 0.0; SQL says they are equal.
        let (l, r) = (normalize_zero(l)?, normalize_zero(r)?);
        return compare_values(&l, op, &r);
    }
    match op {
        Eq => cmp_kernel(cmp::eq),
        NotEq => cmp_kernel(cmp::neq),
        Lt => cmp_kernel(cmp::lt),
        LtEq => cmp_kernel(cmp::lt_eq),
        Gt => cmp_kernel(cmp::gt),
        GtEq => cmp_kernel(cmp::gt_eq),
        And | Or => kleene(l, r, op),
        Plus | Minus | Multiply if fast_decimal_applies(l, op, r) => {
            fast_decimal(l.clone(), op, r.clone(), result_type)
        }
        Plus => {
            datum_kernel(l, r, |a, b| numeric::add(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Minus => {
            datum_kernel(l, r, |a, b| numeric::sub(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Multiply => {
            datum_kernel(l, r, |a, b| numeric::mul(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Divide if result_type.is_floating() => {
            // `/` is floating-point division (as in DuckDB): x / 0 is ±inf or NaN.
            datum_kernel(l, r, |a, b| numeric::div(a, b)).and_then(|v| fix_type(v, result_type))
        }
        Divide | Modulo => {
            // Integer division or remainder by zero yields NULL (as in DuckDB): replace zero
            // divisors by one, compute, then null out those rows.
            let zero_mask = is_zero_mask(r)?;
            let (divisor, mask) = match zero_mask {
                Some(mask) => {
                    let n = match (l, r) {
                        (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
                        _ => 1,
                    };
                    let mask_array = mask.into_array(n)?;
                    let mask_bool = null_as_false(mask_array.as_boolean());
                    if mask_bool.true_count() == 0 {
                        (r.clone(), None)
                    } else {
                        let one = ScalarValue::int32(1).cast_to(&r.data_type())?;
                        let rr = r.clone().into_array(n)?;
                        let fixed = zip(&mask_bool, &Scalar::new(one.array()), &rr)?;
                        (ColumnarValue::Array(fixed), Some((mask_bool, n)))
                    }
                }
                None => (r.clone(), None),
            };
            let out = if op == Divide {
                datum_kernel(l, &divisor, |a, b| numeric::div(a, b))?
            } else {
                datum_kernel(l, &divisor, |a, b| numeric::rem(a, b))?
            };
            let out = match mask {
                Some((mask, n)) => ColumnarValue::Array(nullif(&out.into_array(n)?, &mask)?),
                None => out,
            };
            fix_type(out, result_type)
        }
        StringConcat => {
            let n = match (l, r) {
                (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
                _ => 1,
            };
            let la = cast_array(&l.clone().into_array(n)?, &DataType::Utf8)?;
            let ra = cast_array(&r.clone().into_array(n)?, &DataType::Utf8)?;
            let out = arrow::compute::kernels::concat_elements::concat_elements_utf8(
                la.as_string::<i32>(),
                ra.as_string::<i32>(),
            )?;
            Ok(ColumnarValue::Array(Arc::new(out)))
        }
    }
}

fn compare_values(l: &ColumnarValue, op: BinaryOp, r: &ColumnarValue) -> Result<ColumnarValue> {
    type Kernel = fn(
        &dyn arrow::array::Datum,
        &dyn arrow::array::Datum,
    ) -> std::result::Result<BooleanArray, arrow::error::ArrowError>;
    let kernel: Kernel = match op {
        BinaryOp::Eq => cmp::eq,
        BinaryOp::NotEq => cmp::neq,
        BinaryOp::Lt => cmp::lt,
        BinaryOp::LtEq => cmp::lt_eq,
        BinaryOp::Gt => cmp::gt,
        _ => cmp::gt_eq,
    };
    datum_kernel(l, r, move |a, b| Ok(Arc::new(kernel(a, b)?)))
}

/// Replace -0.0 by 0.0 (adding +0.0 does exactly that and keeps NaN and infinities).
pub fn normalize_zero(value: &ColumnarValue) -> Result<ColumnarValue> {
    match value.data_type() {
        DataType::Float64 | DataType::Float32 if !is_normalized(value) => {
            map_unary(value.clone(), |a| {
                let zero = ScalarValue::float64(0.0).cast_to(a.data_type())?;
                Ok(numeric::add(&a, &Scalar::new(zero.array()))?)
            })
        }
        _ => Ok(value.clone()),
    }
}

fn is_normalized(value: &ColumnarValue) -> bool {
    match value {
        ColumnarValue::Scalar(s) if s.data_type() == &DataType::Float64 => {
            let a = s.array().as_primitive::<arrow::datatypes::Float64Type>();
            a.is_null(0) || !(a.value(0) == 0.0 && a.value(0).is_sign_negative())
        }
        _ => false,
    }
}

/// Normalize -0.0 in a float array (for grouping and sorting keys).
pub fn normalize_zero_array(array: ArrayRef) -> Result<ArrayRef> {
    if array.data_type().is_floating() {
        normalize_zero(&ColumnarValue::Array(array))?.into_array(0)
    } else {
        Ok(array)
    }
}

/// True when `l op r` on decimals cannot overflow i128 and needs no rescaling, so a plain
/// (unchecked) kernel is exact.
fn fast_decimal_applies(l: &ColumnarValue, op: BinaryOp, r: &ColumnarValue) -> bool {
    let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) =
        (l.data_type(), r.data_type())
    else {
        return false;
    };
    if matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))) {
        return false;
    }
    match op {
        BinaryOp::Multiply => (p1 as u16 + p2 as u16) < 38,
        BinaryOp::Plus | BinaryOp::Minus => {
            let scale = s1.max(s2) as i16;
            let integer_digits = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
            scale + integer_digits < 38 && s1 >= 0 && s2 >= 0
        }
        _ => false,
    }
}

fn fast_decimal(
    l: ColumnarValue,
    op: BinaryOp,
    r: ColumnarValue,
    result_type: &DataType,
) -> Result<ColumnarValue> {
    use arrow::array::{Decimal128Array, PrimitiveArray};
    use arrow::datatypes::Decimal128Type;
    let DataType::Decimal128(p, s) = result_type.clone() else {
        return Err(EngineError::Internal(format!(
            "decimal result type expected, got {result_type}"
        )));
    };
    let f = match op {
        BinaryOp::Multiply => |a: i128, b: i128| a.wrapping_mul(b),
        BinaryOp::Plus => |a: i128, b: i128| a.wrapping_add(b),
        _ => |a: i128, b: i128| a.wrapping_sub(b),
    };
    let scalar_value = |v: &ScalarValue| -> Option<i128> {
        let a = v.array().as_primitive::<Decimal128Type>();
        a.is_valid(0).then(|| a.value(0))
    };
    // Add and subtract need both sides at the result scale.
    let (l, r) = match (op, l.data_type(), r.data_type()) {
        (
            BinaryOp::Plus | BinaryOp::Minus,
            DataType::Decimal128(_, s1),
            DataType::Decimal128(_, s2),
        ) if s1 != s2 => (rescale(l, s)?, rescale(r, s)?),
        _ => (l, r),
    };
    let out: Decimal128Array = match (l, r) {
        (ColumnarValue::Array(a), ColumnarValue::Array(b)) => in_place::binary(a, b, f)?,
        (ColumnarValue::Array(a), ColumnarValue::Scalar(v)) => match scalar_value(&v) {
            Some(y) => in_place::unary(a, |x| f(x, y)),
            None => PrimitiveArray::new_null(a.len()),
        },
        (ColumnarValue::Scalar(v), ColumnarValue::Array(b)) => match scalar_value(&v) {
            Some(x) => in_place::unary(b, |y| f(x, y)),
            None => PrimitiveArray::new_null(b.len()),
        },
        _ => {
            return Err(EngineError::Internal(
                "fast decimal path on two scalars".into(),
            ))
        }
    };
    Ok(ColumnarValue::Array(Arc::new(
        out.with_precision_and_scale(p, s)?,
    )))
}

/// The same decimal values at a larger scale (exact: multiplies by a power of ten).
fn rescale(value: ColumnarValue, scale: i8) -> Result<ColumnarValue> {
    use arrow::datatypes::Decimal128Type;
    let DataType::Decimal128(p, s) = value.data_type() else {
        return Ok(value);
    };
    if s == scale {
        return Ok(value);
    }
    let factor = 10i128.pow((scale - s) as u32);
    let (p2, s2) = ((p as i16 + (scale - s) as i16).min(38) as u8, scale);
    let rescaled = |a: ArrayRef| -> Result<ArrayRef> {
        let out = in_place::unary::<Decimal128Type, _>(a, |x| x.wrapping_mul(factor));
        Ok(Arc::new(out.with_precision_and_scale(p2, s2)?))
    };
    Ok(match value {
        ColumnarValue::Array(a) => ColumnarValue::Array(rescaled(a)?),
        ColumnarValue::Scalar(v) => {
            ColumnarValue::Scalar(ScalarValue::from_array(rescaled(Arc::clone(v.array()))?))
        }
    })
}

/// Kernels may pick a different decimal precision than the planner; align to the planned type.
fn fix_type(value: ColumnarValue, result_type: &DataType) -> Result<ColumnarValue> {
    if value.data_type() == *result_type {
        return Ok(value);
    }
    match (&value, result_type) {
        (_, DataType::Decimal128(p, s)) if matches!(value.data_type(), DataType::Decimal128(_, vs) if vs == *s) =>
        {
            let (p, s) = (*p, *s);
            map_unary(value, move |a| {
                let array = a
                    .as_primitive::<arrow::datatypes::Decimal128Type>()
                    .clone()
                    .with_precision_and_scale(p, s)?;
                Ok(Arc::new(array))
            })
        }
        _ => {
            let to = result_type.clone();
            map_unary(value, move |a| cast_array(a, &to))
        }
    }
}

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

fn evaluate_function(
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
            let out =
                arrow::compute::regexp_is_match_scalar(strings.as_string::<i32>(), &pattern, None)?;
            Ok(wrap(Arc::new(out)))
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
            };
            let out = arrow::compute::date_part(&array, arrow_part)?;
            Ok(wrap(cast_array(&out, &DataType::Int64)?))
        }
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
                Some(ColumnarValue::Scalar(s)) => s.as_i64().unwrap_or(0),
                Some(_) => {
                    return Err(EngineError::NotSupported(
                        "round() with non-constant digits".into(),
                    ))
                }
                None => 0,
            };
            let as_f64 = cast_array(&array, &DataType::Float64)?;
            let factor = 10f64.powi(digits as i32);
            let out: arrow::array::Float64Array = as_f64
                .as_primitive::<arrow::datatypes::Float64Type>()
                .unary(|v| (v * factor).round() / factor);
            Ok(wrap(cast_array(&out, result_type)?))
        }
    }
}

/// SQL `substring(s, start, length)`: 1-based character positions; positions before the start
/// of the string count against the length.
pub fn sql_substring(s: &str, start: i64, length: Option<i64>) -> String {
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

/// Build a boolean array from an iterator (test helper and small kernels).
pub fn booleans(values: impl IntoIterator<Item = Option<bool>>) -> BooleanArray {
    let mut builder = BooleanBuilder::new();
    for v in values {
        builder.append_option(v);
    }
    builder.finish()
}

/// Build an Int64 array (test helper).
pub fn int64s(values: impl IntoIterator<Item = Option<i64>>) -> Int64Array {
    let mut builder = Int64Builder::new();
    for v in values {
        builder.append_option(v);
    }
    builder.finish()
}

/// Build a string array (test helper).
pub fn strings<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> StringArray {
    values.into_iter().collect()
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
