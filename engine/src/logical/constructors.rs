//! The checked constructors of logical plan nodes: each coerces its expressions against its
//! input's schema and computes its output schema, so every plan that exists is well-typed
//! (front ends and optimizer rules build plans only through these).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};

use crate::error::{plan_err, EngineError, Result};
use crate::logical::expr::{Column, Expr, WindowExpr};
use crate::logical::plan::{JoinType, LogicalPlan, SortKey};
use crate::logical::schema::{PlanField, PlanSchema};
use crate::logical::types::coerce;

impl LogicalPlan {
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
        if predicate.contains_window() {
            return plan_err(
                "window functions are not allowed in WHERE (filter on them with QUALIFY)",
            );
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
            if e.contains_window() {
                return plan_err(format!("window function {e} outside of a window"));
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

    /// Window calls over `input`: each of `exprs` is an `Expr::Window` (possibly aliased), all
    /// with the same partitioning and ordering. The output is the input's columns followed by
    /// one column per call.
    pub(crate) fn window(input: LogicalPlan, exprs: Vec<Expr>) -> Result<Self> {
        let exprs = exprs
            .into_iter()
            .map(stable_name)
            .map(|e| coerce(e, input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let mut fields = input.schema().fields().to_vec();
        let mut first: Option<&WindowExpr> = None;
        for e in &exprs {
            let inner = match e {
                Expr::Alias { expr, .. } => expr.as_ref(),
                other => other,
            };
            let Expr::Window(w) = inner else {
                return Err(EngineError::Internal(format!("not a window call: {e}")));
            };
            let nested = w
                .args
                .iter()
                .chain(&w.partition_by)
                .chain(w.order_by.iter().map(|k| &k.expr))
                .any(|a| a.contains_window() || a.contains_aggregate());
            if nested {
                return plan_err(format!(
                    "window function calls cannot contain other window or aggregate calls                      here: {e}"
                ));
            }
            match first {
                Some(f) if !f.same_window(w) => {
                    return Err(EngineError::Internal(format!(
                        "one window node with two windows: {f} and {w}"
                    )))
                }
                _ => first = Some(w),
            }
            w.frame.validate(&w.order_by)?;
            fields.push(PlanField {
                qualifier: None,
                field: Arc::new(e.to_field(input.schema())?),
            });
        }
        Ok(LogicalPlan::Window {
            input: Box::new(input),
            exprs,
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

    /// The same rows with the output columns renamed to `names`, by position (columns past
    /// the end of `names` keep theirs). Works when the current names repeat (`SELECT 1 AS a,
    /// 2 AS a`), where a projection by name could not tell the columns apart: the node that
    /// makes the names (a projection or an aggregation, under any aliases and sorts) gets new
    /// aliases instead.
    pub(crate) fn rename_outputs(self, names: &[String]) -> Result<Self> {
        let current: Vec<String> = self
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        if names.len() > current.len() {
            return plan_err(format!(
                "{} column names given for a relation with {} columns",
                names.len(),
                current.len()
            ));
        }
        let wanted: Vec<String> = current
            .iter()
            .enumerate()
            .map(|(i, c)| names.get(i).cloned().unwrap_or_else(|| c.clone()))
            .collect();
        if wanted == current {
            return Ok(self);
        }
        let realias = |exprs: Vec<Expr>, names: &[String]| -> Vec<Expr> {
            exprs
                .into_iter()
                .zip(names)
                .map(|(e, n)| e.unalias().alias(n.clone()))
                .collect()
        };
        match self {
            LogicalPlan::Projection { input, exprs, .. } => {
                LogicalPlan::project(*input, realias(exprs, &wanted))
            }
            LogicalPlan::Aggregate {
                input,
                group_by,
                aggregates,
                ..
            } => {
                let groups = group_by.len();
                let group_by = realias(group_by, &wanted[..groups]);
                let aggregates = realias(aggregates, &wanted[groups..]);
                LogicalPlan::aggregate(*input, group_by, aggregates)
            }
            LogicalPlan::SubqueryAlias { input, alias, .. } => {
                Ok(LogicalPlan::alias(input.rename_outputs(&wanted)?, alias))
            }
            // A union's names are its first input's.
            LogicalPlan::Union { mut inputs, .. } if !inputs.is_empty() => {
                let first = inputs.remove(0).rename_outputs(&wanted)?;
                inputs.insert(0, first);
                LogicalPlan::union(inputs)
            }
            other => {
                let unique: std::collections::HashSet<&String> = current.iter().collect();
                if unique.len() != current.len() {
                    return plan_err(format!(
                        "cannot rename the repeated column names {} here",
                        current.join(", ")
                    ));
                }
                let exprs = other
                    .schema()
                    .column_exprs()
                    .into_iter()
                    .zip(&wanted)
                    .map(|(c, n)| c.alias(n.clone()))
                    .collect();
                LogicalPlan::project(other, exprs)
            }
        }
    }

    /// The output names with repeats made distinct by `_1`, `_2`, ... suffixes (DuckDB's
    /// names for a derived table's repeated columns); `None` when no name repeats.
    pub(crate) fn distinct_output_names(&self) -> Option<Vec<String>> {
        let names: Vec<String> = self
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut changed = false;
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            let mut candidate = name.clone();
            let mut n = 0;
            while seen.contains(&candidate.to_lowercase()) {
                n += 1;
                candidate = format!("{name}_{n}");
            }
            changed |= candidate != *name;
            seen.insert(candidate.to_lowercase());
            out.push(candidate);
        }
        changed.then_some(out)
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
                types[i] = crate::logical::types::unified_type(&types[i], t).ok_or_else(|| {
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
                // Columns are referenced by name below: repeated names are made distinct
                // first (by position, see `rename_outputs`).
                let input = match input.distinct_output_names() {
                    Some(distinct) => input.rename_outputs(&distinct)?,
                    None => input,
                };
                let schema = input.schema().clone();
                let exprs = schema
                    .fields()
                    .iter()
                    .zip(&types)
                    .zip(&names)
                    .map(|((f, t), n)| {
                        let c = Expr::Column(Column::qualified(f.qualifier.clone(), f.name()));
                        if f.field.data_type() == t && f.name() == n {
                            // Unchanged: a bare column keeps its qualifier.
                            c
                        } else if f.field.data_type() == t {
                            c.alias(n.clone())
                        } else {
                            Expr::Cast {
                                expr: Box::new(c),
                                to: t.clone(),
                            }
                            .alias(n.clone())
                        }
                    })
                    .collect();
                aligned.push(LogicalPlan::project(input, exprs)?);
            } else {
                aligned.push(input);
            }
        }
        // A column keeps its qualifier when every (aligned) input has the same one (copies of
        // one plan, as the distinct-aggregate rewrite makes). Taken from the aligned inputs, so
        // that rebuilding the union from its own inputs gives the same schema.
        let qualifiers: Vec<Option<String>> = (0..width)
            .map(|i| {
                let q = &aligned[0].schema().field(i).qualifier;
                aligned
                    .iter()
                    .all(|input| input.schema().field(i).qualifier == *q)
                    .then(|| q.clone())
                    .flatten()
            })
            .collect();
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
