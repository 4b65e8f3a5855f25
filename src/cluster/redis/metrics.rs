//! Counters of the client, readable from any thread (for `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The live counters; read them with [`RedisMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct RedisMetrics {
    commands_sent: AtomicU64,
    replies: AtomicU64,
    error_replies: AtomicU64,
    timeouts: AtomicU64,
    connection_lost: AtomicU64,
    queue_full: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: AtomicU64,
    latency_us_sum: AtomicU64,
    latency_count: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len()],
    publish_failures: AtomicU64,
    messages_received: AtomicU64,
    messages_dropped: AtomicU64,
    callback_panics: AtomicU64,
}

/// The upper bounds (microseconds, inclusive) of the command latency
/// histogram's buckets; the last takes everything slower.
pub const LATENCY_BUCKETS_US: [u64; 8] = [
    250,
    1_000,
    5_000,
    25_000,
    100_000,
    500_000,
    2_000_000,
    u64::MAX,
];

/// The counters at one moment. Every field only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisMetricsSnapshot {
    /// Commands written to Redis (user commands and PUBLISH; not AUTH,
    /// SELECT, SUBSCRIBE or PING).
    pub commands_sent: u64,
    /// Replies to those commands, errors included.
    pub replies: u64,
    /// Of the replies, the error replies.
    pub error_replies: u64,
    /// Commands failed with a timeout.
    pub timeouts: u64,
    /// Commands failed because their connection was lost or never came up.
    pub connection_lost: u64,
    /// Commands and requests refused because a queue was full.
    pub queue_full: u64,
    /// Connections (either link) that came back after being lost.
    pub reconnects: u64,
    /// Connect or handshake attempts that failed.
    pub connect_failures: u64,
    /// Sum of command latencies (bus takes it → reply), in microseconds.
    pub latency_us_sum: u64,
    /// Number of latencies in `latency_us_sum`.
    pub latency_count: u64,
    /// Latencies per bucket of [`LATENCY_BUCKETS_US`] (not cumulative).
    pub latency_buckets: [u64; LATENCY_BUCKETS_US.len()],
    /// PUBLISH commands that got no reply or an error.
    pub publish_failures: u64,
    /// Pub/sub messages received.
    pub messages_received: u64,
    /// Pub/sub messages dropped because the events receiver was full.
    pub messages_dropped: u64,
    /// Reply callbacks that panicked (caught; the bus goes on).
    pub callback_panics: u64,
}

macro_rules! counters {
    ($($name:ident),*) => {
        impl RedisMetrics {
            /// Reads every counter.
            pub fn snapshot(&self) -> RedisMetricsSnapshot {
                RedisMetricsSnapshot {
                    $($name: self.$name.load(Relaxed),)*
                    latency_buckets: std::array::from_fn(|i| {
                        self.latency_buckets[i].load(Relaxed)
                    }),
                }
            }
        }

        impl RedisMetricsSnapshot {
            /// Both snapshots' counts added (a client's and its
            /// predecessors', so counters never go back after a restart).
            #[must_use]
            pub fn plus(&self, other: &RedisMetricsSnapshot) -> RedisMetricsSnapshot {
                RedisMetricsSnapshot {
                    $($name: self.$name.saturating_add(other.$name),)*
                    latency_buckets: std::array::from_fn(|i| {
                        self.latency_buckets[i].saturating_add(other.latency_buckets[i])
                    }),
                }
            }
        }
    };
}

counters!(
    commands_sent,
    replies,
    error_replies,
    timeouts,
    connection_lost,
    queue_full,
    reconnects,
    connect_failures,
    latency_us_sum,
    latency_count,
    publish_failures,
    messages_received,
    messages_dropped,
    callback_panics
);

impl RedisMetrics {
    pub(crate) fn sent(&self, n: u64) {
        self.commands_sent.fetch_add(n, Relaxed);
    }
    pub(crate) fn reply(&self, latency: Duration, error: bool) {
        self.replies.fetch_add(1, Relaxed);
        if error {
            self.error_replies.fetch_add(1, Relaxed);
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us_sum.fetch_add(us, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BUCKETS_US.len() - 1);
        self.latency_buckets[bucket].fetch_add(1, Relaxed);
    }
    pub(crate) fn timeout(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }
    pub(crate) fn lost(&self) {
        self.connection_lost.fetch_add(1, Relaxed);
    }
    pub(crate) fn queue_full(&self) {
        self.queue_full.fetch_add(1, Relaxed);
    }
    pub(crate) fn reconnect(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }
    pub(crate) fn connect_failure(&self) {
        self.connect_failures.fetch_add(1, Relaxed);
    }
    pub(crate) fn publish_failure(&self) {
        self.publish_failures.fetch_add(1, Relaxed);
    }
    pub(crate) fn message(&self) {
        self.messages_received.fetch_add(1, Relaxed);
    }
    pub(crate) fn message_dropped(&self) {
        self.messages_dropped.fetch_add(1, Relaxed);
    }
    pub(crate) fn callback_panic(&self) {
        self.callback_panics.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_buckets_and_snapshots_add() {
        let m = RedisMetrics::default();
        m.reply(Duration::from_micros(100), false);
        m.reply(Duration::from_micros(250), false);
        m.reply(Duration::from_millis(3), true);
        m.reply(Duration::from_secs(9), false);
        let s = m.snapshot();
        assert_eq!(s.latency_buckets, [2, 0, 1, 0, 0, 0, 0, 1]);
        assert_eq!((s.latency_count, s.error_replies), (4, 1));
        let sum = s.plus(&s);
        assert_eq!(sum.latency_buckets, [4, 0, 2, 0, 0, 0, 0, 2]);
        assert_eq!(sum.replies, 8);
    }
}
