//! `approx_quantile(x, q)`: a t-digest per group.
//!
//! A t-digest summarizes a distribution by a few hundred weighted centroids (mean, count),
//! small where the distribution's tails are and large in its middle, so quantiles near 0 and 1
//! stay accurate to a small fraction of a rank while the middle ones are accurate to a
//! fraction of a percent. Values are buffered and merged into the centroids in sorted batches
//! (the "merging" variant): a run of neighbours becomes one centroid while the scale function
//! `k(q) = δ / 2π · asin(2q − 1)` grows by at most 1 across it, which bounds the number of
//! centroids by about `δ` whatever the number of values. A quantile interpolates linearly
//! between the centres of the centroids around its rank (and the exact minimum and maximum at
//! the ends).
//!
//! The memory of a group is bounded (at most [`BUFFER`] buffered values plus the centroids),
//! and states merge: the centroids of two digests, merged like a buffer, are a digest of the
//! union. States travel as one binary value per group (minimum, maximum, then the (mean,
//! weight) pairs, all little-endian `f64`) next to the fraction `q`.

use std::f64::consts::PI;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::datatypes::{DataType, Float64Type};

use super::accumulator::{binary_states, GroupAccumulator};
use crate::error::{EngineError, Result};
use crate::eval::cast_array;

/// The compression δ: about that many centroids at most.
const COMPRESSION: f64 = 100.0;
/// Values buffered before they are merged into the centroids.
const BUFFER: usize = 500;

/// The scale function: a centroid spans at most one unit of it.
fn scale(q: f64) -> f64 {
    COMPRESSION / (2.0 * PI) * (2.0 * q.clamp(0.0, 1.0) - 1.0).asin()
}

#[derive(Clone, Debug, Default)]
struct Digest {
    /// (mean, weight), sorted by mean.
    centroids: Vec<(f64, f64)>,
    buffer: Vec<f64>,
    min: f64,
    max: f64,
}

impl Digest {
    fn size(&self) -> usize {
        self.centroids.capacity() * 16 + self.buffer.capacity() * 8
    }

    fn is_empty(&self) -> bool {
        self.centroids.is_empty() && self.buffer.is_empty()
    }

    fn add(&mut self, x: f64) {
        if self.is_empty() {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.buffer.push(x);
        if self.buffer.len() >= BUFFER {
            self.compress(Vec::new());
        }
    }

    /// Merge the buffer and `more` centroids into the centroids.
    fn compress(&mut self, more: Vec<(f64, f64)>) {
        if self.buffer.is_empty() && more.is_empty() {
            return;
        }
        let mut all = std::mem::take(&mut self.centroids);
        all.extend(self.buffer.drain(..).map(|x| (x, 1.0)));
        all.extend(more);
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = all.iter().map(|c| c.1).sum();
        let mut out = Vec::with_capacity(all.len().min(2 * COMPRESSION as usize));
        let mut iter = all.into_iter();
        let Some(mut current) = iter.next() else {
            return;
        };
        let mut before = 0.0;
        for (mean, weight) in iter {
            let spans = scale((before + current.1 + weight) / total) - scale(before / total);
            if spans <= 1.0 {
                let merged = current.1 + weight;
                current.0 += (mean - current.0) * weight / merged;
                current.1 = merged;
            } else {
                before += current.1;
                out.push(current);
                current = (mean, weight);
            }
        }
        out.push(current);
        self.centroids = out;
        self.buffer.shrink_to(BUFFER);
    }

    fn merge(&mut self, other: Digest) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            (self.min, self.max) = (other.min, other.max);
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        let mut more = other.centroids;
        more.extend(other.buffer.into_iter().map(|x| (x, 1.0)));
        self.compress(more);
    }

    /// The `q`-quantile; `None` without values.
    fn quantile(&mut self, q: f64) -> Option<f64> {
        self.compress(Vec::new());
        let c = &self.centroids;
        let (first, last) = (c.first()?, c.last()?);
        if c.len() == 1 {
            return Some(first.0);
        }
        let total: f64 = c.iter().map(|c| c.1).sum();
        let target = q * total;
        // The ends: from the exact extreme to the centre of the outermost centroid.
        if target <= first.1 / 2.0 {
            let share = if first.1 > 1.0 {
                target / (first.1 / 2.0)
            } else {
                1.0
            };
            return Some(self.min + (first.0 - self.min) * share);
        }
        if target >= total - last.1 / 2.0 {
            let share = if last.1 > 1.0 {
                (total - target) / (last.1 / 2.0)
            } else {
                1.0
            };
            return Some(self.max - (self.max - last.0) * share);
        }
        // Between the centres of two neighbours.
        let mut centre = first.1 / 2.0;
        for pair in c.windows(2) {
            let next = centre + (pair[0].1 + pair[1].1) / 2.0;
            if target <= next {
                let share = (target - centre) / (next - centre);
                return Some(
                    (pair[0].0 + (pair[1].0 - pair[0].0) * share).clamp(self.min, self.max),
                );
            }
            centre = next;
        }
        Some(last.0)
    }

    fn encode(&mut self, out: &mut Vec<u8>) {
        self.compress(Vec::new());
        if self.centroids.is_empty() {
            return;
        }
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        for (mean, weight) in &self.centroids {
            out.extend_from_slice(&mean.to_le_bytes());
            out.extend_from_slice(&weight.to_le_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Result<Digest> {
        if bytes.is_empty() {
            return Ok(Digest::default());
        }
        if bytes.len() < 32 || !bytes.len().is_multiple_of(16) {
            return Err(EngineError::Internal(
                "a corrupt approx_quantile state".into(),
            ));
        }
        let float = |c: &[u8]| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_le_bytes(b)
        };
        let centroids = bytes[16..]
            .chunks_exact(16)
            .map(|c| (float(&c[..8]), float(&c[8..])))
            .collect();
        Ok(Digest {
            centroids,
            buffer: Vec::new(),
            min: float(&bytes[..8]),
            max: float(&bytes[8..16]),
        })
    }
}

/// `approx_quantile(x, q)` per group: the digest of the values cast to `DOUBLE`; the result
/// is cast back to the argument's type (`output`).
pub(super) struct ApproxQuantile {
    digests: Vec<Digest>,
    /// The fraction, from the first argument row or state seen.
    fraction: Option<f64>,
    output: DataType,
    bytes: usize,
}

impl ApproxQuantile {
    pub(super) fn new(output: &DataType) -> Self {
        Self {
            digests: Vec::new(),
            fraction: None,
            output: output.clone(),
            bytes: 0,
        }
    }

    fn grow(&mut self, n: usize) {
        if self.digests.len() < n {
            self.digests.resize_with(n, Digest::default);
        }
    }

    fn with_digest(&mut self, g: usize, f: impl FnOnce(&mut Digest)) {
        let digest = &mut self.digests[g];
        let before = digest.size();
        f(digest);
        self.bytes = self.bytes - before + digest.size();
    }

    fn take_fraction(&mut self, fractions: &ArrayRef) -> Result<()> {
        if self.fraction.is_some() || fractions.is_empty() {
            return Ok(());
        }
        let fractions = cast_array(fractions, &DataType::Float64)?;
        let fractions = fractions.as_primitive::<Float64Type>();
        if fractions.is_valid(0) {
            self.fraction = Some(fractions.value(0));
        }
        Ok(())
    }
}

impl GroupAccumulator for ApproxQuantile {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.grow(total_groups);
        let [values, fractions] = values else {
            return Err(EngineError::Internal(
                "approx_quantile() needs a value and a fraction".into(),
            ));
        };
        self.take_fraction(fractions)?;
        // Dates and times as their numbers (days, microseconds ...).
        let values = match values.data_type() {
            DataType::Date32 => {
                cast_array(&cast_array(values, &DataType::Int32)?, &DataType::Float64)?
            }
            DataType::Timestamp(..) => {
                cast_array(&cast_array(values, &DataType::Int64)?, &DataType::Float64)?
            }
            _ => cast_array(values, &DataType::Float64)?,
        };
        let values = values.as_primitive::<Float64Type>();
        for (i, &g) in groups.iter().enumerate() {
            if values.is_valid(i) && !values.value(i).is_nan() {
                let x = values.value(i);
                self.with_digest(g as usize, |d| d.add(x));
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], total_groups: usize) -> Result<()> {
        self.grow(total_groups);
        self.take_fraction(&states[1])?;
        let digests = states[0].as_binary::<i32>();
        for (i, &g) in groups.iter().enumerate() {
            if digests.is_valid(i) {
                let other = Digest::decode(digests.value(i))?;
                self.with_digest(g as usize, |d| d.merge(other));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>> {
        self.bytes = 0;
        let digests = std::mem::take(&mut self.digests);
        let fractions = Float64Array::from(vec![self.fraction; digests.len()]);
        let digests = binary_states(digests, |mut d, out| d.encode(out))?;
        Ok(vec![digests, Arc::new(fractions)])
    }

    fn evaluate(&mut self) -> Result<ArrayRef> {
        let q = self.fraction.unwrap_or(0.5);
        let out: Float64Array = std::mem::take(&mut self.digests)
            .into_iter()
            .map(|mut d| d.quantile(q))
            .collect();
        self.bytes = 0;
        let out: ArrayRef = Arc::new(out);
        // Back to the argument's type (integers and decimals rounded to their precision).
        let rounded = match &self.output {
            DataType::Float64 => return Ok(out),
            t if t.is_integer() || matches!(t, DataType::Date32 | DataType::Timestamp(..)) => {
                let r: Float64Array = out
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(f64::round))
                    .collect();
                let r: ArrayRef = Arc::new(r);
                match &self.output {
                    DataType::Date32 => cast_array(&r, &DataType::Int32)?,
                    _ => cast_array(&r, &DataType::Int64)?,
                }
            }
            _ => out,
        };
        cast_array(&rounded, &self.output)
    }

    fn size(&self) -> usize {
        self.digests.capacity() * std::mem::size_of::<Digest>() + self.bytes
    }

    fn ensure_groups(&mut self, n: usize) {
        self.grow(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rank (0..1) of `value` in the sorted `values`.
    fn rank(sorted: &[f64], value: f64) -> f64 {
        sorted.partition_point(|&v| v < value) as f64 / sorted.len() as f64
    }

    #[test]
    fn quantiles_are_close_in_rank_and_exact_at_the_ends() {
        // A skewed distribution, in a scrambled order.
        let mut values: Vec<f64> = (0..100_000u64)
            .map(|i| {
                let x = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / (1u64 << 53) as f64;
                x * x * 1000.0
            })
            .collect();
        let mut digest = Digest::default();
        for &v in &values {
            digest.add(v);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999] {
            let estimate = digest.quantile(q).unwrap();
            let error = (rank(&values, estimate) - q).abs();
            assert!(error < 0.005, "q = {q}: {estimate} has rank error {error}");
        }
        assert_eq!(digest.quantile(0.0), Some(values[0]));
        assert_eq!(digest.quantile(1.0), Some(values[values.len() - 1]));
        assert!(digest.centroids.len() < 2 * COMPRESSION as usize);
    }

    #[test]
    fn merged_states_summarize_the_union() {
        let mut a = ApproxQuantile::new(&DataType::Int64);
        let mut b = ApproxQuantile::new(&DataType::Int64);
        let q: ArrayRef = Arc::new(Float64Array::from(vec![0.5; 50_000]));
        let low: ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(0..50_000));
        let high: ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(50_000..100_000));
        a.update(&[low, Arc::clone(&q)], &vec![0; 50_000], 1)
            .unwrap();
        b.update(&[high, q], &vec![0; 50_000], 1).unwrap();
        let mut merged = ApproxQuantile::new(&DataType::Int64);
        merged.merge(&a.state().unwrap(), &[0], 1).unwrap();
        merged.merge(&b.state().unwrap(), &[0], 1).unwrap();
        let out = merged.evaluate().unwrap();
        let median = out.as_primitive::<arrow::datatypes::Int64Type>().value(0);
        assert!((median - 50_000).abs() < 500, "{median}");
    }

    #[test]
    fn empty_groups_are_null_and_a_corrupt_state_is_an_error() {
        let mut acc = ApproxQuantile::new(&DataType::Float64);
        acc.ensure_groups(2);
        let out = acc.evaluate().unwrap();
        assert_eq!(out.null_count(), 2);
        assert!(Digest::decode(&[1, 2, 3]).is_err());
    }
}
