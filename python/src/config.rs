//! Process-wide settings of the Python library: `ooc.config(memory_limit=..., threads=...,
//! temp_dir=..., max_temp_size=..., cache=..., cache_dir=...)`.
//!
//! `memory_limit` is the process's budget, not each query's: queries that run at the same
//! time (from several threads) share it fairly, each holding at most its share (the engine's
//! `MemoryBudget`). Setting it again starts a new budget for the queries started after.
//!
//! Defaults come from the environment variables the CLI reads (`OOC_MEMORY_LIMIT`,
//! `OOC_THREADS`, `OOC_TEMP_DIR`, `OOC_MAX_TEMP_SIZE`, `OOC_INDEX_DIR`), then from the engine's defaults (half
//! of the machine's memory). Every query uses the settings current when it starts running, so
//! a lazy frame built earlier runs with the latest limit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use std::time::Duration;

use ooc::{parse_size, CacheSettings, MemoryBudget, SessionConfig};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn settings() -> &'static Mutex<SessionConfig> {
    static SETTINGS: OnceLock<Mutex<SessionConfig>> = OnceLock::new();
    SETTINGS.get_or_init(|| Mutex::new(from_environment()))
}

/// Most queries the process's budget runs at once (`max_concurrent_queries`).
static MAX_CONCURRENT: AtomicUsize = AtomicUsize::new(MemoryBudget::DEFAULT_MAX_RUNNING);

/// `config` with a new process budget of `limit` bytes (none: unlimited).
fn with_budget(config: SessionConfig, limit: Option<usize>) -> SessionConfig {
    match limit {
        Some(limit) => config.with_memory_budget(MemoryBudget::with_max_running(
            limit,
            MAX_CONCURRENT.load(Ordering::Relaxed),
        )),
        None => config.with_shared_memory_limit(None),
    }
}

fn from_environment() -> SessionConfig {
    // The budget is the process's: queries running at the same time (from threads) share it.
    let default = SessionConfig::default();
    let limit = default.memory_limit;
    let mut config = with_budget(default, limit);
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(v) = var("OOC_MEMORY_LIMIT") {
        if let Ok(limit) = parse_limit(&v) {
            config = with_budget(config, limit);
        }
    }
    if let Some(threads) = var("OOC_THREADS").and_then(|v| v.trim().parse::<usize>().ok()) {
        config = config.with_threads(threads);
    }
    if let Some(dir) = var("OOC_TEMP_DIR") {
        config = config.with_temp_dir(Some(PathBuf::from(dir)));
    }
    if let Some(dir) = var("OOC_INDEX_DIR") {
        config = config.with_index_dir(Some(PathBuf::from(dir)));
    }
    if let Some(size) = var("OOC_MAX_TEMP_SIZE").and_then(|v| parse_size(&v).ok()) {
        config = config.with_max_temp_size(Some(size as u64));
    }
    config
}

fn parse_limit(text: &str) -> Result<Option<usize>, String> {
    if matches!(
        text.trim().to_lowercase().as_str(),
        "none" | "unlimited" | "off"
    ) {
        return Ok(None);
    }
    parse_size(text).map(Some)
}

/// The result cache's settings, kept while caching is off so that turning it on again keeps
/// the directory and bound; and whether `collect()` uses it by default.
fn cache_settings() -> &'static Mutex<(bool, CacheSettings)> {
    static CACHE: OnceLock<Mutex<(bool, CacheSettings)>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(cache_from_environment()))
}

/// `OOC_CACHE`, `OOC_CACHE_DIR` (through the default directory), `OOC_CACHE_MAX_SIZE`,
/// `OOC_CACHE_MIN_TIME` (seconds).
fn cache_from_environment() -> (bool, CacheSettings) {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let on = var("OOC_CACHE").is_some_and(|v| {
        matches!(
            v.trim().to_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    });
    let mut settings = CacheSettings::new();
    if let Some(size) = var("OOC_CACHE_MAX_SIZE").and_then(|v| parse_size(&v).ok()) {
        settings = settings.with_max_size(Some(size as u64));
    }
    if let Some(secs) = var("OOC_CACHE_MIN_TIME").and_then(|v| v.trim().parse::<f64>().ok()) {
        if secs.is_finite() && secs >= 0.0 {
            settings = settings.with_min_compute(Duration::from_secs_f64(secs));
        }
    }
    (on, settings)
}

/// The cache settings now (whether `collect()` caches by default, and where).
pub(crate) fn cache() -> (bool, CacheSettings) {
    cache_settings()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The settings a query started now runs with; `cache`: cache its result (`Some(true)`), not
/// (`Some(false)`), or as `config(cache=...)` says (`None`).
pub(crate) fn current_with_cache(cache: Option<bool>) -> SessionConfig {
    let config = current();
    let (default_on, settings) = self::cache();
    if cache.unwrap_or(default_on) {
        config.with_cache(Some(settings))
    } else {
        config
    }
}

/// The settings a query started now runs with.
pub(crate) fn current() -> SessionConfig {
    settings().lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A size argument: an int (bytes), a string such as "512MB", or None.
pub(crate) fn size_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<usize>> {
    if value.is_none() {
        return Ok(None);
    }
    if let Ok(n) = value.extract::<i64>() {
        if n < 0 {
            return Err(PyValueError::new_err(format!(
                "{what} must not be negative"
            )));
        }
        return Ok(Some(n as usize));
    }
    let text: String = value.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a number of bytes or a size such as '512MB'"
        ))
    })?;
    parse_limit(&text).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

/// A size argument as `ooc.config` reads it (bytes, or a string such as "512MB"; None stays
/// None), for the Python side's options (`ooc.distributed`); `what` names it in errors.
#[pyfunction(name = "parse_size")]
#[pyo3(signature = (value, what))]
fn parse_size_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<usize>> {
    size_arg(value, what)
}

/// Change settings (only the arguments given) and return all of them as a dict.
#[pyfunction]
#[pyo3(signature = (**kwargs))]
fn config<'py>(
    py: Python<'py>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut guard = settings().lock().unwrap_or_else(|e| e.into_inner());
    let mut next = guard.clone();
    let mut cache_guard = cache_settings().lock().unwrap_or_else(|e| e.into_inner());
    let (mut cache_on, mut cache) = cache_guard.clone();
    let mut limit = None;
    let mut max_concurrent = None;
    if let Some(kwargs) = kwargs {
        for (key, value) in kwargs.iter() {
            let key: String = key.extract()?;
            match key.as_str() {
                "memory_limit" => limit = Some(size_arg(&value, "memory_limit")?),
                "max_concurrent_queries" => {
                    let n: Option<usize> = value.extract()?;
                    let n = n.unwrap_or(MemoryBudget::DEFAULT_MAX_RUNNING);
                    if n == 0 {
                        return Err(PyValueError::new_err(
                            "max_concurrent_queries must be at least 1",
                        ));
                    }
                    max_concurrent = Some(n);
                }
                "threads" => {
                    let threads: Option<usize> = value.extract()?;
                    let default = SessionConfig::default().threads;
                    next = next.with_threads(threads.unwrap_or(default));
                }
                "temp_dir" => {
                    let dir: Option<PathBuf> = value.extract()?;
                    next = next.with_temp_dir(dir);
                }
                "max_temp_size" => {
                    next = next
                        .with_max_temp_size(size_arg(&value, "max_temp_size")?.map(|s| s as u64))
                }
                "batch_size" => {
                    let rows: usize = value.extract()?;
                    next = next.with_batch_size(rows);
                }
                "use_indexes" => {
                    let on: bool = value.extract()?;
                    next = next.with_indexes(on);
                }
                "index_dir" => {
                    let dir: Option<PathBuf> = value.extract()?;
                    next = next.with_index_dir(dir);
                }
                "cache" => cache_on = value.extract()?,
                "cache_dir" => {
                    let dir: Option<PathBuf> = value.extract()?;
                    let dir = dir.unwrap_or_else(ooc::cache::default_cache_dir);
                    cache.options.dir = dir;
                }
                "cache_max_size" => {
                    cache =
                        cache.with_max_size(size_arg(&value, "cache_max_size")?.map(|s| s as u64));
                }
                "cache_min_time" => {
                    let secs: Option<f64> = value.extract()?;
                    let secs = secs.unwrap_or(0.1);
                    if !secs.is_finite() || secs < 0.0 {
                        return Err(PyValueError::new_err(
                            "cache_min_time must be a number of seconds, at least 0",
                        ));
                    }
                    cache = cache.with_min_compute(Duration::from_secs_f64(secs));
                }
                "cache_compression" => {
                    let on: bool = value.extract()?;
                    cache = cache.with_compression(on);
                }
                other => {
                    return Err(PyValueError::new_err(format!(
                        "unknown setting '{other}'; valid: memory_limit, threads, temp_dir, \
                         max_temp_size, batch_size, max_concurrent_queries, use_indexes, \
                         index_dir, cache, cache_dir, cache_max_size, cache_min_time, \
                         cache_compression"
                    )))
                }
            }
        }
    }
    // A new budget when its limit or its number of queries changes (running queries keep
    // theirs).
    if let Some(n) = max_concurrent {
        MAX_CONCURRENT.store(n, Ordering::Relaxed);
    }
    if limit.is_some() || max_concurrent.is_some() {
        let limit = limit.unwrap_or(next.memory_limit);
        next = with_budget(next, limit);
    }
    *guard = next.clone();
    *cache_guard = (cache_on, cache.clone());
    let out = PyDict::new(py);
    out.set_item("cache", cache_on)?;
    out.set_item("cache_dir", cache.options.dir.display().to_string())?;
    out.set_item("cache_max_size", cache.options.max_size)?;
    out.set_item("cache_min_time", cache.min_compute.as_secs_f64())?;
    out.set_item("cache_compression", cache.options.compression)?;
    out.set_item("memory_limit", next.memory_limit)?;
    out.set_item("threads", next.threads)?;
    out.set_item(
        "temp_dir",
        next.temp_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    )?;
    out.set_item("max_temp_size", next.max_temp_size)?;
    out.set_item("batch_size", next.batch_size)?;
    out.set_item("use_indexes", next.use_indexes)?;
    out.set_item(
        "index_dir",
        next.index_dir.as_ref().map(|p| p.display().to_string()),
    )?;
    out.set_item(
        "max_concurrent_queries",
        MAX_CONCURRENT.load(Ordering::Relaxed),
    )?;
    Ok(out)
}

/// The process's memory budget now: its limit, the bytes the running queries hold together,
/// the most they held at once since the budget was set, how many queries run, how many it
/// runs at most and how many had to wait for their turn.
#[pyfunction]
fn memory_budget(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let config = current();
    let budget = config.memory_budget.as_ref();
    let out = PyDict::new(py);
    out.set_item("limit", budget.map(|b| b.limit()))?;
    out.set_item("reserved", budget.map(|b| b.reserved()))?;
    out.set_item("peak_reserved", budget.map(|b| b.peak_reserved()))?;
    out.set_item("active_queries", budget.map(|b| b.active_queries()))?;
    out.set_item("max_running", budget.map(|b| b.max_running()))?;
    out.set_item("queries_waited", budget.map(|b| b.queries_waited()))?;
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(config, m)?)?;
    m.add_function(wrap_pyfunction!(parse_size_arg, m)?)?;
    m.add_function(wrap_pyfunction!(memory_budget, m)?)?;
    Ok(())
}
