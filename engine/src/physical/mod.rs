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

pub mod aggregate;
pub mod coalesce;
pub mod empty;
pub mod expr;
pub mod filter;
pub mod hashing;
pub mod in_place;
pub mod joins;
pub mod key_segments;
pub mod limit;
pub mod materialize;
pub mod memory_table;
pub mod planner;
pub mod project;
pub mod repartition;
pub mod scan;
pub mod sort;
pub mod sort_order;
mod spool;
pub mod topk;
pub mod union;

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::memory::{MemoryPool, SpillManager};
use crate::metrics::OperatorMetrics;

/// A stream of record batches.
pub type BatchStream = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// Progress of a running query: morsels (row-group slices) done out of the total planned.
#[derive(Debug, Default)]
pub struct Progress {
    /// Morsels planned.
    pub total: AtomicU64,
    /// Morsels finished or skipped.
    pub done: AtomicU64,
    /// Rows read from scans.
    pub rows: AtomicU64,
}

/// Per-query execution state shared by all operators.
#[derive(Debug)]
pub struct TaskContext {
    /// The query's memory budget.
    pub memory_pool: Arc<MemoryPool>,
    /// Target rows per batch.
    pub batch_size: usize,
    /// Worker threads (partitions per scan).
    pub threads: usize,
    /// Maximum rows per morsel: a larger row group is read in slices of this size.
    pub morsel_rows: usize,
    /// Compressed bytes read from Parquet files.
    pub bytes_read: Arc<AtomicU64>,
    /// Progress counters for progress bars.
    pub progress: Arc<Progress>,
    /// Set to cancel the query; operators stop at the next batch.
    pub cancelled: Arc<AtomicBool>,
    /// Where operators write spill files (created on first use, removed with the query).
    pub spill: Arc<SpillManager>,
}

impl TaskContext {
    /// Fail with [`EngineError::Cancelled`] if the query was cancelled.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A node of a physical plan.
pub trait ExecutionPlan: Debug + Send + Sync {
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
}

/// A view column concatenated from more data buffers than this is compacted into new ones.
const MAX_VIEW_BUFFERS: usize = 32;

/// Concatenate batches column by column, releasing each input column once it is copied, so
/// the transient extra memory is one column rather than the whole batch.
///
/// Concatenating view columns (`Utf8View`, `BinaryView`) copies the views but keeps every
/// input's data buffers: a join build side gathered from 250 batches had 250 buffers per
/// string column, and every batch taken from it afterwards (each probe output, each spill
/// partition) cloned and dropped that list, per column and per batch: in TPC-H Q16 under
/// 256MB those clones and drops were the aggregate spill thread's two hottest functions. Such
/// columns are compacted (their strings copied into a few new buffers) once the list grows
/// past [`MAX_VIEW_BUFFERS`].
pub fn concat_releasing(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    if batches.len() == 1 {
        if let Some(batch) = batches.into_iter().next() {
            return Ok(batch);
        }
        return Ok(RecordBatch::new_empty(std::sync::Arc::clone(schema)));
    }
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let width = schema.fields().len();
    let mut columns_of: Vec<Vec<ArrayRef>> = (0..width).map(|_| Vec::new()).collect();
    for batch in batches {
        for (i, c) in batch.columns().iter().enumerate() {
            columns_of[i].push(std::sync::Arc::clone(c));
        }
    }
    let mut out = Vec::with_capacity(width);
    for arrays in columns_of.iter_mut() {
        let refs: Vec<&dyn arrow::array::Array> = arrays.iter().map(|a| a.as_ref()).collect();
        let column = if refs.is_empty() {
            return Ok(RecordBatch::new_empty(std::sync::Arc::clone(schema)));
        } else {
            concat(&refs)?
        };
        arrays.clear();
        out.push(with_few_view_buffers(column));
    }
    Ok(RecordBatch::try_new_with_options(
        std::sync::Arc::clone(schema),
        out,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// `column`, with its strings copied into compact buffers if it is a view column holding
/// more than [`MAX_VIEW_BUFFERS`] data buffers.
fn with_few_view_buffers(column: ArrayRef) -> ArrayRef {
    compact_view_column(&column, |_, buffers| buffers.len() > MAX_VIEW_BUFFERS).unwrap_or(column)
}

/// A compacted copy of `column` (strings copied into new buffers) when it is a view column
/// and `compact(bytes used, data buffers)` says so; `None` otherwise.
fn compact_view_column(
    column: &ArrayRef,
    compact: impl Fn(usize, &[arrow::buffer::Buffer]) -> bool,
) -> Option<ArrayRef> {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;
    match column.data_type() {
        DataType::Utf8View => {
            let a = column.as_string_view();
            compact(a.total_buffer_bytes_used(), a.data_buffers())
                .then(|| Arc::new(a.gc()) as ArrayRef)
        }
        DataType::BinaryView => {
            let a = column.as_binary_view();
            compact(a.total_buffer_bytes_used(), a.data_buffers())
                .then(|| Arc::new(a.gc()) as ArrayRef)
        }
        _ => None,
    }
}

/// Copy the strings of view columns (`Utf8View`, `BinaryView`) whose data buffers are mostly
/// unreferenced into compact buffers.
///
/// A view array produced by `filter` or `take` keeps every data buffer of its source alive: a
/// few rows that survive a selective filter can pin whole decoded pages. Operators that hold
/// batches (join build sides, sorts, materialized CTEs) compact them first, so what they hold
/// (and account for) is what they use.
///
/// A column is compacted when its buffers hold more than twice the bytes it uses plus 32 KiB.
pub fn compact_views(batch: &RecordBatch) -> RecordBatch {
    const FACTOR: usize = 2;
    const SLACK: usize = 32 * 1024;
    let wasteful = |used: usize, buffers: &[arrow::buffer::Buffer]| {
        let held: usize = buffers.iter().map(|b| b.len()).sum();
        held > FACTOR * used + SLACK
    };
    let mut changed = false;
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match compact_view_column(c, wasteful) {
            Some(compacted) => {
                changed = true;
                compacted
            }
            None => Arc::clone(c),
        })
        .collect();
    if !changed {
        return batch.clone();
    }
    RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .unwrap_or_else(|_| batch.clone())
}

/// Bytes of the buffer ranges a batch's arrays actually use.
///
/// `get_array_memory_size` counts the capacity of every buffer an array points into, once per
/// array: batches read back from IPC files, whose arrays may all be slices of one message
/// body, would count that body once per column. Operators that read spill files account with
/// this instead.
pub fn used_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| used_bytes_of(&c.to_data()))
        .sum()
}

/// [`used_bytes`], except that a string-view column counts only the data bytes its rows
/// reference, not every buffer it points into: the size of the batch's values once compacted.
/// Spill files report their raw size with this.
pub fn referenced_bytes(batch: &RecordBatch) -> usize {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;
    batch
        .columns()
        .iter()
        .map(|c| {
            let nulls = c.nulls().map_or(0, |n| n.buffer().len());
            match c.data_type() {
                DataType::Utf8View => {
                    let a = c.as_string_view();
                    a.views().inner().len() + a.total_buffer_bytes_used() + nulls
                }
                DataType::BinaryView => {
                    let a = c.as_binary_view();
                    a.views().inner().len() + a.total_buffer_bytes_used() + nulls
                }
                _ => used_bytes_of(&c.to_data()),
            }
        })
        .sum()
}

fn used_bytes_of(data: &arrow::array::ArrayData) -> usize {
    data.buffers().iter().map(|b| b.len()).sum::<usize>()
        + data.nulls().map_or(0, |n| n.buffer().len())
        + data.child_data().iter().map(used_bytes_of).sum::<usize>()
}

/// Wrap a stream so that output rows, batches and time spent are recorded in `metrics`.
pub fn instrument(stream: BatchStream, metrics: Arc<OperatorMetrics>) -> BatchStream {
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

/// Render a physical plan as an indented tree; with `analyze`, include metrics.
pub fn display_plan(plan: &Arc<dyn ExecutionPlan>, analyze: bool) -> String {
    let mut out = String::new();
    display_node(plan, analyze, 0, &mut out);
    out
}

fn display_node(plan: &Arc<dyn ExecutionPlan>, analyze: bool, depth: usize, out: &mut String) {
    use crate::metrics::{format_bytes, format_duration};
    let indent = "  ".repeat(depth);
    let details = plan.details();
    out.push_str(&format!("{indent}{}", plan.name()));
    if !details.is_empty() {
        out.push_str(&format!(": {details}"));
    }
    if plan.grows_with_input() {
        out.push_str(if plan.can_spill() {
            " [may spill]"
        } else {
            " [memory grows with input, cannot spill]"
        });
    }
    out.push('\n');
    if analyze {
        let m = plan.metrics();
        let children_time: std::time::Duration =
            plan.children().iter().map(|c| c.metrics().elapsed()).sum();
        let own = m.elapsed().saturating_sub(children_time);
        let mut line = format!(
            "{indent}  ↳ rows_out={} batches={} time={} (incl. inputs {}) peak_mem={}",
            m.rows_out(),
            m.batches_out(),
            format_duration(own),
            format_duration(m.elapsed()),
            format_bytes(m.memory_peak())
        );
        if m.rows_in() > 0 {
            line.push_str(&format!(" rows_in={}", m.rows_in()));
        }
        if m.spill_count() > 0 {
            line.push_str(&format!(
                " spills={} spilled_rows={} spilled={} (raw {}) spill_time={}",
                m.spill_count(),
                m.spilled_rows(),
                format_bytes(m.spilled_bytes()),
                format_bytes(m.spilled_raw_bytes()),
                format_duration(m.spill_time())
            ));
        }
        for (name, value) in m.extra() {
            line.push_str(&format!(" {name}={value}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    for child in plan.children() {
        display_node(&child, analyze, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Int32Array, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn concatenated_view_columns_keep_few_data_buffers() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("i", DataType::Int32, false),
        ]));
        let batch = |b: i32| {
            let strings = (0..10).map(|r| {
                (r % 4 != 0).then(|| format!("a string longer than twelve bytes {b} {r}"))
            });
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringViewArray::from_iter(strings)),
                    Arc::new(Int32Array::from_iter_values((0..10).map(|r| b * 10 + r))),
                ],
            )
            .unwrap()
        };
        let expected: Vec<Option<String>> = (0..100)
            .flat_map(|b| {
                (0..10).map(move |r| {
                    (r % 4 != 0).then(|| format!("a string longer than twelve bytes {b} {r}"))
                })
            })
            .collect();
        // 100 batches of one data buffer each: past the limit, compacted.
        let out = concat_releasing(&schema, (0..100).map(batch).collect()).unwrap();
        let s = out.column(0).as_string_view();
        assert!(
            s.data_buffers().len() <= MAX_VIEW_BUFFERS,
            "{}",
            s.data_buffers().len()
        );
        let got: Vec<Option<String>> = s.iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(got, expected);
        assert_eq!(out.column(1).len(), 1000);
        // A few batches keep their buffers as they are.
        let out = concat_releasing(&schema, (0..3).map(batch).collect()).unwrap();
        assert_eq!(out.column(0).as_string_view().data_buffers().len(), 3);
    }
}
