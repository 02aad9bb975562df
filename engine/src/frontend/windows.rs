//! Window calls, shared by both front ends: the calls found in some expressions are computed
//! by window nodes stacked on a plan, and the expressions rewritten onto their results.
//!
//! One window node per distinct partitioning and ordering; the node whose sort keys are
//! longest goes lowest, so that a node above whose keys are a prefix of them needs no sort of
//! its own.

use crate::error::Result;
use crate::logical::expr::{Column, Expr, WindowExpr};
use crate::logical::hidden::{self, Role};
use crate::logical::plan::LogicalPlan;

/// Window calls of expressions over `plan`, computed by window nodes on top of it: returns
/// the new plan and a rewriter that replaces each call with a reference to its result.
pub(crate) struct Windows {
    calls: Vec<(Expr, String)>,
}

impl Windows {
    /// Plan the window calls found in `exprs` on top of `plan` (unchanged when there are
    /// none). `next` numbers the hidden result names.
    pub(crate) fn plan<'a>(
        plan: LogicalPlan,
        exprs: impl IntoIterator<Item = &'a Expr>,
        next: &mut usize,
    ) -> Result<(LogicalPlan, Windows)> {
        let mut found: Vec<WindowExpr> = Vec::new();
        for e in exprs {
            e.walk(&mut |n| {
                if let Expr::Window(w) = n {
                    if !found.contains(w) {
                        found.push(w.as_ref().clone());
                    }
                }
            });
        }
        let mut calls = Vec::with_capacity(found.len());
        // Groups of calls sharing partitioning and ordering, in order of appearance.
        let mut groups: Vec<Vec<(WindowExpr, String)>> = Vec::new();
        for w in found {
            let name = hidden::name(Role::Window, *next);
            *next += 1;
            calls.push((Expr::Window(Box::new(w.clone())), name.clone()));
            match groups.iter_mut().find(|g| g[0].0.same_window(&w)) {
                Some(g) => g.push((w, name)),
                None => groups.push(vec![(w, name)]),
            }
        }
        // Longest sort first (lowest), so that later nodes may reuse its order.
        groups
            .sort_by_key(|g| std::cmp::Reverse(g[0].0.partition_by.len() + g[0].0.order_by.len()));
        let mut plan = plan;
        for group in groups {
            let exprs = group
                .into_iter()
                .map(|(w, name)| Expr::Window(Box::new(w)).alias(name))
                .collect();
            plan = LogicalPlan::window(plan, exprs)?;
        }
        Ok((plan, Windows { calls }))
    }

    /// `e` with every window call replaced by its result column.
    pub(crate) fn rewrite(&self, e: Expr) -> Result<Expr> {
        if self.calls.is_empty() {
            return Ok(e);
        }
        e.transform_down(&mut |n| {
            self.calls
                .iter()
                .find(|(call, _)| call == n)
                .map(|(_, name)| Expr::Column(Column::new(name.clone())))
        })
    }
}
