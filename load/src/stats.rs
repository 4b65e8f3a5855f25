//! Errors by kind, and what a run reports.

use std::fmt;

use super::histogram::Histogram;
use super::payload::Mismatch;
use super::procfs::ProcTimes;

/// What went wrong on one connection or with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection could not be made (refused, reset, timed out).
    Connect,
    /// The server did not answer the upgrade with a valid 101 in time.
    Handshake,
    /// The server sent frames that break RFC 6455 (or our limits).
    Protocol,
    /// The server closed the connection (close frame or EOF) during the run.
    Closed,
    /// A read or write failed after the connection was up.
    Io,
    /// No echo (or delivery) within the timeout, or none by the end of the run.
    Timeout,
    /// An echo of the other frame type (text for binary or back).
    WrongType,
    /// An echo of another length.
    WrongLength,
    /// An echo carrying another connection's tag.
    Misrouted,
    /// An echo or delivery of another message than the one expected (lost,
    /// repeated or reordered).
    OutOfOrder,
    /// An echo with the right tag and wrong bytes.
    Corrupt,
    /// The gateway or its HTTP API refused a request (error envelope, non-200
    /// status, fewer deliveries than subscribers).
    Refused,
    /// TLS failed (`--tls`): a certificate not trusted, an alert, a record
    /// that does not decrypt, or a server that does not speak TLS.
    Tls,
    /// The server answered the upgrade without permessage-deflate
    /// (`--deflate` requires it).
    DeflateDeclined,
    /// permessage-deflate failed (`--deflate`): an answer the offer did not
    /// allow, or a compressed message that does not inflate.
    Deflate,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::Connect,
        ErrorKind::Handshake,
        ErrorKind::Protocol,
        ErrorKind::Closed,
        ErrorKind::Io,
        ErrorKind::Timeout,
        ErrorKind::WrongType,
        ErrorKind::WrongLength,
        ErrorKind::Misrouted,
        ErrorKind::OutOfOrder,
        ErrorKind::Corrupt,
        ErrorKind::Refused,
        ErrorKind::Tls,
        ErrorKind::DeflateDeclined,
        ErrorKind::Deflate,
    ];

    /// The kind's name in reports (`timeout`, `out_of_order`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Handshake => "handshake",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Closed => "closed",
            ErrorKind::Io => "io",
            ErrorKind::Timeout => "timeout",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::WrongLength => "wrong_length",
            ErrorKind::Misrouted => "misrouted",
            ErrorKind::OutOfOrder => "out_of_order",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Refused => "refused",
            ErrorKind::Tls => "tls",
            ErrorKind::DeflateDeclined => "deflate_declined",
            ErrorKind::Deflate => "deflate",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<Mismatch> for ErrorKind {
    fn from(m: Mismatch) -> Self {
        match m {
            Mismatch::WrongType => ErrorKind::WrongType,
            Mismatch::WrongLength => ErrorKind::WrongLength,
            Mismatch::Misrouted => ErrorKind::Misrouted,
            Mismatch::OutOfOrder => ErrorKind::OutOfOrder,
            Mismatch::Corrupt => ErrorKind::Corrupt,
        }
    }
}

/// Error counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ErrorKind::ALL.len()]);

impl ErrorCounts {
    /// Count one error of `kind`.
    pub fn add(&mut self, kind: ErrorKind) {
        self.add_n(kind, 1);
    }

    /// Count `n` errors of `kind`.
    pub fn add_n(&mut self, kind: ErrorKind, n: u64) {
        self.0[kind.index()] += n;
    }

    /// The count of `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind.index()]
    }

    /// All errors together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Add `other`'s counts.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

impl fmt::Display for ErrorCounts {
    /// `none`, or the non-zero kinds as `kind=n`, space-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total() == 0 {
            return f.write_str("none");
        }
        let mut first = true;
        for kind in ErrorKind::ALL {
            let n = self.get(kind);
            if n > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{}={n}", kind.name())?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Connections opened and failed while setting up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    /// Connections that completed the WebSocket handshake.
    pub opened: usize,
    /// Connections that failed before (see the errors for why).
    pub failed: usize,
}

/// Server CPU time over the measured window, when `--pid` was given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerCpu {
    /// utime + stime of the server process over the window, in microseconds.
    pub cpu_us: f64,
    /// The server's context switches over the window.
    pub switches: u64,
    /// The window's wall-clock length, in seconds.
    pub wall_s: f64,
}

impl ServerCpu {
    /// The difference of two samples taken `wall_s` seconds apart.
    pub fn between(start: ProcTimes, end: ProcTimes, wall_s: f64) -> ServerCpu {
        ServerCpu {
            cpu_us: end.cpu_us - start.cpu_us,
            switches: end.switches.saturating_sub(start.switches),
            wall_s,
        }
    }

    /// Server context switches per item; `None` for zero items.
    pub fn switches_per(&self, items: u64) -> Option<f64> {
        (items > 0).then(|| self.switches as f64 / items as f64)
    }

    /// Server CPU microseconds per item (message, delivery); `None` for zero items.
    pub fn per(&self, items: u64) -> Option<f64> {
        (items > 0).then(|| self.cpu_us / items as f64)
    }

    /// The server's CPU use over the window as a fraction of one core.
    pub fn load(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.cpu_us / 1e6 / self.wall_s
        } else {
            0.0
        }
    }
}

/// The result of an echo run.
#[derive(Clone, Debug)]
pub struct EchoReport {
    /// Connections opened and failed.
    pub conns: ConnCounts,
    /// Echoes received and verified in the measured window.
    pub messages: u64,
    /// The measured window's length in seconds.
    pub seconds: f64,
    /// Round-trip times of those echoes, in nanoseconds.
    pub rtt: Histogram,
    /// Errors by kind over the whole run (warm-up included).
    pub errors: ErrorCounts,
    /// Server CPU over the measured window (with `--pid`).
    pub server_cpu: Option<ServerCpu>,
}

impl EchoReport {
    /// Verified echoes per second in the measured window.
    pub fn msgs_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.messages as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The result of an idle run.
#[derive(Clone, Debug)]
pub struct IdleReport {
    /// Connections opened and failed.
    pub conns: ConnCounts,
    /// Connections still open at the end of the hold.
    pub held: usize,
    /// How long they were held, in seconds.
    pub seconds: f64,
    /// Server VmRSS in KiB before connecting, after all were open, and at
    /// the end of the hold (with `--pid`).
    pub rss_kib: Option<[u64; 3]>,
    /// Server CPU over the hold (with `--pid`).
    pub server_cpu: Option<ServerCpu>,
    /// Errors by kind.
    pub errors: ErrorCounts,
}

impl IdleReport {
    /// Server RSS growth per opened connection in bytes, from before
    /// connecting to the end of the hold.
    pub fn rss_bytes_per_conn(&self) -> Option<f64> {
        let [before, _, end] = self.rss_kib?;
        (self.conns.opened > 0)
            .then(|| (end as f64 - before as f64) * 1024.0 / self.conns.opened as f64)
    }
}

/// The result of a broadcast run.
#[derive(Clone, Debug)]
pub struct BroadcastReport {
    /// Subscribers bound and joined, and those that failed.
    pub conns: ConnCounts,
    /// Publications made in the measured window.
    pub publications: u64,
    /// Deliveries of those publications.
    pub deliveries: u64,
    /// The measured window's length in seconds.
    pub seconds: f64,
    /// Delivery latency (publication to receipt), in nanoseconds.
    pub latency: Histogram,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Server CPU over the measured window (with `--pid`).
    pub server_cpu: Option<ServerCpu>,
}

impl BroadcastReport {
    /// Deliveries per second in the measured window.
    pub fn deliveries_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.deliveries as f64 / self.seconds
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_display_only_what_happened() {
        let mut e = ErrorCounts::default();
        assert_eq!(e.to_string(), "none");
        e.add(ErrorKind::Timeout);
        e.add_n(ErrorKind::Connect, 2);
        assert_eq!(e.to_string(), "connect=2 timeout=1");
        let mut f = ErrorCounts::default();
        f.add(ErrorKind::Timeout);
        f.merge(&e);
        assert_eq!(f.total(), 4);
        assert_eq!(f.get(ErrorKind::Timeout), 2);
    }

    #[test]
    fn kinds_are_in_index_order() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn rss_per_connection() {
        let r = IdleReport {
            conns: ConnCounts {
                opened: 1000,
                failed: 0,
            },
            held: 1000,
            seconds: 1.0,
            rss_kib: Some([1000, 1200, 1293]),
            server_cpu: None,
            errors: ErrorCounts::default(),
        };
        let per = r.rss_bytes_per_conn().expect("measured");
        assert!((per - 300.032).abs() < 1e-9, "{per}");
    }
}
