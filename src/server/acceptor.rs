//! The acceptor thread (several loops only): accepts every connection and
//! hands it to a loop, in turn, passing over loops that are stalled in a
//! turn (a handler that blocks). Its own poll; it never runs user code, so
//! it is never the one stalled.

use std::io::{self, ErrorKind};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};

use super::accept::canonical_ip;
use super::admission::Admission;
use super::{LISTENER, STALL_MS, WAKER};
use crate::bus::{Bus, Command};

/// Wait before retrying `accept` after running out of file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

pub(super) struct Acceptor {
    poll: Poll,
    listener: TcpListener,
    waker: Arc<Waker>,
    bus: Arc<Bus>,
    admission: Admission,
    /// The loop to try first for the next connection.
    next: usize,
    last_exhaustion_log: Option<Instant>,
}

impl Acceptor {
    pub(super) fn new(
        mut listener: TcpListener,
        bus: Arc<Bus>,
        admission: Admission,
    ) -> io::Result<Acceptor> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Acceptor {
            poll,
            listener,
            waker,
            bus,
            admission,
            next: 0,
            last_exhaustion_log: None,
        })
    }

    /// Wakes the acceptor (for shutdown).
    pub(super) fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Accept until shutdown; the listener closes when this returns, so the
    /// port is free at once.
    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut paused = false;
        loop {
            if self.bus.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let timeout = paused.then_some(ACCEPT_RETRY);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.bus.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            paused = self.accept_all();
        }
    }

    /// Accept until `WouldBlock`; true when out of descriptors (retry later).
    fn accept_all(&mut self) -> bool {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.hand(stream, addr),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12)) => {
                    let now = Instant::now();
                    if self
                        .last_exhaustion_log
                        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
                    {
                        log::warn!("accept: {e}; pausing accepts");
                        self.last_exhaustion_log = Some(now);
                    }
                    return true;
                }
                // ECONNABORTED and friends concern one pending connection only.
                Err(e) => log::debug!("accept: {e}"),
            }
        }
    }

    /// Admit a connection (see [`Admission`]) and hand it to the next loop
    /// in turn that is not stalled (if every loop is, to the next in turn
    /// anyway); a refused one goes to that loop too, to be answered there.
    fn hand(&mut self, stream: mio::net::TcpStream, addr: std::net::SocketAddr) {
        let loops = self.bus.loops();
        let now = self.bus.now_ms();
        let stalled = |i: usize| {
            let busy_since = self.bus.links[i].busy_since.load(Ordering::Relaxed);
            busy_since != 0 && now.saturating_sub(busy_since) > STALL_MS
        };
        let pick = (0..loops)
            .map(|k| (self.next + k) % loops)
            .find(|&i| !stalled(i))
            .unwrap_or(self.next % loops);
        self.next = pick + 1;
        // IPv4 peers on a dual-stack listener arrive IPv4-mapped: count them
        // (and exempt them) as the IPv4 addresses they are.
        let addr = std::net::SocketAddr::new(canonical_ip(addr.ip()), addr.port());
        let admitted = self.admission.admit(&self.bus, addr);
        let command = match admitted {
            Ok(()) => Command::Adopt(stream, addr),
            Err(why) => Command::Refuse(stream, addr, why),
        };
        if let Err(e) = self.bus.post(pick, command) {
            if admitted.is_ok() {
                Admission::release(&self.bus, addr);
            }
            log::warn!("handing a connection from {addr} to loop {pick}: {e}; dropped");
        }
    }
}
