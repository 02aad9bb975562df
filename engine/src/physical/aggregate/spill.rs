//! Hash partitions of a spilled aggregate table.
//!
//! Each spill of the table splits its groups (keys and partial states) into [`PARTITIONS`] by a
//! hash of the group keys and writes the parts into one file, each part readable on its own
//! (see [`SpillManager::write_parts`](crate::memory::SpillManager::write_parts)). All the
//! states of one group end up in the parts of one partition. A partition that is split
//! again uses a different hash seed (its *level*), so its groups spread over new partitions
//! instead of landing together again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::memory::{Narrowing, SpillFile};
use crate::physical::hashing::hash_columns;
use crate::physical::{compact_views, concat_releasing, TaskContext};

/// Bits of the hash that choose a partition (its top bits).
const PARTITION_BITS: u32 = 6;

/// Number of hash partitions per spill level.
pub(super) const PARTITIONS: usize = 1 << PARTITION_BITS;

/// Open spill files of one partitioning level.
pub(super) struct SpillPartitions {
    level: u32,
    schema: SchemaRef,
    files: Vec<Vec<SpillFile>>,
}

/// Hash each row of `columns` (compared as SQL group keys: NULLs equal) with a seed: equal
/// keys hash alike, which is all the partitioning needs.
pub(super) fn hash_rows(columns: &[ArrayRef], seed: u64) -> Result<Vec<u64>> {
    let state = ahash::RandomState::with_seeds(seed, 0x0dd5_ee0d, 0x5eed_a66e, 0xa99_2e9a7e);
    hash_columns(columns, &state)
}

/// Split `batch`, rows of one partition of `level` whose first `key_columns` columns are the
/// group keys, into `1 << piece_bits` pieces by the hash bits just below those that chose the
/// partition: pieces hold disjoint keys, so each can be merged in a table of its own.
pub(super) fn split_pieces(
    batch: &RecordBatch,
    key_columns: usize,
    level: u32,
    piece_bits: u32,
) -> Result<Vec<RecordBatch>> {
    let pieces = 1usize << piece_bits;
    if pieces == 1 {
        return Ok(vec![batch.clone()]);
    }
    let hashes = hash_rows(&batch.columns()[..key_columns], u64::from(level))?;
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); pieces];
    let shift = 64 - PARTITION_BITS - piece_bits;
    for (row, h) in hashes.iter().enumerate() {
        members[((h >> shift) as usize) & (pieces - 1)].push(row as u32);
    }
    members
        .into_iter()
        .map(|rows| {
            // The views of a piece point all over the partition's buffers: merging it would
            // wait for memory at every long value it hashes. Its own copy is compact.
            let piece = take_record_batch(batch, &UInt32Array::from(rows))?;
            Ok(compact_views(&piece))
        })
        .collect()
}

impl SpillPartitions {
    /// Empty partitions for spills at `level` (0 for the input, n + 1 to split a level-n file).
    pub(super) fn new(level: u32, schema: SchemaRef) -> Self {
        Self {
            level,
            schema,
            files: (0..PARTITIONS).map(|_| Vec::new()).collect(),
        }
    }

    /// A writer for this level's partitions, to run on another thread; its parts come back
    /// through [`add`](Self::add).
    pub(super) fn writer(&self) -> PartitionWriter {
        PartitionWriter {
            level: self.level,
            schema: Arc::clone(&self.schema),
        }
    }

    /// File the parts of a finished write under their partitions.
    pub(super) fn add(&mut self, written: Written) {
        for (p, file) in written.parts {
            self.files[p].push(file);
        }
    }

    /// The non-empty partitions, each with the level its contents must be merged at, in the
    /// order they should be merged (last first).
    pub(super) fn finish(self) -> Vec<(Vec<SpillFile>, u32)> {
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

/// Writes batches into the partitions of one level; made by [`SpillPartitions::writer`].
pub(super) struct PartitionWriter {
    level: u32,
    schema: SchemaRef,
}

/// What one write produced: each part with its partition, and the totals for the metrics.
pub(super) struct Written {
    parts: Vec<(usize, SpillFile)>,
    /// Rows written.
    pub rows: usize,
    /// Their in-memory bytes.
    pub raw: usize,
    /// Compressed bytes on disk.
    pub bytes: u64,
    /// Time the write took.
    pub time: Duration,
}

impl PartitionWriter {
    /// Write `batches` (of one schema), whose first `key_columns` columns are the group keys,
    /// into one file with a part per non-empty partition.
    pub(super) fn write(
        &self,
        batches: Vec<RecordBatch>,
        key_columns: usize,
        ctx: &TaskContext,
    ) -> Result<Written> {
        let start = Instant::now();
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            return Err(EngineError::Internal("a spill write of no batch".into()));
        };
        let batch = concat_releasing(&schema, batches)?;
        let hashes = hash_rows(&batch.columns()[..key_columns], u64::from(self.level))?;
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); PARTITIONS];
        for (row, h) in hashes.iter().enumerate() {
            members[(h >> (64 - PARTITION_BITS)) as usize].push(row as u32);
        }
        drop(hashes);
        let numbers: Vec<usize> = (0..PARTITIONS)
            .filter(|&p| !members[p].is_empty())
            .collect();
        let labelled = |columns: Vec<ArrayRef>, rows: usize| {
            // Read back with the partitions' schema, whatever the names in `batch`.
            RecordBatch::try_new_with_options(
                Arc::clone(&self.schema),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )
        };
        // The parts are stored fitted to the batch's values: an `i128` sum state of small
        // values takes 2 or 4 bytes, a count 2 or 4 instead of 8.
        let narrowing = Narrowing::fitted(&labelled(batch.columns().to_vec(), batch.num_rows())?);
        // Each part is gathered just before it is written, so only one is held at a time.
        let parts = members
            .into_iter()
            .filter(|rows| !rows.is_empty())
            .map(|rows| {
                let part = take_record_batch(&batch, &UInt32Array::from(rows))?;
                Ok(labelled(part.columns().to_vec(), part.num_rows())?)
            });
        let files =
            ctx.spill
                .write_parts(&format!("aggregate-l{}", self.level), narrowing, parts)?;
        let raw = files.iter().map(SpillFile::raw_bytes).sum();
        let bytes = files.iter().map(SpillFile::bytes).sum();
        Ok(Written {
            parts: numbers.into_iter().zip(files).collect(),
            rows: batch.num_rows(),
            raw,
            bytes,
            time: start.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Int64Array, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn pieces_hold_disjoint_keys_with_their_own_compact_strings() {
        let names: Vec<Option<String>> = (0..20_000)
            .map(|i| (i % 7 != 0).then(|| format!("a value longer than twelve bytes {i}")))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringViewArray::from_iter(
                    names.iter().map(|n| n.as_deref()),
                )),
                Arc::new(Int64Array::from_iter_values(0..20_000)),
            ],
        )
        .unwrap();
        let pieces = split_pieces(&batch, 1, 0, 2).unwrap();
        assert_eq!(pieces.len(), 4);
        let mut seen = Vec::new();
        for piece in &pieces {
            let keys = piece.column(0).as_string_view();
            let long: usize = keys.iter().flatten().map(str::len).sum();
            let buffered: usize = keys.data_buffers().iter().map(|b| b.len()).sum();
            assert_eq!(
                buffered, long,
                "a piece's strings are its own, in one place"
            );
            let numbers = piece
                .column(1)
                .as_primitive::<arrow::datatypes::Int64Type>();
            for row in 0..piece.num_rows() {
                let i = numbers.value(row) as usize;
                assert_eq!(
                    keys.is_valid(row).then(|| keys.value(row)),
                    names[i].as_deref()
                );
                seen.push(i);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20_000).collect::<Vec<_>>());
        // Equal keys share a piece: the NULLs all land in one.
        let with_nulls = pieces
            .iter()
            .filter(|p| p.column(0).null_count() > 0)
            .count();
        assert_eq!(with_nulls, 1);
    }
}
