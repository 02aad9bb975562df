//! # ooc-micro-bench
//!
//! Criterion micro-benchmarks of the pieces a query spends its time in, one bench file per
//! topic, and the fixtures they share (this library). Whole queries against other engines are
//! measured by the peer runner (`benches/bench.py`), not here.
//!
//! ```text
//!  bench file          what one iteration does                          throughput
//!  parquet_decode      decode one column (or all) of a 1 Mi-row file    rows/s and decoded bytes/s
//!                      through ooc-io's morsel reader
//!  kernels             evaluate engine expressions / arrow kernels      rows/s
//!                      over 1 Mi rows; in-place vs allocating arithmetic
//!  aggregate           SELECT k, sum(v), count(*) GROUP BY k, 10..1M    input rows/s
//!                      groups, through a Session over in-memory batches
//!  sort                ORDER BY an int or a string key, unlimited and   rows/s
//!                      under a budget that forces spilled runs
//!  spill               write a spill file (IPC + zstd), read it back    in-memory bytes/s
//!  feed                batches for models: cut to size, shuffled in      rows/s
//!                      windows, as float32 matrices
//!  join                an equi-join's hash build + probe through a      build + probe rows/s
//!                      Session, in memory and as a grace hash join
//! ```
//!
//! Run everything with `make micro-bench` (or `cargo bench -p ooc-micro-bench`; append
//! `-- FILTER` to run matching benchmarks only), then write the summary table with
//! `python3 benches/micro/summarize.py --target-dir target` (the `--target-dir` the benches
//! were built in). Inputs are seeded and fixed, so runs are comparable across commits; every
//! group takes ten samples so the whole suite finishes in a few minutes on two cores.
//!
//! The benches link mimalloc with the same purge delay as the `ooc` binary and the Python
//! extension, so allocation-heavy kernels are measured with the allocator that ships. Whole
//! operators run through the public API ([`ooc::Session`] over in-memory batches); kernels
//! without one (compiled expressions, in-place arithmetic, spill files) through the engine's
//! `bench` feature, which exists only for these benchmarks.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use ooc::{DataFrame, QueryStream, Session, SessionConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Configure the allocator as the `ooc` binary and the Python library do
/// ([`ooc::allocator::tune_mimalloc`]); `MIMALLOC_PURGE_DELAY` in the environment sets another
/// purge delay, to see what the shipped setting costs allocation-heavy kernels. Call once
/// before measuring; calling again is harmless.
pub fn tune_allocator() {
    ooc::allocator::tune_mimalloc();
}

/// Samples per benchmark (criterion's minimum).
pub const SAMPLE_SIZE: usize = 10;
/// Warm-up per benchmark.
pub const WARM_UP: Duration = Duration::from_millis(1000);
/// Measurement time per benchmark for fast kernels (criterion stretches it when ten samples
/// need longer).
pub const MEASUREMENT: Duration = Duration::from_secs(2);

/// Rows per batch, as the engine's default.
pub const BATCH_ROWS: usize = 8192;

/// Bytes in a MiB.
pub const MIB: usize = 1024 * 1024;

/// A reproducible pseudo-random 64-bit value for position `i` (the SplitMix64 finalizer).
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seven TPC-H ship modes: a low-cardinality string column.
const SHIP_MODES: [&str; 7] = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"];

/// Words for the high-cardinality comment column.
const WORDS: [&str; 16] = [
    "carefully",
    "final",
    "deposits",
    "sleep",
    "quickly",
    "regular",
    "packages",
    "haggle",
    "furiously",
    "ironic",
    "accounts",
    "boost",
    "blithely",
    "pending",
    "requests",
    "nag",
];

/// Days from 1970-01-01 to 1992-01-01 (the first TPC-H ship date).
const DAY_1992_01_01: i32 = 8035;

/// `rows` rows shaped like TPC-H `lineitem`, in one batch:
///
/// | column            | type           | values                                         |
/// |-------------------|----------------|------------------------------------------------|
/// | `l_orderkey`      | Int64          | random in 0..60M                               |
/// | `l_partkey`       | Int64          | random in 0..2M                                |
/// | `l_quantity`      | Decimal(15,2)  | whole numbers 1..=50                           |
/// | `l_extendedprice` | Decimal(15,2)  | 900.00..=104 949.99                            |
/// | `l_discount`      | Decimal(15,2)  | 0.00..=0.10                                    |
/// | `l_tax`           | Decimal(15,2)  | 0.00..=0.08                                    |
/// | `l_shipdate`      | Date32         | 1992-01-01 plus 0..2526 days                   |
/// | `l_shipmode`      | Utf8           | one of 7 words (dictionary-friendly)           |
/// | `l_comment`       | Utf8           | 2–5 words and a number, nearly all distinct    |
pub fn lineitem(rows: usize) -> RecordBatch {
    let r = |column: u64, i: usize| mix((i as u64) << 4 | column);
    let decimal = |values: Vec<i128>| -> ArrayRef {
        Arc::new(
            Decimal128Array::from(values)
                .with_precision_and_scale(15, 2)
                .expect("DECIMAL(15,2) is valid"),
        )
    };
    let orderkey = Int64Array::from_iter_values((0..rows).map(|i| (r(0, i) % 60_000_000) as i64));
    let partkey = Int64Array::from_iter_values((0..rows).map(|i| (r(1, i) % 2_000_000) as i64));
    let quantity = (0..rows)
        .map(|i| (1 + r(2, i) % 50) as i128 * 100)
        .collect();
    let price = (0..rows)
        .map(|i| 90_000 + (r(3, i) % 10_395_000) as i128)
        .collect();
    let discount = (0..rows).map(|i| (r(4, i) % 11) as i128).collect();
    let tax = (0..rows).map(|i| (r(5, i) % 9) as i128).collect();
    let shipdate =
        Date32Array::from_iter_values((0..rows).map(|i| DAY_1992_01_01 + (r(6, i) % 2526) as i32));
    let shipmode =
        StringArray::from_iter_values((0..rows).map(|i| SHIP_MODES[(r(7, i) % 7) as usize]));
    let comment = StringArray::from_iter_values((0..rows).map(|i| {
        let h = r(8, i);
        let words = 2 + (h % 4) as usize;
        let mut text = String::with_capacity(48);
        for w in 0..words {
            text.push_str(WORDS[((h >> (4 + 4 * w)) & 15) as usize]);
            text.push(' ');
        }
        text.push_str(&(h >> 40).to_string());
        text
    }));
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("l_orderkey", Arc::new(orderkey)),
        ("l_partkey", Arc::new(partkey)),
        ("l_quantity", decimal(quantity)),
        ("l_extendedprice", decimal(price)),
        ("l_discount", decimal(discount)),
        ("l_tax", decimal(tax)),
        ("l_shipdate", Arc::new(shipdate)),
        ("l_shipmode", Arc::new(shipmode)),
        ("l_comment", Arc::new(comment)),
    ];
    batch_of(columns)
}

/// A batch from named columns (all non-nullable).
pub fn batch_of(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect())
        .expect("columns match their fields")
}

/// `batch` cut into batches of at most `rows` rows, each copied into buffers of its own.
///
/// Copies, not slices: a slice keeps its source's whole buffers, and the engine's memory
/// accounting (`get_array_memory_size`) counts them in full for every slice. A sort under a
/// budget would then see each 8192-row slice of a string column as the entire column and
/// write one run per batch. Decoded Parquet batches own their buffers; so do these.
pub fn split(batch: &RecordBatch, rows: usize) -> Vec<RecordBatch> {
    (0..batch.num_rows())
        .step_by(rows.max(1))
        .map(|offset| {
            let slice = batch.slice(offset, rows.min(batch.num_rows() - offset));
            arrow::compute::concat_batches(&slice.schema(), [&slice]).expect("copy a slice")
        })
        .collect()
}

/// `rows` rows of `(k Int64, v Int64)` where `k` takes `groups` distinct values in random
/// order (every value at least once when `rows >= groups`) and `v` is random in 0..1000.
pub fn keys_and_values(rows: usize, groups: usize) -> RecordBatch {
    let groups = groups.max(1) as u64;
    let k = Int64Array::from_iter_values((0..rows as u64).map(|i| {
        // Rows 0..groups hold every key once (a scrambled order: the odd multiplier is coprime
        // to any power of ten), the rest are random.
        if i < groups {
            ((i * 0x9e37_79b9) % groups) as i64
        } else {
            (mix(i) % groups) as i64
        }
    }));
    let v = Int64Array::from_iter_values((0..rows as u64).map(|i| (mix(i ^ 0x5555) % 1000) as i64));
    batch_of(vec![("k", Arc::new(k)), ("v", Arc::new(v))])
}

/// Bytes of the rows of `batches`: for slices, only the sliced ranges of their buffers (the
/// engine's `memory::used_bytes` counts a slice's buffers whole).
pub fn slice_bytes(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .flat_map(|b| b.columns())
        .map(|c| c.to_data().get_slice_memory_size().expect("valid array") as u64)
        .sum()
}

/// Worker threads: the machine's cores (the engine's default).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A session with the default batch size and thread count and the given budget (`None`:
/// unlimited); spill files go to the system temp directory.
pub fn session(memory_limit: Option<usize>) -> Session {
    Session::new(
        SessionConfig::default()
            .with_threads(threads())
            .with_batch_size(BATCH_ROWS)
            .with_memory_limit(memory_limit),
    )
}

/// Register `batches` (all of one schema) as table `name` of `session`.
pub fn register(session: &Session, name: &str, batches: &[RecordBatch]) {
    let schema: SchemaRef = batches[0].schema();
    let frame = session
        .read_batches(name, schema, batches.to_vec())
        .expect("in-memory table");
    session.register_view(name, &frame);
}

/// What running a query produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Result rows.
    pub rows: usize,
    /// Spills over every operator of the plan.
    pub spills: u64,
}

/// Run a dataframe to the end without keeping its batches (so no collect reservation
/// competes with the operators for the budget).
pub fn drain(frame: DataFrame) -> Outcome {
    drain_explained(frame).0
}

/// [`drain`], also returning the physical plan with its metrics (as `--explain-analyze`
/// shows it) and the most bytes held in spill files at once.
pub fn drain_explained(frame: DataFrame) -> (Outcome, String) {
    let mut stream = frame.execute().expect("query starts");
    let mut rows = 0;
    for batch in stream.by_ref() {
        rows += batch.expect("query runs").num_rows();
    }
    let outcome = Outcome {
        rows,
        spills: spill_count(&stream),
    };
    let report = format!(
        "{}peak spill files: {:.1} MiB\n",
        stream.report(),
        stream.peak_spill_bytes() as f64 / MIB as f64
    );
    (outcome, report)
}

/// Spills of every operator of a query.
pub fn spill_count(stream: &QueryStream) -> u64 {
    stream.operator_stats().iter().map(|op| op.spills).sum()
}

/// The data type of DECIMAL(15,2), TPC-H's money type.
pub const MONEY: DataType = DataType::Decimal128(15, 2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_have_the_promised_shape() {
        let batch = lineitem(10_000);
        assert_eq!(batch.num_rows(), 10_000);
        assert_eq!(batch.schema().field(3).data_type(), &MONEY);
        let kv = keys_and_values(5_000, 1_000);
        let keys: std::collections::HashSet<i64> = kv
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .iter()
            .copied()
            .collect();
        assert_eq!(keys.len(), 1_000);
        let parts = split(&batch, 4096);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].num_rows(), 10_000 - 2 * 4096);
    }
}
