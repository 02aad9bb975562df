//! A query: its `WITH` clause (shared CTEs), its body (a `SELECT`, a nested query or a set
//! operation), `ORDER BY` over a body that is not a single `SELECT`, and `LIMIT`/`OFFSET`.

use std::collections::HashMap;

use sqlparser::ast::{self, LimitClause, OrderByKind, Query, SetExpr};

use super::expr::{ordinal, output_column, sort_key};
use super::from::rename_columns;
use super::literals::defined_name;
use super::SqlPlanner;
use crate::error::{EngineError, Result};
use crate::eval::constant::fold_expr;
use crate::logical::expr::{Column, Expr};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::logical::types::coerce;

impl SqlPlanner<'_> {
    /// Plan a parsed query.
    pub(super) fn plan_query(&mut self, query: &Query) -> Result<LogicalPlan> {
        let mut scope = HashMap::new();
        if let Some(with) = &query.with {
            if with.recursive {
                return Err(EngineError::NotSupported("WITH RECURSIVE".into()));
            }
            for cte in &with.cte_tables {
                self.ctes.push(scope.clone());
                let planned = self.plan_query(&cte.query);
                self.ctes.pop();
                let mut plan = planned?;
                let name = defined_name(&cte.alias.name)?;
                if !cte.alias.columns.is_empty() {
                    plan = rename_columns(
                        plan,
                        cte.alias
                            .columns
                            .iter()
                            .map(|c| defined_name(&c.name))
                            .collect::<Result<_>>()?,
                    )?;
                }
                // Every reference shares one computation; a CTE referenced once is inlined
                // again by `unshare_single_references`.
                self.next_cte_id += 1;
                let shared = LogicalPlan::SharedCte {
                    id: self.next_cte_id,
                    name: name.clone(),
                    input: Box::new(plan),
                };
                scope.insert(name.clone(), LogicalPlan::alias(shared, name));
            }
        }
        self.ctes.push(scope);
        let result = self.plan_query_body(query);
        self.ctes.pop();
        result
    }

    fn plan_query_body(&mut self, query: &Query) -> Result<LogicalPlan> {
        let order_by: Vec<ast::OrderByExpr> = match &query.order_by {
            Some(o) => match &o.kind {
                OrderByKind::Expressions(exprs) => exprs.clone(),
                OrderByKind::All(_) => {
                    return Err(EngineError::NotSupported("ORDER BY ALL".into()))
                }
            },
            None => vec![],
        };
        let plan = match query.body.as_ref() {
            SetExpr::Select(select) => self.plan_select(select, &order_by)?,
            SetExpr::Query(inner) => {
                let plan = self.plan_query(inner)?;
                self.order_plain(plan, &order_by)?
            }
            SetExpr::SetOperation { .. } => {
                let plan = self.plan_set_expr(query.body.as_ref())?;
                self.order_plain(plan, &order_by)?
            }
            other => return Err(EngineError::NotSupported(format!("query body: {other}"))),
        };
        let (skip, fetch) = match &query.limit_clause {
            None => (0, None),
            Some(LimitClause::LimitOffset { limit, offset, .. }) => {
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
        if skip == 0 && fetch.is_none() {
            Ok(plan)
        } else {
            Ok(LogicalPlan::limit(plan, skip, fetch))
        }
    }

    fn constant_usize(&self, e: &ast::Expr, what: &str) -> Result<usize> {
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

    /// `UNION [ALL]` trees (other set operations are not supported).
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
                if !matches!(op, ast::SetOperator::Union) {
                    return Err(EngineError::NotSupported(format!(
                        "{op} (only UNION and UNION ALL are supported)"
                    )));
                }
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                    other => {
                        return Err(EngineError::NotSupported(format!("UNION {other}")));
                    }
                };
                let l = self.plan_set_expr(left)?;
                let r = self.plan_set_expr(right)?;
                // Flatten chains of UNION ALL into one node.
                let mut inputs = Vec::new();
                for p in [l, r] {
                    match p {
                        LogicalPlan::Union { inputs: inner, .. } => inputs.extend(inner),
                        other => inputs.push(other),
                    }
                }
                let union = LogicalPlan::union(inputs)?;
                if all {
                    Ok(union)
                } else {
                    let columns = union
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| Expr::Column(Column::qualified(f.qualifier.clone(), f.name())))
                        .collect();
                    // A DISTINCT result stops the flattening of a following UNION ALL.
                    LogicalPlan::aggregate(union, columns, vec![])
                        .map(|p| LogicalPlan::alias(p, hidden::name(Role::Union, 0)))
                }
            }
            other => Err(EngineError::NotSupported(format!("query body: {other}"))),
        }
    }

    pub(super) fn lookup_cte(&self, name: &str) -> Option<LogicalPlan> {
        self.ctes
            .iter()
            .rev()
            .find_map(|scope| scope.get(name).cloned())
    }
}
