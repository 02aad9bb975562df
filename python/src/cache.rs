//! `ooc.cache`: the result cache's directory as `ooc cache stats | list | verify | prune |
//! clear` shows and trims it. Queries use the cache through `collect(cache=True)` or
//! `ooc.config(cache=True)`.

use std::path::PathBuf;

use ooc::cache::{CacheOptions, PruneReport, ResultCache};
use ooc::EngineError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::IntoPyResult;

/// The cache in `dir`, or the one `ooc.config` names, with its bound.
fn open(dir: Option<PathBuf>) -> PyResult<ResultCache> {
    let (_, settings) = crate::config::cache();
    let options = CacheOptions {
        dir: dir.unwrap_or(settings.options.dir.clone()),
        ..settings.options
    };
    ResultCache::open(&options).map_err(EngineError::from).py()
}

fn report<'py>(py: Python<'py>, report: &PruneReport) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("checked", report.checked)?;
    let removed = PyList::empty(py);
    for (key, reason) in &report.removed {
        let d = PyDict::new(py);
        d.set_item("key", key)?;
        d.set_item("reason", reason)?;
        removed.append(d)?;
    }
    out.set_item("removed", removed)?;
    out.set_item("freed_bytes", report.freed)?;
    out.set_item("leftovers_removed", report.leftovers)?;
    Ok(out)
}

#[pyfunction]
#[pyo3(signature = (dir=None))]
fn cache_info(py: Python<'_>, dir: Option<PathBuf>) -> PyResult<Bound<'_, PyDict>> {
    let cache = open(dir)?;
    let stats = py.detach(|| cache.stats());
    let out = PyDict::new(py);
    out.set_item("dir", stats.dir.display().to_string())?;
    out.set_item("entries", stats.entries)?;
    out.set_item("bytes", stats.bytes)?;
    out.set_item("max_size", stats.max_size)?;
    out.set_item("rows", stats.rows)?;
    out.set_item("compute_seconds", stats.compute_ms as f64 / 1000.0)?;
    out.set_item("leftovers", stats.leftovers)?;
    Ok(out)
}

#[pyfunction]
#[pyo3(signature = (dir=None))]
fn cache_entries(py: Python<'_>, dir: Option<PathBuf>) -> PyResult<Bound<'_, PyList>> {
    let cache = open(dir)?;
    let entries = py.detach(|| cache.entries());
    let out = PyList::empty(py);
    for e in entries {
        let m = &e.manifest;
        let d = PyDict::new(py);
        d.set_item("key", &m.key)?;
        d.set_item("rows", m.rows)?;
        d.set_item("bytes", e.disk_bytes)?;
        d.set_item("compute_seconds", m.compute_ms as f64 / 1000.0)?;
        d.set_item(
            "last_access",
            e.last_access
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        )?;
        d.set_item("created", m.created_ms as f64 / 1000.0)?;
        d.set_item("compression", &m.compression)?;
        d.set_item("schema", m.schema.clone())?;
        d.set_item(
            "inputs",
            m.inputs.iter().map(|i| i.path.clone()).collect::<Vec<_>>(),
        )?;
        d.set_item("plan", &m.plan)?;
        out.append(d)?;
    }
    Ok(out)
}

#[pyfunction]
#[pyo3(signature = (max_size=None, dir=None))]
fn cache_prune<'py>(
    py: Python<'py>,
    max_size: Option<&Bound<'py, PyAny>>,
    dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let cache = open(dir)?;
    let max = match max_size {
        Some(v) => crate::config::size_arg(v, "max_size")?.map(|b| b as u64),
        None => None,
    };
    let r = py.detach(|| cache.prune(max));
    report(py, &r)
}

#[pyfunction]
#[pyo3(signature = (dir=None))]
fn cache_verify(py: Python<'_>, dir: Option<PathBuf>) -> PyResult<Bound<'_, PyDict>> {
    let cache = open(dir)?;
    let r = py.detach(|| cache.verify());
    report(py, &r)
}

#[pyfunction]
#[pyo3(signature = (dir=None))]
fn cache_clear(py: Python<'_>, dir: Option<PathBuf>) -> PyResult<Bound<'_, PyDict>> {
    let cache = open(dir)?;
    let r = py.detach(|| cache.clear());
    report(py, &r)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cache_info, m)?)?;
    m.add_function(wrap_pyfunction!(cache_entries, m)?)?;
    m.add_function(wrap_pyfunction!(cache_prune, m)?)?;
    m.add_function(wrap_pyfunction!(cache_verify, m)?)?;
    m.add_function(wrap_pyfunction!(cache_clear, m)?)?;
    Ok(())
}
