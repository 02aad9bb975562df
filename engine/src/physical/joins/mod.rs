//! Joins: a hash join for equi-joins and a nested loop join for everything else.
//!
//! Both operators have a **build** input, which they buffer (and reserve in the memory pool),
//! and a **probe** input, which they stream partition by partition: the probe side keeps its
//! partitioning, so a join sits inside a parallel pipeline (`scan → filter → probe → partial
//! aggregate`) and only the build side is collected into one place. The physical planner
//! chooses the smaller input (by estimated rows) as the build side and maps the logical join
//! type onto [`PhysicalJoinType`], which says what happens to unmatched rows of each side.
//!
//! Output batches are bounded: a probe batch whose keys match many build rows is answered in
//! several chunks of at most `4 × batch_size` pairs, and a cross product is produced a few
//! probe rows at a time.
//!
//! NULL semantics are SQL's: a NULL key never equals anything, so rows with a NULL key never
//! match (they are still emitted by outer and anti joins); the null-aware anti join of
//! `NOT IN` additionally returns nothing once the build side holds a NULL key.
//!
//! Build rows are gathered into one batch and indexed in 16 hash partitions by their key's
//! hash (each partition has its own chained table: one head per distinct key, a `next` link
//! per row). Under memory pressure the hash join becomes a grace hash join: partitions that
//! do not fit are written out with the probe rows that belong to them and joined afterwards,
//! one at a time (see `hash_join`).

mod hash_join;
mod nested_loop;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;

use crate::error::Result;

pub(crate) use hash_join::{HashJoinExec, KeySetUse};
pub(crate) use nested_loop::NestedLoopJoinExec;

/// Which input a join output column comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinSide {
    /// The streamed input.
    Probe,
    /// The buffered input.
    Build,
}

/// Join semantics relative to the probe (streamed) and build (buffered) inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PhysicalJoinType {
    /// Matching pairs.
    Inner,
    /// Matching pairs and unmatched probe rows (NULL build columns).
    ProbeOuter,
    /// Matching pairs and, at the end, unmatched build rows (NULL probe columns).
    BuildOuter,
    /// Both of the above.
    FullOuter,
    /// Probe rows with at least one match, once each.
    ProbeSemi,
    /// Probe rows without a match.
    ProbeAnti,
    /// `NOT IN`: every probe row if the build side is empty; none if it holds a NULL key;
    /// otherwise probe rows with a non-NULL key and no match.
    ProbeAntiNullAware,
    /// Build rows matched by some probe row, once each, at the end.
    BuildSemi,
    /// Build rows never matched, at the end.
    BuildAnti,
    /// Scalar subquery: like [`ProbeOuter`](Self::ProbeOuter), but more than one match for a
    /// probe row is an error.
    ProbeSingle,
}

impl PhysicalJoinType {
    /// True when unmatched probe rows are dropped (so the probe scan may skip rows whose key
    /// cannot match).
    pub(crate) fn drops_unmatched_probe_rows(self) -> bool {
        matches!(
            self,
            PhysicalJoinType::Inner
                | PhysicalJoinType::BuildOuter
                | PhysicalJoinType::ProbeSemi
                | PhysicalJoinType::BuildSemi
        )
    }

    /// True when the build side emits rows after probing finished.
    pub(crate) fn emits_build_rows_at_end(self) -> bool {
        matches!(
            self,
            PhysicalJoinType::BuildOuter
                | PhysicalJoinType::FullOuter
                | PhysicalJoinType::BuildSemi
                | PhysicalJoinType::BuildAnti
        )
    }
}

/// Assemble output rows from index pairs; a NULL index yields NULL columns for that side.
fn assemble(
    schema: &SchemaRef,
    output: &[(JoinSide, usize)],
    probe: Option<&RecordBatch>,
    probe_idx: &UInt32Array,
    build: &RecordBatch,
    build_idx: &UInt32Array,
) -> Result<RecordBatch> {
    let rows = probe_idx.len().max(build_idx.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(output.len());
    for (i, (side, index)) in output.iter().enumerate() {
        let field = schema.field(i);
        let column = match side {
            JoinSide::Probe => match probe {
                Some(p) => take(p.column(*index).as_ref(), probe_idx, None)?,
                None => arrow::array::new_null_array(field.data_type(), rows),
            },
            JoinSide::Build if build_idx.null_count() == build_idx.len() => {
                arrow::array::new_null_array(field.data_type(), rows)
            }
            JoinSide::Build => take(build.column(*index).as_ref(), build_idx, None)?,
        };
        columns.push(column);
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Probe and build columns side by side, for evaluating a residual filter on pairs.
fn pair_batch(
    probe: &RecordBatch,
    probe_idx: &UInt32Array,
    build: &RecordBatch,
    build_idx: &UInt32Array,
) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in probe.schema().fields().iter().zip(probe.columns()) {
        fields.push(Arc::new(f.as_ref().clone().with_nullable(true)));
        columns.push(take(c.as_ref(), probe_idx, None)?);
    }
    for (f, c) in build.schema().fields().iter().zip(build.columns()) {
        fields.push(Arc::new(f.as_ref().clone().with_nullable(true)));
        columns.push(take(c.as_ref(), build_idx, None)?);
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(probe_idx.len())),
    )?)
}
