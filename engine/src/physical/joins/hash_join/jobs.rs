//! Joining spilled partitions after the probe input has ended (the grace hash join's second
//! phase). Every probe stream takes jobs from the shared queue ([`GraceQueue`](super::grace::GraceQueue)) in turn: a job
//! loads one partition's build files into an index and streams its probe files through it. A
//! partition too big for the budget is split again by the next hash bits, or, when its rows
//! share one key, joined a chunk of build rows at a time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;

use super::broken;
use super::grace::{build_cost, split, Job, PartitionBuffers, ProbeBits};
use super::probe::ProbeStream;
use super::table::{BuildSide, MAX_LEVEL, PARTITIONS};
use crate::error::{EngineError, Result};
use crate::eval::PhysicalExpr;
use crate::memory::{MemoryPart, MemoryReservation, SpillFile};
use crate::physical::concat_releasing;

/// A spilled partition being joined by one probe stream.
pub(super) struct RunningJob {
    /// The index of the (current chunk of the) job's build rows.
    pub(super) build: Option<BuildSide>,
    /// The rest of the build rows, for a chunked job.
    pub(super) build_rest: Option<ChunkSource>,
    pub(super) probe: Vec<SpillFile>,
    pub(super) next_probe_file: usize,
    pub(super) reader: Option<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>>,
    /// Probe rows read in this pass (the row number of the next probe row).
    pub(super) probe_row: usize,
    /// Per probe row: matched in some chunk (chunked jobs that decide probe rows).
    pub(super) bits: Option<ProbeBits>,
    /// The last pass of a chunked job: emit probe rows by their bits.
    pub(super) final_pass: bool,
}

/// Build files read a chunk at a time.
pub(super) struct ChunkSource {
    pub(super) files: Vec<SpillFile>,
    pub(super) next_file: usize,
    pub(super) reader: Option<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>>,
    /// Batches read but not taken by the previous chunk (the next one last).
    pub(super) carry: Vec<RecordBatch>,
}

impl ChunkSource {
    pub(super) fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
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

impl ProbeStream {
    /// The next job: wait until the last probe stream has created them, then take one.
    pub(super) fn next_job(&mut self) -> Result<Option<Job>> {
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
    pub(super) fn start_job(&mut self, mut job: Job) -> Result<()> {
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

    pub(super) fn running(
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
    pub(super) fn load(
        &self,
        source: &mut ChunkSource,
        chunk: bool,
    ) -> Result<(Option<BuildSide>, bool)> {
        let exec = &self.exec;
        let mut reservation = MemoryReservation::new(
            &self.ctx.memory_pool,
            "HashJoin(build)",
            MemoryPart::BuildSide,
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
    pub(super) fn wait_for_memory(&self) -> Result<bool> {
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
    pub(super) fn stop_working(&mut self) {
        if std::mem::take(&mut self.working) {
            self.exec.grace().working -= 1;
            self.exec.grace_changed.notify_all();
        }
    }

    /// The next chunk of a chunked job's build rows, or `None` when all were joined.
    pub(super) fn next_chunk(&self, running: &mut RunningJob) -> Result<Option<BuildSide>> {
        let source = running
            .build_rest
            .as_mut()
            .ok_or_else(|| broken("a chunked job without build rows"))?;
        let (chunk, _) = self.load(source, true)?;
        Ok(chunk.filter(|c| c.batch.num_rows() > 0))
    }

    /// Split a job by the next level's hash bits into sub-jobs, queued for every stream.
    pub(super) fn split_job(&mut self, job: Job) -> Result<()> {
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
    pub(super) fn repartition(
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
    pub(super) fn job_step(&mut self) -> Result<bool> {
        let mut job = self.job.take().ok_or_else(|| broken("no running job"))?;
        let more = self.job_step_of(&mut job);
        self.job = Some(job);
        more
    }

    pub(super) fn job_step_of(&mut self, job: &mut RunningJob) -> Result<bool> {
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

    pub(super) fn finish_job(&mut self) {
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
}
