//! Group accumulators: the running state of one aggregate function for every group.
//!
//! An accumulator is updated with a batch of argument values plus, per row, the index of the
//! row's group. Partial accumulators expose their state as Arrow arrays so a final
//! aggregation can merge states from several partitions (`merge`).

use std::sync::Arc;

use ahash::RandomState;
use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array};
use arrow::datatypes::{
    DataType, Decimal128Type, Field, Float64Type, Int64Type, DECIMAL128_MAX_PRECISION,
};
use arrow::row::{OwnedRow, RowConverter, SortField};
use hashbrown::HashSet;

use crate::error::{EngineError, Result};
use crate::eval::cast_array;
use crate::logical::expr::AggregateFunction;

/// Running state of one aggregate for all groups.
pub(crate) trait GroupAccumulator: Send {
    /// Add raw argument values; `groups[i]` is the group of row `i`.
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()>;
    /// Merge partial states (as produced by [`state`](Self::state)).
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()>;
    /// The partial state, one array per state field.
    fn state(&mut self) -> Result<Vec<ArrayRef>>;
    /// The final values.
    fn evaluate(&mut self) -> Result<ArrayRef>;
    /// Bytes held.
    fn size(&self) -> usize;
    /// Make sure groups `0..total_groups` exist (groups that never saw a row).
    fn ensure_groups(&mut self, total_groups: usize);
}

/// How an aggregate's partial state is laid out.
pub(crate) fn state_fields(
    func: AggregateFunction,
    input: &DataType,
    name: &str,
) -> Result<Vec<Field>> {
    Ok(match func {
        AggregateFunction::Count => {
            vec![Field::new(format!("{name}[count]"), DataType::Int64, true)]
        }
        AggregateFunction::Sum | AggregateFunction::Avg => {
            let sum_type = match input {
                DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
                DataType::Decimal128(_, s) => DataType::Decimal128(DECIMAL128_MAX_PRECISION, *s),
                _ => DataType::Decimal128(DECIMAL128_MAX_PRECISION, 0),
            };
            vec![
                Field::new(format!("{name}[sum]"), sum_type, true),
                Field::new(format!("{name}[count]"), DataType::Int64, true),
            ]
        }
        AggregateFunction::Min | AggregateFunction::Max => {
            vec![Field::new(format!("{name}[value]"), input.clone(), true)]
        }
        AggregateFunction::First | AggregateFunction::Last => vec![
            Field::new(format!("{name}[value]"), input.clone(), true),
            Field::new(format!("{name}[seen]"), DataType::Boolean, true),
        ],
        AggregateFunction::StddevSamp
        | AggregateFunction::StddevPop
        | AggregateFunction::VarSamp
        | AggregateFunction::VarPop => vec![
            Field::new(format!("{name}[count]"), DataType::Int64, true),
            Field::new(format!("{name}[mean]"), DataType::Float64, true),
            Field::new(format!("{name}[m2]"), DataType::Float64, true),
        ],
        AggregateFunction::Quantile(_) => {
            return Err(EngineError::NotSupported(format!(
                "{}() here (it needs all of a group's values in order)",
                func.name()
            )))
        }
    })
}

/// Create the accumulator for `func` over arguments of type `input`, producing `output`.
pub(crate) fn create_accumulator(
    func: AggregateFunction,
    distinct: bool,
    input: &DataType,
    output: &DataType,
) -> Result<Box<dyn GroupAccumulator>> {
    if distinct {
        return match func {
            AggregateFunction::Count => Ok(Box::new(CountDistinct::new(input)?)),
            AggregateFunction::Min
            | AggregateFunction::Max
            | AggregateFunction::First
            | AggregateFunction::Last => create_accumulator(func, false, input, output),
            _ => Err(EngineError::NotSupported(format!(
                "{}(DISTINCT ...)",
                func.name()
            ))),
        };
    }
    Ok(match func {
        AggregateFunction::Count => Box::new(Count::default()),
        AggregateFunction::Sum | AggregateFunction::Avg => match input {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Box::new(FloatSum {
                sums: vec![],
                counts: vec![],
                average: func == AggregateFunction::Avg,
            }),
            DataType::Decimal128(_, s) => Box::new(ExactSum::new(
                *s,
                func == AggregateFunction::Avg,
                output.clone(),
            )),
            t if t.is_integer() || *t == DataType::Null => Box::new(ExactSum::new(
                0,
                func == AggregateFunction::Avg,
                output.clone(),
            )),
            other => {
                return Err(EngineError::Type(format!(
                    "{}() is not defined for {other}",
                    func.name()
                )))
            }
        },
        AggregateFunction::Min => Box::new(MinMax::new(input, false)?),
        AggregateFunction::Max => Box::new(MinMax::new(input, true)?),
        AggregateFunction::First => Box::new(FirstLast::new(input, false)?),
        AggregateFunction::Last => Box::new(FirstLast::new(input, true)?),
        AggregateFunction::StddevSamp => Box::new(Variance::new(true, true)),
        AggregateFunction::StddevPop => Box::new(Variance::new(true, false)),
        AggregateFunction::VarSamp => Box::new(Variance::new(false, true)),
        AggregateFunction::VarPop => Box::new(Variance::new(false, false)),
        AggregateFunction::Quantile(_) => {
            // The optimizer rewrites every quantile of an aggregation into a sort.
            return Err(EngineError::NotSupported(format!(
                "{}() here (it needs all of a group's values in order)",
                func.name()
            )));
        }
    })
}

fn grow<T: Clone>(v: &mut Vec<T>, n: usize, fill: T) {
    if v.len() < n {
        v.resize(n, fill);
    }
}

/// `count(*)` / `count(x)`.
#[derive(Default)]
struct Count {
    counts: Vec<i64>,
}

impl GroupAccumulator for Count {
    fn ensure_groups(&mut self, n: usize) {
        grow(&mut self.counts, n, 0);
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        grow(&mut self.counts, total_groups, 0);
        match values.first() {
            Some(v) if v.null_count() > 0 => {
                for (i, &g) in groups.iter().enumerate() {
                    if v.is_valid(i) {
                        self.counts[g as usize] += 1;
                    }
                }
            }
            _ => {
                for &g in groups {
                    self.counts[g as usize] += 1;
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        grow(&mut self.counts, total_groups, 0);
        let counts = states[0].as_primitive::<Int64Type>();
        for (i, &g) in groups.iter().enumerate() {
            self.counts[g as usize] += counts.value(i);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(std::mem::take(&mut self.counts))))
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 8
    }
}

/// Exact sums of integers and decimals in i128, also used for `avg` of those types.
struct ExactSum {
    sums: Vec<i128>,
    counts: Vec<i64>,
    scale: i8,
    average: bool,
    output: DataType,
}

impl ExactSum {
    fn new(scale: i8, average: bool, output: DataType) -> Self {
        Self {
            sums: vec![],
            counts: vec![],
            scale,
            average,
            output,
        }
    }

    fn add(&mut self, groups: &[u32], values: impl Iterator<Item = Option<i128>>) -> Result<()> {
        for (&g, v) in groups.iter().zip(values) {
            if let Some(v) = v {
                let g = g as usize;
                self.sums[g] = self.sums[g]
                    .checked_add(v)
                    .ok_or_else(|| EngineError::Execution("sum overflowed 128 bits".into()))?;
                self.counts[g] += 1;
            }
        }
        Ok(())
    }

    fn take_state(&mut self) -> (Vec<i128>, Vec<i64>) {
        (
            std::mem::take(&mut self.sums),
            std::mem::take(&mut self.counts),
        )
    }
}

impl GroupAccumulator for ExactSum {
    fn ensure_groups(&mut self, n: usize) {
        grow(&mut self.sums, n, 0);
        grow(&mut self.counts, n, 0);
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        grow(&mut self.sums, total_groups, 0);
        grow(&mut self.counts, total_groups, 0);
        let v = &values[0];
        match v.data_type() {
            DataType::Decimal128(_, _) => {
                let a = v.as_primitive::<Decimal128Type>();
                if a.null_count() == 0 {
                    let vals = a.values();
                    for (&g, &x) in groups.iter().zip(vals.iter()) {
                        let g = g as usize;
                        self.sums[g] = self.sums[g].checked_add(x).ok_or_else(|| {
                            EngineError::Execution("sum overflowed 128 bits".into())
                        })?;
                        self.counts[g] += 1;
                    }
                    Ok(())
                } else {
                    self.add(groups, a.iter())
                }
            }
            DataType::Null => Ok(()),
            _ => {
                let a = cast_array(v, &DataType::Int64)?;
                let a = a.as_primitive::<Int64Type>();
                self.add(groups, a.iter().map(|x| x.map(i128::from)))
            }
        }
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        grow(&mut self.sums, total_groups, 0);
        grow(&mut self.counts, total_groups, 0);
        let sums = states[0].as_primitive::<Decimal128Type>();
        let counts = states[1].as_primitive::<Int64Type>();
        for (i, &g) in groups.iter().enumerate() {
            let g = g as usize;
            self.sums[g] = self.sums[g]
                .checked_add(sums.value(i))
                .ok_or_else(|| EngineError::Execution("sum overflowed 128 bits".into()))?;
            self.counts[g] += counts.value(i);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let (sums, counts) = self.take_state();
        let sums = Decimal128Array::from(sums)
            .with_precision_and_scale(DECIMAL128_MAX_PRECISION, self.scale)?;
        Ok(vec![Arc::new(sums), Arc::new(Int64Array::from(counts))])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let (sums, counts) = self.take_state();
        if self.average {
            let divisor = 10f64.powi(self.scale as i32);
            let out: Float64Array = sums
                .iter()
                .zip(counts.iter())
                .map(|(&s, &c)| (c > 0).then(|| (s as f64 / divisor) / c as f64))
                .collect();
            return Ok(Arc::new(out));
        }
        match &self.output {
            DataType::Int64 => {
                let mut out = Vec::with_capacity(sums.len());
                for (&s, &c) in sums.iter().zip(counts.iter()) {
                    if c == 0 {
                        out.push(None);
                    } else {
                        out.push(Some(i64::try_from(s).map_err(|_| {
                            EngineError::Execution(format!("sum {s} does not fit in BIGINT"))
                        })?));
                    }
                }
                Ok(Arc::new(Int64Array::from(out)))
            }
            DataType::Decimal128(p, s) => {
                let out: Decimal128Array = sums
                    .iter()
                    .zip(counts.iter())
                    .map(|(&v, &c)| (c > 0).then_some(v))
                    .collect();
                Ok(Arc::new(out.with_precision_and_scale(*p, *s)?))
            }
            other => Err(EngineError::Internal(format!(
                "exact sum cannot produce {other}"
            ))),
        }
    }

    fn size(&self) -> usize {
        self.sums.capacity() * 16 + self.counts.capacity() * 8
    }
}

/// Sums and averages of floating-point values.
struct FloatSum {
    sums: Vec<f64>,
    counts: Vec<i64>,
    average: bool,
}

impl GroupAccumulator for FloatSum {
    fn ensure_groups(&mut self, n: usize) {
        grow(&mut self.sums, n, 0.0);
        grow(&mut self.counts, n, 0);
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        grow(&mut self.sums, total_groups, 0.0);
        grow(&mut self.counts, total_groups, 0);
        let a = cast_array(&values[0], &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        for (&g, v) in groups.iter().zip(a.iter()) {
            if let Some(v) = v {
                self.sums[g as usize] += v;
                self.counts[g as usize] += 1;
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        grow(&mut self.sums, total_groups, 0.0);
        grow(&mut self.counts, total_groups, 0);
        let sums = states[0].as_primitive::<Float64Type>();
        let counts = states[1].as_primitive::<Int64Type>();
        for (i, &g) in groups.iter().enumerate() {
            self.sums[g as usize] += sums.value(i);
            self.counts[g as usize] += counts.value(i);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let sums = Float64Array::from(std::mem::take(&mut self.sums));
        let counts = Int64Array::from(std::mem::take(&mut self.counts));
        Ok(vec![Arc::new(sums), Arc::new(counts)])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let sums = std::mem::take(&mut self.sums);
        let counts = std::mem::take(&mut self.counts);
        let average = self.average;
        let out: Float64Array = sums
            .iter()
            .zip(counts.iter())
            .map(|(&s, &c)| (c > 0).then(|| if average { s / c as f64 } else { s }))
            .collect();
        Ok(Arc::new(out))
    }

    fn size(&self) -> usize {
        self.sums.capacity() * 8 + self.counts.capacity() * 8
    }
}

/// Variance and standard deviation (sample or population), by Welford's update per value and
/// Chan et al.'s merge of partial states: each group keeps its count, mean and sum of squared
/// deviations from the mean (`m2`), which stays accurate where summing squares would cancel.
struct Variance {
    counts: Vec<i64>,
    means: Vec<f64>,
    m2s: Vec<f64>,
    /// The square root of the variance.
    deviation: bool,
    /// Divide by `n - 1` (sample) instead of `n` (population).
    sample: bool,
}

impl Variance {
    fn new(deviation: bool, sample: bool) -> Self {
        Self {
            counts: vec![],
            means: vec![],
            m2s: vec![],
            deviation,
            sample,
        }
    }

    /// Fold a partial state `(n, mean, m2)` into group `g`.
    fn combine(&mut self, g: usize, n: i64, mean: f64, m2: f64) {
        let total = self.counts[g] + n;
        if n == 0 {
            return;
        }
        let delta = mean - self.means[g];
        let weight = n as f64 / total as f64;
        self.means[g] += delta * weight;
        self.m2s[g] += m2 + delta * delta * self.counts[g] as f64 * weight;
        self.counts[g] = total;
    }
}

impl GroupAccumulator for Variance {
    fn ensure_groups(&mut self, n: usize) {
        grow(&mut self.counts, n, 0);
        grow(&mut self.means, n, 0.0);
        grow(&mut self.m2s, n, 0.0);
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let a = cast_array(&values[0], &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        for (&g, v) in groups.iter().zip(a.iter()) {
            if let Some(v) = v {
                let g = g as usize;
                self.counts[g] += 1;
                let delta = v - self.means[g];
                self.means[g] += delta / self.counts[g] as f64;
                self.m2s[g] += delta * (v - self.means[g]);
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let counts = states[0].as_primitive::<Int64Type>();
        let means = states[1].as_primitive::<Float64Type>();
        let m2s = states[2].as_primitive::<Float64Type>();
        for (i, &g) in groups.iter().enumerate() {
            self.combine(g as usize, counts.value(i), means.value(i), m2s.value(i));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![
            Arc::new(Int64Array::from(std::mem::take(&mut self.counts))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.means))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.m2s))),
        ])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let counts = std::mem::take(&mut self.counts);
        let m2s = std::mem::take(&mut self.m2s);
        self.means.clear();
        let (deviation, sample) = (self.deviation, self.sample);
        let out: Float64Array = counts
            .iter()
            .zip(&m2s)
            .map(|(&n, &m2)| {
                let divisor = if sample { n - 1 } else { n };
                (divisor > 0).then(|| {
                    // Rounding can leave a tiny negative m2 for equal values.
                    let variance = (m2 / divisor as f64).max(0.0);
                    if deviation {
                        variance.sqrt()
                    } else {
                        variance
                    }
                })
            })
            .collect();
        Ok(Arc::new(out))
    }

    fn size(&self) -> usize {
        (self.counts.capacity() + self.means.capacity() + self.m2s.capacity()) * 8
    }
}

/// `min` / `max` of any orderable type, comparing the row encoding (which orders NaN above
/// every other float, as DuckDB does).
struct MinMax {
    converter: RowConverter,
    values: Vec<Option<OwnedRow>>,
    is_max: bool,
    data_type: DataType,
    bytes: usize,
}

impl MinMax {
    fn new(data_type: &DataType, is_max: bool) -> Result<Self> {
        let converter = RowConverter::new(vec![SortField::new(data_type.clone())])?;
        Ok(Self {
            converter,
            values: vec![],
            is_max,
            data_type: data_type.clone(),
            bytes: 0,
        })
    }

    fn add(&mut self, array: &ArrayRef, groups: &[u32], total_groups: usize) -> Result<()> {
        if self.values.len() < total_groups {
            self.values.resize(total_groups, None);
        }
        if total_groups == 1 && array.len() > 1 {
            // One group (a global aggregate): find the batch's extreme with a partial sort and
            // compare only that value.
            let options = arrow::compute::SortOptions {
                descending: self.is_max,
                nulls_first: false,
            };
            let best = arrow::compute::sort_to_indices(array, Some(options), Some(1))?;
            if best.is_empty() || array.is_null(best.value(0) as usize) {
                return Ok(());
            }
            let single = array.slice(best.value(0) as usize, 1);
            return self.add(&single, &[0], 1);
        }
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(array))?;
        for (i, &g) in groups.iter().enumerate() {
            if array.is_null(i) {
                continue;
            }
            let row = rows.row(i);
            let slot = &mut self.values[g as usize];
            let better = match slot {
                None => true,
                Some(current) => {
                    if self.is_max {
                        row > current.row()
                    } else {
                        row < current.row()
                    }
                }
            };
            if better {
                let owned = row.owned();
                self.bytes += owned.as_ref().len();
                *slot = Some(owned);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        let values = std::mem::take(&mut self.values);
        // Encode NULL groups by converting a null value of the type.
        let null_array = arrow::array::new_null_array(&self.data_type, 1);
        let null_rows = self.converter.convert_columns(&[null_array])?;
        let null_row = null_rows.row(0);
        let rows: Vec<_> = values
            .iter()
            .map(|v| v.as_ref().map_or(null_row, |r| r.row()))
            .collect();
        let mut out = self.converter.convert_rows(rows)?;
        self.bytes = 0;
        Ok(out.remove(0))
    }
}

impl GroupAccumulator for MinMax {
    fn ensure_groups(&mut self, n: usize) {
        if self.values.len() < n {
            self.values.resize(n, None);
        }
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.add(&values[0], groups, total_groups)
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.add(&states[0], groups, total_groups)
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.finish()?])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        self.finish()
    }

    fn size(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<Option<OwnedRow>>() + self.bytes
    }
}

/// `first(x)` / `last(x)`: the value (NULL included) of the first or last row of each group in
/// the order rows reach the accumulator. Partial states carry a `seen` flag so that a group
/// whose first value is NULL keeps it when states are merged.
struct FirstLast {
    converter: RowConverter,
    /// `None`: no row of the group seen yet. A NULL value is stored as its row encoding.
    values: Vec<Option<OwnedRow>>,
    last: bool,
    data_type: DataType,
    bytes: usize,
}

impl FirstLast {
    fn new(data_type: &DataType, last: bool) -> Result<Self> {
        Ok(Self {
            converter: RowConverter::new(vec![SortField::new(data_type.clone())])?,
            values: vec![],
            last,
            data_type: data_type.clone(),
            bytes: 0,
        })
    }

    /// Take row `i` of `array` for its group unless `seen` says the row is absent.
    fn add(
        &mut self,
        array: &ArrayRef,
        seen: Option<&arrow::array::BooleanArray>,
        groups: &[u32],
        total_groups: usize,
    ) -> Result<()> {
        if self.values.len() < total_groups {
            self.values.resize(total_groups, None);
        }
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(array))?;
        for (i, &g) in groups.iter().enumerate() {
            if seen.is_some_and(|s| !s.is_valid(i) || !s.value(i)) {
                continue;
            }
            let slot = &mut self.values[g as usize];
            if slot.is_some() && !self.last {
                continue;
            }
            let owned = rows.row(i).owned();
            self.bytes += owned.as_ref().len();
            if let Some(old) = slot.replace(owned) {
                self.bytes -= old.as_ref().len();
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(ArrayRef, ArrayRef)> {
        let values = std::mem::take(&mut self.values);
        let null_array = arrow::array::new_null_array(&self.data_type, 1);
        let null_rows = self.converter.convert_columns(&[null_array])?;
        let null_row = null_rows.row(0);
        let seen: arrow::array::BooleanArray = values.iter().map(|v| Some(v.is_some())).collect();
        let rows: Vec<_> = values
            .iter()
            .map(|v| v.as_ref().map_or(null_row, |r| r.row()))
            .collect();
        let mut out = self.converter.convert_rows(rows)?;
        self.bytes = 0;
        Ok((out.remove(0), Arc::new(seen)))
    }
}

impl GroupAccumulator for FirstLast {
    fn ensure_groups(&mut self, n: usize) {
        if self.values.len() < n {
            self.values.resize(n, None);
        }
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.add(&values[0], None, groups, total_groups)
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        let seen = states[1].as_boolean();
        self.add(&states[0], Some(seen), groups, total_groups)
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let (values, seen) = self.finish()?;
        Ok(vec![values, seen])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        Ok(self.finish()?.0)
    }

    fn size(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<Option<OwnedRow>>() + self.bytes
    }
}

/// `count(DISTINCT x)`: a set of distinct values per group (single-phase only). Integers,
/// dates, timestamps and decimals are kept as 128-bit words; other types as row-format bytes.
struct CountDistinct {
    converter: RowConverter,
    words: Option<Vec<HashSet<u128, RandomState>>>,
    sets: Vec<HashSet<Box<[u8]>, RandomState>>,
    bytes: usize,
}

fn distinct_hasher() -> RandomState {
    RandomState::with_seeds(1, 2, 3, 4)
}

/// The value at `i` as a word, for fixed-width types.
fn word_at(array: &dyn Array, i: usize) -> Option<u128> {
    use arrow::datatypes::*;
    Some(match array.data_type() {
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i) as u128,
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i) as u128,
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i) as u128,
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i) as u128,
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i) as u128,
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i) as u128,
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i) as u128,
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i) as u128,
        DataType::Date32 => array.as_primitive::<Date32Type>().value(i) as u128,
        DataType::Decimal128(_, _) => array.as_primitive::<Decimal128Type>().value(i) as u128,
        _ => return None,
    })
}

impl CountDistinct {
    fn new(data_type: &DataType) -> Result<Self> {
        let fixed = data_type.is_integer()
            || matches!(data_type, DataType::Date32 | DataType::Decimal128(_, _));
        Ok(Self {
            converter: RowConverter::new(vec![SortField::new(data_type.clone())])?,
            words: fixed.then(Vec::new),
            sets: vec![],
            bytes: 0,
        })
    }
}

impl GroupAccumulator for CountDistinct {
    fn ensure_groups(&mut self, n: usize) {
        match &mut self.words {
            Some(words) => {
                while words.len() < n {
                    words.push(HashSet::with_hasher(distinct_hasher()));
                }
            }
            None => {
                while self.sets.len() < n {
                    self.sets.push(HashSet::with_hasher(distinct_hasher()));
                }
            }
        }
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let array = &values[0];
        if let Some(words) = &mut self.words {
            for (i, &g) in groups.iter().enumerate() {
                if array.is_null(i) {
                    continue;
                }
                if let Some(w) = word_at(array.as_ref(), i) {
                    if words[g as usize].insert(w) {
                        self.bytes += 32;
                    }
                }
            }
            return Ok(());
        }
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(array))?;
        for (i, &g) in groups.iter().enumerate() {
            if array.is_null(i) {
                continue;
            }
            let row = rows.row(i);
            let bytes = row.as_ref();
            let set = &mut self.sets[g as usize];
            if !set.contains(bytes) {
                self.bytes += bytes.len() + 24;
                set.insert(bytes.into());
            }
        }
        Ok(())
    }

    fn merge(&mut self, _states: &[ArrayRef], _groups: &[u32], _total_groups: usize) -> Result<()> {
        Err(EngineError::Internal(
            "count(DISTINCT) is computed in a single phase".into(),
        ))
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Err(EngineError::Internal(
            "count(DISTINCT) has no partial state".into(),
        ))
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        self.bytes = 0;
        let counts: Vec<i64> = match &mut self.words {
            Some(words) => std::mem::take(words)
                .iter()
                .map(|s| s.len() as i64)
                .collect(),
            None => std::mem::take(&mut self.sets)
                .iter()
                .map(|s| s.len() as i64)
                .collect(),
        };
        Ok(Arc::new(Int64Array::from(counts)))
    }

    fn size(&self) -> usize {
        self.bytes
            + self.sets.capacity() * 48
            + self.words.as_ref().map_or(0, |w| w.capacity() * 48)
    }
}
