//! Cutting an optimized plan into stages.
//!
//! The plan is walked bottom-up; each subplan gets a *distribution* saying where its rows are:
//!
//! * `Whole`: every task can compute all of it (a small table, read by each task; an earlier
//!   stage's output read whole; constants);
//! * `Split`: a large Parquet scan, its row groups shared out between the stage's tasks;
//! * `Buckets(keys)`: an earlier stage's output hash-partitioned into as many buckets as the
//!   stage has tasks, task *i* reading bucket *i*; rows with equal `keys` share a bucket.
//!
//! A stage holds at most one split scan or else only bucketed inputs, so its tasks never
//! need two partitionings at once. Where an operator needs its input otherwise, an *exchange*
//! ends the current stage (its plan becomes a stage of its own, whose tasks write exchange
//! files) and the operator reads the exchange:
//!
//! | operator | partitioned input |
//! |---|---|
//! | aggregate | partial aggregate per task → hash by the group keys → final aggregate per bucket (one task when there are no keys); input already bucketed by a subset of the keys → one phase, no exchange; `DISTINCT` aggregates → rows hashed by the keys |
//! | join | the other side whole (small, or gathered when its estimate is below the broadcast size) for the join types that allow it; else both sides hashed by the join keys |
//! | sort (top-k) | sorted (top-k) per task → gathered → sorted (top-k) again |
//! | limit | limited per task → gathered → limited |
//! | window | hashed by its `PARTITION BY` keys (gathered without any) |
//! | union | each partitioned input gathered |
//!
//! The part left at the top reads whole inputs and runs on the client.

use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::execution::planner::partial_state_schema;
use crate::logical::cardinality::{estimate_rows, row_width};
use crate::logical::expr::{Column, Expr};
use crate::logical::plan::{
    AggregatePhase, ExchangeInput, JoinType, LogicalPlan, ScanSource, TableScan,
};
use crate::logical::schema::PlanSchema;

use super::{DistributedOptions, StageOutput};

/// Where a subplan's rows are (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
enum Dist {
    Whole,
    Split,
    Buckets(Option<Vec<Expr>>),
}

impl Dist {
    fn partitioned(&self) -> bool {
        !matches!(self, Dist::Whole)
    }
}

/// A subplan and where its rows are.
struct Part {
    plan: LogicalPlan,
    dist: Dist,
}

/// A stage as the splitter leaves it.
pub(super) struct StageSpec {
    pub(super) plan: LogicalPlan,
    pub(super) output: StageOutput,
    pub(super) split_scan: bool,
    pub(super) bucketed: bool,
}

pub(super) struct Splitter<'a> {
    options: &'a DistributedOptions,
    pub(super) stages: Vec<StageSpec>,
}

/// A reference to column `i` of `schema`, qualified as it is there.
fn column_ref(schema: &PlanSchema, i: usize) -> Expr {
    let field = schema.field(i);
    Expr::Column(Column::qualified(
        field.qualifier.clone(),
        field.name().to_string(),
    ))
}

/// The index in `schema` of the column `expr` refers to, if it is a plain column.
fn column_index(expr: &Expr, schema: &PlanSchema) -> Option<usize> {
    match expr {
        Expr::Column(c) => schema.try_index_of(c.relation.as_deref(), &c.name).ok()?,
        _ => None,
    }
}

impl<'a> Splitter<'a> {
    pub(super) fn new(options: &'a DistributedOptions) -> Self {
        Self {
            options,
            stages: Vec::new(),
        }
    }

    /// Split `plan`; returns the part that runs on the client.
    pub(super) fn split_root(&mut self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let part = self.split(plan)?;
        Ok(self.gather(part)?.plan)
    }

    /// End a stage: `part` becomes stage `n`, whose tasks write `output`; returns the scan
    /// of its exchange files (read by bucket when `output` is hashed and `by_bucket`).
    fn exchange(&mut self, part: Part, output: StageOutput, by_bucket: bool) -> Part {
        let schema = part.plan.schema().clone();
        let stage = self.stages.len();
        let keys = match (&output, by_bucket) {
            (StageOutput::Hash { keys, .. }, true) => Some(keys.clone()),
            _ => None,
        };
        self.stages.push(StageSpec {
            split_scan: part.dist == Dist::Split,
            bucketed: matches!(part.dist, Dist::Buckets(_)),
            plan: part.plan,
            output,
        });
        let scan = TableScan::exchange(
            ExchangeInput {
                stage,
                schema: schema.to_arrow(),
                by_bucket: keys.is_some(),
                files: Vec::new(),
                rows: 0,
            },
            schema,
        );
        Part {
            plan: LogicalPlan::TableScan(scan),
            dist: match keys {
                Some(keys) => Dist::Buckets(Some(keys)),
                None => Dist::Whole,
            },
        }
    }

    /// `part` whole: as it is when it already is, else gathered from its tasks.
    fn gather(&mut self, part: Part) -> Result<Part> {
        if !part.dist.partitioned() {
            return Ok(part);
        }
        Ok(self.exchange(part, StageOutput::Gather, false))
    }

    /// `part` hashed by `keys` (expressions over its output) into buckets.
    fn hash(&mut self, part: Part, keys: Vec<Expr>) -> Part {
        if part.dist == Dist::Buckets(Some(keys.clone())) {
            return part;
        }
        let buckets = self.options.buckets.max(1);
        self.exchange(part, StageOutput::Hash { keys, buckets }, true)
    }

    /// Estimated size of a subplan's output, in bytes.
    fn estimated_bytes(plan: &LogicalPlan) -> f64 {
        estimate_rows(plan) * row_width(plan)
    }

    fn split(&mut self, plan: LogicalPlan) -> Result<Part> {
        match plan {
            LogicalPlan::TableScan(mut scan) => {
                let large = match &scan.source {
                    ScanSource::Parquet(dataset) => {
                        let names = scan.projected_names();
                        let per_row = dataset.compressed_bytes_per_row(&names).unwrap_or(8.0);
                        per_row * dataset.num_rows() as f64 > self.options.replicate_bytes as f64
                    }
                    _ => false,
                };
                if !large {
                    return Ok(Part {
                        plan: LogicalPlan::TableScan(scan),
                        dist: Dist::Whole,
                    });
                }
                // The marker of the stage's split scan: the driver gives each task its share.
                if let ScanSource::Parquet(dataset) = &scan.source {
                    scan.split = Some(Arc::new(dataset.all_row_groups()));
                }
                Ok(Part {
                    plan: LogicalPlan::TableScan(scan),
                    dist: Dist::Split,
                })
            }
            LogicalPlan::Memory(_) | LogicalPlan::EmptyRow { .. } => Ok(Part {
                plan,
                dist: Dist::Whole,
            }),
            LogicalPlan::Filter { input, predicate } => {
                let part = self.split(*input)?;
                Ok(Part {
                    plan: LogicalPlan::Filter {
                        input: Box::new(part.plan),
                        predicate,
                    },
                    dist: part.dist,
                })
            }
            LogicalPlan::Projection { input, exprs, .. } => {
                let part = self.split(*input)?;
                // Keys the projection passes on as plain columns stay keys.
                let positions: Option<Option<Vec<usize>>> = match &part.dist {
                    Dist::Buckets(Some(keys)) => {
                        let input_schema = part.plan.schema();
                        Some(
                            keys.iter()
                                .map(|k| {
                                    let i = column_index(k, input_schema)?;
                                    exprs.iter().position(|e| {
                                        column_index(&e.clone().unalias(), input_schema) == Some(i)
                                    })
                                })
                                .collect(),
                        )
                    }
                    _ => None,
                };
                let plan = LogicalPlan::project(part.plan, exprs)?;
                let dist = match positions {
                    Some(Some(p)) => Dist::Buckets(Some(
                        p.into_iter()
                            .map(|i| column_ref(plan.schema(), i))
                            .collect(),
                    )),
                    Some(None) => Dist::Buckets(None),
                    None => part.dist,
                };
                Ok(Part { plan, dist })
            }
            LogicalPlan::SubqueryAlias { input, alias, .. } => {
                let part = self.split(*input)?;
                let input_schema = part.plan.schema().clone();
                let plan = LogicalPlan::alias(part.plan, alias);
                let dist = match part.dist {
                    Dist::Buckets(Some(keys)) => {
                        let positions: Option<Vec<usize>> = keys
                            .iter()
                            .map(|k| column_index(k, &input_schema))
                            .collect();
                        match positions {
                            Some(p) => Dist::Buckets(Some(
                                p.into_iter()
                                    .map(|i| column_ref(plan.schema(), i))
                                    .collect(),
                            )),
                            None => Dist::Buckets(None),
                        }
                    }
                    other => other,
                };
                Ok(Part { plan, dist })
            }
            LogicalPlan::SharedCte { input, .. } => self.split(*input),
            LogicalPlan::Aggregate {
                input,
                group_by,
                aggregates,
                schema,
            } => self.split_aggregate(*input, group_by, aggregates, schema),
            LogicalPlan::Sort { input, keys, fetch } => {
                let part = self.split(*input)?;
                if !part.dist.partitioned() {
                    return Ok(Part {
                        plan: LogicalPlan::Sort {
                            input: Box::new(part.plan),
                            keys,
                            fetch,
                        },
                        dist: Dist::Whole,
                    });
                }
                let local = Part {
                    plan: LogicalPlan::Sort {
                        input: Box::new(part.plan),
                        keys: keys.clone(),
                        fetch,
                    },
                    dist: part.dist,
                };
                let gathered = self.gather(local)?;
                Ok(Part {
                    plan: LogicalPlan::Sort {
                        input: Box::new(gathered.plan),
                        keys,
                        fetch,
                    },
                    dist: Dist::Whole,
                })
            }
            LogicalPlan::Limit { input, skip, fetch } => {
                let mut part = self.split(*input)?;
                if part.dist.partitioned() {
                    if let Some(fetch) = fetch {
                        part.plan = LogicalPlan::Limit {
                            input: Box::new(part.plan),
                            skip: 0,
                            fetch: Some(skip.saturating_add(fetch)),
                        };
                    }
                    part = self.gather(part)?;
                }
                Ok(Part {
                    plan: LogicalPlan::Limit {
                        input: Box::new(part.plan),
                        skip,
                        fetch,
                    },
                    dist: Dist::Whole,
                })
            }
            LogicalPlan::Window { input, exprs, .. } => {
                let part = self.split(*input)?;
                let partition_by = match exprs.first().map(|e| e.clone().unalias()) {
                    Some(Expr::Window(w)) => w.partition_by.clone(),
                    _ => Vec::new(),
                };
                let part = if !part.dist.partitioned() {
                    part
                } else if partition_by.is_empty() {
                    self.gather(part)?
                } else if matches!(&part.dist, Dist::Buckets(Some(k)) if k.iter().all(|k| partition_by.contains(k)))
                {
                    part
                } else {
                    self.hash(part, partition_by)
                };
                let dist = part.dist.clone();
                Ok(Part {
                    plan: LogicalPlan::window(part.plan, exprs)?,
                    dist,
                })
            }
            LogicalPlan::Union { inputs, .. } => {
                let mut whole = Vec::with_capacity(inputs.len());
                for input in inputs {
                    let part = self.split(input)?;
                    whole.push(self.gather(part)?.plan);
                }
                Ok(Part {
                    plan: LogicalPlan::union(whole)?,
                    dist: Dist::Whole,
                })
            }
            LogicalPlan::Join {
                left,
                right,
                join_type,
                on,
                filter,
                ..
            } => self.split_join(*left, *right, join_type, on, filter),
            LogicalPlan::PhasedAggregate { .. } => Err(EngineError::Internal(
                "a plan is split into stages once".into(),
            )),
        }
    }

    fn split_aggregate(
        &mut self,
        input: LogicalPlan,
        group_by: Vec<Expr>,
        aggregates: Vec<Expr>,
        schema: PlanSchema,
    ) -> Result<Part> {
        let part = self.split(input)?;
        let keys_out = |schema: &PlanSchema, n: usize| -> Vec<Expr> {
            (0..n).map(|i| column_ref(schema, i)).collect()
        };
        let local = |part: Part| -> Result<LogicalPlan> {
            LogicalPlan::aggregate(part.plan, group_by.clone(), aggregates.clone())
        };
        match &part.dist {
            Dist::Whole => {
                return Ok(Part {
                    plan: local(part)?,
                    dist: Dist::Whole,
                })
            }
            // Every group in one bucket already: one phase, no exchange.
            Dist::Buckets(Some(keys))
                if !group_by.is_empty() && keys.iter().all(|k| group_by.contains(k)) =>
            {
                let plan = local(part)?;
                let dist = Dist::Buckets(Some(keys_out(plan.schema(), group_by.len())));
                return Ok(Part { plan, dist });
            }
            _ => {}
        }
        let distinct = aggregates
            .iter()
            .any(|a| matches!(a.clone().unalias(), Expr::Aggregate { distinct: true, .. }));
        if distinct {
            let part = if group_by.is_empty() {
                self.gather(part)?
            } else {
                self.hash(part, group_by.clone())
            };
            let plan = local(part)?;
            let dist = if group_by.is_empty() {
                Dist::Whole
            } else {
                Dist::Buckets(Some(keys_out(plan.schema(), group_by.len())))
            };
            return Ok(Part { plan, dist });
        }
        // Two phases: states per task, merged per bucket of group keys (or in one place).
        let raw_input = part.plan.schema().clone();
        let states_schema = partial_state_schema(&group_by, &aggregates, &raw_input)?;
        let partial = Part {
            plan: LogicalPlan::PhasedAggregate {
                input: Box::new(part.plan),
                phase: AggregatePhase::Partial,
                group_by: group_by.clone(),
                aggregates: aggregates.clone(),
                raw_input: raw_input.clone(),
                schema: states_schema.clone(),
            },
            dist: part.dist,
        };
        let states = if group_by.is_empty() {
            self.gather(partial)?
        } else {
            let keys = keys_out(&states_schema, group_by.len());
            self.hash(partial, keys)
        };
        let plan = LogicalPlan::PhasedAggregate {
            input: Box::new(states.plan),
            phase: AggregatePhase::Final,
            group_by: group_by.clone(),
            aggregates,
            raw_input,
            schema: schema.clone(),
        };
        let dist = if group_by.is_empty() {
            Dist::Whole
        } else {
            Dist::Buckets(Some(keys_out(&schema, group_by.len())))
        };
        Ok(Part { plan, dist })
    }

    fn split_join(
        &mut self,
        left: LogicalPlan,
        right: LogicalPlan,
        join_type: JoinType,
        on: Vec<(Expr, Expr)>,
        filter: Option<Expr>,
    ) -> Result<Part> {
        let mut l = self.split(left)?;
        let mut r = self.split(right)?;
        // Join types whose rows of a partitioned left side need only all of the right side
        // (and the other way round).
        let left_may_be_partitioned = matches!(
            join_type,
            JoinType::Inner
                | JoinType::Left
                | JoinType::Semi
                | JoinType::Anti
                | JoinType::AntiNullAware
                | JoinType::Single
        );
        let right_may_be_partitioned = matches!(join_type, JoinType::Inner | JoinType::Right);
        let small = |p: &Part, limit: u64| Self::estimated_bytes(&p.plan) <= limit as f64;
        let broadcast = self.options.broadcast_bytes;
        let left_keys: Vec<Expr> = on.iter().map(|(l, _)| l.clone()).collect();
        let right_keys: Vec<Expr> = on.iter().map(|(_, r)| r.clone()).collect();

        let dist = match (l.dist.partitioned(), r.dist.partitioned()) {
            (false, false) => Dist::Whole,
            (true, false) if left_may_be_partitioned => l.dist.clone(),
            (false, true) if right_may_be_partitioned => r.dist.clone(),
            _ => {
                let co_partitioned = !on.is_empty()
                    && l.dist == Dist::Buckets(Some(left_keys.clone()))
                    && r.dist == Dist::Buckets(Some(right_keys.clone()));
                if co_partitioned && join_type != JoinType::AntiNullAware {
                    l.dist.clone()
                } else if left_may_be_partitioned
                    && (on.is_empty()
                        || join_type == JoinType::AntiNullAware
                        || small(&r, broadcast))
                {
                    // The right side to every task: a cross join, a NOT IN (a NULL anywhere
                    // on the right decides every row), or a small right side.
                    r = self.gather(r)?;
                    if !l.dist.partitioned() {
                        Dist::Whole
                    } else {
                        l.dist.clone()
                    }
                } else if right_may_be_partitioned && (on.is_empty() || small(&l, broadcast)) {
                    l = self.gather(l)?;
                    r.dist.clone()
                } else if on.is_empty() || join_type == JoinType::AntiNullAware {
                    l = self.gather(l)?;
                    r = self.gather(r)?;
                    Dist::Whole
                } else {
                    l = self.hash(l, left_keys.clone());
                    r = self.hash(r, right_keys);
                    match join_type {
                        // Unmatched rows of the other side carry NULL keys.
                        JoinType::Right | JoinType::Full => Dist::Buckets(None),
                        _ => Dist::Buckets(Some(left_keys)),
                    }
                }
            }
        };
        // Whatever stays partitioned keeps its keys only where the output carries them.
        let dist = match (dist, join_type) {
            (Dist::Buckets(Some(_)), JoinType::Right | JoinType::Full) => Dist::Buckets(None),
            (d, _) => d,
        };
        let plan = LogicalPlan::join(l.plan, r.plan, join_type, on, filter)?;
        Ok(Part { plan, dist })
    }
}
