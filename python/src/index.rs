//! `ooc.create_index`, `ooc.list_indexes` and `ooc.drop_index`: the secondary indexes of
//! Parquet files (roaring-bitmap sidecars), as `ooc index create | list | drop` builds,
//! lists and drops them. Queries use them by themselves (`ooc.config(use_indexes=False)`
//! turns that off).

use std::path::PathBuf;

use ooc::index::{create_indexes, drop_indexes, list_indexes, IndexBuildOptions, IndexReport};
use ooc::io::ParquetDataset;
use ooc::EngineError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::IntoPyResult;

fn dataset(path: &str) -> PyResult<ParquetDataset> {
    ParquetDataset::open(path).map_err(EngineError::from).py()
}

fn reports<'py>(py: Python<'py>, reports: &[IndexReport]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for r in reports {
        let d = PyDict::new(py);
        d.set_item("data_file", r.data_file.display().to_string())?;
        d.set_item(
            "sidecar",
            r.sidecar.as_ref().map(|p| p.display().to_string()),
        )?;
        d.set_item("bytes", r.bytes)?;
        d.set_item("ignored", r.ignored.clone())?;
        let columns = PyList::empty(py);
        for c in &r.columns {
            let cd = PyDict::new(py);
            cd.set_item("name", &c.name)?;
            cd.set_item("type", c.data_type.to_string())?;
            cd.set_item("distinct", c.distinct)?;
            cd.set_item("rows", c.rows)?;
            cd.set_item("nulls", c.nulls)?;
            cd.set_item("bytes", c.bytes)?;
            columns.append(cd)?;
        }
        d.set_item("columns", columns)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Build the indexes of `columns` for every file at `path`; one dict per file.
#[pyfunction]
#[pyo3(signature = (path, columns, index_dir = None, memory_limit = None))]
fn create_index<'py>(
    py: Python<'py>,
    path: String,
    columns: Vec<String>,
    index_dir: Option<PathBuf>,
    memory_limit: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let config = crate::config::current();
    let given = match &memory_limit {
        Some(v) => crate::config::size_arg(v, "memory_limit")?,
        None => None,
    };
    let limit = given.or(config.memory_limit).unwrap_or(usize::MAX / 4);
    let options = IndexBuildOptions {
        index_dir: index_dir.or(config.index_dir.clone()),
        memory_limit: limit,
        temp_dir: config.temp_dir.clone(),
        progress: None,
    };
    let built = py
        .detach(|| {
            let dataset = ParquetDataset::open(&path)?;
            create_indexes(&dataset, &columns, &options)
        })
        .map_err(EngineError::from)
        .py()?;
    reports(py, &built)
}

/// The indexes of the files at `path` (stale or damaged ones say why they are ignored).
#[pyfunction]
#[pyo3(signature = (path, index_dir = None))]
fn list_index<'py>(
    py: Python<'py>,
    path: String,
    index_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyList>> {
    let index_dir = index_dir.or(crate::config::current().index_dir);
    let data = py.detach(|| dataset(&path))?;
    reports(py, &list_indexes(&data, index_dir.as_deref()))
}

/// Remove the indexes of `columns` (all when None) of the files at `path`.
#[pyfunction]
#[pyo3(signature = (path, columns = None, index_dir = None))]
fn drop_index<'py>(
    py: Python<'py>,
    path: String,
    columns: Option<Vec<String>>,
    index_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyList>> {
    let index_dir = index_dir.or(crate::config::current().index_dir);
    let data = py.detach(|| dataset(&path))?;
    let dropped = drop_indexes(&data, columns.as_deref(), index_dir.as_deref())
        .map_err(EngineError::from)
        .py()?;
    reports(py, &dropped)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(create_index, m)?)?;
    m.add_function(wrap_pyfunction!(list_index, m)?)?;
    m.add_function(wrap_pyfunction!(drop_index, m)?)?;
    Ok(())
}
