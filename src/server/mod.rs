//! The event loop: one mio `Poll`, a listener, and the hub's connections.
//!
//! A turn: poll (timeout = the timer wheel's next expiration); serve the
//! connections the last turn could not serve at all, then this poll's
//! events (accept, read every readable socket into the one loop-wide read
//! buffer and dispatch what it decodes), then the connections that were
//! served last turn and had more; fire due timers; flush the sockets with
//! output (one write per socket per turn); then hold the buffered bytes to
//! `max_buffer_memory`.
//!
//! Fairness: a socket is read at most [`READ_BUDGET`] times a turn; once the
//! turn's fan-out work passes `max_fanout_per_turn`, decoding stops for every
//! socket until the next turn (the undecoded bytes wait in their
//! connection), and a sender that used the turn goes behind the others; the
//! flush writes point-to-point output (replies, pongs) before fan-out
//! frames, and at most 1,024 fan-out-only sockets a turn. One busy sender
//! cannot hold up a quiet client's ping by more than about a turn.
//!
//! The loop moves bytes and applies the answers of each connection's state
//! machine ([`crate::connection::State`]); handlers act through the hub.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmws_protocol::handshake::{HeadLimits, UpgradePolicy};
use gmws_protocol::{CloseCode, Limits};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::close::CloseReason;
use crate::config::{Config, IpRange};
use crate::connection::State;
use crate::error::{BindError, BindStep};
use crate::handler::Handler;
use crate::http::router::{Method, RouteError, Router};
use crate::http::{HttpRequest, Response};
use crate::hub::{millis, Hub};
use http::Route;

mod accept;
mod dispatch;
pub(crate) mod http;
mod read;
mod timers;
mod write;

pub(crate) use dispatch::notify_closed;

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// Room before the read area for carried-over input (a partial frame header
/// or control frame is at most 139 bytes).
const RESERVE: usize = 256;
/// Bytes read per `read` call: room for a 64 KiB message with its header in
/// one read, so it decodes in place.
const READ_CHUNK: usize = 256 * 1024;
/// Reads per socket per turn before it is requeued (1 MiB).
const READ_BUDGET: u32 = 4;

/// Stops a running [`Server`] from another thread (or a signal handler thread).
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Ask the server to shut down: it stops accepting, closes every socket with
    /// 1001 and returns from `run` within `close_timeout`.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::error!("shutdown: cannot wake the loop: {e}");
        }
    }
}

/// A WebSocket server: the event loop, its hub, and the application's handler.
pub struct Server<H: Handler> {
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    hub: Hub,
    handler: H,
    router: Router<Route>,
    config: Config,
    limits: Limits,
    head_limits: HeadLimits,
    policy: UpgradePolicy,
    /// Peers not held to `max_connections_per_ip`.
    per_ip_exempt: Vec<IpRange>,
    read_buf: Vec<u8>,
    /// Connections to serve first next turn (read or fan-out budget spent, or
    /// a paused HTTP connection whose responses went out).
    read_again: Vec<usize>,
    /// Connections that had input but were not served at all this turn (the
    /// fan-out budget was spent before their turn): they go before
    /// `read_again` next turn.
    starved: Vec<usize>,
    accept_paused: bool,
    last_exhaustion_log: Option<Instant>,
    start: Instant,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    stopping_since: Option<u64>,
}

impl<H: Handler> Server<H> {
    /// Validate `config`, bind the listener of `config.listen` and prepare
    /// the loop.
    ///
    /// # Errors
    ///
    /// [`BindError::Config`] when [`Config::validate`] refuses the
    /// configuration; [`BindError::Io`] with the [`BindStep`] that failed
    /// (most often [`BindStep::Listen`]: the address is in use or not ours).
    pub fn bind(config: Config, handler: H) -> Result<Server<H>, BindError> {
        config.validate()?;
        let poll = Poll::new().map_err(BindError::io(BindStep::CreatePoll))?;
        let mut listener = TcpListener::bind(config.listen)
            .map_err(BindError::io(BindStep::Listen(config.listen)))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(BindError::io(BindStep::Register))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(BindError::io(BindStep::CreateWaker))?,
        );
        let local_addr = listener
            .local_addr()
            .map_err(BindError::io(BindStep::LocalAddr))?;
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            hub: Hub::new(Arc::new(config.clone())),
            router: http::builtin_router(),
            handler,
            limits: config.frame_limits(),
            head_limits: config.head_limits(),
            policy: config.upgrade_policy(),
            per_ip_exempt: config.per_ip_exempt_ranges(),
            config,
            read_buf: vec![0; RESERVE + READ_CHUNK],
            read_again: Vec::new(),
            starved: Vec::new(),
            accept_paused: false,
            last_exhaustion_log: None,
            start: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            stopping_since: None,
        })
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops this server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: Arc::clone(&self.stop),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Add an HTTP route: `f` answers `method` requests to `pattern` (segments
    /// like `:name` capture, see [`crate::http::router`]). User routes beside
    /// the built-in ones; a pattern already taken is an error.
    pub fn route(
        &mut self,
        method: Method,
        pattern: &str,
        f: impl FnMut(&mut Hub, &HttpRequest) -> Response + Send + 'static,
    ) -> Result<(), RouteError> {
        self.router.add(method, pattern, Route::User(Box::new(f)))
    }

    /// The hub, to act before `run` (add timers, …).
    pub fn hub_mut(&mut self) -> &mut Hub {
        &mut self.hub
    }

    /// The hub (for inspection between turns, e.g. in tests).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Run until shut down. Only failures of the poll itself end it with an error.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut fired = Vec::new();
        loop {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.hub.now = millis(self.start.elapsed());
            self.hub.turn_fanout = 0;
            self.serve_deferred(true);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(key) => {
                        // After the peer's FIN (or an error) no new edge will
                        // come: read on to EOF.
                        let closed = event.is_read_closed() || event.is_error();
                        if event.is_readable() || closed {
                            self.ready(key, closed);
                        }
                        if event.is_writable() {
                            self.flush(key);
                        }
                    }
                }
            }
            self.serve_deferred(false);
            self.hub.timers.poll(self.hub.now, &mut fired);
            for (timer, event) in fired.drain(..) {
                self.fire(timer, event);
            }
            self.flush_dirty();
            self.enforce_memory();
            if self.stop.load(Ordering::Relaxed) && self.shutdown_step() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty()
            || !self.starved.is_empty()
            || !self.hub.dirty.is_empty()
            || !self.hub.dirty_fanout.is_empty()
        {
            return Some(Duration::ZERO);
        }
        let now = millis(self.start.elapsed());
        let mut next = self.hub.timers.next_expiration();
        if self.stopping_since.is_some() {
            next = Some(next.map_or(now + 50, |n| n.min(now + 50)));
        }
        next.map(|at| Duration::from_millis(at.saturating_sub(now)))
    }

    /// One step of a graceful shutdown; true when the loop may return.
    fn shutdown_step(&mut self) -> bool {
        let now = self.hub.now;
        if self.stopping_since.is_none() {
            log::info!(
                "shutting down: closing {} sockets",
                self.hub.online_sockets()
            );
            self.stopping_since = Some(now);
            self.listener = None; // stop accepting: the port is free at once
            let keys: Vec<usize> = self.hub.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                match self.hub.conns.get(key).map(|c| c.state) {
                    Some(State::Open) => {
                        self.hub.begin_close(
                            key,
                            CloseCode::GOING_AWAY,
                            "server shutdown",
                            CloseReason::Shutdown,
                        );
                        self.hub.finish(key);
                    }
                    Some(State::Http { .. }) => self.drop_conn(key),
                    _ => {}
                }
            }
            self.notify_closed();
            self.flush_dirty();
        }
        let deadline = self.stopping_since.unwrap_or(now) + millis(self.config.close_timeout);
        self.hub.conns.is_empty() || now >= deadline
    }

    /// Serve connections deferred by earlier turns, from `starved` (they got
    /// nothing) or `read_again` (they got a share and had more), in the order
    /// they were deferred. Once the turn's fan-out budget is spent, the rest
    /// keep their place at the head of their list.
    ///
    /// A turn serves the starved first, then new events, then the senders
    /// that already had a share: one that uses whole turns goes behind every
    /// client that waited or just arrived, so a quiet client's message is
    /// served in the turn after it arrives.
    fn serve_deferred(&mut self, starved: bool) {
        let list = if starved {
            &mut self.starved
        } else {
            &mut self.read_again
        };
        let waiting = std::mem::take(list);
        let mut served = 0;
        for &key in &waiting {
            if self.hub.turn_exhausted() {
                break;
            }
            served += 1;
            if let Some(conn) = self.hub.conns.get_mut(key) {
                conn.read_again = false;
                self.ready(key, true);
            }
        }
        let list = if starved {
            &mut self.starved
        } else {
            &mut self.read_again
        };
        let deferred_now = std::mem::replace(list, waiting);
        list.drain(..served);
        list.extend(deferred_now);
    }

    /// Queue slot `key`, which got nothing this turn, to go first next turn.
    fn starve(&mut self, key: usize) {
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if !conn.read_again {
                conn.read_again = true;
                self.starved.push(key);
            }
        }
    }

    /// Queue slot `key` to be served first next turn.
    fn defer(&mut self, key: usize) {
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if !conn.read_again {
                conn.read_again = true;
                self.read_again.push(key);
            }
        }
    }

    /// Close the TCP connection now and forget it.
    fn drop_conn(&mut self, key: usize) {
        // on_close first, while the socket's data can still be read.
        self.hub.leave_open(key, CloseReason::ConnectionLost);
        self.notify_closed();
        if self.hub.remove(key).is_some() {
            self.resume_accept();
        }
    }

    /// Run `on_close` for every socket that stopped being online.
    fn notify_closed(&mut self) {
        notify_closed(&mut self.hub, &mut self.handler);
    }
}
