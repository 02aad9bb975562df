//! Source that reads a result stored in the result cache (`ooc_io::cache`): the batches of a
//! memory-mapped Arrow IPC file, decoded without copying (each checked against its CRC-32
//! first). As the root of a query (`CachedResult`) it replays a cache hit; as a scan
//! (`CachedScan`) it reads a persisted frame, only the columns the plan needs, its batches
//! spread over the query's threads. Nothing it hands out is on the heap, so nothing is
//! reserved from the pool.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use ooc_io::cache::CachedResult;

use crate::error::Result;
use crate::metrics::{format_bytes, format_duration, OperatorMetrics};
use crate::physical::batches::owned_copy;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Streams the batches of a cache entry.
#[derive(Debug)]
pub(crate) struct CachedResultExec {
    result: Arc<CachedResult>,
    /// The columns read (indices into the entry's schema; `None`: all).
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    partitions: usize,
    /// Set for a scan of a persisted frame: its table name.
    scan_of: Option<String>,
    /// Stop after this many rows (per partition; a limit above cuts exactly).
    fetch: Option<usize>,
    /// Copy every batch out of the mapping (see [`CachedResultExec::owned`]).
    owned: bool,
    /// Hand the result over unread (see [`CachedResultExec::deferred`]).
    deferred: bool,
    metrics: Arc<OperatorMetrics>,
}

impl CachedResultExec {
    /// A cache hit: the whole stored result, in its order.
    pub(crate) fn new(result: Arc<CachedResult>) -> Self {
        Self {
            schema: result.schema(),
            result,
            projection: None,
            partitions: 1,
            scan_of: None,
            fetch: None,
            owned: false,
            deferred: false,
            metrics: Arc::default(),
        }
    }

    /// Read nothing: the stream ends at once and the caller takes the result through
    /// [`ExecutionPlan::stored_result`], to read it when it is first needed.
    pub(crate) fn deferred(mut self) -> Self {
        self.deferred = true;
        self
    }

    /// Hand out batches with buffers of their own rather than views into the mapped file:
    /// for data that operators hold and account for (the exchange files of a distributed
    /// query), whose sizes Arrow would otherwise report as the whole mapping's, once per
    /// column and batch.
    pub(crate) fn owned(mut self) -> Self {
        self.owned = true;
        self
    }

    /// A scan of a persisted frame: `projection` of its columns, over `partitions` threads.
    pub(crate) fn scan(
        table_name: String,
        result: Arc<CachedResult>,
        projection: Option<Vec<usize>>,
        partitions: usize,
        fetch: Option<usize>,
    ) -> Result<Self> {
        let schema = match &projection {
            Some(p) => Arc::new(result.schema().project(p)?),
            None => result.schema(),
        };
        let partitions = partitions.clamp(1, result.num_batches().max(1));
        Ok(Self {
            result,
            projection,
            schema,
            partitions,
            scan_of: Some(table_name),
            fetch,
            owned: false,
            deferred: false,
            metrics: Arc::default(),
        })
    }
}

impl ExecutionPlan for CachedResultExec {
    fn name(&self) -> &str {
        match self.scan_of {
            Some(_) => "CachedScan",
            None => "CachedResult",
        }
    }

    fn details(&self) -> String {
        let m = self.result.manifest();
        let what = match &self.scan_of {
            Some(table) => format!(
                "table={table} columns={}/{}",
                self.schema.fields().len(),
                self.result.schema().fields().len()
            ),
            None if self.deferred => "hit (handed over unread)".to_string(),
            None => "hit".to_string(),
        };
        format!(
            "{what} key={} rows={} bytes={} computed in {} file={}",
            m.key,
            m.rows,
            format_bytes(m.bytes),
            format_duration(std::time::Duration::from_millis(m.compute_ms)),
            self.result.path().display()
        )
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn output_partitions(&self) -> usize {
        self.partitions
    }

    fn stored_result(&self) -> Option<Arc<CachedResult>> {
        self.deferred.then(|| Arc::clone(&self.result))
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        if self.deferred {
            // The rows are handed over, not streamed.
            self.metrics.add_output(self.result.num_rows() as usize);
            return Ok(Box::new(std::iter::empty()));
        }
        // Not for owned copies (exchange files): checking ahead reads, and keeps resident,
        // the whole mapping while the scan copies batch by batch.
        if self.partitions == 1 && self.projection.is_none() && !self.owned {
            // One thread decodes and checks from the first batch on; helpers check ahead
            // (all of it: a scan of some columns checks only theirs, as it reads them).
            self.result
                .check_in_background(ctx.threads.saturating_sub(1).max(1));
        }
        let decoder = self.result.decoder(self.projection.clone())?;
        let schema = Arc::clone(&self.schema);
        let mut left = self.fetch.unwrap_or(usize::MAX);
        let owned = self.owned;
        let batches = (partition..self.result.num_batches())
            .step_by(self.partitions)
            .map_while(move |i| {
                if left == 0 {
                    return None;
                }
                let batch = ctx
                    .check_cancelled()
                    .and_then(|()| Ok(decoder.batch(i)?))
                    .and_then(|b| if owned { owned_copy(&b) } else { Ok(b) })
                    .and_then(|b| Ok(b.with_schema(Arc::clone(&schema))?));
                if let Ok(b) = &batch {
                    left = left.saturating_sub(b.num_rows());
                }
                Some(batch)
            });
        Ok(instrument(Box::new(batches), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
