//! Planning an aggregation: single-phase per row group when the scan below reads row groups
//! with disjoint ranges of a group key, single-phase over one partition when it must be
//! (`DISTINCT` aggregates, one input partition), otherwise two phases: a partial aggregate per
//! partition, a repartition by key, and a final aggregate per partition. The two halves of an
//! aggregation split between the tasks of a distributed query (`PhasedAggregate`) are planned
//! here too, from the same compiled specs.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

use super::trace::{trace_scan, Through};
use super::{coalesce, PhysicalPlanner};
use crate::error::{EngineError, Result};
use crate::eval::{create_physical_expr, PhysicalExpr};
use crate::logical::expr::Expr;
use crate::logical::plan::{AggregatePhase, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::physical::aggregate::accumulator::state_fields;
use crate::physical::aggregate::{AggregateExec, AggregateMode, AggregateSpec};
use crate::physical::repartition::RepartitionExec;
use crate::physical::ExecutionPlan;

impl PhysicalPlanner {
    pub(super) fn create_aggregate(
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
                    if let Some(traced) = trace_scan(input, c, Through::Values) {
                        self.segment_columns
                            .entry(traced.scan)
                            .or_default()
                            .push(traced.column.clone());
                        segment_keys.push((i, traced.column));
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
        let Compiled {
            group_exprs,
            group_types,
            group_names,
            specs,
        } = compile(group_by, aggregates, input.schema())?;
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
        let partial_fields = partial_fields(&group_types, &specs)?;
        let partial: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::new(
            AggregateMode::Partial,
            child,
            group_exprs,
            group_types.clone(),
            group_names.clone(),
            specs.clone(),
            Arc::new(Schema::new(partial_fields)),
        ));
        Ok(self.final_aggregate(partial, group_types, group_names, specs, output_schema))
    }

    /// The final half of a two-phase aggregation over `states` (partial states in any number
    /// of partitions).
    fn final_aggregate(
        &self,
        states: Arc<dyn ExecutionPlan>,
        group_types: Vec<DataType>,
        group_names: Vec<String>,
        specs: Vec<AggregateSpec>,
        output_schema: arrow::datatypes::SchemaRef,
    ) -> Arc<dyn ExecutionPlan> {
        let final_groups: Vec<PhysicalExpr> = (0..group_types.len())
            .map(|i| PhysicalExpr::Column(i, format!("group_{i}")))
            .collect();
        // Grouped: the partial states are redistributed by key so that the final aggregate
        // runs in parallel, one share of the groups per partition.
        let final_input = if final_groups.is_empty() || self.options.threads <= 1 {
            coalesce(states)
        } else {
            Arc::new(RepartitionExec::new(
                states,
                final_groups.clone(),
                self.options.threads,
            ))
        };
        Arc::new(AggregateExec::new(
            AggregateMode::Final,
            final_input,
            final_groups,
            group_types,
            group_names,
            specs,
            output_schema,
        ))
    }

    /// One half of an aggregation split between the tasks of a distributed query.
    pub(super) fn create_phased_aggregate(
        &mut self,
        input: &LogicalPlan,
        phase: AggregatePhase,
        group_by: &[Expr],
        aggregates: &[Expr],
        raw_input: &PlanSchema,
        schema: &PlanSchema,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let child = self.create(input)?;
        let Compiled {
            group_exprs,
            group_types,
            group_names,
            specs,
        } = compile(group_by, aggregates, raw_input)?;
        Ok(match phase {
            AggregatePhase::Partial => Arc::new(AggregateExec::new(
                AggregateMode::Partial,
                child,
                group_exprs,
                group_types,
                group_names,
                specs,
                schema.to_arrow(),
            )),
            AggregatePhase::Final => {
                self.final_aggregate(child, group_types, group_names, specs, schema.to_arrow())
            }
        })
    }
}

/// An aggregation's grouping and aggregate expressions, compiled over its input.
struct Compiled {
    group_exprs: Vec<PhysicalExpr>,
    group_types: Vec<DataType>,
    group_names: Vec<String>,
    specs: Vec<AggregateSpec>,
}

fn compile(group_by: &[Expr], aggregates: &[Expr], input_schema: &PlanSchema) -> Result<Compiled> {
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
        let arg_types = args
            .iter()
            .map(|a| a.data_type(input_schema))
            .collect::<Result<Vec<_>>>()?;
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
            arg_types,
            output_type,
            state_width,
            name,
        });
    }
    Ok(Compiled {
        group_exprs,
        group_types,
        group_names,
        specs,
    })
}

fn partial_fields(group_types: &[DataType], specs: &[AggregateSpec]) -> Result<Vec<Field>> {
    let mut fields = Vec::new();
    for (i, t) in group_types.iter().enumerate() {
        fields.push(Field::new(format!("group_{i}"), t.clone(), true));
    }
    for spec in specs {
        fields.extend(state_fields(spec.func, &spec.input_type, &spec.name)?);
    }
    Ok(fields)
}

/// The columns the partial half of an aggregation outputs: `group_0`, ... then the state
/// columns of each aggregate (what the final half reads back).
pub(crate) fn partial_state_schema(
    group_by: &[Expr],
    aggregates: &[Expr],
    raw_input: &PlanSchema,
) -> Result<PlanSchema> {
    let compiled = compile(group_by, aggregates, raw_input)?;
    let fields = partial_fields(&compiled.group_types, &compiled.specs)?;
    Ok(PlanSchema::from_arrow(None, &Schema::new(fields)))
}
