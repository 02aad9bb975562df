//! Hash join build + probe through [`HashJoinExec`], in memory and as a grace hash join.
//!
//! An inner equi-join of a probe input `(k BIGINT, v BIGINT)` of 1 Mi rows with a build input
//! `(k BIGINT, w BIGINT)` whose keys are unique, from in-memory sources in 8192-row batches
//! (`MemoryExec`; one build partition, one probe partition per core, each probe partition on
//! its own thread, as the engine runs them). Every probe key matches exactly one build row, so
//! the output has 1 Mi rows of `(k, v, w)`; it is counted and dropped. Throughput is build +
//! probe rows/s.
//!
//! | benchmark               | build rows | budget    | what happens                        |
//! |-------------------------|------------|-----------|-------------------------------------|
//! | `in_memory/build_100k`  | 100 000    | unlimited | small build, probe-dominated        |
//! | `in_memory/build_1m`    | 1 Mi       | unlimited | build as large as the probe         |
//! | `spilling/build_1m`     | 1 Mi       | 16 MiB    | grace hash join: build and probe partitions spill and are joined from files |
//!
//! The setup asserts the row count and that only the `spilling` case spills.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ooc_engine::physical::expr::PhysicalExpr;
use ooc_engine::physical::joins::{HashJoinExec, JoinSide, PhysicalJoinType};
use ooc_engine::physical::memory_table::MemoryExec;
use ooc_engine::physical::ExecutionPlan;
use ooc_micro_bench::{
    batch_of, mix, run_partitions, split, task_context, threads, tune_allocator, BATCH_ROWS, MIB,
    SAMPLE_SIZE, WARM_UP,
};

const PROBE_ROWS: usize = 1 << 20;

/// `rows` rows of `(key, payload)`: keys are `0..rows` in a scrambled order when `unique`,
/// else random in `0..key_range`.
fn side(names: (&str, &str), rows: usize, key_range: usize, unique: bool) -> Vec<RecordBatch> {
    let keys = Int64Array::from_iter_values((0..rows as u64).map(|i| {
        if unique {
            // An odd multiplier coprime to `rows` permutes 0..rows.
            ((i * 0x9e37_79b9) % rows as u64) as i64
        } else {
            (mix(i) % key_range as u64) as i64
        }
    }));
    let payload = Int64Array::from_iter_values((0..rows as u64).map(|i| (mix(!i) % 1000) as i64));
    split(
        &batch_of(vec![
            (names.0, Arc::new(keys)),
            (names.1, Arc::new(payload)),
        ]),
        BATCH_ROWS,
    )
}

/// A fresh inner hash join of `probe` with `build` on their first columns (the operator
/// keeps its build state, so every run needs its own).
fn plan(probe: &Arc<Vec<RecordBatch>>, build: &Arc<Vec<RecordBatch>>) -> Arc<dyn ExecutionPlan> {
    let probe_exec = Arc::new(MemoryExec::new(
        probe[0].schema(),
        Arc::clone(probe),
        threads(),
    ));
    let build_exec = Arc::new(MemoryExec::new(build[0].schema(), Arc::clone(build), 1));
    let output_schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
        Field::new("w", DataType::Int64, false),
    ]));
    Arc::new(
        HashJoinExec::try_new(
            probe_exec,
            build_exec,
            vec![(
                PhysicalExpr::Column(0, "k".into()),
                PhysicalExpr::Column(0, "k".into()),
            )],
            None,
            PhysicalJoinType::Inner,
            vec![
                (JoinSide::Probe, 0),
                (JoinSide::Probe, 1),
                (JoinSide::Build, 1),
            ],
            output_schema,
            None,
            "k = k".into(),
        )
        .expect("valid hash join"),
    )
}

fn join(c: &mut Criterion) {
    let mut group = c.benchmark_group("join");
    // Iterations take tens of milliseconds to a second: ten flat samples (criterion warns
    // when a sample is a single iteration; that is intended).
    group.sampling_mode(SamplingMode::Flat);
    let cases = [
        ("in_memory", "build_100k", 100_000, None),
        ("in_memory", "build_1m", 1 << 20, None),
        ("spilling", "build_1m", 1 << 20, Some(16 * MIB)),
    ];
    for (mode, name, build_rows, limit) in cases {
        let build = Arc::new(side(("k", "w"), build_rows, build_rows, true));
        let probe = Arc::new(side(("k", "v"), PROBE_ROWS, build_rows, false));
        let check = plan(&probe, &build);
        let ctx = task_context(limit);
        assert_eq!(run_partitions(&check, &ctx), PROBE_ROWS, "{mode}/{name}");
        assert_eq!(
            check.metrics().spill_count() > 0,
            limit.is_some(),
            "{mode}/{name}: spilled {} times",
            check.metrics().spill_count()
        );
        group.throughput(Throughput::Elements((PROBE_ROWS + build_rows) as u64));
        group.bench_function(BenchmarkId::new(mode, name), |b| {
            b.iter(|| run_partitions(&plan(&probe, &build), &task_context(limit)))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    tune_allocator();
    Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = join
}
criterion_main!(benches);
