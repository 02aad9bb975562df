//! Materialize: computes its input once and replays it to every consumer.
//!
//! A common table expression referenced more than once (TPC-H Q15's `revenue0`) is planned as
//! one `MaterializeExec` shared by all references. The first consumer to open a stream runs the
//! input to completion while the others wait; the batches are held (and reserved in the memory
//! pool) until the query ends, and each consumer reads them in order.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::memory::MemoryReservation;
use crate::metrics::OperatorMetrics;
use crate::physical::{compact_views, instrument, BatchStream, ExecutionPlan, TaskContext};

type Computed = std::result::Result<Arc<Vec<RecordBatch>>, String>;

/// Computes its (single-partition) input once; every `execute` replays the result.
#[derive(Debug)]
pub struct MaterializeExec {
    input: Arc<dyn ExecutionPlan>,
    name: String,
    state: Mutex<Option<(Computed, Option<MemoryReservation>)>>,
    metrics: Arc<OperatorMetrics>,
}

impl MaterializeExec {
    /// Materialize `input` (one partition); `name` is shown in plans.
    pub fn new(input: Arc<dyn ExecutionPlan>, name: String) -> Self {
        Self {
            input,
            name,
            state: Mutex::new(None),
            metrics: Arc::default(),
        }
    }

    fn compute(&self, ctx: &Arc<TaskContext>) -> Result<Arc<Vec<RecordBatch>>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((computed, _)) = state.as_ref() {
            return computed.clone().map_err(EngineError::Execution);
        }
        let mut reservation = MemoryReservation::new(
            &ctx.memory_pool,
            format!("Materialize({})", self.name),
            Some(Arc::clone(&self.metrics)),
        );
        let result = (|| -> Result<Vec<RecordBatch>> {
            let mut batches = Vec::new();
            for batch in Arc::clone(&self.input).execute(0, Arc::clone(ctx))? {
                let batch = compact_views(&batch?);
                self.metrics.add_rows_in(batch.num_rows());
                reservation.try_grow_or_spill_others(batch.get_array_memory_size())?;
                batches.push(batch);
            }
            Ok(batches)
        })();
        match result {
            Ok(batches) => {
                let batches = Arc::new(batches);
                *state = Some((Ok(Arc::clone(&batches)), Some(reservation)));
                Ok(batches)
            }
            Err(e) => {
                *state = Some((Err(e.to_string()), None));
                Err(e)
            }
        }
    }
}

impl ExecutionPlan for MaterializeExec {
    fn name(&self) -> &str {
        "Materialize"
    }

    fn details(&self) -> String {
        format!("{} (computed once, shared)", self.name)
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

    fn execute(self: Arc<Self>, _partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let this = Arc::clone(&self);
        let mut batches: Option<Arc<Vec<RecordBatch>>> = None;
        let mut next = 0;
        let stream = std::iter::from_fn(move || {
            if batches.is_none() {
                match this.compute(&ctx) {
                    Ok(b) => batches = Some(b),
                    Err(e) => return Some(Err(e)),
                }
            }
            let all = batches.as_ref()?;
            let batch = all.get(next)?.clone();
            next += 1;
            Some(Ok(batch))
        });
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
