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
use std::str::FromStr;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type, SchemaRef};

use crate::error::{EngineError, Result};

fn cast_array(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    Ok(arrow::compute::cast(array, to)?)
}

/// A column type as users write it (the sink sees Arrow types only).
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB".into(),
        other => other.to_string(),
    }
}

/// The header's total size: magic (6), version (2), length (2) and the dict padded with spaces
/// to a newline, a multiple of 64 bytes as the format asks.
const HEADER_BYTES: usize = 128;

/// Element types of a `.npy` file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NpyType {
    /// `float32` (`<f4`).
    #[default]
    Float32,
    /// `float64` (`<f8`).
    Float64,
    /// `int32` (`<i4`).
    Int32,
    /// `int64` (`<i8`).
    Int64,
}

impl NpyType {
    fn descr(self) -> &'static str {
        match self {
            NpyType::Float32 => "<f4",
            NpyType::Float64 => "<f8",
            NpyType::Int32 => "<i4",
            NpyType::Int64 => "<i8",
        }
    }

    fn arrow(self) -> DataType {
        match self {
            NpyType::Float32 => DataType::Float32,
            NpyType::Float64 => DataType::Float64,
            NpyType::Int32 => DataType::Int32,
            NpyType::Int64 => DataType::Int64,
        }
    }

    fn width(self) -> usize {
        match self {
            NpyType::Float32 | NpyType::Int32 => 4,
            NpyType::Float64 | NpyType::Int64 => 8,
        }
    }
}

impl FromStr for NpyType {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.to_lowercase().as_str() {
            "float32" | "f4" | "<f4" => NpyType::Float32,
            "float64" | "f8" | "<f8" => NpyType::Float64,
            "int32" | "i4" | "<i4" => NpyType::Int32,
            "int64" | "i8" | "<i8" => NpyType::Int64,
            other => {
                return Err(format!(
                    "unknown .npy dtype '{other}' (expected float32, float64, int32 or int64)"
                ))
            }
        })
    }
}

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

/// A column as `dtype`, or an error naming it when it holds a NULL or cannot be converted.
fn column_as(array: &ArrayRef, name: &str, dtype: NpyType) -> Result<ArrayRef> {
    if array.null_count() > 0 {
        return Err(EngineError::Execution(format!(
            "column '{name}' has NULLs, which a .npy array cannot hold; fill them (fill_null / \
             coalesce) or filter them out first"
        )));
    }
    // Dates and timestamps go through their integer representation.
    let array = match array.data_type() {
        DataType::Date32 => cast_array(array, &DataType::Int32)?,
        DataType::Timestamp(..) | DataType::Date64 => cast_array(array, &DataType::Int64)?,
        _ => array.clone(),
    };
    if !(array.data_type().is_numeric() || matches!(array.data_type(), DataType::Boolean)) {
        return Err(EngineError::Type(format!(
            "column '{name}' is {}, not a number: a .npy array holds numbers only",
            type_name(array.data_type())
        )));
    }
    cast_array(&array, &dtype.arrow())
}

/// Append `column`'s value at `row` (of type `dtype`) as little-endian bytes.
fn push_value(out: &mut Vec<u8>, column: &ArrayRef, row: usize, dtype: NpyType) {
    match dtype {
        NpyType::Float32 => out.extend_from_slice(
            &column
                .as_primitive::<Float32Type>()
                .value(row)
                .to_le_bytes(),
        ),
        NpyType::Float64 => out.extend_from_slice(
            &column
                .as_primitive::<Float64Type>()
                .value(row)
                .to_le_bytes(),
        ),
        NpyType::Int32 => {
            out.extend_from_slice(&column.as_primitive::<Int32Type>().value(row).to_le_bytes())
        }
        NpyType::Int64 => {
            out.extend_from_slice(&column.as_primitive::<Int64Type>().value(row).to_le_bytes())
        }
    }
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
    let mut buffer = Vec::new();
    for batch in batches {
        let batch = batch?;
        let converted = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| column_as(c, f.name(), dtype))
            .collect::<Result<Vec<_>>>()?;
        buffer.clear();
        buffer.reserve(batch.num_rows() * columns * dtype.width());
        for row in 0..batch.num_rows() {
            for column in &converted {
                push_value(&mut buffer, column, row, dtype);
            }
        }
        out.write_all(&buffer).map_err(io)?;
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
    use arrow::datatypes::{Field, Schema};

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
