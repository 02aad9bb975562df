//! Sort: buffers its whole input, then emits it ordered by the sort keys.
//!
//! The buffered batches are reserved from the memory pool; with a budget that is too small the
//! sort fails with an error naming it (sorted runs that spill to disk come with the
//! bounded-memory work).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{
    concat_batches, lexsort_to_indices, take_record_batch, SortColumn, SortOptions,
};
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::memory::MemoryReservation;
use crate::metrics::OperatorMetrics;
use crate::physical::expr::{normalize_zero_array, PhysicalExpr};
use crate::physical::{compact_views, instrument, BatchStream, ExecutionPlan, TaskContext};

/// A physical sort key.
#[derive(Clone, Debug)]
pub struct PhysicalSortKey {
    /// Key expression over the input.
    pub expr: PhysicalExpr,
    /// Direction and null placement.
    pub options: SortOptions,
    /// Text for EXPLAIN.
    pub display: String,
}

/// Sort `batch` by `keys`, keeping only the first `limit` rows if given.
pub fn sort_batch(
    batch: &RecordBatch,
    keys: &[PhysicalSortKey],
    limit: Option<usize>,
) -> Result<RecordBatch> {
    if batch.num_rows() == 0 {
        return Ok(batch.clone());
    }
    let n = batch.num_rows();
    let columns = keys
        .iter()
        .map(|k| {
            Ok(SortColumn {
                values: normalize_zero_array(k.expr.evaluate(batch)?.into_array(n)?)?,
                options: Some(k.options),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let indices = lexsort_to_indices(&columns, limit)?;
    Ok(take_record_batch(batch, &indices)?)
}

/// Full sort of a single-partition input.
#[derive(Debug)]
pub struct SortExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<PhysicalSortKey>,
    metrics: Arc<OperatorMetrics>,
}

impl SortExec {
    /// Sort `input` (one partition) by `keys`.
    pub fn new(input: Arc<dyn ExecutionPlan>, keys: Vec<PhysicalSortKey>) -> Self {
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
        1
    }

    fn grows_with_input(&self) -> bool {
        true
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let mut input = Some(Arc::clone(&self.input).execute(partition, Arc::clone(&ctx))?);
        let mut reservation =
            MemoryReservation::new(&ctx.memory_pool, "Sort", Some(Arc::clone(&self.metrics)));
        let batch_size = ctx.batch_size;
        let this = Arc::clone(&self);
        let mut sorted: Option<(RecordBatch, usize)> = None;
        let stream = std::iter::from_fn(move || {
            if let Some(source) = input.take() {
                let mut batches = Vec::new();
                for batch in source {
                    let batch = match batch {
                        Ok(b) => compact_views(&b),
                        Err(e) => return Some(Err(e)),
                    };
                    this.metrics.add_rows_in(batch.num_rows());
                    if let Err(e) = reservation.try_grow(batch.get_array_memory_size()) {
                        return Some(Err(e));
                    }
                    batches.push(batch);
                }
                let result = concat_batches(&this.input.schema(), &batches)
                    .map_err(Into::into)
                    .and_then(|all| {
                        drop(batches);
                        sort_batch(&all, &this.keys, None)
                    });
                match result {
                    Ok(b) => sorted = Some((b, 0)),
                    Err(e) => return Some(Err(e)),
                }
            }
            let (batch, offset) = sorted.as_mut()?;
            if *offset >= batch.num_rows() {
                sorted = None;
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

/// Evaluate sort keys as columns (used by top-k to read the k-th value).
pub fn key_columns(batch: &RecordBatch, keys: &[PhysicalSortKey]) -> Result<Vec<ArrayRef>> {
    keys.iter()
        .map(|k| k.expr.evaluate(batch)?.into_array(batch.num_rows()))
        .collect()
}
