//! `FROM`: registered tables, paths, `read_parquet(...)` and the text readers
//! ([`read_text`](super::read_text)), CTE references, derived tables
//! with their aliases, and explicit joins (`JOIN ... ON/USING`), whose one-sided conditions
//! filter the side they may filter before the join.

use sqlparser::ast::{self, FunctionArg, FunctionArgExpr, ObjectNamePart, TableFactor, Value};

use super::literals::defined_name;
use super::read_text::{text_function_args, TextFunction};
use super::subquery;
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::logical::expr::{BinaryOp, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;

impl SqlPlanner<'_> {
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
        let mut relations: Vec<LogicalPlan> = Vec::with_capacity(from.len());
        for twj in from {
            let ast::TableWithJoins { relation, joins } = twj;
            let mut plan = match lateral(relation) {
                // `FROM a, b, LATERAL (...)`: joined with everything before it.
                Some((query, alias)) => {
                    let mut before = relations.iter().cloned();
                    let first = before.next().unwrap_or_else(LogicalPlan::empty_row);
                    let left = before.try_fold(first, |a, b| {
                        LogicalPlan::join(a, b, JoinType::Inner, vec![], None)
                    })?;
                    // Outer values come from the one relation that has them all, or else
                    // from all of them together.
                    let mut sources = std::mem::take(&mut relations);
                    sources.push(left.clone());
                    self.lateral_join(left, &sources, query, alias, JoinType::Inner, None)?
                }
                None => self.plan_table_factor(relation)?,
            };
            for join in joins {
                let ast::Join {
                    relation,
                    global,
                    join_operator,
                } = join;
                if *global {
                    return Err(not_supported("GLOBAL JOIN", join));
                }
                if let Some((query, alias)) = lateral(relation) {
                    use ast::JoinOperator as J;
                    let (join_type, condition) = match join_operator {
                        J::CrossJoin(ast::JoinConstraint::None) => (JoinType::Inner, None),
                        J::Join(c) | J::Inner(c) => (JoinType::Inner, lateral_condition(c, join)?),
                        J::Left(c) | J::LeftOuter(c) => {
                            (JoinType::Left, lateral_condition(c, join)?)
                        }
                        _ => return Err(not_supported("this join with a LATERAL subquery", join)),
                    };
                    let sources = [plan.clone()];
                    plan = self.lateral_join(plan, &sources, query, alias, join_type, condition)?;
                    continue;
                }
                let right = self.plan_table_factor(relation)?;
                plan = self.plan_explicit_join(plan, right, join_operator)?;
            }
            relations.push(plan);
        }
        Ok(relations)
    }

    /// `left JOIN LATERAL (query) alias ON condition`: the subquery, planned with `left`'s
    /// columns in scope (outer values drawn from `sources`), joined on its correlation and
    /// `condition`.
    fn lateral_join(
        &mut self,
        left: LogicalPlan,
        sources: &[LogicalPlan],
        query: &ast::Query,
        alias: Option<&ast::TableAlias>,
        join_type: JoinType,
        condition: Option<&ast::Expr>,
    ) -> Result<LogicalPlan> {
        let (right, correlation) = self.plan_lateral(&left, sources, query, alias)?;
        let mut conditions: Vec<Expr> = correlation
            .on
            .into_iter()
            .map(|(l, r)| l.binary(BinaryOp::Eq, r))
            .chain(correlation.residual)
            .collect();
        if let Some(c) = condition {
            let combined = left.schema().join(right.schema());
            conditions.push(self.sql_to_expr(c, &combined)?);
        }
        match Expr::conjunction(conditions) {
            Some(c) => self.join_on(left, right, join_type, c),
            None => LogicalPlan::join(left, right, join_type, vec![], None),
        }
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
        // Conditions with subqueries (`ON a.k = b.k AND b.x IN (SELECT ...)`) are planned as
        // the WHERE of one side, or of an inner join's result.
        let mut with_subqueries = Vec::new();
        let mut plain = Vec::new();
        if let ast::JoinConstraint::On(e) = constraint {
            let mut conjuncts = Vec::new();
            subquery::split_ast_conjunction(e, &mut conjuncts);
            for c in conjuncts {
                if subquery::contains_subquery(&c) {
                    with_subqueries.push(c);
                } else {
                    plain.push(c);
                }
            }
        }
        if !with_subqueries.is_empty() {
            return self.join_with_subqueries(left, right, join_type, plain, with_subqueries);
        }
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
        if condition.columns().iter().any(subquery::is_outer) {
            return Err(EngineError::NotSupported(
                "correlated references in a JOIN condition".into(),
            ));
        }
        self.join_on(left, right, join_type, condition)
    }

    /// `left JOIN right ON condition`: equalities between the sides become keys, conditions
    /// on one side filter it where the join type allows, the rest is the residual condition.
    fn join_on(
        &self,
        left: LogicalPlan,
        right: LogicalPlan,
        join_type: JoinType,
        condition: Expr,
    ) -> Result<LogicalPlan> {
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
            let refs_left = c.references_only(left.schema());
            let refs_right = c.references_only(right.schema());
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

    /// A join whose ON condition has conjuncts with subqueries. For an inner join: the join on
    /// the other conjuncts, then those as its WHERE (where subqueries become semi joins and
    /// the like, as in any WHERE). For the other joins, each subquery is joined, by its value
    /// (a single join on its correlation keys), to the side whose columns it uses, and the
    /// condition reads its value like any column of that side.
    fn join_with_subqueries(
        &mut self,
        left: LogicalPlan,
        right: LogicalPlan,
        join_type: JoinType,
        plain: Vec<ast::Expr>,
        with_subqueries: Vec<ast::Expr>,
    ) -> Result<LogicalPlan> {
        let and = |parts: Vec<ast::Expr>| {
            parts.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
                left: Box::new(a),
                op: ast::BinaryOperator::And,
                right: Box::new(b),
            })
        };
        let Some(condition) = and(with_subqueries) else {
            return Err(EngineError::Internal("no subquery condition".into()));
        };
        if join_type == JoinType::Inner {
            let on = ast::JoinConstraint::On(
                and(plain).unwrap_or(ast::Expr::value(ast::Value::Boolean(true))),
            );
            let joined = self.plan_explicit_join(left, right, &ast::JoinOperator::Inner(on))?;
            return self.plan_where(vec![joined], Some(&condition), false);
        }
        let combined = left.schema().join(right.schema());
        let sides = [left, right];
        let outer = subquery::Outer {
            schema: &combined,
            sources: &sides,
        };
        let (rewritten, subqueries) =
            self.value_subqueries(&condition, outer, "a JOIN condition")?;
        let [mut left, mut right] = sides;
        let mut counts = Vec::new();
        for sq in subqueries {
            let refs: Vec<Column> = sq.on.iter().flat_map(|(o, _)| o.columns()).collect();
            let resolves = |schema: &PlanSchema| {
                refs.iter().all(|c| {
                    matches!(
                        schema.try_index_of(c.relation.as_deref(), &c.name),
                        Ok(Some(_))
                    )
                })
            };
            let on_left = resolves(left.schema());
            if !on_left && !resolves(right.schema()) {
                return Err(not_supported(
                    "a subquery in a JOIN condition correlated with columns of both sides",
                    &condition,
                ));
            }
            let side = if on_left { &mut left } else { &mut right };
            let plan = std::mem::replace(side, LogicalPlan::empty_row());
            *side = LogicalPlan::join(plan, sq.plan.clone(), sq.join_type(), sq.on.clone(), None)?;
            counts.push(sq);
        }
        let combined = left.schema().join(right.schema());
        let mut subquery_condition = self.sql_to_expr(&rewritten, &combined)?;
        for sq in &counts {
            subquery_condition = sq.fix_count(subquery_condition)?;
        }
        let plain = match and(plain) {
            Some(p) => Some(self.sql_to_expr(&p, &combined)?),
            None => None,
        };
        let condition = match plain {
            Some(p) => p.binary(BinaryOp::And, subquery_condition),
            None => subquery_condition,
        };
        self.join_on(left, right, join_type, condition)
    }

    fn plan_table_factor(&mut self, factor: &TableFactor) -> Result<LogicalPlan> {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_directives,
                inheritance,
            } => {
                let refused = [
                    (!with_hints.is_empty(), "table hints (WITH (...))"),
                    (version.is_some(), "time travel (FOR SYSTEM_TIME / AT)"),
                    (*with_ordinality, "WITH ORDINALITY"),
                    (!partitions.is_empty(), "PARTITION (...) selection"),
                    (json_path.is_some(), "a JSON path on a table"),
                    (sample.is_some(), "TABLESAMPLE"),
                    (!index_directives.is_empty(), "index hints"),
                    (inheritance.is_some(), "ONLY / table inheritance"),
                ];
                if let Some((_, what)) = refused.iter().find(|(present, _)| *present) {
                    return Err(not_supported(what, factor));
                }
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .map(|p| match p {
                        ObjectNamePart::Identifier(i) => Ok(i.value.clone()),
                        other => Err(not_supported(format!("table name part {other}"), factor)),
                    })
                    .collect::<Result<_>>()?;
                let plan = if let Some(args) = args {
                    let ast::TableFunctionArgs { args, settings } = args;
                    if settings.is_some() {
                        return Err(not_supported("SETTINGS in a table function", factor));
                    }
                    let function = parts.join(".").to_lowercase();
                    if let Some(text) = TextFunction::from_name(&function) {
                        let (locations, options) =
                            text_function_args(text, &function, args, factor)?;
                        let plan = self.resolver.text(&locations, options)?;
                        return apply_alias(plan, alias.as_ref());
                    }
                    if function != "read_parquet" && function != "parquet_scan" {
                        return Err(not_supported(
                            format!(
                                "table function {function}(); the table functions are \
                                 read_parquet, read_csv and read_ndjson (read_json)"
                            ),
                            factor,
                        ));
                    }
                    let (location, hive) = table_function_args(args, factor)?;
                    let plan = self.resolver.path(&location)?;
                    if hive {
                        plan
                    } else {
                        without_partition_columns(plan)?
                    }
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
                lateral,
                subquery,
                alias,
                sample,
            } => {
                if *lateral {
                    return Err(not_supported("LATERAL", factor));
                }
                if sample.is_some() {
                    return Err(not_supported("TABLESAMPLE", factor));
                }
                let mut plan = self.plan_query(subquery)?;
                // Repeated names (`SELECT 1 AS a, 2 AS a`) become `a`, `a_1` in a derived
                // table, so that each column can be referenced.
                if let Some(names) = plan.distinct_output_names() {
                    plan = plan.rename_outputs(&names)?;
                }
                match alias {
                    Some(a) => apply_alias(plan, Some(a)),
                    None => Ok(LogicalPlan::alias(plan, "subquery")),
                }
            }
            other => Err(not_supported(format!("FROM {other}"), other)),
        }
    }
}

fn looks_like_path(name: &str) -> bool {
    name.contains('/')
        || name.contains('*')
        || name.ends_with(".parquet")
        || ooc_io::TextFormat::from_path(name).is_some()
}

fn table_function_args(args: &[FunctionArg], at: &TableFactor) -> Result<(String, bool)> {
    let mut locations = Vec::new();
    let mut hive = true;
    for arg in args {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::Value(v))) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    locations.push(s.clone())
                }
                other => {
                    return Err(EngineError::Plan(format!(
                        "read_parquet() needs a path string, got {other}"
                    )))
                }
            },
            // `name = value`, `name => value` and `name := value` are one.
            FunctionArg::Named {
                name,
                arg,
                operator: _,
            } => {
                // `hive_partitioning`: columns from key=value folders (the default: true).
                let value = match arg {
                    FunctionArgExpr::Expr(ast::Expr::Value(v)) => match &v.value {
                        Value::Boolean(b) => Some(*b),
                        _ => None,
                    },
                    _ => None,
                };
                match (name.value.to_lowercase().as_str(), value) {
                    ("hive_partitioning", Some(b)) => hive = b,
                    (option, _) => {
                        return Err(not_supported(
                            format!("read_parquet option {option} = {arg}"),
                            at,
                        ))
                    }
                }
            }
            other => {
                return Err(EngineError::Plan(format!(
                    "read_parquet() needs a path string, got {other}"
                )))
            }
        }
    }
    match locations.as_slice() {
        [one] => Ok((one.clone(), hive)),
        [] => Err(EngineError::Plan("read_parquet() needs a path".into())),
        _ => Err(not_supported(
            "read_parquet with several paths; use a glob",
            at,
        )),
    }
}

/// A scan without the columns that come from `key=value` folders.
fn without_partition_columns(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::TableScan(scan) = &plan else {
        return Ok(plan);
    };
    let folders = scan.source.partition_columns().to_vec();
    if folders.is_empty() {
        return Ok(plan);
    }
    let keep: Vec<Expr> = plan
        .schema()
        .fields()
        .iter()
        .filter(|f| !folders.iter().any(|c| c == f.name()))
        .map(|f| Expr::Column(Column::qualified(f.qualifier.clone(), f.name())))
        .collect();
    LogicalPlan::project(plan, keep)
}

fn apply_alias(plan: LogicalPlan, alias: Option<&ast::TableAlias>) -> Result<LogicalPlan> {
    let Some(alias) = alias else { return Ok(plan) };
    let (name, columns) = alias_parts(alias)?;
    let plan = if columns.is_empty() {
        plan
    } else {
        rename_columns(plan, columns)?
    };
    Ok(LogicalPlan::alias(plan, name))
}

/// The name and column names of `AS name (columns)`, refused when it says more (column types,
/// `AT`).
pub(super) fn alias_parts(alias: &ast::TableAlias) -> Result<(String, Vec<String>)> {
    let ast::TableAlias {
        explicit: _,
        name,
        columns,
        at,
    } = alias;
    if at.is_some() {
        return Err(not_supported("a table alias with AT", alias));
    }
    let mut names = Vec::with_capacity(columns.len());
    for column in columns {
        let ast::TableAliasColumnDef { name, data_type } = column;
        if let Some(t) = data_type {
            return Err(not_supported(
                format!("a column type ({t}) in a table alias"),
                alias,
            ));
        }
        names.push(defined_name(name)?);
    }
    Ok((defined_name(name)?, names))
}

pub(super) fn rename_columns(plan: LogicalPlan, names: Vec<String>) -> Result<LogicalPlan> {
    if names.len() > plan.schema().len() {
        return Err(EngineError::Plan(format!(
            "{} column aliases given for a relation with {} columns",
            names.len(),
            plan.schema().len()
        )));
    }
    plan.rename_outputs(&names)
}

/// Split a join condition into equi-join key pairs (left expression, right expression) and
/// the remaining conjuncts.
pub(super) fn split_join_condition(
    condition: Expr,
    left: &PlanSchema,
    right: &PlanSchema,
) -> (Vec<(Expr, Expr)>, Vec<Expr>) {
    let mut on = Vec::new();
    let mut rest = Vec::new();
    for c in condition.split_conjunction() {
        if let Expr::Binary {
            left: a,
            op: BinaryOp::Eq,
            right: b,
        } = &c
        {
            if a.references_only(left) && b.references_only(right) {
                on.push(((**a).clone(), (**b).clone()));
                continue;
            }
            if b.references_only(left) && a.references_only(right) {
                on.push(((**b).clone(), (**a).clone()));
                continue;
            }
        }
        rest.push(c);
    }
    (on, rest)
}

/// The subquery and alias of a `LATERAL` derived table.
fn lateral(factor: &TableFactor) -> Option<(&ast::Query, Option<&ast::TableAlias>)> {
    match factor {
        TableFactor::Derived {
            lateral: true,
            subquery,
            alias,
            sample: None,
        } => Some((subquery, alias.as_ref())),
        _ => None,
    }
}

/// The ON condition of a join with a `LATERAL` subquery (USING is refused).
fn lateral_condition<'a>(
    constraint: &'a ast::JoinConstraint,
    join: &ast::Join,
) -> Result<Option<&'a ast::Expr>> {
    match constraint {
        ast::JoinConstraint::On(e) => Ok(Some(e)),
        ast::JoinConstraint::None => Ok(None),
        _ => Err(not_supported(
            "USING or NATURAL with a LATERAL subquery",
            join,
        )),
    }
}
