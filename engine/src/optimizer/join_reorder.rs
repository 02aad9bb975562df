//! Join reordering: turns a tree of inner and cross joins with filters above it into a tree
//! of equi-joins chosen greedily by estimated size.
//!
//! `FROM a, b, c WHERE ...` arrives as cross joins under one filter. The rule flattens such a
//! region into its leaves (the relations) and its conjuncts, then:
//!
//! 1. factors conjuncts shared by every branch of an `OR` out of it (TPC-H Q19 repeats
//!    `p_partkey = l_partkey` in each branch), and adds, per relation, the `OR` of each
//!    branch's conditions on that relation alone, so the relation is filtered before the join;
//! 2. puts conditions on one relation directly above it (pushdown later moves them into the
//!    scan);
//! 3. repeatedly joins the two connected components whose join is estimated smallest
//!    ([`cardinality`](super::cardinality)), with the smaller side on the right (the hash
//!    join's build side), using every equality between them as a key and any other condition
//!    that becomes evaluable as the join's residual filter. Components with no connecting
//!    equality are cross-joined last, smallest first.
//!
//! Large fact tables therefore end up on the probe side of a pipeline of hash joins whose
//! build sides are the (filtered) dimensions. A projection on top restores the original column
//! order.

use crate::error::{EngineError, Result};
use crate::logical::expr::{BinaryOp, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::optimizer::cardinality::{estimate_rows, join_divisor};
use crate::optimizer::map_inputs;

pub(super) fn reorder_joins(plan: LogicalPlan) -> Result<LogicalPlan> {
    if is_region_root(&plan) {
        let mut leaves = Vec::new();
        let mut conjuncts = Vec::new();
        flatten(plan.clone(), &mut leaves, &mut conjuncts);
        if (2..64).contains(&leaves.len()) && !has_duplicate_names(&leaves) {
            let leaves = leaves
                .into_iter()
                .map(reorder_joins)
                .collect::<Result<Vec<_>>>()?;
            return order(leaves, conjuncts, plan.schema());
        }
    }
    map_inputs(plan, &mut reorder_joins)
}

fn is_inner_join(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Join {
            join_type: JoinType::Inner,
            ..
        }
    )
}

fn is_region_root(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Filter { input, .. } => is_inner_join(input),
        other => is_inner_join(other),
    }
}

fn flatten(plan: LogicalPlan, leaves: &mut Vec<LogicalPlan>, conjuncts: &mut Vec<Expr>) {
    match plan {
        LogicalPlan::Filter { input, predicate } if is_inner_join(&input) => {
            conjuncts.extend(predicate.split_conjunction());
            flatten(*input, leaves, conjuncts);
        }
        LogicalPlan::Join {
            left,
            right,
            join_type: JoinType::Inner,
            on,
            filter,
            ..
        } => {
            for (l, r) in on {
                conjuncts.push(l.binary(BinaryOp::Eq, r));
            }
            if let Some(f) = filter {
                conjuncts.extend(f.split_conjunction());
            }
            flatten(*left, leaves, conjuncts);
            flatten(*right, leaves, conjuncts);
        }
        other => leaves.push(other),
    }
}

fn has_duplicate_names(leaves: &[LogicalPlan]) -> bool {
    let mut seen = std::collections::HashSet::new();
    for leaf in leaves {
        for f in leaf.schema().fields() {
            if !seen.insert((f.qualifier.clone(), f.name().to_string())) {
                return true;
            }
        }
    }
    false
}

/// Bit set of the leaves a conjunct references (`None` if a column resolves nowhere).
fn leaf_set(expr: &Expr, leaves: &[LogicalPlan]) -> Option<u64> {
    let mut set = 0u64;
    for c in expr.columns() {
        let i = leaves.iter().position(|l| resolves(l.schema(), &c))?;
        set |= 1 << i;
    }
    Some(set)
}

fn resolves(schema: &PlanSchema, c: &Column) -> bool {
    matches!(
        schema.try_index_of(c.relation.as_deref(), &c.name),
        Ok(Some(_))
    )
}

fn split_disjunction(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary {
            left,
            op: BinaryOp::Or,
            right,
        } => {
            split_disjunction(*left, out);
            split_disjunction(*right, out);
        }
        other => out.push(other),
    }
}

fn disjunction(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| a.binary(BinaryOp::Or, b))
}

/// Factor an `OR` conjunct: conditions common to all branches, plus per-leaf implied filters.
fn factor_or(conjunct: Expr, leaves: &[LogicalPlan], out: &mut Vec<Expr>) {
    let mut branches = Vec::new();
    split_disjunction(conjunct.clone(), &mut branches);
    if branches.len() < 2 {
        out.push(conjunct);
        return;
    }
    let branch_conjuncts: Vec<Vec<Expr>> = branches
        .into_iter()
        .map(|b| b.split_conjunction())
        .collect();
    let common: Vec<Expr> = branch_conjuncts[0]
        .iter()
        .filter(|c| branch_conjuncts[1..].iter().all(|b| b.contains(c)))
        .cloned()
        .collect();
    let rest: Vec<Vec<Expr>> = branch_conjuncts
        .into_iter()
        .map(|b| b.into_iter().filter(|c| !common.contains(c)).collect())
        .collect();
    // Implied single-leaf filters: OR over branches of each branch's conditions on that leaf.
    for leaf in 0..leaves.len() {
        let mut per_branch = Vec::new();
        for branch in &rest {
            let on_leaf: Vec<Expr> = branch
                .iter()
                .filter(|c| leaf_set(c, leaves) == Some(1 << leaf))
                .cloned()
                .collect();
            match Expr::conjunction(on_leaf) {
                Some(e) => per_branch.push(e),
                None => {
                    per_branch.clear();
                    break;
                }
            }
        }
        if !per_branch.is_empty() {
            if let Some(implied) = disjunction(per_branch) {
                out.push(implied);
            }
        }
    }
    out.extend(common);
    if rest.iter().any(|b| b.is_empty()) {
        // One branch is fully covered by the common part: the OR is implied.
        return;
    }
    let remaining = rest
        .into_iter()
        .map(|b| Expr::conjunction(b).expect("non-empty branch"))
        .collect();
    if let Some(e) = disjunction(remaining) {
        out.push(e);
    }
}

struct Edge {
    left: usize,
    right: usize,
    left_key: Expr,
    right_key: Expr,
    used: bool,
}

struct Component {
    plan: LogicalPlan,
    leaves: u64,
    rows: f64,
}

fn order(
    leaves: Vec<LogicalPlan>,
    conjuncts: Vec<Expr>,
    schema: &PlanSchema,
) -> Result<LogicalPlan> {
    let mut factored = Vec::new();
    for c in conjuncts {
        factor_or(c, &leaves, &mut factored);
    }
    let mut leaf_filters: Vec<Vec<Expr>> = vec![Vec::new(); leaves.len()];
    let mut edges = Vec::new();
    let mut pending: Vec<(u64, Expr)> = Vec::new();
    let mut top = Vec::new();
    for c in factored {
        let Some(set) = leaf_set(&c, &leaves) else {
            top.push(c);
            continue;
        };
        if set == 0 {
            top.push(c);
        } else if set.count_ones() == 1 {
            let i = set.trailing_zeros() as usize;
            if !leaf_filters[i].contains(&c) {
                leaf_filters[i].push(c);
            }
        } else {
            if let Expr::Binary {
                left,
                op: BinaryOp::Eq,
                right,
            } = &c
            {
                let (ls, rs) = (leaf_set(left, &leaves), leaf_set(right, &leaves));
                if let (Some(ls), Some(rs)) = (ls, rs) {
                    if ls.count_ones() == 1 && rs.count_ones() == 1 && ls != rs {
                        edges.push(Edge {
                            left: ls.trailing_zeros() as usize,
                            right: rs.trailing_zeros() as usize,
                            left_key: (**left).clone(),
                            right_key: (**right).clone(),
                            used: false,
                        });
                        continue;
                    }
                }
            }
            pending.push((set, c));
        }
    }

    let mut components = Vec::new();
    for (i, (leaf, filters)) in leaves.into_iter().zip(leaf_filters).enumerate() {
        let plan = match Expr::conjunction(filters) {
            Some(p) => LogicalPlan::filter(leaf, p)?,
            None => leaf,
        };
        components.push(Component {
            rows: estimate_rows(&plan),
            plan,
            leaves: 1 << i,
        });
    }

    while components.len() > 1 {
        // The connected pair with the smallest estimated join.
        let mut best: Option<(usize, usize, f64)> = None;
        for i in 0..components.len() {
            for j in i + 1..components.len() {
                let keys = keys_between(&edges, &components[i], &components[j]);
                if keys.is_empty() {
                    continue;
                }
                let (a, b) = (&components[i], &components[j]);
                let on: Vec<(Expr, Expr)> = keys.into_iter().map(|(_, l, r)| (l, r)).collect();
                let est = a.rows * b.rows / join_divisor(&a.plan, &b.plan, &on);
                if best.is_none_or(|(_, _, e)| est < e) {
                    best = Some((i, j, est));
                }
            }
        }
        let (i, j, est) = match best {
            Some(b) => b,
            None => {
                // No equality connects the rest: cross join the two smallest.
                let mut idx: Vec<usize> = (0..components.len()).collect();
                idx.sort_by(|&a, &b| components[a].rows.total_cmp(&components[b].rows));
                let (a, b) = (idx[0].min(idx[1]), idx[0].max(idx[1]));
                (a, b, components[a].rows * components[b].rows)
            }
        };
        let b = components.remove(j);
        let a = components.remove(i);
        // The smaller side goes right (the build side).
        let (probe, build) = if a.rows >= b.rows { (a, b) } else { (b, a) };
        let mut on = Vec::new();
        for edge in edges.iter_mut().filter(|e| !e.used) {
            let (l, r) = (1u64 << edge.left, 1u64 << edge.right);
            if probe.leaves & l != 0 && build.leaves & r != 0 {
                on.push((edge.left_key.clone(), edge.right_key.clone()));
                edge.used = true;
            } else if probe.leaves & r != 0 && build.leaves & l != 0 {
                on.push((edge.right_key.clone(), edge.left_key.clone()));
                edge.used = true;
            }
        }
        let merged = probe.leaves | build.leaves;
        let mut residual = Vec::new();
        pending.retain(|(set, c)| {
            if set & !merged == 0 {
                residual.push(c.clone());
                false
            } else {
                true
            }
        });
        let plan = LogicalPlan::join(
            probe.plan,
            build.plan,
            JoinType::Inner,
            on,
            Expr::conjunction(residual),
        )?;
        components.push(Component {
            plan,
            leaves: merged,
            rows: est.max(1.0),
        });
    }
    let mut plan = components
        .pop()
        .ok_or_else(|| EngineError::Internal("a join region without relations".into()))?
        .plan;
    // Equalities inside one component that no join used (cycles) and leftovers.
    let mut rest: Vec<Expr> = edges
        .into_iter()
        .filter(|e| !e.used)
        .map(|e| e.left_key.binary(BinaryOp::Eq, e.right_key))
        .collect();
    rest.extend(pending.into_iter().map(|(_, c)| c));
    rest.extend(top);
    if let Some(p) = Expr::conjunction(rest) {
        plan = LogicalPlan::filter(plan, p)?;
    }
    let exprs = schema
        .fields()
        .iter()
        .map(|f| Expr::Column(Column::qualified(f.qualifier.clone(), f.name())))
        .collect();
    LogicalPlan::project(plan, exprs)
}

fn keys_between(edges: &[Edge], a: &Component, b: &Component) -> Vec<(usize, Expr, Expr)> {
    let mut out = Vec::new();
    for (k, e) in edges.iter().enumerate() {
        if e.used {
            continue;
        }
        let (l, r) = (1u64 << e.left, 1u64 << e.right);
        if a.leaves & l != 0 && b.leaves & r != 0 {
            out.push((k, e.left_key.clone(), e.right_key.clone()));
        } else if a.leaves & r != 0 && b.leaves & l != 0 {
            out.push((k, e.right_key.clone(), e.left_key.clone()));
        }
    }
    out
}
