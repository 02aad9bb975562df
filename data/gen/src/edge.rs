//! The edge-case data set: deterministic Parquet files that exercise what TPC-H never does.
//!
//! | file                     | rows      | row groups | what it is for                                   |
//! |--------------------------|-----------|------------|--------------------------------------------------|
//! | `edge_types.parquet`     | 20,000    | 10         | every column type, ~10% NULLs, NaN/±inf/-0.0,    |
//! |                          |           |            | year 1 and year 9999, unicode, skew, all-NULL    |
//! | `long_strings.parquet`   | 40        | 4          | empty strings, NULLs, five 1 MiB strings         |
//! | `many_row_groups.parquet`| 5,000     | 5,000      | per-row-group overhead, pruning over many groups |
//! | `empty.parquet`          | 0         | 0          | empty inputs                                     |
//! | `huge_row_group.parquet` | 8,388,608 | 1          | (optional) one row group decoding to > 512 MB    |
//!
//! Values come from [`SeededRandom::for_cell`] keyed by (column seed, row), so every run on
//! every machine produces the same files. In `edge_types`, the first [`SPECIAL_VALUE_SLOTS`] rows
//! of every 2,500 are never NULL and carry each column's special values (extremes, NaN, …);
//! every other cell is NULL with probability ~10%, at positions that differ per column.
//! Row group 3 (rows 6,000..8,000) is entirely NULL in `i32`, so its statistics have no min/max.
//!
//! Floating-point values are dyadic fractions (k/8 for `f32`, k/1024 for `f64`) so that sums
//! and averages are exact and do not depend on the order of summation.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, Int8Array, LargeStringArray, StringArray, StringViewArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::{DatagenError, Result};
use crate::parquet_output::{write_parquet_atomically, writer_properties, WrittenFile};
use crate::seeded_random::SeededRandom;

/// Rows in `edge_types.parquet`.
pub const EDGE_TYPES_ROWS: usize = 20_000;
/// Rows per row group in `edge_types.parquet`.
pub const EDGE_TYPES_ROW_GROUP_ROWS: usize = 2_000;
/// Row groups (of one row each) in `many_row_groups.parquet`.
pub const MANY_ROW_GROUPS_COUNT: usize = 5_000;
/// Length in bytes of each of the five long strings in `long_strings.parquet`.
pub const LONG_STRING_BYTES: usize = 1 << 20;
/// Rows in `huge_row_group.parquet`.
pub const HUGE_ROW_GROUP_ROWS: usize = 8 * 1024 * 1024;

/// Special values repeat every `SPECIAL_VALUE_CYCLE` rows.
const SPECIAL_VALUE_CYCLE: u64 = 2_500;
/// The first `SPECIAL_VALUE_SLOTS` rows of each cycle are never NULL.
const SPECIAL_VALUE_SLOTS: u64 = 16;
/// The row group of `edge_types` whose `i32` values are all NULL.
const ALL_NULL_I32_ROW_GROUP: u64 = 3;

/// Writes the edge-case files into `out_dir` (created if missing), overwriting old copies.
/// `huge_row_group.parquet` (~8M rows, slow) is written only if `include_huge_row_group`.
pub fn generate_edge(out_dir: &Path, include_huge_row_group: bool) -> Result<Vec<WrittenFile>> {
    std::fs::create_dir_all(out_dir).map_err(|e| DatagenError::io(out_dir, e))?;
    let mut written = vec![
        write_edge_types(&out_dir.join("edge_types.parquet"))?,
        write_long_strings(&out_dir.join("long_strings.parquet"))?,
        write_many_row_groups(&out_dir.join("many_row_groups.parquet"))?,
        write_empty(&out_dir.join("empty.parquet"))?,
    ];
    if include_huge_row_group {
        written.push(write_huge_row_group(
            &out_dir.join("huge_row_group.parquet"),
        )?);
    }
    Ok(written)
}

fn edge_types_schema() -> SchemaRef {
    let nullable = |name: &str, data_type: DataType| Field::new(name, data_type, true);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        nullable("i8", DataType::Int8),
        nullable("i16", DataType::Int16),
        nullable("i32", DataType::Int32),
        nullable("i64", DataType::Int64),
        nullable("f32", DataType::Float32),
        nullable("f64", DataType::Float64),
        nullable("dec", DataType::Decimal128(15, 2)),
        nullable("dec_wide", DataType::Decimal128(38, 10)),
        nullable("flag", DataType::Boolean),
        nullable("s", DataType::Utf8),
        nullable("s_large", DataType::LargeUtf8),
        nullable("s_view", DataType::Utf8View),
        nullable("d", DataType::Date32),
        nullable("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
        nullable("grp", DataType::Utf8),
        nullable("skew_key", DataType::Int64),
        nullable("all_null", DataType::Int64),
    ]))
}

/// One column's cells for `rows`: NULL ~10% of the time (never in a special slot), else the
/// column's special value for the slot, else `ordinary(random)`.
fn edge_column<T: Clone>(
    rows: Range<u64>,
    seed: u64,
    specials: &[T],
    ordinary: impl Fn(&mut SeededRandom) -> T,
) -> Vec<Option<T>> {
    rows.map(|row| {
        let slot = row % SPECIAL_VALUE_CYCLE;
        if let Some(special) = specials.get(slot as usize) {
            return Some(special.clone());
        }
        let is_null = slot >= SPECIAL_VALUE_SLOTS
            && SeededRandom::for_cell(seed ^ 0x4E55_4C4C, row).is_multiple_of(10);
        if is_null {
            return None;
        }
        let mut random = SeededRandom::new(SeededRandom::for_cell(seed, row));
        Some(ordinary(&mut random))
    })
    .collect()
}

/// Strings that break naive case mapping, trimming and LIKE handling.
const SPECIAL_STRINGS: [&str; 12] = [
    "",
    "straße",
    "ÉCOLE",
    "  padded both  ",
    " leading space",
    "trailing space ",
    "école",
    "STRASSE",
    "a%b_c",
    "100%",
    "crab 🦀",
    "x",
];

const WORDS: [&str; 12] = [
    "apple",
    "Banana",
    "cherry",
    "DATE",
    "elder berry",
    "fig",
    "grape",
    "Hazel",
    "ice",
    "juniper",
    "kiwi",
    "lemon",
];

const GROUP_NAMES: [&str; 10] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
];

fn ordinary_string(random: &mut SeededRandom) -> String {
    let word = WORDS[random.below(WORDS.len() as u64) as usize];
    match random.below(4) {
        0 => word.to_string(),
        1 => format!("{word}-{}", random.below(1000)),
        2 => format!(
            "{word} {}",
            WORDS[random.below(WORDS.len() as u64) as usize]
        ),
        _ => format!("{}{word}", random.below(100)),
    }
}

/// Days since 1970-01-01 of 0001-01-01 and 9999-12-31.
const DATE_YEAR_1: i32 = -719_162;
const DATE_YEAR_9999_END: i32 = 2_932_896;
/// 1900-01-01 and 2100-01-01 bound the ordinary dates.
const DATE_1900: i64 = -25_567;
const DATE_2100: i64 = 47_482;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn edge_types_batch(rows: Range<u64>) -> Result<RecordBatch> {
    let ten_pow = |exponent: u32| 10_i128.pow(exponent);
    let i32_values: Vec<Option<i32>> = {
        let all_null_rows = ALL_NULL_I32_ROW_GROUP * EDGE_TYPES_ROW_GROUP_ROWS as u64
            ..(ALL_NULL_I32_ROW_GROUP + 1) * EDGE_TYPES_ROW_GROUP_ROWS as u64;
        let values = edge_column(rows.clone(), 3, &[i32::MIN, i32::MAX, 0, -1], |r| {
            r.next_u64() as i32
        });
        rows.clone()
            .zip(values)
            .map(|(row, value)| value.filter(|_| !all_null_rows.contains(&row)))
            .collect()
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            rows.clone().map(|row| row as i64),
        )),
        Arc::new(Int8Array::from(edge_column(
            rows.clone(),
            1,
            &[i8::MIN, i8::MAX, 0, -1],
            |r| r.next_u64() as i8,
        ))),
        Arc::new(Int16Array::from(edge_column(
            rows.clone(),
            2,
            &[i16::MIN, i16::MAX, 0, -1],
            |r| r.next_u64() as i16,
        ))),
        Arc::new(Int32Array::from(i32_values)),
        Arc::new(Int64Array::from(edge_column(
            rows.clone(),
            4,
            &[i64::MIN + 1, i64::MAX - 1, 0, -1],
            |r| r.between(-1_000_000_000_000_000, 1_000_000_000_000_000),
        ))),
        Arc::new(Float32Array::from(edge_column(
            rows.clone(),
            5,
            &[0.0_f32, -0.0, 0.125, -1.5],
            |r| r.between(-(1 << 20), 1 << 20) as f32 / 8.0,
        ))),
        Arc::new(Float64Array::from(edge_column(
            rows.clone(),
            6,
            &[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                0.0,
                1e-300,
                1e300,
                -1e300,
                f64::MIN_POSITIVE,
                5e-324,
                f64::MAX,
            ],
            |r| r.between(-(1 << 40), 1 << 40) as f64 / 1024.0,
        ))),
        Arc::new(
            Decimal128Array::from(edge_column(
                rows.clone(),
                7,
                &[ten_pow(15) - 1, -(ten_pow(15) - 1), 0, 1, -1],
                |r| r.between(-10_000_000_000_000, 10_000_000_000_000) as i128,
            ))
            .with_precision_and_scale(15, 2)
            .map_err(|source| arrow_error("edge_types.dec", source))?,
        ),
        Arc::new(
            Decimal128Array::from(edge_column(
                rows.clone(),
                8,
                &[ten_pow(36) - 1, -(ten_pow(36) - 1), 0, 1, -1],
                |r| {
                    let high = r.between(-1_000_000_000_000_000, 1_000_000_000_000_000) as i128;
                    let low = r.between(0, 999_999_999_999_999) as i128;
                    high * ten_pow(15) + low
                },
            ))
            .with_precision_and_scale(38, 10)
            .map_err(|source| arrow_error("edge_types.dec_wide", source))?,
        ),
        Arc::new(BooleanArray::from(edge_column(
            rows.clone(),
            9,
            &[true, false],
            |r| r.below(3) == 0,
        ))),
        Arc::new(StringArray::from_iter(edge_strings(rows.clone(), 10))),
        Arc::new(LargeStringArray::from_iter(edge_strings(rows.clone(), 11))),
        Arc::new(StringViewArray::from_iter(edge_strings(rows.clone(), 12))),
        Arc::new(Date32Array::from(edge_column(
            rows.clone(),
            13,
            &[DATE_YEAR_1, 0, DATE_YEAR_9999_END, 11_016, -1],
            |r| r.between(DATE_1900, DATE_2100) as i32,
        ))),
        Arc::new(TimestampMicrosecondArray::from(edge_column(
            rows.clone(),
            14,
            &[
                DATE_YEAR_1 as i64 * MICROS_PER_DAY,
                0,
                (DATE_YEAR_9999_END as i64 + 1) * MICROS_PER_DAY - 1,
                11_016 * MICROS_PER_DAY + 1,
                -1,
            ],
            |r| r.between(DATE_1900 * MICROS_PER_DAY, DATE_2100 * MICROS_PER_DAY),
        ))),
        Arc::new(StringArray::from_iter(edge_column(
            rows.clone(),
            15,
            &[],
            |r| {
                // Skewed: "alpha" is the most common group, "kappa" the rarest.
                let pick = r.below(55);
                let index = (1..=10).find(|k| pick < k * (k + 1) / 2).unwrap_or(10) - 1;
                GROUP_NAMES[9 - index as usize]
            },
        ))),
        Arc::new(Int64Array::from(edge_column(rows.clone(), 16, &[], |r| {
            if r.below(10) == 0 {
                r.between(0, 999)
            } else {
                7
            }
        }))),
        Arc::new(Int64Array::new_null(rows.clone().count())),
    ];
    RecordBatch::try_new(edge_types_schema(), columns)
        .map_err(|source| arrow_error("edge_types", source))
}

fn edge_strings(rows: Range<u64>, seed: u64) -> Vec<Option<String>> {
    let specials: Vec<String> = SPECIAL_STRINGS.iter().map(|s| s.to_string()).collect();
    edge_column(rows, seed, &specials, ordinary_string)
}

fn arrow_error(table: &str, source: arrow::error::ArrowError) -> DatagenError {
    DatagenError::Arrow {
        table: table.to_string(),
        source,
    }
}

fn write_edge_types(path: &Path) -> Result<WrittenFile> {
    let rows_per_group = EDGE_TYPES_ROW_GROUP_ROWS as u64;
    let batches = (0..(EDGE_TYPES_ROWS as u64).div_ceil(rows_per_group)).map(|group| {
        let start = group * rows_per_group;
        edge_types_batch(start..(start + rows_per_group).min(EDGE_TYPES_ROWS as u64))
    });
    write_parquet_atomically(
        path,
        edge_types_schema(),
        writer_properties(Some(EDGE_TYPES_ROW_GROUP_ROWS))?,
        batches,
    )
}

fn id_and_string_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]))
}

/// 40 rows: NULLs (id % 7 == 3), empty strings (id % 7 == 5), five strings of exactly
/// [`LONG_STRING_BYTES`] ASCII bytes (ids 2, 9, 16, 23, 30) and short strings; row groups of 10.
fn write_long_strings(path: &Path) -> Result<WrittenFile> {
    const LONG_STRING_IDS: [i64; 5] = [2, 9, 16, 23, 30];
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let ids: Vec<i64> = (0..40).collect();
    let strings: Vec<Option<String>> = ids
        .iter()
        .map(|&id| {
            if let Some(position) = LONG_STRING_IDS.iter().position(|&long| long == id) {
                let stride = position + 1;
                let text: String = (0..LONG_STRING_BYTES)
                    .map(|i| alphabet[(i * stride + position * 7) % alphabet.len()] as char)
                    .collect();
                Some(text)
            } else if id % 7 == 3 {
                None
            } else if id % 7 == 5 {
                Some(String::new())
            } else {
                Some(format!("short string {id}"))
            }
        })
        .collect();
    let batch = RecordBatch::try_new(
        id_and_string_schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(strings)),
        ],
    )
    .map_err(|source| arrow_error("long_strings", source))?;
    write_parquet_atomically(
        path,
        id_and_string_schema(),
        writer_properties(Some(10))?,
        [Ok(batch)],
    )
}

fn write_many_row_groups(path: &Path) -> Result<WrittenFile> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Float64, true),
        Field::new("k", DataType::Utf8, true),
    ]));
    let ids = 0..MANY_ROW_GROUPS_COUNT as i64;
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(Float64Array::from_iter(
                ids.clone()
                    .map(|id| (id % 10 != 3).then_some(id as f64 * 0.5)),
            )),
            Arc::new(StringArray::from_iter_values(
                ids.map(|id| format!("k{:02}", id % 17)),
            )),
        ],
    )
    .map_err(|source| arrow_error("many_row_groups", source))?;
    write_parquet_atomically(path, schema, writer_properties(Some(1))?, [Ok(batch)])
}

fn write_empty(path: &Path) -> Result<WrittenFile> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("d", DataType::Date32, true),
    ]));
    write_parquet_atomically(path, schema, writer_properties(None)?, [])
}

/// One row group of [`HUGE_ROW_GROUP_ROWS`] rows (`id`, `x`, and a 48-byte `s`): about 544 MB
/// decoded. Batches of 64Ki rows are written and dropped one by one; the writer holds only
/// encoded pages.
fn write_huge_row_group(path: &Path) -> Result<WrittenFile> {
    const BATCH_ROWS: usize = 64 * 1024;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let batch_schema = Arc::clone(&schema);
    let batches = (0..HUGE_ROW_GROUP_ROWS / BATCH_ROWS).map(move |batch_index| {
        let start = (batch_index * BATCH_ROWS) as i64;
        let ids = start..start + BATCH_ROWS as i64;
        RecordBatch::try_new(
            Arc::clone(&batch_schema),
            vec![
                Arc::new(Int64Array::from_iter_values(ids.clone())),
                Arc::new(Float64Array::from_iter_values(
                    ids.clone().map(|id| id as f64 * 0.25),
                )),
                Arc::new(StringArray::from_iter_values(ids.map(|id| {
                    let hash = SeededRandom::for_cell(99, id as u64);
                    format!("{hash:016x}{:016x}{id:016}", hash.rotate_left(17))
                }))),
            ],
        )
        .map_err(|source| arrow_error("huge_row_group", source))
    });
    write_parquet_atomically(path, schema, writer_properties(None)?, batches)
}
