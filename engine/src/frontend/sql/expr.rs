//! SQL expressions → logical expressions. Names are resolved against the input schema as
//! they are converted (or, inside a subquery, against the enclosing query: an outer
//! reference), so an unknown column fails here, naming the valid ones.

use sqlparser::ast::{self, BinaryOperator, UnaryOperator, Value};

use super::literals::{date_part, interval_literal, normalize_ident, sql_type, value_to_scalar};
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::eval::constant::fold_expr;
use crate::logical::expr::{BinaryOp, Column, Expr, ScalarFunction};
use crate::logical::plan::SortKey;
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;

impl SqlPlanner<'_> {
    /// Convert a SQL expression over `schema` into a logical expression.
    pub(super) fn sql_to_expr(&self, e: &ast::Expr, schema: &PlanSchema) -> Result<Expr> {
        let _level = self.enter_expr()?;
        let convert = |e: &ast::Expr| self.sql_to_expr(e, schema);
        let boxed =
            |e: &ast::Expr| -> Result<Box<Expr>> { Ok(Box::new(self.sql_to_expr(e, schema)?)) };
        Ok(match e {
            ast::Expr::Identifier(ident) => {
                let column = Column::new(normalize_ident(ident));
                match schema.index_of(None, &column.name) {
                    Ok(_) => Expr::Column(column),
                    Err(err @ EngineError::ColumnNotFound { .. }) => {
                        match self.resolve_outer(None, &column.name) {
                            Some(outer) => Expr::Column(outer),
                            None => return Err(err),
                        }
                    }
                    Err(other) => return Err(other),
                }
            }
            ast::Expr::CompoundIdentifier(parts) => {
                if parts.len() != 2 {
                    return Err(EngineError::NotSupported(format!("identifier {e}")));
                }
                let column =
                    Column::qualified(Some(normalize_ident(&parts[0])), normalize_ident(&parts[1]));
                match schema.index_of(column.relation.as_deref(), &column.name) {
                    Ok(_) => Expr::Column(column),
                    Err(err @ EngineError::ColumnNotFound { .. }) => {
                        match self.resolve_outer(column.relation.as_deref(), &column.name) {
                            Some(outer) => Expr::Column(outer),
                            None => return Err(err),
                        }
                    }
                    Err(other) => return Err(other),
                }
            }
            ast::Expr::Value(v) => Expr::Literal(value_to_scalar(&v.value)?),
            ast::Expr::TypedString(ts) => {
                // `{d '2025-07-16'}` is `DATE '2025-07-16'`.
                let ast::TypedString {
                    data_type,
                    value,
                    uses_odbc_syntax: _,
                } = ts;
                let text = match &value.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                    other => {
                        return Err(EngineError::Plan(format!(
                            "typed literal needs a string, got {other}"
                        )))
                    }
                };
                let to = sql_type(data_type)?;
                Expr::Literal(ScalarValue::utf8(&text).cast_to(&to).map_err(|_| {
                    EngineError::Type(format!("'{text}' is not a valid {data_type}"))
                })?)
            }
            ast::Expr::Interval(interval) => Expr::Literal(interval_literal(interval)?),
            ast::Expr::Nested(inner) => convert(inner)?,
            ast::Expr::BinaryOp { left, op, right } => {
                let op = match op {
                    BinaryOperator::Plus => BinaryOp::Plus,
                    BinaryOperator::Minus => BinaryOp::Minus,
                    BinaryOperator::Multiply => BinaryOp::Multiply,
                    BinaryOperator::Divide => BinaryOp::Divide,
                    BinaryOperator::Modulo => BinaryOp::Modulo,
                    BinaryOperator::DuckIntegerDivide => BinaryOp::IntegerDivide,
                    BinaryOperator::Eq => BinaryOp::Eq,
                    BinaryOperator::NotEq => BinaryOp::NotEq,
                    BinaryOperator::Lt => BinaryOp::Lt,
                    BinaryOperator::LtEq => BinaryOp::LtEq,
                    BinaryOperator::Gt => BinaryOp::Gt,
                    BinaryOperator::GtEq => BinaryOp::GtEq,
                    BinaryOperator::And => BinaryOp::And,
                    BinaryOperator::Or => BinaryOp::Or,
                    BinaryOperator::StringConcat => BinaryOp::StringConcat,
                    other => return Err(EngineError::NotSupported(format!("operator {other}"))),
                };
                Expr::Binary {
                    left: boxed(left)?,
                    op,
                    right: boxed(right)?,
                }
            }
            ast::Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Not => Expr::Not(boxed(expr)?),
                UnaryOperator::Plus => convert(expr)?,
                UnaryOperator::Minus => match convert(expr)? {
                    Expr::Literal(v) if !v.is_null() => {
                        let negated =
                            fold_expr(Expr::Negative(Box::new(Expr::Literal(v.clone()))))?;
                        match negated {
                            Expr::Literal(n) => Expr::Literal(n),
                            _ => Expr::Negative(Box::new(Expr::Literal(v))),
                        }
                    }
                    other => Expr::Negative(Box::new(other)),
                },
                other => return Err(EngineError::NotSupported(format!("unary operator {other}"))),
            },
            ast::Expr::IsNull(inner) => Expr::IsNull {
                expr: boxed(inner)?,
                negated: false,
            },
            ast::Expr::IsNotNull(inner) => Expr::IsNull {
                expr: boxed(inner)?,
                negated: true,
            },
            ast::Expr::IsDistinctFrom(a, b) => distinct_from(convert(a)?, convert(b)?, false),
            ast::Expr::IsNotDistinctFrom(a, b) => distinct_from(convert(a)?, convert(b)?, true),
            ast::Expr::IsTrue(inner) => bool_test(convert(inner)?, true, false),
            ast::Expr::IsNotTrue(inner) => bool_test(convert(inner)?, true, true),
            ast::Expr::IsFalse(inner) => bool_test(convert(inner)?, false, false),
            ast::Expr::IsNotFalse(inner) => bool_test(convert(inner)?, false, true),
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => Expr::Between {
                expr: boxed(expr)?,
                low: boxed(low)?,
                high: boxed(high)?,
                negated: *negated,
            },
            ast::Expr::In {
                expr,
                target,
                negated,
                global,
            } => match target {
                _ if *global => return Err(not_supported("GLOBAL IN", e)),
                ast::InTarget::List(list) => Expr::InList {
                    expr: boxed(expr)?,
                    list: list.iter().map(convert).collect::<Result<_>>()?,
                    negated: *negated,
                },
                _ => {
                    return Err(not_supported(
                        "IN (subquery) here; subqueries are supported in WHERE conjuncts",
                        e,
                    ))
                }
            },
            ast::Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | ast::Expr::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any || escape_char.is_some() {
                    return Err(not_supported("LIKE ANY / ESCAPE", e));
                }
                Expr::Like {
                    expr: boxed(expr)?,
                    pattern: boxed(pattern)?,
                    negated: *negated,
                    case_insensitive: matches!(e, ast::Expr::ILike { .. }),
                }
            }
            ast::Expr::Case {
                case_token: _,
                end_token: _,
                operand,
                conditions,
                else_result,
            } => Expr::Case {
                operand: operand.as_ref().map(|o| boxed(o)).transpose()?,
                when_then: conditions
                    .iter()
                    .map(|c| Ok((convert(&c.condition)?, convert(&c.result)?)))
                    .collect::<Result<_>>()?,
                otherwise: else_result.as_ref().map(|o| boxed(o)).transpose()?,
            },
            ast::Expr::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast) {
                    return Err(not_supported("TRY_CAST", e));
                }
                if format.is_some() {
                    return Err(not_supported("CAST ... FORMAT", e));
                }
                Expr::Cast {
                    expr: boxed(expr)?,
                    to: sql_type(data_type)?,
                }
            }
            // `EXTRACT(part FROM x)` and `EXTRACT(part, x)` mean the same.
            ast::Expr::Extract {
                field,
                syntax: _,
                expr,
            } => Expr::Function {
                func: ScalarFunction::Extract(date_part(&field.to_string())?),
                args: vec![convert(expr)?],
            },
            // `SUBSTRING(x FROM a FOR b)`, `SUBSTRING(x, a, b)` and `SUBSTR(...)` are one.
            ast::Expr::Substring {
                expr,
                substring_from,
                substring_for,
                special: _,
                shorthand: _,
            } => {
                let mut args = vec![convert(expr)?];
                args.push(match substring_from {
                    Some(f) => convert(f)?,
                    None => Expr::Literal(ScalarValue::int64(1)),
                });
                if let Some(f) = substring_for {
                    args.push(convert(f)?);
                }
                Expr::Function {
                    func: ScalarFunction::Substring,
                    args,
                }
            }
            ast::Expr::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_what.is_some() || trim_characters.is_some() {
                    return Err(not_supported("TRIM of characters other than spaces", e));
                }
                let func = match trim_where {
                    Some(ast::TrimWhereField::Leading) => ScalarFunction::LTrim,
                    Some(ast::TrimWhereField::Trailing) => ScalarFunction::RTrim,
                    _ => ScalarFunction::Trim,
                };
                Expr::Function {
                    func,
                    args: vec![convert(expr)?],
                }
            }
            ast::Expr::Ceil { expr, field } | ast::Expr::Floor { expr, field } => {
                let plain = match field {
                    ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) => true,
                    ast::CeilFloorKind::DateTimeField(_) => false,
                    ast::CeilFloorKind::Scale(_) => false,
                };
                if !plain {
                    return Err(not_supported(format!("{e} (only CEIL(x) and FLOOR(x))"), e));
                }
                Expr::Function {
                    func: if matches!(e, ast::Expr::Ceil { .. }) {
                        ScalarFunction::Ceil
                    } else {
                        ScalarFunction::Floor
                    },
                    args: vec![convert(expr)?],
                }
            }
            ast::Expr::Position { expr, r#in } => Expr::Function {
                func: ScalarFunction::Strpos,
                args: vec![convert(r#in)?, convert(expr)?],
            },
            ast::Expr::Function(function) => self.function_to_expr(function, schema)?,
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } => {
                return Err(not_supported(
                    "subqueries here; they are supported in WHERE and HAVING conditions and, uncorrelated, in the select list",
                    e,
                ))
            }
            other => return Err(not_supported(format!("expression {other}"), other)),
        })
    }
}

fn bool_test(e: Expr, value: bool, negated: bool) -> Expr {
    // `x IS TRUE` is never NULL: coalesce(x = value, false).
    let test = Expr::Function {
        func: ScalarFunction::Coalesce,
        args: vec![
            Expr::Binary {
                left: Box::new(e),
                op: BinaryOp::Eq,
                right: Box::new(Expr::Literal(ScalarValue::boolean(value))),
            },
            Expr::Literal(ScalarValue::boolean(false)),
        ],
    };
    if negated {
        Expr::Not(Box::new(test))
    } else {
        test
    }
}

pub(super) fn sort_key(expr: Expr, o: &ast::OrderByExpr) -> SortKey {
    let ascending = !matches!(o.options.sort, Some(ast::OrderBySort::Desc));
    // DuckDB's default: NULLS LAST in both directions.
    let nulls_first = o.options.nulls_first.unwrap_or(false);
    SortKey {
        expr,
        ascending,
        nulls_first,
    }
}

pub(super) fn output_column(schema: &PlanSchema, index: usize) -> Result<Expr> {
    if index >= schema.len() {
        return Err(EngineError::Plan(format!(
            "position {} is not in the select list",
            index + 1
        )));
    }
    let f = schema.field(index);
    Ok(Expr::Column(Column::qualified(
        f.qualifier.clone(),
        f.name(),
    )))
}

pub(super) fn ordinal(e: &ast::Expr) -> Result<Option<usize>> {
    // Only an integer is a position: `GROUP BY 1.5` groups by a constant, as in DuckDB; a
    // negative integer is no position at all.
    let (e, negative) = match e {
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => (expr.as_ref(), true),
        other => (other, false),
    };
    let ast::Expr::Value(v) = e else {
        return Ok(None);
    };
    let Value::Number(n, _) = &v.value else {
        return Ok(None);
    };
    if !n.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    if negative {
        return Err(EngineError::Plan(format!(
            "position -{n} is not in the select list (positions start at 1)"
        )));
    }
    let n: usize = n
        .parse()
        .map_err(|_| EngineError::Plan(format!("invalid position {n}")))?;
    if n == 0 {
        return Err(EngineError::Plan(
            "positions in ORDER BY / GROUP BY start at 1".into(),
        ));
    }
    Ok(Some(n - 1))
}

/// `a IS DISTINCT FROM b` (with `not`: `IS NOT DISTINCT FROM`): `<>` where NULL equals NULL and
/// differs from every value; never NULL.
fn distinct_from(a: Expr, b: Expr, not: bool) -> Expr {
    let is_null = |e: &Expr, negated: bool| Expr::IsNull {
        expr: Box::new(e.clone()),
        negated,
    };
    let boolean = |v: bool| Expr::Literal(ScalarValue::boolean(v));
    Expr::Case {
        operand: None,
        when_then: vec![
            (is_null(&a, false), is_null(&b, !not)),
            (is_null(&b, false), boolean(!not)),
        ],
        otherwise: Some(Box::new(
            a.binary(if not { BinaryOp::Eq } else { BinaryOp::NotEq }, b),
        )),
    }
}
