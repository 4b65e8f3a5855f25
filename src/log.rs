//! Logging: the library logs through the [`log`] facade, so an application
//! chooses its logger (the `gmws` binary installs one that writes from a
//! thread of its own, off the event loop).
//!
//! **Peer-triggered lines are rate-limited** (`peer_log!`): a line caused by
//! what a peer sent (a protocol error, a refused request, a limit hit) is
//! written at most [`PEER_LINES_PER_SEC`] times a second across the process;
//! the lines skipped are counted and the next line written says how many. An
//! attacker can fill the log no faster than that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Peer-triggered log lines written per second, at most.
pub(crate) const PEER_LINES_PER_SEC: u64 = 20;

/// The rate limiter behind `peer_log!`: the current one-second window (ms
/// since the first peer line), lines written in it, lines skipped since the
/// last written one.
static PEER_WINDOW: AtomicU64 = AtomicU64::new(0);
static PEER_IN_WINDOW: AtomicU64 = AtomicU64::new(0);
static PEER_SKIPPED: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Whether a peer-triggered line may be written now; if so, also how many
/// were skipped before it. Used by `peer_log!`.
pub(crate) fn peer_line_allowed() -> Option<u64> {
    let ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
    let window = ms / 1000;
    if PEER_WINDOW.swap(window, Ordering::Relaxed) != window {
        PEER_IN_WINDOW.store(0, Ordering::Relaxed);
    }
    if PEER_IN_WINDOW.fetch_add(1, Ordering::Relaxed) < PEER_LINES_PER_SEC {
        Some(PEER_SKIPPED.swap(0, Ordering::Relaxed))
    } else {
        PEER_SKIPPED.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Log a line caused by a peer (at warn level), rate-limited process-wide:
/// see the module docs.
macro_rules! peer_log {
    ($($arg:tt)*) => {
        if ::log::log_enabled!(::log::Level::Warn) {
            match $crate::log::peer_line_allowed() {
                Some(0) => ::log::warn!($($arg)*),
                Some(skipped) => ::log::warn!("{} ({skipped} more peer-triggered lines were skipped before this one)", format_args!($($arg)*)),
                None => {}
            }
        }
    };
}
pub(crate) use peer_log;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_lines_are_limited_per_second() {
        // Within one window at most PEER_LINES_PER_SEC pass; the window may
        // roll over during the loop, so allow for two windows' worth.
        let allowed = (0..10_000)
            .filter(|_| peer_line_allowed().is_some())
            .count() as u64;
        assert!(allowed <= 2 * PEER_LINES_PER_SEC, "{allowed}");
        assert!(allowed >= 1);
    }
}
