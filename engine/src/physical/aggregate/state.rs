//! The aggregation table: group keys ([`GroupValues`]) and one accumulator per aggregate,
//! fed raw rows (partial, single) or state rows (final), taken out as final values or as
//! state rows (for a spill, a partial flush or the final phase).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;

use super::accumulator::{create_accumulator, GroupAccumulator};
use super::group_values::GroupValues;
use super::AggregateExec;
use crate::error::Result;
use crate::eval::{normalize_zero_array, ExprCache};
use crate::memory::MemoryReservation;

pub(super) struct AggregateState {
    pub(super) exec: Arc<AggregateExec>,
    pub(super) groups: GroupValues,
    pub(super) accumulators: Vec<Box<dyn GroupAccumulator>>,
    pub(super) reservation: MemoryReservation,
    pub(super) group_indices: Vec<u32>,
    pub(super) cache: ExprCache,
}

impl AggregateState {
    pub(super) fn new(exec: Arc<AggregateExec>, reservation: MemoryReservation) -> Result<Self> {
        let mut state = Self {
            groups: GroupValues::try_new(&exec.group_types)?,
            accumulators: Vec::new(),
            reservation,
            group_indices: Vec::new(),
            cache: ExprCache::for_exprs(
                exec.group_exprs
                    .iter()
                    .chain(exec.aggregates.iter().flat_map(|a| &a.args)),
            ),
            exec,
        };
        state.reset()?;
        Ok(state)
    }

    /// A fresh, empty table (buffers of the old one are released).
    pub(super) fn reset(&mut self) -> Result<()> {
        // After `take` the groups are empty; the single-key table keeps its capacity for the
        // next round (it is counted in `size`, so the reservation covers it).
        if !self.groups.is_empty() || !self.groups.reusable() {
            self.groups = GroupValues::try_new(&self.exec.group_types)?;
        }
        self.accumulators = self
            .exec
            .aggregates
            .iter()
            .map(|a| {
                create_accumulator(
                    a.func,
                    a.distinct,
                    &a.input_type,
                    &a.arg_types,
                    &a.output_type,
                )
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    pub(super) fn size(&self) -> usize {
        self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// Add raw input rows.
    pub(super) fn consume_raw(&mut self, batch: &RecordBatch) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        let n = batch.num_rows();
        let cache = &mut self.cache;
        cache.clear();
        let keys = exec
            .group_exprs
            .iter()
            .map(|e| normalize_zero_array(e.evaluate_cached(batch, cache)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        self.groups.intern(&keys, n, &mut self.group_indices)?;
        let total = self.groups.len();
        for (spec, acc) in exec.aggregates.iter().zip(self.accumulators.iter_mut()) {
            let values = spec
                .args
                .iter()
                .map(|e| e.evaluate_cached(batch, &mut self.cache)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            acc.update(&values, &self.group_indices, total)?;
        }
        Ok(())
    }

    /// Merge partial states: the group keys come first, then each aggregate's state columns.
    pub(super) fn consume_states(&mut self, batch: &RecordBatch) -> Result<()> {
        let exec = Arc::clone(&self.exec);
        let n = batch.num_rows();
        let width = exec.group_types.len();
        let keys = batch.columns()[..width].to_vec();
        self.groups.intern(&keys, n, &mut self.group_indices)?;
        let total = self.groups.len();
        let mut column = width;
        for (spec, acc) in exec.aggregates.iter().zip(self.accumulators.iter_mut()) {
            let states = batch.columns()[column..column + spec.state_width].to_vec();
            column += spec.state_width;
            acc.merge(&states, &self.group_indices, total)?;
        }
        Ok(())
    }

    /// Every row of a raw batch as its own partial state row (no hashing).
    pub(super) fn row_states(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let exec = Arc::clone(&self.exec);
        let n = batch.num_rows();
        let cache = &mut self.cache;
        cache.clear();
        let mut columns = exec
            .group_exprs
            .iter()
            .map(|e| normalize_zero_array(e.evaluate_cached(batch, cache)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let groups: Vec<u32> = (0..n as u32).collect();
        for spec in &exec.aggregates {
            let mut acc = create_accumulator(
                spec.func,
                spec.distinct,
                &spec.input_type,
                &spec.arg_types,
                &spec.output_type,
            )?;
            let values = spec
                .args
                .iter()
                .map(|e| e.evaluate_cached(batch, &mut self.cache)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            acc.update(&values, &groups, n)?;
            acc.ensure_groups(n);
            columns.extend(acc.state()?);
        }
        conform(columns, &exec.state_schema, n)
    }

    /// Emit every group, as partial states (`as_state`) or final values, and empty the table.
    pub(super) fn take(&mut self, as_state: bool) -> Result<RecordBatch> {
        let exec = Arc::clone(&self.exec);
        if exec.group_exprs.is_empty() {
            // A global aggregate always has its one group, even without input.
            self.groups.ensure_global_group();
        }
        let total = self.groups.len();
        let mut columns = self.groups.take_keys()?;
        for acc in &mut self.accumulators {
            // Make sure every accumulator covers every group (e.g. global group without input).
            acc.ensure_groups(total);
            if as_state {
                columns.extend(acc.state()?);
            } else {
                columns.push(acc.evaluate()?);
            }
        }
        let schema = if as_state {
            &exec.state_schema
        } else {
            &exec.schema
        };
        conform(columns, schema, total)
    }
}

/// A batch of `schema` from `columns`, casting any column whose type differs (accumulators
/// produce their natural types; the plan may have typed the output wider).
pub(super) fn conform(
    columns: Vec<ArrayRef>,
    schema: &SchemaRef,
    rows: usize,
) -> Result<RecordBatch> {
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                crate::eval::cast_array(&c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}
