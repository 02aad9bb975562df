//! Physical planning: turns an optimized logical plan into streaming operators.
//!
//! Decisions made here: how many partitions a scan runs with, where partitions are merged
//! (coalesce), two-phase aggregation (partial per partition, final after the merge), top-k per
//! partition plus a final top-k, and which scan a top-k publishes its dynamic filter to.
//! Filters pushed into a scan are translated to [`PruneExpr`]s for row-group pruning.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Schema};
use ooc_io::{CmpOp, PruneExpr};

use crate::error::{EngineError, Result};
use crate::eval::{create_physical_expr, PhysicalExpr};
use crate::logical::cardinality::{estimate_bytes, estimate_rows, row_width};
use crate::logical::expr::{BinaryOp, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan, SortKey, TableScan};
use crate::logical::schema::PlanSchema;
use crate::physical::aggregate::accumulator::state_fields;
use crate::physical::aggregate::{AggregateExec, AggregateMode, AggregateSpec};
use crate::physical::coalesce::CoalesceExec;
use crate::physical::empty::EmptyRowExec;
use crate::physical::filter::FilterExec;
use crate::physical::joins::{HashJoinExec, JoinSide, NestedLoopJoinExec, PhysicalJoinType};
use crate::physical::limit::LimitExec;
use crate::physical::materialize::MaterializeExec;
use crate::physical::memory_table::MemoryExec;
use crate::physical::project::ProjectExec;
use crate::physical::repartition::RepartitionExec;
use crate::physical::scan::{DynamicFilter, ParquetScanExec, ScanSpec};
use crate::physical::sort::{PhysicalSortKey, SortExec};
use crate::physical::topk::{TopKExec, TopKPublisher};
use crate::physical::union::UnionExec;
use crate::physical::ExecutionPlan;

/// Settings the physical planner needs.
#[derive(Clone, Debug)]
pub struct PlannerOptions {
    /// Partitions per scan.
    pub threads: usize,
    /// Rows per morsel (at most; smaller under a small memory budget).
    pub morsel_rows: usize,
    /// The query's memory budget, if any.
    pub memory_limit: Option<usize>,
}

/// Builds physical plans.
pub struct PhysicalPlanner {
    options: PlannerOptions,
    /// Dynamic filters waiting for their scan, keyed by the scan's id.
    pending_filters: HashMap<usize, Vec<Arc<DynamicFilter>>>,
    /// Preferred row-group order per scan (column, descending), from a top-k above it.
    preferred_order: HashMap<usize, (String, bool)>,
    /// Group-key columns of an aggregate above each scan, for claiming whole row groups.
    segment_columns: HashMap<usize, Vec<String>>,
    /// Shared CTEs already planned, by id.
    shared: HashMap<usize, Arc<MaterializeExec>>,
}

impl PhysicalPlanner {
    /// A planner with the given options.
    pub fn new(options: PlannerOptions) -> Self {
        Self {
            options,
            pending_filters: HashMap::new(),
            preferred_order: HashMap::new(),
            segment_columns: HashMap::new(),
            shared: HashMap::new(),
        }
    }

    /// Plan `plan`; the result always has exactly one output partition.
    pub fn create_plan(&mut self, plan: LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = plan.number_scans()?;
        let physical = self.create(&plan)?;
        Ok(coalesce(physical))
    }

    fn create(&mut self, plan: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(match plan {
            LogicalPlan::TableScan(scan) => self.create_scan(scan)?,
            LogicalPlan::Filter { input, predicate } => {
                let child = self.create(input)?;
                let expr = create_physical_expr(predicate, input.schema())?;
                Arc::new(FilterExec::new(child, expr, predicate.to_string()))
            }
            LogicalPlan::Projection {
                input,
                exprs,
                schema,
            } => {
                let child = self.create(input)?;
                let physical = exprs
                    .iter()
                    .map(|e| create_physical_expr(e, input.schema()))
                    .collect::<Result<Vec<_>>>()?;
                let display = exprs.iter().map(|e| e.to_string()).collect();
                Arc::new(ProjectExec::new(
                    child,
                    physical,
                    display,
                    schema.to_arrow(),
                ))
            }
            LogicalPlan::Aggregate {
                input,
                group_by,
                aggregates,
                schema,
            } => self.create_aggregate(input, group_by, aggregates, schema)?,
            LogicalPlan::Sort { input, keys, fetch } => {
                let physical_keys = sort_keys(keys, input.schema())?;
                match fetch {
                    Some(k) if !self.topk_fits(*k, input) => {
                        // Too many rows to hold: a sort, which spills, cut to k rows.
                        let child = self.create(input)?;
                        let sort: Arc<dyn ExecutionPlan> =
                            Arc::new(SortExec::new(coalesce(child), physical_keys));
                        Arc::new(LimitExec::new(sort, 0, Some(*k)))
                    }
                    Some(k) => {
                        let publisher = self.register_topk_filter(input, keys);
                        let child = self.create(input)?;
                        if child.output_partitions() == 1 {
                            Arc::new(TopKExec::new(child, physical_keys, *k, publisher))
                        } else {
                            let partial: Arc<dyn ExecutionPlan> = Arc::new(TopKExec::new(
                                child,
                                physical_keys.clone(),
                                *k,
                                publisher,
                            ));
                            Arc::new(TopKExec::new(coalesce(partial), physical_keys, *k, None))
                        }
                    }
                    None => {
                        let child = self.create(input)?;
                        Arc::new(SortExec::new(coalesce(child), physical_keys))
                    }
                }
            }
            LogicalPlan::Limit { input, skip, fetch } => {
                let child = self.create(input)?;
                if child.output_partitions() > 1 {
                    let local: Arc<dyn ExecutionPlan> = Arc::new(LimitExec::new(
                        child,
                        0,
                        fetch.map(|f| f.saturating_add(*skip)),
                    ));
                    Arc::new(LimitExec::new(coalesce(local), *skip, *fetch))
                } else {
                    Arc::new(LimitExec::new(child, *skip, *fetch))
                }
            }
            LogicalPlan::SubqueryAlias { input, .. } => self.create(input)?,
            LogicalPlan::EmptyRow { .. } => Arc::new(EmptyRowExec::default()),
            LogicalPlan::Memory(table) => Arc::new(MemoryExec::new(
                table.schema().to_arrow(),
                Arc::clone(&table.batches),
                self.options.threads,
            )),
            LogicalPlan::Join {
                left,
                right,
                join_type,
                on,
                filter,
                schema,
            } => self.create_join(left, right, *join_type, on, filter.as_ref(), schema)?,
            LogicalPlan::Union { inputs, schema } => {
                let children = inputs
                    .iter()
                    .map(|i| self.create(i))
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(UnionExec::new(children, schema.to_arrow()))
            }
            LogicalPlan::SharedCte { id, name, input } => {
                let exec = match self.shared.get(id) {
                    Some(existing) => Arc::clone(existing),
                    None => {
                        let child = coalesce(self.create(input)?);
                        let exec = Arc::new(MaterializeExec::new(child, name.clone()));
                        self.shared.insert(*id, Arc::clone(&exec));
                        exec
                    }
                };
                exec.add_reader();
                exec
            }
        })
    }

    /// Plan a join: pick the build side, map the logical join type onto probe/build
    /// semantics, and register a key-range dynamic filter on the probe-side scan.
    fn create_join(
        &mut self,
        left: &LogicalPlan,
        right: &LogicalPlan,
        join_type: JoinType,
        on: &[(Expr, Expr)],
        filter: Option<&Expr>,
        schema: &PlanSchema,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        use PhysicalJoinType as P;
        let flexible = matches!(
            join_type,
            JoinType::Inner
                | JoinType::Left
                | JoinType::Right
                | JoinType::Full
                | JoinType::Semi
                | JoinType::Anti
        );
        let left_rows = estimate_rows(left);
        let right_rows = estimate_rows(right);
        // Build on the side that takes less memory (ties keep the right side, which join
        // ordering made the smaller one). Without keys the nested loop join only preserves its
        // probe side, and compares row counts: its cost is a product of them.
        let mut build_left = flexible && estimate_bytes(left) < estimate_bytes(right);
        if on.is_empty() {
            build_left = matches!(join_type, JoinType::Right)
                || (join_type == JoinType::Inner && left_rows < right_rows);
        }
        let physical_type = match (join_type, build_left) {
            (JoinType::Inner, _) => P::Inner,
            (JoinType::Left, false) | (JoinType::Right, true) => P::ProbeOuter,
            (JoinType::Left, true) | (JoinType::Right, false) => P::BuildOuter,
            (JoinType::Full, _) => P::FullOuter,
            (JoinType::Semi, false) => P::ProbeSemi,
            (JoinType::Semi, true) => P::BuildSemi,
            (JoinType::Anti, false) => P::ProbeAnti,
            (JoinType::Anti, true) => P::BuildAnti,
            (JoinType::AntiNullAware, _) => P::ProbeAntiNullAware,
            (JoinType::Single, _) => P::ProbeSingle,
        };
        let (probe_plan, build_plan) = if build_left {
            (right, left)
        } else {
            (left, right)
        };
        let (probe_side_of_left, build_side_of_left) = if build_left {
            (JoinSide::Build, JoinSide::Probe)
        } else {
            (JoinSide::Probe, JoinSide::Build)
        };
        let mut output: Vec<(JoinSide, usize)> = (0..left.schema().len())
            .map(|i| (probe_side_of_left, i))
            .collect();
        if !join_type.left_only() {
            output.extend((0..right.schema().len()).map(|i| (build_side_of_left, i)));
        }
        let keys: Vec<(&Expr, &Expr)> = on
            .iter()
            .map(|(l, r)| if build_left { (r, l) } else { (l, r) })
            .collect();
        let probe_schema = probe_plan.schema();
        let build_schema = build_plan.schema();
        let pair_schema = probe_schema.join(build_schema);
        let physical_filter = filter
            .map(|f| create_physical_expr(f, &pair_schema))
            .transpose()?;
        let mut display = format!("{join_type}");
        if !on.is_empty() {
            let k: Vec<String> = on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
            display.push_str(&format!(" on [{}]", k.join(", ")));
        }
        if let Some(f) = filter {
            display.push_str(&format!(" filter {f}"));
        }
        if build_left {
            display.push_str(" (build: left)");
        }
        let output_schema = schema.to_arrow();
        if on.is_empty() {
            let build = coalesce(self.create(build_plan)?);
            let probe = self.create(probe_plan)?;
            return Ok(Arc::new(NestedLoopJoinExec::try_new(
                probe,
                build,
                physical_filter,
                physical_type,
                output,
                output_schema,
                display,
            )?));
        }
        // A key-range filter for the probe scan, when the join drops unmatched probe rows.
        // The first integer key pair whose probe side is a plain scan column.
        let mut dynamic_filter = None;
        let mut dynamic_key = 0;
        let mut key_set = false;
        if physical_type.drops_unmatched_probe_rows() {
            for (i, (probe_key, build_key)) in keys.iter().enumerate() {
                let Expr::Column(c) = probe_key else { continue };
                if !integer_key_pair(probe_key, build_key, probe_schema, build_schema)? {
                    continue;
                }
                if let Some((scan, name, through_aggregate)) = trace_scan_for_join(probe_plan, c) {
                    let filter = DynamicFilter::new(1);
                    self.pending_filters
                        .entry(scan)
                        .or_default()
                        .push(Arc::clone(&filter));
                    dynamic_filter = Some((filter, name));
                    dynamic_key = i;
                    key_set = through_aggregate;
                    break;
                }
            }
        }
        // A single integer key read straight from the probe scan: if that scan's row groups
        // hold ascending ranges of it, a build side too big for the budget is split by key
        // windows instead of hash partitions, and no probe row is written out.
        let mut window_column = None;
        if let [(Expr::Column(c), build_key)] = keys.as_slice() {
            let eligible = integer_key_pair(keys[0].0, build_key, probe_schema, build_schema)?;
            if let Some((scan, name)) = trace_scan_column(probe_plan, c).filter(|_| eligible) {
                self.segment_columns
                    .entry(scan)
                    .or_default()
                    .push(name.clone());
                window_column = Some(name);
            }
        }
        let build = coalesce(self.create(build_plan)?);
        let probe = self.create(probe_plan)?;
        let probe_segments = probe
            .key_segments()
            .filter(|s| window_column.as_ref() == Some(&s.column));
        let physical_on = keys
            .iter()
            .map(|(p, b)| {
                Ok((
                    create_physical_expr(p, probe_schema)?,
                    create_physical_expr(b, build_schema)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(
            HashJoinExec::try_new(
                probe,
                build,
                physical_on,
                physical_filter,
                physical_type,
                output,
                output_schema,
                dynamic_filter,
                display,
            )?
            .with_dynamic_key(dynamic_key)
            .with_key_set_filter(key_set)
            .with_probe_segments(probe_segments),
        ))
    }

    fn create_scan(&mut self, scan: &TableScan) -> Result<Arc<dyn ExecutionPlan>> {
        let key = scan.id();
        let dynamic_filters = self.pending_filters.remove(&key).unwrap_or_default();
        let prune_parts: Vec<PruneExpr> = scan
            .filters
            .iter()
            .map(|f| to_prune_expr(f, scan.schema()))
            .collect();
        let pruning_predicate = match prune_parts.len() {
            0 => None,
            1 => prune_parts.into_iter().next(),
            _ => Some(PruneExpr::And(prune_parts)),
        }
        .filter(|p| !matches!(p, PruneExpr::Unknown));
        let projection = scan.projected_names();
        let morsel_rows = budget_morsel_rows(
            self.options.morsel_rows,
            self.options.memory_limit,
            self.options.threads,
            scan.dataset.compressed_bytes_per_row(&projection),
        );
        let exec = ParquetScanExec::try_new(ScanSpec {
            table_name: scan.table_name.clone(),
            dataset: Arc::clone(&scan.dataset),
            projection,
            pruning_predicate,
            partitions: self.options.threads,
            morsel_rows,
            fetch: if scan.filters.is_empty() {
                scan.fetch
            } else {
                None
            },
            dynamic_filters,
            preferred_order: self.preferred_order.remove(&key),
            segment_columns: self.segment_columns.remove(&key).unwrap_or_default(),
        })?;
        let exec: Arc<dyn ExecutionPlan> = Arc::new(exec);
        match Expr::conjunction(scan.filters.iter().cloned()) {
            Some(predicate) => {
                let physical = create_physical_expr(&predicate, scan.schema())?;
                Ok(Arc::new(FilterExec::new(
                    exec,
                    physical,
                    predicate.to_string(),
                )))
            }
            None => Ok(exec),
        }
    }

    fn create_aggregate(
        &mut self,
        input: &LogicalPlan,
        group_by: &[Expr],
        aggregates: &[Expr],
        schema: &PlanSchema,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // A group key read straight from a scan: if that scan's row groups hold disjoint
        // ranges of it, the aggregate runs row group by row group in a single phase.
        let distinct = aggregates
            .iter()
            .any(|a| matches!(a.clone().unalias(), Expr::Aggregate { distinct: true, .. }));
        let mut segment_keys: Vec<(usize, String)> = Vec::new();
        if !distinct {
            for (i, key) in group_by.iter().enumerate() {
                if let Expr::Column(c) = key {
                    if let Some((scan, name)) = trace_scan_column(input, c) {
                        self.segment_columns
                            .entry(scan)
                            .or_default()
                            .push(name.clone());
                        segment_keys.push((i, name));
                    }
                }
            }
        }
        let child = self.create(input)?;
        // The group key the scan segments by (the first that traces to its column).
        let segments = child.key_segments().and_then(|s| {
            let key = segment_keys
                .iter()
                .position(|(_, name)| *name == s.column)
                .map(|i| segment_keys[i].0)?;
            Some((s, key))
        });
        let input_schema = input.schema();
        let group_exprs = group_by
            .iter()
            .map(|e| create_physical_expr(e, input_schema))
            .collect::<Result<Vec<_>>>()?;
        let group_types = group_by
            .iter()
            .map(|e| e.data_type(input_schema))
            .collect::<Result<Vec<_>>>()?;
        let group_names: Vec<String> = group_by.iter().map(|e| e.to_string()).collect();
        let mut specs = Vec::new();
        for agg in aggregates {
            let name = agg.to_string();
            let Expr::Aggregate {
                func,
                args,
                distinct,
            } = agg.clone().unalias()
            else {
                return Err(EngineError::Internal(format!("not an aggregate: {agg}")));
            };
            let input_type = match args.first() {
                Some(a) => a.data_type(input_schema)?,
                None => DataType::Null,
            };
            let output_type = agg.data_type(input_schema)?;
            let state_width = state_fields(func, &input_type, &name)?.len();
            specs.push(AggregateSpec {
                func,
                distinct,
                args: args
                    .iter()
                    .map(|a| create_physical_expr(a, input_schema))
                    .collect::<Result<_>>()?,
                input_type,
                output_type,
                state_width,
                name,
            });
        }
        let output_schema = schema.to_arrow();
        if let Some((segments, key)) = segments {
            return Ok(Arc::new(
                AggregateExec::new(
                    AggregateMode::Single,
                    child,
                    group_exprs,
                    group_types,
                    group_names,
                    specs,
                    output_schema,
                )
                .with_key_segments(segments, key),
            ));
        }
        let single = specs.iter().any(|s| s.distinct) || child.output_partitions() == 1;
        if single {
            return Ok(Arc::new(AggregateExec::new(
                AggregateMode::Single,
                coalesce(child),
                group_exprs,
                group_types,
                group_names,
                specs,
                output_schema,
            )));
        }
        let mut partial_fields = Vec::new();
        for (i, t) in group_types.iter().enumerate() {
            partial_fields.push(arrow::datatypes::Field::new(
                format!("group_{i}"),
                t.clone(),
                true,
            ));
        }
        for spec in &specs {
            partial_fields.extend(state_fields(spec.func, &spec.input_type, &spec.name)?);
        }
        let partial: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::new(
            AggregateMode::Partial,
            child,
            group_exprs,
            group_types.clone(),
            group_names.clone(),
            specs.clone(),
            Arc::new(Schema::new(partial_fields)),
        ));
        let final_groups: Vec<PhysicalExpr> = (0..group_types.len())
            .map(|i| PhysicalExpr::Column(i, format!("group_{i}")))
            .collect();
        // Grouped: the partial states are redistributed by key so that the final aggregate
        // runs in parallel, one share of the groups per partition.
        let final_input = if final_groups.is_empty() || self.options.threads <= 1 {
            coalesce(partial)
        } else {
            Arc::new(RepartitionExec::new(
                partial,
                final_groups.clone(),
                self.options.threads,
            ))
        };
        Ok(Arc::new(AggregateExec::new(
            AggregateMode::Final,
            final_input,
            final_groups,
            group_types,
            group_names,
            specs,
            output_schema,
        )))
    }

    /// Whether a top-k of `k` rows of `input` stays well inside the memory budget. Each
    /// partition holds up to `2k` rows (its best k and as many pending), and so does the
    /// final top-k above them; beyond half the budget a sort (which spills) and a limit run
    /// instead.
    fn topk_fits(&self, k: usize, input: &LogicalPlan) -> bool {
        let Some(limit) = self.options.memory_limit else {
            return true;
        };
        let holders = (self.options.threads + 1) as f64;
        2.0 * k as f64 * row_width(input) * holders <= limit as f64 / 2.0
    }

    /// If the first sort key traces back to a plain scan column, create the dynamic filter the
    /// top-k will publish to and remember it for that scan.
    fn register_topk_filter(
        &mut self,
        input: &LogicalPlan,
        keys: &[SortKey],
    ) -> Option<TopKPublisher> {
        let Expr::Column(column) = &keys.first()?.expr else {
            return None;
        };
        let (scan, name) = trace_scan_column(input, column)?;
        let filter = DynamicFilter::new(self.options.threads.max(1));
        self.pending_filters
            .entry(scan)
            .or_default()
            .push(Arc::clone(&filter));
        self.preferred_order
            .entry(scan)
            .or_insert((name.clone(), !keys[0].ascending));
        Some(TopKPublisher {
            filter,
            column: name,
            first_slot: 0,
        })
    }
}

fn coalesce(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if plan.output_partitions() == 1 {
        plan
    } else {
        Arc::new(CoalesceExec::new(plan))
    }
}

fn sort_keys(keys: &[SortKey], schema: &PlanSchema) -> Result<Vec<PhysicalSortKey>> {
    keys.iter()
        .map(|k| {
            Ok(PhysicalSortKey {
                expr: create_physical_expr(&k.expr, schema)?,
                options: SortOptions {
                    descending: !k.ascending,
                    nulls_first: k.nulls_first,
                },
                display: k.to_string(),
            })
        })
        .collect()
}

/// Follow a column down through projections, filters and aliases to the scan that produces it.
fn trace_scan_column(plan: &LogicalPlan, column: &Column) -> Option<(usize, String)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let index = scan
                .schema()
                .try_index_of(column.relation.as_deref(), &column.name)
                .ok()??;
            Some((scan.id(), scan.schema().field(index).name().to_string()))
        }
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } => {
            let index = schema
                .try_index_of(column.relation.as_deref(), &column.name)
                .ok()??;
            match exprs[index].clone().unalias() {
                Expr::Column(inner) => trace_scan_column(input, &inner),
                _ => None,
            }
        }
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Sort { input, .. }
        | LogicalPlan::Limit { input, .. } => trace_scan_column(input, column),
        LogicalPlan::SubqueryAlias { input, schema, .. } => {
            let index = schema
                .try_index_of(column.relation.as_deref(), &column.name)
                .ok()??;
            let field = input.schema().field(index);
            trace_scan_column(
                input,
                &Column::qualified(field.qualifier.clone(), field.name()),
            )
        }
        _ => None,
    }
}

/// Whether a join key pair is integer-like (integers, dates) and of one type on both sides:
/// what a key-range filter on the probe scan and key windows need.
fn integer_key_pair(
    probe_key: &Expr,
    build_key: &Expr,
    probe_schema: &PlanSchema,
    build_schema: &PlanSchema,
) -> Result<bool> {
    let probe_type = probe_key.data_type(probe_schema)?;
    Ok((probe_type.is_integer() || probe_type == DataType::Date32)
        && build_key.data_type(build_schema)? == probe_type)
}

/// Like [`trace_scan_column`], but only through operators that keep every row of the scan
/// that passes their own predicates (not through limits or top-k), so that pruning the scan
/// by a join's key range cannot change which rows reach the join.
fn trace_scan_for_join(plan: &LogicalPlan, column: &Column) -> Option<(usize, String, bool)> {
    match plan {
        LogicalPlan::Limit { .. } | LogicalPlan::Sort { fetch: Some(_), .. } => None,
        LogicalPlan::TableScan(scan) if scan.fetch.is_some() => None,
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } => {
            let index = schema
                .try_index_of(column.relation.as_deref(), &column.name)
                .ok()??;
            match exprs[index].clone().unalias() {
                Expr::Column(inner) => trace_scan_for_join(input, &inner),
                _ => None,
            }
        }
        LogicalPlan::Filter { input, .. } | LogicalPlan::Sort { input, .. } => {
            trace_scan_for_join(input, column)
        }
        LogicalPlan::SubqueryAlias { input, schema, .. } => {
            let index = schema
                .try_index_of(column.relation.as_deref(), &column.name)
                .ok()??;
            let field = input.schema().field(index);
            trace_scan_for_join(
                input,
                &Column::qualified(field.qualifier.clone(), field.name()),
            )
        }
        // A grouping key: dropping the input rows of a key drops exactly that key's group.
        LogicalPlan::Aggregate {
            input,
            group_by,
            schema,
            ..
        } => {
            let index = schema
                .try_index_of(column.relation.as_deref(), &column.name)
                .ok()??;
            match group_by.get(index)?.clone().unalias() {
                Expr::Column(inner) => {
                    trace_scan_for_join(input, &inner).map(|(scan, name, _)| (scan, name, true))
                }
                _ => None,
            }
        }
        LogicalPlan::TableScan(_) => {
            trace_scan_column(plan, column).map(|(scan, name)| (scan, name, false))
        }
        LogicalPlan::Join {
            left,
            right,
            join_type,
            ..
        } => {
            // Through the probe-preserving side of an inner or semi join.
            let in_left = left
                .schema()
                .try_index_of(column.relation.as_deref(), &column.name)
                .ok()
                .flatten()
                .is_some();
            match join_type {
                JoinType::Inner | JoinType::Semi if in_left => trace_scan_for_join(left, column),
                JoinType::Inner if !in_left => trace_scan_for_join(right, column),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The scan column an expression reads, looking through casts that preserve order.
fn pruning_column(expr: &Expr, schema: &PlanSchema) -> Option<String> {
    match expr {
        Expr::Column(c) => {
            let index = schema.try_index_of(c.relation.as_deref(), &c.name).ok()??;
            Some(schema.field(index).name().to_string())
        }
        Expr::Cast { expr: inner, to } => {
            let from = inner.data_type(schema).ok()?;
            let numeric = |t: &DataType| {
                t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _))
            };
            let string = |t: &DataType| {
                matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            };
            let order_preserving = (numeric(&from) && numeric(to))
                || (string(&from) && string(to))
                || (from == DataType::Date32 && matches!(to, DataType::Timestamp(_, _)));
            if order_preserving {
                pruning_column(inner, schema)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<arrow::array::ArrayRef> {
    match expr {
        Expr::Literal(v) if !v.is_null() => Some(Arc::clone(v.array())),
        _ => None,
    }
}

fn cmp_op(op: BinaryOp) -> Option<CmpOp> {
    Some(match op {
        BinaryOp::Eq => CmpOp::Eq,
        BinaryOp::NotEq => CmpOp::NotEq,
        BinaryOp::Lt => CmpOp::Lt,
        BinaryOp::LtEq => CmpOp::LtEq,
        BinaryOp::Gt => CmpOp::Gt,
        BinaryOp::GtEq => CmpOp::GtEq,
        _ => return None,
    })
}

/// Translate a predicate over a scan's columns into a statistics-pruning expression.
/// Anything not understood becomes [`PruneExpr::Unknown`] (never prunes).
pub fn to_prune_expr(expr: &Expr, schema: &PlanSchema) -> PruneExpr {
    match expr {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => PruneExpr::And(vec![
            to_prune_expr(left, schema),
            to_prune_expr(right, schema),
        ]),
        Expr::Binary {
            left,
            op: BinaryOp::Or,
            right,
        } => PruneExpr::Or(vec![
            to_prune_expr(left, schema),
            to_prune_expr(right, schema),
        ]),
        Expr::Binary { left, op, right } if op.is_comparison() => {
            let Some(op_cmp) = cmp_op(*op) else {
                return PruneExpr::Unknown;
            };
            if let (Some(column), Some(value)) = (pruning_column(left, schema), literal(right)) {
                return PruneExpr::Compare {
                    column,
                    op: op_cmp,
                    value,
                };
            }
            if let (Some(column), Some(value)) = (pruning_column(right, schema), literal(left)) {
                let swapped = cmp_op(op.swap()).unwrap_or(op_cmp);
                return PruneExpr::Compare {
                    column,
                    op: swapped,
                    value,
                };
            }
            PruneExpr::Unknown
        }
        Expr::Not(inner) => PruneExpr::Not(Box::new(to_prune_expr(inner, schema))),
        Expr::IsNull { expr, negated } => match pruning_column(expr, schema) {
            Some(column) => PruneExpr::IsNull {
                column,
                negated: *negated,
            },
            None => PruneExpr::Unknown,
        },
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => match (pruning_column(expr, schema), literal(low), literal(high)) {
            (Some(column), Some(low), Some(high)) => PruneExpr::Between {
                column,
                low,
                high,
                negated: *negated,
            },
            _ => PruneExpr::Unknown,
        },
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let values: Option<Vec<_>> = list.iter().map(literal).collect();
            match (pruning_column(expr, schema), values) {
                (Some(column), Some(values)) if values.len() == list.len() => PruneExpr::InList {
                    column,
                    values,
                    negated: *negated,
                },
                _ => PruneExpr::Unknown,
            }
        }
        Expr::Alias { expr, .. } => to_prune_expr(expr, schema),
        _ => PruneExpr::Unknown,
    }
}

/// Rows per morsel under a memory budget. A scan partition keeps one morsel's compressed pages
/// mapped while it decodes them a batch at a time, so the morsels of all partitions together
/// are held to an eighth of the budget (from the footers' compressed bytes per row); never
/// fewer than 8192 rows (a batch) nor more than `max_rows`.
fn budget_morsel_rows(
    max_rows: usize,
    limit: Option<usize>,
    partitions: usize,
    compressed_bytes_per_row: Option<f64>,
) -> usize {
    let (Some(limit), Some(per_row)) = (limit, compressed_bytes_per_row) else {
        return max_rows;
    };
    let share = limit as f64 / 8.0 / partitions.max(1) as f64;
    let rows = (share / per_row.max(1.0)) as usize;
    rows.clamp(8192.min(max_rows), max_rows)
}

#[cfg(test)]
mod tests {
    use super::budget_morsel_rows;

    #[test]
    fn morsels_shrink_with_the_budget() {
        // 40 compressed bytes per row, two partitions.
        assert_eq!(budget_morsel_rows(131_072, None, 2, Some(40.0)), 131_072);
        assert_eq!(
            budget_morsel_rows(131_072, Some(1 << 30), 2, Some(40.0)),
            131_072
        );
        // 16 MiB: 1 MiB per partition → 26214 rows.
        assert_eq!(
            budget_morsel_rows(131_072, Some(16 << 20), 2, Some(40.0)),
            26_214
        );
        // Never below a batch.
        assert_eq!(
            budget_morsel_rows(131_072, Some(1 << 20), 2, Some(40.0)),
            8192
        );
        assert_eq!(budget_morsel_rows(1000, Some(1 << 20), 2, Some(40.0)), 1000);
    }
}
