//! Exchange files: the partial results one task of a distributed query hands to the tasks of
//! the next stage (a bucket of a hash-partitioned output, partial aggregate states, a sorted
//! run). They share the format of cache entries, so they are read the same way (mapped,
//! checked against the CRC-32 of every 64 KiB chunk before use):
//!
//! ```text
//!  DIR/NAME.arrow        the batches, an Arrow IPC file (zstd-compressed on request)
//!  DIR/NAME.arrow.json   manifest: schema, rows, size, chunk CRCs (written last)
//! ```
//!
//! Both are written under temporary names, synced and renamed, the manifest last: a task killed
//! while writing leaves no file under a final name. A reader opens a file only by the path a
//! finished task reported, so the files of an attempt that died are never read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;

use super::manifest::Manifest;
use super::mapped::CachedResult;
use super::writer::{io_err, nonce, write_manifest, TrackedFile};
use super::ENGINE_VERSION;
use crate::error::{IoError, Result};

/// Exchange files up to this size are checked completely when opened; larger ones chunk by
/// chunk as their batches are decoded.
const EAGER_CHECK_BYTES: u64 = 16 << 20;

/// A finished exchange file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeFile {
    /// The data file (its manifest is beside it, with `.json` appended).
    pub path: PathBuf,
    /// Rows.
    pub rows: u64,
    /// Size of the data file.
    pub bytes: u64,
}

/// An exchange file being written.
pub struct ExchangeWriter {
    path: PathBuf,
    file: TrackedFile,
}

impl std::fmt::Debug for ExchangeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeWriter")
            .field("path", &self.path)
            .field("rows", &self.file.rows)
            .finish()
    }
}

fn manifest_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

impl ExchangeWriter {
    /// Start writing the exchange file `path` (its directory must exist) with `schema`.
    pub fn create(path: &Path, schema: &Schema, compression: bool) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let temp = dir.join(format!(".tmp-{name}-{}", nonce()));
        Ok(Self {
            path: path.to_path_buf(),
            file: TrackedFile::create(temp, schema, compression)?,
        })
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.file.bytes()
    }

    /// Append a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.file.write(batch)
    }

    /// Finish, sync and rename the data file, then its manifest.
    pub fn finish(mut self) -> Result<ExchangeFile> {
        let data_file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let manifest = self.file.finish(data_file)?;
        std::fs::rename(&self.file.temp, &self.path).map_err(io_err(&self.path))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(format!(".tmp-manifest-{}", nonce()));
        write_manifest(&manifest, &temp, &manifest_path(&self.path), &self.path)?;
        Ok(ExchangeFile {
            path: self.path.clone(),
            rows: manifest.rows,
            bytes: manifest.bytes,
        })
    }
}

/// Map the exchange file `path` (as a finished task reported it) for reading.
pub fn open_exchange_file(path: &Path) -> Result<Arc<CachedResult>> {
    let manifest = Manifest::read(&manifest_path(path))?;
    if manifest.engine_version != ENGINE_VERSION {
        return Err(IoError::DamagedCacheEntry {
            path: path.to_path_buf(),
            message: format!(
                "written by ooc {}, this is ooc {ENGINE_VERSION}",
                manifest.engine_version
            ),
        });
    }
    CachedResult::open(path, manifest, EAGER_CHECK_BYTES).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn written_files_read_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bucket-0.arrow");
        for compression in [false, true] {
            let b = batch();
            let mut w = ExchangeWriter::create(&path, &b.schema(), compression).unwrap();
            w.write(&b).unwrap();
            w.write(&b).unwrap();
            let file = w.finish().unwrap();
            assert_eq!(file.rows, 6);
            let read = open_exchange_file(&path).unwrap();
            assert_eq!(read.num_rows(), 6);
            let decoder = read.decoder(None).unwrap();
            assert_eq!(decoder.batch(1).unwrap(), b);
        }
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
        // A flipped byte is an error naming the file.
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(&path, bytes).unwrap();
        let err = open_exchange_file(&path).unwrap_err().to_string();
        assert!(err.contains("bucket-0.arrow"), "{err}");
    }

    #[test]
    fn a_writer_dropped_unfinished_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.arrow");
        let b = batch();
        let mut w = ExchangeWriter::create(&path, &b.schema(), false).unwrap();
        w.write(&b).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(open_exchange_file(&path).is_err());
    }
}
