//! Distributed execution: an optimized plan cut into **stages** of **tasks** that other
//! processes run (Dask workers, a process pool), each task an ordinary bounded-memory query.
//!
//! ```text
//!            stage 0 (scan tasks)              stage 1 (bucket tasks)        client
//!  lineitem ─ rg 0..k   ─► partial agg ─┐ hash by key ┌─► bucket 0 ─► final agg ─┐
//!  lineitem ─ rg k..2k  ─► partial agg ─┼────────────┼─► bucket 1 ─► final agg ─┼─► sort
//!  lineitem ─ ...                      ─┘  exchange   └─► ...                     ┘  (root)
//!                                          files
//! ```
//!
//! * [`DistributedPlan::new`] splits the plan (the `split` module explains where and why).
//! * The driver (the Python package's `ooc.distributed`, or any other) asks for the
//!   [fragments](DistributedPlan::fragment) of a stage once the stages it reads have finished,
//!   hands them to workers, and [records](DistributedPlan::record) what each task reports.
//! * A worker runs a fragment with [`run_fragment`]: it decodes the plan (reopening the
//!   Parquet files it names and checking they are the files the plan was made from), runs it
//!   under its own memory limit, and writes its output as exchange files
//!   (`ooc_io::cache::ExchangeWriter`: Arrow IPC with chunk checksums, renamed into place
//!   when complete) into the scratch directory, whose paths it reports.
//! * The root — the part of the plan above the last exchange — runs in the driver's process
//!   over the exchange files ([`DistributedPlan::root`]).
//!
//! A task that dies is simply run again by the driver's executor: every attempt writes files
//! under names of its own, and a stage reads only the files of the attempt whose report was
//! recorded, so nothing a dead attempt wrote is ever read.
//!
//! # The fragment format
//!
//! A fragment is UTF-8 JSON:
//!
//! ```text
//! { "format": "ooc-fragment", "version": 1, "engine_version": "0.1.0",
//!   "query": "…", "stage": 2, "task": 0,
//!   "plan": { …the stage's logical plan, its scans bound to files… },
//!   "output": "Gather" | { "Hash": { "keys": [ …expressions… ], "buckets": 4 } },
//!   "scratch_dir": "/shared/scratch/…", "compression": false }
//! ```
//!
//! The plan is the logical plan's own serde form; constants and in-memory tables are Arrow IPC
//! streams in hexadecimal, a Parquet scan names its locations and, per file, the path, size and
//! footer hash (`logical::wire`). A fragment of another format version or engine version is
//! refused before anything in it is decoded. A task reports a [`TaskReport`], also JSON.

mod split;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ahash::RandomState;
use arrow::array::{RecordBatch, UInt32Array};
use ooc_io::cache::{ExchangeFile, ExchangeWriter};
use ooc_io::RowGroupRef;
use serde::{Deserialize, Serialize};

use crate::config::SessionConfig;
use crate::error::{EngineError, Result};
use crate::eval::create_physical_expr;
use crate::execution::{execute_optimized, QueryStream};
use crate::logical::expr::Expr;
use crate::logical::plan::{LogicalPlan, ScanSource, TableScan};
use crate::physical::batches::compact_views;
use crate::physical::hashing::hash_columns;
use crate::sink::{write_file, OutputFormat, WriteOptions};

use self::split::{Splitter, StageSpec};

/// The fragment format's name.
const FORMAT: &str = "ooc-fragment";
/// The fragment format's version.
pub const FRAGMENT_VERSION: u32 = 1;
/// The engine's version, which a fragment must have been made by.
const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The seeds of the hash that sends rows to buckets: fixed, so that every task of every
/// process sends equal keys to the same bucket.
fn bucket_hasher() -> RandomState {
    RandomState::with_seeds(0x6f6f_6321, 0x6275_636b, 0x6574_7321, 0x7368_7566)
}

/// How a plan is split.
#[derive(Clone, Debug)]
pub struct DistributedOptions {
    /// Buckets of every hash exchange: the number of tasks of the stages that read one.
    pub buckets: usize,
    /// Tasks that share the row groups of a large scan.
    pub scan_tasks: usize,
    /// A Parquet scan whose columns take at most this many bytes in the files (compressed)
    /// is read whole by every task that needs it, rather than split.
    pub replicate_bytes: u64,
    /// A join side estimated at most this large is gathered and read whole by every task of
    /// the other side, rather than both sides being hash-partitioned.
    pub broadcast_bytes: u64,
    /// Where tasks write their exchange files: a directory every worker can reach.
    pub scratch_dir: PathBuf,
    /// Compress exchange files with zstd.
    pub compression: bool,
}

impl DistributedOptions {
    /// Defaults for `workers` workers writing into `scratch_dir`.
    pub fn new(workers: usize, scratch_dir: impl Into<PathBuf>) -> Self {
        let workers = workers.max(1);
        Self {
            buckets: 2 * workers,
            scan_tasks: 4 * workers,
            replicate_bytes: 16 << 20,
            broadcast_bytes: 32 << 20,
            scratch_dir: scratch_dir.into(),
            compression: false,
        }
    }
}

/// What the tasks of a stage write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StageOutput {
    /// One file per task, read whole by the next stage.
    Gather,
    /// `buckets` files per task: rows hashed by `keys` (expressions over the stage's output).
    Hash {
        /// The keys.
        keys: Vec<Expr>,
        /// The number of buckets.
        buckets: usize,
    },
    /// The query's result, one Parquet file per task (`part-STAGE-TASK.parquet`) in `dir`.
    Parquet {
        /// The directory.
        dir: PathBuf,
    },
}

/// One exchange file a task wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Its bucket (0 for a gathered output).
    pub bucket: usize,
    /// Where it is.
    pub path: PathBuf,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

/// What a task reports when it finishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// The query (as the fragment named it).
    pub query: String,
    /// The stage.
    pub stage: usize,
    /// The task within the stage.
    pub task: usize,
    /// This attempt's name (its files carry it).
    pub attempt: String,
    /// The process that ran it.
    pub pid: u32,
    /// Its exchange files.
    pub files: Vec<OutputFile>,
    /// Rows it output.
    pub output_rows: u64,
    /// Bytes of Parquet data it read.
    pub bytes_read: u64,
    /// The query pool's peak (bytes reserved).
    pub peak_reserved_bytes: u64,
    /// The process's highest resident set while the task ran (its own memory profile).
    pub peak_rss_bytes: u64,
    /// Bytes it spilled at most at once.
    pub peak_spill_bytes: u64,
    /// Wall time.
    pub wall_seconds: f64,
    /// The task's plan with each operator's figures (as `--explain-analyze` prints them).
    pub plan_report: String,
}

impl TaskReport {
    /// Bytes of exchange files written.
    pub fn bytes_written(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// The wire form of a fragment.
#[derive(Serialize, Deserialize)]
struct Fragment {
    format: String,
    version: u32,
    engine_version: String,
    query: String,
    stage: usize,
    task: usize,
    plan: LogicalPlan,
    output: StageOutput,
    scratch_dir: PathBuf,
    compression: bool,
}

/// A stage of a split plan and the reports of its finished tasks.
struct Stage {
    spec: StageSpec,
    /// Each task's share of the split scan (`None`: not a split stage).
    shares: Vec<Option<Vec<RowGroupRef>>>,
    reports: Vec<Option<TaskReport>>,
}

/// A plan split into stages, and what its tasks reported so far.
pub struct DistributedPlan {
    query: String,
    options: DistributedOptions,
    stages: Vec<Stage>,
    root: LogicalPlan,
}

impl std::fmt::Debug for DistributedPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedPlan")
            .field("query", &self.query)
            .field("stages", &self.stages.len())
            .finish()
    }
}

/// The split scan of a stage's plan (the one scan whose `split` is set).
fn split_scan(plan: &LogicalPlan) -> Option<&TableScan> {
    match plan {
        LogicalPlan::TableScan(scan) if scan.split.is_some() => Some(scan),
        other => other.inputs().into_iter().find_map(split_scan),
    }
}

/// `plan` with the split scan's row groups replaced by `share`.
fn with_share(plan: LogicalPlan, share: &[RowGroupRef]) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::TableScan(mut scan) if scan.split.is_some() => {
            scan.split = Some(Arc::new(share.to_vec()));
            Ok(LogicalPlan::TableScan(scan))
        }
        other => other.map_inputs(&mut |p| with_share(p, share)),
    }
}

/// Stages whose output `plan` reads.
fn exchange_inputs(plan: &LogicalPlan, out: &mut Vec<usize>) {
    if let LogicalPlan::TableScan(scan) = plan {
        if let ScanSource::Exchange(input) = &scan.source {
            if !out.contains(&input.stage) {
                out.push(input.stage);
            }
        }
    }
    for input in plan.inputs() {
        exchange_inputs(input, out);
    }
}

/// Row groups cut into `n` runs of consecutive row groups with about equal numbers of rows.
fn shares(scan: &TableScan, n: usize) -> Vec<Vec<RowGroupRef>> {
    let (Some(all), ScanSource::Parquet(dataset)) = (&scan.split, &scan.source) else {
        return vec![Vec::new()];
    };
    let total: usize = all.iter().map(|rg| dataset.row_group_rows(*rg)).sum();
    let n = n.clamp(1, all.len().max(1));
    let target = total.div_ceil(n).max(1);
    let mut out: Vec<Vec<RowGroupRef>> = vec![Vec::new()];
    let mut rows = 0;
    for rg in all.iter() {
        let current = out.len() - 1;
        if rows >= target * (current + 1) && out.len() < n {
            out.push(Vec::new());
        }
        let last = out.len() - 1;
        out[last].push(*rg);
        rows += dataset.row_group_rows(*rg);
    }
    out
}

impl DistributedPlan {
    /// Split `optimized` (a plan the optimizer has already rewritten) into stages.
    pub fn new(optimized: LogicalPlan, options: DistributedOptions) -> Result<Self> {
        let mut splitter = Splitter::new(&options);
        let root = splitter.split_root(optimized)?;
        let stages = splitter
            .stages
            .into_iter()
            .map(|spec| {
                let shares: Vec<Option<Vec<RowGroupRef>>> = if spec.split_scan {
                    match split_scan(&spec.plan) {
                        Some(scan) => shares(scan, options.scan_tasks)
                            .into_iter()
                            .map(Some)
                            .collect(),
                        None => vec![None],
                    }
                } else if spec.bucketed {
                    vec![None; options.buckets.max(1)]
                } else {
                    vec![None]
                };
                let reports = vec![None; shares.len()];
                Stage {
                    spec,
                    shares,
                    reports,
                }
            })
            .collect();
        let query = format!(
            "q{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        Ok(Self {
            query,
            options,
            stages,
            root,
        })
    }

    /// Split `optimized` so that its last stage's tasks write the result, one Parquet file
    /// each, into `dir` (no root runs in the driver). Refused when the query's last step must
    /// run in one place (an ORDER BY, a LIMIT, an aggregate without GROUP BY, or a plan
    /// small enough to run whole).
    pub fn new_sink(
        optimized: LogicalPlan,
        options: DistributedOptions,
        dir: PathBuf,
    ) -> Result<Self> {
        let mut plan = Self::new(optimized, options)?;
        let last = match &plan.root {
            LogicalPlan::TableScan(scan) => match &scan.source {
                ScanSource::Exchange(input) if input.stage + 1 == plan.stages.len() => {
                    Some(input.stage)
                }
                _ => None,
            },
            _ => None,
        };
        let Some(last) = last else {
            return Err(EngineError::Plan(
                "this query's last step runs in one place (an ORDER BY, a LIMIT, an aggregate \
                 without GROUP BY, or inputs too small to split): write one file instead of \
                 one per task"
                    .into(),
            ));
        };
        plan.stages[last].spec.output = StageOutput::Parquet { dir };
        Ok(plan)
    }

    /// The files the tasks of a plan made by [`new_sink`](Self::new_sink) wrote, once every
    /// stage has run.
    pub fn output_files(&self) -> Vec<OutputFile> {
        match self.stages.last() {
            Some(stage) if matches!(stage.spec.output, StageOutput::Parquet { .. }) => stage
                .reports
                .iter()
                .flatten()
                .flat_map(|r| r.files.iter().cloned())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The query's name (fragments and files carry it).
    pub fn query_id(&self) -> &str {
        &self.query
    }

    /// The number of stages, in an order where every stage comes after those it reads.
    pub fn num_stages(&self) -> usize {
        self.stages.len()
    }

    /// The number of tasks of `stage`.
    pub fn num_tasks(&self, stage: usize) -> usize {
        self.stages.get(stage).map_or(0, |s| s.shares.len())
    }

    /// The stages whose output `stage` reads.
    pub fn stage_inputs(&self, stage: usize) -> Vec<usize> {
        let mut out = Vec::new();
        if let Some(s) = self.stages.get(stage) {
            exchange_inputs(&s.spec.plan, &mut out);
        }
        out
    }

    /// Whether every task of `stage` has reported.
    pub fn stage_done(&self, stage: usize) -> bool {
        self.stages
            .get(stage)
            .is_some_and(|s| s.reports.iter().all(Option::is_some))
    }

    /// `plan` with every exchange scan bound to the files it reads for task `task`.
    fn bind(&self, plan: LogicalPlan, task: usize) -> Result<LogicalPlan> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                let ScanSource::Exchange(input) = &scan.source else {
                    return Ok(LogicalPlan::TableScan(scan));
                };
                let stage = self
                    .stages
                    .get(input.stage)
                    .ok_or_else(|| EngineError::Internal(format!("no stage {}", input.stage)))?;
                let mut files = Vec::new();
                let mut rows = 0;
                for (i, report) in stage.reports.iter().enumerate() {
                    let report = report.as_ref().ok_or_else(|| {
                        EngineError::Execution(format!(
                            "stage {} read before its task {i} finished",
                            input.stage
                        ))
                    })?;
                    for file in &report.files {
                        if !input.by_bucket || file.bucket == task {
                            files.push(file.path.clone());
                            rows += file.rows;
                        }
                    }
                }
                let mut bound = input.as_ref().clone();
                bound.files = files;
                bound.rows = rows;
                let schema = scan.schema().clone();
                Ok(LogicalPlan::TableScan(TableScan::exchange(bound, schema)))
            }
            other => other.map_inputs(&mut |p| self.bind(p, task)),
        }
    }

    /// The fragment of task `task` of `stage`, ready to send to a worker. The stages it
    /// reads must have finished.
    pub fn fragment(&self, stage: usize, task: usize) -> Result<Vec<u8>> {
        let s = self
            .stages
            .get(stage)
            .ok_or_else(|| EngineError::Execution(format!("no stage {stage}")))?;
        let share = s
            .shares
            .get(task)
            .ok_or_else(|| EngineError::Execution(format!("stage {stage} has no task {task}")))?;
        let mut plan = self.bind(s.spec.plan.clone(), task)?;
        if let Some(share) = share {
            plan = with_share(plan, share)?;
        }
        let fragment = Fragment {
            format: FORMAT.into(),
            version: FRAGMENT_VERSION,
            engine_version: ENGINE_VERSION.into(),
            query: self.query.clone(),
            stage,
            task,
            plan,
            output: s.spec.output.clone(),
            scratch_dir: self.options.scratch_dir.clone(),
            compression: self.options.compression,
        };
        serde_json::to_vec(&fragment).map_err(|e| {
            EngineError::Execution(format!("stage {stage} cannot be sent to a worker: {e}"))
        })
    }

    /// Record a task's report (as [`run_fragment`] returned it). A second report for the same
    /// task (a retried attempt that also finished) replaces nothing: the first one stands.
    pub fn record(&mut self, report: &[u8]) -> Result<TaskReport> {
        let report: TaskReport = serde_json::from_slice(report)
            .map_err(|e| EngineError::Execution(format!("a task's report is damaged: {e}")))?;
        if report.query != self.query {
            return Err(EngineError::Execution(format!(
                "a report of query {} given to query {}",
                report.query, self.query
            )));
        }
        let slot = self
            .stages
            .get_mut(report.stage)
            .and_then(|s| s.reports.get_mut(report.task))
            .ok_or_else(|| {
                EngineError::Execution(format!(
                    "a report of task {} of stage {}, which does not exist",
                    report.task, report.stage
                ))
            })?;
        if slot.is_none() {
            *slot = Some(report.clone());
        }
        Ok(report)
    }

    /// The reports recorded so far, by stage then task.
    pub fn reports(&self) -> Vec<&TaskReport> {
        self.stages
            .iter()
            .flat_map(|s| s.reports.iter().flatten())
            .collect()
    }

    /// The part of the plan that runs in the driver's process, over the exchange files of
    /// the stages below it (all of which must have finished).
    pub fn root(&self) -> Result<LogicalPlan> {
        self.bind(self.root.clone(), 0)
    }

    /// Run the root under `config`.
    pub fn execute_root(&self, config: &SessionConfig) -> Result<QueryStream> {
        execute_plan(self.root()?, config)
    }

    /// The stages as text: each stage's plan, output and tasks, then the root.
    pub fn display(&self) -> String {
        let mut out = String::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let output = match &stage.spec.output {
                StageOutput::Gather => "gathered".to_string(),
                StageOutput::Hash { keys, buckets } => {
                    let k: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                    format!("hashed by [{}] into {buckets} buckets", k.join(", "))
                }
                StageOutput::Parquet { dir } => {
                    format!("one Parquet file per task in {}", dir.display())
                }
            };
            let kind = if stage.spec.split_scan {
                "row groups of a scan"
            } else if stage.spec.bucketed {
                "one bucket each"
            } else {
                "one task"
            };
            out.push_str(&format!(
                "stage {i}: {} tasks ({kind}), output {output}\n",
                stage.shares.len()
            ));
            for line in stage.spec.plan.display_indent().lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("root (driver):\n");
        for line in self.root.display_indent().lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// Run a plan cut by [`DistributedPlan`] (its [`root`](DistributedPlan::root)) under
/// `config`, as it is: it is already optimized.
pub fn execute_plan(plan: LogicalPlan, config: &SessionConfig) -> Result<QueryStream> {
    execute_optimized(plan, config)
}

/// Check a fragment's envelope before decoding its plan.
fn check_envelope(fragment: &[u8]) -> Result<()> {
    #[derive(Deserialize)]
    struct Envelope {
        format: Option<String>,
        version: Option<u32>,
        engine_version: Option<String>,
    }
    let envelope: Envelope = serde_json::from_slice(fragment)
        .map_err(|e| EngineError::Execution(format!("not a plan fragment: {e}")))?;
    if envelope.format.as_deref() != Some(FORMAT) {
        return Err(EngineError::Execution("not a plan fragment".into()));
    }
    if envelope.version != Some(FRAGMENT_VERSION)
        || envelope.engine_version.as_deref() != Some(ENGINE_VERSION)
    {
        return Err(EngineError::Execution(format!(
            "a plan fragment of ooc {} (format {}) cannot run on ooc {ENGINE_VERSION} (format \
             {FRAGMENT_VERSION}): install the same version of ooc on the driver and every worker",
            envelope.engine_version.as_deref().unwrap_or("?"),
            envelope.version.map_or("?".into(), |v| v.to_string()),
        )));
    }
    Ok(())
}

/// Run a fragment under `config` (the worker's memory limit and threads) and write its
/// output; returns the task's report as JSON.
pub fn run_fragment(fragment: &[u8], config: &SessionConfig) -> Result<Vec<u8>> {
    check_envelope(fragment)?;
    let fragment: Fragment = serde_json::from_slice(fragment)
        .map_err(|e| EngineError::Execution(format!("a damaged plan fragment: {e}")))?;
    let started = Instant::now();
    let attempt = ooc_io::cache::unique_name();
    if let StageOutput::Parquet { dir } = &fragment.output {
        let dir = dir.clone();
        return write_result_file(fragment, dir, config, started, attempt);
    }
    let dir = fragment
        .scratch_dir
        .join(&fragment.query)
        .join(format!("stage-{}", fragment.stage));
    std::fs::create_dir_all(&dir).map_err(|e| {
        EngineError::Execution(format!(
            "cannot create the scratch directory {}: {e}",
            dir.display()
        ))
    })?;
    let schema = fragment.plan.schema().clone();
    let keys = match &fragment.output {
        StageOutput::Gather | StageOutput::Parquet { .. } => Vec::new(),
        StageOutput::Hash { keys, .. } => keys
            .iter()
            .map(|k| create_physical_expr(k, &schema))
            .collect::<Result<Vec<_>>>()?,
    };
    let buckets = match &fragment.output {
        StageOutput::Gather | StageOutput::Parquet { .. } => 1,
        StageOutput::Hash { buckets, .. } => (*buckets).max(1),
    };
    let mut stream = execute_optimized(fragment.plan, config)?;
    let arrow_schema = stream.schema();
    let mut writers = (0..buckets)
        .map(|b| {
            let path = dir.join(format!("task-{}-{attempt}-b{b}.arrow", fragment.task));
            ExchangeWriter::create(&path, &arrow_schema, fragment.compression)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let hasher = bucket_hasher();
    let mut output_rows = 0u64;
    let mut pending: Vec<Pending> = (0..buckets).map(|_| Pending::default()).collect();
    for batch in stream.by_ref() {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        output_rows += batch.num_rows() as u64;
        if buckets == 1 {
            pending[0].push(batch, &mut writers[0])?;
            continue;
        }
        write_buckets(&batch, &keys, &hasher, &mut pending, &mut writers)?;
    }
    let files = writers
        .into_iter()
        .zip(pending)
        .enumerate()
        .map(|(bucket, (mut w, mut p))| {
            p.flush(&mut w)?;
            let ExchangeFile { path, rows, bytes } = w.finish()?;
            Ok(OutputFile {
                bucket,
                path,
                rows,
                bytes,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let task = (fragment.query, fragment.stage, fragment.task);
    report(task, attempt, files, output_rows, &stream, started)
}

/// A finished task's report, as JSON: its files and the figures of its query.
fn report(
    (query, stage, task): (String, usize, usize),
    attempt: String,
    files: Vec<OutputFile>,
    output_rows: u64,
    stream: &QueryStream,
    started: Instant,
) -> Result<Vec<u8>> {
    let report = TaskReport {
        query,
        stage,
        task,
        attempt,
        pid: std::process::id(),
        files,
        output_rows,
        bytes_read: stream.bytes_read(),
        peak_reserved_bytes: stream.peak_reserved() as u64,
        peak_rss_bytes: stream.memory_profile().highest_rss.map_or(0, |r| r.total),
        peak_spill_bytes: stream.peak_spill_bytes(),
        wall_seconds: started.elapsed().as_secs_f64(),
        plan_report: stream.report(),
    };
    serde_json::to_vec(&report).map_err(|e| EngineError::Internal(e.to_string()))
}

/// Run a fragment of the last stage of a query written one file per task: its result goes to
/// `dir/part-STAGE-TASK.parquet`, atomically (a temporary file renamed when complete; a retried
/// attempt writes the same rows under the same name).
fn write_result_file(
    fragment: Fragment,
    dir: PathBuf,
    config: &SessionConfig,
    started: Instant,
    attempt: String,
) -> Result<Vec<u8>> {
    let path = dir.join(format!(
        "part-{:03}-{:05}.parquet",
        fragment.stage, fragment.task
    ));
    let mut stream = execute_optimized(fragment.plan, config)?;
    let schema = stream.schema();
    let options = WriteOptions {
        threads: Some(config.threads),
        ..WriteOptions::default()
    };
    let rows = write_file(
        &path,
        schema,
        stream.by_ref(),
        OutputFormat::Parquet,
        &options,
    )?;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let file = OutputFile {
        bucket: 0,
        path,
        rows: rows as u64,
        bytes,
    };
    let task = (fragment.query, fragment.stage, fragment.task);
    report(task, attempt, vec![file], rows as u64, &stream, started)
}

/// Rows of an exchange file (a bucket) before they are written: the rows of each input batch
/// that hash to one bucket are few (a quarter of a batch with four buckets, a handful when a
/// stage's output is small), so they are gathered into batches of at least [`WRITE_ROWS`] rows:
/// fewer, larger IPC messages to write and to read back.
#[derive(Default)]
struct Pending {
    batches: Vec<RecordBatch>,
    rows: usize,
}

/// Rows gathered per bucket before a batch is written.
const WRITE_ROWS: usize = 8192;

impl Pending {
    fn push(&mut self, batch: RecordBatch, writer: &mut ExchangeWriter) -> Result<()> {
        self.rows += batch.num_rows();
        self.batches.push(batch);
        // Pieces taken from input batches keep those batches' string data alive: few of them
        // wait at a time.
        if self.rows >= WRITE_ROWS || self.batches.len() >= 32 {
            self.flush(writer)?;
        }
        Ok(())
    }

    fn flush(&mut self, writer: &mut ExchangeWriter) -> Result<()> {
        let batches = std::mem::take(&mut self.batches);
        self.rows = 0;
        // String views are written with every buffer they point into: only the bytes their
        // rows use go to the file.
        match batches.as_slice() {
            [] => Ok(()),
            [one] => Ok(writer.write(&compact_views(one))?),
            [first, ..] => {
                let joined = arrow::compute::concat_batches(&first.schema(), &batches)?;
                Ok(writer.write(&compact_views(&joined))?)
            }
        }
    }
}

/// Send each row of `batch` to the writer of its bucket.
fn write_buckets(
    batch: &RecordBatch,
    keys: &[crate::eval::PhysicalExpr],
    hasher: &RandomState,
    pending: &mut [Pending],
    writers: &mut [ExchangeWriter],
) -> Result<()> {
    let n = batch.num_rows();
    let columns = keys
        .iter()
        .map(|k| k.evaluate(batch)?.into_array(n))
        .collect::<Result<Vec<_>>>()?;
    let hashes = hash_columns(&columns, hasher)?;
    let buckets = writers.len() as u64;
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); writers.len()];
    for (row, hash) in hashes.iter().enumerate() {
        // The high bits: operators of the reading task split by the low ones.
        rows[((hash >> 32) % buckets) as usize].push(row as u32);
    }
    for (bucket, indices) in rows.into_iter().enumerate() {
        if indices.is_empty() {
            continue;
        }
        let taken = arrow::compute::take_record_batch(batch, &UInt32Array::from(indices))?;
        pending[bucket].push(taken, &mut writers[bucket])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_of_another_version_or_format_are_refused_before_decoding() {
        let other = br#"{"format":"ooc-fragment","version":1,"engine_version":"0.0.1","plan":{}}"#;
        let err = run_fragment(other, &SessionConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ooc 0.0.1") && err.contains("same version"),
            "{err}"
        );
        let newer = format!(
            r#"{{"format":"ooc-fragment","version":99,"engine_version":"{ENGINE_VERSION}"}}"#
        );
        let err = run_fragment(newer.as_bytes(), &SessionConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("format 99"), "{err}");
        for junk in [&b"not json"[..], br#"{"format":"something else"}"#] {
            let err = run_fragment(junk, &SessionConfig::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("not a plan fragment"), "{err}");
        }
        let damaged = format!(
            r#"{{"format":"ooc-fragment","version":{FRAGMENT_VERSION},"engine_version":"{ENGINE_VERSION}","plan":7}}"#
        );
        let err = run_fragment(damaged.as_bytes(), &SessionConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("damaged plan fragment"), "{err}");
    }

    #[test]
    fn shares_cover_every_row_group_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("a", arrow::datatypes::DataType::Int64, false),
        ]));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(10))
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow::array::Int64Array::from_iter_values(0..95))],
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let dataset = Arc::new(ooc_io::ParquetDataset::open(path.to_str().unwrap()).unwrap());
        let mut scan = TableScan::try_new("t", dataset.clone()).unwrap();
        scan.split = Some(Arc::new(dataset.all_row_groups()));
        for n in [1, 2, 3, 4, 10, 50] {
            let cut = shares(&scan, n);
            assert_eq!(cut.len(), n.min(10), "{n} tasks");
            let flat: Vec<RowGroupRef> = cut.iter().flatten().copied().collect();
            assert_eq!(flat, dataset.all_row_groups(), "{n} tasks");
            assert!(cut.iter().all(|s| !s.is_empty()), "{n} tasks: {cut:?}");
        }
    }
}
