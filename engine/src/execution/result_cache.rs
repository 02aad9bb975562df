//! The engine's side of the result cache (`ooc_io::cache` stores the entries): what a result's
//! key is made of, and how a query is planned when the session caches results.
//!
//! A key names everything the result depends on, and nothing else:
//!
//! * the optimized logical plan, every expression, literal, type and output name in it, in a
//!   canonical text (its `Debug` form, which lists no memory addresses or hash-map orders);
//! * the options that change results: the row order of unsorted queries (a seeded shuffle
//!   gives other rows first);
//! * the engine's version and the cache's format;
//! * for every scan, the files it reads (so a file added to a globbed directory is a miss) and
//!   each file's fingerprint: path, size, modification time, and a hash of its Parquet footer
//!   (which a rewrite with the same size and time still changes) or, for CSV and NDJSON
//!   files, of its first and last 64 KiB.
//!
//! The memory limit, threads, batch and morsel sizes and indexes are not part of it: they
//! change how a result is computed, not what it is. Plans over in-memory tables (frames handed
//! over from Python) are not cached: their data has no fingerprint. There is no
//! non-deterministic function to exclude: `current_date` is folded into a literal when the
//! query is planned, so it is part of the key (a new day is a miss).

use std::fmt::Write as _;
use std::sync::Arc;

use ooc_io::cache::{
    file_input, parquet_input, CacheKey, Claim, CommitInfo, Lookup, ResultCache, CACHE_FORMAT,
    ENGINE_VERSION, UNREAD_EAGER_CHECK_BYTES,
};

use crate::config::{CacheSettings, SessionConfig};
use crate::error::Result;
use crate::logical::plan::LogicalPlan;
use crate::logical::plan::ScanSource;
use crate::physical::cache_write::CacheWriteExec;
use crate::physical::cached_result::CachedResultExec;
use crate::physical::ExecutionPlan;

/// A plan's cache key and what the entry's manifest records about it.
#[derive(Debug)]
pub(crate) struct Keyed {
    pub(crate) key: CacheKey,
    pub(crate) info: CommitInfo,
}

/// The key of `plan` (optimized) under `config`, or why it cannot be cached.
pub(crate) fn key_of(
    plan: &LogicalPlan,
    config: &SessionConfig,
) -> std::result::Result<Keyed, String> {
    let mut canonical = format!(
        "ooc result\nformat {CACHE_FORMAT}\nengine {ENGINE_VERSION}\nrow order {:?}\n{plan:?}\n",
        config.row_order
    );
    let mut sources = Vec::new();
    collect_sources(plan, &mut sources)?;
    for source in &sources {
        match source {
            ScanSource::Parquet(_) => canonical.push_str("parquet\n"),
            // A persisted result is named by its own key (of its plan and inputs).
            ScanSource::Cached(r) => {
                let _ = writeln!(canonical, "cached {}", r.manifest().key);
            }
            ScanSource::Text(d) => {
                let _ = writeln!(canonical, "text {:?}", d.options());
            }
            ScanSource::Exchange(_) => return Err("the plan reads exchange files".into()),
        }
    }
    let plan_key = CacheKey::of(canonical.as_bytes());
    let mut inputs = Vec::new();
    for source in &sources {
        match source {
            ScanSource::Parquet(d) => inputs.extend(d.files().iter().map(parquet_input)),
            ScanSource::Cached(r) => inputs.extend(r.manifest().inputs.iter().cloned()),
            ScanSource::Text(d) => {
                for file in d.files() {
                    inputs.push(file_input(&file.path).map_err(|e| e.to_string())?);
                }
            }
            ScanSource::Exchange(_) => return Err("the plan reads exchange files".into()),
        }
    }
    for input in &inputs {
        let _ = writeln!(
            canonical,
            "input {:?} {} {} {:016x}",
            input.path, input.size, input.mtime_ns, input.content_hash
        );
    }
    Ok(Keyed {
        key: CacheKey::of(canonical.as_bytes()),
        info: CommitInfo {
            plan_key: plan_key.to_string(),
            plan: plan.display_indent(),
            inputs,
            compute: std::time::Duration::ZERO,
        },
    })
}

fn collect_sources(
    plan: &LogicalPlan,
    out: &mut Vec<ScanSource>,
) -> std::result::Result<(), String> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            if matches!(scan.source, ScanSource::Exchange(_)) {
                return Err("the plan is a stage of a distributed query".into());
            }
            out.push(scan.source.clone())
        }
        LogicalPlan::Memory(table) => {
            return Err(format!(
                "the plan reads in-memory data ({}), which has no fingerprint",
                table.name
            ))
        }
        _ => {}
    }
    plan.inputs()
        .into_iter()
        .try_for_each(|input| collect_sources(input, out))
}

/// The physical plan of `optimized` when the session caches results: the stored result on a
/// hit (after waiting for another process computing the same key), else the plan `compute`
/// builds under an operator that stores its result. Problems with the cache itself (a
/// directory that cannot be created) are warnings, and the query runs uncached.
pub(crate) fn plan_with_cache(
    plan: &LogicalPlan,
    optimized: LogicalPlan,
    config: &SessionConfig,
    settings: &CacheSettings,
    warnings: &mut Vec<String>,
    compute: impl FnOnce(LogicalPlan) -> Result<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let keyed = match key_of(&optimized, config) {
        Ok(keyed) => keyed,
        Err(_) => return compute(optimized),
    };
    // A hit handed over unread is checked when it is read; only a small one here.
    let mut options = settings.options.clone();
    if settings.defer_hits {
        options.eager_check_bytes = options.eager_check_bytes.min(UNREAD_EAGER_CHECK_BYTES);
    }
    let cache = match ResultCache::open(&options) {
        Ok(cache) => cache,
        Err(e) => {
            warnings.push(format!("result cache unavailable: {e}"));
            return compute(optimized);
        }
    };
    match cache.claim(keyed.key) {
        Claim::Hit(result) if settings.defer_hits => {
            Ok(Arc::new(CachedResultExec::new(result).deferred()))
        }
        Claim::Hit(result) => Ok(Arc::new(CachedResultExec::new(result))),
        Claim::Compute(claim, miss) => {
            if miss.damaged {
                warnings.push(format!(
                    "a damaged result cache entry was replaced: {}",
                    miss.reason
                ));
            }
            let optimized = with_stored_subplans(plan, optimized, config, &cache)?;
            let physical = compute(optimized)?;
            let writer = match claim.writer(&physical.schema()) {
                Ok(writer) => writer,
                Err(e) => {
                    warnings.push(format!("the result will not be cached: {e}"));
                    return Ok(physical);
                }
            };
            Ok(Arc::new(CacheWriteExec::new(
                physical,
                writer,
                keyed.info,
                settings.min_compute,
                miss.reason,
            )))
        }
    }
}

/// `optimized` (the optimized form of `plan`) with the stored results of subplans in place:
/// first those of `plan` as written (a derived table or CTE that ran alone before, before the
/// optimizer moves filters and columns across its edges), then those of the optimized plan.
fn with_stored_subplans(
    plan: &LogicalPlan,
    optimized: LogicalPlan,
    config: &SessionConfig,
    cache: &ResultCache,
) -> Result<LogicalPlan> {
    let mut reused = false;
    let written = plan
        .clone()
        .map_inputs(&mut |input| substitute_written(input, config, cache, &mut reused))?;
    let optimized = if reused {
        crate::optimizer::optimize(written)?
    } else {
        optimized
    };
    reuse_stored_subplans(optimized, config, cache)
}

/// [`substitute`] for a plan as written: each subplan is optimized alone to find its key.
fn substitute_written(
    plan: LogicalPlan,
    config: &SessionConfig,
    cache: &ResultCache,
    reused: &mut bool,
) -> Result<LogicalPlan> {
    if may_be_stored(&plan) {
        if let Ok(optimized) = crate::optimizer::optimize(plan.clone()) {
            if let Some(LogicalPlan::Projection { input, exprs, .. }) =
                stored_result_of(&optimized, config, cache)
            {
                *reused = true;
                return Ok(LogicalPlan::Projection {
                    input,
                    exprs,
                    schema: plan.schema().clone(),
                });
            }
        }
    }
    plan.map_inputs(&mut |input| substitute_written(input, config, cache, reused))
}

/// `plan` (optimized) with every subplan whose result the cache holds replaced by a scan of
/// that result: a query built on an earlier one (as a derived table or CTE) reads the stored
/// result instead of computing it again. Subplans are tried from the top, so the largest
/// stored one wins; a stored result is used only when its columns have the subplan's types.
pub(crate) fn reuse_stored_subplans(
    plan: LogicalPlan,
    config: &SessionConfig,
    cache: &ResultCache,
) -> Result<LogicalPlan> {
    plan.map_inputs(&mut |input| substitute(input, config, cache))
}

/// Whether a subplan's result may be in the cache: not a leaf (a scan is read as it is) and
/// not a mere renaming of its input (its input is tried instead).
fn may_be_stored(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::TableScan(_)
            | LogicalPlan::Memory(_)
            | LogicalPlan::EmptyRow { .. }
            | LogicalPlan::SubqueryAlias { .. }
    )
}

fn substitute(
    plan: LogicalPlan,
    config: &SessionConfig,
    cache: &ResultCache,
) -> Result<LogicalPlan> {
    if may_be_stored(&plan) {
        if let Some(stored) = stored_result_of(&plan, config, cache) {
            return Ok(stored);
        }
    }
    plan.map_inputs(&mut |input| substitute(input, config, cache))
}

/// A scan of the stored result of `plan`, with `plan`'s output schema, if the cache has it.
fn stored_result_of(
    plan: &LogicalPlan,
    config: &SessionConfig,
    cache: &ResultCache,
) -> Option<LogicalPlan> {
    use crate::logical::expr::{Column, Expr};
    use crate::logical::plan::TableScan;

    let keyed = key_of(plan, config).ok()?;
    if !cache.has(keyed.key) {
        return None;
    }
    let Lookup::Hit(result) = cache.lookup(keyed.key) else {
        return None;
    };
    let want = plan.schema().to_arrow();
    let have = result.schema();
    let same_types = want.fields().len() == have.fields().len()
        && want
            .fields()
            .iter()
            .zip(have.fields())
            .all(|(a, b)| a.data_type() == b.data_type());
    let mut names: Vec<&String> = have.fields().iter().map(|f| f.name()).collect();
    names.sort();
    names.dedup();
    if !same_types || names.len() != have.fields().len() {
        return None;
    }
    let alias = "stored";
    let scan = TableScan::try_new(alias, ScanSource::Cached(result)).ok()?;
    let exprs = have
        .fields()
        .iter()
        .map(|f| Expr::Column(Column::qualified(Some(alias.to_string()), f.name())))
        .collect();
    Some(LogicalPlan::Projection {
        input: Box::new(LogicalPlan::TableScan(scan)),
        exprs,
        schema: plan.schema().clone(),
    })
}

/// The line `--explain` shows for a cached session: hit, miss and why, or not cacheable.
pub(crate) fn explain_line(
    optimized: &LogicalPlan,
    config: &SessionConfig,
    settings: &CacheSettings,
) -> String {
    let keyed = match key_of(optimized, config) {
        Ok(keyed) => keyed,
        Err(reason) => return format!("result cache: not cached: {reason}\n"),
    };
    let cache = match ResultCache::open(&settings.options) {
        Ok(cache) => cache,
        Err(e) => return format!("result cache: unavailable: {e}\n"),
    };
    match cache.lookup(keyed.key) {
        Lookup::Hit(result) => format!(
            "result cache: hit key={} ({} rows, computed in {} ms)\n",
            keyed.key,
            result.num_rows(),
            result.manifest().compute_ms
        ),
        Lookup::Miss(miss) => {
            let changed = changed_inputs(&cache, &keyed);
            format!(
                "result cache: miss key={} ({}{changed})\n",
                keyed.key, miss.reason
            )
        }
    }
}

/// For a miss: what differs from the newest entry of the same plan over other inputs.
fn changed_inputs(cache: &ResultCache, keyed: &Keyed) -> String {
    let Some(previous) = cache
        .entries()
        .into_iter()
        .rev()
        .find(|e| e.manifest.plan_key == keyed.info.plan_key)
    else {
        return String::new();
    };
    let old = &previous.manifest.inputs;
    let now = &keyed.info.inputs;
    let mut notes = Vec::new();
    for input in now {
        match old.iter().find(|o| o.path == input.path) {
            None => notes.push(format!("{} is new", input.path)),
            Some(o) if o != input => notes.push(format!("{} changed", input.path)),
            Some(_) => {}
        }
    }
    for o in old {
        if !now.iter().any(|i| i.path == o.path) {
            notes.push(format!("{} is gone", o.path));
        }
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!("; since the entry of this plan: {}", notes.join(", "))
    }
}

/// What `--explain` plans for a cached session: `optimized` with the stored results of its
/// subplans in place (as a run would plan it on a miss).
pub(crate) fn explain_plan(
    plan: &LogicalPlan,
    optimized: LogicalPlan,
    config: &SessionConfig,
    settings: &CacheSettings,
) -> Result<LogicalPlan> {
    match ResultCache::open(&settings.options) {
        Ok(cache) => with_stored_subplans(plan, optimized, config, &cache),
        Err(_) => Ok(optimized),
    }
}
