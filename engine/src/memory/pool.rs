//! The memory pool and RAII reservations (see the module docs of [`crate::memory`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::metrics::OperatorMetrics;

/// A budget of bytes shared by all reservations of a query.
#[derive(Debug)]
pub struct MemoryPool {
    limit: usize,
    reserved: AtomicUsize,
    peak: AtomicUsize,
}

impl MemoryPool {
    /// A pool with the given limit in bytes (`usize::MAX` for no limit).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            reserved: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// A pool without a limit (the default until the bounded-memory work lands).
    pub fn unbounded() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently reserved by all consumers.
    pub fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// The highest value `reserved` has had.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn try_grow(&self, consumer: &str, bytes: usize) -> Result<()> {
        let mut current = self.reserved.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(bytes);
            if next > self.limit {
                return Err(EngineError::ResourcesExhausted {
                    consumer: consumer.to_string(),
                    requested: bytes,
                    reserved: current,
                    limit: self.limit,
                });
            }
            match self.reserved.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    return Ok(());
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn shrink(&self, bytes: usize) {
        self.reserved.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes held by one consumer; returned to the pool on drop.
#[derive(Debug)]
pub struct MemoryReservation {
    pool: Arc<MemoryPool>,
    consumer: String,
    size: usize,
    metrics: Option<Arc<OperatorMetrics>>,
}

impl MemoryReservation {
    /// An empty reservation for `consumer`, reporting to `metrics` if given.
    pub fn new(
        pool: &Arc<MemoryPool>,
        consumer: impl Into<String>,
        metrics: Option<Arc<OperatorMetrics>>,
    ) -> Self {
        Self {
            pool: Arc::clone(pool),
            consumer: consumer.into(),
            size: 0,
            metrics,
        }
    }

    /// Bytes currently held.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Grow by `bytes` or fail without changing anything.
    pub fn try_grow(&mut self, bytes: usize) -> Result<()> {
        self.pool.try_grow(&self.consumer, bytes)?;
        self.size += bytes;
        if let Some(metrics) = &self.metrics {
            metrics.add_memory(bytes as i64);
        }
        Ok(())
    }

    /// Give back `bytes` (at most what is held).
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.size);
        self.pool.shrink(bytes);
        self.size -= bytes;
        if let Some(metrics) = &self.metrics {
            metrics.add_memory(-(bytes as i64));
        }
    }

    /// Grow or shrink to exactly `size` bytes.
    pub fn try_resize(&mut self, size: usize) -> Result<()> {
        if size > self.size {
            self.try_grow(size - self.size)
        } else {
            self.shrink(self.size - size);
            Ok(())
        }
    }

    /// Release everything.
    pub fn free(&mut self) {
        self.shrink(self.size);
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_account_and_release() {
        let pool = MemoryPool::new(100);
        let mut a = MemoryReservation::new(&pool, "a", None);
        let mut b = MemoryReservation::new(&pool, "b", None);
        a.try_grow(60).unwrap();
        let err = b.try_grow(50).unwrap_err().to_string();
        assert!(err.contains("b needs 50"), "{err}");
        assert!(err.contains("100-byte"), "{err}");
        b.try_resize(40).unwrap();
        assert_eq!(pool.reserved(), 100);
        drop(a);
        assert_eq!(pool.reserved(), 40);
        b.try_resize(10).unwrap();
        assert_eq!(pool.reserved(), 10);
        drop(b);
        assert_eq!(pool.reserved(), 0);
        assert_eq!(pool.peak(), 100);
    }
}
