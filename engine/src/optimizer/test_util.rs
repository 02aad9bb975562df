//! Fixtures for the optimizer rules' unit tests: small Parquet tables written to a temporary
//! directory and scanned (row counts and min/max statistics come from their footers, as the
//! join estimates need), in-memory tables, and the comparison of a plan with its expected
//! indented rendering.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use ooc_io::ParquetDataset;

use crate::logical::expr::Expr;
use crate::logical::plan::{LogicalPlan, MemoryTable, TableScan};

/// An Int64 column.
pub(super) fn ints(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

/// A Utf8 column.
pub(super) fn strings<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// A Boolean column.
pub(super) fn bools(values: impl IntoIterator<Item = bool>) -> ArrayRef {
    Arc::new(BooleanArray::from(values.into_iter().collect::<Vec<_>>()))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns of one length")
}

/// A scan of all columns of a Parquet file holding `columns`, qualified `name`. The file is
/// written to a temporary directory that is gone when this returns: the data set keeps the
/// file mapped, and the optimizer only reads its footer.
pub(super) fn parquet_scan(name: &str, columns: Vec<(&str, ArrayRef)>) -> LogicalPlan {
    let batch = batch(columns);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(format!("{name}.parquet"));
    let file = std::fs::File::create(&path).expect("create the Parquet file");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("Parquet writer");
    writer.write(&batch).expect("write the batch");
    writer.close().expect("close the Parquet file");
    let dataset = ParquetDataset::open(path.to_str().expect("UTF-8 path")).expect("open");
    LogicalPlan::TableScan(TableScan::try_new(name, Arc::new(dataset)).expect("scan"))
}

/// An in-memory table of one batch holding `columns`, qualified `name`.
pub(super) fn memory_table(name: &str, columns: Vec<(&str, ArrayRef)>) -> LogicalPlan {
    let batch = batch(columns);
    let table = MemoryTable::try_new(name, batch.schema(), vec![batch]).expect("memory table");
    LogicalPlan::Memory(table)
}

/// A scan of table `name`: `a` BIGINT, `b` BIGINT, `s` VARCHAR, four rows.
pub(super) fn abs_scan(name: &str) -> LogicalPlan {
    parquet_scan(
        name,
        vec![
            ("a", ints([1, 2, 3, 4])),
            ("b", ints([10, 20, 30, 40])),
            ("s", strings(["x", "y", "x", "z"])),
        ],
    )
}

/// The fact table of the join tests, 1000 rows: `store` = i % 10 (a key of `stores`), `item`
/// = i % 200 (a key of `items`), `amount` = i.
pub(super) fn sales() -> LogicalPlan {
    parquet_scan(
        "sales",
        vec![
            ("store", ints((0..1000).map(|i| i % 10))),
            ("item", ints((0..1000).map(|i| i % 200))),
            ("amount", ints(0..1000)),
        ],
    )
}

/// A dimension of 10 rows: `id` 0..10, `region`.
pub(super) fn stores() -> LogicalPlan {
    parquet_scan(
        "stores",
        vec![
            ("id", ints(0..10)),
            (
                "region",
                strings((0..10).map(|i| ["north", "south"][i % 2])),
            ),
        ],
    )
}

/// A dimension of 200 rows: `id` 0..200, `price` = i % 7.
pub(super) fn items() -> LogicalPlan {
    parquet_scan(
        "items",
        vec![
            ("id", ints(0..200)),
            ("price", ints((0..200).map(|i| i % 7))),
        ],
    )
}

/// `plan`, a table scan, with `filters` pushed into it.
pub(super) fn with_scan_filters(plan: LogicalPlan, filters: Vec<Expr>) -> LogicalPlan {
    match plan {
        LogicalPlan::TableScan(mut scan) => {
            scan.filters = filters;
            LogicalPlan::TableScan(scan)
        }
        other => panic!("not a table scan: {other:?}"),
    }
}

/// `plan`, a table scan, told to stop after `fetch` rows.
pub(super) fn with_scan_fetch(plan: LogicalPlan, fetch: usize) -> LogicalPlan {
    match plan {
        LogicalPlan::TableScan(mut scan) => {
            scan.fetch = Some(fetch);
            LogicalPlan::TableScan(scan)
        }
        other => panic!("not a table scan: {other:?}"),
    }
}

/// `text` without its leading blank lines and trailing blank space, and with the indentation
/// its lines share removed; every line ends in a newline, as in
/// [`LogicalPlan::display_indent`].
fn dedent(text: &str) -> String {
    let lines: Vec<&str> = text
        .trim_end()
        .lines()
        .skip_while(|line| line.trim().is_empty())
        .collect();
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|line| format!("{}\n", line.get(indent..).unwrap_or("").trim_end()))
        .collect()
}

/// Assert that `plan` renders as `expected` (an indented block, see [`dedent`]).
#[track_caller]
pub(super) fn assert_plan(plan: &LogicalPlan, expected: &str) {
    let actual = plan.display_indent();
    let expected = dedent(expected);
    assert!(
        actual == expected,
        "plan differs\n--- expected\n{expected}--- actual\n{actual}"
    );
}
