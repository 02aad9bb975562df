//! Secondary indexes: every served shape gives exactly the rows a brute-force evaluation
//! gives, builds that spill give the same sidecar answers, stale and damaged sidecars are
//! never used, and dropping columns keeps the others.
//!
//! The fixture: 20,000 rows in row groups of 1,500, pages of 100 rows; `k` (BIGINT, NULL every
//! 13th row, values spread over every row group), `s` (VARCHAR "p{k % 500}-…"), `d`
//! (DECIMAL(15,2)), `day` (DATE), `f` (DOUBLE with NaN and -0.0), `wide` (DECIMAL(30,4)).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use ooc_io::index::{
    create_indexes, drop_indexes, list_indexes, open_index, sidecar_path, IndexBuildOptions,
    IndexStatus,
};
use ooc_io::{CmpOp, ParquetDataset, PruneExpr};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const ROWS: usize = 20_000;

#[derive(Clone)]
struct Row {
    k: Option<i64>,
    s: String,
    d: i128,
    day: i32,
    f: f64,
    wide: i128,
}

fn rows() -> Vec<Row> {
    (0..ROWS)
        .map(|i| {
            let k = ((i as i64) * 7919) % 3000;
            Row {
                k: (i % 13 != 0).then_some(k),
                s: format!("p{}-{}", k % 500, k % 7),
                d: (k % 1000) as i128 * 100 + 5,
                day: 9000 + (i as i32 % 400),
                f: match i % 97 {
                    0 => f64::NAN,
                    1 => -0.0,
                    _ => (k % 50) as f64 - 20.5,
                },
                wide: (k as i128 - 1500) * 10_000_000_000_000_000,
            }
        })
        .collect()
}

fn write_fixture(path: &std::path::Path, data: &[Row]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Utf8, false),
        Field::new("d", DataType::Decimal128(15, 2), false),
        Field::new("day", DataType::Date32, false),
        Field::new("f", DataType::Float64, false),
        Field::new("wide", DataType::Decimal128(30, 4), false),
        Field::new("small", DataType::Int32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(
                data.iter().map(|r| r.k).collect::<Vec<_>>(),
            )) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                data.iter().map(|r| r.s.clone()),
            )),
            Arc::new(
                Decimal128Array::from_iter_values(data.iter().map(|r| r.d))
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
            Arc::new(Date32Array::from_iter_values(data.iter().map(|r| r.day))),
            Arc::new(Float64Array::from_iter_values(data.iter().map(|r| r.f))),
            Arc::new(
                Decimal128Array::from_iter_values(data.iter().map(|r| r.wide))
                    .with_precision_and_scale(30, 4)
                    .unwrap(),
            ),
            Arc::new(Int32Array::from_iter_values(
                (0..data.len() as i32).map(|i| i % 11),
            )),
        ],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1500))
        .set_data_page_row_count_limit(100)
        .set_write_batch_size(100)
        .build();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn options(memory_limit: usize) -> IndexBuildOptions {
    IndexBuildOptions {
        index_dir: None,
        memory_limit,
        temp_dir: None,
        progress: None,
    }
}

fn i64_lit(v: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![v]))
}

fn str_lit(v: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![v]))
}

fn cmp(column: &str, op: CmpOp, value: ArrayRef) -> PruneExpr {
    PruneExpr::Compare {
        column: column.into(),
        op,
        value,
    }
}

fn ready(dataset: &ParquetDataset) -> Arc<ooc_io::index::Sidecar> {
    match open_index(&dataset.files()[0], None) {
        IndexStatus::Ready(s) => s,
        other => panic!("expected a current index, got {other:?}"),
    }
}

/// Predicates the index serves exactly, with the rows that satisfy them.
fn cases(data: &[Row]) -> Vec<(PruneExpr, Vec<u32>)> {
    let rows_where = |f: &dyn Fn(&Row) -> bool| -> Vec<u32> {
        data.iter()
            .enumerate()
            .filter(|(_, r)| f(r))
            .map(|(i, _)| i as u32)
            .collect()
    };
    let dec = |unscaled: i128, p: u8, s: i8| -> ArrayRef {
        Arc::new(
            Decimal128Array::from(vec![unscaled])
                .with_precision_and_scale(p, s)
                .unwrap(),
        )
    };
    vec![
        (
            cmp("k", CmpOp::Eq, i64_lit(42)),
            rows_where(&|r| r.k == Some(42)),
        ),
        (cmp("k", CmpOp::Eq, i64_lit(999_999)), vec![]),
        (
            // An INT literal against the BIGINT column.
            cmp("k", CmpOp::Eq, Arc::new(Int32Array::from(vec![7]))),
            rows_where(&|r| r.k == Some(7)),
        ),
        (
            cmp("k", CmpOp::Lt, i64_lit(10)),
            rows_where(&|r| r.k.is_some_and(|k| k < 10)),
        ),
        (
            cmp("k", CmpOp::LtEq, i64_lit(10)),
            rows_where(&|r| r.k.is_some_and(|k| k <= 10)),
        ),
        (
            cmp("k", CmpOp::Gt, i64_lit(2990)),
            rows_where(&|r| r.k.is_some_and(|k| k > 2990)),
        ),
        (
            cmp("k", CmpOp::GtEq, i64_lit(2990)),
            rows_where(&|r| r.k.is_some_and(|k| k >= 2990)),
        ),
        (
            PruneExpr::Between {
                column: "k".into(),
                low: i64_lit(100),
                high: i64_lit(120),
                negated: false,
            },
            rows_where(&|r| r.k.is_some_and(|k| (100..=120).contains(&k))),
        ),
        (
            PruneExpr::Between {
                column: "k".into(),
                low: i64_lit(120),
                high: i64_lit(100),
                negated: false,
            },
            vec![],
        ),
        (
            PruneExpr::InList {
                column: "k".into(),
                values: vec![i64_lit(5), i64_lit(2999), i64_lit(5), i64_lit(123_456)],
                negated: false,
            },
            rows_where(&|r| matches!(r.k, Some(5) | Some(2999))),
        ),
        (
            PruneExpr::IsNull {
                column: "k".into(),
                negated: false,
            },
            rows_where(&|r| r.k.is_none()),
        ),
        (
            cmp("s", CmpOp::Eq, str_lit("p42-0")),
            rows_where(&|r| r.s == "p42-0"),
        ),
        (
            PruneExpr::StartsWith {
                column: "s".into(),
                prefix: "p49".into(),
            },
            rows_where(&|r| r.s.starts_with("p49")),
        ),
        (
            cmp("s", CmpOp::Lt, str_lit("p100")),
            rows_where(&|r| r.s.as_str() < "p100"),
        ),
        (
            // 12.05 as DECIMAL(15,2); the same value at another scale.
            cmp("d", CmpOp::Eq, dec(1205, 15, 2)),
            rows_where(&|r| r.d == 1205),
        ),
        (
            cmp("d", CmpOp::Eq, dec(120_500, 10, 4)),
            rows_where(&|r| r.d == 1205),
        ),
        (
            cmp("day", CmpOp::Eq, Arc::new(Date32Array::from(vec![9010]))),
            rows_where(&|r| r.day == 9010),
        ),
        (
            cmp("f", CmpOp::Eq, Arc::new(Float64Array::from(vec![0.0]))),
            rows_where(&|r| r.f == 0.0),
        ),
        (
            cmp("f", CmpOp::Lt, Arc::new(Float64Array::from(vec![-19.0]))),
            rows_where(&|r| r.f < -19.0),
        ),
        (
            cmp("wide", CmpOp::Eq, dec(-15_000_000_000_000_000_000, 30, 4)),
            rows_where(&|r| r.wide == -15_000_000_000_000_000_000),
        ),
        (
            PruneExpr::And(vec![
                cmp("k", CmpOp::Lt, i64_lit(300)),
                PruneExpr::StartsWith {
                    column: "s".into(),
                    prefix: "p1".into(),
                },
            ]),
            rows_where(&|r| r.k.is_some_and(|k| k < 300) && r.s.starts_with("p1")),
        ),
        (
            PruneExpr::Or(vec![
                cmp("k", CmpOp::Eq, i64_lit(1)),
                cmp("s", CmpOp::Eq, str_lit("p2-2")),
            ]),
            rows_where(&|r| r.k == Some(1) || r.s == "p2-2"),
        ),
    ]
}

const ALL: [&str; 6] = ["k", "s", "d", "day", "f", "wide"];

fn build_all(dir: &tempfile::TempDir, memory_limit: usize) -> (ParquetDataset, Vec<Row>) {
    let data = rows();
    let path = dir.path().join("t.parquet");
    write_fixture(&path, &data);
    let dataset = ParquetDataset::open(path.to_str().unwrap()).unwrap();
    let columns: Vec<String> = ALL.iter().map(|c| c.to_string()).collect();
    create_indexes(&dataset, &columns, &options(memory_limit)).unwrap();
    (dataset, data)
}

#[test]
fn every_served_shape_selects_exactly_the_matching_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, data) = build_all(&dir, 256 << 20);
    let sidecar = ready(&dataset);
    for (predicate, expected) in cases(&data) {
        let found = sidecar
            .select(&predicate, u64::MAX)
            .unwrap()
            .unwrap_or_else(|| panic!("{predicate} was not served"));
        let got: Vec<u32> = found.rows.iter().collect();
        assert_eq!(got, expected, "{predicate}");
        assert!(!found.served.is_empty());
    }
}

#[test]
fn a_build_that_spills_answers_like_one_that_does_not() {
    let big = tempfile::tempdir().unwrap();
    let small = tempfile::tempdir().unwrap();
    let (a, data) = build_all(&big, 256 << 20);
    // A 1-byte limit: the sort buffers take their smallest size (64 KiB), so every column is
    // sorted in several runs and merged.
    let (b, _) = build_all(&small, 1);
    let (a, b) = (ready(&a), ready(&b));
    for (predicate, _) in cases(&data) {
        let x = a.select(&predicate, u64::MAX).unwrap().unwrap();
        let y = b.select(&predicate, u64::MAX).unwrap().unwrap();
        assert_eq!(x.rows, y.rows, "{predicate}");
    }
}

#[test]
fn shapes_that_keep_most_rows_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, _) = build_all(&dir, 256 << 20);
    let sidecar = ready(&dataset);
    let not_served = [
        cmp("k", CmpOp::NotEq, i64_lit(42)),
        PruneExpr::InList {
            column: "k".into(),
            values: vec![i64_lit(5)],
            negated: true,
        },
        PruneExpr::IsNull {
            column: "k".into(),
            negated: true,
        },
        PruneExpr::Not(Box::new(cmp("k", CmpOp::Eq, i64_lit(42)))),
        // Not indexed.
        cmp("small", CmpOp::Eq, Arc::new(Int32Array::from(vec![3]))),
        // 2.5 has no BIGINT counterpart.
        cmp("k", CmpOp::Eq, Arc::new(Float64Array::from(vec![2.5]))),
        // NaN is never looked up.
        cmp("f", CmpOp::Eq, Arc::new(Float64Array::from(vec![f64::NAN]))),
        // An OR with a part the index cannot answer.
        PruneExpr::Or(vec![
            cmp("k", CmpOp::Eq, i64_lit(1)),
            cmp("small", CmpOp::Eq, Arc::new(Int32Array::from(vec![3]))),
        ]),
    ];
    for predicate in not_served {
        assert!(
            sidecar.select(&predicate, u64::MAX).unwrap().is_none(),
            "{predicate} should not be served"
        );
    }
    // Over the row budget: k < 1000 holds about a third of the rows.
    let wide = cmp("k", CmpOp::Lt, i64_lit(1000));
    assert!(sidecar.select(&wide, 1000).unwrap().is_none());
    assert!(sidecar.select(&wide, u64::MAX).unwrap().is_some());
    // An AND serves the parts it can.
    let and = PruneExpr::And(vec![
        cmp("k", CmpOp::Eq, i64_lit(42)),
        cmp("small", CmpOp::Eq, Arc::new(Int32Array::from(vec![3]))),
    ]);
    let found = sidecar.select(&and, u64::MAX).unwrap().unwrap();
    assert_eq!(found.served, vec!["k = 42".to_string()]);
}

#[test]
fn list_and_drop_report_and_keep_the_other_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, data) = build_all(&dir, 256 << 20);
    let listed = list_indexes(&dataset, None);
    assert_eq!(listed.len(), 1);
    let names: Vec<&str> = listed[0].columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ALL);
    let k = &listed[0].columns[0];
    assert_eq!(
        k.nulls as usize,
        data.iter().filter(|r| r.k.is_none()).count()
    );
    assert_eq!(k.rows as usize + k.nulls as usize, ROWS);
    assert_eq!(k.distinct, 3000);
    let dropped = drop_indexes(&dataset, Some(&["s".to_string(), "f".to_string()]), None).unwrap();
    let left: Vec<&str> = dropped[0].columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(left, ["k", "d", "day", "wide"]);
    let sidecar = ready(&dataset);
    for (predicate, expected) in cases(&data) {
        let found = sidecar.select(&predicate, u64::MAX).unwrap();
        if predicate.columns().iter().any(|c| c == "s" || c == "f") {
            let served = found.map(|f| f.served.join(",")).unwrap_or_default();
            assert!(
                !served.contains("s ") && !served.contains("f "),
                "{predicate}: {served}"
            );
        } else {
            let got: Vec<u32> = found.unwrap().rows.iter().collect();
            assert_eq!(got, expected, "{predicate}");
        }
    }
    // Rebuilding one column keeps the others.
    create_indexes(&dataset, &["s".to_string()], &options(1 << 20)).unwrap();
    let names: Vec<String> = list_indexes(&dataset, None)[0]
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["k", "d", "day", "wide", "s"]);
    drop_indexes(&dataset, None, None).unwrap();
    assert!(matches!(
        open_index(&dataset.files()[0], None),
        IndexStatus::Absent
    ));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the data file is left"
    );
}

#[test]
fn an_index_dir_holds_the_sidecars_of_read_only_data() {
    let data_dir = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    let data = rows();
    let path = data_dir.path().join("t.parquet");
    write_fixture(&path, &data);
    let dataset = ParquetDataset::open(path.to_str().unwrap()).unwrap();
    let mut o = options(1 << 20);
    o.index_dir = Some(index_dir.path().join("nested"));
    create_indexes(&dataset, &["k".to_string()], &o).unwrap();
    assert_eq!(std::fs::read_dir(data_dir.path()).unwrap().count(), 1);
    let sidecar = sidecar_path(&path, o.index_dir.as_deref());
    assert!(sidecar.starts_with(index_dir.path()) && sidecar.exists());
    assert!(matches!(
        open_index(&dataset.files()[0], None),
        IndexStatus::Absent
    ));
    match open_index(&dataset.files()[0], o.index_dir.as_deref()) {
        IndexStatus::Ready(s) => {
            let found = s
                .select(&cmp("k", CmpOp::Eq, i64_lit(42)), u64::MAX)
                .unwrap()
                .unwrap();
            assert_eq!(
                found.rows.len() as usize,
                data.iter().filter(|r| r.k == Some(42)).count()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_changed_data_file_makes_its_index_stale() {
    let dir = tempfile::tempdir().unwrap();
    let (_, data) = build_all(&dir, 1 << 20);
    let path = dir.path().join("t.parquet");
    let reopen = || ParquetDataset::open(path.to_str().unwrap()).unwrap();
    let stale = |dataset: &ParquetDataset| match open_index(&dataset.files()[0], None) {
        IndexStatus::Ignored { reason, .. } => reason,
        other => panic!("expected a stale index, got {other:?}"),
    };

    let recorded = std::fs::metadata(&path).unwrap().modified().unwrap();
    // Touched: same bytes, a new modification time.
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    file.set_modified(later).unwrap();
    drop(file);
    let reason = stale(&reopen());
    assert!(reason.contains("modification time"), "{reason}");

    // The footer edited in place (its writer's name), size and modification time kept.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(10)
        .rposition(|w| w == b"parquet-rs")
        .expect("the footer names its writer");
    bytes[at] = b'P';
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(recorded).unwrap();
    drop(file);
    let reason = stale(&reopen());
    assert!(reason.contains("footer"), "{reason}");

    // Rewritten with other values, the same size and the modification time the index
    // recorded: the footer (its statistics) differs.
    let original = std::fs::metadata(&path).unwrap();
    let mut changed = data.clone();
    for r in &mut changed {
        r.k = r.k.map(|k| (k + 1) % 3000);
    }
    write_fixture(&path, &changed);
    let size = std::fs::metadata(&path).unwrap().len();
    if size == original.len() {
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(recorded).unwrap();
        drop(file);
        let reason = stale(&reopen());
        assert!(reason.contains("footer"), "{reason}");
    } else {
        assert!(stale(&reopen()).contains("size"));
    }
    // Rebuilt: current again.
    let dataset = reopen();
    create_indexes(&dataset, &["k".to_string()], &options(1 << 20)).unwrap();
    let found = ready(&dataset)
        .select(&cmp("k", CmpOp::Eq, i64_lit(43)), u64::MAX)
        .unwrap()
        .unwrap();
    let expected: Vec<u32> = changed
        .iter()
        .enumerate()
        .filter(|(_, r)| r.k == Some(43))
        .map(|(i, _)| i as u32)
        .collect();
    assert_eq!(found.rows.iter().collect::<Vec<_>>(), expected);
}

#[test]
fn damaged_sidecars_are_refused_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, data) = build_all(&dir, 1 << 20);
    let sidecar = sidecar_path(&dataset.files()[0].path, None);
    let pristine = std::fs::read(&sidecar).unwrap();
    let checks = cases(&data);
    let mut variants: Vec<Vec<u8>> = Vec::new();
    // Truncations, at the ends and inside.
    for cut in [
        0,
        7,
        8,
        100,
        pristine.len() / 2,
        pristine.len() - 17,
        pristine.len() - 1,
    ] {
        variants.push(pristine[..cut].to_vec());
    }
    // Bit flips spread over the whole file, and in the footer's last bytes.
    let step = (pristine.len() / 300).max(1);
    let positions = (0..pristine.len())
        .step_by(step)
        .chain(pristine.len() - 40..pristine.len());
    for at in positions {
        let mut v = pristine.clone();
        v[at] ^= 1 << (at % 8);
        variants.push(v);
    }
    let truncations = 7;
    let (mut refused, mut served) = (0, 0);
    for (n, bytes) in variants.iter().enumerate() {
        std::fs::write(&sidecar, bytes).unwrap();
        let dataset = ParquetDataset::open(dataset.files()[0].path.to_str().unwrap()).unwrap();
        let index = match open_index(&dataset.files()[0], None) {
            IndexStatus::Ready(s) => s,
            IndexStatus::Ignored { .. } => {
                refused += 1;
                continue;
            }
            IndexStatus::Absent => panic!("the sidecar is there"),
        };
        assert!(n >= truncations, "a truncated sidecar was opened");
        for (predicate, expected) in &checks {
            match index.select(predicate, u64::MAX) {
                Err(_) => refused += 1,
                Ok(None) => {}
                Ok(Some(found)) => {
                    served += 1;
                    let got: Vec<u32> = found.rows.iter().collect();
                    assert_eq!(&got, expected, "{predicate} misread from a damaged sidecar");
                }
            }
        }
    }
    // Damage is found where it is read: a flipped posting of a value no check looks up goes
    // unnoticed, and harms nothing.
    assert!(
        refused > truncations,
        "{refused} refusals of {} variants",
        variants.len()
    );
    assert!(served > 0);
}
