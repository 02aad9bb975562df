//! The background spill writer: a spilling aggregate hands its table's state rows (or, once it
//! partitions its input directly, buffered state rows) to a thread of its own that writes them
//! to the hash partitions, and keeps consuming its input meanwhile. The rows being written stay
//! reserved until the write ends.

use std::sync::Arc;

use arrow::array::RecordBatch;

use super::stream::{AggregateStream, SpillJob};
use super::{AggregateMode, DIRECT_SPILL_BYTES};
use crate::error::{EngineError, Result};
use crate::memory::referenced_bytes;

impl AggregateStream {
    /// Bytes of the spill being written in the background.
    pub(super) fn writing_bytes(&self) -> usize {
        self.writing.as_ref().map_or(0, |job| job.bytes)
    }

    /// Hand the table's groups, as partial states, to the spill partitions and start over.
    pub(super) fn spill_table(&mut self) -> Result<()> {
        if self.state.groups.is_empty() {
            return Ok(());
        }
        let batch = self.state.take(true)?;
        self.state.reset()?;
        let bytes = batch.get_array_memory_size();
        self.start_write(vec![batch], bytes)
    }

    /// Buffer an input batch, as state rows, for the spill partitions; write the buffer out
    /// once it holds [`DIRECT_SPILL_BYTES`] or its reservation cannot grow.
    pub(super) fn buffer_direct(&mut self, batch: RecordBatch) -> Result<()> {
        let states = match self.exec.mode {
            AggregateMode::Final => batch,
            _ => self.state.row_states(&batch)?,
        };
        let Some(buffer) = self.direct.as_mut() else {
            return Err(EngineError::Internal("no direct spill buffer".into()));
        };
        // The bytes its rows reference: string views taken from a join's build side point
        // into the build side's buffers, which `get_array_memory_size` counted in full for
        // every batch (Q16 under 256MB wrote 42 spill rounds for 73 MB of state; 4 now).
        buffer.bytes += referenced_bytes(&states);
        buffer.batches.push(states);
        let bytes = buffer.bytes;
        let limit = DIRECT_SPILL_BYTES.min(self.soft_limit / 2);
        let asked = self.state.reservation.spill_requested();
        // Writing the buffer concatenates it first: twice its bytes are held at that moment.
        let held = self.state.size() + self.writing_bytes() + 2 * bytes;
        if asked || bytes >= limit || self.state.reservation.try_resize(held).is_err() {
            self.flush_direct()?;
        }
        Ok(())
    }

    /// Hand the buffered state rows to the spill partitions.
    pub(super) fn flush_direct(&mut self) -> Result<()> {
        let Some(buffer) = self.direct.as_mut() else {
            return Ok(());
        };
        if buffer.batches.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut buffer.batches);
        let bytes = std::mem::take(&mut buffer.bytes);
        let held = if batches.len() > 1 { 2 * bytes } else { bytes };
        self.start_write(batches, held)
    }

    /// Write `batches` (holding `bytes`) into the spill partitions on a thread of their own,
    /// once the write before them has ended: at most one write is in flight.
    pub(super) fn start_write(&mut self, batches: Vec<RecordBatch>, bytes: usize) -> Result<()> {
        self.finish_write()?;
        let writer = self
            .spill
            .as_ref()
            .ok_or_else(|| EngineError::Internal("a spill write without partitions".into()))?
            .writer();
        let ctx = Arc::clone(&self.ctx);
        let keys = self.exec.group_exprs.len();
        let handle = std::thread::Builder::new()
            .name("ooc-agg-spill".into())
            .spawn(move || writer.write(batches, keys, &ctx))
            .map_err(|e| EngineError::Internal(format!("cannot start a spill thread: {e}")))?;
        self.writing = Some(SpillJob { handle, bytes });
        // The batches stay reserved until they are written. The reservation may already be
        // short of them (a spill starts when it cannot grow); it is never grown past the
        // budget here, and shrinks back once the write ends.
        let held = self.state.size() + bytes;
        let _ = self.state.reservation.try_resize(held);
        Ok(())
    }

    /// Wait for the spill being written, if any, and file its parts under their partitions.
    pub(super) fn finish_write(&mut self) -> Result<()> {
        let Some(job) = self.writing.take() else {
            return Ok(());
        };
        let written = job
            .handle
            .join()
            .map_err(|_| EngineError::Internal("a spill thread panicked".into()))??;
        self.exec
            .metrics
            .add_spill(written.rows, written.raw, written.bytes, written.time);
        self.spill
            .as_mut()
            .ok_or_else(|| EngineError::Internal("a spill write without partitions".into()))?
            .add(written);
        let held = self.state.size();
        self.state
            .reservation
            .try_resize(held.min(self.state.reservation.size()))?;
        Ok(())
    }

    /// After the last write of a level: queue its partitions for merging.
    pub(super) fn finish_spilling(&mut self) -> Result<()> {
        self.finish_write()?;
        if let Some(spill) = self.spill.take() {
            self.pending.extend(spill.finish());
        }
        self.state.reservation.free();
        Ok(())
    }

    /// Wait for a write in flight and drop what it wrote (after an error, or when the stream
    /// is dropped early).
    pub(super) fn abandon_write(&mut self) {
        if let Some(job) = self.writing.take() {
            let _ = job.handle.join();
        }
    }
}
