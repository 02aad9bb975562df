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

use super::hyperloglog::HyperLogLog;
use super::tdigest::ApproxQuantile;
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
        AggregateFunction::ArgMin | AggregateFunction::ArgMax => {
            vec![Field::new(format!("{name}[best]"), DataType::Binary, true)]
        }
        AggregateFunction::ApproxCountDistinct => {
            vec![Field::new(
                format!("{name}[sketch]"),
                DataType::Binary,
                true,
            )]
        }
        AggregateFunction::ApproxQuantile => vec![
            Field::new(format!("{name}[digest]"), DataType::Binary, true),
            Field::new(format!("{name}[fraction]"), DataType::Float64, true),
        ],
        AggregateFunction::StringAgg { .. } => vec![
            Field::new(format!("{name}[entries]"), DataType::Binary, true),
            Field::new(format!("{name}[separator]"), DataType::Utf8, true),
        ],
        AggregateFunction::CovarPop | AggregateFunction::CovarSamp | AggregateFunction::Corr => {
            vec![
                Field::new(format!("{name}[count]"), DataType::Int64, true),
                Field::new(format!("{name}[mean_y]"), DataType::Float64, true),
                Field::new(format!("{name}[mean_x]"), DataType::Float64, true),
                Field::new(format!("{name}[c]"), DataType::Float64, true),
                Field::new(format!("{name}[m2_y]"), DataType::Float64, true),
                Field::new(format!("{name}[m2_x]"), DataType::Float64, true),
            ]
        }
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
    arg_types: &[DataType],
    output: &DataType,
) -> Result<Box<dyn GroupAccumulator>> {
    if distinct {
        return match func {
            AggregateFunction::Count => Ok(Box::new(CountDistinct::new(input)?)),
            AggregateFunction::Min
            | AggregateFunction::Max
            | AggregateFunction::First
            | AggregateFunction::Last => create_accumulator(func, false, input, arg_types, output),
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
        AggregateFunction::ArgMin | AggregateFunction::ArgMax => {
            let [arg, val] = arg_types else {
                return Err(EngineError::Internal(format!(
                    "{}() with {} argument types",
                    func.name(),
                    arg_types.len()
                )));
            };
            Box::new(ArgBest::new(arg, val, func == AggregateFunction::ArgMax)?)
        }
        AggregateFunction::StringAgg {
            keys,
            descending,
            nulls_first,
        } => Box::new(StringAgg::new(
            arg_types.get(2..).unwrap_or(&[]),
            keys,
            descending,
            nulls_first,
        )?),
        AggregateFunction::CovarPop => Box::new(Covariance::new(CovarianceOutput::Population)),
        AggregateFunction::CovarSamp => Box::new(Covariance::new(CovarianceOutput::Sample)),
        AggregateFunction::Corr => Box::new(Covariance::new(CovarianceOutput::Correlation)),
        AggregateFunction::ApproxCountDistinct => Box::<HyperLogLog>::default(),
        AggregateFunction::ApproxQuantile => Box::new(ApproxQuantile::new(output)),
        AggregateFunction::Quantile(_) => {
            // The optimizer rewrites every quantile of an aggregation into a sort.
            return Err(EngineError::NotSupported(format!(
                "{}() here (it needs all of a group's values in order)",
                func.name()
            )));
        }
    })
}

/// One binary state value per group, each written by `encode` after the previous one (the
/// layout of the sketches' states).
pub(super) fn binary_states<T>(
    groups: Vec<T>,
    mut encode: impl FnMut(T, &mut Vec<u8>),
) -> Result<ArrayRef> {
    let mut bytes = Vec::new();
    let mut offsets = vec![0i32];
    for group in groups {
        encode(group, &mut bytes);
        offsets.push(i32::try_from(bytes.len()).map_err(|_| {
            EngineError::Internal("aggregate states over 2 GiB in one batch".into())
        })?);
    }
    let array = arrow::array::BinaryArray::try_new(
        arrow::buffer::OffsetBuffer::new(offsets.into()),
        bytes.into(),
        None,
    )?;
    Ok(Arc::new(array))
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
            // One group (a global aggregate): find the batch's extreme and compare only that
            // value; a linear pass where arrow has a kernel for the type, else a partial sort.
            if let Some(best) = batch_extreme(array, self.is_max) {
                return match best {
                    Some(single) => self.add(&single, &[0], 1),
                    None => Ok(()),
                };
            }
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

/// The smallest or largest non-NULL value of `array` as a one-row array of its type, found by
/// arrow's aggregate kernels in one pass (`Some(None)`: every value is NULL). `None` for the
/// types left to the row encoding: floats (whose order of NaN and of -0 and +0 the encoding
/// decides), and nested, dictionary and other types.
fn batch_extreme(array: &ArrayRef, is_max: bool) -> Option<Option<ArrayRef>> {
    use arrow::array::{LargeStringArray, PrimitiveArray, StringArray, StringViewArray};
    use arrow::compute::kernels::aggregate as agg;
    use arrow::datatypes::*;
    macro_rules! primitive {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            let v = if is_max { agg::max(a) } else { agg::min(a) };
            v.map(|v| {
                Arc::new(
                    PrimitiveArray::<$t>::from_value(v, 1)
                        .with_data_type(array.data_type().clone()),
                ) as ArrayRef
            })
        }};
    }
    macro_rules! string {
        ($a:expr, $max:path, $min:path, $out:ty) => {{
            let a = $a;
            let v = if is_max { $max(a) } else { $min(a) };
            v.map(|v| Arc::new(<$out>::from(vec![v])) as ArrayRef)
        }};
    }
    Some(match array.data_type() {
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Decimal32(_, _) => primitive!(Decimal32Type),
        DataType::Decimal64(_, _) => primitive!(Decimal64Type),
        DataType::Decimal128(_, _) => primitive!(Decimal128Type),
        DataType::Date32 => primitive!(Date32Type),
        DataType::Date64 => primitive!(Date64Type),
        DataType::Timestamp(TimeUnit::Second, _) => primitive!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => primitive!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => primitive!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => primitive!(TimestampNanosecondType),
        DataType::Utf8 => string!(
            array.as_string::<i32>(),
            agg::max_string,
            agg::min_string,
            StringArray
        ),
        DataType::LargeUtf8 => string!(
            array.as_string::<i64>(),
            agg::max_string,
            agg::min_string,
            LargeStringArray
        ),
        DataType::Utf8View => string!(
            array.as_string_view(),
            agg::max_string_view,
            agg::min_string_view,
            StringViewArray
        ),
        _ => return None,
    })
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

/// `arg_min(arg, val)` / `arg_max(arg, val)`: per group, the row-format encoding of the best
/// `(val, arg)` pair so far (compared as one row: by `val`, ties by `arg`); rows where either
/// is NULL are skipped. The partial state is that encoding as bytes.
struct ArgBest {
    converter: RowConverter,
    /// The types of `val` and `arg`, the converter's two fields.
    types: [DataType; 2],
    best: Vec<Option<OwnedRow>>,
    is_max: bool,
    bytes: usize,
}

impl ArgBest {
    fn new(arg: &DataType, val: &DataType, is_max: bool) -> Result<Self> {
        Ok(Self {
            converter: RowConverter::new(vec![
                SortField::new(val.clone()),
                SortField::new(arg.clone()),
            ])?,
            types: [val.clone(), arg.clone()],
            best: vec![],
            is_max,
            bytes: 0,
        })
    }

    fn offer(&mut self, g: usize, row: arrow::row::Row<'_>) {
        let slot = &mut self.best[g];
        let better = match slot {
            None => true,
            Some(current) if self.is_max => row > current.row(),
            Some(current) => row < current.row(),
        };
        if better {
            let owned = row.owned();
            self.bytes += owned.as_ref().len();
            if let Some(old) = slot.replace(owned) {
                self.bytes -= old.as_ref().len();
            }
        }
    }
}

impl GroupAccumulator for ArgBest {
    fn ensure_groups(&mut self, n: usize) {
        if self.best.len() < n {
            self.best.resize(n, None);
        }
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let [arg, val] = values else {
            return Err(EngineError::Internal(
                "arg_min/arg_max needs two arguments".into(),
            ));
        };
        let rows = self
            .converter
            .convert_columns(&[Arc::clone(val), Arc::clone(arg)])?;
        for (i, &g) in groups.iter().enumerate() {
            if arg.is_valid(i) && val.is_valid(i) {
                self.offer(g as usize, rows.row(i));
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let encoded = states[0].as_binary::<i32>();
        let parser = self.converter.parser();
        for (i, &g) in groups.iter().enumerate() {
            if encoded.is_valid(i) {
                // `offer` copies the row only when it is better.
                self.offer(g as usize, parser.parse(encoded.value(i)));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let best = std::mem::take(&mut self.best);
        self.bytes = 0;
        let array: arrow::array::BinaryArray = best
            .iter()
            .map(|b| b.as_ref().map(|r| r.as_ref()))
            .collect();
        Ok(vec![Arc::new(array)])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let best = std::mem::take(&mut self.best);
        self.bytes = 0;
        // Groups without a pair decode from a row of NULLs.
        let nulls: Vec<ArrayRef> = self
            .types
            .iter()
            .map(|t| arrow::array::new_null_array(t, 1))
            .collect();
        let null_rows = self.converter.convert_columns(&nulls)?;
        let null_row = null_rows.row(0);
        let rows: Vec<_> = best
            .iter()
            .map(|b| b.as_ref().map_or(null_row, |r| r.row()))
            .collect();
        let mut columns = self.converter.convert_rows(rows)?;
        Ok(columns.remove(1))
    }

    fn size(&self) -> usize {
        self.best.capacity() * std::mem::size_of::<Option<OwnedRow>>() + self.bytes
    }
}

/// `string_agg(x, sep ORDER BY keys)`: per group, the values with the row-format encoding of
/// their order keys (arrival order breaks ties). The partial state is the entries as bytes
/// (`u32` key length, key, `u32` value length, value, ...) plus the separator. The memory is
/// the values themselves, which is the size of the result.
struct StringAgg {
    converter: Option<RowConverter>,
    separator: Option<String>,
    entries: Vec<Vec<(Vec<u8>, String)>>,
    bytes: usize,
}

impl StringAgg {
    fn new(key_types: &[DataType], keys: u8, descending: u16, nulls_first: u16) -> Result<Self> {
        let converter = if keys == 0 {
            None
        } else {
            let fields = key_types
                .iter()
                .take(usize::from(keys))
                .enumerate()
                .map(|(i, t)| {
                    SortField::new_with_options(
                        t.clone(),
                        arrow::compute::SortOptions {
                            descending: descending & (1 << i) != 0,
                            nulls_first: nulls_first & (1 << i) != 0,
                        },
                    )
                })
                .collect();
            Some(RowConverter::new(fields)?)
        };
        Ok(Self {
            converter,
            separator: None,
            entries: vec![],
            bytes: 0,
        })
    }

    fn push(&mut self, g: usize, key: Vec<u8>, value: String) {
        self.bytes += key.len() + value.len() + 48;
        self.entries[g].push((key, value));
    }
}

impl GroupAccumulator for StringAgg {
    fn ensure_groups(&mut self, n: usize) {
        if self.entries.len() < n {
            self.entries.resize_with(n, Vec::new);
        }
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let strings = cast_array(&values[0], &DataType::Utf8)?;
        let strings = strings.as_string::<i32>();
        if self.separator.is_none() {
            let separator = cast_array(&values[1], &DataType::Utf8)?;
            let separator = separator.as_string::<i32>();
            if let Some(s) = separator.iter().flatten().next() {
                self.separator = Some(s.to_string());
            }
        }
        let rows = match &self.converter {
            Some(c) => Some(c.convert_columns(&values[2..])?),
            None => None,
        };
        for (i, &g) in groups.iter().enumerate() {
            if strings.is_null(i) {
                continue;
            }
            let key = rows
                .as_ref()
                .map_or_else(Vec::new, |r| r.row(i).as_ref().to_vec());
            self.push(g as usize, key, strings.value(i).to_string());
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let encoded = states[0].as_binary::<i32>();
        let separators = states[1].as_string::<i32>();
        let corrupt = || EngineError::Internal("string_agg: a damaged partial state".into());
        for (i, &g) in groups.iter().enumerate() {
            if self.separator.is_none() && separators.is_valid(i) {
                self.separator = Some(separators.value(i).to_string());
            }
            if encoded.is_null(i) {
                continue;
            }
            let mut bytes = encoded.value(i);
            while !bytes.is_empty() {
                let take = |bytes: &mut &[u8]| -> Result<Vec<u8>> {
                    let (len, rest) = bytes.split_at_checked(4).ok_or_else(corrupt)?;
                    let len = u32::from_le_bytes(len.try_into().map_err(|_| corrupt())?) as usize;
                    let (item, rest) = rest.split_at_checked(len).ok_or_else(corrupt)?;
                    *bytes = rest;
                    Ok(item.to_vec())
                };
                let key = take(&mut bytes)?;
                let value = String::from_utf8(take(&mut bytes)?).map_err(|_| corrupt())?;
                self.push(g as usize, key, value);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        let entries = std::mem::take(&mut self.entries);
        self.bytes = 0;
        let mut builder = arrow::array::BinaryBuilder::new();
        let mut buffer = Vec::new();
        for group in &entries {
            buffer.clear();
            for (key, value) in group {
                buffer.extend_from_slice(&(key.len() as u32).to_le_bytes());
                buffer.extend_from_slice(key);
                buffer.extend_from_slice(&(value.len() as u32).to_le_bytes());
                buffer.extend_from_slice(value.as_bytes());
            }
            builder.append_value(&buffer);
        }
        let separators: arrow::array::StringArray =
            entries.iter().map(|_| self.separator.as_deref()).collect();
        Ok(vec![Arc::new(builder.finish()), Arc::new(separators)])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let mut entries = std::mem::take(&mut self.entries);
        self.bytes = 0;
        let separator = self.separator.clone().unwrap_or_else(|| ",".to_string());
        let mut out = arrow::array::StringBuilder::new();
        for group in &mut entries {
            if group.is_empty() {
                out.append_null();
                continue;
            }
            // Stable: equal keys keep their arrival order.
            group.sort_by(|a, b| a.0.cmp(&b.0));
            let mut text = String::new();
            for (i, (_, value)) in group.iter().enumerate() {
                if i > 0 {
                    text.push_str(&separator);
                }
                text.push_str(value);
            }
            out.append_value(&text);
        }
        Ok(Arc::new(out.finish()))
    }

    fn size(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Vec<(Vec<u8>, String)>>() + self.bytes
    }
}

/// What a [`Covariance`] accumulator reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CovarianceOutput {
    Population,
    Sample,
    Correlation,
}

/// `covar_pop(y, x)`, `covar_samp(y, x)`, `corr(y, x)`: per group, the count, both means, the
/// co-moment and both second moments of the rows where both are non-NULL, updated one row
/// at a time (Welford) and combined pairwise (Chan et al.), so partial states merge exactly
/// as a single pass would.
struct Covariance {
    counts: Vec<i64>,
    mean_y: Vec<f64>,
    mean_x: Vec<f64>,
    c: Vec<f64>,
    m2_y: Vec<f64>,
    m2_x: Vec<f64>,
    output: CovarianceOutput,
}

impl Covariance {
    fn new(output: CovarianceOutput) -> Self {
        Self {
            counts: vec![],
            mean_y: vec![],
            mean_x: vec![],
            c: vec![],
            m2_y: vec![],
            m2_x: vec![],
            output,
        }
    }

    /// Fold the partial state `(n, mean_y, mean_x, c, m2_y, m2_x)` into group `g`.
    #[allow(clippy::too_many_arguments)]
    fn combine(&mut self, g: usize, n: i64, my: f64, mx: f64, c: f64, m2y: f64, m2x: f64) {
        if n == 0 {
            return;
        }
        let n_a = self.counts[g] as f64;
        let n_b = n as f64;
        let total = n_a + n_b;
        let dy = my - self.mean_y[g];
        let dx = mx - self.mean_x[g];
        let weight = n_a * n_b / total;
        self.c[g] += c + dx * dy * weight;
        self.m2_y[g] += m2y + dy * dy * weight;
        self.m2_x[g] += m2x + dx * dx * weight;
        self.mean_y[g] += dy * n_b / total;
        self.mean_x[g] += dx * n_b / total;
        self.counts[g] += n;
    }
}

impl GroupAccumulator for Covariance {
    fn ensure_groups(&mut self, n: usize) {
        grow(&mut self.counts, n, 0);
        grow(&mut self.mean_y, n, 0.0);
        grow(&mut self.mean_x, n, 0.0);
        grow(&mut self.c, n, 0.0);
        grow(&mut self.m2_y, n, 0.0);
        grow(&mut self.m2_x, n, 0.0);
    }

    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let y = cast_array(&values[0], &DataType::Float64)?;
        let x = cast_array(&values[1], &DataType::Float64)?;
        let (y, x) = (
            y.as_primitive::<Float64Type>(),
            x.as_primitive::<Float64Type>(),
        );
        for (i, &g) in groups.iter().enumerate() {
            if y.is_null(i) || x.is_null(i) {
                continue;
            }
            let (vy, vx, g) = (y.value(i), x.value(i), g as usize);
            self.counts[g] += 1;
            let n = self.counts[g] as f64;
            let dx = vx - self.mean_x[g];
            let dy = vy - self.mean_y[g];
            self.mean_x[g] += dx / n;
            self.mean_y[g] += dy / n;
            self.c[g] += dx * (vy - self.mean_y[g]);
            self.m2_x[g] += dx * (vx - self.mean_x[g]);
            self.m2_y[g] += dy * (vy - self.mean_y[g]);
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.ensure_groups(total_groups);
        let counts = states[0].as_primitive::<Int64Type>();
        let f = |i: usize| states[i].as_primitive::<Float64Type>();
        let (my, mx, c, m2y, m2x) = (f(1), f(2), f(3), f(4), f(5));
        for (i, &g) in groups.iter().enumerate() {
            self.combine(
                g as usize,
                counts.value(i),
                my.value(i),
                mx.value(i),
                c.value(i),
                m2y.value(i),
                m2x.value(i),
            );
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        Ok(vec![
            Arc::new(Int64Array::from(std::mem::take(&mut self.counts))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.mean_y))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.mean_x))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.c))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.m2_y))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.m2_x))),
        ])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let counts = std::mem::take(&mut self.counts);
        let c = std::mem::take(&mut self.c);
        let m2_y = std::mem::take(&mut self.m2_y);
        let m2_x = std::mem::take(&mut self.m2_x);
        self.mean_y.clear();
        self.mean_x.clear();
        let out: Float64Array = (0..counts.len())
            .map(|g| {
                let n = counts[g];
                match self.output {
                    CovarianceOutput::Population => (n > 0).then(|| c[g] / n as f64),
                    CovarianceOutput::Sample => (n > 1).then(|| c[g] / (n - 1) as f64),
                    CovarianceOutput::Correlation => {
                        (n > 0).then(|| c[g] / (m2_y[g].sqrt() * m2_x[g].sqrt()))
                    }
                }
            })
            .collect();
        Ok(Arc::new(out))
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 8 + self.mean_y.capacity() * 40
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int32Array, StringArray, StringViewArray};

    /// The extreme by a full sort of the row encoding (what `min`/`max` mean here).
    fn by_sort(array: &ArrayRef, is_max: bool) -> Option<ArrayRef> {
        let options = arrow::compute::SortOptions {
            descending: is_max,
            nulls_first: false,
        };
        let order = arrow::compute::sort_to_indices(array, Some(options), None).unwrap();
        let first = order.value(0) as usize;
        (!array.is_null(first)).then(|| array.slice(first, 1))
    }

    #[test]
    fn batch_extremes_equal_those_of_a_sort() {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![
                Some(3),
                None,
                Some(-7),
                Some(12),
                Some(0),
            ])),
            Arc::new(Int64Array::from(vec![i64::MIN, 5, i64::MAX, -1])),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345), Some(-99_999), None, Some(7)])
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
            Arc::new(Date32Array::from(vec![
                Some(10_000),
                None,
                Some(-3),
                Some(20_000),
            ])),
            Arc::new(StringArray::from(vec![
                Some("N"),
                Some("A"),
                None,
                Some("R"),
                Some(""),
            ])),
            Arc::new(StringViewArray::from(vec![
                Some("a string longer than twelve bytes"),
                None,
                Some("a string longer than twelve bytes, and then some"),
                Some("Z"),
            ])),
            Arc::new(Int32Array::from(vec![None, None])),
        ];
        for array in &arrays {
            for is_max in [false, true] {
                let fast = batch_extreme(array, is_max).expect("a kernel for the type");
                let sorted = by_sort(array, is_max);
                match (&fast, &sorted) {
                    (Some(f), Some(s)) => {
                        assert_eq!(f.data_type(), s.data_type());
                        assert_eq!(f.to_data(), s.to_data(), "{array:?} max={is_max}");
                    }
                    (None, None) => {}
                    _ => panic!("{array:?} max={is_max}: {fast:?} against {sorted:?}"),
                }
            }
        }
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![1.0, f64::NAN]));
        assert!(
            batch_extreme(&floats, true).is_none(),
            "floats keep the row order"
        );
    }
}
