//! `GROUP BY` with grouping sets: `ROLLUP (a, b)`, `CUBE (a, b)`, `GROUPING SETS ((a), ())`,
//! combinations of them with plain keys (`GROUP BY a, ROLLUP (b, c)`), `WITH ROLLUP`/`WITH
//! CUBE`, and `grouping(...)`.
//!
//! Planned as one aggregation over the union of one copy of the input per set: in the copy of
//! set *s*, hidden key column *i* holds key *i* when the set has it and NULL when not, and a
//! hidden column holds *s*; the aggregation groups by the key columns and *s*. So aggregates
//! see every input row once per set, with their arguments unchanged (`count(a)` in the grand
//! total counts the values of `a`), and two sets with the same keys stay apart, as SQL wants.
//! An input that is more than a scan is computed once and replayed to every copy (a shared
//! CTE, which spills).

use sqlparser::ast;

use super::expr::ordinal;
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::logical::expr::{Column, Expr, ScalarFunction};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::LogicalPlan;
use crate::logical::scalar::ScalarValue;

/// The keys of a `GROUP BY` and, with grouping sets, which keys each set groups by.
pub(super) struct GroupKeys {
    /// Every distinct key.
    pub(super) keys: Vec<Expr>,
    /// Per grouping set, the positions of its keys in `keys` (`None`: one plain set).
    pub(super) sets: Option<Vec<Vec<usize>>>,
}

impl SqlPlanner<'_> {
    /// The keys and grouping sets of `GROUP BY exprs [WITH ROLLUP | WITH CUBE]`.
    pub(super) fn grouping_sets(
        &self,
        exprs: &[ast::Expr],
        modifiers: &[ast::GroupByWithModifier],
        resolve: &dyn Fn(&ast::Expr) -> Result<Expr>,
    ) -> Result<GroupKeys> {
        let mut keys: Vec<Expr> = Vec::new();
        let mut position = |e: Expr| -> usize {
            match keys.iter().position(|k| *k == e) {
                Some(i) => i,
                None => {
                    keys.push(e);
                    keys.len() - 1
                }
            }
        };
        // Each item of the GROUP BY list is a list of alternative sets; the sets of the whole
        // are their cross product.
        let mut items: Vec<Vec<Vec<usize>>> = Vec::new();
        let mut grouped = false;
        for e in exprs {
            let element = |list: &[ast::Expr], position: &mut dyn FnMut(Expr) -> usize| {
                list.iter()
                    .map(|x| Ok(position(resolve(x)?)))
                    .collect::<Result<Vec<usize>>>()
            };
            match e {
                ast::Expr::Rollup(elements) => {
                    grouped = true;
                    let elements = elements
                        .iter()
                        .map(|el| element(el, &mut position))
                        .collect::<Result<Vec<_>>>()?;
                    // (a, b, c), (a, b), (a), ().
                    let sets = (0..=elements.len())
                        .rev()
                        .map(|n| elements[..n].concat())
                        .collect();
                    items.push(sets);
                }
                ast::Expr::Cube(elements) => {
                    grouped = true;
                    let elements = elements
                        .iter()
                        .map(|el| element(el, &mut position))
                        .collect::<Result<Vec<_>>>()?;
                    if elements.len() > 12 {
                        return Err(not_supported("CUBE of more than 12 elements", e));
                    }
                    // Every subset, the largest first.
                    let mut sets: Vec<Vec<usize>> = (0u32..1 << elements.len())
                        .rev()
                        .map(|mask| {
                            elements
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| mask & (1 << (elements.len() - 1 - i)) != 0)
                                .flat_map(|(_, el)| el.iter().copied())
                                .collect()
                        })
                        .collect();
                    sets.sort_by_key(|s: &Vec<usize>| std::cmp::Reverse(s.len()));
                    items.push(sets);
                }
                ast::Expr::GroupingSets(sets) => {
                    grouped = true;
                    let sets = sets
                        .iter()
                        .map(|set| element(set, &mut position))
                        .collect::<Result<Vec<_>>>()?;
                    items.push(sets);
                }
                plain => items.push(vec![vec![position(resolve(plain)?)]]),
            }
        }
        for modifier in modifiers {
            let all: Vec<usize> = (0..keys.len()).collect();
            let sets = match modifier {
                ast::GroupByWithModifier::Rollup => {
                    (0..=all.len()).rev().map(|n| all[..n].to_vec()).collect()
                }
                ast::GroupByWithModifier::Cube => {
                    let mut sets: Vec<Vec<usize>> = (0u32..1 << all.len())
                        .rev()
                        .map(|mask| {
                            all.iter()
                                .copied()
                                .filter(|i| mask & (1 << (all.len() - 1 - i)) != 0)
                                .collect()
                        })
                        .collect();
                    sets.sort_by_key(|s: &Vec<usize>| std::cmp::Reverse(s.len()));
                    sets
                }
                other => {
                    return Err(EngineError::NotSupported(format!("GROUP BY ... {other}")));
                }
            };
            grouped = true;
            items = vec![sets];
        }
        if !grouped {
            return Ok(GroupKeys { keys, sets: None });
        }
        let mut sets: Vec<Vec<usize>> = vec![vec![]];
        for alternatives in items {
            sets = sets
                .iter()
                .flat_map(|prefix| {
                    alternatives.iter().map(move |alt| {
                        let mut set = prefix.clone();
                        for i in alt {
                            if !set.contains(i) {
                                set.push(*i);
                            }
                        }
                        set
                    })
                })
                .collect();
        }
        if sets.len() > 4096 {
            return Err(EngineError::NotSupported(format!(
                "{} grouping sets (at most 4096)",
                sets.len()
            )));
        }
        Ok(GroupKeys {
            keys,
            sets: Some(sets),
        })
    }
}

/// An ordinal `GROUP BY` item's select-list expression, if the item is a position.
pub(super) fn select_item(e: &ast::Expr, select_exprs: &[Expr]) -> Result<Option<Expr>> {
    let Some(i) = ordinal(e)? else {
        return Ok(None);
    };
    let item = select_exprs.get(i).ok_or_else(|| {
        EngineError::Plan(format!(
            "GROUP BY position {} is not in the select list",
            i + 1
        ))
    })?;
    Ok(Some(item.clone().unalias()))
}

/// The union of one copy of `input` per grouping set, with the hidden key columns and set
/// number; returns it and the keys to group it by.
pub(super) fn expand(
    input: LogicalPlan,
    keys: &[Expr],
    sets: &[Vec<usize>],
    shared_id: usize,
) -> Result<(LogicalPlan, Vec<Expr>)> {
    let schema = input.schema().clone();
    let types = keys
        .iter()
        .map(|k| k.data_type(&schema))
        .collect::<Result<Vec<_>>>()?;
    let source = match input {
        scan @ LogicalPlan::TableScan(_) => scan,
        other => LogicalPlan::SharedCte {
            id: shared_id,
            name: "grouping sets".into(),
            input: Box::new(other),
        },
    };
    let columns: Vec<Expr> = schema
        .fields()
        .iter()
        .map(|f| Expr::Column(Column::qualified(f.qualifier.clone(), f.name())))
        .collect();
    let mut copies = Vec::with_capacity(sets.len());
    for (s, set) in sets.iter().enumerate() {
        let mut exprs = columns.clone();
        for (i, key) in keys.iter().enumerate() {
            let value = if set.contains(&i) {
                key.clone()
            } else {
                Expr::Literal(ScalarValue::null(&types[i]))
            };
            exprs.push(value.alias(hidden::name(Role::GroupingSet, i)));
        }
        exprs.push(Expr::Literal(ScalarValue::int64(s as i64)).alias(set_column_name()));
        copies.push(LogicalPlan::project(source.clone(), exprs)?);
    }
    let union = if copies.len() == 1 {
        copies.remove(0)
    } else {
        LogicalPlan::union(copies)?
    };
    let group_by = (0..keys.len())
        .map(|i| Expr::Column(Column::new(hidden::name(Role::GroupingSet, i))))
        .chain(std::iter::once(Expr::Column(
            Column::new(set_column_name()),
        )))
        .collect();
    Ok((union, group_by))
}

fn set_column_name() -> String {
    hidden::name(Role::GroupingSet, usize::MAX)
}

/// `e` over the expanded input: a key outside aggregate arguments becomes its hidden column
/// (NULL where the row's set does not group by it), and `grouping(k1, k2, ...)` the bits of
/// the keys the row's set does not group by (k1 the highest).
pub(super) fn rewrite(e: Expr, keys: &[Expr], sets: Option<&[Vec<usize>]>) -> Result<Expr> {
    let mut error: Option<EngineError> = None;
    let rewritten = e.transform_down(&mut |n| {
        if let Expr::Function {
            func: ScalarFunction::Grouping,
            args,
        } = n
        {
            let positions: Vec<usize> = args
                .iter()
                .filter_map(|a| {
                    let p = keys.iter().position(|k| k == a);
                    if p.is_none() && error.is_none() {
                        error = Some(EngineError::Plan(format!(
                            "grouping() takes GROUP BY keys, and {a} is not one"
                        )));
                    }
                    p
                })
                .collect();
            let bits = |set: &[usize]| -> i64 {
                positions
                    .iter()
                    .fold(0, |acc, p| (acc << 1) | i64::from(!set.contains(p)))
            };
            return Some(match sets {
                None => Expr::Literal(ScalarValue::int64(0)),
                Some(sets) => Expr::Case {
                    operand: Some(Box::new(Expr::Column(Column::new(set_column_name())))),
                    when_then: sets
                        .iter()
                        .enumerate()
                        .map(|(s, set)| {
                            (
                                Expr::Literal(ScalarValue::int64(s as i64)),
                                Expr::Literal(ScalarValue::int64(bits(set))),
                            )
                        })
                        .collect(),
                    otherwise: None,
                },
            });
        }
        sets?;
        if matches!(n, Expr::Aggregate { .. }) {
            return Some(n.clone());
        }
        let i = keys.iter().position(|k| k == n)?;
        Some(Expr::Column(Column::new(hidden::name(
            Role::GroupingSet,
            i,
        ))))
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(rewritten),
    }
}

/// `e` rewritten by [`rewrite`], keeping its output name.
pub(super) fn rewrite_named(e: Expr, keys: &[Expr], sets: Option<&[Vec<usize>]>) -> Result<Expr> {
    match e {
        Expr::Alias { expr, name } => Ok(rewrite(*expr, keys, sets)?.alias(name)),
        other => {
            let name = other.output_name();
            let r = rewrite(other, keys, sets)?;
            Ok(if r.output_name() == name {
                r
            } else {
                r.alias(name)
            })
        }
    }
}
