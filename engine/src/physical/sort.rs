//! Sort: an external merge sort whose memory stays within the query's budget.
//!
//! ```text
//!   input ──► buffer (batches + key columns) ──(over budget)──► sorted run ──► spill file
//!                      │ input ends                                              │
//!                      ▼                                                         ▼
//!              sort in memory ──► output          k-way merge of runs (fan-in from budget)
//!                                                 more runs than fan-in: merge into longer
//!                                                 runs first (multi-pass)
//! ```
//!
//! Buffered batches are sorted by computing a permutation over their key columns only (as
//! packed integers where the keys allow, see [`super::sort_order`]) and gathering rows in
//! output-sized chunks, so the payload is never copied as a whole. A run is stored with its
//! integers and decimals narrowed to the range of its own values. When the
//! buffer cannot grow (or holds its share of the budget), it is written as a sorted *run*: a
//! spill file of small batches. Sorting and writing a run (gathering, compressing) is most of a
//! large sort's work, so runs are written on background threads, up to [`RUN_WRITERS`] at once,
//! while the next buffer fills: the buffer's share is a quarter of the budget, so two runs in
//! flight and a filling buffer stay within three quarters of it. Merging compares keys in
//! Arrow's row format and keeps one batch per run in memory; the number of runs merged at once
//! comes from what the budget can hold.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{concat, lexsort_to_indices, take_record_batch, SortColumn, SortOptions};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::{EngineError, Result};
use crate::eval::{normalize_zero_array, PhysicalExpr};
use crate::memory::{used_bytes, MemoryPart, MemoryReservation, Narrowing, SpillFile};
use crate::metrics::OperatorMetrics;
use crate::physical::sort_order::sort_indices;
use crate::physical::{compact_views, instrument, BatchStream, ExecutionPlan, TaskContext};

/// Most runs merged at once, whatever the budget.
const MAX_FAN_IN: usize = 128;

/// Most sorted runs being written in the background at once.
const RUN_WRITERS: usize = 2;

/// A physical sort key.
#[derive(Clone, Debug)]
pub(crate) struct PhysicalSortKey {
    /// Key expression over the input.
    pub expr: PhysicalExpr,
    /// Direction and null placement.
    pub options: SortOptions,
    /// Text for EXPLAIN.
    pub display: String,
}

/// Sort `batch` by `keys`, keeping only the first `limit` rows if given.
pub(crate) fn sort_batch(
    batch: &RecordBatch,
    keys: &[PhysicalSortKey],
    limit: Option<usize>,
) -> Result<RecordBatch> {
    if batch.num_rows() == 0 {
        return Ok(batch.clone());
    }
    let columns = sort_columns(batch, keys)?;
    let indices = match limit {
        Some(limit) => lexsort_to_indices(&columns, Some(limit))?,
        None => UInt32Array::from(sort_indices(&columns)?),
    };
    Ok(take_record_batch(batch, &indices)?)
}

/// The rows at `indices` ((batch, row) pairs) of `batches`, in that order; a batch without
/// columns (a sort by constants of rows nobody reads) keeps its row count.
fn interleave_rows(batches: &[&RecordBatch], indices: &[(usize, usize)]) -> Result<RecordBatch> {
    match batches.first() {
        Some(first) if first.num_columns() == 0 => {
            let options =
                arrow::array::RecordBatchOptions::new().with_row_count(Some(indices.len()));
            Ok(RecordBatch::try_new_with_options(
                first.schema(),
                vec![],
                &options,
            )?)
        }
        _ => Ok(arrow::compute::interleave_record_batch(batches, indices)?),
    }
}

fn sort_columns(batch: &RecordBatch, keys: &[PhysicalSortKey]) -> Result<Vec<SortColumn>> {
    let n = batch.num_rows();
    keys.iter()
        .map(|k| {
            Ok(SortColumn {
                values: normalize_zero_array(k.expr.evaluate(batch)?.into_array(n)?)?,
                options: Some(k.options),
            })
        })
        .collect()
}

/// Full sort of each input partition on its own (a total order needs one input partition).
#[derive(Debug)]
pub(crate) struct SortExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<PhysicalSortKey>,
    metrics: Arc<OperatorMetrics>,
}

impl SortExec {
    /// Sort each partition of `input` by `keys`.
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, keys: Vec<PhysicalSortKey>) -> Self {
        Self {
            input,
            keys,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for SortExec {
    fn name(&self) -> &str {
        "Sort"
    }

    fn details(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.display.clone())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.input)]
    }

    fn output_partitions(&self) -> usize {
        self.input.output_partitions()
    }

    fn grows_with_input(&self) -> bool {
        true
    }

    fn can_spill(&self) -> bool {
        true
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let input = Arc::clone(&self.input).execute(partition, Arc::clone(&ctx))?;
        let reservation = MemoryReservation::new_spillable(
            &ctx.memory_pool,
            "Sort",
            MemoryPart::SortBuffer,
            Some(Arc::clone(&self.metrics)),
        );
        let stream = SortStream {
            exec: Arc::clone(&self),
            // Sorts of several partitions run at once and share the budget.
            soft_limit: ctx.memory_pool.limit() / (RUN_WRITERS + 2) / self.output_partitions(),
            ctx,
            input: Some(input),
            buffer: Vec::new(),
            buffered_rows: 0,
            buffered_bytes: 0,
            reservation,
            runs: Vec::new(),
            writing: VecDeque::new(),
            writing_bytes: 0,
            sort_fields: None,
            output: Output::None,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

/// What the stream emits once the input has ended.
enum Output {
    None,
    /// The buffer, sorted in memory: the permutation and how much of it was emitted.
    InMemory {
        order: Vec<(usize, usize)>,
        offset: usize,
    },
    /// The final merge of the spilled runs.
    Merge(Box<Merger>),
    Done,
}

struct SortStream {
    exec: Arc<SortExec>,
    ctx: Arc<TaskContext>,
    input: Option<BatchStream>,
    /// Buffered batches and their (normalized) key columns.
    buffer: Vec<(RecordBatch, Vec<ArrayRef>)>,
    buffered_rows: usize,
    buffered_bytes: usize,
    /// The buffer spills when it would exceed this (its share of the budget, see the module
    /// docs).
    soft_limit: usize,
    /// Holds the buffer's bytes and those of the runs being written.
    reservation: MemoryReservation,
    runs: Vec<SpillFile>,
    /// Runs being sorted and written in the background, oldest first, with their bytes.
    writing: VecDeque<(JoinHandle<Result<SpillFile>>, usize)>,
    writing_bytes: usize,
    /// Row-format fields of the keys (from the first batch), for merging runs.
    sort_fields: Option<Vec<SortField>>,
    output: Output,
}

impl Iterator for SortStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        match self.advance() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.finish();
                None
            }
            Err(e) => {
                self.finish();
                self.output = Output::Done;
                Some(Err(e))
            }
        }
    }
}

impl Drop for SortStream {
    /// A stream dropped early (a LIMIT above, a failed query) still waits for its run writers.
    fn drop(&mut self) {
        self.finish();
    }
}

impl SortStream {
    fn finish(&mut self) {
        self.input = None;
        self.buffer.clear();
        // Wait for the writers (their files are deleted with them): no thread outlives the
        // stream.
        while self.join_oldest_run().is_some() {}
        self.runs.clear();
        self.output = Output::Done;
        self.reservation.free();
    }

    fn advance(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(mut input) = self.input.take() {
            for batch in input.by_ref() {
                self.push(compact_views(&batch?))?;
            }
            drop(input);
            if self.runs.is_empty() && self.writing.is_empty() {
                self.output = Output::InMemory {
                    order: sorted_order(&self.buffer, &self.exec.keys)?,
                    offset: 0,
                };
            } else {
                self.spill_run()?;
                while let Some(run) = self.join_oldest_run() {
                    run?;
                }
                self.output = Output::Merge(Box::new(self.merge_runs()?));
            }
        }
        let batch_size = self.ctx.batch_size;
        match &mut self.output {
            Output::InMemory { order, offset } => {
                if *offset >= order.len() {
                    return Ok(None);
                }
                let end = (*offset + batch_size).min(order.len());
                let batches: Vec<&RecordBatch> = self.buffer.iter().map(|(b, _)| b).collect();
                let out = interleave_rows(&batches, &order[*offset..end])?;
                *offset = end;
                Ok(Some(out))
            }
            Output::Merge(merger) => {
                self.ctx.check_cancelled()?;
                merger.next_batch(batch_size)
            }
            Output::None | Output::Done => Ok(None),
        }
    }

    /// Buffer a batch, spilling the buffer first if it cannot hold it.
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        self.ctx.check_cancelled()?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.exec.metrics.add_rows_in(batch.num_rows());
        let keys: Vec<ArrayRef> = sort_columns(&batch, &self.exec.keys)?
            .into_iter()
            .map(|c| c.values)
            .collect();
        if self.sort_fields.is_none() {
            self.sort_fields = Some(
                keys.iter()
                    .zip(&self.exec.keys)
                    .map(|(k, key)| SortField::new_with_options(k.data_type().clone(), key.options))
                    .collect(),
            );
        }
        let bytes = batch.get_array_memory_size()
            + keys.iter().map(|k| k.get_array_memory_size()).sum::<usize>()
            // the permutation entry of every row
            + batch.num_rows() * 16;
        // A run written in the background gives its memory back here.
        while self
            .writing
            .front()
            .is_some_and(|(handle, _)| handle.is_finished())
        {
            if let Some(run) = self.join_oldest_run() {
                run?;
            }
        }
        // Spill when the buffer is full, when the budget has no room, or when the pool asks
        // (another operator that cannot spill needs memory).
        let over = self.reservation.spill_requested()
            || self.buffered_bytes + bytes > self.soft_limit
            || self.reservation.try_grow(bytes).is_err();
        let mut alone = false;
        if over {
            self.spill_run()?;
            loop {
                if self.reservation.try_grow(bytes).is_ok() {
                    break;
                }
                // Runs being written still hold their memory: wait for the oldest.
                if let Some(run) = self.join_oldest_run() {
                    run?;
                    continue;
                }
                match self.reservation.try_grow_or_spill_others(bytes) {
                    Ok(()) => {}
                    // One batch is more than the budget holds. Its producer already made it,
                    // so the memory is in use either way: sort it alone and write it out as a
                    // run at once rather than fail.
                    Err(EngineError::ResourcesExhausted { .. }) => alone = true,
                    Err(e) => return Err(e),
                }
                break;
            }
        }
        self.buffered_rows += batch.num_rows();
        self.buffered_bytes += bytes;
        self.buffer.push((batch, keys));
        if alone {
            self.spill_run()?;
        }
        Ok(())
    }

    /// Rows per batch in spill files: small enough that many runs can be merged at once.
    fn run_batch_rows(&self) -> usize {
        let row_bytes = (self.buffered_bytes / self.buffered_rows.max(1)).max(1);
        let limit = self.ctx.memory_pool.limit();
        (limit / 256 / row_bytes).clamp(64, self.ctx.batch_size.max(64))
    }

    /// Hand the buffer to a background thread that sorts it and writes it out as one run.
    /// With [`RUN_WRITERS`] runs already being written, waits for the oldest first.
    fn spill_run(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        while self.writing.len() >= RUN_WRITERS {
            if let Some(run) = self.join_oldest_run() {
                run?;
            }
        }
        let chunk = self.run_batch_rows();
        let buffer = std::mem::take(&mut self.buffer);
        let bytes = self.buffered_bytes;
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        let exec = Arc::clone(&self.exec);
        let ctx = Arc::clone(&self.ctx);
        let handle = std::thread::Builder::new()
            .name("ooc-sort-run".into())
            .spawn(move || write_run(buffer, &exec, &ctx, chunk))
            .map_err(|e| EngineError::Internal(format!("cannot start a sort run writer: {e}")))?;
        self.writing.push_back((handle, bytes));
        self.writing_bytes += bytes;
        Ok(())
    }

    /// Wait for the oldest run being written; `None` when none is. Its memory is released
    /// and, if it was written, its file joins the runs.
    fn join_oldest_run(&mut self) -> Option<Result<()>> {
        let (handle, bytes) = self.writing.pop_front()?;
        self.writing_bytes -= bytes;
        let written = handle
            .join()
            .unwrap_or_else(|_| Err(EngineError::Internal("a sort run writer panicked".into())));
        // The reservation shrinks to what is still held: the buffer and the other runs.
        let _ = self
            .reservation
            .try_resize(self.buffered_bytes + self.writing_bytes);
        Some(written.map(|file| self.runs.push(file)))
    }

    /// Merge runs until few enough remain to merge in one pass; returns that final merge.
    fn merge_runs(&mut self) -> Result<Merger> {
        loop {
            let runs = std::mem::take(&mut self.runs);
            let fields = self.sort_fields.clone().unwrap_or_default();
            let mut merger =
                Merger::new(runs, Arc::clone(&self.exec), fields, &mut self.reservation)?;
            if merger.remaining.is_empty() {
                return Ok(merger);
            }
            // More runs than the budget can merge at once: merge the first ones into a longer
            // run, and go again.
            let start = Instant::now();
            let schema = self.exec.input.schema();
            let mut writer = self.ctx.spill.create("sort-merged-run", &schema)?;
            let chunk = merger.batch_rows;
            while let Some(batch) = merger.next_batch(chunk)? {
                self.ctx.check_cancelled()?;
                writer.write(&batch)?;
            }
            let file = writer.finish()?;
            self.exec.metrics.add_spill(
                file.rows(),
                file.raw_bytes(),
                file.bytes(),
                start.elapsed(),
            );
            self.runs = std::mem::take(&mut merger.remaining);
            self.runs.push(file);
            drop(merger);
            self.reservation.free();
        }
    }
}

/// The buffered rows in sorted order, as (batch, row) pairs.
fn sorted_order(
    buffer: &[(RecordBatch, Vec<ArrayRef>)],
    keys: &[PhysicalSortKey],
) -> Result<Vec<(usize, usize)>> {
    if buffer.is_empty() {
        return Ok(Vec::new());
    }
    let rows = buffer.iter().map(|(b, _)| b.num_rows()).sum();
    let mut positions = Vec::with_capacity(rows);
    for (b, (batch, _)) in buffer.iter().enumerate() {
        positions.extend((0..batch.num_rows()).map(|r| (b, r)));
    }
    let columns = (0..keys.len())
        .map(|k| {
            let parts: Vec<&dyn arrow::array::Array> =
                buffer.iter().map(|(_, keys)| keys[k].as_ref()).collect();
            Ok(SortColumn {
                values: concat(&parts)?,
                options: Some(keys[k].options),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(sort_indices(&columns)?
        .into_iter()
        .map(|i| positions[i as usize])
        .collect())
}

/// Sort `buffer` and write it out as one run of `chunk`-row batches (on a run writer thread).
fn write_run(
    buffer: Vec<(RecordBatch, Vec<ArrayRef>)>,
    exec: &SortExec,
    ctx: &TaskContext,
    chunk: usize,
) -> Result<SpillFile> {
    let start = Instant::now();
    let order = sorted_order(&buffer, &exec.keys)?;
    let schema = exec.input.schema();
    let batches: Vec<&RecordBatch> = buffer.iter().map(|(b, _)| b).collect();
    // The run's values are all known: store its integers and decimals as narrow as they fit.
    let narrowing = Narrowing::fitted_to(&schema, &batches);
    let mut writer = ctx.spill.create_narrowed("sort-run", narrowing)?;
    for part in order.chunks(chunk) {
        ctx.check_cancelled()?;
        writer.write(&interleave_rows(&batches, part)?)?;
    }
    let file = writer.finish()?;
    exec.metrics
        .add_spill(file.rows(), file.raw_bytes(), file.bytes(), start.elapsed());
    Ok(file)
}

/// One run being merged: its current batch, that batch's keys as rows, and the position.
struct Cursor {
    reader: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    batch: RecordBatch,
    rows: Rows,
    pos: usize,
    /// Index of `batch` in the merger's `held` batches.
    held: usize,
    _file: SpillFile,
}

/// k-way merge of sorted runs through a binary heap of cursors.
struct Merger {
    exec: Arc<SortExec>,
    converter: RowConverter,
    cursors: Vec<Cursor>,
    /// Heap of cursor indices, smallest current row first.
    heap: Vec<usize>,
    /// Batches the pending output rows point into.
    held: Vec<RecordBatch>,
    pending: Vec<(usize, usize)>,
    /// Runs left for a later pass.
    remaining: Vec<SpillFile>,
    /// Typical rows per run batch.
    batch_rows: usize,
}

impl Merger {
    /// Open as many runs as the reservation can hold a batch of each (at least two).
    fn new(
        mut runs: Vec<SpillFile>,
        exec: Arc<SortExec>,
        fields: Vec<SortField>,
        reservation: &mut MemoryReservation,
    ) -> Result<Self> {
        let mut merger = Self {
            converter: RowConverter::new(fields)?,
            exec,
            cursors: Vec::new(),
            heap: Vec::new(),
            held: Vec::new(),
            pending: Vec::new(),
            remaining: Vec::new(),
            batch_rows: 0,
        };
        runs.reverse();
        while let Some(file) = runs.pop() {
            if merger.cursors.len() >= MAX_FAN_IN {
                runs.push(file);
                break;
            }
            let mut reader = file.read()?;
            let Some(batch) = reader.next().transpose()? else {
                continue;
            };
            let rows = merger.key_rows(&batch)?;
            // A cursor holds its batch, the next one while it is read and the output's share.
            let bytes = 3 * (used_bytes(&batch) + rows.size());
            if let Err(e) = reservation.try_grow(bytes) {
                if merger.cursors.len() < 2 {
                    return Err(e);
                }
                runs.push(file);
                break;
            }
            merger.batch_rows = merger.batch_rows.max(batch.num_rows());
            let held = merger.held.len();
            merger.held.push(batch.clone());
            merger.cursors.push(Cursor {
                reader: Box::new(reader),
                batch,
                rows,
                pos: 0,
                held,
                _file: file,
            });
        }
        runs.reverse();
        merger.remaining = runs;
        merger.heap = (0..merger.cursors.len()).collect();
        for i in (0..merger.heap.len() / 2).rev() {
            merger.sift_down(i);
        }
        Ok(merger)
    }

    fn key_rows(&self, batch: &RecordBatch) -> Result<Rows> {
        let columns: Vec<ArrayRef> = sort_columns(batch, &self.exec.keys)?
            .into_iter()
            .map(|c| c.values)
            .collect();
        Ok(self.converter.convert_columns(&columns)?)
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (ca, cb) = (&self.cursors[a], &self.cursors[b]);
        match ca.rows.row(ca.pos).cmp(&cb.rows.row(cb.pos)) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => a < b,
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.less(self.heap[l], self.heap[smallest]) {
                smallest = l;
            }
            if r < n && self.less(self.heap[r], self.heap[smallest]) {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }

    /// The next `max_rows` merged rows, or `None` when every run is exhausted.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>> {
        while self.pending.len() < max_rows && !self.heap.is_empty() {
            let top = self.heap[0];
            let cursor = &mut self.cursors[top];
            self.pending.push((cursor.held, cursor.pos));
            cursor.pos += 1;
            if cursor.pos >= cursor.batch.num_rows() {
                match cursor.reader.next().transpose()? {
                    Some(batch) => {
                        let rows = self.key_rows(&batch)?;
                        let cursor = &mut self.cursors[top];
                        cursor.rows = rows;
                        cursor.pos = 0;
                        cursor.held = self.held.len();
                        cursor.batch = batch.clone();
                        self.held.push(batch);
                    }
                    None => {
                        // Run exhausted: remove it from the heap.
                        let last = self.heap.len() - 1;
                        self.heap.swap(0, last);
                        self.heap.pop();
                    }
                }
            }
            if !self.heap.is_empty() {
                self.sift_down(0);
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let batches: Vec<&RecordBatch> = self.held.iter().collect();
        let out = interleave_rows(&batches, &self.pending)?;
        self.pending.clear();
        // Keep only the batches cursors still read from.
        let mut held = Vec::with_capacity(self.cursors.len());
        for &c in &self.heap {
            let cursor = &mut self.cursors[c];
            cursor.held = held.len();
            held.push(cursor.batch.clone());
        }
        self.held = held;
        Ok(Some(out))
    }
}

/// Evaluate sort keys as columns (used by top-k to read the k-th value).
pub(crate) fn key_columns(batch: &RecordBatch, keys: &[PhysicalSortKey]) -> Result<Vec<ArrayRef>> {
    keys.iter()
        .map(|k| k.expr.evaluate(batch)?.into_array(batch.num_rows()))
        .collect()
}
