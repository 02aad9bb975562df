//! The hash join's build side: read once, by whichever probe partition asks first while the
//! others wait, and shared by all of them. Whole batches are gathered while the memory
//! reservation grows; after the first refusal rows go to hash partitions and the largest are
//! written out (or, with key windows, the windows past what fits). Once built, a single
//! integer key's range (or set of values) is published to the probe side's scan, and outer,
//! semi and anti joins that emit build rows do so from the shared matched bits.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use super::grace::{build_cost, split, take_members, PartitionBuffers};
use super::table::{self, int_values, BuildFacts, BuildSide, PARTITIONS};
use super::windows::{KeyWindows, Window};
use super::{broken, merge_ranges, BuildState, HashJoinExec, KeySetUse, INDEX_KEY_SET_MAX_ROWS};
use crate::error::{EngineError, Result};
use crate::memory::{MemoryPart, MemoryReservation};
use crate::physical::joins::{assemble, PhysicalJoinType};
use crate::physical::scan::{DynamicFilter, KeySetFilter};
use crate::physical::{compact_views, concat_releasing, TaskContext};
use ooc_io::PruneExpr;

impl HashJoinExec {
    /// The shared build side, building it on first use.
    pub(super) fn build_side(&self, ctx: &Arc<TaskContext>) -> Result<Arc<BuildSide>> {
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

    /// Read the build input: whole batches while the reservation grows, hash partitions with
    /// the largest ones written out after the first refusal.
    pub(super) fn create_build_side(&self, ctx: &Arc<TaskContext>) -> Result<BuildSide> {
        let schema = self.build.schema();
        let exprs = self.build_exprs();
        let mut reservation = MemoryReservation::new_spillable(
            &ctx.memory_pool,
            "HashJoin(build)",
            MemoryPart::BuildSide,
            Some(Arc::clone(&self.metrics)),
        );
        let mut whole: Vec<RecordBatch> = Vec::new();
        // After the first refusal: the in-memory rows of each partition and their cost.
        let mut parts: Option<Vec<Vec<RecordBatch>>> = None;
        // Per partition (or window, once decided).
        let mut part_bytes = vec![0usize; PARTITIONS];
        let mut spilled = vec![false; PARTITIONS];
        let mut spill: Option<PartitionBuffers> = None;
        // Key windows instead of hash partitions, decided at the first refusal.
        let mut windows: Option<KeyWindows> = None;
        let mut facts = BuildFacts::default();
        let mut spilled_range: Option<(i64, i64)> = None;
        // Batches to route into partitions, with the cost already reserved for each.
        let mut incoming: Vec<(RecordBatch, usize)> = Vec::new();
        let want_range = self.dynamic_filter.is_some();
        for batch in Arc::clone(&self.build).execute(0, Arc::clone(ctx))? {
            let batch = compact_views(&batch?);
            ctx.check_cancelled()?;
            facts.rows += batch.num_rows();
            let mut asked = false;
            if parts.is_none() {
                // Keep batches whole while they fit and nobody asked for memory.
                asked = reservation.spill_requested();
                if !asked
                    && reservation
                        .try_grow(build_cost(&batch, &self.encoding))
                        .is_ok()
                {
                    whole.push(batch);
                    continue;
                }
                // First refusal: from now on rows are kept by partition (or window).
                windows = self.probe_segments.clone().and_then(KeyWindows::plan);
                let slots = windows.as_ref().map_or(PARTITIONS, KeyWindows::len);
                part_bytes = vec![0; slots];
                spilled = vec![false; slots];
                parts = Some((0..slots).map(|_| Vec::new()).collect());
                spill = Some(PartitionBuffers::new(
                    "join-build".into(),
                    slots,
                    Arc::clone(&schema),
                    ctx,
                    &self.metrics,
                ));
                incoming.extend(whole.drain(..).map(|b| {
                    let cost = build_cost(&b, &self.encoding);
                    (b, cost)
                }));
            }
            incoming.push((batch, 0));
            let (Some(parts), Some(spill)) = (parts.as_mut(), spill.as_mut()) else {
                return Err(broken("build partitions missing"));
            };
            for (batch, reserved) in incoming.drain(..) {
                let keys = self.encoding.keys(&exprs, &batch)?;
                facts.has_null_key |= keys.valid.as_ref().is_some_and(|v| v.null_count() > 0);
                if want_range {
                    spilled_range = merge_ranges(spilled_range, self.dynamic_key_range(&batch)?);
                }
                let subs = match &windows {
                    Some(w) => take_members(&batch, w.route(&keys.ints[0]))?,
                    None => split(&batch, &keys.partitions(0))?,
                };
                drop(batch);
                reservation.shrink(reserved);
                for (p, sub) in subs {
                    if spilled[p] {
                        spill.push(p, sub, ctx, &self.metrics)?;
                        continue;
                    }
                    let cost = build_cost(&sub, &self.encoding);
                    parts[p].push(sub);
                    part_bytes[p] += cost;
                    // Make room by writing out the largest partition still in memory
                    // (possibly this one), or the highest window: the probe side needs
                    // the low ones first.
                    while reservation.try_grow(cost).is_err() {
                        let held = (0..spilled.len()).filter(|&q| !spilled[q]);
                        let victim = match windows {
                            Some(_) => held.max(),
                            None => held.max_by_key(|&q| part_bytes[q]),
                        }
                        .ok_or_else(|| broken("no build partition in memory"))?;
                        spilled[victim] = true;
                        for b in std::mem::take(&mut parts[victim]) {
                            spill.push(victim, b, ctx, &self.metrics)?;
                        }
                        let freed = part_bytes[victim];
                        part_bytes[victim] = 0;
                        if victim == p {
                            // Its own cost was never reserved.
                            reservation.shrink(freed - cost);
                            break;
                        }
                        reservation.shrink(freed);
                    }
                }
            }
            // Asked for memory by an operator that cannot spill: write out the largest
            // partition still held.
            if asked || reservation.spill_requested() {
                let held = (0..spilled.len()).filter(|&q| !spilled[q] && part_bytes[q] > 0);
                let victim = match windows {
                    Some(_) => held.max(),
                    None => held.max_by_key(|&q| part_bytes[q]),
                };
                if let Some(victim) = victim {
                    spilled[victim] = true;
                    for b in std::mem::take(&mut parts[victim]) {
                        spill.push(victim, b, ctx, &self.metrics)?;
                    }
                    reservation.shrink(part_bytes[victim]);
                    part_bytes[victim] = 0;
                }
            }
        }
        // From here on the rows are indexed in memory and cannot be written out any more.
        reservation.stop_spilling();
        if let (Some(windows), Some(parts)) = (windows, parts.as_mut()) {
            let mut files = spill
                .ok_or_else(|| broken("build spill buffers missing"))?
                .finish(ctx, &self.metrics)?;
            let mut installed = Vec::with_capacity(windows.len());
            let mut kept = 0;
            for w in 0..windows.len() {
                if spilled[w] {
                    installed.push(Window::Disk(std::mem::take(&mut files[w])));
                    continue;
                }
                kept += 1;
                let rows = concat_releasing(&schema, std::mem::take(&mut parts[w]))?;
                let held = reservation.split(part_bytes[w]);
                installed.push(Window::Memory(Arc::new(BuildSide::index(
                    rows,
                    &exprs,
                    &self.encoding,
                    held,
                    [false; PARTITIONS],
                    facts,
                )?)));
            }
            windows.install(installed);
            self.windows_kept.store(kept, Ordering::Relaxed);
            self.metrics.set_extra("key_windows", windows.summary(kept));
            let _ = self.windows.set(Arc::new(windows));
            // The probe streams join against the windows; the shared build side holds no
            // rows, only the facts.
            let empty = RecordBatch::new_empty(Arc::clone(&schema));
            let build = BuildSide::index(
                empty,
                &exprs,
                &self.encoding,
                reservation,
                [false; PARTITIONS],
                facts,
            )?;
            self.publish_dynamic_filter(&build, spilled_range, false)?;
            self.metrics.set_extra("build_rows", build.facts.rows);
            return Ok(build);
        }
        let (batch, files) = match parts {
            None => (concat_releasing(&schema, whole)?, Vec::new()),
            Some(parts) => {
                let in_memory: Vec<RecordBatch> = parts.into_iter().flatten().collect();
                let files = spill
                    .ok_or_else(|| broken("build spill buffers missing"))?
                    .finish(ctx, &self.metrics)?;
                (concat_releasing(&schema, in_memory)?, files)
            }
        };
        let spilled_partitions: [bool; PARTITIONS] = spilled
            .as_slice()
            .try_into()
            .map_err(|_| broken("hash partitions miscounted"))?;
        let build = BuildSide::index(
            batch,
            &exprs,
            &self.encoding,
            reservation,
            spilled_partitions,
            facts,
        )?;
        let spilled_count = spilled.iter().filter(|&&s| s).count();
        let largest = build.partition_rows.iter().max().copied().unwrap_or(0);
        self.metrics.set_extra(
            "build_partitions",
            if spilled_count == 0 {
                format!("{PARTITIONS} (largest {largest} rows)")
            } else {
                format!("{PARTITIONS}, {spilled_count} spilled")
            },
        );
        if spilled_count > 0 {
            self.grace().build_files = files;
        }
        self.publish_dynamic_filter(&build, spilled_range, spilled_count == 0)?;
        self.metrics.set_extra("build_rows", build.facts.rows);
        self.metrics.set_extra("index", build.index_kind());
        Ok(build)
    }

    /// Publish the build keys' range (and, when all of them are in memory and asked for,
    /// their set) to the probe scan.
    pub(super) fn publish_dynamic_filter(
        &self,
        build: &BuildSide,
        spilled_range: Option<(i64, i64)>,
        complete: bool,
    ) -> Result<()> {
        let Some((filter, column)) = &self.dynamic_filter else {
            return Ok(());
        };
        if !self.join_type.drops_unmatched_probe_rows() {
            return Ok(());
        }
        let n = build.batch.num_rows();
        let key = self.on[self.dynamic_key.min(self.on.len() - 1)]
            .1
            .evaluate(&build.batch)?
            .into_array(n)?;
        // The filter is about one key column (of possibly several); it must be integer-like.
        if !table::is_int_key(key.data_type()) {
            return Ok(());
        }
        let values = int_values(&key)?;
        let valid = |i: usize| arrow::array::Array::is_valid(&values, i);
        let range = merge_ranges(spilled_range, self.dynamic_key_range(&build.batch)?);
        self.publish_range(filter, column, range)?;
        let publish = match self.publish_keys {
            KeySetUse::None => false,
            KeySetUse::IndexOnly => n <= INDEX_KEY_SET_MAX_ROWS,
            KeySetUse::FilterRows => true,
        };
        if publish && complete {
            let set: hashbrown::HashSet<i64> = (0..n)
                .filter(|&i| valid(i))
                .map(|i| values.value(i))
                .collect();
            if set.len() <= 4 << 20 {
                self.metrics.set_extra("key_set_published", set.len());
                filter.publish_keys(KeySetFilter {
                    column: column.clone(),
                    keys: set,
                    filter_rows: self.publish_keys == KeySetUse::FilterRows,
                });
            }
        }
        Ok(())
    }

    /// Min and max of the dynamic filter's key column over `batch` (build side), if that
    /// column is integer-like and has a non-NULL value.
    pub(super) fn dynamic_key_range(&self, batch: &RecordBatch) -> Result<Option<(i64, i64)>> {
        let key = self.on[self.dynamic_key.min(self.on.len() - 1)]
            .1
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        if !table::is_int_key(key.data_type()) {
            return Ok(None);
        }
        let values = int_values(&key)?;
        Ok(arrow::compute::min(&values).zip(arrow::compute::max(&values)))
    }

    pub(super) fn publish_range(
        &self,
        filter: &Arc<DynamicFilter>,
        column: &str,
        range: Option<(i64, i64)>,
    ) -> Result<()> {
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

    /// Emit the build rows this join keeps at the end (after the last probe partition).
    pub(super) fn build_side_output(
        &self,
        build: &BuildSide,
        batch_size: usize,
    ) -> Result<Vec<RecordBatch>> {
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
