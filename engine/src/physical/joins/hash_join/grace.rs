//! The grace part of the hash join: hash partitions written to spill files and joined later,
//! one partition at a time.
//!
//! While the build side is read, its batches are kept whole as long as the memory reservation
//! grows. At the first refusal the rows are split into [`PARTITIONS`] by their key's hash, and
//! the largest partitions are written out until the rest fits (a *hybrid* hash join: the
//! partitions that stay in memory are joined while the probe side streams by, as if nothing
//! had spilled). Probe rows whose partition was spilled are written to that partition's probe
//! files instead. Once every probe stream has finished, each spilled partition becomes a
//! [`Job`]: its build files are read back and indexed, and its probe files are streamed
//! through the index.
//!
//! A job whose build rows do not fit either is split again, by the next four bits of the same
//! hashes (the next *level*), into sub-jobs. When that cannot help — a single key with more
//! rows than the budget, or the deepest level — the job is joined in chunks: as many build
//! rows as fit are indexed, every probe row of the job goes past them, and so on for the next
//! chunk; a bit per probe row remembers which probe rows matched in any chunk, so outer,
//! semi, anti and single joins decide their probe rows in one last pass over the probe files.
//!
//! Rows waiting to be written are buffered per partition and written as one file per flush,
//! with a single writer open at a time: an open writer holds a compression context of a few
//! MiB, so sixteen open writers per probe stream would be memory nobody accounted for.

use std::collections::VecDeque;
use std::time::Instant;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;

use super::table::{KeyEncoding, PARTITIONS};
use crate::error::Result;
use crate::memory::{MemoryPart, MemoryReservation, SpillFile};
use crate::metrics::OperatorMetrics;
use crate::physical::{compact_views, TaskContext};

/// Split `batch` into its rows of each partition (`parts[i]` is row `i`'s partition; rows
/// marked `PARTITIONS` or above belong to none and are left out).
pub(super) fn split(batch: &RecordBatch, parts: &[u8]) -> Result<Vec<(usize, RecordBatch)>> {
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); PARTITIONS];
    for (row, &p) in parts.iter().enumerate() {
        if let Some(m) = members.get_mut(p as usize) {
            m.push(row as u32);
        }
    }
    take_members(batch, members)
}

/// The rows of `batch` listed for each partition (`members[p]`, in row order; a row may be
/// listed for several).
pub(super) fn take_members(
    batch: &RecordBatch,
    members: Vec<Vec<u32>>,
) -> Result<Vec<(usize, RecordBatch)>> {
    let mut out = Vec::new();
    for (p, rows) in members.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        if rows.len() == batch.num_rows() {
            out.push((p, batch.clone()));
        } else {
            out.push((p, take_record_batch(batch, &UInt32Array::from(rows))?));
        }
    }
    Ok(out)
}

/// Rows buffered per hash partition on their way to spill files.
pub(super) struct PartitionBuffers {
    label: String,
    schema: SchemaRef,
    pending: Vec<Vec<RecordBatch>>,
    pending_bytes: Vec<usize>,
    files: Vec<Vec<SpillFile>>,
    /// Buffered bytes of one partition that trigger a write.
    flush_bytes: usize,
    reservation: MemoryReservation,
}

impl PartitionBuffers {
    /// Buffers for `partitions` partitions' files named `label-p<N>`, flushing a partition
    /// at a share of the budget.
    pub(super) fn new(
        label: String,
        partitions: usize,
        schema: SchemaRef,
        ctx: &TaskContext,
        metrics: &std::sync::Arc<OperatorMetrics>,
    ) -> Self {
        let limit = ctx.memory_pool.limit();
        let flush_bytes = (limit / (8 * partitions.max(1))).clamp(64 << 10, 8 << 20);
        Self {
            reservation: MemoryReservation::new(
                &ctx.memory_pool,
                "HashJoin(spill buffers)",
                MemoryPart::SpillBuffers,
                Some(std::sync::Arc::clone(metrics)),
            ),
            label,
            schema,
            pending: (0..partitions).map(|_| Vec::new()).collect(),
            pending_bytes: vec![0; partitions],
            files: (0..partitions).map(|_| Vec::new()).collect(),
            flush_bytes,
        }
    }

    /// Queue the rows of partition `p`; write them out once enough are buffered or the
    /// budget has no room for them.
    pub(super) fn push(
        &mut self,
        p: usize,
        batch: RecordBatch,
        ctx: &TaskContext,
        metrics: &OperatorMetrics,
    ) -> Result<()> {
        // Rows taken from a batch whose string views point into a large buffer (a build
        // side's strings, joined onto probe rows) would count, and keep, all of that buffer:
        // each partition's few dozen rows of a probe batch of TPC-H Q9's orders join counted
        // 2.3 MB, more than a partition buffers, and went to a file of its own (17,813).
        let batch = compact_views(&batch);
        let bytes = batch.get_array_memory_size();
        while self.reservation.try_grow(bytes).is_err() {
            // Make room by writing the biggest buffer; with nothing buffered, write this
            // batch on its own.
            let largest = (0..self.pending.len()).max_by_key(|&q| self.pending_bytes[q]);
            match largest {
                Some(q) if self.pending_bytes[q] > 0 => self.flush(q, ctx, metrics)?,
                _ => {
                    self.pending[p].push(batch);
                    return self.flush(p, ctx, metrics);
                }
            }
        }
        self.pending[p].push(batch);
        self.pending_bytes[p] += bytes;
        if self.pending_bytes[p] >= self.flush_bytes {
            self.flush(p, ctx, metrics)?;
        }
        Ok(())
    }

    /// Write the buffered rows of partition `p` as one file.
    fn flush(&mut self, p: usize, ctx: &TaskContext, metrics: &OperatorMetrics) -> Result<()> {
        let batches = std::mem::take(&mut self.pending[p]);
        if batches.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let mut writer = ctx
            .spill
            .create(&format!("{}-p{p}", self.label), &self.schema)?;
        // Write in batches of at least `batch_size` rows: tiny batches compress poorly.
        let mut group: Vec<RecordBatch> = Vec::new();
        let mut group_rows = 0;
        for batch in batches {
            group_rows += batch.num_rows();
            group.push(batch);
            if group_rows >= ctx.batch_size {
                writer.write(&concat_batches(&self.schema, &group)?)?;
                group.clear();
                group_rows = 0;
            }
        }
        if !group.is_empty() {
            writer.write(&concat_batches(&self.schema, &group)?)?;
        }
        let file = writer.finish()?;
        metrics.add_spill(file.rows(), file.raw_bytes(), file.bytes(), start.elapsed());
        self.files[p].push(file);
        self.reservation.shrink(self.pending_bytes[p]);
        self.pending_bytes[p] = 0;
        Ok(())
    }

    /// Write whatever is buffered; the files of each partition.
    pub(super) fn finish(
        mut self,
        ctx: &TaskContext,
        metrics: &OperatorMetrics,
    ) -> Result<Vec<Vec<SpillFile>>> {
        for p in 0..self.pending.len() {
            self.flush(p, ctx, metrics)?;
        }
        Ok(std::mem::take(&mut self.files))
    }
}

/// One spilled partition (or sub-partition) still to be joined.
#[derive(Debug)]
pub(super) struct Job {
    /// The level whose partitioning formed it; a split uses `level + 1`.
    pub level: u32,
    /// A readable name for the metrics and spill files, e.g. `p3.7`.
    pub name: String,
    pub build: Vec<SpillFile>,
    pub probe: Vec<SpillFile>,
    /// Join in chunks without trying to split (a split would not help).
    pub chunked: bool,
}

impl Job {
    /// Rows of the job's build side.
    pub(super) fn build_rows(&self) -> usize {
        self.build.iter().map(SpillFile::rows).sum()
    }
}

/// What the last probe stream to finish hands to the others: the spilled partitions as jobs.
#[derive(Debug, Default)]
pub(super) struct GraceQueue {
    /// Probe streams that finished their input (and registered their probe files).
    pub finished: usize,
    /// Probe streams dropped before finishing (the query is being torn down).
    pub abandoned: usize,
    /// Build files of each spilled level-0 partition (set by the build).
    pub build_files: Vec<Vec<SpillFile>>,
    /// Probe files of each level-0 partition, from every probe stream.
    pub probe_files: Vec<Vec<SpillFile>>,
    /// Jobs not yet taken; filled once every probe stream has finished.
    pub jobs: VecDeque<Job>,
    /// Whether `jobs` has been filled.
    pub ready: bool,
    /// Streams that took a job and have not finished it.
    pub working: usize,
    /// Of those, streams waiting for another job to release memory.
    pub waiting: usize,
}

/// Per probe row of a chunked job: matched in some chunk, and (for scalar subqueries) matched
/// more than once.
#[derive(Debug)]
pub(super) struct ProbeBits {
    pub matched: Vec<u64>,
    pub multiple: Vec<u64>,
    _reservation: MemoryReservation,
}

impl ProbeBits {
    /// Bits for `rows` probe rows, reserved in the pool.
    pub(super) fn new(
        rows: usize,
        ctx: &TaskContext,
        metrics: &std::sync::Arc<OperatorMetrics>,
    ) -> Result<Self> {
        let words = rows.div_ceil(64);
        let mut reservation = MemoryReservation::new(
            &ctx.memory_pool,
            "HashJoin(probe bits)",
            MemoryPart::ProbeBits,
            Some(std::sync::Arc::clone(metrics)),
        );
        reservation.try_grow_or_spill_others(words * 16)?;
        Ok(Self {
            matched: vec![0; words],
            multiple: vec![0; words],
            _reservation: reservation,
        })
    }

    /// Record `count` matches (in the current chunk) of probe row `row`.
    #[inline]
    pub(super) fn record(&mut self, row: usize, count: u32) {
        if count == 0 {
            return;
        }
        let (w, b) = (row / 64, 1u64 << (row % 64));
        if count > 1 || self.matched[w] & b != 0 {
            self.multiple[w] |= b;
        }
        self.matched[w] |= b;
    }

    /// Whether probe row `row` matched in any chunk.
    #[inline]
    pub(super) fn is_matched(&self, row: usize) -> bool {
        self.matched[row / 64] & (1 << (row % 64)) != 0
    }

    /// Whether probe row `row` matched more than one build row over all chunks.
    #[inline]
    pub(super) fn is_multiple(&self, row: usize) -> bool {
        self.multiple[row / 64] & (1 << (row % 64)) != 0
    }
}

/// Bytes a build batch costs in memory once indexed.
pub(super) fn build_cost(batch: &RecordBatch, encoding: &KeyEncoding) -> usize {
    batch.get_array_memory_size() + batch.num_rows() * super::table::index_bytes_per_row(encoding)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, AsArray, Int64Array, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::memory::{MemoryPool, SpillManager};

    #[test]
    fn rows_pointing_into_a_large_string_buffer_are_buffered_by_their_own_size() {
        let spill_dir = tempfile::tempdir().unwrap();
        let ctx = TaskContext {
            memory_pool: MemoryPool::new(64 << 20),
            batch_size: 1024,
            threads: 1,
            bytes_read: Arc::default(),
            warnings: Arc::default(),
            progress: Arc::default(),
            cancelled: Arc::default(),
            spill: Arc::new(SpillManager::new(Some(spill_dir.path()), u64::MAX)),
        };
        let metrics = Arc::new(OperatorMetrics::default());
        // 100,000 long names in one buffer, as a build side's column joined onto probe rows.
        let names: ArrayRef = Arc::new(StringViewArray::from_iter_values(
            (0..100_000).map(|i| format!("a name longer than a view holds {i}")),
        ));
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, false),
        ]));
        let mut buffers =
            PartitionBuffers::new("test".into(), 4, Arc::clone(&schema), &ctx, &metrics);
        let flush = buffers.flush_bytes;
        // 200 pieces of 20 rows each, every one pointing into the whole buffer.
        for piece in 0..200 {
            let rows = UInt32Array::from_iter_values((0..20).map(|i| piece * 20 + i));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from_iter_values(
                        (0..20).map(|i| i64::from(piece * 20 + i)),
                    )),
                    arrow::compute::take(&names, &rows, None).unwrap(),
                ],
            )
            .unwrap();
            assert!(
                batch.get_array_memory_size() > flush,
                "each piece holds the buffer"
            );
            buffers
                .push(piece as usize % 4, batch, &ctx, &metrics)
                .unwrap();
        }
        // 4,000 rows of about 60 bytes: far below one flush of each of the four partitions.
        assert_eq!(metrics.spill_count(), 0, "no piece was written on its own");
        let files = buffers.finish(&ctx, &metrics).unwrap();
        assert_eq!(files.iter().map(Vec::len).sum::<usize>(), 4);
        let mut seen = 0;
        for file in files.iter().flatten() {
            for batch in file.read().unwrap() {
                let batch = batch.unwrap();
                let keys = batch
                    .column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>();
                let values = batch.column(1);
                let values = arrow::compute::cast(values, &DataType::Utf8).unwrap();
                for row in 0..batch.num_rows() {
                    let expected = format!("a name longer than a view holds {}", keys.value(row));
                    assert_eq!(values.as_string::<i32>().value(row), expected);
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, 4000);
        assert_eq!(ctx.memory_pool.reserved(), 0);
    }
}
