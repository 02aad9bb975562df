//! Hash partitions of a spilled aggregate table.
//!
//! Each spill of the table splits its groups (keys and partial states) into [`PARTITIONS`] by a
//! hash of the group keys and writes each part as its own file, one file open at a time (an
//! open writer holds a compression context of a few MiB). All the states of one group end up
//! in the files of one partition. A partition that is split
//! again uses a different hash seed (its *level*), so its groups spread over new partitions
//! instead of landing together again.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Int16Type, Int32Type,
    Int64Type, Int8Type, SchemaRef, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::row::{RowConverter, SortField};

use crate::error::Result;
use crate::memory::SpillFile;
use crate::physical::TaskContext;

/// Number of hash partitions per spill level.
pub const PARTITIONS: usize = 64;

/// Open spill files of one partitioning level.
pub struct SpillPartitions {
    level: u32,
    schema: SchemaRef,
    files: Vec<Vec<SpillFile>>,
}

/// Hash each row of `columns` (compared as SQL group keys: NULLs equal) with a seed.
///
/// One integer, date or decimal key column is hashed by value; other keys through their row
/// encoding. Either way equal keys hash alike, which is all the partitioning needs.
pub fn hash_rows(columns: &[ArrayRef], seed: u64) -> Result<Vec<u64>> {
    let state = ahash::RandomState::with_seeds(seed, 0x0dd5_ee0d, 0x5eed_a66e, 0xa99_2e9a7e);
    if let [column] = columns {
        if let Some(hashes) = hash_primitive(column, &state) {
            return Ok(hashes);
        }
    }
    let converter = RowConverter::new(
        columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(columns)?;
    Ok(rows.iter().map(|r| state.hash_one(r.as_ref())).collect())
}

/// Hashes of a fixed-width column's values (NULLs all hash alike), if it is one.
fn hash_primitive(column: &ArrayRef, state: &ahash::RandomState) -> Option<Vec<u64>> {
    fn by_value<T>(column: &ArrayRef, state: &ahash::RandomState) -> Option<Vec<u64>>
    where
        T: ArrowPrimitiveType,
        T::Native: std::hash::Hash,
    {
        let array = column.as_primitive_opt::<T>()?;
        let mut hashes: Vec<u64> = array.values().iter().map(|v| state.hash_one(v)).collect();
        if let Some(nulls) = array.logical_nulls() {
            for (hash, valid) in hashes.iter_mut().zip(nulls.iter()) {
                if !valid {
                    *hash = NULL_HASH;
                }
            }
        }
        Some(hashes)
    }
    match column.data_type() {
        DataType::Int8 => by_value::<Int8Type>(column, state),
        DataType::Int16 => by_value::<Int16Type>(column, state),
        DataType::Int32 => by_value::<Int32Type>(column, state),
        DataType::Int64 => by_value::<Int64Type>(column, state),
        DataType::UInt8 => by_value::<UInt8Type>(column, state),
        DataType::UInt16 => by_value::<UInt16Type>(column, state),
        DataType::UInt32 => by_value::<UInt32Type>(column, state),
        DataType::UInt64 => by_value::<UInt64Type>(column, state),
        DataType::Date32 => by_value::<Date32Type>(column, state),
        DataType::Date64 => by_value::<Date64Type>(column, state),
        DataType::Decimal128(_, _) => by_value::<Decimal128Type>(column, state),
        _ => None,
    }
}

/// The hash of a NULL key (any fixed value works: all NULL keys are one group).
const NULL_HASH: u64 = 0x6e75_6c6c;

impl SpillPartitions {
    /// Empty partitions for spills at `level` (0 for the input, n + 1 to split a level-n file).
    pub fn new(level: u32, schema: SchemaRef) -> Self {
        Self {
            level,
            schema,
            files: (0..PARTITIONS).map(|_| Vec::new()).collect(),
        }
    }

    /// Write `batch`, whose first `key_columns` columns are the group keys, into the
    /// partitions. Returns (rows, in-memory bytes, compressed bytes) written.
    pub fn write(
        &mut self,
        batch: &RecordBatch,
        key_columns: usize,
        ctx: &TaskContext,
    ) -> Result<(usize, usize, u64)> {
        let hashes = hash_rows(&batch.columns()[..key_columns], u64::from(self.level))?;
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); PARTITIONS];
        for (row, h) in hashes.iter().enumerate() {
            members[(h >> 58) as usize % PARTITIONS].push(row as u32);
        }
        let mut raw = 0;
        let mut bytes = 0;
        for (p, rows) in members.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = take_record_batch(batch, &UInt32Array::from(rows))?;
            let mut writer = ctx
                .spill
                .create(&format!("aggregate-l{}-p{p}", self.level), &self.schema)?;
            writer.write(&part)?;
            let file = writer.finish()?;
            raw += file.raw_bytes();
            bytes += file.bytes();
            self.files[p].push(file);
        }
        Ok((batch.num_rows(), raw, bytes))
    }

    /// The non-empty partitions, each with the level its contents must be merged at, in the
    /// order they should be merged (last first).
    pub fn finish(self) -> Vec<(Vec<SpillFile>, u32)> {
        let level = self.level;
        let mut parts: Vec<_> = self
            .files
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| (f, level))
            .collect();
        parts.reverse();
        parts
    }
}
