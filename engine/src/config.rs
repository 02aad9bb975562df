//! Engine settings: threads, batch and morsel sizes, the memory budget (or the handle of a
//! budget shared by concurrent queries, module `budget`), where spill files go and the order
//! of unsorted rows. Every layer may read a [`SessionConfig`], none is needed to build one.

use std::path::PathBuf;
use std::sync::Arc;

use crate::budget::MemoryBudget;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Worker threads (scan partitions). Default: the number of CPUs.
    pub threads: usize,
    /// Target rows per batch. Default: 8192.
    pub batch_size: usize,
    /// Most rows of one morsel, the unit of work a scan thread claims: a row group with more
    /// rows is read in slices. A page that straddles two slices (and each column's dictionary
    /// page) is decompressed by both, so slices cost more the smaller they are; the memory
    /// budget and the number of threads may make them smaller still. Default: 1048576.
    pub morsel_rows: usize,
    /// Memory budget in bytes for operator state (`None`: unlimited). Default: half of the
    /// machine's memory (or of the cgroup limit, when lower); see [`default_memory_limit`].
    pub memory_limit: Option<usize>,
    /// A budget shared by every query run with this config (and its clones) while they run
    /// at the same time, each holding at most its fair share; `None`: each query has
    /// `memory_limit` to itself. Set by [`with_shared_memory_limit`](Self::with_shared_memory_limit).
    pub memory_budget: Option<Arc<MemoryBudget>>,
    /// Directory under which spill files are written. Default: the system temp directory.
    pub temp_dir: Option<PathBuf>,
    /// Most bytes of spill files a query may hold at once. Default: unlimited.
    pub max_temp_size: Option<u64>,
    /// The order in which a query's rows come out when it does not sort them. Default:
    /// [`RowOrder::Any`].
    pub row_order: RowOrder,
    /// Whether scans use the secondary indexes built for their files (`ooc index create`,
    /// see `ooc_io::index`). Default: true.
    pub use_indexes: bool,
    /// Where scans look for index sidecars first (then beside the data files). Default: none.
    pub index_dir: Option<PathBuf>,
    /// Keep results in (and serve them from) a result cache on disk; `None`: no caching.
    /// Default: none. See [`CacheSettings`].
    pub cache: Option<CacheSettings>,
}

/// How queries use the result cache (`ooc_io::cache`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Where entries live, and the cache's size bound.
    pub options: ooc_io::cache::CacheOptions,
    /// Results computed faster than this are not stored (they are not worth the disk).
    /// Default: 100 ms.
    pub min_compute: std::time::Duration,
}

impl CacheSettings {
    /// Cache in the platform's user cache directory ([`ooc_io::cache::default_cache_dir`])
    /// with the default size bound, storing results that took at least 100 ms.
    pub fn new() -> Self {
        Self::in_dir(ooc_io::cache::default_cache_dir())
    }

    /// Cache in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            options: ooc_io::cache::CacheOptions::new(dir),
            min_compute: std::time::Duration::from_millis(100),
        }
    }

    /// Bound the cache to `bytes` (`None`: the default bound).
    pub fn with_max_size(mut self, bytes: Option<u64>) -> Self {
        self.options.max_size = bytes;
        self
    }

    /// Store only results that took at least `min` to compute.
    pub fn with_min_compute(mut self, min: std::time::Duration) -> Self {
        self.min_compute = min;
        self
    }

    /// Compress new entries with zstd.
    pub fn with_compression(mut self, compression: bool) -> Self {
        self.options.compression = compression;
        self
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self::new()
    }
}

/// The order of the rows of a query without `ORDER BY`.
///
/// Threads claim slices of the input as they become free, so by default rows come out in the
/// order the work finishes, which differs from run to run. [`RowOrder::Source`] and
/// [`RowOrder::Shuffled`] make it reproducible for plans that stream a Parquet scan through
/// filters and projections: the scan's slices are read by several threads at once but handed
/// on one after another, in the files' order or in an order drawn from a seed. Plans with
/// joins, aggregates or windows produce the order they produce either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowOrder {
    /// Whatever order the threads finish in (the fastest).
    #[default]
    Any,
    /// The order of the rows in the files.
    Source,
    /// The files' slices in an order drawn from `seed` (rows inside a slice keep their order).
    Shuffled {
        /// The seed of the permutation: the same seed gives the same order.
        seed: u64,
    },
}

/// The default memory budget: half of the physical memory, or of the cgroup memory limit when
/// that is lower; `None` where neither can be read.
pub fn default_memory_limit() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let total = meminfo.as_deref().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let physical = match (total, cgroup) {
        (Some(t), Some(c)) => t.min(c),
        (t, c) => t.or(c)?,
    };
    Some((physical / 2) as usize)
}

/// Parse a size such as `512MB`, `2GB`, `1.5GiB` or `4096` (bytes); units are powers of 1024.
pub fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim().to_uppercase();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid size '{text}' (examples: 512MB, 2GB)"))?;
    let multiplier: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0f64.powi(4),
        other => {
            return Err(format!(
                "unknown size unit '{other}' in '{text}' (use KB, MB, GB)"
            ))
        }
    };
    Ok((number * multiplier) as usize)
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            batch_size: 8192,
            morsel_rows: 1 << 20,
            memory_limit: default_memory_limit(),
            memory_budget: None,
            temp_dir: None,
            max_temp_size: None,
            row_order: RowOrder::Any,
            use_indexes: true,
            index_dir: None,
            cache: None,
        }
    }
}

impl SessionConfig {
    /// Use secondary indexes in scans, or not.
    pub fn with_indexes(mut self, use_indexes: bool) -> Self {
        self.use_indexes = use_indexes;
        self
    }

    /// Look for index sidecars in `dir` first (then beside the data files).
    pub fn with_index_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.index_dir = dir;
        self
    }

    /// Set the number of worker threads (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Set the batch size in rows (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Set the memory budget in bytes of each query (`None`: unlimited).
    pub fn with_memory_limit(mut self, limit: Option<usize>) -> Self {
        self.memory_limit = limit;
        self.memory_budget = None;
        self
    }

    /// Set one memory budget of `limit` bytes for all the queries run with this config (and
    /// its clones): queries running at the same time share it fairly (see [`MemoryBudget`]).
    /// `None`: unlimited.
    pub fn with_shared_memory_limit(mut self, limit: Option<usize>) -> Self {
        self.memory_limit = limit;
        self.memory_budget = limit.map(MemoryBudget::new);
        self
    }

    /// Share `budget` among all the queries run with this config (and its clones); its limit
    /// becomes `memory_limit`. See [`MemoryBudget`].
    pub fn with_memory_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        self.memory_limit = Some(budget.limit());
        self.memory_budget = Some(budget);
        self
    }

    /// The budget a query planned now plans for: its fixed limit, or the share of a shared
    /// budget it will have when it starts.
    pub(crate) fn planning_memory_limit(&self) -> Option<usize> {
        match &self.memory_budget {
            Some(budget) => Some(budget.share_of_next()),
            None => self.memory_limit,
        }
    }

    /// Set the directory for spill files.
    pub fn with_temp_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.temp_dir = dir;
        self
    }

    /// Set the most bytes of spill files a query may hold at once (`None`: unlimited).
    pub fn with_max_temp_size(mut self, bytes: Option<u64>) -> Self {
        self.max_temp_size = bytes;
        self
    }

    /// Cache results (`Some`) or not (`None`).
    pub fn with_cache(mut self, cache: Option<CacheSettings>) -> Self {
        self.cache = cache;
        self
    }

    /// Set the order of rows of queries that do not sort them.
    pub fn with_row_order(mut self, order: RowOrder) -> Self {
        self.row_order = order;
        self
    }
}
