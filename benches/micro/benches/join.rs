//! Hash join build + probe, in memory and as a grace hash join, through a
//! [`Session`](ooc::Session) over in-memory batches.
//!
//! `SELECT p.k, p.v, b.w FROM probe p JOIN build b ON p.k = b.k`: an inner equi-join of a
//! probe input `(k BIGINT, v BIGINT)` of 1 Mi rows with a build input `(k BIGINT, w BIGINT)`
//! whose keys are unique, from in-memory tables in 8192-row batches (one probe partition per
//! core, each on its own thread; the build side is the smaller or, at equal size, the right
//! input). Every probe key matches exactly one build row, so the output has 1 Mi rows of
//! `(k, v, w)`; it is counted and dropped. Throughput is build + probe rows/s; an iteration
//! includes planning the query, which is microseconds against the join's milliseconds.
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
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ooc::Session;
use ooc_micro_bench::{
    batch_of, drain, mix, register, session, split, tune_allocator, Outcome, BATCH_ROWS, MIB,
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

const QUERY: &str = "SELECT p.k, p.v, b.w FROM probe p JOIN build b ON p.k = b.k";

/// A session under `limit` with `probe` and `build` registered.
fn tables(limit: Option<usize>, probe: &[RecordBatch], build: &[RecordBatch]) -> Session {
    let session = session(limit);
    register(&session, "probe", probe);
    register(&session, "build", build);
    session
}

/// Run the join to the end.
fn run(session: &Session) -> Outcome {
    drain(session.sql(QUERY).expect("query plans"))
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
        let build = side(("k", "w"), build_rows, build_rows, true);
        let probe = side(("k", "v"), PROBE_ROWS, build_rows, false);
        let session = tables(limit, &probe, &build);
        let check = run(&session);
        assert_eq!(check.rows, PROBE_ROWS, "{mode}/{name}");
        assert_eq!(
            check.spills > 0,
            limit.is_some(),
            "{mode}/{name}: spilled {} times",
            check.spills
        );
        group.throughput(Throughput::Elements((PROBE_ROWS + build_rows) as u64));
        group.bench_function(BenchmarkId::new(mode, name), |b| b.iter(|| run(&session)));
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
