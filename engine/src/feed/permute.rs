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
//! The draws are Lemire's, inlined, from Xoshiro256++ (whose output `rand` keeps stable):
//! with `rand`'s generic range sampling over ChaCha8 they were a third of the time. In the
//! `feed` micro-benchmark (2 Mi rows of five `float32`s, windows of 800,000) a shuffled pass
//! costs about 13 ns per row against 5 ns in order; scattering rows to places drawn up front
//! cost about 22.

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
    /// Where each bucket starts in the permuted rows (one more entry: the end).
    starts: Vec<usize>,
    /// Seed of the shuffles within buckets (replayed for every set of columns).
    within: u64,
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
        }
    }

    /// Number of rows.
    pub(super) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// The rows of `pieces` (each piece a slice per column, the pieces one after another),
    /// permuted, as one row-major buffer.
    pub(super) fn apply<T: Copy + Default>(&self, pieces: &[Vec<&[T]>]) -> Vec<T> {
        let mut out = Vec::new();
        self.apply_into(pieces, &mut out);
        out
    }

    /// The same, written into `out`, whatever it held: a buffer used before costs no page
    /// faults, and as every element is written, what it holds is not cleared first. The
    /// pieces must hold [`Permutation::len`] rows.
    pub(super) fn apply_into<T: Copy + Default>(&self, pieces: &[Vec<&[T]>], out: &mut Vec<T>) {
        let width = pieces.first().map_or(0, |p| p.len());
        out.resize(self.len() * width, T::default());
        match width {
            1 => self.apply_rows(pieces, Fixed::<1>, out),
            2 => self.apply_rows(pieces, Fixed::<2>, out),
            3 => self.apply_rows(pieces, Fixed::<3>, out),
            4 => self.apply_rows(pieces, Fixed::<4>, out),
            5 => self.apply_rows(pieces, Fixed::<5>, out),
            6 => self.apply_rows(pieces, Fixed::<6>, out),
            7 => self.apply_rows(pieces, Fixed::<7>, out),
            8 => self.apply_rows(pieces, Fixed::<8>, out),
            _ => self.apply_rows(pieces, width, out),
        }
    }

    /// Both passes, for rows of `width` values (every piece has `width` columns).
    fn apply_rows<T: Copy, W: Width>(&self, pieces: &[Vec<&[T]>], width: W, out: &mut [T]) {
        let w = width.get();
        let mut next: Vec<usize> = self.starts[..self.starts.len() - 1].to_vec();
        let mut p = 0;
        for columns in pieces {
            // Exactly `w` columns (the caller checks the widths), a constant for `Fixed`.
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

    /// The position of the row at each place: the permutation applied to `0..len`.
    pub(super) fn order(&self) -> Vec<u32> {
        // Windows hold at most u32::MAX rows.
        let positions: Vec<u32> = (0..self.len() as u32).collect();
        self.apply(&[vec![positions.as_slice()]])
    }
}

/// The number of values in a row: known when compiling ([`Fixed`]), so that moving a row is
/// a few moves, or only when running (`usize`).
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
