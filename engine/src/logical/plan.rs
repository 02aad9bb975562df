//! Logical plans: a tree of relational operators describing *what* a query computes.
//!
//! Plans are built by the SQL front end and the dataframe builder through the checked
//! constructors here (`LogicalPlan::filter`, `LogicalPlan::project`, ...), which coerce
//! expressions and compute output schemas, so every plan that exists is well-typed. The
//! optimizer rewrites plans; the physical planner turns them into streaming operators.

use std::fmt;

use crate::error::{EngineError, Result};
use crate::logical::expr::Expr;
use crate::logical::schema::PlanSchema;

pub use crate::logical::source::{ExchangeInput, MemoryTable, ScanSource, TableScan};

/// One key of an ORDER BY.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SortKey {
    /// The sorted expression.
    pub expr: Expr,
    /// Ascending order when true.
    pub ascending: bool,
    /// NULLs before non-NULLs when true.
    pub nulls_first: bool,
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} NULLS {}",
            self.expr,
            if self.ascending { "ASC" } else { "DESC" },
            if self.nulls_first { "FIRST" } else { "LAST" }
        )
    }
}

/// How the rows of two inputs are combined.
///
/// For the semi, anti and single joins the left input is the outer query and the right input is
/// a subquery; they output only the left input's columns (single: left and right).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinType {
    /// Matching pairs.
    Inner,
    /// Matching pairs plus unmatched left rows padded with NULLs.
    Left,
    /// Matching pairs plus unmatched right rows padded with NULLs.
    Right,
    /// Matching pairs plus unmatched rows of both sides.
    Full,
    /// Left rows with at least one match (`EXISTS`, `IN`).
    Semi,
    /// Left rows without a match (`NOT EXISTS`).
    Anti,
    /// `NOT IN`: like [`Anti`](JoinType::Anti), but a NULL key on either side makes the
    /// comparison unknown, so a NULL on the right yields no rows at all.
    AntiNullAware,
    /// A scalar subquery: a left join that fails if a left row matches more than one right row.
    Single,
}

impl JoinType {
    /// True when the output has only the left input's columns.
    pub fn left_only(self) -> bool {
        matches!(
            self,
            JoinType::Semi | JoinType::Anti | JoinType::AntiNullAware
        )
    }
}

impl fmt::Display for JoinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            JoinType::Inner => "Inner",
            JoinType::Left => "Left",
            JoinType::Right => "Right",
            JoinType::Full => "Full",
            JoinType::Semi => "Semi",
            JoinType::Anti => "Anti",
            JoinType::AntiNullAware => "AntiNullAware",
            JoinType::Single => "Single",
        };
        f.write_str(s)
    }
}

/// The half of a two-phase aggregation a [`LogicalPlan::PhasedAggregate`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AggregatePhase {
    /// Raw rows in, one row of state per group out.
    Partial,
    /// States in, final values out.
    Final,
}

/// A logical plan node.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum LogicalPlan {
    /// Read a Parquet data set.
    TableScan(TableScan),
    /// Read batches already in memory.
    Memory(MemoryTable),
    /// Keep rows where the predicate is TRUE.
    Filter {
        /// Input.
        input: Box<LogicalPlan>,
        /// Boolean predicate.
        predicate: Expr,
    },
    /// Compute expressions per row.
    Projection {
        /// Input.
        input: Box<LogicalPlan>,
        /// Output expressions.
        exprs: Vec<Expr>,
        /// Output schema.
        schema: PlanSchema,
    },
    /// Group and aggregate.
    Aggregate {
        /// Input.
        input: Box<LogicalPlan>,
        /// Grouping expressions (empty: one global group).
        group_by: Vec<Expr>,
        /// Aggregate expressions (`Expr::Aggregate`, possibly aliased).
        aggregates: Vec<Expr>,
        /// Output schema: group columns then aggregates.
        schema: PlanSchema,
    },
    /// One half of an aggregation split between the tasks of a distributed query (see
    /// `crate::distributed`); never produced by front ends or the optimizer.
    PhasedAggregate {
        /// Raw rows (`Partial`) or the partial states of every task (`Final`).
        input: Box<LogicalPlan>,
        /// Which half.
        phase: AggregatePhase,
        /// The aggregation's grouping expressions, over `raw_input`.
        group_by: Vec<Expr>,
        /// Its aggregate expressions, over `raw_input`.
        aggregates: Vec<Expr>,
        /// The columns the aggregation was written over (the input of `Partial`).
        raw_input: PlanSchema,
        /// Output schema: the states (`group_0`, ..., then each aggregate's state columns)
        /// for `Partial`; the aggregation's own for `Final`.
        schema: PlanSchema,
    },
    /// Compute window functions: the input's columns, then one column per call.
    Window {
        /// Input.
        input: Box<LogicalPlan>,
        /// Window calls (`Expr::Window`, aliased), all with the same partitioning and
        /// ordering: one sort serves them all.
        exprs: Vec<Expr>,
        /// Output schema.
        schema: PlanSchema,
    },
    /// Order rows; with `fetch`, keep only the first rows (top-k).
    Sort {
        /// Input.
        input: Box<LogicalPlan>,
        /// Sort keys, most significant first.
        keys: Vec<SortKey>,
        /// Keep only this many rows.
        fetch: Option<usize>,
    },
    /// Skip and fetch rows.
    Limit {
        /// Input.
        input: Box<LogicalPlan>,
        /// Rows to skip.
        skip: usize,
        /// Rows to return after skipping (`None`: all).
        fetch: Option<usize>,
    },
    /// Re-qualify the input's columns (derived tables, CTE references).
    SubqueryAlias {
        /// Input.
        input: Box<LogicalPlan>,
        /// The alias.
        alias: String,
        /// Output schema.
        schema: PlanSchema,
    },
    /// A single row without columns (`SELECT 1`).
    EmptyRow {
        /// Always empty.
        schema: PlanSchema,
    },
    /// Combine two inputs.
    Join {
        /// Left input (the outer query for semi, anti and single joins).
        left: Box<LogicalPlan>,
        /// Right input.
        right: Box<LogicalPlan>,
        /// Join semantics.
        join_type: JoinType,
        /// Equi-join keys: (expression over the left input, expression over the right input),
        /// both of the same type. Empty for a cross join.
        on: Vec<(Expr, Expr)>,
        /// Residual condition over the left columns followed by the right columns.
        filter: Option<Expr>,
        /// Output schema.
        schema: PlanSchema,
    },
    /// `UNION ALL` of inputs with the same column types (names from the first).
    Union {
        /// Inputs.
        inputs: Vec<LogicalPlan>,
        /// Output schema.
        schema: PlanSchema,
    },
    /// A common table expression referenced more than once: computed once and replayed to
    /// every reference (references share `id`).
    SharedCte {
        /// Identity shared by all references.
        id: usize,
        /// The CTE's name.
        name: String,
        /// The CTE's plan.
        input: Box<LogicalPlan>,
    },
}

impl LogicalPlan {
    /// The output schema.
    pub fn schema(&self) -> &PlanSchema {
        match self {
            LogicalPlan::TableScan(scan) => scan.schema(),
            LogicalPlan::Memory(table) => table.schema(),
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. } => input.schema(),
            LogicalPlan::Projection { schema, .. }
            | LogicalPlan::Aggregate { schema, .. }
            | LogicalPlan::PhasedAggregate { schema, .. }
            | LogicalPlan::Window { schema, .. }
            | LogicalPlan::SubqueryAlias { schema, .. }
            | LogicalPlan::EmptyRow { schema }
            | LogicalPlan::Join { schema, .. }
            | LogicalPlan::Union { schema, .. } => schema,
            LogicalPlan::SharedCte { input, .. } => input.schema(),
        }
    }

    /// Direct inputs.
    pub fn inputs(&self) -> Vec<&LogicalPlan> {
        match self {
            LogicalPlan::TableScan(_) | LogicalPlan::Memory(_) | LogicalPlan::EmptyRow { .. } => {
                vec![]
            }
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Projection { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::PhasedAggregate { input, .. }
            | LogicalPlan::Window { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. }
            | LogicalPlan::SubqueryAlias { input, .. }
            | LogicalPlan::SharedCte { input, .. } => vec![input],
            LogicalPlan::Join { left, right, .. } => vec![left, right],
            LogicalPlan::Union { inputs, .. } => inputs.iter().collect(),
        }
    }

    /// Rebuild the plan with `f` applied to each input (a leaf is returned as it is).
    pub(crate) fn map_inputs(
        self,
        f: &mut dyn FnMut(LogicalPlan) -> Result<LogicalPlan>,
    ) -> Result<LogicalPlan> {
        let inputs = self
            .inputs()
            .into_iter()
            .cloned()
            .map(&mut *f)
            .collect::<Result<Vec<_>>>()?;
        if inputs.is_empty() {
            return Ok(self);
        }
        self.with_new_inputs(inputs)
    }

    /// The same plan with its scans numbered 1, 2, ... in depth-first order, so that the
    /// physical planner can tell every scan apart (two scans of one table, or the two sides of
    /// a self-join built from one dataframe, are different scans).
    pub(crate) fn number_scans(self) -> Result<LogicalPlan> {
        fn number(plan: LogicalPlan, next: &mut usize) -> Result<LogicalPlan> {
            match plan {
                LogicalPlan::TableScan(mut scan) => {
                    *next += 1;
                    scan.id = *next;
                    Ok(LogicalPlan::TableScan(scan))
                }
                other => other.map_inputs(&mut |p| number(p, next)),
            }
        }
        number(self, &mut 0)
    }

    /// Rebuild this node over new inputs (same number and order as [`inputs`](Self::inputs)).
    pub(crate) fn with_new_inputs(&self, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        let mut next = || {
            inputs
                .pop()
                .ok_or_else(|| EngineError::Internal("missing plan input".into()))
        };
        Ok(match self {
            LogicalPlan::TableScan(_) | LogicalPlan::Memory(_) | LogicalPlan::EmptyRow { .. } => {
                self.clone()
            }
            LogicalPlan::Filter { predicate, .. } => LogicalPlan::Filter {
                input: Box::new(next()?),
                predicate: predicate.clone(),
            },
            LogicalPlan::Projection { exprs, .. } => LogicalPlan::project(next()?, exprs.clone())?,
            LogicalPlan::Aggregate {
                group_by,
                aggregates,
                ..
            } => LogicalPlan::aggregate(next()?, group_by.clone(), aggregates.clone())?,
            LogicalPlan::PhasedAggregate {
                phase,
                group_by,
                aggregates,
                raw_input,
                schema,
                ..
            } => LogicalPlan::PhasedAggregate {
                input: Box::new(next()?),
                phase: *phase,
                group_by: group_by.clone(),
                aggregates: aggregates.clone(),
                raw_input: raw_input.clone(),
                schema: schema.clone(),
            },
            LogicalPlan::Window { exprs, .. } => LogicalPlan::window(next()?, exprs.clone())?,
            LogicalPlan::Sort { keys, fetch, .. } => LogicalPlan::Sort {
                input: Box::new(next()?),
                keys: keys.clone(),
                fetch: *fetch,
            },
            LogicalPlan::Limit { skip, fetch, .. } => LogicalPlan::Limit {
                input: Box::new(next()?),
                skip: *skip,
                fetch: *fetch,
            },
            LogicalPlan::SubqueryAlias { alias, .. } => LogicalPlan::alias(next()?, alias.clone()),
            LogicalPlan::SharedCte { id, name, .. } => LogicalPlan::SharedCte {
                id: *id,
                name: name.clone(),
                input: Box::new(next()?),
            },
            LogicalPlan::Join {
                join_type,
                on,
                filter,
                ..
            } => {
                let right = next()?;
                let left = next()?;
                LogicalPlan::join(left, right, *join_type, on.clone(), filter.clone())?
            }
            LogicalPlan::Union { .. } => LogicalPlan::union(std::mem::take(&mut inputs))?,
        })
    }

    /// An indented, one-node-per-line rendering.
    pub fn display_indent(&self) -> String {
        let mut out = String::new();
        self.fmt_indent(&mut out, 0);
        out
    }

    fn fmt_indent(&self, out: &mut String, depth: usize) {
        out.push_str(&"  ".repeat(depth));
        match self {
            LogicalPlan::TableScan(scan) => {
                out.push_str(&format!(
                    "TableScan: {} columns=[{}]",
                    scan.table_name,
                    scan.projected_names().join(", ")
                ));
                if !scan.filters.is_empty() {
                    let f: Vec<String> = scan.filters.iter().map(|e| e.to_string()).collect();
                    out.push_str(&format!(" filters=[{}]", f.join(", ")));
                }
                if let Some(fetch) = scan.fetch {
                    out.push_str(&format!(" fetch={fetch}"));
                }
                if let Some(split) = &scan.split {
                    out.push_str(&format!(" row_groups={}", split.len()));
                }
            }
            LogicalPlan::Filter { predicate, .. } => out.push_str(&format!("Filter: {predicate}")),
            LogicalPlan::Projection { exprs, .. } => {
                let e: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
                out.push_str(&format!("Projection: {}", e.join(", ")));
            }
            LogicalPlan::Aggregate {
                group_by,
                aggregates,
                ..
            } => out.push_str(&format!("Aggregate: {}", aggregation(group_by, aggregates))),
            LogicalPlan::PhasedAggregate {
                phase,
                group_by,
                aggregates,
                ..
            } => out.push_str(&format!(
                "Aggregate({phase:?}): {}",
                aggregation(group_by, aggregates)
            )),
            LogicalPlan::Window { exprs, .. } => {
                let e: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
                out.push_str(&format!("Window: {}", e.join(", ")));
            }
            LogicalPlan::Sort { keys, fetch, .. } => {
                let k: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                out.push_str(&format!("Sort: {}", k.join(", ")));
                if let Some(fetch) = fetch {
                    out.push_str(&format!(" fetch={fetch}"));
                }
            }
            LogicalPlan::Limit { skip, fetch, .. } => out.push_str(&format!(
                "Limit: skip={skip} fetch={}",
                fetch.map_or("all".into(), |f| f.to_string())
            )),
            LogicalPlan::SubqueryAlias { alias, .. } => {
                out.push_str(&format!("SubqueryAlias: {alias}"))
            }
            LogicalPlan::EmptyRow { .. } => out.push_str("EmptyRow"),
            LogicalPlan::Memory(table) => out.push_str(&format!(
                "MemoryTable: {} ({} rows in {} batches)",
                table.name,
                table.num_rows(),
                table.batches.len()
            )),
            LogicalPlan::Join {
                join_type,
                on,
                filter,
                ..
            } => {
                let keys: Vec<String> = on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
                out.push_str(&format!("Join: {join_type} on=[{}]", keys.join(", ")));
                if let Some(f) = filter {
                    out.push_str(&format!(" filter={f}"));
                }
            }
            LogicalPlan::Union { .. } => out.push_str("Union"),
            LogicalPlan::SharedCte { id, name, .. } => {
                out.push_str(&format!("SharedCte: {name} #{id}"))
            }
        }
        out.push('\n');
        for input in self.inputs() {
            input.fmt_indent(out, depth + 1);
        }
    }
}

/// `group_by=[...] aggregates=[...]`, as plans display an aggregation.
fn aggregation(group_by: &[Expr], aggregates: &[Expr]) -> String {
    let list = |exprs: &[Expr]| {
        exprs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "group_by=[{}] aggregates=[{}]",
        list(group_by),
        list(aggregates)
    )
}
