//! The hub: the one owner of every socket and every index over them.
//!
//! Handlers receive `&mut Hub` and act through it; nothing else mutates
//! connections. Every operation that crosses sockets goes through here, so a
//! bus between loops (or machines) can later slot in behind the same methods.
//!
//! Sending queues: bytes are appended to the socket's output and the socket
//! is marked dirty; the event loop writes each dirty socket once per turn. The
//! exception is a large message (16 KiB or more) to a socket with nothing
//! queued, written at once with `writev` (what the kernel does not take is
//! queued): copying it into the queue would cost more than the syscall saved.
//! Queuing past `max_backpressure` closes the socket (1008) instead of
//! growing memory.

use std::time::Duration;

use std::io::{IoSlice, Write};

use gmws_protocol::encoder::{encode_close, frame_len};
use gmws_protocol::frame::{FrameHeader, MAX_HEADER_LEN};
use gmws_protocol::{CloseCode, OpCode, ProtocolError};
use slab::Slab;

mod api;
mod clients;
mod groups;
mod payload;

pub use api::{HubError, SocketApp, TimerHandle};
pub use payload::Payload;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::connection::{Connection, Phase};
use crate::handler::CloseReason;
use crate::metrics::Metrics;
use crate::socket_id::SocketId;
use crate::timer::TimerWheel;

/// What a timer entry is for. Entries carry the full socket id: a timer of a
/// closed socket finds no connection of that generation and fires into nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerEvent {
    /// The deadline of the socket's phase (handshake, HTTP idle, close).
    Deadline(SocketId),
    /// Time to send the socket a heartbeat ping.
    Heartbeat(SocketId),
    /// The socket's auth deadline: not bound by now, it is closed (1008).
    Auth(SocketId),
    /// Retry accepting after EMFILE or a full connection table.
    AcceptRetry,
    /// A user timer.
    User(TimerHandle),
}

/// Messages at least this large, sent to a socket with nothing queued, are
/// written at once instead of copied into its queue.
const DIRECT_WRITE_MIN: usize = 16 * 1024;

/// How many emptied output buffers the hub keeps for reuse.
const SPARE_BUFFERS: usize = 4096;
/// The largest output buffer kept for reuse.
const SPARE_BUFFER_CAPACITY: usize = 256 * 1024;
/// The most bytes of capacity kept in spare buffers altogether.
const SPARE_BYTES: usize = 4 << 20;

/// Settings the hub applies on every send and close.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HubSettings {
    pub max_backpressure: usize,
    pub close_timeout_ms: u64,
    pub max_group_name: usize,
    pub max_groups_per_socket: usize,
    pub max_client_id: usize,
}

impl HubSettings {
    pub fn from_config(config: &Config) -> HubSettings {
        HubSettings {
            max_backpressure: config.max_backpressure,
            close_timeout_ms: millis(config.close_timeout),
            max_group_name: config.max_group_name,
            max_groups_per_socket: config.max_groups_per_socket,
            max_client_id: config.max_client_id,
        }
    }
}

/// The sockets, and what the application can do with them.
pub struct Hub {
    pub(crate) conns: Slab<Connection>,
    next_generation: u32,
    pub(crate) timers: TimerWheel<TimerEvent>,
    /// Milliseconds since the loop started (the timer wheel's clock).
    pub(crate) now: u64,
    /// Slots with output to flush this turn.
    pub(crate) dirty: Vec<usize>,
    /// Sockets that stopped being online, waiting for `on_close`.
    pub(crate) closed: Vec<(SocketId, CloseReason)>,
    pub(crate) settings: HubSettings,
    pub(crate) metrics: Metrics,
    /// Open WebSockets (phase `Open`).
    online: usize,
    /// Connections in the `Http` phase (handshakes and plain HTTP).
    pub(crate) pending_http: usize,
    clients: clients::Clients,
    groups: groups::Groups,
    user_timers: HashMap<TimerHandle, api::UserTimer>,
    next_timer: u64,
    /// Reused buffer for encoding a frame once before fan-out.
    frame_scratch: Vec<u8>,
    /// Emptied output buffers, lent to the next socket that sends: no
    /// allocation per message, and no buffer held by an idle socket.
    spare_buffers: Vec<Vec<u8>>,
    /// Capacity held in `spare_buffers`.
    spare_bytes: usize,
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
            spare_buffers: Vec::new(),
            spare_bytes: 0,
            config,
            conns: Slab::new(),
            next_generation: 1,
            timers: TimerWheel::new(),
            now: 0,
            dirty: Vec::new(),
            closed: Vec::new(),
            settings,
            metrics: Metrics::default(),
            online: 0,
            pending_http: 0,
        }
    }

    /// A fresh generation for a new connection (never 0, wraps after 2^32).
    pub(crate) fn next_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        generation
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

    /// Whether `socket` is an open WebSocket.
    pub fn is_socket_online(&self, socket: SocketId) -> bool {
        self.conn(socket).is_some_and(Connection::is_open)
    }

    /// How many WebSockets are open.
    pub fn online_sockets(&self) -> usize {
        self.online
    }

    /// How many TCP connections are held (HTTP, open and closing).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Queue a text message to `socket`. False if it is not online.
    pub fn send_text(&mut self, socket: SocketId, text: &str) -> bool {
        self.send_frame(socket, OpCode::Text, text.as_bytes())
    }

    /// Queue a binary message to `socket`. False if it is not online.
    pub fn send_binary(&mut self, socket: SocketId, data: &[u8]) -> bool {
        self.send_frame(socket, OpCode::Binary, data)
    }

    /// Close `socket` with `code` and `reason` (the close handshake follows).
    /// False, and nothing done, if it was not online or if `code` may not be
    /// sent on the wire (valid: 1000-1003, 1007-1014, 3000-4999).
    pub fn close_socket(&mut self, socket: SocketId, code: u16, reason: &str) -> bool {
        if !self.is_socket_online(socket) {
            return false;
        }
        if !CloseCode(code).is_valid_on_wire() {
            crate::warn!("socket {socket}: close_socket with code {code}, which is not valid on the wire: refused");
            return false;
        }
        self.begin_close(
            socket.slot(),
            CloseCode(code),
            reason,
            CloseReason::ServerClose(code),
        );
        true
    }

    fn send_frame(&mut self, socket: SocketId, opcode: OpCode, payload: &[u8]) -> bool {
        if !self.is_socket_online(socket) {
            return false;
        }
        self.queue_frame(socket.slot(), opcode, payload)
    }

    /// Encode a frame onto slot `key`'s output. Closes the socket (1008) and
    /// returns false when that would pass `max_backpressure`.
    pub(crate) fn queue_frame(&mut self, key: usize, opcode: OpCode, payload: &[u8]) -> bool {
        let limit = self.settings.max_backpressure;
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.queued() + frame_len(payload.len(), false) > limit {
            return self.backpressure(key);
        }
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
        if payload.len() >= DIRECT_WRITE_MIN && conn.queued() == 0 && conn.phase == Phase::Open {
            // A large message to an idle socket goes straight to the kernel
            // (header and payload in one writev), saving the copy into the
            // queue; only what the socket does not take is queued.
            let slices = [IoSlice::new(head), IoSlice::new(payload)];
            if let Ok(n) = conn.stream.write_vectored(&slices) {
                written = n;
            }
        }
        let Some(conn) = self.writable_conn(key) else {
            return false;
        };
        if written < head_len {
            conn.output.extend_from_slice(&head[written..]);
            conn.output.extend_from_slice(payload);
        } else if written < head_len + payload.len() {
            conn.output
                .extend_from_slice(&payload[written - head_len..]);
        } else {
            return true;
        }
        self.mark_dirty(key);
        true
    }

    /// Queue an already encoded data frame (of a `payload_len`-byte message).
    pub(crate) fn queue_encoded(&mut self, key: usize, frame: &[u8], payload_len: usize) -> bool {
        let limit = self.settings.max_backpressure;
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.queued() + frame.len() > limit {
            return self.backpressure(key);
        }
        let Some(conn) = self.writable_conn(key) else {
            return false;
        };
        conn.output.extend_from_slice(frame);
        self.metrics.messages_out += 1;
        self.metrics.bytes_out += payload_len as u64;
        self.mark_dirty(key);
        true
    }

    /// The socket's queue would pass `max_backpressure`: close it (1008) rather
    /// than grow memory or drop the message silently.
    fn backpressure(&mut self, key: usize) -> bool {
        if let Some(conn) = self.conns.get(key) {
            crate::warn!(
                "socket {}: {} bytes queued, over max_backpressure; closing 1008",
                conn.id,
                conn.queued()
            );
        }
        self.begin_close(
            key,
            CloseCode::POLICY,
            "backpressure",
            CloseReason::Backpressure,
        );
        if let Some(conn) = self.conns.get_mut(key) {
            conn.shutdown_after_flush = true;
        }
        false
    }

    /// Queue raw bytes (an HTTP response) on slot `key`.
    pub(crate) fn queue_raw(&mut self, key: usize, bytes: &[u8]) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.output.extend_from_slice(bytes);
            self.mark_dirty(key);
        }
    }

    /// Take back a socket's flushed output buffer for reuse (at most
    /// `SPARE_BUFFERS` of at most `SPARE_BUFFER_CAPACITY` bytes are kept).
    pub(crate) fn recycle(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity <= SPARE_BUFFER_CAPACITY
            && self.spare_buffers.len() < SPARE_BUFFERS
            && self.spare_bytes + capacity <= SPARE_BYTES
        {
            buffer.clear();
            self.spare_bytes += capacity;
            self.spare_buffers.push(buffer);
        }
    }

    /// Slot `key`'s connection, its output lent a spare buffer if it had none.
    fn writable_conn(&mut self, key: usize) -> Option<&mut Connection> {
        if self.conns.get(key)?.output.capacity() == 0 {
            let spare = self.spare_buffer();
            if let Some(conn) = self.conns.get_mut(key) {
                conn.output = spare;
            }
        }
        self.conns.get_mut(key)
    }

    /// A spare output buffer, or a new empty one.
    fn spare_buffer(&mut self) -> Vec<u8> {
        match self.spare_buffers.pop() {
            Some(buffer) => {
                self.spare_bytes -= buffer.capacity();
                buffer
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
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
        if conn.phase != Phase::Open {
            return;
        }
        encode_close(&mut conn.output, code, reason, None);
        conn.close = conn.close.on_close_sent();
        let id = conn.id;
        self.leave_open(key, why);
        self.arm_close_timeout(key);
        self.mark_dirty(key);
        crate::debug!("socket {id}: closing with {}", code.0);
    }

    /// Fail the connection for a protocol error: close frame with the error's
    /// code, then close TCP once it is flushed, ignoring further input.
    pub(crate) fn fail(&mut self, key: usize, err: ProtocolError) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        crate::warn!(
            "socket {}: protocol error: {err}; closing {}",
            conn.id,
            err.close_code()
        );
        conn.discard_input = true;
        conn.shutdown_after_flush = true;
        self.metrics.protocol_errors += 1;
        if conn.phase == Phase::Open {
            self.begin_close(
                key,
                CloseCode(err.close_code()),
                err.reason(),
                CloseReason::ProtocolError(err),
            );
        }
    }

    /// Take an open socket out of the online set and queue its `on_close`.
    pub(crate) fn leave_open(&mut self, key: usize, why: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open {
            return;
        }
        conn.phase = Phase::Closing;
        for t in [conn.heartbeat.take(), conn.auth_deadline.take()]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(t);
        }
        self.online -= 1;
        self.metrics.count_close(&why);
        self.closed.push((conn.id, why));
    }

    /// A socket finished its handshake: count it online.
    pub(crate) fn enter_open(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.phase == Phase::Http {
                self.pending_http -= 1;
            }
            conn.phase = Phase::Open;
            self.online += 1;
        }
    }

    /// Arm (or re-arm) slot `key`'s deadline `after_ms` from now.
    pub(crate) fn arm_deadline(&mut self, key: usize, after_ms: u64) {
        let deadline = self.now + after_ms;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(t) = conn.deadline.take() {
            self.timers.cancel(t);
        }
        conn.deadline = Some(self.timers.insert(deadline, TimerEvent::Deadline(conn.id)));
    }

    fn arm_close_timeout(&mut self, key: usize) {
        self.arm_deadline(key, self.settings.close_timeout_ms);
    }

    /// Remove slot `key` entirely: timers, counts, the connection itself.
    /// Returns the connection so the caller can deregister its socket.
    pub(crate) fn remove(&mut self, key: usize) -> Option<Connection> {
        if self.conns.get(key).is_some_and(|c| c.phase == Phase::Open) {
            self.leave_open(key, CloseReason::ConnectionLost);
        }
        let conn = self.conns.try_remove(key)?;
        if conn.phase == Phase::Http {
            self.pending_http -= 1;
        }
        for t in [conn.deadline, conn.heartbeat, conn.auth_deadline]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(t);
        }
        Some(conn)
    }
}

/// Milliseconds in a duration, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
