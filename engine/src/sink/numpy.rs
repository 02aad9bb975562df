//! NumPy `.npy` files: the result as one 2-D array, row-major, of one numeric type, ready for
//! `np.load(path, mmap_mode="r")`.
//!
//! The file is written as the batches stream: each batch's columns are cast to the element
//! type and interleaved into rows, so no more than one batch is held. The header (format 1.0:
//! magic, version, a little-endian length, then a Python dict literal) must state the number
//! of rows, which is known only at the end: a fixed-size header is written first, with room
//! for any row count, and rewritten in place once the last row is out. NULLs have no place in
//! a NumPy array: a column holding one is an error that names it.

use std::io::{Seek, SeekFrom, Write};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::sink::matrix::{Matrix, NpyType};

/// The header's total size: magic (6), version (2), length (2) and the dict padded with spaces
/// to a newline, a multiple of 64 bytes as the format asks.
const HEADER_BYTES: usize = 128;

/// The header for `rows` × `columns` elements of `dtype`.
fn header(dtype: NpyType, rows: usize, columns: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {columns}), }}",
        dtype.descr()
    );
    let mut out = Vec::with_capacity(HEADER_BYTES);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&((HEADER_BYTES - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(HEADER_BYTES - 1, b' ');
    out.push(b'\n');
    out
}

/// Stream `batches` into `out` as a `.npy` 2-D array of `dtype`; returns the rows written.
pub(crate) fn write_npy<W: Write + Seek>(
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    dtype: NpyType,
    out: &mut W,
) -> Result<usize> {
    let io = |source: std::io::Error| EngineError::Output {
        path: "output".into(),
        source,
    };
    let columns = schema.fields().len();
    if columns == 0 {
        return Err(EngineError::Plan(
            "a .npy array needs at least one column".into(),
        ));
    }
    out.write_all(&header(dtype, 0, columns)).map_err(io)?;
    let mut rows = 0;
    for batch in batches {
        let batch = batch?;
        let matrix = Matrix::from_batches(std::slice::from_ref(&batch), dtype)?;
        out.write_all(matrix.as_bytes()).map_err(io)?;
        rows += batch.num_rows();
    }
    out.seek(SeekFrom::Start(0)).map_err(io)?;
    out.write_all(&header(dtype, rows, columns)).map_err(io)?;
    out.seek(SeekFrom::End(0)).map_err(io)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn rows_are_interleaved_after_a_header_that_states_the_shape() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Float64, false),
        ]));
        let batch = |a: Vec<i64>, b: Vec<f64>| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(a)),
                    Arc::new(Float64Array::from(b)),
                ],
            )
            .map_err(EngineError::from)
        };
        let mut out = Cursor::new(Vec::new());
        let rows = write_npy(
            Arc::clone(&schema),
            vec![batch(vec![1, 2], vec![0.5, 1.5]), batch(vec![3], vec![2.5])].into_iter(),
            NpyType::Float32,
            &mut out,
        )
        .unwrap();
        assert_eq!(rows, 3);
        let bytes = out.into_inner();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let text = std::str::from_utf8(&bytes[10..HEADER_BYTES]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"));
        assert!(text.ends_with('\n'));
        let values: Vec<f32> = bytes[HEADER_BYTES..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(values, vec![1.0, 0.5, 2.0, 1.5, 3.0, 2.5]);
    }

    #[test]
    fn nulls_and_strings_are_errors_that_name_the_column() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap();
        let err = write_npy(
            schema,
            vec![Ok(batch)].into_iter(),
            NpyType::Float64,
            &mut Cursor::new(Vec::new()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("column 'x' has NULLs"), "{err}");
        assert!("float16".parse::<NpyType>().is_err());
    }
}
