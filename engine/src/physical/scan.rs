//! Parquet scan: reads the morsels (row-group slices) that survived pruning.
//!
//! Partitions claim morsels from a shared counter, so work is balanced dynamically. A morsel is
//! a whole row group when there are enough of them for the threads, otherwise a slice of one,
//! and never more than `morsel_rows` rows, so even a file with one huge row group is read in
//! bounded slices. Whole row groups are the cheaper unit: every slice decompresses each
//! column's dictionary page and the pages it straddles again (with 128Ki-row slices of 1M-row
//! row groups, TPC-H Q7 spent 30% of its time in zstd and took 1.5× as long).
//!
//! A scan whose rows must come out in a reproducible order (see [`crate::config::RowOrder`])
//! has one partition per unit instead, in the files' order or shuffled by a seed, and an
//! [`crate::physical::ordered_coalesce`] above runs a few of them at a time and hands them on
//! in that order.
//!
//! Before reading a morsel the scan consults its *dynamic filters*: predicates that a
//! downstream operator publishes at run time (a top-k its current k-th value, a hash join the
//! key range of its build side), which lets the scan skip row groups whose statistics show they
//! cannot contribute. A hash join may also publish the set of its build keys: the scan then
//! drops the rows whose key is not in the set right after decoding them, before they reach
//! the operators in between (an aggregate grouped by the join key, for example).
//!
//! The filter pushed into a scan stays above it, and is also given to the scan for *late
//! materialization*: for a morsel read that way, the filter's columns are decoded first and
//! the other columns only for the rows that pass (see `ooc_io`'s reader). That pays when few
//! rows pass, so the scan chooses per morsel from the pass ratio measured so far (the filter
//! above counts the rows of morsels read whole, the scan the rows it dropped itself): whole
//! until the filter has seen a batch, then late while under [`LATE_MAX_PASS_RATIO`]. The
//! reader reads late only where another column is worth skipping rows of (strings stored as
//! bytes); selecting a few rows of numbers costs more than decoding them all. The filter above evaluates the
//! predicate again on the rows that passed, which costs little when they are few.
//!
//! An aggregate may ask for whole row groups: when the footer statistics show that the row
//! groups' ranges of one of its key columns are disjoint but for shared boundary values
//! (`lineitem` is written in `l_orderkey` order), a partition claims a row group with all its
//! slices, and [`KeySegments`] tells the aggregate when its partition moved on to the next
//! row group (see [`crate::physical::key_segments`]). A hash join asks for the same on its
//! probe side's key, to split a build side that does not fit by ranges of those row groups.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, SchemaRef};
use ooc_io::{
    LateFilter, Morsel, MorselReader, ParquetDataset, PruneExpr, PruneStats, ReadOptions,
    RowGroupRef,
};
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::Result;
use crate::memory::{referenced_bytes, InFlight, MemoryPart, Ticket};
use crate::metrics::OperatorMetrics;
use crate::physical::filter::FilterCounts;
use crate::physical::key_segments::KeySegments;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

/// A predicate published at run time by a downstream operator (one slot per publisher).
#[derive(Debug, Default)]
pub(crate) struct DynamicFilter {
    slots: Mutex<Vec<Option<PruneExpr>>>,
    keys: Mutex<Option<Arc<KeySetFilter>>>,
}

/// Rows pass when the integer `column` holds one of `keys` (a hash join's build keys).
#[derive(Debug)]
pub(crate) struct KeySetFilter {
    /// Column name in the scan's output.
    pub column: String,
    /// The accepted values (as `i64`).
    pub keys: hashbrown::HashSet<i64>,
    /// Whether the scan drops the rows whose key is not in the set (otherwise the set only
    /// narrows what an index of the column selects).
    pub filter_rows: bool,
}

impl KeySetFilter {
    /// Keep only the rows of `batch` whose key is in the set (NULL keys never are).
    pub(crate) fn apply(
        &self,
        batch: arrow::array::RecordBatch,
    ) -> Result<arrow::array::RecordBatch> {
        use arrow::array::{Array, AsArray};
        let Ok(index) = batch.schema().index_of(&self.column) else {
            return Ok(batch);
        };
        let column = batch.column(index);
        let values = match column.data_type() {
            arrow::datatypes::DataType::Date32 => arrow::compute::cast(
                &arrow::compute::cast(column, &arrow::datatypes::DataType::Int32)?,
                &arrow::datatypes::DataType::Int64,
            )?,
            _ => arrow::compute::cast(column, &arrow::datatypes::DataType::Int64)?,
        };
        let ints = values.as_primitive::<arrow::datatypes::Int64Type>();
        let mask: arrow::array::BooleanArray = (0..ints.len())
            .map(|i| Some(ints.is_valid(i) && self.keys.contains(&ints.value(i))))
            .collect();
        if mask.true_count() == batch.num_rows() {
            return Ok(batch);
        }
        Ok(arrow::compute::filter_record_batch(&batch, &mask)?)
    }
}

impl DynamicFilter {
    /// A filter with `publishers` slots.
    pub(crate) fn new(publishers: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Mutex::new(vec![None; publishers]),
            keys: Mutex::new(None),
        })
    }

    /// Replace the predicate of `slot`.
    pub(crate) fn publish(&self, slot: usize, predicate: PruneExpr) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slot < slots.len() {
            slots[slot] = Some(predicate);
        }
    }

    /// Publish a key set (replacing an earlier one).
    pub(crate) fn publish_keys(&self, filter: KeySetFilter) {
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(filter));
    }

    /// The published key set, if any.
    pub(crate) fn key_set(&self) -> Option<Arc<KeySetFilter>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The currently published predicates.
    pub(crate) fn current(&self) -> Vec<PruneExpr> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Scan of a Parquet data set.
#[derive(Debug)]
pub(crate) struct ParquetScanExec {
    table_name: String,
    dataset: Arc<ParquetDataset>,
    projection: Vec<String>,
    schema: SchemaRef,
    morsels: Vec<Morsel>,
    /// What a partition claims at once: a range of `morsels` (one morsel, or every slice of a
    /// row group when the scan is segmented by key).
    units: Vec<std::ops::Range<usize>>,
    segments: Option<Arc<KeySegments>>,
    prune_stats: PruneStats,
    pruning_predicate: Option<PruneExpr>,
    partitions: usize,
    fetch: Option<usize>,
    dynamic_filters: Vec<Arc<DynamicFilter>>,
    late_filter: Option<LateFilterSpec>,
    read_as: Vec<(String, DataType)>,
    /// Per file of the data set, what its index did (`None`: not consulted).
    index_uses: Vec<Option<IndexUse>>,
    /// Row groups kept by statistics that an index ruled out.
    index_pruned: usize,
    /// Per file: columns every row read holds one known value of (an index selected exactly
    /// the rows where `col = v`), not read from the file.
    index_constants: Vec<Vec<(String, arrow::array::ArrayRef)>>,
    /// Where sidecars are looked for (`None`: indexes are not used).
    index_dir: Option<Option<std::path::PathBuf>>,
    /// Per file, the rows its index selects for the join key set published last (keyed by
    /// that set), computed when a morsel of the file is first read after it was published.
    key_set_rows: Mutex<Vec<Option<KeySetRows>>>,
    morsels_skipped_by_index: AtomicU64,
    morsels_late: AtomicU64,
    /// Partition `i` reads `units[i]` and nothing else.
    one_unit_per_partition: bool,
    next_unit: AtomicUsize,
    rows_emitted: AtomicUsize,
    skipped_dynamic: AtomicU64,
    rows_dropped_by_keys: AtomicU64,
    metrics: Arc<OperatorMetrics>,
}

/// Everything the planner decided about a scan.
#[derive(Debug)]
pub(crate) struct ScanSpec {
    /// Name shown in plans.
    pub table_name: String,
    /// The files.
    pub dataset: Arc<ParquetDataset>,
    /// Column names to read, in output order.
    pub projection: Vec<String>,
    /// Predicate used for static pruning (shown in EXPLAIN).
    pub pruning_predicate: Option<PruneExpr>,
    /// Output partitions.
    pub partitions: usize,
    /// Rows per morsel.
    pub morsel_rows: usize,
    /// Stop after this many rows.
    pub fetch: Option<usize>,
    /// Run-time predicates from downstream operators.
    pub dynamic_filters: Vec<Arc<DynamicFilter>>,
    /// Read row groups in the order that suits a top-k on this column (`true`: descending).
    pub preferred_order: Option<(String, bool)>,
    /// Columns an aggregate above groups by: if the row groups' ranges of one of them are
    /// disjoint, partitions claim whole row groups and report them ([`KeySegments`]).
    pub segment_columns: Vec<String>,
    /// How partitions get their morsels.
    pub units: UnitAssignment,
    /// The filter pushed into the scan, for late materialization.
    pub late_filter: Option<LateFilterSpec>,
    /// Read only these row groups (a task's share of a distributed scan); `None`: all.
    pub only_row_groups: Option<Arc<Vec<RowGroupRef>>>,
    /// Columns read as another type than the data set's (a cast above folded into the read:
    /// see `ooc_io::ReadOptions::read_as`); the output schema has these types. Neither the
    /// pruning predicate, nor the late filter, nor a dynamic filter may use such a column.
    pub read_as: Vec<(String, DataType)>,
    /// Secondary indexes the scan may use (`None`: none).
    pub index: Option<IndexSpec>,
}

/// The secondary indexes a scan may use (see `ooc_io::index`).
#[derive(Clone, Debug)]
pub(crate) struct IndexSpec {
    /// Where sidecars are looked for first (then beside the data files).
    pub index_dir: Option<std::path::PathBuf>,
    /// The filters pushed into the scan, as an index answers them (`None`: no filter; an
    /// index may still serve a join's key set).
    pub predicate: Option<PruneExpr>,
}

/// Largest fraction of a file's rows an index may select for the scan to read the file
/// through it. Beyond it, rows are spread over most pages, and reading a list of rows costs
/// about what scanning does (statistics and late materialization take over).
const INDEX_MAX_FRACTION: f64 = 0.01;

/// The rows of one file that its index selects for a join's key set.
#[derive(Clone, Debug)]
struct KeySetRows {
    keys: Arc<KeySetFilter>,
    /// `None`: the file's index does not serve that column (or not selectively).
    rows: Option<Arc<roaring::RoaringBitmap>>,
}

/// Most keys of a join's key set looked up in an index (more are left to the scan's filter).
const INDEX_MAX_KEYS: usize = 65_536;

/// The first row of row group `rg` of `file` within the file.
fn first_row(dataset: &ParquetDataset, rg: RowGroupRef) -> u64 {
    dataset.files()[rg.file].metadata.row_groups()[..rg.row_group]
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .sum()
}

/// What a secondary index did for one file of a scan (for EXPLAIN).
#[derive(Clone, Debug)]
enum IndexUse {
    /// The index answered these predicates with this many rows.
    Served { served: Vec<String>, rows: u64 },
    /// A current index, but for no predicate it could answer selectively.
    NotUsed,
    /// A sidecar that was not used, and why.
    Ignored {
        sidecar: std::path::PathBuf,
        reason: String,
        damaged: bool,
    },
}

/// The rows of `rows` in `start..end` as ranges relative to `start` (exactly those rows: a
/// scan may rely on every row it reads having been selected).
fn index_ranges(rows: &roaring::RoaringBitmap, start: u64, end: u64) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let (Ok(lo), Ok(hi)) = (
        u32::try_from(start),
        u32::try_from(end.min(u64::from(u32::MAX))),
    ) else {
        return out;
    };
    for row in rows.range(lo..hi) {
        let r = (row - lo) as usize;
        match out.last_mut() {
            Some(last) if r == last.end => last.end = r + 1,
            _ => out.push(r..r + 1),
        }
    }
    out
}

/// The filter above a scan, given to the scan to evaluate while reading the morsels where
/// few rows pass (late materialization: see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct LateFilterSpec {
    /// Its columns and predicate, as the reader evaluates them.
    pub filter: LateFilter,
    /// Rows in and out of the filter, over the whole scan (the filter above counts the
    /// morsels read whole, the scan those it filtered).
    pub counts: Arc<FilterCounts>,
}

/// Rows a filter must have seen before its pass ratio decides how morsels are read.
const LATE_MIN_OBSERVED_ROWS: u64 = 8192;

/// Largest fraction of rows passing the filter for which morsels are read with late
/// materialization. Above it, decoding every column once and filtering costs less than
/// decoding the filter's columns first and then selecting rows of the others.
const LATE_MAX_PASS_RATIO: f64 = 0.2;

impl LateFilterSpec {
    /// Whether the next morsel should be read with late materialization: once the filter has
    /// seen a batch, while few rows pass. The first morsels are read whole: a filter most
    /// rows pass would otherwise hold its columns for a whole morsel before anything else is
    /// decoded (Q13's first morsels added 130 MiB to its peak). The reader then reads late
    /// only where some other column is worth skipping rows of.
    fn pays(&self) -> bool {
        self.counts
            .pass_ratio(LATE_MIN_OBSERVED_ROWS)
            .is_some_and(|ratio| ratio < LATE_MAX_PASS_RATIO)
    }
}

/// How a scan's partitions get their units of work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum UnitAssignment {
    /// A fixed number of partitions claim units as they become free (the fastest; the order
    /// of the rows depends on timing).
    #[default]
    Claimed,
    /// One partition per unit, so that an operator above can hand the units on in order
    /// ([`crate::physical::ordered_coalesce`]); with a seed, the units are first put in an
    /// order drawn from it.
    OnePerPartition {
        /// Seed of the units' permutation (`None`: the files' order).
        shuffle_seed: Option<u64>,
    },
}

/// Fewest morsels per partition a scan aims for, so that every thread has work and a slow
/// morsel at the end is a small part of it.
const MORSELS_PER_PARTITION: usize = 4;

/// Fewest row groups per partition for a scan to claim whole row groups (see [`KeySegments`]).
const MIN_ROW_GROUPS_PER_SEGMENTED_PARTITION: usize = 2;

/// Rows per morsel for row groups of `row_group_rows` rows: whole row groups (up to
/// `max_rows`) when there are enough of them to keep `partitions` threads busy, otherwise
/// slices small enough to give each partition [`MORSELS_PER_PARTITION`] of them (never below
/// 8192 rows, a batch, unless `max_rows` is lower).
fn parallel_morsel_rows(row_group_rows: &[usize], max_rows: usize, partitions: usize) -> usize {
    let max_rows = max_rows.max(1);
    let wanted = partitions.max(1) * MORSELS_PER_PARTITION;
    let whole: usize = row_group_rows.iter().map(|r| r.div_ceil(max_rows)).sum();
    if whole >= wanted {
        return max_rows;
    }
    let total: usize = row_group_rows.iter().sum();
    total.div_ceil(wanted).clamp(8192.min(max_rows), max_rows)
}

/// The columns of the scan's output that `served` pins to one value: top-level `col = v`
/// conjuncts of the index predicate that the index answered (it then selected exactly the rows
/// holding `v`), `v` converted exactly to the output type. Columns read as another type are
/// left to the reader.
fn pinned_columns(
    predicate: &PruneExpr,
    served: &[String],
    schema: &SchemaRef,
    spec: &ScanSpec,
) -> Vec<(String, arrow::array::ArrayRef)> {
    let conjuncts: Vec<&PruneExpr> = match predicate {
        PruneExpr::And(parts) => parts.iter().collect(),
        other => vec![other],
    };
    let mut out: Vec<(String, arrow::array::ArrayRef)> = Vec::new();
    for part in conjuncts {
        let PruneExpr::Compare {
            column,
            op: ooc_io::CmpOp::Eq,
            value,
        } = part
        else {
            continue;
        };
        if !served.contains(&part.to_string())
            || spec.read_as.iter().any(|(c, _)| c == column)
            || out.iter().any(|(c, _)| c == column)
        {
            continue;
        }
        let Ok(field) = schema.field_with_name(column) else {
            continue;
        };
        if let Some(v) = ooc_io::exact_cast(value, field.data_type()) {
            out.push((column.clone(), v));
        }
    }
    out
}

/// Look up a file's index for the scan's predicate: what it did, and the rows it selected.
fn consult_index(
    dataset: &ParquetDataset,
    file: usize,
    index: &IndexSpec,
) -> (IndexUse, Option<roaring::RoaringBitmap>) {
    let data = &dataset.files()[file];
    let Some(predicate) = &index.predicate else {
        return (IndexUse::NotUsed, None);
    };
    match ooc_io::index::open_index(data, index.index_dir.as_deref()) {
        ooc_io::index::IndexStatus::Absent => (IndexUse::NotUsed, None),
        ooc_io::index::IndexStatus::Ignored { sidecar, reason } => (
            IndexUse::Ignored {
                damaged: reason.starts_with("damaged"),
                sidecar,
                reason,
            },
            None,
        ),
        ooc_io::index::IndexStatus::Ready(sidecar) => {
            let budget = (data.num_rows() as f64 * INDEX_MAX_FRACTION).ceil() as u64;
            match sidecar.select(predicate, budget) {
                Ok(Some(found)) => (
                    IndexUse::Served {
                        served: found.served,
                        rows: found.rows.len(),
                    },
                    Some(found.rows),
                ),
                Ok(None) => (IndexUse::NotUsed, None),
                Err(reason) => (
                    IndexUse::Ignored {
                        sidecar: sidecar.path().to_path_buf(),
                        reason: format!("damaged: {reason}"),
                        damaged: true,
                    },
                    None,
                ),
            }
        }
    }
}

impl ParquetScanExec {
    /// Plan the morsels of a scan, pruning row groups with the static predicate.
    pub(crate) fn try_new(spec: ScanSpec) -> Result<Self> {
        let schema = spec.dataset.project_schema(Some(&spec.projection))?;
        let schema = ooc_io::with_types(schema, &spec.read_as);
        let (mut row_groups, mut prune_stats) = match &spec.pruning_predicate {
            Some(predicate) => spec.dataset.prune(predicate),
            None => spec.dataset.prune(&PruneExpr::Unknown),
        };
        if let Some(only) = &spec.only_row_groups {
            row_groups.retain(|rg| only.contains(rg));
        }
        if let Some((column, descending)) = &spec.preferred_order {
            spec.dataset
                .order_row_groups(&mut row_groups, column, *descending);
        }
        // Within the row groups kept, those bloom filters do not rule out, and in them the
        // rows whose pages may match.
        let mut slices: Vec<(RowGroupRef, Vec<Range<usize>>)> =
            Vec::with_capacity(row_groups.len());
        let mut index_uses: Vec<Option<IndexUse>> = vec![None; spec.dataset.files().len()];
        let mut index_rows: Vec<Option<roaring::RoaringBitmap>> =
            vec![None; spec.dataset.files().len()];
        let mut index_pruned = 0;
        let mut index_constants: Vec<Vec<(String, arrow::array::ArrayRef)>> =
            vec![Vec::new(); spec.dataset.files().len()];
        for &rg in &row_groups {
            if let Some(predicate) = &spec.pruning_predicate {
                if spec.dataset.bloom_excludes(rg, predicate) {
                    if let Some(file) = prune_stats.files.get_mut(rg.file) {
                        file.row_groups_bloom_pruned += 1;
                    }
                    continue;
                }
            }
            // The rows an index selects in this row group.
            let indexed = match spec.index.as_ref().filter(|i| i.predicate.is_some()) {
                Some(index) => {
                    if index_uses[rg.file].is_none() {
                        let (usage, rows) = consult_index(&spec.dataset, rg.file, index);
                        if let (IndexUse::Served { served, .. }, Some(predicate)) =
                            (&usage, &index.predicate)
                        {
                            index_constants[rg.file] =
                                pinned_columns(predicate, served, &schema, &spec);
                        }
                        index_uses[rg.file] = Some(usage);
                        index_rows[rg.file] = rows;
                    }
                    index_rows[rg.file].as_ref().map(|rows| {
                        let start = first_row(&spec.dataset, rg);
                        let end = start + spec.dataset.row_group_rows(rg) as u64;
                        index_ranges(rows, start, end)
                    })
                }
                None => None,
            };
            if indexed.as_ref().is_some_and(|r| r.is_empty()) {
                index_pruned += 1;
                continue;
            }
            let pages = spec
                .pruning_predicate
                .as_ref()
                .and_then(|p| spec.dataset.prune_pages(rg, p));
            let pages = match (pages, &indexed) {
                (Some(mut pages), Some(rows)) => {
                    pages.rows = ooc_io::intersect_ranges(&pages.rows, rows);
                    Some(pages)
                }
                (None, Some(rows)) => Some(ooc_io::PageSelection {
                    rows: rows.clone(),
                    pages_kept: 0,
                    pages_total: 0,
                }),
                (pages, None) => pages,
            };
            match pages {
                Some(pages) => {
                    if let Some(file) = prune_stats.files.get_mut(rg.file) {
                        file.pages_kept += pages.pages_kept;
                        file.pages_total += pages.pages_total;
                    }
                    if !pages.rows.is_empty() {
                        slices.push((rg, pages.rows));
                    }
                }
                None => {
                    let rows = spec.dataset.row_group_rows(rg);
                    slices.push((
                        rg,
                        Vec::from([Range {
                            start: 0,
                            end: rows,
                        }]),
                    ))
                }
            }
        }
        let row_groups: Vec<RowGroupRef> = slices.iter().map(|(rg, _)| *rg).collect();
        let max_rows = parallel_morsel_rows(
            &slices
                .iter()
                .map(|(_, ranges)| ranges.iter().map(|r| r.len()).sum())
                .collect::<Vec<_>>(),
            spec.morsel_rows,
            spec.partitions,
        );
        let morsels = spec.dataset.plan_morsels_in(&slices, max_rows);
        // Segmenting by key gives up balancing by slices, so it needs a few row groups per
        // partition.
        let segmentable =
            row_groups.len() >= MIN_ROW_GROUPS_PER_SEGMENTED_PARTITION * spec.partitions.max(1);
        let segment_column = spec
            .segment_columns
            .iter()
            .filter(|_| segmentable)
            .find_map(|c| {
                let bounds = spec.dataset.row_group_key_bounds(&row_groups, c)?;
                KeySegments::plan(c.clone(), &bounds, spec.partitions.max(1))
            });
        let units: Vec<std::ops::Range<usize>> = if segment_column.is_some() {
            // One unit per row group, in `row_groups` order (the order of the bounds).
            let mut units: Vec<std::ops::Range<usize>> = Vec::new();
            for (i, morsel) in morsels.iter().enumerate() {
                match units.last_mut() {
                    Some(last) if morsels[last.start].row_group == morsel.row_group => {
                        last.end = i + 1
                    }
                    _ => units.push(i..i + 1),
                }
            }
            units
        } else {
            (0..morsels.len()).map(|i| i..i + 1).collect()
        };
        let (units, partitions, segments) = match spec.units {
            UnitAssignment::Claimed => {
                let partitions = spec.partitions.clamp(1, units.len().max(1));
                // Planned for `spec.partitions`; there are at least that many row groups.
                let segments = segment_column
                    .filter(|s| s.partitions() == partitions)
                    .map(Arc::new);
                (units, partitions, segments)
            }
            UnitAssignment::OnePerPartition { shuffle_seed } => {
                let mut units = units;
                if let Some(seed) = shuffle_seed {
                    units.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                }
                let partitions = units.len().max(1);
                (units, partitions, None)
            }
        };
        Ok(Self {
            table_name: spec.table_name,
            dataset: spec.dataset,
            projection: spec.projection,
            schema,
            morsels,
            units,
            segments,
            prune_stats,
            pruning_predicate: spec.pruning_predicate,
            partitions,
            fetch: spec.fetch,
            dynamic_filters: spec.dynamic_filters,
            late_filter: spec.late_filter,
            read_as: spec.read_as,
            index_pruned,
            index_constants,
            index_dir: spec.index.as_ref().map(|i| i.index_dir.clone()),
            key_set_rows: Mutex::new(vec![None; index_uses.len()]),
            index_uses,
            morsels_skipped_by_index: AtomicU64::new(0),
            morsels_late: AtomicU64::new(0),
            one_unit_per_partition: spec.units != UnitAssignment::Claimed,
            next_unit: AtomicUsize::new(0),
            rows_emitted: AtomicUsize::new(0),
            skipped_dynamic: AtomicU64::new(0),
            rows_dropped_by_keys: AtomicU64::new(0),
            metrics: Arc::default(),
        })
    }

    fn apply_key_sets(
        &self,
        mut batch: arrow::array::RecordBatch,
    ) -> Result<arrow::array::RecordBatch> {
        for filter in &self.dynamic_filters {
            if let Some(keys) = filter.key_set().filter(|k| k.filter_rows) {
                let before = batch.num_rows();
                batch = keys.apply(batch)?;
                let dropped = (before - batch.num_rows()) as u64;
                if dropped > 0 {
                    let total = self
                        .rows_dropped_by_keys
                        .fetch_add(dropped, Ordering::Relaxed)
                        + dropped;
                    self.metrics.set_extra("rows_dropped_by_join_keys", total);
                }
            }
        }
        Ok(batch)
    }

    /// What the secondary indexes did, for EXPLAIN: the predicates served, rows selected and
    /// row groups ruled out; and a line per ignored sidecar, saying why.
    fn index_details(&self) -> (String, String) {
        let mut out = String::new();
        let mut lines = String::new();
        let mut served: Vec<String> = Vec::new();
        let (mut files, mut rows) = (0, 0u64);
        let mut ignored = Vec::new();
        for (file, usage) in self.dataset.files().iter().zip(&self.index_uses) {
            match usage {
                Some(IndexUse::Served { served: s, rows: r }) => {
                    files += 1;
                    rows += r;
                    for p in s {
                        if !served.contains(p) {
                            served.push(p.clone());
                        }
                    }
                }
                Some(IndexUse::Ignored {
                    sidecar, reason, ..
                }) => ignored.push(format!(
                    "\n      {}: index {} ignored, {reason}",
                    file.path.display(),
                    sidecar.display()
                )),
                Some(IndexUse::NotUsed) | None => {}
            }
        }
        if files > 0 {
            out.push_str(&format!(
                " index=[{}] index_files={files}/{} index_rows={rows} index_pruned={}",
                served.join(", "),
                self.index_uses.iter().filter(|u| u.is_some()).count(),
                self.index_pruned
            ));
        }
        let shown = ignored.len().min(8);
        for line in &ignored[..shown] {
            lines.push_str(line);
        }
        if ignored.len() > shown {
            lines.push_str(&format!(
                "\n      ... and {} more ignored indexes",
                ignored.len() - shown
            ));
        }
        (out, lines)
    }

    /// `morsel` narrowed to the rows that the index of its file selects for a join's published
    /// key set (`None`: none of its rows can join); the morsel itself when no index serves the
    /// set.
    fn narrow_by_key_index(&self, morsel: &Morsel) -> Option<Morsel> {
        let Some(index_dir) = &self.index_dir else {
            return Some(morsel.clone());
        };
        let Some(keys) = self.dynamic_filters.iter().find_map(|f| f.key_set()) else {
            return Some(morsel.clone());
        };
        let file = morsel.row_group.file;
        let rows = {
            let mut cache = self.key_set_rows.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(file).cloned().flatten() {
                Some(found) if Arc::ptr_eq(&found.keys, &keys) => found.rows,
                _ => {
                    let rows = self.key_set_index_rows(file, &keys, index_dir.as_deref());
                    if let Some(slot) = cache.get_mut(file) {
                        *slot = Some(KeySetRows {
                            keys: Arc::clone(&keys),
                            rows: rows.clone(),
                        });
                    }
                    rows
                }
            }
        };
        let Some(rows) = rows else {
            return Some(morsel.clone());
        };
        let start = first_row(&self.dataset, morsel.row_group);
        let end = start + self.dataset.row_group_rows(morsel.row_group) as u64;
        let selected = ooc_io::intersect_ranges(&morsel.ranges(), &index_ranges(&rows, start, end));
        let (first, last) = (selected.first()?.start, selected.last()?.end);
        Some(Morsel {
            row_group: morsel.row_group,
            row_offset: first,
            num_rows: last - first,
            selection: (selected.len() > 1).then(|| Arc::from(selected.as_slice())),
        })
    }

    /// The rows of file `file` whose key is in `keys`, from the file's index.
    fn key_set_index_rows(
        &self,
        file: usize,
        keys: &KeySetFilter,
        index_dir: Option<&std::path::Path>,
    ) -> Option<Arc<roaring::RoaringBitmap>> {
        if keys.keys.len() > INDEX_MAX_KEYS {
            return None;
        }
        let data = &self.dataset.files()[file];
        let ooc_io::index::IndexStatus::Ready(sidecar) = ooc_io::index::open_index(data, index_dir)
        else {
            return None;
        };
        let values: Vec<arrow::array::ArrayRef> = keys
            .keys
            .iter()
            .map(|&k| Arc::new(arrow::array::Int64Array::from(vec![k])) as arrow::array::ArrayRef)
            .collect();
        let predicate = PruneExpr::InList {
            column: keys.column.clone(),
            values,
            negated: false,
        };
        let budget = (data.num_rows() as f64 * INDEX_MAX_FRACTION).ceil() as u64;
        // A damaged sidecar serves nothing: the keys are then filtered after decoding.
        sidecar
            .select(&predicate, budget)
            .ok()
            .flatten()
            .map(|found| Arc::new(found.rows))
    }

    fn skip_by_dynamic_filter(&self, morsel: &Morsel) -> bool {
        for filter in &self.dynamic_filters {
            for predicate in filter.current() {
                if !self
                    .dataset
                    .row_group_may_match(morsel.row_group, &predicate)
                {
                    return true;
                }
            }
        }
        false
    }
}

impl ExecutionPlan for ParquetScanExec {
    fn name(&self) -> &str {
        "ParquetScan"
    }

    fn details(&self) -> String {
        let columns: Vec<String> = self
            .projection
            .iter()
            .map(|c| match self.read_as.iter().find(|(n, _)| n == c) {
                Some((_, t)) => format!("{c} AS {}", crate::logical::types::sql_type_name(t)),
                None => c.clone(),
            })
            .collect();
        let mut out = format!("{} columns=[{}]", self.table_name, columns.join(", "));
        if let Some(p) = &self.pruning_predicate {
            out.push_str(&format!(" pruning=[{p}]"));
        }
        let kept: usize = self
            .prune_stats
            .files
            .iter()
            .map(|f| f.row_groups_kept)
            .sum();
        let total: usize = self
            .prune_stats
            .files
            .iter()
            .map(|f| f.row_groups_total)
            .sum();
        out.push_str(&format!(" row_groups={kept}/{total}"));
        let (pages_kept, pages_total) = self
            .prune_stats
            .files
            .iter()
            .fold((0, 0), |(k, t), f| (k + f.pages_kept, t + f.pages_total));
        let bloom: usize = self
            .prune_stats
            .files
            .iter()
            .map(|f| f.row_groups_bloom_pruned)
            .sum();
        if bloom > 0 {
            out.push_str(&format!(" bloom_pruned={bloom}"));
        }
        if pages_total > 0 {
            out.push_str(&format!(" pages={pages_kept}/{pages_total}"));
        }
        out.push_str(&format!(
            " files={} morsels={}",
            self.prune_stats.files.len(),
            self.morsels.len()
        ));
        let (index, ignored) = self.index_details();
        out.push_str(&index);
        if self.prune_stats.files.len() <= 8 && kept < total {
            for f in &self.prune_stats.files {
                out.push_str(&format!(
                    "\n      {}: row groups kept {}/{}{}",
                    f.path.display(),
                    f.row_groups_kept,
                    f.row_groups_total,
                    if f.file_pruned_by_partition {
                        " (pruned by partition value)"
                    } else {
                        ""
                    }
                ));
            }
        }
        if let Some(segments) = &self.segments {
            out.push_str(&format!(" whole_row_groups_by={}", segments.column));
        }
        if !self.dynamic_filters.is_empty() {
            out.push_str(" dynamic_filters");
        }
        if let Some(late) = &self.late_filter {
            out.push_str(&format!(
                " late_filter=[{}]",
                late.filter.columns.join(", ")
            ));
        }
        if let Some(fetch) = self.fetch {
            out.push_str(&format!(" fetch={fetch}"));
        }
        out.push_str(&ignored);
        out
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn output_partitions(&self) -> usize {
        self.partitions
    }

    fn key_segments(&self) -> Option<Arc<KeySegments>> {
        self.segments.clone()
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        if partition == 0 {
            ctx.progress
                .total
                .fetch_add(self.morsels.len() as u64, Ordering::Relaxed);
            for (file, usage) in self.dataset.files().iter().zip(&self.index_uses) {
                if let Some(IndexUse::Ignored {
                    sidecar,
                    reason,
                    damaged: true,
                }) = usage
                {
                    ctx.set_warning(
                        &format!("index of {}", file.path.display()),
                        format!(
                            "ignored the index {} ({reason}); {} was scanned without it",
                            sidecar.display(),
                            file.path.display()
                        ),
                    );
                }
            }
        }
        let options = ReadOptions {
            projection: Some(self.projection.clone()),
            batch_size: ctx.batch_size,
            bytes_read: Some(Arc::clone(&ctx.bytes_read)),
            late_filter: None,
            read_as: self.read_as.clone(),
            constants: Vec::new(),
        };
        let (queue, claims) = match self.one_unit_per_partition {
            true => (self.units.get(partition).cloned().unwrap_or(0..0), false),
            false => (0..0, true),
        };
        let decoded = InFlight::new(
            &ctx.memory_pool,
            "ParquetScan",
            MemoryPart::DecodeBuffers,
            Some(Arc::clone(&self.metrics)),
        );
        let stream = ScanStream {
            exec: Arc::clone(&self),
            ctx,
            options,
            current: None,
            queue,
            claims,
            partition,
            decoded,
            last: None,
            reading: None,
        };
        Ok(instrument(Box::new(stream), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

struct ScanStream {
    exec: Arc<ParquetScanExec>,
    ctx: Arc<TaskContext>,
    options: ReadOptions,
    current: Option<MorselReader>,
    /// Morsels of the claimed unit not yet opened.
    queue: std::ops::Range<usize>,
    /// Whether the partition claims another unit when its queue is empty.
    claims: bool,
    partition: usize,
    /// The batches this partition decoded, counted until the next one is asked for (the
    /// operators above consume a batch before they pull the next).
    decoded: InFlight,
    last: Option<Ticket>,
    /// The open reader's decode buffers, counted while it is open.
    reading: Option<Ticket>,
}

impl ScanStream {
    fn finish_morsel(&mut self) {
        self.current = None;
        self.reading = None;
        self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Iterator for ScanStream {
    type Item = Result<arrow::array::RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.last = None;
        let exec = Arc::clone(&self.exec);
        loop {
            if let Some(fetch) = exec.fetch {
                if exec.rows_emitted.load(Ordering::Relaxed) >= fetch {
                    return None;
                }
            }
            if let Some(reader) = self.current.as_mut() {
                match reader.next() {
                    Some(Ok(batch)) => {
                        exec.rows_emitted
                            .fetch_add(batch.num_rows(), Ordering::Relaxed);
                        let rows_read = batch.num_rows();
                        let batch = match exec.apply_key_sets(batch) {
                            Ok(b) => b,
                            Err(e) => return Some(Err(e)),
                        };
                        if batch.num_rows() == 0 && rows_read > 0 {
                            self.ctx
                                .progress
                                .rows
                                .fetch_add(rows_read as u64, Ordering::Relaxed);
                            continue;
                        }
                        self.ctx
                            .progress
                            .rows
                            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                        self.last = Some(self.decoded.ticket(referenced_bytes(&batch)));
                        return Some(Ok(batch));
                    }
                    Some(Err(e)) => {
                        self.finish_morsel();
                        return Some(Err(read_error(e)));
                    }
                    None => self.finish_morsel(),
                }
            }
            if let Err(e) = self.ctx.check_cancelled() {
                return Some(Err(e));
            }
            let index = match self.queue.next() {
                Some(index) => index,
                None if !self.claims => return None,
                None => {
                    let unit = exec.next_unit.fetch_add(1, Ordering::Relaxed);
                    self.queue = exec.units.get(unit)?.clone();
                    if let Some(segments) = &exec.segments {
                        segments.claim(self.partition, unit);
                    }
                    continue;
                }
            };
            let morsel = exec.morsels.get(index)?;
            if exec.skip_by_dynamic_filter(morsel) {
                let skipped = exec.skipped_dynamic.fetch_add(1, Ordering::Relaxed) + 1;
                exec.metrics.set_extra("morsels_skipped_dynamic", skipped);
                self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(morsel) = exec.narrow_by_key_index(morsel) else {
                let skipped = exec
                    .morsels_skipped_by_index
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                exec.metrics
                    .set_extra("morsels_skipped_by_join_key_index", skipped);
                self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let morsel = &morsel;
            self.options.constants = exec.index_constants[morsel.row_group.file].clone();
            self.options.late_filter = exec
                .late_filter
                .as_ref()
                .filter(|late| late.pays())
                .map(|late| late.filter.clone());
            match exec.dataset.read_morsel(morsel, &self.options) {
                Ok(reader) => {
                    if let (Some(late), Some((rows_in, passed))) =
                        (&exec.late_filter, reader.late_counts())
                    {
                        // The filter above sees (and counts) only the rows that passed.
                        late.counts.add(rows_in - passed, 0);
                        let n = exec.morsels_late.fetch_add(1, Ordering::Relaxed) + 1;
                        exec.metrics.set_extra("morsels_late_materialized", n);
                    }
                    self.reading = Some(self.decoded.ticket(reader.decode_bytes()));
                    self.current = Some(reader);
                }
                Err(e) => {
                    self.ctx.progress.done.fetch_add(1, Ordering::Relaxed);
                    return Some(Err(read_error(e)));
                }
            }
        }
    }
}

/// A reader's error as the engine's: the predicate of a late filter fails with the same error
/// the filter above would have raised (a bad cast is an execution error, not an input error).
fn read_error(e: ooc_io::IoError) -> crate::error::EngineError {
    match e {
        ooc_io::IoError::Filter(source) => match source.downcast::<crate::error::EngineError>() {
            Ok(engine) => *engine,
            Err(other) => ooc_io::IoError::Filter(other).into(),
        },
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::parallel_morsel_rows;

    #[test]
    fn enough_row_groups_are_read_whole() {
        // 60 row groups of 1M rows, two threads: one morsel per row group.
        assert_eq!(parallel_morsel_rows(&[1 << 20; 60], 1 << 20, 2), 1 << 20);
        // Row groups above the cap are still sliced.
        assert_eq!(parallel_morsel_rows(&[4 << 20; 8], 1 << 20, 2), 1 << 20);
    }

    #[test]
    fn few_row_groups_are_sliced_for_the_threads() {
        // One row group of 1M rows, two threads: eight slices of 125k rows.
        assert_eq!(parallel_morsel_rows(&[1_000_000], 1 << 20, 2), 125_000);
        // Six row groups, two threads: 750k-row slices, two per row group.
        let rows = parallel_morsel_rows(&[1_000_000; 6], 1 << 20, 2);
        assert_eq!(rows, 750_000);
        // Tiny tables are not cut below a batch...
        assert_eq!(parallel_morsel_rows(&[10_000], 1 << 20, 8), 8192);
        // ...unless the cap is lower.
        assert_eq!(parallel_morsel_rows(&[10_000], 1000, 8), 1000);
        assert_eq!(parallel_morsel_rows(&[], 1 << 20, 2), 8192);
    }
}
