//! Function calls: the aggregate functions (`count`, `sum`, `avg`, `min`, `max`, `first`,
//! `last`, with `DISTINCT`) and the scalar function library's SQL names and aliases. An
//! unknown name is refused with the closest known one.

use sqlparser::ast::{self, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments};

use super::literals::date_part;
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::logical::expr::{AggregateFunction, Expr, ScalarFunction};
use crate::logical::schema::PlanSchema;

impl SqlPlanner<'_> {
    pub(super) fn function_to_expr(
        &self,
        function: &ast::Function,
        schema: &PlanSchema,
    ) -> Result<Expr> {
        let ast::Function {
            name,
            // `{fn f(x)}` is f(x).
            uses_odbc_syntax: _,
            parameters,
            args,
            within_group,
            filter,
            null_treatment,
            over,
        } = function;
        let name = name.to_string().to_lowercase();
        let refused = [
            (
                over.is_some(),
                "OVER (window functions are not supported yet)",
            ),
            (filter.is_some(), "FILTER (WHERE ...) on an aggregate"),
            (!within_group.is_empty(), "WITHIN GROUP"),
            (null_treatment.is_some(), "IGNORE NULLS / RESPECT NULLS"),
            (
                !matches!(parameters, FunctionArguments::None),
                "parametric functions",
            ),
        ];
        if let Some((_, what)) = refused.iter().find(|(present, _)| *present) {
            return Err(not_supported(format!("{name}() with {what}"), function));
        }
        let (args, distinct) = match args {
            FunctionArguments::None => (vec![], false),
            FunctionArguments::List(list) => {
                let ast::FunctionArgumentList {
                    duplicate_treatment,
                    args,
                    clauses,
                } = list;
                if let Some(clause) = clauses.first() {
                    return Err(not_supported(
                        format!("{name}() with {clause} among its arguments"),
                        function,
                    ));
                }
                let distinct = matches!(duplicate_treatment, Some(DuplicateTreatment::Distinct));
                let mut converted = Vec::new();
                for arg in args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                            converted.push(Some(self.sql_to_expr(e, schema)?))
                        }
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => converted.push(None),
                        other => {
                            return Err(not_supported(
                                format!("function argument {other}"),
                                function,
                            ))
                        }
                    }
                }
                (converted, distinct)
            }
            FunctionArguments::Subquery(_) => {
                return Err(not_supported("a subquery as a function argument", function))
            }
        };
        let aggregate = match name.as_str() {
            "count" => Some(AggregateFunction::Count),
            "sum" => Some(AggregateFunction::Sum),
            "avg" | "mean" => Some(AggregateFunction::Avg),
            "min" => Some(AggregateFunction::Min),
            "max" => Some(AggregateFunction::Max),
            "first" => Some(AggregateFunction::First),
            "last" => Some(AggregateFunction::Last),
            "stddev" | "stddev_samp" => Some(AggregateFunction::StddevSamp),
            "stddev_pop" => Some(AggregateFunction::StddevPop),
            "variance" | "var_samp" => Some(AggregateFunction::VarSamp),
            "var_pop" => Some(AggregateFunction::VarPop),
            _ => None,
        };
        if let Some(func) = aggregate {
            let args: Vec<Expr> = match (func, args.as_slice()) {
                (AggregateFunction::Count, [None]) | (AggregateFunction::Count, []) => vec![],
                (_, [Some(a)]) => vec![a.clone()],
                _ => {
                    return Err(EngineError::Plan(format!(
                        "{name}() takes exactly one argument"
                    )))
                }
            };
            return Ok(Expr::Aggregate {
                func,
                args,
                distinct,
            });
        }
        if distinct {
            return Err(EngineError::Plan(format!(
                "DISTINCT is only valid in aggregate functions, not {name}()"
            )));
        }
        let args: Vec<Expr> = args
            .into_iter()
            .map(|a| a.ok_or_else(|| EngineError::Plan(format!("{name}(*) is not valid"))))
            .collect::<Result<_>>()?;
        let func = match name.as_str() {
            "upper" | "ucase" => ScalarFunction::Upper,
            "lower" | "lcase" => ScalarFunction::Lower,
            "length" | "char_length" | "character_length" | "len" => ScalarFunction::Length,
            "trim" => ScalarFunction::Trim,
            "ltrim" => ScalarFunction::LTrim,
            "rtrim" => ScalarFunction::RTrim,
            "substring" | "substr" => ScalarFunction::Substring,
            "starts_with" | "prefix" => ScalarFunction::StartsWith,
            "ends_with" | "suffix" => ScalarFunction::EndsWith,
            "contains" => ScalarFunction::Contains,
            "regexp_matches" => ScalarFunction::RegexpMatches,
            "coalesce" | "ifnull" => ScalarFunction::Coalesce,
            "concat" => ScalarFunction::Concat,
            "abs" => ScalarFunction::Abs,
            "round" => ScalarFunction::Round,
            "year" | "month" | "day" | "quarter" | "hour" | "minute" | "second" | "dayofweek"
            | "dayofyear" | "week" => ScalarFunction::Extract(date_part(&name)?),
            "date_part" | "datepart" => {
                let part = match args.first() {
                    Some(Expr::Literal(v)) => v.as_str(),
                    _ => None,
                };
                let Some(part) = part else {
                    return Err(EngineError::Plan(
                        "date_part() needs a constant part name such as 'year'".into(),
                    ));
                };
                return Ok(Expr::Function {
                    func: ScalarFunction::Extract(date_part(&part)?),
                    args: args.into_iter().skip(1).collect(),
                });
            }
            _ => {
                let known = [
                    "count",
                    "sum",
                    "avg",
                    "min",
                    "max",
                    "upper",
                    "lower",
                    "length",
                    "trim",
                    "ltrim",
                    "rtrim",
                    "substring",
                    "starts_with",
                    "ends_with",
                    "contains",
                    "regexp_matches",
                    "coalesce",
                    "concat",
                    "stddev_samp",
                    "stddev_pop",
                    "var_samp",
                    "var_pop",
                    "abs",
                    "round",
                    "year",
                    "month",
                    "day",
                    "date_part",
                    "extract",
                ];
                let suggestion = crate::error::closest_name(&name, known);
                return Err(EngineError::Plan(format!(
                    "unknown function {name}(){}",
                    suggestion
                        .map(|s| format!(" (did you mean {s}()?)"))
                        .unwrap_or_default()
                )));
            }
        };
        Ok(Expr::Function { func, args })
    }
}
