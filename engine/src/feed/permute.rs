//! A shuffle window's permutation, applied to rows of any width with every access where the
//! caches serve it.
//!
//! Permuting rows by a permutation drawn up front (Fisher–Yates over positions, then moving
//! each row to its place) costs a cache miss per row: the places are spread over the whole
//! window, 16 MB for 800,000 rows of five `float32`s. The permutation is built here from the
//! data's side instead, the way Rao and Sandelius shuffle:
//!
//! 1. each row draws one of `k` buckets uniformly at random; the rows are copied, in order,
//!    to their buckets, laid out one after another in one buffer (one sequential stream per
//!    bucket);
//! 2. each bucket, small enough to stay in cache, is shuffled in place by Fisher–Yates.
//!
//! The buckets read one after another are then a uniformly random permutation of the rows:
//! every bucket's size and contents are random, and its order uniform given them. Every draw
//! comes from generators seeded by the window's seed, in a fixed order, so the same window
//! gives the same permutation to any set of its columns, and to the row positions themselves
//! (for Arrow output).
//!
//! Matrices take both steps on their rows ([`Permutation::apply_into`]). Arrow columns, one
//! at a time and of any primitive type, are copied to their buckets
//! ([`Permutation::bucket_into_slice`]) and each batch gathers its places from them through
//! [`Permutation::gather`]: the step-2 swaps made once on 4-byte positions instead of on
//! every column.
//!
//! The draws are Lemire's, inlined, from Xoshiro256++ (whose output `rand` keeps stable):
//! with `rand`'s generic range sampling over ChaCha8 they were a third of the time. In the
//! `feed` micro-benchmark (2 Mi rows of five `float32`s, windows of 800,000) a shuffled pass
//! costs about 13 ns per row against 5 ns in order; scattering rows to places drawn up front
//! cost about 22.

use std::sync::OnceLock;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};

/// Rows per bucket, on average: 32,768 rows of five `float32`s are 640 KiB, in cache (buckets
/// of 8,192 or 131,072 rows were 5–10% slower, of 2,048 27% slower).
const BUCKET_ROWS: usize = 32768;

/// The draws that make a window's permutation, shared by every set of columns permuted by it.
#[derive(Debug)]
pub(super) struct Permutation {
    /// The bucket of each row.
    buckets: Vec<u16>,
    /// Where each bucket starts in the bucketed layout (one more entry: the end).
    starts: Vec<usize>,
    /// Seed of the shuffles within buckets (replayed for every set of columns).
    within: u64,
    /// For each place of the permuted window, the position in the bucketed layout of the row
    /// that goes there (within its bucket, so the reads of one batch stay in a few buckets);
    /// made when first asked for.
    gather: OnceLock<Vec<u32>>,
}

impl Permutation {
    /// The permutation of `rows` rows drawn from `seed`.
    pub(super) fn new(seed: u64, rows: usize) -> Self {
        Self::with_buckets_of(seed, rows, BUCKET_ROWS)
    }

    /// The same, with buckets of `bucket_rows` rows on average.
    fn with_buckets_of(seed: u64, rows: usize, bucket_rows: usize) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let k = rows
            .div_ceil(bucket_rows.max(1))
            .clamp(1, u16::MAX as usize + 1);
        let buckets = buckets(&mut rng, k as u32, rows);
        let mut starts = vec![0usize; k + 1];
        for &b in &buckets {
            starts[b as usize + 1] += 1;
        }
        for i in 1..=k {
            starts[i] += starts[i - 1];
        }
        Self {
            buckets,
            starts,
            within: rng.next_u64(),
            gather: OnceLock::new(),
        }
    }

    /// Rows permuted.
    pub(super) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// The rows of `pieces` (each a list of equally long columns, the same number in every
    /// piece), permuted, as one row-major buffer.
    #[cfg(test)]
    pub(super) fn apply<T: Copy + Default>(&self, pieces: &[Vec<&[T]>]) -> Vec<T> {
        let width = pieces.first().map_or(0, |p| p.len());
        let mut rows = Vec::new();
        self.bucket_into(pieces, &mut rows);
        self.shuffle_buckets(&mut rows, width);
        rows
    }

    /// The rows of `pieces` (as for [`Self::apply`]) permuted into `out`, its buffer reused:
    /// copied to their buckets, then each bucket shuffled in place, in cache.
    pub(super) fn apply_into<T: Copy + Default>(&self, pieces: &[Vec<&[T]>], out: &mut Vec<T>) {
        let width = pieces.first().map_or(0, |p| p.len());
        self.bucket_into(pieces, out);
        self.shuffle_buckets(out, width);
    }

    /// Step 2 on bucketed rows of `width` elements: Fisher–Yates within each bucket.
    fn shuffle_buckets<T: Copy>(&self, rows: &mut [T], width: usize) {
        match width {
            1 => self.shuffle_rows(rows, Fixed::<1>),
            2 => self.shuffle_rows(rows, Fixed::<2>),
            3 => self.shuffle_rows(rows, Fixed::<3>),
            4 => self.shuffle_rows(rows, Fixed::<4>),
            5 => self.shuffle_rows(rows, Fixed::<5>),
            6 => self.shuffle_rows(rows, Fixed::<6>),
            7 => self.shuffle_rows(rows, Fixed::<7>),
            8 => self.shuffle_rows(rows, Fixed::<8>),
            _ => self.shuffle_rows(rows, width),
        }
    }

    fn shuffle_rows<T: Copy, W: Width>(&self, out: &mut [T], width: W) {
        let w = width.get();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.within);
        for bucket in self.starts.windows(2) {
            let rows = &mut out[bucket[0] * w..bucket[1] * w];
            for i in (1..bucket[1] - bucket[0]).rev() {
                let j = below(&mut rng, i as u64 + 1) as usize;
                if i != j {
                    for c in 0..w {
                        rows.swap(i * w + c, j * w + c);
                    }
                }
            }
        }
    }

    /// Step 1: the rows of `pieces` (each a list of equally long columns, the same number in
    /// every piece) copied to their buckets, row-major, into `out` (its buffer reused). The
    /// places of a range of the permuted rows are then read from it by [`Self::gather_into`].
    pub(super) fn bucket_into<T: Copy + Default>(&self, pieces: &[Vec<&[T]>], out: &mut Vec<T>) {
        let width = pieces.first().map_or(0, |p| p.len());
        // Every element is overwritten: a reused buffer of the right size is not zeroed again.
        out.resize(self.len() * width, T::default());
        self.bucket_into_slice(pieces, out);
    }

    /// [`Self::bucket_into`] into a slice of exactly the rows' length.
    pub(super) fn bucket_into_slice<T: Copy>(&self, pieces: &[Vec<&[T]>], out: &mut [T]) {
        let width = pieces.first().map_or(0, |p| p.len());
        match width {
            1 => self.bucket_rows(pieces, Fixed::<1>, out),
            2 => self.bucket_rows(pieces, Fixed::<2>, out),
            3 => self.bucket_rows(pieces, Fixed::<3>, out),
            4 => self.bucket_rows(pieces, Fixed::<4>, out),
            5 => self.bucket_rows(pieces, Fixed::<5>, out),
            6 => self.bucket_rows(pieces, Fixed::<6>, out),
            7 => self.bucket_rows(pieces, Fixed::<7>, out),
            8 => self.bucket_rows(pieces, Fixed::<8>, out),
            _ => self.bucket_rows(pieces, width, out),
        }
    }

    fn bucket_rows<T: Copy, W: Width>(&self, pieces: &[Vec<&[T]>], width: W, out: &mut [T]) {
        let w = width.get();
        let mut next: Vec<usize> = self.starts[..self.starts.len() - 1].to_vec();
        let mut p = 0;
        for columns in pieces {
            let Some(columns) = columns.get(..w) else {
                continue;
            };
            let n = columns.first().map_or(0, |c| c.len());
            for r in 0..n {
                let at = &mut next[self.buckets[p + r] as usize];
                let to = *at * w;
                *at += 1;
                for c in 0..w {
                    out[to + c] = columns[c][r];
                }
            }
            p += n;
        }
    }

    /// Positions in the bucketed layout of the rows at `places` of the permutation: the
    /// swaps of [`Self::shuffle_buckets`] made on positions, at 4 bytes a swap whatever the
    /// rows' width, so that each column of a batch is then gathered from its buckets.
    pub(super) fn gather(&self, places: std::ops::Range<usize>) -> &[u32] {
        let gather = self.gather.get_or_init(|| {
            let mut positions: Vec<u32> = (0..self.len() as u32).collect();
            self.shuffle_buckets(&mut positions, 1);
            positions
        });
        &gather[places]
    }

    /// The row (its position in the window) at each place of the permutation.
    pub(super) fn order(&self) -> Vec<u32> {
        let positions: Vec<u32> = (0..self.len() as u32).collect();
        let mut bucketed = Vec::new();
        self.bucket_into(&[vec![positions.as_slice()]], &mut bucketed);
        self.gather(0..self.len())
            .iter()
            .map(|&i| bucketed[i as usize])
            .collect()
    }
}

trait Width: Copy {
    fn get(self) -> usize;
}

#[derive(Clone, Copy)]
struct Fixed<const W: usize>;

impl<const W: usize> Width for Fixed<W> {
    #[inline(always)]
    fn get(self) -> usize {
        W
    }
}

impl Width for usize {
    #[inline(always)]
    fn get(self) -> usize {
        self
    }
}

/// `rows` uniform draws from `0..k` (`1 <= k <= 65,536`, so that a bucket fits in 16 bits),
/// four from each 64-bit number: Lemire's multiply-and-shift on 16 bits, rejecting the
/// `2^16 mod k` low halves that would favour some buckets.
fn buckets(rng: &mut Xoshiro256PlusPlus, k: u32, rows: usize) -> Vec<u16> {
    let reject_below = (1u32 << 16) % k;
    let mut out = Vec::with_capacity(rows);
    let (mut bits, mut left) = (0u64, 0);
    while out.len() < rows {
        if left == 0 {
            bits = rng.next_u64();
            left = 4;
        }
        let m = (bits & 0xFFFF) as u32 * k;
        bits >>= 16;
        left -= 1;
        if m & 0xFFFF >= reject_below {
            out.push((m >> 16) as u16);
        }
    }
    out
}

/// A uniform draw from `0..n` (`n > 0`) by Lemire's multiply-and-shift, with the rejection
/// that makes it exact: the high half of a random 64-bit number times `n`, unless the low
/// half falls in the `2^64 mod n` values that would favour some results. Inlined, unlike
/// the generic range sampling, which was a quarter of a shuffle's time.
#[inline]
fn below(rng: &mut Xoshiro256PlusPlus, n: u64) -> u64 {
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_once_and_the_same_for_every_width() {
        let n = 20_000;
        let p = Permutation::new(7, n);
        let order = p.order();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n as u32).collect::<Vec<_>>());
        assert_ne!(order, sorted);
        // Two columns split over two pieces move together, to the places of `order`.
        let a: Vec<u64> = (0..n as u64).collect();
        let b: Vec<u64> = (0..n as u64).map(|x| x * 10).collect();
        let pieces = vec![vec![&a[..5000], &b[..5000]], vec![&a[5000..], &b[5000..]]];
        let rows = p.apply(&pieces);
        for (place, &row) in order.iter().enumerate() {
            assert_eq!(rows[place * 2], row as u64);
            assert_eq!(rows[place * 2 + 1], row as u64 * 10);
        }
        // Wider than the fixed widths: the general path agrees.
        let cols: Vec<Vec<u64>> = (0..11)
            .map(|c| (0..n as u64).map(|x| x + c).collect())
            .collect();
        let wide = p.apply(&[cols.iter().map(|c| c.as_slice()).collect()]);
        for (place, &row) in order.iter().enumerate().step_by(97) {
            assert_eq!(wide[place * 11 + 3], row as u64 + 3);
        }
        // Another seed, another order; the same seed, the same.
        assert_ne!(Permutation::new(8, n).order(), order);
        assert_eq!(Permutation::new(7, n).order(), order);
    }

    #[test]
    fn places_are_uniform() {
        // Row 0 of a 64-row window, in 8 buckets, lands at each place about equally often.
        let mut counts = [0u32; 64];
        for seed in 0..64_000 {
            let order = Permutation::with_buckets_of(seed, 64, 8).order();
            assert_eq!(order.len(), 64);
            let place = order.iter().position(|&r| r == 0).unwrap();
            counts[place] += 1;
        }
        // 1,000 expected per place; six standard deviations is about 190.
        assert!(
            counts.iter().all(|&c| (810..=1190).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn bucket_draws_are_uniform_and_in_range() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let draws = buckets(&mut rng, 3, 300_000);
        let mut counts = [0usize; 3];
        for &b in &draws {
            counts[b as usize] += 1;
        }
        // 100,000 expected each; six standard deviations is about 1,550.
        assert!(
            counts.iter().all(|&c| c.abs_diff(100_000) < 1_550),
            "{counts:?}"
        );
        assert!(buckets(&mut rng, 1, 100).iter().all(|&b| b == 0));
        let wide = buckets(&mut rng, 65_536, 100_000);
        assert!(wide.iter().any(|&b| b > 60_000) && wide.iter().any(|&b| b < 5_000));
    }

    #[test]
    fn small_and_empty_windows() {
        assert_eq!(Permutation::new(1, 0).order(), Vec::<u32>::new());
        assert_eq!(Permutation::new(1, 1).order(), vec![0]);
    }
}
