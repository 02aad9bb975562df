//! Spool: an input buffered in memory while the budget has room for it, and in one spill file
//! once it has none.
//!
//! Operators that must hold a whole input before they can use it, and read it back whole
//! (the result of a shared common table expression, the build side of a nested loop join),
//! push its batches here. Each batch is reserved as it arrives; when the reservation cannot
//! grow, would pass the spool's share of the budget (what it holds stays held while the rest
//! of the query runs, so it must leave room for it), or the pool asks the spool to make room
//! for an operator that cannot spill, the batches held so far and every later one go to a
//! single spill file and the memory is given back. The file can be read any number of times,
//! by several readers at once.
//!
//! ```text
//!   batches ──► held in memory (reserved) ──(no room)──► one spill file, optionally in slices
//! ```

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::memory::referenced_bytes;
use crate::memory::{MemoryReservation, SpillFile, SpillWriter};
use crate::metrics::OperatorMetrics;
use crate::physical::{compact_views, TaskContext};

/// A spool's content once its input has ended.
#[derive(Debug)]
pub(crate) enum Spooled {
    /// Every batch, with the reservation that holds them.
    Memory(Vec<RecordBatch>, MemoryReservation),
    /// Every batch, in order, in one spill file.
    Disk(SpillFile),
}

/// Batches held in memory until the budget has no room, then written to disk.
pub(crate) struct Spool {
    reservation: MemoryReservation,
    /// Most bytes held in memory.
    share: usize,
    schema: SchemaRef,
    label: &'static str,
    /// Write batches in slices of about this many bytes, so that readers can regroup them.
    slice_bytes: Option<usize>,
    held: Vec<RecordBatch>,
    writer: Option<SpillWriter>,
    spill_time: Duration,
}

impl Spool {
    /// A spool of batches of `schema` reserved by `reservation` (a spillable one, so that the
    /// pool can ask it to make room), holding at most `share` bytes in memory; `label` names
    /// its spill file.
    pub(crate) fn new(
        reservation: MemoryReservation,
        share: usize,
        schema: SchemaRef,
        label: &'static str,
        slice_bytes: Option<usize>,
    ) -> Self {
        Self {
            reservation,
            share,
            schema,
            label,
            slice_bytes,
            held: Vec::new(),
            writer: None,
            spill_time: Duration::ZERO,
        }
    }

    /// Add a batch: held if the budget has room for it, else written out with everything
    /// held so far.
    pub(crate) fn push(&mut self, ctx: &TaskContext, batch: &RecordBatch) -> Result<()> {
        let batch = compact_views(batch);
        let size = batch.get_array_memory_size();
        if self.writer.is_none()
            && !self.reservation.spill_requested()
            && self.reservation.size() + size <= self.share
            && self.reservation.try_grow(size).is_ok()
        {
            self.held.push(batch);
            return Ok(());
        }
        let start = Instant::now();
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                let mut writer = ctx.spill.create(self.label, &self.schema)?;
                for held in std::mem::take(&mut self.held) {
                    write_sliced(&mut writer, &held, self.slice_bytes)?;
                }
                self.reservation.free();
                self.writer.insert(writer)
            }
        };
        write_sliced(writer, &batch, self.slice_bytes)?;
        self.spill_time += start.elapsed();
        Ok(())
    }

    /// The input has ended: what was held, or the finished spill file (recorded as one spill
    /// in `metrics`). The reservation stops answering spill requests either way.
    pub(crate) fn finish(mut self, metrics: &OperatorMetrics) -> Result<Spooled> {
        self.reservation.stop_spilling();
        match self.writer.take() {
            None => Ok(Spooled::Memory(self.held, self.reservation)),
            Some(writer) => {
                let start = Instant::now();
                let file = writer.finish()?;
                metrics.add_spill(
                    file.rows(),
                    file.raw_bytes(),
                    file.bytes(),
                    self.spill_time + start.elapsed(),
                );
                Ok(Spooled::Disk(file))
            }
        }
    }
}

/// Write `batch`, in slices of about `slice_bytes` each if given.
fn write_sliced(
    writer: &mut SpillWriter,
    batch: &RecordBatch,
    slice_bytes: Option<usize>,
) -> Result<()> {
    let rows = batch.num_rows();
    let Some(slice_bytes) = slice_bytes.filter(|_| rows > 0) else {
        return writer.write(batch);
    };
    let row_bytes = (referenced_bytes(batch) / rows).max(1);
    let per_slice = (slice_bytes / row_bytes).max(1);
    let mut start = 0;
    while start < rows {
        let len = per_slice.min(rows - start);
        writer.write(&batch.slice(start, len))?;
        start += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::memory::{MemoryPart, MemoryPool, SpillManager};

    fn context(limit: usize) -> TaskContext {
        TaskContext {
            memory_pool: MemoryPool::new(limit),
            batch_size: 1024,
            threads: 1,
            bytes_read: Arc::default(),
            warnings: Arc::default(),
            progress: Arc::default(),
            cancelled: Arc::default(),
            spill: Arc::new(SpillManager::new(None, u64::MAX)),
        }
    }

    fn batch(start: i64, n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values(start..start + n))],
        )
        .unwrap()
    }

    fn values(batches: impl IntoIterator<Item = RecordBatch>) -> Vec<i64> {
        batches
            .into_iter()
            .flat_map(|b| {
                arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(b.column(0))
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn batches_stay_in_memory_while_they_fit_and_go_to_one_file_after() {
        let metrics = OperatorMetrics::default();
        // No limit; a limit too small; a limit that has room but a share that has not.
        for (limit, share, on_disk) in [
            (usize::MAX, usize::MAX, false),
            (20_000, usize::MAX, true),
            (1 << 30, 50_000, true),
        ] {
            let ctx = context(limit);
            let reservation =
                MemoryReservation::new_spillable(&ctx.memory_pool, "spool", MemoryPart::Rows, None);
            let mut spool =
                Spool::new(reservation, share, batch(0, 0).schema(), "spool", Some(800));
            for i in 0..10 {
                spool.push(&ctx, &batch(i * 1000, 1000)).unwrap();
            }
            let expected: Vec<i64> = (0..10_000).collect();
            match spool.finish(&metrics).unwrap() {
                Spooled::Memory(batches, reservation) => {
                    assert!(!on_disk, "limit {limit}: expected a spill");
                    assert!(reservation.size() > 0);
                    assert_eq!(values(batches), expected);
                }
                Spooled::Disk(file) => {
                    assert!(on_disk, "limit {limit}: unexpected spill");
                    assert_eq!(ctx.memory_pool.reserved(), 0, "memory given back");
                    assert_eq!(file.rows(), 10_000);
                    // Slices of about 800 bytes: 100 rows of 8 bytes.
                    let read: Vec<RecordBatch> = file.read().unwrap().map(|b| b.unwrap()).collect();
                    assert!(read.iter().all(|b| b.num_rows() <= 100), "sliced");
                    assert_eq!(values(read.clone()), expected);
                    // Read again: the file stays until it is dropped.
                    assert_eq!(values(file.read().unwrap().map(|b| b.unwrap())), expected);
                }
            }
        }
        assert_eq!(metrics.spill_count(), 2);
    }
}
