//! The leaves of a plan that read data: [`TableScan`] (files — a Parquet data set, text files
//! or a persisted result — with the projection, filters and limit pushed into it) and [`MemoryTable`] (record
//! batches already in memory).

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use ooc_io::cache::CachedResult;
use ooc_io::{ParquetDataset, TextDataset};

use crate::error::{plan_err, Result};
use crate::logical::expr::Expr;
use crate::logical::hidden;
use crate::logical::schema::PlanSchema;

/// The files a scan reads.
#[derive(Clone, Debug)]
pub enum ScanSource {
    /// Parquet files: footers, statistics and row groups to plan with.
    Parquet(Arc<ParquetDataset>),
    /// CSV or NDJSON files: a stream of records, nothing to prune with.
    Text(Arc<TextDataset>),
    /// A result stored in the result cache: a persisted frame (`DataFrame::persist`), read
    /// from its memory-mapped Arrow IPC file.
    Cached(Arc<CachedResult>),
    /// The output of an earlier stage of a distributed query: exchange files written by its
    /// tasks (see `crate::distributed`).
    Exchange(Arc<ExchangeInput>),
}

/// What a task of a distributed query reads from an earlier stage.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExchangeInput {
    /// The stage that writes it.
    pub stage: usize,
    /// Its columns.
    pub schema: SchemaRef,
    /// Whether the reading task reads only its own bucket of a hash-partitioned output
    /// (else every file).
    pub by_bucket: bool,
    /// The exchange files to read, as the earlier stage's tasks reported them (empty until
    /// the stage has run).
    pub files: Vec<std::path::PathBuf>,
    /// Their rows (what the physical planner sizes joins with).
    pub rows: u64,
}

impl From<Arc<ParquetDataset>> for ScanSource {
    fn from(dataset: Arc<ParquetDataset>) -> Self {
        ScanSource::Parquet(dataset)
    }
}

impl From<Arc<TextDataset>> for ScanSource {
    fn from(dataset: Arc<TextDataset>) -> Self {
        ScanSource::Text(dataset)
    }
}

impl ScanSource {
    /// The columns of the files.
    pub fn schema(&self) -> SchemaRef {
        match self {
            ScanSource::Parquet(d) => d.schema(),
            ScanSource::Text(d) => d.schema(),
            ScanSource::Cached(r) => r.schema(),
            ScanSource::Exchange(e) => Arc::clone(&e.schema),
        }
    }

    /// Rows in the files (estimated for text files).
    pub fn num_rows(&self) -> u64 {
        match self {
            ScanSource::Parquet(d) => d.num_rows(),
            ScanSource::Text(d) => d.estimated_rows(),
            ScanSource::Cached(r) => r.num_rows(),
            // Known once the stage below has run and the scan is bound to its files.
            ScanSource::Exchange(e) => e.rows,
        }
    }

    /// Columns that come from `key=value` folders (Parquet only).
    pub fn partition_columns(&self) -> &[String] {
        match self {
            ScanSource::Parquet(d) => d.partition_columns(),
            ScanSource::Text(_) | ScanSource::Cached(_) | ScanSource::Exchange(_) => &[],
        }
    }

    /// The smallest and largest value of an integer or date column, from statistics.
    pub(crate) fn integer_range(&self, column: &str) -> Option<(i64, i64)> {
        match self {
            ScanSource::Parquet(d) => d.integer_range(column),
            ScanSource::Text(_) | ScanSource::Cached(_) | ScanSource::Exchange(_) => None,
        }
    }

    /// The Parquet data set, if that is what the scan reads.
    pub fn parquet(&self) -> Option<&Arc<ParquetDataset>> {
        match self {
            ScanSource::Parquet(d) => Some(d),
            ScanSource::Text(_) | ScanSource::Cached(_) | ScanSource::Exchange(_) => None,
        }
    }
}

/// A scan of files with the projection, filters and limit pushed into it.
#[derive(Clone)]
pub struct TableScan {
    /// Name or alias the scan's columns are qualified with.
    pub table_name: String,
    /// The files.
    pub source: ScanSource,
    /// Indices into the data set's schema of the columns read (`None`: all).
    pub projection: Option<Vec<usize>>,
    /// Predicates the scan must apply (also used to prune files and row groups).
    pub filters: Vec<Expr>,
    /// Stop after this many rows (only set when no filter remains above).
    pub fetch: Option<usize>,
    /// Read only these row groups (a task's share of a distributed scan); `None`: all.
    pub split: Option<Arc<Vec<ooc_io::RowGroupRef>>>,
    schema: PlanSchema,
    /// Identifies the scan within one plan (see `LogicalPlan::number_scans`).
    pub(crate) id: usize,
}

impl TableScan {
    /// A scan of all columns. Fails if a column name could be taken for one of planning's
    /// hidden names (see [`crate::logical::hidden`]).
    pub(crate) fn try_new(
        table_name: impl Into<String>,
        source: impl Into<ScanSource>,
    ) -> Result<Self> {
        let table_name = table_name.into();
        let source = source.into();
        let arrow_schema = source.schema();
        for field in arrow_schema.fields() {
            hidden::check_user_name(field.name(), "column name")?;
        }
        let schema = PlanSchema::from_arrow(Some(&table_name), &arrow_schema);
        Ok(Self {
            table_name,
            source,
            projection: None,
            filters: Vec::new(),
            fetch: None,
            split: None,
            schema,
            id: 0,
        })
    }

    /// A scan of an earlier stage's output whose columns keep the qualifiers `schema` gives
    /// them (the plan above the exchange refers to them as before the split).
    pub(crate) fn exchange(input: ExchangeInput, schema: PlanSchema) -> Self {
        Self {
            table_name: format!("exchange {}", input.stage),
            source: ScanSource::Exchange(Arc::new(input)),
            projection: None,
            filters: Vec::new(),
            fetch: None,
            split: None,
            schema,
            id: 0,
        }
    }

    /// The same scan with its schema as decoded (a plan received from another process).
    pub(crate) fn with_schema(mut self, schema: PlanSchema) -> Self {
        self.schema = schema;
        self
    }

    /// The scan's number in its plan, once [`LogicalPlan::number_scans`] has run (0 before).
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// The full (unprojected) schema of the data set, qualified by the table name.
    pub(crate) fn source_schema(&self) -> PlanSchema {
        PlanSchema::from_arrow(Some(&self.table_name), &self.source.schema())
    }

    /// Restrict the columns read.
    pub(crate) fn with_projection(mut self, projection: Option<Vec<usize>>) -> Self {
        let source = self.source_schema();
        self.schema = match &projection {
            Some(indices) => {
                PlanSchema::new(indices.iter().map(|&i| source.field(i).clone()).collect())
            }
            None => source,
        };
        self.projection = projection;
        self
    }

    /// The output schema.
    pub fn schema(&self) -> &PlanSchema {
        &self.schema
    }

    /// Names of the projected columns in output order.
    pub(crate) fn projected_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }
}

impl fmt::Debug for TableScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableScan")
            .field("table_name", &self.table_name)
            .field("projection", &self.projection)
            .field("filters", &self.filters)
            .field("fetch", &self.fetch)
            .field("split", &self.split.as_ref().map(|s| s.len()))
            .finish()
    }
}

/// Record batches already in memory (e.g. handed over from Python through the Arrow C stream
/// interface). They are owned by the caller and shared, not copied, so they are not counted
/// against the query's memory budget.
#[derive(Clone)]
pub struct MemoryTable {
    /// Name the columns are qualified with.
    pub name: String,
    /// The batches, all with the same schema.
    pub batches: Arc<Vec<arrow::array::RecordBatch>>,
    schema: PlanSchema,
}

impl MemoryTable {
    /// A table over `batches` of `schema`. Fails if a batch has a different schema.
    pub(crate) fn try_new(
        name: impl Into<String>,
        schema: arrow::datatypes::SchemaRef,
        batches: Vec<arrow::array::RecordBatch>,
    ) -> Result<Self> {
        let name = name.into();
        for field in schema.fields() {
            hidden::check_user_name(field.name(), "column name")?;
        }
        for batch in &batches {
            let fields = batch.schema_ref().fields();
            let same = fields.len() == schema.fields().len()
                && fields
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.data_type() == b.data_type());
            if !same {
                return plan_err(format!(
                    "in-memory table {name}: a batch has schema {:?}, expected {:?}",
                    batch.schema_ref(),
                    schema
                ));
            }
        }
        let plan_schema = PlanSchema::from_arrow(Some(&name), &schema);
        Ok(Self {
            name,
            batches: Arc::new(batches),
            schema: plan_schema,
        })
    }

    /// The output schema.
    pub fn schema(&self) -> &PlanSchema {
        &self.schema
    }

    /// Total rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

impl fmt::Debug for MemoryTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTable")
            .field("name", &self.name)
            .field("batches", &self.batches.len())
            .field("rows", &self.num_rows())
            .finish()
    }
}
