//! Spill file throughput: the engine's spill files (through its `bench` entry points) writing
//! batches to a compressed Arrow IPC stream (zstd level 1, buffered) and reading them back.
//!
//! Two inputs of 1 Mi rows in 8192-row batches: `lineitem` (nine mixed columns, strings
//! included) and `keys_values` (two BIGINT columns of random values below 2^20). `write` creates a
//! file, writes every batch and finishes it; the file is deleted outside the timed part.
//! `read` reads a finished file back batch by batch. Throughput is in-memory (uncompressed)
//! bytes/s; the setup prints the compressed size. Files go to the system temp directory, so
//! a read comes from the page cache: this measures decompression and IPC decoding, not disk.

use std::hint::black_box;
use std::time::Duration;

use arrow::array::RecordBatch;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ooc_engine::bench::{SpillFiles, WrittenSpill};
use ooc_micro_bench::{
    keys_and_values, lineitem, slice_bytes, split, tune_allocator, BATCH_ROWS, MIB, SAMPLE_SIZE,
    WARM_UP,
};

const ROWS: usize = 1 << 20;

/// Write `batches` to a new spill file.
fn write(files: &SpillFiles, batches: &[RecordBatch]) -> WrittenSpill {
    files.write(batches).expect("spill write")
}

/// Read `file` back; returns its rows.
fn read(file: &WrittenSpill) -> usize {
    file.read(|batch| {
        black_box(batch);
    })
    .expect("spill read")
}

fn spill(c: &mut Criterion) {
    let manager = SpillFiles::default();
    let inputs = [
        ("lineitem", split(&lineitem(ROWS), BATCH_ROWS)),
        (
            "keys_values",
            split(&keys_and_values(ROWS, ROWS), BATCH_ROWS),
        ),
    ];
    let mut group = c.benchmark_group("spill");
    for (name, batches) in &inputs {
        let bytes = slice_bytes(batches);
        let file = write(&manager, batches);
        eprintln!(
            "spill/{name}: {:.1} MiB in memory, {:.1} MiB on disk ({:.2}x)",
            bytes as f64 / MIB as f64,
            file.bytes() as f64 / MIB as f64,
            bytes as f64 / file.bytes() as f64
        );
        assert_eq!(read(&file), ROWS);
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(BenchmarkId::new("write", name), |b| {
            b.iter_with_large_drop(|| write(&manager, batches))
        });
        group.bench_function(BenchmarkId::new("read", name), |b| b.iter(|| read(&file)));
    }
    group.finish();
}

fn config() -> Criterion {
    tune_allocator();
    Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        // The slowest cases here take 40–220 ms an iteration: 3 s fits 55 of them.
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = spill
}
criterion_main!(benches);
