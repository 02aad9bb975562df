//! Statistics-based pruning with SQL's three-valued logic.
//!
//! For each row group we compute a [`PruneOutcome`]: whether the predicate may be TRUE for some
//! row and whether it may be FALSE for some row (rows where it is NULL count as neither). Leaves
//! use min/max/null-count statistics; `NOT` swaps the two flags, `AND`/`OR` combine them. A row
//! group is read only if `may_be_true`. Missing statistics, unknown columns or literals that
//! cannot be compared always give `{true, true}`: pruning is never allowed to be wrong.
//!
//! Floating-point statistics exclude NaN, which SQL orders above every number, so for float
//! columns only upper-bound tests (`<`, `<=`, `=`) may prune.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Scalar, UInt64Array};
use arrow::compute::kernels::cmp;
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;

use crate::dataset::{ParquetDataset, ParquetFile, RowGroupRef};

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

/// A predicate the pruner understands.
#[derive(Clone, Debug)]
pub enum PruneExpr {
    /// `column op value` (value: a non-null length-1 array).
    Compare {
        /// Column name in the data set's schema.
        column: String,
        /// Operator.
        op: CmpOp,
        /// Literal.
        value: ArrayRef,
    },
    /// `column [NOT] BETWEEN low AND high`.
    Between {
        /// Column.
        column: String,
        /// Lower bound.
        low: ArrayRef,
        /// Upper bound.
        high: ArrayRef,
        /// NOT BETWEEN.
        negated: bool,
    },
    /// `column [NOT] IN (values)`.
    InList {
        /// Column.
        column: String,
        /// Values.
        values: Vec<ArrayRef>,
        /// NOT IN.
        negated: bool,
    },
    /// `column LIKE 'prefix%'` (a string column; the prefix has no wildcard).
    StartsWith {
        /// Column.
        column: String,
        /// The characters every matching value starts with.
        prefix: String,
    },
    /// `column IS [NOT] NULL`.
    IsNull {
        /// Column.
        column: String,
        /// IS NOT NULL.
        negated: bool,
    },
    /// All must hold.
    And(Vec<PruneExpr>),
    /// One must hold.
    Or(Vec<PruneExpr>),
    /// Negation.
    Not(Box<PruneExpr>),
    /// Not understood: never prunes.
    Unknown,
}

/// What statistics say a predicate may evaluate to within a row group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Some row may make the predicate TRUE.
    pub may_be_true: bool,
    /// Some row may make the predicate FALSE.
    pub may_be_false: bool,
}

const UNKNOWN: PruneOutcome = PruneOutcome {
    may_be_true: true,
    may_be_false: true,
};

/// Pruning decisions for EXPLAIN.
#[derive(Clone, Debug, Default)]
pub struct PruneStats {
    /// Per file.
    pub files: Vec<FilePruneStats>,
}

/// Pruning decisions for one file.
#[derive(Clone, Debug)]
pub struct FilePruneStats {
    /// The file.
    pub path: PathBuf,
    /// Row groups in the file.
    pub row_groups_total: usize,
    /// Row groups that will be read.
    pub row_groups_kept: usize,
    /// The whole file was skipped because of its hive partition values.
    pub file_pruned_by_partition: bool,
    /// Pages of the pruning columns, in the row groups kept, that page statistics keep
    /// (see [`ParquetDataset::prune_pages`]; 0 of 0 when none were consulted).
    pub pages_kept: usize,
    /// Pages of the pruning columns in the row groups kept, where page statistics exist.
    pub pages_total: usize,
    /// Row groups kept by their statistics that bloom filters then ruled out.
    pub row_groups_bloom_pruned: usize,
}

impl PruneExpr {
    /// The top-level conjuncts: the parts of an `AND`, or the expression itself.
    pub(crate) fn conjuncts(&self) -> Vec<&PruneExpr> {
        match self {
            PruneExpr::And(parts) => parts.iter().collect(),
            other => vec![other],
        }
    }

    /// Columns the predicate mentions.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_columns(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_columns(&self, out: &mut Vec<String>) {
        match self {
            PruneExpr::Compare { column, .. }
            | PruneExpr::Between { column, .. }
            | PruneExpr::InList { column, .. }
            | PruneExpr::IsNull { column, .. }
            | PruneExpr::StartsWith { column, .. } => out.push(column.clone()),
            PruneExpr::And(parts) | PruneExpr::Or(parts) => {
                parts.iter().for_each(|p| p.collect_columns(out))
            }
            PruneExpr::Not(inner) => inner.collect_columns(out),
            PruneExpr::Unknown => {}
        }
    }
}

fn literal_text(a: &ArrayRef) -> String {
    let options = arrow::util::display::FormatOptions::default();
    arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &options)
        .map(|f| f.value(0).to_string())
        .unwrap_or_else(|_| "?".into())
}

impl fmt::Display for PruneExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |parts: &[PruneExpr], sep: &str| {
            parts
                .iter()
                .map(|p| format!("{p}"))
                .collect::<Vec<_>>()
                .join(sep)
        };
        match self {
            PruneExpr::Compare { column, op, value } => {
                write!(f, "{column} {} {}", op.symbol(), literal_text(value))
            }
            PruneExpr::Between {
                column,
                low,
                high,
                negated,
            } => write!(
                f,
                "{column} {}BETWEEN {} AND {}",
                if *negated { "NOT " } else { "" },
                literal_text(low),
                literal_text(high)
            ),
            PruneExpr::InList {
                column,
                values,
                negated,
            } => write!(
                f,
                "{column} {}IN ({})",
                if *negated { "NOT " } else { "" },
                values
                    .iter()
                    .map(literal_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            PruneExpr::IsNull { column, negated } => {
                write!(f, "{column} IS {}NULL", if *negated { "NOT " } else { "" })
            }
            PruneExpr::And(parts) => write!(f, "({})", join(parts, " AND ")),
            PruneExpr::Or(parts) => write!(f, "({})", join(parts, " OR ")),
            PruneExpr::Not(inner) => write!(f, "NOT {inner}"),
            PruneExpr::StartsWith { column, prefix } => {
                write!(f, "{column} LIKE '{}%'", prefix.replace('\'', "''"))
            }
            PruneExpr::Unknown => f.write_str("?"),
        }
    }
}

/// Statistics of one column over the units of a [`StatsSource`] (row groups, or pages).
#[derive(Clone)]
pub(crate) struct ColumnStats {
    pub(crate) mins: Option<ArrayRef>,
    pub(crate) maxes: Option<ArrayRef>,
    pub(crate) null_counts: Vec<Option<u64>>,
    pub(crate) row_counts: Vec<u64>,
    pub(crate) is_float: bool,
    pub(crate) is_string: bool,
}

impl ColumnStats {
    /// Whether statistics of `data_type` hold floats (NaN is outside them) or strings (they
    /// may be truncated).
    pub(crate) fn kind_of(data_type: &DataType) -> (bool, bool) {
        (
            data_type.is_floating(),
            matches!(
                data_type,
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Binary
                    | DataType::LargeBinary
                    | DataType::BinaryView
            ),
        )
    }
}

/// Units a predicate is evaluated over, each with statistics per column: a file's row groups,
/// or the pages of one column of a row group.
pub(crate) trait StatsSource {
    /// Number of units.
    fn units(&self) -> usize;
    /// Statistics of `name` per unit; `None` when unknown (the unit may then hold anything).
    fn column(&self, name: &str) -> Option<ColumnStats>;
}

/// Statistics source for one file.
struct FileStats<'a> {
    file: &'a ParquetFile,
    /// The data set's unified schema: columns outside it are unknown, never "all NULL".
    known: &'a arrow::datatypes::Schema,
}

impl StatsSource for FileStats<'_> {
    fn units(&self) -> usize {
        self.file.metadata.num_row_groups()
    }

    fn column(&self, name: &str) -> Option<ColumnStats> {
        self.column_stats(name)
    }
}

impl FileStats<'_> {
    fn num_row_groups(&self) -> usize {
        self.file.metadata.num_row_groups()
    }

    fn row_counts(&self) -> Vec<u64> {
        self.file
            .metadata
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows().max(0) as u64)
            .collect()
    }

    fn column_stats(&self, name: &str) -> Option<ColumnStats> {
        self.known.field_with_name(name).ok()?;
        let n = self.num_row_groups();
        let row_counts = self.row_counts();
        if let Some((_, value)) = self.file.partition_values.iter().find(|(k, _)| k == name) {
            let repeated = repeat(value, n)?;
            let null = value.is_null(0);
            return Some(ColumnStats {
                mins: Some(Arc::clone(&repeated)),
                maxes: Some(repeated),
                null_counts: row_counts
                    .iter()
                    .map(|&r| Some(if null { r } else { 0 }))
                    .collect(),
                row_counts,
                is_float: false,
                is_string: false,
            });
        }
        let Ok(field) = self.file.schema.field_with_name(name) else {
            // Column absent from this file: every value is NULL.
            return Some(ColumnStats {
                mins: None,
                maxes: None,
                null_counts: row_counts.iter().map(|&r| Some(r)).collect(),
                row_counts,
                is_float: false,
                is_string: false,
            });
        };
        let data_type = field.data_type().clone();
        let converter = StatisticsConverter::try_new(
            name,
            &self.file.schema,
            self.file.metadata.file_metadata().schema_descr(),
        )
        .ok()?;
        let groups = self.file.metadata.row_groups();
        let mins = converter.row_group_mins(groups.iter()).ok();
        let maxes = converter.row_group_maxes(groups.iter()).ok();
        let null_counts: Vec<Option<u64>> = match converter.row_group_null_counts(groups.iter()) {
            Ok(a) => (0..n).map(|i| a.is_valid(i).then(|| a.value(i))).collect(),
            Err(_) => vec![None; n],
        };
        let (is_float, is_string) = ColumnStats::kind_of(&data_type);
        Some(ColumnStats {
            mins,
            maxes,
            null_counts,
            row_counts,
            is_float,
            is_string,
        })
    }
}

fn repeat(value: &ArrayRef, n: usize) -> Option<ArrayRef> {
    let indices = UInt64Array::from(vec![0u64; n]);
    arrow::compute::take(value.as_ref(), &indices, None).ok()
}

/// `value` (a length-1 array) as `target`, if it converts exactly (and back): `None` for a
/// value with no exact counterpart there, a NULL or a failed conversion.
pub fn exact_cast(value: &ArrayRef, target: &DataType) -> Option<ArrayRef> {
    cast_literal(value, target)
}

/// Cast `value` to `target` only if the cast is exact (round-trips).
pub(crate) fn cast_literal(value: &ArrayRef, target: &DataType) -> Option<ArrayRef> {
    if value.data_type() == target {
        return Some(Arc::clone(value));
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let cast = cast_with_options(value, target, &options).ok()?;
    if cast.is_null(0) {
        return None;
    }
    let back = cast_with_options(&cast, value.data_type(), &options).ok()?;
    (back.to_data() == value.to_data()).then_some(cast)
}

/// Per row group: `Some(bool)` from a comparison of a statistics array with a literal.
fn compare(stats: &Option<ArrayRef>, op: CmpOp, value: &ArrayRef, n: usize) -> Vec<Option<bool>> {
    let Some(stats) = stats else {
        return vec![None; n];
    };
    let Some(literal) = cast_literal(value, stats.data_type()) else {
        return vec![None; n];
    };
    let scalar = Scalar::new(literal);
    let result: Result<BooleanArray, _> = match op {
        CmpOp::Eq => cmp::eq(stats, &scalar),
        CmpOp::NotEq => cmp::neq(stats, &scalar),
        CmpOp::Lt => cmp::lt(stats, &scalar),
        CmpOp::LtEq => cmp::lt_eq(stats, &scalar),
        CmpOp::Gt => cmp::gt(stats, &scalar),
        CmpOp::GtEq => cmp::gt_eq(stats, &scalar),
    };
    match result {
        Ok(b) => (0..n).map(|i| b.is_valid(i).then(|| b.value(i))).collect(),
        Err(_) => vec![None; n],
    }
}

/// Most values of an `IN` list evaluated one by one; a longer list is evaluated through its
/// smallest and largest value (one comparison per unit instead of one per value and unit: a
/// million keys against the page statistics of a file took minutes).
const LONG_IN_LIST: usize = 64;

/// The smallest and largest non-NULL value of an `IN` list whose values share one type
/// (`None` otherwise, or when none is non-NULL).
fn list_bounds(values: &[ArrayRef]) -> Option<(ArrayRef, ArrayRef)> {
    let first = values.first()?.data_type().clone();
    if values.iter().any(|v| v.data_type() != &first) {
        return None;
    }
    let refs: Vec<&dyn Array> = values.iter().map(|v| v.as_ref()).collect();
    let all = arrow::compute::concat(&refs).ok()?;
    let options = arrow::compute::SortOptions {
        descending: false,
        nulls_first: false,
    };
    let order = arrow::compute::sort_to_indices(&all, Some(options), None).ok()?;
    // NULLs sort last: the first index is the smallest value, the last non-NULL the largest.
    let valid = all.len() - all.null_count();
    if valid == 0 {
        return None;
    }
    let low = all.slice(order.value(0) as usize, 1);
    let high = all.slice(order.value(valid - 1) as usize, 1);
    Some((low, high))
}

/// What `expr` may evaluate to in each unit of `stats`.
pub(crate) fn evaluate(expr: &PruneExpr, stats: &dyn StatsSource) -> Vec<PruneOutcome> {
    let n = stats.units();
    match expr {
        // Statistics of strings may be truncated; a prefix is only served by indexes.
        PruneExpr::Unknown | PruneExpr::StartsWith { .. } => vec![UNKNOWN; n],
        PruneExpr::Not(inner) => evaluate(inner, stats)
            .into_iter()
            .map(|o| PruneOutcome {
                may_be_true: o.may_be_false,
                may_be_false: o.may_be_true,
            })
            .collect(),
        PruneExpr::And(parts) => {
            let mut acc = vec![
                PruneOutcome {
                    may_be_true: true,
                    may_be_false: false
                };
                n
            ];
            for part in parts {
                for (a, o) in acc.iter_mut().zip(evaluate(part, stats)) {
                    a.may_be_true &= o.may_be_true;
                    a.may_be_false |= o.may_be_false;
                }
            }
            acc
        }
        PruneExpr::Or(parts) => {
            let mut acc = vec![
                PruneOutcome {
                    may_be_true: false,
                    may_be_false: true
                };
                n
            ];
            for part in parts {
                for (a, o) in acc.iter_mut().zip(evaluate(part, stats)) {
                    a.may_be_true |= o.may_be_true;
                    a.may_be_false &= o.may_be_false;
                }
            }
            acc
        }
        PruneExpr::Between {
            column,
            low,
            high,
            negated,
        } => {
            let both = PruneExpr::And(vec![
                PruneExpr::Compare {
                    column: column.clone(),
                    op: CmpOp::GtEq,
                    value: Arc::clone(low),
                },
                PruneExpr::Compare {
                    column: column.clone(),
                    op: CmpOp::LtEq,
                    value: Arc::clone(high),
                },
            ]);
            evaluate(
                &if *negated {
                    PruneExpr::Not(Box::new(both))
                } else {
                    both
                },
                stats,
            )
        }
        PruneExpr::InList {
            column,
            values,
            negated,
        } if values.len() > LONG_IN_LIST => match list_bounds(values) {
            // `col IN (v1..vn)` may be TRUE only where `col BETWEEN min AND max` may be; that
            // it is FALSE is not known (the list has gaps). NOT IN swaps the two.
            Some((low, high)) => evaluate(
                &PruneExpr::Between {
                    column: column.clone(),
                    low,
                    high,
                    negated: false,
                },
                stats,
            )
            .into_iter()
            .map(|o| match negated {
                false => PruneOutcome {
                    may_be_true: o.may_be_true,
                    may_be_false: true,
                },
                true => PruneOutcome {
                    may_be_true: true,
                    may_be_false: o.may_be_true,
                },
            })
            .collect(),
            None => vec![UNKNOWN; n],
        },
        PruneExpr::InList {
            column,
            values,
            negated,
        } => {
            let any = PruneExpr::Or(
                values
                    .iter()
                    .map(|v| PruneExpr::Compare {
                        column: column.clone(),
                        op: CmpOp::Eq,
                        value: Arc::clone(v),
                    })
                    .collect(),
            );
            evaluate(
                &if *negated {
                    PruneExpr::Not(Box::new(any))
                } else {
                    any
                },
                stats,
            )
        }
        PruneExpr::IsNull { column, negated } => {
            let Some(col) = stats.column(column) else {
                return vec![UNKNOWN; n];
            };
            (0..n)
                .map(|i| {
                    let (has_null, has_value) = match col.null_counts[i] {
                        Some(nulls) => (nulls > 0, nulls < col.row_counts[i]),
                        None => (true, true),
                    };
                    if *negated {
                        PruneOutcome {
                            may_be_true: has_value,
                            may_be_false: has_null,
                        }
                    } else {
                        PruneOutcome {
                            may_be_true: has_null,
                            may_be_false: has_value,
                        }
                    }
                })
                .collect()
        }
        PruneExpr::Compare { column, op, value } => {
            if value.is_empty() || value.is_null(0) {
                return vec![UNKNOWN; n];
            }
            let Some(col) = stats.column(column) else {
                return vec![UNKNOWN; n];
            };
            // The outcome flags for each op, from (min ? v) and (max ? v) comparisons.
            let (lt_min, le_min, eq_min, ge_max, gt_max, eq_max) = (
                compare(&col.mins, CmpOp::Lt, value, n),    // min < v
                compare(&col.mins, CmpOp::LtEq, value, n),  // min <= v
                compare(&col.mins, CmpOp::Eq, value, n),    // min == v
                compare(&col.maxes, CmpOp::GtEq, value, n), // max >= v
                compare(&col.maxes, CmpOp::Gt, value, n),   // max > v
                compare(&col.maxes, CmpOp::Eq, value, n),   // max == v
            );
            (0..n)
                .map(|i| {
                    let all_null = col.null_counts[i] == Some(col.row_counts[i]);
                    if all_null {
                        return PruneOutcome {
                            may_be_true: false,
                            may_be_false: false,
                        };
                    }
                    let t = |x: Option<bool>| x.unwrap_or(true);
                    let mut outcome = match op {
                        CmpOp::Gt => PruneOutcome {
                            may_be_true: t(gt_max[i]),
                            may_be_false: t(le_min[i]),
                        },
                        CmpOp::GtEq => PruneOutcome {
                            may_be_true: t(ge_max[i]),
                            may_be_false: t(lt_min[i]),
                        },
                        CmpOp::Lt => PruneOutcome {
                            may_be_true: t(lt_min[i]),
                            may_be_false: t(ge_max[i]),
                        },
                        CmpOp::LtEq => PruneOutcome {
                            may_be_true: t(le_min[i]),
                            may_be_false: t(gt_max[i]),
                        },
                        CmpOp::Eq => PruneOutcome {
                            may_be_true: t(le_min[i]) && t(ge_max[i]),
                            may_be_false: !(eq_min[i] == Some(true) && eq_max[i] == Some(true)),
                        },
                        CmpOp::NotEq => PruneOutcome {
                            may_be_true: !(eq_min[i] == Some(true) && eq_max[i] == Some(true)),
                            may_be_false: t(le_min[i]) && t(ge_max[i]),
                        },
                    };
                    if col.is_float {
                        // NaN is not in the statistics but sorts above every number.
                        if matches!(op, CmpOp::Gt | CmpOp::GtEq | CmpOp::NotEq) {
                            outcome.may_be_true = true;
                        }
                        outcome.may_be_false = true;
                    }
                    if col.is_string && matches!(op, CmpOp::Eq | CmpOp::NotEq) {
                        // String statistics may be truncated: bounds, not exact values.
                        outcome.may_be_false = true;
                        outcome.may_be_true |= *op == CmpOp::NotEq;
                    }
                    outcome
                })
                .collect()
        }
    }
}

impl ParquetDataset {
    /// The row groups that may contain a row for which `predicate` is TRUE, with per-file
    /// statistics of the decision.
    pub fn prune(&self, predicate: &PruneExpr) -> (Vec<RowGroupRef>, PruneStats) {
        let schema = self.schema();
        let mut kept = Vec::new();
        let mut stats = PruneStats::default();
        for (file_index, file) in self.files().iter().enumerate() {
            let total = file.metadata.num_row_groups();
            let outcomes = if matches!(predicate, PruneExpr::Unknown) {
                vec![UNKNOWN; total]
            } else {
                evaluate(
                    predicate,
                    &FileStats {
                        file,
                        known: &schema,
                    },
                )
            };
            let mut file_kept = 0;
            for (row_group, outcome) in outcomes.iter().enumerate() {
                if outcome.may_be_true {
                    kept.push(RowGroupRef {
                        file: file_index,
                        row_group,
                    });
                    file_kept += 1;
                }
            }
            let columns = predicate.columns();
            let by_partition = file_kept == 0
                && total > 0
                && !columns.is_empty()
                && columns
                    .iter()
                    .all(|c| file.partition_values.iter().any(|(k, _)| k == c));
            stats.files.push(FilePruneStats {
                path: file.path.clone(),
                row_groups_total: total,
                row_groups_kept: file_kept,
                file_pruned_by_partition: by_partition,
                pages_kept: 0,
                pages_total: 0,
                row_groups_bloom_pruned: 0,
            });
        }
        (kept, stats)
    }

    /// Whether one row group may contain a row for which `predicate` is TRUE.
    pub fn row_group_may_match(&self, rg: RowGroupRef, predicate: &PruneExpr) -> bool {
        let schema = self.schema();
        let Some(file) = self.files().get(rg.file) else {
            return true;
        };
        evaluate(
            predicate,
            &FileStats {
                file,
                known: &schema,
            },
        )
        .get(rg.row_group)
        .is_none_or(|o| o.may_be_true)
    }
}

impl ParquetDataset {
    /// Reorder `row_groups` so that those most likely to hold the first rows of an
    /// `ORDER BY column [DESC]` come first: by descending max for `DESC`, ascending min
    /// otherwise. Row groups without statistics go last. Used by top-k, whose bound then
    /// tightens immediately and lets the remaining row groups be skipped.
    pub fn order_row_groups(&self, row_groups: &mut [RowGroupRef], column: &str, descending: bool) {
        let schema = self.schema();
        let mut keyed: Vec<(RowGroupRef, Option<ArrayRef>)> = Vec::with_capacity(row_groups.len());
        let mut per_file: std::collections::HashMap<usize, Option<ArrayRef>> =
            std::collections::HashMap::new();
        for &rg in row_groups.iter() {
            let bounds = per_file.entry(rg.file).or_insert_with(|| {
                let file = &self.files()[rg.file];
                let stats = FileStats {
                    file,
                    known: &schema,
                }
                .column(column)?;
                if descending {
                    stats.maxes
                } else {
                    stats.mins
                }
            });
            let value = bounds
                .as_ref()
                .filter(|b| rg.row_group < b.len() && b.is_valid(rg.row_group))
                .map(|b| b.slice(rg.row_group, 1));
            keyed.push((rg, value));
        }
        let values: Vec<&dyn Array> = keyed.iter().filter_map(|(_, v)| v.as_deref()).collect();
        let Ok(all) = arrow::compute::concat(&values) else {
            return;
        };
        let options = arrow::compute::SortOptions {
            descending,
            nulls_first: false,
        };
        let Ok(order) = arrow::compute::sort_to_indices(&all, Some(options), None) else {
            return;
        };
        let with_stats: Vec<RowGroupRef> = keyed
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(rg, _)| *rg)
            .collect();
        let mut ordered: Vec<RowGroupRef> = order
            .values()
            .iter()
            .map(|&i| with_stats[i as usize])
            .collect();
        ordered.extend(keyed.iter().filter(|(_, v)| v.is_none()).map(|(rg, _)| *rg));
        row_groups.copy_from_slice(&ordered);
    }
}

impl ParquetDataset {
    /// The smallest and largest value of an integer or date column over all row groups, from
    /// the footer statistics (`None` when a row group has no statistics for it). Used by the
    /// optimizer to bound a join key's number of distinct values.
    pub fn integer_range(&self, column: &str) -> Option<(i64, i64)> {
        let schema = self.schema();
        let field = schema.field_with_name(column).ok()?;
        if !(field.data_type().is_integer() || matches!(field.data_type(), DataType::Date32)) {
            return None;
        }
        let mut range: Option<(i64, i64)> = None;
        for file in self.files() {
            let stats = FileStats {
                file,
                known: &schema,
            };
            let column = stats.column(column)?;
            let as_i64 = |a: &ArrayRef| -> Option<Vec<Option<i64>>> {
                let cast = arrow::compute::cast(a, &DataType::Int64).ok()?;
                let ints = cast.as_any().downcast_ref::<arrow::array::Int64Array>()?;
                Some(ints.iter().collect())
            };
            let mins = as_i64(column.mins.as_ref()?)?;
            let maxes = as_i64(column.maxes.as_ref()?)?;
            for (lo, hi) in mins.into_iter().zip(maxes) {
                let (lo, hi) = (lo?, hi?);
                range = Some(match range {
                    None => (lo, hi),
                    Some((a, b)) => (a.min(lo), b.max(hi)),
                });
            }
        }
        range
    }
}

impl ParquetDataset {
    /// The `[min, max]` bounds of an integer or date `column` in each of `row_groups` (in
    /// their order), from the footer statistics. `None` when a row group lacks a bound or may
    /// hold a NULL, or when the column is of another type. Used to find row groups whose
    /// ranges of a group key are disjoint.
    pub fn row_group_key_bounds(
        &self,
        row_groups: &[RowGroupRef],
        column: &str,
    ) -> Option<Vec<(i64, i64)>> {
        let schema = self.schema();
        let field = schema.field_with_name(column).ok()?;
        if !(field.data_type().is_integer()
            || matches!(field.data_type(), DataType::Date32 | DataType::Date64))
        {
            return None;
        }
        type Bounds = Option<Vec<Option<(i64, i64)>>>;
        let mut per_file: std::collections::HashMap<usize, Bounds> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(row_groups.len());
        for rg in row_groups {
            let bounds = per_file.entry(rg.file).or_insert_with(|| {
                let file = self.files().get(rg.file)?;
                let stats = FileStats {
                    file,
                    known: &schema,
                }
                .column(column)?;
                let as_i64 = |a: &ArrayRef| -> Option<Vec<Option<i64>>> {
                    let cast = arrow::compute::cast(a, &DataType::Int64).ok()?;
                    let ints = cast.as_any().downcast_ref::<arrow::array::Int64Array>()?;
                    Some(ints.iter().collect())
                };
                let mins = as_i64(stats.mins.as_ref()?)?;
                let maxes = as_i64(stats.maxes.as_ref()?)?;
                let bounds = mins
                    .into_iter()
                    .zip(maxes)
                    .zip(&stats.null_counts)
                    .map(|((lo, hi), nulls)| match (lo, hi, nulls) {
                        (Some(lo), Some(hi), Some(0)) if lo <= hi => Some((lo, hi)),
                        _ => None,
                    })
                    .collect();
                Some(bounds)
            });
            out.push(*bounds.as_ref()?.get(rg.row_group)?.as_ref()?);
        }
        Some(out)
    }
}
