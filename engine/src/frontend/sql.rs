//! SQL front end: `sqlparser` AST → logical plan.
//!
//! Supports `SELECT` with `WHERE`, `GROUP BY` (expressions, select aliases, ordinals),
//! `HAVING`, `ORDER BY` (output names, aliases, ordinals, expressions over the input,
//! `ASC/DESC`, `NULLS FIRST/LAST`), `LIMIT/OFFSET`, `DISTINCT`, derived tables and CTEs.
//! Tables are registered names, `'path/*.parquet'` strings, or `read_parquet('...')`.
//! Names are resolved as the plan is built, so errors point at the name the user wrote.

use std::collections::HashMap;

use arrow::datatypes::{DataType, TimeUnit};
use sqlparser::ast::{
    self, BinaryOperator, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, LimitClause, ObjectNamePart, OrderByKind, Query, Select, SelectItem, SetExpr,
    Statement, TableFactor, UnaryOperator, Value,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::error::{EngineError, Result};
use crate::logical::expr::{AggregateFunction, BinaryOp, Column, DatePart, Expr, ScalarFunction};
use crate::logical::plan::{JoinType, LogicalPlan, SortKey};
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
use crate::logical::types::coerce;

use super::subquery;

/// Resolves table references for the SQL planner.
pub trait TableResolver {
    /// A registered table by name.
    fn table(&self, name: &str) -> Result<LogicalPlan>;
    /// A path, glob or directory given inline (`FROM 'data/*.parquet'`).
    fn path(&self, location: &str) -> Result<LogicalPlan>;
}

/// Parse one SQL statement.
pub fn parse_sql(sql: &str) -> Result<Query> {
    let dialect = DuckDbDialect {};
    let statements = Parser::parse_sql(&dialect, sql).map_err(|e| syntax_error(e, sql))?;
    let mut iter = statements.into_iter();
    let Some(statement) = iter.next() else {
        return Err(EngineError::Syntax {
            message: "empty query".into(),
            line: 0,
            column: 0,
        });
    };
    if iter.next().is_some() {
        return Err(EngineError::NotSupported(
            "more than one statement; run them one at a time".into(),
        ));
    }
    match statement {
        Statement::Query(query) => Ok(*query),
        other => Err(EngineError::NotSupported(format!(
            "only SELECT queries are supported, got: {}",
            other
                .to_string()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

fn syntax_error(e: ParserError, sql: &str) -> EngineError {
    let text = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "query is nested too deeply".to_string(),
    };
    match text.rfind(" at Line: ") {
        Some(pos) => {
            let location = &text[pos + " at Line: ".len()..];
            let mut parts = location.split(", Column: ");
            let line = parts
                .next()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            let column = parts
                .next()
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(0);
            EngineError::Syntax {
                message: text[..pos].to_string(),
                line,
                column,
            }
        }
        None if text.contains("EOF") => {
            // The query ended too early: point just past its last character.
            let trimmed = sql.trim_end();
            let line = trimmed.lines().count().max(1) as u64;
            let column = trimmed.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1;
            EngineError::Syntax {
                message: text,
                line,
                column,
            }
        }
        None => EngineError::Syntax {
            message: text,
            line: 0,
            column: 0,
        },
    }
}

/// Plans SQL queries.
pub struct SqlPlanner<'a> {
    resolver: &'a dyn TableResolver,
    ctes: Vec<HashMap<String, LogicalPlan>>,
    next_cte_id: usize,
    /// Subqueries being planned, innermost last (see [`subquery`](super::subquery)).
    pub(super) frames: Vec<super::subquery::SubqueryFrame>,
    /// Counter for the `__sqN` names of planned subqueries.
    pub(super) next_subquery: usize,
}

impl<'a> SqlPlanner<'a> {
    /// A planner resolving tables through `resolver`.
    pub fn new(resolver: &'a dyn TableResolver) -> Self {
        Self {
            resolver,
            ctes: Vec::new(),
            next_cte_id: 0,
            frames: Vec::new(),
            next_subquery: 0,
        }
    }

    /// Plan SQL text.
    pub fn plan_sql(&mut self, sql: &str) -> Result<LogicalPlan> {
        let query = parse_sql(sql)?;
        let plan = self.plan_query(&query)?;
        unshare_single_references(plan)
    }

    /// Plan a parsed query.
    pub fn plan_query(&mut self, query: &Query) -> Result<LogicalPlan> {
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
                let name = normalize_ident(&cte.alias.name);
                if !cte.alias.columns.is_empty() {
                    plan = rename_columns(
                        plan,
                        cte.alias
                            .columns
                            .iter()
                            .map(|c| normalize_ident(&c.name))
                            .collect(),
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
        let folded = crate::optimizer::fold_expr(coerce(expr, &PlanSchema::default())?)?;
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
                        .map(|p| LogicalPlan::alias(p, "union"))
                }
            }
            other => Err(EngineError::NotSupported(format!("query body: {other}"))),
        }
    }

    /// The relations of a FROM clause, each with its explicit joins applied. Inner joins
    /// (`JOIN ... ON`) are kept as inner joins with their condition as a filter; the join
    /// reordering rule later treats them exactly like comma-separated tables.
    pub(super) fn plan_from_relations(
        &mut self,
        from: &[ast::TableWithJoins],
    ) -> Result<Vec<LogicalPlan>> {
        if from.is_empty() {
            return Ok(vec![LogicalPlan::empty_row()]);
        }
        let mut relations = Vec::with_capacity(from.len());
        for twj in from {
            let mut plan = self.plan_table_factor(&twj.relation)?;
            for join in &twj.joins {
                let right = self.plan_table_factor(&join.relation)?;
                plan = self.plan_explicit_join(plan, right, &join.join_operator)?;
            }
            relations.push(plan);
        }
        Ok(relations)
    }

    fn plan_explicit_join(
        &mut self,
        left: LogicalPlan,
        right: LogicalPlan,
        operator: &ast::JoinOperator,
    ) -> Result<LogicalPlan> {
        use ast::JoinOperator as J;
        let (join_type, constraint) = match operator {
            J::Join(c) | J::Inner(c) => (JoinType::Inner, c),
            J::Left(c) | J::LeftOuter(c) => (JoinType::Left, c),
            J::Right(c) | J::RightOuter(c) => (JoinType::Right, c),
            J::FullOuter(c) => (JoinType::Full, c),
            J::CrossJoin(c) => (JoinType::Inner, c),
            J::Semi(c) | J::LeftSemi(c) => (JoinType::Semi, c),
            J::Anti(c) | J::LeftAnti(c) => (JoinType::Anti, c),
            other => {
                return Err(EngineError::NotSupported(format!(
                    "join operator {}",
                    format!("{other:?}").split('(').next().unwrap_or("?")
                )))
            }
        };
        let combined = left.schema().join(right.schema());
        let condition = match constraint {
            ast::JoinConstraint::On(e) => Some(self.sql_to_expr(e, &combined)?),
            ast::JoinConstraint::None => None,
            ast::JoinConstraint::Using(names) => {
                let mut parts = Vec::new();
                for n in names {
                    let name = n.to_string().to_lowercase();
                    let l = left.schema().index_of(None, &name)?;
                    let r = right.schema().index_of(None, &name)?;
                    let lf = left.schema().field(l);
                    let rf = right.schema().field(r);
                    parts.push(
                        Expr::Column(Column::qualified(lf.qualifier.clone(), lf.name())).binary(
                            BinaryOp::Eq,
                            Expr::Column(Column::qualified(rf.qualifier.clone(), rf.name())),
                        ),
                    );
                }
                Expr::conjunction(parts)
            }
            other => {
                return Err(EngineError::NotSupported(format!(
                    "join constraint {other:?}"
                )))
            }
        };
        let Some(condition) = condition else {
            if join_type == JoinType::Inner {
                return LogicalPlan::join(left, right, JoinType::Inner, vec![], None);
            }
            return Err(EngineError::Plan(format!(
                "{join_type} JOIN needs an ON or USING condition"
            )));
        };
        if condition.columns().iter().any(super::subquery::is_outer) {
            return Err(EngineError::NotSupported(
                "correlated references in a JOIN condition".into(),
            ));
        }
        let (on, residual) = split_join_condition(condition, left.schema(), right.schema());
        // Conditions on one side only: a side whose rows are all kept (the preserved side of
        // an outer join) cannot be filtered, the other side can.
        let (mut left, mut right) = (left, right);
        let mut kept = Vec::new();
        let left_filterable = matches!(
            join_type,
            JoinType::Inner | JoinType::Right | JoinType::Semi | JoinType::Anti
        );
        let right_filterable = matches!(
            join_type,
            JoinType::Inner | JoinType::Left | JoinType::Semi | JoinType::Anti
        );
        let mut left_filters = Vec::new();
        let mut right_filters = Vec::new();
        for c in residual {
            let refs_left = crate::optimizer::references_only(&c, left.schema());
            let refs_right = crate::optimizer::references_only(&c, right.schema());
            if refs_left && left_filterable {
                left_filters.push(c);
            } else if refs_right && right_filterable {
                right_filters.push(c);
            } else {
                kept.push(c);
            }
        }
        if let Some(p) = Expr::conjunction(left_filters) {
            left = LogicalPlan::filter(left, p)?;
        }
        if let Some(p) = Expr::conjunction(right_filters) {
            right = LogicalPlan::filter(right, p)?;
        }
        LogicalPlan::join(left, right, join_type, on, Expr::conjunction(kept))
    }

    fn plan_table_factor(&mut self, factor: &TableFactor) -> Result<LogicalPlan> {
        match factor {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .map(|p| match p {
                        ObjectNamePart::Identifier(i) => Ok(i.value.clone()),
                        other => Err(EngineError::NotSupported(format!(
                            "table name part {other}"
                        ))),
                    })
                    .collect::<Result<_>>()?;
                let plan = if let Some(args) = args {
                    let function = parts.join(".").to_lowercase();
                    if function != "read_parquet" && function != "parquet_scan" {
                        return Err(EngineError::NotSupported(format!(
                            "table function {function}(); only read_parquet('path') is available"
                        )));
                    }
                    let locations = table_function_paths(&args.args)?;
                    let mut plans = locations
                        .iter()
                        .map(|l| self.resolver.path(l))
                        .collect::<Result<Vec<_>>>()?;
                    if plans.len() != 1 {
                        return Err(EngineError::NotSupported(
                            "read_parquet with a list of paths; use a glob".into(),
                        ));
                    }
                    plans.remove(0)
                } else {
                    let joined = parts.join(".");
                    let quoted_path = name.0.len() == 1
                        && matches!(&name.0[0], ObjectNamePart::Identifier(i) if i.quote_style.is_some())
                        && looks_like_path(&joined);
                    if quoted_path {
                        self.resolver.path(&joined)?
                    } else if let Some(cte) = self.lookup_cte(&joined.to_lowercase()) {
                        cte
                    } else if looks_like_path(&joined) {
                        self.resolver.path(&joined)?
                    } else {
                        self.resolver.table(&joined)?
                    }
                };
                apply_alias(plan, alias.as_ref())
            }
            TableFactor::Derived {
                subquery,
                alias,
                lateral,
                ..
            } => {
                if *lateral {
                    return Err(EngineError::NotSupported("LATERAL".into()));
                }
                let plan = self.plan_query(subquery)?;
                match alias {
                    Some(a) => apply_alias(plan, Some(a)),
                    None => Ok(LogicalPlan::alias(plan, "subquery")),
                }
            }
            other => Err(EngineError::NotSupported(format!("FROM {other}"))),
        }
    }

    fn lookup_cte(&self, name: &str) -> Option<LogicalPlan> {
        self.ctes
            .iter()
            .rev()
            .find_map(|scope| scope.get(name).cloned())
    }

    fn plan_select(
        &mut self,
        select: &Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<LogicalPlan> {
        // The top SELECT of a subquery collects its correlated conjuncts.
        let subquery_top = self
            .frames
            .last_mut()
            .is_some_and(|f| std::mem::take(&mut f.pending_top));
        let relations = self.plan_from_relations(&select.from)?;
        let mut plan = self.plan_where(relations, select.selection.as_ref(), subquery_top)?;
        let input_schema = plan.schema().clone();

        // SELECT list, with wildcards expanded.
        let mut select_exprs: Vec<Expr> = Vec::new();
        for item in &select.projection {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    let expr = self.sql_to_expr(e, &input_schema)?;
                    let name = match e {
                        ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => None,
                        other => Some(other.to_string()),
                    };
                    select_exprs.push(match name {
                        Some(n) => expr.alias(n),
                        None => expr,
                    });
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    select_exprs.push(
                        self.sql_to_expr(expr, &input_schema)?
                            .alias(normalize_ident(alias)),
                    );
                }
                SelectItem::Wildcard(_) => {
                    for f in input_schema.fields() {
                        if subquery::is_hidden_qualifier(f.qualifier.as_deref()) {
                            continue;
                        }
                        select_exprs.push(Expr::Column(Column::qualified(
                            f.qualifier.clone(),
                            f.name(),
                        )));
                    }
                }
                SelectItem::QualifiedWildcard(kind, _) => {
                    let qualifier = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => n.to_string(),
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let mut any = false;
                    for f in input_schema.fields() {
                        if f.qualifier
                            .as_deref()
                            .is_some_and(|q| q.eq_ignore_ascii_case(&qualifier))
                        {
                            select_exprs.push(Expr::Column(Column::qualified(
                                f.qualifier.clone(),
                                f.name(),
                            )));
                            any = true;
                        }
                    }
                    if !any {
                        return Err(EngineError::Plan(format!(
                            "{qualifier}.* does not match any table in FROM"
                        )));
                    }
                }
                other => return Err(EngineError::NotSupported(format!("select item {other}"))),
            }
        }

        if select_exprs
            .iter()
            .any(|e| e.columns().iter().any(subquery::is_outer))
        {
            return Err(EngineError::NotSupported(
                "correlated references in a subquery's select list".into(),
            ));
        }
        let user_select_len = select_exprs.len();
        let correlated_keys = if subquery_top && self.has_correlation() {
            self.export_correlated_columns(&mut select_exprs)
        } else {
            vec![]
        };

        // GROUP BY expressions (input expressions, select aliases or ordinals).
        let mut group_by: Vec<Expr> = match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) => {
                if !modifiers.is_empty() {
                    return Err(EngineError::NotSupported(
                        "GROUP BY modifiers (ROLLUP/CUBE)".into(),
                    ));
                }
                let mut out = Vec::new();
                for e in exprs {
                    let expr = if let Some(i) = ordinal(e)? {
                        select_exprs
                            .get(i)
                            .cloned()
                            .ok_or_else(|| {
                                EngineError::Plan(format!(
                                    "GROUP BY position {} is not in the select list",
                                    i + 1
                                ))
                            })?
                            .unalias()
                    } else {
                        match self.sql_to_expr(e, &input_schema) {
                            Ok(expr) => expr,
                            Err(err @ EngineError::ColumnNotFound { .. }) => {
                                // A select-list alias.
                                match e {
                                    ast::Expr::Identifier(ident) => select_exprs
                                        .iter()
                                        .find(|s| matches!(s, Expr::Alias { name, .. } if name.eq_ignore_ascii_case(&ident.value)))
                                        .map(|s| s.clone().unalias())
                                        .ok_or(err)?,
                                    _ => return Err(err),
                                }
                            }
                            Err(other) => return Err(other),
                        }
                    };
                    out.push(expr);
                }
                out
            }
            GroupByExpr::All(_) => select_exprs
                .iter()
                .filter(|e| !e.contains_aggregate())
                .map(|e| e.clone().unalias())
                .collect(),
        };

        if !correlated_keys.is_empty()
            && (select_exprs[..user_select_len]
                .iter()
                .any(Expr::contains_aggregate)
                || select.having.is_some())
        {
            // An aggregate per outer row becomes an aggregate per correlation key.
            if !group_by.is_empty() {
                return Err(EngineError::NotSupported(
                    "GROUP BY in a correlated subquery".into(),
                ));
            }
            if self.current_kind() == Some(subquery::SubqueryKind::Exists) {
                return Err(EngineError::NotSupported(
                    "aggregates in a correlated EXISTS subquery".into(),
                ));
            }
            group_by = correlated_keys.clone();
        }

        let mut having_joins = Vec::new();
        let having = match &select.having {
            Some(h) => {
                let (h, joins) = self.having_subqueries(h, &input_schema)?;
                let schema = joins
                    .iter()
                    .fold(input_schema.clone(), |acc, j| acc.join(j.schema()));
                having_joins = joins;
                Some(self.sql_to_expr(&h, &schema)?)
            }
            None => None,
        };
        let having_extra = having_joins
            .iter()
            .fold(PlanSchema::default(), |acc, j| acc.join(j.schema()));

        // ORDER BY keys: resolved against the select list first, then the input.
        enum OrderTarget {
            Output(usize),
            Input(Expr),
        }
        let mut order_targets = Vec::new();
        for o in order_by {
            let target = if let Some(i) = ordinal(&o.expr)? {
                if i >= select_exprs.len() {
                    return Err(EngineError::Plan(format!(
                        "ORDER BY position {} is not in the select list",
                        i + 1
                    )));
                }
                OrderTarget::Output(i)
            } else {
                let by_name = match &o.expr {
                    ast::Expr::Identifier(ident) => select_exprs.iter().position(|s| {
                        matches!(s, Expr::Alias { name, .. } if name.eq_ignore_ascii_case(&ident.value))
                    }),
                    _ => None,
                };
                match by_name {
                    Some(i) => OrderTarget::Output(i),
                    None => OrderTarget::Input(self.sql_to_expr(&o.expr, &input_schema)?),
                }
            };
            order_targets.push(target);
        }

        let has_aggregates = !group_by.is_empty()
            || select_exprs.iter().any(Expr::contains_aggregate)
            || having.as_ref().is_some_and(Expr::contains_aggregate)
            || order_targets
                .iter()
                .any(|t| matches!(t, OrderTarget::Input(e) if e.contains_aggregate()));

        let (mut select_exprs, having, order_targets) = if has_aggregates {
            let mut aggregates: Vec<Expr> = Vec::new();
            let mut collect = |e: &Expr| {
                e.walk(&mut |n| {
                    if matches!(n, Expr::Aggregate { .. }) && !aggregates.contains(n) {
                        aggregates.push(n.clone());
                    }
                })
            };
            select_exprs.iter().for_each(&mut collect);
            if let Some(h) = &having {
                collect(h);
            }
            for t in &order_targets {
                if let OrderTarget::Input(e) = t {
                    collect(e);
                }
            }
            plan = LogicalPlan::aggregate(plan, group_by.clone(), aggregates.clone())?;
            let agg_schema = plan.schema().clone();
            // Coerced forms, for structural matching against the rewritten expressions.
            let coerced_groups: Vec<Expr> = group_by
                .iter()
                .map(|g| coerce(g.clone(), &input_schema))
                .collect::<Result<_>>()?;
            let coerced_aggs: Vec<Expr> = aggregates
                .iter()
                .map(|a| coerce(a.clone(), &input_schema))
                .collect::<Result<_>>()?;
            let rewrite_schema = input_schema.join(&having_extra);
            let rewrite = |e: Expr| -> Result<Expr> {
                let e = coerce(e, &rewrite_schema)?;
                let rewritten = e.transform_down(&mut |n| {
                    if let Some(i) = coerced_groups.iter().position(|g| g == n) {
                        let f = agg_schema.field(i);
                        return Some(Expr::Column(Column::qualified(
                            f.qualifier.clone(),
                            f.name(),
                        )));
                    }
                    if let Some(i) = coerced_aggs.iter().position(|a| a == n) {
                        let f = agg_schema.field(group_by.len() + i);
                        return Some(Expr::Column(Column::new(f.name())));
                    }
                    None
                })?;
                // Any column left must be a grouping key (or a HAVING subquery's value).
                for c in rewritten.columns() {
                    if agg_schema
                        .try_index_of(c.relation.as_deref(), &c.name)?
                        .is_none()
                        && having_extra
                            .try_index_of(c.relation.as_deref(), &c.name)?
                            .is_none()
                    {
                        return Err(EngineError::Plan(format!(
                            "column '{c}' must appear in the GROUP BY clause or be used in an aggregate function"
                        )));
                    }
                }
                Ok(rewritten)
            };
            let select_exprs = select_exprs
                .into_iter()
                .map(|e| match e {
                    Expr::Alias { expr, name } => Ok(rewrite(*expr)?.alias(name)),
                    other => {
                        let name = other.output_name();
                        let r = rewrite(other)?;
                        Ok(if r.output_name() == name {
                            r
                        } else {
                            r.alias(name)
                        })
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let having = having.map(rewrite).transpose()?;
            let order_targets = order_targets
                .into_iter()
                .map(|t| match t {
                    OrderTarget::Input(e) => Ok(OrderTarget::Input(rewrite(e)?)),
                    other => Ok(other),
                })
                .collect::<Result<Vec<_>>>()?;
            (select_exprs, having, order_targets)
        } else {
            (select_exprs, having, order_targets)
        };

        for j in having_joins {
            plan = LogicalPlan::join(plan, j, JoinType::Single, vec![], None)?;
        }
        if let Some(h) = having {
            plan = LogicalPlan::filter(plan, h)?;
        }

        // Sort keys that are not in the select list become hidden projected columns.
        let pre_projection_schema = plan.schema().clone();
        let visible = select_exprs.len();
        let mut keys = Vec::new();
        for (o, target) in order_by.iter().zip(order_targets) {
            let index = match target {
                OrderTarget::Output(i) => i,
                OrderTarget::Input(e) => {
                    let coerced = coerce(e.clone(), &pre_projection_schema)?;
                    // A column is the same column however it is qualified (`SELECT *` lists
                    // `lineitem.l_shipdate`, `ORDER BY l_shipdate` names it bare): sorting by
                    // the select list's copy saves a hidden duplicate through the sort.
                    let column_index = |e: &Expr| match e {
                        Expr::Column(c) => pre_projection_schema
                            .index_of(c.relation.as_deref(), &c.name)
                            .ok(),
                        _ => None,
                    };
                    let key_column = column_index(&coerced);
                    let existing = select_exprs.iter().position(|s| {
                        let s = coerce(s.clone().unalias(), &pre_projection_schema).ok();
                        s.as_ref() == Some(&coerced)
                            || (key_column.is_some()
                                && s.as_ref().and_then(column_index) == key_column)
                    });
                    match existing {
                        Some(i) => i,
                        None => {
                            if select.distinct.is_some() {
                                return Err(EngineError::Plan(format!(
                                    "for SELECT DISTINCT, ORDER BY expressions must appear in the select list: {e}"
                                )));
                            }
                            select_exprs
                                .push(e.alias(format!("__ooc_sort_{}", select_exprs.len())));
                            select_exprs.len() - 1
                        }
                    }
                }
            };
            keys.push((index, o));
        }

        plan = LogicalPlan::project(plan, select_exprs)?;
        if select.distinct.is_some() {
            if let Some(ast::Distinct::On(_)) = &select.distinct {
                return Err(EngineError::NotSupported("DISTINCT ON".into()));
            }
            let columns: Vec<Expr> = plan
                .schema()
                .fields()
                .iter()
                .map(|f| Expr::Column(Column::qualified(f.qualifier.clone(), f.name())))
                .collect();
            plan = LogicalPlan::aggregate(plan, columns, vec![])?;
        }
        if !keys.is_empty() {
            let schema = plan.schema().clone();
            let sort_keys = keys
                .into_iter()
                .map(|(i, o)| Ok(sort_key(output_column(&schema, i)?, o)))
                .collect::<Result<Vec<_>>>()?;
            plan = LogicalPlan::sort(plan, sort_keys)?;
        }
        if plan.schema().len() > visible {
            let schema = plan.schema().clone();
            let exprs = (0..visible)
                .map(|i| output_column(&schema, i))
                .collect::<Result<Vec<_>>>()?;
            plan = LogicalPlan::project(plan, exprs)?;
        }
        Ok(plan)
    }

    /// Convert a SQL expression over `schema` into a logical expression.
    pub fn sql_to_expr(&self, e: &ast::Expr, schema: &PlanSchema) -> Result<Expr> {
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
                let text = match &ts.value.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                    other => {
                        return Err(EngineError::Plan(format!(
                            "typed literal needs a string, got {other}"
                        )))
                    }
                };
                let to = sql_type(&ts.data_type)?;
                Expr::Literal(ScalarValue::utf8(&text).cast_to(&to).map_err(|_| {
                    EngineError::Type(format!("'{text}' is not a valid {}", ts.data_type))
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
                        let negated = crate::optimizer::fold_expr(Expr::Negative(Box::new(
                            Expr::Literal(v.clone()),
                        )))?;
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
                ..
            } => match target {
                ast::InTarget::List(list) => Expr::InList {
                    expr: boxed(expr)?,
                    list: list.iter().map(convert).collect::<Result<_>>()?,
                    negated: *negated,
                },
                _ => {
                    return Err(EngineError::NotSupported(
                        "IN (subquery) here; subqueries are supported in WHERE conjuncts".into(),
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
                    return Err(EngineError::NotSupported("LIKE ANY / ESCAPE".into()));
                }
                Expr::Like {
                    expr: boxed(expr)?,
                    pattern: boxed(pattern)?,
                    negated: *negated,
                    case_insensitive: matches!(e, ast::Expr::ILike { .. }),
                }
            }
            ast::Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Expr::Case {
                operand: operand.as_ref().map(|o| boxed(o)).transpose()?,
                when_then: conditions
                    .iter()
                    .map(|c| Ok((convert(&c.condition)?, convert(&c.result)?)))
                    .collect::<Result<_>>()?,
                otherwise: else_result.as_ref().map(|o| boxed(o)).transpose()?,
            },
            ast::Expr::Cast {
                expr,
                data_type,
                kind,
                ..
            } => {
                if matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast) {
                    return Err(EngineError::NotSupported("TRY_CAST".into()));
                }
                Expr::Cast {
                    expr: boxed(expr)?,
                    to: sql_type(data_type)?,
                }
            }
            ast::Expr::Extract { field, expr, .. } => Expr::Function {
                func: ScalarFunction::Extract(date_part(&field.to_string())?),
                args: vec![convert(expr)?],
            },
            ast::Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
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
                    return Err(EngineError::NotSupported(
                        "TRIM of characters other than spaces".into(),
                    ));
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
            ast::Expr::Function(function) => self.function_to_expr(function, schema)?,
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } => {
                return Err(EngineError::NotSupported(
                    "subqueries here; they are supported in WHERE and HAVING conditions".into(),
                ))
            }
            other => return Err(EngineError::NotSupported(format!("expression {other}"))),
        })
    }

    fn function_to_expr(&self, function: &ast::Function, schema: &PlanSchema) -> Result<Expr> {
        let name = function.name.to_string().to_lowercase();
        let (args, distinct) = match &function.args {
            FunctionArguments::None => (vec![], false),
            FunctionArguments::List(list) => {
                let distinct =
                    matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                let mut args = Vec::new();
                for arg in &list.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                            args.push(Some(self.sql_to_expr(e, schema)?))
                        }
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => args.push(None),
                        other => {
                            return Err(EngineError::NotSupported(format!(
                                "function argument {other}"
                            )))
                        }
                    }
                }
                (args, distinct)
            }
            FunctionArguments::Subquery(_) => {
                return Err(EngineError::NotSupported(
                    "subquery as a function argument".into(),
                ))
            }
        };
        if function.filter.is_some() || function.over.is_some() {
            return Err(EngineError::NotSupported(format!(
                "{name}() with FILTER or OVER (window functions)"
            )));
        }
        let aggregate = match name.as_str() {
            "count" => Some(AggregateFunction::Count),
            "sum" => Some(AggregateFunction::Sum),
            "avg" | "mean" => Some(AggregateFunction::Avg),
            "min" => Some(AggregateFunction::Min),
            "max" => Some(AggregateFunction::Max),
            "first" => Some(AggregateFunction::First),
            "last" => Some(AggregateFunction::Last),
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

fn sort_key(expr: Expr, o: &ast::OrderByExpr) -> SortKey {
    let ascending = !matches!(o.options.sort, Some(ast::OrderBySort::Desc));
    // DuckDB's default: NULLS LAST in both directions.
    let nulls_first = o.options.nulls_first.unwrap_or(false);
    SortKey {
        expr,
        ascending,
        nulls_first,
    }
}

fn output_column(schema: &PlanSchema, index: usize) -> Result<Expr> {
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

fn ordinal(e: &ast::Expr) -> Result<Option<usize>> {
    if let ast::Expr::Value(v) = e {
        if let Value::Number(n, _) = &v.value {
            let n: usize = n
                .parse()
                .map_err(|_| EngineError::Plan(format!("invalid position {n}")))?;
            if n == 0 {
                return Err(EngineError::Plan(
                    "positions in ORDER BY / GROUP BY start at 1".into(),
                ));
            }
            return Ok(Some(n - 1));
        }
    }
    Ok(None)
}

fn normalize_ident(ident: &ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.contains('*') || name.ends_with(".parquet")
}

fn table_function_paths(args: &[FunctionArg]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::Value(v))) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => out.push(s.clone()),
                other => {
                    return Err(EngineError::Plan(format!(
                        "read_parquet() needs a path string, got {other}"
                    )))
                }
            },
            FunctionArg::Named { .. } | FunctionArg::ExprNamed { .. } => {
                // Options such as hive_partitioning=true: partitions are always detected.
            }
            other => {
                return Err(EngineError::Plan(format!(
                    "read_parquet() needs a path string, got {other}"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(EngineError::Plan("read_parquet() needs a path".into()));
    }
    Ok(out)
}

fn apply_alias(plan: LogicalPlan, alias: Option<&ast::TableAlias>) -> Result<LogicalPlan> {
    let Some(alias) = alias else { return Ok(plan) };
    let mut plan = plan;
    if !alias.columns.is_empty() {
        plan = rename_columns(
            plan,
            alias
                .columns
                .iter()
                .map(|c| normalize_ident(&c.name))
                .collect(),
        )?;
    }
    Ok(LogicalPlan::alias(plan, normalize_ident(&alias.name)))
}

pub(super) fn rename_columns(plan: LogicalPlan, names: Vec<String>) -> Result<LogicalPlan> {
    let schema = plan.schema().clone();
    if names.len() > schema.len() {
        return Err(EngineError::Plan(format!(
            "{} column aliases given for a relation with {} columns",
            names.len(),
            schema.len()
        )));
    }
    let exprs = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let column = Expr::Column(Column::qualified(f.qualifier.clone(), f.name()));
            match names.get(i) {
                Some(n) => column.alias(n.clone()),
                None => column,
            }
        })
        .collect();
    LogicalPlan::project(plan, exprs)
}

fn value_to_scalar(v: &Value) -> Result<ScalarValue> {
    Ok(match v {
        Value::Number(n, _) => number_literal(n)?,
        Value::SingleQuotedString(s)
        | Value::DoubleQuotedString(s)
        | Value::EscapedStringLiteral(s) => ScalarValue::utf8(s),
        Value::Boolean(b) => ScalarValue::boolean(*b),
        Value::Null => ScalarValue::null(&DataType::Null),
        other => return Err(EngineError::NotSupported(format!("literal {other}"))),
    })
}

/// Integer literals are INTEGER or BIGINT; literals with a point are exact DECIMALs; exponents
/// make a DOUBLE.
fn number_literal(n: &str) -> Result<ScalarValue> {
    if n.contains(['e', 'E']) {
        return n
            .parse::<f64>()
            .map(ScalarValue::float64)
            .map_err(|_| EngineError::Plan(format!("invalid number {n}")));
    }
    if let Some((int_part, frac_part)) = n.split_once('.') {
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let scale = frac_part.len();
        let precision = digits.len().max(scale).max(1);
        if precision > 38 {
            return n
                .parse::<f64>()
                .map(ScalarValue::float64)
                .map_err(|_| EngineError::Plan(format!("invalid number {n}")));
        }
        let value: i128 = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| EngineError::Plan(format!("invalid number {n}")))?
        };
        return ScalarValue::decimal128(value, precision as u8, scale as i8);
    }
    if let Ok(v) = n.parse::<i32>() {
        return Ok(ScalarValue::int32(v));
    }
    if let Ok(v) = n.parse::<i64>() {
        return Ok(ScalarValue::int64(v));
    }
    if let Ok(v) = n.parse::<i128>() {
        if n.len() <= 38 {
            return ScalarValue::decimal128(v, 38, 0);
        }
    }
    n.parse::<f64>()
        .map(ScalarValue::float64)
        .map_err(|_| EngineError::Plan(format!("invalid number {n}")))
}

fn date_part(name: &str) -> Result<DatePart> {
    let lower = name.to_lowercase();
    Ok(match lower.trim_end_matches('s') {
        "year" => DatePart::Year,
        "quarter" => DatePart::Quarter,
        "month" => DatePart::Month,
        "week" => DatePart::Week,
        "day" => DatePart::Day,
        "dayofweek" | "dow" => DatePart::DayOfWeek,
        "dayofyear" | "doy" => DatePart::DayOfYear,
        "hour" => DatePart::Hour,
        "minute" => DatePart::Minute,
        "second" => DatePart::Second,
        _ => return Err(EngineError::NotSupported(format!("date part {name}"))),
    })
}

fn interval_literal(interval: &ast::Interval) -> Result<ScalarValue> {
    let text = match interval.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            other => return Err(EngineError::Plan(format!("invalid interval value {other}"))),
        },
        other => {
            return Err(EngineError::NotSupported(format!(
                "non-constant interval {other}"
            )))
        }
    };
    let mut parts: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if let Some(field) = &interval.leading_field {
        parts.push(field.to_string());
    }
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    let mut i = 0;
    while i < parts.len() {
        let amount: i64 = parts[i]
            .parse()
            .map_err(|_| EngineError::Plan(format!("invalid interval '{text}'")))?;
        let unit = parts
            .get(i + 1)
            .map(|u| u.to_lowercase())
            .unwrap_or_else(|| "second".into());
        match unit.trim_end_matches('s') {
            "year" => months += 12 * amount,
            "month" => months += amount,
            "week" => days += 7 * amount,
            "day" => days += amount,
            "hour" => nanos += amount * 3_600_000_000_000,
            "minute" => nanos += amount * 60_000_000_000,
            "second" => nanos += amount * 1_000_000_000,
            other => {
                return Err(EngineError::Plan(format!(
                    "unknown interval unit '{other}'"
                )))
            }
        }
        i += 2;
    }
    Ok(ScalarValue::interval(months as i32, days as i32, nanos))
}

/// Convert a SQL type name to an Arrow type.
pub fn sql_type(t: &ast::DataType) -> Result<DataType> {
    let text = t.to_string().to_uppercase();
    let (base, params) = match text.split_once('(') {
        Some((b, p)) => (
            b.trim().to_string(),
            Some(p.trim_end_matches(')').to_string()),
        ),
        None => (text.trim().to_string(), None),
    };
    Ok(match base.as_str() {
        "TINYINT" | "INT1" => DataType::Int8,
        "SMALLINT" | "INT2" | "SHORT" => DataType::Int16,
        "INT" | "INTEGER" | "INT4" | "SIGNED" => DataType::Int32,
        "BIGINT" | "INT8" | "LONG" | "INT64" => DataType::Int64,
        "REAL" | "FLOAT4" | "FLOAT32" => DataType::Float32,
        "FLOAT" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" | "FLOAT64" => DataType::Float64,
        "DECIMAL" | "NUMERIC" | "DEC" => {
            let (p, s) = match params {
                Some(p) => {
                    let mut it = p.split(',').map(|x| x.trim().parse::<u8>());
                    let p = it.next().transpose().ok().flatten().unwrap_or(18);
                    let s = it.next().transpose().ok().flatten().unwrap_or(0);
                    (p, s)
                }
                None => (18, 3),
            };
            if p == 0 || p > 38 || s > p {
                return Err(EngineError::Type(format!("invalid DECIMAL({p},{s})")));
            }
            DataType::Decimal128(p, s as i8)
        }
        "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "CHARACTER VARYING" | "BPCHAR" => DataType::Utf8,
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "DATE" => DataType::Date32,
        "TIMESTAMP" | "DATETIME" | "TIMESTAMP WITHOUT TIME ZONE" => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        _ => return Err(EngineError::NotSupported(format!("type {t}"))),
    })
}

/// Split a join condition into equi-join key pairs (left expression, right expression) and
/// the remaining conjuncts.
pub(super) fn split_join_condition(
    condition: Expr,
    left: &PlanSchema,
    right: &PlanSchema,
) -> (Vec<(Expr, Expr)>, Vec<Expr>) {
    use crate::optimizer::references_only;
    let mut on = Vec::new();
    let mut rest = Vec::new();
    for c in condition.split_conjunction() {
        if let Expr::Binary {
            left: a,
            op: BinaryOp::Eq,
            right: b,
        } = &c
        {
            if references_only(a, left) && references_only(b, right) {
                on.push(((**a).clone(), (**b).clone()));
                continue;
            }
            if references_only(b, left) && references_only(a, right) {
                on.push(((**b).clone(), (**a).clone()));
                continue;
            }
        }
        rest.push(c);
    }
    (on, rest)
}

/// Inline CTEs that ended up referenced only once (sharing only pays for several references).
fn unshare_single_references(plan: LogicalPlan) -> Result<LogicalPlan> {
    fn count(plan: &LogicalPlan, counts: &mut HashMap<usize, usize>) {
        if let LogicalPlan::SharedCte { id, .. } = plan {
            *counts.entry(*id).or_default() += 1;
        }
        for input in plan.inputs() {
            count(input, counts);
        }
    }
    fn rewrite(plan: LogicalPlan, counts: &HashMap<usize, usize>) -> Result<LogicalPlan> {
        let plan = match plan {
            LogicalPlan::SharedCte { id, input, .. } if counts.get(&id) == Some(&1) => *input,
            other => other,
        };
        crate::optimizer::map_inputs(plan, &mut |p| rewrite(p, counts))
    }
    let mut counts = HashMap::new();
    count(&plan, &mut counts);
    rewrite(plan, &counts)
}
