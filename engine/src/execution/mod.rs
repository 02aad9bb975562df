//! Execution: the one layer that knows every layer below it. It takes a logical plan and the
//! settings it runs with, and
//!
//! 1. optimizes the plan ([`optimizer`](crate::optimizer));
//! 2. plans its physical operators ([`planner`]);
//! 3. builds the query's [`TaskContext`]: its memory pool (its budget, or its share of a
//!    budget shared with concurrent queries), its spill manager
//!    (temporary directory and quota), batch and morsel sizes, cancel flag and progress;
//! 4. starts the root operator and hands out a [`QueryStream`], which front ends iterate for
//!    batches and ask for the query's figures ([`QueryStream::operator_stats`],
//!    [`QueryStream::report`]).
//!
//! Front ends (SQL, the dataframe builder, Python, the CLI) only ever reach operators through
//! here.

mod memory_profile;
mod memory_svg;
pub(crate) mod planner;
mod result_cache;
mod stored_result;
mod stream;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use crate::config::SessionConfig;
use crate::error::Result;
use crate::logical::plan::LogicalPlan;
use crate::memory::{MemoryPool, SpillManager};
use crate::metrics::Progress;
use crate::physical::{display_plan, ExecutionPlan, TaskContext};

pub use self::memory_profile::{HeldMemory, MemoryProfile};
use self::planner::{PhysicalPlanner, PlannerOptions};
pub use self::stored_result::StoredResult;
pub use self::stream::{peak_rss_bytes, OperatorStats, QueryStream};

/// The optimized form of `plan`.
pub(crate) fn optimize(plan: &LogicalPlan) -> Result<LogicalPlan> {
    crate::optimizer::optimize(plan.clone())
}

/// The physical plan `plan` runs as under `config` (optimized first).
pub(crate) fn physical_plan(
    plan: &LogicalPlan,
    config: &SessionConfig,
) -> Result<Arc<dyn ExecutionPlan>> {
    physical_plan_of(optimize(plan)?, config)
}

/// The physical plan of an optimized plan.
fn physical_plan_of(
    optimized: LogicalPlan,
    config: &SessionConfig,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut planner = PhysicalPlanner::new(PlannerOptions {
        threads: config.threads,
        morsel_rows: config.morsel_rows,
        batch_size: config.batch_size,
        memory_limit: config.planning_memory_limit(),
        row_order: config.row_order,
        indexes: config.use_indexes.then(|| config.index_dir.clone()),
    });
    planner.create_plan(optimized)
}

/// EXPLAIN: the physical plan with its pruning decisions; with `analyze`, the query is run
/// (its rows discarded) and the plan shows each operator's metrics and the query's totals.
pub(crate) fn explain(plan: &LogicalPlan, config: &SessionConfig, analyze: bool) -> Result<String> {
    if !analyze {
        let optimized = optimize(plan)?;
        let (cache_line, optimized) = match &config.cache {
            Some(settings) => (
                result_cache::explain_line(&optimized, config, settings),
                result_cache::explain_plan(plan, optimized, config, settings)?,
            ),
            None => (String::new(), optimized),
        };
        let physical = physical_plan_of(optimized, config)?;
        return Ok(format!("{cache_line}{}", display_plan(&physical)));
    }
    let mut stream = execute(plan, config)?;
    let mut rows = 0;
    for batch in stream.by_ref() {
        rows += batch?.num_rows();
    }
    Ok(format!("{}\noutput rows: {rows}\n", stream.report()))
}

/// Start running a plan that is already optimized (a stage of a distributed query, or its
/// root), without the result cache.
pub(crate) fn execute_optimized(plan: LogicalPlan, config: &SessionConfig) -> Result<QueryStream> {
    let physical = physical_plan_of(plan, config)?;
    QueryStream::start(physical, task_context(config))
}

/// Start running `plan` under `config`.
/// With a result cache, a stored result is replayed, or the result stored as it is computed
/// (see [`result_cache`]).
pub(crate) fn execute(plan: &LogicalPlan, config: &SessionConfig) -> Result<QueryStream> {
    let mut warnings = Vec::new();
    let physical = match &config.cache {
        Some(settings) => result_cache::plan_with_cache(
            plan,
            optimize(plan)?,
            config,
            settings,
            &mut warnings,
            |optimized| physical_plan_of(optimized, config),
        )?,
        None => physical_plan(plan, config)?,
    };
    let ctx = task_context(config);
    for (i, warning) in warnings.into_iter().enumerate() {
        ctx.set_warning(&format!("result cache {i}"), warning);
    }
    QueryStream::start(physical, ctx)
}

/// Compute `plan` into an entry of the result cache (`config.cache`'s, else the default one)
/// and return the entry, mapped: what [`crate::DataFrame::persist`] scans. The result streams
/// into the entry's file as it is computed; none of it is held in memory. An entry already
/// stored for the same plan and inputs is reused. Plans over in-memory data get an entry of
/// their own each time (their data has no fingerprint to find it by).
pub(crate) fn persist(
    plan: &LogicalPlan,
    config: &SessionConfig,
) -> Result<Arc<ooc_io::cache::CachedResult>> {
    use crate::error::EngineError;
    use ooc_io::cache::{CacheKey, Claim, CommitInfo, Lookup, ResultCache};

    let settings = config.cache.clone().unwrap_or_default();
    let optimized = optimize(plan)?;
    let (key, info) = match result_cache::key_of(&optimized, config) {
        Ok(keyed) => (keyed.key, keyed.info),
        Err(_) => {
            let unique = format!("{optimized:?} {:?}", std::time::SystemTime::now());
            let info = CommitInfo {
                plan: optimized.display_indent(),
                ..CommitInfo::default()
            };
            (CacheKey::of(unique.as_bytes()), info)
        }
    };
    let cache = ResultCache::open(&settings.options)?;
    let claim = match cache.claim(key) {
        Claim::Hit(result) => return Ok(result),
        Claim::Compute(claim, _) => claim,
    };
    let physical = physical_plan_of(optimized, config)?;
    let writer = claim.writer(&physical.schema())?.unbounded();
    let root = Arc::new(crate::physical::cache_write::CacheWriteExec::new(
        physical,
        writer,
        info,
        std::time::Duration::ZERO,
        "persist".into(),
    ));
    let mut stream = QueryStream::start(root, task_context(config))?;
    for batch in stream.by_ref() {
        batch?;
    }
    match cache.lookup(key) {
        Lookup::Hit(result) => Ok(result),
        Lookup::Miss(miss) => Err(EngineError::Execution(format!(
            "cannot persist the result in {}: {}",
            cache.dir().display(),
            stream.warnings().into_iter().next().unwrap_or(miss.reason)
        ))),
    }
}

/// A fresh per-query context: its own memory pool and spill manager.
/// With a shared budget, waits for the query's turn (see [`crate::budget`]).
fn task_context(config: &SessionConfig) -> Arc<TaskContext> {
    let bytes_read = Arc::new(AtomicU64::new(0));
    Arc::new(TaskContext {
        memory_pool: match (&config.memory_budget, config.memory_limit) {
            (Some(budget), _) => MemoryPool::in_budget(budget, Arc::clone(&bytes_read)),
            (None, Some(limit)) => MemoryPool::new(limit),
            (None, None) => MemoryPool::unbounded(),
        },
        batch_size: config.batch_size,
        threads: config.threads,
        bytes_read,
        warnings: Arc::default(),
        progress: Arc::new(Progress::default()),
        cancelled: Arc::new(AtomicBool::new(false)),
        spill: Arc::new(SpillManager::new(
            config.temp_dir.as_deref(),
            config.max_temp_size.unwrap_or(u64::MAX),
        )),
    })
}
