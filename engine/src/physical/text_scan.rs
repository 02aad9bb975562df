//! Text scan: CSV and NDJSON files, streamed.
//!
//! Text files have no row groups or statistics to plan morsels from. One [`TextChunker`],
//! shared by the partitions behind a lock, cuts the files into chunks of whole records (a few
//! MiB, decompressing as it goes); a partition takes the next chunk and decodes it outside the
//! lock, so the threads decode in parallel while only the cutting is sequential. Memory is a
//! chunk and a batch per partition, whatever the size of the files. Records that do not read
//! as the schema says fail the query with their file and line, or, when the scan was asked to
//! skip them, are counted (`rows_skipped` in EXPLAIN ANALYZE and a warning of the query).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ooc_io::{ChunkDecoder, TextChunker, TextDataset};

use crate::error::Result;
use crate::metrics::OperatorMetrics;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// Scan of CSV or NDJSON files.
#[derive(Debug)]
pub(crate) struct TextScanExec {
    table_name: String,
    dataset: Arc<TextDataset>,
    projection: Vec<String>,
    indices: Vec<usize>,
    schema: SchemaRef,
    partitions: usize,
    chunk_bytes: usize,
    fetch: Option<usize>,
    chunker: Mutex<Option<TextChunker>>,
    rows_emitted: AtomicUsize,
    rows_skipped: AtomicU64,
    first_skip: Mutex<Option<String>>,
    metrics: Arc<OperatorMetrics>,
}

impl TextScanExec {
    /// A scan of `projection` (column names) of `dataset`, cut into chunks of about
    /// `chunk_bytes`, read by `partitions` threads, stopping after `fetch` rows.
    pub(crate) fn try_new(
        table_name: String,
        dataset: Arc<TextDataset>,
        projection: Vec<String>,
        partitions: usize,
        chunk_bytes: usize,
        fetch: Option<usize>,
    ) -> Result<Self> {
        let indices = dataset.projection_indices(&projection)?;
        let schema = Arc::new(dataset.schema().project(&indices)?);
        Ok(Self {
            table_name,
            dataset,
            projection,
            indices,
            schema,
            partitions: partitions.max(1),
            chunk_bytes,
            fetch,
            chunker: Mutex::new(None),
            rows_emitted: AtomicUsize::new(0),
            rows_skipped: AtomicU64::new(0),
            first_skip: Mutex::new(None),
            metrics: Arc::default(),
        })
    }

    /// The next chunk's decoder, or `None` when every file is read.
    fn next_decoder(&self, ctx: &TaskContext) -> Result<Option<(ChunkDecoder, bool)>> {
        let chunk = {
            let mut guard = self.chunker.lock().unwrap_or_else(|e| e.into_inner());
            let chunker = guard.get_or_insert_with(|| {
                TextChunker::new(
                    Arc::clone(&self.dataset),
                    self.chunk_bytes,
                    Some(Arc::clone(&ctx.bytes_read)),
                )
            });
            chunker.next_chunk()?
        };
        let Some(chunk) = chunk else {
            return Ok(None);
        };
        let last_of_file = chunk.last_of_file;
        let decoder = ChunkDecoder::new(
            Arc::clone(&self.dataset),
            chunk,
            self.indices.clone(),
            ctx.batch_size,
        )?;
        Ok(Some((decoder, last_of_file)))
    }

    /// Count the records a finished chunk skipped.
    fn record_skips(&self, decoder: &ChunkDecoder, ctx: &TaskContext) {
        let skipped = decoder.skipped_rows();
        if skipped == 0 {
            return;
        }
        let total = self.rows_skipped.fetch_add(skipped, Ordering::Relaxed) + skipped;
        self.metrics.set_extra("rows_skipped", total);
        let mut first = self.first_skip.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            if let Some(reason) = decoder.first_skip() {
                *first = Some(reason.to_string());
            }
        }
        ctx.set_warning(
            &format!("scan of {}", self.table_name),
            format!(
                "{total} bad records skipped in {} (the first: {})",
                self.table_name,
                first.as_deref().unwrap_or("?")
            ),
        );
    }
}

impl ExecutionPlan for TextScanExec {
    fn name(&self) -> &str {
        "TextScan"
    }

    fn details(&self) -> String {
        let format = match self.dataset.csv_settings() {
            Some((delimiter, header)) => {
                format!("csv delimiter={:?} header={header}", char::from(delimiter))
            }
            None => "ndjson".to_string(),
        };
        let mut out = format!(
            "{} {format} columns=[{}] files={} bytes={}",
            self.table_name,
            self.projection.join(", "),
            self.dataset.files().len(),
            self.dataset.total_bytes()
        );
        if self.dataset.options().skip_bad_rows {
            out.push_str(" skip_bad_rows");
        }
        if let Some(fetch) = self.fetch {
            out.push_str(&format!(" fetch={fetch}"));
        }
        out
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn output_partitions(&self) -> usize {
        self.partitions
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        if partition == 0 {
            ctx.progress
                .total
                .fetch_add(self.dataset.files().len() as u64, Ordering::Relaxed);
        }
        let stream = TextScanStream {
            exec: Arc::clone(&self),
            ctx,
            current: None,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

struct TextScanStream {
    exec: Arc<TextScanExec>,
    ctx: Arc<TaskContext>,
    /// The chunk being decoded, and whether it is its file's last.
    current: Option<(ChunkDecoder, bool)>,
}

impl TextScanStream {
    fn finish_chunk(&mut self) {
        if let Some((decoder, last_of_file)) = self.current.take() {
            self.exec.record_skips(&decoder, &self.ctx);
            if last_of_file {
                self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Iterator for TextScanStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let exec = Arc::clone(&self.exec);
        loop {
            if let Some(fetch) = exec.fetch {
                if exec.rows_emitted.load(Ordering::Relaxed) >= fetch {
                    return None;
                }
            }
            if let Some((decoder, _)) = self.current.as_mut() {
                match decoder.next() {
                    Some(Ok(batch)) => {
                        exec.rows_emitted
                            .fetch_add(batch.num_rows(), Ordering::Relaxed);
                        self.ctx
                            .progress
                            .rows
                            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                        return Some(Ok(batch));
                    }
                    Some(Err(e)) => {
                        self.finish_chunk();
                        return Some(Err(e.into()));
                    }
                    None => self.finish_chunk(),
                }
            }
            if let Err(e) = self.ctx.check_cancelled() {
                return Some(Err(e));
            }
            match exec.next_decoder(&self.ctx) {
                Ok(Some(next)) => self.current = Some(next),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
