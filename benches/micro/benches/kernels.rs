//! Expression kernels: the engine's arithmetic and filter evaluation, and in-place versus
//! allocating primitive kernels.
//!
//! Group `kernels`: logical expressions are type-checked, constant-folded and compiled as the
//! planner does (the engine's `bench::CompiledExpr`), then evaluated on 1 Mi
//! `lineitem` rows in 8192-row batches (the engine's batch size). Throughput is input rows/s.
//!
//! | benchmark               | expression                                                     |
//! |-------------------------|----------------------------------------------------------------|
//! | `q1_charge_decimal`     | `l_extendedprice * (1 - l_discount) * (1 + l_tax)`, DECIMAL(15,2) |
//! | `q1_charge_float64`     | the same on DOUBLE copies of the three columns                 |
//! | `int64_mul_add`         | `l_orderkey * 3 + l_partkey` (BIGINT)                          |
//! | `q6_predicate_mask`     | TPC-H Q6's predicate (date range, discount BETWEEN, quantity <) to a mask |
//! | `q6_filter`             | that mask, then `filter_record_batch` (about 2 % of rows kept) |
//! | `half_filter`           | `l_quantity < 25.50` mask + `filter_record_batch` (50 % kept)  |
//!
//! Group `in_place_vs_allocating`: the same operation written into a fresh buffer
//! (`PrimitiveArray::unary`, `arrow::compute::binary`) or into the uniquely owned input's
//! buffer (`unary_mut`, `binary_mut`), over 1 Mi values held either as 128 arrays of 8192
//! (what the engine sees per batch) or as one array (where fresh buffers are large). The
//! `engine_decimal_mul` pair runs the engine's own `eval::in_place::binary`, which writes
//! into an operand when nothing else holds it (`unique`) and allocates otherwise (`shared`).
//! Inputs are fresh deep copies made outside the timed part; outputs are dropped outside it.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, PrimitiveArray, RecordBatch};
use arrow::buffer::ScalarBuffer;
use arrow::compute::{binary, binary_mut, cast, filter_record_batch};
use arrow::datatypes::Schema;
use arrow::datatypes::{ArrowPrimitiveType, DataType, Decimal128Type, Float64Type};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ooc::expr_fn::{col, lit};
use ooc::{Expr, ScalarValue};
use ooc_engine::bench::{in_place_binary, CompiledExpr};
use ooc_micro_bench::{
    lineitem, split, tune_allocator, BATCH_ROWS, MEASUREMENT, MONEY, SAMPLE_SIZE, WARM_UP,
};

const ROWS: usize = 1 << 20;

/// Type-check, fold and compile `expr` as the planner would.
fn compile(expr: Expr, schema: &Schema) -> CompiledExpr {
    CompiledExpr::compile(expr, schema).expect("expression compiles")
}

/// A DECIMAL(15,2) literal from its unscaled value (`5` is 0.05).
fn money(cents: i128) -> Expr {
    Expr::Literal(ScalarValue::decimal128(cents, 15, 2).expect("valid decimal"))
}

/// `lineitem` plus DOUBLE copies of price, discount and tax.
fn kernel_input() -> RecordBatch {
    let base = lineitem(ROWS);
    let mut columns: Vec<(String, ArrayRef)> = base
        .schema()
        .fields()
        .iter()
        .zip(base.columns())
        .map(|(f, c)| (f.name().clone(), Arc::clone(c)))
        .collect();
    for name in ["l_extendedprice", "l_discount", "l_tax"] {
        let column = base.column_by_name(name).expect("column exists");
        let doubles = cast(column, &DataType::Float64).expect("decimal to double");
        columns.push((format!("{name}_f"), doubles));
    }
    ooc_micro_bench::batch_of(
        columns
            .iter()
            .map(|(n, c)| (n.as_str(), Arc::clone(c)))
            .collect(),
    )
}

fn engine_kernels(c: &mut Criterion) {
    let input = kernel_input();
    let batches = split(&input, BATCH_ROWS);
    let schema = input.schema();
    assert_eq!(input.schema().field(3).data_type(), &MONEY);

    let q1_charge_decimal = compile(
        col("l_extendedprice") * (lit(1i64) - col("l_discount")) * (lit(1i64) + col("l_tax")),
        &schema,
    );
    let q1_charge_float64 = compile(
        col("l_extendedprice_f") * (lit(1.0) - col("l_discount_f")) * (lit(1.0) + col("l_tax_f")),
        &schema,
    );
    let int64_mul_add = compile(col("l_orderkey") * lit(3i64) + col("l_partkey"), &schema);
    // 1994-01-01 and 1995-01-01 as days since the epoch.
    let q6 = compile(
        col("l_shipdate")
            .gt_eq(lit(ScalarValue::date32(8766)))
            .and(col("l_shipdate").lt(lit(ScalarValue::date32(9131))))
            .and(col("l_discount").between(money(5), money(7)))
            .and(col("l_quantity").lt(money(2400))),
        &schema,
    );
    let half = compile(col("l_quantity").lt(money(2550)), &schema);

    let mut group = c.benchmark_group("kernels");
    group.throughput(Throughput::Elements(ROWS as u64));
    let arithmetic = [
        ("q1_charge_decimal", &q1_charge_decimal),
        ("q1_charge_float64", &q1_charge_float64),
        ("int64_mul_add", &int64_mul_add),
    ];
    for (name, expr) in arithmetic {
        group.bench_function(name, |b| {
            b.iter(|| {
                for batch in &batches {
                    black_box(expr.evaluate(batch).expect("evaluates"));
                }
            })
        });
    }
    group.bench_function("q6_predicate_mask", |b| {
        b.iter(|| {
            for batch in &batches {
                black_box(q6.evaluate_mask(batch).expect("evaluates"));
            }
        })
    });
    for (name, predicate) in [("q6_filter", &q6), ("half_filter", &half)] {
        let kept: usize = batches
            .iter()
            .map(|b| predicate.evaluate_mask(b).unwrap().true_count())
            .sum();
        eprintln!(
            "kernels/{name}: keeps {kept} of {ROWS} rows ({:.1} %)",
            100.0 * kept as f64 / ROWS as f64
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                for batch in &batches {
                    let mask = predicate.evaluate_mask(batch).expect("evaluates");
                    black_box(filter_record_batch(batch, &mask).expect("filters"));
                }
            })
        });
    }
    group.finish();
}

/// A copy of `array` in a buffer of its own (so it is uniquely owned), with the same type.
fn deep_copy<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>) -> PrimitiveArray<T> {
    PrimitiveArray::<T>::new(ScalarBuffer::from(array.values().to_vec()), None)
        .with_data_type(array.data_type().clone())
}

/// `total` values split into arrays of `length`, as pairs of fresh operands.
fn operands<T: ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    b: &PrimitiveArray<T>,
    length: usize,
) -> Vec<(PrimitiveArray<T>, PrimitiveArray<T>)> {
    (0..a.len())
        .step_by(length)
        .map(|offset| {
            let n = length.min(a.len() - offset);
            (
                deep_copy(&a.slice(offset, n)),
                deep_copy(&b.slice(offset, n)),
            )
        })
        .collect()
}

/// Benchmark `allocating` against `in_place` over the same operands.
fn compare<T, A, I>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    (a, b): (&PrimitiveArray<T>, &PrimitiveArray<T>),
    length: usize,
    allocating: A,
    in_place: I,
) where
    T: ArrowPrimitiveType,
    A: Fn(&PrimitiveArray<T>, &PrimitiveArray<T>) -> PrimitiveArray<T>,
    I: Fn(PrimitiveArray<T>, &PrimitiveArray<T>) -> PrimitiveArray<T>,
{
    let parameter = format!("{length}_rows");
    group.bench_function(
        BenchmarkId::new(format!("{name}/allocating"), &parameter),
        |bench| {
            bench.iter_batched(
                || operands(a, b, length),
                |pairs| {
                    let out: Vec<PrimitiveArray<T>> =
                        pairs.iter().map(|(x, y)| allocating(x, y)).collect();
                    (pairs, out)
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_function(
        BenchmarkId::new(format!("{name}/in_place"), &parameter),
        |bench| {
            bench.iter_batched(
                || operands(a, b, length),
                |pairs| {
                    pairs
                        .into_iter()
                        .map(|(x, y)| (in_place(x, &y), y))
                        .collect::<Vec<_>>()
                },
                BatchSize::LargeInput,
            )
        },
    );
}

fn in_place_vs_allocating(c: &mut Criterion) {
    let input = lineitem(ROWS);
    let price = input.column(3).as_primitive::<Decimal128Type>().clone();
    let discount = input.column(4).as_primitive::<Decimal128Type>().clone();
    let price_f: Float64Array = cast(input.column(3), &DataType::Float64)
        .expect("to double")
        .as_primitive::<Float64Type>()
        .clone();
    let discount_f: Float64Array = cast(input.column(4), &DataType::Float64)
        .expect("to double")
        .as_primitive::<Float64Type>()
        .clone();

    let mut group = c.benchmark_group("in_place_vs_allocating");
    group.throughput(Throughput::Elements(ROWS as u64));
    for length in [BATCH_ROWS, ROWS] {
        compare(
            &mut group,
            "f64_unary",
            (&price_f, &discount_f),
            length,
            |x, _| x.unary(|v| v * 1.08 + 0.5),
            |x, _| {
                x.unary_mut(|v| v * 1.08 + 0.5)
                    .unwrap_or_else(|_| panic!("operand is shared"))
            },
        );
        compare(
            &mut group,
            "f64_mul",
            (&price_f, &discount_f),
            length,
            |x, y| binary(x, y, |v, w| v * w).expect("same lengths"),
            |x, y| {
                binary_mut(x, y, |v, w| v * w)
                    .unwrap_or_else(|_| panic!("operand is shared"))
                    .expect("same lengths")
            },
        );
        compare(
            &mut group,
            "decimal_mul",
            (&price, &discount),
            length,
            |x, y| binary(x, y, |v: i128, w: i128| v.wrapping_mul(w)).expect("same lengths"),
            |x, y| {
                binary_mut(x, y, |v: i128, w: i128| v.wrapping_mul(w))
                    .unwrap_or_else(|_| panic!("operand is shared"))
                    .expect("same lengths")
            },
        );
        engine_in_place(&mut group, (&price, &discount), length);
    }
    group.finish();
}

/// The engine's `in_place::binary` with a uniquely owned left operand (written in place) and
/// with both operands also held elsewhere (falls back to allocating).
fn engine_in_place(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    (a, b): (
        &PrimitiveArray<Decimal128Type>,
        &PrimitiveArray<Decimal128Type>,
    ),
    length: usize,
) {
    let parameter = format!("{length}_rows");
    let as_refs = move || -> Vec<(ArrayRef, ArrayRef)> {
        operands(a, b, length)
            .into_iter()
            .map(|(x, y)| (Arc::new(x) as ArrayRef, Arc::new(y) as ArrayRef))
            .collect()
    };
    let multiply = |x: i128, y: i128| x.wrapping_mul(y);
    group.bench_function(
        BenchmarkId::new("engine_decimal_mul/shared", &parameter),
        |bench| {
            bench.iter_batched(
                as_refs,
                |pairs| {
                    let out: Vec<_> = pairs
                        .iter()
                        .map(|(x, y)| {
                            in_place_binary::<Decimal128Type, _>(
                                Arc::clone(x),
                                Arc::clone(y),
                                multiply,
                            )
                            .expect("same lengths")
                        })
                        .collect();
                    (pairs, out)
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_function(
        BenchmarkId::new("engine_decimal_mul/unique", &parameter),
        |bench| {
            bench.iter_batched(
                as_refs,
                |pairs| {
                    pairs
                        .into_iter()
                        .map(|(x, y)| {
                            let keep = Arc::clone(&y);
                            let out = in_place_binary::<Decimal128Type, _>(x, y, multiply)
                                .expect("same lengths");
                            (out, keep)
                        })
                        .collect::<Vec<_>>()
                },
                BatchSize::LargeInput,
            )
        },
    );
}

fn config() -> Criterion {
    tune_allocator();
    Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
}

criterion_group! {
    name = benches;
    config = config();
    targets = engine_kernels, in_place_vs_allocating
}
criterion_main!(benches);
