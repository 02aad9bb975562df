//! The root of a query whose result the result cache should keep: passes its input's batches
//! on unchanged and writes each one into a cache entry as it goes (`ooc_io::cache`). When the
//! input ends, the entry is committed if the result took long enough to compute to be worth
//! storing; after an error, a cancellation or a consumer that stops early, the entry is
//! abandoned and nothing is stored.
//!
//! Caching is best effort: a full disk or a result larger than the cache's bound abandons the
//! entry with a warning and the query goes on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ooc_io::cache::{CommitInfo, EntryWriter};

use crate::error::Result;
use crate::metrics::{format_bytes, format_duration, OperatorMetrics};
use crate::physical::{compact_views, concat_releasing, BatchStream, ExecutionPlan, TaskContext};

/// Tees its input into a cache entry.
#[derive(Debug)]
pub(crate) struct CacheWriteExec {
    input: Arc<dyn ExecutionPlan>,
    writer: Mutex<Option<EntryWriter>>,
    info: CommitInfo,
    min_compute: Duration,
    /// Why the lookup missed.
    miss: String,
    metrics: Arc<OperatorMetrics>,
}

impl CacheWriteExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        writer: EntryWriter,
        info: CommitInfo,
        min_compute: Duration,
        miss: String,
    ) -> Self {
        Self {
            input,
            writer: Mutex::new(Some(writer)),
            info,
            min_compute,
            miss,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for CacheWriteExec {
    fn name(&self) -> &str {
        "CacheWrite"
    }

    fn details(&self) -> String {
        format!("miss ({})", self.miss)
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.input)]
    }

    fn output_partitions(&self) -> usize {
        1
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let started = Instant::now();
        let input = Arc::clone(&self.input).execute(partition, Arc::clone(&ctx))?;
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(Box::new(Tee {
            input,
            writer,
            pending: Vec::new(),
            pending_rows: 0,
            started,
            op: self,
            ctx,
        }))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

struct Tee {
    input: BatchStream,
    writer: Option<EntryWriter>,
    /// Small batches waiting to be written as one (fewer than a batch's worth of rows).
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    started: Instant,
    op: Arc<CacheWriteExec>,
    ctx: Arc<TaskContext>,
}

impl Tee {
    fn abandon(&mut self, why: String) {
        self.writer = None;
        self.pending.clear();
        self.op.metrics.set_extra("stored", format!("no: {why}"));
    }

    /// Store `batch`; small ones (a selective filter's output) are gathered into batches of
    /// the session's batch size first: an entry of thousands of tiny batches costs a hit
    /// thousands of decodes and hand-overs (7,378 batches of 40 rows took 330 ms to replay).
    fn write(&mut self, batch: &RecordBatch) {
        if self.writer.is_none() || batch.num_rows() == 0 {
            return;
        }
        self.pending_rows += batch.num_rows();
        // A view column kept as it is would pin (and store) every data buffer it points into:
        // whole decoded pages behind a few filtered rows.
        self.pending.push(compact_views(batch));
        if self.pending_rows >= self.ctx.batch_size.max(1) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        // A batch that came full-size is written as it is, not copied.
        let written = concat_releasing(&self.op.input.schema(), batches)
            .map_err(|e| e.to_string())
            .and_then(|batch| writer.write(&batch).map_err(|e| e.to_string()));
        if let Err(e) = written {
            self.ctx
                .set_warning("result cache", format!("the result was not cached: {e}"));
            self.abandon(e);
        }
    }

    fn finish(&mut self) {
        self.flush();
        let Some(writer) = self.writer.take() else {
            return;
        };
        let compute = self.started.elapsed();
        if compute < self.op.min_compute {
            drop(writer);
            self.abandon(format!(
                "computed in {} (< {})",
                format_duration(compute),
                format_duration(self.op.min_compute)
            ));
            return;
        }
        let info = CommitInfo {
            compute,
            ..self.op.info.clone()
        };
        match writer.commit(info) {
            Ok(bytes) => self
                .op
                .metrics
                .set_extra("stored", format!("yes, {}", format_bytes(bytes))),
            Err(e) => {
                self.ctx
                    .set_warning("result cache", format!("the result was not cached: {e}"));
                self.op.metrics.set_extra("stored", format!("no: {e}"));
            }
        }
    }
}

impl Iterator for Tee {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let started = Instant::now();
        let item = self.input.next();
        match &item {
            Some(Ok(batch)) => {
                self.write(batch);
                self.op.metrics.add_output(batch.num_rows());
            }
            Some(Err(_)) => self.abandon("the query failed".into()),
            None => self.finish(),
        }
        self.op.metrics.add_elapsed(started.elapsed());
        item
    }
}
