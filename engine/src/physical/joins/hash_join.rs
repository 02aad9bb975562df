//! Hash join: builds a hash table over the build input, then streams the probe input through it.
//!
//! The build runs once, lazily, in whichever probe partition asks first (the others wait for
//! it), and is shared by all probe partitions. A single integer-like key (integers, dates) is
//! hashed as an `i64`; any other key, including multi-column keys, is encoded with Arrow's row
//! format and compared as bytes. After the build, a single integer key's min/max range is
//! published to the probe-side scan (when the planner wired one up), so probe row groups that
//! cannot match are never read. Build-side outputs (outer, semi and anti joins that keep build
//! rows) are emitted by the last probe partition to finish, from a shared "matched" bit set.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::hash_table::HashTable;

use super::{assemble, pair_batch, JoinSide, PhysicalJoinType};
use crate::error::{EngineError, Result};
use crate::memory::MemoryReservation;
use crate::metrics::OperatorMetrics;
use crate::physical::expr::{normalize_zero_array, PhysicalExpr};
use crate::physical::scan::{DynamicFilter, KeySetFilter};
use crate::physical::{compact_views, instrument, BatchStream, ExecutionPlan, TaskContext};
use ooc_io::PruneExpr;

const NONE: u32 = u32::MAX;

/// Hash join of a streamed probe input with a buffered build input.
#[derive(Debug)]
pub struct HashJoinExec {
    probe: Arc<dyn ExecutionPlan>,
    build: Arc<dyn ExecutionPlan>,
    on: Vec<(PhysicalExpr, PhysicalExpr)>,
    filter: Option<PhysicalExpr>,
    join_type: PhysicalJoinType,
    output: Vec<(JoinSide, usize)>,
    schema: SchemaRef,
    dynamic_filter: Option<(Arc<DynamicFilter>, String)>,
    publish_keys: bool,
    dynamic_key: usize,
    display: String,
    state: Mutex<BuildState>,
    finished: AtomicUsize,
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

/// Hash partitions of the build side. A partition lists its build rows and has its own table,
/// so it can be written out and read back whole (a grace hash join's unit).
const PARTITIONS: usize = 16;

/// Fixed-seed hasher: the same key lands in the same partition on both sides.
static HASHER: ahash::RandomState = ahash::RandomState::with_seeds(1, 2, 3, 4);

/// Hash of an integer key: the 64-bit finalizer of MurmurHash3, a few multiplies and shifts
/// that mix every input bit into every output bit (cheaper than a general-purpose hasher).
#[inline]
fn hash_int(v: i64) -> u64 {
    let mut h = v as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The partition of a hash: bits 40..44, which hashbrown uses neither for the bucket index
/// (low bits) nor for the control-byte tag (top 7 bits), so each partition's table keeps the
/// full entropy of both.
fn partition(hash: u64) -> usize {
    (hash >> 40) as usize % PARTITIONS
}

/// Keys of the build side, hashed, one table per partition.
enum KeyTable {
    /// One integer-like key: (value, first build row).
    Int(Vec<HashTable<(i64, u32)>>),
    /// Row-format keys: (hash, first build row); equality compares the encoded rows.
    Rows {
        tables: Vec<HashTable<(u64, u32)>>,
        rows: Rows,
        converter: RowConverter,
    },
}

struct BuildSide {
    batch: RecordBatch,
    table: KeyTable,
    /// Next build row with the same key (chain), or `NONE`.
    next: Vec<u32>,
    has_null_key: bool,
    /// Build rows matched by some probe row (for build-side outputs).
    matched: Vec<AtomicU64>,
    /// The build rows (with non-NULL keys) of each hash partition.
    #[allow(dead_code)] // the unit a spilling build will write out
    partitions: Vec<Vec<u32>>,
    _reservation: MemoryReservation,
}

impl std::fmt::Debug for BuildSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildSide")
            .field("rows", &self.batch.num_rows())
            .finish()
    }
}

fn is_int_key(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Date32
    )
}

fn int_values(array: &ArrayRef) -> Result<Int64Array> {
    let a = match array.data_type() {
        DataType::Date32 => cast(&cast(array, &DataType::Int32)?, &DataType::Int64)?,
        _ => cast(array, &DataType::Int64)?,
    };
    Ok(a.as_primitive::<Int64Type>().clone())
}

fn hash_bytes(state: &ahash::RandomState, bytes: &[u8]) -> u64 {
    state.hash_one(bytes)
}

/// Rows whose keys are all non-NULL.
fn valid_keys(keys: &[ArrayRef], rows: usize) -> Option<arrow::buffer::NullBuffer> {
    let mut acc: Option<arrow::buffer::NullBuffer> = None;
    for k in keys {
        acc = arrow::buffer::NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref());
    }
    let _ = rows;
    acc
}

impl BuildSide {
    fn matches_of(&self, probe_keys: &ProbeKeys, row: usize) -> u32 {
        match (&self.table, probe_keys) {
            (KeyTable::Int(maps), ProbeKeys::Int(values)) => {
                let v = values.value(row);
                let h = hash_int(v);
                maps[partition(h)]
                    .find(h, |&(k, _)| k == v)
                    .map_or(NONE, |&(_, first)| first)
            }
            (
                KeyTable::Rows {
                    tables,
                    rows: build,
                    ..
                },
                ProbeKeys::Rows(rows, hashes),
            ) => {
                let key = rows.row(row);
                let h = hashes[row];
                tables[partition(h)]
                    .find(h, |&(eh, first)| {
                        eh == h && build.row(first as usize) == key
                    })
                    .map_or(NONE, |&(_, first)| first)
            }
            _ => NONE,
        }
    }

    fn mark(&self, build_row: u32) {
        let i = build_row as usize;
        self.matched[i / 64].fetch_or(1 << (i % 64), Ordering::Relaxed);
    }

    fn is_marked(&self, build_row: usize) -> bool {
        self.matched[build_row / 64].load(Ordering::Relaxed) & (1 << (build_row % 64)) != 0
    }
}

enum ProbeKeys {
    Int(Int64Array),
    Rows(Rows, Vec<u64>),
}

impl HashJoinExec {
    /// A hash join; see the module docs of [`crate::physical::joins`] for the parameters'
    /// meaning. `build` must have exactly one partition; key pairs must have equal types.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
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
        Ok(Self {
            probe,
            build,
            on,
            filter,
            join_type,
            output,
            schema: output_schema,
            dynamic_filter,
            publish_keys: false,
            dynamic_key: 0,
            display,
            state: Mutex::new(BuildState::NotStarted),
            finished: AtomicUsize::new(0),
            metrics: Arc::default(),
        })
    }

    /// Also publish the set of build keys (up to 4 Mi distinct keys) to the probe scan, which
    /// then drops rows whose key is not in it right after decoding. Worth it when the rows
    /// pass through expensive work before reaching the join (an aggregate grouped by the key).
    pub fn with_key_set_filter(mut self, publish: bool) -> Self {
        self.publish_keys = publish;
        self
    }

    /// Which key pair (by position in `on`) the dynamic filter is about (default: the first).
    pub fn with_dynamic_key(mut self, index: usize) -> Self {
        self.dynamic_key = index;
        self
    }

    /// The shared build side, building it on first use.
    fn build_side(&self, ctx: &Arc<TaskContext>) -> Result<Arc<BuildSide>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            BuildState::Ready(b) => return Ok(Arc::clone(b)),
            BuildState::Failed(e) => return Err(EngineError::Execution(e.clone())),
            BuildState::Released => {
                return Err(EngineError::Internal(
                    "hash join build side released".into(),
                ))
            }
            BuildState::NotStarted => {}
        }
        match self.create_build_side(ctx) {
            Ok(b) => {
                let b = Arc::new(b);
                *state = BuildState::Ready(Arc::clone(&b));
                Ok(b)
            }
            Err(e) => {
                *state = BuildState::Failed(e.to_string());
                Err(e)
            }
        }
    }

    fn create_build_side(&self, ctx: &Arc<TaskContext>) -> Result<BuildSide> {
        let mut reservation = MemoryReservation::new(
            &ctx.memory_pool,
            "HashJoin(build)",
            Some(Arc::clone(&self.metrics)),
        );
        let mut batches = Vec::new();
        for batch in Arc::clone(&self.build).execute(0, Arc::clone(ctx))? {
            let batch = batch?;
            ctx.check_cancelled()?;
            let batch = compact_views(&batch);
            reservation.try_grow(batch.get_array_memory_size())?;
            batches.push(batch);
        }
        let batch = concat_batches(&self.build.schema(), &batches)?;
        drop(batches);
        reservation.try_resize(batch.get_array_memory_size())?;
        let n = batch.num_rows();
        if n >= NONE as usize {
            return Err(EngineError::NotSupported(format!(
                "a hash join build side of {n} rows (at most {} rows)",
                NONE - 1
            )));
        }
        let keys = self
            .on
            .iter()
            .map(|(_, b)| normalize_zero_array(b.evaluate(&batch)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let int_key = keys.len() == 1 && is_int_key(keys[0].data_type());
        let converter = if int_key {
            None
        } else {
            Some(RowConverter::new(
                keys.iter()
                    .map(|k| SortField::new(k.data_type().clone()))
                    .collect(),
            )?)
        };

        // Hash partitions: every build row's partition comes from its key's hash; each
        // partition lists its rows and has its own table.
        let valid = valid_keys(&keys, n);
        let is_valid = |i: usize| valid.as_ref().is_none_or(|v| v.is_valid(i));
        let has_null_key = valid.as_ref().is_some_and(|v| v.null_count() > 0);
        let int_values_of_key = if int_key {
            Some(int_values(&keys[0])?)
        } else {
            None
        };
        let rows = match &converter {
            Some(c) => Some(c.convert_columns(&keys)?),
            None => None,
        };
        let hash_of = |i: usize| -> u64 {
            match (&int_values_of_key, &rows) {
                (Some(values), _) => hash_int(values.value(i)),
                (None, Some(rows)) => hash_bytes(&HASHER, rows.row(i).as_ref()),
                (None, None) => 0,
            }
        };
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); PARTITIONS];
        // Row-format keys keep their hashes for the table; integer keys are rehashed cheaply.
        let hashes: Vec<u64> = if int_key {
            Vec::new()
        } else {
            (0..n)
                .map(|i| if is_valid(i) { hash_of(i) } else { 0 })
                .collect()
        };
        for i in (0..n).filter(|&i| is_valid(i)) {
            let h = if int_key { hash_of(i) } else { hashes[i] };
            members[partition(h)].push(i as u32);
        }
        let counts: Vec<usize> = members.iter().map(Vec::len).collect();
        let mut next = vec![NONE; n];
        let table = if let Some(values) = &int_values_of_key {
            let mut maps = Vec::with_capacity(PARTITIONS);
            let mut bytes = 0;
            for rows_of_partition in &members {
                let mut map: HashTable<(i64, u32)> =
                    HashTable::with_capacity(rows_of_partition.len());
                // Insert in reverse so chains list build rows in their original order.
                for &i in rows_of_partition.iter().rev() {
                    let v = values.value(i as usize);
                    let h = hash_int(v);
                    match map.find_mut(h, |&(k, _)| k == v) {
                        Some(entry) => {
                            next[i as usize] = entry.1;
                            entry.1 = i;
                        }
                        None => {
                            map.insert_unique(h, (v, i), |&(k, _)| hash_int(k));
                        }
                    }
                }
                bytes += map.capacity() * 16;
                maps.push(map);
            }
            reservation.try_grow(bytes + n * 8)?;
            KeyTable::Int(maps)
        } else {
            let converter = converter.expect("row keys");
            let rows = rows.expect("row keys");
            let mut tables = Vec::with_capacity(PARTITIONS);
            let mut bytes = 0;
            for rows_of_partition in &members {
                let mut table: HashTable<(u64, u32)> =
                    HashTable::with_capacity(rows_of_partition.len());
                for &i in rows_of_partition.iter().rev() {
                    let row = rows.row(i as usize);
                    let h = hashes[i as usize];
                    match table
                        .find_mut(h, |&(eh, first)| eh == h && rows.row(first as usize) == row)
                    {
                        Some(entry) => {
                            next[i as usize] = entry.1;
                            entry.1 = i;
                        }
                        None => {
                            table.insert_unique(h, (h, i), |&(eh, _)| eh);
                        }
                    }
                }
                bytes += table.capacity() * 16;
                tables.push(table);
            }
            drop(hashes);
            reservation.try_grow(bytes + n * 8 + rows.size())?;
            KeyTable::Rows {
                tables,
                rows,
                converter,
            }
        };
        let largest = counts.iter().max().copied().unwrap_or(0);
        self.metrics.set_extra(
            "build_partitions",
            format!("{PARTITIONS} (largest {largest} rows)"),
        );
        if let Some((filter, column)) = &self.dynamic_filter {
            let key = &keys[self.dynamic_key.min(keys.len() - 1)];
            if self.join_type.drops_unmatched_probe_rows() && is_int_key(key.data_type()) {
                let values = int_values(key)?;
                self.publish_range(filter, column, &values, &is_valid)?;
                if self.publish_keys {
                    let set: hashbrown::HashSet<i64> = (0..n)
                        .filter(|&i| is_valid(i))
                        .map(|i| values.value(i))
                        .collect();
                    if set.len() <= 4 << 20 {
                        self.metrics.set_extra("key_set_published", set.len());
                        filter.publish_keys(KeySetFilter {
                            column: column.clone(),
                            keys: set,
                        });
                    }
                }
            }
        }
        self.metrics.set_extra("build_rows", n);
        let matched = (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Ok(BuildSide {
            batch,
            table,
            next,
            has_null_key,
            matched,
            partitions: members,
            _reservation: reservation,
        })
    }

    fn publish_range(
        &self,
        filter: &Arc<DynamicFilter>,
        column: &str,
        values: &Int64Array,
        is_valid: &dyn Fn(usize) -> bool,
    ) -> Result<()> {
        let mut range: Option<(i64, i64)> = None;
        for i in 0..values.len() {
            if is_valid(i) {
                let v = values.value(i);
                range = Some(match range {
                    None => (v, v),
                    Some((lo, hi)) => (lo.min(v), hi.max(v)),
                });
            }
        }
        let Some((lo, hi)) = range else {
            return Ok(());
        };
        let probe_type = self
            .probe
            .schema()
            .field_with_name(column)
            .ok()
            .map(|f| f.data_type().clone());
        let Some(probe_type) = probe_type else {
            return Ok(());
        };
        let to_type = |v: i64| -> Result<ArrayRef> {
            let a: ArrayRef = Arc::new(Int64Array::from(vec![v]));
            Ok(match probe_type {
                DataType::Date32 => cast(&cast(&a, &DataType::Int32)?, &DataType::Date32)?,
                ref t => cast(&a, t)?,
            })
        };
        filter.publish(
            0,
            PruneExpr::Between {
                column: column.to_string(),
                low: to_type(lo)?,
                high: to_type(hi)?,
                negated: false,
            },
        );
        self.metrics
            .set_extra("dynamic_filter", format!("{column} in [{lo}, {hi}]"));
        Ok(())
    }

    fn probe_keys(
        &self,
        build: &BuildSide,
        batch: &RecordBatch,
    ) -> Result<(ProbeKeys, Option<arrow::buffer::NullBuffer>)> {
        let n = batch.num_rows();
        let keys = self
            .on
            .iter()
            .map(|(p, _)| normalize_zero_array(p.evaluate(batch)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let valid = valid_keys(&keys, n);
        let probe_keys = match &build.table {
            KeyTable::Int(_) => ProbeKeys::Int(int_values(&keys[0])?),
            KeyTable::Rows { converter, .. } => {
                let rows = converter.convert_columns(&keys)?;
                let hashes = (0..n)
                    .map(|i| hash_bytes(&HASHER, rows.row(i).as_ref()))
                    .collect();
                ProbeKeys::Rows(rows, hashes)
            }
        };
        Ok((probe_keys, valid))
    }

    /// Emit the build rows this join keeps at the end (after the last probe partition).
    fn build_side_output(&self, build: &BuildSide, batch_size: usize) -> Result<Vec<RecordBatch>> {
        let n = build.batch.num_rows();
        let keep_matched = self.join_type == PhysicalJoinType::BuildSemi;
        let rows: Vec<u32> = (0..n)
            .filter(|&i| build.is_marked(i) == keep_matched)
            .map(|i| i as u32)
            .collect();
        let mut out = Vec::new();
        for chunk in rows.chunks(batch_size.max(1)) {
            let build_idx = UInt32Array::from(chunk.to_vec());
            let probe_idx = UInt32Array::from(vec![None::<u32>; chunk.len()]);
            out.push(assemble(
                &self.schema,
                &self.output,
                None,
                &probe_idx,
                &build.batch,
                &build_idx,
            )?);
        }
        Ok(out)
    }
}

/// Per-partition probing state.
struct ProbeStream {
    exec: Arc<HashJoinExec>,
    ctx: Arc<TaskContext>,
    partition: usize,
    input: Option<BatchStream>,
    build: Option<Arc<BuildSide>>,
    pending: std::collections::VecDeque<RecordBatch>,
    done: bool,
}

impl ProbeStream {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            if self.done {
                return Ok(None);
            }
            let build = match &self.build {
                Some(b) => Arc::clone(b),
                None => {
                    let b = self.exec.build_side(&self.ctx)?;
                    self.build = Some(Arc::clone(&b));
                    b
                }
            };
            let join_type = self.exec.join_type;
            let build_empty = build.batch.num_rows() == 0;
            let skip_probe = build_empty
                && matches!(
                    join_type,
                    PhysicalJoinType::Inner
                        | PhysicalJoinType::ProbeSemi
                        | PhysicalJoinType::BuildSemi
                        | PhysicalJoinType::BuildOuter
                        | PhysicalJoinType::BuildAnti
                );
            if self.input.is_none() && !skip_probe {
                self.input = Some(
                    Arc::clone(&self.exec.probe).execute(self.partition, Arc::clone(&self.ctx))?,
                );
            }
            let next = if skip_probe {
                None
            } else {
                self.input.as_mut().and_then(Iterator::next)
            };
            match next {
                Some(batch) => {
                    let batch = batch?;
                    self.ctx.check_cancelled()?;
                    self.exec.metrics.add_rows_in(batch.num_rows());
                    self.probe_batch(&build, &batch)?;
                }
                None => {
                    self.done = true;
                    self.input = None;
                    let finished = self.exec.finished.fetch_add(1, Ordering::AcqRel) + 1;
                    if finished == self.exec.probe.output_partitions() {
                        if join_type.emits_build_rows_at_end() {
                            let out = self.exec.build_side_output(&build, self.ctx.batch_size)?;
                            self.pending.extend(out);
                        }
                        let mut state = self.exec.state.lock().unwrap_or_else(|e| e.into_inner());
                        *state = BuildState::Released;
                    }
                    self.build = None;
                }
            }
        }
    }

    fn probe_batch(&mut self, build: &BuildSide, batch: &RecordBatch) -> Result<()> {
        use PhysicalJoinType as T;
        let exec = Arc::clone(&self.exec);
        let join_type = exec.join_type;
        let n = batch.num_rows();
        let build_rows = build.batch.num_rows();
        if join_type == T::ProbeAntiNullAware {
            // NOT IN: empty set → everything; a NULL in the set → nothing.
            if build_rows == 0 {
                self.pending.push_back(self.project_probe(batch, None)?);
                return Ok(());
            }
            if build.has_null_key {
                return Ok(());
            }
        }
        let (keys, valid) = exec.probe_keys(build, batch)?;
        let limit = (self.ctx.batch_size * 4).max(1024);
        // Per probe row: number of passing matches (for outer/semi/anti/single).
        let mut match_count = vec![0u32; n];
        let semi_no_filter = exec.filter.is_none()
            && matches!(
                join_type,
                T::ProbeSemi | T::ProbeAnti | T::ProbeAntiNullAware
            );
        let mut probe_idx: Vec<u32> = Vec::new();
        let mut build_idx: Vec<u32> = Vec::new();
        for row in 0..n {
            if valid.as_ref().is_some_and(|v| v.is_null(row)) {
                continue;
            }
            let mut j = build.matches_of(&keys, row);
            if semi_no_filter {
                if j != NONE {
                    match_count[row] = 1;
                }
                continue;
            }
            while j != NONE {
                probe_idx.push(row as u32);
                build_idx.push(j);
                j = build.next[j as usize];
            }
            if probe_idx.len() >= limit {
                self.flush_pairs(
                    build,
                    batch,
                    &mut probe_idx,
                    &mut build_idx,
                    &mut match_count,
                )?;
            }
        }
        self.flush_pairs(
            build,
            batch,
            &mut probe_idx,
            &mut build_idx,
            &mut match_count,
        )?;
        // Rows decided per probe row.
        match join_type {
            T::ProbeOuter | T::FullOuter | T::ProbeSingle => {
                let unmatched: Vec<u32> = (0..n as u32)
                    .filter(|&r| match_count[r as usize] == 0)
                    .collect();
                if !unmatched.is_empty() {
                    let nulls = UInt32Array::from(vec![None::<u32>; unmatched.len()]);
                    self.pending.push_back(assemble(
                        &exec.schema,
                        &exec.output,
                        Some(batch),
                        &UInt32Array::from(unmatched),
                        &build.batch,
                        &nulls,
                    )?);
                }
            }
            T::ProbeSemi | T::ProbeAnti | T::ProbeAntiNullAware => {
                let want_matched = join_type == T::ProbeSemi;
                let mask: BooleanArray = (0..n)
                    .map(|r| {
                        let matched = match_count[r] > 0;
                        let null_key = valid.as_ref().is_some_and(|v| v.is_null(r));
                        Some(if join_type == T::ProbeAntiNullAware {
                            !matched && !null_key
                        } else {
                            matched == want_matched
                        })
                    })
                    .collect();
                if mask.true_count() > 0 {
                    self.pending
                        .push_back(self.project_probe(batch, Some(&mask))?);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Evaluate the residual filter on candidate pairs, record matches, emit pair rows.
    fn flush_pairs(
        &mut self,
        build: &BuildSide,
        batch: &RecordBatch,
        probe_idx: &mut Vec<u32>,
        build_idx: &mut Vec<u32>,
        match_count: &mut [u32],
    ) -> Result<()> {
        use PhysicalJoinType as T;
        if probe_idx.is_empty() {
            return Ok(());
        }
        let exec = Arc::clone(&self.exec);
        let mut p = UInt32Array::from(std::mem::take(probe_idx));
        let mut b = UInt32Array::from(std::mem::take(build_idx));
        if let Some(filter) = &exec.filter {
            let pairs = pair_batch(batch, &p, &build.batch, &b)?;
            let mask = filter.evaluate_mask(&pairs)?;
            if mask.true_count() < mask.len() {
                p = arrow::compute::filter(&p, &mask)?.as_primitive().clone();
                b = arrow::compute::filter(&b, &mask)?.as_primitive().clone();
            }
        }
        for &r in p.values().iter() {
            match_count[r as usize] += 1;
        }
        if exec.join_type == T::ProbeSingle {
            if let Some(&r) = p.values().iter().find(|&&r| match_count[r as usize] > 1) {
                let _ = r;
                return Err(EngineError::Execution(
                    "more than one row returned by a subquery used as an expression".into(),
                ));
            }
        }
        if exec.join_type.emits_build_rows_at_end() {
            for &j in b.values().iter() {
                build.mark(j);
            }
        }
        if matches!(
            exec.join_type,
            T::Inner | T::ProbeOuter | T::BuildOuter | T::FullOuter | T::ProbeSingle
        ) && !p.is_empty()
        {
            self.pending.push_back(assemble(
                &exec.schema,
                &exec.output,
                Some(batch),
                &p,
                &build.batch,
                &b,
            )?);
        }
        Ok(())
    }

    /// Probe rows selected by `mask` (all when `None`), projected to the output columns.
    fn project_probe(
        &self,
        batch: &RecordBatch,
        mask: Option<&BooleanArray>,
    ) -> Result<RecordBatch> {
        let filtered = match mask {
            Some(m) => arrow::compute::filter_record_batch(batch, m)?,
            None => batch.clone(),
        };
        let columns: Vec<ArrayRef> = self
            .exec
            .output
            .iter()
            .map(|(_, i)| Arc::clone(filtered.column(*i)))
            .collect();
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.exec.schema),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(filtered.num_rows())),
        )?)
    }
}

impl ExecutionPlan for HashJoinExec {
    fn name(&self) -> &str {
        "HashJoin"
    }

    fn details(&self) -> String {
        format!("{} [{:?}]", self.display, self.join_type)
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

    fn execute(self: Arc<Self>, partition: usize, ctx: Arc<TaskContext>) -> Result<BatchStream> {
        let mut stream = ProbeStream {
            exec: Arc::clone(&self),
            ctx,
            partition,
            input: None,
            build: None,
            pending: Default::default(),
            done: false,
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
