//! Functions for building expressions in Rust: `col("a").gt(lit(5)).and(col("b").is_null())`.

use crate::logical::expr::WindowExpr;
use crate::logical::expr::{AggregateFunction, BinaryOp, Column, DatePart, Expr, ScalarFunction};
use crate::logical::plan::SortKey;
use crate::logical::scalar::ScalarValue;
use crate::logical::window::{WindowFrame, WindowFunction};

/// A column reference; `"t.c"` refers to column `c` of relation `t`.
pub fn col(name: &str) -> Expr {
    match name.split_once('.') {
        Some((relation, column)) => {
            Expr::Column(Column::qualified(Some(relation.to_string()), column))
        }
        None => Expr::Column(Column::new(name)),
    }
}

/// A literal value.
pub fn lit(value: impl Into<ScalarValue>) -> Expr {
    Expr::Literal(value.into())
}

impl From<i64> for ScalarValue {
    fn from(v: i64) -> Self {
        ScalarValue::int64(v)
    }
}

impl From<i32> for ScalarValue {
    fn from(v: i32) -> Self {
        ScalarValue::int32(v)
    }
}

impl From<f64> for ScalarValue {
    fn from(v: f64) -> Self {
        ScalarValue::float64(v)
    }
}

impl From<bool> for ScalarValue {
    fn from(v: bool) -> Self {
        ScalarValue::boolean(v)
    }
}

impl From<&str> for ScalarValue {
    fn from(v: &str) -> Self {
        ScalarValue::utf8(v)
    }
}

fn aggregate(func: AggregateFunction, arg: Expr, distinct: bool) -> Expr {
    Expr::Aggregate {
        func,
        args: vec![arg],
        distinct,
    }
}

/// `sum(e)`
pub fn sum(e: Expr) -> Expr {
    aggregate(AggregateFunction::Sum, e, false)
}

/// `avg(e)`
pub fn avg(e: Expr) -> Expr {
    aggregate(AggregateFunction::Avg, e, false)
}

/// `min(e)`
pub fn min(e: Expr) -> Expr {
    aggregate(AggregateFunction::Min, e, false)
}

/// `max(e)`
pub fn max(e: Expr) -> Expr {
    aggregate(AggregateFunction::Max, e, false)
}

/// `count(e)`: non-NULL values.
pub fn count(e: Expr) -> Expr {
    aggregate(AggregateFunction::Count, e, false)
}

/// `count(DISTINCT e)`
pub fn count_distinct(e: Expr) -> Expr {
    aggregate(AggregateFunction::Count, e, true)
}

/// `count(*)`: all rows.
pub fn count_star() -> Expr {
    Expr::Aggregate {
        func: AggregateFunction::Count,
        args: vec![],
        distinct: false,
    }
}

/// `extract(part FROM e)`
pub fn extract(part: DatePart, e: Expr) -> Expr {
    Expr::Function {
        func: ScalarFunction::Extract(part),
        args: vec![e],
    }
}

/// `coalesce(args...)`
pub fn coalesce(args: Vec<Expr>) -> Expr {
    Expr::Function {
        func: ScalarFunction::Coalesce,
        args,
    }
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Expr {
            $(
                $(#[$doc])*
                pub fn $name(self, other: Expr) -> Expr {
                    self.binary(BinaryOp::$op, other)
                }
            )*
        }
    };
}

binary_methods! {
    /// `self = other`
    eq => Eq,
    /// `self <> other`
    not_eq => NotEq,
    /// `self < other`
    lt => Lt,
    /// `self <= other`
    lt_eq => LtEq,
    /// `self > other`
    gt => Gt,
    /// `self >= other`
    gt_eq => GtEq,
    /// `self AND other`
    and => And,
    /// `self OR other`
    or => Or,
}

macro_rules! operator_traits {
    ($($trait:ident :: $method:ident => $op:ident),* $(,)?) => {
        $(
            impl std::ops::$trait for Expr {
                type Output = Expr;

                fn $method(self, other: Expr) -> Expr {
                    self.binary(BinaryOp::$op, other)
                }
            }
        )*
    };
}

operator_traits! {
    Add::add => Plus,
    Sub::sub => Minus,
    Mul::mul => Multiply,
    Div::div => Divide,
    Rem::rem => Modulo,
}

impl std::ops::Not for Expr {
    type Output = Expr;

    /// `NOT self`
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

impl Expr {
    /// `self IS NULL`
    pub fn is_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: false,
        }
    }

    /// `self IS NOT NULL`
    pub fn is_not_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: true,
        }
    }

    /// `self BETWEEN low AND high`
    pub fn between(self, low: Expr, high: Expr) -> Expr {
        Expr::Between {
            expr: Box::new(self),
            low: Box::new(low),
            high: Box::new(high),
            negated: false,
        }
    }

    /// `self IN (list)`
    pub fn in_list(self, list: Vec<Expr>, negated: bool) -> Expr {
        Expr::InList {
            expr: Box::new(self),
            list,
            negated,
        }
    }

    /// `self LIKE pattern`
    pub fn like(self, pattern: Expr) -> Expr {
        Expr::Like {
            expr: Box::new(self),
            pattern: Box::new(pattern),
            negated: false,
            case_insensitive: false,
        }
    }

    /// `CAST(self AS to)`
    pub fn cast(self, to: arrow::datatypes::DataType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            to,
        }
    }
}

/// `first(e)`: the value of each group's first row (see [`AggregateFunction::First`]).
pub fn first(e: Expr) -> Expr {
    aggregate(AggregateFunction::First, e, false)
}

/// `last(e)`: the value of each group's last row (see [`AggregateFunction::Last`]).
pub fn last(e: Expr) -> Expr {
    aggregate(AggregateFunction::Last, e, false)
}

/// A window function call over the whole input: `func(args) OVER ()` with SQL's default frame.
/// Narrow it with [`Expr::over`] (partitions and order) and [`Expr::frame`].
///
/// ```
/// use ooc_engine::logical::expr_fn::{col, window};
/// use ooc_engine::logical::window::{FrameBound, FrameUnits, WindowFrame, WindowFunction};
/// use ooc_engine::logical::expr::AggregateFunction;
/// // avg(price) OVER (PARTITION BY supplier ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
/// let moving = window(WindowFunction::Aggregate(AggregateFunction::Avg), vec![col("price")])
///     .over(vec![col("supplier")], vec![(col("day"), true)])
///     .frame(WindowFrame {
///         units: FrameUnits::Rows,
///         start: FrameBound::Preceding(6i64.into()),
///         end: FrameBound::CurrentRow,
///     });
/// assert!(moving.to_string().starts_with("avg(price) OVER (PARTITION BY supplier"));
/// ```
pub fn window(func: WindowFunction, args: Vec<Expr>) -> Expr {
    Expr::Window(Box::new(WindowExpr {
        func,
        args,
        partition_by: vec![],
        order_by: vec![],
        frame: WindowFrame::default_for(false),
        ignore_nulls: false,
    }))
}

impl Expr {
    /// A window call partitioned by `partition_by` and ordered by `order_by` (expression,
    /// ascending; NULLs last). The frame becomes SQL's default for the ordering unless one
    /// was set. Other expressions are returned unchanged.
    pub fn over(self, partition_by: Vec<Expr>, order_by: Vec<(Expr, bool)>) -> Expr {
        match self {
            Expr::Window(mut w) => {
                let default_before = w.frame == WindowFrame::default_for(!w.order_by.is_empty());
                w.partition_by = partition_by;
                w.order_by = order_by
                    .into_iter()
                    .map(|(expr, ascending)| SortKey {
                        expr,
                        ascending,
                        nulls_first: false,
                    })
                    .collect();
                if default_before {
                    w.frame = WindowFrame::default_for(!w.order_by.is_empty());
                }
                Expr::Window(w)
            }
            Expr::Alias { expr, name } => expr.over(partition_by, order_by).alias(name),
            other => other,
        }
    }

    /// A window call with `frame`. Other expressions are returned unchanged.
    pub fn frame(self, frame: WindowFrame) -> Expr {
        match self {
            Expr::Window(mut w) => {
                w.frame = frame;
                Expr::Window(w)
            }
            Expr::Alias { expr, name } => expr.frame(frame).alias(name),
            other => other,
        }
    }
}
