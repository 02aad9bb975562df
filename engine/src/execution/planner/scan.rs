//! Planning a scan: its projection, the statistics-pruning predicate translated from the
//! filters pushed into it, its morsel size under the memory budget, and the dynamic filters,
//! preferred row-group order and segment columns that operators above registered for it.

use std::sync::Arc;

use arrow::datatypes::DataType;
use ooc_io::{CmpOp, LateFilter, LatePredicate, PruneExpr};

use super::PhysicalPlanner;
use crate::error::{EngineError, Result};
use crate::eval::create_physical_expr;
use crate::logical::expr::{BinaryOp, Expr};
use crate::logical::plan::{ExchangeInput, LogicalPlan, ScanSource, TableScan};
use crate::logical::schema::{PlanField, PlanSchema};
use crate::physical::cached_result::CachedResultExec;
use crate::physical::filter::{FilterCounts, FilterExec};
use crate::physical::scan::{IndexSpec, LateFilterSpec, ParquetScanExec, ScanSpec, UnitAssignment};
use crate::physical::text_scan::TextScanExec;
use crate::physical::union::UnionExec;
use crate::physical::ExecutionPlan;

/// Most rows of a slice of a scan whose slices are handed on in order: each is held whole
/// while the slices before it are consumed, so they are kept smaller than usual (and a
/// shuffled order has more of them to mix).
const ORDERED_MORSEL_ROWS: usize = 131_072;

impl PhysicalPlanner {
    pub(super) fn create_scan(&mut self, scan: &TableScan) -> Result<Arc<dyn ExecutionPlan>> {
        let key = scan.id();
        let dynamic_filters = self.pending_filters.remove(&key).unwrap_or_default();
        let prune_parts: Vec<PruneExpr> = scan
            .filters
            .iter()
            .map(|f| to_prune_expr(f, scan.schema(), CastRule::Monotonic))
            .collect();
        let pruning_predicate = match prune_parts.len() {
            0 => None,
            1 => prune_parts.into_iter().next(),
            _ => Some(PruneExpr::And(prune_parts)),
        }
        .filter(|p| !matches!(p, PruneExpr::Unknown));
        // What a secondary index may answer: the same filters, through exact casts only.
        let index_parts: Vec<PruneExpr> = match self.options.indexes {
            Some(_) => scan
                .filters
                .iter()
                .map(|f| to_prune_expr(f, scan.schema(), CastRule::Injective))
                .filter(|p| !matches!(p, PruneExpr::Unknown))
                .collect(),
            None => Vec::new(),
        };
        let index_predicate = match index_parts.len() {
            0 => None,
            1 => index_parts.into_iter().next(),
            _ => Some(PruneExpr::And(index_parts)),
        };
        let projection = scan.projected_names();
        let fetch = if scan.filters.is_empty() {
            scan.fetch
        } else {
            None
        };
        let dataset = match &scan.source {
            ScanSource::Parquet(dataset) => dataset,
            ScanSource::Text(dataset) => {
                let exec = TextScanExec::try_new(
                    scan.table_name.clone(),
                    Arc::clone(dataset),
                    projection,
                    self.options.threads,
                    budget_chunk_bytes(self.options.memory_limit, self.options.threads),
                    fetch,
                )?;
                return self.filter_scan(Arc::new(exec), scan, None);
            }
            ScanSource::Cached(result) => {
                let exec = CachedResultExec::scan(
                    scan.table_name.clone(),
                    Arc::clone(result),
                    scan.projection.clone(),
                    self.options.threads,
                    fetch,
                )?;
                return self.filter_scan(Arc::new(exec), scan, None);
            }
            ScanSource::Exchange(input) => {
                let exec = self.exchange_scan(scan, input)?;
                return self.filter_scan(exec, scan, None);
            }
        };
        let late_filter = late_filter(scan)?;
        let counts = late_filter.as_ref().map(|l| Arc::clone(&l.counts));
        let ordered = self.ordered_scan.filter(|(id, _)| *id == key);
        let morsel_rows = budget_morsel_rows(
            match ordered {
                // Slices handed on in order are held whole while they wait their turn. A
                // whole number of batches each, so that batches of that size cut from the
                // stream are slices of one decoded batch.
                Some(_) => {
                    let batch = self.options.batch_size.max(1);
                    let rows = ORDERED_MORSEL_ROWS.div_ceil(batch).saturating_mul(batch);
                    self.options.morsel_rows.min(rows.max(batch))
                }
                None => self.options.morsel_rows,
            },
            self.options.memory_limit,
            self.options.threads,
            dataset.compressed_bytes_per_row(&projection),
        );
        let exec = ParquetScanExec::try_new(ScanSpec {
            table_name: scan.table_name.clone(),
            dataset: Arc::clone(dataset),
            projection,
            pruning_predicate,
            partitions: self.options.threads,
            morsel_rows,
            fetch,
            dynamic_filters,
            preferred_order: self.preferred_order.remove(&key),
            segment_columns: self.segment_columns.remove(&key).unwrap_or_default(),
            units: match ordered {
                Some((_, seed)) => UnitAssignment::OnePerPartition { shuffle_seed: seed },
                None => UnitAssignment::Claimed,
            },
            late_filter,
            only_row_groups: scan.split.clone(),
            read_as: self.read_as.remove(&key).unwrap_or_default(),
            index: self.options.indexes.clone().map(|index_dir| IndexSpec {
                index_dir,
                predicate: index_predicate,
            }),
        })?;
        self.filter_scan(Arc::new(exec), scan, counts)
    }

    /// A scan of the exchange files an earlier stage of a distributed query wrote: each file
    /// mapped and read like a cached result, all of them as one union.
    fn exchange_scan(
        &self,
        scan: &TableScan,
        input: &ExchangeInput,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if input.files.is_empty() {
            return Err(EngineError::Internal(format!(
                "stage {} was read before it ran",
                input.stage
            )));
        }
        let mut parts: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(input.files.len());
        for path in &input.files {
            let result = ooc_io::cache::open_exchange_file(path)?;
            parts.push(Arc::new(
                CachedResultExec::scan(
                    scan.table_name.clone(),
                    result,
                    scan.projection.clone(),
                    self.options.threads,
                    None,
                )?
                .owned(),
            ));
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        let schema = parts[0].schema();
        Ok(Arc::new(UnionExec::new(parts, schema)))
    }

    /// `exec` under a filter of the predicates pushed into `scan` (statistics only skip
    /// whole row groups; the rows still need the filter).
    fn filter_scan(
        &self,
        exec: Arc<dyn ExecutionPlan>,
        scan: &TableScan,
        counts: Option<Arc<FilterCounts>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match Expr::conjunction(scan.filters.iter().cloned()) {
            Some(predicate) => {
                let physical = create_physical_expr(&predicate, scan.schema())?;
                let filter = FilterExec::new(exec, physical, predicate.to_string());
                Ok(Arc::new(match counts {
                    Some(counts) => filter.with_counts(counts),
                    None => filter,
                }))
            }
            None => Ok(exec),
        }
    }
}

/// A projection over a scan with some of its casts done by the scan while reading.
pub(super) struct FoldedCasts {
    /// The columns the scan reads as another type.
    pub(super) read_as: Vec<(String, DataType)>,
    /// The scan's schema with those types.
    pub(super) scan_schema: PlanSchema,
    /// The projection's expressions over that schema (the folded casts become the columns).
    pub(super) exprs: Vec<Expr>,
}

/// The scan below a projection of `exprs` over `input`, and the expressions over the scan's
/// columns: `input` is the scan, or reaches it through projections that only pick (and
/// rename) columns and through aliases; the columns of `exprs` are then replaced by the
/// scan's.
pub(super) fn projected_scan<'a>(
    input: &'a LogicalPlan,
    exprs: &[Expr],
) -> Option<(&'a TableScan, Vec<Expr>)> {
    // The scan, and the scan column behind each column of `plan`'s output.
    fn columns_of(plan: &LogicalPlan) -> Option<(&TableScan, Vec<Expr>)> {
        match plan {
            LogicalPlan::TableScan(scan) => Some((scan, scan.schema().column_exprs())),
            LogicalPlan::SubqueryAlias { input, .. } => columns_of(input),
            LogicalPlan::Projection { input, exprs, .. } => {
                let (scan, below) = columns_of(input)?;
                let schema = input.schema();
                let columns = exprs
                    .iter()
                    .map(|e| match e.clone().unalias() {
                        Expr::Column(c) => {
                            let i = schema.try_index_of(c.relation.as_deref(), &c.name).ok()??;
                            below.get(i).cloned()
                        }
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some((scan, columns))
            }
            _ => None,
        }
    }
    let (scan, columns) = columns_of(input)?;
    let schema = input.schema();
    let mut unresolved = false;
    let over_scan = exprs
        .iter()
        .map(|e| {
            e.clone().transform_down(&mut |e| match e {
                Expr::Column(c) => match schema.try_index_of(c.relation.as_deref(), &c.name) {
                    Ok(Some(i)) if i < columns.len() => Some(columns[i].clone()),
                    _ => {
                        unresolved = true;
                        None
                    }
                },
                _ => None,
            })
        })
        .collect::<Result<Vec<_>>>()
        .ok()?;
    (!unresolved).then_some((scan, over_scan))
}

/// The casts of a projection's `exprs` that the Parquet `scan` below it can do while reading:
/// those of a decimal column to `REAL` or `DOUBLE`, when the projection reads that column
/// nowhere else, nor as another type, and no filter pushed into the scan reads it (the scan
/// prunes and filters with the stored type). A decimal stored as a 32- or 64-bit integer is
/// then decoded in that width and converted from there, never widened to 128 bits: feeding
/// the decimals of TPC-H `lineitem` to a model as `float32` goes through such casts. The
/// values are the very ones the cast gives (Arrow's conversion, which ooc's cast matches).
/// `None` when there is nothing to fold.
pub(super) fn foldable_casts(scan: &TableScan, exprs: &[Expr]) -> Result<Option<FoldedCasts>> {
    if !matches!(scan.source, ScanSource::Parquet(_)) {
        return Ok(None);
    }
    let schema = scan.schema();
    let decimal_index = |c: &crate::logical::expr::Column| {
        let index = schema.try_index_of(c.relation.as_deref(), &c.name).ok()??;
        matches!(
            schema.field(index).field.data_type(),
            DataType::Decimal128(..)
        )
        .then_some(index)
    };
    // Per decimal column: the float types it is cast to, and whether it is read otherwise.
    let mut casts: Vec<(usize, DataType)> = Vec::new();
    let mut other_use: Vec<usize> = Vec::new();
    for expr in exprs {
        expr.clone().transform_down(&mut |e| match e {
            Expr::Cast { expr: inner, to }
                if matches!(to, DataType::Float32 | DataType::Float64) =>
            {
                match inner.as_ref() {
                    Expr::Column(c) => decimal_index(c).map(|i| {
                        casts.push((i, to.clone()));
                        e.clone()
                    }),
                    _ => None,
                }
            }
            Expr::Column(c) => {
                if let Some(i) = decimal_index(c) {
                    other_use.push(i);
                }
                None
            }
            _ => None,
        })?;
    }
    for filter in &scan.filters {
        for c in filter.columns() {
            if let Some(i) = decimal_index(&c) {
                other_use.push(i);
            }
        }
    }
    let mut folded: Vec<(usize, DataType)> = Vec::new();
    for (i, to) in &casts {
        let one_type = casts.iter().all(|(j, t)| j != i || t == to);
        if one_type && !other_use.contains(i) && !folded.iter().any(|(j, _)| j == i) {
            folded.push((*i, to.clone()));
        }
    }
    if folded.is_empty() {
        return Ok(None);
    }
    let fields = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| match folded.iter().find(|(j, _)| *j == i) {
            Some((_, to)) => PlanField::new(
                f.qualifier.clone(),
                f.field.as_ref().clone().with_data_type(to.clone()),
            ),
            None => f.clone(),
        })
        .collect();
    let exprs = exprs
        .iter()
        .map(|expr| {
            expr.clone().transform_down(&mut |e| match e {
                Expr::Cast { expr: inner, .. } => match inner.as_ref() {
                    Expr::Column(c) => decimal_index(c)
                        .filter(|i| folded.iter().any(|(j, _)| j == i))
                        .map(|_| inner.as_ref().clone()),
                    _ => None,
                },
                _ => None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(FoldedCasts {
        read_as: folded
            .iter()
            .map(|(i, to)| (schema.field(*i).name().to_string(), to.clone()))
            .collect(),
        scan_schema: PlanSchema::new(fields),
        exprs,
    }))
}

/// The filters pushed into `scan` as a predicate over the columns it reads, for late
/// materialization; `None` without filters, or when the scan reads no other column (then
/// there is nothing to decode later).
fn late_filter(scan: &TableScan) -> Result<Option<LateFilterSpec>> {
    let Some(predicate) = Expr::conjunction(scan.filters.iter().cloned()) else {
        return Ok(None);
    };
    let schema = scan.schema();
    let mut indices: Vec<usize> = predicate
        .columns()
        .iter()
        .map(|c| schema.index_of(c.relation.as_deref(), &c.name))
        .collect::<Result<_>>()?;
    indices.sort_unstable();
    indices.dedup();
    if indices.is_empty() || indices.len() >= schema.len() {
        return Ok(None);
    }
    let fields: Vec<_> = indices.iter().map(|&i| schema.field(i).clone()).collect();
    let columns: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
    let physical = create_physical_expr(&predicate, &PlanSchema::new(fields))?;
    let predicate: Arc<LatePredicate> = Arc::new(move |batch| {
        physical
            .evaluate_mask(batch)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    });
    Ok(Some(LateFilterSpec {
        filter: LateFilter { columns, predicate },
        counts: Arc::default(),
    }))
}

/// The scan column an expression reads, looking through casts that preserve order.
/// Which casts of a column a pruning predicate may look through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CastRule {
    /// Those that keep the order of values (row-group and page statistics: a bound of the
    /// column is a bound of the cast).
    Monotonic,
    /// Those that keep values apart, too (an index looks up the literal as a value of the
    /// column: `CAST(x AS INT) = 5` must not become `x = 5` when `x` holds `5.3`).
    Injective,
}

fn pruning_column(expr: &Expr, schema: &PlanSchema, rule: CastRule) -> Option<String> {
    match expr {
        Expr::Column(c) => {
            let index = schema.try_index_of(c.relation.as_deref(), &c.name).ok()??;
            Some(schema.field(index).name().to_string())
        }
        Expr::Cast { expr: inner, to } => {
            let from = inner.data_type(schema).ok()?;
            let numeric = |t: &DataType| {
                t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _))
            };
            let string = |t: &DataType| {
                matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            };
            let date_to_timestamp =
                from == DataType::Date32 && matches!(to, DataType::Timestamp(_, _));
            let allowed = match rule {
                CastRule::Monotonic => {
                    (numeric(&from) && numeric(to))
                        || (string(&from) && string(to))
                        || date_to_timestamp
                }
                CastRule::Injective => {
                    injective_numeric(&from, to)
                        || (string(&from) && string(to))
                        || date_to_timestamp
                }
            };
            if allowed {
                pruning_column(inner, schema, rule)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Whether every value of numeric type `from` has its own value in `to` (a cast that never
/// rounds): integers into wider integers, small integers into doubles, integers into
/// decimals, decimals into decimals of no smaller scale.
fn injective_numeric(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let bits = |t: &DataType| match t {
        Int8 | UInt8 => 8,
        Int16 | UInt16 => 16,
        Int32 | UInt32 => 32,
        Int64 | UInt64 => 64,
        _ => 0,
    };
    match (from, to) {
        (f, t) if f.is_integer() && t.is_integer() => {
            bits(f) < bits(t)
                || (bits(f) == bits(t) && f.is_signed_integer() == t.is_signed_integer())
        }
        (f, Float64) if f.is_integer() => bits(f) <= 32,
        (f, Decimal128(p, s)) if f.is_integer() => (*p as i16 - *s as i16) >= 19,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && (*p2 as i16 - *s2 as i16) >= (*p1 as i16 - *s1 as i16)
        }
        _ => false,
    }
}

fn literal(expr: &Expr) -> Option<arrow::array::ArrayRef> {
    match expr {
        Expr::Literal(v) if !v.is_null() => Some(Arc::clone(v.array())),
        _ => None,
    }
}

fn cmp_op(op: BinaryOp) -> Option<CmpOp> {
    Some(match op {
        BinaryOp::Eq => CmpOp::Eq,
        BinaryOp::NotEq => CmpOp::NotEq,
        BinaryOp::Lt => CmpOp::Lt,
        BinaryOp::LtEq => CmpOp::LtEq,
        BinaryOp::Gt => CmpOp::Gt,
        BinaryOp::GtEq => CmpOp::GtEq,
        _ => return None,
    })
}

/// Translate a predicate over a scan's columns into a statistics-pruning expression.
/// Anything not understood becomes [`PruneExpr::Unknown`] (never prunes).
fn to_prune_expr(expr: &Expr, schema: &PlanSchema, rule: CastRule) -> PruneExpr {
    match expr {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => PruneExpr::And(vec![
            to_prune_expr(left, schema, rule),
            to_prune_expr(right, schema, rule),
        ]),
        Expr::Binary {
            left,
            op: BinaryOp::Or,
            right,
        } => PruneExpr::Or(vec![
            to_prune_expr(left, schema, rule),
            to_prune_expr(right, schema, rule),
        ]),
        Expr::Binary { left, op, right } if op.is_comparison() => {
            let Some(op_cmp) = cmp_op(*op) else {
                return PruneExpr::Unknown;
            };
            if let (Some(column), Some(value)) =
                (pruning_column(left, schema, rule), literal(right))
            {
                return PruneExpr::Compare {
                    column,
                    op: op_cmp,
                    value,
                };
            }
            if let (Some(column), Some(value)) =
                (pruning_column(right, schema, rule), literal(left))
            {
                let swapped = cmp_op(op.swap()).unwrap_or(op_cmp);
                return PruneExpr::Compare {
                    column,
                    op: swapped,
                    value,
                };
            }
            PruneExpr::Unknown
        }
        Expr::Not(inner) => PruneExpr::Not(Box::new(to_prune_expr(inner, schema, rule))),
        Expr::IsNull { expr, negated } => match pruning_column(expr, schema, rule) {
            Some(column) => PruneExpr::IsNull {
                column,
                negated: *negated,
            },
            None => PruneExpr::Unknown,
        },
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => match (
            pruning_column(expr, schema, rule),
            literal(low),
            literal(high),
        ) {
            (Some(column), Some(low), Some(high)) => PruneExpr::Between {
                column,
                low,
                high,
                negated: *negated,
            },
            _ => PruneExpr::Unknown,
        },
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let values: Option<Vec<_>> = list.iter().map(literal).collect();
            match (pruning_column(expr, schema, rule), values) {
                (Some(column), Some(values)) if values.len() == list.len() => PruneExpr::InList {
                    column,
                    values,
                    negated: *negated,
                },
                _ => PruneExpr::Unknown,
            }
        }
        Expr::Like {
            expr,
            pattern,
            negated: false,
            case_insensitive: false,
        } => match (pruning_column(expr, schema, rule), like_prefix(pattern)) {
            (Some(column), Some(prefix)) => PruneExpr::StartsWith { column, prefix },
            _ => PruneExpr::Unknown,
        },
        Expr::Alias { expr, .. } => to_prune_expr(expr, schema, rule),
        _ => PruneExpr::Unknown,
    }
}

/// The prefix of a `LIKE` pattern of the form `'prefix%'` (no other wildcard, no escape).
fn like_prefix(pattern: &Expr) -> Option<String> {
    let Expr::Literal(v) = pattern else {
        return None;
    };
    let array = v.array();
    let text = match array.data_type() {
        DataType::Utf8 => arrow::array::AsArray::as_string::<i32>(array.as_ref()).value(0),
        DataType::LargeUtf8 => arrow::array::AsArray::as_string::<i64>(array.as_ref()).value(0),
        DataType::Utf8View => arrow::array::AsArray::as_string_view(array.as_ref()).value(0),
        _ => return None,
    };
    let prefix = text.strip_suffix('%')?;
    (!prefix.is_empty() && !prefix.contains(['%', '_', '\\'])).then(|| prefix.to_string())
}

/// Bytes per chunk of a text scan: a sixteenth of the budget shared by the partitions (a
/// chunk and the batches decoded from it are held at once), between 1 and 8 MiB.
fn budget_chunk_bytes(limit: Option<usize>, partitions: usize) -> usize {
    const MAX: usize = 8 << 20;
    match limit {
        Some(limit) => (limit / 16 / partitions.max(1)).clamp(1 << 20, MAX),
        None => MAX,
    }
}

/// Rows per morsel under a memory budget. A scan partition keeps one morsel's compressed pages
/// mapped while it decodes them a batch at a time, so the morsels of all partitions together
/// are held to an eighth of the budget (from the footers' compressed bytes per row); never
/// fewer than 8192 rows (a batch) nor more than `max_rows`.
fn budget_morsel_rows(
    max_rows: usize,
    limit: Option<usize>,
    partitions: usize,
    compressed_bytes_per_row: Option<f64>,
) -> usize {
    let (Some(limit), Some(per_row)) = (limit, compressed_bytes_per_row) else {
        return max_rows;
    };
    let share = limit as f64 / 8.0 / partitions.max(1) as f64;
    let rows = (share / per_row.max(1.0)) as usize;
    rows.clamp(8192.min(max_rows), max_rows)
}

#[cfg(test)]
mod tests {
    use super::budget_morsel_rows;

    #[test]
    fn morsels_shrink_with_the_budget() {
        // 40 compressed bytes per row, two partitions.
        assert_eq!(budget_morsel_rows(131_072, None, 2, Some(40.0)), 131_072);
        assert_eq!(
            budget_morsel_rows(131_072, Some(1 << 30), 2, Some(40.0)),
            131_072
        );
        // 16 MiB: 1 MiB per partition → 26214 rows.
        assert_eq!(
            budget_morsel_rows(131_072, Some(16 << 20), 2, Some(40.0)),
            26_214
        );
        // Never below a batch.
        assert_eq!(
            budget_morsel_rows(131_072, Some(1 << 20), 2, Some(40.0)),
            8192
        );
        assert_eq!(budget_morsel_rows(1000, Some(1 << 20), 2, Some(40.0)), 1000);
    }
}
