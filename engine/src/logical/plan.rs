//! Logical plans: a tree of relational operators describing *what* a query computes.
//!
//! Plans are built by the SQL front end and the dataframe builder through the checked
//! constructors here (`LogicalPlan::filter`, `LogicalPlan::project`, ...), which coerce
//! expressions and compute output schemas, so every plan that exists is well-typed. The
//! optimizer rewrites plans; the physical planner turns them into streaming operators.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use ooc_io::ParquetDataset;

use crate::error::{plan_err, EngineError, Result};
use crate::logical::expr::{Column, Expr};
use crate::logical::hidden;
use crate::logical::schema::{PlanField, PlanSchema};
use crate::logical::types::coerce;

/// One key of an ORDER BY.
#[derive(Clone, Debug, PartialEq)]
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

/// A scan of a Parquet data set with the projection, filters and limit pushed into it.
#[derive(Clone)]
pub struct TableScan {
    /// Name or alias the scan's columns are qualified with.
    pub table_name: String,
    /// The files.
    pub dataset: Arc<ParquetDataset>,
    /// Indices into the data set's schema of the columns read (`None`: all).
    pub projection: Option<Vec<usize>>,
    /// Predicates the scan must apply (also used to prune files and row groups).
    pub filters: Vec<Expr>,
    /// Stop after this many rows (only set when no filter remains above).
    pub fetch: Option<usize>,
    schema: PlanSchema,
    /// Identifies the scan within one plan (see [`LogicalPlan::number_scans`]).
    id: usize,
}

impl TableScan {
    /// A scan of all columns. Fails if a column name could be taken for one of planning's
    /// hidden names (see [`crate::logical::hidden`]).
    pub(crate) fn try_new(
        table_name: impl Into<String>,
        dataset: Arc<ParquetDataset>,
    ) -> Result<Self> {
        let table_name = table_name.into();
        let arrow_schema = dataset.schema();
        for field in arrow_schema.fields() {
            hidden::check_user_name(field.name(), "column name")?;
        }
        let schema = PlanSchema::from_arrow(Some(&table_name), &arrow_schema);
        Ok(Self {
            table_name,
            dataset,
            projection: None,
            filters: Vec::new(),
            fetch: None,
            schema,
            id: 0,
        })
    }

    /// The scan's number in its plan, once [`LogicalPlan::number_scans`] has run (0 before).
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// The full (unprojected) schema of the data set, qualified by the table name.
    pub(crate) fn source_schema(&self) -> PlanSchema {
        PlanSchema::from_arrow(Some(&self.table_name), &self.dataset.schema())
    }

    /// Restrict the columns read.
    pub(crate) fn with_projection(mut self, projection: Option<Vec<usize>>) -> Self {
        let source = self.source_schema();
        self.schema = match &projection {
            Some(indices) => {
                PlanSchema::new(indices.iter().map(|&i| source.field(i).clone()).collect())
            }
            None => source,
        };
        self.projection = projection;
        self
    }

    /// The output schema.
    pub fn schema(&self) -> &PlanSchema {
        &self.schema
    }

    /// Names of the projected columns in output order.
    pub(crate) fn projected_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }
}

impl fmt::Debug for TableScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableScan")
            .field("table_name", &self.table_name)
            .field("projection", &self.projection)
            .field("filters", &self.filters)
            .field("fetch", &self.fetch)
            .finish()
    }
}

/// Record batches already in memory (e.g. handed over from Python through the Arrow C stream
/// interface). They are owned by the caller and shared, not copied, so they are not counted
/// against the query's memory budget.
#[derive(Clone)]
pub struct MemoryTable {
    /// Name the columns are qualified with.
    pub name: String,
    /// The batches, all with the same schema.
    pub batches: Arc<Vec<arrow::array::RecordBatch>>,
    schema: PlanSchema,
}

impl MemoryTable {
    /// A table over `batches` of `schema`. Fails if a batch has a different schema.
    pub(crate) fn try_new(
        name: impl Into<String>,
        schema: arrow::datatypes::SchemaRef,
        batches: Vec<arrow::array::RecordBatch>,
    ) -> Result<Self> {
        let name = name.into();
        for field in schema.fields() {
            hidden::check_user_name(field.name(), "column name")?;
        }
        for batch in &batches {
            let fields = batch.schema_ref().fields();
            let same = fields.len() == schema.fields().len()
                && fields
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.data_type() == b.data_type());
            if !same {
                return plan_err(format!(
                    "in-memory table {name}: a batch has schema {:?}, expected {:?}",
                    batch.schema_ref(),
                    schema
                ));
            }
        }
        let plan_schema = PlanSchema::from_arrow(Some(&name), &schema);
        Ok(Self {
            name,
            batches: Arc::new(batches),
            schema: plan_schema,
        })
    }

    /// The output schema.
    pub fn schema(&self) -> &PlanSchema {
        &self.schema
    }

    /// Total rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

impl fmt::Debug for MemoryTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTable")
            .field("name", &self.name)
            .field("batches", &self.batches.len())
            .field("rows", &self.num_rows())
            .finish()
    }
}

/// How the rows of two inputs are combined.
///
/// For the semi, anti and single joins the left input is the outer query and the right input is
/// a subquery; they output only the left input's columns (single: left and right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A logical plan node.
#[derive(Clone, Debug)]
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

    /// A single row with no columns.
    pub(crate) fn empty_row() -> Self {
        LogicalPlan::EmptyRow {
            schema: PlanSchema::default(),
        }
    }

    /// `input WHERE predicate` (type-checked; the predicate must be BOOLEAN).
    pub(crate) fn filter(input: LogicalPlan, predicate: Expr) -> Result<Self> {
        let predicate = coerce(predicate, input.schema())?;
        if predicate.contains_aggregate() {
            return plan_err("aggregate functions are not allowed in WHERE");
        }
        let t = predicate.data_type(input.schema())?;
        if !matches!(t, DataType::Boolean | DataType::Null) {
            return Err(EngineError::Type(format!(
                "filter predicate must be BOOLEAN, got {} ({predicate})",
                crate::logical::types::sql_type_name(&t)
            )));
        }
        Ok(LogicalPlan::Filter {
            input: Box::new(input),
            predicate,
        })
    }

    /// `SELECT exprs FROM input` (type-checked).
    pub(crate) fn project(input: LogicalPlan, exprs: Vec<Expr>) -> Result<Self> {
        let exprs = exprs
            .into_iter()
            .map(stable_name)
            .map(|e| coerce(e, input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let mut fields = Vec::with_capacity(exprs.len());
        for e in &exprs {
            if e.contains_aggregate() {
                return plan_err(format!("aggregate {e} outside of an aggregation"));
            }
            fields.push(PlanField {
                qualifier: qualifier_of(e, input.schema()),
                field: Arc::new(e.to_field(input.schema())?),
            });
        }
        Ok(LogicalPlan::Projection {
            input: Box::new(input),
            exprs,
            schema: PlanSchema::new(fields),
        })
    }

    /// `GROUP BY group_by` computing `aggregates` (type-checked).
    pub(crate) fn aggregate(
        input: LogicalPlan,
        group_by: Vec<Expr>,
        aggregates: Vec<Expr>,
    ) -> Result<Self> {
        let group_by = group_by
            .into_iter()
            .map(stable_name)
            .map(|e| coerce(e, input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let aggregates = aggregates
            .into_iter()
            .map(stable_name)
            .map(|e| coerce(e, input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let mut fields = Vec::new();
        for e in &group_by {
            if e.contains_aggregate() {
                return plan_err(format!(
                    "aggregate functions are not allowed in GROUP BY: {e}"
                ));
            }
            fields.push(PlanField {
                qualifier: qualifier_of(e, input.schema()),
                field: Arc::new(e.to_field(input.schema())?),
            });
        }
        for e in &aggregates {
            let inner = match e {
                Expr::Alias { expr, .. } => expr.as_ref(),
                other => other,
            };
            match inner {
                Expr::Aggregate { args, .. } => {
                    if args.iter().any(Expr::contains_aggregate) {
                        return plan_err(format!("aggregate function calls cannot be nested: {e}"));
                    }
                }
                _ => return Err(EngineError::Internal(format!("not an aggregate: {e}"))),
            }
            let field = e.to_field(input.schema())?;
            fields.push(PlanField {
                qualifier: None,
                field: Arc::new(field),
            });
        }
        Ok(LogicalPlan::Aggregate {
            input: Box::new(input),
            group_by,
            aggregates,
            schema: PlanSchema::new(fields),
        })
    }

    /// `ORDER BY keys` (type-checked).
    pub(crate) fn sort(input: LogicalPlan, keys: Vec<SortKey>) -> Result<Self> {
        let keys = keys
            .into_iter()
            .map(|k| {
                let expr = coerce(k.expr, input.schema())?;
                // Resolve the key now: an unknown column is an error when the plan is built.
                expr.data_type(input.schema())?;
                Ok(SortKey { expr, ..k })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LogicalPlan::Sort {
            input: Box::new(input),
            keys,
            fetch: None,
        })
    }

    /// `LIMIT fetch OFFSET skip`.
    pub(crate) fn limit(input: LogicalPlan, skip: usize, fetch: Option<usize>) -> Self {
        LogicalPlan::Limit {
            input: Box::new(input),
            skip,
            fetch,
        }
    }

    /// `(input) AS alias`.
    pub(crate) fn alias(input: LogicalPlan, alias: impl Into<String>) -> Self {
        let alias = alias.into();
        let schema = input.schema().with_qualifier(&alias);
        LogicalPlan::SubqueryAlias {
            input: Box::new(input),
            alias,
            schema,
        }
    }

    /// Join `left` and `right`. Key pairs are coerced to a common type; the residual filter is
    /// type-checked against the combined schema.
    pub(crate) fn join(
        left: LogicalPlan,
        right: LogicalPlan,
        join_type: JoinType,
        on: Vec<(Expr, Expr)>,
        filter: Option<Expr>,
    ) -> Result<Self> {
        let combined = left.schema().join(right.schema());
        let mut keys = Vec::with_capacity(on.len());
        for (l, r) in on {
            let l = coerce(l, left.schema())?;
            let r = coerce(r, right.schema())?;
            let lt = l.data_type(left.schema())?;
            let rt = r.data_type(right.schema())?;
            let common = crate::logical::types::comparison_type(&lt, &rt).ok_or_else(|| {
                EngineError::Type(format!(
                    "cannot join {} ({}) with {} ({})",
                    l,
                    crate::logical::types::sql_type_name(&lt),
                    r,
                    crate::logical::types::sql_type_name(&rt)
                ))
            })?;
            let cast = |e: Expr, t: &DataType| {
                if *t == common {
                    e
                } else {
                    Expr::Cast {
                        expr: Box::new(e),
                        to: common.clone(),
                    }
                }
            };
            keys.push((cast(l, &lt), cast(r, &rt)));
        }
        let filter = match filter {
            Some(f) => {
                let f = coerce(f, &combined)?;
                let t = f.data_type(&combined)?;
                if !matches!(t, DataType::Boolean | DataType::Null) {
                    return Err(EngineError::Type(format!(
                        "join condition must be BOOLEAN, got {} ({f})",
                        crate::logical::types::sql_type_name(&t)
                    )));
                }
                Some(f)
            }
            None => None,
        };
        let nullable = |schema: &PlanSchema| {
            PlanSchema::new(
                schema
                    .fields()
                    .iter()
                    .map(|f| PlanField {
                        qualifier: f.qualifier.clone(),
                        field: Arc::new(f.field.as_ref().clone().with_nullable(true)),
                    })
                    .collect(),
            )
        };
        let schema = match join_type {
            JoinType::Inner => combined,
            JoinType::Left | JoinType::Single => left.schema().join(&nullable(right.schema())),
            JoinType::Right => nullable(left.schema()).join(right.schema()),
            JoinType::Full => nullable(left.schema()).join(&nullable(right.schema())),
            JoinType::Semi | JoinType::Anti | JoinType::AntiNullAware => left.schema().clone(),
        };
        Ok(LogicalPlan::Join {
            left: Box::new(left),
            right: Box::new(right),
            join_type,
            on: keys,
            filter,
            schema,
        })
    }

    /// `UNION ALL` of `inputs`: columns are matched by position and cast to common types.
    pub(crate) fn union(inputs: Vec<LogicalPlan>) -> Result<Self> {
        let Some(first) = inputs.first() else {
            return plan_err("UNION needs at least one input");
        };
        let width = first.schema().len();
        for input in &inputs[1..] {
            if input.schema().len() != width {
                return plan_err(format!(
                    "UNION inputs have different numbers of columns: {} and {}",
                    width,
                    input.schema().len()
                ));
            }
        }
        let mut types: Vec<DataType> = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.field.data_type().clone())
            .collect();
        for input in &inputs[1..] {
            for (i, f) in input.schema().fields().iter().enumerate() {
                let t = f.field.data_type();
                types[i] =
                    crate::logical::types::comparison_type(&types[i], t).ok_or_else(|| {
                        EngineError::Type(format!(
                            "UNION column {} has incompatible types {} and {}",
                            i + 1,
                            crate::logical::types::sql_type_name(&types[i]),
                            crate::logical::types::sql_type_name(t)
                        ))
                    })?;
            }
        }
        let names: Vec<String> = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        // A column keeps its qualifier when every input has the same one (copies of one
        // plan, as the distinct-aggregate rewrite makes).
        let qualifiers: Vec<Option<String>> = (0..width)
            .map(|i| {
                let q = &first.schema().field(i).qualifier;
                inputs
                    .iter()
                    .all(|input| input.schema().field(i).qualifier == *q)
                    .then(|| q.clone())
                    .flatten()
            })
            .collect();
        let mut aligned = Vec::with_capacity(inputs.len());
        for input in inputs {
            let needs_cast = input
                .schema()
                .fields()
                .iter()
                .zip(&types)
                .zip(&names)
                .any(|((f, t), n)| f.field.data_type() != t || f.name() != n);
            if needs_cast {
                let schema = input.schema().clone();
                let exprs = schema
                    .fields()
                    .iter()
                    .zip(&types)
                    .zip(&names)
                    .map(|((f, t), n)| {
                        let c = Expr::Column(Column::qualified(f.qualifier.clone(), f.name()));
                        let e = if f.field.data_type() == t {
                            c
                        } else {
                            Expr::Cast {
                                expr: Box::new(c),
                                to: t.clone(),
                            }
                        };
                        e.alias(n.clone())
                    })
                    .collect();
                aligned.push(LogicalPlan::project(input, exprs)?);
            } else {
                aligned.push(input);
            }
        }
        let fields = names
            .iter()
            .zip(&types)
            .zip(qualifiers)
            .map(|((n, t), q)| PlanField::new(q, Field::new(n, t.clone(), true)))
            .collect();
        Ok(LogicalPlan::Union {
            inputs: aligned,
            schema: PlanSchema::new(fields),
        })
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
            } => {
                let g: Vec<String> = group_by.iter().map(|e| e.to_string()).collect();
                let a: Vec<String> = aggregates.iter().map(|e| e.to_string()).collect();
                out.push_str(&format!(
                    "Aggregate: group_by=[{}] aggregates=[{}]",
                    g.join(", "),
                    a.join(", ")
                ));
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

/// Name computed expressions once, before coercion and rewrites change their text, so that
/// the plan's column names stay stable while the optimizer rebuilds nodes.
fn stable_name(e: Expr) -> Expr {
    match e {
        Expr::Column(_) | Expr::Alias { .. } => e,
        other => {
            let name = other.output_name();
            other.alias(name)
        }
    }
}

/// The qualifier a projected expression keeps: a bare column keeps its relation.
fn qualifier_of(e: &Expr, schema: &PlanSchema) -> Option<String> {
    match e {
        Expr::Column(Column { relation, name }) => schema
            .try_index_of(relation.as_deref(), name)
            .ok()
            .flatten()
            .and_then(|i| schema.field(i).qualifier.clone()),
        _ => None,
    }
}
