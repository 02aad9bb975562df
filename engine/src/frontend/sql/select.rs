//! One `SELECT`: the select list (wildcards expanded), `GROUP BY`, aggregates (through the
//! shared [`crate::frontend::aggregates::Aggregation`]), `HAVING`, `ORDER BY`
//! keys resolved against the select list or the input, and `DISTINCT`.

use sqlparser::ast::{self, GroupByExpr, Select, SelectItem};

use super::expr::{ordinal, output_column, sort_key};
use super::grouping::{self, GroupKeys};
use super::literals::{defined_name, normalize_ident};
use super::subquery::{self, ValueSubquery};
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::frontend::aggregates::Aggregation;
use crate::frontend::windows::Windows;
use crate::logical::expr::{Column, Expr};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::{PlanField, PlanSchema};
use crate::logical::types::coerce;

/// Where an `ORDER BY` key of a `SELECT` points.
enum OrderTarget {
    /// A column of the select list, by position.
    Output(usize),
    /// An expression over the `SELECT`'s input.
    Input(Expr),
}

impl SqlPlanner<'_> {
    pub(super) fn plan_select(
        &mut self,
        select: &Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<LogicalPlan> {
        // Every field is planned or refused here: a new field of a new parser version fails
        // to compile until it is one or the other.
        let Select {
            select_token: _,
            optimizer_hints,
            distinct: _,
            select_modifiers,
            top,
            top_before_distinct: _,
            projection: _,
            exclude,
            into,
            from: _,
            lateral_views,
            prewhere,
            selection: _,
            connect_by,
            group_by: _,
            cluster_by,
            distribute_by,
            sort_by,
            having: _,
            named_window,
            qualify,
            window_before_qualify: _,
            value_table_mode,
            // `FROM t SELECT ...` and `FROM t` (all columns) mean what `SELECT ... FROM t` does.
            flavor: _,
        } = select;
        let refused = [
            (!optimizer_hints.is_empty(), "optimizer hints"),
            (
                select_modifiers.is_some(),
                "SELECT modifiers (HIGH_PRIORITY, SQL_CACHE, ...)",
            ),
            (exclude.is_some(), "EXCLUDE after the select list"),
            (into.is_some(), "SELECT ... INTO"),
            (!lateral_views.is_empty(), "LATERAL VIEW"),
            (prewhere.is_some(), "PREWHERE"),
            (!connect_by.is_empty(), "CONNECT BY"),
            (!cluster_by.is_empty(), "CLUSTER BY"),
            (!distribute_by.is_empty(), "DISTRIBUTE BY"),
            (!sort_by.is_empty(), "SORT BY"),
            (value_table_mode.is_some(), "SELECT AS STRUCT / AS VALUE"),
        ];
        if let Some((_, what)) = refused.iter().find(|(present, _)| *present) {
            return Err(not_supported(what, select));
        }
        let top = top.as_ref().map(|t| self.top_rows(t, select)).transpose()?;
        // Named windows are in scope for this SELECT only (not its subqueries').
        let windows = self.named_windows(named_window)?;
        let outer_windows = std::mem::replace(&mut self.windows, windows);
        let planned = self.plan_select_body(select, order_by, top, qualify.as_ref());
        self.windows = outer_windows;
        planned
    }

    fn plan_select_body(
        &mut self,
        select: &Select,
        order_by: &[ast::OrderByExpr],
        top: Option<usize>,
        qualify: Option<&ast::Expr>,
    ) -> Result<LogicalPlan> {
        let Select {
            distinct,
            projection,
            from,
            selection,
            group_by,
            having,
            ..
        } = select;
        // The top SELECT of a subquery collects its correlated conjuncts.
        let subquery_top = self
            .frames
            .last_mut()
            .is_some_and(|f| std::mem::take(&mut f.pending_top));
        let relations = self.plan_from_relations(from)?;
        let mut plan = self.plan_where(relations, selection.as_ref(), subquery_top)?;
        let input_schema = plan.schema().clone();
        // What the select list's and HAVING's correlated subqueries draw outer values from.
        let where_plan = [plan.clone()];
        let outer = subquery::Outer {
            schema: &input_schema,
            sources: &where_plan,
        };

        let (mut select_exprs, select_joins) = self.select_list(projection, outer)?;
        if select_exprs
            .iter()
            .any(|e| e.columns().iter().any(subquery::is_outer))
        {
            return Err(EngineError::NotSupported(
                "correlated references in a subquery's select list".into(),
            ));
        }
        let user_select_len = select_exprs.len();
        let mut domain_marker = None;
        if subquery_top {
            let grouped =
                !matches!(group_by, ast::GroupByExpr::Expressions(keys, _) if keys.is_empty());
            let aggregating =
                grouped || having.is_some() || select_exprs.iter().any(Expr::contains_aggregate);
            // Over no rows, an aggregate without GROUP BY still gives a row; unless that row
            // is all NULL (or a count, read as 0), every outer value needs its group.
            let values = &select_exprs[..user_select_len];
            let one_row = aggregating
                && !grouped
                && match self.current_kind() {
                    Some(subquery::SubqueryKind::Lateral) => true,
                    Some(subquery::SubqueryKind::Scalar) => {
                        having.is_some()
                            || !values
                                .iter()
                                .all(|e| subquery::null_on_empty(e) || subquery::is_bare_count(e))
                    }
                    Some(subquery::SubqueryKind::In) => {
                        having.is_some() || !values.iter().all(subquery::null_on_empty)
                    }
                    _ => false,
                };
            (plan, domain_marker) = self.join_domain(plan, aggregating, one_row)?;
            if let Some(frame) = self.frames.last_mut() {
                // Grouped by exactly its correlation keys: one row per key.
                frame.one_per_key = aggregating && !grouped;
            }
        }
        let correlated_keys = if subquery_top && self.has_correlation() {
            self.export_correlated_columns(&mut select_exprs)
        } else {
            vec![]
        };

        let GroupKeys { keys, sets } =
            self.group_by_keys(group_by, &select_exprs, &input_schema)?;
        let mut group_by = keys.clone();
        if let Some(sets) = &sets {
            if !correlated_keys.is_empty() {
                return Err(EngineError::NotSupported(
                    "grouping sets in a correlated subquery".into(),
                ));
            }
            self.next_cte_id += 1;
            let (expanded, set_keys) = grouping::expand(plan, &keys, sets, self.next_cte_id)?;
            plan = expanded;
            group_by = set_keys;
        }
        // Keys (with grouping sets) and grouping() calls onto the grouped input.
        let select_exprs = select_exprs
            .into_iter()
            .map(|e| grouping::rewrite_named(e, &keys, sets.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        if !correlated_keys.is_empty()
            && (select_exprs[..user_select_len]
                .iter()
                .any(Expr::contains_aggregate)
                || having.is_some())
        {
            // An aggregate per outer row becomes an aggregate per correlation key (and per
            // group of the subquery's own GROUP BY, if any).
            if self.current_kind() == Some(subquery::SubqueryKind::Exists) {
                return Err(EngineError::NotSupported(
                    "aggregates in a correlated EXISTS subquery".into(),
                ));
            }
            for k in correlated_keys {
                if !group_by.contains(&k) {
                    group_by.push(k);
                }
            }
        }

        // HAVING, with its scalar subqueries (and the select list's) joined in after the
        // aggregation.
        let mut having_joins = select_joins;
        let having = match having {
            Some(h) => {
                let (h, joins) = self.value_subqueries(h, outer, "HAVING")?;
                having_joins.extend(joins);
                let schema = having_joins
                    .iter()
                    .fold(input_schema.clone(), |acc, j| acc.join(j.plan.schema()));
                Some(self.sql_to_expr(&h, &schema)?)
            }
            None => None,
        };
        if sets.is_some() && having_joins.iter().any(|j| !j.on.is_empty()) {
            return Err(not_supported(
                "a correlated subquery in a SELECT with grouping sets",
                select,
            ));
        }
        let having_extra = having_joins
            .iter()
            .fold(PlanSchema::default(), |acc, j| acc.join(j.plan.schema()));

        let qualify = match qualify {
            Some(q) => Some(self.sql_to_expr(q, &input_schema.join(&having_extra))?),
            None => None,
        };
        let onto_sets = |e: Expr| grouping::rewrite(e, &keys, sets.as_deref());
        let having = having.map(onto_sets).transpose()?;
        let qualify = qualify.map(onto_sets).transpose()?;
        let order_targets = self
            .order_targets(order_by, &select_exprs, &input_schema)?
            .into_iter()
            .map(|t| match t {
                OrderTarget::Input(e) => Ok(OrderTarget::Input(onto_sets(e)?)),
                other => Ok(other),
            })
            .collect::<Result<Vec<_>>>()?;
        // Rows of a domain left-joined without a match are not rows of the subquery: every
        // aggregate skips them.
        let (select_exprs, having, qualify, order_targets) = match &domain_marker {
            Some(marker) => {
                let guard = |e: Expr| subquery::skip_unmatched(e, marker);
                (
                    select_exprs
                        .into_iter()
                        .map(guard)
                        .collect::<Result<Vec<_>>>()?,
                    having.map(guard).transpose()?,
                    qualify.map(guard).transpose()?,
                    order_targets
                        .into_iter()
                        .map(|t| match t {
                            OrderTarget::Input(e) => Ok(OrderTarget::Input(guard(e)?)),
                            other => Ok(other),
                        })
                        .collect::<Result<Vec<_>>>()?,
                )
            }
            None => (select_exprs, having, qualify, order_targets),
        };
        let order_inputs = || {
            order_targets.iter().filter_map(|t| match t {
                OrderTarget::Input(e) => Some(e),
                OrderTarget::Output(_) => None,
            })
        };
        let has_aggregates = !group_by.is_empty()
            || select_exprs.iter().any(Expr::contains_aggregate)
            || having.as_ref().is_some_and(Expr::contains_aggregate)
            || qualify.as_ref().is_some_and(Expr::contains_aggregate)
            || order_inputs().any(Expr::contains_aggregate);

        let (select_exprs, having, qualify, order_targets) = if has_aggregates {
            let aggregation = Aggregation::new(
                plan,
                group_by,
                select_exprs
                    .iter()
                    .chain(having.iter())
                    .chain(qualify.iter())
                    .chain(order_inputs()),
            )?;
            let rewrite = |e: Expr| aggregation.rewrite(e, &having_extra);
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
            let qualify = qualify.map(rewrite).transpose()?;
            let order_targets = order_targets
                .into_iter()
                .map(|t| match t {
                    OrderTarget::Input(e) => Ok(OrderTarget::Input(rewrite(e)?)),
                    other => Ok(other),
                })
                .collect::<Result<Vec<_>>>()?;
            // A correlated subquery's outer side is a group key (or an expression of keys).
            for j in &mut having_joins {
                j.on = std::mem::take(&mut j.on)
                    .into_iter()
                    .map(|(o, i)| Ok((aggregation.rewrite(o, &PlanSchema::default())?, i)))
                    .collect::<Result<_>>()?;
            }
            plan = aggregation.into_plan();
            (select_exprs, having, qualify, order_targets)
        } else {
            (select_exprs, having, qualify, order_targets)
        };

        for j in having_joins {
            let join_type = j.join_type();
            plan = LogicalPlan::join(plan, j.plan, join_type, j.on, None)?;
        }
        if let Some(h) = having {
            if h.contains_window() {
                return Err(EngineError::Plan(
                    "window functions are not allowed in HAVING (filter on them with QUALIFY)"
                        .into(),
                ));
            }
            plan = LogicalPlan::filter(plan, h)?;
        }

        // Window calls, computed after grouping and HAVING, then QUALIFY on their results.
        let window_sources =
            select_exprs
                .iter()
                .chain(qualify.iter())
                .chain(order_targets.iter().filter_map(|t| match t {
                    OrderTarget::Input(e) => Some(e),
                    OrderTarget::Output(_) => None,
                }));
        let (windowed, windows) = Windows::plan(plan, window_sources, &mut self.next_window)?;
        plan = windowed;
        let mut select_exprs = select_exprs
            .into_iter()
            .map(|e| match e {
                Expr::Alias { expr, name } => Ok(windows.rewrite(*expr)?.alias(name)),
                other if other.contains_window() => {
                    let name = other.output_name();
                    Ok(windows.rewrite(other)?.alias(name))
                }
                other => Ok(other),
            })
            .collect::<Result<Vec<_>>>()?;
        let order_targets = order_targets
            .into_iter()
            .map(|t| match t {
                OrderTarget::Input(e) => Ok(OrderTarget::Input(windows.rewrite(e)?)),
                other => Ok(other),
            })
            .collect::<Result<Vec<_>>>()?;
        match qualify {
            Some(q) if !q.contains_window() => {
                return Err(EngineError::Plan(format!(
                    "QUALIFY {q} has no window function (filter with WHERE or HAVING instead)"
                )))
            }
            Some(q) => plan = LogicalPlan::filter(plan, windows.rewrite(q)?)?,
            None => {}
        }

        // Sort keys that are not in the select list become hidden projected columns.
        let visible = select_exprs.len();
        let keys = sort_positions(
            order_by,
            order_targets,
            &mut select_exprs,
            plan.schema(),
            distinct.is_some(),
        )?;
        plan = LogicalPlan::project(plan, select_exprs)?;
        if let Some(distinct) = distinct {
            if let ast::Distinct::On(_) = distinct {
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
        if let Some(rows) = top {
            plan = LogicalPlan::limit(plan, 0, Some(rows));
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

    /// The select list over `input`, wildcards expanded; an item that is not a plain column
    /// is named by its alias or its SQL text. Scalar subqueries in it (correlated by
    /// equalities or not) come back as plans to single-join before the projection; the items
    /// refer to their values.
    fn select_list(
        &mut self,
        projection: &[SelectItem],
        outer: subquery::Outer<'_>,
    ) -> Result<(Vec<Expr>, Vec<ValueSubquery>)> {
        let input = outer.schema;
        let mut select_exprs: Vec<Expr> = Vec::new();
        let mut joins: Vec<ValueSubquery> = Vec::new();
        let convert = |this: &mut Self, e: &ast::Expr, joins: &mut Vec<ValueSubquery>| {
            let (e, planned) = this.value_subqueries(e, outer, "the select list")?;
            let first_new = joins.len();
            joins.extend(planned);
            let schema = joins
                .iter()
                .fold(input.clone(), |acc, j| acc.join(j.plan.schema()));
            let mut converted = this.sql_to_expr(&e, &schema)?;
            for j in &joins[first_new..] {
                converted = j.fix_count(converted)?;
            }
            Ok::<Expr, EngineError>(converted)
        };
        for item in projection {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    let expr = convert(self, e, &mut joins)?;
                    let name = match e {
                        ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => None,
                        other => Some(other.to_string()),
                    };
                    select_exprs.push(match name {
                        Some(n) => {
                            hidden::check_user_name(&n, "column name")?;
                            expr.alias(n)
                        }
                        None => expr,
                    });
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    let converted = convert(self, expr, &mut joins)?;
                    select_exprs.push(converted.alias(defined_name(alias)?));
                }
                SelectItem::Wildcard(options) => {
                    let fields = input
                        .fields()
                        .iter()
                        .filter(|f| {
                            !subquery::is_hidden_qualifier(f.qualifier.as_deref())
                                && !hidden::is_hidden(f.name())
                        })
                        .collect();
                    select_exprs.extend(self.wildcard(fields, options, input, item)?);
                }
                SelectItem::QualifiedWildcard(kind, options) => {
                    let qualifier = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => n.to_string(),
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let fields: Vec<&PlanField> = input
                        .fields()
                        .iter()
                        .filter(|f| {
                            f.qualifier
                                .as_deref()
                                .is_some_and(|q| q.eq_ignore_ascii_case(&qualifier))
                                && !hidden::is_hidden(f.name())
                        })
                        .collect();
                    if fields.is_empty() {
                        return Err(EngineError::Plan(format!(
                            "{qualifier}.* does not match any table in FROM"
                        )));
                    }
                    select_exprs.extend(self.wildcard(fields, options, input, item)?);
                }
                other => return Err(not_supported(format!("select item {other}"), other)),
            }
        }
        Ok((select_exprs, joins))
    }

    /// The columns `*` or `t.*` stands for (`fields`), with its options applied: `EXCLUDE`
    /// (or `EXCEPT`) leaves columns out, `REPLACE (expr AS c)` computes a column instead,
    /// `RENAME (c AS d)` renames one; a name an option gives must be one of the columns.
    fn wildcard(
        &self,
        fields: Vec<&PlanField>,
        options: &ast::WildcardAdditionalOptions,
        input: &PlanSchema,
        at: &SelectItem,
    ) -> Result<Vec<Expr>> {
        let ast::WildcardAdditionalOptions {
            wildcard_token: _,
            opt_ilike,
            opt_exclude,
            opt_except,
            opt_replace,
            opt_rename,
            opt_alias,
        } = options;
        if opt_ilike.is_some() {
            return Err(not_supported("* ILIKE", at));
        }
        if opt_alias.is_some() {
            return Err(not_supported("an alias of *", at));
        }
        let names: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
        let find = |ident: &ast::Ident, clause: &str| -> Result<usize> {
            let wanted = normalize_ident(ident);
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&wanted))
                .ok_or_else(|| EngineError::ColumnNotFound {
                    name: format!("{wanted} (in {clause})"),
                    valid: names.clone(),
                    suggestion: crate::error::closest_name(
                        &wanted,
                        names.iter().map(String::as_str),
                    ),
                })
        };
        let mut excluded = vec![false; fields.len()];
        let mut excluded_names: Vec<&ast::Ident> = Vec::new();
        match opt_exclude {
            Some(ast::ExcludeSelectItem::Single(name)) => {
                excluded_names.extend(name.0.last().and_then(|p| p.as_ident()))
            }
            Some(ast::ExcludeSelectItem::Multiple(names)) => excluded_names.extend(
                names
                    .iter()
                    .filter_map(|n| n.0.last().and_then(|p| p.as_ident())),
            ),
            None => {}
        }
        if let Some(except) = opt_except {
            excluded_names.push(&except.first_element);
            excluded_names.extend(&except.additional_elements);
        }
        for ident in excluded_names {
            excluded[find(ident, "EXCLUDE")?] = true;
        }
        let mut replaced: Vec<Option<Expr>> = vec![None; fields.len()];
        if let Some(replace) = opt_replace {
            for element in &replace.items {
                let ast::ReplaceSelectElement {
                    expr,
                    column_name,
                    as_keyword: _,
                } = element.as_ref();
                let i = find(column_name, "REPLACE")?;
                replaced[i] = Some(self.sql_to_expr(expr, input)?.alias(fields[i].name()));
            }
        }
        let mut renamed: Vec<Option<String>> = vec![None; fields.len()];
        let renames: Vec<&ast::IdentWithAlias> = match opt_rename {
            Some(ast::RenameSelectItem::Single(one)) => vec![one],
            Some(ast::RenameSelectItem::Multiple(many)) => many.iter().collect(),
            None => vec![],
        };
        for rename in renames {
            let i = find(&rename.ident, "RENAME")?;
            renamed[i] = Some(defined_name(&rename.alias)?);
        }
        let mut out = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if excluded[i] {
                continue;
            }
            let mut e = replaced[i]
                .take()
                .unwrap_or_else(|| Expr::Column(Column::qualified(f.qualifier.clone(), f.name())));
            if let Some(name) = renamed[i].take() {
                e = e.unalias().alias(name);
            }
            out.push(e);
        }
        Ok(out)
    }

    /// The rows `TOP n` keeps.
    fn top_rows(&self, top: &ast::Top, at: &Select) -> Result<usize> {
        let ast::Top {
            with_ties,
            percent,
            quantity,
        } = top;
        if *with_ties {
            return Err(not_supported("TOP ... WITH TIES", at));
        }
        if *percent {
            return Err(not_supported("TOP ... PERCENT", at));
        }
        match quantity {
            Some(ast::TopQuantity::Constant(n)) => Ok(*n as usize),
            Some(ast::TopQuantity::Expr(e)) => self.constant_usize(e, "TOP"),
            None => Err(EngineError::Plan("TOP needs a row count".into())),
        }
    }

    /// `GROUP BY` expressions: expressions over the input, select-list aliases, positions in
    /// the select list, or `ALL` (every select item without an aggregate).
    /// The keys (and grouping sets) of `GROUP BY`: expressions over the input, positions in
    /// the select list, or select-list aliases; `ALL` groups by every select item without an
    /// aggregate.
    fn group_by_keys(
        &self,
        group_by: &GroupByExpr,
        select_exprs: &[Expr],
        input: &PlanSchema,
    ) -> Result<GroupKeys> {
        let (exprs, modifiers) = match group_by {
            GroupByExpr::Expressions(exprs, modifiers) => (exprs, modifiers),
            GroupByExpr::All(modifiers) => {
                if !modifiers.is_empty() {
                    return Err(EngineError::NotSupported(
                        "GROUP BY ALL with WITH ROLLUP / WITH CUBE".into(),
                    ));
                }
                return Ok(GroupKeys {
                    keys: select_exprs
                        .iter()
                        .filter(|e| !e.contains_aggregate())
                        .map(|e| e.clone().unalias())
                        .collect(),
                    sets: None,
                });
            }
        };
        let resolve = |e: &ast::Expr| -> Result<Expr> {
            if let Some(item) = grouping::select_item(e, select_exprs)? {
                return Ok(item);
            }
            match self.sql_to_expr(e, input) {
                Ok(expr) => Ok(expr),
                // A select-list alias.
                Err(err @ EngineError::ColumnNotFound { .. }) => match e {
                    ast::Expr::Identifier(ident) => select_exprs
                        .iter()
                        .find(|s| {
                            matches!(s, Expr::Alias { name, .. }
                                if name.eq_ignore_ascii_case(&ident.value))
                        })
                        .map(|s| s.clone().unalias())
                        .ok_or(err),
                    _ => Err(err),
                },
                Err(other) => Err(other),
            }
        };
        self.grouping_sets(exprs, modifiers, &resolve)
    }

    /// `ORDER BY` keys, resolved against the select list first (positions, aliases), then
    /// against the input.
    fn order_targets(
        &self,
        order_by: &[ast::OrderByExpr],
        select_exprs: &[Expr],
        input: &PlanSchema,
    ) -> Result<Vec<OrderTarget>> {
        let mut targets = Vec::with_capacity(order_by.len());
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
                        matches!(s, Expr::Alias { name, .. }
                            if name.eq_ignore_ascii_case(&ident.value))
                    }),
                    _ => None,
                };
                match by_name {
                    Some(i) => OrderTarget::Output(i),
                    None => OrderTarget::Input(self.sql_to_expr(&o.expr, input)?),
                }
            };
            targets.push(target);
        }
        Ok(targets)
    }
}

/// The select-list position of each `ORDER BY` key. A key that is not in the select list is
/// appended to it under a hidden name (and projected away after the sort); `schema` is the
/// schema the select list is evaluated against.
fn sort_positions<'o>(
    order_by: &'o [ast::OrderByExpr],
    targets: Vec<OrderTarget>,
    select_exprs: &mut Vec<Expr>,
    schema: &PlanSchema,
    distinct: bool,
) -> Result<Vec<(usize, &'o ast::OrderByExpr)>> {
    let mut keys = Vec::with_capacity(order_by.len());
    for (o, target) in order_by.iter().zip(targets) {
        let index = match target {
            OrderTarget::Output(i) => i,
            OrderTarget::Input(e) => {
                let coerced = coerce(e.clone(), schema)?;
                // A column is the same column however it is qualified (`SELECT *` lists
                // `lineitem.l_shipdate`, `ORDER BY l_shipdate` names it bare): sorting by the
                // select list's copy saves a hidden duplicate through the sort.
                let column_index = |e: &Expr| match e {
                    Expr::Column(c) => schema.index_of(c.relation.as_deref(), &c.name).ok(),
                    _ => None,
                };
                let key_column = column_index(&coerced);
                let existing = select_exprs.iter().position(|s| {
                    let s = coerce(s.clone().unalias(), schema).ok();
                    s.as_ref() == Some(&coerced)
                        || (key_column.is_some() && s.as_ref().and_then(column_index) == key_column)
                });
                match existing {
                    Some(i) => i,
                    None => {
                        if distinct {
                            return Err(EngineError::Plan(format!(
                                "for SELECT DISTINCT, ORDER BY expressions must appear in the \
                                 select list: {e}"
                            )));
                        }
                        select_exprs.push(e.alias(hidden::name(Role::SortKey, select_exprs.len())));
                        select_exprs.len() - 1
                    }
                }
            }
        };
        keys.push((index, o));
    }
    Ok(keys)
}
