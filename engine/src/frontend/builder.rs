//! The dataframe builder's plans: the operations of [`DataFrame`](crate::DataFrame) that are
//! more than one logical plan node (`group_by` over expressions of aggregates,
//! `with_columns`, `rename`, `drop_columns`, `distinct`, and joins named the way dataframe
//! users expect), written as functions from logical plans to a logical plan.
//!
//! Names users give (aliases, renames) are checked here, so a user name can never be taken
//! for one of planning's hidden names (see [`crate::logical::hidden`]).

use crate::error::{EngineError, Result};
use crate::frontend::aggregates::Aggregation;
use crate::frontend::windows::Windows;
use crate::logical::expr::{Column, Expr};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanField;

/// Refuse output names of user expressions that could be taken for hidden names.
pub(crate) fn check_output_names<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Result<()> {
    for e in exprs {
        hidden::check_user_name(&e.output_name(), "column name")?;
    }
    Ok(())
}

/// `input` projected to `exprs`, whose output names are the user's; window calls in them are
/// computed first.
pub(crate) fn select(input: LogicalPlan, exprs: Vec<Expr>) -> Result<LogicalPlan> {
    check_output_names(&exprs)?;
    let (plan, exprs) = with_windows(input, exprs)?;
    LogicalPlan::project(plan, exprs)
}

/// Rows of `input` where `predicate` (which may use window functions) is TRUE.
pub(crate) fn filter(input: LogicalPlan, predicate: Expr) -> Result<LogicalPlan> {
    if !predicate.contains_window() {
        return LogicalPlan::filter(input, predicate);
    }
    let columns: Vec<Expr> = input.schema().fields().iter().map(column_of).collect();
    let (plan, mut rewritten) = with_windows(input, vec![predicate])?;
    let filtered = LogicalPlan::filter(plan, rewritten.remove(0))?;
    LogicalPlan::project(filtered, columns)
}

/// Window calls of `exprs` computed over `input`, and `exprs` rewritten onto their results
/// (keeping their output names).
fn with_windows(input: LogicalPlan, exprs: Vec<Expr>) -> Result<(LogicalPlan, Vec<Expr>)> {
    if !exprs.iter().any(Expr::contains_window) {
        return Ok((input, exprs));
    }
    let (plan, windows) = Windows::plan(input, &exprs, &mut 0)?;
    let exprs = exprs
        .into_iter()
        .map(|e| {
            if !e.contains_window() {
                return Ok(e);
            }
            let name = e.output_name();
            Ok(windows.rewrite(e.unalias())?.alias(name))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((plan, exprs))
}

/// `input` grouped by `keys` computing `aggregates` (aggregate calls, aliased by the user).
pub(crate) fn aggregate(
    input: LogicalPlan,
    keys: Vec<Expr>,
    aggregates: Vec<Expr>,
) -> Result<LogicalPlan> {
    check_output_names(keys.iter().chain(&aggregates))?;
    LogicalPlan::aggregate(input, keys, aggregates)
}

/// Group by `keys` and compute `exprs`, each an expression over aggregates (for example
/// `sum(col("a")) / count(col("b"))`). Output: the keys, then one column per expression,
/// named by its alias (or its text).
pub(crate) fn group_by(
    input: LogicalPlan,
    keys: Vec<Expr>,
    exprs: Vec<Expr>,
) -> Result<LogicalPlan> {
    check_output_names(keys.iter().chain(&exprs))?;
    let key_names: Vec<String> = keys.iter().map(Expr::output_name).collect();
    let exprs: Vec<(String, Expr)> = exprs
        .into_iter()
        .map(|e| (e.output_name(), e.unalias()))
        .collect();
    let aggregation = Aggregation::new(input, keys.clone(), exprs.iter().map(|(_, e)| e))?;
    let none = Default::default();
    let mut out = Vec::with_capacity(key_names.len() + exprs.len());
    for (key, name) in keys.into_iter().zip(key_names) {
        out.push(aggregation.rewrite(key.unalias(), &none)?.alias(name));
    }
    for (name, e) in exprs {
        out.push(aggregation.rewrite(e, &none)?.alias(name));
    }
    LogicalPlan::project(aggregation.into_plan(), out)
}

/// Add or replace columns: each expression's output name replaces the input column of that
/// name in place, or is appended.
pub(crate) fn with_columns(input: LogicalPlan, exprs: Vec<Expr>) -> Result<LogicalPlan> {
    check_output_names(&exprs)?;
    let schema = input.schema().clone();
    let (input, exprs) = with_windows(input, exprs)?;
    let mut out: Vec<Expr> = schema.fields().iter().map(column_of).collect();
    for e in exprs {
        let name = e.output_name();
        let e = match e {
            Expr::Column(_) => e.alias(name.clone()),
            other => other,
        };
        match schema.fields().iter().position(|f| f.name() == name) {
            Some(i) => out[i] = e.alias(name),
            None => out.push(e),
        }
    }
    LogicalPlan::project(input, out)
}

/// Rename columns (`(old, new)` pairs); other columns are kept as they are.
pub(crate) fn rename(input: LogicalPlan, pairs: &[(String, String)]) -> Result<LogicalPlan> {
    let schema = input.schema().clone();
    for (old, new) in pairs {
        schema.index_of(None, old)?;
        hidden::check_user_name(new, "column name")?;
    }
    let mut names: Vec<&str> = schema
        .fields()
        .iter()
        .map(|f| {
            pairs
                .iter()
                .find(|(old, _)| old == f.name())
                .map_or(f.name(), |(_, new)| new.as_str())
        })
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(EngineError::Plan(format!(
            "rename would create two columns named '{}'",
            w[0]
        )));
    }
    let out = schema
        .fields()
        .iter()
        .map(|f| {
            let column = column_of(f);
            match pairs.iter().find(|(old, _)| old == f.name()) {
                Some((_, new)) => column.alias(new.clone()),
                None => column,
            }
        })
        .collect();
    LogicalPlan::project(input, out)
}

/// Drop the named columns.
pub(crate) fn drop_columns(input: LogicalPlan, names: &[String]) -> Result<LogicalPlan> {
    let schema = input.schema().clone();
    for name in names {
        schema.index_of(None, name)?;
    }
    let out = schema
        .fields()
        .iter()
        .filter(|f| !names.iter().any(|n| n == f.name()))
        .map(column_of)
        .collect();
    LogicalPlan::project(input, out)
}

/// Distinct rows (`SELECT DISTINCT *`).
pub(crate) fn distinct(input: LogicalPlan) -> Result<LogicalPlan> {
    let keys: Vec<Expr> = input.schema().fields().iter().map(column_of).collect();
    LogicalPlan::aggregate(input, keys, vec![])
}

/// Join with `right` on `left_on[i] = right_on[i]` (NULL keys never match), with the
/// output columns named the way dataframe users expect: the left input's columns, then the
/// right input's, where a right column whose name is taken gets `suffix` appended. Key
/// columns of the right input are left out when they would repeat the left key (inner and
/// left joins on plain columns); a right join keeps the right keys and drops the left
/// ones; a full join keeps both; semi and anti joins output the left columns only.
pub(crate) fn join(
    left: LogicalPlan,
    right: LogicalPlan,
    join_type: JoinType,
    left_on: Vec<Expr>,
    right_on: Vec<Expr>,
    suffix: &str,
) -> Result<LogicalPlan> {
    hidden::check_user_name(suffix, "join suffix")?;
    if left_on.len() != right_on.len() {
        return Err(EngineError::Plan(format!(
            "join needs as many left keys as right keys (got {} and {})",
            left_on.len(),
            right_on.len()
        )));
    }
    // Check the keys against their own side first, so an error names the column as the
    // user wrote it (not the internal side qualifier) and lists that side's columns.
    for (keys, plan) in [(&left_on, &left), (&right_on, &right)] {
        let schema = plan.schema();
        for column in keys.iter().flat_map(Expr::columns) {
            schema.index_of(column.relation.as_deref(), &column.name)?;
        }
    }
    let left_name = hidden::name(Role::JoinLeft, 0);
    let right_name = hidden::name(Role::JoinRight, 0);
    let (left_side, right_side) = (left_name.as_str(), right_name.as_str());
    let left_names = names_of(&left);
    let right_names = names_of(&right);
    let left_fields = left.schema().clone();
    let left_plan = LogicalPlan::alias(left, left_side);
    let right_plan = LogicalPlan::alias(right, right_side);
    // Keys are written against each side alone; qualify their columns by the side.
    let qualify = |e: Expr, side: &str| {
        e.transform_down(&mut |n| match n {
            Expr::Column(c) => Some(Expr::Column(Column::qualified(
                Some(side.to_string()),
                c.name.clone(),
            ))),
            _ => None,
        })
    };
    let plain = |e: &Expr| match e {
        Expr::Column(c) => Some(c.name.clone()),
        _ => None,
    };
    let left_keys: Vec<Option<String>> = left_on.iter().map(plain).collect();
    let right_keys: Vec<Option<String>> = right_on.iter().map(plain).collect();
    let on = left_on
        .into_iter()
        .zip(right_on)
        .map(|(l, r)| Ok((qualify(l, left_side)?, qualify(r, right_side)?)))
        .collect::<Result<Vec<_>>>()?;
    let joined = LogicalPlan::join(left_plan, right_plan, join_type, on, None)?;
    if join_type.left_only() {
        let out = left_fields
            .fields()
            .iter()
            .map(|f| {
                Expr::Column(Column::qualified(Some(left_side.into()), f.name())).alias(f.name())
            })
            .collect();
        return LogicalPlan::project(joined, out);
    }
    // Which side's key columns are dropped: pairs of plain columns only.
    let paired = |name: &str, mine: &[Option<String>], theirs: &[Option<String>]| {
        mine.iter()
            .zip(theirs)
            .any(|(m, t)| m.as_deref() == Some(name) && t.is_some())
    };
    let keep_left = |name: &str| match join_type {
        JoinType::Right => !paired(name, &left_keys, &right_keys),
        _ => true,
    };
    let keep_right = |name: &str| match join_type {
        JoinType::Inner | JoinType::Left | JoinType::Single => {
            !paired(name, &right_keys, &left_keys)
        }
        _ => true,
    };
    let mut out = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    for name in left_names.iter().filter(|n| keep_left(n)) {
        out.push(
            Expr::Column(Column::qualified(Some(left_side.into()), name.clone()))
                .alias(name.clone()),
        );
        taken.push(name.clone());
    }
    for name in right_names.iter().filter(|n| keep_right(n)) {
        let mut output = name.clone();
        if taken.contains(&output) {
            output.push_str(suffix);
            if taken.contains(&output) {
                // As in Polars: a suffix that collides again is the caller's to resolve.
                return Err(EngineError::Plan(format!(
                    "the join would output two columns named '{output}' (right column \
                     '{name}' with suffix '{suffix}'); rename one or choose another suffix"
                )));
            }
        }
        out.push(
            Expr::Column(Column::qualified(Some(right_side.into()), name.clone()))
                .alias(output.clone()),
        );
        taken.push(output);
    }
    LogicalPlan::project(joined, out)
}

/// A reference to an output column, keeping its qualifier.
fn column_of(field: &PlanField) -> Expr {
    Expr::Column(Column::qualified(field.qualifier.clone(), field.name()))
}

/// The output column names of `plan`.
fn names_of(plan: &LogicalPlan) -> Vec<String> {
    plan.schema()
        .fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}
