//! [`DataFrame`]: a lazy query, the logical plan it will run plus the settings it runs with.
//!
//! The builder methods turn calls into logical plan nodes (the plans themselves are made in
//! [`frontend::builder`](crate::frontend::builder), the same plans SQL produces); the run
//! methods ([`collect`](DataFrame::collect), [`execute`](DataFrame::execute),
//! [`explain`](DataFrame::explain)) hand the plan to [`execution`].

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};

use crate::config::SessionConfig;
use crate::error::Result;
use crate::execution::{self, QueryStream};
use crate::feed::{Feed, FeedOptions};
use crate::frontend::{builder, set_operations};
use crate::logical::expr::Expr;
use crate::logical::plan::{JoinType, LogicalPlan, SortKey};

/// A lazy query: a logical plan plus the settings it runs with. Building one reads no data;
/// [`collect`](Self::collect) or [`execute`](Self::execute) runs it.
#[derive(Clone, Debug)]
pub struct DataFrame {
    config: Arc<SessionConfig>,
    plan: LogicalPlan,
}

impl DataFrame {
    pub(crate) fn new(config: Arc<SessionConfig>, plan: LogicalPlan) -> Self {
        Self { config, plan }
    }

    fn with_plan(&self, plan: LogicalPlan) -> Self {
        Self {
            config: Arc::clone(&self.config),
            plan,
        }
    }

    /// Keep rows where `predicate` is TRUE (it may use window functions).
    pub fn filter(self, predicate: Expr) -> Result<Self> {
        let plan = builder::filter(self.plan.clone(), predicate)?;
        Ok(self.with_plan(plan))
    }

    /// Compute `exprs` (use [`Expr::alias`] to name them).
    pub fn select(self, exprs: Vec<Expr>) -> Result<Self> {
        let plan = builder::select(self.plan.clone(), exprs)?;
        Ok(self.with_plan(plan))
    }

    /// Cast the columns that hold numbers (integers, decimals, floats) to the types given for
    /// them (`None`: leave the column as it is), as part of the plan, so that the conversion
    /// runs on the query's threads. Other columns (dates, strings, ...) are left as they are.
    /// Used to narrow a feed's values before they leave the engine.
    pub fn cast_numbers(self, types: &[Option<DataType>]) -> Result<Self> {
        let schema = self.schema();
        let mut changed = false;
        let exprs = schema
            .fields()
            .iter()
            .zip(types.iter().chain(std::iter::repeat(&None)))
            .map(|(field, to)| match to {
                Some(to) if field.data_type().is_numeric() && field.data_type() != to => {
                    changed = true;
                    crate::logical::expr_fn::col(field.name())
                        .cast(to.clone())
                        .alias(field.name())
                }
                _ => crate::logical::expr_fn::col(field.name()),
            })
            .collect();
        if !changed {
            return Ok(self);
        }
        self.select(exprs)
    }

    /// Group by `group_by` and compute `aggregates` (e.g. `sum(col("x")).alias("total")`).
    pub fn aggregate(self, group_by: Vec<Expr>, aggregates: Vec<Expr>) -> Result<Self> {
        let plan = builder::aggregate(self.plan.clone(), group_by, aggregates)?;
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
        let plan = builder::group_by(self.plan.clone(), keys, exprs)?;
        Ok(self.with_plan(plan))
    }

    /// Add or replace columns: each expression's output name replaces the input column of
    /// that name in place, or is appended.
    pub fn with_columns(self, exprs: Vec<Expr>) -> Result<Self> {
        let plan = builder::with_columns(self.plan.clone(), exprs)?;
        Ok(self.with_plan(plan))
    }

    /// Rename columns (`(old, new)` pairs); other columns are kept as they are.
    pub fn rename(self, pairs: &[(String, String)]) -> Result<Self> {
        let plan = builder::rename(self.plan.clone(), pairs)?;
        Ok(self.with_plan(plan))
    }

    /// Drop the named columns.
    pub fn drop_columns(self, names: &[String]) -> Result<Self> {
        let plan = builder::drop_columns(self.plan.clone(), names)?;
        Ok(self.with_plan(plan))
    }

    /// Distinct rows (`SELECT DISTINCT *`).
    pub fn distinct(self) -> Result<Self> {
        let plan = builder::distinct(self.plan.clone())?;
        Ok(self.with_plan(plan))
    }

    /// The rows of `self` and then of `other` (`UNION ALL`), or with `distinct` the distinct
    /// rows of both (`UNION`). Columns match by position (types are unified); names come
    /// from `self`.
    pub fn union(self, other: DataFrame, distinct: bool) -> Result<Self> {
        let plan = set_operations::union(self.plan.clone(), other.plan, !distinct)?;
        Ok(self.with_plan(plan))
    }

    /// The rows of `self` that `other` also has (`INTERSECT`, distinct rows; with `all`,
    /// `INTERSECT ALL`: a row `m` times here and `n` times there appears `min(m, n)` times).
    /// NULLs equal each other; columns match by position.
    pub fn intersect(self, other: DataFrame, all: bool) -> Result<Self> {
        let plan = set_operations::intersect_or_except(self.plan.clone(), other.plan, true, all)?;
        Ok(self.with_plan(plan))
    }

    /// The rows of `self` that `other` lacks (`EXCEPT`, distinct rows; with `all`,
    /// `EXCEPT ALL`: `max(m - n, 0)` copies).
    pub fn except(self, other: DataFrame, all: bool) -> Result<Self> {
        let plan = set_operations::intersect_or_except(self.plan.clone(), other.plan, false, all)?;
        Ok(self.with_plan(plan))
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
        let plan = builder::join(
            self.plan.clone(),
            right.plan,
            join_type,
            left_on,
            right_on,
            suffix,
        )?;
        Ok(self.with_plan(plan))
    }

    /// Run with `config` instead of the session's configuration (memory limit, threads, ...).
    pub fn with_config(self, config: SessionConfig) -> Self {
        Self {
            config: Arc::new(config),
            plan: self.plan,
        }
    }

    /// The settings this frame runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
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
        execution::optimize(&self.plan)
    }

    /// The columns that come from `key=value` folders of the scanned files, when this frame is
    /// a plain scan of Parquet files (empty otherwise).
    pub fn hive_partition_columns(&self) -> Vec<String> {
        match &self.plan {
            LogicalPlan::TableScan(scan) => scan.source.partition_columns().to_vec(),
            _ => Vec::new(),
        }
    }

    /// EXPLAIN: the physical plan with pruning decisions. With `analyze`, runs the query
    /// (discarding rows) and adds per-operator metrics and the query's totals.
    pub fn explain(&self, analyze: bool) -> Result<String> {
        execution::explain(&self.plan, &self.config, analyze)
    }

    /// Start executing; batches arrive as the plan produces them.
    pub fn execute(self) -> Result<QueryStream> {
        execution::execute(&self.plan, &self.config)
    }

    /// Run the query and hand out its rows for a model: in batches of an exact size,
    /// optionally shuffled (see [`crate::feed`]). Rows come in the files' order, or, with a
    /// shuffle, with the files' slices in an order drawn from the seed as well
    /// ([`crate::RowOrder`]), so the same seed gives the same batches.
    pub fn feed(self, options: FeedOptions) -> Result<Feed<QueryStream>> {
        let config = SessionConfig::clone(&self.config).with_row_order(options.row_order());
        let stream = self.with_config(config).execute()?;
        let schema = stream.schema();
        Feed::new(stream, schema, options)
    }

    /// Compute the result once into the result cache's directory (the session's cache
    /// settings, else the default directory) and return a frame that scans it: later queries
    /// read the stored columns they need, memory-mapped, instead of recomputing this frame, and
    /// nothing of the result stays on the heap in between. The same plan over the same files
    /// persisted again reuses the stored result. The stored entry is subject to the cache's
    /// size bound like any other; this frame keeps its file mapped (and readable) while it
    /// lives.
    pub fn persist(self) -> Result<Self> {
        self.persist_as(None)
    }

    /// [`persist`](Self::persist), and with a `name`, give the stored result that name in
    /// the cache directory: [`Session::persisted`](crate::Session::persisted) (and SQL run by
    /// `ooc query`) find it by name in later processes, and the cache's size bound never
    /// evicts it until the name is dropped (`ooc cache drop NAME`).
    pub fn persist_as(self, name: Option<&str>) -> Result<Self> {
        let result = execution::persist(&self.plan, &self.config)?;
        if let Some(name) = name {
            let settings = self.config.cache.clone().unwrap_or_default();
            let cache = ooc_io::cache::ResultCache::open(&settings.options)?;
            let key = ooc_io::cache::CacheKey::parse(&result.manifest().key).ok_or_else(|| {
                crate::error::EngineError::Internal("a cache entry without a key".into())
            })?;
            cache.name(name, key)?;
        }
        let scan = crate::logical::plan::TableScan::try_new(
            name.unwrap_or("persisted"),
            crate::logical::plan::ScanSource::Cached(result),
        )?;
        Ok(self.with_plan(LogicalPlan::TableScan(scan)))
    }

    /// Run and gather all result batches.
    pub fn collect(self) -> Result<Vec<RecordBatch>> {
        self.execute()?.collect()
    }
}
