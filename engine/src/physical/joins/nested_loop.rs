//! Nested loop join: for joins without an equality key (cross joins, uncorrelated scalar
//! subqueries, inequality-only conditions).
//!
//! The build input is buffered (and reserved); each probe batch is paired with every build
//! row a few probe rows at a time, so an output batch holds at most about `4 × batch_size`
//! pairs (or one probe row's pairs when the build side is larger than that). The residual
//! condition is evaluated on those pairs. Only joins that preserve the probe side are
//! supported: inner, probe-outer, probe-semi/anti and single.

use std::sync::{Arc, Mutex};

use arrow::array::{BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;

use super::{assemble, pair_batch, JoinSide, PhysicalJoinType};
use crate::error::{EngineError, Result};
use crate::memory::MemoryReservation;
use crate::metrics::OperatorMetrics;
use crate::physical::expr::PhysicalExpr;
use crate::physical::{compact_views, instrument, BatchStream, ExecutionPlan, TaskContext};

/// The buffered build rows with their reservation.
type SharedBuild = Arc<(RecordBatch, MemoryReservation)>;

/// Nested loop join of a streamed probe input with a buffered build input.
#[derive(Debug)]
pub struct NestedLoopJoinExec {
    probe: Arc<dyn ExecutionPlan>,
    build: Arc<dyn ExecutionPlan>,
    filter: Option<PhysicalExpr>,
    join_type: PhysicalJoinType,
    output: Vec<(JoinSide, usize)>,
    schema: SchemaRef,
    display: String,
    state: Mutex<Option<std::result::Result<SharedBuild, String>>>,
    metrics: Arc<OperatorMetrics>,
}

impl NestedLoopJoinExec {
    /// A nested loop join (see the module docs for the supported join types).
    pub fn try_new(
        probe: Arc<dyn ExecutionPlan>,
        build: Arc<dyn ExecutionPlan>,
        filter: Option<PhysicalExpr>,
        join_type: PhysicalJoinType,
        output: Vec<(JoinSide, usize)>,
        output_schema: SchemaRef,
        display: String,
    ) -> Result<Self> {
        use PhysicalJoinType as T;
        if !matches!(
            join_type,
            T::Inner | T::ProbeOuter | T::ProbeSemi | T::ProbeAnti | T::ProbeSingle
        ) {
            return Err(EngineError::NotSupported(format!(
                "{join_type:?} join without an equality condition"
            )));
        }
        if build.output_partitions() != 1 {
            return Err(EngineError::Internal(
                "nested loop join build side must have one partition".into(),
            ));
        }
        Ok(Self {
            probe,
            build,
            filter,
            join_type,
            output,
            schema: output_schema,
            display,
            state: Mutex::new(None),
            metrics: Arc::default(),
        })
    }

    fn build_side(&self, ctx: &Arc<TaskContext>) -> Result<Arc<(RecordBatch, MemoryReservation)>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = state.as_ref() {
            return s.clone().map_err(EngineError::Execution);
        }
        let result = (|| -> Result<Arc<(RecordBatch, MemoryReservation)>> {
            let mut reservation = MemoryReservation::new(
                &ctx.memory_pool,
                "NestedLoopJoin(build)",
                Some(Arc::clone(&self.metrics)),
            );
            let mut batches = Vec::new();
            for batch in Arc::clone(&self.build).execute(0, Arc::clone(ctx))? {
                let batch = compact_views(&batch?);
                reservation.try_grow_or_spill_others(batch.get_array_memory_size())?;
                batches.push(batch);
            }
            let batch = concat_batches(&self.build.schema(), &batches)?;
            if batch.num_rows() >= u32::MAX as usize {
                return Err(EngineError::NotSupported(
                    "a nested loop join build side of more than 4 billion rows".into(),
                ));
            }
            self.metrics.set_extra("build_rows", batch.num_rows());
            Ok(Arc::new((batch, reservation)))
        })();
        *state = Some(result.as_ref().map(Arc::clone).map_err(|e| e.to_string()));
        result
    }

    fn probe_batch(
        &self,
        build: &RecordBatch,
        batch: &RecordBatch,
        limit: usize,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        use PhysicalJoinType as T;
        let n = batch.num_rows();
        let m = build.num_rows();
        let rows_per_chunk = (limit / m.max(1)).max(1);
        let mut start = 0;
        while start < n {
            let end = (start + rows_per_chunk).min(n);
            let mut probe_idx = Vec::with_capacity((end - start) * m);
            let mut build_idx = Vec::with_capacity((end - start) * m);
            for r in start..end {
                for j in 0..m {
                    probe_idx.push(r as u32);
                    build_idx.push(j as u32);
                }
            }
            let mut p = UInt32Array::from(probe_idx);
            let mut b = UInt32Array::from(build_idx);
            if let Some(filter) = &self.filter {
                if !p.is_empty() {
                    let mask = filter.evaluate_mask(&pair_batch(batch, &p, build, &b)?)?;
                    p = arrow::array::AsArray::as_primitive(&arrow::compute::filter(&p, &mask)?)
                        .clone();
                    b = arrow::array::AsArray::as_primitive(&arrow::compute::filter(&b, &mask)?)
                        .clone();
                }
            }
            let mut count = vec![0u32; end - start];
            for &r in p.values().iter() {
                count[r as usize - start] += 1;
            }
            match self.join_type {
                T::Inner | T::ProbeOuter | T::ProbeSingle => {
                    if self.join_type == T::ProbeSingle && count.iter().any(|&c| c > 1) {
                        return Err(EngineError::Execution(
                            "more than one row returned by a subquery used as an expression".into(),
                        ));
                    }
                    if !p.is_empty() {
                        out.push(assemble(
                            &self.schema,
                            &self.output,
                            Some(batch),
                            &p,
                            build,
                            &b,
                        )?);
                    }
                    if self.join_type != T::Inner {
                        let unmatched: Vec<u32> = (start..end)
                            .filter(|&r| count[r - start] == 0)
                            .map(|r| r as u32)
                            .collect();
                        if !unmatched.is_empty() {
                            let nulls = UInt32Array::from(vec![None::<u32>; unmatched.len()]);
                            out.push(assemble(
                                &self.schema,
                                &self.output,
                                Some(batch),
                                &UInt32Array::from(unmatched),
                                build,
                                &nulls,
                            )?);
                        }
                    }
                }
                T::ProbeSemi | T::ProbeAnti => {
                    let want = self.join_type == T::ProbeSemi;
                    let mask: BooleanArray = (start..end)
                        .map(|r| Some((count[r - start] > 0) == want))
                        .collect();
                    if mask.true_count() > 0 {
                        let slice = batch.slice(start, end - start);
                        let filtered = arrow::compute::filter_record_batch(&slice, &mask)?;
                        let columns = self
                            .output
                            .iter()
                            .map(|(_, i)| Arc::clone(filtered.column(*i)))
                            .collect();
                        out.push(RecordBatch::try_new_with_options(
                            Arc::clone(&self.schema),
                            columns,
                            &arrow::array::RecordBatchOptions::new()
                                .with_row_count(Some(filtered.num_rows())),
                        )?);
                    }
                }
                _ => unreachable!("checked in try_new"),
            }
            start = end;
        }
        Ok(())
    }
}

impl ExecutionPlan for NestedLoopJoinExec {
    fn name(&self) -> &str {
        "NestedLoopJoin"
    }

    fn details(&self) -> String {
        format!("{} [{:?}]", self.display, self.join_type)
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.probe), Arc::clone(&self.build)]
    }

    fn output_partitions(&self) -> usize {
        self.probe.output_partitions()
    }

    fn grows_with_input(&self) -> bool {
        true
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let this = Arc::clone(&self);
        let mut input: Option<BatchStream> = None;
        let mut build: Option<Arc<(RecordBatch, MemoryReservation)>> = None;
        let mut pending = std::collections::VecDeque::new();
        let mut failed = false;
        let limit = (ctx.batch_size * 4).max(1024);
        let stream = std::iter::from_fn(move || loop {
            if failed {
                return None;
            }
            if let Some(b) = pending.pop_front() {
                return Some(Ok(b));
            }
            let step = (|| -> Result<bool> {
                if build.is_none() {
                    build = Some(this.build_side(&ctx)?);
                }
                let b = build.as_ref().expect("set above");
                if b.0.num_rows() == 0
                    && matches!(
                        this.join_type,
                        PhysicalJoinType::Inner | PhysicalJoinType::ProbeSemi
                    )
                {
                    return Ok(false);
                }
                if input.is_none() {
                    input = Some(Arc::clone(&this.probe).execute(partition, Arc::clone(&ctx))?);
                }
                match input.as_mut().and_then(Iterator::next) {
                    Some(batch) => {
                        let batch = batch?;
                        ctx.check_cancelled()?;
                        this.metrics.add_rows_in(batch.num_rows());
                        let mut out = Vec::new();
                        this.probe_batch(&b.0, &batch, limit, &mut out)?;
                        pending.extend(out);
                        Ok(true)
                    }
                    None => Ok(false),
                }
            })();
            match step {
                Ok(true) => continue,
                Ok(false) => {
                    build = None;
                    return None;
                }
                Err(e) => {
                    failed = true;
                    return Some(Err(e));
                }
            }
        });
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
