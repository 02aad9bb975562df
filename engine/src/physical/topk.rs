//! Top-k: `ORDER BY ... LIMIT k` keeping only k rows, never the whole input.
//!
//! Incoming batches are buffered until they hold about as many rows as a batch (or k), then
//! merged with the current best k rows and cut back to k. Once k rows are known, the k-th
//! value of the first key is a bound no better row can violate: the operator publishes it as a
//! [`DynamicFilter`] predicate that the scan checks against row-group statistics before reading,
//! so whole row groups that cannot contribute are skipped.
//!
//! The k rows kept are compacted ([`compact_views`]): string views picked out of a batch still
//! point into its data buffers, so without that the k rows would hold (and account for) the
//! buffers of every batch they ever came from. TPC-H Q10 at SF10 counted 547 MiB for its 20
//! rows that way, and under `--memory-limit 1GB` sometimes failed for want of the rest.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use ooc_io::{CmpOp, PruneExpr};

use crate::error::Result;
use crate::memory::{MemoryPart, MemoryReservation};
use crate::metrics::OperatorMetrics;
use crate::physical::scan::DynamicFilter;
use crate::physical::sort::{key_columns, sort_batch, PhysicalSortKey};
use crate::physical::{compact_views, instrument, BatchStream, ExecutionPlan, TaskContext};

/// Where a top-k publishes its bound: the scan column its first key reads.
#[derive(Clone, Debug)]
pub(crate) struct TopKPublisher {
    /// Shared with the scan.
    pub filter: Arc<DynamicFilter>,
    /// Scan column name of the first sort key.
    pub column: String,
    /// First slot of this operator (one slot per partition).
    pub first_slot: usize,
}

/// Per-partition top-k.
#[derive(Debug)]
pub(crate) struct TopKExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<PhysicalSortKey>,
    k: usize,
    publisher: Option<TopKPublisher>,
    metrics: Arc<OperatorMetrics>,
}

impl TopKExec {
    /// Keep the first `k` rows of each input partition in `keys` order.
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<PhysicalSortKey>,
        k: usize,
        publisher: Option<TopKPublisher>,
    ) -> Self {
        Self {
            input,
            keys,
            k,
            publisher,
            metrics: Arc::default(),
        }
    }
}

impl ExecutionPlan for TopKExec {
    fn name(&self) -> &str {
        "TopK"
    }

    fn details(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| k.display.clone()).collect();
        let mut out = format!("k={} keys=[{}]", self.k, keys.join(", "));
        if let Some(p) = &self.publisher {
            out.push_str(&format!(" publishes bound on scan column {}", p.column));
        }
        out
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

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let mut input = Some(Arc::clone(&self.input).execute(partition, Arc::clone(&ctx))?);
        let mut reservation = MemoryReservation::new(
            &ctx.memory_pool,
            format!("TopK[partition {partition}]"),
            MemoryPart::Rows,
            Some(Arc::clone(&self.metrics)),
        );
        let this = Arc::clone(&self);
        let compact_at = ctx.batch_size.max(self.k);
        let batch_size = ctx.batch_size;
        let mut result: Option<(RecordBatch, usize)> = None;
        let stream = std::iter::from_fn(move || {
            if let Some(source) = input.take() {
                let mut best: Option<RecordBatch> = None;
                let mut pending: Vec<RecordBatch> = Vec::new();
                let mut pending_rows = 0;
                for batch in source {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => return Some(Err(e)),
                    };
                    this.metrics.add_rows_in(batch.num_rows());
                    pending_rows += batch.num_rows();
                    pending.push(batch);
                    if pending_rows >= compact_at {
                        match this.compact(best.take(), std::mem::take(&mut pending), partition) {
                            Ok(b) => best = Some(b),
                            Err(e) => return Some(Err(e)),
                        }
                        pending_rows = 0;
                        let held = best.as_ref().map_or(0, |b| b.get_array_memory_size());
                        if let Err(e) = reservation.try_resize_or_spill_others(held) {
                            return Some(Err(e));
                        }
                    }
                }
                match this.compact(best.take(), pending, partition) {
                    Ok(b) => result = Some((b, 0)),
                    Err(e) => return Some(Err(e)),
                }
            }
            let (batch, offset) = result.as_mut()?;
            if *offset >= batch.num_rows() {
                result = None;
                reservation.free();
                return None;
            }
            let len = batch_size.min(batch.num_rows() - *offset);
            let out = batch.slice(*offset, len);
            *offset += len;
            Some(Ok(out))
        });
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

impl TopKExec {
    fn compact(
        &self,
        best: Option<RecordBatch>,
        pending: Vec<RecordBatch>,
        partition: usize,
    ) -> Result<RecordBatch> {
        let mut batches: Vec<RecordBatch> = best.into_iter().collect();
        batches.extend(pending);
        let all = concat_batches(&self.input.schema(), &batches)?;
        drop(batches);
        let top = compact_views(&sort_batch(&all, &self.keys, Some(self.k))?);
        drop(all);
        if top.num_rows() == self.k && self.k > 0 {
            self.publish(&top, partition)?;
        }
        Ok(top)
    }

    fn publish(&self, top: &RecordBatch, partition: usize) -> Result<()> {
        let Some(publisher) = &self.publisher else {
            return Ok(());
        };
        let first = &self.keys[0];
        let column = key_columns(&top.slice(self.k - 1, 1), std::slice::from_ref(first))?.remove(0);
        let nulls_first = first.options.nulls_first;
        let predicate = if column.is_null(0) {
            if !nulls_first {
                return Ok(());
            }
            PruneExpr::IsNull {
                column: publisher.column.clone(),
                negated: false,
            }
        } else {
            let op = if first.options.descending {
                CmpOp::GtEq
            } else {
                CmpOp::LtEq
            };
            let compare = PruneExpr::Compare {
                column: publisher.column.clone(),
                op,
                value: column,
            };
            if nulls_first {
                PruneExpr::Or(vec![
                    compare,
                    PruneExpr::IsNull {
                        column: publisher.column.clone(),
                        negated: false,
                    },
                ])
            } else {
                compare
            }
        };
        publisher
            .filter
            .publish(publisher.first_slot + partition, predicate);
        Ok(())
    }
}
