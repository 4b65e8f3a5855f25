//! Counters the server keeps for `/metrics` and `/status`.

use crate::close::CloseReason;

/// Monotonic counters since start.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Connections refused because `max_connections` was reached.
    pub connections_refused: u64,
    /// WebSocket handshakes completed.
    pub handshakes: u64,
    /// Handshakes (or HTTP request heads) refused.
    pub handshake_failures: u64,
    /// Data messages received.
    pub messages_in: u64,
    /// Data messages queued to clients.
    pub messages_out: u64,
    /// Of `messages_out`, those sent compressed (permessage-deflate).
    pub messages_compressed: u64,
    /// Payload bytes received in data messages.
    pub bytes_in: u64,
    /// Payload bytes queued in data messages.
    pub bytes_out: u64,
    /// Connections failed for protocol errors.
    pub protocol_errors: u64,
    /// Plain HTTP requests served.
    pub http_requests: u64,
    /// Handler panics caught.
    pub handler_panics: u64,
    /// Connections closed because the process held more than
    /// `max_buffer_memory` and they held the most.
    pub memory_sheds: u64,
    /// Idle keep-alive HTTP connections closed for `max_idle_http`.
    pub idle_http_closed: u64,
    /// Client-initiated sends refused by `client_fanout_rate`.
    pub fanout_rate_limited: u64,
    /// Closes by reason, in the order of [`Metrics::CLOSE_LABELS`].
    pub closes: [u64; 11],
}

impl Metrics {
    /// Add `other`'s counters to these (the process-wide sum of the loops').
    pub fn add(&mut self, other: &Metrics) {
        self.connections_accepted += other.connections_accepted;
        self.connections_refused += other.connections_refused;
        self.handshakes += other.handshakes;
        self.handshake_failures += other.handshake_failures;
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.messages_compressed += other.messages_compressed;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.protocol_errors += other.protocol_errors;
        self.http_requests += other.http_requests;
        self.handler_panics += other.handler_panics;
        self.memory_sheds += other.memory_sheds;
        self.idle_http_closed += other.idle_http_closed;
        self.fanout_rate_limited += other.fanout_rate_limited;
        for (sum, n) in self.closes.iter_mut().zip(other.closes) {
            *sum += n;
        }
    }

    /// The close reason labels, as in [`CloseReason::label`].
    pub const CLOSE_LABELS: [&'static str; 11] = [
        "client_close",
        "connection_lost",
        "protocol_error",
        "heartbeat_timeout",
        "auth_timeout",
        "backpressure",
        "server_close",
        "handler_panic",
        "shutdown",
        "rate_limited",
        "memory_budget",
    ];

    pub(crate) fn count_close(&mut self, reason: &CloseReason) {
        let label = reason.label();
        if let Some(i) = Self::CLOSE_LABELS.iter().position(|l| *l == label) {
            self.closes[i] += 1;
        }
    }
}
