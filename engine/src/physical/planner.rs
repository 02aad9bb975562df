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
use crate::logical::expr::{BinaryOp, Column, Expr};
use crate::logical::plan::{LogicalPlan, SortKey, TableScan};
use crate::logical::schema::PlanSchema;
use crate::physical::aggregate::accumulator::state_fields;
use crate::physical::aggregate::{AggregateExec, AggregateMode, AggregateSpec};
use crate::physical::coalesce::CoalesceExec;
use crate::physical::empty::EmptyRowExec;
use crate::physical::expr::{create_physical_expr, PhysicalExpr};
use crate::physical::filter::FilterExec;
use crate::physical::limit::LimitExec;
use crate::physical::project::ProjectExec;
use crate::physical::scan::{DynamicFilter, ParquetScanExec, ScanSpec};
use crate::physical::sort::{PhysicalSortKey, SortExec};
use crate::physical::topk::{TopKExec, TopKPublisher};
use crate::physical::ExecutionPlan;

/// Settings the physical planner needs.
#[derive(Clone, Debug)]
pub struct PlannerOptions {
    /// Partitions per scan.
    pub threads: usize,
    /// Rows per morsel.
    pub morsel_rows: usize,
}

/// Builds physical plans.
pub struct PhysicalPlanner {
    options: PlannerOptions,
    /// Dynamic filters waiting for their scan, keyed by the scan node's address.
    pending_filters: HashMap<usize, Vec<Arc<DynamicFilter>>>,
    /// Preferred row-group order per scan (column, descending), from a top-k above it.
    preferred_order: HashMap<usize, (String, bool)>,
}

impl PhysicalPlanner {
    /// A planner with the given options.
    pub fn new(options: PlannerOptions) -> Self {
        Self {
            options,
            pending_filters: HashMap::new(),
            preferred_order: HashMap::new(),
        }
    }

    /// Plan `plan`; the result always has exactly one output partition.
    pub fn create_plan(&mut self, plan: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        let physical = self.create(plan)?;
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
        })
    }

    fn create_scan(&mut self, scan: &TableScan) -> Result<Arc<dyn ExecutionPlan>> {
        let key = scan as *const TableScan as usize;
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
        let exec = ParquetScanExec::try_new(ScanSpec {
            table_name: scan.table_name.clone(),
            dataset: Arc::clone(&scan.dataset),
            projection: scan.projected_names(),
            pruning_predicate,
            partitions: self.options.threads,
            morsel_rows: self.options.morsel_rows,
            fetch: if scan.filters.is_empty() {
                scan.fetch
            } else {
                None
            },
            dynamic_filters,
            preferred_order: self.preferred_order.remove(&key),
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
        let child = self.create(input)?;
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
        let final_groups = (0..group_types.len())
            .map(|i| PhysicalExpr::Column(i, format!("group_{i}")))
            .collect();
        Ok(Arc::new(AggregateExec::new(
            AggregateMode::Final,
            coalesce(partial),
            final_groups,
            group_types,
            group_names,
            specs,
            output_schema,
        )))
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
            Some((
                scan as *const TableScan as usize,
                scan.schema().field(index).name().to_string(),
            ))
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
