//! Aggregate extraction, shared by both front ends.
//!
//! A SQL select list (`SELECT k, sum(a) / count(b) FROM t GROUP BY k HAVING max(c) > 1`) and a
//! dataframe `group_by(keys, exprs)` both mix aggregate calls with ordinary expressions. Both
//! are planned the same way:
//!
//! 1. every distinct aggregate call in the expressions is collected ([`Aggregation::new`]);
//! 2. one `Aggregate` node groups the input by the keys and computes those calls, each under a
//!    hidden name (`#agg0`, ...; computed keys get `#key0`, ...), so nothing it adds can
//!    collide with a user's column;
//! 3. each expression is rewritten onto the aggregate's output ([`Aggregation::rewrite`]):
//!    a sub-expression equal to a key or to an aggregate call becomes a reference to that
//!    output column, and any other column left over is an error naming it.

use crate::error::{EngineError, Result};
use crate::logical::expr::{Column, Expr};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::logical::types::coerce;

/// An input grouped by keys with the aggregate calls of some expressions computed, and the
/// means to rewrite those expressions onto its output.
pub(crate) struct Aggregation {
    plan: LogicalPlan,
    input_schema: PlanSchema,
    /// The keys as planned (coerced), in output order.
    keys: Vec<Expr>,
    /// The aggregate calls as planned (coerced), in output order after the keys.
    aggregates: Vec<Expr>,
}

impl Aggregation {
    /// Group `input` by `keys` and compute every distinct aggregate call found in `exprs`.
    pub(crate) fn new<'a>(
        input: LogicalPlan,
        keys: Vec<Expr>,
        exprs: impl IntoIterator<Item = &'a Expr>,
    ) -> Result<Self> {
        let mut calls: Vec<Expr> = Vec::new();
        for e in exprs {
            e.walk(&mut |n| {
                if matches!(n, Expr::Aggregate { .. }) && !calls.contains(n) {
                    calls.push(n.clone());
                }
            });
        }
        let input_schema = input.schema().clone();
        let keys: Vec<Expr> = keys
            .into_iter()
            .map(|k| coerce(k.unalias(), &input_schema))
            .collect::<Result<_>>()?;
        let aggregates: Vec<Expr> = calls
            .into_iter()
            .map(|a| coerce(a, &input_schema))
            .collect::<Result<_>>()?;
        // A plain column key keeps its name and qualifier (scans trace it through the
        // aggregate); everything the aggregation computes gets a hidden name.
        let named_keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| match k {
                Expr::Column(_) => k.clone(),
                other => other.clone().alias(hidden::name(Role::GroupKey, i)),
            })
            .collect();
        let named_aggregates = aggregates
            .iter()
            .enumerate()
            .map(|(i, a)| a.clone().alias(hidden::name(Role::Aggregate, i)))
            .collect();
        let plan = LogicalPlan::aggregate(input, named_keys, named_aggregates)?;
        Ok(Self {
            plan,
            input_schema,
            keys,
            aggregates,
        })
    }

    /// Rewrite `e`, an expression over the aggregation's input (and over `extra`, columns
    /// joined in after the aggregation, such as a `HAVING` subquery's value), onto the
    /// aggregation's output.
    pub(crate) fn rewrite(&self, e: Expr, extra: &PlanSchema) -> Result<Expr> {
        let output = self.plan.schema();
        let e = coerce(e, &self.input_schema.join(extra))?;
        let rewritten = e.transform_down(&mut |n| {
            let index = match self.keys.iter().position(|k| k == n) {
                Some(i) => i,
                None => self.keys.len() + self.aggregates.iter().position(|a| a == n)?,
            };
            let f = output.field(index);
            Some(Expr::Column(Column::qualified(
                f.qualifier.clone(),
                f.name(),
            )))
        })?;
        for c in rewritten.columns() {
            let known = |schema: &PlanSchema| {
                schema
                    .try_index_of(c.relation.as_deref(), &c.name)
                    .map(|i| i.is_some())
            };
            if !known(output)? && !known(extra)? {
                return Err(EngineError::Plan(format!(
                    "column '{c}' is used outside of an aggregate function but is not a group \
                     key; group by it or aggregate it (e.g. with max() or first())"
                )));
            }
        }
        Ok(rewritten)
    }

    /// The aggregation's plan.
    pub(crate) fn into_plan(self) -> LogicalPlan {
        self.plan
    }
}
