//! Answering a predicate from a sidecar: the rows of the data file where it may be TRUE.
//!
//! The result is a superset of the rows where the predicate is TRUE (the filter above the scan
//! still runs): conjuncts the index cannot serve are left out of an `AND`, and a shape it
//! cannot serve at all gives no answer. Served: `=`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `IN`,
//! `IS NULL` and `LIKE 'prefix%'` on indexed columns, and `AND`/`OR` of these. Not served:
//! negations (`<>`, `NOT IN`, `NOT BETWEEN`, `IS NOT NULL`, `NOT`), which keep most rows.
//!
//! Every shape has a row budget: when the directory shows that its keys hold more rows than
//! the budget, it is not served (reading most of a file through a list of rows costs more
//! than scanning it), and nothing of its postings is read.

use std::ops::Bound;

use roaring::RoaringBitmap;

use super::format::{RowCollector, Sidecar};
use super::key::{literal_key, prefix_successor, KeyKind};
use crate::prune::{CmpOp, PruneExpr};

/// The rows of one data file that an index selects for a predicate.
#[derive(Clone, Debug)]
pub struct IndexMatch {
    /// Row positions in the file (0-based, across its row groups).
    pub rows: RoaringBitmap,
    /// The predicates the index served (as text, for EXPLAIN).
    pub served: Vec<String>,
}

impl Sidecar {
    /// The rows where `predicate` may be TRUE, if the index serves some of it within
    /// `max_rows` rows per served part; `Err` when the sidecar is damaged.
    pub fn select(
        &self,
        predicate: &PruneExpr,
        max_rows: u64,
    ) -> Result<Option<IndexMatch>, String> {
        Ok(self
            .eval(predicate, max_rows)?
            .map(|(rows, served)| IndexMatch { rows, served }))
    }

    fn eval(
        &self,
        expr: &PruneExpr,
        max_rows: u64,
    ) -> Result<Option<(RoaringBitmap, Vec<String>)>, String> {
        let served = |rows: Option<RoaringBitmap>| rows.map(|r| (r, vec![expr.to_string()]));
        match expr {
            PruneExpr::Compare { column, op, value } => {
                let Some((c, key)) = self.keyed(column, value) else {
                    return Ok(None);
                };
                let k = key.as_slice();
                let (low, high) = match op {
                    CmpOp::Eq => (Bound::Included(k), Bound::Included(k)),
                    CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(k)),
                    CmpOp::LtEq => (Bound::Unbounded, Bound::Included(k)),
                    CmpOp::Gt => (Bound::Excluded(k), Bound::Unbounded),
                    CmpOp::GtEq => (Bound::Included(k), Bound::Unbounded),
                    CmpOp::NotEq => return Ok(None),
                };
                Ok(served(self.rows_between(c, low, high, max_rows)?))
            }
            PruneExpr::Between {
                column,
                low,
                high,
                negated: false,
            } => {
                let (Some((c, lo)), Some((_, hi))) =
                    (self.keyed(column, low), self.keyed(column, high))
                else {
                    return Ok(None);
                };
                if lo > hi {
                    return Ok(served(Some(RoaringBitmap::new())));
                }
                Ok(served(self.rows_between(
                    c,
                    Bound::Included(&lo),
                    Bound::Included(&hi),
                    max_rows,
                )?))
            }
            PruneExpr::InList {
                column,
                values,
                negated: false,
            } => {
                let Some(c) = self.column(column) else {
                    return Ok(None);
                };
                let mut keys = Vec::with_capacity(values.len());
                for v in values {
                    match self.keyed(column, v) {
                        Some((_, k)) => keys.push(k),
                        None => return Ok(None),
                    }
                }
                keys.sort_unstable();
                keys.dedup();
                let mut rows = RowCollector::default();
                let mut count = 0u64;
                for k in &keys {
                    let Some(entries) = self.entries_between(
                        c,
                        Bound::Included(k),
                        Bound::Included(k),
                        max_rows - count,
                    )?
                    else {
                        return Ok(None);
                    };
                    for e in entries {
                        count += e.rows;
                        self.read_posting(c, &e.posting, &mut rows)?;
                    }
                }
                Ok(served(Some(rows.finish())))
            }
            PruneExpr::IsNull {
                column,
                negated: false,
            } => {
                let Some(c) = self.column(column) else {
                    return Ok(None);
                };
                let meta = &self.footer.columns[c];
                if meta.nulls > max_rows {
                    return Ok(None);
                }
                let mut rows = RowCollector::default();
                self.read_posting(c, &meta.null_posting, &mut rows)?;
                Ok(served(Some(rows.finish())))
            }
            PruneExpr::StartsWith { column, prefix } => {
                let Some(c) = self.column(column) else {
                    return Ok(None);
                };
                let meta = &self.footer.columns[c];
                let is_string = matches!(
                    meta.data_type,
                    arrow::datatypes::DataType::Utf8
                        | arrow::datatypes::DataType::LargeUtf8
                        | arrow::datatypes::DataType::Utf8View
                );
                if meta.kind != KeyKind::Bytes || !is_string {
                    return Ok(None);
                }
                let low = prefix.as_bytes();
                let high = prefix_successor(low);
                let high = match &high {
                    Some(h) => Bound::Excluded(h.as_slice()),
                    None => Bound::Unbounded,
                };
                Ok(served(self.rows_between(
                    c,
                    Bound::Included(low),
                    high,
                    max_rows,
                )?))
            }
            PruneExpr::And(parts) => {
                let mut acc: Option<(RoaringBitmap, Vec<String>)> = None;
                for part in parts {
                    if let Some((rows, served)) = self.eval(part, max_rows)? {
                        acc = Some(match acc {
                            None => (rows, served),
                            Some((mut all, mut names)) => {
                                all &= rows;
                                names.extend(served);
                                (all, names)
                            }
                        });
                    }
                }
                Ok(acc)
            }
            PruneExpr::Or(parts) => {
                let mut all = RoaringBitmap::new();
                let mut names = Vec::new();
                for part in parts {
                    let Some((rows, served)) = self.eval(part, max_rows)? else {
                        return Ok(None);
                    };
                    all |= rows;
                    if all.len() > max_rows {
                        return Ok(None);
                    }
                    names.extend(served);
                }
                Ok(Some((all, vec![format!("({})", names.join(" OR "))])))
            }
            _ => Ok(None),
        }
    }

    /// The column's position and the key of `value` in it, if the column is indexed and the
    /// value has an exact counterpart in its type.
    fn keyed(&self, column: &str, value: &arrow::array::ArrayRef) -> Option<(usize, Vec<u8>)> {
        let c = self.column(column)?;
        let meta = &self.footer.columns[c];
        let key = literal_key(value, &meta.data_type)?;
        Some((c, key))
    }

    fn rows_between(
        &self,
        column: usize,
        low: Bound<&[u8]>,
        high: Bound<&[u8]>,
        max_rows: u64,
    ) -> Result<Option<RoaringBitmap>, String> {
        let Some(entries) = self.entries_between(column, low, high, max_rows)? else {
            return Ok(None);
        };
        let mut rows = RowCollector::default();
        for e in &entries {
            self.read_posting(column, &e.posting, &mut rows)?;
        }
        Ok(Some(rows.finish()))
    }
}
