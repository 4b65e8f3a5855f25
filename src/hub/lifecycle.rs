//! A connection's life as the hub keeps it: state changes with their counts,
//! the close handshake's start, deadlines, removal.

use std::sync::atomic::Ordering;

use gmws_protocol::encoder::encode_close;
use gmws_protocol::{CloseCode, ProtocolError};

use super::{millis, Hub, TimerEvent};
use crate::close::CloseReason;
use crate::connection::{Connection, DeadlineKind, State};

impl Hub {
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
        let id = conn.id;
        let counts = &mut self.counts;
        let totals = &self.bus.totals;
        for (s, delta) in [(old, false), (state, true)] {
            let (counter, total) = match s {
                State::Http { idle: false } => {
                    (&mut counts.pending_http, Some(&totals.pending_http))
                }
                State::Http { idle: true } => (&mut counts.idle_http, None),
                State::Open => (&mut counts.online, Some(&totals.online)),
                _ => continue,
            };
            if delta {
                *counter += 1;
                total.map(|t| t.fetch_add(1, Ordering::Relaxed));
            } else {
                *counter -= 1;
                total.map(|t| t.fetch_sub(1, Ordering::Relaxed));
            }
        }
        if self.bus.shared() && (old == State::Open) != (state == State::Open) {
            let mut view = self.bus.write();
            match state {
                State::Open => view.open(id),
                _ => view.close(id),
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
        self.undefer(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
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

    /// [`Hub::begin_close`] by socket id (nothing if it is gone).
    pub(crate) fn begin_close_id(
        &mut self,
        id: crate::socket_id::SocketId,
        code: CloseCode,
        reason: &str,
        why: CloseReason,
    ) {
        if let Some(key) = self.key(id) {
            self.begin_close(key, code, reason, why);
        }
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
        conn.input.release();
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
        self.ids.remove(conn.id);
        self.compression.forget(conn.id, &self.gauge);
        for t in [conn.deadline, conn.heartbeat, conn.auth_deadline]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(t);
        }
        conn.output.clear(&mut self.pool);
        self.gauge.apply(&mut conn.accounted, 0);
        self.bus.totals.connections.fetch_sub(1, Ordering::Relaxed);
        self.bus.release_ip(conn.peer.ip());
        Some(conn)
    }
}
