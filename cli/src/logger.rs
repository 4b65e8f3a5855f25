//! The binary's logger: [`StderrLogger`] writes lines to stderr from a
//! thread of its own, so the event loop never waits on a terminal or a pipe.
//!
//! Each formatted line goes to the writer thread through a bounded queue;
//! when the queue is full the line is dropped and counted (reported with the
//! next line written), so a slow terminal or a full pipe never stalls the
//! loop. (The library rate-limits the lines a peer can cause before they get
//! here.)
//!
//! Lines look like `2026-11-26T17:30:00.123Z WARN  socket 4294967296: ...`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::LevelFilter;

/// Lines the writer thread may have waiting before new ones are dropped.
const QUEUE_LINES: usize = 4096;

/// How long [`log::Log::flush`] waits for the writer thread.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// What the writer thread is sent.
enum ToWriter {
    /// A formatted line, newline included.
    Line(String),
    /// Answer once every line before this one is written.
    Flush(SyncSender<()>),
}

/// A [`log::Log`] that writes lines to stderr from a thread of its own.
/// `flush` waits (up to a second) until the lines logged before it are
/// written: the binary calls it before it exits.
pub(crate) struct StderrLogger {
    queue: Mutex<SyncSender<ToWriter>>,
    dropped: AtomicU64,
}

impl StderrLogger {
    /// Install as the global logger at `level` (a second call only changes
    /// the level).
    pub(crate) fn init(level: LevelFilter) {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let (tx, rx) = sync_channel::<ToWriter>(QUEUE_LINES);
            let spawned = std::thread::Builder::new()
                .name("gmws-log".into())
                .spawn(move || {
                    let stderr = std::io::stderr();
                    for message in rx {
                        match message {
                            ToWriter::Line(line) => {
                                let _ = stderr.lock().write_all(line.as_bytes());
                            }
                            ToWriter::Flush(done) => {
                                let _ = done.try_send(());
                            }
                        }
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
        if let Err(TrySendError::Full(_)) = queue.try_send(ToWriter::Line(line)) {
            self.dropped.fetch_add(1 + dropped, Ordering::Relaxed);
        }
    }

    fn flush(&self) {
        let (done, written) = sync_channel(1);
        let sent = match self.queue.lock() {
            Ok(queue) => queue.try_send(ToWriter::Flush(done)).is_ok(),
            Err(_) => false,
        };
        if sent {
            let _ = written.recv_timeout(FLUSH_WAIT);
        }
    }
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
    fn timestamps_are_iso_8601_utc() {
        let t = timestamp();
        assert_eq!(t.len(), "2026-11-26T17:30:00.123Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
