//! The stream of one output partition: consumes its input into the table, flushes (partial)
//! or spills (final, single) it when it outgrows the budget, then merges the spilled
//! partitions one at a time, in pieces of disjoint keys when a partition fits in memory.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::RecordBatch;

use super::group_values::GroupValues;
use super::spill::{split_pieces, SpillPartitions, Written};
use super::state::AggregateState;
use super::{
    AggregateExec, AggregateMode, DIRECT_SPILL_DIVISOR, EARLY_DIRECT_SPILL_BYTES,
    MAX_MERGE_PIECE_BITS, MAX_SPILL_LEVEL, MERGE_PIECE_ROWS, PASS_THROUGH_MIN_ROWS,
};
use crate::error::{EngineError, Result};
use crate::memory::{used_bytes, InFlight, SpillFile, Ticket};
use crate::physical::key_segments::KeySegments;
use crate::physical::{BatchStream, ExecutionPlan, TaskContext};

/// The stream of one output partition: consumes the input, spilling the table to hash
/// partitions on disk when it outgrows the budget, then merges the partitions one at a time.
pub(super) struct AggregateStream {
    pub(super) exec: Arc<AggregateExec>,
    pub(super) ctx: Arc<TaskContext>,
    pub(super) input: Option<BatchStream>,
    pub(super) state: AggregateState,
    /// A partial aggregate emits its state at this many groups.
    pub(super) flush_groups: usize,
    /// Table size (bytes) at which the table is flushed (partial) or spilled.
    pub(super) soft_limit: usize,
    /// Where the input's state went, once it spilled.
    pub(super) spill: Option<SpillPartitions>,
    /// The spill being written in the background, if any.
    pub(super) writing: Option<SpillJob>,
    /// Spilled partitions still to merge, with their partitioning level (last is next).
    pub(super) pending: Vec<(Vec<SpillFile>, u32)>,
    /// The batch being emitted, and how much of it has been.
    pub(super) output: Option<(RecordBatch, usize)>,
    /// The bytes of `output`, counted as in flight until the last of it has been emitted
    /// (the table's reservation is freed when its state is taken out as `output`).
    pub(super) emitting: InFlight,
    pub(super) output_counted: Option<Ticket>,
    /// Input rows consumed since the table was last emptied.
    pub(super) rows_since_reset: usize,
    /// A partial aggregate whose groups barely reduce its input stops hashing and turns every
    /// row into a state row of its own (the final aggregate does the grouping once).
    pub(super) pass_through: bool,
    /// A spilling aggregate whose table barely reduced its input sends the rest of the input
    /// straight to the spill partitions: the state rows waiting to be written.
    pub(super) direct: Option<DirectBuffer>,
    /// Segmented: the scan's row-group tracker with the key's index, this stream's partition
    /// and the segment of the table's groups (as [`KeySegments::current`] numbers them).
    pub(super) segments: Option<(Arc<KeySegments>, usize)>,
    pub(super) partition: usize,
    pub(super) segment: usize,
    /// The first batch of a new segment, held back while the previous one is emitted.
    pub(super) held: Option<RecordBatch>,
    /// Segmented: the groups of the segment's rows whose key other segments share.
    pub(super) side: Option<AggregateState>,
    /// Finished batches waiting for `output`.
    pub(super) queued: Vec<RecordBatch>,
    /// Rows of a spilled partition read into memory and not merged yet (their bytes).
    pub(super) held_bytes: usize,
}

/// State rows waiting to be written to the spill partitions, and their bytes.
#[derive(Default)]
pub(super) struct DirectBuffer {
    pub(super) batches: Vec<RecordBatch>,
    pub(super) bytes: usize,
}

/// A spill write on a thread of its own. The stream keeps consuming its input meanwhile: the
/// final aggregate's partitions are fed by one repartition, so a partition that stopped to
/// write would soon stall the producers, and with them every other partition.
pub(super) struct SpillJob {
    pub(super) handle: std::thread::JoinHandle<Result<Written>>,
    /// Bytes the batches being written hold; they stay reserved until the write ends.
    pub(super) bytes: usize,
}

impl AggregateStream {
    /// Emit `batch` next, in slices of a batch each; its bytes count until the last slice.
    pub(super) fn emit(&mut self, batch: RecordBatch) {
        self.output_counted = Some(self.emitting.ticket(used_bytes(&batch)));
        self.output = Some((batch, 0));
    }
}

impl Iterator for AggregateStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some((batch, offset)) = self.output.as_mut() {
                if *offset < batch.num_rows() {
                    let len = self.ctx.batch_size.min(batch.num_rows() - *offset);
                    let slice = batch.slice(*offset, len);
                    *offset += len;
                    return Some(Ok(slice));
                }
                self.output = None;
                self.output_counted = None;
            }
            if let Some(batch) = self.queued.pop() {
                self.emit(batch);
                continue;
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.input = None;
                    self.held = None;
                    self.abandon_write();
                    self.pending.clear();
                    self.spill = None;
                    self.direct = None;
                    self.state.reservation.free();
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Drop for AggregateStream {
    /// No writer thread outlives the stream.
    fn drop(&mut self) {
        self.abandon_write();
    }
}

impl AggregateStream {
    /// Make progress: consume an input batch, or finish the input, or merge one spilled
    /// partition. False once everything has been emitted.
    pub(super) fn step(&mut self) -> Result<bool> {
        // Spilled partitions of a finished segment are merged before the input goes on.
        if let Some(input) = self.input.as_mut().filter(|_| self.pending.is_empty()) {
            let next = match self.held.take() {
                Some(batch) => Some(Ok(batch)),
                None => input.next(),
            };
            match next {
                Some(batch) => {
                    let mut batch = batch?;
                    if let Some((segments, _)) = &self.segments {
                        let segment = segments.current(self.partition);
                        if segment != self.segment {
                            let previous = std::mem::replace(&mut self.segment, segment);
                            if previous != 0 {
                                self.held = Some(batch);
                                self.finish_segment(previous)?;
                                return Ok(true);
                            }
                        }
                        self.exec.metrics.add_rows_in(batch.num_rows());
                        batch = self.divert_shared_keys(batch)?;
                        if batch.num_rows() == 0 {
                            return Ok(true);
                        }
                    } else {
                        self.exec.metrics.add_rows_in(batch.num_rows());
                    }
                    if self.pass_through {
                        let states = self.state.row_states(&batch)?;
                        self.emit(states);
                        return Ok(true);
                    }
                    if self.direct.is_some() {
                        return self.buffer_direct(batch).map(|()| true);
                    }
                    self.rows_since_reset += batch.num_rows();
                    match self.exec.mode {
                        AggregateMode::Final => self.state.consume_states(&batch)?,
                        _ => self.state.consume_raw(&batch)?,
                    }
                    self.after_consume(0)?;
                }
                None => {
                    self.input = None;
                    if self.segments.is_some() {
                        return self.finish_segmented_input().map(|()| true);
                    }
                    if self.spill.is_none() {
                        let batch = self.state.take(self.exec.mode == AggregateMode::Partial)?;
                        self.state.reservation.free();
                        if batch.num_rows() > 0 || self.exec.group_exprs.is_empty() {
                            self.emit(batch);
                        } else {
                            return Ok(false);
                        }
                    } else {
                        self.spill_table()?;
                        self.flush_direct()?;
                        self.direct = None;
                        self.finish_spilling()?;
                    }
                }
            }
            return Ok(true);
        }
        let Some((files, level)) = self.pending.pop() else {
            return Ok(false);
        };
        // Merge one partition: every group of it lands in this table, unless it is still too
        // large, in which case it is split again with the next level's hash bits.
        let rows: usize = files.iter().map(SpillFile::rows).sum();
        let raw: usize = files.iter().map(SpillFile::raw_bytes).sum();
        let piece_bits = rows
            .div_ceil(MERGE_PIECE_ROWS)
            .next_power_of_two()
            .trailing_zeros()
            .min(MAX_MERGE_PIECE_BITS);
        if piece_bits > 0
            && raw <= self.soft_limit
            && self
                .state
                .reservation
                .try_resize(self.state.size() + raw)
                .is_ok()
        {
            return self.merge_in_pieces(files, level, piece_bits, raw);
        }
        for file in files {
            self.ctx.check_cancelled()?;
            for batch in file.read()? {
                let batch = batch?;
                self.state.consume_states(&batch)?;
                self.after_consume(level + 1)?;
            }
        }
        if self.spill.is_none() {
            let batch = self.state.take(false)?;
            self.state.reservation.free();
            self.emit(batch);
        } else {
            self.spill_table()?;
            self.finish_spilling()?;
        }
        Ok(true)
    }

    /// Merge a spilled partition that fits in memory piece by piece: its rows are read, split
    /// by further hash bits into `1 << piece_bits` pieces of disjoint keys, and each piece is
    /// merged in a table of its own and emitted. A table of a piece stays in the processor's
    /// cache where one of the whole partition would not: merging the partitions of the
    /// (`l_partkey`, `l_suppkey`) group-by at SF10 (about 450,000 state rows and 62,000
    /// groups each) spent most of its time waiting for memory on three dependent loads a row.
    pub(super) fn merge_in_pieces(
        &mut self,
        files: Vec<SpillFile>,
        level: u32,
        piece_bits: u32,
        raw: usize,
    ) -> Result<bool> {
        let keys = self.exec.group_exprs.len();
        // A table kept from the input phase has room for far more groups than a piece: its
        // entries would be spread over all of that memory.
        if self.state.groups.is_empty() {
            self.state.groups = GroupValues::try_new(&self.exec.group_types)?;
        }
        let mut pieces: Vec<Vec<RecordBatch>> = (0..1 << piece_bits).map(|_| Vec::new()).collect();
        for file in files {
            self.ctx.check_cancelled()?;
            for batch in file.read()? {
                for (piece, rows) in split_pieces(&batch?, keys, level, piece_bits)?
                    .into_iter()
                    .enumerate()
                {
                    if rows.num_rows() > 0 {
                        pieces[piece].push(rows);
                    }
                }
            }
        }
        self.held_bytes = raw;
        for piece in pieces {
            let bytes: usize = piece.iter().map(RecordBatch::get_array_memory_size).sum();
            for batch in piece {
                self.state.consume_states(&batch)?;
                drop(batch);
                self.after_consume(level + 1)?;
            }
            self.held_bytes = self.held_bytes.saturating_sub(bytes);
            // A piece that outgrew the budget went to the next level's partitions with the
            // rest of this partition; otherwise its groups are final.
            if self.spill.is_none() && !self.state.groups.is_empty() {
                let batch = self.state.take(false)?;
                self.queued.push(batch);
            }
        }
        self.held_bytes = 0;
        if self.spill.is_some() {
            self.spill_table()?;
            self.finish_spilling()?;
        }
        self.state.reservation.free();
        let merged = self.exec.merged_in_pieces.fetch_add(1, Ordering::Relaxed) + 1;
        self.exec
            .metrics
            .set_extra("partitions_merged_in_pieces", merged);
        Ok(true)
    }

    /// Account for the table after a batch; flush or spill it when it is too large.
    pub(super) fn after_consume(&mut self, level: u32) -> Result<()> {
        let size = self.state.size() + self.writing_bytes() + self.held_bytes;
        // The pool asks a spilling aggregate to spill when an operator that cannot needs room.
        let asked = self.state.reservation.spill_requested() && !self.state.groups.is_empty();
        // A table of the input that has outgrown the caches while holding nearly a group per
        // row is not worth growing further: it spills now and sends the rest of the input
        // straight to the partitions, which are merged in tables that stay in cache.
        let barely_reduces = self.exec.spillable()
            && self.ctx.memory_pool.limit() != usize::MAX
            && level == 0
            && self.segments.is_none()
            && size > EARLY_DIRECT_SPILL_BYTES
            && self.state.groups.len() * DIRECT_SPILL_DIVISOR > self.rows_since_reset;
        let fits = !asked
            && !barely_reduces
            && size <= self.soft_limit
            && self.state.reservation.try_resize(size).is_ok();
        if self.exec.mode == AggregateMode::Partial && self.input.is_some() {
            if !fits || self.state.groups.len() >= self.flush_groups {
                // Fewer than 1.25 rows per group: grouping here saves the final aggregate
                // almost nothing.
                if self.state.groups.len() * 5 > self.rows_since_reset * 4
                    && self.rows_since_reset >= PASS_THROUGH_MIN_ROWS
                {
                    self.pass_through = true;
                    self.exec.metrics.set_extra("pass_through", "yes");
                }
                self.rows_since_reset = 0;
                let batch = self.state.take(true)?;
                self.state.reset()?;
                self.state.reservation.free();
                self.emit(batch);
            }
            return Ok(());
        }
        if fits {
            return Ok(());
        }
        if !self.exec.spillable() {
            // Report the overflow against the budget.
            return self.state.reservation.try_resize_or_spill_others(size);
        }
        if level > MAX_SPILL_LEVEL {
            // Repartitioning no longer helps: what is missing is held by other operators
            // (a sort, another aggregate), which are asked to spill.
            if self
                .state
                .reservation
                .try_resize_or_spill_others(size)
                .is_ok()
            {
                return Ok(());
            }
            return Err(EngineError::ResourcesExhausted {
                consumer: format!(
                    "{} (after {MAX_SPILL_LEVEL} rounds of repartitioning)",
                    self.exec.name()
                ),
                requested: size,
                reserved: self.ctx.memory_pool.reserved(),
                limit: self.ctx.memory_pool.limit(),
            });
        }
        if self.spill.is_none() {
            self.spill = Some(SpillPartitions::new(
                level,
                Arc::clone(&self.exec.state_schema),
            ));
        }
        // A table of the input (not a partition being merged) that holds nearly one group per
        // row fed to it: the rest of the input goes straight to the partitions.
        if level == 0 && self.state.groups.len() * DIRECT_SPILL_DIVISOR > self.rows_since_reset {
            self.direct = Some(DirectBuffer::default());
            self.exec.metrics.set_extra("direct_spill", "yes");
        }
        self.rows_since_reset = 0;
        self.spill_table()
    }
}
