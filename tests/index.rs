//! `ooc index create | list | drop` and queries that use the sidecars: the answers equal the
//! ones computed here (and those without an index), `--explain` names what the index served
//! and what it ignored, and stale or damaged sidecars never change a result.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

fn ooc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ooc"))
        .args(args)
        .output()
        .expect("run ooc")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `k` of row `i` of file `f`: spread over every row group; NULL every 17th row.
fn k_of(f: i64, i: i64) -> Option<i64> {
    (i % 17 != 0).then_some((i * 7919 + f * 13) % 5000)
}

fn s_of(k: i64) -> String {
    format!("c{}-{}", k % 300, k % 3)
}

const FILE_ROWS: i64 = 12_000;

fn write_file(path: &Path, f: i64) {
    let k: Vec<Option<i64>> = (0..FILE_ROWS).map(|i| k_of(f, i)).collect();
    let s: Vec<String> = k.iter().map(|k| s_of(k.unwrap_or(0))).collect();
    let v: Vec<i64> = (0..FILE_ROWS).map(|i| i + f * FILE_ROWS).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(k)) as ArrayRef,
            Arc::new(StringArray::from(s)),
            Arc::new(Int64Array::from(v)),
        ],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .set_data_page_row_count_limit(100)
        .set_write_batch_size(100)
        .build();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Which rows a predicate keeps, from `k` and `s`.
type Keep = Box<dyn Fn(Option<i64>, &str) -> bool>;

/// count(*) and sum(v) over both files of the rows where `keep(k, s)` holds.
fn expected(keep: &dyn Fn(Option<i64>, &str) -> bool) -> String {
    let (mut n, mut sum) = (0i64, 0i64);
    for f in 0..2 {
        for i in 0..FILE_ROWS {
            let k = k_of(f, i);
            if keep(k, &s_of(k.unwrap_or(0))) {
                n += 1;
                sum += i + f * FILE_ROWS;
            }
        }
    }
    if n == 0 {
        "0,\n".to_string()
    } else {
        format!("{n},{sum}\n")
    }
}

fn query(dir: &str, extra: &[&str], predicate: &str) -> String {
    let sql = format!("SELECT count(*) AS n, sum(v) AS total FROM '{dir}' WHERE {predicate}");
    let mut args = vec!["query", "--format", "csv"];
    args.extend_from_slice(extra);
    args.push(&sql);
    let o = ooc(&args);
    assert!(o.status.success(), "{predicate}: {}", stderr(&o));
    stdout(&o)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect()
}

fn explain(dir: &str, predicate: &str) -> String {
    let sql = format!("SELECT count(*), sum(v) FROM '{dir}' WHERE {predicate}");
    stdout(&ooc(&["query", "--explain", &sql]))
}

#[test]
fn indexes_are_built_listed_used_and_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap().to_string();
    write_file(&tmp.path().join("a.parquet"), 0);
    write_file(&tmp.path().join("b.parquet"), 1);

    let o = ooc(&[
        "index",
        "create",
        &dir,
        "--columns",
        "k,s",
        "--memory-limit",
        "64MB",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("indexed k, s of 2 file(s)"),
        "{}",
        stderr(&o)
    );
    let listed = stdout(&ooc(&["index", "list", &dir]));
    assert_eq!(listed.matches("  k Int64: ").count(), 2, "{listed}");
    assert_eq!(listed.matches("  s Utf8: ").count(), 2, "{listed}");
    assert!(!listed.contains("IGNORED"), "{listed}");

    let cases: Vec<(&str, Keep)> = vec![
        ("k = 4242", Box::new(|k, _| k == Some(4242))),
        ("k = 99999", Box::new(|_, _| false)),
        (
            "k IN (1, 2, 4999)",
            Box::new(|k, _| matches!(k, Some(1 | 2 | 4999))),
        ),
        (
            "k BETWEEN 100 AND 110",
            Box::new(|k, _| k.is_some_and(|k| (100..=110).contains(&k))),
        ),
        ("k < 20", Box::new(|k, _| k.is_some_and(|k| k < 20))),
        ("k IS NULL", Box::new(|k, _| k.is_none())),
        ("s = 'c42-0'", Box::new(|k, s| k.is_some() && s == "c42-0")),
        (
            "s LIKE 'c299%'",
            Box::new(|k, s| k.is_some() && s.starts_with("c299")),
        ),
        (
            "k = 7 OR s = 'c1-1'",
            Box::new(|k, s| k == Some(7) || (k.is_some() && s == "c1-1")),
        ),
        ("k = 4242 AND v > 5000", Box::new(|k, _| k == Some(4242))),
    ];
    for (predicate, keep) in &cases {
        let want = if predicate.contains("v > 5000") {
            // sum and count of the rows with v > 5000 among k = 4242.
            let (mut n, mut sum) = (0, 0);
            for f in 0..2 {
                for i in 0..FILE_ROWS {
                    let v = i + f * FILE_ROWS;
                    if keep(k_of(f, i), "") && v > 5000 {
                        n += 1;
                        sum += v;
                    }
                }
            }
            if n == 0 {
                "0,\n".to_string()
            } else {
                format!("{n},{sum}\n")
            }
        } else {
            expected(keep.as_ref())
        };
        assert_eq!(query(&dir, &[], predicate), want, "{predicate}");
        assert_eq!(
            query(&dir, &["--no-index"], predicate),
            want,
            "{predicate} without index"
        );
        // (Statistics alone rule out every row group for an absent value above the maximum.)
        if !predicate.contains("IS NULL") && !predicate.contains("99999") {
            let plan = explain(&dir, predicate);
            assert!(
                plan.contains("index=[") && plan.contains("index_files=2/2"),
                "{predicate}: {plan}"
            );
        }
    }
    let plan = explain(&dir, "k = 4242");
    assert!(plan.contains("index=[k = 4242]"), "{plan}");
    // The rows an index selects for `k = v` all hold v: k is not read at all, and a count
    // reads nothing.
    let sql =
        format!("SELECT count(*) AS n, sum(k) AS s, min(k) AS lo FROM '{dir}' WHERE k = 4242");
    let n = expected(&|k, _| k == Some(4242))
        .split(',')
        .next()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert!(n > 0);
    assert_eq!(
        stdout(&ooc(&["query", "--format", "csv", &sql])),
        format!("n,s,lo\n{n},{},4242\n", n * 4242)
    );
    let sql = format!("SELECT count(*) FROM '{dir}' WHERE k = 4242");
    let analyzed = stdout(&ooc(&["query", "--explain-analyze", &sql]));
    assert!(
        analyzed.contains("bytes read from files: 0 B"),
        "{analyzed}"
    );
    // A predicate the index cannot narrow is not served.
    assert!(!explain(&dir, "k <> 3").contains("index="));
    assert!(!stdout(&ooc(&[
        "query",
        "--no-index",
        "--explain",
        &format!("SELECT count(*) FROM '{dir}' WHERE k = 4242")
    ]))
    .contains("index="));

    // A join's build keys read through the index: the probe scan decodes only their rows.
    let small = tempfile::tempdir().unwrap();
    let keys_file = small.path().join("keys.parquet");
    {
        let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![4242, 7, 123_456])) as ArrayRef],
        )
        .unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&keys_file).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    let sql = format!(
        "SELECT count(*) AS n, sum(v) AS total FROM '{dir}' t JOIN '{}' j ON t.k = j.key",
        keys_file.display()
    );
    let want = expected(&|k, _| matches!(k, Some(4242 | 7)));
    for extra in [&[][..], &["--no-index"][..]] {
        let mut args = vec!["query", "--format", "csv"];
        args.extend_from_slice(extra);
        args.push(&sql);
        let got: String = stdout(&ooc(&args))
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(got, want, "{extra:?}");
    }
    let analyzed = stdout(&ooc(&["query", "--explain-analyze", &sql]));
    let n = want.split(',').next().unwrap();
    let scan = analyzed
        .lines()
        .skip_while(|l| !(l.contains("ParquetScan:") && l.contains("dynamic_filters")))
        .nth(1)
        .unwrap_or_default();
    assert!(scan.contains(&format!("rows_out={n} ")), "{analyzed}");

    // Touched after indexing: b's index is ignored, and said to be.
    let b = tmp.path().join("b.parquet");
    let file = std::fs::File::options().write(true).open(&b).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3))
        .unwrap();
    drop(file);
    let plan = explain(&dir, "k = 4242");
    assert!(plan.contains("index_files=1/2"), "{plan}");
    assert!(
        plan.contains("b.parquet: index") && plan.contains("stale"),
        "{plan}"
    );
    assert_eq!(
        query(&dir, &[], "k = 4242"),
        expected(&|k, _| k == Some(4242))
    );
    assert!(stdout(&ooc(&["index", "list", &dir])).contains("IGNORED, stale"));

    // Rewritten with other data after indexing: its index is stale, the answers follow the
    // new data.
    write_file(&b, 0);
    let rewritten = |keep: &dyn Fn(Option<i64>) -> bool| {
        let (mut n, mut sum) = (0, 0);
        for (f, data_f) in [(0, 0), (1, 0)] {
            for i in 0..FILE_ROWS {
                if keep(k_of(data_f, i)) {
                    n += 1;
                    sum += i + f * FILE_ROWS - if f == 1 { FILE_ROWS } else { 0 };
                }
            }
        }
        format!("{n},{sum}\n")
    };
    assert_eq!(
        query(&dir, &[], "k = 4242"),
        rewritten(&|k| k == Some(4242))
    );

    // A damaged sidecar: a warning, a full scan, the right answer.
    let sidecar = tmp.path().join(".a.parquet.ooc-index");
    let bytes = std::fs::read(&sidecar).unwrap();
    std::fs::write(&sidecar, &bytes[..bytes.len() / 2]).unwrap();
    let sql = format!("SELECT count(*) AS n, sum(v) AS total FROM '{dir}' WHERE k = 4242");
    let o = ooc(&["query", "--format", "csv", &sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: ignored the index"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o).lines().nth(1).unwrap_or_default().to_string() + "\n",
        rewritten(&|k| k == Some(4242))
    );

    // Rebuilt, then dropped column by column.
    assert!(ooc(&["index", "create", &dir, "--columns", "k,s"])
        .status
        .success());
    assert!(!stdout(&ooc(&["index", "list", &dir])).contains("IGNORED"));
    let o = ooc(&["index", "drop", &dir, "--columns", "s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = stdout(&ooc(&["index", "list", &dir]));
    assert!(
        listed.contains("  k Int64") && !listed.contains("  s Utf8"),
        "{listed}"
    );
    assert!(ooc(&["index", "drop", &dir]).status.success());
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 2, "only the data files are left: {names:?}");
}

#[test]
fn index_errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap().to_string();
    write_file(&tmp.path().join("a.parquet"), 0);
    let o = ooc(&["index", "create", &dir, "--columns", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown column 'nope'") && stderr(&o).contains("k, s, v"),
        "{}",
        stderr(&o)
    );
    let o = ooc(&["index", "create", &dir]);
    assert_eq!(o.status.code(), Some(2), "--columns is required");
    let o = ooc(&[
        "index",
        "list",
        &tmp.path().join("missing").to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    // An index directory for read-only data: nothing is written beside the files.
    let index_dir = tempfile::tempdir().unwrap();
    let idx = index_dir.path().to_str().unwrap();
    let o = ooc(&[
        "index",
        "create",
        &dir,
        "--columns",
        "k",
        "--index-dir",
        idx,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    let sql = format!("SELECT count(*) FROM '{dir}' WHERE k = 4242");
    let plan = stdout(&ooc(&["query", "--explain", "--index-dir", idx, &sql]));
    assert!(plan.contains("index=[k = 4242]"), "{plan}");
    assert!(!stdout(&ooc(&["query", "--explain", &sql])).contains("index="));
}
