//! The manifest of a cache entry: a small JSON file (`KEY.json`) that says what the entry holds
//! (plan, inputs, schema, rows, bytes), where its data is (`KEY-NONCE.arrow`), and the CRC-32 of
//! every 64 KiB chunk of that data file, so that a reader can check what it maps, and only
//! what it reads (the chunks of the columns a scan projects).
//!
//! The manifest is the entry's commit point: it is written last (temporary file, synced,
//! renamed), so a data file without a manifest is never served. Its modification time is the
//! entry's last access (a hit touches it), which the size bound evicts by.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IoError, Result};

/// The version of the cache's layout; entries of another version are misses.
pub const CACHE_FORMAT: u32 = 2;

/// The data file is checksummed in chunks of this many bytes.
pub const CHUNK_BYTES: u64 = 64 * 1024;

/// One input file of a cached result, as it was when the result was computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// Absolute path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: u128,
    /// A hash of the content that identifies this version of the file: xxHash64 of a Parquet
    /// footer, or of the first and last 64 KiB of a text file.
    pub content_hash: u64,
}

/// What a cache entry holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`CACHE_FORMAT`] when written.
    pub format: u32,
    /// The version of the engine that computed the result.
    pub engine_version: String,
    /// The entry's key (32 hexadecimal digits).
    pub key: String,
    /// The key of the plan without its inputs' fingerprints: entries of one query over
    /// different versions of its files share it (`--explain` names what changed).
    pub plan_key: String,
    /// The data file's name, in the cache directory.
    pub data_file: String,
    /// The optimized plan, as text.
    pub plan: String,
    /// The files the result was computed from.
    pub inputs: Vec<InputRecord>,
    /// The result's columns (`name: type`).
    pub schema: Vec<String>,
    /// Rows.
    pub rows: u64,
    /// Batches.
    pub batches: u64,
    /// Size of the data file.
    pub bytes: u64,
    /// `none` or `zstd`.
    pub compression: String,
    /// CRC-32 (IEEE) of each [`CHUNK_BYTES`] chunk of the data file (the last one shorter), as
    /// eight hexadecimal digits each, concatenated.
    pub chunk_crcs: String,
    /// How long the result took to compute, in milliseconds.
    pub compute_ms: u64,
    /// When the entry was written, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

impl Manifest {
    /// Read and parse the manifest at `path`.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|source| IoError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|e| IoError::DamagedCacheEntry {
            path: path.to_path_buf(),
            message: format!("damaged cache manifest: {e}"),
        })
    }

    /// The chunk CRCs, decoded (`None` when malformed).
    pub(crate) fn chunk_crcs(&self) -> Option<Vec<u32>> {
        let text = self.chunk_crcs.as_bytes();
        if !text.len().is_multiple_of(8) {
            return None;
        }
        text.chunks(8)
            .map(|c| u32::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
            .collect()
    }

    /// The manifest as pretty-printed JSON.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}
