//! Process-wide settings of the Python library: `ooc.config(memory_limit=..., threads=...,
//! temp_dir=..., max_temp_size=...)`.
//!
//! Defaults come from the environment variables the CLI reads (`OOC_MEMORY_LIMIT`,
//! `OOC_THREADS`, `OOC_TEMP_DIR`, `OOC_MAX_TEMP_SIZE`), then from the engine's defaults (half
//! of the machine's memory). Every query uses the settings current when it starts running, so
//! a lazy frame built earlier runs with the latest limit.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ooc::{parse_size, SessionConfig};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn settings() -> &'static Mutex<SessionConfig> {
    static SETTINGS: OnceLock<Mutex<SessionConfig>> = OnceLock::new();
    SETTINGS.get_or_init(|| Mutex::new(from_environment()))
}

fn from_environment() -> SessionConfig {
    let mut config = SessionConfig::default();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(v) = var("OOC_MEMORY_LIMIT") {
        if let Ok(limit) = parse_limit(&v) {
            config = config.with_memory_limit(limit);
        }
    }
    if let Some(threads) = var("OOC_THREADS").and_then(|v| v.trim().parse::<usize>().ok()) {
        config = config.with_threads(threads);
    }
    if let Some(dir) = var("OOC_TEMP_DIR") {
        config = config.with_temp_dir(Some(PathBuf::from(dir)));
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

/// The settings a query started now runs with.
pub(crate) fn current() -> SessionConfig {
    settings().lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A size argument: an int (bytes), a string such as "512MB", or None.
fn size_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<usize>> {
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

/// Change settings (only the arguments given) and return all of them as a dict.
#[pyfunction]
#[pyo3(signature = (**kwargs))]
fn config<'py>(
    py: Python<'py>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut guard = settings().lock().unwrap_or_else(|e| e.into_inner());
    let mut next = guard.clone();
    if let Some(kwargs) = kwargs {
        for (key, value) in kwargs.iter() {
            let key: String = key.extract()?;
            match key.as_str() {
                "memory_limit" => next = next.with_memory_limit(size_arg(&value, "memory_limit")?),
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
                other => {
                    return Err(PyValueError::new_err(format!(
                        "unknown setting '{other}'; valid: memory_limit, threads, temp_dir, \
                         max_temp_size, batch_size"
                    )))
                }
            }
        }
    }
    *guard = next.clone();
    let out = PyDict::new(py);
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
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(config, m)?)?;
    Ok(())
}
