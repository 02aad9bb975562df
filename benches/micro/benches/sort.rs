//! Sort throughput, in memory and as an external merge sort.
//!
//! `SELECT … FROM t ORDER BY key` through a [`Session`](ooc_engine::Session) over 1 Mi
//! in-memory rows of `(k BIGINT random, v BIGINT, s VARCHAR 20–50 bytes nearly all distinct)`
//! in 8192-row batches; the sorted result is streamed and dropped. Keys: `k` (a primitive
//! comparison) or `s` (string comparison). `in_memory` runs without a budget; `spilling` runs
//! under 16 MiB, a quarter of the 62 MiB input, so sorted runs go to spill files and are
//! merged back (the setup asserts it spills). Throughput is rows/s.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ooc_micro_bench::{
    batch_of, drain, drain_explained, lineitem, mix, register, session, slice_bytes, split,
    tune_allocator, BATCH_ROWS, MIB, SAMPLE_SIZE, WARM_UP,
};

const ROWS: usize = 1 << 20;
const BUDGET: usize = 16 * MIB;

/// `(k, v, s)`: random keys, random values, `lineitem`'s comments with the row number
/// appended (so nearly every string is distinct and 20–50 bytes long).
fn sort_input() -> RecordBatch {
    let k = Int64Array::from_iter_values((0..ROWS as u64).map(|i| (mix(i) >> 1) as i64));
    let v = Int64Array::from_iter_values((0..ROWS as u64).map(|i| (mix(!i) % 1000) as i64));
    let comments = lineitem(ROWS);
    let s: StringArray = comments
        .column(8)
        .as_string::<i32>()
        .iter()
        .enumerate()
        .map(|(i, c)| Some(format!("{} {i}", c.unwrap_or_default())))
        .collect();
    batch_of(vec![
        ("k", Arc::new(k) as ArrayRef),
        ("v", Arc::new(v)),
        ("s", Arc::new(s)),
    ])
}

fn sort(c: &mut Criterion) {
    let batches = split(&sort_input(), BATCH_ROWS);
    eprintln!(
        "sort: {ROWS} rows, {:.1} MiB in memory",
        slice_bytes(&batches) as f64 / MIB as f64
    );
    let mut group = c.benchmark_group("sort");
    group.throughput(Throughput::Elements(ROWS as u64));
    // Iterations take tens of milliseconds to a second: ten flat samples (criterion warns
    // when a sample is a single iteration; that is intended).
    group.sampling_mode(SamplingMode::Flat);
    for key in ["k", "s"] {
        let query = format!("SELECT k, v, s FROM t ORDER BY {key}");
        for (mode, limit) in [("in_memory", None), ("spilling", Some(BUDGET))] {
            let session = session(limit);
            register(&session, "t", &batches);
            let (check, explained) = drain_explained(session.sql(&query).expect("plans"));
            if limit.is_some() {
                eprintln!("sort by {key}, {mode}, under a budget:\n{explained}");
            }
            assert_eq!(check.rows, ROWS);
            assert_eq!(
                check.spills > 0,
                limit.is_some(),
                "sort by {key}, {mode}: spilled {} times",
                check.spills
            );
            let name = if key == "k" {
                "int64_key"
            } else {
                "string_key"
            };
            group.bench_function(BenchmarkId::new(name, mode), |b| {
                b.iter(|| drain(session.sql(&query).expect("plans")))
            });
        }
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
    targets = sort
}
criterion_main!(benches);
