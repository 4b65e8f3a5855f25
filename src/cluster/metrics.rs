//! The cluster's counters (for `/metrics`), readable from any thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The live counters; read them with [`ClusterMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    published: AtomicU64,
    undeliverable: AtomicU64,
    received: AtomicU64,
    gaps: AtomicU64,
    malformed: AtomicU64,
    probe_failures: AtomicU64,
    lease_lapses: AtomicU64,
    rewrites: AtomicU64,
}

/// The counters at one moment; each only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterMetricsSnapshot {
    /// Sends published to the other nodes (one PUBLISH each).
    pub published: u64,
    /// Sends that could not cross to the other nodes (Redis unreachable or
    /// its queue full): delivered on this node only.
    pub undeliverable: u64,
    /// Messages received from other nodes.
    pub received: u64,
    /// Messages of other nodes that never arrived, by their sequence numbers.
    pub gaps: u64,
    /// Received messages that could not be read (dropped).
    pub malformed: u64,
    /// Liveness probes that did not come back in time (the Redis client
    /// was then restarted).
    pub probe_failures: u64,
    /// Times this node found its lease lapsed (it rewrote its state).
    pub lease_lapses: u64,
    /// Full rewrites of this node's presence (after a reconnect or a lapse).
    pub rewrites: u64,
}

impl ClusterMetrics {
    /// The counters now.
    pub fn snapshot(&self) -> ClusterMetricsSnapshot {
        ClusterMetricsSnapshot {
            published: self.published.load(Relaxed),
            undeliverable: self.undeliverable.load(Relaxed),
            received: self.received.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            probe_failures: self.probe_failures.load(Relaxed),
            lease_lapses: self.lease_lapses.load(Relaxed),
            rewrites: self.rewrites.load(Relaxed),
        }
    }

    pub(crate) fn published(&self) {
        self.published.fetch_add(1, Relaxed);
    }
    pub(crate) fn undeliverable(&self) {
        self.undeliverable.fetch_add(1, Relaxed);
    }
    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Relaxed);
    }
    pub(crate) fn gaps(&self, n: u64) {
        self.gaps.fetch_add(n, Relaxed);
    }
    pub(crate) fn malformed(&self) {
        self.malformed.fetch_add(1, Relaxed);
    }
    pub(crate) fn probe_failure(&self) {
        self.probe_failures.fetch_add(1, Relaxed);
    }
    pub(crate) fn lease_lapse(&self) {
        self.lease_lapses.fetch_add(1, Relaxed);
    }
    pub(crate) fn rewrite(&self) {
        self.rewrites.fetch_add(1, Relaxed);
    }
}
