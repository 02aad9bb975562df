//! `ooc` command-line behaviour: output formats, atomic output files, exit codes and the
//! error messages for bad input (each test names the failure it guards against).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
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

fn write(path: &Path, columns: Vec<(&str, ArrayRef)>, row_group_rows: usize) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// `dir/t.parquet`: id 0..100 and a string column.
fn dataset() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<i64> = (0..100).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
    write(
        &dir.path().join("t.parquet"),
        vec![
            ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
            ("name", Arc::new(StringArray::from(names))),
        ],
        10,
    );
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[test]
fn formats_csv_json_ndjson_table() {
    let (_d, dir) = dataset();
    let data = dir.to_str().unwrap();
    let q = "SELECT id, name FROM t WHERE id < 2 ORDER BY id";
    let csv = ooc(&["query", "--data", data, "--format", "csv", q]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    assert_eq!(stdout(&csv), "id,name\n0,n0\n1,n1\n");
    let json = ooc(&["query", "--data", data, "--format", "json", q]);
    assert_eq!(
        stdout(&json).trim(),
        r#"[{"id":0,"name":"n0"},{"id":1,"name":"n1"}]"#
    );
    let nd = ooc(&["query", "--data", data, "--format", "ndjson", q]);
    assert_eq!(
        stdout(&nd),
        "{\"id\":0,\"name\":\"n0\"}\n{\"id\":1,\"name\":\"n1\"}\n"
    );
    let table = ooc(&["query", "--data", data, q]);
    let text = stdout(&table);
    assert!(
        text.contains("| id | name |") && text.contains("(2 rows)"),
        "{text}"
    );
    // Empty results keep the header.
    let empty = ooc(&[
        "query",
        "--data",
        data,
        "--format",
        "csv",
        "SELECT id FROM t WHERE id < 0",
    ]);
    assert_eq!(stdout(&empty), "id\n");
}

#[test]
fn output_file_is_written_atomically_and_readable() {
    let (_d, dir) = dataset();
    let data = dir.to_str().unwrap();
    let out = dir.join("result.parquet");
    let o = ooc(&[
        "query",
        "--data",
        data,
        "-o",
        out.to_str().unwrap(),
        "SELECT id * 2 AS x FROM t",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let back = ooc(&[
        "query",
        "--format",
        "csv",
        &format!("SELECT count(*), sum(x) FROM '{}'", out.display()),
    ]);
    assert_eq!(stdout(&back), "count(*),sum(x)\n100,9900\n");
    // A query failing mid-way (invalid cast on some row) leaves no output and no temp file.
    let bad = dir.join("bad.csv");
    let o = ooc(&[
        "query",
        "--data",
        data,
        "-o",
        bad.to_str().unwrap(),
        "SELECT CAST(name AS INTEGER) FROM t",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ooc-tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn npy_output_is_a_row_major_array_with_its_shape_in_the_header() {
    let (_d, dir) = dataset();
    let data = dir.to_str().unwrap();
    let out = dir.join("x.npy");
    let o = ooc(&[
        "query",
        "--data",
        data,
        "-o",
        out.to_str().unwrap(),
        "--npy-dtype",
        "int64",
        "SELECT id, id * 10 FROM t ORDER BY id",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..128]).to_string();
    assert!(header.contains("'descr': '<i8'"), "{header}");
    assert!(header.contains("'shape': (100, 2)"), "{header}");
    let values: Vec<i64> = bytes[128..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values.len(), 200);
    assert_eq!(&values[..4], &[0, 0, 1, 10]);
    // Without ORDER BY the rows keep the file's order (ten row groups, four threads).
    let o = ooc(&[
        "query",
        "--data",
        data,
        "--threads",
        "4",
        "-o",
        out.to_str().unwrap(),
        "--npy-dtype",
        "int64",
        "SELECT id FROM t WHERE id % 3 <> 1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    let values: Vec<i64> = bytes[128..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        values,
        (0..100).filter(|i| i % 3 != 1).collect::<Vec<i64>>()
    );
    // Strings are refused by name, and nothing is left behind.
    let bad = dir.join("bad.npy");
    let o = ooc(&[
        "query",
        "--data",
        data,
        "-o",
        bad.to_str().unwrap(),
        "SELECT name FROM t",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("column 'name' is VARCHAR"),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists());
}

#[test]
fn bloom_filters_are_written_on_request_and_rule_out_row_groups() {
    let (_d, dir) = dataset();
    let data = dir.to_str().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("b.parquet");
    let o = ooc(&[
        "query",
        "--data",
        data,
        "-o",
        out.to_str().unwrap(),
        "--bloom-filter",
        "name,id",
        "SELECT id, name FROM t",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader;
    let rg = reader.metadata().row_group(0);
    assert!(rg
        .columns()
        .iter()
        .all(|c| c.bloom_filter_offset().is_some()));
    // 'n5x' sorts between the row group's min and max: only the bloom filter rules it out.
    let sql = format!(
        "SELECT count(*) FROM '{}' WHERE name = 'n5x'",
        out.display()
    );
    let plan = stdout(&ooc(&["query", "--explain", &sql]));
    assert!(plan.contains("bloom_pruned=1"), "{plan}");
    assert_eq!(
        stdout(&ooc(&["query", "--format", "csv", &sql])),
        "count(*)\n0\n"
    );
    let sql = format!(
        "SELECT count(*) FROM '{}' WHERE name IN ('n5x', 'n42')",
        out.display()
    );
    assert!(!stdout(&ooc(&["query", "--explain", &sql])).contains("bloom_pruned"));
    assert_eq!(
        stdout(&ooc(&["query", "--format", "csv", &sql])),
        "count(*)\n1\n"
    );
    // Unknown columns are listed; other formats refuse the option.
    let o = ooc(&[
        "query",
        "--data",
        data,
        "-o",
        out_dir.path().join("c.parquet").to_str().unwrap(),
        "--bloom-filter",
        "nope",
        "SELECT id, name FROM t",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("'nope'") && stderr(&o).contains("id, name"),
        "{}",
        stderr(&o)
    );
    assert!(!out_dir.path().join("c.parquet").exists());
    let o = ooc(&[
        "query",
        "--data",
        data,
        "-o",
        out_dir.path().join("c.csv").to_str().unwrap(),
        "--bloom-filter",
        "id",
        "SELECT id FROM t",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("--bloom-filter"), "{}", stderr(&o));
}

#[test]
fn exit_codes_and_usage_errors() {
    let (_d, dir) = dataset();
    let data = dir.to_str().unwrap();
    assert_eq!(
        ooc(&["query", "--data", data, "SELECT 1"]).status.code(),
        Some(0)
    );
    assert_eq!(
        ooc(&["query", "--data", data, "SELECT nope FROM t"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        ooc(&["query", "--bogus-flag", "SELECT 1"]).status.code(),
        Some(2)
    );
    assert_eq!(ooc(&["query"]).status.code(), Some(2));
    assert_eq!(
        ooc(&["query", "--format", "xml", "SELECT 1"]).status.code(),
        Some(2)
    );
}

#[test]
fn unknown_names_list_valid_ones() {
    let (_d, dir) = dataset();
    let data = dir.to_str().unwrap();
    let o = ooc(&["query", "--data", data, "SELECT nmae FROM t"]);
    let err = stderr(&o);
    assert!(
        err.contains("column 'nmae' not found")
            && err.contains("did you mean 'name'")
            && err.contains("id, name"),
        "{err}"
    );
    let o = ooc(&["query", "--data", data, "SELECT * FROM tt"]);
    assert!(
        stderr(&o).contains("table 'tt' not found") && stderr(&o).contains("known tables: t"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn syntax_errors_point_at_the_location() {
    let o = ooc(&["query", "SELECT 1 +\nFROM x WHERE"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("SQL syntax error") && err.contains("line 2"),
        "{err}"
    );
    assert!(err.contains("^"), "a caret marks the position: {err}");
}

#[test]
fn type_errors_and_division_by_zero() {
    let o = ooc(&["query", "SELECT 'abc' + 1"]);
    assert!(
        stderr(&o).contains("cannot apply '+' to VARCHAR and INTEGER"),
        "{}",
        stderr(&o)
    );
    let o = ooc(&[
        "query",
        "--format",
        "csv",
        "--null-string",
        "NULL",
        "SELECT 1 / 0 AS a, 5 % 0 AS b, 1.5 / 0 AS c",
    ]);
    assert_eq!(stdout(&o), "a,b,c\ninf,NULL,inf\n");
}

#[test]
fn missing_corrupt_truncated_and_empty_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.parquet");
    let o = ooc(&["query", &format!("SELECT * FROM '{}'", missing.display())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no Parquet files found") && stderr(&o).contains("missing.parquet"),
        "{}",
        stderr(&o)
    );

    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(
        &garbage,
        b"this is not a parquet file at all, not even close",
    )
    .unwrap();
    let o = ooc(&["query", &format!("SELECT * FROM '{}'", garbage.display())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("garbage.parquet is not a valid Parquet file"),
        "{}",
        stderr(&o)
    );

    let empty = dir.path().join("empty.parquet");
    std::fs::write(&empty, b"").unwrap();
    let o = ooc(&["query", &format!("SELECT * FROM '{}'", empty.display())]);
    assert!(
        stderr(&o).contains("empty.parquet is not a valid Parquet file"),
        "{}",
        stderr(&o)
    );

    // Truncate a real file in the middle of its data pages and in its footer.
    let good = dir.path().join("good.parquet");
    let ids: Vec<i64> = (0..50_000).collect();
    write(
        &good,
        vec![("id", Arc::new(Int64Array::from(ids)) as ArrayRef)],
        10_000,
    );
    let bytes = std::fs::read(&good).unwrap();
    for (name, len) in [
        ("cut_footer.parquet", bytes.len() - 5),
        ("cut_half.parquet", bytes.len() / 2),
    ] {
        let cut = dir.path().join(name);
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let o = ooc(&["query", &format!("SELECT sum(id) FROM '{}'", cut.display())]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    // Corrupt the first page header (values inside plain-encoded pages carry no checksum, so
    // only structural damage is detectable): a clear error naming the file, never a panic.
    let mut corrupt = bytes.clone();
    for b in corrupt.iter_mut().skip(4).take(60) {
        *b = 0xAB;
    }
    let bad = dir.path().join("corrupt_pages.parquet");
    std::fs::write(&bad, &corrupt).unwrap();
    let o = ooc(&["query", &format!("SELECT sum(id) FROM '{}'", bad.display())]);
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("corrupt_pages.parquet"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn schemas_are_unified_or_rejected_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    write(
        &parts.join("a.parquet"),
        vec![("x", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef)],
        10,
    );
    write(
        &parts.join("b.parquet"),
        vec![
            ("x", Arc::new(Int64Array::from(vec![3i64])) as ArrayRef),
            ("y", Arc::new(StringArray::from(vec!["z"]))),
        ],
        10,
    );
    let o = ooc(&[
        "query",
        "--format",
        "csv",
        "--null-string",
        "NULL",
        &format!("SELECT x, y FROM '{}' ORDER BY x", parts.display()),
    ]);
    assert_eq!(stdout(&o), "x,y\n1,NULL\n2,NULL\n3,z\n", "{}", stderr(&o));

    write(
        &parts.join("c.parquet"),
        vec![("x", Arc::new(StringArray::from(vec!["oops"])) as ArrayRef)],
        10,
    );
    let o = ooc(&["query", &format!("SELECT x FROM '{}'", parts.display())]);
    let err = stderr(&o);
    assert!(
        err.contains("schema mismatch for column 'x'")
            && err.contains("a.parquet")
            && err.contains("c.parquet"),
        "{err}"
    );
}

#[test]
fn hive_partitions_become_columns_and_prune_files() {
    let dir = tempfile::tempdir().unwrap();
    for year in [2023, 2024] {
        let folder = dir.path().join(format!("year={year}"));
        std::fs::create_dir(&folder).unwrap();
        write(
            &folder.join("data.parquet"),
            vec![(
                "v",
                Arc::new(Int64Array::from(vec![year as i64, 1])) as ArrayRef,
            )],
            10,
        );
    }
    let q = format!(
        "SELECT year, sum(v) AS s FROM '{}' WHERE year = 2024 GROUP BY year",
        dir.path().display()
    );
    let o = ooc(&["query", "--format", "csv", &q]);
    assert_eq!(stdout(&o), "year,s\n2024,2025\n", "{}", stderr(&o));
    let explain = ooc(&["query", "--explain", &q]);
    assert!(
        stdout(&explain).contains("row_groups=1/2"),
        "{}",
        stdout(&explain)
    );
}

#[test]
fn explain_analyze_reports_metrics() {
    let (_d, dir) = dataset();
    let o = ooc(&[
        "query",
        "--data",
        dir.to_str().unwrap(),
        "--explain-analyze",
        "SELECT count(*) FROM t WHERE id > 85",
    ]);
    let text = stdout(&o);
    for needle in [
        "row_groups=2/10",
        "rows_out=",
        "peak_mem=",
        "wall time",
        "peak RSS",
        "bytes read",
    ] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
    // Not a terminal: no progress bar on stderr.
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn schema_command_prints_statistics() {
    let (_d, dir) = dataset();
    let o = ooc(&["schema", dir.join("t.parquet").to_str().unwrap()]);
    let text = stdout(&o);
    assert!(
        text.contains("id")
            && text.contains("Int64")
            && text.contains("rows: 100")
            && text.contains("row groups: 10"),
        "{text}"
    );
    assert!(text.contains("min=0") && text.contains("max=99"), "{text}");
}

#[test]
fn csv_and_ndjson_files_are_queried_and_bad_records_located() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,name,amount\n");
    for i in 0..5000 {
        text.push_str(&format!("{i},\"name, {i}\",{}.25\n", i % 100));
    }
    let good = dir.path().join("sales.csv");
    std::fs::write(&good, &text).unwrap();
    let table = format!("sales={}", good.display());

    // --table by extension; quoted delimiters; the data set is registered once.
    let o = ooc(&[
        "query",
        "--table",
        &table,
        "--format",
        "csv",
        "SELECT count(*) AS n, sum(amount) AS s, max(name) AS m FROM sales",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n,s,m\n5000,248750.0,\"name, 999\"\n");

    // A value that does not fit: the file, its line, the column and the value.
    text.push_str("5000,late,12x\n5001,ok,1\n");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, &text).unwrap();
    // (The sample that infers the types stops before the bad line.)
    let sql = format!(
        "SELECT sum(amount) FROM read_csv('{}', sample_size = 1000)",
        bad.display()
    );
    let o = ooc(&["query", &sql]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("bad.csv:5002") && err.contains("'amount'") && err.contains("12x"),
        "{err}"
    );

    // Skipped on request, counted in a warning.
    let sql = format!(
        "SELECT count(*) AS n, sum(amount) AS s FROM read_csv('{}', ignore_errors = true, sample_size = 1000)",
        bad.display()
    );
    let o = ooc(&["query", "--format", "csv", &sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n,s\n5001,248751.0\n");
    assert!(
        stderr(&o).contains("1 bad records skipped") && stderr(&o).contains("bad.csv:5002"),
        "{}",
        stderr(&o)
    );

    // Options that do not exist are refused by name.
    let sql = format!(
        "SELECT * FROM read_csv('{}', dateformat = '%d')",
        good.display()
    );
    let o = ooc(&["query", &sql]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("read_csv option dateformat"),
        "{}",
        stderr(&o)
    );

    // NDJSON, gzip-compressed, with an unknown column named with the valid ones.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(
        &mut gz,
        b"{\"k\": \"a\", \"v\": 1}\n{\"k\": \"b\", \"v\": null}\n",
    )
    .unwrap();
    let json = dir.path().join("events.jsonl.gz");
    std::fs::write(&json, gz.finish().unwrap()).unwrap();
    let sql = format!("SELECT k, v FROM '{}' ORDER BY k", json.display());
    let o = ooc(&["query", "--format", "csv", &sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "k,v\na,1\nb,\n");
    let sql = format!("SELECT w FROM '{}'", json.display());
    let o = ooc(&["query", &sql]);
    assert!(
        stderr(&o).contains("k") && stderr(&o).contains("v"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_glob_of_more_files_than_open_descriptors_is_read() {
    // Files are mapped and closed: 300 files under a limit of 64 open descriptors.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..300i64 {
        write(
            &dir.path().join(format!("f{i:04}.parquet")),
            vec![("a", Arc::new(Int64Array::from(vec![i])) as ArrayRef)],
            10,
        );
    }
    let glob = format!("{}/*.parquet", dir.path().display());
    let script = format!(
        "ulimit -n 64; exec '{}' query --no-progress --format csv \
         \"SELECT count(*) AS n, sum(a) AS s, min(a) AS lo, max(a) AS hi FROM '{glob}' WHERE a % 2 = 0\"",
        env!("CARGO_BIN_EXE_ooc")
    );
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "n,s,lo,hi\n150,22350,0,298\n");
}

#[test]
fn a_file_of_thousands_of_columns_is_planned_and_read() {
    // Name lookups were quadratic in the columns: 10,000 columns took 33 s to plan.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.parquet");
    let names: Vec<String> = (0..3000).map(|i| format!("c{i}")).collect();
    let columns: Vec<(&str, ArrayRef)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let values: Vec<i64> = (0..100).map(|r| r * 10_000 + i as i64).collect();
            (n.as_str(), Arc::new(Int64Array::from(values)) as ArrayRef)
        })
        .collect();
    write(&path, columns, 40);
    let file = path.display().to_string();
    let out = ooc(&[
        "query",
        "--no-progress",
        "--format",
        "csv",
        &format!("SELECT c0, C2999, sum(c1500) OVER () AS s FROM '{file}' WHERE c1500 >= 981500 ORDER BY c0"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "c0,c2999,s\n980000,982999,1973000\n990000,992999,1973000\n"
    );
    let out = ooc(&[
        "query",
        "--no-progress",
        "--format",
        "csv",
        &format!("SELECT * FROM '{file}' LIMIT 1"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap().split(',').count(), 3000);
    // Any row (no ORDER BY): its last value is row * 10,000 + 2,999.
    let last: i64 = lines
        .next()
        .unwrap()
        .split(',')
        .nth(2999)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last % 10_000, 2999);
}
