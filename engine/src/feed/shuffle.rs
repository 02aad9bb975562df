//! Shuffling rows within windows: the rows of `window` batches form a window, their positions
//! are permuted with a seeded generator (ChaCha8, so a seed gives the same permutation on
//! every machine), and batches of `batch_rows` positions are handed out. A batch is only
//! positions into the shared window until it is converted: a matrix is gathered row by row
//! from the window's own row-major matrix (built once), so each row costs one read of
//! contiguous values instead of one per column; Arrow output is taken from the window joined
//! into one batch. The next window is read only once the current one is handed out, so at
//! most one window of rows, and what was built from it, is held.
//!
//! Over SF10 `lineitem` (five columns, batches of 100,000 rows, windows of 16 batches,
//! float64, 2 cores) a shuffled pass took 10.3 s with Arrow's interleave kernel over the
//! window's pieces, 7.2 s taking from one joined batch, and 6.0 s gathering rows of a window
//! matrix; as float32 5.7 s, and 4.6 s (8 batches) or 3.8 s (4 batches) with smaller windows:
//! a random gather from a window larger than the caches costs about one miss per row.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{FeedBatch, Window};
use crate::error::Result;

pub(super) struct WindowShuffle {
    schema: SchemaRef,
    rng: ChaCha8Rng,
    batch_rows: usize,
    window_rows: usize,
    /// Rows read for the next window.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// The window being handed out: its rows, their permutation and how much of it is out.
    current: Option<Arc<Window>>,
    order: Vec<u32>,
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
            // Positions in a window are 32-bit.
            window_rows: batch_rows
                .saturating_mul(window.max(1))
                .min(u32::MAX as usize),
            pending: Vec::new(),
            pending_rows: 0,
            current: None,
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
            self.current = None;
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
        let Some(window) = self.current.as_ref() else {
            return Ok(None);
        };
        let end = (self.position + self.batch_rows).min(self.order.len());
        let batch = FeedBatch::taken(Arc::clone(window), self.order[self.position..end].to_vec());
        self.position = end;
        if self.position >= self.order.len() {
            // The window's rows go once the batches taken from it are gone.
            self.current = None;
        }
        Ok(Some(batch))
    }

    /// Move the first `rows` pending rows into a new window and permute them.
    fn start_window(&mut self, rows: usize) {
        let mut need = rows;
        let mut rest = Vec::new();
        let mut window = Vec::new();
        for batch in self.pending.drain(..) {
            let n = batch.num_rows();
            if need == 0 {
                rest.push(batch);
            } else if n <= need {
                need -= n;
                window.push(batch);
            } else {
                window.push(batch.slice(0, need));
                rest.push(batch.slice(need, n - need));
                need = 0;
            }
        }
        self.pending = rest;
        self.pending_rows -= rows;
        self.current = Some(Arc::new(Window::new(
            SchemaRef::clone(&self.schema),
            window,
        )));
        // `rows` is at most `window_rows`, which fits in 32 bits.
        self.order.extend(0..rows as u32);
        self.order.shuffle(&mut self.rng);
    }
}
