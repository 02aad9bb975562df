//! The dataframe builder: the Rust (and later Python) way to build the same logical plans SQL
//! produces, plus execution: collect, stream, explain.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{EngineError, Result};
use crate::logical::expr::{Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan, SortKey};
use crate::memory::{MemoryPool, SpillManager};
use crate::metrics::{format_bytes, format_duration};
use crate::optimizer::optimize;
use crate::physical::planner::{PhysicalPlanner, PlannerOptions};
use crate::physical::{display_plan, BatchStream, ExecutionPlan, Progress, TaskContext};
use crate::session::{SessionConfig, SessionState};

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

    /// Group by `keys` and compute `exprs`, each an expression over aggregates (for example
    /// `sum(col("a")) / count(col("b"))`). Output: the keys, then one column per expression,
    /// named by its alias (or its text). Unlike [`aggregate`](Self::aggregate), the
    /// expressions may combine several aggregates and literals.
    pub fn group_by(self, keys: Vec<Expr>, exprs: Vec<Expr>) -> Result<Self> {
        let mut aggregates: Vec<Expr> = Vec::new();
        for e in &exprs {
            e.walk(&mut |n| {
                if matches!(n, Expr::Aggregate { .. }) && !aggregates.contains(n) {
                    aggregates.push(n.clone());
                }
            });
        }
        let key_names: Vec<String> = keys.iter().map(Expr::output_name).collect();
        let keys: Vec<Expr> = keys
            .into_iter()
            .zip(&key_names)
            .map(|(k, name)| match k {
                Expr::Column(_) => k,
                other => other.alias(name.clone()),
            })
            .collect();
        let named: Vec<Expr> = aggregates
            .iter()
            .enumerate()
            .map(|(i, a)| a.clone().alias(format!("__agg{i}")))
            .collect();
        let plan = LogicalPlan::aggregate(self.plan.clone(), keys, named)?;
        let mut out: Vec<Expr> = key_names.iter().map(|n| Expr::col(n.clone())).collect();
        for e in exprs {
            let name = e.output_name();
            let rewritten = e.unalias().transform_down(&mut |n| {
                aggregates
                    .iter()
                    .position(|a| a == n)
                    .map(|i| Expr::col(format!("__agg{i}")))
            })?;
            if let Some(c) = rewritten
                .columns()
                .into_iter()
                .find(|c| !c.name.starts_with("__agg") && !key_names.contains(&c.name))
            {
                return Err(EngineError::Plan(format!(
                    "column '{}' is used in an aggregation outside of an aggregate function \
                     (aggregate it, e.g. with first() or max(), or group by it)",
                    c.name
                )));
            }
            out.push(rewritten.alias(name));
        }
        let plan = LogicalPlan::project(plan, out)?;
        Ok(self.with_plan(plan))
    }

    /// Add or replace columns: each expression's output name replaces the input column of
    /// that name in place, or is appended.
    pub fn with_columns(self, exprs: Vec<Expr>) -> Result<Self> {
        let schema = self.plan.schema().clone();
        let mut out: Vec<Expr> = schema.fields().iter().map(column_of).collect();
        for e in exprs {
            let name = e.output_name();
            let e = match e {
                Expr::Column(_) => e.alias(name.clone()),
                other => other,
            };
            match schema.fields().iter().position(|f| f.name() == name) {
                Some(i) => out[i] = e.alias(name),
                None => out.push(e),
            }
        }
        self.select(out)
    }

    /// Rename columns (`(old, new)` pairs); other columns are kept as they are.
    pub fn rename(self, pairs: &[(String, String)]) -> Result<Self> {
        let schema = self.plan.schema().clone();
        for (old, _) in pairs {
            schema.index_of(None, old)?;
        }
        let mut names: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| {
                pairs
                    .iter()
                    .find(|(old, _)| old == f.name())
                    .map_or(f.name(), |(_, new)| new.as_str())
            })
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(EngineError::Plan(format!(
                "rename would create two columns named '{}'",
                w[0]
            )));
        }
        let out = schema
            .fields()
            .iter()
            .map(|f| {
                let column = column_of(f);
                match pairs.iter().find(|(old, _)| old == f.name()) {
                    Some((_, new)) => column.alias(new.clone()),
                    None => column,
                }
            })
            .collect();
        self.select(out)
    }

    /// Drop the named columns.
    pub fn drop_columns(self, names: &[String]) -> Result<Self> {
        let schema = self.plan.schema().clone();
        for name in names {
            schema.index_of(None, name)?;
        }
        let out = schema
            .fields()
            .iter()
            .filter(|f| !names.iter().any(|n| n == f.name()))
            .map(column_of)
            .collect();
        self.select(out)
    }

    /// Distinct rows (`SELECT DISTINCT *`).
    pub fn distinct(self) -> Result<Self> {
        let keys: Vec<Expr> = self.plan.schema().fields().iter().map(column_of).collect();
        self.aggregate(keys, vec![])
    }

    /// Join with `right` on `left_on[i] = right_on[i]` (NULL keys never match), with the
    /// output columns named the way dataframe users expect: the left input's columns, then the
    /// right input's, where a right column whose name is taken gets `suffix` appended. Key
    /// columns of the right input are left out when they would repeat the left key (inner and
    /// left joins on plain columns); a right join keeps the right keys and drops the left
    /// ones; a full join keeps both; semi and anti joins output the left columns only.
    pub fn join(
        self,
        right: DataFrame,
        join_type: JoinType,
        left_on: Vec<Expr>,
        right_on: Vec<Expr>,
        suffix: &str,
    ) -> Result<Self> {
        if left_on.len() != right_on.len() {
            return Err(EngineError::Plan(format!(
                "join needs as many left keys as right keys (got {} and {})",
                left_on.len(),
                right_on.len()
            )));
        }
        // Check the keys against their own side first, so an error names the column as the
        // user wrote it (not the internal side qualifier) and lists that side's columns.
        for (keys, plan) in [(&left_on, &self.plan), (&right_on, &right.plan)] {
            let schema = plan.schema();
            for column in keys.iter().flat_map(Expr::columns) {
                schema.index_of(column.relation.as_deref(), &column.name)?;
            }
        }
        const LEFT: &str = "__left";
        const RIGHT: &str = "__right";
        let left_plan = LogicalPlan::alias(self.plan.clone(), LEFT);
        let right_plan = LogicalPlan::alias(right.plan.clone(), RIGHT);
        // Keys are written against each side alone; qualify their columns by the side.
        let qualify = |e: Expr, side: &str| {
            e.transform_down(&mut |n| match n {
                Expr::Column(c) => Some(Expr::Column(Column::qualified(
                    Some(side.to_string()),
                    c.name.clone(),
                ))),
                _ => None,
            })
        };
        let plain = |e: &Expr| match e {
            Expr::Column(c) => Some(c.name.clone()),
            _ => None,
        };
        let left_keys: Vec<Option<String>> = left_on.iter().map(plain).collect();
        let right_keys: Vec<Option<String>> = right_on.iter().map(plain).collect();
        let on = left_on
            .into_iter()
            .zip(right_on)
            .map(|(l, r)| Ok((qualify(l, LEFT)?, qualify(r, RIGHT)?)))
            .collect::<Result<Vec<_>>>()?;
        let joined = LogicalPlan::join(left_plan, right_plan, join_type, on, None)?;
        if join_type.left_only() {
            let out = self
                .plan
                .schema()
                .fields()
                .iter()
                .map(|f| {
                    Expr::Column(Column::qualified(Some(LEFT.into()), f.name())).alias(f.name())
                })
                .collect();
            return Ok(self.with_plan(LogicalPlan::project(joined, out)?));
        }
        let left_names = names_of(&self.plan);
        let right_names = names_of(&right.plan);
        // Which side's key columns are dropped: pairs of plain columns only.
        let paired = |name: &str, mine: &[Option<String>], theirs: &[Option<String>]| {
            mine.iter()
                .zip(theirs)
                .any(|(m, t)| m.as_deref() == Some(name) && t.is_some())
        };
        let keep_left = |name: &str| match join_type {
            JoinType::Right => !paired(name, &left_keys, &right_keys),
            _ => true,
        };
        let keep_right = |name: &str| match join_type {
            JoinType::Inner | JoinType::Left | JoinType::Single => {
                !paired(name, &right_keys, &left_keys)
            }
            _ => true,
        };
        let mut out = Vec::new();
        let mut taken: Vec<String> = Vec::new();
        for name in left_names.iter().filter(|n| keep_left(n)) {
            out.push(
                Expr::Column(Column::qualified(Some(LEFT.into()), name.clone()))
                    .alias(name.clone()),
            );
            taken.push(name.clone());
        }
        for name in right_names.iter().filter(|n| keep_right(n)) {
            let mut output = name.clone();
            if taken.contains(&output) {
                output.push_str(suffix);
                if taken.contains(&output) {
                    // As in Polars: a suffix that collides again is the caller's to resolve.
                    return Err(EngineError::Plan(format!(
                        "the join would output two columns named '{output}' (right column \
                         '{name}' with suffix '{suffix}'); rename one or choose another suffix"
                    )));
                }
            }
            out.push(
                Expr::Column(Column::qualified(Some(RIGHT.into()), name.clone()))
                    .alias(output.clone()),
            );
            taken.push(output);
        }
        Ok(self.with_plan(LogicalPlan::project(joined, out)?))
    }

    /// Run with `config` instead of the session's configuration (memory limit, threads, ...).
    pub fn with_config(self, config: SessionConfig) -> Self {
        let state = SessionState::with_config(config);
        Self {
            state: Arc::new(state),
            plan: self.plan,
        }
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

/// A reference to an output column, keeping its qualifier.
fn column_of(field: &crate::logical::schema::PlanField) -> Expr {
    Expr::Column(Column::qualified(field.qualifier.clone(), field.name()))
}

/// The output column names of `plan`.
fn names_of(plan: &LogicalPlan) -> Vec<String> {
    plan.schema()
        .fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
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

    /// The query's worker threads (the session's setting); output writers use as many.
    pub fn threads(&self) -> usize {
        self.ctx.threads
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
