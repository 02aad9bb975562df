//! Sessions: registered tables and views, and the entry points that hand out [`DataFrame`]s
//! (`sql`, `table`, `scan_parquet`, `read_batches`).
//!
//! A session only turns names and SQL text into logical plans (through the front ends); the
//! frames it hands out run through [`execution`](crate::execution) with the session's
//! [`SessionConfig`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use ooc_io::{ParquetDataset, TextDataset, TextFormat, TextOptions};

use crate::config::SessionConfig;
use crate::dataframe::DataFrame;
use crate::error::{closest_name, EngineError, Result};
use crate::frontend::sql::{SqlPlanner, TableResolver};
use crate::logical::plan::{LogicalPlan, TableScan};

/// Shared state of a session.
#[derive(Debug, Default)]
struct SessionState {
    config: Arc<SessionConfig>,
    tables: RwLock<BTreeMap<String, String>>,
    views: RwLock<BTreeMap<String, LogicalPlan>>,
    datasets: Mutex<HashMap<String, Arc<ParquetDataset>>>,
    /// CSV and NDJSON tables, opened (schema inferred) when registered.
    text_tables: RwLock<BTreeMap<String, Arc<TextDataset>>>,
}

impl SessionState {
    fn open_dataset(&self, location: &str) -> Result<Arc<ParquetDataset>> {
        let mut cache = self.datasets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ds) = cache.get(location) {
            return Ok(Arc::clone(ds));
        }
        let ds = Arc::new(ParquetDataset::open(location)?);
        cache.insert(location.to_string(), Arc::clone(&ds));
        Ok(ds)
    }

    /// Registered table names (files and views).
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.extend(
            self.text_tables
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned(),
        );
        names.extend(
            self.views
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned(),
        );
        names.sort();
        names.dedup();
        names
    }
}

impl TableResolver for SessionState {
    fn table(&self, name: &str) -> Result<LogicalPlan> {
        let lower = name.to_lowercase();
        let view = self
            .views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&lower)
            .cloned();
        if let Some(plan) = view {
            return Ok(LogicalPlan::alias(plan, lower));
        }
        let text = self
            .text_tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&lower)
            .cloned();
        if let Some(dataset) = text {
            return Ok(LogicalPlan::TableScan(TableScan::try_new(lower, dataset)?));
        }
        let location = {
            let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
            tables.get(&lower).cloned()
        };
        match location {
            Some(location) => Ok(LogicalPlan::TableScan(TableScan::try_new(
                lower,
                self.open_dataset(&location)?,
            )?)),
            None => {
                let valid = self.table_names();
                let suggestion = closest_name(name, valid.iter().map(String::as_str));
                Err(EngineError::TableNotFound {
                    name: name.to_string(),
                    valid,
                    suggestion,
                })
            }
        }
    }

    fn path(&self, location: &str) -> Result<LogicalPlan> {
        if let Some(format) = TextFormat::from_path(location) {
            return self.text(&[location.to_string()], TextOptions::new(format));
        }
        let dataset = self.open_dataset(location)?;
        let name = table_name_of(location, "parquet");
        Ok(LogicalPlan::TableScan(TableScan::try_new(name, dataset)?))
    }

    fn text(&self, locations: &[String], options: TextOptions) -> Result<LogicalPlan> {
        let name = match locations {
            [one] => table_name_of(one, options.format.name()),
            _ => options.format.name().to_lowercase(),
        };
        let dataset = Arc::new(TextDataset::open_many(locations, options)?);
        Ok(LogicalPlan::TableScan(TableScan::try_new(name, dataset)?))
    }
}

/// The name a scan of `location` is qualified with: the file name up to its first dot
/// (`lineitem.csv.gz` → `lineitem`), or `fallback` for a glob.
fn table_name_of(location: &str, fallback: &str) -> String {
    Path::new(location.trim_end_matches('/'))
        .file_name()
        .and_then(|s| s.to_str())
        .filter(|s| !s.contains(['*', '?', '[']))
        .map(|s| s.split('.').next().unwrap_or(s))
        .filter(|s| !s.is_empty())
        .unwrap_or(fallback)
        .to_lowercase()
}

/// The entry point: register tables, then run SQL or build dataframes.
///
/// ```no_run
/// use ooc_engine::{Session, SessionConfig};
/// use ooc_engine::logical::expr_fn::{col, lit, sum};
///
/// # fn main() -> ooc_engine::Result<()> {
/// let session = Session::new(SessionConfig::default());
/// session.register_parquet("lineitem", "data/sf1/lineitem.parquet")?;
///
/// // SQL ...
/// let batches = session.sql("SELECT l_returnflag, count(*) FROM lineitem GROUP BY 1 ORDER BY 1")?.collect()?;
///
/// // ... or the dataframe builder, which produces the same logical plan.
/// let batches = session
///     .scan_parquet("data/sf1/lineitem.parquet")?
///     .filter(col("l_quantity").lt(lit(10i64)))?
///     .aggregate(vec![col("l_returnflag")], vec![sum(col("l_quantity")).alias("qty")])?
///     .collect()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Session {
    state: Arc<SessionState>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new(SessionConfig::default())
    }
}

impl Session {
    /// A session with `config`.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            state: Arc::new(SessionState {
                config: Arc::new(config),
                ..Default::default()
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.state.config
    }

    /// Register a file, glob or directory as table `name` (opened lazily, validated now).
    pub fn register_parquet(&self, name: &str, location: &str) -> Result<()> {
        self.state.open_dataset(location)?;
        self.state
            .tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_lowercase(), location.to_string());
        Ok(())
    }

    /// Register CSV or NDJSON files (a file, glob or directory) as table `name`; the schema
    /// is inferred now, from a sample of the first file.
    pub fn register_text(&self, name: &str, location: &str, options: TextOptions) -> Result<()> {
        let dataset = Arc::new(TextDataset::open(location, options)?);
        self.state
            .text_tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_lowercase(), dataset);
        Ok(())
    }

    /// Register a file by its extension: CSV/TSV/NDJSON (plain, `.gz` or `.zst`) with the
    /// default options, anything else as Parquet.
    pub fn register_file(&self, name: &str, location: &str) -> Result<()> {
        match TextFormat::from_path(location) {
            Some(format) => self.register_text(name, location, TextOptions::new(format)),
            None => self.register_parquet(name, location),
        }
    }

    /// A dataframe over CSV or NDJSON files (files, globs or directories, read as one table).
    pub fn scan_text(&self, locations: &[String], options: TextOptions) -> Result<DataFrame> {
        let plan = self.state.text(locations, options)?;
        Ok(DataFrame::new(Arc::clone(&self.state.config), plan))
    }

    /// Register a dataframe as table `name` for SQL: references to `name` run its plan.
    pub fn register_view(&self, name: &str, frame: &DataFrame) {
        self.state
            .views
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_lowercase(), frame.logical_plan().clone());
    }

    /// A dataframe over record batches already in memory (shared, not copied).
    pub fn read_batches(
        &self,
        name: &str,
        schema: arrow::datatypes::SchemaRef,
        batches: Vec<arrow::array::RecordBatch>,
    ) -> Result<DataFrame> {
        let table = crate::logical::plan::MemoryTable::try_new(name, schema, batches)?;
        Ok(DataFrame::new(
            Arc::clone(&self.state.config),
            LogicalPlan::Memory(table),
        ))
    }

    /// A frame over the result persisted as `name` (`DataFrame::persist_as`, `ooc query
    /// --persist NAME`) in the session's cache directory (or the default one).
    pub fn persisted(&self, name: &str) -> Result<DataFrame> {
        let settings = self.state.config.cache.clone().unwrap_or_default();
        let cache = ooc_io::cache::ResultCache::open(&settings.options)?;
        self.read_cached(name, cache.open_named(name)?)
    }

    /// A frame scanning a stored result (an entry of `ooc_io::cache`), its columns qualified
    /// by `name`.
    pub fn read_cached(
        &self,
        name: &str,
        result: Arc<ooc_io::cache::CachedResult>,
    ) -> Result<DataFrame> {
        let scan = crate::logical::plan::TableScan::try_new(
            name,
            crate::logical::plan::ScanSource::Cached(result),
        )?;
        Ok(DataFrame::new(
            Arc::clone(&self.state.config),
            crate::logical::plan::LogicalPlan::TableScan(scan),
        ))
    }

    /// Register every `NAME.parquet` file and every `NAME/` directory of `dir` as table `NAME`.
    /// Returns the registered names.
    pub fn register_directory(&self, dir: &Path) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(dir).map_err(|source| {
            EngineError::Io(ooc_io::IoError::Io {
                path: dir.to_path_buf(),
                source,
            })
        })?;
        let mut names = Vec::new();
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let file_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if file_name.starts_with('.') || file_name.starts_with('_') {
                continue;
            }
            let name = if path.is_dir() {
                file_name.clone()
            } else if let Some(stem) = file_name.strip_suffix(".parquet") {
                stem.to_string()
            } else {
                continue;
            };
            let location = path.to_string_lossy().to_string();
            self.state
                .tables
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_lowercase(), location);
            names.push(name);
        }
        Ok(names)
    }

    /// Registered table names.
    pub fn table_names(&self) -> Vec<String> {
        self.state.table_names()
    }

    /// Plan a SQL query.
    pub fn sql(&self, sql: &str) -> Result<DataFrame> {
        // On a thread of its own with a large stack: parsing, planning and dropping the syntax
        // tree recurse over the query's expressions, which may be deep.
        let state = self.state.as_ref();
        let plan = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("ooc-sql".into())
                .stack_size(crate::frontend::sql::PLANNING_STACK)
                .spawn_scoped(scope, || SqlPlanner::new(state).plan_sql(sql))
                .map_err(|e| EngineError::Internal(format!("cannot start the SQL planner: {e}")))?
                .join()
                .map_err(|_| EngineError::Internal("the SQL planner panicked".into()))?
        })?;
        Ok(DataFrame::new(Arc::clone(&self.state.config), plan))
    }

    /// A dataframe over a file, glob or directory.
    pub fn scan_parquet(&self, location: &str) -> Result<DataFrame> {
        let plan = self.state.path(location)?;
        Ok(DataFrame::new(Arc::clone(&self.state.config), plan))
    }

    /// A dataframe over several files, globs or directories read as one table (their schemas
    /// are unified as for a glob).
    pub fn scan_parquet_many(&self, locations: &[String]) -> Result<DataFrame> {
        if let [one] = locations {
            return self.scan_parquet(one);
        }
        let dataset = Arc::new(ParquetDataset::open_many(locations)?);
        let plan = LogicalPlan::TableScan(TableScan::try_new("parquet", dataset)?);
        Ok(DataFrame::new(Arc::clone(&self.state.config), plan))
    }

    /// A dataframe over a registered table.
    pub fn table(&self, name: &str) -> Result<DataFrame> {
        let plan = self.state.table(name)?;
        Ok(DataFrame::new(Arc::clone(&self.state.config), plan))
    }
}
