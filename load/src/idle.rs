//! Idle mode: open C connections, hold them, and read what they cost the
//! server in memory.
//!
//! With `--pid`, the server's VmRSS is read before the first connection,
//! once every connection is set up (or failed), and at the end of the hold;
//! the growth per connection is taken from the first to the last reading.
//! During the hold the connections send nothing but answer pings (a
//! heartbeat that goes unanswered would close them) and ignore messages
//! (the gateway's `welcome`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::args::LoadArgs;
use super::driver::{Client, Data, Driver, Outbox, Verdict, Wire, CLOSE_WAIT};
use super::echo::SETUP_TIMEOUTS;
use super::procfs;
use super::stats::{ConnCounts, ErrorCounts, ErrorKind, IdleReport, ServerCpu};
use super::LoadError;

/// Idle connections: count what goes wrong, nothing else.
#[derive(Default)]
struct Idle {
    errors: ErrorCounts,
}

impl Client for Idle {
    fn on_open(&mut self, _i: usize, _out: &mut Outbox) {}

    fn on_data(&mut self, _i: usize, _data: Data<'_>, _out: &mut Outbox) -> Verdict {
        Verdict::Keep
    }

    fn on_gone(&mut self, _i: usize, error: Option<ErrorKind>) {
        if let Some(kind) = error {
            self.errors.add(kind);
        }
    }
}

/// Read VmRSS, as a [`LoadError`] if the process cannot be read.
fn rss(pid: u32) -> Result<u64, LoadError> {
    procfs::rss_kib(pid).map_err(|error| LoadError::Proc { pid, error })
}

/// Run idle mode against `addr`.
pub fn run(args: &LoadArgs, addr: SocketAddr, wire: &Wire) -> Result<IdleReport, LoadError> {
    let mut driver = Driver::new(
        addr,
        &args.target,
        &args.path,
        args.connections,
        args.connect_window,
        args.timeout,
        wire,
    )
    .map_err(LoadError::EventLoop)?;
    let mut idle = Idle::default();
    let rss_before = args.pid.map(rss).transpose()?;
    let setup_deadline = Instant::now() + SETUP_TIMEOUTS * args.timeout;
    while !driver.settled() {
        if Instant::now() >= setup_deadline {
            driver.give_up_setup(&mut idle);
            break;
        }
        driver
            .turn(&mut idle, Duration::from_millis(50))
            .map_err(LoadError::EventLoop)?;
    }
    let rss_open = args.pid.map(rss).transpose()?;
    let cpu_start = args.pid.and_then(|pid| procfs::times(pid).ok());
    let start = Instant::now();
    let end = start + args.hold;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        driver
            .turn(&mut idle, (end - now).min(Duration::from_millis(100)))
            .map_err(LoadError::EventLoop)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let rss_end = args.pid.map(rss).transpose()?;
    let server_cpu = match (args.pid, cpu_start) {
        (Some(pid), Some(c0)) => procfs::times(pid)
            .ok()
            .map(|c1| ServerCpu::between(c0, c1, seconds)),
        _ => None,
    };
    let held = driver.live();
    driver.close_all(&mut idle);
    let close_deadline = Instant::now() + CLOSE_WAIT + Duration::from_millis(100);
    while !driver.finished() && Instant::now() < close_deadline {
        driver
            .turn(&mut idle, Duration::from_millis(20))
            .map_err(LoadError::EventLoop)?;
    }
    let rss_kib = match (rss_before, rss_open, rss_end) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    Ok(IdleReport {
        conns: ConnCounts {
            opened: driver.opened(),
            failed: driver.failed(),
        },
        held,
        seconds,
        rss_kib,
        server_cpu,
        errors: idle.errors,
    })
}
