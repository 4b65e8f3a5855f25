//! Queuing and writing: single messages, shared fan-out frames, raw HTTP
//! bytes; backpressure judged after the kernel refused; the memory gauge;
//! the turn's fan-out budget.

use std::io::{ErrorKind, IoSlice, Write};

use gmws_protocol::frame::{FrameHeader, MAX_HEADER_LEN};
use gmws_protocol::{CloseCode, OpCode};

use super::{Hub, HubError, SendError};
use crate::bus::Command;
use crate::close::CloseReason;
use crate::compression::Outgoing;
use crate::connection::Dirty;
use crate::outqueue::SharedFrame;
use crate::socket_id::SocketId;
use crate::tls::Io;

/// Messages at least this large, sent to a socket with nothing queued, are
/// written at once instead of copied into its queue.
const DIRECT_WRITE_MIN: usize = 16 * 1024;

/// [`FrameHeader::rsv`] of a compressed message (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// What one delivery costs the turn's fan-out budget beyond its bytes (the
/// queue entry, the write it adds).
const DELIVERY_COST: usize = 256;

impl Hub {
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
        if self.is_remote(socket) {
            return match self.is_socket_online(socket) {
                true => Ok(()),
                false => Err(SendError::UnknownSocket),
            };
        }
        match self.conn(socket) {
            None => Err(SendError::UnknownSocket),
            Some(c) if !c.is_open() => Err(SendError::Closing),
            Some(_) => Ok(()),
        }
    }

    /// Close `socket` with `code` and `reason` (the close handshake follows).
    /// Refused, with nothing done, if it is not online or if `code` may not
    /// be sent on the wire (valid: 1000-1003, 1007-1014, 3000-4999). A socket
    /// of another node of the cluster is closed by its node, asked through
    /// one PUBLISH (`Ok` once published, whether or not it is still online
    /// there; [`HubError::ClusterUnreachable`] when Redis is not reachable).
    pub fn close_socket(
        &mut self,
        socket: SocketId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), HubError> {
        if let Some(cluster) = self.other_node(socket) {
            if !code.is_valid_on_wire() {
                return Err(HubError::InvalidCloseCode);
            }
            let op = crate::cluster::wire::SocketOp::Close(code.0, reason.to_owned());
            return cluster
                .socket_op(socket, op)
                .map_err(|_| HubError::ClusterUnreachable);
        }
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
        if self.is_remote(socket) {
            return self
                .bus
                .post(
                    usize::from(socket.loop_index()),
                    Command::Close(socket, code, reason.to_owned()),
                )
                .map_err(|_| HubError::Busy);
        }
        if let Some(key) = self.key(socket) {
            self.begin_close(key, code, reason, CloseReason::ServerClose(code));
        }
        Ok(())
    }

    fn send_frame(
        &mut self,
        socket: SocketId,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.sendable(socket)?;
        let key = self.key(socket).ok_or(SendError::UnknownSocket)?;
        if self.queue_frame(key, opcode, payload) {
            Ok(())
        } else {
            Err(SendError::Backpressure)
        }
    }

    /// Encode a frame onto slot `key`'s queue. False if the socket was closed
    /// for backpressure instead.
    pub(crate) fn queue_frame(&mut self, key: usize, opcode: OpCode, payload: &[u8]) -> bool {
        self.undefer(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if opcode == OpCode::Text || opcode == OpCode::Binary {
            self.metrics.messages_out += 1;
            self.metrics.bytes_out += payload.len() as u64;
        }
        let compressed = self
            .compression
            .applies(opcode, payload.len(), conn.deflate);
        let payload = if compressed {
            self.metrics.messages_compressed += 1;
            self.compression.compress_for(
                conn.id,
                conn.deflate,
                conn.deflate_context,
                payload,
                &self.gauge,
            )
        } else {
            payload
        };
        let header = FrameHeader {
            fin: true,
            rsv: if compressed { RSV1 } else { 0 },
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode_into(&mut head);
        let head = &head[..head_len];
        let mut written = 0;
        // (Not through TLS: what rustls keeps must be seen by the flush.)
        if payload.len() >= DIRECT_WRITE_MIN
            && conn.output.is_empty()
            && conn.tls.is_none()
            && conn.is_open()
        {
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

    /// Deliver a shared frame (of a `payload_len`-byte message) to slot
    /// `key`: sent at once when nothing waits for it (its queue is empty and
    /// no socket waits for a fan-out flush from an earlier turn, which then
    /// goes first) and the turn has fan-out writes left; else, for an idle
    /// socket when `later` is given, listed there to be written in a later
    /// turn (`deferred.rs`); queued otherwise, and for what the kernel did
    /// not take.
    pub(crate) fn queue_shared(
        &mut self,
        key: usize,
        frame: &SharedFrame,
        payload_len: usize,
        later: Option<&mut Vec<(usize, SocketId)>>,
    ) -> bool {
        self.undefer(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        self.metrics.messages_out += 1;
        self.metrics.bytes_out += payload_len as u64;
        let mut written = 0;
        // Straight to the kernel while nothing else waits: no reply queued
        // this turn (replies go out before fan-out, as the flush orders
        // them), no fan-out queued before this one, nothing on this socket.
        let idle = conn.dirty == Dirty::Clean
            && conn.output.is_empty()
            && conn.tls.is_none()
            && self.dirty_fanout.is_empty();
        if idle && self.fanout_writes_left > 0 && self.dirty.is_empty() {
            self.fanout_writes_left -= 1;
            // An error is left to the flush, which meets it again and drops
            // the connection.
            written = conn.stream.write(frame.bytes()).unwrap_or(0);
            if written == frame.len() {
                return true;
            }
        } else if let Some(later) = later.filter(|_| idle) {
            conn.dirty = Dirty::Deferred;
            later.push((key, conn.id));
            return true;
        }
        conn.output
            .push_shared_from(frame.clone(), written, &mut self.pool);
        if conn.dirty == Dirty::Clean {
            conn.dirty = Dirty::Fanout;
            self.dirty_fanout.push(key);
        }
        self.check_queue(key)
    }

    /// Queue raw bytes (an HTTP response) on slot `key`.
    pub(crate) fn queue_raw(&mut self, key: usize, bytes: &[u8]) {
        self.undefer(key);
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
    pub(super) fn check_queue(&mut self, key: usize) -> bool {
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
        let mut io = Io::new(&mut conn.stream, &mut conn.tls);
        let blocked = match conn.output.write_to(&mut io, &mut self.pool) {
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

    /// Encode `payload` once as a shared frame, compressed later (once per
    /// window size) for the recipients that negotiated compression.
    pub(crate) fn shared_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Outgoing {
        let mut frame = std::mem::take(&mut self.frame_scratch);
        frame.clear();
        gmws_protocol::encoder::encode_frame(&mut frame, opcode, true, payload, None);
        let shared = SharedFrame::new(frame.clone(), &self.gauge);
        self.frame_scratch = frame;
        Outgoing::new(shared, self.compression.may_apply(payload.len()))
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
}
