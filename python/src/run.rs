//! Running a query from Python: the engine works on a worker thread while the calling thread,
//! with the GIL released, waits for its batches in short slices and checks for signals between
//! them. Ctrl-C (or any signal handler that raises) sets the query's cancel flag, waits for the
//! worker to stop (its operators free their memory and remove their spill files on the way
//! out) and re-raises the `KeyboardInterrupt`.
//!
//! Batches pass through a channel of capacity two, so a consumer that iterates slowly holds the
//! engine back instead of letting results pile up in memory.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ooc::feed::{Feed, FeedBatch, FeedOptions};
use ooc::sink::{write_file, Matrix, NpyType, OutputFormat, WriteOptions};
use ooc::{
    peak_rss_bytes, DataFrame, EngineError, MemoryProfile, OperatorStats, QueryStream, RowOrder,
    StoredResult,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{to_py_err, IntoPyResult};

/// Bounds of the engine's batch size for a feed of fixed-size batches: the feed's own size
/// within these (smaller batches cost per-batch overhead, larger ones memory per operator).
const MIN_FEED_ENGINE_BATCH: usize = 8192;
const MAX_FEED_ENGINE_BATCH: usize = 1 << 20;

/// At most this many batches taken from shuffle windows wait between the worker and the
/// receiving thread (they hold their windows' rows, whatever their number).
const MAX_QUEUED_WINDOW_BATCHES: usize = 64;

/// How often the waiting thread wakes up to check for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Measurements of one finished query.
#[derive(Clone, Debug)]
pub(crate) struct QueryStats {
    rows: usize,
    wall: Duration,
    bytes_read: u64,
    peak_reserved: usize,
    peak_spill_bytes: u64,
    peak_rss: Option<u64>,
    report: String,
    operators: Vec<OperatorStats>,
    memory: MemoryProfile,
}

impl QueryStats {
    fn of(stream: &QueryStream, rows: usize) -> Self {
        let operators = stream.operator_stats();
        Self {
            rows,
            wall: stream.elapsed(),
            bytes_read: stream.bytes_read(),
            peak_reserved: stream.peak_reserved(),
            peak_spill_bytes: stream.peak_spill_bytes(),
            peak_rss: peak_rss_bytes(),
            report: stream.report(),
            operators,
            memory: stream.memory_profile(),
        }
    }

    /// Who held the memory at the query's peak, and the timeline.
    pub(crate) fn memory(&self) -> &MemoryProfile {
        &self.memory
    }

    /// The report text: the plan with per-operator metrics and the query's totals.
    pub(crate) fn report(&self) -> &str {
        &self.report
    }

    /// The figures as a dict (what `DataFrame.stats` returns).
    /// The name of the plan's root operator.
    pub(crate) fn root_operator(&self) -> Option<&str> {
        self.operators.first().map(|op| op.name.as_str())
    }

    /// The same figures for a result of `rows` rows (a hit handed over unread, whose rows
    /// did not pass through the query's stream).
    pub(crate) fn with_rows(mut self, rows: usize) -> Self {
        self.rows = rows;
        self
    }

    pub(crate) fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        out.set_item("rows", self.rows)?;
        out.set_item("wall_seconds", self.wall.as_secs_f64())?;
        out.set_item("bytes_read", self.bytes_read)?;
        out.set_item("peak_reserved_bytes", self.peak_reserved)?;
        out.set_item("peak_spill_bytes", self.peak_spill_bytes)?;
        out.set_item("peak_rss_bytes", self.peak_rss)?;
        // The root operator says whether the result cache served the result.
        let cache = match self.operators.first().map(|op| op.name.as_str()) {
            Some("CachedResult") => Some("hit"),
            Some("CacheWrite") => Some("miss"),
            _ => None,
        };
        out.set_item("cache", cache)?;
        out.set_item("memory_at_peak", memory_dict(py, &self.memory)?)?;
        let operators = PyList::empty(py);
        for (index, op) in self.operators.iter().enumerate() {
            let at_peak: u64 = self
                .memory
                .at_peak
                .iter()
                .filter(|h| h.operator_index == Some(index))
                .map(|h| h.bytes)
                .sum();
            let d = PyDict::new(py);
            d.set_item("depth", op.depth)?;
            d.set_item("operator", &op.name)?;
            d.set_item("details", &op.details)?;
            d.set_item("rows", op.rows_out)?;
            d.set_item("seconds", op.total_time.as_secs_f64())?;
            d.set_item("peak_bytes", op.peak_memory)?;
            d.set_item("at_peak_bytes", at_peak)?;
            d.set_item("spills", op.spills)?;
            d.set_item("spilled_bytes", op.spilled_bytes)?;
            operators.append(d)?;
        }
        out.set_item("operators", operators)?;
        out.set_item("report", &self.report)?;
        Ok(out)
    }
}

/// A memory profile as the dict `stats["memory_at_peak"]` and `MemoryProfile` hold.
pub(crate) fn memory_dict<'py>(
    py: Python<'py>,
    memory: &MemoryProfile,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("peak_reserved_bytes", memory.peak_reserved)?;
    out.set_item("peak_at_seconds", memory.peak_at.as_secs_f64())?;
    out.set_item("limit_bytes", memory.limit)?;
    out.set_item("rss_bytes", memory.rss_at_peak.map(|r| r.total))?;
    out.set_item("rss_anon_bytes", memory.rss_at_peak.map(|r| r.anon()))?;
    out.set_item("rss_file_bytes", memory.rss_at_peak.map(|r| r.file))?;
    out.set_item("outside_pool_bytes", memory.outside_pool())?;
    out.set_item("rss_at_start_bytes", memory.rss_at_start.map(|r| r.total))?;
    let holders = PyList::empty(py);
    for held in &memory.at_peak {
        let d = PyDict::new(py);
        d.set_item("operator", &held.operator)?;
        d.set_item("operator_index", held.operator_index)?;
        d.set_item("part", &held.part)?;
        d.set_item("bytes", held.bytes)?;
        holders.append(d)?;
    }
    out.set_item("holders", holders)?;
    let timeline = PyList::empty(py);
    for point in &memory.timeline {
        timeline.append((point.at.as_secs_f64(), point.reserved, point.rss))?;
    }
    out.set_item("timeline", timeline)?;
    Ok(out)
}

enum Message {
    Batch(Output),
    Done(Result<QueryStats, EngineError>),
}

/// What a query hands to Python: a record batch, or arrays made from one on the worker thread.
pub(crate) enum Output {
    /// A record batch.
    Batch(RecordBatch),
    /// All columns as one matrix.
    Matrix(Matrix),
    /// Each column as a one-column matrix of its own type.
    Columns(Vec<Matrix>),
    /// Features and target.
    Xy(Matrix, Matrix),
    /// A batch still to be converted as the output says (by the receiving thread).
    Pending(FeedBatch, FeedOutput),
}

/// How a feed's batches become [`Output`]s.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FeedOutput {
    /// Record batches, every column cast to the type if one is given.
    Batches(Option<NpyType>),
    /// One matrix of the type.
    Matrix(NpyType),
    /// One array per column, each of the column's own numeric type.
    Columns,
    /// The first `features` columns as a matrix of `x`, the last as an array of `y` (its own
    /// type when `None`).
    Xy {
        features: usize,
        x: NpyType,
        y: Option<NpyType>,
    },
}

impl FeedOutput {
    /// `batch` as this output: arrays or a record batch.
    pub(crate) fn convert(self, batch: FeedBatch) -> Result<Output, EngineError> {
        let schema = batch.schema();
        let native = |index: usize| {
            let field = schema.field(index);
            NpyType::native(field.data_type()).ok_or_else(|| {
                EngineError::Type(format!(
                    "column '{}' is {}, not a number: a numeric array holds numbers only",
                    field.name(),
                    field.data_type()
                ))
            })
        };
        Ok(match self {
            FeedOutput::Batches(None) => Output::Batch(batch.into_record_batch()?),
            FeedOutput::Batches(Some(dtype)) => Output::Batch(batch.into_record_batch_as(dtype)?),
            FeedOutput::Matrix(dtype) => Output::Matrix(batch.to_matrix(dtype)?),
            FeedOutput::Columns => Output::Columns(
                (0..schema.fields().len())
                    .map(|i| batch.project(&[i])?.to_matrix(native(i)?))
                    .collect::<Result<Vec<_>, EngineError>>()?,
            ),
            FeedOutput::Xy { features, x, y } => {
                let columns: Vec<usize> = (0..features).collect();
                let target = match y {
                    Some(y) => y,
                    None => native(features)?,
                };
                Output::Xy(
                    batch.project(&columns)?.to_matrix(x)?,
                    batch.project(&[features])?.to_matrix(target)?,
                )
            }
        })
    }
}

/// What the worker does with the query's batches.
pub(crate) enum Work {
    /// Hand them to the caller one by one, in whatever order the threads produce them.
    Stream,
    /// Hand them to the caller cut to size and converted: rows in the files' order, or
    /// shuffled when the options say so.
    Feed {
        options: FeedOptions,
        output: FeedOutput,
    },
    /// Write them to `path` (through a temporary file renamed at the end); `npy_dtype` is
    /// the element type of a `.npy` array, `bloom_filter_columns` the columns of a Parquet
    /// file that get bloom filters.
    Sink {
        path: PathBuf,
        format: OutputFormat,
        npy_dtype: NpyType,
        bloom_filter_columns: Vec<String>,
    },
}

/// A query running on a worker thread.
pub(crate) struct Running {
    schema: SchemaRef,
    receiver: Option<Receiver<Message>>,
    cancel: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    stats: Option<QueryStats>,
    /// The cache hit the query hands over unread (`CacheSettings::defer_hits`).
    stored: Option<StoredResult>,
    /// Called as `f(done, total, rows, seconds)` while the caller waits for a batch (every
    /// 50 ms): morsels done and planned, rows read, time since the start. A notebook
    /// progress bar (`collect(progress=...)`).
    on_progress: Option<Py<PyAny>>,
    progress: Arc<ooc::Progress>,
    started: std::time::Instant,
}

impl Running {
    /// Plan `frame` and start it (planning reads Parquet footers, so it runs without the GIL).
    pub(crate) fn start(py: Python<'_>, frame: DataFrame, work: Work) -> PyResult<Self> {
        let order = match &work {
            Work::Feed { options, .. } => Some(options.row_order()),
            // Row i of a .npy array is row i of the input: a model's features and labels
            // written to separate arrays must line up.
            Work::Sink {
                format: OutputFormat::Npy,
                ..
            } => Some(RowOrder::Source),
            _ => None,
        };
        // A feed of fixed-size record batches has the engine decode batches of that size
        // (within bounds), so that where slices align (row groups a multiple of the size) they
        // are handed on as they are instead of being joined: SF10 `lineitem` in 1M-row row
        // groups, 2.8 s instead of 3.5 s; in 123k-row row groups, where batches straddle slices
        // anyway, 3.4 s instead of 3.0 s. Matrices are filled from pieces without joining
        // them, and larger batches only made them slower (2.9 s instead of 2.6 s).
        let batch_size = match &work {
            Work::Feed {
                options,
                output: FeedOutput::Batches(_),
            } => options
                .batch_size
                .map(|rows| rows.clamp(MIN_FEED_ENGINE_BATCH, MAX_FEED_ENGINE_BATCH)),
            _ => None,
        };
        let frame = match order {
            Some(order) => {
                let mut config = frame.config().clone().with_row_order(order);
                if let Some(rows) = batch_size {
                    config = config.with_batch_size(rows);
                }
                frame.with_config(config)
            }
            None => frame,
        };
        Self::start_with(py, move || frame.execute(), work)
    }

    /// Run the query `execute` starts (a plan that is not a frame: the root of a distributed
    /// query) for `work`.
    pub(crate) fn start_with(
        py: Python<'_>,
        execute: impl FnOnce() -> ooc::Result<ooc::QueryStream> + Send,
        work: Work,
    ) -> PyResult<Self> {
        let started = std::time::Instant::now();
        let stream = py.detach(execute).py()?;
        let schema = stream.schema();
        let stored = stream.stored_result();
        let cancel = stream.cancel_flag();
        let progress = stream.progress();
        // Batches of a shuffle window are only references to it, and all of them wait in the
        // channel, so that this thread reads the next window's rows while the receiving thread
        // shuffles and converts the current one's.
        let queue = match &work {
            Work::Feed {
                options:
                    FeedOptions {
                        shuffle: Some(shuffle),
                        ..
                    },
                ..
            } => shuffle.window.clamp(2, MAX_QUEUED_WINDOW_BATCHES),
            _ => 2,
        };
        let (sender, receiver) = sync_channel(queue);
        let worker = std::thread::Builder::new()
            .name("ooc-query".into())
            .spawn(move || work_on(stream, work, sender))
            .map_err(|e| to_py_err(EngineError::Internal(format!("cannot start a thread: {e}"))))?;
        Ok(Self {
            schema,
            receiver: Some(receiver),
            cancel,
            worker: Some(worker),
            stats: None,
            stored,
            on_progress: None,
            progress,
            started,
        })
    }

    /// Report progress to `callback` while waiting (see [`Running::on_progress`]).
    pub(crate) fn with_progress(mut self, callback: Option<Py<PyAny>>) -> Self {
        self.on_progress = callback;
        self
    }

    fn report_progress(&self, py: Python<'_>) {
        let Some(callback) = &self.on_progress else {
            return;
        };
        let p = &self.progress;
        let args = (
            p.done.load(Ordering::Relaxed),
            p.total.load(Ordering::Relaxed),
            p.rows.load(Ordering::Relaxed),
            self.started.elapsed().as_secs_f64(),
        );
        // A display that fails must not fail the query.
        if let Err(e) = callback.call1(py, args) {
            e.print(py);
        }
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The statistics, once the query has finished.
    pub(crate) fn stats(&self) -> Option<&QueryStats> {
        self.stats.as_ref()
    }

    /// The cache hit the query handed over unread instead of streaming it.
    pub(crate) fn stored_result(&self) -> Option<&StoredResult> {
        self.stored.as_ref()
    }

    /// The next batch; `None` when the query has finished.
    pub(crate) fn next(&mut self, py: Python<'_>) -> PyResult<Option<RecordBatch>> {
        match self.next_output(py)? {
            None => Ok(None),
            Some(Output::Batch(batch)) => Ok(Some(batch)),
            Some(_) => Err(to_py_err(EngineError::Internal(
                "a query run for batches handed out arrays".into(),
            ))),
        }
    }

    /// The next output; `None` when the query has finished.
    pub(crate) fn next_output(&mut self, py: Python<'_>) -> PyResult<Option<Output>> {
        loop {
            let Some(receiver) = self.receiver.take() else {
                return Ok(None);
            };
            let (receiver, received) = py.detach(move || {
                let received = receiver.recv_timeout(SIGNAL_CHECK);
                (receiver, received)
            });
            self.receiver = Some(receiver);
            match received {
                Ok(Message::Batch(batch)) => return Ok(Some(batch)),
                Ok(Message::Done(result)) => {
                    self.receiver = None;
                    self.join(py);
                    match result {
                        Ok(stats) => {
                            self.stats = Some(stats);
                            // The last report: everything done.
                            self.report_progress(py);
                            return Ok(None);
                        }
                        Err(e) => return Err(to_py_err(e)),
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = py.check_signals() {
                        self.cancel(py);
                        return Err(interrupt);
                    }
                    self.report_progress(py);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.receiver = None;
                    self.join(py);
                    return Err(to_py_err(EngineError::Internal(
                        "the query's worker thread stopped without a result".into(),
                    )));
                }
            }
        }
    }

    /// Run to the end, discarding batches (for `explain(analyze=True)` and sinks).
    pub(crate) fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        while self.next(py)?.is_some() {}
        Ok(())
    }

    /// Stop the query and wait until its worker has released everything.
    pub(crate) fn cancel(&mut self, py: Python<'_>) {
        self.cancel.store(true, Ordering::Relaxed);
        self.receiver = None;
        self.join(py);
    }

    fn join(&mut self, py: Python<'_>) {
        if let Some(worker) = self.worker.take() {
            // A panic was already turned into an error message by the worker.
            py.detach(|| {
                let _ = worker.join();
            });
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropped before the end (an abandoned iterator): stop the producers. The worker
        // notices the closed channel or the flag and cleans up on its own.
        self.cancel.store(true, Ordering::Relaxed);
        self.receiver = None;
    }
}

fn work_on(mut stream: QueryStream, work: Work, sender: SyncSender<Message>) {
    let result =
        std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<QueryStats, EngineError> {
            match work {
                Work::Stream => {
                    let mut rows = 0;
                    for item in stream.by_ref() {
                        let batch = item?;
                        rows += batch.num_rows();
                        if sender.send(Message::Batch(Output::Batch(batch))).is_err() {
                            return Err(EngineError::Cancelled);
                        }
                    }
                    Ok(QueryStats::of(&stream, rows))
                }
                Work::Feed { options, output } => {
                    let schema = stream.schema();
                    let mut rows = 0;
                    // The conversion itself happens on the receiving thread, a stage of its
                    // own in parallel with this one.
                    for batch in Feed::new(stream.by_ref(), schema, options)? {
                        let batch = batch?;
                        rows += batch.num_rows();
                        if sender
                            .send(Message::Batch(Output::Pending(batch, output)))
                            .is_err()
                        {
                            return Err(EngineError::Cancelled);
                        }
                    }
                    Ok(QueryStats::of(&stream, rows))
                }
                Work::Sink {
                    path,
                    format,
                    npy_dtype,
                    bloom_filter_columns,
                } => {
                    let schema = stream.schema();
                    let options = WriteOptions {
                        threads: Some(stream.threads()),
                        npy_dtype,
                        bloom_filter_columns,
                        ..WriteOptions::default()
                    };
                    let rows = write_file(&path, schema, stream.by_ref(), format, &options)?;
                    Ok(QueryStats::of(&stream, rows))
                }
            }
        }));
    let result = result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(EngineError::Internal(format!("panic: {message}")))
    });
    // Release the query (threads, memory, spill files) before reporting that it is done.
    drop(stream);
    let _ = sender.send(Message::Done(result));
}
