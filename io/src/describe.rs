//! Human-readable description of a data set for `ooc schema`.

use std::fmt::Write;

use arrow::array::{Array, ArrayRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;

use crate::dataset::ParquetDataset;

fn cell(array: &Option<ArrayRef>, i: usize) -> String {
    let Some(a) = array else { return "-".into() };
    if i >= a.len() || a.is_null(i) {
        return "-".into();
    }
    let options = FormatOptions::default();
    let text = ArrayFormatter::try_new(a.as_ref(), &options)
        .map(|f| f.value(i).to_string())
        .unwrap_or_default();
    if text.chars().count() > 32 {
        format!("{}…", text.chars().take(31).collect::<String>())
    } else {
        text
    }
}

/// Name, per-row-group minimums, maximums and null counts of one column.
type ColumnStatistics = (
    String,
    Option<ArrayRef>,
    Option<ArrayRef>,
    Option<arrow::array::UInt64Array>,
);

/// Schema, row counts and per-row-group statistics of every file.
pub fn describe(dataset: &ParquetDataset) -> String {
    let mut out = String::new();
    let schema = dataset.schema();
    let _ = writeln!(out, "schema ({} columns):", schema.fields().len());
    for f in schema.fields() {
        let partition = if dataset.partition_columns().contains(f.name()) {
            "  (hive partition)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<24} {}{}{}",
            f.name(),
            f.data_type(),
            if f.is_nullable() { "" } else { " NOT NULL" },
            partition
        );
    }
    let _ = writeln!(
        out,
        "rows: {}  files: {}  row groups: {}",
        dataset.num_rows(),
        dataset.files().len(),
        dataset.num_row_groups()
    );
    for file in dataset.files() {
        let md = &file.metadata;
        let _ = writeln!(
            out,
            "\nfile {} ({} bytes, {} rows, {} row groups)",
            file.path.display(),
            file.size,
            file.num_rows(),
            md.num_row_groups()
        );
        for (k, v) in &file.partition_values {
            let _ = writeln!(out, "  partition {k} = {}", cell(&Some(v.clone()), 0));
        }
        let groups = md.row_groups();
        let stats: Vec<ColumnStatistics> = file
            .schema
            .fields()
            .iter()
            .map(|f| {
                let conv = StatisticsConverter::try_new(
                    f.name(),
                    &file.schema,
                    md.file_metadata().schema_descr(),
                )
                .ok();
                let mins = conv
                    .as_ref()
                    .and_then(|c| c.row_group_mins(groups.iter()).ok());
                let maxes = conv
                    .as_ref()
                    .and_then(|c| c.row_group_maxes(groups.iter()).ok());
                let nulls = conv
                    .as_ref()
                    .and_then(|c| c.row_group_null_counts(groups.iter()).ok());
                (f.name().clone(), mins, maxes, nulls)
            })
            .collect();
        for (i, rg) in groups.iter().enumerate() {
            let _ = writeln!(
                out,
                "  row group {i}: {} rows, {} bytes compressed",
                rg.num_rows(),
                rg.compressed_size()
            );
            for (name, mins, maxes, nulls) in &stats {
                let null_text = nulls
                    .as_ref()
                    .filter(|n| i < n.len() && n.is_valid(i))
                    .map(|n| n.value(i).to_string())
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "    {:<24} min={:<20} max={:<20} nulls={}",
                    name,
                    cell(mins, i),
                    cell(maxes, i),
                    null_text
                );
            }
        }
    }
    out
}
