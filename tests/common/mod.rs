//! Shared helpers for the SQL golden tests: the test data set and the result comparison.
//!
//! - [`test_data_dir`] generates TPC-H SF0.01 (row groups of 10,000 rows) plus the edge-case
//!   data set once per machine into `<CARGO_TARGET_TMPDIR>/ooc-test-data/sf0.01` and reuses it;
//!   concurrent test binaries are safe (each generates into a unique folder and renames it into
//!   place; the loser of the race uses the winner's copy).
//! - [`compare_csv`] is the Rust twin of `tests/oracle/oracle.py::compare`: DuckDB's golden CSV
//!   against ooc's CSV, tolerant of float noise (1e-9), NaN/inf spellings and timestamp
//!   spellings, strict about everything else; rows are compared as sorted multisets unless the
//!   query's outermost level has an ORDER BY ([`has_outer_order_by`]).
//! - [`run_ooc_query`] runs `ooc query --format csv --null-string NULL --file …`.

#![allow(dead_code)] // each test binary uses a different subset

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The literal that stands for NULL in golden and ooc CSV.
pub const NULL_TEXT: &str = "NULL";
const RELATIVE_TOLERANCE: f64 = 1e-9;
const ABSOLUTE_TOLERANCE: f64 = 1e-9;
/// Bump when the generated data set changes, so stale cached copies are replaced.
const DATASET_VERSION: &str = "ooc-test-data v1: tpch sf0.01 rg10000 + edge (no huge)";
const COMPLETE_MARKER: &str = ".ooc-test-data-complete";

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

/// The folder holding `lineitem.parquet`, …, `edge_types.parquet`, …, generated on first use.
pub fn test_data_dir() -> PathBuf {
    static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();
    DATA_DIR
        .get_or_init(|| {
            let root = test_data_root();
            prepare_data_dir(&root.join("sf0.01")).unwrap_or_else(|error| {
                panic!("cannot prepare test data under {}: {error}", root.display())
            })
        })
        .clone()
}

fn test_data_root() -> PathBuf {
    let target = match option_env!("CARGO_TARGET_TMPDIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target")),
    };
    target.join("ooc-test-data")
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// TPC-H at SF0.1 (row groups of 100,000 rows), for the 22-query golden tests in
/// `tests/tpch.rs`; generated once per machine under the same root as [`test_data_dir`].
#[allow(dead_code)] // each test binary uses a subset of these helpers
pub fn tpch_sf01_dir() -> PathBuf {
    static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();
    DATA_DIR
        .get_or_init(|| {
            let root = test_data_root();
            prepare(&root.join("sf0.1"), TPCH_SF01_VERSION, &|dir| {
                ooc_datagen::generate_tpch(dir, 0.1, 100_000)?;
                Ok(())
            })
            .unwrap_or_else(|error| {
                panic!("cannot prepare test data under {}: {error}", root.display())
            })
        })
        .clone()
}

const TPCH_SF01_VERSION: &str = "ooc-test-data v1: tpch sf0.1 rg100000";

/// TPC-DS at scale factor 0.1 (row groups of 100,000 rows), generated once per target
/// directory: the data `tests/tpcds.rs` runs on and `tests/oracle/make_tpcds_golden.sh`
/// computed the golden answers from.
pub fn tpcds_sf01_dir() -> PathBuf {
    static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();
    DATA_DIR
        .get_or_init(|| {
            let root = test_data_root();
            prepare(&root.join("tpcds-sf0.1"), TPCDS_SF01_VERSION, &|dir| {
                ooc_datagen::generate_tpcds(dir, 0.1, 100_000, false)?;
                Ok(())
            })
            .unwrap_or_else(|error| {
                panic!("cannot prepare test data under {}: {error}", root.display())
            })
        })
        .clone()
}

const TPCDS_SF01_VERSION: &str = "ooc-test-data v1: tpcds sf0.1 rg100000";

type Generator = dyn Fn(&Path) -> Result<(), Box<dyn std::error::Error>>;

fn prepare_data_dir(final_dir: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    prepare(final_dir, DATASET_VERSION, &|dir| {
        ooc_datagen::generate_tpch(dir, 0.01, 10_000)?;
        ooc_datagen::generate_edge(dir, false)?;
        Ok(())
    })
}

/// Generate a data set into `final_dir` once: built in a scratch folder and renamed into
/// place, with a marker holding `version` (a stale or half-made copy is replaced).
fn prepare(
    final_dir: &Path,
    version: &str,
    generate: &Generator,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let is_complete = |dir: &Path| {
        std::fs::read_to_string(dir.join(COMPLETE_MARKER)).is_ok_and(|text| text == version)
    };
    if is_complete(final_dir) {
        return Ok(final_dir.to_path_buf());
    }
    let parent = final_dir.parent().expect("data dir has a parent");
    std::fs::create_dir_all(parent)?;
    // A stale or half-made copy: move it aside atomically (only one process wins), then delete.
    if final_dir.exists() {
        let stale = parent.join(format!("stale-{}", unique_suffix()));
        if std::fs::rename(final_dir, &stale).is_ok() {
            let _ = std::fs::remove_dir_all(&stale);
        }
    }
    let building = parent.join(format!("building-{}", unique_suffix()));
    generate(&building)?;
    std::fs::write(building.join(COMPLETE_MARKER), version)?;
    match std::fs::rename(&building, final_dir) {
        Ok(()) => Ok(final_dir.to_path_buf()),
        Err(_) if is_complete(final_dir) => {
            // Another process finished first; its copy is identical.
            let _ = std::fs::remove_dir_all(&building);
            Ok(final_dir.to_path_buf())
        }
        Err(error) => Err(format!(
            "rename {} -> {}: {error}",
            building.display(),
            final_dir.display()
        )
        .into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Running ooc
// ---------------------------------------------------------------------------------------------

/// `ooc query --data DATA --format csv --null-string NULL --file QUERY`.
pub fn run_ooc_query(ooc_binary: &Path, data_dir: &Path, query_file: &Path) -> Output {
    Command::new(ooc_binary)
        .arg("query")
        .arg("--data")
        .arg(data_dir)
        .args(["--format", "csv", "--null-string", NULL_TEXT, "--file"])
        .arg(query_file)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", ooc_binary.display()))
}

// ---------------------------------------------------------------------------------------------
// Is the result ordered?
// ---------------------------------------------------------------------------------------------

/// SQL with `--` and `/* */` comments removed and string/identifier literals emptied.
pub fn strip_comments_and_strings(sql: &str) -> String {
    let characters: Vec<char> = sql.chars().collect();
    let mut output = String::with_capacity(sql.len());
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        let next = characters.get(index + 1).copied();
        if character == '-' && next == Some('-') {
            while index < characters.len() && characters[index] != '\n' {
                index += 1;
            }
            output.push(' ');
        } else if character == '/' && next == Some('*') {
            index += 2;
            while index < characters.len()
                && !(characters[index] == '*' && characters.get(index + 1) == Some(&'/'))
            {
                index += 1;
            }
            index += 2;
            output.push(' ');
        } else if character == '\'' || character == '"' {
            // Skip to the closing quote; a doubled quote is an escaped quote.
            index += 1;
            loop {
                match characters.get(index) {
                    None => break,
                    Some(&c) if c == character => {
                        if characters.get(index + 1) == Some(&character) {
                            index += 2;
                        } else {
                            index += 1;
                            break;
                        }
                    }
                    Some(_) => index += 1,
                }
            }
            output.push(character);
            output.push(character);
        } else {
            output.push(character);
            index += 1;
        }
    }
    output
}

/// True iff the last `ORDER BY` of the statement is outside every parenthesis.
pub fn has_outer_order_by(sql: &str) -> bool {
    let text = strip_comments_and_strings(sql).to_ascii_lowercase();
    let words: Vec<(usize, &str)> = word_positions(&text);
    let last_order_by = words
        .windows(2)
        .filter(|pair| pair[0].1 == "order" && pair[1].1 == "by")
        .map(|pair| pair[0].0)
        .next_back();
    let Some(position) = last_order_by else {
        return false;
    };
    let depth: i64 = text[..position]
        .chars()
        .map(|c| match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        })
        .sum();
    depth == 0
}

fn word_positions(text: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (index, character) in text.char_indices() {
        let is_word = character.is_alphanumeric() || character == '_';
        match (is_word, start) {
            (true, None) => start = Some(index),
            (false, Some(begin)) => {
                words.push((begin, &text[begin..index]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(begin) = start {
        words.push((begin, &text[begin..]));
    }
    words
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// Parses RFC 4180 CSV (`"` quoting, `""` escapes, `\n` or `\r\n` line ends) into rows of cells.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut in_quotes = false;
    let mut row_has_content = false;
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        if in_quotes {
            if character == '"' {
                if characters.peek() == Some(&'"') {
                    cell.push('"');
                    characters.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cell.push(character);
            }
            continue;
        }
        match character {
            '"' => {
                in_quotes = true;
                row_has_content = true;
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                row_has_content = true;
            }
            '\r' if characters.peek() == Some(&'\n') => {}
            '\n' => {
                if row_has_content || !cell.is_empty() {
                    row.push(std::mem::take(&mut cell));
                    rows.push(std::mem::take(&mut row));
                }
                row_has_content = false;
            }
            _ => {
                cell.push(character);
                row_has_content = true;
            }
        }
    }
    if row_has_content || !cell.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

// ---------------------------------------------------------------------------------------------
// Cell comparison
// ---------------------------------------------------------------------------------------------

/// A parsed numeric cell: integers compare exactly, everything else as f64 within tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Integer(i128),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Integer(value) => value as f64,
            Number::Float(value) => value,
        }
    }
}

/// The numeric value of a cell (`NaN`/`nan`, `inf`/`Infinity`/`-inf` included), if any.
pub fn parse_number(text: &str) -> Option<Number> {
    let trimmed = text.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => return Some(Number::Float(f64::NAN)),
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(Number::Float(f64::INFINITY)),
        "-inf" | "-infinity" => return Some(Number::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() {
        return None;
    }
    if digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return trimmed
            .parse::<i128>()
            .ok()
            .map(Number::Integer)
            .or_else(|| trimmed.parse::<f64>().ok().map(Number::Float));
    }
    let plausible = digits.bytes().any(|byte| byte.is_ascii_digit())
        && digits
            .bytes()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !plausible || !digits.as_bytes()[0].is_ascii_digit() && digits.as_bytes()[0] != b'.' {
        return None;
    }
    trimmed.parse::<f64>().ok().map(Number::Float)
}

pub fn numbers_equal(left: Number, right: Number) -> bool {
    if let (Number::Integer(a), Number::Integer(b)) = (left, right) {
        return a == b;
    }
    let (a, b) = (left.as_f64(), right.as_f64());
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= ABSOLUTE_TOLERANCE.max(RELATIVE_TOLERANCE * a.abs().max(b.abs()))
}

/// `2020-01-01T10:00:00.500000` → `2020-01-01 10:00:00.5`; None if not a timestamp.
pub fn normalize_timestamp(text: &str) -> Option<String> {
    let text = text.trim();
    let separator = text
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == ' ' || c == 'T')
        .map(|(index, _)| index)?;
    let (date, time) = (&text[..separator], &text[separator + 1..]);
    let date_digits = date.strip_prefix('-').unwrap_or(date);
    let date_parts: Vec<&str> = date_digits.split('-').collect();
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let date_ok = date_parts.len() == 3
        && date_parts[0].len() >= 4
        && date_parts[1].len() == 2
        && date_parts[2].len() == 2
        && date_parts.iter().all(|part| all_digits(part));
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let clock_parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = clock_parts.len() == 3
        && clock_parts
            .iter()
            .all(|part| part.len() == 2 && all_digits(part));
    let fraction_ok = fraction.is_empty() || all_digits(fraction);
    if !(date_ok && clock_ok && fraction_ok) {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    Some(if fraction.is_empty() {
        format!("{date} {clock}")
    } else {
        format!("{date} {clock}.{fraction}")
    })
}

/// Equal as text, or both numbers within tolerance, or both the same timestamp; NULL only
/// equals NULL.
pub fn cells_equal(expected: &str, actual: &str) -> bool {
    if expected == actual {
        return true;
    }
    if expected == NULL_TEXT || actual == NULL_TEXT {
        return false;
    }
    if let (Some(a), Some(b)) = (parse_number(expected), parse_number(actual)) {
        return numbers_equal(a, b);
    }
    match (normalize_timestamp(expected), normalize_timestamp(actual)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Sort key that places equal-within-tolerance cells at the same position in both results.
#[derive(Debug, Clone, PartialEq)]
enum CellSortKey {
    Null,
    Number(f64),
    NaN,
    Text(String),
}

impl CellSortKey {
    fn of(cell: &str) -> Self {
        if cell == NULL_TEXT {
            return CellSortKey::Null;
        }
        if let Some(number) = parse_number(cell) {
            let value = number.as_f64();
            if value.is_nan() {
                return CellSortKey::NaN;
            }
            // Ten significant digits, matching oracle.py's f"{value:.9e}".
            let rounded = if value.is_finite() {
                format!("{value:.9e}").parse().unwrap_or(value)
            } else {
                value
            };
            return CellSortKey::Number(rounded);
        }
        CellSortKey::Text(normalize_timestamp(cell).unwrap_or_else(|| cell.to_string()))
    }

    fn rank(&self) -> u8 {
        match self {
            CellSortKey::Null => 0,
            CellSortKey::Number(_) => 1,
            CellSortKey::NaN => 2,
            CellSortKey::Text(_) => 3,
        }
    }

    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (CellSortKey::Number(a), CellSortKey::Number(b)) => a.total_cmp(b),
            (CellSortKey::Text(a), CellSortKey::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

fn sorted_rows(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut keyed: Vec<(Vec<CellSortKey>, Vec<String>)> = rows
        .iter()
        .map(|row| {
            (
                row.iter().map(|cell| CellSortKey::of(cell)).collect(),
                row.clone(),
            )
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.compare(y))
            .find(|ordering| ordering.is_ne())
            .unwrap_or_else(|| a.len().cmp(&b.len()))
    });
    keyed.into_iter().map(|(_, row)| row).collect()
}

/// Differences between the expected (golden) and actual CSV results, both with a header row;
/// empty when they match. At most `max_differences` are reported.
pub fn compare_csv(expected_csv: &str, actual_csv: &str, ordered: bool) -> Vec<String> {
    const MAX_DIFFERENCES: usize = 10;
    let expected = parse_csv(expected_csv);
    let actual = parse_csv(actual_csv);
    let (Some(expected_header), Some(actual_header)) = (expected.first(), actual.first()) else {
        return vec![format!(
            "missing header row (expected {} lines, got {})",
            expected.len(),
            actual.len()
        )];
    };
    if expected_header.len() != actual_header.len() {
        return vec![format!(
            "column count: expected {} {expected_header:?}, got {} {actual_header:?}",
            expected_header.len(),
            actual_header.len()
        )];
    }
    let (mut expected_rows, mut actual_rows) = (expected[1..].to_vec(), actual[1..].to_vec());
    let mut differences = Vec::new();
    if expected_rows.len() != actual_rows.len() {
        differences.push(format!(
            "row count: expected {}, got {}",
            expected_rows.len(),
            actual_rows.len()
        ));
    }
    if !ordered {
        expected_rows = sorted_rows(&expected_rows);
        actual_rows = sorted_rows(&actual_rows);
    }
    let sorted_note = if ordered { "" } else { " (after sorting)" };
    for (index, (expected_row, actual_row)) in expected_rows.iter().zip(&actual_rows).enumerate() {
        if differences.len() >= MAX_DIFFERENCES {
            break;
        }
        if expected_row.len() != actual_row.len() {
            differences.push(format!(
                "row {index}{sorted_note}: expected {} cells, got {}",
                expected_row.len(),
                actual_row.len()
            ));
            continue;
        }
        let mismatch = expected_row
            .iter()
            .zip(actual_row)
            .enumerate()
            .find(|(_, (e, a))| !cells_equal(e, a));
        if let Some((column, (e, a))) = mismatch {
            differences.push(format!(
                "row {index}{sorted_note} column {:?}: expected {e:?}, got {a:?}",
                expected_header[column]
            ));
        }
    }
    differences
}
