//! The dataframe builder: the Rust (and later Python) way to build the same logical plans SQL
//! produces, plus execution: collect, stream, explain.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::logical::expr::Expr;
use crate::logical::plan::{LogicalPlan, SortKey};
use crate::memory::{MemoryPool, SpillManager};
use crate::metrics::{format_bytes, format_duration};
use crate::optimizer::optimize;
use crate::physical::planner::{PhysicalPlanner, PlannerOptions};
use crate::physical::{display_plan, BatchStream, ExecutionPlan, Progress, TaskContext};
use crate::session::SessionState;

/// A lazy query: a logical plan plus the session it runs in.
#[derive(Clone, Debug)]
pub struct DataFrame {
    state: Arc<SessionState>,
    plan: LogicalPlan,
}

impl DataFrame {
    pub(crate) fn new(state: Arc<SessionState>, plan: LogicalPlan) -> Self {
        Self { state, plan }
    }

    fn with_plan(&self, plan: LogicalPlan) -> Self {
        Self {
            state: Arc::clone(&self.state),
            plan,
        }
    }

    /// Keep rows where `predicate` is TRUE.
    pub fn filter(self, predicate: Expr) -> Result<Self> {
        let plan = LogicalPlan::filter(self.plan.clone(), predicate)?;
        Ok(self.with_plan(plan))
    }

    /// Compute `exprs` (use [`Expr::alias`] to name them).
    pub fn select(self, exprs: Vec<Expr>) -> Result<Self> {
        let plan = LogicalPlan::project(self.plan.clone(), exprs)?;
        Ok(self.with_plan(plan))
    }

    /// Group by `group_by` and compute `aggregates` (e.g. `sum(col("x")).alias("total")`).
    pub fn aggregate(self, group_by: Vec<Expr>, aggregates: Vec<Expr>) -> Result<Self> {
        let plan = LogicalPlan::aggregate(self.plan.clone(), group_by, aggregates)?;
        Ok(self.with_plan(plan))
    }

    /// Order by `keys`.
    pub fn sort(self, keys: Vec<SortKey>) -> Result<Self> {
        let plan = LogicalPlan::sort(self.plan.clone(), keys)?;
        Ok(self.with_plan(plan))
    }

    /// Skip `skip` rows and keep at most `fetch`.
    pub fn limit(self, skip: usize, fetch: Option<usize>) -> Result<Self> {
        Ok(self.with_plan(LogicalPlan::limit(self.plan.clone(), skip, fetch)))
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema().to_arrow()
    }

    /// The unoptimized logical plan.
    pub fn logical_plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// The optimized logical plan.
    pub fn optimized_plan(&self) -> Result<LogicalPlan> {
        optimize(self.plan.clone())
    }

    /// The physical plan that would run.
    pub fn physical_plan(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let optimized = self.optimized_plan()?;
        let config = &self.state.config;
        let mut planner = PhysicalPlanner::new(PlannerOptions {
            threads: config.threads,
            morsel_rows: config.morsel_rows,
            memory_limit: config.memory_limit,
        });
        planner.create_plan(&optimized)
    }

    /// EXPLAIN: the physical plan with pruning decisions. With `analyze`, runs the query
    /// (discarding rows) and adds per-operator metrics and the query's totals.
    pub fn explain(&self, analyze: bool) -> Result<String> {
        if !analyze {
            return Ok(display_plan(&self.physical_plan()?, false));
        }
        let mut stream = self.clone().execute()?;
        let mut rows = 0;
        for batch in stream.by_ref() {
            rows += batch?.num_rows();
        }
        Ok(format!("{}\noutput rows: {rows}\n", stream.report()))
    }

    /// Start executing; batches arrive as the plan produces them.
    pub fn execute(self) -> Result<QueryStream> {
        let plan = self.physical_plan()?;
        let config = &self.state.config;
        let ctx = Arc::new(TaskContext {
            memory_pool: match config.memory_limit {
                Some(limit) => MemoryPool::new(limit),
                None => MemoryPool::unbounded(),
            },
            batch_size: config.batch_size,
            threads: config.threads,
            morsel_rows: config.morsel_rows,
            bytes_read: Arc::new(AtomicU64::new(0)),
            progress: Arc::new(Progress::default()),
            cancelled: Arc::new(AtomicBool::new(false)),
            spill: Arc::new(SpillManager::new(
                config.temp_dir.as_deref(),
                config.max_temp_size.unwrap_or(u64::MAX),
            )),
        });
        let started = Instant::now();
        let stream = Arc::clone(&plan).execute(0, Arc::clone(&ctx))?;
        Ok(QueryStream {
            plan,
            ctx,
            stream: Some(stream),
            started,
            finished: None,
        })
    }

    /// Run and gather all result batches.
    pub fn collect(self) -> Result<Vec<RecordBatch>> {
        self.execute()?.collect()
    }
}

/// A running query: an iterator of result batches with access to its metrics.
pub struct QueryStream {
    plan: Arc<dyn ExecutionPlan>,
    ctx: Arc<TaskContext>,
    stream: Option<BatchStream>,
    started: Instant,
    finished: Option<Duration>,
}

impl QueryStream {
    /// The result schema.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// The physical plan being run.
    pub fn plan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.plan
    }

    /// Progress counters (row groups done / total).
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.ctx.progress)
    }

    /// A flag that cancels the query when set.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ctx.cancelled)
    }

    /// Compressed bytes read from Parquet so far.
    pub fn bytes_read(&self) -> u64 {
        self.ctx.bytes_read.load(Ordering::Relaxed)
    }

    /// Peak bytes reserved from the memory pool.
    pub fn peak_reserved(&self) -> usize {
        self.ctx.memory_pool.peak()
    }

    /// Bytes reserved from the memory pool right now (zero once the query has ended).
    pub fn reserved(&self) -> usize {
        self.ctx.memory_pool.reserved()
    }

    /// The most bytes of spill files held at once.
    pub fn peak_spill_bytes(&self) -> u64 {
        self.ctx.spill.peak_bytes_on_disk()
    }

    /// Wall time so far (or until the stream ended).
    pub fn elapsed(&self) -> Duration {
        self.finished.unwrap_or_else(|| self.started.elapsed())
    }

    /// The plan with per-operator metrics and the query's totals.
    pub fn report(&self) -> String {
        let mut out = display_plan(&self.plan, true);
        out.push_str(&format!(
            "\nwall time: {}\nbytes read from Parquet: {}\npeak reserved operator memory: {}\n",
            format_duration(self.elapsed()),
            format_bytes(self.bytes_read()),
            format_bytes(self.peak_reserved() as u64),
        ));
        let spill = &self.ctx.spill;
        if spill.peak_bytes_on_disk() > 0 {
            out.push_str(&format!(
                "peak spill bytes on disk: {}\n",
                format_bytes(spill.peak_bytes_on_disk())
            ));
        }
        if let Some(rss) = peak_rss_bytes() {
            out.push_str(&format!(
                "peak RSS of this process: {}\n",
                format_bytes(rss)
            ));
        }
        out
    }
}

impl Iterator for QueryStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.stream.as_mut()?.next();
        if item.is_none() || matches!(item, Some(Err(_))) {
            if item.is_some() {
                // After an error, stop every producer before the stream (and its threads,
                // which it waits for) is dropped.
                self.ctx.cancelled.store(true, Ordering::Relaxed);
            }
            self.stream = None;
            self.finished = Some(self.started.elapsed());
        }
        item
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        // Stop producers that may still be running (e.g. after an early LIMIT or an error).
        self.ctx.cancelled.store(true, Ordering::Relaxed);
    }
}

/// Peak resident set size of this process (Linux: `VmHWM` from /proc/self/status).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
