//! The 103 TPC-DS qualification queries at scale factor 0.1.
//!
//! `tests/tpcds/queries/NN.sql` are the queries (the 99 templates, 14, 23, 24 and 39 in two
//! parts); `tests/tpcds/golden/NN.csv` are DuckDB's answers on the same generated data
//! (`tests/oracle/make_tpcds_golden.sh`). The data (≈ 50 MB of Parquet, made by `tpcdsgen`,
//! the same as `tpcgen-cli tpcds parquet`) is generated on first use. Every query runs through
//! the `ooc` binary; results are compared as multisets (decimals exactly, floating-point values
//! with a relative tolerance of 1e-9), since rows that tie under an ORDER BY may come in any
//! order.
//!
//! Every query is answered (TPC-DS 41 was the last, on 2026-12-06); a new query joins the list
//! with its golden file.

mod common;

use std::path::{Path, PathBuf};

fn repository_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn run(name: &str) -> std::process::Output {
    let query_file = repository_path(&format!("tests/tpcds/queries/{name}.sql"));
    common::run_ooc_query(
        Path::new(env!("CARGO_BIN_EXE_ooc")),
        &common::tpcds_sf01_dir(),
        &query_file,
    )
}

fn answered(name: &str) {
    let golden_file = repository_path(&format!("tests/tpcds/golden/{name}.csv"));
    let expected = std::fs::read_to_string(&golden_file).expect("golden file");
    let output = run(name);
    assert!(
        output.status.success(),
        "{name}: ooc failed with {}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let actual = String::from_utf8_lossy(&output.stdout);
    let differences = common::compare_csv(&expected, &actual, false);
    assert!(
        differences.is_empty(),
        "{name}: result differs from DuckDB's ({} rows):\n  {}",
        expected.lines().count().saturating_sub(1),
        differences.join("\n  ")
    );
}

macro_rules! tpcds_tests {
    (answered: [$($a:ident = $an:literal),* $(,)?] $(,)?) => {
        const ANSWERED: &[&str] = &[$($an),*];
        $(
            #[test]
            fn $a() {
                answered($an);
            }
        )*
    };
}

tpcds_tests! {
    answered: [
        q01 = "01", q02 = "02", q03 = "03", q04 = "04", q05 = "05", q06 = "06", q07 = "07",
        q08 = "08", q09 = "09", q10 = "10", q11 = "11", q12 = "12", q13 = "13", q14a = "14a",
        q14b = "14b", q15 = "15", q16 = "16", q17 = "17", q18 = "18", q19 = "19", q20 = "20",
        q21 = "21", q22 = "22", q23a = "23a", q23b = "23b", q24a = "24a", q24b = "24b",
        q25 = "25", q26 = "26", q27 = "27", q28 = "28", q29 = "29", q30 = "30", q31 = "31",
        q32 = "32", q33 = "33", q34 = "34", q35 = "35", q36 = "36", q37 = "37", q38 = "38",
        q39a = "39a", q39b = "39b", q40 = "40", q41 = "41", q42 = "42", q43 = "43", q44 = "44", q45 = "45",
        q46 = "46", q47 = "47", q48 = "48", q49 = "49", q50 = "50", q51 = "51", q52 = "52",
        q53 = "53", q54 = "54", q55 = "55", q56 = "56", q57 = "57", q58 = "58", q59 = "59",
        q60 = "60", q61 = "61", q62 = "62", q63 = "63", q64 = "64", q65 = "65", q66 = "66",
        q67 = "67", q68 = "68", q69 = "69", q70 = "70", q71 = "71", q72 = "72", q73 = "73",
        q74 = "74", q75 = "75", q76 = "76", q77 = "77", q78 = "78", q79 = "79", q80 = "80",
        q81 = "81", q82 = "82", q83 = "83", q84 = "84", q85 = "85", q86 = "86", q87 = "87",
        q88 = "88", q89 = "89", q90 = "90", q91 = "91", q92 = "92", q93 = "93", q94 = "94",
        q95 = "95", q96 = "96", q97 = "97", q98 = "98", q99 = "99",
    ],
}

#[test]
fn every_query_is_listed_with_a_golden_file() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repository_path("tests/tpcds/queries"))
        .expect("tests/tpcds/queries exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "sql").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = ANSWERED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk.len(), 103);
    assert_eq!(
        on_disk, listed,
        "tests/tpcds/queries and the lists above differ"
    );
    for name in ANSWERED {
        let golden = repository_path(&format!("tests/tpcds/golden/{name}.csv"));
        assert!(golden.is_file(), "missing {}", golden.display());
    }
}
