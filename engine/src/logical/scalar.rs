//! Literal values: a typed single value (possibly NULL) stored as a length-1 Arrow array.
//!
//! Keeping literals as arrays lets every Arrow kernel take them directly as a `Scalar` datum and
//! keeps exact types (Decimal128 precision/scale, Date32, intervals) without a parallel enum.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array,
    Int32Array, Int64Array, IntervalMonthDayNanoArray, StringArray, UInt32Array,
};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, IntervalMonthDayNano};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::Result;

/// One typed value; `NULL` is a null entry of the given type.
#[derive(Clone)]
pub struct ScalarValue(ArrayRef);

impl ScalarValue {
    /// Wrap a length-1 array.
    pub fn from_array(array: ArrayRef) -> Self {
        debug_assert_eq!(array.len(), 1);
        Self(array)
    }

    /// The value at `index` of `array`.
    pub fn from_array_index(array: &dyn Array, index: usize) -> Self {
        Self(array.slice(index, 1))
    }

    /// A typed NULL.
    pub fn null(data_type: &DataType) -> Self {
        Self(new_null_array(data_type, 1))
    }

    /// A 64-bit integer.
    pub fn int64(v: i64) -> Self {
        Self(Arc::new(Int64Array::from(vec![v])))
    }

    /// A 32-bit integer.
    pub fn int32(v: i32) -> Self {
        Self(Arc::new(Int32Array::from(vec![v])))
    }

    /// A double.
    pub fn float64(v: f64) -> Self {
        Self(Arc::new(Float64Array::from(vec![v])))
    }

    /// A boolean.
    pub fn boolean(v: bool) -> Self {
        Self(Arc::new(BooleanArray::from(vec![v])))
    }

    /// A string.
    pub fn utf8(v: &str) -> Self {
        Self(Arc::new(StringArray::from(vec![v])))
    }

    /// A date as days since the epoch.
    pub fn date32(days: i32) -> Self {
        Self(Arc::new(Date32Array::from(vec![days])))
    }

    /// An exact decimal.
    pub fn decimal128(value: i128, precision: u8, scale: i8) -> Result<Self> {
        let array =
            Decimal128Array::from(vec![value]).with_precision_and_scale(precision, scale)?;
        Ok(Self(Arc::new(array)))
    }

    /// An interval of months, days and nanoseconds.
    pub fn interval(months: i32, days: i32, nanos: i64) -> Self {
        Self(Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(months, days, nanos),
        ])))
    }

    /// The length-1 array.
    pub fn array(&self) -> &ArrayRef {
        &self.0
    }

    /// The value's type.
    pub fn data_type(&self) -> &DataType {
        self.0.data_type()
    }

    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        self.0.is_null(0)
    }

    /// The value repeated `n` times.
    pub fn to_array_of_size(&self, n: usize) -> Result<ArrayRef> {
        if self.is_null() {
            return Ok(new_null_array(self.data_type(), n));
        }
        let indices = UInt32Array::from(vec![0u32; n]);
        Ok(take(self.0.as_ref(), &indices, None)?)
    }

    /// Cast to another type (errors on values that do not fit).
    pub fn cast_to(&self, data_type: &DataType) -> Result<Self> {
        let options = arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        Ok(Self(arrow::compute::cast_with_options(
            &self.0, data_type, &options,
        )?))
    }

    /// The value as a boolean (NULL and non-booleans are `None`).
    pub fn as_bool(&self) -> Option<bool> {
        if self.is_null() {
            return None;
        }
        self.0
            .as_any()
            .downcast_ref::<BooleanArray>()
            .map(|a| a.value(0))
    }

    /// The value as an i64 if it is a non-null integer.
    pub fn as_i64(&self) -> Option<i64> {
        if self.is_null() || !self.data_type().is_integer() {
            return None;
        }
        let array = cast(&self.0, &DataType::Int64).ok()?;
        Some(array.as_any().downcast_ref::<Int64Array>()?.value(0))
    }

    /// The value as an f64 if it is a non-null number (integer, float or decimal).
    pub fn as_f64(&self) -> Option<f64> {
        let numeric = self.data_type().is_integer()
            || self.data_type().is_floating()
            || matches!(self.data_type(), DataType::Decimal128(_, _));
        if self.is_null() || !numeric {
            return None;
        }
        let array = cast(&self.0, &DataType::Float64).ok()?;
        Some(
            array
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()?
                .value(0),
        )
    }

    /// The value as a string if it is a non-null string.
    pub fn as_str(&self) -> Option<String> {
        if self.is_null() {
            return None;
        }
        match self.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let array = cast(&self.0, &DataType::Utf8).ok()?;
                Some(
                    array
                        .as_any()
                        .downcast_ref::<StringArray>()?
                        .value(0)
                        .to_string(),
                )
            }
            _ => None,
        }
    }
}

impl PartialEq for ScalarValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_data() == other.0.to_data()
    }
}

impl fmt::Debug for ScalarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}::{}", self.data_type())
    }
}

impl fmt::Display for ScalarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            return f.write_str("NULL");
        }
        let options = FormatOptions::default();
        match ArrayFormatter::try_new(self.0.as_ref(), &options) {
            Ok(formatter) => {
                let text = formatter.value(0).to_string();
                match self.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                        write!(f, "'{}'", text.replace('\'', "''"))
                    }
                    DataType::Date32 => write!(f, "DATE '{text}'"),
                    _ => f.write_str(&text),
                }
            }
            Err(_) => f.write_str("?"),
        }
    }
}
