//! Batch utilities operators share: concatenating batches without doubling their memory, and
//! compacting string-view columns whose buffers are mostly unreferenced.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat;
use arrow::datatypes::SchemaRef;

use crate::error::Result;

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
pub(crate) fn concat_releasing(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<RecordBatch> {
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
pub(crate) fn compact_views(batch: &RecordBatch) -> RecordBatch {
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

/// A copy of `batch` whose columns own buffers of exactly their size (string views: only the
/// bytes their rows reference).
pub(crate) fn owned_copy(batch: &RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, AsArray, UInt32Array};
    use arrow::datatypes::DataType;
    let rows = batch.num_rows();
    let identity = UInt32Array::from_iter_values(0..rows as u32);
    let columns = batch
        .columns()
        .iter()
        .map(|c| -> Result<ArrayRef> {
            Ok(match c.data_type() {
                DataType::Utf8View => Arc::new(c.as_string_view().gc()),
                DataType::BinaryView => Arc::new(c.as_binary_view().gc()),
                _ => arrow::compute::take(c.as_ref(), &identity, None)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
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
