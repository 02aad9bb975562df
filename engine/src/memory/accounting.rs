//! How many bytes a batch holds, as operators account for it.
//!
//! Arrow's `get_array_memory_size` counts the capacity of every buffer an array points into,
//! once per array; for batches that share buffers (slices, IPC reads) that overstates what is
//! held. The functions here count the byte ranges actually used.

use arrow::array::RecordBatch;

/// Bytes of the buffer ranges a batch's arrays actually use.
///
/// `get_array_memory_size` counts the capacity of every buffer an array points into, once per
/// array: batches read back from IPC files, whose arrays may all be slices of one message
/// body, would count that body once per column. Operators that read spill files account with
/// this instead.
pub(crate) fn used_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| used_bytes_of(&c.to_data()))
        .sum()
}

/// [`used_bytes`], except that a string-view column counts only the data bytes its rows
/// reference, not every buffer it points into: the size of the batch's values once compacted.
/// Spill files report their raw size with this.
pub(crate) fn referenced_bytes(batch: &RecordBatch) -> usize {
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
