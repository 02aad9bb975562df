//! Bloom-filter pruning: a row group whose column chunk carries a split-block bloom filter is
//! skipped when `column = v` or `column IN (...)` is a top-level conjunct of the predicate and
//! the filter says that none of the values is in the chunk.
//!
//! A bloom filter hashes values as the file stores them, so each literal is first cast
//! exactly to the column's Arrow type (a literal that does not round-trip is not probed), then
//! encoded as the column's physical type: 32- or 64-bit integers (dates, timestamps and
//! decimals by their unscaled value), floats, the bytes of strings and binaries, and
//! decimals stored as fixed-length big-endian bytes. Any other case, a missing filter or one
//! that cannot be read, keeps the row group: a filter can only say "certainly absent".

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use parquet::basic::Type as PhysicalType;
use parquet::bloom_filter::Sbbf;

use crate::dataset::{ParquetDataset, ParquetFile, RowGroupRef};
use crate::prune::{cast_literal, CmpOp, PruneExpr};
use crate::read::release_pages;

/// A literal as the bytes a bloom filter hashes, or `None` when it cannot be probed.
fn probe_value(
    value: &ArrayRef,
    data_type: &DataType,
    physical: PhysicalType,
    length: i32,
) -> Option<Vec<u8>> {
    let v = cast_literal(value, data_type)?;
    if v.len() != 1 || v.is_null(0) {
        return None;
    }
    let int32 = |x: i32| Some(x.to_le_bytes().to_vec());
    let int64 = |x: i64| Some(x.to_le_bytes().to_vec());
    match (data_type, physical) {
        (DataType::Int8, PhysicalType::INT32) => {
            int32(v.as_primitive::<Int8Type>().value(0).into())
        }
        (DataType::Int16, PhysicalType::INT32) => {
            int32(v.as_primitive::<Int16Type>().value(0).into())
        }
        (DataType::Int32, PhysicalType::INT32) => int32(v.as_primitive::<Int32Type>().value(0)),
        (DataType::UInt8, PhysicalType::INT32) => {
            int32(v.as_primitive::<UInt8Type>().value(0).into())
        }
        (DataType::UInt16, PhysicalType::INT32) => {
            int32(v.as_primitive::<UInt16Type>().value(0).into())
        }
        // Unsigned 32- and 64-bit values are stored by their bits.
        (DataType::UInt32, PhysicalType::INT32) => {
            int32(v.as_primitive::<UInt32Type>().value(0) as i32)
        }
        (DataType::Date32, PhysicalType::INT32) => int32(v.as_primitive::<Date32Type>().value(0)),
        (DataType::Int64, PhysicalType::INT64) => int64(v.as_primitive::<Int64Type>().value(0)),
        (DataType::UInt64, PhysicalType::INT64) => {
            int64(v.as_primitive::<UInt64Type>().value(0) as i64)
        }
        (DataType::Date64, PhysicalType::INT64) => int64(v.as_primitive::<Date64Type>().value(0)),
        (DataType::Float32, PhysicalType::FLOAT) => Some(
            v.as_primitive::<Float32Type>()
                .value(0)
                .to_le_bytes()
                .to_vec(),
        ),
        (DataType::Float64, PhysicalType::DOUBLE) => Some(
            v.as_primitive::<Float64Type>()
                .value(0)
                .to_le_bytes()
                .to_vec(),
        ),
        (DataType::Decimal128(..), PhysicalType::INT32) => {
            int32(i32::try_from(v.as_primitive::<Decimal128Type>().value(0)).ok()?)
        }
        (DataType::Decimal128(..), PhysicalType::INT64) => {
            int64(i64::try_from(v.as_primitive::<Decimal128Type>().value(0)).ok()?)
        }
        (DataType::Decimal128(..), PhysicalType::FIXED_LEN_BYTE_ARRAY) => {
            let bytes = v.as_primitive::<Decimal128Type>().value(0).to_be_bytes();
            let length = usize::try_from(length)
                .ok()
                .filter(|&l| (1..=16).contains(&l))?;
            Some(bytes[16 - length..].to_vec())
        }
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, PhysicalType::BYTE_ARRAY) => {
            let s = arrow::compute::cast(&v, &DataType::Utf8).ok()?;
            Some(s.as_string::<i32>().value(0).as_bytes().to_vec())
        }
        (
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView,
            PhysicalType::BYTE_ARRAY,
        ) => {
            let b = arrow::compute::cast(&v, &DataType::Binary).ok()?;
            Some(b.as_binary::<i32>().value(0).to_vec())
        }
        _ => None,
    }
}

/// The values a conjunct says the column must equal: `column = v` or `column IN (...)`.
fn equalities(conjunct: &PruneExpr) -> Option<(&str, Vec<&ArrayRef>)> {
    match conjunct {
        PruneExpr::Compare {
            column,
            op: CmpOp::Eq,
            value,
        } => Some((column, vec![value])),
        PruneExpr::InList {
            column,
            values,
            negated: false,
        } => Some((column, values.iter().collect())),
        _ => None,
    }
}

/// Whether the bloom filter of `column` in row group `rg` of `file` says that none of
/// `values` is there (`false` whenever it cannot tell).
fn certainly_absent(file: &ParquetFile, rg: usize, column: &str, values: &[&ArrayRef]) -> bool {
    if file.partition_values.iter().any(|(k, _)| k == column) {
        return false;
    }
    let Ok(field) = file.schema.field_with_name(column) else {
        return false;
    };
    // A top-level column: its leaf has its name.
    let descr = file.metadata.file_metadata().schema_descr();
    let Some(leaf) = (0..descr.num_columns()).find(|&i| {
        let c = descr.column(i);
        c.path().parts().len() == 1 && c.name() == column
    }) else {
        return false;
    };
    let chunk = file.metadata.row_group(rg).column(leaf);
    if chunk.bloom_filter_offset().is_none() {
        return false;
    }
    let physical = chunk.column_type();
    let length = descr.column(leaf).type_length();
    let probes: Option<Vec<Vec<u8>>> = values
        .iter()
        .map(|v| probe_value(v, field.data_type(), physical, length))
        .collect();
    let Some(probes) = probes else {
        return false;
    };
    let filter = Sbbf::read_from_column_chunk(chunk, &file.bytes);
    // The filter is read once per query: its pages need not stay in the process's RSS.
    if let (Some(start), Some(len)) = (chunk.bloom_filter_offset(), chunk.bloom_filter_length()) {
        if let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(len)) {
            release_pages(&file.map, start, len);
        }
    }
    let Ok(Some(filter)) = filter else {
        return false;
    };
    probes.iter().all(|p| !filter.check(p.as_slice()))
}

impl ParquetDataset {
    /// Whether bloom filters show that row group `rg` holds no row for which `predicate` is
    /// TRUE: some top-level `=` or `IN` conjunct has none of its values in the filter.
    pub fn bloom_excludes(&self, rg: RowGroupRef, predicate: &PruneExpr) -> bool {
        let Some(file) = self.files().get(rg.file) else {
            return false;
        };
        let conjuncts = predicate.conjuncts();
        conjuncts
            .into_iter()
            .filter_map(equalities)
            .any(|(column, values)| {
                !values.is_empty() && certainly_absent(file, rg.row_group, column, &values)
            })
    }

    /// Whether any column chunk of the data set carries a bloom filter.
    pub fn has_bloom_filters(&self) -> bool {
        self.files().iter().any(|f| {
            f.metadata.row_groups().iter().any(|rg| {
                rg.columns()
                    .iter()
                    .any(|c| c.bloom_filter_offset().is_some())
            })
        })
    }
}
