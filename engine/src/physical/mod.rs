//! Physical operators: how a plan runs, as pull-based streams of Arrow record batches.
//!
//! Every operator implements [`ExecutionPlan`]. An operator has `output_partitions()` independent
//! output streams; `execute(partition)` opens one. Scans split their row groups into morsels that
//! partitions claim dynamically, so a slow partition never leaves a core idle. Pipelines that keep
//! the partitioning (filter, projection, partial aggregation, per-partition top-k) run on one
//! thread per partition; [`CoalesceExec`](coalesce::CoalesceExec) merges partitions through a
//! bounded channel, which bounds the batches in flight.
//!
//! Every operator owns an [`OperatorMetrics`] and reports rows, time and held bytes into it.

//!
//! Operators do not know how they were planned: the physical planner (in `execution`) builds
//! them from a logical plan and wires their cross-operator links (dynamic filters, key
//! segments). They use compiled expressions from `eval`, memory reservations and spill files
//! from `memory`, and the per-query [`TaskContext`].

pub(crate) mod aggregate;
pub(crate) mod batches;
pub(crate) mod cache_write;
pub(crate) mod cached_result;
pub(crate) mod coalesce;
pub(crate) mod context;
mod display;
pub(crate) mod empty;
pub(crate) mod filter;
pub(crate) mod hashing;
pub(crate) mod joins;
pub(crate) mod key_segments;
pub(crate) mod limit;
pub(crate) mod materialize;
pub(crate) mod memory_table;
pub(crate) mod ordered_coalesce;
pub(crate) mod project;
pub(crate) mod repartition;
pub(crate) mod scan;
pub(crate) mod sort;
pub(crate) mod sort_order;
mod spool;
pub(crate) mod text_scan;
pub(crate) mod topk;
pub(crate) mod union;
pub(crate) mod window;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::metrics::OperatorMetrics;

pub(crate) use self::batches::{compact_views, concat_releasing};
pub(crate) use self::context::TaskContext;
pub(crate) use self::display::{display_analyzed, display_plan, AtPeakByOperator};

/// A stream of record batches.
pub(crate) type BatchStream = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// A node of a physical plan.
pub(crate) trait ExecutionPlan: Debug + Send + Sync {
    /// Operator name shown in plans (`HashAggregate`, `ParquetScan`, ...).
    fn name(&self) -> &str;
    /// One-line description of the operator's parameters for EXPLAIN.
    fn details(&self) -> String;
    /// Output schema.
    fn schema(&self) -> SchemaRef;
    /// Inputs.
    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>>;
    /// Number of independent output streams.
    fn output_partitions(&self) -> usize;
    /// Open output stream `partition`.
    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream>;
    /// This operator's runtime metrics.
    fn metrics(&self) -> &Arc<OperatorMetrics>;
    /// Whether the operator's memory grows with its input (and so will spill under a budget).
    fn grows_with_input(&self) -> bool {
        false
    }
    /// Whether the operator writes state to disk when its memory reservation cannot grow.
    fn can_spill(&self) -> bool {
        false
    }
    /// The scan's row-group tracker when every output partition's batches come, one by one
    /// and unmerged, from a scan that claims whole row groups with disjoint ranges of a key
    /// column (see [`key_segments`]). Filters and projections pass it on.
    fn key_segments(&self) -> Option<Arc<key_segments::KeySegments>> {
        None
    }
    /// The stored result a cache hit hands over unread instead of streaming it (only the
    /// root of a plan is asked; see `CacheSettings::defer_hits`).
    fn stored_result(&self) -> Option<Arc<ooc_io::cache::CachedResult>> {
        None
    }
}

/// Wrap a stream so that output rows, batches and time spent are recorded in `metrics`.
pub(crate) fn instrument(stream: BatchStream, metrics: Arc<OperatorMetrics>) -> BatchStream {
    Box::new(InstrumentedStream {
        inner: stream,
        metrics,
    })
}

struct InstrumentedStream {
    inner: BatchStream,
    metrics: Arc<OperatorMetrics>,
}

impl Iterator for InstrumentedStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = Instant::now();
        let item = self.inner.next();
        self.metrics.add_elapsed(start.elapsed());
        if let Some(Ok(batch)) = &item {
            self.metrics.add_output(batch.num_rows());
        }
        item
    }
}
