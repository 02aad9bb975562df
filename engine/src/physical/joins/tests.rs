//! The join operators against a naive reference: every join type on random inputs with NULL
//! and duplicate keys, several probe partitions running on threads, with and without a
//! residual condition; plus bounded output batches for a many-to-many join, the scalar
//! subquery error, and spilling: a grace hash join under budgets far below the build
//! side, recursive splitting of a hot partition, chunks for one key over the budget.

use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::eval::PhysicalExpr;
use crate::logical::expr::BinaryOp;
use crate::memory::MemoryPool;
use crate::metrics::OperatorMetrics;
use crate::physical::joins::{HashJoinExec, JoinSide, NestedLoopJoinExec, PhysicalJoinType};
use crate::physical::{BatchStream, ExecutionPlan, TaskContext};
use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};

/// Serves fixed batches, one list per partition.
#[derive(Debug)]
struct MemoryExec {
    schema: SchemaRef,
    partitions: Vec<Vec<RecordBatch>>,
    metrics: Arc<OperatorMetrics>,
}

impl ExecutionPlan for MemoryExec {
    fn name(&self) -> &str {
        "Memory"
    }
    fn details(&self) -> String {
        String::new()
    }
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![]
    }
    fn output_partitions(&self) -> usize {
        self.partitions.len()
    }
    fn execute(self: Arc<Self>, partition: usize, _ctx: Arc<TaskContext>) -> Result<BatchStream> {
        Ok(Box::new(
            self.partitions[partition].clone().into_iter().map(Ok),
        ))
    }
    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}

type Row = (Option<i64>, i64);

fn schema(a: &str, b: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(a, DataType::Int64, true),
        Field::new(b, DataType::Int64, true),
    ]))
}

/// `rows` split into `partitions` partitions of batches of at most 7 rows.
fn memory(rows: &[Row], partitions: usize, names: (&str, &str)) -> Arc<dyn ExecutionPlan> {
    let schema = schema(names.0, names.1);
    let mut parts = vec![Vec::new(); partitions];
    for (i, chunk) in rows.chunks(7).enumerate() {
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(
                    chunk.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    chunk.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        parts[i % partitions].push(batch);
    }
    Arc::new(MemoryExec {
        schema,
        partitions: parts,
        metrics: Arc::default(),
    })
}

fn context(batch_size: usize, limit: usize) -> Arc<TaskContext> {
    Arc::new(TaskContext {
        memory_pool: MemoryPool::new(limit),
        batch_size,
        threads: 2,
        bytes_read: Arc::default(),
        warnings: Arc::default(),
        progress: Arc::default(),
        cancelled: Arc::default(),
        spill: Arc::new(crate::memory::SpillManager::new(None, u64::MAX)),
    })
}

/// Run every output partition on its own thread; all batches.
fn run(plan: Arc<dyn ExecutionPlan>, ctx: Arc<TaskContext>) -> Result<Vec<RecordBatch>> {
    let results: Vec<Result<Vec<RecordBatch>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.output_partitions())
            .map(|p| {
                let plan = Arc::clone(&plan);
                let ctx = Arc::clone(&ctx);
                scope.spawn(move || plan.execute(p, ctx)?.collect::<Result<Vec<_>>>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<Option<i64>>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        let a = c.as_primitive::<Int64Type>();
                        a.is_valid(r).then(|| a.value(r))
                    })
                    .collect(),
            );
        }
    }
    out.sort();
    out
}

const ALL_TYPES: [PhysicalJoinType; 10] = [
    PhysicalJoinType::Inner,
    PhysicalJoinType::ProbeOuter,
    PhysicalJoinType::BuildOuter,
    PhysicalJoinType::FullOuter,
    PhysicalJoinType::ProbeSemi,
    PhysicalJoinType::ProbeAnti,
    PhysicalJoinType::ProbeAntiNullAware,
    PhysicalJoinType::BuildSemi,
    PhysicalJoinType::BuildAnti,
    PhysicalJoinType::ProbeSingle,
];

fn output_of(t: PhysicalJoinType) -> Vec<(JoinSide, usize)> {
    use PhysicalJoinType as T;
    match t {
        T::ProbeSemi | T::ProbeAnti | T::ProbeAntiNullAware => {
            vec![(JoinSide::Probe, 0), (JoinSide::Probe, 1)]
        }
        T::BuildSemi | T::BuildAnti => vec![(JoinSide::Build, 0), (JoinSide::Build, 1)],
        _ => vec![
            (JoinSide::Probe, 0),
            (JoinSide::Probe, 1),
            (JoinSide::Build, 0),
            (JoinSide::Build, 1),
        ],
    }
}

fn output_schema(t: PhysicalJoinType) -> SchemaRef {
    let fields: Vec<Field> = output_of(t)
        .iter()
        .enumerate()
        .map(|(i, _)| Field::new(format!("c{i}"), DataType::Int64, true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// The expected rows, or `None` when the join must fail (single join with two matches).
fn reference(
    t: PhysicalJoinType,
    probe: &[Row],
    build: &[Row],
    keyed: bool,
    filtered: bool,
) -> Option<Vec<Vec<Option<i64>>>> {
    use PhysicalJoinType as T;
    let cond = |p: &Row, b: &Row| {
        let key_ok = !keyed || matches!((p.0, b.0), (Some(x), Some(y)) if x == y);
        key_ok && (!filtered || p.1 < b.1)
    };
    let pr = |p: &Row| vec![p.0, Some(p.1)];
    let br = |b: &Row| vec![b.0, Some(b.1)];
    let mut out = Vec::new();
    let probe_matches: Vec<usize> = probe
        .iter()
        .map(|p| build.iter().filter(|b| cond(p, b)).count())
        .collect();
    let build_matched: Vec<bool> = build
        .iter()
        .map(|b| probe.iter().any(|p| cond(p, b)))
        .collect();
    if matches!(
        t,
        T::Inner | T::ProbeOuter | T::BuildOuter | T::FullOuter | T::ProbeSingle
    ) {
        for p in probe {
            for b in build {
                if cond(p, b) {
                    out.push([pr(p), br(b)].concat());
                }
            }
        }
    }
    if matches!(t, T::ProbeOuter | T::FullOuter | T::ProbeSingle) {
        for (p, &m) in probe.iter().zip(&probe_matches) {
            if m == 0 {
                out.push([pr(p), vec![None, None]].concat());
            }
        }
    }
    if matches!(t, T::BuildOuter | T::FullOuter) {
        for (b, &m) in build.iter().zip(&build_matched) {
            if !m {
                out.push([vec![None, None], br(b)].concat());
            }
        }
    }
    match t {
        T::ProbeSemi | T::ProbeAnti => {
            for (p, &m) in probe.iter().zip(&probe_matches) {
                if (m > 0) == (t == T::ProbeSemi) {
                    out.push(pr(p));
                }
            }
        }
        T::ProbeAntiNullAware => {
            let build_has_null = build.iter().any(|b| b.0.is_none());
            for (p, &m) in probe.iter().zip(&probe_matches) {
                let keep = if build.is_empty() {
                    true
                } else {
                    !build_has_null && p.0.is_some() && m == 0
                };
                if keep {
                    out.push(pr(p));
                }
            }
        }
        T::BuildSemi | T::BuildAnti => {
            for (b, &m) in build.iter().zip(&build_matched) {
                if m == (t == T::BuildSemi) {
                    out.push(br(b));
                }
            }
        }
        T::ProbeSingle if probe_matches.iter().any(|&m| m > 1) => return None,
        _ => {}
    }
    out.sort();
    Some(out)
}

/// `probe.v < build.w` over the pair schema (probe k, v, build k, w).
fn residual() -> PhysicalExpr {
    PhysicalExpr::Binary(
        Box::new(PhysicalExpr::Column(1, "v".into())),
        BinaryOp::Lt,
        Box::new(PhysicalExpr::Column(3, "w".into())),
        DataType::Boolean,
    )
}

fn hash_join(
    t: PhysicalJoinType,
    probe: Arc<dyn ExecutionPlan>,
    build: Arc<dyn ExecutionPlan>,
    filtered: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    Ok(Arc::new(HashJoinExec::try_new(
        probe,
        build,
        vec![(
            PhysicalExpr::Column(0, "k".into()),
            PhysicalExpr::Column(0, "k".into()),
        )],
        filtered.then(residual),
        t,
        output_of(t),
        output_schema(t),
        None,
        format!("{t:?}"),
    )?))
}

/// A tiny deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn rows(&mut self, max: u64, keys: u64) -> Vec<Row> {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| {
                let k = if self.below(6) == 0 {
                    None
                } else {
                    Some(self.below(keys) as i64)
                };
                (k, self.below(20) as i64)
            })
            .collect()
    }
}

#[test]
fn hash_join_matches_the_reference_on_random_inputs() {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    for iteration in 0..200 {
        let probe_rows = random.rows(50, 8);
        let build_rows = random.rows(50, 8);
        let partitions = 1 + random.below(3) as usize;
        for t in ALL_TYPES {
            for filtered in [false, true] {
                if filtered && t == PhysicalJoinType::ProbeAntiNullAware {
                    continue;
                }
                let plan = hash_join(
                    t,
                    memory(&probe_rows, partitions, ("k", "v")),
                    memory(&build_rows, 1, ("k", "w")),
                    filtered,
                )
                .unwrap();
                let actual = run(plan, context(16, usize::MAX));
                let expected = reference(t, &probe_rows, &build_rows, true, filtered);
                match (expected, actual) {
                    (Some(e), Ok(a)) => assert_eq!(
                        rows_of(&a),
                        e,
                        "iteration {iteration}, {t:?}, filter {filtered}\nprobe {probe_rows:?}\nbuild {build_rows:?}"
                    ),
                    (None, Err(e)) => assert!(e.to_string().contains("more than one row"), "{e}"),
                    (e, a) => panic!(
                        "iteration {iteration}, {t:?}: expected {e:?}, got {:?}",
                        a.map(|b| rows_of(&b))
                    ),
                }
            }
        }
    }
}

/// The join types a nested loop join supports.
const NESTED_LOOP_TYPES: [PhysicalJoinType; 5] = [
    PhysicalJoinType::Inner,
    PhysicalJoinType::ProbeOuter,
    PhysicalJoinType::ProbeSemi,
    PhysicalJoinType::ProbeAnti,
    PhysicalJoinType::ProbeSingle,
];

fn nested_loop(
    t: PhysicalJoinType,
    probe_rows: &[Row],
    build_rows: &[Row],
    partitions: usize,
    filtered: bool,
) -> Arc<dyn ExecutionPlan> {
    Arc::new(
        NestedLoopJoinExec::try_new(
            memory(probe_rows, partitions, ("k", "v")),
            memory(build_rows, 1, ("k", "w")),
            filtered.then(residual),
            t,
            output_of(t),
            output_schema(t),
            format!("{t:?}"),
        )
        .unwrap(),
    )
}

/// The join's rows equal the reference's, or both say a scalar subquery had several rows.
fn check_rows(
    case: &str,
    expected: Option<Vec<Vec<Option<i64>>>>,
    actual: Result<Vec<RecordBatch>>,
) {
    match (expected, actual) {
        (Some(e), Ok(a)) => assert!(rows_of(&a) == e, "{case}: wrong rows"),
        (None, Err(e)) => assert!(e.to_string().contains("more than one row"), "{case}: {e}"),
        (e, a) => panic!(
            "{case}: expected {:?} rows, got {:?}",
            e.map(|e| e.len()),
            a.map(|b| rows_of(&b).len())
        ),
    }
}

#[test]
fn nested_loop_join_matches_the_reference_on_random_inputs() {
    use PhysicalJoinType as T;
    let mut random = Random(42);
    for iteration in 0..100 {
        let probe_rows = random.rows(40, 8);
        let build_rows = random.rows(12, 8);
        let partitions = 1 + random.below(3) as usize;
        for t in NESTED_LOOP_TYPES {
            for filtered in [false, true] {
                let plan = nested_loop(t, &probe_rows, &build_rows, partitions, filtered);
                let actual = run(plan, context(16, usize::MAX));
                check_rows(
                    &format!("iteration {iteration}, {t:?}, filter {filtered}"),
                    reference(t, &probe_rows, &build_rows, false, filtered),
                    actual,
                );
            }
        }
    }
    // Build-side outputs need keys.
    assert!(NestedLoopJoinExec::try_new(
        memory(&[], 1, ("k", "v")),
        memory(&[], 1, ("k", "w")),
        None,
        T::FullOuter,
        output_of(T::FullOuter),
        output_schema(T::FullOuter),
        String::new(),
    )
    .is_err());
}

/// A nested loop join whose build side does not fit in the budget writes it to disk and joins
/// it block by block; every join type still gives the reference rows, each probe row's
/// matches are counted over all blocks (outer, semi, anti, single), and nothing is left
/// reserved or on disk.
#[test]
fn nested_loop_join_with_a_spilled_build_side_matches_the_reference() {
    let mut random = Random(0x5EED_0FB1_0C42);
    let mut spilled = 0;
    for iteration in 0..2 {
        // Few build keys and values: most probe rows meet several build blocks' matches.
        let probe_rows: Vec<Row> = (0..400)
            .map(|_| {
                let k = (random.below(6) != 0).then(|| random.below(8) as i64);
                (k, random.below(20) as i64)
            })
            .collect();
        let build_rows: Vec<Row> = (0..1500 + 500 * iteration)
            .map(|_| (Some(random.below(8) as i64), random.below(20) as i64))
            .collect();
        let partitions = 1 + iteration;
        for t in NESTED_LOOP_TYPES {
            for filtered in [false, true] {
                let plan = nested_loop(t, &probe_rows, &build_rows, partitions, filtered);
                let ctx = context(64, 48 << 10);
                let actual = run(Arc::clone(&plan), Arc::clone(&ctx));
                let case = format!("iteration {iteration}, {t:?}, filter {filtered}");
                check_rows(
                    &case,
                    reference(t, &probe_rows, &build_rows, false, filtered),
                    actual,
                );
                let metrics = plan.metrics();
                assert!(
                    metrics.spill_count() > 0,
                    "{case}: the build side did not spill"
                );
                assert_eq!(metrics.spilled_rows(), build_rows.len() as u64, "{case}");
                spilled += 1;
                drop(plan);
                assert_eq!(ctx.memory_pool.reserved(), 0, "{case}: memory not returned");
                assert_eq!(ctx.spill.bytes_on_disk(), 0, "{case}: spill files left");
            }
        }
    }
    assert_eq!(spilled, 20);
}

#[test]
fn many_to_many_output_comes_in_bounded_batches() {
    let probe: Vec<Row> = (0..2000).map(|i| (Some(7), i)).collect();
    let build: Vec<Row> = (0..2000).map(|i| (Some(7), i)).collect();
    let plan = hash_join(
        PhysicalJoinType::Inner,
        memory(&probe, 2, ("k", "v")),
        memory(&build, 1, ("k", "w")),
        false,
    )
    .unwrap();
    let batches = run(plan, context(1024, usize::MAX)).unwrap();
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(total, 4_000_000);
    let largest = batches.iter().map(RecordBatch::num_rows).max().unwrap();
    assert!(
        largest <= 8 * 1024,
        "largest output batch has {largest} rows"
    );
}

/// Random rows with NULL keys, duplicates and one hot key (`0`, about a quarter of the rows).
fn skewed_rows(random: &mut Random, n: usize, keys: u64) -> Vec<Row> {
    (0..n)
        .map(|_| {
            let k = match random.below(8) {
                0 => None,
                1 | 2 => Some(0),
                _ => Some(random.below(keys) as i64),
            };
            (k, random.below(20) as i64)
        })
        .collect()
}

#[test]
fn hash_join_spills_under_a_small_budget_and_matches_the_reference() {
    let mut random = Random(0xC0FF_EE00_D15E_A5E5);
    let mut spilled_cases = 0;
    for iteration in 0..3 {
        let probe_rows = skewed_rows(&mut random, 1500 + 500 * iteration, 300);
        let build_rows = skewed_rows(&mut random, 2500, 300);
        let partitions = 1 + iteration % 3;
        for budget in [24 << 10, 96 << 10] {
            for t in ALL_TYPES {
                for filtered in [false, true] {
                    if filtered && t == PhysicalJoinType::ProbeAntiNullAware {
                        continue;
                    }
                    let plan = hash_join(
                        t,
                        memory(&probe_rows, partitions, ("k", "v")),
                        memory(&build_rows, 1, ("k", "w")),
                        filtered,
                    )
                    .unwrap();
                    let ctx = context(64, budget);
                    let actual = run(Arc::clone(&plan), Arc::clone(&ctx));
                    let expected = reference(t, &probe_rows, &build_rows, true, filtered);
                    let case =
                        format!("iteration {iteration}, budget {budget}, {t:?}, filter {filtered}");
                    match (expected, actual) {
                        (Some(e), Ok(a)) => assert!(rows_of(&a) == e, "{case}: wrong rows"),
                        (None, Err(e)) => {
                            assert!(e.to_string().contains("more than one row"), "{case}: {e}")
                        }
                        (e, a) => panic!(
                            "{case}: expected {:?} rows, got {:?}",
                            e.map(|e| e.len()),
                            a.map(|b| rows_of(&b).len())
                        ),
                    }
                    if plan.metrics().spill_count() > 0 {
                        spilled_cases += 1;
                    }
                    drop(plan);
                    assert_eq!(ctx.memory_pool.reserved(), 0, "{case}: memory not returned");
                    assert_eq!(ctx.spill.bytes_on_disk(), 0, "{case}: spill files left");
                }
            }
        }
    }
    // Every case spills at these budgets except those that never build (empty-side shortcuts
    // do not apply here: both sides have rows).
    assert!(spilled_cases >= 100, "only {spilled_cases} cases spilled");
}

#[test]
fn one_key_over_the_budget_is_joined_in_chunks() {
    use PhysicalJoinType as T;
    // 3000 build rows with the same key cannot be indexed at once in 16 KiB; every probe row
    // with that key must still meet all of them, once.
    let build: Vec<Row> = (0..3000).map(|i| (Some(5), i % 20)).collect();
    let probe: Vec<Row> = (0..40)
        .map(|i| {
            (
                if i % 10 == 9 {
                    None
                } else {
                    Some(5 + (i % 3) * 7)
                },
                i % 20,
            )
        })
        .collect();
    for t in [
        T::Inner,
        T::ProbeOuter,
        T::FullOuter,
        T::ProbeSemi,
        T::ProbeAnti,
        T::BuildSemi,
        T::BuildAnti,
        T::ProbeSingle,
    ] {
        for filtered in [false, true] {
            let plan = hash_join(
                t,
                memory(&probe, 2, ("k", "v")),
                memory(&build, 1, ("k", "w")),
                filtered,
            )
            .unwrap();
            let ctx = context(64, 16 << 10);
            let actual = run(Arc::clone(&plan), Arc::clone(&ctx));
            let expected = reference(t, &probe, &build, true, filtered);
            let succeeded = actual.is_ok();
            match (expected, actual) {
                (Some(e), Ok(a)) => assert!(rows_of(&a) == e, "{t:?} {filtered}: wrong rows"),
                (None, Err(e)) => assert!(e.to_string().contains("more than one row"), "{e}"),
                (e, a) => panic!(
                    "{t:?} {filtered}: expected {:?} rows, got {:?}",
                    e.map(|e| e.len()),
                    a.map(|b| rows_of(&b).len())
                ),
            }
            let extra = plan.metrics().extra();
            let jobs = extra
                .iter()
                .find(|(k, _)| k == "grace_jobs")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            // A scalar subquery fails at its first double match, maybe before any chunk.
            if succeeded {
                assert!(jobs.contains(" 1 chunked"), "{t:?}: {jobs}");
            }
            drop(plan);
            assert_eq!(ctx.memory_pool.reserved(), 0);
            assert_eq!(ctx.spill.bytes_on_disk(), 0);
        }
    }
}

#[test]
fn a_budget_too_small_for_one_row_is_a_resources_error() {
    let build: Vec<Row> = (0..5_000).map(|i| (Some(i), i)).collect();
    let plan = hash_join(
        PhysicalJoinType::Inner,
        memory(&[(Some(1), 1)], 1, ("k", "v")),
        memory(&build, 1, ("k", "w")),
        false,
    )
    .unwrap();
    let ctx = context(1024, 64);
    match run(plan, Arc::clone(&ctx)) {
        Err(EngineError::ResourcesExhausted { consumer, .. }) => {
            assert!(consumer.contains("HashJoin"), "{consumer}")
        }
        other => panic!(
            "expected ResourcesExhausted, got {:?}",
            other.map(|b| b.len())
        ),
    }
    assert_eq!(ctx.memory_pool.reserved(), 0);
    assert_eq!(ctx.spill.bytes_on_disk(), 0);
}

/// Streams joining spilled partitions at the same time share a budget too small for two
/// chunks: one waits for the other instead of failing. (Before, a stream that could not fit
/// one row failed with ResourcesExhausted now and then, depending on the interleaving.)
#[test]
fn concurrent_grace_jobs_share_a_tiny_budget() {
    let mut random = Random(0xC0FF_EE00_D15E_A5E5);
    let probe_rows = skewed_rows(&mut random, 2500, 300);
    let build_rows = skewed_rows(&mut random, 2500, 300);
    for budget in [4 << 10, 10 << 10] {
        for t in [
            PhysicalJoinType::FullOuter,
            PhysicalJoinType::BuildOuter,
            PhysicalJoinType::ProbeOuter,
        ] {
            let plan = hash_join(
                t,
                memory(&probe_rows, 3, ("k", "v")),
                memory(&build_rows, 1, ("k", "w")),
                false,
            )
            .unwrap();
            let ctx = context(64, budget);
            let actual = run(Arc::clone(&plan), Arc::clone(&ctx))
                .unwrap_or_else(|e| panic!("budget {budget}, {t:?}: {e}"));
            let expected = reference(t, &probe_rows, &build_rows, true, false).unwrap();
            assert!(
                rows_of(&actual) == expected,
                "budget {budget}, {t:?}: wrong rows"
            );
            assert!(
                plan.metrics().spill_count() > 0,
                "budget {budget}, {t:?}: no spill"
            );
            drop(plan);
            assert_eq!(ctx.memory_pool.reserved(), 0);
        }
    }
}
