//! Reconnect delays: exponential, capped, with jitter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays between reconnect attempts: the n-th failure in a row waits a
/// random time in `[d/2, d]` where `d = min(max, base * 2^n)` ("equal
/// jitter"), so nodes that lost Redis together do not all knock at once, and
/// no wait exceeds `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Backoff {
        // A per-process random seed without a dependency: std's hasher keys.
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        Backoff::with_seed(base, max, h.finish())
    }

    fn with_seed(base: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
            rng: splitmix64(seed) | 1,
        }
    }

    /// The connection worked: the next failure starts from `base` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt, counting one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        let half = ceiling / 2;
        let span = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if span == 0 {
            0
        } else {
            self.random() % (span + 1)
        };
        half + Duration::from_micros(jitter)
    }

    // xorshift64*: plenty for spreading reconnects.
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

// Spreads nearby seeds over the whole state (xorshift's state must not be 0).
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    #[test]
    fn grows_then_stays_under_the_cap() {
        for seed in 0..200 {
            let mut b = Backoff::with_seed(BASE, MAX, seed);
            for n in 0..64u32 {
                let d = b.next_delay();
                let ceiling = BASE.saturating_mul(1 << n.min(20)).min(MAX);
                assert!(d <= ceiling, "seed {seed} n {n}: {d:?} > {ceiling:?}");
                assert!(
                    d >= ceiling / 2,
                    "seed {seed} n {n}: {d:?} < half of {ceiling:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let mut b = Backoff::with_seed(BASE, MAX, seed);
            for _ in 0..10 {
                b.next_delay();
            }
            seen.insert(b.next_delay());
        }
        assert!(
            seen.len() > 40,
            "only {} distinct capped delays",
            seen.len()
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(BASE, MAX);
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= BASE);
    }

    #[test]
    fn a_cap_below_the_base_is_the_base() {
        let mut b = Backoff::with_seed(BASE, Duration::ZERO, 7);
        assert!(b.next_delay() <= BASE);
    }
}
