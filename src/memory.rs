//! The process-wide count of buffered bytes, held against `max_buffer_memory`.
//!
//! What is counted: every byte of capacity a connection holds for a peer —
//! carried input (a partial frame or request head), the decoder's message
//! under reassembly, and owned output chunks — plus every shared frame once,
//! however many queues hold it. Connections report their own bytes as deltas
//! ([`Gauge::apply`]); shared frames add themselves when made and subtract
//! themselves when the last queue lets go.
//!
//! The count is an atomic so that a frame shared across loops (later, across
//! threads) can release its bytes from wherever it is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A running total of buffered bytes. Cheap to clone (an `Arc`).
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicUsize>);

impl Gauge {
    /// A gauge at zero.
    pub fn new() -> Gauge {
        Gauge::default()
    }

    /// The bytes counted now.
    pub fn total(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Count `n` more bytes.
    pub fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Count `n` fewer bytes.
    pub fn sub(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    /// Move an account from `*held` to `now` bytes, updating the total by the
    /// difference. Accounts are `u32`: a connection's buffers are bounded far
    /// below 4 GiB by the frame, message and backpressure limits; larger
    /// values saturate (and are counted as the saturated value).
    pub fn apply(&self, held: &mut u32, now: usize) {
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        match now.cmp(held) {
            std::cmp::Ordering::Greater => self.add((now - *held) as usize),
            std::cmp::Ordering::Less => self.sub((*held - now) as usize),
            std::cmp::Ordering::Equal => {}
        }
        *held = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_move_the_total_by_their_difference() {
        let gauge = Gauge::new();
        let (mut a, mut b) = (0u32, 0u32);
        gauge.apply(&mut a, 100);
        gauge.apply(&mut b, 50);
        assert_eq!(gauge.total(), 150);
        gauge.apply(&mut a, 10);
        assert_eq!(gauge.total(), 60);
        gauge.apply(&mut b, 0);
        gauge.apply(&mut a, 0);
        assert_eq!(gauge.total(), 0);
        gauge.add(7);
        gauge.clone().sub(7);
        assert_eq!(gauge.total(), 0);
    }
}
