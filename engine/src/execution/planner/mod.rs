//! Physical planning: turns an optimized logical plan into streaming operators.
//!
//! Decisions made here: how many partitions a scan runs with, where partitions are merged
//! (coalesce), top-k per partition plus a final top-k (or a spilling sort and a limit when k
//! rows would not fit), and which scan an operator above links to ([`trace`]). Scans, joins
//! and aggregations are planned in their own modules ([`scan`], [`join`], [`aggregate`]).
//!
//! Links between an operator and a scan below it are made in two steps: planning the operator
//! registers what it wants for the scan's number (a dynamic filter, a preferred row-group
//! order, columns to claim whole row groups by), then planning the scan collects it. Operators
//! above a scan are visited first, so the scan always finds what they registered.

mod aggregate;
pub(crate) use aggregate::partial_state_schema;
mod join;
mod scan;
mod trace;
mod window;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::DataType;

use self::trace::{trace_scan, Through};
use crate::config::RowOrder;
use crate::error::Result;
use crate::eval::create_physical_expr;
use crate::logical::cardinality::row_width;
use crate::logical::expr::Expr;
use crate::logical::plan::{LogicalPlan, ScanSource, SortKey};
use crate::logical::schema::PlanSchema;
use crate::physical::coalesce::CoalesceExec;
use crate::physical::empty::EmptyRowExec;
use crate::physical::filter::FilterExec;
use crate::physical::limit::LimitExec;
use crate::physical::materialize::MaterializeExec;
use crate::physical::memory_table::MemoryExec;
use crate::physical::ordered_coalesce::OrderedCoalesceExec;
use crate::physical::project::ProjectExec;
use crate::physical::scan::DynamicFilter;
use crate::physical::sort::{PhysicalSortKey, SortExec};
use crate::physical::topk::{TopKExec, TopKPublisher};
use crate::physical::union::UnionExec;
use crate::physical::ExecutionPlan;

/// Settings the physical planner needs.
#[derive(Clone, Debug)]
pub(crate) struct PlannerOptions {
    /// Partitions per scan.
    pub(crate) threads: usize,
    /// Rows per morsel (at most; smaller under a small memory budget).
    pub(crate) morsel_rows: usize,
    /// Rows per batch.
    pub(crate) batch_size: usize,
    /// The query's memory budget, if any.
    pub(crate) memory_limit: Option<usize>,
    /// The order of rows the query hands out when it does not sort them.
    pub(crate) row_order: RowOrder,
    /// Secondary indexes for scans: `None` when not used, else where else to look for them.
    pub(crate) indexes: Option<Option<std::path::PathBuf>>,
}

/// Builds physical plans.
pub(crate) struct PhysicalPlanner {
    options: PlannerOptions,
    /// Dynamic filters waiting for their scan, keyed by the scan's id.
    pending_filters: HashMap<usize, Vec<Arc<DynamicFilter>>>,
    /// Preferred row-group order per scan (column, descending), from a top-k above it.
    preferred_order: HashMap<usize, (String, bool)>,
    /// Group-key columns of an aggregate above each scan, for claiming whole row groups.
    segment_columns: HashMap<usize, Vec<String>>,
    /// Columns a scan reads as another type, the casts of the projection above it folded
    /// into the read (see [`scan::foldable_casts`]), keyed by the scan's id.
    read_as: HashMap<usize, Vec<(String, DataType)>>,
    /// Shared CTEs already planned, by id.
    shared: HashMap<usize, Arc<MaterializeExec>>,
    /// The scan (by id) whose slices become one partition each, handed on in order (see
    /// [`RowOrder`]), and the seed of their order when shuffled.
    ordered_scan: Option<(usize, Option<u64>)>,
}

impl PhysicalPlanner {
    /// A planner with the given options.
    pub(crate) fn new(options: PlannerOptions) -> Self {
        Self {
            options,
            pending_filters: HashMap::new(),
            preferred_order: HashMap::new(),
            segment_columns: HashMap::new(),
            read_as: HashMap::new(),
            shared: HashMap::new(),
            ordered_scan: None,
        }
    }

    /// Plan `plan`; the result always has exactly one output partition.
    pub(crate) fn create_plan(&mut self, plan: LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = plan.number_scans()?;
        let seed = match self.options.row_order {
            RowOrder::Any => None,
            RowOrder::Source => Some(None),
            RowOrder::Shuffled { seed } => Some(Some(seed)),
        };
        // Only a scan streamed through filters and projections has an order worth keeping:
        // anything else regroups its rows anyway.
        self.ordered_scan = seed.and_then(|seed| Some((streamed_parquet_scan(&plan)?, seed)));
        let physical = self.create(&plan)?;
        if self.ordered_scan.is_some() && physical.output_partitions() > 1 {
            let window = self.options.threads.max(1);
            return Ok(Arc::new(OrderedCoalesceExec::new(physical, window)));
        }
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
                // Casts the scan below (through a projection that only picks its columns)
                // does while reading: the projection then reads the converted columns as
                // they are, straight from the scan.
                let folded = match scan::projected_scan(input, exprs) {
                    Some((scan, over_scan)) => {
                        scan::foldable_casts(scan, &over_scan)?.map(|folded| (scan, folded))
                    }
                    None => None,
                };
                let (child, physical) = match folded {
                    Some((scan, folded)) => {
                        self.read_as.insert(scan.id(), folded.read_as);
                        let child = self.create_scan(scan)?;
                        let physical = folded
                            .exprs
                            .iter()
                            .map(|e| create_physical_expr(e, &folded.scan_schema))
                            .collect::<Result<Vec<_>>>()?;
                        (child, physical)
                    }
                    None => {
                        let child = self.create(input)?;
                        let physical = exprs
                            .iter()
                            .map(|e| create_physical_expr(e, input.schema()))
                            .collect::<Result<Vec<_>>>()?;
                        (child, physical)
                    }
                };
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
            LogicalPlan::PhasedAggregate {
                input,
                phase,
                group_by,
                aggregates,
                raw_input,
                schema,
            } => self
                .create_phased_aggregate(input, *phase, group_by, aggregates, raw_input, schema)?,
            LogicalPlan::Window {
                input,
                exprs,
                schema,
            } => self.create_window(input, exprs, schema)?,
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
        let traced = trace_scan(input, column, Through::Values)?;
        let filter = DynamicFilter::new(self.options.threads.max(1));
        self.pending_filters
            .entry(traced.scan)
            .or_default()
            .push(Arc::clone(&filter));
        self.preferred_order
            .entry(traced.scan)
            .or_insert((traced.column.clone(), !keys[0].ascending));
        Some(TopKPublisher {
            filter,
            column: traced.column,
            first_slot: 0,
        })
    }
}

/// The id of the Parquet scan `plan` streams through filters and projections only, if that is
/// all it does.
fn streamed_parquet_scan(plan: &LogicalPlan) -> Option<usize> {
    match plan {
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Projection { input, .. }
        | LogicalPlan::SubqueryAlias { input, .. } => streamed_parquet_scan(input),
        LogicalPlan::TableScan(scan) if matches!(scan.source, ScanSource::Parquet(_)) => {
            Some(scan.id())
        }
        _ => None,
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
