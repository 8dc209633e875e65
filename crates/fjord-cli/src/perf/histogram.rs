//! A log-linear latency histogram in the spirit of HdrHistogram: constant memory, O(1)
//! recording, and every reported value within 1/128 (0.8 %) of a value actually recorded.
//!
//! Values below [`LINEAR`] get a bucket each. Above that, each power-of-two range
//! `[2^k, 2^(k+1))` is split into [`HALF`] equal buckets, so a bucket is never wider than
//! 1/[`HALF`] of its lower bound. Values are plain `u64`s; the perf tools record nanoseconds.

/// Bits of precision: values below `2^SUB_BITS` are recorded exactly.
const SUB_BITS: u32 = 8;
/// Values below this have a bucket each.
const LINEAR: u64 = 1 << SUB_BITS;
/// Buckets per power of two above [`LINEAR`].
const HALF: u64 = LINEAR / 2;
/// Bucket count: the linear part plus `HALF` for each exponent up to 2^63.
const BUCKETS: usize = (LINEAR + (64 - SUB_BITS as u64) * HALF) as usize;

/// Counts of values by bucket, with exact count, sum, min and max.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish()
    }
}

/// The bucket holding `v`.
fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = msb + 1 - SUB_BITS; // >= 1: top keeps SUB_BITS - 1 bits below the msb
    let top = v >> shift; // in [HALF, LINEAR)
    (LINEAR + u64::from(shift - 1) * HALF + (top - HALF)) as usize
}

/// The largest value that lands in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let shift = (i - LINEAR) / HALF + 1;
    let top = (i - LINEAR) % HALF + HALF;
    // The last bucket ends at u64::MAX; `checked_shl` keeps that from overflowing.
    ((top + 1).checked_shl(shift as u32).unwrap_or(0)).wrapping_sub(1)
}

impl Histogram {
    /// Returns an empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.total += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 { 0 } else { self.min }
    }

    /// Largest value recorded (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Exact mean of the recorded values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the smallest recorded value such that at least
    /// `q` of all values are at or below it, reported as the top of its bucket (never above
    /// the maximum), as HdrHistogram does. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 1.0);
        // The rank of the wanted value, 1-based; at least the first value.
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_and_bound_the_error() {
        let mut last = 0;
        for i in 0..BUCKETS {
            let hi = bucket_high(i);
            assert!(
                i == 0 || hi > last,
                "bucket {i} ends at {hi}, before {last}"
            );
            assert_eq!(bucket_of(hi), i, "top of bucket {i}");
            if i > 0 {
                assert_eq!(bucket_of(last + 1), i, "bottom of bucket {i}");
                let lo = last + 1;
                // Width relative to the lower bound: at most 1/HALF.
                assert!((hi - lo) as f64 <= lo as f64 / HALF as f64, "bucket {i}");
            }
            last = hi;
        }
        assert_eq!(last, u64::MAX);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 100);
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.95), 95);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn large_values_are_within_the_relative_error() {
        let mut h = Histogram::new();
        // 1 ms .. 1000 ms in nanoseconds, one value per ms.
        for ms in 1..=1000u64 {
            h.record(ms * 1_000_000 + 12_345);
        }
        for (q, want_ms) in [(0.5, 500u64), (0.99, 990), (0.999, 999)] {
            let got = h.quantile(q) as f64;
            let want = (want_ms * 1_000_000 + 12_345) as f64;
            assert!(got >= want, "p{q}: {got} below {want}");
            assert!(
                (got - want) / want <= 1.0 / HALF as f64,
                "p{q}: {got} vs {want}"
            );
        }
        assert_eq!(h.quantile(1.0), 1_000_012_345);
    }

    #[test]
    fn one_stall_shows_in_the_tail_only() {
        let mut h = Histogram::new();
        for _ in 0..9_999 {
            h.record(1_000);
        }
        h.record(5_000_000_000);
        assert!(h.quantile(0.99) <= 1_010);
        assert!(h.quantile(0.999) <= 1_010);
        assert!((1_000..=1_010).contains(&h.quantile(0.9999)));
        assert_eq!(h.quantile(1.0), 5_000_000_000);
        assert_eq!(h.max(), 5_000_000_000);
    }

    #[test]
    fn empty_histogram_reports_zeroes() {
        let h = Histogram::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.quantile(0.99), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.mean(), 0.0);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut a = Histogram::new();
        for v in 0..10_000u64 {
            a.record(v * v * 37 % 1_000_003);
        }
        a.clear();
        assert_eq!(a.count(), 0);
        assert_eq!(a.quantile(0.5), 0);
        assert_eq!(a.max(), 0);
        a.record(7);
        assert_eq!(a.quantile(0.5), 7);
        assert_eq!(a.min(), 7);
    }
}
