//! A log-linear latency histogram: fixed memory, no allocation per sample.
//!
//! Values (nanoseconds) are counted in buckets: every power of two is split
//! into [`SUB_BUCKETS`] equal sub-buckets, so a bucket's width is at most 1/32
//! of its lower bound and a percentile read from it is off by at most about 3%.
//! Values below [`SUB_BUCKETS`] have a bucket each (exact). The same idea as
//! HdrHistogram and tokio's `H2Histogram`, kept to the few lines a load
//! generator needs.

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 5;
/// Sub-buckets per power of two (32: at most ~3% relative error).
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Buckets needed to cover every `u64`.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB_BUCKETS as usize;

/// Counts of values, by bucket; exact count, sum, minimum and maximum.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
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
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish()
    }
}

/// The bucket of `value`.
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros(); // >= SUB_BITS
    let sub = (value >> (exp - SUB_BITS)) & (SUB_BUCKETS - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB_BUCKETS + sub) as usize
}

/// The smallest and largest values that fall in bucket `index`.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return (index, index);
    }
    let exp = (index / SUB_BUCKETS) as u32 - 1 + SUB_BITS;
    let sub = index % SUB_BUCKETS;
    let shift = exp - SUB_BITS;
    let low = (SUB_BUCKETS + sub) << shift;
    let high = low.saturating_add((1u64 << shift) - 1);
    (low, high)
}

impl Histogram {
    /// An empty histogram (one allocation of about 15 KiB, here and only here).
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Count one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Add every value counted in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value counted (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value counted (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The mean of the values counted (0 when empty).
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum / u128::from(self.count)) as u64
        }
    }

    /// The value at quantile `q` (0.0 to 1.0): the upper bound of the bucket
    /// holding the `ceil(q * count)`-th smallest value, clipped to the
    /// exact minimum and maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (_, high) = bucket_range(index);
                return high.clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut previous = 0;
        for value in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let index = bucket_of(value);
            assert!(index < BUCKETS, "{value}");
            assert!(index >= previous, "{value}");
            previous = index;
            let (low, high) = bucket_range(index);
            assert!(
                low <= value && value <= high,
                "{value} not in {low}..={high}"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        // Consecutive buckets tile the number line.
        for index in 1..BUCKETS {
            assert_eq!(bucket_range(index - 1).1 + 1, bucket_range(index).0);
        }
    }

    #[test]
    fn relative_error_is_bounded() {
        for value in [33u64, 100, 1_000, 12_345, 1_000_000, 987_654_321] {
            let (low, high) = bucket_range(bucket_of(value));
            assert!((high - low) as f64 <= low as f64 / SUB_BUCKETS as f64);
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=10 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 5);
        assert_eq!(h.quantile(0.99), 10);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 10);
        assert_eq!(h.mean(), 5);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000); // 1 us .. 100 ms in ns
        }
        let near = |got: u64, want: u64| {
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err <= 0.035, "got {got}, want about {want}");
        };
        near(h.quantile(0.5), 50_000_000);
        near(h.quantile(0.99), 99_000_000);
        near(h.quantile(0.999), 99_900_000);
        assert_eq!(h.quantile(1.0), 100_000_000);
        assert_eq!(h.count(), 100_000);
    }

    #[test]
    fn one_outlier_is_the_max_not_the_p99() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(2_000);
        }
        h.record(9_000_000);
        assert!(h.quantile(0.99) <= 2_048);
        assert_eq!(h.max(), 9_000_000);
    }

    #[test]
    fn empty_and_merge() {
        let mut a = Histogram::new();
        assert_eq!((a.quantile(0.5), a.min(), a.max(), a.mean()), (0, 0, 0, 0));
        let mut b = Histogram::new();
        b.record(7);
        b.record(700);
        a.record(70);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!((a.min(), a.max()), (7, 700));
        assert!((70..=71).contains(&a.quantile(0.5)));
    }
}
