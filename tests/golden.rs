//! SQL golden tests: every `tests/queries/NAME.sql` is run through the `ooc` binary over the
//! shared test data set (TPC-H SF0.01 + edge cases, see `tests/common`) and its CSV output is
//! compared with `tests/golden/NAME.csv`, which DuckDB produced (`tests/oracle/make_golden.sh`).
//!
//! One `#[test]` per query, so `cargo test --test golden edge_` runs a subset; a failure names
//! the query and shows the first differences. `every_query_has_a_test_and_a_golden_file` keeps
//! the list below in step with the folder.

mod common;

use std::path::{Path, PathBuf};

fn repository_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn check_golden(name: &str) {
    let query_file = repository_path(&format!("tests/queries/{name}.sql"));
    let golden_file = repository_path(&format!("tests/golden/{name}.csv"));
    let sql = std::fs::read_to_string(&query_file)
        .unwrap_or_else(|e| panic!("{name}: cannot read {}: {e}", query_file.display()));
    let expected = std::fs::read_to_string(&golden_file).unwrap_or_else(|e| {
        panic!(
            "{name}: cannot read {} ({e}); run tests/oracle/make_golden.sh",
            golden_file.display()
        )
    });
    let data_dir = common::test_data_dir();
    let output =
        common::run_ooc_query(Path::new(env!("CARGO_BIN_EXE_ooc")), &data_dir, &query_file);
    assert!(
        output.status.success(),
        "{name}: ooc failed with {}\nstderr:\n{}\nquery:\n{sql}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let actual = String::from_utf8_lossy(&output.stdout);
    let ordered = common::has_outer_order_by(&sql);
    let differences = common::compare_csv(&expected, &actual, ordered);
    assert!(
        differences.is_empty(),
        "{name}: result differs from {} ({}):\n  {}\nquery:\n{sql}",
        golden_file.display(),
        if ordered { "ordered" } else { "unordered" },
        differences.join("\n  ")
    );
}

macro_rules! golden_tests {
    ($($name:ident),* $(,)?) => {
        const LISTED_QUERIES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                check_golden(stringify!($name));
            }
        )*
    };
}

golden_tests! {
    tpch_subquery_in_aggregate_non_equality,
    edge_timestamp_trunc_diff,
    edge_difftest_found,
    edge_difftest_found_nan,
    edge_difftest_found_order,
    tpch_subquery_empty_values,
    tpch_subquery_non_equality,
    tpch_subquery_grouped_select,
    tpch_subquery_join_on,
    tpch_lateral,
    edge_subquery_null_correlation,
    tpch_subquery_correlated_limit,
    tpch_string_agg,
    tpch_strftime_strptime,
    edge_repeated_names_derived,
    edge_repeated_names_set_operations,
    tpch_bivariate_aggregates,
    edge_quantiles,
    tpch_quantiles_global,
    tpch_quantiles_having,
    text_csv_pricing_summary,
    text_three_formats_join,
    text_csv_top_comments,
    edge_bool_aggregates,
    tpch_select_correlated,
    edge_regexp,
    edge_function_library,
    edge_aggregate_filter,
    edge_grouping_sets,
    tpch_rollup,
    edge_set_operations_all,
    edge_window_ranking,
    edge_window_frames,
    edge_window_values,
    tpch_windows,
    tpch_windows_moving,
    tpch_q01,
    tpch_q06,
    tpch_groupby_orderkey,
    tpch_groupby_multi_key,
    tpch_global_aggregates,
    tpch_count_distinct_grouped,
    tpch_having,
    tpch_topk_limit,
    tpch_topk_offset,
    tpch_string_like,
    tpch_string_functions,
    tpch_case_cast_coalesce,
    tpch_in_between,
    tpch_dates_extract,
    tpch_date_arithmetic,
    tpch_distinct,
    tpch_distinct_many,
    tpch_derived_table,
    tpch_cte,
    tpch_order_by_forms,
    tpch_integer_division,
    tpch_nation_region_scan,
    edge_aggregates_numeric,
    edge_aggregates_finite_floats,
    edge_extremes,
    edge_all_null,
    edge_all_null_grouped,
    edge_skew_groupby,
    edge_sort_nulls_first,
    edge_sort_desc_default_nulls,
    edge_float_ordering,
    edge_strings,
    edge_like_ilike,
    edge_in_list_nulls,
    edge_in_list_long,
    edge_or_equalities,
    edge_in_filter_nulls,
    edge_case_cast_coalesce,
    edge_dates_extract,
    edge_distinct,
    edge_distinct_counts_several,
    edge_distinct_counts_global,
    edge_distinct_mixed,
    edge_distinct_mixed_global,
    edge_cte_derived,
    edge_many_row_groups,
    edge_many_row_groups_topk,
    edge_long_strings,
    edge_empty_aggregate,
    edge_empty_rows,
    edge_grouped_empty_result,
    edge_set_operations,
    tpch_set_operations,
    tpch_statistics_concat,
    tpch_select_subqueries,
    edge_mark_joins,
    edge_statistics,
}

#[test]
fn every_query_has_a_test_and_a_golden_file() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repository_path("tests/queries"))
        .expect("tests/queries exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "sql").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = LISTED_QUERIES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/queries/*.sql and golden_tests! differ"
    );
    for name in &listed {
        let golden = repository_path(&format!("tests/golden/{name}.csv"));
        assert!(golden.exists(), "missing {}", golden.display());
    }
}

// --- The comparison itself (no ooc binary needed) -------------------------------------------

#[test]
fn comparison_tolerates_float_noise_nan_spellings_and_timestamp_forms() {
    let expected = "a,b,c,d\n0.30000000000000004,NaN,inf,2020-01-01 10:00:00\n1,NULL,-inf,2020-01-01 10:00:00.5\n";
    let actual = "a,b,c,d\n0.3,nan,Infinity,2020-01-01T10:00:00.000000\n1.0,NULL,-Infinity,2020-01-01T10:00:00.500\n";
    assert_eq!(
        common::compare_csv(expected, actual, true),
        Vec::<String>::new()
    );
}

#[test]
fn comparison_rejects_real_differences() {
    let header = "k,v\n";
    let differs = |expected: &str, actual: &str| {
        !common::compare_csv(
            &format!("{header}{expected}"),
            &format!("{header}{actual}"),
            true,
        )
        .is_empty()
    };
    assert!(differs("a,1.0\n", "a,1.001\n"));
    assert!(differs("a,NULL\n", "a,\n"));
    assert!(differs("a,NULL\n", "a,0\n"));
    assert!(differs("a,NaN\n", "a,inf\n"));
    assert!(differs(
        "a,9223372036854775807\n",
        "a,9223372036854775806\n"
    ));
    assert!(differs("a,2020-01-01\n", "a,2020-01-02\n"));
    assert!(differs("a,1\n", "a,1\nb,2\n"));
    assert!(differs("a,x\n", "A,x\n"));
    assert!(!common::compare_csv("a,b\n1,2\n", "a\n1\n", true).is_empty());
}

#[test]
fn unordered_comparison_sorts_rows_but_ordered_does_not() {
    let expected = "k,v\nb,2.0\na,1.0\nNULL,NaN\n\"x,y\",3\n";
    let actual = "k,v\nNULL,nan\n\"x,y\",3.0000000000001\na,1\nb,2\n";
    assert_eq!(
        common::compare_csv(expected, actual, false),
        Vec::<String>::new()
    );
    assert!(!common::compare_csv(expected, actual, true).is_empty());
}

#[test]
fn csv_parser_handles_quotes_empty_cells_and_crlf() {
    let rows = common::parse_csv("a,b\r\n\"x \"\"q\"\", y\",\n,\"\"\n");
    assert_eq!(
        rows,
        vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["x \"q\", y".to_string(), String::new()],
            vec![String::new(), String::new()],
        ]
    );
}

#[test]
fn outer_order_by_detection() {
    assert!(common::has_outer_order_by("select a from t order by a"));
    assert!(common::has_outer_order_by(
        "with c as (select a from t order by a) select a from c\nORDER  BY a limit 3"
    ));
    assert!(!common::has_outer_order_by(
        "select * from (select a from t order by a limit 3) s"
    ));
    assert!(!common::has_outer_order_by(
        "select 'order by' as x from t -- order by x"
    ));
    assert!(!common::has_outer_order_by("select a from t group by a"));
}

#[test]
fn every_golden_file_parses_with_a_consistent_width() {
    for name in LISTED_QUERIES {
        let path = repository_path(&format!("tests/golden/{name}.csv"));
        let text = std::fs::read_to_string(&path).unwrap();
        let rows = common::parse_csv(&text);
        let width = rows.first().map(Vec::len).unwrap_or(0);
        assert!(width > 0, "{name}: no header");
        assert!(
            rows.iter().all(|row| row.len() == width),
            "{name}: ragged rows"
        );
        // Each golden file equals itself under both modes (sanity of the comparison).
        assert!(
            common::compare_csv(&text, &text, false).is_empty(),
            "{name}"
        );
    }
}
