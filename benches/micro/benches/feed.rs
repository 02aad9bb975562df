//! Batches for models: what a feed adds on top of the query that produces its rows.
//!
//! Group `feed`: 1.6 Mi rows of five `float32` columns (20 bytes a row), in 8192-row input
//! batches, fed as batches of 100,000 rows and each turned into a row-major `float32` matrix,
//! as `iter_batches(100_000, to="numpy", dtype="float32")` does. `in_order` cuts the batches
//! (matrices filled from the pieces); `shuffled` permutes rows within windows of 8 batches
//! (800,000 rows, 16 MB) first; `shuffled_arrow` does the same but hands out record batches
//! (`iter_batches(100_000, shuffle=True)`). Throughput is rows/s.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ooc::feed::{Feed, FeedOptions, ShuffleOptions};
use ooc::sink::NpyType;
use ooc_micro_bench::{mix, tune_allocator, MEASUREMENT, SAMPLE_SIZE, WARM_UP};

const ROWS: usize = 1 << 21;
const INPUT_ROWS: usize = 8192;
const BATCH: usize = 100_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        (0..5)
            .map(|c| Field::new(format!("c{c}"), DataType::Float32, false))
            .collect::<Vec<_>>(),
    ))
}

fn input(schema: &SchemaRef) -> Vec<RecordBatch> {
    (0..ROWS)
        .step_by(INPUT_ROWS)
        .map(|start| {
            let columns: Vec<ArrayRef> = (0..5u64)
                .map(|c| {
                    let values = (start..start + INPUT_ROWS)
                        .map(|r| (mix(r as u64 * 5 + c) % 10_000) as f32 / 100.0);
                    Arc::new(Float32Array::from_iter_values(values)) as ArrayRef
                })
                .collect();
            RecordBatch::try_new(SchemaRef::clone(schema), columns).expect("valid batch")
        })
        .collect()
}

fn run(input: &[RecordBatch], schema: &SchemaRef, options: FeedOptions, arrow: bool) -> usize {
    let feed = Feed::new(
        input.iter().cloned().map(Ok),
        SchemaRef::clone(schema),
        options,
    )
    .expect("valid options");
    let mut rows = 0;
    for batch in feed {
        let batch = batch.expect("a batch");
        rows += if arrow {
            black_box(batch.into_record_batch().expect("a record batch")).num_rows()
        } else {
            black_box(batch.to_matrix(NpyType::Float32).expect("numbers")).rows
        };
    }
    rows
}

fn feed(c: &mut Criterion) {
    tune_allocator();
    let schema = schema();
    let input = input(&schema);
    let mut group = c.benchmark_group("feed");
    group
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .throughput(Throughput::Elements(ROWS as u64));
    let in_order = FeedOptions {
        batch_size: Some(BATCH),
        ..FeedOptions::default()
    };
    group.bench_function("in_order", |b| {
        b.iter(|| assert_eq!(run(&input, &schema, in_order, false), ROWS))
    });
    let shuffled = FeedOptions {
        batch_size: Some(BATCH),
        shuffle: Some(ShuffleOptions::new(7)),
        ..FeedOptions::default()
    };
    group.bench_function("shuffled", |b| {
        b.iter(|| assert_eq!(run(&input, &schema, shuffled, false), ROWS))
    });
    group.bench_function("shuffled_arrow", |b| {
        b.iter(|| assert_eq!(run(&input, &schema, shuffled, true), ROWS))
    });
    group.finish();
}

criterion_group!(benches, feed);
criterion_main!(benches);
