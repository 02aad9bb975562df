//! Cutting and joining a stream's batches into batches of exactly `size` rows.
//!
//! Incoming batches wait in a queue; a full batch is the queue's first `size` rows, taken as
//! whole batches and, at the end, a slice of the next one (its rest stays queued). Nothing is
//! copied here: a batch that lies inside one input batch is a slice of it, and one that spans
//! several keeps them as pieces ([`FeedBatch`]).

use std::collections::VecDeque;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::FeedBatch;

pub(super) struct Rebatcher {
    schema: SchemaRef,
    size: usize,
    queue: VecDeque<RecordBatch>,
    rows: usize,
}

impl Rebatcher {
    pub(super) fn new(schema: SchemaRef, size: usize) -> Self {
        Self {
            schema,
            size: size.max(1),
            queue: VecDeque::new(),
            rows: 0,
        }
    }

    pub(super) fn push(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.rows += batch.num_rows();
            self.queue.push_back(batch);
        }
    }

    /// The next batch of exactly `size` rows, if that many are queued.
    pub(super) fn pop_full(&mut self) -> Option<FeedBatch> {
        if self.rows < self.size {
            return None;
        }
        let mut need = self.size;
        let mut pieces = Vec::new();
        while need > 0 {
            let front = self.queue.pop_front()?;
            let n = front.num_rows();
            if n <= need {
                need -= n;
                pieces.push(front);
            } else {
                pieces.push(front.slice(0, need));
                self.queue.push_front(front.slice(need, n - need));
                need = 0;
            }
        }
        self.rows -= self.size;
        Some(FeedBatch::new(SchemaRef::clone(&self.schema), pieces))
    }

    /// Whatever rows are left (fewer than `size`), as the last batch.
    pub(super) fn finish(&mut self) -> Option<FeedBatch> {
        if self.rows == 0 {
            return None;
        }
        self.rows = 0;
        let pieces: Vec<RecordBatch> = self.queue.drain(..).collect();
        Some(FeedBatch::new(SchemaRef::clone(&self.schema), pieces))
    }
}
