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
//! 3. closes the equalities between columns transitively: `p_partkey = l_partkey` and
//!    `ps_partkey = l_partkey` (TPC-H Q9) also join `part` to `partsupp` directly, so the
//!    filtered `part` can shrink `partsupp` before either meets `lineitem`;
//! 4. repeatedly joins the two connected components whose join is estimated smallest
//!    ([`cardinality`](crate::logical::cardinality)), with the smaller side on the right (the hash
//!    join's build side), using the equalities between them as keys (but none that the keys
//!    already chosen and the equalities inside each side imply) and any other condition that
//!    becomes evaluable as the join's residual filter. Components with no connecting equality
//!    are cross-joined last, smallest first.
//!
//! Large fact tables therefore end up on the probe side of a pipeline of hash joins whose
//! build sides are the (filtered) dimensions. A projection on top restores the original column
//! order.

use crate::error::{EngineError, Result};
use crate::logical::cardinality::{estimate_rows, join_divisor};
use crate::logical::expr::{BinaryOp, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;

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
    plan.map_inputs(&mut reorder_joins)
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
    /// Inferred from other equalities (never a filter of its own).
    implied: bool,
}

struct Component {
    plan: LogicalPlan,
    leaves: u64,
    rows: f64,
    /// Expressions the joins inside the component have made equal.
    equal: Equalities,
}

/// Groups of expressions known to be equal (a small union-find over expressions).
#[derive(Clone, Default)]
struct Equalities {
    groups: Vec<Vec<Expr>>,
}

impl Equalities {
    fn group_of(&self, e: &Expr) -> Option<usize> {
        self.groups.iter().position(|g| g.contains(e))
    }

    /// Whether `a = b` follows from the equalities.
    fn implies(&self, a: &Expr, b: &Expr) -> bool {
        a == b || matches!((self.group_of(a), self.group_of(b)), (Some(x), Some(y)) if x == y)
    }

    /// Record `a = b`.
    fn add(&mut self, a: &Expr, b: &Expr) {
        match (self.group_of(a), self.group_of(b)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                let moved = self.groups.swap_remove(x.max(y));
                self.groups[x.min(y)].extend(moved);
            }
            (Some(x), None) => self.groups[x].push(b.clone()),
            (None, Some(y)) => self.groups[y].push(a.clone()),
            (None, None) => self.groups.push(vec![a.clone(), b.clone()]),
        }
    }

    fn union(mut self, other: &Equalities) -> Self {
        for group in &other.groups {
            for e in &group[1..] {
                self.add(&group[0], e);
            }
        }
        self
    }
}

/// Add an implied edge for every two columns of different leaves that the edges make equal
/// through others (`a = b` and `b = c` give `a = c`), unless an edge joins them already. Only
/// plain columns of one type take part: a key with a cast or of another type stays as it is.
fn add_implied_edges(edges: &mut Vec<Edge>, leaves: &[LogicalPlan]) {
    let column_type = |leaf: usize, key: &Expr| match key {
        Expr::Column(_) => key.data_type(leaves[leaf].schema()).ok(),
        _ => None,
    };
    let mut classes = Equalities::default();
    for e in edges.iter() {
        let types = (
            column_type(e.left, &e.left_key),
            column_type(e.right, &e.right_key),
        );
        if let (Some(l), Some(r)) = types {
            if l == r {
                classes.add(&e.left_key, &e.right_key);
            }
        }
    }
    for class in &classes.groups {
        // Each column with its leaf (every member came from an edge, so it has one).
        let located: Vec<(usize, &Expr)> = class
            .iter()
            .filter_map(|e| match e {
                Expr::Column(c) => Some((leaves.iter().position(|l| resolves(l.schema(), c))?, e)),
                _ => None,
            })
            .collect();
        for (i, &(li, ei)) in located.iter().enumerate() {
            for &(lj, ej) in &located[i + 1..] {
                let joined = edges.iter().any(|e| {
                    (e.left_key == *ei && e.right_key == *ej)
                        || (e.left_key == *ej && e.right_key == *ei)
                });
                if li != lj && !joined {
                    edges.push(Edge {
                        left: li,
                        right: lj,
                        left_key: ei.clone(),
                        right_key: ej.clone(),
                        used: false,
                        implied: true,
                    });
                }
            }
        }
    }
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
                            implied: false,
                        });
                        continue;
                    }
                }
            }
            pending.push((set, c));
        }
    }

    add_implied_edges(&mut edges, &leaves);

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
            equal: Equalities::default(),
        });
    }

    while components.len() > 1 {
        // The connected pair with the smallest estimated join.
        let mut best: Option<(usize, usize, f64)> = None;
        for i in 0..components.len() {
            for j in i + 1..components.len() {
                let (a, b) = (&components[i], &components[j]);
                let keys = keys_between(&edges, a, b);
                if keys.keys.is_empty() {
                    continue;
                }
                let on: Vec<(Expr, Expr)> = keys.keys.into_iter().map(|(_, l, r)| (l, r)).collect();
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
        let keys = keys_between(&edges, &probe, &build);
        let mut on = Vec::with_capacity(keys.keys.len());
        for (k, probe_key, build_key) in keys.keys {
            edges[k].used = true;
            on.push((probe_key, build_key));
        }
        for k in keys.implied {
            edges[k].used = true;
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
            equal: keys.equal,
        });
    }
    let last = components
        .pop()
        .ok_or_else(|| EngineError::Internal("a join region without relations".into()))?;
    let mut plan = last.plan;
    // Equalities inside one component that no join used or implied (cycles) and leftovers.
    let mut rest: Vec<Expr> = edges
        .into_iter()
        .filter(|e| !e.used && !e.implied && !last.equal.implies(&e.left_key, &e.right_key))
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

/// The keys joining components `a` and `b`, and what joining on them implies.
struct JoinKeys {
    /// (edge, key in `a`, key in `b`).
    keys: Vec<(usize, Expr, Expr)>,
    /// Edges between the two that the keys and each side's equalities imply.
    implied: Vec<usize>,
    /// The equalities of the joined component.
    equal: Equalities,
}

/// The unused equalities between `a` and `b` as join keys, written ones before inferred ones,
/// leaving out each that the keys before it and the equalities inside `a` and `b` imply (a
/// second key of one class would only double the hashing and skew the estimate).
fn keys_between(edges: &[Edge], a: &Component, b: &Component) -> JoinKeys {
    let mut equal = a.equal.clone().union(&b.equal);
    let mut keys = Vec::new();
    let mut implied = Vec::new();
    let mut between: Vec<(usize, Expr, Expr)> = Vec::new();
    for (k, e) in edges.iter().enumerate() {
        if e.used {
            continue;
        }
        let (l, r) = (1u64 << e.left, 1u64 << e.right);
        if a.leaves & l != 0 && b.leaves & r != 0 {
            between.push((k, e.left_key.clone(), e.right_key.clone()));
        } else if a.leaves & r != 0 && b.leaves & l != 0 {
            between.push((k, e.right_key.clone(), e.left_key.clone()));
        }
    }
    between.sort_by_key(|(k, _, _)| edges[*k].implied);
    for (k, ka, kb) in between {
        if equal.implies(&ka, &kb) {
            implied.push(k);
        } else {
            equal.add(&ka, &kb);
            keys.push((k, ka, kb));
        }
    }
    JoinKeys {
        keys,
        implied,
        equal,
    }
}

#[cfg(test)]
mod tests {
    use super::reorder_joins;
    use crate::logical::expr::Expr;
    use crate::logical::expr_fn::{col, lit};
    use crate::logical::plan::{JoinType, LogicalPlan};
    use crate::optimizer::test_util::{
        abs_scan, assert_plan, ints, items, parquet_scan, sales, stores,
    };

    /// `FROM left, right`.
    fn cross(left: LogicalPlan, right: LogicalPlan) -> LogicalPlan {
        LogicalPlan::join(left, right, JoinType::Inner, vec![], None).unwrap()
    }

    fn equi_join(
        left: LogicalPlan,
        right: LogicalPlan,
        join_type: JoinType,
        keys: (&str, &str),
    ) -> LogicalPlan {
        LogicalPlan::join(
            left,
            right,
            join_type,
            vec![(col(keys.0), col(keys.1))],
            None,
        )
        .unwrap()
    }

    fn conjunction(parts: Vec<Expr>) -> Expr {
        Expr::conjunction(parts).unwrap()
    }

    #[test]
    fn cross_joined_tables_become_an_equi_join_with_the_smaller_on_the_build_side() {
        let plan = LogicalPlan::filter(
            cross(stores(), sales()),
            col("sales.store").eq(col("stores.id")),
        )
        .unwrap();
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Projection: stores.id, stores.region, sales.store, sales.item, sales.amount
              Join: Inner on=[sales.store = stores.id]
                TableScan: sales columns=[store, item, amount]
                TableScan: stores columns=[id, region]
            ",
        );
    }

    #[test]
    fn the_pair_with_the_smallest_estimated_join_is_joined_first() {
        // items filtered to ~10 rows joins sales into ~50 rows; stores would keep all 1000.
        let predicate = conjunction(vec![
            col("sales.store").eq(col("stores.id")),
            col("sales.item").eq(col("items.id")),
            col("items.price").eq(lit(3i64)),
        ]);
        let from = cross(cross(sales(), stores()), items());
        let plan = LogicalPlan::filter(from, predicate).unwrap();
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Projection: sales.store, sales.item, sales.amount, stores.id, stores.region, items.id, items.price
              Join: Inner on=[sales.store = stores.id]
                Join: Inner on=[sales.item = items.id]
                  TableScan: sales columns=[store, item, amount]
                  Filter: (items.price = 3)
                    TableScan: items columns=[id, price]
                TableScan: stores columns=[id, region]
            ",
        );
    }

    #[test]
    fn equalities_are_closed_transitively_so_a_filtered_table_meets_its_peer_first() {
        // TPC-H Q9's shape: part and partsupp both join lineitem on the part key, so part
        // (filtered) can shrink partsupp before either meets lineitem.
        let part = parquet_scan(
            "part",
            vec![
                ("p_id", ints(0..100)),
                ("p_size", ints((0..100).map(|i| i % 50))),
            ],
        );
        let partsupp = parquet_scan(
            "partsupp",
            vec![
                ("ps_part", ints((0..400).map(|i| i % 100))),
                ("ps_supp", ints((0..400).map(|i| i / 100))),
            ],
        );
        let lineitem = parquet_scan(
            "lineitem",
            vec![
                ("l_part", ints((0..1000).map(|i| i % 100))),
                ("l_qty", ints(0..1000)),
            ],
        );
        let predicate = conjunction(vec![
            col("part.p_id").eq(col("lineitem.l_part")),
            col("partsupp.ps_part").eq(col("lineitem.l_part")),
            col("part.p_size").eq(lit(3i64)),
        ]);
        let plan = LogicalPlan::filter(cross(cross(part, partsupp), lineitem), predicate).unwrap();
        // The second join needs one key: lineitem.l_part = partsupp.ps_part follows.
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Projection: part.p_id, part.p_size, partsupp.ps_part, partsupp.ps_supp, lineitem.l_part, lineitem.l_qty
              Join: Inner on=[lineitem.l_part = part.p_id]
                TableScan: lineitem columns=[l_part, l_qty]
                Join: Inner on=[partsupp.ps_part = part.p_id]
                  TableScan: partsupp columns=[ps_part, ps_supp]
                  Filter: (part.p_size = 3)
                    TableScan: part columns=[p_id, p_size]
            ",
        );
    }

    #[test]
    fn an_or_is_factored_into_a_join_key_per_table_filters_and_a_residual() {
        // TPC-H Q19's shape: every branch repeats the join equality.
        let branch = |price: i64, amount: i64| {
            conjunction(vec![
                col("sales.item").eq(col("items.id")),
                col("items.price").eq(lit(price)),
                col("sales.amount").gt(lit(amount)),
            ])
        };
        let plan =
            LogicalPlan::filter(cross(sales(), items()), branch(1, 5).or(branch(2, 7))).unwrap();
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Projection: sales.store, sales.item, sales.amount, items.id, items.price
              Join: Inner on=[sales.item = items.id] filter=(((items.price = 1) AND (sales.amount > 5)) OR ((items.price = 2) AND (sales.amount > 7)))
                Filter: ((sales.amount > 5) OR (sales.amount > 7))
                  TableScan: sales columns=[store, item, amount]
                Filter: ((items.price = 1) OR (items.price = 2))
                  TableScan: items columns=[id, price]
            ",
        );
    }

    #[test]
    fn relations_without_a_connecting_equality_are_cross_joined_last() {
        let from = cross(cross(items(), sales()), stores());
        let plan = LogicalPlan::filter(from, col("sales.store").eq(col("stores.id"))).unwrap();
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Projection: items.id, items.price, sales.store, sales.item, sales.amount, stores.id, stores.region
              Join: Inner on=[]
                Join: Inner on=[sales.store = stores.id]
                  TableScan: sales columns=[store, item, amount]
                  TableScan: stores columns=[id, region]
                TableScan: items columns=[id, price]
            ",
        );
    }

    #[test]
    fn a_left_join_is_left_alone() {
        let plan = equi_join(
            stores(),
            sales(),
            JoinType::Left,
            ("stores.id", "sales.store"),
        );
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Join: Left on=[stores.id = sales.store]
              TableScan: stores columns=[id, region]
              TableScan: sales columns=[store, item, amount]
            ",
        );
    }

    #[test]
    fn an_outer_join_inside_an_inner_join_region_moves_as_one_relation() {
        let outer = equi_join(
            sales(),
            stores(),
            JoinType::Left,
            ("sales.store", "stores.id"),
        );
        let plan = equi_join(items(), outer, JoinType::Inner, ("items.id", "sales.item"));
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Projection: items.id, items.price, sales.store, sales.item, sales.amount, stores.id, stores.region
              Join: Inner on=[sales.item = items.id]
                Join: Left on=[sales.store = stores.id]
                  TableScan: sales columns=[store, item, amount]
                  TableScan: stores columns=[id, region]
                TableScan: items columns=[id, price]
            ",
        );
    }

    #[test]
    fn a_single_join_with_the_smaller_side_already_on_the_right_keeps_its_order() {
        let plan = equi_join(
            sales(),
            stores(),
            JoinType::Inner,
            ("sales.store", "stores.id"),
        );
        // Only the projection restoring the column order is added (here it changes nothing).
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Projection: sales.store, sales.item, sales.amount, stores.id, stores.region
              Join: Inner on=[sales.store = stores.id]
                TableScan: sales columns=[store, item, amount]
                TableScan: stores columns=[id, region]
            ",
        );
    }

    #[test]
    fn a_join_of_two_relations_with_the_same_name_is_left_alone() {
        let plan = equi_join(
            abs_scan("t"),
            abs_scan("t"),
            JoinType::Inner,
            ("t.a", "t.a"),
        );
        assert_plan(
            &reorder_joins(plan).unwrap(),
            "
            Join: Inner on=[t.a = t.a]
              TableScan: t columns=[a, b, s]
              TableScan: t columns=[a, b, s]
            ",
        );
    }
}
