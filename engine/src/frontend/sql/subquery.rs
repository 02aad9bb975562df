//! Subqueries (in `WHERE`, `HAVING`, the select list, `JOIN ... ON` and `LATERAL`), planned
//! as joins rather than run once per row.
//!
//! Each subquery becomes the right input of a join with the outer query:
//!
//! | SQL                              | join                                         |
//! |----------------------------------|----------------------------------------------|
//! | `EXISTS (q)` / `NOT EXISTS (q)`  | semi / anti join                             |
//! | `x IN (q)`                       | semi join on `x = q.col`                     |
//! | `x NOT IN (q)`                   | null-aware anti join on `x = q.col`          |
//! | `(q)` as a value, uncorrelated   | single join (one row at most, else an error) |
//! | `(q)` as a value, correlated     | left join with `q` grouped by its correlation keys |
//!
//! **Decorrelation.** While a subquery is planned, names that do not resolve inside it are
//! looked up in the outer query and marked as outer references. The conjuncts of the
//! subquery's `WHERE` that contain outer references are taken out of it; the inner columns
//! they use are added to the subquery's output (and, for an aggregate subquery, to its
//! `GROUP BY`, which turns "an aggregate per outer row" into "an aggregate per key"). The
//! taken conjuncts then become the join's keys (`inner = outer` equalities) and residual
//! condition. A correlated `count(...)` returns 0 rather than NULL for keys without rows.
//!
//! A subquery join is attached to the single `FROM` relation it references (so
//! `o_orderkey IN (set)` filters `orders` before it is joined), except an `EXISTS` over a
//! subquery estimated larger than that relation, which goes above all relations (so the big
//! table probes a small, already joined outer side, as in TPC-H Q21).

use std::ops::ControlFlow;

use sqlparser::ast::{self, Query};

use super::from::{alias_parts, rename_columns};
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::logical::cardinality::{estimate_rows, selectivity};
use crate::logical::expr::{AggregateFunction, BinaryOp, Column, Expr, ScalarFunction};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;

/// True for a column reference into the outer query.
pub(super) fn is_outer(c: &Column) -> bool {
    c.relation
        .as_deref()
        .is_some_and(|r| hidden::strip_outer(r).is_some())
}

/// A reference to column `name` of the outer query.
fn outer_column(qualifier: Option<&str>, name: &str) -> Column {
    Column::qualified(Some(hidden::outer_relation(qualifier)), name)
}

/// The outer query's own reference for an outer reference.
fn strip_outer(c: &Column) -> Column {
    let relation = c
        .relation
        .as_deref()
        .and_then(hidden::strip_outer)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    Column::qualified(relation, c.name.clone())
}

fn has_outer(e: &Expr) -> bool {
    e.columns().iter().any(is_outer)
}

/// True for the relation of a planned subquery, whose columns `SELECT *` never shows.
pub(super) fn is_hidden_qualifier(q: Option<&str>) -> bool {
    q.is_some_and(|q| hidden::has_role(q, Role::Subquery) || hidden::has_role(q, Role::Domain))
}

/// What the outer query does with a subquery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SubqueryKind {
    Exists,
    In,
    Scalar,
    /// A `LATERAL` derived table: joined on its correlation, all its columns and rows kept.
    Lateral,
}

/// State of a subquery being planned.
#[derive(Debug)]
pub(super) struct SubqueryFrame {
    /// The schema outer references resolve against.
    pub(super) outer: PlanSchema,
    pub(super) kind: SubqueryKind,
    /// True until the subquery's top-level SELECT starts planning.
    pub(super) pending_top: bool,
    /// Correlated conjuncts taken out of the subquery's WHERE.
    pub(super) correlated: Vec<Expr>,
    /// Inner columns the correlated conjuncts use, and their output names.
    pub(super) corr_names: Vec<(Column, String)>,
    /// Plans of the outer query that the values of outer references can be drawn from (see
    /// [`SqlPlanner::join_domain`]).
    pub(super) sources: Vec<LogicalPlan>,
    /// True when the join with the outer query can take conditions other than `inner =
    /// outer` equalities as its residual condition (an `EXISTS` or `IN` conjunct of a WHERE).
    pub(super) residual_ok: bool,
    /// True when the subquery has a row for every outer value (a left-joined domain), so a
    /// missing count is not to be read as 0.
    pub(super) every_key: bool,
    /// True when the subquery has at most one row per correlation key (see
    /// `PlannedSubquery::unique`).
    pub(super) one_per_key: bool,
    /// True when the subquery's top query has a `LIMIT` (applied per correlation key).
    pub(super) limited: bool,
}

/// The query a subquery is nested in: the schema its outer references resolve against, and
/// the plans the values of those references can be drawn from.
#[derive(Clone, Copy)]
pub(super) struct Outer<'a> {
    pub(super) schema: &'a PlanSchema,
    pub(super) sources: &'a [LogicalPlan],
}

/// How a planned subquery joins its outer query.
pub(super) struct Correlation {
    /// (outer expression, subquery expression) key pairs.
    pub(super) on: Vec<(Expr, Expr)>,
    /// The other correlated conditions, over the columns of both.
    pub(super) residual: Vec<Expr>,
}

/// A subquery planned as the right side of a join.
struct SubqueryJoin {
    right: LogicalPlan,
    join_type: JoinType,
    /// (outer expression, subquery expression).
    on: Vec<(Expr, Expr)>,
    residual: Vec<Expr>,
    /// `[NOT] EXISTS` (attached where the sizes say; `IN` sets go to their relation).
    from_exists: bool,
    /// The condition this join serves, when it is one of several scalar subqueries of one
    /// conjunct (`x BETWEEN (q1) AND (q2)`): all of them go where that condition's columns
    /// are, so that the condition, applied after the last, sees every subquery's value.
    anchor: Option<Expr>,
}

struct PlannedSubquery {
    plan: LogicalPlan,
    alias: String,
    value: String,
    on: Vec<(Expr, Expr)>,
    residual: Vec<Expr>,
    count_like: bool,
    /// A mark join's subquery (left-joined; its marker says whether a row matched).
    mark: bool,
    /// At most one row per correlation key (an aggregate grouped by exactly those keys, a
    /// `LIMIT 1` per key, a mark's distinct keys), so a left join needs no check for more.
    unique: bool,
}

/// A subquery whose value an expression uses: joined (a single join; on its correlation keys
/// when it has some) before the expression is computed.
pub(super) struct ValueSubquery {
    /// The planned subquery (grouped by its correlation keys, if any).
    pub(super) plan: LogicalPlan,
    /// (outer expression, subquery expression) pairs to join on.
    pub(super) on: Vec<(Expr, Expr)>,
    /// For a correlated `count`: its value column, which reads 0 (not NULL) for a key without
    /// rows.
    pub(super) count_like: Option<Expr>,
    /// At most one row per key: joined by a left join rather than a single join.
    pub(super) unique: bool,
}

impl ValueSubquery {
    /// The join that attaches this subquery's value to the outer rows: a left join when each
    /// key has at most one row, else a single join (which fails on a second row, as SQL
    /// wants of a subquery used as a value).
    pub(super) fn join_type(&self) -> JoinType {
        if self.unique && !self.on.is_empty() {
            JoinType::Left
        } else {
            JoinType::Single
        }
    }
}

impl ValueSubquery {
    /// `e` with this subquery's count read as 0 where no row joined.
    pub(super) fn fix_count(&self, e: Expr) -> Result<Expr> {
        let Some(value) = &self.count_like else {
            return Ok(e);
        };
        e.transform_up(&mut |x| {
            Ok(if &x == value {
                Expr::Function {
                    func: ScalarFunction::Coalesce,
                    args: vec![x, Expr::Literal(ScalarValue::int64(0))],
                }
            } else {
                x
            })
        })
    }
}

/// Conjuncts of an AST expression.
pub(super) fn split_ast_conjunction(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_ast_conjunction(left, out);
            split_ast_conjunction(right, out);
        }
        ast::Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                ast::Expr::BinaryOp {
                    op: ast::BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_ast_conjunction(inner, out)
        }
        other => out.push(other.clone()),
    }
}

/// True when `e` contains a subquery (scalar, `EXISTS` or `IN`).
pub(super) fn contains_subquery(e: &ast::Expr) -> bool {
    ast::visit_expressions(e, |x| match x {
        ast::Expr::Subquery(_)
        | ast::Expr::Exists { .. }
        | ast::Expr::In {
            target: ast::InTarget::Subquery(_),
            ..
        } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// The disjuncts of `e` (`a OR (b OR c)` → `a, b, c`), through parentheses.
fn split_ast_disjunction(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Or,
            right,
        } => {
            split_ast_disjunction(left, out);
            split_ast_disjunction(right, out);
        }
        ast::Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                ast::Expr::BinaryOp {
                    op: ast::BinaryOperator::Or,
                    ..
                }
            ) =>
        {
            split_ast_disjunction(inner, out)
        }
        other => out.push(other.clone()),
    }
}

/// `(a AND b) OR (a AND c)` as `a` and `b OR c`: conjuncts common to every disjunct of an OR
/// come out of it (valid in SQL's three-valued logic too), so that a correlation or join
/// condition repeated in each branch is seen as one (TPC-DS 41). Other conjuncts are returned
/// as they are.
fn factor_disjunction(conjunct: ast::Expr, out: &mut Vec<ast::Expr>) {
    let mut disjuncts = Vec::new();
    split_ast_disjunction(&conjunct, &mut disjuncts);
    if disjuncts.len() < 2 {
        out.push(conjunct);
        return;
    }
    let branches: Vec<Vec<ast::Expr>> = disjuncts
        .iter()
        .map(|d| {
            let mut parts = Vec::new();
            split_ast_conjunction(d, &mut parts);
            parts
        })
        .collect();
    let text = |e: &ast::Expr| e.to_string();
    let common: Vec<ast::Expr> = branches[0]
        .iter()
        .filter(|c| {
            branches[1..]
                .iter()
                .all(|b| b.iter().any(|o| text(o) == text(c)))
        })
        .cloned()
        .collect();
    if common.is_empty() {
        out.push(conjunct);
        return;
    }
    let common_text: Vec<String> = common.iter().map(text).collect();
    let mut rest: Vec<ast::Expr> = Vec::with_capacity(branches.len());
    for branch in branches {
        let remaining: Vec<ast::Expr> = branch
            .into_iter()
            .filter(|c| !common_text.contains(&text(c)))
            .collect();
        let Some(joined) = remaining.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
            left: Box::new(a),
            op: ast::BinaryOperator::And,
            right: Box::new(b),
        }) else {
            // A branch that is only the common part makes the OR true once it holds.
            out.extend(common);
            return;
        };
        rest.push(ast::Expr::Nested(Box::new(joined)));
    }
    out.extend(common);
    let or = rest.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
        left: Box::new(a),
        op: ast::BinaryOperator::Or,
        right: Box::new(b),
    });
    out.extend(or.map(|or| ast::Expr::Nested(Box::new(or))));
}

fn is_count_query(query: &Query) -> bool {
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    // Grouped, an empty input gives no row (NULL), not a count of 0.
    if !matches!(&select.group_by, ast::GroupByExpr::Expressions(keys, _) if keys.is_empty()) {
        return false;
    }
    let first = match select.projection.first() {
        Some(ast::SelectItem::UnnamedExpr(e))
        | Some(ast::SelectItem::ExprWithAlias { expr: e, .. }) => e,
        _ => return false,
    };
    matches!(first, ast::Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("count"))
}

/// True when `e` is a comparison with the subquery value `column` on one side, so a NULL
/// value (no matching row) makes it not TRUE and the join may be inner.
fn rejects_null_of(e: &Expr, alias: &str) -> bool {
    fn is_value(e: &Expr, alias: &str) -> bool {
        match e {
            Expr::Column(c) => c.relation.as_deref() == Some(alias),
            Expr::Cast { expr, .. } => is_value(expr, alias),
            _ => false,
        }
    }
    match e {
        Expr::Binary { left, op, right } if op.is_comparison() => {
            is_value(left, alias) || is_value(right, alias)
        }
        _ => false,
    }
}

impl SqlPlanner<'_> {
    /// Plan a subquery against the outer schema `outer`.
    /// Plan `query` as a subquery of `outer`: its correlated conjuncts are left in the
    /// returned frame.
    fn plan_correlated(
        &mut self,
        query: &Query,
        outer: Outer<'_>,
        kind: SubqueryKind,
        residual_ok: bool,
    ) -> Result<(LogicalPlan, SubqueryFrame)> {
        self.frames.push(SubqueryFrame {
            outer: outer.schema.clone(),
            kind,
            pending_top: true,
            correlated: Vec::new(),
            corr_names: Vec::new(),
            sources: outer.sources.to_vec(),
            residual_ok,
            every_key: false,
            one_per_key: false,
            limited: false,
        });
        // A refusal from deep inside (the domain join, the correlation) names the subquery's
        // position when it has none of its own.
        let planned = self.plan_query(query).map_err(|e| match e {
            EngineError::NotSupported(what) if !what.contains("(at line ") => {
                not_supported(what, query)
            }
            other => other,
        });
        let frame = self.frames.pop().expect("pushed above");
        Ok((planned?, frame))
    }

    /// Plan a subquery against the outer schema `outer`.
    fn plan_subquery(
        &mut self,
        query: &Query,
        outer: Outer<'_>,
        kind: SubqueryKind,
        residual_ok: bool,
    ) -> Result<PlannedSubquery> {
        let (plan, frame) = self.plan_correlated(query, outer, kind, residual_ok)?;
        self.next_subquery += 1;
        let alias = hidden::name(Role::Subquery, self.next_subquery);
        // The value column gets a fixed name, so it never clashes with an outer column
        // (`HAVING count(*) > (SELECT count(*) ...)`).
        let plan = if kind != SubqueryKind::Exists && !plan.schema().is_empty() {
            rename_columns(plan, vec![hidden::name(Role::SubqueryValue, 0)])?
        } else {
            plan
        };
        let plan = LogicalPlan::alias(plan, alias.clone());
        let value = plan.schema().field(0).name().to_string();
        let visible = plan.schema().len() - frame.corr_names.len();
        if kind != SubqueryKind::Exists && visible != 1 {
            return Err(EngineError::Plan(format!(
                "subquery must return exactly one column, it returns {visible}"
            )));
        }
        let Correlation { on, residual } = correlation_conditions(&frame, &alias)?;
        Ok(PlannedSubquery {
            plan,
            alias,
            value,
            on,
            residual,
            count_like: is_count_query(query) && !frame.every_key,
            mark: false,
            unique: frame.one_per_key,
        })
    }

    /// A `LATERAL` derived table over `left` (the FROM items before it): its plan, named by
    /// `alias`, and the conditions to join it with `left` on (keys and residual).
    pub(super) fn plan_lateral(
        &mut self,
        left: &LogicalPlan,
        sources: &[LogicalPlan],
        query: &Query,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(LogicalPlan, Correlation)> {
        let outer = Outer {
            schema: left.schema(),
            sources,
        };
        let (mut plan, frame) = self.plan_correlated(query, outer, SubqueryKind::Lateral, true)?;
        if let Some(names) = plan.distinct_output_names() {
            plan = plan.rename_outputs(&names)?;
        }
        let (name, columns) = match alias {
            Some(a) => alias_parts(a)?,
            None => ("subquery".to_string(), vec![]),
        };
        let visible = plan.schema().len() - frame.corr_names.len();
        if columns.len() > visible {
            return Err(EngineError::Plan(format!(
                "{} column aliases given for a relation with {visible} columns",
                columns.len()
            )));
        }
        if !columns.is_empty() {
            plan = rename_columns(plan, columns)?;
        }
        let plan = LogicalPlan::alias(plan, name.clone());
        let correlation = correlation_conditions(&frame, &name)?;
        Ok((plan, correlation))
    }

    /// Replace scalar subqueries in `e` by references to their (joined) results.
    fn replace_scalar_subqueries(
        &mut self,
        e: &ast::Expr,
        outer: Outer<'_>,
        out: &mut Vec<PlannedSubquery>,
    ) -> Result<ast::Expr> {
        use ast::Expr as A;
        let mut rec = |x: &ast::Expr, out: &mut Vec<PlannedSubquery>| -> Result<Box<ast::Expr>> {
            Ok(Box::new(self.replace_scalar_subqueries(x, outer, out)?))
        };
        Ok(match e {
            A::Subquery(q) => {
                let planned = self.plan_subquery(q, outer, SubqueryKind::Scalar, false)?;
                let reference = A::CompoundIdentifier(vec![
                    ast::Ident::with_quote('"', planned.alias.clone()),
                    ast::Ident::with_quote('"', planned.value.clone()),
                ]);
                out.push(planned);
                reference
            }
            A::BinaryOp { left, op, right } => A::BinaryOp {
                left: rec(left, out)?,
                op: op.clone(),
                right: rec(right, out)?,
            },
            A::UnaryOp { op, expr } => A::UnaryOp {
                op: *op,
                expr: rec(expr, out)?,
            },
            A::Nested(inner) => A::Nested(rec(inner, out)?),
            A::Between {
                expr,
                negated,
                low,
                high,
            } => A::Between {
                expr: rec(expr, out)?,
                negated: *negated,
                low: rec(low, out)?,
                high: rec(high, out)?,
            },
            A::Cast {
                kind,
                expr,
                data_type,
                format,
            } => A::Cast {
                kind: kind.clone(),
                expr: rec(expr, out)?,
                data_type: data_type.clone(),
                format: format.clone(),
            },
            A::IsNull(inner) => A::IsNull(rec(inner, out)?),
            A::IsNotNull(inner) => A::IsNotNull(rec(inner, out)?),
            A::Case {
                case_token,
                end_token,
                operand,
                conditions,
                else_result,
            } => A::Case {
                case_token: case_token.clone(),
                end_token: end_token.clone(),
                operand: operand.as_ref().map(|o| rec(o, out)).transpose()?,
                conditions: conditions
                    .iter()
                    .map(|c| {
                        Ok(ast::CaseWhen {
                            condition: *rec(&c.condition, out)?,
                            result: *rec(&c.result, out)?,
                        })
                    })
                    .collect::<Result<_>>()?,
                else_result: else_result.as_ref().map(|e| rec(e, out)).transpose()?,
            },
            A::Exists { subquery, negated } => {
                let planned = self.plan_subquery(subquery, outer, SubqueryKind::Exists, false)?;
                let (planned, reference) = exists_mark(planned, e)?;
                out.push(planned);
                negate_if(reference, *negated)
            }
            A::In {
                expr,
                target: ast::InTarget::Subquery(subquery),
                negated,
                global,
            } => {
                if *global {
                    return Err(not_supported("GLOBAL IN", e));
                }
                let probe = self.sql_to_expr(expr, outer.schema)?;
                if has_outer(&probe) {
                    return Err(not_supported(
                        "outer references on the left of IN (subquery)",
                        e,
                    ));
                }
                let planned = self.plan_subquery(subquery, outer, SubqueryKind::In, false)?;
                let reference = self.in_mark(planned, probe, expr, e, out)?;
                negate_if(reference, *negated)
            }
            A::Function(function) => {
                let mut function = function.clone();
                if let ast::FunctionArguments::List(list) = &mut function.args {
                    for arg in &mut list.args {
                        if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg {
                            *e = *rec(e, out)?;
                        }
                    }
                }
                A::Function(function)
            }
            other => other.clone(),
        })
    }

    /// `probe IN (subquery)` inside an expression (`a OR x IN (q)`), as a mark join: the
    /// subquery's distinct values left-joined on `probe = value` with a marker, and their
    /// statistics (rows, non-NULL values) single-joined, so the result has SQL's three values:
    /// TRUE on a match; FALSE for an empty subquery; NULL when `probe` is NULL or the values
    /// hold a NULL; FALSE otherwise. Pushes both joins to `out`; returns the expression.
    fn in_mark(
        &mut self,
        planned: PlannedSubquery,
        probe: Expr,
        probe_ast: &ast::Expr,
        at: &ast::Expr,
        out: &mut Vec<PlannedSubquery>,
    ) -> Result<ast::Expr> {
        if !planned.residual.is_empty() {
            return Err(not_supported(
                "IN (subquery) correlated by conditions other than equalities, inside an \
                 expression; use EXISTS",
                at,
            ));
        }
        let value = Expr::Column(Column::qualified(
            Some(planned.alias.clone()),
            planned.value.clone(),
        ));
        // Correlated by equalities: the set and its statistics are per correlation key.
        let key_names: Vec<String> = (0..planned.on.len())
            .map(|i| hidden::name(Role::Correlation, i))
            .collect();
        let keys: Vec<Expr> = planned
            .on
            .iter()
            .zip(&key_names)
            .map(|((_, inner), name)| inner.clone().alias(name.clone()))
            .collect();
        let key_on = |alias: &str| -> Vec<(Expr, Expr)> {
            planned
                .on
                .iter()
                .zip(&key_names)
                .map(|((outer, _), name)| {
                    (
                        outer.clone(),
                        Expr::Column(Column::qualified(Some(alias.to_string()), name.clone())),
                    )
                })
                .collect()
        };
        let mark = hidden::name(Role::Mark, 0);
        let (rows, values) = (hidden::name(Role::Mark, 1), hidden::name(Role::Mark, 2));
        // The statistics, under an alias of their own.
        self.next_subquery += 1;
        let stats_alias = hidden::name(Role::Subquery, self.next_subquery);
        let count = |args: Vec<Expr>, name: &str| {
            Expr::Aggregate {
                func: AggregateFunction::Count,
                args,
                distinct: false,
            }
            .alias(name)
        };
        let stats = LogicalPlan::aggregate(
            planned.plan.clone(),
            keys.clone(),
            vec![count(vec![], &rows), count(vec![value.clone()], &values)],
        )?;
        let stats = LogicalPlan::alias(stats, stats_alias.clone());
        let mut distinct_keys = vec![value.clone()];
        distinct_keys.extend(keys);
        let distinct = LogicalPlan::aggregate(planned.plan, distinct_keys, vec![])?;
        let mut columns = distinct.schema().column_exprs();
        columns.push(Expr::Literal(ScalarValue::boolean(true)).alias(mark.clone()));
        let marked = LogicalPlan::project(distinct, columns)?;
        let mut on = vec![(probe, value)];
        on.extend(key_on(&planned.alias));
        out.push(PlannedSubquery {
            plan: LogicalPlan::alias(marked, planned.alias.clone()),
            alias: planned.alias.clone(),
            value: mark.clone(),
            on,
            residual: vec![],
            count_like: false,
            mark: true,
            unique: true,
        });
        out.push(PlannedSubquery {
            plan: stats,
            alias: stats_alias.clone(),
            value: rows.clone(),
            on: key_on(&stats_alias),
            residual: vec![],
            count_like: false,
            mark: true,
            unique: true,
        });
        let column = |alias: &str, name: &str| {
            ast::Expr::CompoundIdentifier(vec![
                ast::Ident::with_quote('"', alias),
                ast::Ident::with_quote('"', name),
            ])
        };
        let boolean = |b: bool| ast::Expr::value(ast::Value::Boolean(b));
        let number = |n: &str| ast::Expr::value(ast::Value::Number(n.into(), false));
        let binary =
            |left: ast::Expr, op: ast::BinaryOperator, right: ast::Expr| ast::Expr::BinaryOp {
                left: Box::new(left),
                op,
                right: Box::new(right),
            };
        let when = |condition: ast::Expr, result: ast::Expr| ast::CaseWhen { condition, result };
        Ok(ast::Expr::Case {
            case_token: ast::helpers::attached_token::AttachedToken::empty(),
            end_token: ast::helpers::attached_token::AttachedToken::empty(),
            operand: None,
            conditions: vec![
                when(
                    ast::Expr::IsNotNull(Box::new(column(&planned.alias, &mark))),
                    boolean(true),
                ),
                // No rows (for a correlated set, no statistics row for the key either).
                when(
                    binary(
                        ast::Expr::IsNull(Box::new(column(&stats_alias, &rows))),
                        ast::BinaryOperator::Or,
                        binary(
                            column(&stats_alias, &rows),
                            ast::BinaryOperator::Eq,
                            number("0"),
                        ),
                    ),
                    boolean(false),
                ),
                when(
                    binary(
                        ast::Expr::IsNull(Box::new(ast::Expr::Nested(Box::new(probe_ast.clone())))),
                        ast::BinaryOperator::Or,
                        binary(
                            column(&stats_alias, &values),
                            ast::BinaryOperator::Lt,
                            column(&stats_alias, &rows),
                        ),
                    ),
                    ast::Expr::value(ast::Value::Null),
                ),
            ],
            else_result: Some(Box::new(boolean(false))),
        })
    }

    /// Plan a SELECT's FROM relations and WHERE clause, turning subqueries into joins.
    pub(super) fn plan_where(
        &mut self,
        mut relations: Vec<LogicalPlan>,
        selection: Option<&ast::Expr>,
        subquery_top: bool,
    ) -> Result<LogicalPlan> {
        let combined = relations[1..]
            .iter()
            .fold(relations[0].schema().clone(), |acc, r| acc.join(r.schema()));
        let outer = Outer {
            schema: &combined,
            sources: &relations,
        };
        let mut plain: Vec<Expr> = Vec::new();
        let mut joins: Vec<(SubqueryJoin, Option<Expr>)> = Vec::new();
        let mut conjuncts = Vec::new();
        if let Some(selection) = selection {
            let mut split = Vec::new();
            split_ast_conjunction(selection, &mut split);
            for conjunct in split {
                factor_disjunction(conjunct, &mut conjuncts);
            }
        }
        for conjunct in &conjuncts {
            let (negated, core) = match conjunct {
                ast::Expr::UnaryOp {
                    op: ast::UnaryOperator::Not,
                    expr,
                } => match expr.as_ref() {
                    ast::Expr::Nested(inner) => (true, inner.as_ref()),
                    other => (true, other),
                },
                other => (false, other),
            };
            match core {
                ast::Expr::Exists {
                    subquery,
                    negated: n,
                } => {
                    let sq = self.plan_subquery(subquery, outer, SubqueryKind::Exists, true)?;
                    let join_type = if negated ^ n {
                        JoinType::Anti
                    } else {
                        JoinType::Semi
                    };
                    joins.push((
                        SubqueryJoin {
                            right: sq.plan,
                            join_type,
                            on: sq.on,
                            residual: sq.residual,
                            from_exists: true,
                            anchor: None,
                        },
                        None,
                    ));
                    continue;
                }
                ast::Expr::In {
                    expr,
                    target: ast::InTarget::Subquery(subquery),
                    negated: n,
                    global,
                } => {
                    if *global {
                        return Err(not_supported("GLOBAL IN", core));
                    }
                    let probe = self.sql_to_expr(expr, &combined)?;
                    if has_outer(&probe) {
                        return Err(EngineError::NotSupported(
                            "outer references on the left of IN (subquery)".into(),
                        ));
                    }
                    let sq = self.plan_subquery(subquery, outer, SubqueryKind::In, true)?;
                    let value = Expr::Column(Column::qualified(Some(sq.alias.clone()), sq.value));
                    let mut on = vec![(probe, value)];
                    let negated = negated ^ n;
                    if negated && !(sq.on.is_empty() && sq.residual.is_empty()) {
                        // A correlated NOT IN is planned as the negation of an IN mark (which
                        // has SQL's three values) by the expression path below.
                    } else {
                        on.extend(sq.on);
                        joins.push((
                            SubqueryJoin {
                                right: sq.plan,
                                join_type: if negated {
                                    JoinType::AntiNullAware
                                } else {
                                    JoinType::Semi
                                },
                                on,
                                residual: sq.residual,
                                from_exists: false,
                                anchor: None,
                            },
                            None,
                        ));
                        continue;
                    }
                }
                _ => {}
            }
            let mut scalars = Vec::new();
            let rewritten = self.replace_scalar_subqueries(conjunct, outer, &mut scalars)?;
            if scalars.is_empty() {
                let e = self.sql_to_expr(conjunct, &combined)?;
                if has_outer(&e) {
                    if subquery_top {
                        self.frames
                            .last_mut()
                            .expect("subquery frame")
                            .correlated
                            .push(e);
                        continue;
                    }
                    return Err(EngineError::NotSupported(format!(
                        "correlated reference in a nested query: {conjunct}"
                    )));
                }
                plain.push(e);
                continue;
            }
            let schema = scalars
                .iter()
                .fold(combined.clone(), |acc, s| acc.join(s.plan.schema()));
            let mut e = self.sql_to_expr(&rewritten, &schema)?;
            if has_outer(&e) {
                return Err(EngineError::NotSupported(format!(
                    "correlated reference next to a subquery: {conjunct}"
                )));
            }
            let n = scalars.len();
            for (k, sq) in scalars.into_iter().enumerate() {
                if !sq.residual.is_empty() {
                    return Err(EngineError::NotSupported(
                        "a scalar subquery correlated by something other than equalities".into(),
                    ));
                }
                let value = Expr::Column(Column::qualified(Some(sq.alias.clone()), sq.value));
                let join_type = if sq.on.is_empty() || !sq.unique {
                    // Uncorrelated, or possibly several rows per key: more than one row for
                    // an outer row is an error.
                    JoinType::Single
                } else if sq.mark {
                    // Every outer row stays; the marker says whether it matched.
                    JoinType::Left
                } else if sq.count_like {
                    // No row for a key means a count of 0, not NULL.
                    let zero = Expr::Literal(ScalarValue::int64(0));
                    e = e.transform_up(&mut |x| {
                        Ok(if x == value {
                            Expr::Function {
                                func: ScalarFunction::Coalesce,
                                args: vec![x, zero.clone()],
                            }
                        } else {
                            x
                        })
                    })?;
                    JoinType::Left
                } else if n == 1 && rejects_null_of(&e, &sq.alias) {
                    JoinType::Inner
                } else {
                    JoinType::Left
                };
                let filter = (k == n - 1).then(|| e.clone());
                joins.push((
                    SubqueryJoin {
                        right: sq.plan,
                        join_type,
                        on: sq.on,
                        residual: vec![],
                        from_exists: false,
                        anchor: Some(e.clone()),
                    },
                    filter,
                ));
            }
        }

        // Estimated size of each relation after its own conditions.
        let estimates: Vec<f64> = relations
            .iter()
            .map(|r| {
                let own: f64 = plain
                    .iter()
                    .filter(|c| c.references_only(r.schema()))
                    .map(selectivity)
                    .product();
                estimate_rows(r) * own
            })
            .collect();

        let mut above: Vec<(SubqueryJoin, Option<Expr>)> = Vec::new();
        for (join, filter) in joins {
            // Outer columns the join and its follow-up filter need.
            let mut needed: Vec<Expr> = join.on.iter().map(|(o, _)| o.clone()).collect();
            needed.extend(join.residual.iter().cloned());
            needed.extend(filter.iter().cloned());
            needed.extend(join.anchor.iter().cloned());
            let outer_columns: Vec<Column> = needed
                .iter()
                .flat_map(|e| e.columns())
                .filter(|c| !is_hidden_qualifier(c.relation.as_deref()))
                .collect();
            let target = (0..relations.len()).find(|&i| {
                outer_columns.iter().all(|c| {
                    matches!(
                        relations[i]
                            .schema()
                            .try_index_of(c.relation.as_deref(), &c.name),
                        Ok(Some(_))
                    )
                })
            });
            let attach_here = match target {
                Some(i) if relations.len() == 1 => Some(i),
                Some(i) if join.from_exists => {
                    (estimate_rows(&join.right) < estimates[i]).then_some(i)
                }
                Some(i) => Some(i),
                None => None,
            };
            match attach_here {
                Some(i) => {
                    let rel = std::mem::replace(&mut relations[i], LogicalPlan::empty_row());
                    relations[i] = attach(rel, join, filter)?;
                }
                None => above.push((join, filter)),
            }
        }

        let mut iter = relations.into_iter();
        let mut plan = iter
            .next()
            .ok_or_else(|| EngineError::Internal("a FROM clause without relations".into()))?;
        for r in iter {
            plan = LogicalPlan::join(plan, r, JoinType::Inner, vec![], None)?;
        }
        if let Some(p) = Expr::conjunction(plain) {
            plan = LogicalPlan::filter(plan, p)?;
        }
        for (join, filter) in above {
            plan = attach(plan, join, filter)?;
        }
        Ok(plan)
    }

    /// The scalar subqueries of `e` (and `EXISTS`/`IN` ones inside it) in the select list or
    /// HAVING, planned, with `e` rewritten to refer to their values. A correlated subquery is
    /// grouped by its correlation keys, to be left-joined on them.
    pub(super) fn value_subqueries(
        &mut self,
        e: &ast::Expr,
        outer: Outer<'_>,
        clause: &str,
    ) -> Result<(ast::Expr, Vec<ValueSubquery>)> {
        let mut scalars = Vec::new();
        let rewritten = self.replace_scalar_subqueries(e, outer, &mut scalars)?;
        let mut plans = Vec::new();
        for sq in scalars {
            if !sq.residual.is_empty() {
                return Err(not_supported(
                    format!("subqueries in {clause} correlated by something other than equalities"),
                    e,
                ));
            }
            let value = Expr::Column(Column::qualified(Some(sq.alias.clone()), sq.value));
            plans.push(ValueSubquery {
                plan: sq.plan,
                count_like: (sq.count_like && !sq.on.is_empty()).then_some(value),
                unique: sq.unique,
                on: sq.on,
            });
        }
        Ok((rewritten, plans))
    }

    /// Resolve a name that is not in the local schema against the enclosing query, if any.
    pub(super) fn resolve_outer(&self, qualifier: Option<&str>, name: &str) -> Option<Column> {
        let frame = self.frames.last()?;
        let index = frame.outer.try_index_of(qualifier, name).ok()??;
        let f = frame.outer.field(index);
        Some(outer_column(f.qualifier.as_deref(), f.name()))
    }

    /// At the top SELECT of a correlated subquery: export the inner columns its correlated
    /// conjuncts use as extra output columns. Returns them (to be grouped by when the
    /// subquery aggregates).
    pub(super) fn export_correlated_columns(&mut self, select_exprs: &mut Vec<Expr>) -> Vec<Expr> {
        let Some(frame) = self.frames.last_mut() else {
            return vec![];
        };
        let mut inner: Vec<Column> = Vec::new();
        for c in &frame.correlated {
            for col in c.columns() {
                if !is_outer(&col) && !inner.contains(&col) {
                    inner.push(col);
                }
            }
        }
        let mut keys = Vec::new();
        for (i, col) in inner.into_iter().enumerate() {
            let name = hidden::name(Role::Correlation, i);
            select_exprs.push(Expr::Column(col.clone()).alias(name.clone()));
            keys.push(Expr::Column(col.clone()));
            frame.corr_names.push((col, name));
        }
        keys
    }

    /// At the top SELECT of a subquery correlated by conditions other than `inner = outer`
    /// equalities (`l_quantity > o_totalprice / 1000`, `o_custkey < c_custkey`), where the join
    /// with the outer query cannot apply them as its residual condition (a scalar subquery, an
    /// aggregate, an `EXISTS` inside an expression): join the subquery's input `plan` with the
    /// *domain* of the outer references (their distinct values in the outer query) on those
    /// conditions, and correlate by equalities with the domain's columns instead. The subquery
    /// is then computed once per distinct outer value (an aggregate grouped by the domain),
    /// never once per outer row.
    ///
    /// The equality with the outer query is NULL-safe where it has to be: when a condition
    /// could hold for a NULL outer value (`o.x IS NULL OR ...`) and the column is nullable, the
    /// key is the pair (`x IS NULL`, `coalesce(x, constant)`).
    ///
    /// A `LATERAL` subquery that aggregates without `GROUP BY` has one row for every outer
    /// row, rows or not: there the domain is left-joined (so each outer value keeps a group)
    /// and the returned marker column is NULL on the rows the join added, which every
    /// aggregate must skip ([`skip_unmatched`]).
    ///
    /// The same holds for a scalar or `IN` subquery that aggregates without `GROUP BY` when
    /// its value over no rows is not simply NULL (`count(*) + 1`, `coalesce(sum(x), 0)`, or
    /// with a `HAVING`): `one_row` asks for it.
    pub(super) fn join_domain(
        &mut self,
        plan: LogicalPlan,
        aggregating: bool,
        one_row: bool,
    ) -> Result<(LogicalPlan, Option<Expr>)> {
        let Some(frame) = self.frames.last_mut() else {
            return Ok((plan, None));
        };
        if frame.correlated.is_empty() {
            return Ok((plan, None));
        }
        let keys_only = frame.correlated.iter().all(is_key_equality);
        // A residual condition on the join only filters the subquery's rows; an aggregate or
        // a LIMIT must see the rows the condition selects, so they need the domain.
        let needed =
            one_row || (!keys_only && (aggregating || frame.limited || !frame.residual_ok));
        if !needed {
            return Ok((plan, None));
        }
        frame.every_key = one_row;
        let frame = &*frame;
        let mut outer_columns: Vec<Column> = Vec::new();
        for c in &frame.correlated {
            for col in c.columns() {
                if is_outer(&col) && !outer_columns.contains(&col) {
                    outer_columns.push(col);
                }
            }
        }
        let stripped: Vec<Column> = outer_columns.iter().map(strip_outer).collect();
        let resolves = |schema: &PlanSchema, c: &Column| {
            matches!(
                schema.try_index_of(c.relation.as_deref(), &c.name),
                Ok(Some(_))
            )
        };
        let Some(source) = frame
            .sources
            .iter()
            .find(|s| stripped.iter().all(|c| resolves(s.schema(), c)))
            .cloned()
        else {
            return Err(EngineError::NotSupported(
                "a subquery correlated by conditions other than equalities on columns of more \
                 than one FROM relation"
                    .into(),
            ));
        };
        self.next_subquery += 1;
        let alias = hidden::name(Role::Domain, self.next_subquery);
        let names: Vec<String> = (0..stripped.len())
            .map(|i| hidden::name(Role::Domain, i))
            .collect();
        let source_schema = source.schema().clone();
        let projected = LogicalPlan::project(
            source,
            stripped
                .iter()
                .zip(&names)
                .map(|(c, n)| Expr::Column(c.clone()).alias(n.clone()))
                .collect(),
        )?;
        let keys = names
            .iter()
            .map(|n| Expr::Column(Column::new(n.clone())))
            .collect();
        let domain = LogicalPlan::alias(LogicalPlan::aggregate(projected, keys, vec![])?, &alias);
        let domain_column =
            |i: usize| Expr::Column(Column::qualified(Some(alias.clone()), names[i].clone()));

        let no_frame = || EngineError::Internal("a domain join outside a subquery".into());
        let correlated =
            std::mem::take(&mut self.frames.last_mut().ok_or_else(no_frame)?.correlated);
        let mut on = Vec::new();
        let mut residual = Vec::new();
        for c in &correlated {
            let rewritten = c.clone().transform_up(&mut |n| {
                Ok(match n {
                    Expr::Column(col) if is_outer(&col) => {
                        let i = outer_columns
                            .iter()
                            .position(|o| *o == col)
                            .ok_or_else(|| {
                                EngineError::Internal(format!(
                                    "outer column {col} not in the domain"
                                ))
                            })?;
                        domain_column(i)
                    }
                    other => other,
                })
            })?;
            let from_domain = |e: &Expr| {
                !e.columns().is_empty()
                    && e.columns()
                        .iter()
                        .all(|c| c.relation.as_deref() == Some(alias.as_str()))
            };
            let from_input = |e: &Expr| e.references_only(plan.schema()) && !e.columns().is_empty();
            // `input expression = domain column`, either way round, is a key.
            let key = match &rewritten {
                Expr::Binary {
                    left,
                    op: BinaryOp::Eq,
                    right,
                } => [(left, right), (right, left)]
                    .into_iter()
                    .find(|(input, domain)| from_input(input) && from_domain(domain))
                    .map(|(input, domain)| ((**input).clone(), (**domain).clone())),
                _ => None,
            };
            match key {
                Some(pair) => on.push(pair),
                None => residual.push(rewritten),
            }
        }
        let (joined, marker) = if one_row {
            let marker = hidden::name(Role::Mark, 2);
            let mut columns = plan.schema().column_exprs();
            columns.push(Expr::Literal(ScalarValue::boolean(true)).alias(marker.clone()));
            let marked = LogicalPlan::project(plan, columns)?;
            let on = on
                .into_iter()
                .map(|(input, domain)| (domain, input))
                .collect();
            let joined = LogicalPlan::join(
                domain,
                marked,
                JoinType::Left,
                on,
                Expr::conjunction(residual),
            )?;
            (joined, Some(Expr::Column(Column::new(marker))))
        } else {
            let joined = LogicalPlan::join(
                plan,
                domain,
                JoinType::Inner,
                on,
                Expr::conjunction(residual),
            )?;
            (joined, None)
        };

        // The subquery is now correlated by `domain column = outer column` only.
        let mut keys = Vec::new();
        for (i, (outer, source_column)) in outer_columns.iter().zip(&stripped).enumerate() {
            let nullable = source_schema
                .try_index_of(source_column.relation.as_deref(), &source_column.name)?
                .is_none_or(|j| source_schema.field(j).field.is_nullable());
            let null_rejected = correlated.iter().any(|c| rejects_null_in(c, outer));
            let inner = domain_column(i);
            let outer = Expr::Column(outer.clone());
            // A lateral aggregate has a row for every outer row: a NULL outer value must find
            // its group even when no inner row can match it.
            if !nullable || (null_rejected && !one_row) {
                keys.push(inner.binary(BinaryOp::Eq, outer));
                continue;
            }
            let data_type = Expr::Column(source_column.clone()).data_type(&source_schema)?;
            let constant = ScalarValue::int64(0).cast_to(&data_type).map_err(|_| {
                EngineError::NotSupported(format!(
                    "a subquery correlated on {outer} (of type {}) by a condition that can \
                     hold for NULL",
                    crate::logical::types::sql_type_name(&data_type)
                ))
            })?;
            let is_null = |e: &Expr| Expr::IsNull {
                expr: Box::new(e.clone()),
                negated: false,
            };
            let filled = |e: &Expr| Expr::Function {
                func: ScalarFunction::Coalesce,
                args: vec![e.clone(), Expr::Literal(constant.clone())],
            };
            keys.push(is_null(&inner).binary(BinaryOp::Eq, is_null(&outer)));
            keys.push(filled(&inner).binary(BinaryOp::Eq, filled(&outer)));
        }
        self.frames.last_mut().ok_or_else(no_frame)?.correlated = keys;
        Ok((joined, marker))
    }

    /// The kind of the subquery whose top SELECT is being planned.
    pub(super) fn current_kind(&self) -> Option<SubqueryKind> {
        self.frames.last().map(|f| f.kind)
    }

    /// True when the current subquery frame has correlated conjuncts.
    pub(super) fn has_correlation(&self) -> bool {
        self.frames.last().is_some_and(|f| !f.correlated.is_empty())
    }
}

/// The conditions joining a planned subquery (named `alias`) with its outer query: `(outer,
/// inner)` key pairs from the `inner = outer` equalities of `frame`, and the other correlated
/// conjuncts as a residual condition (outer references as the outer query's columns, inner
/// columns as the subquery's exported ones).
fn correlation_conditions(frame: &SubqueryFrame, alias: &str) -> Result<Correlation> {
    let rewrite = |e: Expr| -> Result<Expr> {
        e.transform_up(&mut |n| match n {
            Expr::Column(c) if is_outer(&c) => Ok(Expr::Column(strip_outer(&c))),
            Expr::Column(c) => {
                let name = frame
                    .corr_names
                    .iter()
                    .find(|(k, _)| *k == c)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| {
                        EngineError::Internal(format!("correlated column {c} not exported"))
                    })?;
                Ok(Expr::Column(Column::qualified(
                    Some(alias.to_string()),
                    name,
                )))
            }
            other => Ok(other),
        })
    };
    let mut on = Vec::new();
    let mut residual = Vec::new();
    for c in &frame.correlated {
        if let Expr::Binary {
            left,
            op: BinaryOp::Eq,
            right,
        } = c
        {
            let only_outer = |e: &Expr| !e.columns().is_empty() && e.columns().iter().all(is_outer);
            let only_inner = |e: &Expr| !e.columns().is_empty() && !has_outer(e);
            if only_outer(left) && only_inner(right) {
                on.push((rewrite((**left).clone())?, rewrite((**right).clone())?));
                continue;
            }
            if only_inner(left) && only_outer(right) {
                on.push((rewrite((**right).clone())?, rewrite((**left).clone())?));
                continue;
            }
        }
        residual.push(rewrite(c.clone())?);
    }
    Ok(Correlation { on, residual })
}

/// True when select item `e` of an aggregation without `GROUP BY` is NULL over no rows (so a
/// correlated subquery may leave out the outer values without rows): a strict expression of
/// aggregates other than `count`.
pub(super) fn null_on_empty(e: &Expr) -> bool {
    match e {
        Expr::Alias { expr, .. } | Expr::Cast { expr, .. } | Expr::Negative(expr) => {
            null_on_empty(expr)
        }
        Expr::Aggregate { func, .. } => *func != AggregateFunction::Count,
        Expr::Binary { left, op, right } => {
            !matches!(op, BinaryOp::And | BinaryOp::Or)
                && (null_on_empty(left) || null_on_empty(right))
        }
        _ => false,
    }
}

/// True for a select item that is a bare `count(...)` (read as 0 where a correlated
/// subquery's key has no rows).
pub(super) fn is_bare_count(e: &Expr) -> bool {
    match e {
        Expr::Alias { expr, .. } => is_bare_count(expr),
        Expr::Aggregate { func, .. } => *func == AggregateFunction::Count,
        _ => false,
    }
}

/// Aggregate calls in `e` with every row where `marker` is NULL left out (as `FILTER (WHERE
/// marker IS NOT NULL)` would): the rows a left-joined domain added for outer values without
/// rows of their own.
pub(super) fn skip_unmatched(e: Expr, marker: &Expr) -> Result<Expr> {
    e.transform_up(&mut |n| match n {
        Expr::Aggregate {
            func,
            mut args,
            distinct,
        } => {
            if matches!(func, AggregateFunction::First | AggregateFunction::Last) {
                return Err(EngineError::NotSupported(
                    "first() and last() in a LATERAL subquery correlated with its outer query"
                        .into(),
                ));
            }
            let value = if args.is_empty() {
                Expr::Literal(ScalarValue::int64(1))
            } else {
                args.remove(0)
            };
            let guarded = Expr::Case {
                operand: None,
                when_then: vec![(
                    Expr::IsNull {
                        expr: Box::new(marker.clone()),
                        negated: true,
                    },
                    value,
                )],
                otherwise: None,
            };
            args.insert(0, guarded);
            Ok(Expr::Aggregate {
                func,
                args,
                distinct,
            })
        }
        other => Ok(other),
    })
}

/// True for a correlated conjunct `inner = outer` (each side referring to one query only),
/// which becomes a key of the join with the outer query.
fn is_key_equality(c: &Expr) -> bool {
    let only_outer = |e: &Expr| !e.columns().is_empty() && e.columns().iter().all(is_outer);
    let only_inner = |e: &Expr| !e.columns().is_empty() && !has_outer(e);
    matches!(c, Expr::Binary { left, op: BinaryOp::Eq, right }
        if (only_outer(left) && only_inner(right)) || (only_inner(left) && only_outer(right)))
}

/// True when conjunct `c` uses `column` and cannot be TRUE where `column` is NULL: it is built
/// only of comparisons, arithmetic, casts and negation, each NULL for a NULL operand.
fn rejects_null_in(c: &Expr, column: &Column) -> bool {
    fn strict(e: &Expr) -> bool {
        match e {
            Expr::Column(_) | Expr::Literal(_) => true,
            Expr::Binary { left, op, right } => {
                !matches!(op, BinaryOp::And | BinaryOp::Or) && strict(left) && strict(right)
            }
            Expr::Cast { expr, .. } | Expr::Negative(expr) | Expr::Not(expr) => strict(expr),
            _ => false,
        }
    }
    c.columns().contains(column) && strict(c)
}

fn attach(plan: LogicalPlan, join: SubqueryJoin, filter: Option<Expr>) -> Result<LogicalPlan> {
    let joined = LogicalPlan::join(
        plan,
        join.right,
        join.join_type,
        join.on,
        Expr::conjunction(join.residual),
    )?;
    match filter {
        Some(f) => LogicalPlan::filter(joined, f),
        None => Ok(joined),
    }
}

/// `[NOT] EXISTS (subquery)` inside an expression (`a OR EXISTS (q)`), as a mark join. A
/// subquery correlated by equalities is reduced to its distinct correlation keys with a marker
/// and left-joined on them: the outer row has a match exactly when the marker is there. An
/// uncorrelated one is reduced to one row saying whether it has any. Returns the join and the
/// expression standing for `EXISTS`.
fn exists_mark(planned: PlannedSubquery, at: &ast::Expr) -> Result<(PlannedSubquery, ast::Expr)> {
    if !planned.residual.is_empty() {
        return Err(not_supported(
            "EXISTS correlated by something other than equalities, inside an expression",
            at,
        ));
    }
    let mark = hidden::name(Role::Mark, 0);
    let alias = planned.alias.clone();
    let reference = ast::Expr::CompoundIdentifier(vec![
        ast::Ident::with_quote('"', alias.clone()),
        ast::Ident::with_quote('"', mark.clone()),
    ]);
    if planned.on.is_empty() {
        let rows = hidden::name(Role::Mark, 1);
        let counted = LogicalPlan::aggregate(
            planned.plan,
            vec![],
            vec![Expr::Aggregate {
                func: AggregateFunction::Count,
                args: vec![],
                distinct: false,
            }
            .alias(rows.clone())],
        )?;
        let any = Expr::Column(Column::new(rows))
            .binary(BinaryOp::Gt, Expr::Literal(ScalarValue::int64(0)))
            .alias(mark.clone());
        let plan = LogicalPlan::alias(LogicalPlan::project(counted, vec![any])?, alias.clone());
        let joined = PlannedSubquery {
            plan,
            alias,
            value: mark,
            on: vec![],
            residual: vec![],
            count_like: false,
            mark: true,
            unique: true,
        };
        return Ok((joined, reference));
    }
    let keys: Vec<Expr> = planned.on.iter().map(|(_, inner)| inner.clone()).collect();
    if !keys.iter().all(|k| matches!(k, Expr::Column(_))) {
        return Err(not_supported(
            "EXISTS correlated through expressions of the subquery's columns, inside an \
             expression",
            at,
        ));
    }
    let distinct = LogicalPlan::aggregate(planned.plan, keys.clone(), vec![])?;
    let mut columns = keys;
    columns.push(Expr::Literal(ScalarValue::boolean(true)).alias(mark.clone()));
    let plan = LogicalPlan::alias(LogicalPlan::project(distinct, columns)?, alias.clone());
    let joined = PlannedSubquery {
        plan,
        alias,
        value: mark,
        on: planned.on,
        residual: vec![],
        count_like: false,
        mark: true,
        unique: true,
    };
    Ok((joined, ast::Expr::IsNotNull(Box::new(reference))))
}

/// `NOT (e)` when `negated`.
fn negate_if(e: ast::Expr, negated: bool) -> ast::Expr {
    if negated {
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Not,
            expr: Box::new(ast::Expr::Nested(Box::new(e))),
        }
    } else {
        e
    }
}
