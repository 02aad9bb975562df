//! Projection pushdown: every node asks its input only for the columns it uses, so scans
//! decode only the columns the query needs (plus those their filters read).

use std::collections::BTreeSet;

use crate::error::Result;
use crate::logical::expr::Expr;
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;

pub(super) fn push_down_projections(plan: LogicalPlan) -> Result<LogicalPlan> {
    prune(plan, None)
}

fn columns_of<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
    schema: &PlanSchema,
    out: &mut BTreeSet<usize>,
) -> Result<()> {
    for e in exprs {
        for c in e.columns() {
            if let Some(i) = schema.try_index_of(c.relation.as_deref(), &c.name)? {
                out.insert(i);
            }
        }
    }
    Ok(())
}

fn all(schema: &PlanSchema) -> BTreeSet<usize> {
    (0..schema.len()).collect()
}

/// `required`: indices of this node's output that the parent uses (`None`: all of them).
fn prune(plan: LogicalPlan, required: Option<BTreeSet<usize>>) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::Projection { input, exprs, .. } => {
            let kept: Vec<Expr> = match &required {
                Some(r) => exprs
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| r.contains(i))
                    .map(|(_, e)| e)
                    .collect(),
                None => exprs,
            };
            let mut needed = BTreeSet::new();
            columns_of(&kept, input.schema(), &mut needed)?;
            let new_input = prune(*input, Some(needed))?;
            LogicalPlan::project(new_input, kept)
        }
        LogicalPlan::Filter { input, predicate } => {
            let mut needed = required.unwrap_or_else(|| all(input.schema()));
            columns_of([&predicate], input.schema(), &mut needed)?;
            let new_input = prune(*input, Some(needed))?;
            Ok(LogicalPlan::Filter {
                input: Box::new(new_input),
                predicate,
            })
        }
        LogicalPlan::Sort { input, keys, fetch } => {
            // The sort keeps what its parent reads and its keys; the parent resolves its columns
            // by name, so a narrower input below the sort is fine.
            let mut needed = required.unwrap_or_else(|| all(input.schema()));
            columns_of(keys.iter().map(|k| &k.expr), input.schema(), &mut needed)?;
            let new_input = prune(*input, Some(needed))?;
            Ok(LogicalPlan::Sort {
                input: Box::new(new_input),
                keys,
                fetch,
            })
        }
        LogicalPlan::Limit { input, skip, fetch } => {
            let new_input = prune(*input, required)?;
            Ok(LogicalPlan::Limit {
                input: Box::new(new_input),
                skip,
                fetch,
            })
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
            ..
        } => {
            let mut needed = BTreeSet::new();
            columns_of(
                group_by.iter().chain(aggregates.iter()),
                input.schema(),
                &mut needed,
            )?;
            let new_input = prune(*input, Some(needed))?;
            LogicalPlan::aggregate(new_input, group_by, aggregates)
        }
        LogicalPlan::Window { input, exprs, .. } => {
            // Calls nobody reads are dropped (and the node with them when none is left); the
            // parent resolves columns by name, so the narrower output is fine.
            let input_len = input.schema().len();
            let required = required.unwrap_or_else(|| (0..input_len + exprs.len()).collect());
            let kept: Vec<Expr> = exprs
                .into_iter()
                .enumerate()
                .filter(|(i, _)| required.contains(&(input_len + i)))
                .map(|(_, e)| e)
                .collect();
            let mut needed: BTreeSet<usize> =
                required.into_iter().filter(|&i| i < input_len).collect();
            columns_of(&kept, input.schema(), &mut needed)?;
            let new_input = prune(*input, Some(needed))?;
            if kept.is_empty() {
                Ok(new_input)
            } else {
                LogicalPlan::window(new_input, kept)
            }
        }
        LogicalPlan::SubqueryAlias { input, alias, .. } => {
            let new_input = prune(*input, required)?;
            Ok(LogicalPlan::alias(new_input, alias))
        }
        LogicalPlan::TableScan(scan) => {
            let source = scan.source_schema();
            let current: Vec<usize> = match &scan.projection {
                Some(p) => p.clone(),
                None => (0..source.len()).collect(),
            };
            let mut wanted: BTreeSet<usize> = match required {
                Some(r) => r.into_iter().map(|i| current[i]).collect(),
                None => current.iter().copied().collect(),
            };
            columns_of(&scan.filters, &source, &mut wanted)?;
            if wanted.is_empty() && !source.is_empty() {
                // count(*) and friends still need row counts: read the cheapest column.
                wanted.insert(cheapest_column(&scan));
            }
            let projection: Vec<usize> = wanted.into_iter().collect();
            Ok(LogicalPlan::TableScan(
                scan.with_projection(Some(projection)),
            ))
        }
        other @ (LogicalPlan::EmptyRow { .. } | LogicalPlan::Memory(_)) => Ok(other),
        LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            schema,
        } => {
            let left_len = left.schema().len();
            let mut needed_left = BTreeSet::new();
            let mut needed_right = BTreeSet::new();
            for i in required.unwrap_or_else(|| all(&schema)) {
                if i < left_len {
                    needed_left.insert(i);
                } else {
                    needed_right.insert(i - left_len);
                }
            }
            for (l, r) in &on {
                columns_of([l], left.schema(), &mut needed_left)?;
                columns_of([r], right.schema(), &mut needed_right)?;
            }
            if let Some(f) = &filter {
                // The residual filter is resolved against both sides by name.
                for c in f.columns() {
                    if let Some(i) = left.schema().try_index_of(c.relation.as_deref(), &c.name)? {
                        needed_left.insert(i);
                    } else if let Some(i) = right
                        .schema()
                        .try_index_of(c.relation.as_deref(), &c.name)?
                    {
                        needed_right.insert(i);
                    }
                }
            }
            let new_left = prune_exact(*left, needed_left)?;
            let new_right = prune_exact(*right, needed_right)?;
            LogicalPlan::join(new_left, new_right, join_type, on, filter)
        }
        LogicalPlan::Union { inputs, .. } => {
            let inputs = inputs
                .into_iter()
                .map(|i| prune(i, None))
                .collect::<Result<Vec<_>>>()?;
            LogicalPlan::union(inputs)
        }
        LogicalPlan::SharedCte { id, name, input } => Ok(LogicalPlan::SharedCte {
            id,
            name,
            input: Box::new(prune(*input, None)?),
        }),
        // Stages of a distributed query are cut from plans already optimized.
        phased @ LogicalPlan::PhasedAggregate { .. } => Ok(phased),
    }
}

/// Like [`prune`], but also drops columns the node keeps for itself (a scan's filter columns,
/// for example): joins copy every input column into their output and their build side
/// holds them, so they only get the columns that are used above or by the join.
fn prune_exact(plan: LogicalPlan, needed: BTreeSet<usize>) -> Result<LogicalPlan> {
    let wanted: Vec<(Option<String>, String)> = needed
        .iter()
        .map(|&i| {
            let f = plan.schema().field(i);
            (f.qualifier.clone(), f.name().to_string())
        })
        .collect();
    let pruned = prune(plan, Some(needed))?;
    if pruned.schema().len() <= wanted.len() || wanted.is_empty() {
        return Ok(pruned);
    }
    let exprs = wanted
        .into_iter()
        .map(|(q, n)| Expr::Column(crate::logical::expr::Column::qualified(q, n)))
        .collect();
    match LogicalPlan::project(pruned.clone(), exprs) {
        Ok(p) => Ok(p),
        Err(_) => Ok(pruned),
    }
}

/// The column with the fewest compressed bytes in the first Parquet file (fallback, and for
/// text files: the first column).
fn cheapest_column(scan: &crate::logical::plan::TableScan) -> usize {
    let Some(dataset) = scan.source.parquet() else {
        return 0;
    };
    let schema = dataset.schema();
    let Some(file) = dataset.files().first() else {
        return 0;
    };
    let mut best = (u64::MAX, 0);
    for (i, field) in schema.fields().iter().enumerate() {
        let mut bytes = 0u64;
        let mut found = false;
        for rg in file.metadata.row_groups() {
            for column in rg.columns() {
                if column.column_path().parts().first().map(String::as_str)
                    == Some(field.name().as_str())
                {
                    bytes += column.compressed_size().max(0) as u64;
                    found = true;
                }
            }
        }
        if found && bytes < best.0 {
            best = (bytes, i);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::push_down_projections;
    use crate::logical::expr_fn::{col, count_star, lit, sum};
    use crate::logical::plan::{JoinType, LogicalPlan, SortKey};
    use crate::optimizer::test_util::{
        abs_scan, assert_plan, bools, ints, memory_table, parquet_scan, sales, stores, strings,
        with_scan_filters,
    };

    #[test]
    fn a_scan_reads_only_the_columns_the_projection_uses() {
        let plan = LogicalPlan::project(abs_scan("t"), vec![col("t.b")]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Projection: t.b
              TableScan: t columns=[b]
            ",
        );
    }

    #[test]
    fn columns_a_filter_reads_are_kept_below_it() {
        let all =
            LogicalPlan::project(abs_scan("t"), vec![col("t.a"), col("t.b"), col("t.s")]).unwrap();
        let filtered = LogicalPlan::filter(all, col("t.b").gt(lit(15i64))).unwrap();
        let plan = LogicalPlan::project(filtered, vec![col("t.a")]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Projection: t.a
              Filter: (t.b > 15)
                Projection: t.a, t.b
                  TableScan: t columns=[a, b]
            ",
        );
    }

    #[test]
    fn sort_keys_are_kept_below_the_sort() {
        let key = SortKey {
            expr: col("t.a"),
            ascending: true,
            nulls_first: false,
        };
        let sorted = LogicalPlan::sort(abs_scan("t"), vec![key]).unwrap();
        let plan = LogicalPlan::project(sorted, vec![col("t.s")]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Projection: t.s
              Sort: t.a ASC NULLS LAST
                TableScan: t columns=[a, s]
            ",
        );
    }

    #[test]
    fn a_scan_keeps_the_columns_its_own_filters_read() {
        let scan = with_scan_filters(abs_scan("t"), vec![col("t.s").eq(lit("x"))]);
        let plan = LogicalPlan::project(scan, vec![col("t.a")]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Projection: t.a
              TableScan: t columns=[a, s] filters=[(t.s = 'x')]
            ",
        );
    }

    #[test]
    fn a_join_input_keeps_its_keys_and_drops_columns_only_its_scan_filter_reads() {
        let filtered_sales = with_scan_filters(sales(), vec![col("sales.amount").gt(lit(5i64))]);
        let join = LogicalPlan::join(
            filtered_sales,
            stores(),
            JoinType::Inner,
            vec![(col("sales.store"), col("stores.id"))],
            None,
        )
        .unwrap();
        let plan = LogicalPlan::project(join, vec![col("stores.region")]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Projection: stores.region
              Join: Inner on=[sales.store = stores.id]
                Projection: sales.store
                  TableScan: sales columns=[store, amount] filters=[(sales.amount > 5)]
                TableScan: stores columns=[id, region]
            ",
        );
    }

    #[test]
    fn columns_a_residual_join_filter_reads_are_kept() {
        let join = LogicalPlan::join(
            sales(),
            stores(),
            JoinType::Inner,
            vec![(col("sales.store"), col("stores.id"))],
            Some(col("stores.region").eq(lit("north"))),
        )
        .unwrap();
        let plan = LogicalPlan::project(join, vec![col("sales.amount")]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Projection: sales.amount
              Join: Inner on=[sales.store = stores.id] filter=(stores.region = 'north')
                TableScan: sales columns=[store, amount]
                TableScan: stores columns=[id, region]
            ",
        );
    }

    #[test]
    fn an_aggregate_reads_only_its_group_and_argument_columns() {
        let plan =
            LogicalPlan::aggregate(abs_scan("t"), vec![col("t.s")], vec![sum(col("t.b"))]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Aggregate: group_by=[t.s] aggregates=[sum(t.b) AS sum(t.b)]
              TableScan: t columns=[b, s]
            ",
        );
    }

    #[test]
    fn count_star_reads_only_the_cheapest_column() {
        let long = |i: i64| format!("a long and unique text value number {i:>8}");
        let scan = parquet_scan(
            "w",
            vec![
                ("text", strings((0..64).map(long))),
                ("flag", bools((0..64).map(|i| i % 2 == 0))),
            ],
        );
        let plan = LogicalPlan::aggregate(scan, vec![], vec![count_star()]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Aggregate: group_by=[] aggregates=[count(*) AS count(*)]
              TableScan: w columns=[flag]
            ",
        );
    }

    #[test]
    fn a_plan_without_a_projection_keeps_every_column() {
        let plan = LogicalPlan::filter(abs_scan("t"), col("t.a").gt(lit(1i64))).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Filter: (t.a > 1)
              TableScan: t columns=[a, b, s]
            ",
        );
    }

    #[test]
    fn a_memory_table_is_left_whole() {
        let table = memory_table("m", vec![("a", ints([1, 2])), ("b", ints([3, 4]))]);
        let plan = LogicalPlan::project(table, vec![col("m.a")]).unwrap();
        assert_plan(
            &push_down_projections(plan).unwrap(),
            "
            Projection: m.a
              MemoryTable: m (2 rows in 1 batches)
            ",
        );
    }
}
