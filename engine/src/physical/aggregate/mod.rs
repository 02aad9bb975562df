//! Hash aggregation (GROUP BY and global aggregates).
//!
//! Runs in one of three modes:
//!
//! * `Partial`: per input partition, groups raw rows and emits one row of *state* per group;
//! * `Final`: merges partial states arriving from all partitions (after a coalesce) and emits
//!   the final values;
//! * `Single`: both at once on a single stream (used for `count(DISTINCT ...)`, whose state is a
//!   set that is not merged).
//!
//! The operator holds every group until its input ends; its memory is reserved from the query
//! pool after each batch, so a budget that is too small fails with an error naming it.

pub mod accumulator;
pub mod group_values;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, SchemaRef};

use crate::error::Result;
use crate::logical::expr::AggregateFunction;
use crate::memory::MemoryReservation;
use crate::metrics::OperatorMetrics;
use crate::physical::expr::{normalize_zero_array, ExprCache, PhysicalExpr};
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};
use accumulator::{create_accumulator, GroupAccumulator};
use group_values::GroupValues;

/// A partial aggregate emits its state and starts over once it holds this many groups.
const PARTIAL_FLUSH_GROUPS: usize = 256 * 1024;

/// Which half of a two-phase aggregation an operator performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateMode {
    /// Raw rows in, states out.
    Partial,
    /// States in, final values out.
    Final,
    /// Raw rows in, final values out.
    Single,
}

/// One aggregate call.
#[derive(Clone, Debug)]
pub struct AggregateSpec {
    /// The function.
    pub func: AggregateFunction,
    /// `DISTINCT` inside the call.
    pub distinct: bool,
    /// Argument expressions over the raw input (empty for `count(*)`).
    pub args: Vec<PhysicalExpr>,
    /// Type of the (first) argument; `Null` for `count(*)`.
    pub input_type: DataType,
    /// Type of the final value.
    pub output_type: DataType,
    /// Number of state columns.
    pub state_width: usize,
    /// Display name.
    pub name: String,
}

/// Hash aggregate operator.
#[derive(Debug)]
pub struct AggregateExec {
    mode: AggregateMode,
    input: Arc<dyn ExecutionPlan>,
    group_exprs: Vec<PhysicalExpr>,
    group_types: Vec<DataType>,
    group_names: Vec<String>,
    aggregates: Vec<AggregateSpec>,
    schema: SchemaRef,
    metrics: Arc<OperatorMetrics>,
}

impl AggregateExec {
    /// Create an aggregate. In `Final` mode `group_exprs` must be the first input columns and
    /// the states follow in aggregate order.
    pub fn new(
        mode: AggregateMode,
        input: Arc<dyn ExecutionPlan>,
        group_exprs: Vec<PhysicalExpr>,
        group_types: Vec<DataType>,
        group_names: Vec<String>,
        aggregates: Vec<AggregateSpec>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            mode,
            input,
            group_exprs,
            group_types,
            group_names,
            aggregates,
            schema,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for AggregateExec {
    fn name(&self) -> &str {
        match self.mode {
            AggregateMode::Partial => "HashAggregate(partial)",
            AggregateMode::Final => "HashAggregate(final)",
            AggregateMode::Single => "HashAggregate",
        }
    }

    fn details(&self) -> String {
        let aggs: Vec<&str> = self.aggregates.iter().map(|a| a.name.as_str()).collect();
        format!(
            "group_by=[{}] aggregates=[{}]",
            self.group_names.join(", "),
            aggs.join(", ")
        )
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.input)]
    }

    fn output_partitions(&self) -> usize {
        match self.mode {
            AggregateMode::Partial => self.input.output_partitions(),
            _ => 1,
        }
    }

    fn grows_with_input(&self) -> bool {
        !self.group_exprs.is_empty() || self.aggregates.iter().any(|a| a.distinct)
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let input = Arc::clone(&self.input).execute(partition, Arc::clone(&ctx))?;
        let reservation = MemoryReservation::new(
            &ctx.memory_pool,
            format!("{}[partition {partition}]", self.name()),
            Some(Arc::clone(&self.metrics)),
        );
        let mut state = AggregateState {
            exec: Arc::clone(&self),
            groups: GroupValues::try_new(&self.group_types)?,
            accumulators: self
                .aggregates
                .iter()
                .map(|a| create_accumulator(a.func, a.distinct, &a.input_type, &a.output_type))
                .collect::<Result<_>>()?,
            reservation,
            group_indices: Vec::new(),
            cache: ExprCache::default(),
        };
        let batch_size = ctx.batch_size;
        let mut input = Some(input);
        let mut output: Option<(RecordBatch, usize)> = None;
        // A partial aggregate whose groups barely reduce its input emits its state early and
        // starts over, so that only the final aggregate holds every group.
        let flush_groups = match self.mode {
            AggregateMode::Partial if !self.group_exprs.is_empty() => PARTIAL_FLUSH_GROUPS,
            _ => usize::MAX,
        };
        let stream = std::iter::from_fn(move || loop {
            if let Some((batch, offset)) = output.as_mut() {
                if *offset < batch.num_rows() {
                    let len = batch_size.min(batch.num_rows() - *offset);
                    let slice = batch.slice(*offset, len);
                    *offset += len;
                    return Some(Ok(slice));
                }
                output = None;
            }
            let source = input.as_mut()?;
            match source.next() {
                Some(batch) => {
                    if let Err(e) = batch.and_then(|b| state.consume(&b)) {
                        input = None;
                        return Some(Err(e));
                    }
                    if state.groups.len() >= flush_groups {
                        match state.finish() {
                            Ok(batch) => output = Some((batch, 0)),
                            Err(e) => return Some(Err(e)),
                        }
                        state.reservation.free();
                    }
                }
                None => {
                    input = None;
                    match state.finish() {
                        Ok(batch) => output = Some((batch, 0)),
                        Err(e) => return Some(Err(e)),
                    }
                    state.reservation.free();
                    let (batch, _) = output.as_ref()?;
                    if batch.num_rows() == 0 {
                        return None;
                    }
                }
            }
        });
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

struct AggregateState {
    exec: Arc<AggregateExec>,
    groups: GroupValues,
    accumulators: Vec<Box<dyn GroupAccumulator>>,
    reservation: MemoryReservation,
    group_indices: Vec<u32>,
    cache: ExprCache,
}

impl AggregateState {
    fn consume(&mut self, batch: &RecordBatch) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        exec.metrics.add_rows_in(batch.num_rows());
        let n = batch.num_rows();
        let cache = &mut self.cache;
        cache.clear();
        let keys = exec
            .group_exprs
            .iter()
            .map(|e| normalize_zero_array(e.evaluate_cached(batch, cache)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        self.groups.intern(&keys, n, &mut self.group_indices)?;
        let total = self.groups.len();
        match exec.mode {
            AggregateMode::Partial | AggregateMode::Single => {
                for (spec, acc) in exec.aggregates.iter().zip(self.accumulators.iter_mut()) {
                    let values = spec
                        .args
                        .iter()
                        .map(|e| e.evaluate_cached(batch, &mut self.cache)?.into_array(n))
                        .collect::<Result<Vec<_>>>()?;
                    acc.update(&values, &self.group_indices, total)?;
                }
            }
            AggregateMode::Final => {
                let mut column = exec.group_exprs.len();
                for (spec, acc) in exec.aggregates.iter().zip(self.accumulators.iter_mut()) {
                    let states = batch.columns()[column..column + spec.state_width].to_vec();
                    column += spec.state_width;
                    acc.merge(&states, &self.group_indices, total)?;
                }
            }
        }
        let size = self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>();
        self.reservation.try_resize(size)
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let exec = Arc::clone(&self.exec);
        if exec.mode != AggregateMode::Partial {
            self.groups.ensure_global_group();
        } else if exec.group_exprs.is_empty() {
            // A partial global aggregate always emits its (possibly empty) state.
            self.groups.ensure_global_group();
        }
        let total = self.groups.len();
        let mut columns = self.groups.take_keys()?;
        for acc in &mut self.accumulators {
            // Make sure every accumulator covers every group (e.g. global group without input).
            acc.ensure_groups(total);
            match exec.mode {
                AggregateMode::Partial => columns.extend(acc.state()?),
                _ => columns.push(acc.evaluate()?),
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(total));
        let columns = columns
            .into_iter()
            .zip(exec.schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    crate::physical::expr::cast_array(&c, f.data_type())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&exec.schema),
            columns,
            &options,
        )?)
    }
}
