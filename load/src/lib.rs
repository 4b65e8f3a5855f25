//! `gmws-load`: the load generator behind `gmws load`, on the protocol
//! crate's client role. The `gmws` binary (the `cli/` package) calls
//! [`main`] with the arguments after `load`; [`run`] is the same run as a
//! library function (tests call it against an in-process server).
//!
//! Three modes (see [`args::usage`] for every flag and default):
//!
//! - **echo**: C connections, each with exactly one S-byte masked message in
//!   flight (binary or text). Every echo is checked byte for byte against a
//!   tagged payload ([`payload`]: connection id, sequence number, pattern).
//!   After a warm-up, a measured window gives msgs/s and round-trip
//!   p50/p99/max from a log-linear [`histogram::Histogram`] (no allocation per
//!   message).
//! - **idle**: C connections held open; with `--pid`, the server's RSS growth
//!   per connection (VmRSS in `/proc/PID/status`).
//! - **broadcast**: C subscribers bound and joined to one group through the
//!   gateway's JSON protocol, one publisher through `POST /api/send_to_group`
//!   or a socket's `send_to_group`; deliveries/s and delivery latency from a
//!   timestamp carried in each message.
//!
//! With `--pid` every mode also reports the server's CPU time (utime + stime,
//! `/proc/PID/stat`) over the measured window, per message or delivery.
//!
//! Every mode can run over TLS (`--tls`, rustls's sans-IO connection on our
//! own sockets, [`tls`]) and with permessage-deflate (`--deflate`: offered,
//! required, every message sent compressed and every compressed one
//! inflated), or both; payloads and accounting stay the same.
//!
//! Connections are non-blocking mio sockets on one `Poll` per thread
//! (`--threads`, echo mode only), no async runtime. Every run is bounded in
//! time and ends by itself.
//!
//! **Targets.** A target that does not resolve to a loopback address is
//! refused unless `--allow-remote` is given: load is for your own servers.
//!
//! **File descriptors.** Each connection is a file descriptor. The soft
//! `RLIMIT_NOFILE` is not raised here (that needs `unsafe` or a new
//! dependency); raise it in the shell with `ulimit -n` (up to `ulimit -Hn`).
//! The run warns when the limit is below the connections asked for.
//!
//! The last line printed is machine-readable, e.g.
//! `RESULT mode=echo conns=100 size=1024 kind=binary msgs=512000
//! msgs_per_s=102400 p50_us=850.0 p99_us=1200.0 max_us=5012.3 errors=0
//! server_cpu_us_per_msg=3.10 server_switches_per_msg=0.020` (`na` where
//! nothing was measured). Server context switches per message tell how
//! often the server slept in `epoll_wait` between messages: on a VM, each
//! sleep and wake-up costs more CPU than the echo itself.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
mod broadcast;
mod deflate;
pub mod driver;
mod echo;
pub mod histogram;
mod http;
mod idle;
pub mod payload;
pub mod procfs;
pub mod stats;
pub mod tls;

use std::fmt;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use gmws_protocol as protocol;

pub use args::{ArgsError, LoadArgs, Mode, Parsed, Publisher};
pub use histogram::Histogram;
pub use payload::PayloadKind;
pub use stats::{BroadcastReport, EchoReport, ErrorCounts, ErrorKind, IdleReport, ServerCpu};

use driver::Wire;
use protocol::deflate::client::ClientOffer;

/// Why a run could not be made (as opposed to errors counted during it).
#[derive(Debug)]
pub enum LoadError {
    /// The arguments do not make a run.
    Args(ArgsError),
    /// The target's host name did not resolve.
    Resolve {
        /// The target as given.
        target: String,
        /// Why, if the resolver said.
        error: Option<std::io::Error>,
    },
    /// The target is not a loopback address and `--allow-remote` was not given.
    NotLoopback(SocketAddr),
    /// The process given with `--pid` cannot be read in `/proc`.
    Proc {
        /// The process id.
        pid: u32,
        /// What reading it said.
        error: std::io::Error,
    },
    /// TLS could not be set up (`--tls-ca`, the server name).
    Tls(tls::TlsError),
    /// The event loop itself failed (creating or polling the `Poll`).
    EventLoop(std::io::Error),
    /// A load thread panicked (a bug in the load generator).
    WorkerPanicked,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Args(e) => write!(f, "{e}"),
            LoadError::Resolve {
                target,
                error: Some(e),
            } => write!(f, "cannot resolve {target}: {e}"),
            LoadError::Resolve { target, error: None } => {
                write!(f, "{target} resolves to no address")
            }
            LoadError::NotLoopback(addr) => write!(
                f,
                "refusing to load {addr}: not a loopback address (pass --allow-remote for your own remote servers)"
            ),
            LoadError::Proc { pid, error } => {
                write!(f, "cannot read /proc/{pid} (--pid): {error}")
            }
            LoadError::Tls(e) => write!(f, "{e}"),
            LoadError::EventLoop(e) => write!(f, "event loop failed: {e}"),
            LoadError::WorkerPanicked => f.write_str("a load thread panicked"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Args(e) => Some(e),
            LoadError::Tls(e) => Some(e),
            LoadError::Resolve { error: Some(e), .. }
            | LoadError::Proc { error: e, .. }
            | LoadError::EventLoop(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ArgsError> for LoadError {
    fn from(e: ArgsError) -> Self {
        LoadError::Args(e)
    }
}

/// What a run measured, by mode.
#[derive(Clone, Debug)]
pub enum Report {
    /// An echo run.
    Echo(EchoReport),
    /// An idle run.
    Idle(IdleReport),
    /// A broadcast run.
    Broadcast(BroadcastReport),
}

impl Report {
    /// The errors counted during the run.
    pub fn errors(&self) -> &ErrorCounts {
        match self {
            Report::Echo(r) => &r.errors,
            Report::Idle(r) => &r.errors,
            Report::Broadcast(r) => &r.errors,
        }
    }

    /// The human-readable lines of the report (without the `RESULT` line).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        match self {
            Report::Echo(r) => {
                let _ = writeln!(
                    s,
                    "connections: {} opened, {} failed",
                    r.conns.opened, r.conns.failed
                );
                let _ = writeln!(
                    s,
                    "messages:    {} echoes checked in {:.2} s = {:.0} msgs/s",
                    r.messages,
                    r.seconds,
                    r.msgs_per_s()
                );
                let _ = writeln!(
                    s,
                    "round trip:  p50 {} us, p99 {} us, p99.9 {} us, max {} us (min {} us, mean {} us)",
                    us(r.rtt.quantile(0.5)),
                    us(r.rtt.quantile(0.99)),
                    us(r.rtt.quantile(0.999)),
                    us(r.rtt.max()),
                    us(r.rtt.min()),
                    us(r.rtt.mean()),
                );
                write_cpu(&mut s, r.server_cpu, r.messages, "message");
            }
            Report::Idle(r) => {
                let _ = writeln!(
                    s,
                    "connections: {} opened, {} failed, {} still open after {:.1} s",
                    r.conns.opened, r.conns.failed, r.held, r.seconds
                );
                match (r.rss_kib, r.rss_bytes_per_conn()) {
                    (Some([before, open, end]), Some(per)) => {
                        let _ = writeln!(
                            s,
                            "server rss:  {before} KiB before, {open} KiB all open, {end} KiB after the hold = {per:.0} bytes per connection"
                        );
                    }
                    _ => s.push_str("server rss:  not measured (give --pid)\n"),
                }
                if let Some(cpu) = r.server_cpu {
                    let _ = writeln!(
                        s,
                        "server cpu:  {:.2}% of a core while holding",
                        cpu.load() * 100.0
                    );
                }
            }
            Report::Broadcast(r) => {
                let _ = writeln!(
                    s,
                    "subscribers: {} joined, {} failed",
                    r.conns.opened, r.conns.failed
                );
                let _ = writeln!(
                    s,
                    "deliveries:  {} of {} publications in {:.2} s = {:.0} deliveries/s",
                    r.deliveries,
                    r.publications,
                    r.seconds,
                    r.deliveries_per_s()
                );
                let _ = writeln!(
                    s,
                    "latency:     p50 {} us, p99 {} us, max {} us (publication to receipt)",
                    us(r.latency.quantile(0.5)),
                    us(r.latency.quantile(0.99)),
                    us(r.latency.max()),
                );
                write_cpu(&mut s, r.server_cpu, r.deliveries, "delivery");
            }
        }
        let _ = writeln!(s, "errors:      {}", self.errors());
        s
    }

    /// The machine-readable `RESULT key=value ...` line (`na` for what was
    /// not measured).
    pub fn result_line(&self, args: &LoadArgs) -> String {
        let kind = match args.kind {
            PayloadKind::Binary => "binary",
            PayloadKind::Text => "text",
        };
        let mut s = format!(
            "RESULT mode={} conns={} size={}",
            args.mode.name(),
            args.connections,
            args.size
        );
        // Only when not plain: earlier lines stay as they were.
        match (args.tls, args.deflate) {
            (false, false) => {}
            (true, false) => s.push_str(" wire=tls"),
            (false, true) => s.push_str(" wire=deflate"),
            (true, true) => s.push_str(" wire=tls+deflate"),
        }
        match self {
            Report::Echo(r) => {
                let _ = write!(
                    s,
                    " kind={kind} msgs={} msgs_per_s={:.0} p50_us={} p99_us={} max_us={} errors={} server_cpu_us_per_msg={} server_switches_per_msg={}",
                    r.messages,
                    r.msgs_per_s(),
                    us(r.rtt.quantile(0.5)),
                    us(r.rtt.quantile(0.99)),
                    us(r.rtt.max()),
                    r.errors.total(),
                    opt(r.server_cpu.and_then(|c| c.per(r.messages))),
                    opt(r.server_cpu.and_then(|c| c.switches_per(r.messages))),
                );
            }
            Report::Idle(r) => {
                let _ = write!(
                    s,
                    " opened={} held={} rss_before_kib={} rss_after_kib={} rss_bytes_per_conn={} server_cpu_pct={} errors={}",
                    r.conns.opened,
                    r.held,
                    r.rss_kib.map_or("na".to_owned(), |r| r[0].to_string()),
                    r.rss_kib.map_or("na".to_owned(), |r| r[2].to_string()),
                    r.rss_bytes_per_conn()
                        .map_or("na".to_owned(), |b| format!("{b:.0}")),
                    opt(r.server_cpu.map(|c| c.load() * 100.0)),
                    r.errors.total(),
                );
            }
            Report::Broadcast(r) => {
                let _ = write!(
                    s,
                    " publisher={} subscribers={} publications={} deliveries={} deliveries_per_s={:.0} p50_us={} p99_us={} max_us={} errors={} server_cpu_us_per_delivery={}",
                    match args.publisher {
                        Publisher::Http => "http",
                        Publisher::Socket => "socket",
                    },
                    r.conns.opened,
                    r.publications,
                    r.deliveries,
                    r.deliveries_per_s(),
                    us(r.latency.quantile(0.5)),
                    us(r.latency.quantile(0.99)),
                    us(r.latency.max()),
                    r.errors.total(),
                    opt(r.server_cpu.and_then(|c| c.per(r.deliveries))),
                );
            }
        }
        s
    }
}

/// Nanoseconds as microseconds with one decimal.
fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

fn opt(value: Option<f64>) -> String {
    value.map_or("na".to_owned(), |v| format!("{v:.3}"))
}

fn write_cpu(s: &mut String, cpu: Option<ServerCpu>, items: u64, what: &str) {
    match cpu {
        Some(cpu) => {
            let per = cpu
                .per(items)
                .map_or("na".to_owned(), |p| format!("{p:.3}"));
            let _ = writeln!(
                s,
                "server cpu:  {per} us per {what} ({:.1}% of a core over the window, {} context switches)",
                cpu.load() * 100.0,
                cpu.switches
            );
        }
        None => s.push_str("server cpu:  not measured (give --pid)\n"),
    }
}

/// Resolve the target and refuse a non-loopback one without `--allow-remote`.
pub fn resolve_target(args: &LoadArgs) -> Result<SocketAddr, LoadError> {
    resolve(args, &args.target)
}

/// Resolve `target` (the target, `--publish-target` or `--also-target`) and
/// refuse a non-loopback one without `--allow-remote`.
pub fn resolve(args: &LoadArgs, target: &str) -> Result<SocketAddr, LoadError> {
    let mut addrs = target.to_socket_addrs().map_err(|e| LoadError::Resolve {
        target: target.to_owned(),
        error: Some(e),
    })?;
    let addr = addrs.next().ok_or_else(|| LoadError::Resolve {
        target: target.to_owned(),
        error: None,
    })?;
    if !addr.ip().is_loopback() && !args.allow_remote {
        return Err(LoadError::NotLoopback(addr));
    }
    Ok(addr)
}

/// Refuse a `--pid` that names no process.
fn check_pid(pid: Option<u32>) -> Result<(), LoadError> {
    match pid {
        Some(pid) if !procfs::process_exists(pid) => Err(LoadError::Proc {
            pid,
            error: std::io::ErrorKind::NotFound.into(),
        }),
        _ => Ok(()),
    }
}

/// The wire `args` ask for: TLS set up (the CA file read) and the
/// permessage-deflate offer.
fn wire(args: &LoadArgs) -> Result<Wire, LoadError> {
    let tls = if args.tls {
        let trust = match &args.tls_ca {
            Some(path) => tls::Trust::Ca(path.clone()),
            None => tls::Trust::Insecure,
        };
        let host = args
            .target
            .rsplit_once(':')
            .map_or(args.target.as_str(), |(host, _)| host);
        Some(tls::TlsClient::new(host, &trust).map_err(LoadError::Tls)?)
    } else {
        None
    };
    Ok(Wire {
        tls,
        deflate: args.deflate.then(ClientOffer::default),
    })
}

/// Run the load described by `args` and return what it measured.
///
/// Errors during the run (failed connections, wrong echoes, timeouts) are
/// counted in the report; `Err` means the run could not be made at all.
pub fn run(args: &LoadArgs) -> Result<Report, LoadError> {
    args::validate(args)?;
    let addr = resolve_target(args)?;
    check_pid(args.pid)?;
    let wire = wire(args)?;
    Ok(match args.mode {
        Mode::Echo => Report::Echo(echo::run(args, addr, &wire)?),
        Mode::Idle => Report::Idle(idle::run(args, addr, &wire)?),
        Mode::Broadcast => Report::Broadcast(broadcast::run(args, addr, &wire)?),
    })
}

/// The description of a run, printed before it starts.
fn banner(args: &LoadArgs) -> String {
    let kind = match args.kind {
        PayloadKind::Binary => "binary",
        PayloadKind::Text => "text",
    };
    let wire = match (args.tls, args.deflate) {
        (false, false) => "",
        (true, false) => ", over TLS",
        (false, true) => ", permessage-deflate",
        (true, true) => ", over TLS with permessage-deflate",
    };
    let text = match args.mode {
        Mode::Echo => format!(
            "gmws load: echo, {} connections, {}-byte {kind} messages, {} thread(s), target {}{}, warm-up {} s, measured {} s",
            args.connections,
            args.size,
            args.threads,
            args.target,
            args.path,
            args.warmup.as_secs_f64(),
            args.duration.as_secs_f64()
        ),
        Mode::Idle => format!(
            "gmws load: idle, {} connections held {} s, target {}{}",
            args.connections,
            args.hold.as_secs_f64(),
            args.target,
            args.path
        ),
        Mode::Broadcast => format!(
            "gmws load: broadcast, {} subscribers in group {:?}, {}-byte messages via {}, target {}{}, warm-up {} s, measured {} s",
            args.connections,
            args.group,
            args.size,
            match args.publisher {
                Publisher::Http => "POST /api/send_to_group",
                Publisher::Socket => "a socket's send_to_group",
            },
            args.target,
            args.path,
            args.warmup.as_secs_f64(),
            args.duration.as_secs_f64()
        ),
    };
    text + wire
}

/// `gmws load ARGS...`: parse, run, print the report; exit 0 without errors,
/// 1 with errors counted, 2 when the run could not be made.
pub fn main(args: &[String]) -> ExitCode {
    let args = match args::parse(args) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            print!("{}", args::usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gmws load: {e}\nTry `gmws load --help`.");
            return ExitCode::from(2);
        }
    };
    let needed = args.connections as u64 + 32;
    if let Some(limit) = procfs::open_files_limit().filter(|&l| l < needed) {
        eprintln!(
            "gmws load: warning: the open-file limit is {limit}, below the {} connections asked for; raise it with `ulimit -n` (hard limit: `ulimit -Hn`)",
            args.connections
        );
    }
    // Refuse a bad target or pid before announcing the run.
    if let Err(e) = resolve_target(&args).and_then(|_| check_pid(args.pid)) {
        eprintln!("gmws load: {e}");
        return ExitCode::from(2);
    }
    println!("{}", banner(&args));
    match run(&args) {
        Ok(report) => {
            print!("{}", report.summary());
            let errors = report.errors();
            if errors.get(ErrorKind::DeflateDeclined) > 0 {
                eprintln!("gmws load: the server declined permessage-deflate (--deflate needs a server that accepts it)");
            }
            if errors.get(ErrorKind::Tls) > 0 {
                eprintln!("gmws load: TLS failed (an untrusted certificate, or a server without TLS on this port?)");
            }
            println!("{}", report.result_line(&args));
            if report.errors().total() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("gmws load: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_targets_are_refused() {
        let mut args = LoadArgs {
            target: "192.0.2.1:80".to_owned(),
            ..LoadArgs::default()
        };
        assert!(matches!(
            resolve_target(&args),
            Err(LoadError::NotLoopback(_))
        ));
        args.allow_remote = true;
        assert!(resolve_target(&args).is_ok());
        args.allow_remote = false;
        args.target = "127.0.0.1:9".to_owned();
        assert!(resolve_target(&args).is_ok());
        args.target = "[::1]:9".to_owned();
        assert!(resolve_target(&args).is_ok());
    }

    #[test]
    fn result_line_marks_unmeasured_values() {
        let args = LoadArgs::default();
        let report = Report::Echo(EchoReport {
            conns: stats::ConnCounts {
                opened: 100,
                failed: 0,
            },
            messages: 500,
            seconds: 5.0,
            rtt: Histogram::new(),
            errors: ErrorCounts::default(),
            server_cpu: None,
        });
        let line = report.result_line(&args);
        assert!(
            line.starts_with(
                "RESULT mode=echo conns=100 size=1024 kind=binary msgs=500 msgs_per_s=100 "
            ),
            "{line}"
        );
        assert!(
            line.ends_with("errors=0 server_cpu_us_per_msg=na server_switches_per_msg=na"),
            "{line}"
        );
        assert!(report.summary().contains("errors:      none"));
    }
}
