//! Engine settings: threads, batch and morsel sizes, the memory budget (or the handle of a
//! budget shared by concurrent queries, module `budget`), where spill files go and the order
//! of unsorted rows. Every layer may read a [`SessionConfig`], none is needed to build one.

use std::path::{Path, PathBuf};
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
    /// Hand a hit over unread: the query's stream ends at once, without a batch, and
    /// [`QueryStream::stored_result`](crate::QueryStream::stored_result) gives the stored
    /// result, whose bytes are checked and decoded only when [`StoredResult::read`](crate::StoredResult::read) is called.
    /// For a caller that keeps the result (a collected frame) rather than streaming it on, so
    /// that a hit costs the same at any size: only entries up to
    /// [`UNREAD_EAGER_CHECK_BYTES`](ooc_io::cache::UNREAD_EAGER_CHECK_BYTES) are checked whole
    /// when taken (damage there is a miss), larger ones when read (damage is an error then).
    /// Default: off (a hit streams its batches, each checked before it is handed out).
    pub defer_hits: bool,
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
            defer_hits: false,
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

    /// Hand hits over unread (see [`CacheSettings::defer_hits`]).
    pub fn with_deferred_hits(mut self, defer: bool) -> Self {
        self.defer_hits = defer;
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
/// that is lower (cgroup v2 or v1, the lowest limit on the way from the process's cgroup up to
/// the hierarchy's root); `None` where neither can be read.
pub fn default_memory_limit() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let total = meminfo.as_deref().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let cgroup = cgroup_memory_limit(Path::new("/"));
    let physical = match (total, cgroup) {
        (Some(t), Some(c)) => t.min(c),
        (t, c) => t.or(c)?,
    };
    Some((physical / 2) as usize)
}

/// Limits at or above this mean "no limit" (cgroup v1 writes `PAGE_COUNTER_MAX` pages,
/// 9223372036854771712 bytes with 4 KiB pages, where v2 writes `max`).
const CGROUP_NO_LIMIT: u64 = 1 << 62;

/// The memory limit of the cgroup this process runs in, read under `root` (`/` outside
/// tests): the lowest `memory.max` (v2) or `memory.limit_in_bytes` (v1) from the process's
/// cgroup up to the root of its hierarchy, found through `/proc/self/cgroup` and
/// `/proc/self/mountinfo`. `None` when there is no limit or nothing can be read.
pub(crate) fn cgroup_memory_limit(root: &Path) -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(root.join(path.trim_start_matches('/')));
    let own = read("/proc/self/cgroup").ok()?;
    let mountinfo = read("/proc/self/mountinfo").unwrap_or_default();
    let mut lowest: Option<u64> = None;
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (v2, file) = if id == "0" && controllers.is_empty() {
            (true, "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (false, "memory.limit_in_bytes")
        } else {
            continue;
        };
        let (mount_point, mount_root) = cgroup_mount(&mountinfo, v2).unwrap_or(if v2 {
            ("/sys/fs/cgroup".to_string(), "/".to_string())
        } else {
            ("/sys/fs/cgroup/memory".to_string(), "/".to_string())
        });
        // Inside a cgroup namespace the mount's root is the process's own cgroup and the
        // path reads "/"; otherwise the path lies below the mount's root.
        let relative = path
            .strip_prefix(mount_root.as_str())
            .unwrap_or(path)
            .trim_start_matches('/');
        let mut dir = root
            .join(mount_point.trim_start_matches('/'))
            .join(relative);
        let top = root.join(mount_point.trim_start_matches('/'));
        loop {
            let limit = std::fs::read_to_string(dir.join(file))
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .filter(|&limit| limit < CGROUP_NO_LIMIT);
            if let Some(limit) = limit {
                lowest = Some(lowest.map_or(limit, |l| l.min(limit)));
            }
            if dir == top || !dir.pop() || !dir.starts_with(&top) {
                break;
            }
        }
    }
    lowest
}

/// The mount point and mount root of the cgroup v2 hierarchy (`v2`) or of the v1 hierarchy
/// with the memory controller, from `/proc/self/mountinfo`.
fn cgroup_mount(mountinfo: &str, v2: bool) -> Option<(String, String)> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let mut rest = after.split(' ');
        let fstype = rest.next()?;
        let _source = rest.next();
        let options = rest.next().unwrap_or("");
        let matches = if v2 {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup" && options.split(',').any(|o| o == "memory")
        };
        if !matches {
            return None;
        }
        Some((fields.get(4)?.to_string(), fields.get(3)?.to_string()))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/` holding `files` (path → content).
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    const V2_MOUNT: &str =
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
    const V1_MOUNTS: &str = "\
25 24 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 25 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn cgroup_v2_takes_the_lowest_limit_up_to_the_root() {
        let root = tree(&[
            ("/proc/self/cgroup", "0::/user.slice/job.scope\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            ("/sys/fs/cgroup/user.slice/job.scope/memory.max", "max\n"),
            ("/sys/fs/cgroup/user.slice/memory.max", "536870912\n"),
            ("/sys/fs/cgroup/memory.max", "1073741824\n"),
        ]);
        assert_eq!(cgroup_memory_limit(root.path()), Some(512 << 20));
        // The process's own cgroup set lower wins.
        std::fs::write(
            root.path()
                .join("sys/fs/cgroup/user.slice/job.scope/memory.max"),
            "268435456",
        )
        .unwrap();
        assert_eq!(cgroup_memory_limit(root.path()), Some(256 << 20));
    }

    #[test]
    fn cgroup_v2_in_a_namespace_reads_the_mount_root() {
        // A container: its cgroup is mounted as the root of /sys/fs/cgroup, and
        // /proc/self/cgroup says "/".
        let root = tree(&[
            ("/proc/self/cgroup", "0::/\n"),
            (
                "/proc/self/mountinfo",
                "40 30 0:26 /kubepods/pod1 /sys/fs/cgroup ro - cgroup2 cgroup rw\n",
            ),
            ("/sys/fs/cgroup/memory.max", "2147483648\n"),
        ]);
        assert_eq!(cgroup_memory_limit(root.path()), Some(2 << 30));
    }

    #[test]
    fn cgroup_v1_reads_the_memory_hierarchy_and_ignores_its_no_limit_value() {
        let root = tree(&[
            (
                "/proc/self/cgroup",
                "12:cpu,cpuacct:/docker/abc\n9:memory:/docker/abc\n1:name=systemd:/docker/abc\n",
            ),
            ("/proc/self/mountinfo", V1_MOUNTS),
            (
                "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                "805306368\n",
            ),
            (
                "/sys/fs/cgroup/memory/docker/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(cgroup_memory_limit(root.path()), Some(768 << 20));
        std::fs::write(
            root.path()
                .join("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"),
            "9223372036854771712",
        )
        .unwrap();
        assert_eq!(cgroup_memory_limit(root.path()), None);
    }

    #[test]
    fn no_cgroup_or_no_limit_is_none() {
        assert_eq!(cgroup_memory_limit(tree(&[]).path()), None);
        let root = tree(&[
            ("/proc/self/cgroup", "0::/\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            ("/sys/fs/cgroup/memory.max", "max\n"),
        ]);
        assert_eq!(cgroup_memory_limit(root.path()), None);
        // Without mountinfo the usual mount point is assumed.
        let root = tree(&[
            ("/proc/self/cgroup", "0::/a\n"),
            ("/sys/fs/cgroup/a/memory.max", "1048576\n"),
        ]);
        assert_eq!(cgroup_memory_limit(root.path()), Some(1 << 20));
    }
}
