//! [`StoredResult`]: a cache hit handed over unread (`CacheSettings::defer_hits`), for a
//! caller that keeps a query's result rather than streaming it on: taking it costs the same
//! whatever its size (the entry is mapped, its header and footer checked), and its bytes are
//! checked against their CRC-32s and decoded when [`StoredResult::read`] is first called.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ooc_io::cache::CachedResult;

use crate::error::Result;

/// A result in the result cache, mapped but not read yet.
#[derive(Clone, Debug)]
pub struct StoredResult {
    result: Arc<CachedResult>,
}

impl StoredResult {
    pub(crate) fn new(result: Arc<CachedResult>) -> Self {
        Self { result }
    }

    /// The result's schema.
    pub fn schema(&self) -> SchemaRef {
        self.result.schema()
    }

    /// Rows stored.
    pub fn num_rows(&self) -> u64 {
        self.result.num_rows()
    }

    /// Size of the entry's data file (what reading it maps).
    pub fn bytes(&self) -> u64 {
        self.result.manifest().bytes
    }

    /// The stored entry, for a scan of it (`Session::read_cached`): a query over the result
    /// reads and checks only the columns and batches it needs.
    pub fn entry(&self) -> Arc<CachedResult> {
        Arc::clone(&self.result)
    }

    /// The first batches, in order, until they hold at least `rows` rows (all of them when
    /// the result has fewer), each checked before it is decoded: what showing the head of a
    /// result reads.
    pub fn head(&self, rows: usize) -> Result<Vec<RecordBatch>> {
        let decoder = self.result.decoder(None)?;
        let mut batches = Vec::new();
        let mut taken = 0;
        for i in 0..self.result.num_batches() {
            if taken >= rows {
                break;
            }
            let batch = decoder.batch(i)?;
            taken += batch.num_rows();
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        Ok(batches)
    }

    /// Every batch (without empty ones), each checked before it is decoded, with `threads - 1`
    /// helpers checking ahead. Uncompressed columns point into the mapped file. A damaged
    /// entry is an error naming the file, and is removed from the cache.
    pub fn read(&self, threads: usize) -> Result<Vec<RecordBatch>> {
        self.result.check_in_background(threads.saturating_sub(1));
        self.head(usize::MAX)
    }
}
