//! `PyLazyFrame` (a lazy query: the engine's dataframe builder), `PyDataFrame` (a collected
//! result that other libraries read through the Arrow PyCapsule interface) and `PyBatchIter`
//! (a running query handing out batches), plus the module's entry points `scan_parquet`,
//! `sql` and `from_arrow`.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use numpy::{PyArray1, PyArrayMethods};
use ooc::expr_fn;
use ooc::feed::{Feed, FeedOptions, ShuffleOptions};
use ooc::io::{Compression, CsvOptions, TextFormat, TextOptions};
use ooc::sink::{Matrix, MatrixData, NpyType, OutputFormat, TableCut};
use ooc::{DataFrame, Expr, JoinType, Session, SessionConfig, SortKey, StoredResult};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict, PyList, PyTuple};

use crate::arrow_ffi::{self, ArrowBatch};
use crate::config;
use crate::errors::IntoPyResult;
use crate::expr::{check_window_order, dtype_name, named, parse_dtype, PyExpr};
use crate::run::{FeedOutput, Output, QueryStats, Running, Work};

/// A session for building plans. Settings are applied when a query runs, not here.
fn session() -> Session {
    Session::new(SessionConfig::default().with_memory_limit(None))
}

fn exprs(list: &[PyRef<'_, PyExpr>]) -> Vec<Expr> {
    list.iter().map(|e| named(&e.expr)).collect()
}

/// A lazy query.
#[pyclass(name = "PyLazyFrame", module = "ooc._ooc", frozen)]
#[derive(Clone)]
pub(crate) struct PyLazyFrame {
    pub(crate) frame: DataFrame,
}

impl PyLazyFrame {
    fn with(&self, frame: DataFrame) -> Self {
        let _ = self;
        Self { frame }
    }

    /// The frame with the current settings, ready to run.
    fn runnable(&self) -> DataFrame {
        self.frame.clone().with_config(config::current())
    }

    /// Runnable with the result cache on (`Some(true)`), off, or as `ooc.config(cache=)` says.
    fn runnable_cached(&self, cache: Option<bool>) -> DataFrame {
        self.frame
            .clone()
            .with_config(config::current_with_cache(cache))
    }
}

#[pymethods]
impl PyLazyFrame {
    fn select(&self, exprs_: Vec<PyRef<'_, PyExpr>>) -> PyResult<Self> {
        let list = exprs(&exprs_);
        for e in &list {
            check_window_order(e)?;
        }
        let aggregated = list.iter().filter(|e| e.contains_aggregate()).count();
        let frame = self.frame.clone();
        let out = if aggregated == 0 {
            frame.select(list)
        } else if aggregated == list.len() {
            // Only aggregates: one row for the whole input.
            frame.group_by(vec![], list)
        } else {
            return Err(PyValueError::new_err(
                "select() mixes aggregates with per-row expressions; use group_by().agg() or \
                 aggregate every expression",
            ));
        };
        Ok(self.with(out.py()?))
    }

    fn with_columns(&self, exprs_: Vec<PyRef<'_, PyExpr>>) -> PyResult<Self> {
        let list = exprs(&exprs_);
        if list.iter().any(Expr::contains_aggregate) {
            return Err(PyValueError::new_err(
                "with_columns() does not take aggregates over the whole input; compute them \
                 per group with .over(...), or use group_by().agg()",
            ));
        }
        for e in &list {
            check_window_order(e)?;
        }
        Ok(self.with(self.frame.clone().with_columns(list).py()?))
    }

    fn filter(&self, predicate: PyRef<'_, PyExpr>) -> PyResult<Self> {
        if predicate.expr.contains_aggregate() {
            return Err(PyValueError::new_err(
                "filter() does not take aggregates over the whole input; compute them per \
                 group with .over(...), or filter the result of group_by().agg()",
            ));
        }
        check_window_order(&predicate.expr)?;
        Ok(self.with(self.frame.clone().filter(predicate.expr.clone()).py()?))
    }

    fn group_by_agg(
        &self,
        keys: Vec<PyRef<'_, PyExpr>>,
        aggs: Vec<PyRef<'_, PyExpr>>,
    ) -> PyResult<Self> {
        let keys = exprs(&keys);
        let aggs = exprs(&aggs);
        if let Some(e) = aggs.iter().find(|e| !e.contains_aggregate()) {
            return Err(PyValueError::new_err(format!(
                "agg() expects aggregate expressions such as col('x').sum(); '{}' is not one \
                 (dataframe libraries would build a list per group, which ooc does not support)",
                crate::expr::output_name(e)
            )));
        }
        Ok(self.with(self.frame.clone().group_by(keys, aggs).py()?))
    }

    fn sort(
        &self,
        by: Vec<PyRef<'_, PyExpr>>,
        descending: Vec<bool>,
        nulls_last: Vec<bool>,
    ) -> PyResult<Self> {
        let keys = by
            .iter()
            .enumerate()
            .map(|(i, e)| SortKey {
                expr: e.expr.clone().unalias(),
                ascending: !descending.get(i).copied().unwrap_or(false),
                nulls_first: !nulls_last.get(i).copied().unwrap_or(false),
            })
            .collect();
        Ok(self.with(self.frame.clone().sort(keys).py()?))
    }

    #[pyo3(signature = (offset, length=None))]
    fn slice(&self, offset: usize, length: Option<usize>) -> PyResult<Self> {
        Ok(self.with(self.frame.clone().limit(offset, length).py()?))
    }

    /// A set operation with `other`: `union` (`all`: keep duplicates), `intersect`, `except`.
    fn set_operation(&self, op: &str, other: PyRef<'_, PyLazyFrame>, all: bool) -> PyResult<Self> {
        let (left, right) = (self.frame.clone(), other.frame.clone());
        let frame = match op {
            "union" => left.union(right, !all),
            "intersect" => left.intersect(right, all),
            "except" => left.except(right, all),
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown set operation {other:?}"
                )))
            }
        };
        Ok(self.with(frame.py()?))
    }

    #[pyo3(signature = (subset=None, keep="any"))]
    fn unique(&self, subset: Option<Vec<String>>, keep: &str) -> PyResult<Self> {
        let frame = self.frame.clone();
        let Some(subset) = subset else {
            return Ok(self.with(frame.distinct().py()?));
        };
        let pick: fn(Expr) -> Expr = match keep {
            "any" | "first" => expr_fn::first,
            "last" => expr_fn::last,
            other => {
                return Err(PyValueError::new_err(format!(
                    "keep must be 'any', 'first' or 'last', not '{other}'"
                )))
            }
        };
        let schema = frame.schema();
        for name in &subset {
            if schema.index_of(name).is_err() {
                let valid: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
                return Err(crate::errors::to_py_err(ooc::EngineError::ColumnNotFound {
                    name: name.clone(),
                    valid,
                    suggestion: None,
                }));
            }
        }
        let keys: Vec<Expr> = subset.iter().map(|n| Expr::col(n.clone())).collect();
        let others: Vec<Expr> = schema
            .fields()
            .iter()
            .filter(|f| !subset.contains(f.name()))
            .map(|f| pick(Expr::col(f.name().clone())).alias(f.name().clone()))
            .collect();
        let grouped = frame.group_by(keys, others).py()?;
        // Back to the input's column order.
        let order: Vec<Expr> = schema
            .fields()
            .iter()
            .map(|f| Expr::col(f.name().clone()))
            .collect();
        Ok(self.with(grouped.select(order).py()?))
    }

    fn rename(&self, pairs: Vec<(String, String)>) -> PyResult<Self> {
        Ok(self.with(self.frame.clone().rename(&pairs).py()?))
    }

    fn drop(&self, names: Vec<String>) -> PyResult<Self> {
        Ok(self.with(self.frame.clone().drop_columns(&names).py()?))
    }

    fn join(
        &self,
        other: PyRef<'_, PyLazyFrame>,
        how: &str,
        left_on: Vec<PyRef<'_, PyExpr>>,
        right_on: Vec<PyRef<'_, PyExpr>>,
        suffix: &str,
    ) -> PyResult<Self> {
        let join_type = match how {
            "inner" | "cross" => JoinType::Inner,
            "left" => JoinType::Left,
            "right" => JoinType::Right,
            "full" | "outer" => JoinType::Full,
            "semi" => JoinType::Semi,
            "anti" => JoinType::Anti,
            other => {
                return Err(PyValueError::new_err(format!(
                    "how must be 'inner', 'left', 'right', 'full', 'semi', 'anti' or 'cross', \
                     not '{other}'"
                )))
            }
        };
        let left_on = left_on.iter().map(|e| e.expr.clone().unalias()).collect();
        let right_on = right_on.iter().map(|e| e.expr.clone().unalias()).collect();
        let frame = self
            .frame
            .clone()
            .join(other.frame.clone(), join_type, left_on, right_on, suffix)
            .py()?;
        Ok(self.with(frame))
    }

    /// `[(name, dtype name)]` of the output.
    fn schema(&self) -> Vec<(String, String)> {
        self.frame
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), dtype_name(f.data_type())))
            .collect()
    }

    fn arrow_schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        arrow_ffi::schema_capsule(py, &self.frame.schema())
    }

    /// The physical plan (with `analyze`: run it and add the measurements).
    #[pyo3(signature = (analyze=false, optimized=true))]
    fn explain(&self, py: Python<'_>, analyze: bool, optimized: bool) -> PyResult<String> {
        if !optimized {
            return Ok(self.frame.logical_plan().display_indent());
        }
        if !analyze {
            let frame = self.runnable_cached(None);
            return py.detach(|| frame.explain(false)).py();
        }
        let mut running = Running::start(py, self.runnable_cached(None), Work::Stream)?;
        let mut rows = 0;
        while let Some(batch) = running.next(py)? {
            rows += batch.num_rows();
        }
        let report = running.stats().map(QueryStats::report).unwrap_or_default();
        Ok(format!("{report}\noutput rows: {rows}\n"))
    }

    /// Run the query (discarding its rows) and return its memory profile: the summary text,
    /// the SVG, the HTML page and the figures as a dict.
    fn profile_memory<'py>(
        &self,
        py: Python<'py>,
        title: &str,
    ) -> PyResult<(String, String, String, Bound<'py, PyDict>)> {
        let mut running = Running::start(py, self.runnable_cached(None), Work::Stream)?;
        while running.next(py)?.is_some() {}
        let Some(stats) = running.stats() else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the query ended without its measurements",
            ));
        };
        let memory = stats.memory();
        Ok((
            memory.summary(),
            memory.to_svg(title),
            memory.to_html(title),
            crate::run::memory_dict(py, memory)?,
        ))
    }

    #[pyo3(signature = (cache=None, progress=None))]
    fn collect(
        &self,
        py: Python<'_>,
        cache: Option<bool>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyDataFrame> {
        // A hit is kept unread by the frame (read when first used), so that it returns at
        // once whatever its size.
        let frame = self.runnable_cached(cache);
        let mut config = frame.config().clone();
        config.cache = config.cache.map(|c| c.with_deferred_hits(true));
        let running =
            Running::start(py, frame.with_config(config), Work::Stream)?.with_progress(progress);
        PyDataFrame::gather(py, running)
    }

    #[pyo3(signature = (name=None))]
    fn persist(&self, py: Python<'_>, name: Option<String>) -> PyResult<Self> {
        // Into the cache directory `ooc.config` names, whether `collect()` caches or not.
        let frame = self.runnable_cached(Some(true));
        let frame = py.detach(|| frame.persist_as(name.as_deref())).py()?;
        Ok(Self { frame })
    }

    fn execute(&self, py: Python<'_>) -> PyResult<PyBatchIter> {
        Ok(PyBatchIter {
            running: std::sync::Mutex::new(Running::start(py, self.runnable(), Work::Stream)?),
        })
    }

    /// Run for a model (`LazyFrame.iter_batches` / `iter_xy`): batches of `batch_size` rows in
    /// the files' order or shuffled, handed out as `output` (`batches`: Arrow batches, cast to
    /// `dtype` if given; `matrix`: one 2-D array of `dtype`; `columns`: one array per column;
    /// `xy`: the first `features` columns as a matrix of `dtype` and the last as an array of
    /// `target_dtype`, or of its own type).
    #[pyo3(signature = (batch_size=None, output="batches", dtype=None, shuffle=false, seed=0,
        window=8, drop_last=false, features=None, target_dtype=None))]
    #[allow(clippy::too_many_arguments)]
    fn feed(
        &self,
        py: Python<'_>,
        batch_size: Option<usize>,
        output: &str,
        dtype: Option<&str>,
        shuffle: bool,
        seed: u64,
        window: usize,
        drop_last: bool,
        features: Option<usize>,
        target_dtype: Option<&str>,
    ) -> PyResult<PyBatchIter> {
        let parse = |d: Option<&str>| -> PyResult<Option<NpyType>> {
            d.map(|d| d.parse::<NpyType>().map_err(PyValueError::new_err))
                .transpose()
        };
        let dtype = parse(dtype)?;
        let target_dtype = parse(target_dtype)?;
        let output = match (output, dtype, features) {
            ("batches", dtype, None) => FeedOutput::Batches(dtype),
            ("matrix", Some(dtype), None) => FeedOutput::Matrix(dtype),
            ("columns", None, None) => FeedOutput::Columns,
            ("xy", Some(x), Some(features)) => FeedOutput::Xy {
                features,
                x,
                y: target_dtype,
            },
            _ => {
                return Err(PyValueError::new_err(format!(
                    "feed(): invalid output {output:?} with dtype={dtype:?}, features={features:?}"
                )))
            }
        };
        let options = FeedOptions {
            batch_size,
            drop_last,
            shuffle: shuffle.then_some(ShuffleOptions { seed, window }),
        };
        // Refuse bad options before the query starts.
        Feed::new(std::iter::empty(), self.frame.schema(), options).py()?;
        let work = Work::Feed { options, output };
        Ok(PyBatchIter {
            running: std::sync::Mutex::new(Running::start(
                py,
                narrowed(self.runnable(), output),
                work,
            )?),
        })
    }

    /// Write the result to `path` in `format` (csv, parquet, json, ndjson, npy) atomically;
    /// `dtype` is the element type of a `.npy` array, `bloom_filter_columns` the columns of a
    /// Parquet file that get bloom filters.
    #[pyo3(signature = (path, format, dtype="float32", bloom_filter_columns=Vec::new()))]
    fn sink<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        format: &str,
        dtype: &str,
        bloom_filter_columns: Vec<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let format: OutputFormat = format.parse().map_err(PyValueError::new_err)?;
        if format == OutputFormat::Table {
            return Err(PyValueError::new_err(
                "sink formats: csv, json, ndjson, parquet, npy",
            ));
        }
        let npy_dtype: NpyType = dtype.parse().map_err(PyValueError::new_err)?;
        let work = Work::Sink {
            path,
            format,
            npy_dtype,
            bloom_filter_columns,
        };
        let mut running = Running::start(py, self.runnable(), work)?;
        running.finish(py)?;
        match running.stats() {
            Some(stats) => stats.to_dict(py),
            None => Ok(PyDict::new(py)),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<LazyFrame {}>",
            self.schema()
                .iter()
                .map(|(n, t)| format!("{n}: {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// A collected result. Other libraries read it through `__arrow_c_stream__` without a copy.
#[pyclass(name = "PyDataFrame", module = "ooc._ooc", frozen)]
pub(crate) struct PyDataFrame {
    schema: SchemaRef,
    /// `None` once released (`release()`): every use then raises `ReleasedError`.
    batches: std::sync::RwLock<Option<Vec<RecordBatch>>>,
    /// A cache hit not read yet: its batches are checked and decoded into `batches` when
    /// something first needs them (so that taking a hit costs the same at any size).
    unread: std::sync::Mutex<Option<StoredResult>>,
    stats: Option<QueryStats>,
    /// Handed out through the Arrow PyCapsule interface (or as Arrow batches) at least once:
    /// something outside ooc may hold its buffers.
    exported: std::sync::atomic::AtomicBool,
}

impl PyDataFrame {
    fn new(schema: SchemaRef, batches: Vec<RecordBatch>, stats: Option<QueryStats>) -> Self {
        Self {
            schema,
            batches: std::sync::RwLock::new(Some(batches)),
            unread: std::sync::Mutex::new(None),
            stats,
            exported: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Gather the batches of a running query, and its figures once it has finished. A cache
    /// hit handed over unread (`collect()`) is kept unread.
    pub(crate) fn gather(py: Python<'_>, mut running: Running) -> PyResult<Self> {
        let mut batches = Vec::new();
        while let Some(batch) = running.next(py)? {
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        let Some(stored) = running.stored_result().cloned() else {
            return Ok(Self::new(
                running.schema(),
                batches,
                running.stats().cloned(),
            ));
        };
        let rows = usize::try_from(stored.num_rows()).unwrap_or(usize::MAX);
        let frame = Self::new(
            running.schema(),
            Vec::new(),
            running.stats().cloned().map(|s| s.with_rows(rows)),
        );
        *frame.unread.lock().unwrap_or_else(|e| e.into_inner()) = Some(stored);
        Ok(frame)
    }

    /// The batches (shared handles), unless released. A cache hit not read yet is read
    /// first (every byte checked against its CRC-32; a damaged entry is an error, each time).
    fn live(&self, py: Python<'_>) -> PyResult<Vec<RecordBatch>> {
        let mut unread = self.unread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stored) = unread.as_ref() {
            let threads = config::current().threads;
            let batches = py.detach(|| stored.read(threads)).py()?;
            let mut slot = self.batches.write().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = slot.as_mut() {
                *slot = batches;
            }
            *unread = None;
        }
        drop(unread);
        self.batches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                crate::errors::ReleasedError::new_err(
                    "this DataFrame was released (release() or the end of its `with` \
                     block); collect the query again to use its result",
                )
            })
    }

    /// The cache hit this frame holds unread, if it does.
    fn unread_result(&self) -> Option<StoredResult> {
        self.unread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The unread cache hit's rows and bytes, while it is unread.
    fn unread_size(&self) -> Option<(usize, usize)> {
        self.unread_result().map(|stored| {
            (
                usize::try_from(stored.num_rows()).unwrap_or(usize::MAX),
                usize::try_from(stored.bytes()).unwrap_or(usize::MAX),
            )
        })
    }

    fn is_released(&self) -> bool {
        self.batches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// One handle per distinct allocation the batches point into, with its size.
    fn allocations(batches: &[RecordBatch]) -> Vec<(arrow::buffer::Buffer, usize)> {
        fn walk(
            data: &arrow::array::ArrayData,
            out: &mut std::collections::HashMap<usize, arrow::buffer::Buffer>,
        ) {
            let buffers = data
                .buffers()
                .iter()
                .chain(data.nulls().map(|n| n.buffer()));
            for b in buffers {
                out.entry(b.data_ptr().as_ptr() as usize)
                    .or_insert_with(|| b.clone());
            }
            for child in data.child_data() {
                walk(child, out);
            }
        }
        let mut unique = std::collections::HashMap::new();
        for batch in batches {
            for column in batch.columns() {
                walk(&column.to_data(), &mut unique);
            }
        }
        unique
            .into_values()
            .map(|b| {
                let size = b.capacity();
                (b, size)
            })
            .collect()
    }

    /// Whether the result came from the result cache (its buffers are in a mapped file).
    fn mapped(&self) -> bool {
        self.stats
            .as_ref()
            .and_then(|s| s.root_operator())
            .is_some_and(|name| name == "CachedResult")
    }
}

/// Frames holding at least this many heap bytes give the freed memory back to the system
/// when they are dropped, rather than leaving it to the allocator's next allocation (which
/// would then take the time: about 20 ms after a 2 GB frame, paid by whatever runs next).
const RETURN_ON_DROP_BYTES: usize = 64 << 20;

impl Drop for PyDataFrame {
    fn drop(&mut self) {
        let batches = self
            .batches
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(batches) = batches else {
            return;
        };
        let large = !self.mapped() && arrow_ffi::batches_bytes(&batches) >= RETURN_ON_DROP_BYTES;
        drop(batches);
        if large {
            ooc::allocator::release_freed_memory();
        }
    }
}

#[pymethods]
impl PyDataFrame {
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // Producers may ignore the requested schema; consumers cast if they need to.
        let _ = requested_schema;
        let batches = self.live(py)?;
        self.exported
            .store(true, std::sync::atomic::Ordering::Relaxed);
        arrow_ffi::stream_capsule(py, Arc::clone(&self.schema), batches)
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        arrow_ffi::schema_capsule(py, &self.schema)
    }

    #[getter]
    fn num_rows(&self, py: Python<'_>) -> PyResult<usize> {
        if let Some((rows, _)) = self.unread_size() {
            return Ok(rows);
        }
        Ok(self.live(py)?.iter().map(|b| b.num_rows()).sum())
    }

    /// Bytes of the buffers (for a cache hit not read yet: of its mapped file).
    #[getter]
    fn nbytes(&self, py: Python<'_>) -> PyResult<usize> {
        if let Some((_, bytes)) = self.unread_size() {
            return Ok(bytes);
        }
        Ok(arrow_ffi::batches_bytes(&self.live(py)?))
    }

    #[getter]
    fn released(&self) -> bool {
        self.is_released()
    }

    /// Drop this frame's buffers now, whatever other Python names point at it. Buffers that
    /// an exported Arrow object (pyarrow, Polars, DuckDB) still holds stay valid for it.
    /// Returns `freed_bytes` (no one else held them) and `held_elsewhere_bytes`.
    fn release<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        // In `live`'s order: the unread hit (its mapping goes with it), then the batches.
        let mut unread = self.unread.lock().unwrap_or_else(|e| e.into_inner());
        let taken = self
            .batches
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        *unread = None;
        drop(unread);
        let Some(batches) = taken else {
            out.set_item("freed_bytes", 0)?;
            out.set_item("held_elsewhere_bytes", 0)?;
            return Ok(out);
        };
        let allocations = Self::allocations(&batches);
        drop(batches);
        // Each allocation is now referenced by our one handle, plus whoever else holds it.
        let (mut freed, mut held) = (0usize, 0usize);
        for (buffer, size) in allocations {
            if buffer.strong_count() == 1 {
                freed += size;
            } else {
                held += size;
            }
        }
        ooc::allocator::release_freed_memory();
        out.set_item("freed_bytes", freed)?;
        out.set_item("held_elsewhere_bytes", held)?;
        Ok(out)
    }

    /// What `ooc.memory_report()` lists for this frame: bytes on the heap, bytes mapped from
    /// a cache entry, and whether it was exported.
    fn memory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let unread = self.unread_size();
        let (rows, bytes) = match unread {
            Some(size) => size,
            None => {
                let batches = self.live(py).unwrap_or_default();
                (
                    batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                    arrow_ffi::batches_bytes(&batches),
                )
            }
        };
        let mapped = self.mapped();
        out.set_item("unread", unread.is_some())?;
        out.set_item("released", self.is_released())?;
        out.set_item("rows", rows)?;
        out.set_item("heap_bytes", if mapped { 0 } else { bytes })?;
        out.set_item("mapped_bytes", if mapped { bytes } else { 0 })?;
        out.set_item(
            "exported",
            self.exported.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        Ok(out)
    }

    fn schema(&self) -> Vec<(String, String)> {
        self.schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), dtype_name(f.data_type())))
            .collect()
    }

    fn batches(&self, py: Python<'_>) -> PyResult<Vec<ArrowBatch>> {
        let batches = self.live(py)?;
        self.exported
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(batches
            .iter()
            .map(|b| ArrowBatch { batch: b.clone() })
            .collect())
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.stats.as_ref().map(|s| s.to_dict(py)).transpose()
    }

    fn lazy(&self, py: Python<'_>) -> PyResult<PyLazyFrame> {
        // A cache hit not read yet is scanned where it lies (only what the query needs is
        // read and checked), and stays unread.
        if let Some(stored) = self.unread_result() {
            let frame = session().read_cached("df", stored.entry()).py()?;
            return Ok(PyLazyFrame { frame });
        }
        let frame = session()
            .read_batches("df", Arc::clone(&self.schema), self.live(py)?)
            .py()?;
        Ok(PyLazyFrame { frame })
    }

    /// The first `max_rows` rows as an aligned text table.
    fn format(&self, py: Python<'_>, max_rows: usize) -> PyResult<String> {
        if let Some(stored) = self.unread_result() {
            let rows = usize::try_from(stored.num_rows()).unwrap_or(usize::MAX);
            let head = py.detach(|| stored.head(max_rows)).py()?;
            let mut cut = TableCut::new(Arc::clone(&self.schema), max_rows);
            for batch in &head {
                cut.push(batch);
            }
            cut.count_unseen(rows.saturating_sub(cut.total_rows()));
            return cut.format().py();
        }
        let mut cut = TableCut::new(Arc::clone(&self.schema), max_rows);
        for batch in &self.live(py)? {
            cut.push(batch);
        }
        cut.format().py()
    }
}

/// A running query handing out its batches (`LazyFrame.iter_batches()`).
#[pyclass(name = "PyBatchIter", module = "ooc._ooc")]
pub(crate) struct PyBatchIter {
    running: std::sync::Mutex<Running>,
}

#[pymethods]
impl PyBatchIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        // Never block on the lock while holding the GIL: the holder needs the GIL to finish.
        let mut running = self.running.try_lock().map_err(|_| {
            pyo3::exceptions::PyRuntimeError::new_err(
                "this batch iterator is being read by another thread",
            )
        })?;
        let Some(mut output) = running.next_output(py)? else {
            return Ok(None);
        };
        if let Output::Pending(batch, how) = output {
            output = py.detach(|| how.convert(batch)).py()?;
        }
        Ok(Some(match output {
            Output::Batch(batch) => Py::new(py, ArrowBatch { batch })?.into_any(),
            Output::Matrix(m) => matrix_to_numpy(py, m, true)?.unbind(),
            Output::Columns(columns) => {
                let arrays = columns
                    .into_iter()
                    .map(|m| matrix_to_numpy(py, m, false))
                    .collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, arrays)?.into_any().unbind()
            }
            Output::Xy(x, y) => {
                let x = matrix_to_numpy(py, x, true)?;
                let y = matrix_to_numpy(py, y, false)?;
                PyTuple::new(py, [x, y])?.into_any().unbind()
            }
            Output::Pending(..) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "internal error: a batch was handed out unconverted",
                ))
            }
        }))
    }

    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        arrow_ffi::schema_capsule(py, &running.schema())
    }

    /// Stop the query now (also happens when the iterator is garbage-collected).
    fn close(&self, py: Python<'_>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.cancel(py);
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.stats().map(|s| s.to_dict(py)).transpose()
    }
}

/// `frame` with its numeric columns cast to the floating-point type `output` will convert them
/// to, in the plan: the casts then run on the query's threads, and shuffle windows hold the
/// narrow values. Integer targets are left to the feed, whose conversion refuses values out
/// of range; so is any plan whose columns cannot be named one by one (duplicate names).
fn narrowed(frame: DataFrame, output: FeedOutput) -> DataFrame {
    let float = |t: NpyType| matches!(t, NpyType::Float32 | NpyType::Float64).then(|| t.arrow());
    let width = frame.schema().fields().len();
    let types: Vec<Option<arrow::datatypes::DataType>> = match output {
        FeedOutput::Batches(Some(t)) | FeedOutput::Matrix(t) => vec![float(t); width],
        FeedOutput::Xy { features, x, y } => {
            let mut types = vec![float(x); features];
            types.push(y.and_then(float));
            types
        }
        FeedOutput::Batches(None) | FeedOutput::Columns => return frame,
    };
    match frame.clone().cast_numbers(&types) {
        Ok(cast) => cast,
        Err(_) => frame,
    }
}

/// `m` as a NumPy array that owns its elements (no copy, writable): 2-D, or 1-D for a
/// one-column matrix when `two_d` is false.
fn matrix_to_numpy(py: Python<'_>, m: Matrix, two_d: bool) -> PyResult<Bound<'_, PyAny>> {
    let shape = [m.rows, m.columns];
    macro_rules! array {
        ($values:expr) => {{
            let array = PyArray1::from_vec(py, $values);
            if two_d {
                array.reshape(shape)?.into_any()
            } else {
                array.into_any()
            }
        }};
    }
    Ok(match m.data {
        MatrixData::Float32(v) => array!(v),
        MatrixData::Float64(v) => array!(v),
        MatrixData::Int8(v) => array!(v),
        MatrixData::Int16(v) => array!(v),
        MatrixData::Int32(v) => array!(v),
        MatrixData::Int64(v) => array!(v),
        MatrixData::UInt8(v) => array!(v),
        MatrixData::UInt16(v) => array!(v),
        MatrixData::UInt32(v) => array!(v),
        MatrixData::UInt64(v) => array!(v),
    })
}

/// A lazy scan of Parquet files (paths, globs or directories).
#[pyfunction]
#[pyo3(signature = (locations, hive = true))]
fn scan_parquet(py: Python<'_>, locations: Vec<String>, hive: bool) -> PyResult<PyLazyFrame> {
    if locations.is_empty() {
        return Err(PyValueError::new_err(
            "scan_parquet() needs at least one path",
        ));
    }
    let mut frame = py.detach(|| session().scan_parquet_many(&locations)).py()?;
    if !hive {
        // Leave out the columns that come from key=value folders.
        let folders = frame.hive_partition_columns();
        if !folders.is_empty() {
            frame = frame.drop_columns(&folders).py()?;
        }
    }
    Ok(PyLazyFrame { frame })
}

/// One byte of a CSV setting (`"\t"`, `";"`).
fn one_byte(what: &str, value: Option<String>) -> PyResult<Option<u8>> {
    match value.as_deref().map(str::as_bytes) {
        None => Ok(None),
        Some([b]) => Ok(Some(*b)),
        Some(_) => Err(PyValueError::new_err(format!(
            "{what} must be a single ASCII character, got {:?}",
            value.unwrap_or_default()
        ))),
    }
}

/// A lazy scan of CSV (`format="csv"`) or NDJSON (`format="ndjson"`) files.
#[pyfunction]
#[pyo3(signature = (locations, format, separator=None, has_header=None, quote_char=None,
    escape_char=None, comment_prefix=None, null_values=None, types=Vec::new(),
    sample_rows=None, skip_bad_rows=false, compression=None))]
#[allow(clippy::too_many_arguments)]
fn scan_text(
    py: Python<'_>,
    locations: Vec<String>,
    format: &str,
    separator: Option<String>,
    has_header: Option<bool>,
    quote_char: Option<String>,
    escape_char: Option<String>,
    comment_prefix: Option<String>,
    null_values: Option<Vec<String>>,
    types: Vec<(String, String)>,
    sample_rows: Option<usize>,
    skip_bad_rows: bool,
    compression: Option<String>,
) -> PyResult<PyLazyFrame> {
    if locations.is_empty() {
        return Err(PyValueError::new_err("scan_csv() needs at least one path"));
    }
    let text_format = match format {
        "csv" => TextFormat::Csv(CsvOptions {
            delimiter: one_byte("separator", separator)?,
            has_header,
            quote: one_byte("quote_char", quote_char)?.unwrap_or(b'"'),
            escape: one_byte("escape_char", escape_char)?,
            comment: one_byte("comment_prefix", comment_prefix)?,
        }),
        "ndjson" => TextFormat::NdJson,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown text format {other:?}"
            )))
        }
    };
    let mut options = TextOptions::new(text_format);
    if let Some(nulls) = null_values {
        options.null_values = nulls;
    }
    options.types = types
        .into_iter()
        .map(|(name, dtype)| Ok((name, parse_dtype(&dtype)?)))
        .collect::<PyResult<_>>()?;
    if let Some(n) = sample_rows {
        options.sample_rows = n.max(1);
    }
    options.skip_bad_rows = skip_bad_rows;
    if let Some(c) = compression {
        options.compression =
            Compression::parse(&c).map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    let frame = py
        .detach(|| session().scan_text(&locations, options))
        .py()?;
    Ok(PyLazyFrame { frame })
}

/// A lazy SQL query; `tables` maps names to paths or lazy frames.
#[pyfunction]
fn sql(py: Python<'_>, query: &str, tables: &Bound<'_, PyDict>) -> PyResult<PyLazyFrame> {
    let session = session();
    for (name, value) in tables.iter() {
        let name: String = name.extract()?;
        if let Ok(frame) = value.cast::<PyLazyFrame>() {
            session.register_view(&name, &frame.get().frame);
        } else if let Ok(location) = value.extract::<String>() {
            py.detach(|| session.register_file(&name, &location)).py()?;
        } else {
            return Err(PyTypeError::new_err(format!(
                "table '{name}' must be a path or a LazyFrame, not {}",
                value.get_type().name()?
            )));
        }
    }
    let frame = py.detach(|| session.sql(query)).py()?;
    Ok(PyLazyFrame { frame })
}

/// A lazy frame over the result persisted as `name` in the configured cache directory.
#[pyfunction]
fn persisted(name: &str) -> PyResult<PyLazyFrame> {
    let session = ooc::Session::new(config::current_with_cache(Some(true)));
    let frame = session.persisted(name).py()?;
    Ok(PyLazyFrame { frame })
}

/// A collected frame over the batches of an object with `__arrow_c_stream__` (shared).
#[pyfunction]
fn from_arrow(obj: &Bound<'_, PyAny>) -> PyResult<PyDataFrame> {
    let (schema, batches) = arrow_ffi::import_stream(obj)?;
    let batches = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
    Ok(PyDataFrame::new(schema, batches, None))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLazyFrame>()?;
    m.add_class::<PyDataFrame>()?;
    m.add_class::<PyBatchIter>()?;
    m.add_function(wrap_pyfunction!(persisted, m)?)?;
    m.add_class::<ArrowBatch>()?;
    m.add_function(wrap_pyfunction!(scan_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(scan_text, m)?)?;
    m.add_function(wrap_pyfunction!(sql, m)?)?;
    m.add_function(wrap_pyfunction!(from_arrow, m)?)?;
    Ok(())
}
