//! One event loop: a mio `Poll`, its connections (in its hub), its handler.
//!
//! A turn: poll (timeout = the timer wheel's next expiration); apply what
//! other loops and threads posted (the inbox); serve the
//! connections the last turn could not serve at all, then this poll's
//! events (accept, read every readable socket into the one loop-wide read
//! buffer and dispatch what it decodes), then the connections that were
//! served last turn and had more; fire due timers; flush the sockets with
//! output (one write per socket per turn); then hold the buffered bytes to
//! `max_buffer_memory`, and publish this loop's numbers for the process.
//!
//! Fairness: a socket is read at most `READ_BUDGET` (4) times a turn; once the
//! turn's fan-out work passes `max_fanout_per_turn`, decoding stops for every
//! socket until the next turn (the undecoded bytes wait in their
//! connection), and a sender that used the turn goes behind the others; the
//! flush writes point-to-point output (replies, pongs) before fan-out
//! frames, and a turn makes at most `max_fanout_writes_per_turn` (1,024)
//! fan-out writes: a fan-out's idle recipients past it are written in later
//! turns, from the deferred fan-out (`hub/deferred.rs`). One busy sender
//! cannot hold up a quiet client's ping by more than about a turn.
//!
//! The loop moves bytes and applies the answers of each connection's state
//! machine ([`crate::connection::State`]); handlers act through the hub.

use std::io::{self, ErrorKind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmws_protocol::deflate::Inflater;
use gmws_protocol::handshake::{HeadLimits, UpgradePolicy};
use gmws_protocol::{CloseCode, Limits};
use mio::net::TcpListener;
use mio::{Events, Poll, Token};

use super::admission::Admission;
use super::dispatch::notify_closed;
use super::http::{self, Route};
use super::{UserRouteSpec, LISTENER, READ_CHUNK, RESERVE, WAKER};
use crate::bus::{Bus, Command};
use crate::close::CloseReason;
use crate::config::Config;
use crate::connection::State;
use crate::handler::Handler;
use crate::http::router::{RouteError, Router};
use crate::hub::{millis, Hub};
use crate::tls::TlsConfig;

/// What a loop is made on: its poll (where `WAKER` is registered), the
/// listener if it accepts itself, its inbox, its index.
pub(crate) struct Seat {
    pub poll: Poll,
    pub listener: Option<TcpListener>,
    pub inbox: Receiver<Command>,
    pub index: u8,
    pub tls: Option<Arc<TlsConfig>>,
}

/// One event loop: its poll, its sockets (in its hub), its handler.
pub(crate) struct Loop<H: Handler> {
    pub(super) poll: Poll,
    /// The listener, when this loop accepts itself (one loop); with several
    /// loops the acceptor thread hands connections over through the inbox.
    pub(super) listener: Option<TcpListener>,
    /// This loop's commands from the bus.
    pub(super) inbox: Receiver<Command>,
    pub(crate) hub: Hub,
    pub(super) handler: H,
    pub(super) router: Router<Route>,
    pub(super) config: Config,
    pub(super) limits: Limits,
    pub(super) head_limits: HeadLimits,
    pub(super) policy: UpgradePolicy,
    /// The process-wide connection limits (checked here only when this
    /// loop accepts its own connections: one loop, no acceptor).
    pub(super) admission: Admission,
    pub(super) read_buf: Vec<u8>,
    /// Inflates compressed messages of every socket of this loop (clients
    /// keep no context between messages: `client_no_context_takeover`).
    pub(super) inflater: Inflater,
    /// The port's TLS settings: every connection is TLS when set.
    pub(super) tls: Option<Arc<TlsConfig>>,
    /// Connections to serve first next turn (read or fan-out budget spent, or
    /// a paused HTTP connection whose responses went out).
    pub(super) read_again: Vec<usize>,
    /// Connections that had input but were not served at all this turn (the
    /// fan-out budget was spent before their turn): they go before
    /// `read_again` next turn.
    pub(super) starved: Vec<usize>,
    pub(super) accept_paused: bool,
    pub(super) last_exhaustion_log: Option<Instant>,
    pub(super) start: Instant,
    pub(super) stopping_since: Option<u64>,
    /// HTTP requests waiting for the cluster's answer, by slot (their
    /// connections read nothing meanwhile).
    pub(super) parked: std::collections::HashMap<usize, http::Parked>,
    /// The bus clock (ms) when stats were last published.
    pub(super) published_at: u64,
    /// The bus clock (ms) at the start of this turn.
    pub(super) turn_ms: u64,
    /// This turn's numbers were not published (one was, this millisecond):
    /// a later turn of the same burst, or the loop before it sleeps,
    /// publishes them.
    pub(super) publish_pending: bool,
}

impl<H: Handler> Loop<H> {
    /// The loop of `seat` on `bus`, with `handler` and the user `routes`.
    pub(crate) fn new(
        config: Arc<Config>,
        seat: Seat,
        bus: Arc<Bus>,
        handler: H,
        routes: &[UserRouteSpec],
    ) -> Loop<H> {
        let Seat {
            poll,
            listener,
            inbox,
            index,
            tls,
        } = seat;
        let mut router = http::builtin_router();
        for (method, pattern, route) in routes {
            // Checked when the route was added to the first loop.
            let _ = router.add(*method, pattern, Route::User(Arc::clone(route)));
        }
        Loop {
            poll,
            listener,
            inbox,
            hub: {
                let mut hub = Hub::new(Arc::clone(&config), bus, index);
                hub.defer_fanout = true;
                hub
            },
            router,
            handler,
            limits: config.frame_limits(),
            head_limits: config.head_limits(),
            policy: config.upgrade_policy(),
            admission: Admission::new(&config),
            config: Config::clone(&config),
            read_buf: vec![0; RESERVE + READ_CHUNK],
            inflater: Inflater::new(),
            tls,
            read_again: Vec::new(),
            starved: Vec::new(),
            accept_paused: false,
            last_exhaustion_log: None,
            start: Instant::now(),
            stopping_since: None,
            parked: std::collections::HashMap::new(),
            published_at: u64::MAX,
            turn_ms: 0,
            publish_pending: false,
        }
    }

    /// Add a user route to this loop's router.
    pub(crate) fn route(&mut self, spec: &UserRouteSpec) -> Result<(), RouteError> {
        self.router
            .add(spec.0, &spec.1, Route::User(Arc::clone(&spec.2)))
    }

    /// Run until shut down. Only failures of the poll itself end it with an error.
    pub(crate) fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut fired = Vec::new();
        loop {
            let timeout = self.poll_timeout();
            if timeout != Some(Duration::ZERO) {
                // About to sleep: the numbers a busy turn held back go out
                // now, not on a 1 ms wake-up (a finite epoll timeout arms a
                // timer, which cost ~4 µs per sleep on a VM: measured).
                self.publish_held();
            }
            self.mark_busy(false);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            // One clock reading per turn, for the hub's clock and the bus's.
            let turn_start = std::time::Instant::now();
            self.hub.now = millis(turn_start.saturating_duration_since(self.start));
            self.turn_ms = self.hub.bus.ms_at(turn_start);
            self.mark_busy(true);
            self.hub.turn_fanout = 0;
            self.hub.fanout_writes_left = self.hub.settings.fanout_writes_per_turn;
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
            self.serve_inbox();
            self.serve_deferred(false);
            self.hub.timers.poll(self.hub.now, &mut fired);
            for (timer, event) in fired.drain(..) {
                self.fire(timer, event);
            }
            self.expire_parked();
            self.flush_dirty();
            self.enforce_memory();
            self.publish();
            if self.hub.bus.stop.load(Ordering::Relaxed) && self.shutdown_step() {
                return Ok(());
            }
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty()
            || !self.starved.is_empty()
            || self.hub.inbox_pending
            || !self.hub.dirty.is_empty()
            || !self.hub.dirty_fanout.is_empty()
            || self.hub.deferred.is_some()
        {
            return Some(Duration::ZERO);
        }
        let now = millis(self.start.elapsed());
        let mut next = self.hub.timers.next_expiration();
        if let Some(at) = self.parked_deadline() {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        if self.stopping_since.is_some() {
            next = Some(next.map_or(now + 50, |n| n.min(now + 50)));
        }
        next.map(|at| Duration::from_millis(at.saturating_sub(now)))
    }

    /// One step of a graceful shutdown; true when the loop may return.
    pub(super) fn shutdown_step(&mut self) -> bool {
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
    pub(super) fn serve_deferred(&mut self, starved: bool) {
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
    pub(super) fn starve(&mut self, key: usize) {
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if !conn.read_again {
                conn.read_again = true;
                self.starved.push(key);
            }
        }
    }

    /// Queue slot `key` to be served first next turn.
    pub(super) fn defer(&mut self, key: usize) {
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if !conn.read_again {
                conn.read_again = true;
                self.read_again.push(key);
            }
        }
    }

    /// Close the TCP connection now and forget it.
    pub(super) fn drop_conn(&mut self, key: usize) {
        // on_close first, while the socket's data can still be read.
        self.hub.leave_open(key, CloseReason::ConnectionLost);
        self.notify_closed();
        if self.hub.remove(key).is_some() {
            self.resume_accept();
        }
    }

    /// Run `on_close` for every socket that stopped being online.
    pub(super) fn notify_closed(&mut self) {
        notify_closed(&mut self.hub, &mut self.handler);
    }
}
