//! Aligned text tables for terminals, and [`TableCut`], which keeps the first rows of a
//! stream for one while counting them all.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::FormatOptions;
use arrow::util::pretty::pretty_format_batches_with_options;

use crate::error::Result;

/// The terminal table shows at most this many rows.
pub const TABLE_MAX_ROWS: usize = 10_000;

/// Format batches as an aligned table, with a footer giving the row count (and how many of
/// the `total_rows` rows are shown, when not all are).
pub fn format_table(batches: &[RecordBatch], total_rows: usize) -> Result<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = pretty_format_batches_with_options(batches, &options)?.to_string();
    let shown: usize = batches.iter().map(|b| b.num_rows()).sum();
    if shown < total_rows {
        out.push_str(&format!("\n({total_rows} rows, first {shown} shown)"));
    } else {
        out.push_str(&format!(
            "\n({total_rows} row{})",
            if total_rows == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}

/// The first rows of a stream of batches, kept for a table, and the count of all rows seen.
/// Only the kept rows are held: a stream of any length passes through in bounded memory.
#[derive(Debug)]
pub struct TableCut {
    schema: SchemaRef,
    max_rows: usize,
    shown: Vec<RecordBatch>,
    shown_rows: usize,
    total_rows: usize,
}

impl TableCut {
    /// Keep at most `max_rows` rows of batches of `schema`.
    pub fn new(schema: SchemaRef, max_rows: usize) -> Self {
        Self {
            schema,
            max_rows,
            shown: Vec::new(),
            shown_rows: 0,
            total_rows: 0,
        }
    }

    /// Count `batch` and keep the part of it that still fits.
    pub fn push(&mut self, batch: &RecordBatch) {
        self.total_rows += batch.num_rows();
        let take = (self.max_rows - self.shown_rows).min(batch.num_rows());
        if take > 0 {
            self.shown.push(batch.slice(0, take));
            self.shown_rows += take;
        }
    }

    /// Count `rows` more rows without their batches (the rest of a result whose size is
    /// known without reading it).
    pub fn count_unseen(&mut self, rows: usize) {
        self.total_rows += rows;
    }

    /// Rows seen so far.
    pub fn total_rows(&self) -> usize {
        self.total_rows
    }

    /// True when rows were seen that are not kept.
    pub fn is_cut(&self) -> bool {
        self.shown_rows < self.total_rows
    }

    /// The kept rows as an aligned table with its footer.
    pub fn format(&self) -> Result<String> {
        if self.shown.is_empty() {
            let empty = RecordBatch::new_empty(self.schema.clone());
            return format_table(&[empty], self.total_rows);
        }
        format_table(&self.shown, self.total_rows)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_cut_keeps_the_first_rows_and_counts_all() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = |from: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(from..from + 4))],
            )
            .unwrap()
        };
        let mut cut = TableCut::new(schema.clone(), 6);
        for from in [0, 4, 8] {
            cut.push(&batch(from));
        }
        assert_eq!(cut.total_rows(), 12);
        assert!(cut.is_cut());
        let text = cut.format().unwrap();
        assert!(text.contains("| 5 |") && !text.contains("| 6 |"), "{text}");
        assert!(text.ends_with("(12 rows, first 6 shown)"), "{text}");
        let empty = TableCut::new(schema, 6);
        assert!(empty.format().unwrap().ends_with("(0 rows)"));
    }
}
