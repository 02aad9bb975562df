//! A query: its `WITH` clause (shared CTEs), its body (a `SELECT`, a nested query or a set
//! operation), `ORDER BY` over a body that is not a single `SELECT`, and `LIMIT`/`OFFSET`.

use std::collections::HashMap;

use sqlparser::ast::{self, LimitClause, OrderByKind, Query, SetExpr};

use super::expr::{ordinal, output_column, sort_key};
use super::from::alias_parts;
use super::from::rename_columns;
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::eval::constant::fold_expr;
use crate::frontend::set_operations;
use crate::logical::expr::{BinaryOp, Column, Expr};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::LogicalPlan;
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
use crate::logical::types::coerce;
use crate::logical::window::{WindowExpr, WindowFrame, WindowFunction};

impl SqlPlanner<'_> {
    /// Plan a parsed query. Every part of it is planned or refused by name.
    pub(super) fn plan_query(&mut self, query: &Query) -> Result<LogicalPlan> {
        let Query {
            with,
            body,
            order_by,
            limit_clause,
            fetch,
            locks,
            for_clause,
            settings,
            format_clause,
            pipe_operators,
        } = query;
        if let Some(lock) = locks.first() {
            return Err(not_supported(format!("{lock}"), query));
        }
        if let Some(clause) = for_clause {
            return Err(not_supported(format!("{clause}"), query));
        }
        if settings.is_some() {
            return Err(not_supported("SETTINGS", query));
        }
        if let Some(format) = format_clause {
            return Err(not_supported(format!("{format}"), query));
        }
        if !pipe_operators.is_empty() {
            return Err(not_supported("pipe operators (|>)", query));
        }
        let mut scope = HashMap::new();
        if let Some(with) = with {
            let ast::With {
                with_token: _,
                recursive,
                cte_tables,
            } = with;
            if *recursive {
                return Err(not_supported("WITH RECURSIVE", with));
            }
            for cte in cte_tables {
                let (name, shared) = self.plan_cte(cte, &scope)?;
                scope.insert(name.clone(), LogicalPlan::alias(shared, name));
            }
        }
        self.ctes.push(scope);
        let result = self.plan_query_body(
            body,
            order_by.as_ref(),
            limit_clause.as_ref(),
            fetch.as_ref(),
        );
        self.ctes.pop();
        result
    }

    /// One common table expression, planned with the CTEs before it in `scope`, as a shared
    /// plan: every reference shares one computation (a CTE referenced once is inlined again
    /// by `unshare_single_references`, unless it says `AS MATERIALIZED`).
    fn plan_cte(
        &mut self,
        cte: &ast::Cte,
        scope: &HashMap<String, LogicalPlan>,
    ) -> Result<(String, LogicalPlan)> {
        let ast::Cte {
            alias,
            query,
            from,
            materialized,
            closing_paren_token: _,
        } = cte;
        if let Some(from) = from {
            return Err(not_supported(format!("CTE ... FROM {from}"), cte));
        }
        self.ctes.push(scope.clone());
        let planned = self.plan_query(query);
        self.ctes.pop();
        let mut plan = planned?;
        let (name, columns) = alias_parts(alias)?;
        if !columns.is_empty() {
            plan = rename_columns(plan, columns)?;
        }
        self.next_cte_id += 1;
        let id = self.next_cte_id;
        if let Some(m) = materialized {
            self.cte_policy
                .insert(id, matches!(m, ast::CteAsMaterialized::Materialized));
        }
        let shared = LogicalPlan::SharedCte {
            id,
            name: name.clone(),
            input: Box::new(plan),
        };
        Ok((name, shared))
    }

    fn plan_query_body(
        &mut self,
        body: &SetExpr,
        order_by: Option<&ast::OrderBy>,
        limit_clause: Option<&LimitClause>,
        fetch: Option<&ast::Fetch>,
    ) -> Result<LogicalPlan> {
        let order_by: Vec<ast::OrderByExpr> = match order_by {
            Some(o) => {
                let ast::OrderBy { kind, interpolate } = o;
                if interpolate.is_some() {
                    return Err(not_supported("ORDER BY ... INTERPOLATE", o));
                }
                match kind {
                    OrderByKind::Expressions(exprs) => exprs.clone(),
                    OrderByKind::All(_) => return Err(not_supported("ORDER BY ALL", o)),
                }
            }
            None => vec![],
        };
        for o in &order_by {
            if o.with_fill.is_some() {
                return Err(not_supported("ORDER BY ... WITH FILL", o));
            }
        }
        // The top query of a subquery: a LIMIT there applies per correlation key.
        let subquery_top = self.frames.last().is_some_and(|f| f.pending_top);
        if let Some(frame) = self.frames.last_mut().filter(|_| subquery_top) {
            frame.limited = limit_clause.is_some() || fetch.is_some();
        }
        let plan = match body {
            SetExpr::Select(select) => self.plan_select(select, &order_by)?,
            SetExpr::Query(inner) => {
                let plan = self.plan_query(inner)?;
                self.order_plain(plan, &order_by)?
            }
            SetExpr::SetOperation { .. } => {
                let plan = self.plan_set_expr(body)?;
                self.order_plain(plan, &order_by)?
            }
            other => return Err(not_supported(format!("query body: {other}"), other)),
        };
        let (skip, mut limit) = match limit_clause {
            None => (0, None),
            Some(
                clause @ LimitClause::LimitOffset {
                    limit,
                    offset,
                    limit_by,
                },
            ) => {
                if !limit_by.is_empty() {
                    return Err(not_supported("LIMIT ... BY", clause));
                }
                let fetch = limit
                    .as_ref()
                    .map(|l| self.constant_usize(l, "LIMIT"))
                    .transpose()?;
                let skip = offset
                    .as_ref()
                    .map(|o| self.constant_usize(&o.value, "OFFSET"))
                    .transpose()?
                    .unwrap_or(0);
                (skip, fetch)
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => (
                self.constant_usize(offset, "OFFSET")?,
                Some(self.constant_usize(limit, "LIMIT")?),
            ),
        };
        if let Some(f) = fetch {
            let ast::Fetch {
                with_ties,
                percent,
                quantity,
            } = f;
            if *with_ties {
                return Err(not_supported("FETCH ... WITH TIES", body));
            }
            if *percent {
                return Err(not_supported("FETCH ... PERCENT", body));
            }
            if limit.is_some() {
                return Err(not_supported("LIMIT together with FETCH", body));
            }
            // `FETCH FIRST ROW ONLY` without a count is one row.
            limit = Some(match quantity {
                Some(q) => self.constant_usize(q, "FETCH")?,
                None => 1,
            });
        }
        if skip == 0 && limit.is_none() {
            Ok(plan)
        } else if subquery_top && self.has_correlation() {
            self.limit_per_key(plan, skip, limit)
        } else {
            Ok(LogicalPlan::limit(plan, skip, limit))
        }
    }

    /// `OFFSET skip LIMIT limit` of a correlated subquery (`LATERAL (SELECT ... WHERE k =
    /// outer.k ORDER BY x LIMIT 3)`): the rows numbered within each correlation key in the
    /// subquery's order (a `row_number()` window partitioned by the exported keys), those
    /// from `skip + 1` to `skip + limit` kept.
    fn limit_per_key(
        &mut self,
        plan: LogicalPlan,
        skip: usize,
        limit: Option<usize>,
    ) -> Result<LogicalPlan> {
        let keys: Vec<String> = self
            .frames
            .last()
            .map(|f| f.corr_names.iter().map(|(_, n)| n.clone()).collect())
            .unwrap_or_default();
        if let (Some(frame), Some(0 | 1)) = (self.frames.last_mut(), limit) {
            frame.one_per_key = true;
        }
        // The SELECT's sort (under the projection that drops its hidden sort keys) becomes
        // the window's order.
        let (visible, input, order_by) = match plan {
            LogicalPlan::Projection { input, exprs, .. }
                if matches!(input.as_ref(), LogicalPlan::Sort { fetch: None, .. }) =>
            {
                let LogicalPlan::Sort { input, keys, .. } = *input else {
                    return Err(EngineError::Internal("a sort under the projection".into()));
                };
                (Some(exprs), *input, keys)
            }
            LogicalPlan::Sort {
                input,
                keys,
                fetch: None,
            } => (None, *input, keys),
            other => (None, other, vec![]),
        };
        let columns = input.schema().column_exprs();
        let partition_by = keys
            .iter()
            .map(|k| Expr::Column(Column::new(k.clone())))
            .collect();
        let number = hidden::name(Role::Window, usize::MAX);
        let numbered = LogicalPlan::window(
            input,
            vec![Expr::Window(Box::new(WindowExpr {
                func: WindowFunction::RowNumber,
                args: vec![],
                partition_by,
                frame: WindowFrame::default_for(!order_by.is_empty()),
                order_by,
                ignore_nulls: false,
            }))
            .alias(number.clone())],
        )?;
        let n = || Expr::Column(Column::new(number.clone()));
        let int = |v: usize| Expr::Literal(ScalarValue::int64(v as i64));
        let mut kept = vec![n().binary(BinaryOp::Gt, int(skip))];
        if let Some(limit) = limit {
            kept.push(n().binary(BinaryOp::LtEq, int(skip.saturating_add(limit))));
        }
        let filtered = LogicalPlan::filter(
            numbered,
            Expr::conjunction(kept).ok_or_else(|| EngineError::Internal("no bound".into()))?,
        )?;
        LogicalPlan::project(filtered, visible.unwrap_or(columns))
    }

    pub(super) fn constant_usize(&self, e: &ast::Expr, what: &str) -> Result<usize> {
        let expr = self.sql_to_expr(e, &PlanSchema::default())?;
        let folded = fold_expr(coerce(expr, &PlanSchema::default())?)?;
        match folded {
            Expr::Literal(v) => match v.as_i64() {
                Some(n) if n >= 0 => Ok(n as usize),
                _ => Err(EngineError::Plan(format!(
                    "{what} must be a non-negative integer, got {v}"
                ))),
            },
            other => Err(EngineError::Plan(format!(
                "{what} must be a constant, got {other}"
            ))),
        }
    }

    /// ORDER BY over a plan whose output columns are the only names visible.
    fn order_plain(
        &mut self,
        plan: LogicalPlan,
        order_by: &[ast::OrderByExpr],
    ) -> Result<LogicalPlan> {
        if order_by.is_empty() {
            return Ok(plan);
        }
        if let Some(names) = plan.distinct_output_names() {
            // Repeated output names (`SELECT 0, 0 UNION ...`): sort under distinct names,
            // then give the original ones back.
            let original: Vec<String> = plan
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().to_string())
                .collect();
            let sorted = self.order_plain(plan.rename_outputs(&names)?, order_by)?;
            return sorted.rename_outputs(&original);
        }
        let mut keys = Vec::new();
        for o in order_by {
            let expr = match ordinal(&o.expr)? {
                Some(i) => output_column(plan.schema(), i)?,
                None => self.sql_to_expr(&o.expr, plan.schema())?,
            };
            keys.push(sort_key(expr, o));
        }
        LogicalPlan::sort(plan, keys)
    }

    /// `UNION`, `INTERSECT` and `EXCEPT` trees, each with or without `ALL`.
    fn plan_set_expr(&mut self, body: &SetExpr) -> Result<LogicalPlan> {
        match body {
            SetExpr::Select(select) => self.plan_select(select, &[]),
            SetExpr::Query(q) => self.plan_query(q),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                    other => return Err(not_supported(format!("{op} {other}"), body)),
                };
                let intersect = match op {
                    ast::SetOperator::Union => None,
                    ast::SetOperator::Intersect => Some(true),
                    ast::SetOperator::Except | ast::SetOperator::Minus => Some(false),
                };
                let l = self.plan_set_expr(left)?;
                let r = self.plan_set_expr(right)?;
                match intersect {
                    Some(intersect) => set_operations::intersect_or_except(l, r, intersect, all),
                    None => set_operations::union(l, r, all),
                }
            }
            other => Err(not_supported(format!("query body: {other}"), other)),
        }
    }

    pub(super) fn lookup_cte(&self, name: &str) -> Option<LogicalPlan> {
        self.ctes
            .iter()
            .rev()
            .find_map(|scope| scope.get(name).cloned())
    }
}
