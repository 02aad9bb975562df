//! Narrow column types for spill files: fewer bytes to compress, write, read and decompress.
//!
//! A spill file stores some columns in a smaller integer type than they have in memory and
//! widens them again, exactly, when it is read back:
//!
//! | in memory                 | on disk                  | when                                |
//! |---------------------------|--------------------------|-------------------------------------|
//! | `Decimal128(p ≤ 18, s)`   | `Int64`                  | always (the precision bounds it)    |
//! | `Decimal128(p, s)`        | `Int64`, `Int32`, `Int16`| the file's values fit (fitted files)|
//! | `Int64`                   | `Int32`, `Int16`         | the file's values fit (fitted files)|
//! | `Utf8View`, `BinaryView`  | `Utf8`, `Binary`         | always                              |
//!
//! A decimal's 16 bytes are its unscaled integer, so storing that integer in 8 bytes loses
//! nothing. A string view takes 16 bytes per value besides the string's bytes (a flag of one
//! character too); an offset takes 4. A file written in one go from one batch (an aggregate's
//! spill round, all its partitions) is *fitted* to that batch's values: an aggregate's `sum`
//! state is `Decimal128(38, s)` and its counts are `Int64`, yet their values are small. A file
//! written batch by batch (a sorted run) is narrowed by type only, and every batch is checked
//! against the file's types: a value outside its declared precision is an error, never a
//! silently truncated value.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Field, Int16Type, Int32Type, Int64Type, Schema,
    SchemaRef,
};

use crate::error::{EngineError, Result};

/// How each column of a schema is stored in a spill file.
#[derive(Clone, Debug)]
pub(crate) struct Narrowing {
    /// The in-memory schema.
    schema: SchemaRef,
    /// The on-disk schema.
    stored: SchemaRef,
}

/// Largest decimal precision whose values always fit an `i64`.
const INT64_DECIMAL_PRECISION: u8 = 18;

impl Narrowing {
    /// Narrow by type only: decimals of precision ≤ 18 as `Int64`.
    pub(crate) fn by_type(schema: &SchemaRef) -> Self {
        let stored = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Decimal128(p, _) if *p <= INT64_DECIMAL_PRECISION => DataType::Int64,
                DataType::Utf8View => DataType::Utf8,
                DataType::BinaryView => DataType::Binary,
                other => other.clone(),
            })
            .collect();
        Self::with_stored(schema, stored)
    }

    /// Narrow every decimal and `Int64` column to the smallest integer type that holds all of
    /// `batch`'s values in that column.
    pub(crate) fn fitted(batch: &RecordBatch) -> Self {
        Self::fitted_to(&batch.schema(), &[batch])
    }

    /// Narrow every decimal and `Int64` column to the smallest integer type that holds the
    /// values of all of `batches` (of `schema`) in that column: for a file whose batches are
    /// all known before it is written, such as a sorted run.
    pub(crate) fn fitted_to(schema: &SchemaRef, batches: &[&RecordBatch]) -> Self {
        let by_type = Self::by_type(schema);
        let widest = |a: Option<(i128, i128)>, b: Option<(i128, i128)>| match (a, b) {
            (Some((l1, h1)), Some((l2, h2))) => Some((l1.min(l2), h1.max(h2))),
            (a, None) => a,
            (None, b) => b,
        };
        let stored = schema
            .fields()
            .iter()
            .zip(by_type.stored.fields())
            .enumerate()
            .map(|(i, (field, stored))| {
                let column_range = |batch: &&RecordBatch| {
                    let column = batch.column(i);
                    match column.data_type() {
                        DataType::Decimal128(_, _) => {
                            value_range(column.as_primitive::<Decimal128Type>())
                        }
                        DataType::Int64 => value_range(column.as_primitive::<Int64Type>())
                            .map(|(lo, hi)| (i128::from(lo), i128::from(hi))),
                        _ => None,
                    }
                };
                if !matches!(
                    field.data_type(),
                    DataType::Decimal128(_, _) | DataType::Int64
                ) {
                    return stored.data_type().clone();
                }
                match batches.iter().map(column_range).fold(None, widest) {
                    // No values (or none but NULLs): the smallest type holds them.
                    None => DataType::Int16,
                    Some((lo, hi)) if fits::<i16>(lo, hi) => DataType::Int16,
                    Some((lo, hi)) if fits::<i32>(lo, hi) => DataType::Int32,
                    Some((lo, hi)) if fits::<i64>(lo, hi) => DataType::Int64,
                    Some(_) => stored.data_type().clone(),
                }
            })
            .collect();
        Self::with_stored(schema, stored)
    }

    fn with_stored(schema: &SchemaRef, stored: Vec<DataType>) -> Self {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .zip(stored)
            .map(|(f, t)| f.as_ref().clone().with_data_type(t))
            .collect();
        Self {
            schema: Arc::clone(schema),
            stored: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        }
    }

    /// The in-memory schema.
    pub(crate) fn schema_ref(&self) -> &SchemaRef {
        &self.schema
    }

    /// The schema of the batches in the file.
    pub(crate) fn stored_schema(&self) -> &SchemaRef {
        &self.stored
    }

    /// Whether any column is stored narrower than it is held.
    pub(crate) fn narrows(&self) -> bool {
        self.schema != self.stored
    }

    /// `batch` (of the in-memory schema) in the stored types.
    pub(crate) fn narrow(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if !self.narrows() {
            return Ok(batch.clone());
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.stored.fields())
            .map(|(column, field)| narrow_column(column, field))
            .collect::<Result<Vec<_>>>()?;
        rebuild(&self.stored, columns, batch.num_rows())
    }

    /// `batch` (of the stored schema) back in the in-memory types.
    pub(crate) fn widen(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if !self.narrows() {
            return Ok(batch.clone());
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(column, field)| widen_column(column, field.data_type()))
            .collect::<Result<Vec<_>>>()?;
        rebuild(&self.schema, columns, batch.num_rows())
    }
}

fn rebuild(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Smallest and largest value of the non-NULL entries, if any.
fn value_range<T>(array: &PrimitiveArray<T>) -> Option<(T::Native, T::Native)>
where
    T: ArrowPrimitiveType,
    T::Native: Ord,
{
    let mut range: Option<(T::Native, T::Native)> = None;
    let mut see = |v: T::Native| {
        range = Some(match range {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    };
    if array.null_count() == 0 {
        // A branch-free pass over the values; the common case.
        let values = array.values();
        if let (Some(&lo), Some(&hi)) = (values.iter().min(), values.iter().max()) {
            see(lo);
            see(hi);
        }
    } else {
        array.iter().flatten().for_each(see);
    }
    range
}

fn fits<T: TryFrom<i128>>(lo: i128, hi: i128) -> bool {
    T::try_from(lo).is_ok() && T::try_from(hi).is_ok()
}

/// Convert each value with `convert`, failing on the first non-NULL one that does not fit.
fn convert<I, O>(
    array: &PrimitiveArray<I>,
    convert: impl Fn(I::Native) -> Option<O::Native>,
    what: &Field,
) -> Result<ArrayRef>
where
    I: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
{
    let nulls = array.nulls();
    let mut out = Vec::with_capacity(array.len());
    for (i, &v) in array.values().iter().enumerate() {
        match convert(v) {
            Some(x) => out.push(x),
            // Slots under a NULL hold arbitrary values; they need not fit.
            None if nulls.is_some_and(|n| n.is_null(i)) => out.push(O::Native::default()),
            None => {
                return Err(EngineError::Internal(format!(
                    "spill column {} holds a value outside its type's range",
                    what.name()
                )))
            }
        }
    }
    Ok(Arc::new(PrimitiveArray::<O>::new(
        out.into(),
        nulls.cloned(),
    )))
}

fn narrow_column(column: &ArrayRef, stored: &Field) -> Result<ArrayRef> {
    if column.data_type() == stored.data_type() {
        return Ok(Arc::clone(column));
    }
    match (column.data_type(), stored.data_type()) {
        (DataType::Decimal128(_, _), DataType::Int64) => convert::<Decimal128Type, Int64Type>(
            column.as_primitive(),
            |v| i64::try_from(v).ok(),
            stored,
        ),
        (DataType::Decimal128(_, _), DataType::Int32) => convert::<Decimal128Type, Int32Type>(
            column.as_primitive(),
            |v| i32::try_from(v).ok(),
            stored,
        ),
        (DataType::Decimal128(_, _), DataType::Int16) => convert::<Decimal128Type, Int16Type>(
            column.as_primitive(),
            |v| i16::try_from(v).ok(),
            stored,
        ),
        (DataType::Int64, DataType::Int32) => convert::<Int64Type, Int32Type>(
            column.as_primitive(),
            |v| i32::try_from(v).ok(),
            stored,
        ),
        (DataType::Int64, DataType::Int16) => convert::<Int64Type, Int16Type>(
            column.as_primitive(),
            |v| i16::try_from(v).ok(),
            stored,
        ),
        (DataType::Utf8View, DataType::Utf8) | (DataType::BinaryView, DataType::Binary) => {
            Ok(arrow::compute::cast(column, stored.data_type())?)
        }
        (from, to) => Err(EngineError::Internal(format!(
            "no spill narrowing from {from} to {to}"
        ))),
    }
}

fn widen_column(column: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if column.data_type() == target {
        return Ok(Arc::clone(column));
    }
    fn widen<I, O>(column: &ArrayRef, f: impl Fn(I::Native) -> O::Native) -> PrimitiveArray<O>
    where
        I: ArrowPrimitiveType,
        O: ArrowPrimitiveType,
    {
        column.as_primitive::<I>().unary::<_, O>(f)
    }
    Ok(match (column.data_type(), target) {
        (DataType::Int64, DataType::Decimal128(p, s)) => Arc::new(
            widen::<Int64Type, Decimal128Type>(column, i128::from)
                .with_precision_and_scale(*p, *s)?,
        ),
        (DataType::Int32, DataType::Decimal128(p, s)) => Arc::new(
            widen::<Int32Type, Decimal128Type>(column, i128::from)
                .with_precision_and_scale(*p, *s)?,
        ),
        (DataType::Int16, DataType::Decimal128(p, s)) => Arc::new(
            widen::<Int16Type, Decimal128Type>(column, i128::from)
                .with_precision_and_scale(*p, *s)?,
        ),
        (DataType::Int32, DataType::Int64) => {
            Arc::new(widen::<Int32Type, Int64Type>(column, i64::from))
        }
        (DataType::Int16, DataType::Int64) => {
            Arc::new(widen::<Int16Type, Int64Type>(column, i64::from))
        }
        (DataType::Utf8, DataType::Utf8View) | (DataType::Binary, DataType::BinaryView) => {
            arrow::compute::cast(column, target)?
        }
        (from, to) => {
            return Err(EngineError::Internal(format!(
                "no spill widening from {from} to {to}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Decimal128Array, Int64Array, StringArray, StringViewArray};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter_with_nullable(columns.into_iter().map(|(n, c)| (n, c, true)))
            .unwrap()
    }

    #[test]
    fn fitted_files_narrow_by_value_and_widen_back_exactly() {
        let sums: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(12_345), None, Some(-7)])
                .with_precision_and_scale(38, 2)
                .unwrap(),
        );
        let counts: ArrayRef = Arc::new(Int64Array::from(vec![1, 70_000, 3]));
        let big: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 0, i64::MIN]));
        let text: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        let b = batch(vec![("s", sums), ("c", counts), ("big", big), ("t", text)]);
        let narrowing = Narrowing::fitted(&b);
        let stored: Vec<DataType> = narrowing
            .stored_schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            stored,
            vec![
                DataType::Int16,
                DataType::Int32,
                DataType::Int64,
                DataType::Utf8
            ]
        );
        let narrow = narrowing.narrow(&b).unwrap();
        assert!(narrow.get_array_memory_size() < b.get_array_memory_size());
        assert_eq!(narrowing.widen(&narrow).unwrap(), b);
    }

    #[test]
    fn by_type_narrows_bounded_decimals_and_rejects_values_beyond_their_precision() {
        let price: ArrayRef = Arc::new(
            Decimal128Array::from(vec![99_999_999_999_999i128, -1])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        let wide: ArrayRef = Arc::new(
            Decimal128Array::from(vec![i128::MAX, 0])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        );
        let b = batch(vec![("p", price), ("w", wide)]);
        let narrowing = Narrowing::by_type(&b.schema());
        assert_eq!(
            narrowing.stored_schema().field(0).data_type(),
            &DataType::Int64
        );
        assert_eq!(
            narrowing.stored_schema().field(1).data_type(),
            &DataType::Decimal128(38, 0)
        );
        let back = narrowing.widen(&narrowing.narrow(&b).unwrap()).unwrap();
        assert_eq!(back, b);

        // A Decimal128(15, 2) column whose value breaks its precision cannot be stored in 8
        // bytes: an error, not a truncated value.
        let broken: ArrayRef = Arc::new(
            Decimal128Array::from(vec![i128::from(i64::MAX) + 1])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        let b = batch(vec![("p", broken)]);
        let narrowing = Narrowing::by_type(&b.schema());
        assert!(narrowing.narrow(&b).is_err());
    }

    #[test]
    fn string_views_are_stored_as_offsets() {
        let long = "a string longer than twelve bytes";
        let views: ArrayRef = Arc::new(StringViewArray::from(vec![Some("N"), None, Some(long)]));
        let b = batch(vec![("v", views)]);
        let narrowing = Narrowing::by_type(&b.schema());
        let stored = narrowing.narrow(&b).unwrap();
        assert_eq!(stored.column(0).data_type(), &DataType::Utf8);
        assert_eq!(narrowing.widen(&stored).unwrap(), b);
    }

    #[test]
    fn all_null_and_empty_columns() {
        let nulls: ArrayRef = Arc::new(Int64Array::from(vec![None, None]));
        let b = batch(vec![("n", nulls)]);
        let narrowing = Narrowing::fitted(&b);
        assert_eq!(
            narrowing.stored_schema().field(0).data_type(),
            &DataType::Int16
        );
        assert_eq!(narrowing.widen(&narrowing.narrow(&b).unwrap()).unwrap(), b);
        let empty = b.slice(0, 0);
        let narrowing = Narrowing::fitted(&empty);
        assert_eq!(
            narrowing.widen(&narrowing.narrow(&empty).unwrap()).unwrap(),
            empty
        );
    }
}
