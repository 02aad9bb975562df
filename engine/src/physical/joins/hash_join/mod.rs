//! Hash join: builds a hash table over the build input, then streams the probe input through
//! it; a grace hash join when the build input does not fit the memory budget.
//!
//! The build runs once, lazily, in whichever probe partition asks first (the others wait for
//! it), and is shared by all probe partitions (see [`table`] for the index). After the build,
//! a single integer key's min/max range is published to the probe-side scan (when the planner
//! wired one up), so probe row groups that cannot match are never read. Build-side outputs
//! (outer, semi and anti joins that keep build rows) are emitted by the last probe partition
//! to finish, from a shared "matched" bit set.
//!
//! Under memory pressure the build keeps as many hash partitions in memory as fit and writes
//! the others out; probe rows of written-out partitions are written out too and joined after
//! the probe input ends, partition by partition, by every probe stream in turn (see
//! [`grace`]):
//!
//! ```text
//!   build ──► partitions 0..16 ──► in memory: index ◄── probe rows of those partitions
//!                              └─► spilled: build files   probe rows ──► probe files
//!   after the probe input:  job per spilled partition = index(build files) ◄── probe files
//!                           (split again by the next hash bits, or chunked, if too big)
//! ```
//!
//! When the probe side is a scan that claims whole row groups in ascending order of the join
//! key (data written in key order), the build side is split by key ranges of those row groups
//! instead of by hash, and probe partitions load each range when they reach it: no probe row
//! is written out (see [`windows`]).

mod grace;
mod table;
mod windows;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};

use self::grace::{build_cost, split, take_members, GraceQueue, Job, PartitionBuffers, ProbeBits};
use self::table::{int_values, BuildFacts, BuildSide, KeyEncoding, MAX_LEVEL, NONE, PARTITIONS};
use self::windows::{Acquired, KeyWindows, Window};
use super::{assemble, pair_batch, JoinSide, PhysicalJoinType};
use crate::error::{EngineError, Result};
use crate::eval::PhysicalExpr;
use crate::memory::{MemoryReservation, SpillFile};
use crate::metrics::OperatorMetrics;
use crate::physical::key_segments::KeySegments;
use crate::physical::scan::{DynamicFilter, KeySetFilter};
use crate::physical::{
    compact_views, concat_releasing, instrument, BatchStream, ExecutionPlan, TaskContext,
};
use ooc_io::PruneExpr;

/// Hash join of a streamed probe input with a buffered build input.
#[derive(Debug)]
pub struct HashJoinExec {
    probe: Arc<dyn ExecutionPlan>,
    build: Arc<dyn ExecutionPlan>,
    on: Vec<(PhysicalExpr, PhysicalExpr)>,
    filter: Option<PhysicalExpr>,
    join_type: PhysicalJoinType,
    output: Vec<(JoinSide, usize)>,
    schema: SchemaRef,
    encoding: KeyEncoding,
    dynamic_filter: Option<(Arc<DynamicFilter>, String)>,
    publish_keys: bool,
    dynamic_key: usize,
    /// The probe scan's row groups in key order, for splitting a build side that does not
    /// fit by key windows (see [`windows`]).
    probe_segments: Option<Arc<KeySegments>>,
    /// Set when the build side was split by key windows.
    windows: OnceLock<Arc<KeyWindows>>,
    /// Windows kept in memory by the build.
    windows_kept: AtomicUsize,
    display: String,
    state: Mutex<BuildState>,
    grace: Mutex<GraceQueue>,
    grace_changed: Condvar,
    jobs_run: AtomicUsize,
    jobs_split: AtomicUsize,
    jobs_chunked: AtomicUsize,
    metrics: Arc<OperatorMetrics>,
}

#[derive(Debug, Default)]
enum BuildState {
    #[default]
    NotStarted,
    Ready(Arc<BuildSide>),
    Failed(String),
    Released,
}

impl HashJoinExec {
    /// A hash join; see the module docs of [`crate::physical::joins`] for the parameters'
    /// meaning. `build` must have exactly one partition; key pairs must have equal types.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        probe: Arc<dyn ExecutionPlan>,
        build: Arc<dyn ExecutionPlan>,
        on: Vec<(PhysicalExpr, PhysicalExpr)>,
        filter: Option<PhysicalExpr>,
        join_type: PhysicalJoinType,
        output: Vec<(JoinSide, usize)>,
        output_schema: SchemaRef,
        dynamic_filter: Option<(Arc<DynamicFilter>, String)>,
        display: String,
    ) -> Result<Self> {
        if on.is_empty() {
            return Err(EngineError::Internal("hash join without keys".into()));
        }
        if build.output_partitions() != 1 {
            return Err(EngineError::Internal(
                "hash join build side must have one partition".into(),
            ));
        }
        if join_type == PhysicalJoinType::ProbeAntiNullAware && (on.len() != 1 || filter.is_some())
        {
            return Err(EngineError::NotSupported(
                "NOT IN with several columns or extra conditions".into(),
            ));
        }
        // The key types, from the build expressions evaluated on no rows.
        let empty = RecordBatch::new_empty(build.schema());
        let types = on
            .iter()
            .map(|(_, b)| Ok(b.evaluate(&empty)?.into_array(0)?.data_type().clone()))
            .collect::<Result<Vec<DataType>>>()?;
        let encoding = KeyEncoding::for_types(&types)?;
        Ok(Self {
            probe,
            build,
            on,
            filter,
            join_type,
            output,
            schema: output_schema,
            encoding,
            dynamic_filter,
            publish_keys: false,
            dynamic_key: 0,
            probe_segments: None,
            windows: OnceLock::new(),
            windows_kept: AtomicUsize::new(0),
            display,
            state: Mutex::new(BuildState::NotStarted),
            grace: Mutex::new(GraceQueue {
                probe_files: (0..PARTITIONS).map(|_| Vec::new()).collect(),
                ..Default::default()
            }),
            grace_changed: Condvar::new(),
            jobs_run: AtomicUsize::new(0),
            jobs_split: AtomicUsize::new(0),
            jobs_chunked: AtomicUsize::new(0),
            metrics: Arc::default(),
        })
    }

    /// Also publish the set of build keys (up to 4 Mi distinct keys) to the probe scan, which
    /// then drops rows whose key is not in it right after decoding. Worth it when the rows
    /// pass through expensive work before reaching the join (an aggregate grouped by the key).
    pub fn with_key_set_filter(mut self, publish: bool) -> Self {
        self.publish_keys = publish;
        self
    }

    /// Which key pair (by position in `on`) the dynamic filter is about (default: the first).
    pub fn with_dynamic_key(mut self, index: usize) -> Self {
        self.dynamic_key = index;
        self
    }

    /// Let a build side that does not fit be split by key windows of the probe scan's
    /// `segments` (row groups in key order). Taken only for a single integer key that is the
    /// segments' column on the probe side (the caller checks that), and for joins that emit
    /// no build rows of their own.
    pub fn with_probe_segments(mut self, segments: Option<Arc<KeySegments>>) -> Self {
        use PhysicalJoinType as T;
        let eligible = matches!(self.encoding, KeyEncoding::Int)
            && self.on.len() == 1
            && matches!(
                self.join_type,
                T::Inner | T::ProbeOuter | T::ProbeSemi | T::ProbeAnti | T::ProbeSingle
            )
            && segments
                .as_ref()
                .is_some_and(|s| s.partitions() == self.probe.output_partitions());
        self.probe_segments = segments.filter(|_| eligible);
        self
    }

    fn build_exprs(&self) -> Vec<&PhysicalExpr> {
        self.on.iter().map(|(_, b)| b).collect()
    }

    fn probe_exprs(&self) -> Vec<&PhysicalExpr> {
        self.on.iter().map(|(p, _)| p).collect()
    }

    fn grace(&self) -> std::sync::MutexGuard<'_, GraceQueue> {
        self.grace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared build side, building it on first use.
    fn build_side(&self, ctx: &Arc<TaskContext>) -> Result<Arc<BuildSide>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            BuildState::Ready(b) => return Ok(Arc::clone(b)),
            BuildState::Failed(e) => return Err(EngineError::Execution(e.clone())),
            BuildState::Released => {
                return Err(EngineError::Internal(
                    "hash join build side released".into(),
                ))
            }
            BuildState::NotStarted => {}
        }
        match self.create_build_side(ctx) {
            Ok(b) => {
                let b = Arc::new(b);
                *state = BuildState::Ready(Arc::clone(&b));
                Ok(b)
            }
            Err(e) => {
                *state = BuildState::Failed(e.to_string());
                Err(e)
            }
        }
    }

    /// Read the build input: whole batches while the reservation grows, hash partitions with
    /// the largest ones written out after the first refusal.
    fn create_build_side(&self, ctx: &Arc<TaskContext>) -> Result<BuildSide> {
        let schema = self.build.schema();
        let exprs = self.build_exprs();
        let mut reservation = MemoryReservation::new_spillable(
            &ctx.memory_pool,
            "HashJoin(build)",
            Some(Arc::clone(&self.metrics)),
        );
        let mut whole: Vec<RecordBatch> = Vec::new();
        // After the first refusal: the in-memory rows of each partition and their cost.
        let mut parts: Option<Vec<Vec<RecordBatch>>> = None;
        // Per partition (or window, once decided).
        let mut part_bytes = vec![0usize; PARTITIONS];
        let mut spilled = vec![false; PARTITIONS];
        let mut spill: Option<PartitionBuffers> = None;
        // Key windows instead of hash partitions, decided at the first refusal.
        let mut windows: Option<KeyWindows> = None;
        let mut facts = BuildFacts::default();
        let mut spilled_range: Option<(i64, i64)> = None;
        // Batches to route into partitions, with the cost already reserved for each.
        let mut incoming: Vec<(RecordBatch, usize)> = Vec::new();
        let want_range = self.dynamic_filter.is_some();
        for batch in Arc::clone(&self.build).execute(0, Arc::clone(ctx))? {
            let batch = compact_views(&batch?);
            ctx.check_cancelled()?;
            facts.rows += batch.num_rows();
            let mut asked = false;
            if parts.is_none() {
                // Keep batches whole while they fit and nobody asked for memory.
                asked = reservation.spill_requested();
                if !asked
                    && reservation
                        .try_grow(build_cost(&batch, &self.encoding))
                        .is_ok()
                {
                    whole.push(batch);
                    continue;
                }
                // First refusal: from now on rows are kept by partition (or window).
                windows = self.probe_segments.clone().and_then(KeyWindows::plan);
                let slots = windows.as_ref().map_or(PARTITIONS, KeyWindows::len);
                part_bytes = vec![0; slots];
                spilled = vec![false; slots];
                parts = Some((0..slots).map(|_| Vec::new()).collect());
                spill = Some(PartitionBuffers::new(
                    "join-build".into(),
                    slots,
                    Arc::clone(&schema),
                    ctx,
                    &self.metrics,
                ));
                incoming.extend(whole.drain(..).map(|b| {
                    let cost = build_cost(&b, &self.encoding);
                    (b, cost)
                }));
            }
            incoming.push((batch, 0));
            let (Some(parts), Some(spill)) = (parts.as_mut(), spill.as_mut()) else {
                return Err(broken("build partitions missing"));
            };
            for (batch, reserved) in incoming.drain(..) {
                let keys = self.encoding.keys(&exprs, &batch)?;
                facts.has_null_key |= keys.valid.as_ref().is_some_and(|v| v.null_count() > 0);
                if want_range {
                    spilled_range = merge_ranges(spilled_range, self.dynamic_key_range(&batch)?);
                }
                let subs = match &windows {
                    Some(w) => take_members(&batch, w.route(&keys.ints[0]))?,
                    None => split(&batch, &keys.partitions(0))?,
                };
                drop(batch);
                reservation.shrink(reserved);
                for (p, sub) in subs {
                    if spilled[p] {
                        spill.push(p, sub, ctx, &self.metrics)?;
                        continue;
                    }
                    let cost = build_cost(&sub, &self.encoding);
                    parts[p].push(sub);
                    part_bytes[p] += cost;
                    // Make room by writing out the largest partition still in memory
                    // (possibly this one), or the highest window: the probe side needs
                    // the low ones first.
                    while reservation.try_grow(cost).is_err() {
                        let held = (0..spilled.len()).filter(|&q| !spilled[q]);
                        let victim = match windows {
                            Some(_) => held.max(),
                            None => held.max_by_key(|&q| part_bytes[q]),
                        }
                        .ok_or_else(|| broken("no build partition in memory"))?;
                        spilled[victim] = true;
                        for b in std::mem::take(&mut parts[victim]) {
                            spill.push(victim, b, ctx, &self.metrics)?;
                        }
                        let freed = part_bytes[victim];
                        part_bytes[victim] = 0;
                        if victim == p {
                            // Its own cost was never reserved.
                            reservation.shrink(freed - cost);
                            break;
                        }
                        reservation.shrink(freed);
                    }
                }
            }
            // Asked for memory by an operator that cannot spill: write out the largest
            // partition still held.
            if asked || reservation.spill_requested() {
                let held = (0..spilled.len()).filter(|&q| !spilled[q] && part_bytes[q] > 0);
                let victim = match windows {
                    Some(_) => held.max(),
                    None => held.max_by_key(|&q| part_bytes[q]),
                };
                if let Some(victim) = victim {
                    spilled[victim] = true;
                    for b in std::mem::take(&mut parts[victim]) {
                        spill.push(victim, b, ctx, &self.metrics)?;
                    }
                    reservation.shrink(part_bytes[victim]);
                    part_bytes[victim] = 0;
                }
            }
        }
        // From here on the rows are indexed in memory and cannot be written out any more.
        reservation.stop_spilling();
        if let (Some(windows), Some(parts)) = (windows, parts.as_mut()) {
            let mut files = spill
                .ok_or_else(|| broken("build spill buffers missing"))?
                .finish(ctx, &self.metrics)?;
            let mut installed = Vec::with_capacity(windows.len());
            let mut kept = 0;
            for w in 0..windows.len() {
                if spilled[w] {
                    installed.push(Window::Disk(std::mem::take(&mut files[w])));
                    continue;
                }
                kept += 1;
                let rows = concat_releasing(&schema, std::mem::take(&mut parts[w]))?;
                let held = reservation.split(part_bytes[w]);
                installed.push(Window::Memory(Arc::new(BuildSide::index(
                    rows,
                    &exprs,
                    &self.encoding,
                    held,
                    [false; PARTITIONS],
                    facts,
                )?)));
            }
            windows.install(installed);
            self.windows_kept.store(kept, Ordering::Relaxed);
            self.metrics.set_extra("key_windows", windows.summary(kept));
            let _ = self.windows.set(Arc::new(windows));
            // The probe streams join against the windows; the shared build side holds no
            // rows, only the facts.
            let empty = RecordBatch::new_empty(Arc::clone(&schema));
            let build = BuildSide::index(
                empty,
                &exprs,
                &self.encoding,
                reservation,
                [false; PARTITIONS],
                facts,
            )?;
            self.publish_dynamic_filter(&build, spilled_range, false)?;
            self.metrics.set_extra("build_rows", build.facts.rows);
            return Ok(build);
        }
        let (batch, files) = match parts {
            None => (concat_releasing(&schema, whole)?, Vec::new()),
            Some(parts) => {
                let in_memory: Vec<RecordBatch> = parts.into_iter().flatten().collect();
                let files = spill
                    .ok_or_else(|| broken("build spill buffers missing"))?
                    .finish(ctx, &self.metrics)?;
                (concat_releasing(&schema, in_memory)?, files)
            }
        };
        let spilled_partitions: [bool; PARTITIONS] = spilled
            .as_slice()
            .try_into()
            .map_err(|_| broken("hash partitions miscounted"))?;
        let build = BuildSide::index(
            batch,
            &exprs,
            &self.encoding,
            reservation,
            spilled_partitions,
            facts,
        )?;
        let spilled_count = spilled.iter().filter(|&&s| s).count();
        let largest = build.partition_rows.iter().max().copied().unwrap_or(0);
        self.metrics.set_extra(
            "build_partitions",
            if spilled_count == 0 {
                format!("{PARTITIONS} (largest {largest} rows)")
            } else {
                format!("{PARTITIONS}, {spilled_count} spilled")
            },
        );
        if spilled_count > 0 {
            self.grace().build_files = files;
        }
        self.publish_dynamic_filter(&build, spilled_range, spilled_count == 0)?;
        self.metrics.set_extra("build_rows", build.facts.rows);
        self.metrics.set_extra("index", build.index_kind());
        Ok(build)
    }

    /// Publish the build keys' range (and, when all of them are in memory and asked for,
    /// their set) to the probe scan.
    fn publish_dynamic_filter(
        &self,
        build: &BuildSide,
        spilled_range: Option<(i64, i64)>,
        complete: bool,
    ) -> Result<()> {
        let Some((filter, column)) = &self.dynamic_filter else {
            return Ok(());
        };
        if !self.join_type.drops_unmatched_probe_rows() {
            return Ok(());
        }
        let n = build.batch.num_rows();
        let key = self.on[self.dynamic_key.min(self.on.len() - 1)]
            .1
            .evaluate(&build.batch)?
            .into_array(n)?;
        // The filter is about one key column (of possibly several); it must be integer-like.
        if !table::is_int_key(key.data_type()) {
            return Ok(());
        }
        let values = int_values(&key)?;
        let valid = |i: usize| arrow::array::Array::is_valid(&values, i);
        let range = merge_ranges(spilled_range, self.dynamic_key_range(&build.batch)?);
        self.publish_range(filter, column, range)?;
        if self.publish_keys && complete {
            let set: hashbrown::HashSet<i64> = (0..n)
                .filter(|&i| valid(i))
                .map(|i| values.value(i))
                .collect();
            if set.len() <= 4 << 20 {
                self.metrics.set_extra("key_set_published", set.len());
                filter.publish_keys(KeySetFilter {
                    column: column.clone(),
                    keys: set,
                });
            }
        }
        Ok(())
    }

    /// Min and max of the dynamic filter's key column over `batch` (build side), if that
    /// column is integer-like and has a non-NULL value.
    fn dynamic_key_range(&self, batch: &RecordBatch) -> Result<Option<(i64, i64)>> {
        let key = self.on[self.dynamic_key.min(self.on.len() - 1)]
            .1
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        if !table::is_int_key(key.data_type()) {
            return Ok(None);
        }
        let values = int_values(&key)?;
        Ok(arrow::compute::min(&values).zip(arrow::compute::max(&values)))
    }

    fn publish_range(
        &self,
        filter: &Arc<DynamicFilter>,
        column: &str,
        range: Option<(i64, i64)>,
    ) -> Result<()> {
        let Some((lo, hi)) = range else {
            return Ok(());
        };
        let probe_type = self
            .probe
            .schema()
            .field_with_name(column)
            .ok()
            .map(|f| f.data_type().clone());
        let Some(probe_type) = probe_type else {
            return Ok(());
        };
        let to_type = |v: i64| -> Result<ArrayRef> {
            let a: ArrayRef = Arc::new(Int64Array::from(vec![v]));
            Ok(match probe_type {
                DataType::Date32 => cast(&cast(&a, &DataType::Int32)?, &DataType::Date32)?,
                ref t => cast(&a, t)?,
            })
        };
        filter.publish(
            0,
            PruneExpr::Between {
                column: column.to_string(),
                low: to_type(lo)?,
                high: to_type(hi)?,
                negated: false,
            },
        );
        self.metrics
            .set_extra("dynamic_filter", format!("{column} in [{lo}, {hi}]"));
        Ok(())
    }

    /// Emit the build rows this join keeps at the end (after the last probe partition).
    fn build_side_output(&self, build: &BuildSide, batch_size: usize) -> Result<Vec<RecordBatch>> {
        let n = build.batch.num_rows();
        let keep_matched = self.join_type == PhysicalJoinType::BuildSemi;
        let rows: Vec<u32> = (0..n)
            .filter(|&i| build.is_marked(i) == keep_matched)
            .map(|i| i as u32)
            .collect();
        let mut out = Vec::new();
        for chunk in rows.chunks(batch_size.max(1)) {
            let build_idx = UInt32Array::from(chunk.to_vec());
            let probe_idx = UInt32Array::from(vec![None::<u32>; chunk.len()]);
            out.push(assemble(
                &self.schema,
                &self.output,
                None,
                &probe_idx,
                &build.batch,
                &build_idx,
            )?);
        }
        Ok(out)
    }

    /// Whether unmatched or matched probe rows are emitted per probe row (so a chunked job
    /// must remember, per probe row, whether any chunk matched it).
    fn decides_probe_rows(&self) -> bool {
        use PhysicalJoinType as T;
        matches!(
            self.join_type,
            T::ProbeOuter
                | T::FullOuter
                | T::ProbeSingle
                | T::ProbeSemi
                | T::ProbeAnti
                | T::ProbeAntiNullAware
        )
    }
}

/// Where a probe stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Streaming its probe input.
    Probing,
    /// Joining spilled partitions.
    Jobs,
    Done,
}

/// A spilled partition being joined by one probe stream.
struct RunningJob {
    /// The index of the (current chunk of the) job's build rows.
    build: Option<BuildSide>,
    /// The rest of the build rows, for a chunked job.
    build_rest: Option<ChunkSource>,
    probe: Vec<SpillFile>,
    next_probe_file: usize,
    reader: Option<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>>,
    /// Probe rows read in this pass (the row number of the next probe row).
    probe_row: usize,
    /// Per probe row: matched in some chunk (chunked jobs that decide probe rows).
    bits: Option<ProbeBits>,
    /// The last pass of a chunked job: emit probe rows by their bits.
    final_pass: bool,
}

/// Build files read a chunk at a time.
struct ChunkSource {
    files: Vec<SpillFile>,
    next_file: usize,
    reader: Option<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>>,
    /// Batches read but not taken by the previous chunk (the next one last).
    carry: Vec<RecordBatch>,
}

impl ChunkSource {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(b) = self.carry.pop() {
            return Ok(Some(b));
        }
        loop {
            if let Some(reader) = &mut self.reader {
                match reader.next() {
                    Some(b) => return Ok(Some(b?)),
                    None => self.reader = None,
                }
            }
            if self.next_file >= self.files.len() {
                return Ok(None);
            }
            self.reader = Some(Box::new(self.files[self.next_file].read()?));
            self.next_file += 1;
        }
    }
}

/// Per-partition probing state.
struct ProbeStream {
    exec: Arc<HashJoinExec>,
    ctx: Arc<TaskContext>,
    partition: usize,
    input: Option<BatchStream>,
    build: Option<Arc<BuildSide>>,
    /// Probe rows of spilled partitions on their way to probe files.
    spill: Option<PartitionBuffers>,
    pending: std::collections::VecDeque<RecordBatch>,
    phase: Phase,
    /// Whether this stream told the others that it finished its input.
    registered: bool,
    job: Option<RunningJob>,
    /// Whether this stream counts in [`GraceQueue::working`].
    working: bool,
    facts: BuildFacts,
    /// With key windows: the window of the latest probe batch and its build rows (`None`:
    /// deferred, the rows are written out).
    window: Option<(usize, Option<Arc<BuildSide>>)>,
}

impl Drop for ProbeStream {
    /// A stream dropped before finishing its input (LIMIT, an error elsewhere) tells the
    /// others, so none waits forever for its probe files.
    fn drop(&mut self) {
        if !self.registered {
            self.exec.grace().abandoned += 1;
            self.exec.grace_changed.notify_all();
        }
        self.stop_working();
    }
}

impl ProbeStream {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            match self.phase {
                Phase::Done => return Ok(None),
                Phase::Probing => self.probe_step()?,
                Phase::Jobs => {
                    self.ctx.check_cancelled()?;
                    if self.job.is_some() {
                        if !self.job_step()? {
                            self.finish_job();
                        }
                        continue;
                    }
                    match self.next_job()? {
                        Some(job) => {
                            self.start_job(job)?;
                            if self.job.is_none() {
                                self.stop_working();
                            }
                        }
                        None => self.phase = Phase::Done,
                    }
                }
            }
        }
    }

    /// Probe one input batch, or finish the input.
    fn probe_step(&mut self) -> Result<()> {
        let build = match &self.build {
            Some(b) => Arc::clone(b),
            None => {
                let b = self.exec.build_side(&self.ctx)?;
                self.facts = b.facts;
                self.build = Some(Arc::clone(&b));
                b
            }
        };
        let join_type = self.exec.join_type;
        let skip_probe = build.facts.rows == 0
            && matches!(
                join_type,
                PhysicalJoinType::Inner
                    | PhysicalJoinType::ProbeSemi
                    | PhysicalJoinType::BuildSemi
                    | PhysicalJoinType::BuildOuter
                    | PhysicalJoinType::BuildAnti
            );
        if self.input.is_none() && !skip_probe {
            self.input =
                Some(Arc::clone(&self.exec.probe).execute(self.partition, Arc::clone(&self.ctx))?);
        }
        let next = if skip_probe {
            None
        } else {
            self.input.as_mut().and_then(Iterator::next)
        };
        match next {
            Some(batch) => {
                let batch = batch?;
                self.ctx.check_cancelled()?;
                self.exec.metrics.add_rows_in(batch.num_rows());
                match self.exec.windows.get() {
                    Some(windows) => self.probe_windowed(&Arc::clone(windows), &batch)?,
                    None => self.probe_batch(&build, &batch, None)?,
                }
            }
            None => self.finish_probing(build)?,
        }
        Ok(())
    }

    /// The probe input ended: hand over the probe files; the last stream to finish emits the
    /// in-memory build-side rows and turns the spilled partitions into jobs.
    fn finish_probing(&mut self, build: Arc<BuildSide>) -> Result<()> {
        self.input = None;
        self.build = None;
        self.window = None;
        let files = match self.spill.take() {
            Some(s) => s.finish(&self.ctx, &self.exec.metrics)?,
            None => Vec::new(),
        };
        let exec = Arc::clone(&self.exec);
        let mut grace = exec.grace();
        if grace.probe_files.len() < files.len() {
            grace.probe_files.resize_with(files.len(), Vec::new);
        }
        for (p, f) in files.into_iter().enumerate() {
            grace.probe_files[p].extend(f);
        }
        grace.finished += 1;
        self.registered = true;
        if grace.finished == exec.probe.output_partitions() {
            if exec.join_type.emits_build_rows_at_end() {
                let out = exec.build_side_output(&build, self.ctx.batch_size)?;
                self.pending.extend(out);
            }
            *exec.state.lock().unwrap_or_else(|e| e.into_inner()) = BuildState::Released;
            if let Some(windows) = exec.windows.get() {
                exec.metrics.set_extra(
                    "key_windows",
                    windows.summary(exec.windows_kept.load(Ordering::Relaxed)),
                );
                for (w, files) in windows.finish() {
                    let job = Job {
                        level: 0,
                        name: format!("w{w}"),
                        build: files,
                        probe: grace
                            .probe_files
                            .get_mut(w)
                            .map(std::mem::take)
                            .unwrap_or_default(),
                        chunked: false,
                    };
                    grace.jobs.push_back(job);
                }
            }
            if build.any_spilled() {
                for p in (0..PARTITIONS).filter(|&p| build.spilled[p]) {
                    let job = Job {
                        level: 0,
                        name: format!("p{p}"),
                        build: std::mem::take(&mut grace.build_files[p]),
                        probe: std::mem::take(&mut grace.probe_files[p]),
                        chunked: false,
                    };
                    grace.jobs.push_back(job);
                }
            }
            grace.ready = true;
            exec.grace_changed.notify_all();
        }
        let deferred = exec.windows.get().is_some_and(|w| w.any_deferred());
        self.phase = if build.any_spilled() || deferred {
            Phase::Jobs
        } else {
            Phase::Done
        };
        Ok(())
    }

    /// The next job: wait until the last probe stream has created them, then take one.
    fn next_job(&mut self) -> Result<Option<Job>> {
        let exec = Arc::clone(&self.exec);
        let mut grace = exec.grace();
        loop {
            if let Some(job) = grace.jobs.pop_front() {
                grace.working += 1;
                self.working = true;
                return Ok(Some(job));
            }
            if grace.ready || grace.abandoned > 0 {
                return Ok(None);
            }
            self.ctx.check_cancelled()?;
            grace = exec
                .grace_changed
                .wait_timeout(grace, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Read a job's build rows: index them if they fit, else split the job or join it in
    /// chunks.
    fn start_job(&mut self, mut job: Job) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        exec.jobs_run.fetch_add(1, Ordering::Relaxed);
        if job.build_rows() == 0 && !exec.decides_probe_rows() {
            return Ok(()); // nothing can match and no probe row is emitted unmatched
        }
        let mut source = ChunkSource {
            files: std::mem::take(&mut job.build),
            next_file: 0,
            reader: None,
            carry: Vec::new(),
        };
        if !job.chunked {
            let (chunk, complete) = self.load(&mut source, false)?;
            if complete {
                let build = chunk.ok_or_else(|| broken("a complete load was not indexed"))?;
                self.job = Some(self.running(Some(build), None, job.probe, false)?);
                return Ok(());
            }
            drop(chunk);
            if job.level < MAX_LEVEL {
                job.build = source.files;
                return self.split_job(job);
            }
        }
        exec.jobs_chunked.fetch_add(1, Ordering::Relaxed);
        let source = ChunkSource {
            files: source.files,
            next_file: 0,
            reader: None,
            carry: Vec::new(),
        };
        let mut running = self.running(None, Some(source), job.probe, true)?;
        running.build = self.next_chunk(&mut running)?;
        if running.build.is_none() {
            if running.bits.is_none() {
                return Ok(());
            }
            running.final_pass = true;
        }
        self.job = Some(running);
        Ok(())
    }

    fn running(
        &self,
        build: Option<BuildSide>,
        build_rest: Option<ChunkSource>,
        probe: Vec<SpillFile>,
        chunked: bool,
    ) -> Result<RunningJob> {
        let bits = if chunked && self.exec.decides_probe_rows() {
            let rows = probe.iter().map(SpillFile::rows).sum();
            // Another stream's chunk may hold the whole budget for a moment: wait for it,
            // as a chunk load does, instead of failing.
            loop {
                match ProbeBits::new(rows, &self.ctx, &self.exec.metrics) {
                    Ok(bits) => break Some(bits),
                    Err(EngineError::ResourcesExhausted { .. }) if self.wait_for_memory()? => {}
                    Err(e) => return Err(e),
                }
            }
        } else {
            None
        };
        Ok(RunningJob {
            build,
            build_rest,
            probe,
            next_probe_file: 0,
            reader: None,
            probe_row: 0,
            bits,
            final_pass: false,
        })
    }

    /// Read build batches from `source` while the reservation grows and index them.
    ///
    /// Without `chunk`, everything must fit: at the first refusal nothing is indexed and
    /// `(None, false)` comes back (the caller splits the job). With `chunk`, the batches read
    /// until the refusal are indexed and the refused batch waits in `source` for the next
    /// chunk; a chunk holds at least one row, or the budget is too small to join at all.
    /// The flag says whether `source` is exhausted.
    fn load(&self, source: &mut ChunkSource, chunk: bool) -> Result<(Option<BuildSide>, bool)> {
        let exec = &self.exec;
        let mut reservation = MemoryReservation::new(
            &self.ctx.memory_pool,
            "HashJoin(build)",
            Some(Arc::clone(&exec.metrics)),
        );
        let mut batches = Vec::new();
        let mut complete = true;
        while let Some(batch) = source.next_batch()? {
            self.ctx.check_cancelled()?;
            let cost = build_cost(&batch, &exec.encoding);
            match reservation.try_grow(cost) {
                Ok(()) => batches.push(batch),
                Err(e) => {
                    if !chunk {
                        return Ok((None, false));
                    }
                    complete = false;
                    if batches.is_empty() {
                        // Nothing fits: while another stream's job holds memory, wait for
                        // it to let go rather than cut the chunk smaller.
                        if self.wait_for_memory()? {
                            source.carry.push(batch);
                            continue;
                        }
                        // Alone: try half of the batch.
                        if batch.num_rows() <= 1 {
                            return Err(e);
                        }
                        // Copies, not slices: a slice would still count the whole buffers.
                        let n = batch.num_rows() as u32;
                        let half = n / 2;
                        let part = |range: std::ops::Range<u32>| {
                            arrow::compute::take_record_batch(
                                &batch,
                                &UInt32Array::from_iter_values(range),
                            )
                        };
                        source.carry.push(part(half..n)?);
                        source.carry.push(part(0..half)?);
                        continue;
                    }
                    source.carry.push(batch);
                    break;
                }
            }
        }
        if batches.is_empty() && chunk {
            return Ok((None, complete));
        }
        let batch = concat_releasing(&exec.build.schema(), batches)?;
        let build = BuildSide::index(
            batch,
            &exec.build_exprs(),
            &exec.encoding,
            reservation,
            [false; PARTITIONS],
            self.facts,
        )?;
        Ok((Some(build), complete))
    }

    /// Wait a moment for memory when another stream is working on a job (and is not itself
    /// waiting): its chunk or its end frees memory. `false` when no other stream could.
    fn wait_for_memory(&self) -> Result<bool> {
        let exec = &self.exec;
        let mut grace = exec.grace();
        if grace.working <= grace.waiting + 1 {
            return Ok(false);
        }
        grace.waiting += 1;
        let mut grace = exec
            .grace_changed
            .wait_timeout(grace, Duration::from_millis(20))
            .unwrap_or_else(|e| e.into_inner())
            .0;
        grace.waiting -= 1;
        drop(grace);
        self.ctx.check_cancelled()?;
        Ok(true)
    }

    /// This stream no longer works on a job: tell streams waiting for memory.
    fn stop_working(&mut self) {
        if std::mem::take(&mut self.working) {
            self.exec.grace().working -= 1;
            self.exec.grace_changed.notify_all();
        }
    }

    /// The next chunk of a chunked job's build rows, or `None` when all were joined.
    fn next_chunk(&self, running: &mut RunningJob) -> Result<Option<BuildSide>> {
        let source = running
            .build_rest
            .as_mut()
            .ok_or_else(|| broken("a chunked job without build rows"))?;
        let (chunk, _) = self.load(source, true)?;
        Ok(chunk.filter(|c| c.batch.num_rows() > 0))
    }

    /// Split a job by the next level's hash bits into sub-jobs, queued for every stream.
    fn split_job(&mut self, job: Job) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        exec.jobs_split.fetch_add(1, Ordering::Relaxed);
        let level = job.level + 1;
        let build_rows = job.build_rows();
        let build_files = self.repartition(
            &job.build,
            &exec.build_exprs(),
            exec.build.schema(),
            level,
            &format!("join-build-{}", job.name),
        )?;
        let probe_files = self.repartition(
            &job.probe,
            &exec.probe_exprs(),
            exec.probe.schema(),
            level,
            &format!("join-probe-{}", job.name),
        )?;
        drop(job.build);
        drop(job.probe);
        let mut jobs = Vec::new();
        for (p, (build, probe)) in build_files.into_iter().zip(probe_files).enumerate() {
            if build.is_empty() && probe.is_empty() {
                continue;
            }
            let rows: usize = build.iter().map(SpillFile::rows).sum();
            jobs.push(Job {
                level,
                name: format!("{}.{p}", job.name),
                build,
                probe,
                // All rows in one sub-partition: more bits will not split them either (most
                // likely a single key), so join it in chunks right away.
                chunked: rows == build_rows && build_rows > 0,
            });
        }
        let mut grace = exec.grace();
        grace.jobs.extend(jobs);
        exec.grace_changed.notify_all();
        Ok(())
    }

    /// Rewrite `files` into hash partitions at `level`.
    fn repartition(
        &self,
        files: &[SpillFile],
        exprs: &[&PhysicalExpr],
        schema: SchemaRef,
        level: u32,
        label: &str,
    ) -> Result<Vec<Vec<SpillFile>>> {
        let mut buffers = PartitionBuffers::new(
            label.into(),
            PARTITIONS,
            schema,
            &self.ctx,
            &self.exec.metrics,
        );
        for file in files {
            for batch in file.read()? {
                let batch = batch?;
                self.ctx.check_cancelled()?;
                let keys = self.exec.encoding.keys(exprs, &batch)?;
                for (p, sub) in split(&batch, &keys.partitions(level))? {
                    buffers.push(p, sub, &self.ctx, &self.exec.metrics)?;
                }
            }
        }
        buffers.finish(&self.ctx, &self.exec.metrics)
    }

    /// One step of the running job: probe one batch of its probe files, or move to the next
    /// chunk or pass. `false` when the job is done.
    fn job_step(&mut self) -> Result<bool> {
        let mut job = self.job.take().ok_or_else(|| broken("no running job"))?;
        let more = self.job_step_of(&mut job);
        self.job = Some(job);
        more
    }

    fn job_step_of(&mut self, job: &mut RunningJob) -> Result<bool> {
        if let Some(reader) = &mut job.reader {
            match reader.next() {
                Some(batch) => {
                    let batch = batch?;
                    let base = job.probe_row;
                    job.probe_row += batch.num_rows();
                    if job.final_pass {
                        let bits = job
                            .bits
                            .as_ref()
                            .ok_or_else(|| broken("final pass without bits"))?;
                        self.emit_by_bits(&batch, bits, base)?;
                    } else {
                        let build = job
                            .build
                            .as_ref()
                            .ok_or_else(|| broken("a pass without build rows"))?;
                        let bits = job.bits.as_mut().map(|b| (b, base));
                        self.probe_batch(build, &batch, bits)?;
                    }
                    return Ok(true);
                }
                None => job.reader = None,
            }
        }
        if job.next_probe_file < job.probe.len() {
            job.reader = Some(Box::new(job.probe[job.next_probe_file].read()?));
            job.next_probe_file += 1;
            return Ok(true);
        }
        // A pass over the probe files is complete.
        if job.final_pass {
            return Ok(false);
        }
        if let Some(build) = job.build.take() {
            if self.exec.join_type.emits_build_rows_at_end() {
                let out = self.exec.build_side_output(&build, self.ctx.batch_size)?;
                self.pending.extend(out);
            }
        }
        if job.build_rest.is_none() {
            return Ok(false);
        }
        job.next_probe_file = 0;
        job.probe_row = 0;
        job.build = self.next_chunk(job)?;
        if job.build.is_none() {
            job.build_rest = None;
            if job.bits.is_none() {
                return Ok(false);
            }
            job.final_pass = true;
        }
        Ok(true)
    }

    fn finish_job(&mut self) {
        self.job = None;
        self.stop_working();
        let exec = &self.exec;
        exec.metrics.set_extra(
            "grace_jobs",
            format!(
                "{} ({} split, {} chunked)",
                exec.jobs_run.load(Ordering::Relaxed),
                exec.jobs_split.load(Ordering::Relaxed),
                exec.jobs_chunked.load(Ordering::Relaxed)
            ),
        );
    }

    /// Final pass of a chunked job: the probe rows decided by their bits.
    fn emit_by_bits(&mut self, batch: &RecordBatch, bits: &ProbeBits, base: usize) -> Result<()> {
        // Rows of a chunked job all have non-NULL keys (NULL keys are never spilled).
        self.emit_decided(batch, |r| Some((bits.is_matched(base + r), true)))
    }

    /// Emit the probe rows that are decided one by one: unmatched rows with NULL build
    /// columns (outer and single joins), matched rows (semi) or unmatched rows (anti; for
    /// `NOT IN` only those with a non-NULL key). `state(r)` is `None` for a row decided
    /// elsewhere (spilled), else (matched, key is non-NULL).
    fn emit_decided(
        &mut self,
        batch: &RecordBatch,
        state: impl Fn(usize) -> Option<(bool, bool)>,
    ) -> Result<()> {
        use PhysicalJoinType as T;
        let n = batch.num_rows();
        let exec = Arc::clone(&self.exec);
        match exec.join_type {
            T::ProbeOuter | T::FullOuter | T::ProbeSingle => {
                let unmatched: Vec<u32> = (0..n as u32)
                    .filter(|&r| matches!(state(r as usize), Some((false, _))))
                    .collect();
                if !unmatched.is_empty() {
                    let empty = RecordBatch::new_empty(exec.build.schema());
                    let nulls = UInt32Array::from(vec![None::<u32>; unmatched.len()]);
                    self.pending.push_back(assemble(
                        &exec.schema,
                        &exec.output,
                        Some(batch),
                        &UInt32Array::from(unmatched),
                        &empty,
                        &nulls,
                    )?);
                }
            }
            T::ProbeSemi | T::ProbeAnti | T::ProbeAntiNullAware => {
                let mask: BooleanArray = (0..n)
                    .map(|r| {
                        Some(match (exec.join_type, state(r)) {
                            (_, None) => false,
                            (T::ProbeSemi, Some((matched, _))) => matched,
                            (T::ProbeAnti, Some((matched, _))) => !matched,
                            (_, Some((matched, valid))) => !matched && valid,
                        })
                    })
                    .collect();
                if mask.true_count() > 0 {
                    self.pending
                        .push_back(self.project_probe(batch, Some(&mask))?);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Join one probe batch against `build`. Rows whose partition was spilled go to probe
    /// files. With `bits` (a chunked job), per-probe-row outcomes are recorded there instead
    /// of being emitted; `base` is the batch's first row number within the job.
    fn probe_batch(
        &mut self,
        build: &BuildSide,
        batch: &RecordBatch,
        mut bits: Option<(&mut ProbeBits, usize)>,
    ) -> Result<()> {
        use PhysicalJoinType as T;
        let exec = Arc::clone(&self.exec);
        let join_type = exec.join_type;
        let n = batch.num_rows();
        if join_type == T::ProbeAntiNullAware {
            // NOT IN: empty set → everything; a NULL in the set → nothing.
            if build.facts.rows == 0 {
                self.pending.push_back(self.project_probe(batch, None)?);
                return Ok(());
            }
            if build.facts.has_null_key {
                return Ok(());
            }
        }
        let keys = exec.encoding.keys(&exec.probe_exprs(), batch)?;
        // Rows of spilled partitions (their partition in `route`, others `PARTITIONS`): written
        // out, decided later.
        let mut deferred: Option<Vec<u8>> = None;
        if build.any_spilled() {
            let mut route = vec![PARTITIONS as u8; n];
            let mut any = false;
            for row in (0..n).filter(|&r| keys.is_valid(r)) {
                let p = table::partition_at(keys.hashes[row], 0);
                if build.spilled[p] {
                    route[row] = p as u8;
                    any = true;
                }
            }
            if any {
                self.spill_probe_rows(batch, &route)?;
                deferred = Some(route);
            }
        }
        let is_deferred = |r: usize| {
            deferred
                .as_ref()
                .is_some_and(|d| (d[r] as usize) < PARTITIONS)
        };
        let limit = (self.ctx.batch_size * 4).max(1024);
        // Per probe row: number of passing matches (for outer/semi/anti/single).
        let mut match_count = vec![0u32; n];
        let semi_no_filter = exec.filter.is_none()
            && matches!(
                join_type,
                T::ProbeSemi | T::ProbeAnti | T::ProbeAntiNullAware
            );
        let mut probe_idx: Vec<u32> = Vec::new();
        let mut build_idx: Vec<u32> = Vec::new();
        for row in 0..n {
            if !keys.is_valid(row) || is_deferred(row) {
                continue;
            }
            let mut j = build.first_match(&keys, row);
            if semi_no_filter {
                if j != NONE {
                    match_count[row] = 1;
                }
                continue;
            }
            while j != NONE {
                probe_idx.push(row as u32);
                build_idx.push(j);
                j = build.next_match(j);
            }
            if probe_idx.len() >= limit {
                self.flush_pairs(
                    build,
                    batch,
                    &mut probe_idx,
                    &mut build_idx,
                    &mut match_count,
                )?;
            }
        }
        self.flush_pairs(
            build,
            batch,
            &mut probe_idx,
            &mut build_idx,
            &mut match_count,
        )?;
        if let Some((bits, base)) = bits.as_mut() {
            for (r, &count) in match_count.iter().enumerate() {
                bits.record(*base + r, count);
                if join_type == T::ProbeSingle && bits.is_multiple(*base + r) {
                    return Err(too_many_rows());
                }
            }
            return Ok(());
        }
        // Rows decided per probe row.
        self.emit_decided(batch, |r| {
            (!is_deferred(r)).then(|| (match_count[r] > 0, keys.is_valid(r)))
        })
    }

    /// Join a probe batch against the key window of its row group, loading the window first
    /// when the batch is the first of it; a deferred window's rows are written out.
    fn probe_windowed(&mut self, windows: &Arc<KeyWindows>, batch: &RecordBatch) -> Result<()> {
        let w = windows
            .window_of_partition(self.partition)
            .ok_or_else(|| broken("a probe batch outside the key windows"))?;
        if self.window.as_ref().map(|(i, _)| *i) != Some(w) {
            // Let go of the previous window first: it may be what the next one needs.
            self.window = None;
            let acquired = windows.acquire(w, &self.ctx, |files| self.load_window(files))?;
            self.window = Some((
                w,
                match acquired {
                    Acquired::Build(build) => Some(build),
                    Acquired::Deferred => None,
                },
            ));
        }
        match self.window.as_ref().and_then(|(_, b)| b.clone()) {
            Some(build) => self.probe_batch(&build, batch, None),
            None => {
                // Rows with a key wait for the window's job; those without are decided now.
                let exec = Arc::clone(&self.exec);
                let keys = exec.encoding.keys(&exec.probe_exprs(), batch)?;
                let mut members: Vec<Vec<u32>> = vec![Vec::new(); w + 1];
                members[w] = (0..batch.num_rows() as u32)
                    .filter(|&r| keys.is_valid(r as usize))
                    .collect();
                self.spill_probe_members(batch, members)?;
                self.emit_decided(batch, |r| (!keys.is_valid(r)).then_some((false, false)))
            }
        }
    }

    /// Index a window's build files if the budget has room for them, else give them back.
    fn load_window(
        &self,
        files: Vec<SpillFile>,
    ) -> Result<std::result::Result<BuildSide, Vec<SpillFile>>> {
        let mut source = ChunkSource {
            files,
            next_file: 0,
            reader: None,
            carry: Vec::new(),
        };
        match self.load(&mut source, false)? {
            (Some(build), true) => Ok(Ok(build)),
            _ => Ok(Err(source.files)),
        }
    }

    /// Queue the rows listed per partition (or window) for its probe files.
    fn spill_probe_members(&mut self, batch: &RecordBatch, members: Vec<Vec<u32>>) -> Result<()> {
        let subs = take_members(batch, members)?;
        self.spill_probe_batches(subs)
    }

    /// Queue the rows with `route[row] < PARTITIONS` for their partition's probe files.
    fn spill_probe_rows(&mut self, batch: &RecordBatch, route: &[u8]) -> Result<()> {
        let subs = split(batch, route)?;
        self.spill_probe_batches(subs)
    }

    fn spill_probe_batches(&mut self, subs: Vec<(usize, RecordBatch)>) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        let buffers = self.spill.get_or_insert_with(|| {
            PartitionBuffers::new(
                format!("join-probe-s{}", self.partition),
                exec.windows
                    .get()
                    .map_or(PARTITIONS, |w| w.len().max(PARTITIONS)),
                exec.probe.schema(),
                &self.ctx,
                &exec.metrics,
            )
        });
        for (p, sub) in subs {
            buffers.push(p, sub, &self.ctx, &exec.metrics)?;
        }
        Ok(())
    }

    /// Evaluate the residual filter on candidate pairs, record matches, emit pair rows.
    fn flush_pairs(
        &mut self,
        build: &BuildSide,
        batch: &RecordBatch,
        probe_idx: &mut Vec<u32>,
        build_idx: &mut Vec<u32>,
        match_count: &mut [u32],
    ) -> Result<()> {
        use PhysicalJoinType as T;
        if probe_idx.is_empty() {
            return Ok(());
        }
        let exec = Arc::clone(&self.exec);
        let mut p = UInt32Array::from(std::mem::take(probe_idx));
        let mut b = UInt32Array::from(std::mem::take(build_idx));
        if let Some(filter) = &exec.filter {
            let pairs = pair_batch(batch, &p, &build.batch, &b)?;
            let mask = filter.evaluate_mask(&pairs)?;
            if mask.true_count() < mask.len() {
                p = arrow::compute::filter(&p, &mask)?.as_primitive().clone();
                b = arrow::compute::filter(&b, &mask)?.as_primitive().clone();
            }
        }
        for &r in p.values().iter() {
            match_count[r as usize] += 1;
        }
        if exec.join_type == T::ProbeSingle
            && p.values().iter().any(|&r| match_count[r as usize] > 1)
        {
            return Err(too_many_rows());
        }
        if exec.join_type.emits_build_rows_at_end() {
            for &j in b.values().iter() {
                build.mark(j);
            }
        }
        if matches!(
            exec.join_type,
            T::Inner | T::ProbeOuter | T::BuildOuter | T::FullOuter | T::ProbeSingle
        ) && !p.is_empty()
        {
            self.pending.push_back(assemble(
                &exec.schema,
                &exec.output,
                Some(batch),
                &p,
                &build.batch,
                &b,
            )?);
        }
        Ok(())
    }

    /// Probe rows selected by `mask` (all when `None`), projected to the output columns.
    fn project_probe(
        &self,
        batch: &RecordBatch,
        mask: Option<&BooleanArray>,
    ) -> Result<RecordBatch> {
        let filtered = match mask {
            Some(m) => arrow::compute::filter_record_batch(batch, m)?,
            None => batch.clone(),
        };
        let columns: Vec<ArrayRef> = self
            .exec
            .output
            .iter()
            .map(|(_, i)| Arc::clone(filtered.column(*i)))
            .collect();
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.exec.schema),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(filtered.num_rows())),
        )?)
    }
}

/// The smallest range covering both.
fn merge_ranges(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((l1, h1)), Some((l2, h2))) => Some((l1.min(l2), h1.max(h2))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A broken invariant of the hash join, reported instead of panicking.
fn broken(what: &str) -> EngineError {
    EngineError::Internal(format!("hash join: {what}"))
}

fn too_many_rows() -> EngineError {
    EngineError::Execution("more than one row returned by a subquery used as an expression".into())
}

use arrow::array::AsArray;

impl ExecutionPlan for HashJoinExec {
    fn name(&self) -> &str {
        "HashJoin"
    }

    fn details(&self) -> String {
        let mut out = format!("{} [{:?}]", self.display, self.join_type);
        if let Some(segments) = &self.probe_segments {
            out.push_str(&format!(" key_windows_by={}", segments.column));
        }
        out
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
        let mut stream = ProbeStream {
            exec: Arc::clone(&self),
            ctx,
            partition,
            input: None,
            build: None,
            spill: None,
            pending: Default::default(),
            phase: Phase::Probing,
            registered: false,
            job: None,
            working: false,
            facts: BuildFacts::default(),
            window: None,
        };
        let mut failed = false;
        let iter = std::iter::from_fn(move || {
            if failed {
                return None;
            }
            match stream.next_batch() {
                Ok(Some(b)) => Some(Ok(b)),
                Ok(None) => None,
                Err(e) => {
                    failed = true;
                    Some(Err(e))
                }
            }
        });
        Ok(instrument(Box::new(iter), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
