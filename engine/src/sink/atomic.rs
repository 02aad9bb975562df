//! Write-to-temporary-then-rename files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// A file that appears under its final name only when [`commit`](AtomicFile::commit) succeeds.
/// Dropping it uncommitted deletes the temporary file.
pub(crate) struct AtomicFile {
    destination: PathBuf,
    temporary: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Create the temporary file next to `destination`.
    pub(crate) fn create(destination: &Path) -> Result<Self> {
        let dir = destination
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = destination
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("output");
        let temporary = dir.join(format!(".{name}.ooc-tmp-{}", std::process::id()));
        // The error names the destination (the temporary file sits next to it and shares
        // its fate: a missing directory, no permission, a full disk).
        let file = File::create(&temporary).map_err(|source| EngineError::Output {
            path: destination.display().to_string(),
            source,
        })?;
        Ok(Self {
            destination: destination.to_path_buf(),
            temporary,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The writer for the content.
    pub(crate) fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("writer present until commit")
    }

    /// Flush, sync and rename over the destination.
    pub(crate) fn commit(mut self) -> Result<()> {
        let output_err = |source| EngineError::Output {
            path: self.destination.display().to_string(),
            source,
        };
        let writer = self.writer.take().expect("writer present until commit");
        let file = writer
            .into_inner()
            .map_err(|e| output_err(e.into_error()))?;
        file.sync_all().map_err(output_err)?;
        drop(file);
        std::fs::rename(&self.temporary, &self.destination).map_err(output_err)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}
