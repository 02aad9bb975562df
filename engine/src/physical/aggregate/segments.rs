//! Segmented input: over a scan that hands each partition whole row groups with disjoint
//! ranges of a group key, the groups of a row group are final once the scan moves past it.
//! They are emitted and the table starts over; rows whose key is a boundary value shared with
//! another row group go to a side table, merged across partitions once every holder of the
//! value has delivered its states (see [`KeySegments`](crate::physical::key_segments::KeySegments)).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::DataType;

use super::state::AggregateState;
use super::stream::AggregateStream;
use crate::error::Result;
use crate::memory::{MemoryPart, MemoryReservation};
use crate::physical::ExecutionPlan;

impl AggregateStream {
    /// Segmented: send the rows of `batch` whose key the current segment shares with others
    /// to the side table; the rest is returned.
    pub(super) fn divert_shared_keys(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let Some((segments, key)) = self.segments.clone() else {
            return Ok(batch);
        };
        let shared = segments.shared_keys(self.segment);
        if shared.is_empty() {
            return Ok(batch);
        }
        let keys = self.exec.group_exprs[key]
            .evaluate(&batch)?
            .into_array(batch.num_rows())?;
        let mask = key_mask(&keys, shared)?;
        if mask.true_count() == 0 {
            return Ok(batch);
        }
        let diverted = arrow::compute::filter_record_batch(&batch, &mask)?;
        let side = match self.side.as_mut() {
            Some(side) => side,
            None => {
                let side = self.shared_key_table()?;
                self.side.insert(side)
            }
        };
        side.consume_raw(&diverted)?;
        let size = side.size();
        side.reservation.try_resize_or_spill_others(size)?;
        let rest = arrow::compute::not(&mask)?;
        Ok(arrow::compute::filter_record_batch(&batch, &rest)?)
    }

    /// Segmented: the input ended. Finish the last segment; the last partition to finish also
    /// merges the shared keys whose holders did not all deliver.
    pub(super) fn finish_segmented_input(&mut self) -> Result<()> {
        if self.segment != 0 {
            self.finish_segment(self.segment)?;
        }
        let Some((segments, _)) = self.segments.clone() else {
            return Ok(());
        };
        if let Some(waiting) = segments.finish_partition() {
            if !waiting.is_empty() {
                let merged = self.merge_deposits(waiting)?;
                self.queued.push(merged);
            }
        }
        Ok(())
    }

    /// An empty table for the groups of shared boundary keys, with a reservation of its own
    /// (they are few: the rows of at most two key values a row group).
    pub(super) fn shared_key_table(&self) -> Result<AggregateState> {
        let reservation = MemoryReservation::new(
            &self.ctx.memory_pool,
            format!(
                "{}[partition {}] shared keys",
                self.exec.name(),
                self.partition
            ),
            MemoryPart::Groups,
            Some(Arc::clone(&self.exec.metrics)),
        );
        AggregateState::new(Arc::clone(&self.exec), reservation)
    }

    /// Final values of the groups in deposited partial states.
    pub(super) fn merge_deposits(&mut self, states: Vec<RecordBatch>) -> Result<RecordBatch> {
        let mut merged = self.shared_key_table()?;
        for batch in &states {
            merged.consume_states(batch)?;
            let size = merged.size();
            merged.reservation.try_resize_or_spill_others(size)?;
        }
        drop(states);
        let out = merged.take(false)?;
        merged.reservation.free();
        Ok(out)
    }

    /// A segmented aggregate's input moved on from segment `finished`: every group of the
    /// table is final. Emit them (or, if the segment spilled, queue its partitions for
    /// merging), and deposit the side table's groups under their shared keys.
    pub(super) fn finish_segment(&mut self, finished: usize) -> Result<()> {
        if let Some((segments, key)) = self.segments.clone() {
            let states = match self.side.as_mut() {
                Some(side) if !side.groups.is_empty() => {
                    let states = side.take(true)?;
                    side.reset()?;
                    side.reservation.free();
                    Some(states)
                }
                _ => None,
            };
            for &value in segments.shared_keys(finished) {
                let rows = match &states {
                    Some(states) => {
                        let mask = key_mask(states.column(key), &[value])?;
                        let rows = arrow::compute::filter_record_batch(states, &mask)?;
                        (rows.num_rows() > 0).then_some(rows)
                    }
                    None => None,
                };
                if let Some(all) = segments.deposit(value, rows) {
                    if !all.is_empty() {
                        let merged = self.merge_deposits(all)?;
                        self.queued.push(merged);
                    }
                }
            }
        }
        self.rows_since_reset = 0;
        if self.spill.is_none() {
            let batch = self.state.take(false)?;
            self.state.reset()?;
            self.state.reservation.free();
            if batch.num_rows() > 0 {
                self.emit(batch);
            }
            return Ok(());
        }
        self.spill_table()?;
        self.flush_direct()?;
        self.direct = None;
        self.finish_spilling()
    }
}

/// Rows of the integer or date array `keys` whose value is one of `values` (never NULL).
pub(super) fn key_mask(keys: &ArrayRef, values: &[i64]) -> Result<arrow::array::BooleanArray> {
    use arrow::array::AsArray;
    let ints = match keys.data_type() {
        DataType::Int64 => Arc::clone(keys),
        _ => crate::eval::cast_array(keys, &DataType::Int64)?,
    };
    let ints = ints.as_primitive::<arrow::datatypes::Int64Type>();
    Ok(ints
        .iter()
        .map(|v| Some(v.is_some_and(|v| values.contains(&v))))
        .collect())
}
