//! Compiled expressions: logical expressions with their columns resolved to input positions,
//! evaluated a batch at a time with Arrow kernels.
//!
//! This is a leaf that every layer above `logical` may use: operators evaluate their
//! predicates, projections, keys and aggregate arguments with it, and the optimizer and the
//! SQL front end fold constant expressions with it ([`constant`]). It knows expressions, types
//! and values; it knows no plans and no operators.
//!
//! Literals stay scalars ([`ColumnarValue::Scalar`]) through the kernels instead of being
//! broadcast to full arrays, so `l_discount * (1 - 0.05)` allocates one array, not three.
//!
//! | module          | what it holds                                                      |
//! |-----------------|--------------------------------------------------------------------|
//! | this one        | [`PhysicalExpr`], compiling and evaluating it, the sub-expression cache |
//! | [`arithmetic`]  | binary operators: comparisons, Kleene logic, exact decimal and IEEE float arithmetic |
//! | [`cast`]        | casts with SQL semantics (errors, not NULLs; DuckDB's rounding)     |
//! | [`functions`]   | the scalar function library (strings, dates, numbers)              |
//! | [`constant`]    | evaluating constant sub-expressions once, at planning time         |
//! | [`in_place`]    | kernels that write into a uniquely owned operand's buffer          |

pub(crate) mod arithmetic;
pub(crate) mod cast;
pub(crate) mod constant;
mod dates;
pub(crate) mod functions;
pub(crate) mod in_place;
mod in_set;
mod math;
mod strings;

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, Scalar};
use arrow::compute::kernels::{boolean, cmp, numeric, zip::zip};
use arrow::datatypes::DataType;

use crate::error::{EngineError, Result};
use crate::logical::expr::{BinaryOp, Expr, ScalarFunction};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;

pub(crate) use self::arithmetic::normalize_zero_array;
use self::arithmetic::{evaluate_binary_owned, kleene};
pub(crate) use self::cast::cast_array;
use self::functions::evaluate_function;

/// The result of evaluating an expression on a batch.
#[derive(Clone, Debug)]
pub(crate) enum ColumnarValue {
    /// One value per row.
    Array(ArrayRef),
    /// The same value for every row.
    Scalar(ScalarValue),
}

impl ColumnarValue {
    /// Materialize as an array of `num_rows` rows.
    pub(crate) fn into_array(self, num_rows: usize) -> Result<ArrayRef> {
        match self {
            ColumnarValue::Array(a) if a.len() == num_rows => Ok(a),
            ColumnarValue::Array(a) => Err(EngineError::Internal(format!(
                "an expression gave {} values for {num_rows} rows",
                a.len()
            ))),
            ColumnarValue::Scalar(s) => s.to_array_of_size(num_rows),
        }
    }

    pub(crate) fn data_type(&self) -> DataType {
        match self {
            ColumnarValue::Array(a) => a.data_type().clone(),
            ColumnarValue::Scalar(s) => s.data_type().clone(),
        }
    }
}

/// Apply a Datum kernel to two columnar values, keeping scalar ⊕ scalar a scalar.
pub(crate) fn datum_kernel(
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
pub(crate) struct ExprCache {
    entries: Vec<(PhysicalExpr, ColumnarValue)>,
    /// Sub-expressions that occur more than once; `None`: keep every result.
    shared: Option<Vec<PhysicalExpr>>,
}

impl ExprCache {
    /// A cache for evaluating all of `exprs` on each batch.
    pub(crate) fn for_exprs<'a>(exprs: impl IntoIterator<Item = &'a PhysicalExpr>) -> Self {
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
    pub(crate) fn clear(&mut self) {
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
pub(crate) enum PhysicalExpr {
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
    /// `IS [NOT] NULL`.
    IsNull(Box<PhysicalExpr>, bool),
    /// `[NOT] IN` a list of values.
    InList(Box<PhysicalExpr>, Vec<PhysicalExpr>, bool),
    /// `[NOT] IN` many constants, looked up in a set.
    InSet(Box<PhysicalExpr>, in_set::InSet, bool),
    /// `[NOT] [I]LIKE`.
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
pub(crate) fn create_physical_expr(expr: &Expr, schema: &PlanSchema) -> Result<PhysicalExpr> {
    let compile = |e: &Expr| create_physical_expr(e, schema);
    Ok(match expr {
        Expr::Window(w) => {
            return Err(EngineError::Internal(format!(
                "window call {w} outside of a window node"
            )))
        }
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
        } => {
            let constants: Option<Vec<&ScalarValue>> = list
                .iter()
                .map(|e| match e {
                    Expr::Literal(v) => Some(v),
                    _ => None,
                })
                .collect();
            let set = match constants {
                Some(values) => in_set::InSet::try_new(&expr.data_type(schema)?, &values)?,
                None => None,
            };
            match set {
                Some(set) => PhysicalExpr::InSet(Box::new(compile(expr)?), set, *negated),
                None => PhysicalExpr::InList(
                    Box::new(compile(expr)?),
                    list.iter().map(compile).collect::<Result<_>>()?,
                    *negated,
                ),
            }
        }
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
    pub(crate) fn evaluate_cached(
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
    pub(crate) fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
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
            PhysicalExpr::InSet(e, set, negated) => {
                let negated = *negated;
                map_unary(e.evaluate(batch)?, |a| {
                    Ok(Arc::new(set.contains(a, negated)?))
                })
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
                // Every branch over every row first (the common case, and the fastest); if
                // that fails, a branch may have failed on rows it does not decide (`CASE WHEN
                // x <> 0 THEN 1 / x END`): SQL evaluates each branch only on its own rows.
                match case_eagerly(batch, branches, otherwise.as_deref(), result_type) {
                    Ok(value) => Ok(value),
                    Err(_) => case_lazily(batch, branches, otherwise.as_deref(), result_type),
                }
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
    pub(crate) fn evaluate_mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        match self.evaluate_mask_eagerly(batch) {
            Ok(mask) => Ok(mask),
            // A conjunct may have failed on rows an earlier one rejects (`x <> 0 AND 1 // x >
            // 2`, an overflow on rows another conjunct filters out): evaluate the conjuncts
            // one after another, each only on the rows still passing. A conjunct that fails
            // on a row it decides still fails.
            Err(e) => {
                let mut conjuncts = Vec::new();
                self.conjuncts(&mut conjuncts);
                if conjuncts.len() < 2 {
                    return Err(e);
                }
                mask_conjunct_by_conjunct(&conjuncts, batch)
            }
        }
    }

    fn evaluate_mask_eagerly(&self, batch: &RecordBatch) -> Result<BooleanArray> {
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

    /// The operands of a chain of `AND`s, left to right.
    fn conjuncts<'a>(&'a self, out: &mut Vec<&'a PhysicalExpr>) {
        match self {
            PhysicalExpr::Binary(l, BinaryOp::And, r, _) => {
                l.conjuncts(out);
                r.conjuncts(out);
            }
            other => out.push(other),
        }
    }
}

/// The mask of `conjuncts` ANDed, each evaluated only on the rows all earlier ones passed.
fn mask_conjunct_by_conjunct(
    conjuncts: &[&PhysicalExpr],
    batch: &RecordBatch,
) -> Result<BooleanArray> {
    use arrow::compute::filter_record_batch;
    // Positions in `batch` of the rows still passing, and those rows.
    let mut passing: Vec<u32> = (0..batch.num_rows() as u32).collect();
    let mut rows = batch.clone();
    for conjunct in conjuncts {
        if passing.is_empty() {
            break;
        }
        let mask = conjunct.evaluate_mask_eagerly(&rows)?;
        rows = filter_record_batch(&rows, &mask)?;
        passing = passing
            .iter()
            .zip(mask.values().iter())
            .filter_map(|(&row, kept)| kept.then_some(row))
            .collect();
    }
    let mut out = vec![false; batch.num_rows()];
    for row in passing {
        out[row as usize] = true;
    }
    Ok(BooleanArray::from(out))
}

/// `CASE` with every branch evaluated over every row.
fn case_eagerly(
    batch: &RecordBatch,
    branches: &[(PhysicalExpr, PhysicalExpr)],
    otherwise: Option<&PhysicalExpr>,
    result_type: &DataType,
) -> Result<ColumnarValue> {
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

/// `CASE` as SQL defines it: each condition evaluated only on the rows no earlier branch
/// took, each result only on the rows its condition took, so that an error can come only
/// from a row the failing expression decides.
fn case_lazily(
    batch: &RecordBatch,
    branches: &[(PhysicalExpr, PhysicalExpr)],
    otherwise: Option<&PhysicalExpr>,
    result_type: &DataType,
) -> Result<ColumnarValue> {
    use arrow::compute::filter_record_batch;
    let n = batch.num_rows();
    // The rows still undecided, as positions in `batch`.
    let mut remaining: Vec<u32> = (0..n as u32).collect();
    let mut rest = batch.clone();
    // The values of each branch taken, and where each row's value is: (piece, index).
    let mut pieces: Vec<ArrayRef> = Vec::new();
    let mut slots = vec![(usize::MAX, 0usize); n];
    for (condition, then) in branches {
        if remaining.is_empty() {
            break;
        }
        let mask = condition.evaluate(&rest)?.into_array(rest.num_rows())?;
        let mask = null_as_false(mask.as_boolean());
        if mask.true_count() > 0 {
            let taken = filter_record_batch(&rest, &mask)?;
            let values = then.evaluate(&taken)?.into_array(taken.num_rows())?;
            let piece = pieces.len();
            pieces.push(values);
            let mut k = 0;
            for (i, &row) in remaining.iter().enumerate() {
                if mask.value(i) {
                    slots[row as usize] = (piece, k);
                    k += 1;
                }
            }
        }
        let keep = boolean::not(&mask)?;
        rest = filter_record_batch(&rest, &keep)?;
        remaining = remaining
            .iter()
            .zip(keep.values().iter())
            .filter_map(|(&row, kept)| kept.then_some(row))
            .collect();
    }
    let others = match otherwise {
        Some(o) if !remaining.is_empty() => o.evaluate(&rest)?.into_array(rest.num_rows())?,
        _ => new_null_array(result_type, remaining.len()),
    };
    let piece = pieces.len();
    pieces.push(others);
    for (k, &row) in remaining.iter().enumerate() {
        slots[row as usize] = (piece, k);
    }
    let arrays: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
    Ok(ColumnarValue::Array(arrow::compute::interleave(
        &arrays, &slots,
    )?))
}

/// A filter mask where NULL counts as false.
pub(crate) fn null_as_false(mask: &BooleanArray) -> BooleanArray {
    match mask.nulls() {
        Some(nulls) if nulls.null_count() > 0 => {
            BooleanArray::new(mask.values() & nulls.inner(), None)
        }
        _ => BooleanArray::new(mask.values().clone(), None),
    }
}

pub(crate) fn map_unary(
    value: ColumnarValue,
    f: impl Fn(&dyn Array) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    Ok(match value {
        ColumnarValue::Array(a) => ColumnarValue::Array(f(&a)?),
        ColumnarValue::Scalar(s) => ColumnarValue::Scalar(ScalarValue::from_array(f(s.array())?)),
    })
}
