//! The SQL dialect ooc parses: DuckDB's, plus `IGNORE NULLS` / `RESPECT NULLS` inside a window
//! function's parentheses (`lag(x IGNORE NULLS) OVER (...)`, DuckDB's spelling), which the
//! parser's DuckDB dialect does not accept. The form after the call (`lag(x) IGNORE NULLS OVER
//! (...)`, Snowflake's and Oracle's) parses in either.
//!
//! The wrapper answers every question the DuckDB dialect answers itself the same way and
//! reports DuckDB's type, so the parser's DuckDB-specific paths still apply; a test checks
//! that DuckDB-only syntax parses alike in both.

use std::any::TypeId;

use sqlparser::dialect::{Dialect, DuckDbDialect};

/// DuckDB's dialect with `IGNORE NULLS` among a function's arguments.
#[derive(Debug, Default)]
pub(super) struct OocDialect(DuckDbDialect);

impl Dialect for OocDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<DuckDbDialect>()
    }

    fn supports_window_function_null_treatment_arg(&self) -> bool {
        true
    }

    fn supports_cte_materialization(&self) -> bool {
        self.0.supports_cte_materialization()
    }

    fn supports_string_literal_column_alias(&self, explicit: bool) -> bool {
        self.0.supports_string_literal_column_alias(explicit)
    }

    fn supports_string_literal_table_alias(&self, explicit: bool) -> bool {
        self.0.supports_string_literal_table_alias(explicit)
    }

    fn supports_trailing_commas(&self) -> bool {
        self.0.supports_trailing_commas()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.0.identifier_quote_style(identifier)
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        self.0.supports_filter_during_aggregation()
    }

    fn supports_group_by_expr(&self) -> bool {
        self.0.supports_group_by_expr()
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        self.0.supports_bitwise_shift_operators()
    }

    fn supports_tilde_like_match_operator(&self) -> bool {
        self.0.supports_tilde_like_match_operator()
    }

    fn supports_aggregate_order_by_with_empty_args(&self) -> bool {
        self.0.supports_aggregate_order_by_with_empty_args()
    }

    fn supports_comparison_in_between_low_bound(&self) -> bool {
        self.0.supports_comparison_in_between_low_bound()
    }

    fn supports_named_fn_args_with_eq_operator(&self) -> bool {
        self.0.supports_named_fn_args_with_eq_operator()
    }

    fn supports_named_fn_args_with_assignment_operator(&self) -> bool {
        self.0.supports_named_fn_args_with_assignment_operator()
    }

    fn supports_dictionary_syntax(&self) -> bool {
        self.0.supports_dictionary_syntax()
    }

    fn support_map_literal_syntax(&self) -> bool {
        self.0.support_map_literal_syntax()
    }

    fn supports_lambda_functions(&self) -> bool {
        self.0.supports_lambda_functions()
    }

    fn allow_extract_single_quotes(&self) -> bool {
        self.0.allow_extract_single_quotes()
    }

    fn supports_explain_with_utility_options(&self) -> bool {
        self.0.supports_explain_with_utility_options()
    }

    fn supports_load_extension(&self) -> bool {
        self.0.supports_load_extension()
    }

    fn supports_array_typedef_with_brackets(&self) -> bool {
        self.0.supports_array_typedef_with_brackets()
    }

    fn supports_from_first_select(&self) -> bool {
        self.0.supports_from_first_select()
    }

    fn supports_order_by_all(&self) -> bool {
        self.0.supports_order_by_all()
    }

    fn supports_select_wildcard_exclude(&self) -> bool {
        self.0.supports_select_wildcard_exclude()
    }

    fn supports_notnull_operator(&self) -> bool {
        self.0.supports_notnull_operator()
    }

    fn supports_install(&self) -> bool {
        self.0.supports_install()
    }

    fn supports_detach(&self) -> bool {
        self.0.supports_detach()
    }

    fn supports_select_wildcard_replace(&self) -> bool {
        self.0.supports_select_wildcard_replace()
    }

    fn supports_comma_separated_trim(&self) -> bool {
        self.0.supports_comma_separated_trim()
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        self.0.supports_numeric_literal_underscores()
    }

    fn supports_nested_comments(&self) -> bool {
        self.0.supports_nested_comments()
    }

    fn supports_add_column_if_not_exists(&self) -> bool {
        self.0.supports_add_column_if_not_exists()
    }
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::DuckDbDialect;
    use sqlparser::parser::Parser;

    use super::OocDialect;

    /// DuckDB-only syntax parses to the same tree with the wrapper as with DuckDB's dialect.
    #[test]
    fn duckdb_syntax_parses_alike() {
        let queries = [
            "SELECT * EXCLUDE (a) REPLACE (b + 1 AS b) FROM t",
            "FROM t SELECT a, b,",
            "SELECT {'x': 1} AS s, MAP {'k': 2} AS m",
            "SELECT 1_000_000 /* a /* nested */ comment */",
            "SELECT a NOTNULL, 1 << 2, a ~~ 'x%' FROM t ORDER BY ALL",
            "SELECT sum(x) FILTER (WHERE y > 0), extract('year' FROM d) FROM t",
            "WITH c AS MATERIALIZED (SELECT 1) SELECT * FROM c",
            "SELECT list_transform([1, 2], x -> x + 1), trim(a, 'x') FROM t",
            "SELECT a AS 'label' FROM t",
        ];
        for sql in queries {
            let ours = Parser::parse_sql(&OocDialect::default(), sql).map(|s| format!("{s:?}"));
            let duckdb = Parser::parse_sql(&DuckDbDialect {}, sql).map(|s| format!("{s:?}"));
            assert_eq!(
                ours.is_ok(),
                duckdb.is_ok(),
                "{sql}: {ours:?} vs {duckdb:?}"
            );
            assert_eq!(ours.ok(), duckdb.ok(), "{sql}");
        }
    }

    #[test]
    fn ignore_nulls_inside_the_parentheses_parses() {
        let sql = "SELECT lag(x IGNORE NULLS) OVER (ORDER BY y) FROM t";
        assert!(Parser::parse_sql(&OocDialect::default(), sql).is_ok());
    }
}
