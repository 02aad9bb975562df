//! Logical expressions: what to compute, independent of how.
//!
//! Both front ends (SQL and the dataframe builder) produce [`Expr`] trees. Before an expression
//! is placed in a plan node it is type-checked and coerced against the node's input schema by
//! `logical::types::coerce`, so every expression in a plan has exact operand
//! types (e.g. an `INTEGER` compared to a `DECIMAL(15,2)` column is cast explicitly).

use std::collections::BTreeSet;
use std::fmt;

use arrow::datatypes::{DataType, Field, TimeUnit};

use crate::error::Result;
use crate::logical::hidden;
use crate::logical::plan::SortKey;
use crate::logical::window::WindowFunction;

pub use crate::logical::functions::{
    AggregateFunction, BinaryOp, DatePart, QuantileKind, ScalarFunction,
};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
pub use crate::logical::window::WindowExpr;

/// Most levels of one expression (each operator, function call or parenthesis is one), from
/// SQL or built through an API: deeper expressions are refused, rather than converted,
/// planned and evaluated by recursion that could exhaust a thread's stack.
pub const MAX_EXPR_DEPTH: usize = 1000;

/// A possibly qualified column reference.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Column {
    /// Table name or alias.
    pub relation: Option<String>,
    /// Column name.
    pub name: String,
}

impl Column {
    /// An unqualified column.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            relation: None,
            name: name.into(),
        }
    }

    /// A qualified column.
    pub fn qualified(relation: Option<String>, name: impl Into<String>) -> Self {
        Self {
            relation,
            name: name.into(),
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = hidden::display(&self.name);
        match &self.relation {
            Some(r) => write!(f, "{}.{name}", hidden::display(r)),
            None => f.write_str(&name),
        }
    }
}

/// A logical expression.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Expr {
    /// A column of the input.
    Column(Column),
    /// A constant.
    Literal(ScalarValue),
    /// `left op right`.
    Binary {
        /// Left operand.
        left: Box<Expr>,
        /// Operator.
        op: BinaryOp,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `NOT expr`.
    Not(Box<Expr>),
    /// `-expr`.
    Negative(Box<Expr>),
    /// `expr IS [NOT] NULL`.
    IsNull {
        /// Tested expression.
        expr: Box<Expr>,
        /// `IS NOT NULL` when true.
        negated: bool,
    },
    /// `expr [NOT] BETWEEN low AND high`.
    Between {
        /// Tested expression.
        expr: Box<Expr>,
        /// Lower bound (inclusive).
        low: Box<Expr>,
        /// Upper bound (inclusive).
        high: Box<Expr>,
        /// `NOT BETWEEN` when true.
        negated: bool,
    },
    /// `expr [NOT] IN (list)`.
    InList {
        /// Tested expression.
        expr: Box<Expr>,
        /// Candidate values.
        list: Vec<Expr>,
        /// `NOT IN` when true.
        negated: bool,
    },
    /// `expr [NOT] [I]LIKE pattern`.
    Like {
        /// Tested string.
        expr: Box<Expr>,
        /// Pattern with `%` and `_`.
        pattern: Box<Expr>,
        /// `NOT LIKE` when true.
        negated: bool,
        /// `ILIKE` when true.
        case_insensitive: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`.
    Case {
        /// Simple-CASE operand.
        operand: Option<Box<Expr>>,
        /// Conditions (or values when `operand` is set) and results.
        when_then: Vec<(Expr, Expr)>,
        /// Result when nothing matches (NULL when absent).
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(expr AS type)`.
    Cast {
        /// Converted expression.
        expr: Box<Expr>,
        /// Target type.
        to: DataType,
    },
    /// A scalar function call.
    Function {
        /// Function.
        func: ScalarFunction,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// An aggregate function call (only inside aggregate plan nodes).
    Aggregate {
        /// Function.
        func: AggregateFunction,
        /// Arguments (empty for `count(*)`).
        args: Vec<Expr>,
        /// `DISTINCT` inside the call.
        distinct: bool,
    },
    /// A window function call (only inside window plan nodes).
    Window(Box<WindowExpr>),
    /// `expr AS name`.
    Alias {
        /// The expression.
        expr: Box<Expr>,
        /// The output name.
        name: String,
    },
}

impl Expr {
    /// A reference to column `name`.
    pub fn col(name: impl Into<String>) -> Self {
        Expr::Column(Column::new(name))
    }

    /// A literal.
    pub fn lit(value: ScalarValue) -> Self {
        Expr::Literal(value)
    }

    /// `self op other`.
    pub fn binary(self, op: BinaryOp, other: Expr) -> Self {
        Expr::Binary {
            left: Box::new(self),
            op,
            right: Box::new(other),
        }
    }

    /// `self AS name`.
    pub fn alias(self, name: impl Into<String>) -> Self {
        Expr::Alias {
            expr: Box::new(self.unalias()),
            name: name.into(),
        }
    }

    /// The expression without a top-level alias.
    pub fn unalias(self) -> Self {
        match self {
            Expr::Alias { expr, .. } => *expr,
            other => other,
        }
    }

    /// Output column name: the alias, the column name, or the expression's text.
    pub fn output_name(&self) -> String {
        match self {
            Expr::Alias { name, .. } => name.clone(),
            Expr::Column(c) => c.name.clone(),
            other => other.to_string(),
        }
    }

    /// True when the expression has at least one column and every column resolves
    /// (unambiguously) in `schema`.
    pub(crate) fn references_only(&self, schema: &PlanSchema) -> bool {
        let columns = self.columns();
        !columns.is_empty()
            && columns.iter().all(|c| {
                matches!(
                    schema.try_index_of(c.relation.as_deref(), &c.name),
                    Ok(Some(_))
                )
            })
    }

    /// Whether the expression is more than `limit` levels deep (each node one level). The
    /// walk stops at `limit`, so it costs at most the nodes above that depth and never
    /// recurses deeper than `limit` — safe on any tree, however deep.
    pub fn deeper_than(&self, limit: usize) -> bool {
        if limit == 0 {
            return true;
        }
        self.children().iter().any(|c| c.deeper_than(limit - 1))
    }

    /// The children of this node.
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column(_) | Expr::Literal(_) => vec![],
            Expr::Binary { left, right, .. } => vec![left, right],
            Expr::Not(e)
            | Expr::Negative(e)
            | Expr::IsNull { expr: e, .. }
            | Expr::Cast { expr: e, .. } => vec![e],
            Expr::Alias { expr, .. } => vec![expr],
            Expr::Between {
                expr, low, high, ..
            } => vec![expr, low, high],
            Expr::InList { expr, list, .. } => {
                std::iter::once(expr.as_ref()).chain(list.iter()).collect()
            }
            Expr::Like { expr, pattern, .. } => vec![expr, pattern],
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => {
                let mut out: Vec<&Expr> = Vec::new();
                if let Some(o) = operand {
                    out.push(o);
                }
                for (w, t) in when_then {
                    out.push(w);
                    out.push(t);
                }
                if let Some(o) = otherwise {
                    out.push(o);
                }
                out
            }
            Expr::Function { args, .. } | Expr::Aggregate { args, .. } => args.iter().collect(),
            Expr::Window(w) => w
                .args
                .iter()
                .chain(&w.partition_by)
                .chain(w.order_by.iter().map(|k| &k.expr))
                .collect(),
        }
    }

    /// Rebuild this node bottom-up, applying `f` to every node after its children.
    pub fn transform_up(self, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
        fn up(e: Expr, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
            e.transform_up(f)
        }
        #[allow(clippy::boxed_local)] // the boxes are moved out of the enum and re-used
        fn up_box(e: Box<Expr>, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Box<Expr>> {
            Ok(Box::new((*e).transform_up(f)?))
        }
        fn up_vec(v: Vec<Expr>, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Vec<Expr>> {
            v.into_iter().map(|e| e.transform_up(f)).collect()
        }
        let rebuilt = match self {
            e @ (Expr::Column(_) | Expr::Literal(_)) => e,
            Expr::Binary { left, op, right } => Expr::Binary {
                left: up_box(left, f)?,
                op,
                right: up_box(right, f)?,
            },
            Expr::Not(e) => Expr::Not(up_box(e, f)?),
            Expr::Negative(e) => Expr::Negative(up_box(e, f)?),
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: up_box(expr, f)?,
                negated,
            },
            Expr::Cast { expr, to } => Expr::Cast {
                expr: up_box(expr, f)?,
                to,
            },
            Expr::Alias { expr, name } => Expr::Alias {
                expr: up_box(expr, f)?,
                name,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between {
                expr: up_box(expr, f)?,
                low: up_box(low, f)?,
                high: up_box(high, f)?,
                negated,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: up_box(expr, f)?,
                list: up_vec(list, f)?,
                negated,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => Expr::Like {
                expr: up_box(expr, f)?,
                pattern: up_box(pattern, f)?,
                negated,
                case_insensitive,
            },
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => {
                let operand = match operand {
                    Some(o) => Some(up_box(o, f)?),
                    None => None,
                };
                let mut pairs = Vec::with_capacity(when_then.len());
                for (w, t) in when_then {
                    pairs.push((up(w, f)?, up(t, f)?));
                }
                let otherwise = match otherwise {
                    Some(o) => Some(up_box(o, f)?),
                    None => None,
                };
                Expr::Case {
                    operand,
                    when_then: pairs,
                    otherwise,
                }
            }
            Expr::Function { func, args } => Expr::Function {
                func,
                args: up_vec(args, f)?,
            },
            Expr::Aggregate {
                func,
                args,
                distinct,
            } => Expr::Aggregate {
                func,
                args: up_vec(args, f)?,
                distinct,
            },
            Expr::Window(w) => {
                let w = *w;
                let order_by = w
                    .order_by
                    .into_iter()
                    .map(|k| {
                        Ok(SortKey {
                            expr: up(k.expr, f)?,
                            ..k
                        })
                    })
                    .collect::<Result<_>>()?;
                Expr::Window(Box::new(WindowExpr {
                    args: up_vec(w.args, f)?,
                    partition_by: up_vec(w.partition_by, f)?,
                    order_by,
                    ..w
                }))
            }
        };
        f(rebuilt)
    }

    /// Rewrite top-down: `f` returns `Some(replacement)` to replace a node without visiting its
    /// children, or `None` to descend.
    pub(crate) fn transform_down(self, f: &mut dyn FnMut(&Expr) -> Option<Expr>) -> Result<Expr> {
        if let Some(replacement) = f(&self) {
            return Ok(replacement);
        }
        let children_rewritten = match self {
            e @ (Expr::Column(_) | Expr::Literal(_)) => e,
            Expr::Binary { left, op, right } => Expr::Binary {
                left: Box::new(left.transform_down(f)?),
                op,
                right: Box::new(right.transform_down(f)?),
            },
            Expr::Not(e) => Expr::Not(Box::new(e.transform_down(f)?)),
            Expr::Negative(e) => Expr::Negative(Box::new(e.transform_down(f)?)),
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: Box::new(expr.transform_down(f)?),
                negated,
            },
            Expr::Cast { expr, to } => Expr::Cast {
                expr: Box::new(expr.transform_down(f)?),
                to,
            },
            Expr::Alias { expr, name } => Expr::Alias {
                expr: Box::new(expr.transform_down(f)?),
                name,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between {
                expr: Box::new(expr.transform_down(f)?),
                low: Box::new(low.transform_down(f)?),
                high: Box::new(high.transform_down(f)?),
                negated,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: Box::new(expr.transform_down(f)?),
                list: list
                    .into_iter()
                    .map(|e| e.transform_down(f))
                    .collect::<Result<_>>()?,
                negated,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => Expr::Like {
                expr: Box::new(expr.transform_down(f)?),
                pattern: Box::new(pattern.transform_down(f)?),
                negated,
                case_insensitive,
            },
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => Expr::Case {
                operand: operand
                    .map(|o| o.transform_down(f).map(Box::new))
                    .transpose()?,
                when_then: when_then
                    .into_iter()
                    .map(|(w, t)| Ok((w.transform_down(f)?, t.transform_down(f)?)))
                    .collect::<Result<_>>()?,
                otherwise: otherwise
                    .map(|o| o.transform_down(f).map(Box::new))
                    .transpose()?,
            },
            Expr::Function { func, args } => Expr::Function {
                func,
                args: args
                    .into_iter()
                    .map(|e| e.transform_down(f))
                    .collect::<Result<_>>()?,
            },
            Expr::Aggregate {
                func,
                args,
                distinct,
            } => Expr::Aggregate {
                func,
                args: args
                    .into_iter()
                    .map(|e| e.transform_down(f))
                    .collect::<Result<_>>()?,
                distinct,
            },
            Expr::Window(w) => {
                let w = *w;
                let down_vec = |v: Vec<Expr>, f: &mut dyn FnMut(&Expr) -> Option<Expr>| {
                    v.into_iter()
                        .map(|e| e.transform_down(f))
                        .collect::<Result<Vec<_>>>()
                };
                let args = down_vec(w.args, f)?;
                let partition_by = down_vec(w.partition_by, f)?;
                let order_by = w
                    .order_by
                    .into_iter()
                    .map(|k| {
                        Ok(SortKey {
                            expr: k.expr.transform_down(f)?,
                            ..k
                        })
                    })
                    .collect::<Result<_>>()?;
                Expr::Window(Box::new(WindowExpr {
                    args,
                    partition_by,
                    order_by,
                    ..w
                }))
            }
        };
        Ok(children_rewritten)
    }

    /// Visit every node (pre-order).
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        for child in self.children() {
            child.walk(f);
        }
    }

    /// Columns referenced anywhere in the expression.
    pub fn columns(&self) -> BTreeSet<Column> {
        let mut out = BTreeSet::new();
        self.walk(&mut |e| {
            if let Expr::Column(c) = e {
                out.insert(c.clone());
            }
        });
        out
    }

    /// True if the expression contains an aggregate call.
    pub fn contains_aggregate(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Expr::Aggregate { .. }));
        found
    }

    /// True if the expression contains a window function call.
    pub fn contains_window(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Expr::Window(_)));
        found
    }

    /// True if the expression references no columns, aggregates or windows.
    pub(crate) fn is_constant(&self) -> bool {
        let mut constant = true;
        self.walk(&mut |e| {
            constant &= !matches!(
                e,
                Expr::Column(_) | Expr::Aggregate { .. } | Expr::Window(_)
            )
        });
        constant
    }

    /// The result type against `schema`.
    pub fn data_type(&self, schema: &PlanSchema) -> Result<DataType> {
        crate::logical::types::expr_type(self, schema)
    }

    /// The output field against `schema`.
    pub(crate) fn to_field(&self, schema: &PlanSchema) -> Result<Field> {
        Ok(Field::new(
            self.output_name(),
            self.data_type(schema)?,
            self.nullable(schema),
        ))
    }

    /// Whether the result may be NULL (conservative).
    pub(crate) fn nullable(&self, schema: &PlanSchema) -> bool {
        match self {
            Expr::Column(c) => schema
                .try_index_of(c.relation.as_deref(), &c.name)
                .ok()
                .flatten()
                .map(|i| schema.field(i).field.is_nullable())
                .unwrap_or(true),
            Expr::Literal(v) => v.is_null(),
            Expr::IsNull { .. } => false,
            Expr::Aggregate {
                func: AggregateFunction::Count,
                ..
            } => false,
            Expr::Window(w) => !matches!(
                w.func,
                WindowFunction::RowNumber
                    | WindowFunction::Rank
                    | WindowFunction::DenseRank
                    | WindowFunction::PercentRank
                    | WindowFunction::CumeDist
                    | WindowFunction::Ntile
                    | WindowFunction::Aggregate(AggregateFunction::Count)
            ),
            Expr::Alias { expr, .. } => expr.nullable(schema),
            _ => true,
        }
    }

    /// Split a conjunction into its parts.
    pub(crate) fn split_conjunction(self) -> Vec<Expr> {
        match self {
            Expr::Binary {
                left,
                op: BinaryOp::And,
                right,
            } => {
                let mut out = left.split_conjunction();
                out.extend(right.split_conjunction());
                out
            }
            Expr::Alias { expr, .. } => expr.split_conjunction(),
            other => vec![other],
        }
    }

    /// AND of all parts (`None` when empty).
    pub(crate) fn conjunction(parts: impl IntoIterator<Item = Expr>) -> Option<Expr> {
        parts.into_iter().reduce(|a, b| a.binary(BinaryOp::And, b))
    }
}

/// Timestamp unit used for SQL TIMESTAMP.
pub const TIMESTAMP_UNIT: TimeUnit = TimeUnit::Microsecond;

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(c) => write!(f, "{c}"),
            Expr::Literal(v) => write!(f, "{v}"),
            Expr::Binary { left, op, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::Negative(e) => write!(f, "(-{e})"),
            Expr::IsNull { expr, negated } => {
                write!(f, "{expr} IS {}NULL", if *negated { "NOT " } else { "" })
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                write!(
                    f,
                    "{expr} {}BETWEEN {low} AND {high}",
                    if *negated { "NOT " } else { "" }
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let items: Vec<String> = list.iter().map(|e| e.to_string()).collect();
                write!(
                    f,
                    "{expr} {}IN ({})",
                    if *negated { "NOT " } else { "" },
                    items.join(", ")
                )
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => write!(
                f,
                "{expr} {}{} {pattern}",
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" }
            ),
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => {
                f.write_str("CASE")?;
                if let Some(o) = operand {
                    write!(f, " {o}")?;
                }
                for (w, t) in when_then {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(o) = otherwise {
                    write!(f, " ELSE {o}")?;
                }
                f.write_str(" END")
            }
            Expr::Cast { expr, to } => write!(f, "CAST({expr} AS {to})"),
            Expr::Function { func, args } => {
                let items: Vec<String> = args.iter().map(|e| e.to_string()).collect();
                write!(f, "{}({})", func.name(), items.join(", "))
            }
            Expr::Aggregate {
                func,
                args,
                distinct,
            } => {
                let items: Vec<String> = args.iter().map(|e| e.to_string()).collect();
                let inner = if args.is_empty() {
                    "*".to_string()
                } else {
                    items.join(", ")
                };
                write!(
                    f,
                    "{}({}{inner})",
                    func.name(),
                    if *distinct { "DISTINCT " } else { "" }
                )
            }
            Expr::Window(w) => write!(f, "{w}"),
            Expr::Alias { expr, name } => write!(f, "{expr} AS {}", hidden::display(name)),
        }
    }
}
