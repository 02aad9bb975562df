//! The 22 TPC-H queries at scale factor 0.1, compared with DuckDB's answers.
//!
//! `tests/tpch/queries/qNN.sql` are the standard queries with their standard parameters;
//! `tests/tpch/golden/qNN.csv` are DuckDB 1.4.4's results on the same generated data
//! (`tests/oracle/make_tpch_golden.sh`). The data (≈ 100 MB of Parquet, lineitem in six row
//! groups) is generated on first use by `common::tpch_sf01_dir`. Every query runs through the
//! `ooc` binary, exactly as a user would run it; ordered results are compared in order,
//! decimals exactly and floating-point values with a relative tolerance of 1e-9.

mod common;

use std::path::{Path, PathBuf};

fn repository_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn check(name: &str) {
    let query_file = repository_path(&format!("tests/tpch/queries/{name}.sql"));
    let golden_file = repository_path(&format!("tests/tpch/golden/{name}.csv"));
    let sql = std::fs::read_to_string(&query_file).expect("query file");
    let expected = std::fs::read_to_string(&golden_file).expect("golden file");
    let data = common::tpch_sf01_dir();
    let output = common::run_ooc_query(Path::new(env!("CARGO_BIN_EXE_ooc")), &data, &query_file);
    assert!(
        output.status.success(),
        "{name}: ooc failed with {}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let actual = String::from_utf8_lossy(&output.stdout);
    let expected_rows = expected.lines().count().saturating_sub(1);
    assert!(expected_rows > 0, "{name}: the golden answer has no rows");
    let ordered = common::has_outer_order_by(&sql);
    let differences = common::compare_csv(&expected, &actual, ordered);
    assert!(
        differences.is_empty(),
        "{name}: result differs from DuckDB's ({expected_rows} rows, {}):\n  {}",
        if ordered { "ordered" } else { "unordered" },
        differences.join("\n  ")
    );
}

macro_rules! tpch_tests {
    ($($name:ident),* $(,)?) => {
        const QUERIES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

tpch_tests! {
    q01, q02, q03, q04, q05, q06, q07, q08, q09, q10, q11,
    q12, q13, q14, q15, q16, q17, q18, q19, q20, q21, q22,
}

#[test]
fn all_22_queries_and_answers_are_present() {
    assert_eq!(QUERIES.len(), 22);
    for name in QUERIES {
        for file in [
            format!("tests/tpch/queries/{name}.sql"),
            format!("tests/tpch/golden/{name}.csv"),
        ] {
            assert!(repository_path(&file).is_file(), "missing {file}");
        }
    }
}
