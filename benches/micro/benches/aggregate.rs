//! Hash aggregate throughput by group count.
//!
//! `SELECT k, sum(v), count(*) FROM t GROUP BY k` through a [`Session`](ooc_engine::Session)
//! over 2 Mi in-memory rows of `(k BIGINT, v BIGINT)` in 8192-row batches, with 10, 1 000,
//! 100 000 and 1 000 000 distinct keys in random order: the whole pipeline the planner builds
//! (partial aggregation per partition on every core, repartition, final aggregation), without
//! a scan. The result is streamed and dropped. Throughput is input rows/s.
//!
//! `spilling/1000000` runs the 1 M-group case under a 32 MiB budget, which the hash tables
//! outgrow: partitions are written to spill files and aggregated again from them. The setup
//! asserts that it really spills (and that the unlimited runs do not).

use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ooc_micro_bench::{
    drain, drain_explained, keys_and_values, register, session, split, tune_allocator, BATCH_ROWS,
    MIB, SAMPLE_SIZE, WARM_UP,
};

const ROWS: usize = 2 << 20;
const QUERY: &str = "SELECT k, sum(v) AS sv, count(*) AS n FROM t GROUP BY k";

fn aggregate(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(ROWS as u64));
    // Iterations take tens of milliseconds to seconds: ten flat samples of one or a few
    // iterations (criterion warns when a sample is a single iteration; that is intended).
    group.sampling_mode(SamplingMode::Flat);
    let cases = [
        ("in_memory", 10, None),
        ("in_memory", 1_000, None),
        ("in_memory", 100_000, None),
        ("in_memory", 1_000_000, None),
        ("spilling", 1_000_000, Some(32 * MIB)),
    ];
    for (mode, groups, limit) in cases {
        let batches = split(&keys_and_values(ROWS, groups), BATCH_ROWS);
        let session = session(limit);
        register(&session, "t", &batches);
        let (check, explained) = drain_explained(session.sql(QUERY).expect("plans"));
        if limit.is_some() {
            eprintln!("{mode}/{groups}, under a budget:\n{explained}");
        }
        assert_eq!(check.rows, groups, "{mode}/{groups}: one row per group");
        assert_eq!(
            check.spills > 0,
            limit.is_some(),
            "{mode}/{groups}: spilled {} times",
            check.spills
        );
        group.bench_function(BenchmarkId::new(mode, groups), |b| {
            b.iter(|| drain(session.sql(QUERY).expect("plans")))
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
    targets = aggregate
}
criterion_main!(benches);
