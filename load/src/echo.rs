//! Echo mode: C connections, each with exactly one message in flight.
//!
//! A connection sends message 0 as soon as its handshake is done and the next
//! one as soon as the previous echo is back and checked. Once every connection
//! (on every thread) is set up or has failed, a warm-up of `--warmup` seconds
//! starts, then the measured window of `--duration` seconds: echoes that come
//! back inside the window are counted and their round trips recorded. After
//! the window no new message is sent; echoes still out get up to `--timeout`
//! (at most 5 s) to come back, then count as timeouts. Then every connection
//! is closed (close frame 1000, at most 2 s).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::protocol::OpCode;

use super::args::LoadArgs;
use super::driver::{Client, Data, Driver, Outbox, Verdict, Wire, CLOSE_WAIT};
use super::histogram::Histogram;
use super::payload::{check, fill, PayloadKind, Tag};
use super::procfs;
use super::stats::{ConnCounts, EchoReport, ErrorCounts, ErrorKind, ServerCpu};
use super::LoadError;

/// The longest wait for echoes still out after the window.
const MAX_GRACE: Duration = Duration::from_secs(5);
/// How often connections are checked for an overdue echo.
const TIMEOUT_SCAN: Duration = Duration::from_millis(100);
/// Setup (all connections up or failed) may take this many `--timeout`s.
pub(crate) const SETUP_TIMEOUTS: u32 = 3;
/// "Not decided yet" in [`Shared::start_ns`].
const UNSET: u64 = u64::MAX;

/// What the threads of one run agree on.
struct Shared {
    /// The run's time origin.
    base: Instant,
    /// Connections in the run, over all threads.
    total: usize,
    /// Connections set up or failed so far, over all threads.
    settled: AtomicUsize,
    /// Start of the measured window, in ns after `base` ([`UNSET`] until
    /// every connection has settled).
    start_ns: AtomicU64,
    /// Threads that have finished.
    done: AtomicUsize,
}

impl Shared {
    /// The measured window, once decided.
    fn window(&self, duration: Duration) -> Option<(Instant, Instant)> {
        let ns = self.start_ns.load(Ordering::Acquire);
        (ns != UNSET).then(|| {
            let start = self.base + Duration::from_nanos(ns);
            (start, start + duration)
        })
    }
}

/// One connection's message in flight.
struct EchoConn {
    seq: u64,
    sent_at: Option<Instant>,
    /// The payload in flight, to check the echo against (reused).
    payload: Vec<u8>,
}

/// The echo client of one thread.
struct Echo {
    kind: PayloadKind,
    size: usize,
    first_id: u32,
    conns: Vec<EchoConn>,
    sending: bool,
    window: Option<(Instant, Instant)>,
    in_flight: usize,
    rtt: Histogram,
    messages: u64,
    errors: ErrorCounts,
}

impl Echo {
    fn send(&mut self, i: usize, out: &mut Outbox) {
        if !self.sending {
            return;
        }
        let conn = &mut self.conns[i];
        let tag = Tag {
            conn: self.first_id + i as u32,
            seq: conn.seq,
        };
        fill(&mut conn.payload, self.kind, tag, self.size);
        let opcode = match self.kind {
            PayloadKind::Binary => OpCode::Binary,
            PayloadKind::Text => OpCode::Text,
        };
        out.send(opcode, &conn.payload);
        conn.sent_at = Some(Instant::now());
        self.in_flight += 1;
    }

    fn in_window(&self, now: Instant) -> bool {
        self.window
            .is_some_and(|(start, end)| now >= start && now < end)
    }
}

impl Client for Echo {
    fn on_open(&mut self, i: usize, out: &mut Outbox) {
        self.send(i, out);
    }

    fn on_data(&mut self, i: usize, data: Data<'_>, out: &mut Outbox) -> Verdict {
        let now = Instant::now();
        let conn = &mut self.conns[i];
        let Some(sent_at) = conn.sent_at.take() else {
            // Nothing was in flight: an echo nobody asked for.
            self.errors.add(ErrorKind::OutOfOrder);
            return Verdict::Keep;
        };
        self.in_flight -= 1;
        let (got, text) = match data {
            Data::Text(t) => (t.as_bytes(), true),
            Data::Binary(b) => (b, false),
        };
        let tag = Tag {
            conn: self.first_id + i as u32,
            seq: conn.seq,
        };
        conn.seq += 1;
        match check(&conn.payload, self.kind, tag, got, text) {
            Ok(()) => {
                if self.in_window(now) {
                    let rtt = now.saturating_duration_since(sent_at);
                    self.rtt
                        .record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
                    self.messages += 1;
                }
            }
            Err(mismatch) => self.errors.add(mismatch.into()),
        }
        if self.window.is_some_and(|(_, end)| now >= end) {
            self.sending = false;
        }
        self.send(i, out);
        Verdict::Keep
    }

    fn on_gone(&mut self, i: usize, error: Option<ErrorKind>) {
        if self.conns[i].sent_at.take().is_some() {
            self.in_flight -= 1;
        }
        if let Some(kind) = error {
            self.errors.add(kind);
        }
    }
}

/// What one thread measured.
struct Part {
    opened: usize,
    failed: usize,
    messages: u64,
    rtt: Histogram,
    errors: ErrorCounts,
}

/// Run echo mode against `addr`.
pub fn run(args: &LoadArgs, addr: SocketAddr, wire: &Wire) -> Result<EchoReport, LoadError> {
    let threads = args.threads.min(args.connections).max(1);
    let shared = Shared {
        base: Instant::now(),
        total: args.connections,
        settled: AtomicUsize::new(0),
        start_ns: AtomicU64::new(UNSET),
        done: AtomicUsize::new(0),
    };
    let per = args.connections / threads;
    let extra = args.connections % threads;
    let (parts, server_cpu) = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads);
        let mut first = 0;
        for t in 0..threads {
            let count = per + usize::from(t < extra);
            let shared = &shared;
            handles.push(scope.spawn(move || {
                let part = worker(args, addr, wire, first, count, shared);
                shared.done.fetch_add(1, Ordering::AcqRel);
                part
            }));
            first += count;
        }
        let server_cpu = args
            .pid
            .and_then(|pid| sample_cpu(pid, &shared, args.duration, threads));
        let parts: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| LoadError::WorkerPanicked))
            .collect();
        (parts, server_cpu)
    });
    let mut report = EchoReport {
        conns: ConnCounts::default(),
        messages: 0,
        seconds: args.duration.as_secs_f64(),
        rtt: Histogram::new(),
        errors: ErrorCounts::default(),
        server_cpu,
    };
    for part in parts {
        let part = part?.map_err(LoadError::EventLoop)?;
        report.conns.opened += part.opened;
        report.conns.failed += part.failed;
        report.messages += part.messages;
        report.rtt.merge(&part.rtt);
        report.errors.merge(&part.errors);
    }
    Ok(report)
}

/// Server CPU over the measured window: sampled at its start and end.
fn sample_cpu(pid: u32, shared: &Shared, duration: Duration, threads: usize) -> Option<ServerCpu> {
    let (start, end) = loop {
        if let Some(window) = shared.window(duration) {
            break window;
        }
        if shared.done.load(Ordering::Acquire) == threads {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    let (t0, c0) = (Instant::now(), procfs::times(pid).ok()?);
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    let (t1, c1) = (Instant::now(), procfs::times(pid).ok()?);
    Some(ServerCpu::between(c0, c1, (t1 - t0).as_secs_f64()))
}

fn worker(
    args: &LoadArgs,
    addr: SocketAddr,
    wire: &Wire,
    first_id: usize,
    count: usize,
    shared: &Shared,
) -> std::io::Result<Part> {
    let mut driver = Driver::new(
        addr,
        &args.target,
        &args.path,
        count,
        args.connect_window,
        args.timeout,
        wire,
    )?;
    let mut echo = Echo {
        kind: args.kind,
        size: args.size,
        first_id: first_id as u32,
        conns: (0..count)
            .map(|_| EchoConn {
                seq: 0,
                sent_at: None,
                payload: Vec::new(),
            })
            .collect(),
        sending: true,
        window: None,
        in_flight: 0,
        rtt: Histogram::new(),
        messages: 0,
        errors: ErrorCounts::default(),
    };
    let grace = args.timeout.min(MAX_GRACE);
    let setup_deadline = Instant::now() + SETUP_TIMEOUTS * args.timeout;
    let mut counted_settled = false;
    let mut next_scan = Instant::now() + TIMEOUT_SCAN;
    let mut wait = Duration::from_millis(5);
    loop {
        driver.turn(&mut echo, wait)?;
        let now = Instant::now();
        if !driver.settled() && now >= setup_deadline {
            driver.give_up_setup(&mut echo);
        }
        if !counted_settled && driver.settled() {
            counted_settled = true;
            shared.settled.fetch_add(count, Ordering::AcqRel);
        }
        if echo.window.is_none() {
            if shared.settled.load(Ordering::Acquire) == shared.total {
                let start = now + args.warmup;
                let ns = u64::try_from((start - shared.base).as_nanos()).unwrap_or(UNSET - 1);
                // The first thread to see everyone settled decides.
                let _ = shared.start_ns.compare_exchange(
                    UNSET,
                    ns,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                echo.window = shared.window(args.duration);
            }
            if echo.window.is_none() {
                wait = Duration::from_millis(5);
                continue;
            }
        }
        let Some((start, end)) = echo.window else {
            continue;
        };
        if driver.live() == 0 {
            break; // every connection failed or is gone: nothing left to measure
        }
        if now >= end {
            echo.sending = false;
            if echo.in_flight == 0 || now >= end + grace {
                break;
            }
        }
        if now >= next_scan {
            next_scan = now + TIMEOUT_SCAN;
            for i in 0..echo.conns.len() {
                let overdue = echo.conns[i]
                    .sent_at
                    .is_some_and(|sent| now.saturating_duration_since(sent) > args.timeout);
                if overdue {
                    echo.conns[i].sent_at = None;
                    echo.in_flight -= 1;
                    echo.errors.add(ErrorKind::Timeout);
                    driver.abort(i);
                }
            }
        }
        let next = if now < start {
            start
        } else if now < end {
            end
        } else {
            end + grace
        };
        wait = next
            .saturating_duration_since(now)
            .min(TIMEOUT_SCAN)
            .max(Duration::from_millis(1));
    }
    // Echoes still out after the grace period never came back.
    for conn in &mut echo.conns {
        if conn.sent_at.take().is_some() {
            echo.errors.add(ErrorKind::Timeout);
        }
    }
    echo.in_flight = 0;
    driver.close_all(&mut echo);
    let close_deadline = Instant::now() + CLOSE_WAIT + Duration::from_millis(100);
    while !driver.finished() && Instant::now() < close_deadline {
        driver.turn(&mut echo, Duration::from_millis(20))?;
    }
    Ok(Part {
        opened: driver.opened(),
        failed: driver.failed(),
        messages: echo.messages,
        rtt: echo.rtt,
        errors: echo.errors,
    })
}
