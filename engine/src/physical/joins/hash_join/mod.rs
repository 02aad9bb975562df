//! Hash join: builds a hash table over the build input, then streams the probe input through
//! it; a grace hash join when the build input does not fit the memory budget.
//!
//! The build runs once, lazily, in whichever probe partition asks first (the others wait for
//! it), and is shared by all probe partitions (see [`table`] for the index). After the build,
//! a single integer key's min/max range is published to the probe-side scan (when the planner
//! wired one up), so probe row groups that cannot match are never read. Build-side outputs
//! (outer, semi and anti joins that keep build rows) are emitted by the last probe partition
//! to finish, from a shared "matched" bit set.
//!
//! Under memory pressure the build keeps as many hash partitions in memory as fit and writes
//! the others out; probe rows of written-out partitions are written out too and joined after
//! the probe input ends, partition by partition, by every probe stream in turn (see
//! [`grace`]):
//!
//! ```text
//!   build ──► partitions 0..16 ──► in memory: index ◄── probe rows of those partitions
//!                              └─► spilled: build files   probe rows ──► probe files
//!   after the probe input:  job per spilled partition = index(build files) ◄── probe files
//!                           (split again by the next hash bits, or chunked, if too big)
//! ```
//!
//! When the probe side is a scan that claims whole row groups in ascending order of the join
//! key (data written in key order), the build side is split by key ranges of those row groups
//! instead of by hash, and probe partitions load each range when they reach it: no probe row
//! is written out (see [`windows`]).
//!
//! | module      | what it holds                                                          |
//! |-------------|------------------------------------------------------------------------|
//! | this one    | the plan node: its parameters, its shared state, `execute`             |
//! | [`build`]   | reading the build input once (shared), publishing its key range        |
//! | [`table`]   | the index over build rows, by key encoding                             |
//! | [`probe`]   | a partition's probe stream: probing, spilling probe rows, output       |
//! | [`grace`]   | spilled partitions: the shared job queue, partition buffers, splitting |
//! | [`jobs`]    | joining the spilled partitions after the probe input ends              |
//! | [`windows`] | key windows: splitting the build side by the probe scan's key ranges   |

mod build;
mod grace;
mod jobs;
mod probe;
mod table;
mod windows;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};

use self::grace::GraceQueue;
use self::table::{BuildFacts, BuildSide, KeyEncoding, PARTITIONS};
use self::windows::KeyWindows;
use super::{JoinSide, PhysicalJoinType};
use crate::error::{EngineError, Result};
use crate::eval::PhysicalExpr;
use crate::metrics::OperatorMetrics;
use crate::physical::key_segments::KeySegments;
use crate::physical::scan::DynamicFilter;
use crate::physical::{instrument, BatchStream, ExecutionPlan, TaskContext};

use self::probe::{Phase, ProbeStream};

/// What the probe scan may do with the set of build keys, published once the build side is
/// complete and in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeySetUse {
    /// Nothing is published.
    None,
    /// Read only the rows a secondary index of the key column selects for the keys (up to
    /// [`INDEX_KEY_SET_MAX_ROWS`] build rows); the rows read are not filtered again.
    IndexOnly,
    /// Also drop the rows whose key is not in the set right after decoding (up to 4 Mi
    /// distinct keys). Worth it when the rows pass through expensive work before reaching the
    /// join (an aggregate grouped by the key).
    FilterRows,
}

/// Most build rows for a key set published only for a probe scan's index.
pub(crate) const INDEX_KEY_SET_MAX_ROWS: usize = 65_536;

/// Hash join of a streamed probe input with a buffered build input.
#[derive(Debug)]
pub(crate) struct HashJoinExec {
    probe: Arc<dyn ExecutionPlan>,
    build: Arc<dyn ExecutionPlan>,
    on: Vec<(PhysicalExpr, PhysicalExpr)>,
    filter: Option<PhysicalExpr>,
    join_type: PhysicalJoinType,
    output: Vec<(JoinSide, usize)>,
    schema: SchemaRef,
    encoding: KeyEncoding,
    dynamic_filter: Option<(Arc<DynamicFilter>, String)>,
    publish_keys: KeySetUse,
    dynamic_key: usize,
    /// The probe scan's row groups in key order, for splitting a build side that does not
    /// fit by key windows (see [`windows`]).
    probe_segments: Option<Arc<KeySegments>>,
    /// Set when the build side was split by key windows.
    windows: OnceLock<Arc<KeyWindows>>,
    /// Windows kept in memory by the build.
    windows_kept: AtomicUsize,
    display: String,
    state: Mutex<BuildState>,
    grace: Mutex<GraceQueue>,
    grace_changed: Condvar,
    jobs_run: AtomicUsize,
    jobs_split: AtomicUsize,
    jobs_chunked: AtomicUsize,
    metrics: Arc<OperatorMetrics>,
}

#[derive(Debug, Default)]
enum BuildState {
    #[default]
    NotStarted,
    Ready(Arc<BuildSide>),
    Failed(String),
    Released,
}

impl HashJoinExec {
    /// A hash join; see the module docs of [`crate::physical::joins`] for the parameters'
    /// meaning. `build` must have exactly one partition; key pairs must have equal types.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn try_new(
        probe: Arc<dyn ExecutionPlan>,
        build: Arc<dyn ExecutionPlan>,
        on: Vec<(PhysicalExpr, PhysicalExpr)>,
        filter: Option<PhysicalExpr>,
        join_type: PhysicalJoinType,
        output: Vec<(JoinSide, usize)>,
        output_schema: SchemaRef,
        dynamic_filter: Option<(Arc<DynamicFilter>, String)>,
        display: String,
    ) -> Result<Self> {
        if on.is_empty() {
            return Err(EngineError::Internal("hash join without keys".into()));
        }
        if build.output_partitions() != 1 {
            return Err(EngineError::Internal(
                "hash join build side must have one partition".into(),
            ));
        }
        if join_type == PhysicalJoinType::ProbeAntiNullAware && (on.len() != 1 || filter.is_some())
        {
            return Err(EngineError::NotSupported(
                "NOT IN with several columns or extra conditions".into(),
            ));
        }
        // The key types, from the build expressions evaluated on no rows.
        let empty = RecordBatch::new_empty(build.schema());
        let types = on
            .iter()
            .map(|(_, b)| Ok(b.evaluate(&empty)?.into_array(0)?.data_type().clone()))
            .collect::<Result<Vec<DataType>>>()?;
        let encoding = KeyEncoding::for_types(&types)?;
        Ok(Self {
            probe,
            build,
            on,
            filter,
            join_type,
            output,
            schema: output_schema,
            encoding,
            dynamic_filter,
            publish_keys: KeySetUse::None,
            dynamic_key: 0,
            probe_segments: None,
            windows: OnceLock::new(),
            windows_kept: AtomicUsize::new(0),
            display,
            state: Mutex::new(BuildState::NotStarted),
            grace: Mutex::new(GraceQueue {
                probe_files: (0..PARTITIONS).map(|_| Vec::new()).collect(),
                ..Default::default()
            }),
            grace_changed: Condvar::new(),
            jobs_run: AtomicUsize::new(0),
            jobs_split: AtomicUsize::new(0),
            jobs_chunked: AtomicUsize::new(0),
            metrics: Arc::default(),
        })
    }

    /// Also publish the set of build keys to the probe scan (see [`KeySetUse`]).
    pub(crate) fn with_key_set_filter(mut self, publish: KeySetUse) -> Self {
        self.publish_keys = publish;
        self
    }

    /// Which key pair (by position in `on`) the dynamic filter is about (default: the first).
    pub(crate) fn with_dynamic_key(mut self, index: usize) -> Self {
        self.dynamic_key = index;
        self
    }

    /// Let a build side that does not fit be split by key windows of the probe scan's
    /// `segments` (row groups in key order). Taken only for a single integer key that is the
    /// segments' column on the probe side (the caller checks that), and for joins that emit
    /// no build rows of their own.
    pub(crate) fn with_probe_segments(mut self, segments: Option<Arc<KeySegments>>) -> Self {
        use PhysicalJoinType as T;
        let eligible = matches!(self.encoding, KeyEncoding::Int)
            && self.on.len() == 1
            && matches!(
                self.join_type,
                T::Inner | T::ProbeOuter | T::ProbeSemi | T::ProbeAnti | T::ProbeSingle
            )
            && segments
                .as_ref()
                .is_some_and(|s| s.partitions() == self.probe.output_partitions());
        self.probe_segments = segments.filter(|_| eligible);
        self
    }

    fn build_exprs(&self) -> Vec<&PhysicalExpr> {
        self.on.iter().map(|(_, b)| b).collect()
    }

    fn probe_exprs(&self) -> Vec<&PhysicalExpr> {
        self.on.iter().map(|(p, _)| p).collect()
    }

    fn grace(&self) -> std::sync::MutexGuard<'_, GraceQueue> {
        self.grace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether unmatched or matched probe rows are emitted per probe row (so a chunked job
    /// must remember, per probe row, whether any chunk matched it).
    fn decides_probe_rows(&self) -> bool {
        use PhysicalJoinType as T;
        matches!(
            self.join_type,
            T::ProbeOuter
                | T::FullOuter
                | T::ProbeSingle
                | T::ProbeSemi
                | T::ProbeAnti
                | T::ProbeAntiNullAware
        )
    }
}

/// The smallest range covering both.
fn merge_ranges(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((l1, h1)), Some((l2, h2))) => Some((l1.min(l2), h1.max(h2))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A broken invariant of the hash join, reported instead of panicking.
fn broken(what: &str) -> EngineError {
    EngineError::Internal(format!("hash join: {what}"))
}

fn too_many_rows() -> EngineError {
    EngineError::Execution("more than one row returned by a subquery used as an expression".into())
}

impl ExecutionPlan for HashJoinExec {
    fn name(&self) -> &str {
        "HashJoin"
    }

    fn details(&self) -> String {
        let mut out = format!("{} [{:?}]", self.display, self.join_type);
        if let Some(segments) = &self.probe_segments {
            out.push_str(&format!(" key_windows_by={}", segments.column));
        }
        out
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        vec![Arc::clone(&self.probe), Arc::clone(&self.build)]
    }

    fn output_partitions(&self) -> usize {
        self.probe.output_partitions()
    }

    fn grows_with_input(&self) -> bool {
        true
    }

    fn can_spill(&self) -> bool {
        true
    }

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let mut stream = ProbeStream {
            exec: Arc::clone(&self),
            ctx,
            partition,
            input: None,
            build: None,
            spill: None,
            pending: Default::default(),
            phase: Phase::Probing,
            registered: false,
            job: None,
            working: false,
            facts: BuildFacts::default(),
            window: None,
        };
        let mut failed = false;
        let iter = std::iter::from_fn(move || {
            if failed {
                return None;
            }
            match stream.next_batch() {
                Ok(Some(b)) => Some(Ok(b)),
                Ok(None) => None,
                Err(e) => {
                    failed = true;
                    Some(Err(e))
                }
            }
        });
        Ok(instrument(Box::new(iter), Arc::clone(&self.metrics)))
    }

    fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }
}
