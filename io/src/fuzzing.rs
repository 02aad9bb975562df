//! Entry points for the fuzz targets under `fuzz/` (built only with `--cfg fuzzing`, which
//! `cargo fuzz` sets): each takes arbitrary bytes, presents them to one of this crate's
//! readers of files ooc writes itself, and reads everything the reader offers. A panic, a hang
//! or unbounded memory is a finding; an error is the right answer.
//!
//! The readers check checksums before they decode, so bytes a fuzzer invents would never get
//! past them. The cache entry's checksums live in its manifest, which these entry points write
//! to match the input; a sidecar's live inside the file, and under `cfg(fuzzing)` the sidecar
//! reader takes them as correct (see `format::checksum_ok`). What is fuzzed is therefore what
//! a damaged file with intact checksums would reach: the decoders behind the checks.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::DataType;

use crate::cache::manifest::{Manifest, CACHE_FORMAT, CHUNK_BYTES};
use crate::cache::mapped::CachedResult;
use crate::index::Sidecar;
use crate::prune::{CmpOp, PruneExpr};

/// A scratch file for one input, in a directory of this process.
fn scratch(name: &str, data: &[u8]) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ooc-fuzz-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(name);
    std::fs::write(&path, data).ok()?;
    Some(path)
}

/// `data` as the data file of a result-cache entry (an Arrow IPC file, zstd-compressed or
/// not) whose manifest matches its size and chunk checksums: open it, decode every batch whole
/// and with a projection, and check it in the background as a hit would.
pub fn cache_entry(data: &[u8]) {
    let _ = read_cache_entry(data);
}

/// What [`cache_entry`] does, with the first error met (`Ok`: everything decoded).
fn read_cache_entry(data: &[u8]) -> Result<(), String> {
    let path = scratch("entry.arrow", data).ok_or("cannot write the scratch file")?;
    let chunk_crcs = data
        .chunks(CHUNK_BYTES as usize)
        .map(|c| format!("{:08x}", crc32fast::hash(c)))
        .collect();
    // The manifest's batch count, from the IPC footer (where the reader finds it too).
    let batches = data
        .len()
        .checked_sub(10)
        .and_then(|end| {
            let len = i32::from_le_bytes(data[end..end + 4].try_into().ok()?);
            let start = end.checked_sub(usize::try_from(len).ok()?)?;
            let footer = arrow::ipc::root_as_footer(&data[start..end]).ok()?;
            Some(footer.recordBatches().map_or(0, |b| b.len() as u64))
        })
        .unwrap_or(0);
    let manifest = Manifest {
        format: CACHE_FORMAT,
        engine_version: crate::cache::ENGINE_VERSION.to_string(),
        key: "0".repeat(32),
        plan_key: "0".repeat(32),
        data_file: "entry.arrow".into(),
        plan: String::new(),
        inputs: Vec::new(),
        schema: Vec::new(),
        rows: 0,
        batches,
        bytes: data.len() as u64,
        compression: "zstd".into(),
        chunk_crcs,
        compute_ms: 0,
        created_ms: 0,
    };
    let result = CachedResult::open(&path, manifest, u64::MAX)
        .map(Arc::new)
        .map_err(|e| e.to_string())?;
    let width = result.schema().fields().len();
    let projections = [None, Some(vec![width.saturating_sub(1)]), Some(Vec::new())];
    for projection in projections {
        if projection
            .as_ref()
            .is_some_and(|p| p.iter().any(|&i| i >= width))
        {
            continue;
        }
        let decoder = result.decoder(projection).map_err(|e| e.to_string())?;
        for i in 0..result.num_batches().min(256) {
            decoder.batch(i).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Literals of `data_type` for predicates on an indexed column (none when no cast exists).
fn literals(data_type: &DataType) -> Vec<ArrayRef> {
    let sources: [ArrayRef; 4] = [
        Arc::new(Int64Array::from(vec![7])),
        Arc::new(Int64Array::from(vec![-1])),
        Arc::new(StringArray::from(vec!["m"])),
        Arc::new(StringArray::from(vec!["1995-03-15"])),
    ];
    sources
        .iter()
        .filter_map(|s| arrow::compute::cast(s, data_type).ok())
        .filter(|a| a.len() == 1 && a.null_count() == 0)
        .collect()
}

/// `data` as an index sidecar: open it and answer every predicate shape the index serves on
/// each column its footer names, with a row budget and without.
pub fn index_sidecar(data: &[u8]) {
    let Some(path) = scratch("data.parquet.ooc-index", data) else {
        return;
    };
    let Ok(sidecar) = Sidecar::open(&path) else {
        return;
    };
    for meta in sidecar.footer.columns.iter().take(8) {
        let column = meta.name.clone();
        let values = literals(&meta.data_type);
        let mut predicates = vec![
            PruneExpr::IsNull {
                column: column.clone(),
                negated: false,
            },
            PruneExpr::StartsWith {
                column: column.clone(),
                prefix: "a".into(),
            },
        ];
        for value in &values {
            for op in [CmpOp::Eq, CmpOp::Lt, CmpOp::GtEq] {
                predicates.push(PruneExpr::Compare {
                    column: column.clone(),
                    op,
                    value: Arc::clone(value),
                });
            }
        }
        if let [low, .., high] = values.as_slice() {
            predicates.push(PruneExpr::Between {
                column: column.clone(),
                low: Arc::clone(low),
                high: Arc::clone(high),
                negated: false,
            });
        }
        predicates.push(PruneExpr::InList {
            column: column.clone(),
            values: values.clone(),
            negated: false,
        });
        let both = PruneExpr::Or(predicates.iter().take(3).cloned().collect());
        predicates.push(PruneExpr::And(vec![both.clone(), predicates[0].clone()]));
        predicates.push(both);
        for predicate in &predicates {
            for max_rows in [u64::MAX, 1000] {
                let _ = sidecar.select(predicate, max_rows);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compressed buffer declaring 35 TB decompressed (checksums intact): arrow's decoder
    /// would allocate that much and abort the process; it is an error naming the entry.
    #[test]
    fn an_impossible_decompressed_length_is_an_error() {
        let data = include_bytes!("testdata/fuzz-cache-huge-decompressed-length.arrow");
        let err = read_cache_entry(data).unwrap_err();
        assert!(err.contains("entry.arrow"), "{err}");
        assert!(err.contains("bytes decompressed (at most"), "{err}");
    }

    /// A block of the IPC footer with a negative body length: its end wrapped around to a
    /// place inside the file, and slicing the block panicked.
    #[test]
    fn a_block_with_a_negative_length_is_an_error() {
        let data = include_bytes!("testdata/fuzz-cache-negative-body-length.arrow");
        let err = read_cache_entry(data).unwrap_err();
        assert!(err.contains("entry.arrow"), "{err}");
        assert!(err.contains("an IPC block lies outside the file"), "{err}");
    }
}
