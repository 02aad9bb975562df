//! SQL front end: `sqlparser` AST → logical plan.
//!
//! Supports `SELECT` with `WHERE`, `GROUP BY` (expressions, select aliases, ordinals),
//! `HAVING`, `ORDER BY` (output names, aliases, ordinals, expressions over the input,
//! `ASC/DESC`, `NULLS FIRST/LAST`), `LIMIT/OFFSET`, `DISTINCT`, `UNION [ALL]`, derived tables,
//! CTEs and subqueries in `WHERE` and `HAVING`. Tables are registered names,
//! `'path/*.parquet'` strings, or `read_parquet('...')`. Names are resolved as the plan is
//! built, so errors point at the name the user wrote.
//!
//! | module          | what it plans                                                     |
//! |-----------------|-------------------------------------------------------------------|
//! | this one        | parsing, the planner's state, shared CTEs                          |
//! | [`query`]       | a query: `WITH`, set operations, `ORDER BY` over a body, `LIMIT`  |
//! | [`select`]      | one `SELECT`: its list, grouping, `HAVING`, ordering, `DISTINCT`  |
//! | [`from`]        | `FROM`: tables, paths, derived tables, explicit joins             |
//! | [`expr`]        | SQL expressions → logical expressions, name resolution            |
//! | [`functions`]   | function calls: aggregates and the scalar function library        |
//! | [`literals`]    | literals, intervals, type names, date parts                       |
//! | [`subquery`]    | subqueries in `WHERE`/`HAVING` as joins (decorrelation)            |

mod dialect;
mod expr;
mod from;
mod functions;
mod grouping;
mod literals;
mod query;
mod read_text;
mod select;
mod subquery;
mod window;

use std::collections::HashMap;

use sqlparser::ast::{Query, Spanned, Statement};
use sqlparser::parser::{Parser, ParserError};

use crate::error::{EngineError, Result};
use crate::logical::plan::LogicalPlan;

/// Resolves table references for the SQL planner.
pub(crate) trait TableResolver {
    /// A registered table by name.
    fn table(&self, name: &str) -> Result<LogicalPlan>;
    /// A path, glob or directory given inline (`FROM 'data/*.parquet'`).
    fn path(&self, location: &str) -> Result<LogicalPlan>;
    /// CSV or NDJSON files read with `options` (`read_csv(...)`, `read_ndjson(...)`).
    fn text(&self, locations: &[String], options: ooc_io::TextOptions) -> Result<LogicalPlan>;
}

/// Parse one SQL statement.
pub(crate) fn parse_sql(sql: &str) -> Result<Query> {
    let dialect = dialect::OocDialect::default();
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

/// The error for a construct the planner does not implement: "not supported: {what}", with
/// its position in the SQL text when the parser recorded one.
pub(super) fn not_supported(what: impl std::fmt::Display, at: &impl Spanned) -> EngineError {
    let start = at.span().start;
    if start.line == 0 {
        EngineError::NotSupported(what.to_string())
    } else {
        EngineError::NotSupported(format!(
            "{what} (at line {}, column {})",
            start.line, start.column
        ))
    }
}

/// Plans SQL queries.
pub(crate) struct SqlPlanner<'a> {
    resolver: &'a dyn TableResolver,
    /// Nesting of the SQL expression being converted (see [`MAX_EXPR_DEPTH`]).
    expr_depth: std::cell::Cell<usize>,
    /// CTEs in scope, innermost last.
    ctes: Vec<HashMap<String, LogicalPlan>>,
    next_cte_id: usize,
    /// CTEs that say `AS MATERIALIZED` (true: always shared) or `AS NOT MATERIALIZED`
    /// (false: always inlined), by id.
    cte_policy: HashMap<usize, bool>,
    /// Subqueries being planned, innermost last (see [`subquery`]).
    frames: Vec<subquery::SubqueryFrame>,
    /// Counter for the hidden names of planned subqueries.
    next_subquery: usize,
    /// The named windows of the `SELECT` being planned.
    windows: HashMap<String, sqlparser::ast::WindowSpec>,
    /// Counter for the hidden names of window results.
    next_window: usize,
}

impl<'a> SqlPlanner<'a> {
    /// A planner resolving tables through `resolver`.
    pub(crate) fn new(resolver: &'a dyn TableResolver) -> Self {
        Self {
            resolver,
            expr_depth: std::cell::Cell::new(0),
            ctes: Vec::new(),
            next_cte_id: 0,
            cte_policy: HashMap::new(),
            frames: Vec::new(),
            next_subquery: 0,
            windows: HashMap::new(),
            next_window: 0,
        }
    }

    /// Plan SQL text.
    pub(crate) fn plan_sql(&mut self, sql: &str) -> Result<LogicalPlan> {
        let query = parse_sql(sql)?;
        let plan = self.plan_query(&query)?;
        unshare_single_references(plan, &self.cte_policy)
    }

    /// Enter one level of a SQL expression: an error past [`MAX_EXPR_DEPTH`] levels. The
    /// returned guard leaves the level when dropped.
    pub(super) fn enter_expr(&self) -> Result<ExprDepthGuard<'_>> {
        let depth = self.expr_depth.get() + 1;
        if depth > MAX_EXPR_DEPTH {
            return Err(EngineError::NotSupported(format!(
                "an expression nested more than {MAX_EXPR_DEPTH} levels deep (a chain of \
                 operators counts one level per operator); split it, or use IN (...) for long \
                 lists of alternatives"
            )));
        }
        self.expr_depth.set(depth);
        Ok(ExprDepthGuard(&self.expr_depth))
    }
}

pub(crate) use crate::logical::expr::MAX_EXPR_DEPTH;

/// Stack of the thread that parses and plans SQL: a parser's and planner's recursion over an
/// expression [`MAX_EXPR_DEPTH`] levels deep, and the drop of its syntax tree, fit in it with
/// room to spare (the memory is reserved, and used only as deep as the recursion goes).
pub(crate) const PLANNING_STACK: usize = 256 << 20;

/// Leaves a level of a SQL expression when dropped (see [`SqlPlanner::enter_expr`]).
pub(super) struct ExprDepthGuard<'a>(&'a std::cell::Cell<usize>);

impl Drop for ExprDepthGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Inline CTEs that ended up referenced only once (sharing only pays for several references),
/// and those that say `AS NOT MATERIALIZED`; keep those that say `AS MATERIALIZED` shared.
fn unshare_single_references(
    plan: LogicalPlan,
    policy: &HashMap<usize, bool>,
) -> Result<LogicalPlan> {
    fn count(plan: &LogicalPlan, counts: &mut HashMap<usize, usize>) {
        if let LogicalPlan::SharedCte { id, .. } = plan {
            *counts.entry(*id).or_default() += 1;
        }
        for input in plan.inputs() {
            count(input, counts);
        }
    }
    fn rewrite(plan: LogicalPlan, inline: &dyn Fn(usize) -> bool) -> Result<LogicalPlan> {
        let plan = match plan {
            LogicalPlan::SharedCte { id, input, .. } if inline(id) => *input,
            other => other,
        };
        plan.map_inputs(&mut |p| rewrite(p, inline))
    }
    let mut counts = HashMap::new();
    count(&plan, &mut counts);
    let inline = |id: usize| match policy.get(&id) {
        Some(&materialized) => !materialized,
        None => counts.get(&id) == Some(&1),
    };
    rewrite(plan, &inline)
}
