//! Nested loop join: for joins without an equality key (cross joins, uncorrelated scalar
//! subqueries, inequality-only conditions).
//!
//! The build input is buffered (and reserved); each probe batch is paired with every build
//! row a few probe rows at a time, so an output batch holds at most about `4 × batch_size`
//! pairs (or one probe row's pairs when the build side is larger than that). The residual
//! condition is evaluated on those pairs. Only joins that preserve the probe side are
//! supported: inner, probe-outer, probe-semi/anti and single.
//!
//! A build side larger than a quarter of the budget (or one the pool asks to make room) is
//! written to a spill file instead, in slices of at most one *block*: a quarter of the
//! budget shared by the probe partitions. The join then runs block by block: each probe
//! partition gathers probe batches up to a block, reads the build file back one block at a
//! time and pairs the two, counting every probe row's matches over all build blocks; rows
//! without a match (outer and anti joins) or with one (semi joins) are emitted once the last
//! block is done. Each partition holds one probe block and one build block, and reads the
//! build file once per probe block.
//!
//! ```text
//!   build ──► in memory ──(no room)──► spill file of block-sized slices
//!   probe ──► probe block ──► × build block 1, 2, … ──► pairs; unmatched rows at the end
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;

use super::{assemble, pair_batch, JoinSide, PhysicalJoinType};
use crate::error::{EngineError, Result};
use crate::eval::PhysicalExpr;
use crate::memory::{MemoryPart, MemoryReservation, SpillFile};
use crate::metrics::OperatorMetrics;
use crate::physical::spool::{Spool, Spooled};
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// The smallest block a spilled join reads at once, whatever the budget.
const MIN_BLOCK_BYTES: usize = 8 * 1024;

/// The buffered build side, shared by the probe partitions.
#[derive(Debug)]
enum Build {
    /// Every build row in one batch, with its reservation (held until the join is dropped).
    Memory {
        batch: RecordBatch,
        _reservation: MemoryReservation,
    },
    /// Build rows in a spill file, in slices of at most `block_bytes`; `empty` has the schema.
    Disk {
        file: SpillFile,
        block_bytes: usize,
        empty: RecordBatch,
    },
}

impl Build {
    fn rows(&self) -> usize {
        match self {
            Build::Memory { batch, .. } => batch.num_rows(),
            Build::Disk { file, .. } => file.rows(),
        }
    }
}

type SharedBuild = Arc<Build>;

/// Nested loop join of a streamed probe input with a buffered build input.
#[derive(Debug)]
pub(crate) struct NestedLoopJoinExec {
    probe: Arc<dyn ExecutionPlan>,
    build: Arc<dyn ExecutionPlan>,
    filter: Option<PhysicalExpr>,
    join_type: PhysicalJoinType,
    output: Vec<(JoinSide, usize)>,
    schema: SchemaRef,
    display: String,
    state: Mutex<Option<std::result::Result<SharedBuild, String>>>,
    /// Output partitions that have run to their end: the build side is released after the
    /// last one.
    finished: AtomicUsize,
    metrics: Arc<OperatorMetrics>,
}

impl NestedLoopJoinExec {
    /// A nested loop join (see the module docs for the supported join types).
    pub(crate) fn try_new(
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
            finished: AtomicUsize::new(0),
            metrics: Arc::default(),
        })
    }

    fn build_side(&self, ctx: &Arc<TaskContext>) -> Result<SharedBuild> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = state.as_ref() {
            return s.clone().map_err(EngineError::Execution);
        }
        let result = self.run_build(ctx).map(Arc::new);
        *state = Some(result.as_ref().map(Arc::clone).map_err(|e| e.to_string()));
        result
    }

    /// The bytes of one block of a spilled join (see the module docs).
    fn block_bytes(&self, ctx: &TaskContext) -> usize {
        let partitions = self.probe.output_partitions().max(1);
        (ctx.memory_pool.limit() / (4 * partitions)).max(MIN_BLOCK_BYTES)
    }

    /// Buffer the build input, in memory while the budget has room, else in a spill file.
    fn run_build(&self, ctx: &Arc<TaskContext>) -> Result<Build> {
        let reservation = MemoryReservation::new_spillable(
            &ctx.memory_pool,
            "NestedLoopJoin(build)",
            MemoryPart::BuildSide,
            Some(Arc::clone(&self.metrics)),
        );
        let block_bytes = self.block_bytes(ctx);
        // Slices of a quarter block: blocks read back are made of whole slices.
        // Held for the whole join, beside the probe pipeline: a quarter of the budget at most.
        let mut spool = Spool::new(
            reservation,
            ctx.memory_pool.limit() / 4,
            self.build.schema(),
            "nested-loop-build",
            Some(block_bytes / 4),
        );
        for batch in Arc::clone(&self.build).execute(0, Arc::clone(ctx))? {
            ctx.check_cancelled()?;
            spool.push(ctx, &batch?)?;
        }
        let (held, reservation) = match spool.finish(&self.metrics)? {
            Spooled::Memory(held, reservation) => (held, reservation),
            Spooled::Disk(file) => {
                self.metrics.set_extra("build_rows", file.rows());
                self.metrics.set_extra("block_bytes", block_bytes);
                return Ok(Build::Disk {
                    file,
                    block_bytes,
                    empty: RecordBatch::new_empty(self.build.schema()),
                });
            }
        };
        let batch = concat_batches(&self.build.schema(), &held)?;
        drop(held);
        if batch.num_rows() >= u32::MAX as usize {
            return Err(EngineError::NotSupported(
                "a nested loop join build side of more than 4 billion rows".into(),
            ));
        }
        self.metrics.set_extra("build_rows", batch.num_rows());
        Ok(Build::Memory {
            batch,
            _reservation: reservation,
        })
    }

    /// Pair probe rows `start..end` with every row of `build`, count each probe row's matches
    /// in `counts` (indexed from the probe block's first row) and return the joined rows of an
    /// inner, outer or single join.
    fn pair_chunk(
        &self,
        build: &RecordBatch,
        probe: &RecordBatch,
        (start, end): (usize, usize),
        counts: &mut [u32],
    ) -> Result<Option<RecordBatch>> {
        use PhysicalJoinType as T;
        let m = build.num_rows();
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
                let mask = filter.evaluate_mask(&pair_batch(probe, &p, build, &b)?)?;
                p = arrow::array::AsArray::as_primitive(&arrow::compute::filter(&p, &mask)?)
                    .clone();
                b = arrow::array::AsArray::as_primitive(&arrow::compute::filter(&b, &mask)?)
                    .clone();
            }
        }
        for &r in p.values().iter() {
            counts[r as usize] += 1;
        }
        if self.join_type == T::ProbeSingle && counts[start..end].iter().any(|&c| c > 1) {
            return Err(EngineError::Execution(
                "more than one row returned by a subquery used as an expression".into(),
            ));
        }
        if p.is_empty() || matches!(self.join_type, T::ProbeSemi | T::ProbeAnti) {
            return Ok(None);
        }
        Ok(Some(assemble(
            &self.schema,
            &self.output,
            Some(probe),
            &p,
            build,
            &b,
        )?))
    }

    /// After the last build block: the probe rows an outer or single join keeps without a
    /// match, or those a semi or anti join keeps.
    fn finish_block(
        &self,
        build: &RecordBatch,
        probe: &RecordBatch,
        counts: &[u32],
    ) -> Result<Option<RecordBatch>> {
        use PhysicalJoinType as T;
        match self.join_type {
            T::Inner => Ok(None),
            T::ProbeOuter | T::ProbeSingle => {
                let unmatched: Vec<u32> = (0..probe.num_rows() as u32)
                    .filter(|&r| counts[r as usize] == 0)
                    .collect();
                if unmatched.is_empty() {
                    return Ok(None);
                }
                let nulls = UInt32Array::from(vec![None::<u32>; unmatched.len()]);
                Ok(Some(assemble(
                    &self.schema,
                    &self.output,
                    Some(probe),
                    &UInt32Array::from(unmatched),
                    build,
                    &nulls,
                )?))
            }
            T::ProbeSemi | T::ProbeAnti => {
                let want = self.join_type == T::ProbeSemi;
                let mask: BooleanArray = counts.iter().map(|&c| Some((c > 0) == want)).collect();
                if mask.true_count() == 0 {
                    return Ok(None);
                }
                let filtered = arrow::compute::filter_record_batch(probe, &mask)?;
                let columns = self
                    .output
                    .iter()
                    .map(|(_, i)| Arc::clone(filtered.column(*i)))
                    .collect();
                Ok(Some(RecordBatch::try_new_with_options(
                    Arc::clone(&self.schema),
                    columns,
                    &arrow::array::RecordBatchOptions::new()
                        .with_row_count(Some(filtered.num_rows())),
                )?))
            }
            other => Err(EngineError::Internal(format!(
                "a nested loop join cannot run a {other:?} join"
            ))),
        }
    }
}

/// One probe block being joined: the block, its rows' match counts, the build block it is
/// paired with and the next probe row of that pairing.
struct Cursor {
    probe: RecordBatch,
    counts: Vec<u32>,
    /// The rest of a spilled build side, read one block at a time.
    blocks: Option<BatchStream>,
    block: Option<RecordBatch>,
    next_row: usize,
    /// Holds the probe block and the current build block of a spilled join.
    reservation: Option<MemoryReservation>,
}

/// The next block of `batches`: batches read until they reach half of `block_bytes` (or the
/// stream ends), each shown to `seen`, in one batch.
fn next_block(
    batches: &mut BatchStream,
    schema: &SchemaRef,
    block_bytes: usize,
    mut seen: impl FnMut(&RecordBatch),
) -> Result<Option<RecordBatch>> {
    let mut parts = Vec::new();
    let mut bytes = 0;
    while bytes < block_bytes / 2 {
        match batches.next() {
            Some(batch) => {
                let batch = batch?;
                seen(&batch);
                bytes += batch.get_array_memory_size();
                parts.push(batch);
            }
            None => break,
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(concat_batches(schema, &parts)?))
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

    fn can_spill(&self) -> bool {
        true
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let limit = (ctx.batch_size * 4).max(1024);
        let stream = NestedLoopStream {
            exec: Arc::clone(&self),
            ctx,
            partition,
            limit,
            build: None,
            input: None,
            cursor: None,
            done: false,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

/// One output partition of a nested loop join.
struct NestedLoopStream {
    exec: Arc<NestedLoopJoinExec>,
    ctx: Arc<TaskContext>,
    partition: usize,
    /// Pairs per output batch.
    limit: usize,
    build: Option<SharedBuild>,
    input: Option<BatchStream>,
    cursor: Option<Cursor>,
    done: bool,
}

impl NestedLoopStream {
    fn next_output(&mut self) -> Result<Option<RecordBatch>> {
        use PhysicalJoinType as T;
        loop {
            self.ctx.check_cancelled()?;
            let build = match &self.build {
                Some(b) => Arc::clone(b),
                None => {
                    let b = self.exec.build_side(&self.ctx)?;
                    self.build = Some(Arc::clone(&b));
                    b
                }
            };
            if build.rows() == 0 && matches!(self.exec.join_type, T::Inner | T::ProbeSemi) {
                return Ok(None);
            }
            if self.cursor.is_none() {
                match self.open_cursor(&build)? {
                    Some(c) => self.cursor = Some(c),
                    None => return Ok(None),
                }
            }
            let Some(cursor) = self.cursor.as_mut() else {
                return Ok(None);
            };
            if let Some(block) = &cursor.block {
                let n = cursor.probe.num_rows();
                if cursor.next_row < n {
                    let per_chunk = (self.limit / block.num_rows().max(1)).max(1);
                    let end = (cursor.next_row + per_chunk).min(n);
                    let out = self.exec.pair_chunk(
                        block,
                        &cursor.probe,
                        (cursor.next_row, end),
                        &mut cursor.counts,
                    )?;
                    cursor.next_row = end;
                    if out.is_some() {
                        return Ok(out);
                    }
                    continue;
                }
                // This build block is done with the probe block: on to the next one.
                cursor.next_row = 0;
                cursor.block = None;
                if let (Some(blocks), Build::Disk { block_bytes, .. }) =
                    (cursor.blocks.as_mut(), &*build)
                {
                    cursor.block =
                        next_block(blocks, &self.exec.build.schema(), *block_bytes, |_| {})?;
                    if let (Some(reservation), Some(block)) =
                        (cursor.reservation.as_mut(), &cursor.block)
                    {
                        reservation.try_resize_or_spill_others(
                            cursor.probe.get_array_memory_size() + block.get_array_memory_size(),
                        )?;
                    }
                }
                continue;
            }
            // Every build block has met this probe block.
            let Some(cursor) = self.cursor.take() else {
                return Ok(None);
            };
            let template = match &*build {
                Build::Memory { batch, .. } => batch,
                Build::Disk { empty, .. } => empty,
            };
            if let Some(out) = self
                .exec
                .finish_block(template, &cursor.probe, &cursor.counts)?
            {
                return Ok(Some(out));
            }
        }
    }

    /// The next probe block paired with the first build block: one probe batch against the
    /// buffered build side, or probe batches up to half a block against a spilled one.
    fn open_cursor(&mut self, build: &Build) -> Result<Option<Cursor>> {
        if self.input.is_none() {
            self.input =
                Some(Arc::clone(&self.exec.probe).execute(self.partition, Arc::clone(&self.ctx))?);
        }
        let Some(input) = self.input.as_mut() else {
            return Ok(None);
        };
        match build {
            Build::Memory { batch, .. } => {
                let Some(probe) = input.next().transpose()? else {
                    return Ok(None);
                };
                self.exec.metrics.add_rows_in(probe.num_rows());
                Ok(Some(Cursor {
                    counts: vec![0; probe.num_rows()],
                    probe,
                    blocks: None,
                    block: Some(batch.clone()),
                    next_row: 0,
                    reservation: None,
                }))
            }
            Build::Disk {
                file, block_bytes, ..
            } => {
                let metrics = &self.exec.metrics;
                let Some(probe) =
                    next_block(input, &self.exec.probe.schema(), *block_bytes, |b| {
                        metrics.add_rows_in(b.num_rows())
                    })?
                else {
                    return Ok(None);
                };
                let mut reservation = MemoryReservation::new(
                    &self.ctx.memory_pool,
                    format!("NestedLoopJoin(blocks)[partition {}]", self.partition),
                    MemoryPart::MergeBuffers,
                    Some(Arc::clone(&self.exec.metrics)),
                );
                reservation.try_grow_or_spill_others(probe.get_array_memory_size())?;
                let mut blocks: BatchStream = Box::new(file.read()?);
                let block =
                    next_block(&mut blocks, &self.exec.build.schema(), *block_bytes, |_| {})?;
                if let Some(block) = &block {
                    reservation.try_grow_or_spill_others(block.get_array_memory_size())?;
                }
                Ok(Some(Cursor {
                    counts: vec![0; probe.num_rows()],
                    probe,
                    blocks: Some(blocks),
                    block,
                    next_row: 0,
                    reservation: Some(reservation),
                }))
            }
        }
    }
}

impl Iterator for NestedLoopStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_output() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.done = true;
                // Release this partition's hold on the build side, and the build side itself
                // after the last partition.
                self.build = None;
                self.cursor = None;
                let exec = &self.exec;
                let done = exec.finished.fetch_add(1, Ordering::AcqRel) + 1;
                if done == exec.probe.output_partitions() {
                    *exec.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    exec.finished.store(0, Ordering::Relaxed);
                }
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
