//! Numeric matrices: rows of a result as one row-major 2-D array of one element type, what
//! NumPy arrays, `.npy` files and model inputs are made of.
//!
//! Each column is converted to the element type with Arrow's cast kernel (dates become days,
//! timestamps their integer ticks, booleans 0/1), refusing values out of the type's range,
//! and then written with a stride into its place in the rows: the matrix is the only copy.
//! A matrix can be filled from several batches (the pieces of one exact-size batch), so
//! assembling a batch from pieces costs no separate copy. NULLs have no place in a matrix: a
//! column that holds one is an error naming it.

use std::str::FromStr;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::CastOptions;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};

use crate::error::{EngineError, Result};

/// Element types of a matrix (and of a `.npy` file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NpyType {
    /// `float32`.
    #[default]
    Float32,
    /// `float64`.
    Float64,
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `uint8`.
    UInt8,
    /// `uint16`.
    UInt16,
    /// `uint32`.
    UInt32,
    /// `uint64`.
    UInt64,
}

/// Every element type with its NumPy name.
const TYPES: [(NpyType, &str); 10] = [
    (NpyType::Float32, "float32"),
    (NpyType::Float64, "float64"),
    (NpyType::Int8, "int8"),
    (NpyType::Int16, "int16"),
    (NpyType::Int32, "int32"),
    (NpyType::Int64, "int64"),
    (NpyType::UInt8, "uint8"),
    (NpyType::UInt16, "uint16"),
    (NpyType::UInt32, "uint32"),
    (NpyType::UInt64, "uint64"),
];

impl NpyType {
    /// The NumPy name (`float32`).
    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("float32", |(_, name)| name)
    }

    /// The NumPy type string in this machine's byte order (`<f4`).
    pub fn descr(self) -> String {
        let order = if cfg!(target_endian = "little") {
            '<'
        } else {
            '>'
        };
        let kind = match self {
            NpyType::Float32 | NpyType::Float64 => 'f',
            NpyType::Int8 | NpyType::Int16 | NpyType::Int32 | NpyType::Int64 => 'i',
            _ => 'u',
        };
        format!("{order}{kind}{}", self.width())
    }

    /// The Arrow type of the elements.
    pub fn arrow(self) -> DataType {
        match self {
            NpyType::Float32 => DataType::Float32,
            NpyType::Float64 => DataType::Float64,
            NpyType::Int8 => DataType::Int8,
            NpyType::Int16 => DataType::Int16,
            NpyType::Int32 => DataType::Int32,
            NpyType::Int64 => DataType::Int64,
            NpyType::UInt8 => DataType::UInt8,
            NpyType::UInt16 => DataType::UInt16,
            NpyType::UInt32 => DataType::UInt32,
            NpyType::UInt64 => DataType::UInt64,
        }
    }

    /// Bytes per element.
    pub fn width(self) -> usize {
        match self {
            NpyType::Int8 | NpyType::UInt8 => 1,
            NpyType::Int16 | NpyType::UInt16 => 2,
            NpyType::Float32 | NpyType::Int32 | NpyType::UInt32 => 4,
            NpyType::Float64 | NpyType::Int64 | NpyType::UInt64 => 8,
        }
    }

    /// The element type that holds a column of `data_type` as it is: dates as `int32` days,
    /// timestamps as `int64`, booleans as `uint8`, decimals as `float64`; `None` for types
    /// that are not numbers.
    pub fn native(data_type: &DataType) -> Option<NpyType> {
        Some(match data_type {
            DataType::Boolean | DataType::UInt8 => NpyType::UInt8,
            DataType::Int8 => NpyType::Int8,
            DataType::Int16 => NpyType::Int16,
            DataType::Int32 | DataType::Date32 => NpyType::Int32,
            DataType::Int64
            | DataType::Date64
            | DataType::Timestamp(..)
            | DataType::Time64(_)
            | DataType::Duration(_) => NpyType::Int64,
            DataType::Time32(_) => NpyType::Int32,
            DataType::UInt16 => NpyType::UInt16,
            DataType::UInt32 => NpyType::UInt32,
            DataType::UInt64 => NpyType::UInt64,
            DataType::Float16 | DataType::Float32 => NpyType::Float32,
            DataType::Float64 | DataType::Decimal128(..) | DataType::Decimal256(..) => {
                NpyType::Float64
            }
            _ => return None,
        })
    }
}

impl FromStr for NpyType {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let lower = s.to_lowercase();
        let wanted = lower.trim_start_matches(['<', '=', '|']);
        TYPES
            .iter()
            // `float32`, or a type code without its byte order (`f4`).
            .find(|(t, name)| *name == wanted || t.descr()[1..] == *wanted)
            .map(|(t, _)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = TYPES.iter().map(|(_, n)| *n).collect();
                format!("unknown dtype '{s}' (expected one of {})", names.join(", "))
            })
    }
}

/// A column type as users write it.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB".into(),
        other => other.to_string(),
    }
}

/// `array` (the column `name`) as elements of `dtype`, or an error naming the column when it
/// holds a NULL, is not a number or has a value the type cannot hold.
pub(crate) fn column_as(array: &ArrayRef, name: &str, dtype: NpyType) -> Result<ArrayRef> {
    if array.null_count() > 0 {
        return Err(EngineError::Execution(format!(
            "column '{name}' has NULLs, which a numeric array cannot hold; fill them \
             (fill_null / coalesce) or filter them out first"
        )));
    }
    let Some(native) = NpyType::native(array.data_type()) else {
        return Err(EngineError::Type(format!(
            "column '{name}' is {}, not a number: a numeric array holds numbers only",
            type_name(array.data_type())
        )));
    };
    // Dates, times and timestamps go through their integer representation.
    let array = match array.data_type() {
        DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(..)
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Duration(_) => arrow::compute::cast(array, &native.arrow())?,
        _ => array.clone(),
    };
    if array.data_type() == &dtype.arrow() {
        return Ok(array);
    }
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    arrow::compute::cast_with_options(&array, &dtype.arrow(), &strict).map_err(|e| {
        EngineError::Execution(format!(
            "column '{name}' ({}) has a value that {} cannot hold: {e}",
            type_name(array.data_type()),
            dtype.name()
        ))
    })
}

/// The elements of a matrix.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum MatrixData {
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    UInt8(Vec<u8>),
    UInt16(Vec<u16>),
    UInt32(Vec<u32>),
    UInt64(Vec<u64>),
}

/// The element types of [`MatrixData`], to and from it.
pub(crate) trait Element: Copy + Default {
    /// The elements as matrix data.
    fn wrap(values: Vec<Self>) -> MatrixData;
    /// The elements of `data` when they are of this type, else `data` back.
    fn unwrap(data: MatrixData) -> std::result::Result<Vec<Self>, MatrixData>;
}

macro_rules! element {
    ($native:ty, $variant:ident) => {
        impl Element for $native {
            fn wrap(values: Vec<Self>) -> MatrixData {
                MatrixData::$variant(values)
            }
            fn unwrap(data: MatrixData) -> std::result::Result<Vec<Self>, MatrixData> {
                match data {
                    MatrixData::$variant(values) => Ok(values),
                    other => Err(other),
                }
            }
        }
    };
}

element!(f32, Float32);
element!(f64, Float64);
element!(i8, Int8);
element!(i16, Int16);
element!(i32, Int32);
element!(i64, Int64);
element!(u8, UInt8);
element!(u16, UInt16);
element!(u32, UInt32);
element!(u64, UInt64);

/// Rows of numbers of one type, row-major (C order).
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub columns: usize,
    /// `rows × columns` elements, row after row.
    pub data: MatrixData,
}

impl Matrix {
    /// The element type.
    pub fn dtype(&self) -> NpyType {
        match &self.data {
            MatrixData::Float32(_) => NpyType::Float32,
            MatrixData::Float64(_) => NpyType::Float64,
            MatrixData::Int8(_) => NpyType::Int8,
            MatrixData::Int16(_) => NpyType::Int16,
            MatrixData::Int32(_) => NpyType::Int32,
            MatrixData::Int64(_) => NpyType::Int64,
            MatrixData::UInt8(_) => NpyType::UInt8,
            MatrixData::UInt16(_) => NpyType::UInt16,
            MatrixData::UInt32(_) => NpyType::UInt32,
            MatrixData::UInt64(_) => NpyType::UInt64,
        }
    }

    /// The elements as bytes, in this machine's byte order (what [`NpyType::descr`] states).
    pub fn as_bytes(&self) -> &[u8] {
        use arrow::datatypes::ToByteSlice;
        match &self.data {
            MatrixData::Float32(v) => v.to_byte_slice(),
            MatrixData::Float64(v) => v.to_byte_slice(),
            MatrixData::Int8(v) => v.to_byte_slice(),
            MatrixData::Int16(v) => v.to_byte_slice(),
            MatrixData::Int32(v) => v.to_byte_slice(),
            MatrixData::Int64(v) => v.to_byte_slice(),
            MatrixData::UInt8(v) => v.to_byte_slice(),
            MatrixData::UInt16(v) => v.to_byte_slice(),
            MatrixData::UInt32(v) => v.to_byte_slice(),
            MatrixData::UInt64(v) => v.to_byte_slice(),
        }
    }

    /// The rows of `pieces` (batches of one schema, one after another) as a matrix of
    /// `dtype`, every column in schema order.
    pub fn from_batches(pieces: &[RecordBatch], dtype: NpyType) -> Result<Matrix> {
        let rows: usize = pieces.iter().map(|b| b.num_rows()).sum();
        let columns = pieces.first().map_or(0, |b| b.num_columns());
        let data = match dtype {
            NpyType::Float32 => MatrixData::Float32(fill::<Float32Type>(pieces, dtype)?),
            NpyType::Float64 => MatrixData::Float64(fill::<Float64Type>(pieces, dtype)?),
            NpyType::Int8 => MatrixData::Int8(fill::<Int8Type>(pieces, dtype)?),
            NpyType::Int16 => MatrixData::Int16(fill::<Int16Type>(pieces, dtype)?),
            NpyType::Int32 => MatrixData::Int32(fill::<Int32Type>(pieces, dtype)?),
            NpyType::Int64 => MatrixData::Int64(fill::<Int64Type>(pieces, dtype)?),
            NpyType::UInt8 => MatrixData::UInt8(fill::<UInt8Type>(pieces, dtype)?),
            NpyType::UInt16 => MatrixData::UInt16(fill::<UInt16Type>(pieces, dtype)?),
            NpyType::UInt32 => MatrixData::UInt32(fill::<UInt32Type>(pieces, dtype)?),
            NpyType::UInt64 => MatrixData::UInt64(fill::<UInt64Type>(pieces, dtype)?),
        };
        Ok(Matrix {
            rows,
            columns,
            data,
        })
    }
}

/// The row-major elements of `pieces` as `T` (the Arrow type of `dtype`).
fn fill<T: ArrowPrimitiveType>(pieces: &[RecordBatch], dtype: NpyType) -> Result<Vec<T::Native>> {
    let rows: usize = pieces.iter().map(|b| b.num_rows()).sum();
    let Some(first) = pieces.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    let width = schema.fields().len();
    let mut out = vec![T::Native::default(); rows * width];
    let mut row0 = 0;
    for piece in pieces {
        let n = piece.num_rows();
        let block = &mut out[row0 * width..(row0 + n) * width];
        for (j, (column, field)) in piece.columns().iter().zip(schema.fields()).enumerate() {
            let converted = column_as(column, field.name(), dtype)?;
            let values = converted.as_primitive::<T>().values();
            if width == 1 {
                block.copy_from_slice(values);
            } else {
                for (slot, value) in block[j..].iter_mut().step_by(width).zip(values.iter()) {
                    *slot = *value;
                }
            }
        }
        row0 += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap()
    }

    #[test]
    fn pieces_are_filled_row_major_into_one_matrix() {
        let a = batch(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("b", Arc::new(Float64Array::from(vec![0.5, 1.5]))),
        ]);
        let b = batch(vec![
            ("a", Arc::new(Int64Array::from(vec![3])) as ArrayRef),
            ("b", Arc::new(Float64Array::from(vec![2.5]))),
        ]);
        let m = Matrix::from_batches(&[a, b], NpyType::Float32).unwrap();
        assert_eq!((m.rows, m.columns), (3, 2));
        assert_eq!(
            m.data,
            MatrixData::Float32(vec![1.0, 0.5, 2.0, 1.5, 3.0, 2.5])
        );
        assert_eq!(m.as_bytes().len(), 24);
    }

    #[test]
    fn dates_and_booleans_become_integers() {
        let b = batch(vec![
            (
                "d",
                Arc::new(Date32Array::from(vec![19000, 19001])) as ArrayRef,
            ),
            ("f", Arc::new(BooleanArray::from(vec![true, false]))),
        ]);
        let m = Matrix::from_batches(&[b], NpyType::Int32).unwrap();
        assert_eq!(m.data, MatrixData::Int32(vec![19000, 1, 19001, 0]));
    }

    #[test]
    fn out_of_range_nulls_and_strings_are_errors_naming_the_column() {
        let big = batch(vec![(
            "x",
            Arc::new(Int64Array::from(vec![1, 300])) as ArrayRef,
        )]);
        let e = Matrix::from_batches(&[big], NpyType::Int8).unwrap_err();
        assert!(
            e.to_string().contains("'x'") && e.to_string().contains("int8"),
            "{e}"
        );
        let nulls = batch(vec![(
            "n",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        )]);
        let e = Matrix::from_batches(&[nulls], NpyType::Float64).unwrap_err();
        assert!(e.to_string().contains("'n' has NULLs"), "{e}");
        let text = batch(vec![(
            "s",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )]);
        let e = Matrix::from_batches(&[text], NpyType::Float32).unwrap_err();
        assert!(e.to_string().contains("'s' is VARCHAR"), "{e}");
    }

    #[test]
    fn dtype_names_parse_in_numpy_spellings() {
        assert_eq!("float32".parse::<NpyType>().unwrap(), NpyType::Float32);
        assert_eq!("<f8".parse::<NpyType>().unwrap(), NpyType::Float64);
        assert_eq!("i2".parse::<NpyType>().unwrap(), NpyType::Int16);
        assert_eq!("UINT8".parse::<NpyType>().unwrap(), NpyType::UInt8);
        assert!("float16".parse::<NpyType>().is_err());
    }
}
