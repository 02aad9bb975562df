//! Planning a window node: a sort on its partition then order keys (skipped when the window
//! node below already sorted by keys that begin with them), then the streaming window
//! operator with every call's arguments, constants and frame resolved for the key's type.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, IntervalMonthDayNanoType, DECIMAL128_MAX_PRECISION};

use super::{coalesce, sort_keys, PhysicalPlanner};
use crate::error::{EngineError, Result};
use crate::eval::constant::fold_expr;
use crate::eval::create_physical_expr;
use crate::logical::expr::{AggregateFunction, Expr, WindowExpr};
use crate::logical::plan::{LogicalPlan, SortKey};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
use crate::logical::window::{
    frame_offset_rows, FrameBound, FrameUnits, WindowFrame, WindowFunction,
};
use crate::physical::repartition::RepartitionExec;
use crate::physical::sort::SortExec;
use crate::physical::window::{
    Bound, FrameSpec, KeyValue, RangeKey, RankKind, Units, WindowCall, WindowExec, WindowKind,
};
use crate::physical::ExecutionPlan;

/// The window call of a window node's expression.
fn window_of(e: &Expr) -> Result<&WindowExpr> {
    match e {
        Expr::Alias { expr, .. } => window_of(expr),
        Expr::Window(w) => Ok(w),
        other => Err(EngineError::Internal(format!("not a window call: {other}"))),
    }
}

/// The sort a window node needs: partition keys, then order keys.
pub(super) fn window_sort(exprs: &[Expr]) -> Result<Vec<SortKey>> {
    let Some(first) = exprs.first() else {
        return Ok(vec![]);
    };
    let w = window_of(first)?;
    Ok(w.partition_by
        .iter()
        .map(|e| SortKey {
            expr: e.clone(),
            ascending: true,
            nulls_first: false,
        })
        .chain(w.order_by.iter().cloned())
        .collect())
}

impl PhysicalPlanner {
    pub(super) fn create_window(
        &mut self,
        input: &LogicalPlan,
        exprs: &[Expr],
        schema: &PlanSchema,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let keys = window_sort(exprs)?;
        let w = window_of(&exprs[0])?;
        let child = self.create(input)?;
        // A window node right below, sorted by keys that start with these, leaves its rows
        // in an order that serves this one too, if its partitions (split by its partition
        // keys, a prefix of these) keep each of this node's partitions whole.
        let presorted = match input {
            LogicalPlan::Window { exprs: below, .. } => {
                let below_keys = window_sort(below)?;
                let below_partitions = window_of(&below[0])?.partition_by.len();
                below_keys.len() >= keys.len()
                    && below_keys[..keys.len()] == keys[..]
                    && (child.output_partitions() == 1
                        || (below_partitions > 0 && below_partitions <= w.partition_by.len()))
            }
            _ => false,
        };
        let sorted: Arc<dyn ExecutionPlan> = if presorted {
            child
        } else if keys.is_empty() {
            coalesce(child)
        } else if w.partition_by.is_empty() || self.options.threads <= 1 {
            Arc::new(SortExec::new(
                coalesce(child),
                sort_keys(&keys, input.schema())?,
            ))
        } else {
            // Partitions of the window spread over threads by a hash of their keys, each
            // thread sorting and computing its own.
            let hash_keys = w
                .partition_by
                .iter()
                .map(|e| create_physical_expr(e, input.schema()))
                .collect::<Result<Vec<_>>>()?;
            let spread: Arc<dyn ExecutionPlan> =
                Arc::new(RepartitionExec::new(child, hash_keys, self.options.threads));
            Arc::new(SortExec::new(spread, sort_keys(&keys, input.schema())?))
        };
        let partition_by = w
            .partition_by
            .iter()
            .map(|e| create_physical_expr(e, input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let order_by = sort_keys(&w.order_by, input.schema())?;
        let key_type = w
            .order_by
            .first()
            .map(|k| k.expr.data_type(input.schema()))
            .transpose()?;
        let mut calls = Vec::with_capacity(exprs.len());
        let mut range_key = None;
        for (i, e) in exprs.iter().enumerate() {
            let w = window_of(e)?;
            let output_type = schema
                .field(input.schema().len() + i)
                .field
                .data_type()
                .clone();
            let (call, needs_key) = window_call(w, input.schema(), key_type.as_ref(), output_type)?;
            if needs_key {
                range_key = Some(RangeKey {
                    descending: !w.order_by[0].ascending,
                });
            }
            calls.push(call);
        }
        Ok(Arc::new(WindowExec::new(
            sorted,
            partition_by,
            order_by,
            calls,
            range_key,
            schema.to_arrow(),
        )))
    }
}

/// The physical call for `w`, and whether its frame needs the `RANGE` key's values.
fn window_call(
    w: &WindowExpr,
    input: &PlanSchema,
    key_type: Option<&DataType>,
    output_type: DataType,
) -> Result<(WindowCall, bool)> {
    let compile = |e: &Expr| create_physical_expr(e, input);
    let constant = |e: &Expr, what: &str| -> Result<i64> {
        match fold_expr(e.clone())? {
            Expr::Literal(v) if !v.is_null() => v.as_i64().ok_or_else(|| {
                EngineError::Plan(format!(
                    "the {what} of {}() must be an integer",
                    w.func.name()
                ))
            }),
            Expr::Literal(_) => Err(EngineError::Plan(format!(
                "the {what} of {}() cannot be NULL",
                w.func.name()
            ))),
            _ => Err(EngineError::NotSupported(format!(
                "{}() with a {what} that is not a constant ({e})",
                w.func.name()
            ))),
        }
    };
    let non_negative = |v: i64, what: &str| -> Result<usize> {
        usize::try_from(v).map_err(|_| {
            EngineError::Plan(format!(
                "the {what} of {}() must not be negative, got {v}",
                w.func.name()
            ))
        })
    };
    let mut value = w.args.first().map(compile).transpose()?;
    let mut extra = None;
    let kind = match w.func {
        WindowFunction::RowNumber => WindowKind::Ranking(RankKind::RowNumber),
        WindowFunction::Rank => WindowKind::Ranking(RankKind::Rank),
        WindowFunction::DenseRank => WindowKind::Ranking(RankKind::DenseRank),
        WindowFunction::PercentRank => WindowKind::Ranking(RankKind::PercentRank),
        WindowFunction::CumeDist => WindowKind::Ranking(RankKind::CumeDist),
        WindowFunction::Ntile => {
            extra = value.take();
            WindowKind::Ranking(RankKind::Ntile)
        }
        WindowFunction::Lag | WindowFunction::Lead => {
            let offset = match w.args.get(1) {
                Some(e) => non_negative(constant(e, "offset")?, "offset")?,
                None => 1,
            };
            extra = w.args.get(2).map(compile).transpose()?;
            let has_default = extra.is_some();
            if w.func == WindowFunction::Lag {
                WindowKind::Lag {
                    offset,
                    has_default,
                }
            } else {
                WindowKind::Lead {
                    offset,
                    has_default,
                }
            }
        }
        WindowFunction::FirstValue => WindowKind::FirstValue,
        WindowFunction::LastValue => WindowKind::LastValue,
        WindowFunction::NthValue => {
            let n = constant(&w.args[1], "row number")?;
            if n < 1 {
                return Err(EngineError::Plan(format!(
                    "the row number of nth_value() must be at least 1, got {n}"
                )));
            }
            WindowKind::NthValue(n as usize)
        }
        WindowFunction::Aggregate(AggregateFunction::First) => WindowKind::FirstValue,
        WindowFunction::Aggregate(AggregateFunction::Last) => WindowKind::LastValue,
        WindowFunction::Aggregate(func) => WindowKind::Aggregate(func),
    };
    let input_type = match w.args.first() {
        Some(a) if kind != WindowKind::Ranking(RankKind::Ntile) => a.data_type(input)?,
        _ => DataType::Null,
    };
    let (frame, needs_key) = if w.func.uses_frame() {
        frame_spec(&w.frame, key_type)?
    } else {
        (
            FrameSpec {
                units: Units::Rows,
                start: Bound::UnboundedPreceding,
                end: Bound::CurrentRow,
            },
            false,
        )
    };
    Ok((
        WindowCall {
            kind,
            value,
            extra,
            frame,
            ignore_nulls: w.ignore_nulls,
            input_type,
            output_type,
            display: w.to_string(),
        },
        needs_key,
    ))
}

/// A logical frame resolved for the order key's type.
fn frame_spec(frame: &WindowFrame, key_type: Option<&DataType>) -> Result<(FrameSpec, bool)> {
    let units = match frame.units {
        FrameUnits::Rows => Units::Rows,
        FrameUnits::Range => Units::Range,
        FrameUnits::Groups => Units::Groups,
    };
    let mut needs_key = false;
    let mut bound = |b: &FrameBound| -> Result<Bound> {
        Ok(match b {
            FrameBound::UnboundedPreceding => Bound::UnboundedPreceding,
            FrameBound::UnboundedFollowing => Bound::UnboundedFollowing,
            FrameBound::CurrentRow => Bound::CurrentRow,
            FrameBound::Preceding(v) | FrameBound::Following(v) => {
                let preceding = matches!(b, FrameBound::Preceding(_));
                if units == Units::Range {
                    needs_key = true;
                    let offset = range_offset(v, key_type)?;
                    if preceding {
                        Bound::PrecedingValue(offset)
                    } else {
                        Bound::FollowingValue(offset)
                    }
                } else {
                    let n = frame_offset_rows(v).ok_or_else(|| {
                        EngineError::Plan(format!(
                            "a {} frame offset must be a non-negative integer, not {v}",
                            frame.units
                        ))
                    })?;
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    if preceding {
                        Bound::PrecedingCount(n)
                    } else {
                        Bound::FollowingCount(n)
                    }
                }
            }
        })
    };
    let start = bound(&frame.start)?;
    let end = bound(&frame.end)?;
    Ok((FrameSpec { units, start, end }, needs_key))
}

/// A `RANGE` offset in the units of the order key: a number for numbers (scaled like a
/// decimal key), days or microseconds of an interval for dates and timestamps.
fn range_offset(value: &ScalarValue, key_type: Option<&DataType>) -> Result<KeyValue> {
    let Some(key_type) = key_type else {
        return Err(EngineError::Plan(
            "a RANGE frame with an offset needs an ORDER BY key".into(),
        ));
    };
    let negative = || {
        EngineError::Plan(format!(
            "a RANGE frame offset must not be negative ({value})"
        ))
    };
    let mismatch = || {
        EngineError::Type(format!(
            "a RANGE frame offset of {value} does not fit an ORDER BY key of type {}",
            crate::logical::types::sql_type_name(key_type)
        ))
    };
    let offset_type = value.data_type().clone();
    let offset = match key_type {
        t if t.is_integer() => {
            let v = value.as_i64().ok_or_else(mismatch)?;
            KeyValue::Exact(v as i128)
        }
        DataType::Decimal128(_, s) => {
            if !(offset_type.is_integer() || matches!(offset_type, DataType::Decimal128(..))) {
                return Err(mismatch());
            }
            let target = DataType::Decimal128(DECIMAL128_MAX_PRECISION, *s);
            let cast = value.cast_to(&target).map_err(|_| mismatch())?;
            let back = cast.cast_to(&offset_type).map_err(|_| mismatch())?;
            if back != *value {
                return Err(mismatch());
            }
            KeyValue::Exact(
                cast.array()
                    .as_primitive::<arrow::datatypes::Decimal128Type>()
                    .value(0),
            )
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            if !(offset_type.is_integer()
                || offset_type.is_floating()
                || matches!(offset_type, DataType::Decimal128(..)))
            {
                return Err(mismatch());
            }
            let cast = value.cast_to(&DataType::Float64).map_err(|_| mismatch())?;
            KeyValue::Float(
                cast.array()
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .value(0),
            )
        }
        DataType::Date32 | DataType::Timestamp(..) => {
            let DataType::Interval(_) = offset_type else {
                return Err(mismatch());
            };
            let interval = value
                .cast_to(&DataType::Interval(
                    arrow::datatypes::IntervalUnit::MonthDayNano,
                ))
                .map_err(|_| mismatch())?;
            let v = interval
                .array()
                .as_primitive::<IntervalMonthDayNanoType>()
                .value(0);
            if v.months != 0 {
                return Err(EngineError::NotSupported(format!(
                    "a RANGE frame offset in months or years ({value}); use days"
                )));
            }
            if *key_type == DataType::Date32 {
                if v.nanoseconds != 0 {
                    return Err(EngineError::NotSupported(format!(
                        "a RANGE frame offset with a time part over a DATE key ({value})"
                    )));
                }
                KeyValue::Exact(v.days as i128)
            } else {
                KeyValue::Exact(v.days as i128 * 86_400_000_000 + (v.nanoseconds / 1000) as i128)
            }
        }
        _ => return Err(mismatch()),
    };
    let is_negative = match offset {
        KeyValue::Exact(v) => v < 0,
        KeyValue::Float(v) => v < 0.0 || v.is_nan(),
    };
    if is_negative {
        return Err(negative());
    }
    Ok(offset)
}
