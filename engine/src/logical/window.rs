//! Window functions: what `f(...) OVER (PARTITION BY ... ORDER BY ... frame)` computes.
//!
//! A [`WindowExpr`] is one call: the function, its arguments, the window's partitioning and
//! ordering, and the frame (which rows around the current one an aggregate or a value function
//! sees). Both front ends resolve SQL's defaults before building one, so a plan always carries
//! the explicit frame: with an `ORDER BY`, `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`;
//! without one, the whole partition. Calls are computed by `Window` plan nodes, one per distinct
//! partitioning and ordering; the expressions above refer to their results by hidden names.

use std::fmt;

use arrow::datatypes::DataType;

use crate::error::{EngineError, Result};
use crate::logical::expr::{AggregateFunction, Column, Expr};
use crate::logical::plan::SortKey;
use crate::logical::scalar::ScalarValue;

/// What a window call computes for each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum WindowFunction {
    /// `row_number()`: 1, 2, ... in the partition's order.
    RowNumber,
    /// `rank()`: one more than the rows before the current row's peers (gaps after ties).
    Rank,
    /// `dense_rank()`: the number of distinct peer groups up to the current row (no gaps).
    DenseRank,
    /// `percent_rank()`: `(rank - 1) / (rows - 1)`, 0 for a one-row partition.
    PercentRank,
    /// `cume_dist()`: rows up to the current row's last peer over the partition's rows.
    CumeDist,
    /// `ntile(n)`: the bucket 1..n of the row when the partition is cut into `n` nearly equal
    /// buckets (the first buckets one row larger when the rows do not divide evenly).
    Ntile,
    /// `lag(x [, offset [, default]])`: `x` of the row `offset` rows before (1 by default).
    Lag,
    /// `lead(x [, offset [, default]])`: `x` of the row `offset` rows after.
    Lead,
    /// `first_value(x)`: `x` of the frame's first row.
    FirstValue,
    /// `last_value(x)`: `x` of the frame's last row.
    LastValue,
    /// `nth_value(x, n)`: `x` of the frame's n-th row (1-based).
    NthValue,
    /// An aggregate over the frame's rows.
    Aggregate(AggregateFunction),
}

impl WindowFunction {
    /// The SQL name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RowNumber => "row_number",
            Self::Rank => "rank",
            Self::DenseRank => "dense_rank",
            Self::PercentRank => "percent_rank",
            Self::CumeDist => "cume_dist",
            Self::Ntile => "ntile",
            Self::Lag => "lag",
            Self::Lead => "lead",
            Self::FirstValue => "first_value",
            Self::LastValue => "last_value",
            Self::NthValue => "nth_value",
            Self::Aggregate(a) => a.name(),
        }
    }

    /// The window-only function called `name`, if any (aggregates are found elsewhere).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "row_number" => Self::RowNumber,
            "rank" => Self::Rank,
            "dense_rank" => Self::DenseRank,
            "percent_rank" => Self::PercentRank,
            "cume_dist" => Self::CumeDist,
            "ntile" => Self::Ntile,
            "lag" => Self::Lag,
            "lead" => Self::Lead,
            "first_value" => Self::FirstValue,
            "last_value" => Self::LastValue,
            "nth_value" => Self::NthValue,
            _ => return None,
        })
    }

    /// True when the frame decides the result (aggregates and the value functions); the
    /// ranking and offset functions look at the whole partition whatever the frame says.
    pub fn uses_frame(&self) -> bool {
        matches!(
            self,
            Self::FirstValue | Self::LastValue | Self::NthValue | Self::Aggregate(_)
        )
    }

    /// Allowed numbers of arguments.
    pub(crate) fn arity(&self) -> (usize, usize) {
        match self {
            Self::RowNumber | Self::Rank | Self::DenseRank | Self::PercentRank | Self::CumeDist => {
                (0, 0)
            }
            Self::Ntile | Self::FirstValue | Self::LastValue => (1, 1),
            Self::NthValue => (2, 2),
            Self::Lag | Self::Lead => (1, 3),
            Self::Aggregate(AggregateFunction::Count) => (0, 1),
            Self::Aggregate(_) => (1, 1),
        }
    }
}

/// How a frame's extent is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FrameUnits {
    /// In rows.
    Rows,
    /// In values of the (single) ORDER BY key; `CURRENT ROW` means the row's peers.
    Range,
    /// In peer groups.
    Groups,
}

/// One end of a frame. Offsets are constants: a non-negative integer for `ROWS` and `GROUPS`,
/// a non-negative number or interval for `RANGE`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FrameBound {
    /// From the partition's first row.
    UnboundedPreceding,
    /// `n PRECEDING`.
    Preceding(ScalarValue),
    /// The current row (its peer group's edge for `RANGE` and `GROUPS`).
    CurrentRow,
    /// `n FOLLOWING`.
    Following(ScalarValue),
    /// To the partition's last row.
    UnboundedFollowing,
}

impl fmt::Display for FrameBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameBound::UnboundedPreceding => f.write_str("UNBOUNDED PRECEDING"),
            FrameBound::Preceding(n) => write!(f, "{n} PRECEDING"),
            FrameBound::CurrentRow => f.write_str("CURRENT ROW"),
            FrameBound::Following(n) => write!(f, "{n} FOLLOWING"),
            FrameBound::UnboundedFollowing => f.write_str("UNBOUNDED FOLLOWING"),
        }
    }
}

/// The rows an aggregate or value function sees for the current row.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowFrame {
    /// How the extent is counted.
    pub units: FrameUnits,
    /// First row.
    pub start: FrameBound,
    /// Last row.
    pub end: FrameBound,
}

impl WindowFrame {
    /// SQL's default frame: up to the current row's last peer with an `ORDER BY`, the whole
    /// partition without.
    pub fn default_for(ordered: bool) -> Self {
        Self {
            units: FrameUnits::Range,
            start: FrameBound::UnboundedPreceding,
            end: if ordered {
                FrameBound::CurrentRow
            } else {
                FrameBound::UnboundedFollowing
            },
        }
    }

    /// Check the bounds against each other and the window's ordering.
    pub(crate) fn validate(&self, order_by: &[SortKey]) -> Result<()> {
        let rank = |b: &FrameBound| match b {
            FrameBound::UnboundedPreceding => 0,
            FrameBound::Preceding(_) => 1,
            FrameBound::CurrentRow => 2,
            FrameBound::Following(_) => 3,
            FrameBound::UnboundedFollowing => 4,
        };
        if matches!(self.start, FrameBound::UnboundedFollowing) {
            return Err(EngineError::Plan(
                "a window frame cannot start at UNBOUNDED FOLLOWING".into(),
            ));
        }
        if matches!(self.end, FrameBound::UnboundedPreceding) {
            return Err(EngineError::Plan(
                "a window frame cannot end at UNBOUNDED PRECEDING".into(),
            ));
        }
        if rank(&self.start) > rank(&self.end) {
            return Err(EngineError::Plan(format!(
                "a window frame cannot start at {} and end at {}",
                self.start, self.end
            )));
        }
        for bound in [&self.start, &self.end] {
            let (FrameBound::Preceding(n) | FrameBound::Following(n)) = bound else {
                continue;
            };
            if n.is_null() {
                return Err(EngineError::Plan(format!(
                    "a window frame offset cannot be NULL ({bound})"
                )));
            }
            match self.units {
                FrameUnits::Rows | FrameUnits::Groups => {
                    if frame_offset_rows(n).is_none() {
                        return Err(EngineError::Plan(format!(
                            "a {} frame offset must be a non-negative integer, not {n}",
                            self.units
                        )));
                    }
                }
                FrameUnits::Range => {
                    if order_by.len() != 1 {
                        return Err(EngineError::Plan(format!(
                            "a RANGE frame with an offset ({bound}) needs exactly one ORDER BY \
                             key, not {}",
                            order_by.len()
                        )));
                    }
                }
            }
        }
        if self.units == FrameUnits::Groups && order_by.is_empty() {
            return Err(EngineError::Plan(
                "a GROUPS frame needs an ORDER BY in its window".into(),
            ));
        }
        Ok(())
    }

    /// True when both ends are unbounded: every row sees the whole partition.
    pub fn is_whole_partition(&self) -> bool {
        self.start == FrameBound::UnboundedPreceding && self.end == FrameBound::UnboundedFollowing
    }
}

/// A `ROWS`/`GROUPS` offset as a count, if it is a non-negative integer.
pub(crate) fn frame_offset_rows(value: &ScalarValue) -> Option<u64> {
    u64::try_from(value.as_i64()?).ok()
}

impl fmt::Display for FrameUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameUnits::Rows => "ROWS",
            FrameUnits::Range => "RANGE",
            FrameUnits::Groups => "GROUPS",
        })
    }
}

impl fmt::Display for WindowFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} BETWEEN {} AND {}", self.units, self.start, self.end)
    }
}

/// One window function call.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowExpr {
    /// The function.
    pub func: WindowFunction,
    /// Its arguments.
    pub args: Vec<Expr>,
    /// `PARTITION BY` expressions.
    pub partition_by: Vec<Expr>,
    /// `ORDER BY` keys.
    pub order_by: Vec<SortKey>,
    /// The frame (explicit, defaults resolved).
    pub frame: WindowFrame,
    /// `IGNORE NULLS`: value and offset functions skip rows whose argument is NULL.
    pub ignore_nulls: bool,
}

impl WindowExpr {
    /// True when `other` can be computed by the same window node (same partitioning and
    /// ordering, so the same sort).
    pub(crate) fn same_window(&self, other: &WindowExpr) -> bool {
        self.partition_by == other.partition_by && self.order_by == other.order_by
    }

    /// The result type, given the argument types.
    pub(crate) fn result_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.func {
            WindowFunction::RowNumber
            | WindowFunction::Rank
            | WindowFunction::DenseRank
            | WindowFunction::Ntile => DataType::Int64,
            WindowFunction::PercentRank | WindowFunction::CumeDist => DataType::Float64,
            WindowFunction::Lag
            | WindowFunction::Lead
            | WindowFunction::FirstValue
            | WindowFunction::LastValue
            | WindowFunction::NthValue => arg_types.first().cloned().ok_or_else(|| {
                EngineError::Plan(format!("{}() needs an argument", self.func.name()))
            })?,
            WindowFunction::Aggregate(_) => {
                return Err(EngineError::Internal(
                    "aggregate windows are typed as aggregates".into(),
                ))
            }
        })
    }
}

impl fmt::Display for WindowExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        let args = if args.is_empty()
            && self.func == WindowFunction::Aggregate(AggregateFunction::Count)
        {
            "*".to_string()
        } else {
            args.join(", ")
        };
        write!(f, "{}({args})", self.func.name())?;
        if self.ignore_nulls {
            f.write_str(" IGNORE NULLS")?;
        }
        f.write_str(" OVER (")?;
        let mut sep = "";
        if !self.partition_by.is_empty() {
            let keys: Vec<String> = self.partition_by.iter().map(|e| e.to_string()).collect();
            write!(f, "PARTITION BY {}", keys.join(", "))?;
            sep = " ";
        }
        if !self.order_by.is_empty() {
            let keys: Vec<String> = self.order_by.iter().map(|k| k.to_string()).collect();
            write!(f, "{sep}ORDER BY {}", keys.join(", "))?;
            sep = " ";
        }
        if self.func.uses_frame() {
            write!(f, "{sep}{}", self.frame)?;
        }
        f.write_str(")")
    }
}

/// The plain columns a window node's calls (which share their partitioning) partition by.
pub(crate) fn partition_columns(exprs: &[Expr]) -> Vec<Column> {
    let Some(Expr::Window(w)) = exprs.first().map(|e| match e {
        Expr::Alias { expr, .. } => expr.as_ref(),
        other => other,
    }) else {
        return vec![];
    };
    w.partition_by
        .iter()
        .filter_map(|e| match e {
            Expr::Column(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}
