//! Page-level pruning: within a row group that its statistics keep, the rows whose pages'
//! statistics (the Parquet column index) say the predicate may be TRUE there.
//!
//! The predicate's top-level conjuncts that mention a single column are evaluated with the
//! same three-valued logic as row groups ([`crate::prune`]), each page of that column being a
//! unit; a page is kept if the conjunct may be TRUE for one of its rows. The kept pages' row
//! ranges (from the offset index) of every such conjunct are intersected, since a row must
//! satisfy each conjunct. The result is a list of row ranges, which the scan reads as
//! morsels: the Parquet reader, given the offset index, skips the pages outside them without
//! reading or decompressing them. Conjuncts over several columns, and files without a page
//! index, keep every row; pruning is never allowed to be wrong.

use std::ops::Range;

use arrow::array::Array;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::page_index::PageIndexProvider;

use crate::dataset::{ParquetDataset, ParquetFile, RowGroupRef};
use crate::prune::{evaluate, ColumnStats, PruneExpr, StatsSource};

/// The rows of a row group that page statistics keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageSelection {
    /// Ranges of rows (within the row group), ascending and disjoint.
    pub rows: Vec<Range<usize>>,
    /// Pages of the pruning columns that overlap `rows`.
    pub pages_kept: usize,
    /// Pages of the pruning columns.
    pub pages_total: usize,
}

/// The pages of one column of one row group as units.
struct PageStats {
    column: String,
    stats: ColumnStats,
}

impl StatsSource for PageStats {
    fn units(&self) -> usize {
        self.stats.row_counts.len()
    }

    fn column(&self, name: &str) -> Option<ColumnStats> {
        (name == self.column).then(|| self.stats.clone())
    }
}

/// The pages of `column` in row group `rg` of `file`: their first rows and statistics.
fn page_stats(file: &ParquetFile, rg: usize, column: &str) -> Option<(Vec<usize>, PageStats)> {
    if file.partition_values.iter().any(|(k, _)| k == column) {
        return None;
    }
    let field = file.schema.field_with_name(column).ok()?;
    let index: &dyn PageIndexProvider = file.metadata.page_index()?.as_ref();
    let converter = StatisticsConverter::try_new(
        column,
        &file.schema,
        file.metadata.file_metadata().schema_descr(),
    )
    .ok()?;
    let leaf = converter.parquet_column_index()?;
    // Both halves of the page index: statistics (column index) and first rows (offset index).
    index.column_index(rg, leaf)?;
    let locations = index.offset_index(rg, leaf)?.page_locations();
    let rows = usize::try_from(file.metadata.row_group(rg).num_rows()).ok()?;
    let firsts: Vec<usize> = locations
        .iter()
        .map(|l| usize::try_from(l.first_row_index).ok())
        .collect::<Option<_>>()?;
    // First rows must ascend from 0 within the row group, or the index is not to be trusted.
    if firsts.first() != Some(&0)
        || firsts.windows(2).any(|w| w[0] >= w[1])
        || firsts.last().is_some_and(|&l| l >= rows)
    {
        return None;
    }
    let mins = converter.data_page_mins(index, [&rg]).ok()?;
    let maxes = converter.data_page_maxes(index, [&rg]).ok()?;
    let nulls = converter.data_page_null_counts(index, [&rg]).ok()?;
    let pages = firsts.len();
    if mins.len() != pages || maxes.len() != pages || nulls.len() != pages {
        return None;
    }
    let row_counts: Vec<u64> = (0..pages)
        .map(|i| page_rows(&firsts, i, rows).len() as u64)
        .collect();
    let null_counts = (0..pages)
        .map(|i| nulls.is_valid(i).then(|| nulls.value(i)))
        .collect();
    let (is_float, is_string) = ColumnStats::kind_of(field.data_type());
    Some((
        firsts,
        PageStats {
            column: column.to_string(),
            stats: ColumnStats {
                mins: Some(mins),
                maxes: Some(maxes),
                null_counts,
                row_counts,
                is_float,
                is_string,
            },
        },
    ))
}

/// The rows of page `page`, from the pages' first rows and the row group's `rows`.
fn page_rows(firsts: &[usize], page: usize, rows: usize) -> Range<usize> {
    firsts[page]..firsts.get(page + 1).copied().unwrap_or(rows)
}

/// `a ∩ b` for ascending, disjoint ranges.
pub fn intersect_ranges(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

impl ParquetDataset {
    /// The rows of row group `rg` whose pages may hold a row for which `predicate` is TRUE;
    /// `None` when page statistics cannot narrow it (no page index, no single-column
    /// conjunct).
    pub fn prune_pages(&self, rg: RowGroupRef, predicate: &PruneExpr) -> Option<PageSelection> {
        let file = self.files().get(rg.file)?;
        let rows = usize::try_from(file.metadata.row_group(rg.row_group).num_rows()).ok()?;
        let conjuncts = predicate.conjuncts();
        let schema = self.schema();
        let mut selected = Vec::from([Range {
            start: 0,
            end: rows,
        }]);
        // The first rows of the pages of each column pruned by.
        let mut columns_pages: Vec<(String, Vec<usize>)> = Vec::new();
        for conjunct in conjuncts {
            let columns = conjunct.columns();
            let [column] = columns.as_slice() else {
                continue;
            };
            // Columns outside the unified schema are unknown, as for row groups.
            if schema.field_with_name(column).is_err() {
                continue;
            }
            let Some((firsts, stats)) = page_stats(file, rg.row_group, column) else {
                continue;
            };
            let outcomes = evaluate(conjunct, &stats);
            let mut kept: Vec<Range<usize>> = Vec::new();
            for (page, outcome) in outcomes.iter().enumerate() {
                if !outcome.may_be_true {
                    continue;
                }
                let Range { start, end } = page_rows(&firsts, page, rows);
                match kept.last_mut() {
                    Some(last) if last.end == start => last.end = end,
                    _ => kept.push(start..end),
                }
            }
            selected = intersect_ranges(&selected, &kept);
            if !columns_pages.iter().any(|(c, _)| c == column) {
                columns_pages.push((column.clone(), firsts));
            }
        }
        if columns_pages.is_empty() {
            return None;
        }
        let pages_total = columns_pages.iter().map(|(_, f)| f.len()).sum();
        let pages_kept = columns_pages
            .iter()
            .map(|(_, firsts)| {
                (0..firsts.len())
                    .filter(|&p| {
                        let page = page_rows(firsts, p, rows);
                        selected
                            .iter()
                            .any(|r| r.start < page.end && page.start < r.end)
                    })
                    .count()
            })
            .sum();
        Some(PageSelection {
            rows: selected,
            pages_kept,
            pages_total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_intersect() {
        assert_eq!(
            intersect_ranges(&[0..10, 20..30], &[5..25, 28..40]),
            vec![5..10, 20..25, 28..30]
        );
        let all = Range { start: 0, end: 10 };
        assert_eq!(
            intersect_ranges(std::slice::from_ref(&all), &[]),
            Vec::<Range<usize>>::new()
        );
        let next = Range { start: 10, end: 20 };
        assert_eq!(
            intersect_ranges(std::slice::from_ref(&all), std::slice::from_ref(&next)),
            Vec::<Range<usize>>::new()
        );
    }
}
