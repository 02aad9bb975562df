//! Distributed execution for `ooc.distributed`: a lazy frame's plan split into stages
//! ([`PyDistributedPlan`]), the function a worker runs on a fragment ([`run_fragment`]), and
//! the root run in the driver's process. Scheduling (which executor, in which order, retries)
//! is the Python side's: this module only hands out fragments and records reports.

use std::path::PathBuf;
use std::sync::Mutex;

use ooc::distributed::{DistributedOptions, DistributedPlan, TaskReport};
use ooc::sink::{NpyType, OutputFormat};
use ooc::SessionConfig;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::config;
use crate::errors::IntoPyResult;
use crate::frame::{PyDataFrame, PyLazyFrame};
use crate::run::{Running, Work};

/// A lazy frame's plan cut into stages, and the reports of the tasks that ran.
#[pyclass(name = "PyDistributedPlan", module = "ooc._ooc", frozen)]
pub(crate) struct PyDistributedPlan {
    plan: Mutex<DistributedPlan>,
    config: SessionConfig,
}

impl PyDistributedPlan {
    fn plan(&self) -> std::sync::MutexGuard<'_, DistributedPlan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn report_dict<'py>(py: Python<'py>, report: &TaskReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("stage", report.stage)?;
    d.set_item("task", report.task)?;
    d.set_item("attempt", &report.attempt)?;
    d.set_item("pid", report.pid)?;
    d.set_item("output_rows", report.output_rows)?;
    d.set_item("bytes_read", report.bytes_read)?;
    d.set_item("bytes_written", report.bytes_written())?;
    d.set_item("files", report.files.len())?;
    d.set_item("peak_reserved_bytes", report.peak_reserved_bytes)?;
    d.set_item("peak_rss_bytes", report.peak_rss_bytes)?;
    d.set_item("peak_spill_bytes", report.peak_spill_bytes)?;
    d.set_item("wall_seconds", report.wall_seconds)?;
    d.set_item("plan_report", &report.plan_report)?;
    Ok(d)
}

#[pymethods]
impl PyDistributedPlan {
    #[new]
    #[pyo3(signature = (frame, workers, scratch_dir, buckets=None, scan_tasks=None,
        replicate_bytes=None, broadcast_bytes=None, compression=false, sink_dir=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        frame: &PyLazyFrame,
        workers: usize,
        scratch_dir: PathBuf,
        buckets: Option<usize>,
        scan_tasks: Option<usize>,
        replicate_bytes: Option<u64>,
        broadcast_bytes: Option<u64>,
        compression: bool,
        sink_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut options = DistributedOptions::new(workers, scratch_dir);
        if let Some(b) = buckets {
            if b == 0 {
                return Err(PyValueError::new_err("buckets must be at least 1"));
            }
            options.buckets = b;
        }
        if let Some(t) = scan_tasks {
            if t == 0 {
                return Err(PyValueError::new_err("scan_tasks must be at least 1"));
            }
            options.scan_tasks = t;
        }
        if let Some(r) = replicate_bytes {
            options.replicate_bytes = r;
        }
        if let Some(b) = broadcast_bytes {
            options.broadcast_bytes = b;
        }
        options.compression = compression;
        let frame = frame.frame.clone();
        let plan = py
            .detach(|| match sink_dir {
                Some(dir) => DistributedPlan::new_sink(frame.optimized_plan()?, options, dir),
                None => DistributedPlan::new(frame.optimized_plan()?, options),
            })
            .py()?;
        Ok(Self {
            plan: Mutex::new(plan),
            config: config::current(),
        })
    }

    #[getter]
    fn query_id(&self) -> String {
        self.plan().query_id().to_string()
    }

    #[getter]
    fn num_stages(&self) -> usize {
        self.plan().num_stages()
    }

    fn num_tasks(&self, stage: usize) -> usize {
        self.plan().num_tasks(stage)
    }

    fn stage_inputs(&self, stage: usize) -> Vec<usize> {
        self.plan().stage_inputs(stage)
    }

    fn stage_done(&self, stage: usize) -> bool {
        self.plan().stage_done(stage)
    }

    /// The fragment of a task, as bytes for a worker.
    fn fragment<'py>(
        &self,
        py: Python<'py>,
        stage: usize,
        task: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.plan().fragment(stage, task).py()?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Record a task's report; returns it as a dict.
    fn record<'py>(&self, py: Python<'py>, report: &[u8]) -> PyResult<Bound<'py, PyDict>> {
        let report = self.plan().record(report).py()?;
        report_dict(py, &report)
    }

    /// Every recorded report, by stage and task.
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for report in self.plan().reports() {
            list.append(report_dict(py, report)?)?;
        }
        Ok(list)
    }

    /// The Parquet files the last stage wrote (a plan made with `sink_dir`): path, rows, bytes.
    fn output_files(&self) -> Vec<(PathBuf, u64, u64)> {
        self.plan()
            .output_files()
            .into_iter()
            .map(|f| (f.path, f.rows, f.bytes))
            .collect()
    }

    /// The stages and the root, as text.
    fn display(&self) -> String {
        self.plan().display()
    }

    /// Run the root in this process and gather its result.
    fn collect_root(&self, py: Python<'_>) -> PyResult<PyDataFrame> {
        let root = self.plan().root().py()?;
        let config = self.config.clone();
        let running = Running::start_with(
            py,
            move || ooc::distributed::execute_plan(root, &config),
            Work::Stream,
        )?;
        PyDataFrame::gather(py, running)
    }

    /// Run the root in this process, writing its result to `path` in `format` atomically.
    fn sink_root<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        format: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let format: OutputFormat = format.parse().map_err(PyValueError::new_err)?;
        let root = self.plan().root().py()?;
        let config = self.config.clone();
        let work = Work::Sink {
            path,
            format,
            npy_dtype: NpyType::Float32,
            bloom_filter_columns: Vec::new(),
        };
        let mut running = Running::start_with(
            py,
            move || ooc::distributed::execute_plan(root, &config),
            work,
        )?;
        running.finish(py)?;
        match running.stats() {
            Some(stats) => stats.to_dict(py),
            None => Ok(PyDict::new(py)),
        }
    }
}

/// Run a fragment in this process (a worker) with its own memory limit (`None`: the
/// current `ooc.config`'s) and threads; returns the task's report as bytes.
#[pyfunction]
#[pyo3(signature = (fragment, memory_limit=None, threads=1))]
fn run_fragment<'py>(
    py: Python<'py>,
    fragment: &[u8],
    memory_limit: Option<usize>,
    threads: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut config = config::current().with_threads(threads.max(1));
    if memory_limit.is_some() {
        config = config.with_memory_limit(memory_limit);
    }
    let fragment = fragment.to_vec();
    let report = py
        .detach(|| ooc::distributed::run_fragment(&fragment, &config))
        .py()?;
    Ok(PyBytes::new(py, &report))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDistributedPlan>()?;
    m.add_function(wrap_pyfunction!(run_fragment, m)?)?;
    Ok(())
}
