//! The event loop: one mio `Poll`, a listener, and the hub's connections.
//!
//! A turn: poll (timeout = the timer wheel's next expiration), accept, read
//! every readable socket into the one loop-wide read buffer and dispatch what it
//! decodes, fire due timers, then flush every socket with output (one write per
//! socket per turn). Readiness is edge-triggered: reads and accepts drain until
//! `WouldBlock`, except that a socket past its read budget is requeued for the
//! next turn so one client cannot starve the rest.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmws_protocol::decoder::{Decoder, Message, Role};
use gmws_protocol::encoder::{encode_close, encode_empty_close};
use gmws_protocol::handshake::{
    parse_request, validate_upgrade, write_accept_response, write_error_response, HeadLimits,
    UpgradePolicy,
};
use gmws_protocol::{CloseCode, CloseState, HandshakeError, Limits, OpCode};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::Config;
use crate::connection::{Connection, Phase};
use crate::handler::{CloseReason, Handler};
use crate::http::router::{Method, RouteError, Router};
use crate::http::serve::{self, HttpOutcome, Route};
use crate::http::{HttpRequest, Response};
use crate::hub::{millis, Hub, TimerEvent};
use crate::socket_id::SocketId;

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
/// Heartbeat deadlines are multiples of this (ms), to batch pings per turn.
const HEARTBEAT_SLOT_MS: u64 = 50;
/// After a partial write, the written prefix of a socket's queue is dropped
/// once it reaches this size, so a queue's memory follows what is unsent
/// (bounded by `max_backpressure`), not everything ever queued.
const COMPACT_AFTER: usize = 64 * 1024;
/// Wait before retrying `accept` after running out of file descriptors.
const ACCEPT_RETRY_MS: u64 = 100;

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
            crate::error!("shutdown: cannot wake the loop: {e}");
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
    read_buf: Vec<u8>,
    read_again: Vec<usize>,
    accept_paused: bool,
    /// Accepting stopped at `max_pending_handshakes`; resumes below it.
    backlogged: bool,
    last_exhaustion_log: Option<Instant>,
    start: Instant,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    stopping_since: Option<u64>,
}

impl<H: Handler> Server<H> {
    /// Bind the listener of `config.listen` and prepare the loop.
    pub fn bind(config: Config, handler: H) -> io::Result<Server<H>> {
        config
            .validate()
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listener.local_addr()?;
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            hub: Hub::new(Arc::new(config.clone())),
            router: serve::builtin_router(),
            handler,
            limits: config.frame_limits(),
            head_limits: config.head_limits(),
            policy: config.upgrade_policy(),
            config,
            read_buf: vec![0; RESERVE + READ_CHUNK],
            read_again: Vec::new(),
            accept_paused: false,
            backlogged: false,
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
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(key) => {
                        let closed = event.is_read_closed() || event.is_error();
                        if event.is_readable() || closed {
                            self.read_conn(key, closed);
                        }
                        if event.is_writable() {
                            self.flush(key);
                        }
                    }
                }
            }
            for key in std::mem::take(&mut self.read_again) {
                if let Some(conn) = self.hub.conns.get_mut(key) {
                    conn.read_again = false;
                    self.read_conn(key, true);
                }
            }
            self.hub.timers.poll(self.hub.now, &mut fired);
            for (_, event) in fired.drain(..) {
                self.fire(event);
            }
            self.flush_dirty();
            if self.backlogged && self.hub.pending_http < self.config.max_pending_handshakes {
                self.backlogged = false;
                self.accept_all();
            }
            if self.stop.load(Ordering::Relaxed) && self.shutdown_step() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty() || !self.hub.dirty.is_empty() {
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
            crate::info!(
                "shutting down: closing {} sockets",
                self.hub.online_sockets()
            );
            self.stopping_since = Some(now);
            self.listener = None; // stop accepting: the port is free at once
            let keys: Vec<usize> = self.hub.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                match self.hub.conns.get(key).map(|c| c.phase) {
                    Some(Phase::Open) => {
                        self.hub.begin_close(
                            key,
                            CloseCode::GOING_AWAY,
                            "server shutdown",
                            CloseReason::Shutdown,
                        );
                        if let Some(conn) = self.hub.conns.get_mut(key) {
                            conn.shutdown_after_flush = true;
                        }
                    }
                    Some(Phase::Http) => self.drop_conn(key),
                    _ => {}
                }
            }
            self.notify_closed();
            self.flush_dirty();
        }
        let deadline = self.stopping_since.unwrap_or(now) + millis(self.config.close_timeout);
        self.hub.conns.is_empty() || now >= deadline
    }

    fn accept_all(&mut self) {
        while !self.accept_paused {
            if self.hub.pending_http >= self.config.max_pending_handshakes {
                // Leave the rest in the kernel's backlog until a handshake ends.
                self.backlogged = true;
                return;
            }
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, _addr)) => self.add_conn(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    let now = Instant::now();
                    if self
                        .last_exhaustion_log
                        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
                    {
                        crate::warn!(
                            "accept: {e}; pausing accepts ({} connections held)",
                            self.hub.conns.len()
                        );
                        self.last_exhaustion_log = Some(now);
                    }
                    self.pause_accept();
                    return;
                }
                // ECONNABORTED and friends concern one pending connection only.
                Err(e) => crate::debug!("accept: {e}"),
            }
        }
    }

    fn pause_accept(&mut self) {
        if !self.accept_paused {
            self.accept_paused = true;
            self.hub
                .timers
                .insert(self.hub.now + ACCEPT_RETRY_MS, TimerEvent::AcceptRetry);
        }
    }

    fn resume_accept(&mut self) {
        if self.accept_paused {
            self.accept_paused = false;
            self.accept_all();
        }
    }

    fn add_conn(&mut self, mut stream: TcpStream) {
        self.hub.metrics.connections_accepted += 1;
        if self.hub.conns.len() >= self.config.max_connections {
            self.hub.metrics.connections_refused += 1;
            crate::warn!(
                "max_connections ({}) reached: refusing a connection",
                self.config.max_connections
            );
            let _ = stream.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        let _ = stream.set_nodelay(true);
        let entry = self.hub.conns.vacant_entry();
        let key = entry.key();
        if key >= WAKER.0 || u32::try_from(key).is_err() {
            return;
        }
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
        {
            crate::warn!("register: {e}");
            return;
        }
        let generation = self.hub.next_generation();
        let id = SocketId::new(key, generation);
        self.hub.pending_http += 1;
        self.hub.conns.insert(Connection::new(
            stream,
            id,
            Decoder::new(Role::Server, self.limits),
        ));
        self.hub
            .arm_deadline(key, millis(self.config.handshake_timeout));
    }

    /// Read from slot `key` until `WouldBlock`, EOF, or the read budget.
    ///
    /// A read that returns less than the buffer emptied the socket's receive
    /// queue at that moment, and any byte arriving later raises a new edge
    /// event (epoll queues one per arrival, not per empty-to-ready change), so
    /// the loop stops there and saves the `read` that would only answer
    /// `WouldBlock`. Unless `drain`: when the event already reported the peer's
    /// FIN (or an error), no new event will come for it, so read until EOF.
    fn read_conn(&mut self, key: usize, drain: bool) {
        for _ in 0..READ_BUDGET {
            let Some(conn) = self.hub.conns.get_mut(key) else {
                return;
            };
            match conn.stream.read(&mut self.read_buf[RESERVE..]) {
                Ok(0) => {
                    self.on_eof(key);
                    return;
                }
                Ok(n) => {
                    self.on_data(key, n);
                    if n < READ_CHUNK && !drain {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    crate::debug!("socket {}: read: {e}", conn.id);
                    self.drop_conn(key);
                    return;
                }
            }
        }
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if !conn.read_again {
                conn.read_again = true;
                self.read_again.push(key);
            }
        }
    }

    /// `n` new bytes are in `read_buf[RESERVE..]`.
    fn on_data(&mut self, key: usize, n: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        if conn.discard_input {
            return;
        }
        match conn.phase {
            Phase::Http => {
                conn.input
                    .extend_from_slice(&self.read_buf[RESERVE..RESERVE + n]);
                self.process_http(key);
            }
            Phase::Open | Phase::Closing if conn.close.can_read() => {
                let carried = conn.input.len();
                if carried <= RESERVE {
                    // Put the carried bytes right before the new ones: decode in place.
                    let start = RESERVE - carried;
                    self.read_buf[start..RESERVE].copy_from_slice(&conn.input);
                    conn.input.clear();
                    let end = RESERVE + n;
                    let consumed = dispatch_frames(
                        &mut self.hub,
                        &mut self.handler,
                        key,
                        &mut self.read_buf[start..end],
                    );
                    self.keep_rest(key, start + consumed, end);
                } else {
                    conn.input
                        .extend_from_slice(&self.read_buf[RESERVE..RESERVE + n]);
                    self.process_carried_frames(key);
                }
            }
            _ => {}
        }
        self.notify_closed();
    }

    /// Store `read_buf[from..to]` as slot `key`'s carried input.
    fn keep_rest(&mut self, key: usize, from: usize, to: usize) {
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if from < to && !conn.discard_input {
                conn.input.extend_from_slice(&self.read_buf[from..to]);
            } else if conn.input.capacity() > 0 && conn.input.is_empty() {
                conn.input = Vec::new();
            }
        }
    }

    /// Decode frames from the connection's own carried input (after a handshake
    /// with pipelined frames, or a large carry).
    fn process_carried_frames(&mut self, key: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        let mut data = std::mem::take(&mut conn.input);
        let consumed = dispatch_frames(&mut self.hub, &mut self.handler, key, &mut data);
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if !conn.discard_input && consumed < data.len() {
                data.drain(..consumed);
                data.shrink_to_fit();
                conn.input = data;
            }
        }
    }

    fn process_http(&mut self, key: usize) {
        loop {
            let Some(conn) = self.hub.conns.get_mut(key) else {
                return;
            };
            if conn.phase != Phase::Http || conn.discard_input || conn.input.is_empty() {
                return;
            }
            let (request, head_len) = match parse_request(&conn.input, &self.head_limits) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return,
                Err(e) => return self.refuse(key, e),
            };
            if request.is_websocket_upgrade() {
                match validate_upgrade(&request, &self.policy) {
                    Ok(accept) => {
                        conn.input.drain(..head_len);
                        if conn.input.is_empty() {
                            // An open socket keeps no buffer of the request head.
                            conn.input = Vec::new();
                        }
                        write_accept_response(&mut conn.output, &accept);
                        self.open(key);
                    }
                    Err(e) => self.refuse(key, e),
                }
                return;
            }
            match serve::handle(
                &mut self.hub,
                &mut self.handler,
                &mut self.router,
                key,
                &request,
                head_len,
            ) {
                HttpOutcome::NeedMore => return,
                HttpOutcome::Done => {}
            }
            self.hub
                .arm_deadline(key, millis(self.config.http_idle_timeout));
        }
    }

    /// The handshake succeeded and the 101 is queued: the socket is open.
    fn open(&mut self, key: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        let id = conn.id;
        if let Some(t) = conn.deadline.take() {
            self.hub.timers.cancel(t);
        }
        self.hub.enter_open(key);
        self.hub.metrics.handshakes += 1;
        self.hub.mark_dirty(key);
        self.arm_heartbeat(key, true);
        let auth_ms = millis(self.config.auth_timeout);
        if auth_ms > 0 {
            let timer = self
                .hub
                .timers
                .insert(self.hub.now + auth_ms, TimerEvent::Auth(id));
            if let Some(conn) = self.hub.conns.get_mut(key) {
                conn.auth_deadline = Some(timer);
            }
        }
        crate::debug!("socket {id}: open");
        call_handler(&mut self.hub, &mut self.handler, id, |h, hub| {
            h.on_connect(hub, id)
        });
        if self.hub.conn(id).is_some_and(|c| !c.input.is_empty()) {
            self.process_carried_frames(key);
        }
    }

    /// Refuse a request head: error response, then close.
    fn refuse(&mut self, key: usize, err: HandshakeError) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        crate::warn!("socket {}: refused: {} {err}", conn.id, err.status());
        self.hub.metrics.handshake_failures += 1;
        conn.input = Vec::new();
        write_error_response(&mut conn.output, err);
        conn.discard_input = true;
        conn.shutdown_after_flush = true;
        self.hub.mark_dirty(key);
        self.hub
            .arm_deadline(key, millis(self.config.close_timeout));
    }

    fn arm_heartbeat(&mut self, key: usize, first: bool) {
        let interval = millis(self.config.ping_interval);
        if interval == 0 {
            return;
        }
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        // The first ping lands at a point of the interval drawn from the id, so
        // sockets that connected together do not ping together.
        let delay = if first {
            interval + spread(conn.id.as_u64()) % interval
        } else {
            interval
        };
        let id = conn.id;
        // Deadlines are rounded up to HEARTBEAT_SLOT_MS: the sockets of a slot
        // are pinged in one loop turn and their pongs come back together, so
        // the loop wakes once per slot rather than twice per socket.
        let due = (self.hub.now + delay).div_ceil(HEARTBEAT_SLOT_MS) * HEARTBEAT_SLOT_MS;
        let timer = self.hub.timers.insert(due, TimerEvent::Heartbeat(id));
        if let Some(conn) = self.hub.conns.get_mut(key) {
            conn.heartbeat = Some(timer);
        }
    }

    fn on_eof(&mut self, key: usize) {
        if let Some(conn) = self.hub.conns.get(key) {
            crate::debug!("socket {}: EOF in {:?}", conn.id, conn.phase);
        }
        self.drop_conn(key);
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

    fn fire(&mut self, event: TimerEvent) {
        match event {
            TimerEvent::AcceptRetry => {
                self.accept_paused = false;
                self.accept_all();
            }
            TimerEvent::Deadline(id) => {
                let Some(conn) = self.hub.conn_mut(id) else {
                    return;
                };
                conn.deadline = None;
                match conn.phase {
                    Phase::Http if conn.output.is_empty() => {
                        crate::warn!("socket {id}: request head not complete in time; closing");
                    }
                    _ => crate::debug!("socket {id}: close timeout in {:?}", conn.phase),
                }
                self.drop_conn(id.slot());
            }
            TimerEvent::Heartbeat(id) => self.heartbeat(id),
            TimerEvent::Auth(id) => {
                let Some(conn) = self.hub.conn_mut(id) else {
                    return;
                };
                conn.auth_deadline = None;
                if conn.is_open() && self.hub.client_id(id).is_none() {
                    crate::warn!("socket {id}: not bound within auth_timeout; closing 1008");
                    self.hub.begin_close(
                        id.slot(),
                        CloseCode::POLICY,
                        "auth timeout",
                        CloseReason::AuthTimeout,
                    );
                    self.notify_closed();
                }
            }
            TimerEvent::User(handle) => {
                if let Some(socket) = self.hub.user_timer_fired(handle) {
                    let (hub, handler) = (&mut self.hub, &mut self.handler);
                    if catch_unwind(AssertUnwindSafe(|| handler.on_timer(hub, handle, socket)))
                        .is_err()
                    {
                        hub.metrics.handler_panics += 1;
                        crate::error!("on_timer panicked");
                        if let Some(id) = socket.filter(|id| hub.is_socket_online(*id)) {
                            hub.begin_close(
                                id.slot(),
                                CloseCode::INTERNAL,
                                "internal error",
                                CloseReason::HandlerPanic,
                            );
                        }
                    }
                    self.notify_closed();
                }
            }
        }
    }

    fn heartbeat(&mut self, id: SocketId) {
        let limit = self.config.ping_timeout_count;
        let Some(conn) = self.hub.conn_mut(id) else {
            return;
        };
        conn.heartbeat = None;
        if !conn.is_open() {
            return;
        }
        if conn.missed_pongs >= limit {
            crate::warn!("socket {id}: {limit} pings unanswered; closing");
            conn.shutdown_after_flush = true;
            self.hub.begin_close(
                id.slot(),
                CloseCode::GOING_AWAY,
                "heartbeat timeout",
                CloseReason::HeartbeatTimeout,
            );
            self.notify_closed();
            return;
        }
        conn.missed_pongs += 1;
        self.hub.queue_frame(id.slot(), OpCode::Ping, b"");
        self.arm_heartbeat(id.slot(), false);
        self.notify_closed();
    }

    fn flush_dirty(&mut self) {
        for key in std::mem::take(&mut self.hub.dirty) {
            self.flush(key);
        }
    }

    /// Write slot `key`'s output once; manage WRITABLE interest and the TCP close.
    fn flush(&mut self, key: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        conn.dirty = false;
        if conn.queued() > 0 {
            match conn.stream.write(&conn.output[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => {
                    crate::debug!("socket {}: write: {e}", conn.id);
                    return self.drop_conn(key);
                }
            }
        }
        let registry = self.poll.registry();
        if conn.queued() > 0 && conn.written >= COMPACT_AFTER {
            conn.output.drain(..conn.written);
            conn.written = 0;
        }
        if conn.queued() > 0 {
            if !conn.writable_interest {
                conn.writable_interest = true;
                let _ = registry.reregister(
                    &mut conn.stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                );
            }
            return;
        }
        let flushed = std::mem::take(&mut conn.output);
        conn.written = 0;
        if conn.writable_interest {
            conn.writable_interest = false;
            let _ = registry.reregister(&mut conn.stream, Token(key), Interest::READABLE);
        }
        if conn.shutdown_after_flush && conn.phase != Phase::Draining {
            if conn.phase == Phase::Http {
                self.hub.pending_http -= 1;
            }
            conn.phase = Phase::Draining;
            conn.discard_input = true;
            conn.input = Vec::new();
            let _ = conn.stream.shutdown(Shutdown::Write);
            if conn.deadline.is_none() {
                self.hub
                    .arm_deadline(key, millis(self.config.close_timeout));
            }
        }
        if flushed.capacity() > 0 {
            self.hub.recycle(flushed);
        }
    }

    /// Run `on_close` for every socket that stopped being online.
    fn notify_closed(&mut self) {
        notify_closed(&mut self.hub, &mut self.handler);
    }
}

/// Decode and dispatch frames from `data` for slot `key`. Returns the bytes
/// consumed; the rest must be carried to the next read.
fn dispatch_frames<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    key: usize,
    data: &mut [u8],
) -> usize {
    let Some(conn) = hub.conns.get_mut(key) else {
        return data.len();
    };
    let id = conn.id;
    let limits = conn.decoder.limits();
    let mut decoder = std::mem::replace(&mut conn.decoder, Decoder::new(Role::Server, limits));
    let mut pos = 0;
    loop {
        match hub.conn(id) {
            Some(c) if !c.discard_input && c.close.can_read() => {}
            _ => break,
        }
        match decoder.decode(&mut data[pos..]) {
            Ok((n, Some(message))) => {
                pos += n;
                dispatch(hub, handler, key, id, message);
            }
            Ok((0, None)) => break,
            Ok((n, None)) => pos += n,
            Err(e) => {
                hub.fail(key, e);
                break;
            }
        }
    }
    if let Some(conn) = hub.conn_mut(id) {
        decoder.release_buffers();
        conn.decoder = decoder;
    }
    pos
}

/// Act on one decoded message.
fn dispatch<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    key: usize,
    id: SocketId,
    message: Message<'_>,
) {
    match message {
        Message::Text(text) => {
            hub.metrics.messages_in += 1;
            hub.metrics.bytes_in += text.len() as u64;
            if hub.is_socket_online(id) {
                call_handler(hub, handler, id, |h, hub| h.on_text(hub, id, text));
            }
        }
        Message::Binary(data) => {
            hub.metrics.messages_in += 1;
            hub.metrics.bytes_in += data.len() as u64;
            if hub.is_socket_online(id) {
                call_handler(hub, handler, id, |h, hub| h.on_binary(hub, id, data));
            }
        }
        Message::Ping(payload) => {
            if hub.conn(id).is_some_and(|c| c.close.can_write()) {
                hub.queue_frame(key, OpCode::Pong, payload);
            }
        }
        Message::Pong(_) => {
            if let Some(conn) = hub.conn_mut(id) {
                conn.missed_pongs = 0;
            }
        }
        Message::Close(frame) => {
            let Some(conn) = hub.conn_mut(id) else {
                return;
            };
            match conn.close {
                CloseState::Open => {
                    // Echo the peer's code (§5.5.1), then close TCP first (§7.1.1).
                    match frame {
                        Some(f) => encode_close(&mut conn.output, f.code, "", None),
                        None => encode_empty_close(&mut conn.output, None),
                    }
                    conn.close = CloseState::Closed;
                    conn.shutdown_after_flush = true;
                    hub.leave_open(key, CloseReason::ClientClose(frame.map(|f| f.code.0)));
                    hub.arm_deadline(key, hub.settings.close_timeout_ms);
                }
                CloseState::CloseSent => {
                    conn.close = CloseState::Closed;
                    conn.shutdown_after_flush = true;
                }
                _ => {}
            }
            hub.mark_dirty(key);
        }
    }
}

/// Call a handler hook, catching a panic: the socket is closed with 1011.
fn call_handler<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    id: SocketId,
    hook: impl FnOnce(&mut H, &mut Hub),
) {
    if catch_unwind(AssertUnwindSafe(|| hook(handler, hub))).is_err() {
        hub.metrics.handler_panics += 1;
        crate::error!("socket {id}: handler panicked; closing the socket with 1011");
        if hub.is_socket_online(id) {
            hub.begin_close(
                id.slot(),
                CloseCode::INTERNAL,
                "internal error",
                CloseReason::HandlerPanic,
            );
        }
    }
}

/// Run `on_close` for sockets that left the online set, until none is left
/// (an `on_close` may close other sockets).
pub(crate) fn notify_closed<H: Handler>(hub: &mut Hub, handler: &mut H) {
    while !hub.closed.is_empty() {
        for (id, reason) in std::mem::take(&mut hub.closed) {
            crate::debug!("socket {id}: closed ({})", reason.label());
            if catch_unwind(AssertUnwindSafe(|| handler.on_close(hub, id, &reason))).is_err() {
                hub.metrics.handler_panics += 1;
                crate::error!("socket {id}: on_close panicked");
            }
            hub.forget(id);
        }
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or system is out of a resource.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// A cheap, well-mixed hash of a socket id (splitmix64's finaliser).
fn spread(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
