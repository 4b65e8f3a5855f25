//! The hub: the one owner of every socket and every index over them.
//!
//! Handlers receive `&mut Hub` and act through it; nothing else mutates
//! connections. Every operation that crosses sockets goes through here, so a
//! bus between loops (or machines) can later slot in behind the same methods.
//!
//! Sending queues: bytes go to the socket's write queue (a fan-out queues one
//! shared frame, see [`crate::outqueue`]) and the socket is marked dirty; the
//! event loop writes each dirty socket once per turn. The exception is a
//! large message (16 KiB or more) to a socket with nothing queued, written at
//! once with `writev` (what the kernel does not take is queued).
//!
//! Backpressure is what the kernel did not take: a queue past
//! `max_backpressure` is offered to the kernel at once, and only when a write
//! has returned `WouldBlock` and more than `max_backpressure` still waits is
//! the socket closed (1008). The event loop checks the same after each flush.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, IoSlice, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use gmws_protocol::encoder::encode_close;
use gmws_protocol::frame::{FrameHeader, MAX_HEADER_LEN};
use gmws_protocol::{CloseCode, OpCode, ProtocolError};
use slab::Slab;

mod api;
mod clients;
mod groups;
mod payload;

pub use api::{Audience, HubError, SendError, TimerHandle};
pub use payload::Payload;

use crate::close::CloseReason;
use crate::config::Config;
use crate::connection::{Connection, DeadlineKind, Dirty, State};
use crate::memory::Gauge;
use crate::metrics::Metrics;
use crate::outqueue::{Pool, SharedFrame};
use crate::socket_id::SocketId;
use crate::timer::{TimerId, TimerWheel};

/// What a timer entry is for. Entries carry the full socket id, and the
/// connection keeps the [`TimerId`] of each deadline it has armed: a timer
/// that is not the connection's current one (re-armed since, or of a
/// closed socket) fires into nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerEvent {
    /// The deadline of the socket's state (handshake, HTTP idle, close).
    Deadline(SocketId, DeadlineKind),
    /// Time to send the socket a heartbeat ping.
    Heartbeat(SocketId),
    /// The socket's auth deadline: not bound by now, it is closed (1008).
    Auth(SocketId),
    /// Retry accepting after EMFILE.
    AcceptRetry,
    /// A user timer.
    User(TimerHandle),
}

/// Messages at least this large, sent to a socket with nothing queued, are
/// written at once instead of copied into its queue.
const DIRECT_WRITE_MIN: usize = 16 * 1024;

/// What one delivery costs the turn's fan-out budget beyond its bytes (the
/// queue entry, the write it adds).
const DELIVERY_COST: usize = 256;

/// Settings the hub applies on every send and close.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HubSettings {
    pub max_backpressure: usize,
    pub close_timeout_ms: u64,
    pub max_group_name: usize,
    pub max_groups_per_socket: usize,
    pub max_group_bytes: usize,
    pub max_session_size: usize,
    pub max_client_id: usize,
    pub fanout_per_turn: usize,
}

impl HubSettings {
    pub fn from_config(config: &Config) -> HubSettings {
        HubSettings {
            max_backpressure: config.max_backpressure,
            close_timeout_ms: millis(config.close_timeout),
            max_group_name: config.max_group_name,
            max_groups_per_socket: config.max_groups_per_socket,
            max_group_bytes: config.max_group_bytes_per_socket,
            max_session_size: config.max_session_size,
            max_client_id: config.max_client_id,
            fanout_per_turn: config.max_fanout_per_turn,
        }
    }
}

/// Connection counts by state, kept by [`Hub::set_state`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    /// Open WebSockets.
    pub online: usize,
    /// Connections reading a request head (not idle keep-alive ones).
    pub pending_http: usize,
    /// Keep-alive HTTP connections between requests.
    pub idle_http: usize,
}

/// The sockets, and what the application can do with them.
pub struct Hub {
    pub(crate) conns: Slab<Connection>,
    /// The generation last given to each slot: an id names one life of a slot.
    generations: Vec<u32>,
    pub(crate) timers: TimerWheel<TimerEvent>,
    /// Milliseconds since the loop started (the timer wheel's clock).
    pub(crate) now: u64,
    /// Slots with point-to-point output to flush this turn (flushed first).
    pub(crate) dirty: Vec<usize>,
    /// Slots with only fan-out output to flush this turn.
    pub(crate) dirty_fanout: Vec<usize>,
    /// Sockets that stopped being online, waiting for `on_close`.
    pub(crate) closed: Vec<(SocketId, CloseReason)>,
    pub(crate) settings: HubSettings,
    pub(crate) metrics: Metrics,
    pub(crate) counts: Counts,
    /// Connections per peer IP (only peers subject to `max_connections_per_ip`).
    pub(crate) per_ip: HashMap<IpAddr, u32>,
    /// Keep-alive connections in the order they went idle (entries whose
    /// deadline no longer matches are stale and skipped).
    pub(crate) idle_order: VecDeque<(SocketId, TimerId)>,
    /// Fan-out work done this turn (deliveries weighted by bytes).
    pub(crate) turn_fanout: usize,
    clients: clients::Clients,
    groups: groups::Groups,
    user_timers: HashMap<TimerHandle, api::UserTimer>,
    next_timer: u64,
    /// Reused buffer for encoding a frame once before fan-out.
    frame_scratch: Vec<u8>,
    /// Emptied output buffers and queue states, lent to the next sender.
    pub(crate) pool: Pool,
    /// Buffered bytes, held against `max_buffer_memory`.
    pub(crate) gauge: Gauge,
    config: Arc<Config>,
}

impl Hub {
    pub(crate) fn new(config: Arc<Config>) -> Hub {
        let settings = HubSettings::from_config(&config);
        Hub {
            clients: Default::default(),
            groups: Default::default(),
            user_timers: HashMap::new(),
            next_timer: 0,
            frame_scratch: Vec::new(),
            pool: Pool::new(),
            gauge: Gauge::new(),
            config,
            conns: Slab::new(),
            generations: Vec::new(),
            timers: TimerWheel::new(),
            now: 0,
            dirty: Vec::new(),
            dirty_fanout: Vec::new(),
            closed: Vec::new(),
            settings,
            metrics: Metrics::default(),
            counts: Counts::default(),
            per_ip: HashMap::new(),
            idle_order: VecDeque::new(),
            turn_fanout: 0,
        }
    }

    /// Insert a connection made by `make` from its id; returns its slot.
    pub(crate) fn insert(&mut self, make: impl FnOnce(SocketId) -> Connection) -> usize {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if self.generations.len() <= key {
            self.generations.resize(key + 1, 0);
        }
        // Per slot: an id repeats only after its slot was reused 2^32 times.
        let generation = self.generations[key].wrapping_add(1).max(1);
        self.generations[key] = generation;
        let conn = make(SocketId::new(key, generation));
        self.counts.pending_http += usize::from(conn.state == State::NEW);
        entry.insert(conn);
        key
    }

    /// The connection `id` addresses, if it is still that connection.
    pub(crate) fn conn_mut(&mut self, id: SocketId) -> Option<&mut Connection> {
        self.conns.get_mut(id.slot()).filter(|c| c.id == id)
    }

    pub(crate) fn conn(&self, id: SocketId) -> Option<&Connection> {
        self.conns.get(id.slot()).filter(|c| c.id == id)
    }

    /// Milliseconds since the loop started.
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Seconds since the loop started.
    pub fn uptime_secs(&self) -> u64 {
        self.now / 1000
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters since start.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Bytes buffered for peers now (input, reassembly, output), as held
    /// against `max_buffer_memory`.
    pub fn buffered_bytes(&self) -> usize {
        self.gauge.total()
    }

    /// Whether `socket` is an open WebSocket.
    pub fn is_socket_online(&self, socket: SocketId) -> bool {
        self.conn(socket).is_some_and(Connection::is_open)
    }

    /// How many WebSockets are open.
    pub fn online_sockets(&self) -> usize {
        self.counts.online
    }

    /// How many TCP connections are held (HTTP, open and closing).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The peer address of `socket` (while it is connected).
    pub fn peer_addr(&self, socket: SocketId) -> Option<std::net::SocketAddr> {
        self.conn(socket).map(|c| c.peer.addr())
    }

    /// Queue a text message to `socket`.
    pub fn send_text(&mut self, socket: SocketId, text: &str) -> Result<(), SendError> {
        self.send_frame(socket, OpCode::Text, text.as_bytes())
    }

    /// Queue a binary message to `socket`.
    pub fn send_binary(&mut self, socket: SocketId, data: &[u8]) -> Result<(), SendError> {
        self.send_frame(socket, OpCode::Binary, data)
    }

    /// Why `socket` cannot take a message now, if it cannot.
    pub(crate) fn sendable(&self, socket: SocketId) -> Result<(), SendError> {
        match self.conn(socket) {
            None => Err(SendError::UnknownSocket),
            Some(c) if !c.is_open() => Err(SendError::Closing),
            Some(_) => Ok(()),
        }
    }

    /// Close `socket` with `code` and `reason` (the close handshake follows).
    /// Refused, with nothing done, if it is not online or if `code` may not
    /// be sent on the wire (valid: 1000-1003, 1007-1014, 3000-4999).
    pub fn close_socket(
        &mut self,
        socket: SocketId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), HubError> {
        if !self.is_socket_online(socket) {
            return Err(HubError::NotOnline);
        }
        if !code.is_valid_on_wire() {
            log::warn!(
                "socket {socket}: close_socket with code {}, which is not valid on the wire: refused",
                code.0
            );
            return Err(HubError::InvalidCloseCode);
        }
        self.begin_close(socket.slot(), code, reason, CloseReason::ServerClose(code));
        Ok(())
    }

    fn send_frame(
        &mut self,
        socket: SocketId,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.sendable(socket)?;
        if self.queue_frame(socket.slot(), opcode, payload) {
            Ok(())
        } else {
            Err(SendError::Backpressure)
        }
    }

    /// Encode a frame onto slot `key`'s queue. False if the socket was closed
    /// for backpressure instead.
    pub(crate) fn queue_frame(&mut self, key: usize, opcode: OpCode, payload: &[u8]) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if opcode == OpCode::Text || opcode == OpCode::Binary {
            self.metrics.messages_out += 1;
            self.metrics.bytes_out += payload.len() as u64;
        }
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode_into(&mut head);
        let head = &head[..head_len];
        let mut written = 0;
        if payload.len() >= DIRECT_WRITE_MIN && conn.output.is_empty() && conn.is_open() {
            // A large message to an idle socket goes straight to the kernel
            // (header and payload in one writev), saving the copy into the
            // queue; only what the socket does not take is queued.
            let slices = [IoSlice::new(head), IoSlice::new(payload)];
            if let Ok(n) = conn.stream.write_vectored(&slices) {
                written = n;
            }
        }
        if written == 0 {
            conn.output.push_frame(head, payload, &mut self.pool);
        } else if written < head_len + payload.len() {
            conn.output
                .push_started_frame(head, payload, written, &mut self.pool);
        } else {
            return true;
        }
        self.queued(key)
    }

    /// Queue a shared frame (of a `payload_len`-byte message) on slot `key`.
    pub(crate) fn queue_shared(
        &mut self,
        key: usize,
        frame: &SharedFrame,
        payload_len: usize,
    ) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        conn.output.push_shared(frame.clone(), &mut self.pool);
        self.metrics.messages_out += 1;
        self.metrics.bytes_out += payload_len as u64;
        if conn.dirty == Dirty::Clean {
            conn.dirty = Dirty::Fanout;
            self.dirty_fanout.push(key);
        }
        self.check_queue(key)
    }

    /// Queue raw bytes (an HTTP response) on slot `key`.
    pub(crate) fn queue_raw(&mut self, key: usize, bytes: &[u8]) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.output.push_bytes(bytes, &mut self.pool);
            self.queued(key);
        }
    }

    /// Bytes were queued on slot `key`: mark it dirty, keep the memory count,
    /// and past `max_backpressure` offer the queue to the kernel now. False if
    /// the socket is closed for backpressure.
    fn queued(&mut self, key: usize) -> bool {
        self.mark_dirty(key);
        self.check_queue(key)
    }

    /// Keep the memory count; past `max_backpressure`, offer the queue to
    /// the kernel now.
    fn check_queue(&mut self, key: usize) -> bool {
        self.account(key);
        let over = self
            .conns
            .get(key)
            .is_some_and(|c| c.output.len() > self.settings.max_backpressure);
        if over {
            return self.write_now(key);
        }
        true
    }

    /// Write slot `key`'s queue once. Returns false (and closes the socket for
    /// backpressure) when the kernel refused more and the queue is still over
    /// `max_backpressure`. Other write errors leave the connection to the
    /// event loop's flush, which drops it.
    pub(crate) fn write_now(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let blocked = match conn.output.write_to(&mut conn.stream, &mut self.pool) {
            Ok(_) => !conn.output.is_empty(),
            Err(e) => e.kind() == ErrorKind::WouldBlock,
        };
        let over = conn.output.len() > self.settings.max_backpressure;
        self.account(key);
        if blocked && over {
            return self.backpressure(key);
        }
        true
    }

    /// The socket's queue stays over `max_backpressure` though the kernel
    /// takes no more: close it (1008) rather than grow memory or drop a
    /// message silently.
    pub(crate) fn backpressure(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get(key) else {
            return false;
        };
        crate::log::peer_log!(
            "socket {}: {} bytes unsent, over max_backpressure; closing 1008",
            conn.id,
            conn.output.len()
        );
        self.close_overloaded(
            key,
            CloseCode::POLICY,
            "backpressure",
            CloseReason::Backpressure,
        );
        false
    }

    /// Close slot `key` because of what it holds: the frames it has not
    /// started to write are dropped (freeing their memory now), then a close
    /// frame with `code` follows whatever frame is partly written, and the
    /// connection finishes. A connection that is not a WebSocket is finished
    /// with its queue cut the same way.
    pub(crate) fn close_overloaded(
        &mut self,
        key: usize,
        code: CloseCode,
        reason: &str,
        why: CloseReason,
    ) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.output.drop_unstarted(&mut self.pool);
        conn.decoder.release_all();
        self.begin_close(key, code, reason, why);
        self.finish(key);
    }

    /// Update the memory gauge with slot `key`'s owned bytes.
    pub(crate) fn account(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            let now = conn.owned_bytes();
            self.gauge.apply(&mut conn.accounted, now);
        }
    }

    /// Encode `payload` once as a shared frame.
    pub(crate) fn shared_frame(&mut self, opcode: OpCode, payload: &[u8]) -> SharedFrame {
        let mut frame = std::mem::take(&mut self.frame_scratch);
        frame.clear();
        gmws_protocol::encoder::encode_frame(&mut frame, opcode, true, payload, None);
        let shared = SharedFrame::new(frame.clone(), &self.gauge);
        self.frame_scratch = frame;
        shared
    }

    /// Count `deliveries` of a `len`-byte frame against the turn's fan-out budget.
    pub(crate) fn spend_fanout(&mut self, deliveries: usize, len: usize) {
        self.turn_fanout = self
            .turn_fanout
            .saturating_add(deliveries.saturating_mul(len + DELIVERY_COST));
    }

    /// Whether this turn's fan-out budget (`max_fanout_per_turn`) is spent:
    /// the loop then defers decoding more messages to the next turn.
    pub(crate) fn turn_exhausted(&self) -> bool {
        self.turn_fanout >= self.settings.fanout_per_turn
    }

    /// Slot `key` has point-to-point output: flush it first this turn.
    pub(crate) fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.dirty != Dirty::Urgent {
                conn.dirty = Dirty::Urgent;
                self.dirty.push(key);
            }
        }
    }

    /// Move slot `key` to `state`, keeping the counts by state.
    pub(crate) fn set_state(&mut self, key: usize, state: State) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let old = conn.state;
        if old == state {
            return;
        }
        conn.state = state;
        let counts = &mut self.counts;
        for (s, delta) in [(old, false), (state, true)] {
            let counter = match s {
                State::Http { idle: false } => &mut counts.pending_http,
                State::Http { idle: true } => &mut counts.idle_http,
                State::Open => &mut counts.online,
                _ => continue,
            };
            if delta {
                *counter += 1;
            } else {
                *counter -= 1;
            }
        }
    }

    /// Start the close handshake on an open socket: queue our close frame, stop
    /// counting it online, arm the close timeout, and queue `on_close`.
    pub(crate) fn begin_close(
        &mut self,
        key: usize,
        code: CloseCode,
        reason: &str,
        why: CloseReason,
    ) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        let mut frame = Vec::with_capacity(2 + 2 + reason.len().min(123));
        encode_close(&mut frame, code, reason, None);
        conn.output.push_bytes(&frame, &mut self.pool);
        let id = conn.id;
        self.leave_open(key, why);
        self.set_state(key, State::CloseSent);
        self.arm_deadline(key, DeadlineKind::Close);
        self.mark_dirty(key);
        self.account(key);
        log::debug!("socket {id}: closing with {}", code.0);
    }

    /// The last bytes are queued: discard input from now on, shut our side
    /// once flushed (see [`State::Finishing`]).
    pub(crate) fn finish(&mut self, key: usize) {
        if self.conns.get(key).is_some_and(Connection::is_open) {
            self.leave_open(key, CloseReason::ConnectionLost);
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.input = Vec::new();
        let (old, next) = (conn.state, conn.state.on_finish());
        if next != old {
            self.set_state(key, next);
            self.arm_deadline(key, DeadlineKind::Close);
        }
        self.mark_dirty(key);
        self.account(key);
    }

    /// Fail the connection for a protocol error: close frame with the error's
    /// code, then close TCP once it is flushed, ignoring further input.
    pub(crate) fn fail(&mut self, key: usize, err: ProtocolError) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        crate::log::peer_log!(
            "socket {}: protocol error: {err}; closing {}",
            conn.id,
            err.close_code()
        );
        self.metrics.protocol_errors += 1;
        self.begin_close(
            key,
            CloseCode(err.close_code()),
            err.reason(),
            CloseReason::ProtocolError(err),
        );
        self.finish(key);
    }

    /// Take an open socket out of the online set and queue its `on_close`.
    pub(crate) fn leave_open(&mut self, key: usize, why: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        for t in [conn.heartbeat.take(), conn.auth_deadline.take()]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(t);
        }
        let id = conn.id;
        // Not online any more; the state proper is set by the caller.
        self.set_state(key, State::CloseSent);
        self.metrics.count_close(&why);
        self.closed.push((id, why));
    }

    /// A socket finished its handshake: count it online.
    pub(crate) fn enter_open(&mut self, key: usize) {
        if let Some(conn) = self.conns.get(key) {
            let next = conn.state.on_upgrade();
            self.set_state(key, next);
        }
    }

    /// Arm (or re-arm) slot `key`'s state deadline of `kind`.
    pub(crate) fn arm_deadline(&mut self, key: usize, kind: DeadlineKind) {
        let after = match kind {
            DeadlineKind::Handshake => millis(self.config.handshake_timeout),
            DeadlineKind::HttpIdle => millis(self.config.http_idle_timeout),
            DeadlineKind::Close => self.settings.close_timeout_ms,
        };
        let deadline = self.now + after;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(t) = conn.deadline.take() {
            self.timers.cancel(t);
        }
        conn.deadline = Some(
            self.timers
                .insert(deadline, TimerEvent::Deadline(conn.id, kind)),
        );
    }

    /// Remove slot `key` entirely: timers, counts, buffers, the connection
    /// itself. Returns the connection so the caller can deregister its socket.
    pub(crate) fn remove(&mut self, key: usize) -> Option<Connection> {
        if self.conns.get(key).is_some_and(Connection::is_open) {
            self.leave_open(key, CloseReason::ConnectionLost);
        }
        // Leave no state counted.
        self.set_state(key, State::HalfClosed);
        let mut conn = self.conns.try_remove(key)?;
        for t in [conn.deadline, conn.heartbeat, conn.auth_deadline]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(t);
        }
        conn.output.clear(&mut self.pool);
        self.gauge.apply(&mut conn.accounted, 0);
        let ip = conn.peer.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        Some(conn)
    }
}

/// Milliseconds in a duration, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
