//! Logging: the library logs through the [`log`] facade, so an application
//! chooses its logger; [`StderrLogger`] is the one the `gmws` binary and the
//! examples install.
//!
//! Two rules keep logging from becoming a peer's lever on the server:
//!
//! - **Peer-triggered lines are rate-limited** (`peer_log!`): a line caused
//!   by what a peer sent (a protocol error, a refused request, a limit hit)
//!   is written at most [`PEER_LINES_PER_SEC`] times a second across the
//!   process; the lines skipped are counted and the next line written says
//!   how many. An attacker can fill the log no faster than that.
//! - **Writing is off the event loop**: [`StderrLogger`] hands each formatted
//!   line to a writer thread through a bounded queue; when the queue is full
//!   the line is dropped and counted (reported with the next line written),
//!   so a slow terminal or a full pipe never stalls the loop.
//!
//! Lines look like `2026-11-26T17:30:00.123Z WARN  socket 4294967296: ...`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use log::LevelFilter;

/// Peer-triggered log lines written per second, at most.
pub const PEER_LINES_PER_SEC: u64 = 20;

/// Lines the writer thread may have waiting before new ones are dropped.
const QUEUE_LINES: usize = 4096;

/// The rate limiter behind `peer_log!`: the current one-second window (ms
/// since the first peer line), lines written in it, lines skipped since the
/// last written one.
static PEER_WINDOW: AtomicU64 = AtomicU64::new(0);
static PEER_IN_WINDOW: AtomicU64 = AtomicU64::new(0);
static PEER_SKIPPED: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Whether a peer-triggered line may be written now; if so, also how many
/// were skipped before it. Used by `peer_log!`.
pub fn peer_line_allowed() -> Option<u64> {
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

/// Parse a level name: `off`, `error`, `warn`, `info`, `debug` (or `trace`).
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    Some(match s.to_ascii_lowercase().as_str() {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

/// A [`log::Log`] that writes lines to stderr from a thread of its own.
pub struct StderrLogger {
    queue: Mutex<SyncSender<String>>,
    dropped: AtomicU64,
}

impl StderrLogger {
    /// Install as the global logger at `level` (a second call only changes
    /// the level).
    pub fn init(level: LevelFilter) {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let (tx, rx) = sync_channel::<String>(QUEUE_LINES);
            let spawned = std::thread::Builder::new()
                .name("gmws-log".into())
                .spawn(move || {
                    let stderr = std::io::stderr();
                    for line in rx {
                        let _ = stderr.lock().write_all(line.as_bytes());
                    }
                });
            if spawned.is_ok() {
                let logger = StderrLogger {
                    queue: Mutex::new(tx),
                    dropped: AtomicU64::new(0),
                };
                let _ = log::set_boxed_logger(Box::new(logger));
            }
        });
        log::set_max_level(level);
    }
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = timestamp();
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        let label = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARN ",
            log::Level::Info => "INFO ",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        use std::fmt::Write as _;
        let _ = write!(line, " {label} {}", record.args());
        if dropped > 0 {
            let _ = write!(
                line,
                " ({dropped} lines dropped: the log writer fell behind)"
            );
        }
        line.push('\n');
        let Ok(queue) = self.queue.lock() else {
            return;
        };
        if let Err(TrySendError::Full(_)) = queue.try_send(line) {
            self.dropped.fetch_add(1 + dropped, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, millis) = (now.as_secs(), now.subsec_millis());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_418), (2025, 11, 26));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("WARN"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("nope"), None);
    }

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
