//! Write-to-temporary-then-rename files.
//!
//! The rows go to a hidden temporary file next to the destination, `.NAME.ooc-tmp-PID-N`,
//! renamed over the destination once complete: the destination is either the old file or
//! the whole new one, never a part. A process killed outright (no destructor runs) leaves
//! its temporary file behind; the process holds an exclusive advisory lock on it while it
//! writes (the kernel releases it when the process ends, however it ends), so the next write
//! to the same destination removes every such file whose lock it can take. The lock is taken
//! under a `.new` name first and the file renamed to its temporary name locked, so no writer
//! ever sees a temporary file that is unlocked and alive; a `.new` file is only removed once
//! it is a minute old. Nothing ever reads a temporary file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{EngineError, Result};

/// Distinguishes the temporary files of one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Age after which a `.new` file (its lock not taken yet when its process died) is removed.
const UNREADY_AGE: Duration = Duration::from_secs(60);

/// A file that appears under its final name only when [`commit`](AtomicFile::commit) succeeds.
/// Dropping it uncommitted deletes the temporary file.
pub(crate) struct AtomicFile {
    destination: PathBuf,
    temporary: PathBuf,
    writer: Option<BufWriter<File>>,
    /// The first error of a write through this file's `Write` (a full disk, a file size
    /// limit), which writers of formats wrap in errors of their own.
    failed: Option<(std::io::ErrorKind, String)>,
}

impl AtomicFile {
    /// Create the temporary file next to `destination`, after removing those that killed
    /// processes left for it.
    pub(crate) fn create(destination: &Path) -> Result<Self> {
        let dir = destination
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = destination
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("output");
        let prefix = format!(".{name}.ooc-tmp-");
        remove_abandoned(dir, &prefix);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let temporary = dir.join(format!("{prefix}{}-{n}", std::process::id()));
        let unready = dir.join(format!("{prefix}{}-{n}.new", std::process::id()));
        // The error names the destination (the temporary file sits next to it and shares
        // its fate: a missing directory, no permission, a full disk).
        let output_err = |source| EngineError::Output {
            path: destination.display().to_string(),
            source,
        };
        let file = File::create(&unready).map_err(output_err)?;
        // Where the file system has no advisory locks the file stays unlocked, and no other
        // writer can take a lock on it to remove it either.
        let _ = file.lock();
        if let Err(e) = std::fs::rename(&unready, &temporary) {
            let _ = std::fs::remove_file(&unready);
            return Err(output_err(e));
        }
        Ok(Self {
            destination: destination.to_path_buf(),
            temporary,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            failed: None,
        })
    }

    /// `error` of a writer that wrote through this file, told as what it is when a write
    /// failed underneath: the output that could not be written and why (`cannot write
    /// out.parquet: No space left on device`), rather than the format writer's wrapping.
    pub(crate) fn explain(&self, error: EngineError) -> EngineError {
        match &self.failed {
            Some((kind, message)) => EngineError::Output {
                path: self.destination.display().to_string(),
                source: std::io::Error::new(*kind, message.clone()),
            },
            None => error,
        }
    }

    fn record<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            if self.failed.is_none() && e.kind() != std::io::ErrorKind::Interrupted {
                self.failed = Some((e.kind(), e.to_string()));
            }
        }
        result
    }

    /// The writer for the content.
    pub(crate) fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("writer present until commit")
    }

    /// Flush, sync and rename over the destination (still locked while it is renamed).
    pub(crate) fn commit(mut self) -> Result<()> {
        let output_err = |source| EngineError::Output {
            path: self.destination.display().to_string(),
            source,
        };
        let writer = self.writer.take().expect("writer present until commit");
        // The last buffered bytes and the sync can fail as any write can (a full disk): the
        // temporary file goes then, as on a rename that fails.
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all().map(|()| file))
            .and_then(|file| std::fs::rename(&self.temporary, &self.destination).map(|()| file));
        match file {
            Ok(file) => {
                drop(file);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&self.temporary);
                Err(output_err(e))
            }
        }
    }
}

/// Write `text` to `path` atomically (a temporary file next to it, then a rename).
pub fn write_text_file(path: &Path, text: &str) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.writer()
        .write_all(text.as_bytes())
        .map_err(|source| EngineError::Output {
            path: path.display().to_string(),
            source,
        })?;
    file.commit()
}

/// Remove the files in `dir` named `prefix…` whose writer is gone: those this process can
/// lock (and `.new` files a minute old). Best effort: what cannot be read or removed stays.
fn remove_abandoned(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        if !name.starts_with(prefix) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        if name.ends_with(".new") {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= UNREADY_AGE);
            if old {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.writer().write(buf);
        self.record(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.writer().flush();
        self.record(result)
    }
}

impl std::io::Seek for AtomicFile {
    fn seek(&mut self, position: std::io::SeekFrom) -> std::io::Result<u64> {
        let result = self.writer().seek(position);
        self.record(result)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_temporaries_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.csv");
        // Left by a killed writer: unlocked.
        let abandoned = dir.path().join(".out.csv.ooc-tmp-1-0");
        std::fs::write(&abandoned, b"half").unwrap();
        // Being written by another writer: locked.
        let mut live = AtomicFile::create(&destination).unwrap();
        live.write_all(b"a,b\n").unwrap();
        // Another destination's temporary is not touched.
        let other = dir.path().join(".other.csv.ooc-tmp-1-0");
        std::fs::write(&other, b"x").unwrap();
        let mut next = AtomicFile::create(&destination).unwrap();
        assert!(!abandoned.exists());
        assert!(live.temporary.exists() && other.exists());
        next.write_all(b"1,2\n").unwrap();
        next.commit().unwrap();
        assert_eq!(std::fs::read(&destination).unwrap(), b"1,2\n");
        live.commit().unwrap();
        assert_eq!(std::fs::read(&destination).unwrap(), b"a,b\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
