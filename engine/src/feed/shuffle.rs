//! Shuffling rows within windows: the rows of `window` batches are gathered, permuted with a
//! seeded generator (ChaCha8, so a seed gives the same permutation on every machine), and
//! handed out `batch_rows` at a time, each output batch gathered from the window with Arrow's
//! interleave kernel (one copy per row). The next window is read only once the current one is
//! used up, so at most one window of rows, plus the batch being built, is held.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::FeedBatch;
use crate::error::Result;

pub(super) struct WindowShuffle {
    schema: SchemaRef,
    rng: ChaCha8Rng,
    batch_rows: usize,
    window_rows: usize,
    /// Rows read for the next window.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// The window being handed out: its batches, the permutation of its rows (batch, row) and
    /// how much of it is out.
    current: Vec<RecordBatch>,
    order: Vec<(usize, usize)>,
    position: usize,
    finished: bool,
}

impl WindowShuffle {
    pub(super) fn new(schema: SchemaRef, batch_rows: usize, window: usize, seed: u64) -> Self {
        let batch_rows = batch_rows.max(1);
        Self {
            schema,
            rng: ChaCha8Rng::seed_from_u64(seed),
            batch_rows,
            window_rows: batch_rows.saturating_mul(window.max(1)),
            pending: Vec::new(),
            pending_rows: 0,
            current: Vec::new(),
            order: Vec::new(),
            position: 0,
            finished: false,
        }
    }

    /// Add rows read from the input.
    pub(super) fn push(&mut self, batch: RecordBatch) {
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
    }

    /// No more input: what is pending becomes the last (shorter) window.
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }

    /// The next shuffled batch, if one can be made without more input.
    pub(super) fn next_batch(&mut self) -> Result<Option<FeedBatch>> {
        if self.position >= self.order.len() {
            self.current.clear();
            self.order.clear();
            self.position = 0;
            let take = if self.pending_rows >= self.window_rows {
                self.window_rows
            } else if self.finished {
                self.pending_rows
            } else {
                return Ok(None);
            };
            if take == 0 {
                return Ok(None);
            }
            self.start_window(take);
        }
        let end = (self.position + self.batch_rows).min(self.order.len());
        let refs: Vec<&RecordBatch> = self.current.iter().collect();
        let batch =
            arrow::compute::interleave_record_batch(&refs, &self.order[self.position..end])?;
        self.position = end;
        if self.position >= self.order.len() {
            // Release the window's rows as soon as the last batch is built.
            self.current.clear();
        }
        Ok(Some(FeedBatch::new(
            SchemaRef::clone(&self.schema),
            vec![batch],
        )))
    }

    /// Move the first `rows` pending rows into a new window and permute them.
    fn start_window(&mut self, rows: usize) {
        let mut need = rows;
        let mut rest = Vec::new();
        for batch in self.pending.drain(..) {
            let n = batch.num_rows();
            if need == 0 {
                rest.push(batch);
            } else if n <= need {
                need -= n;
                self.current.push(batch);
            } else {
                self.current.push(batch.slice(0, need));
                rest.push(batch.slice(need, n - need));
                need = 0;
            }
        }
        self.pending = rest;
        self.pending_rows -= rows;
        self.order = self
            .current
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
            .collect();
        self.order.shuffle(&mut self.rng);
    }
}
