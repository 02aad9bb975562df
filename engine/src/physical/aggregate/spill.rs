//! Hash partitions of a spilled aggregate table.
//!
//! Each spill of the table splits its groups (keys and partial states) into [`PARTITIONS`] by a
//! hash of the group keys and writes each part as its own file, one file open at a time (an
//! open writer holds a compression context of a few MiB). All the states of one group end up
//! in the files of one partition. A partition that is split
//! again uses a different hash seed (its *level*), so its groups spread over new partitions
//! instead of landing together again.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::memory::SpillFile;
use crate::physical::hashing::hash_columns;
use crate::physical::TaskContext;

/// Number of hash partitions per spill level.
pub const PARTITIONS: usize = 64;

/// Open spill files of one partitioning level.
pub struct SpillPartitions {
    level: u32,
    schema: SchemaRef,
    files: Vec<Vec<SpillFile>>,
}

/// Hash each row of `columns` (compared as SQL group keys: NULLs equal) with a seed: equal
/// keys hash alike, which is all the partitioning needs.
pub fn hash_rows(columns: &[ArrayRef], seed: u64) -> Result<Vec<u64>> {
    let state = ahash::RandomState::with_seeds(seed, 0x0dd5_ee0d, 0x5eed_a66e, 0xa99_2e9a7e);
    hash_columns(columns, &state)
}

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
            // Read back with the partitions' schema, whatever the names in `batch`.
            let part = RecordBatch::try_new_with_options(
                Arc::clone(&self.schema),
                part.columns().to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(part.num_rows())),
            )?;
            // One batch per file: its sums and counts are stored in the integer types that
            // hold their values (an `i128` sum state of small values takes 2 or 4 bytes).
            let file = ctx
                .spill
                .write_fitted(&format!("aggregate-l{}-p{p}", self.level), &part)?;
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
