//! [`RedisOptions`]: timeouts, backoff and the bounds on every queue.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How the client behaves; start from `RedisOptions::default()` and change
/// fields. Checked once by [`super::RedisClient::start`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Longest wait for a command's reply, counted from when the bus takes
    /// it (default 5 s). Past it, every command in flight on that connection
    /// fails with [`super::RedisError::Timeout`] and the connection is
    /// dropped and reconnected: a stopped Redis keeps TCP open.
    pub command_timeout: Duration,
    /// Longest wait for TCP connect plus AUTH/SELECT (default 5 s).
    pub connect_timeout: Duration,
    /// First reconnect delay (default 100 ms); doubles per failure in a row.
    pub backoff_base: Duration,
    /// Largest reconnect delay (default 5 s); each delay is jittered within
    /// its upper half.
    pub backoff_max: Duration,
    /// Commands waiting for the bus thread, across all handles (default
    /// 10 000); past it [`super::RedisHandle::command`] returns
    /// [`super::RedisError::QueueFull`].
    pub queue_capacity: usize,
    /// Commands written to Redis and not yet answered (default 10 000); while
    /// it is reached the bus takes no more from the queue.
    pub max_in_flight: usize,
    /// Subscribe/unsubscribe requests waiting for the bus thread (default
    /// 1 024); past it they return [`super::RedisError::QueueFull`].
    pub control_capacity: usize,
    /// Events waiting in the events receiver (default 65 536). A pub/sub
    /// message that finds it full is dropped and counted
    /// (`messages_dropped`); connection events are kept and delivered later.
    pub event_capacity: usize,
    /// Channels per SUBSCRIBE / UNSUBSCRIBE command, on reconnect too
    /// (default 500).
    pub subscribe_batch: usize,
    /// The pub/sub connection sends PING when it has waited this long for
    /// nothing (default 5 s), so a stopped Redis is noticed there too.
    pub pubsub_ping_interval: Duration,
    /// Largest reply accepted, in bytes (default 512 MiB, Redis's own
    /// `proto-max-bulk-len`); a larger one drops the connection.
    pub max_reply_bytes: usize,
    /// Deepest nesting of arrays accepted in a reply (default 32).
    pub max_reply_depth: usize,
    /// Woken after events are posted, so the owner's mio loop can drain the
    /// receiver (default none).
    pub events_waker: Option<Arc<mio::Waker>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            command_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            queue_capacity: 10_000,
            max_in_flight: 10_000,
            control_capacity: 1_024,
            event_capacity: 65_536,
            subscribe_batch: 500,
            pubsub_ping_interval: Duration::from_secs(5),
            max_reply_bytes: 512 << 20,
            max_reply_depth: 32,
            events_waker: None,
        }
    }
}

/// An option out of range (the field's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionsError(pub &'static str);

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redis option {} must be above zero", self.0)
    }
}

impl std::error::Error for OptionsError {}

impl RedisOptions {
    /// Checks that every timeout, capacity and limit is above zero.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let durations = [
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
            ("backoff_base", self.backoff_base),
            ("backoff_max", self.backoff_max),
            ("pubsub_ping_interval", self.pubsub_ping_interval),
        ];
        let counts = [
            ("queue_capacity", self.queue_capacity),
            ("max_in_flight", self.max_in_flight),
            ("control_capacity", self.control_capacity),
            ("event_capacity", self.event_capacity),
            ("subscribe_batch", self.subscribe_batch),
            ("max_reply_bytes", self.max_reply_bytes),
            ("max_reply_depth", self.max_reply_depth),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(OptionsError(name));
        }
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(OptionsError(name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeros_are_named() {
        assert_eq!(RedisOptions::default().validate(), Ok(()));
        let o = RedisOptions {
            subscribe_batch: 0,
            ..RedisOptions::default()
        };
        assert_eq!(o.validate(), Err(OptionsError("subscribe_batch")));
        let o = RedisOptions {
            command_timeout: Duration::ZERO,
            ..RedisOptions::default()
        };
        assert_eq!(o.validate(), Err(OptionsError("command_timeout")));
    }
}
