//! The probe stream of one output partition: probes its input's batches against the shared
//! build side (or the key window a batch falls in), writes probe rows of spilled partitions to
//! probe files, and, once its input ends, takes part in joining the spilled partitions
//! ([`jobs`](super::jobs)). Matching pairs are assembled into bounded output batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};

use super::grace::{split, take_members, Job, PartitionBuffers, ProbeBits};
use super::jobs::{ChunkSource, RunningJob};
use super::table::{self, BuildFacts, BuildSide, NONE, PARTITIONS};
use super::windows::{Acquired, KeyWindows};
use super::{broken, too_many_rows, BuildState, HashJoinExec};
use crate::error::Result;
use crate::memory::SpillFile;
use crate::physical::joins::{assemble, pair_batch, PhysicalJoinType};
use crate::physical::{BatchStream, TaskContext};

/// Where a probe stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Streaming its probe input.
    Probing,
    /// Joining spilled partitions.
    Jobs,
    Done,
}

/// Per-partition probing state.
pub(super) struct ProbeStream {
    pub(super) exec: Arc<HashJoinExec>,
    pub(super) ctx: Arc<TaskContext>,
    pub(super) partition: usize,
    pub(super) input: Option<BatchStream>,
    pub(super) build: Option<Arc<BuildSide>>,
    /// Probe rows of spilled partitions on their way to probe files.
    pub(super) spill: Option<PartitionBuffers>,
    pub(super) pending: std::collections::VecDeque<RecordBatch>,
    pub(super) phase: Phase,
    /// Whether this stream told the others that it finished its input.
    pub(super) registered: bool,
    pub(super) job: Option<RunningJob>,
    /// Whether this stream counts in [`GraceQueue::working`](super::grace::GraceQueue::working).
    pub(super) working: bool,
    pub(super) facts: BuildFacts,
    /// With key windows: the window of the latest probe batch and its build rows (`None`:
    /// deferred, the rows are written out).
    pub(super) window: Option<(usize, Option<Arc<BuildSide>>)>,
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
    pub(super) fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
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
    pub(super) fn probe_step(&mut self) -> Result<()> {
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
    pub(super) fn finish_probing(&mut self, build: Arc<BuildSide>) -> Result<()> {
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

    /// Final pass of a chunked job: the probe rows decided by their bits.
    pub(super) fn emit_by_bits(
        &mut self,
        batch: &RecordBatch,
        bits: &ProbeBits,
        base: usize,
    ) -> Result<()> {
        // Rows of a chunked job all have non-NULL keys (NULL keys are never spilled).
        self.emit_decided(batch, |r| Some((bits.is_matched(base + r), true)))
    }

    /// Emit the probe rows that are decided one by one: unmatched rows with NULL build
    /// columns (outer and single joins), matched rows (semi) or unmatched rows (anti; for
    /// `NOT IN` only those with a non-NULL key). `state(r)` is `None` for a row decided
    /// elsewhere (spilled), else (matched, key is non-NULL).
    pub(super) fn emit_decided(
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
    pub(super) fn probe_batch(
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
    pub(super) fn probe_windowed(
        &mut self,
        windows: &Arc<KeyWindows>,
        batch: &RecordBatch,
    ) -> Result<()> {
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
    pub(super) fn load_window(
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
    pub(super) fn spill_probe_members(
        &mut self,
        batch: &RecordBatch,
        members: Vec<Vec<u32>>,
    ) -> Result<()> {
        let subs = take_members(batch, members)?;
        self.spill_probe_batches(subs)
    }

    /// Queue the rows with `route[row] < PARTITIONS` for their partition's probe files.
    pub(super) fn spill_probe_rows(&mut self, batch: &RecordBatch, route: &[u8]) -> Result<()> {
        let subs = split(batch, route)?;
        self.spill_probe_batches(subs)
    }

    pub(super) fn spill_probe_batches(&mut self, subs: Vec<(usize, RecordBatch)>) -> Result<()> {
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
    pub(super) fn flush_pairs(
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
    pub(super) fn project_probe(
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
