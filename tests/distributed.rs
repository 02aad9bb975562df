//! Distributed plans (`ooc_engine::distributed`) give DuckDB's answers.
//!
//! Every TPC-H query at scale factor 0.1 is split into stages and its tasks run one after the
//! other in this process, each decoded from its fragment's bytes as a worker would, with one
//! thread and a small memory limit; the root runs over their exchange files. Results are
//! compared with the same DuckDB answers as `tests/tpch.rs`. Two ways of splitting are tried:
//! everything that can be split is (every join side hash-partitioned, no small table read
//! whole), and a mix (small tables read whole by every task, small join sides broadcast).

mod common;

use std::path::{Path, PathBuf};

use ooc_engine::distributed::{run_fragment, DistributedOptions, DistributedPlan};
use ooc_engine::sink::{write_batches, OutputFormat, WriteOptions};
use ooc_engine::{Session, SessionConfig};

fn repository_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Run every task of `plan` in order, as workers would; returns the bytes they shuffled.
fn run_tasks(plan: &mut DistributedPlan, worker: &SessionConfig) -> u64 {
    let mut written = 0;
    for stage in 0..plan.num_stages() {
        for input in plan.stage_inputs(stage) {
            assert!(
                input < stage,
                "stage {stage} reads stage {input}, not yet run"
            );
        }
        for task in 0..plan.num_tasks(stage) {
            let fragment = plan.fragment(stage, task).expect("fragment");
            let report = run_fragment(&fragment, worker)
                .unwrap_or_else(|e| panic!("stage {stage} task {task}: {e}"));
            written += plan.record(&report).expect("report").bytes_written();
        }
        assert!(plan.stage_done(stage));
    }
    written
}

fn distributed_csv(session: &Session, sql: &str, options: DistributedOptions) -> (String, usize) {
    let optimized = session.sql(sql).unwrap().optimized_plan().unwrap();
    let mut plan = DistributedPlan::new(optimized, options).unwrap();
    let worker = SessionConfig::default()
        .with_threads(1)
        .with_memory_limit(Some(64 << 20));
    run_tasks(&mut plan, &worker);
    let stream = plan
        .execute_root(&SessionConfig::default().with_threads(2))
        .unwrap();
    let schema = stream.schema();
    let mut out = Vec::new();
    write_batches(
        schema,
        stream,
        OutputFormat::Csv,
        &WriteOptions::default(),
        &mut out,
    )
    .unwrap();
    (String::from_utf8(out).unwrap(), plan.num_stages())
}

fn check(name: &str) {
    let sql = std::fs::read_to_string(repository_path(&format!("tests/tpch/queries/{name}.sql")))
        .unwrap();
    let expected =
        std::fs::read_to_string(repository_path(&format!("tests/tpch/golden/{name}.csv"))).unwrap();
    let session = Session::new(SessionConfig::default());
    session
        .register_directory(&common::tpch_sf01_dir())
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let ordered = common::has_outer_order_by(&sql);
    let mut all_split = DistributedOptions::new(2, scratch.path());
    all_split.replicate_bytes = 0;
    all_split.broadcast_bytes = 0;
    // Thresholds scaled to SF0.1: nation, region and supplier read whole by every task,
    // the rest split; small join sides broadcast.
    let mut mixed = DistributedOptions::new(2, scratch.path());
    mixed.replicate_bytes = 256 << 10;
    mixed.broadcast_bytes = 2 << 20;
    for (label, options) in [("all split", all_split), ("mixed", mixed)] {
        let (actual, stages) = distributed_csv(&session, &sql, options);
        let differences = common::compare_csv(&expected, &actual, ordered);
        assert!(
            differences.is_empty(),
            "{name} ({label}, {stages} stages): result differs from DuckDB's:\n  {}",
            differences.join("\n  ")
        );
        if label == "all split" {
            assert!(stages > 0, "{name}: nothing was split");
        }
    }
}

macro_rules! tpch_tests {
    ($($name:ident),* $(,)?) => {
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
fn a_task_refuses_files_changed_since_planning() {
    let dir = tempfile::tempdir().unwrap();
    let source = common::tpch_sf01_dir().join("orders.parquet");
    let copy = dir.path().join("orders.parquet");
    std::fs::copy(&source, &copy).unwrap();
    let session = Session::new(SessionConfig::default());
    session
        .register_parquet("orders", copy.to_str().unwrap())
        .unwrap();
    let optimized = session
        .sql("SELECT o_orderpriority, count(*) FROM orders GROUP BY o_orderpriority")
        .unwrap()
        .optimized_plan()
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut options = DistributedOptions::new(2, scratch.path());
    options.replicate_bytes = 0;
    let plan = DistributedPlan::new(optimized, options).unwrap();
    let fragment = plan.fragment(0, 0).unwrap();
    // Another writer replaces the file (here: with another table's file).
    std::fs::copy(common::tpch_sf01_dir().join("nation.parquet"), &copy).unwrap();
    let err = run_fragment(&fragment, &SessionConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("differ from those the query was planned with") && err.contains("orders"),
        "{err}"
    );
}
