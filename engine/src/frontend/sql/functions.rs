//! Function calls: the aggregate functions (`count`, `sum`, `avg`, `min`, `max`, `first`,
//! `last`, with `DISTINCT`) and the scalar function library's SQL names and aliases. An
//! unknown name is refused with the closest known one.

use sqlparser::ast::{self, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments};

use super::literals::date_part;
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::logical::expr::{AggregateFunction, Expr, QuantileKind, ScalarFunction};
use crate::logical::schema::PlanSchema;
use crate::logical::window::WindowFunction;

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
        if !within_group.is_empty() {
            return self.within_group(&name, function, schema);
        }
        let refused = [
            (
                filter.is_some() && over.is_some(),
                "FILTER (WHERE ...) on a window function",
            ),
            (
                null_treatment.is_some() && over.is_none(),
                "IGNORE NULLS / RESPECT NULLS outside a window function",
            ),
            (
                !matches!(parameters, FunctionArguments::None),
                "parametric functions",
            ),
        ];
        if let Some((_, what)) = refused.iter().find(|(present, _)| *present) {
            return Err(not_supported(format!("{name}() with {what}"), function));
        }
        let mut ignore_nulls = matches!(null_treatment, Some(ast::NullTreatment::IgnoreNulls));
        let mut aggregate_order: Vec<ast::OrderByExpr> = Vec::new();
        let (args, distinct) = match args {
            FunctionArguments::None => (vec![], false),
            FunctionArguments::List(list) => {
                let ast::FunctionArgumentList {
                    duplicate_treatment,
                    args,
                    clauses,
                } = list;
                for clause in clauses {
                    match clause {
                        ast::FunctionArgumentClause::IgnoreOrRespectNulls(treatment)
                            if over.is_some() =>
                        {
                            ignore_nulls = *treatment == ast::NullTreatment::IgnoreNulls;
                        }
                        ast::FunctionArgumentClause::OrderBy(keys)
                            if over.is_none() && is_string_agg(&name) =>
                        {
                            aggregate_order = keys.clone();
                        }
                        other => {
                            return Err(not_supported(
                                format!("{name}() with {other} among its arguments"),
                                function,
                            ))
                        }
                    }
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
        // `bool_and`/`bool_or` are `min`/`max` over booleans (false < true), NULLs skipped.
        let boolean = matches!(name.as_str(), "bool_and" | "bool_or" | "every");
        if boolean {
            if let [Some(a)] = args.as_slice() {
                let t = a.data_type(schema)?;
                if !matches!(
                    t,
                    arrow::datatypes::DataType::Boolean | arrow::datatypes::DataType::Null
                ) {
                    return Err(EngineError::Type(format!(
                        "{name}() needs a BOOLEAN, got {}",
                        crate::logical::types::sql_type_name(&t)
                    )));
                }
            }
        }
        let aggregate = match name.as_str() {
            "bool_and" | "every" => Some(AggregateFunction::Min),
            "bool_or" => Some(AggregateFunction::Max),
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
            "median" => Some(AggregateFunction::Quantile(QuantileKind::Median)),
            "quantile_cont" => Some(AggregateFunction::Quantile(QuantileKind::Linear)),
            "quantile_disc" | "quantile" => {
                Some(AggregateFunction::Quantile(QuantileKind::Discrete))
            }
            "arg_min" | "argmin" | "min_by" => Some(AggregateFunction::ArgMin),
            "arg_max" | "argmax" | "max_by" => Some(AggregateFunction::ArgMax),
            "covar_pop" => Some(AggregateFunction::CovarPop),
            "covar_samp" => Some(AggregateFunction::CovarSamp),
            "corr" => Some(AggregateFunction::Corr),
            "approx_count_distinct" => Some(AggregateFunction::ApproxCountDistinct),
            "approx_quantile" => Some(AggregateFunction::ApproxQuantile),
            _ if is_string_agg(&name) => Some(AggregateFunction::StringAgg {
                keys: 0,
                descending: 0,
                nulls_first: 0,
            }),
            _ => None,
        };
        if let Some(over) = over {
            if aggregate.is_some_and(|a| a.is_ordered_set() || a.arity() >= 2) {
                return Err(not_supported(
                    format!("{name}() as a window function (OVER)"),
                    function,
                ));
            }
            let func = match (aggregate, WindowFunction::from_name(&name)) {
                (Some(a), _) => WindowFunction::Aggregate(a),
                (None, Some(w)) => w,
                (None, None) => {
                    return Err(EngineError::Plan(format!(
                        "{name}() is not a window or aggregate function, so it cannot have OVER"
                    )))
                }
            };
            if distinct {
                return Err(not_supported(
                    format!("{name}(DISTINCT ...) as a window function"),
                    function,
                ));
            }
            let args: Vec<Expr> = match (func, args.as_slice()) {
                (WindowFunction::Aggregate(AggregateFunction::Count), [None]) => vec![],
                _ => args
                    .into_iter()
                    .map(|a| a.ok_or_else(|| EngineError::Plan(format!("{name}(*) is not valid"))))
                    .collect::<Result<_>>()?,
            };
            return self.window_call(func, args, over, ignore_nulls, schema);
        }
        if WindowFunction::from_name(&name).is_some() {
            return Err(EngineError::Plan(format!(
                "{name}() is a window function: it needs an OVER clause"
            )));
        }
        if filter.is_some() && aggregate.is_none() {
            return Err(EngineError::Plan(format!(
                "FILTER (WHERE ...) applies to aggregate functions, not {name}()"
            )));
        }
        if let Some(AggregateFunction::StringAgg { .. }) = aggregate {
            return self.string_agg(
                &name,
                args,
                &aggregate_order,
                filter.as_deref(),
                distinct,
                function,
                schema,
            );
        }
        if let Some(func) = aggregate {
            let mut args: Vec<Expr> = match (func, args.as_slice()) {
                (AggregateFunction::Count, [None]) | (AggregateFunction::Count, []) => vec![],
                (AggregateFunction::Quantile(QuantileKind::Median), [Some(a)]) => vec![a.clone()],
                (AggregateFunction::Quantile(QuantileKind::Median), _) => {
                    return Err(EngineError::Plan(format!(
                        "{name}() takes exactly one argument"
                    )))
                }
                (AggregateFunction::Quantile(_), [Some(a), Some(p)]) => {
                    vec![a.clone(), quantile_fraction(&name, p)?]
                }
                (AggregateFunction::Quantile(_), _) => {
                    return Err(EngineError::Plan(format!(
                        "{name}() takes a value and a constant fraction between 0 and 1"
                    )))
                }
                (AggregateFunction::ApproxQuantile, [Some(a), Some(p)]) => {
                    vec![a.clone(), quantile_fraction(&name, p)?]
                }
                (f, [Some(a), Some(b)]) if f.arity() == 2 => vec![a.clone(), b.clone()],
                (f, _) if f.arity() == 2 => {
                    return Err(EngineError::Plan(format!(
                        "{name}() takes exactly two arguments"
                    )))
                }
                (_, [Some(a)]) => vec![a.clone()],
                _ => {
                    return Err(EngineError::Plan(format!(
                        "{name}() takes exactly one argument"
                    )))
                }
            };
            if let Some(condition) = filter {
                // `agg(x) FILTER (WHERE c)` is `agg(CASE WHEN c THEN x END)` for aggregates
                // that skip NULLs (`count(*)` counts a constant); `first` and `last` keep
                // NULLs, so there it would differ.
                if matches!(func, AggregateFunction::First | AggregateFunction::Last) {
                    return Err(not_supported(
                        format!("{name}() with FILTER (WHERE ...)"),
                        function,
                    ));
                }
                // Two-argument aggregates skip a row whose first argument is NULL, so the
                // condition guards that one.
                let condition = self.sql_to_expr(condition, schema)?;
                let rest = if args.len() > 1 {
                    args.split_off(1)
                } else {
                    Vec::new()
                };
                let value = args
                    .pop()
                    .unwrap_or(Expr::Literal(crate::logical::scalar::ScalarValue::int64(1)));
                args = vec![Expr::Case {
                    operand: None,
                    when_then: vec![(condition, value)],
                    otherwise: None,
                }];
                args.extend(rest);
            }
            if distinct && (func.is_ordered_set() || func.arity() == 2) {
                return Err(not_supported(format!("{name}(DISTINCT ...)"), function));
            }
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
            "grouping" | "grouping_id" => ScalarFunction::Grouping,
            "floor" => ScalarFunction::Floor,
            "ceil" | "ceiling" => ScalarFunction::Ceil,
            "sqrt" => ScalarFunction::Sqrt,
            "ln" => ScalarFunction::Ln,
            "log10" => ScalarFunction::Log10,
            "exp" => ScalarFunction::Exp,
            "power" | "pow" => ScalarFunction::Power,
            "sign" => ScalarFunction::Sign,
            "greatest" => ScalarFunction::Greatest,
            "least" => ScalarFunction::Least,
            "replace" => ScalarFunction::Replace,
            "reverse" => ScalarFunction::Reverse,
            "left" => ScalarFunction::Left,
            "right" => ScalarFunction::Right,
            "strpos" | "instr" => ScalarFunction::Strpos,
            "lpad" => ScalarFunction::Lpad,
            "rpad" => ScalarFunction::Rpad,
            "split_part" => ScalarFunction::SplitPart,
            "concat_ws" => ScalarFunction::ConcatWs,
            "regexp_replace" => ScalarFunction::RegexpReplace,
            "regexp_extract" => ScalarFunction::RegexpExtract,
            "make_date" => ScalarFunction::MakeDate,
            "last_day" => ScalarFunction::LastDay,
            "strftime" => ScalarFunction::Strftime,
            "strptime" => ScalarFunction::Strptime { strict: true },
            "try_strptime" => ScalarFunction::Strptime { strict: false },
            "current_date" | "today" => {
                if !args.is_empty() {
                    return Err(EngineError::Plan(format!("{name}() takes no arguments")));
                }
                // The date when the query is planned (UTC), the same for every row.
                let seconds = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let days = i32::try_from(seconds / 86_400).unwrap_or(i32::MAX);
                return Ok(Expr::Literal(crate::logical::scalar::ScalarValue::date32(
                    days,
                )));
            }
            "nullif" => {
                let [a, b] = <[Expr; 2]>::try_from(args).map_err(|args| {
                    EngineError::Plan(format!("nullif() takes 2 arguments, got {}", args.len()))
                })?;
                // NULL when equal, else the first: a CASE (typed by its first argument).
                return Ok(Expr::Case {
                    operand: None,
                    when_then: vec![(
                        a.clone().binary(crate::logical::expr::BinaryOp::Eq, b),
                        Expr::Cast {
                            expr: Box::new(Expr::Literal(
                                crate::logical::scalar::ScalarValue::null(
                                    &arrow::datatypes::DataType::Null,
                                ),
                            )),
                            to: a.data_type(schema)?,
                        },
                    )],
                    otherwise: Some(Box::new(a)),
                });
            }
            "date_trunc" | "datetrunc" | "date_diff" | "datediff" => {
                let part = match args.first() {
                    Some(Expr::Literal(v)) => v.as_str(),
                    _ => None,
                };
                let Some(part) = part else {
                    return Err(EngineError::Plan(format!(
                        "{name}() needs a constant part name such as 'month'"
                    )));
                };
                let part = date_part(&part.to_lowercase())?;
                let func = if name.starts_with("date_t") || name == "datetrunc" {
                    ScalarFunction::DateTrunc(part)
                } else {
                    ScalarFunction::DateDiff(part)
                };
                return Ok(Expr::Function {
                    func,
                    args: args.into_iter().skip(1).collect(),
                });
            }
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
                    "grouping",
                    "floor",
                    "ceil",
                    "sqrt",
                    "ln",
                    "log10",
                    "exp",
                    "power",
                    "sign",
                    "greatest",
                    "least",
                    "nullif",
                    "replace",
                    "reverse",
                    "left",
                    "right",
                    "strpos",
                    "lpad",
                    "rpad",
                    "split_part",
                    "concat_ws",
                    "regexp_replace",
                    "regexp_extract",
                    "bool_and",
                    "bool_or",
                    "current_date",
                    "date_trunc",
                    "date_diff",
                    "make_date",
                    "last_day",
                    "row_number",
                    "rank",
                    "dense_rank",
                    "lag",
                    "lead",
                    "first_value",
                    "last_value",
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

impl SqlPlanner<'_> {
    /// `percentile_cont(p) WITHIN GROUP (ORDER BY x)` and `percentile_disc(...)`: the
    /// standard spelling of `quantile_cont(x, p)` and `quantile_disc(x, p)`.
    fn within_group(
        &self,
        name: &str,
        function: &ast::Function,
        schema: &PlanSchema,
    ) -> Result<Expr> {
        let kind = match name {
            "percentile_cont" => QuantileKind::Linear,
            "percentile_disc" => QuantileKind::Discrete,
            _ => {
                return Err(not_supported(
                    format!("{name}() with WITHIN GROUP"),
                    function,
                ))
            }
        };
        let ast::Function {
            args,
            within_group,
            filter,
            over,
            null_treatment,
            parameters,
            ..
        } = function;
        if over.is_some()
            || null_treatment.is_some()
            || !matches!(parameters, FunctionArguments::None)
        {
            return Err(not_supported(
                format!("{name}() WITHIN GROUP with OVER, IGNORE NULLS or parameters"),
                function,
            ));
        }
        let fraction = match args {
            FunctionArguments::List(list)
                if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
            {
                match list.args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => {
                        self.sql_to_expr(e, schema)?
                    }
                    _ => {
                        return Err(EngineError::Plan(format!(
                            "{name}() takes one fraction between 0 and 1"
                        )))
                    }
                }
            }
            _ => {
                return Err(EngineError::Plan(format!(
                    "{name}() takes one fraction between 0 and 1"
                )))
            }
        };
        let [order] = within_group.as_slice() else {
            return Err(not_supported(
                format!("{name}() WITHIN GROUP with several ORDER BY keys"),
                function,
            ));
        };
        if order.with_fill.is_some() || order.options.nulls_first.is_some() {
            return Err(not_supported(
                format!("{name}() WITHIN GROUP (ORDER BY ... NULLS / WITH FILL)"),
                function,
            ));
        }
        let mut fraction = quantile_fraction(name, &fraction)?;
        if matches!(order.options.sort, Some(ast::OrderBySort::Using(_))) {
            return Err(not_supported(
                format!("{name}() WITHIN GROUP (ORDER BY ... USING)"),
                function,
            ));
        }
        if matches!(order.options.sort, Some(ast::OrderBySort::Desc)) {
            if kind != QuantileKind::Linear {
                return Err(not_supported(
                    format!("{name}() WITHIN GROUP (ORDER BY ... DESC)"),
                    function,
                ));
            }
            // The p-quantile in descending order is the (1 - p)-quantile in ascending order.
            if let Expr::Literal(v) = &fraction {
                if let Some(p) = v.as_f64() {
                    fraction = Expr::Literal(crate::logical::scalar::ScalarValue::float64(1.0 - p));
                }
            }
        }
        let value = self.sql_to_expr(&order.expr, schema)?;
        let mut args = vec![value, fraction];
        if let Some(condition) = filter {
            let condition = self.sql_to_expr(condition, schema)?;
            let value = args.remove(0);
            args.insert(
                0,
                Expr::Case {
                    operand: None,
                    when_then: vec![(condition, value)],
                    otherwise: None,
                },
            );
        }
        Ok(Expr::Aggregate {
            func: AggregateFunction::Quantile(kind),
            args,
            distinct: false,
        })
    }
}

/// The fraction argument of a quantile: a constant number between 0 and 1, as a `DOUBLE`
/// literal.
fn quantile_fraction(name: &str, expr: &Expr) -> Result<Expr> {
    let value = match expr {
        Expr::Literal(v) => v.as_f64(),
        Expr::Cast { expr, .. } => match expr.as_ref() {
            Expr::Literal(v) => v.as_f64(),
            _ => None,
        },
        _ => None,
    };
    match value {
        Some(p) if (0.0..=1.0).contains(&p) => Ok(Expr::Literal(
            crate::logical::scalar::ScalarValue::float64(p),
        )),
        _ => Err(EngineError::Plan(format!(
            "{name}() needs a constant fraction between 0 and 1, got {expr}"
        ))),
    }
}

fn is_string_agg(name: &str) -> bool {
    matches!(name, "string_agg" | "group_concat" | "listagg")
}

impl SqlPlanner<'_> {
    /// `string_agg(x [, sep] [ORDER BY keys])`: the separator (default `,`) must be a
    /// constant; the keys become arguments after it, their directions bits of the function.
    #[allow(clippy::too_many_arguments)]
    fn string_agg(
        &self,
        name: &str,
        args: Vec<Option<Expr>>,
        order: &[ast::OrderByExpr],
        filter: Option<&ast::Expr>,
        distinct: bool,
        function: &ast::Function,
        schema: &PlanSchema,
    ) -> Result<Expr> {
        if distinct {
            return Err(not_supported(format!("{name}(DISTINCT ...)"), function));
        }
        let (value, separator) = match args.as_slice() {
            [Some(v)] => (
                v.clone(),
                Expr::Literal(crate::logical::scalar::ScalarValue::utf8(",")),
            ),
            [Some(v), Some(s)] => (v.clone(), s.clone()),
            _ => {
                return Err(EngineError::Plan(format!(
                    "{name}() takes a value and an optional separator"
                )))
            }
        };
        if !matches!(separator, Expr::Literal(_)) {
            return Err(not_supported(
                format!("{name}() with a separator that is not a constant"),
                function,
            ));
        }
        if order.len() > 16 {
            return Err(not_supported(
                format!("{name}() with more than 16 ORDER BY keys"),
                function,
            ));
        }
        let (mut descending, mut nulls_first) = (0u16, 0u16);
        let mut keys = Vec::with_capacity(order.len());
        for (i, key) in order.iter().enumerate() {
            if key.with_fill.is_some()
                || matches!(key.options.sort, Some(ast::OrderBySort::Using(_)))
            {
                return Err(not_supported(
                    format!("{name}() ORDER BY ... USING / WITH FILL"),
                    function,
                ));
            }
            let desc = matches!(key.options.sort, Some(ast::OrderBySort::Desc));
            // NULLs sort last in both directions unless NULLS FIRST is given (DuckDB).
            let first = key.options.nulls_first.unwrap_or(false);
            if desc {
                descending |= 1 << i;
            }
            if first {
                nulls_first |= 1 << i;
            }
            keys.push(self.sql_to_expr(&key.expr, schema)?);
        }
        let value = match filter {
            Some(condition) => Expr::Case {
                operand: None,
                when_then: vec![(self.sql_to_expr(condition, schema)?, value)],
                otherwise: None,
            },
            None => value,
        };
        let value = value.cast(arrow::datatypes::DataType::Utf8);
        let mut all = vec![value, separator.cast(arrow::datatypes::DataType::Utf8)];
        all.extend(keys);
        Ok(Expr::Aggregate {
            func: AggregateFunction::StringAgg {
                keys: order.len() as u8,
                descending,
                nulls_first,
            },
            args: all,
            distinct: false,
        })
    }
}
