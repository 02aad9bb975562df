//! The result cache (`SessionConfig::cache`, `ooc query --cache`): what is a hit, what is a
//! miss, and that a miss always gives the right answer.
//!
//! Each test works on its own copy of the data and its own cache directory. Results are
//! compared with the same query run without the cache (whose answers the golden tests compare
//! with DuckDB's).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use ooc::cache::{CacheOptions, ResultCache};
use ooc::{CacheSettings, Session, SessionConfig};

const QUERY: &str = "SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_quantity) AS qty, \
                     sum(l_extendedprice * (1 - l_discount)) AS revenue \
                     FROM lineitem GROUP BY 1, 2 ORDER BY 1, 2";

/// A config that caches every result in `dir` (however fast it was computed).
fn cached(dir: &Path) -> SessionConfig {
    SessionConfig::default().with_threads(2).with_cache(Some(
        CacheSettings::in_dir(dir).with_min_compute(Duration::ZERO),
    ))
}

/// The result as text, and whether it came from the cache.
fn run(session: &Session, sql: &str) -> (String, bool) {
    let stream = session.sql(sql).unwrap().execute().unwrap();
    let hit = stream.plan_text().starts_with("CachedResult");
    let batches: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect();
    (pretty_format_batches(&batches).unwrap().to_string(), hit)
}

fn session_over(config: SessionConfig, table: &str, location: &Path) -> Session {
    let session = Session::new(config);
    session
        .register_parquet(table, location.to_str().unwrap())
        .unwrap();
    session
}

/// A private copy of SF0.01 `lineitem`.
fn lineitem_copy(dir: &Path) -> PathBuf {
    let path = dir.join("lineitem.parquet");
    std::fs::copy(common::test_data_dir().join("lineitem.parquet"), &path).unwrap();
    path
}

fn expected(table: &str, location: &Path, sql: &str) -> String {
    let session = session_over(SessionConfig::default(), table, location);
    run(&session, sql).0
}

#[test]
fn a_second_run_is_a_hit_whatever_the_memory_limit_threads_or_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let want = expected("lineitem", &data, QUERY);

    let first = session_over(
        cached(&cache)
            .with_memory_limit(Some(64 << 20))
            .with_threads(1),
        "lineitem",
        &data,
    );
    assert_eq!(run(&first, QUERY), (want.clone(), false));
    let other = cached(&cache)
        .with_memory_limit(None)
        .with_threads(4)
        .with_batch_size(100);
    let second = session_over(other, "lineitem", &data);
    assert_eq!(run(&second, QUERY), (want.clone(), true));
    let plan = second.sql(QUERY).unwrap().explain(false).unwrap();
    assert!(plan.starts_with("result cache: hit key="), "{plan}");
    // Another query (one literal differs) is another entry.
    let other_sql = QUERY.replace("1 - l_discount", "2 - l_discount");
    assert!(!run(&second, &other_sql).1);
    assert_eq!(
        ResultCache::open(&CacheOptions::new(&cache))
            .unwrap()
            .entries()
            .len(),
        2
    );
}

#[test]
fn touching_an_input_file_is_a_miss_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let want = expected("lineitem", &data, QUERY);
    assert!(!run(&session_over(cached(&cache), "lineitem", &data), QUERY).1);

    let file = std::fs::File::options().write(true).open(&data).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let session = session_over(cached(&cache), "lineitem", &data);
    let plan = session.sql(QUERY).unwrap().explain(false).unwrap();
    assert!(plan.starts_with("result cache: miss"), "{plan}");
    assert!(plan.contains("lineitem.parquet changed"), "{plan}");
    assert_eq!(run(&session, QUERY), (want.clone(), false));
    assert_eq!(run(&session, QUERY), (want, true));
}

/// A small Parquet file of one Int64 column `v`.
fn write_values(path: &Path, values: Vec<i64>) {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_dictionary_enabled(false)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

const SUM: &str = "SELECT count(*) AS n, sum(v) AS total FROM t";

#[test]
fn a_new_file_in_a_globbed_directory_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    write_values(&parts.join("a.parquet"), (0..100).collect());
    write_values(&parts.join("b.parquet"), (100..200).collect());
    let cache = dir.path().join("cache");
    let glob = parts.join("*.parquet");

    let (before, hit) = run(&session_over(cached(&cache), "t", &glob), SUM);
    assert!(!hit);
    assert!(before.contains("| 200 | 19900 |"), "{before}");
    assert!(run(&session_over(cached(&cache), "t", &glob), SUM).1);

    write_values(&parts.join("c.parquet"), (200..300).collect());
    let session = session_over(cached(&cache), "t", &glob);
    let plan = session.sql(SUM).unwrap().explain(false).unwrap();
    assert!(plan.contains("c.parquet is new"), "{plan}");
    let (after, hit) = run(&session, SUM);
    assert!(!hit);
    assert!(after.contains("| 300 | 44850 |"), "{after}");
}

#[test]
fn a_rewrite_with_the_same_size_and_modification_time_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    write_values(&path, (0..1000).collect());
    let meta = std::fs::metadata(&path).unwrap();
    let (size, mtime) = (meta.len(), meta.modified().unwrap());
    let cache = dir.path().join("cache");
    let (before, _) = run(&session_over(cached(&cache), "t", &path), SUM);
    assert!(before.contains("| 1000 | 499500 |"), "{before}");

    // Other values, the same layout: the same size. Then the old modification time.
    write_values(&path, (1000..2000).collect());
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.len(), meta.modified().unwrap()), (size, mtime));

    let (after, hit) = run(&session_over(cached(&cache), "t", &path), SUM);
    assert!(!hit, "served the old file's result: {after}");
    assert!(after.contains("| 1000 | 1499500 |"), "{after}");
}

/// The manifest of the only entry in `cache`.
fn only_manifest(cache: &Path) -> PathBuf {
    let manifests: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    manifests[0].clone()
}

#[test]
fn an_entry_of_another_engine_version_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let want = expected("lineitem", &data, QUERY);
    run(&session_over(cached(&cache), "lineitem", &data), QUERY);

    let manifest = only_manifest(&cache);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let version = format!("\"engine_version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version), "{text}");
    std::fs::write(
        &manifest,
        text.replace(&version, "\"engine_version\": \"0.0.1-old\""),
    )
    .unwrap();
    let session = session_over(cached(&cache), "lineitem", &data);
    let plan = session.sql(QUERY).unwrap().explain(false).unwrap();
    assert!(plan.contains("written by engine 0.0.1-old"), "{plan}");
    assert_eq!(run(&session, QUERY), (want.clone(), false));
    assert_eq!(run(&session, QUERY), (want, true));
}

#[test]
fn a_damaged_entry_is_a_miss_recomputed_and_replaced_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let sql = "SELECT l_orderkey, l_linenumber, l_comment FROM lineitem \
               WHERE l_orderkey < 2000 ORDER BY 1, 2";
    let want = expected("lineitem", &data, sql);
    run(&session_over(cached(&cache), "lineitem", &data), sql);

    let manifest = only_manifest(&cache);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let data_file = text
        .split("\"data_file\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let arrow_path = cache.join(&data_file);
    let mut bytes = std::fs::read(&arrow_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&arrow_path, &bytes).unwrap();

    let session = session_over(cached(&cache), "lineitem", &data);
    let mut stream = session.sql(sql).unwrap().execute().unwrap();
    assert!(stream.plan_text().starts_with("CacheWrite"));
    let batches: Vec<RecordBatch> = stream.by_ref().map(|b| b.unwrap()).collect();
    assert_eq!(pretty_format_batches(&batches).unwrap().to_string(), want);
    let warnings = stream.warnings().join("\n");
    assert!(
        warnings.contains("damaged result cache entry was replaced")
            && warnings.contains("checksum mismatch"),
        "{warnings}"
    );
    drop(stream);
    assert_eq!(run(&session, sql), (want, true));
    let report = ResultCache::open(&CacheOptions::new(&cache))
        .unwrap()
        .verify();
    assert_eq!((report.checked, report.removed.len()), (1, 0));
}

/// The data file a cache's only entry names.
fn only_data_file(cache: &Path) -> PathBuf {
    let text = std::fs::read_to_string(only_manifest(cache)).unwrap();
    let name = text
        .split("\"data_file\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    cache.join(name)
}

#[test]
fn a_deferred_hit_is_handed_over_unread_and_checked_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let sql = "SELECT l_orderkey, l_linenumber, l_comment FROM lineitem ORDER BY 1, 2";
    let want = expected("lineitem", &data, sql);
    run(&session_over(cached(&cache), "lineitem", &data), sql);

    // Checked only when read: no entry is small enough to be checked whole when opened.
    let mut settings = CacheSettings::in_dir(&cache)
        .with_min_compute(Duration::ZERO)
        .with_deferred_hits(true);
    settings.options.eager_check_bytes = 0;
    let config = SessionConfig::default().with_cache(Some(settings));
    let session = session_over(config, "lineitem", &data);

    let mut stream = session.sql(sql).unwrap().execute().unwrap();
    let stored = stream.stored_result().expect("a hit handed over unread");
    assert!(
        stream.by_ref().next().is_none(),
        "the stream hands out no batch"
    );
    assert!(stream.report().contains("handed over unread"));
    let read = stored.read(2).unwrap();
    assert_eq!(
        read.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
        stored.num_rows()
    );
    assert_eq!(pretty_format_batches(&read).unwrap().to_string(), want);
    drop((stream, read, stored));

    // A byte damaged after the hit was taken (in place, as a failing disk would) is found
    // when the result is read: an error naming the file, and the entry is removed.
    let stream = session.sql(sql).unwrap().execute().unwrap();
    let stored = stream.stored_result().unwrap();
    let arrow_path = only_data_file(&cache);
    {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&arrow_path)
            .unwrap();
        let middle = file.metadata().unwrap().len() / 2;
        let mut byte = [0u8];
        file.seek(SeekFrom::Start(middle)).unwrap();
        file.read_exact(&mut byte).unwrap();
        file.seek(SeekFrom::Start(middle)).unwrap();
        file.write_all(&[byte[0] ^ 0x40]).unwrap();
    }
    let err = stored.read(2).unwrap_err().to_string();
    assert!(
        err.contains("checksum mismatch") && err.contains(&arrow_path.display().to_string()),
        "{err}"
    );
    drop((stream, stored));
    assert!(!arrow_path.exists(), "the damaged entry is removed");
    assert_eq!(run(&session, sql), (want, false));
}

#[test]
fn results_computed_faster_than_the_threshold_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let config = SessionConfig::default().with_cache(Some(
        CacheSettings::in_dir(&cache).with_min_compute(Duration::from_secs(3600)),
    ));
    let session = session_over(config, "lineitem", &data);
    let report = session.sql(QUERY).unwrap().explain(true).unwrap();
    assert!(report.contains("stored=no: computed in"), "{report}");
    assert!(!run(&session, QUERY).1);
    assert!(ResultCache::open(&CacheOptions::new(&cache))
        .unwrap()
        .entries()
        .is_empty());
}

#[test]
fn plans_over_in_memory_data_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let session = Session::new(cached(&cache));
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
    session.register_view(
        "t",
        &session.read_batches("t", schema, vec![batch]).unwrap(),
    );
    let plan = session.sql(SUM).unwrap().explain(false).unwrap();
    assert!(
        plan.starts_with("result cache: not cached: the plan reads in-memory data"),
        "{plan}"
    );
    assert!(run(&session, SUM).0.contains("| 2 | 3     |"));
}

#[test]
fn threads_wanting_the_same_result_compute_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let want = expected("lineitem", &data, QUERY);
    let session = Arc::new(session_over(cached(&cache), "lineitem", &data));
    let results: Vec<(String, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let session = Arc::clone(&session);
                scope.spawn(move || run(&session, QUERY))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(|(text, _)| *text == want));
    let computed = results.iter().filter(|(_, hit)| !hit).count();
    assert_eq!(computed, 1, "the result was computed {computed} times");
}

#[test]
fn the_size_bound_evicts_the_least_recently_used_entries() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let sql = |i: usize| {
        format!(
            "SELECT l_orderkey, l_comment FROM lineitem WHERE l_orderkey % 10 = {i} ORDER BY 1, 2"
        )
    };
    // A bound that holds three and a half results.
    let probe = dir.path().join("probe");
    run(&session_over(cached(&probe), "lineitem", &data), &sql(0));
    let one = ResultCache::open(&CacheOptions::new(&probe))
        .unwrap()
        .stats()
        .bytes;
    let bound = one * 7 / 2;
    let config = cached(&cache).with_cache(Some(
        CacheSettings::in_dir(&cache)
            .with_min_compute(Duration::ZERO)
            .with_max_size(Some(bound)),
    ));
    let session = session_over(config, "lineitem", &data);
    for i in 0..6 {
        assert!(!run(&session, &sql(i)).1);
        // Keep result 0 recently used: it must survive.
        std::thread::sleep(Duration::from_millis(20));
        assert!(run(&session, &sql(0)).1, "result 0 was evicted at {i}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let store = ResultCache::open(&CacheOptions::new(&cache)).unwrap();
    let entries = store.entries();
    let total: u64 = entries.iter().map(|e| e.disk_bytes).sum();
    let largest = entries.iter().map(|e| e.disk_bytes).max().unwrap();
    assert!(
        total <= bound + largest,
        "{total} bytes in {} entries",
        entries.len()
    );
    assert!(entries.len() < 6, "nothing was evicted");
    // The most recent ones are there, the oldest are not.
    assert!(run(&session, &sql(5)).1);
    assert!(!run(&session, &sql(1)).1);
}

#[test]
fn a_query_built_on_a_stored_result_reads_it_instead_of_recomputing() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    let inner = "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS q, count(*) AS n \
                 FROM lineitem GROUP BY 1, 2";
    let session = session_over(cached(&cache), "lineitem", &data);
    run(&session, inner);
    for outer in [
        format!("SELECT * FROM ({inner}) t WHERE n > 1000 ORDER BY q"),
        format!(
            "WITH t AS ({inner}) SELECT a.l_returnflag, a.q + b.q AS qq FROM t a JOIN t b \
             ON a.l_returnflag = b.l_returnflag AND a.l_linestatus = b.l_linestatus ORDER BY 1, 2"
        ),
    ] {
        let plan = session.sql(&outer).unwrap().explain(false).unwrap();
        assert!(plan.contains("CachedScan: table=stored"), "{plan}");
        let report = session.sql(&outer).unwrap().explain(true).unwrap();
        assert!(report.contains("bytes read from files: 0 B"), "{report}");
        assert_eq!(run(&session, &outer).0, expected("lineitem", &data, &outer));
    }
}

#[test]
fn small_batches_are_stored_as_full_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = lineitem_copy(dir.path());
    let cache = dir.path().join("cache");
    // A selective filter: a few rows out of every scanned batch.
    let sql = "SELECT l_orderkey, l_comment FROM lineitem WHERE l_orderkey % 50 = 0";
    let session = session_over(cached(&cache).with_batch_size(1000), "lineitem", &data);
    let stream = session.sql(sql).unwrap().execute().unwrap();
    let (mut rows, mut batches) = (0, 0);
    for batch in stream {
        rows += batch.unwrap().num_rows();
        batches += 1;
    }
    let entries = ResultCache::open(&CacheOptions::new(&cache))
        .unwrap()
        .entries();
    let stored = &entries[0].manifest;
    assert_eq!(stored.rows, rows as u64);
    assert!(
        batches > 10,
        "the filter's output came in {batches} batches"
    );
    assert!(
        stored.batches <= (rows as u64).div_ceil(1000) + 1,
        "{} rows stored in {} batches",
        rows,
        stored.batches
    );
    assert!(run(&session, sql).1);
}
