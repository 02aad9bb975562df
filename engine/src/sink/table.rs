//! Aligned text tables for terminals.

use arrow::array::RecordBatch;
use arrow::util::display::FormatOptions;
use arrow::util::pretty::pretty_format_batches_with_options;

use crate::error::Result;

/// The terminal table shows at most this many rows; use `--format csv` or `-o` for all.
pub const TABLE_MAX_ROWS: usize = 10_000;

/// Format batches as an aligned table, with a footer giving the row count.
pub fn format_table(batches: &[RecordBatch], total_rows: usize) -> Result<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = pretty_format_batches_with_options(batches, &options)?.to_string();
    let shown: usize = batches.iter().map(|b| b.num_rows()).sum();
    if shown < total_rows {
        out.push_str(&format!(
            "\n({total_rows} rows, first {shown} shown; use --format csv or -o FILE for all)"
        ));
    } else {
        out.push_str(&format!(
            "\n({total_rows} row{})",
            if total_rows == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}
