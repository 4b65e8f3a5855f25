//! Admission: whether a new connection may be held, against the limits that
//! hold for the whole process (`max_connections`, `max_pending_handshakes`,
//! `max_connections_per_ip`).
//!
//! One thread admits: the acceptor when there are several loops, the loop
//! itself when there is one. It decides in arrival order and counts an
//! admitted connection in the bus totals at once, before any loop has it,
//! so a connection is never counted twice or not at all while it is handed
//! over, the caps hold exactly, and the connection over a cap is the one
//! that arrived last (not whichever a busy loop happened to take up later).
//! The loop holding a connection takes the counts down when it removes it;
//! a connection dropped before that is [`Admission::release`]d.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use crate::bus::Bus;
use crate::config::{Config, IpRange};

/// A connection refused at accept, and which limit refused it (variants
/// are named after the limit: `Connections` is `max_connections`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` connections are held.
    Connections,
    /// `max_pending_handshakes` connections are reading a request head.
    PendingHandshakes,
    /// The peer's address holds `max_connections_per_ip` connections.
    ConnectionsPerIp,
}

impl Refusal {
    /// The HTTP status line's code and reason the refused client gets.
    pub(crate) fn status(self) -> &'static str {
        match self {
            Refusal::ConnectionsPerIp => "429 Too Many Requests",
            _ => "503 Service Unavailable",
        }
    }

    /// The configuration key of the limit (for the log line).
    pub(crate) fn limit(self) -> &'static str {
        match self {
            Refusal::Connections => "max_connections",
            Refusal::PendingHandshakes => "max_pending_handshakes",
            Refusal::ConnectionsPerIp => "max_connections_per_ip",
        }
    }
}

/// The limits a new connection is admitted against.
#[derive(Debug)]
pub(crate) struct Admission {
    max_connections: usize,
    max_pending_handshakes: usize,
    max_connections_per_ip: usize,
    /// Peers not held to `max_connections_per_ip`.
    per_ip_exempt: Vec<IpRange>,
}

impl Admission {
    /// The limits of `config`.
    pub(crate) fn new(config: &Config) -> Admission {
        Admission {
            max_connections: config.max_connections,
            max_pending_handshakes: config.max_pending_handshakes,
            max_connections_per_ip: config.max_connections_per_ip,
            per_ip_exempt: config.per_ip_exempt_ranges(),
        }
    }

    /// Admit a connection from `addr` (its canonical form: IPv4 peers as
    /// IPv4) and count it in `bus`'s totals and per-address counts, or say
    /// which limit refuses it (then nothing is counted). Only the admitting
    /// thread calls this.
    pub(crate) fn admit(&self, bus: &Bus, addr: SocketAddr) -> Result<(), Refusal> {
        let totals = &bus.totals;
        if totals.connections.load(Ordering::Acquire) >= self.max_connections {
            return Err(Refusal::Connections);
        }
        if totals.pending_http.load(Ordering::Acquire) >= self.max_pending_handshakes {
            return Err(Refusal::PendingHandshakes);
        }
        if !self.per_ip_exempt.iter().any(|r| r.contains(addr.ip())) {
            let mut per_ip = bus.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let count = per_ip.entry(addr.ip()).or_insert(0);
            let limit = self.max_connections_per_ip;
            if limit > 0 && *count as usize >= limit {
                return Err(Refusal::ConnectionsPerIp);
            }
            *count += 1;
        }
        totals.reserve();
        Ok(())
    }

    /// Undo [`Admission::admit`] for a connection that no loop came to hold.
    pub(crate) fn release(bus: &Bus, addr: SocketAddr) {
        bus.totals.release();
        bus.release_ip(addr.ip());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn bus() -> (mio::Poll, Arc<Bus>) {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let (bus, _inboxes) = Bus::new(vec![Arc::new(waker)], None);
        (poll, bus)
    }

    fn peer(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    #[test]
    fn the_connection_over_a_cap_is_the_last_to_arrive() {
        let (_poll, bus) = bus();
        let config = Config {
            max_pending_handshakes: 3,
            ..Config::default()
        };
        let admission = Admission::new(&config);
        for port in 1..=3 {
            assert_eq!(admission.admit(&bus, peer("127.0.0.1", port)), Ok(()));
        }
        // Counted at once, before any loop holds them.
        assert_eq!(bus.totals.pending_http.load(Ordering::Relaxed), 3);
        assert_eq!(
            admission.admit(&bus, peer("127.0.0.1", 4)),
            Err(Refusal::PendingHandshakes)
        );
        assert_eq!(bus.totals.connections.load(Ordering::Relaxed), 3);
        Admission::release(&bus, peer("127.0.0.1", 1));
        assert_eq!(admission.admit(&bus, peer("127.0.0.1", 5)), Ok(()));
    }

    #[test]
    fn max_connections_is_checked_first() {
        let (_poll, bus) = bus();
        let config = Config {
            max_connections: 2,
            max_pending_handshakes: 2,
            ..Config::default()
        };
        let admission = Admission::new(&config);
        admission.admit(&bus, peer("127.0.0.1", 1)).unwrap();
        admission.admit(&bus, peer("127.0.0.1", 2)).unwrap();
        let refused = admission.admit(&bus, peer("127.0.0.1", 3)).unwrap_err();
        assert_eq!(refused, Refusal::Connections);
        assert_eq!(refused.status(), "503 Service Unavailable");
    }

    #[test]
    fn per_address_limit_spares_exempt_peers_and_is_released() {
        let (_poll, bus) = bus();
        let config = Config {
            max_connections_per_ip: 2,
            ..Config::default()
        };
        let admission = Admission::new(&config);
        let far = |port| peer("203.0.113.9", port);
        admission.admit(&bus, far(1)).unwrap();
        admission.admit(&bus, far(2)).unwrap();
        let refused = admission.admit(&bus, far(3)).unwrap_err();
        assert_eq!(refused, Refusal::ConnectionsPerIp);
        assert_eq!(refused.status(), "429 Too Many Requests");
        // Loopback is exempt by default.
        for port in 1..=5 {
            admission.admit(&bus, peer("127.0.0.1", port)).unwrap();
        }
        Admission::release(&bus, far(1));
        admission.admit(&bus, far(4)).unwrap();
    }
}
