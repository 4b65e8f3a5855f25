//! Reading: bytes from a socket into its state machine — HTTP request heads,
//! WebSocket frames, or bytes a closing connection throws away.

use std::io::{ErrorKind, Read};

use std::panic::{catch_unwind, AssertUnwindSafe};

use gmws_protocol::handshake::{
    parse_request, validate_upgrade, write_accept_response, Accept, Request,
};
use gmws_protocol::{CloseCode, HandshakeError};

use super::dispatch::{call_handler, dispatch_frames};
use super::event_loop::Loop;
use super::http::{self as serve, HttpOutcome};
use super::{READ_BUDGET, READ_CHUNK, RESERVE};
use crate::close::CloseReason;
use crate::connection::{Action, DeadlineKind, State};
use crate::handler::Handler;
use crate::http::Response;
use crate::hub::TimerEvent;
use crate::tls::Io;
use crate::upgrade::{Upgrade, UpgradeRequest};

/// Whether a short read proves the next arrival raises a new readiness edge
/// (epoll); elsewhere reads go on to `WouldBlock` as mio documents.
const SHORT_READ_ENDS_READINESS: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Past this many bytes of queued responses, a connection's pipelined
/// requests wait (unparsed, and unread in the kernel) until they are written.
pub(super) const HTTP_OUTPUT_CAP: usize = 64 * 1024;

impl<H: Handler> Loop<H> {
    /// Serve slot `key`'s input: bytes deferred by an earlier turn, then the
    /// socket, until `WouldBlock`, EOF, or a budget.
    ///
    /// mio's contract for edge-triggered readiness is to read until
    /// `WouldBlock`; the per-turn read budget stays a fairness rule on top.
    /// On Linux one exception is taken (tokio takes the same): a read that
    /// returns less than the buffer emptied the socket's receive queue at
    /// that moment, and epoll raises a new edge for every later arrival, so
    /// the loop stops there and saves the `read` that would only answer
    /// `WouldBlock` (one syscall per message saved).
    /// Not when `drain`: after the peer's FIN (or an error), or for a
    /// deferred socket, no new event may come for what is waiting.
    pub(super) fn ready(&mut self, key: usize, drain: bool) {
        let Some(conn) = self.hub.conns.get(key) else {
            return;
        };
        if conn.read_again {
            return; // queued for next turn already
        }
        if self.is_parked(key) {
            return; // resumed when the cluster's answer comes (see parked.rs)
        }
        match conn.state {
            State::Http { .. } if !conn.input.is_empty() => self.process_http(key),
            State::Open | State::CloseSent if conn.input.len() > RESERVE => {
                self.process_carried_frames(key);
            }
            _ => {}
        }
        for _ in 0..READ_BUDGET {
            let exhausted = self.hub.turn_exhausted();
            let Some(conn) = self.hub.conns.get_mut(key) else {
                return;
            };
            if !conn.state.reads() || conn.read_again {
                return;
            }
            if exhausted && conn.state.decodes_input() {
                return self.starve(key);
            }
            if matches!(conn.state, State::Http { .. }) && conn.output.len() > HTTP_OUTPUT_CAP {
                return; // resumed once the responses are written (see flush)
            }
            let tls = conn.tls.is_some();
            let read = Io::new(&mut conn.stream, &mut conn.tls).read(&mut self.read_buf[RESERVE..]);
            if conn.tls.as_ref().is_some_and(|t| t.wants_write()) {
                // Handshake records the kernel did not take yet.
                self.hub.mark_dirty(key);
            }
            match read {
                Ok(0) => return self.on_eof(key),
                Ok(n) => {
                    self.on_data(key, n);
                    // Held to the budget read by read, not only at the end
                    // of the turn: one turn of many large reads cannot
                    // overshoot it by more than a read.
                    if self.hub.gauge.total() > self.config.max_buffer_memory {
                        self.enforce_memory();
                    }
                    // (Not through TLS: rustls may hold records it read.)
                    if n < READ_CHUNK && !drain && !tls && SHORT_READ_ENDS_READINESS {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(conn) = self.hub.conns.get(key) {
                        log::debug!("socket {}: read: {e}", conn.id);
                    }
                    return self.drop_conn(key);
                }
            }
        }
        self.defer(key);
    }

    /// `n` new bytes are in `read_buf[RESERVE..]`.
    fn on_data(&mut self, key: usize, n: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        match conn.state {
            State::Http { idle } => {
                conn.input
                    .extend_from_slice(&self.read_buf[RESERVE..RESERVE + n]);
                if idle {
                    // The next request has begun: it has handshake_timeout.
                    self.hub.set_state(key, State::NEW);
                    self.hub.arm_deadline(key, DeadlineKind::Handshake);
                }
                self.process_http(key);
            }
            State::Open | State::CloseSent => {
                let carried = conn.input.len();
                if carried <= RESERVE {
                    // Put the carried bytes right before the new ones: decode in place.
                    let start = RESERVE - carried;
                    if carried > 0 {
                        self.read_buf[start..RESERVE].copy_from_slice(&conn.input);
                        conn.input.clear();
                    }
                    let end = RESERVE + n;
                    let consumed = dispatch_frames(
                        &mut self.hub,
                        &mut self.handler,
                        &mut self.inflater,
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
            state => {
                let id = conn.id;
                let (next, action) = state.on_discarded(n);
                self.hub.set_state(key, next);
                if action == Action::Drop {
                    log::debug!("socket {id}: discarded input past its bound; dropping");
                    self.drop_conn(key);
                }
            }
        }
        self.hub.account(key);
        self.notify_closed();
    }

    /// Store `read_buf[from..to]` as slot `key`'s carried input; defer the
    /// socket if decoding stopped for the turn's fan-out budget.
    fn keep_rest(&mut self, key: usize, from: usize, to: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        if from < to && conn.state.decodes_input() {
            conn.input.extend_from_slice(&self.read_buf[from..to]);
            if self.hub.turn_exhausted() {
                self.defer(key);
            }
        } else if conn.input.is_empty() {
            // Nothing carried: no buffer, no box.
            conn.input.release();
        }
    }

    /// Decode frames from the connection's own carried input (after a handshake
    /// with pipelined frames, a large carry, or a deferral).
    pub(super) fn process_carried_frames(&mut self, key: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        let mut data = std::mem::take(&mut conn.input);
        let consumed = dispatch_frames(
            &mut self.hub,
            &mut self.handler,
            &mut self.inflater,
            key,
            &mut data,
        );
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if conn.state.decodes_input() && consumed < data.len() {
                data.drain(..consumed);
                data.shrink_to_fit();
                conn.input = data;
                if self.hub.turn_exhausted() {
                    self.defer(key);
                }
            }
        }
        self.hub.account(key);
        self.notify_closed();
    }

    /// Serve the requests at the head of slot `key`'s input, one after the
    /// other (pipelining), until one is incomplete, the socket upgrades, or
    /// its queued responses pass [`HTTP_OUTPUT_CAP`].
    fn process_http(&mut self, key: usize) {
        loop {
            if self.is_parked(key) {
                return;
            }
            let exhausted = self.hub.turn_exhausted();
            let Some(conn) = self.hub.conns.get_mut(key) else {
                return;
            };
            if !matches!(conn.state, State::Http { .. }) || conn.input.is_empty() {
                return;
            }
            if conn.output.len() > HTTP_OUTPUT_CAP {
                return;
            }
            if exhausted {
                return self.defer(key);
            }
            let (request, head_len) = match parse_request(&conn.input, &self.head_limits) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return,
                Err(e) => return self.refuse(key, e),
            };
            if request.is_websocket_upgrade() {
                match validate_upgrade(&request, &self.policy) {
                    Ok(accept) => self.upgrade(key, &request, head_len, accept),
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
                HttpOutcome::Parked(parked) => return self.park(key, parked),
                HttpOutcome::Done { close: true } => {
                    self.hub.finish(key);
                    return;
                }
                HttpOutcome::Done { close: false } => {
                    // A socket the request closed leaves the indexes before
                    // the next request is answered, however the requests
                    // were split into reads.
                    self.notify_closed();
                    let pipelined = self.hub.conns.get(key).is_some_and(|c| !c.input.is_empty());
                    if pipelined {
                        self.hub.arm_deadline(key, DeadlineKind::Handshake);
                    } else {
                        self.go_idle(key);
                        return;
                    }
                }
            }
        }
    }

    /// A valid upgrade request: the application decides
    /// ([`Handler::on_upgrade`]); accepted, the 101 is queued and the socket
    /// opens, refused, the application's status and body are sent.
    fn upgrade(&mut self, key: usize, request: &Request, head_len: usize, mut accept: Accept) {
        let Some(conn) = self.hub.conns.get(key) else {
            return;
        };
        let (id, peer) = (conn.id, conn.peer.addr());
        let view = UpgradeRequest::new(request, peer, accept.protocol.as_deref());
        let (hub, handler) = (&mut self.hub, &mut self.handler);
        let decision = catch_unwind(AssertUnwindSafe(|| handler.on_upgrade(hub, &view)));
        let accepted = match decision {
            Ok(Upgrade::Accept(accepted)) => accepted,
            Ok(Upgrade::Refuse { status, body }) => {
                let status = if (400..=599).contains(&status) {
                    status
                } else {
                    403
                };
                log::debug!("socket {id} ({peer}): upgrade refused by the application: {status}");
                return self.refuse_with(key, &Response::error(status, &body));
            }
            Err(_) => {
                self.hub.metrics.handler_panics += 1;
                log::error!("socket {id}: on_upgrade panicked; answering 500");
                return self.refuse_with(key, &Response::error(500, "internal error"));
            }
        };
        if let Some(protocol) = accepted.protocol {
            if protocol
                .as_deref()
                .is_some_and(|p| !view.protocols().any(|o| o == p))
            {
                log::error!(
                    "socket {id}: on_upgrade chose subprotocol {protocol:?}, which the client did not offer; answering 500"
                );
                return self.refuse_with(key, &Response::error(500, "internal error"));
            }
            accept.protocol = protocol;
        }
        if let Some(conn) = self.hub.conns.get_mut(key) {
            if let Some(deflate) = &accept.deflate {
                conn.deflate = deflate.params.server_max_window_bits;
                conn.deflate_context = !deflate.params.server_no_context_takeover;
                conn.decoder.set_compression(true);
            }
            conn.input.drain(..head_len);
            if conn.input.is_empty() {
                // An open socket keeps no buffer of the request head.
                conn.input.release();
            }
        }
        let mut response = Vec::with_capacity(160);
        write_accept_response(&mut response, &accept);
        self.hub.queue_raw(key, &response);
        self.open(key, accepted.client_id, accepted.session);
    }

    /// Answer a request head with `response` and close.
    fn refuse_with(&mut self, key: usize, response: &Response) {
        self.hub.metrics.handshake_failures += 1;
        let mut out = Vec::new();
        response.write_to(&mut out, false, false);
        if let Some(conn) = self.hub.conns.get_mut(key) {
            conn.input.release();
        }
        self.hub.queue_raw(key, &out);
        self.hub.finish(key);
    }

    /// The handshake succeeded and the 101 is queued: the socket is open,
    /// bound to `client_id` and holding `session` if the application said so.
    fn open(&mut self, key: usize, client_id: Option<String>, session: Option<serde_json::Value>) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        let id = conn.id;
        if let Some(t) = conn.deadline.take() {
            self.hub.timers.cancel(t);
        }
        self.hub.enter_open(key);
        self.hub.metrics.handshakes += 1;
        self.arm_heartbeat(key, true);
        let auth_ms = crate::hub::millis(self.config.auth_timeout);
        if auth_ms > 0 {
            let timer = self
                .hub
                .timers
                .insert(self.hub.now + auth_ms, TimerEvent::Auth(id));
            if let Some(conn) = self.hub.conns.get_mut(key) {
                conn.auth_deadline = Some(timer);
            }
        }
        log::debug!("socket {id}: open");
        if let Some(client_id) = client_id {
            if let Err(e) = self.hub.bind_client(id, &client_id) {
                log::error!(
                    "socket {id}: on_upgrade's client id cannot be bound ({e}); closing 1011"
                );
                let _ = self
                    .hub
                    .close_socket(id, CloseCode::INTERNAL, "internal error");
            }
        }
        if let Some(session) = session {
            if let Err(e) = self.hub.set_session(id, session) {
                log::error!("socket {id}: on_upgrade's session cannot be set ({e}); closing 1011");
                let _ = self
                    .hub
                    .close_socket(id, CloseCode::INTERNAL, "internal error");
            }
        }
        if !self.hub.is_socket_online(id) {
            return self.notify_closed();
        }
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
        crate::log::peer_log!(
            "socket {} ({}): refused: {} {err}",
            conn.id,
            conn.peer.addr(),
            err.status()
        );
        self.hub.metrics.handshake_failures += 1;
        conn.input.release();
        let mut response = Vec::new();
        gmws_protocol::handshake::write_error_response(&mut response, err);
        self.hub.queue_raw(key, &response);
        self.hub.finish(key);
    }

    /// The peer shut its side: nothing more will be read. What is queued (a
    /// Close reply, an HTTP response) is still written, within close_timeout.
    fn on_eof(&mut self, key: usize) {
        // A frame deferred for it is queued, to be written as queued output is.
        self.hub.undefer(key);
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        let (next, action) = conn.state.on_peer_eof(conn.output.len());
        log::debug!("socket {}: EOF in {:?}", conn.id, conn.state);
        conn.input.release();
        conn.decoder.release_all();
        let was_closing = !matches!(conn.state, State::Http { .. } | State::Open);
        self.hub.leave_open(key, CloseReason::ConnectionLost);
        self.hub.set_state(key, next);
        match action {
            Action::Drop => self.drop_conn(key),
            _ => {
                if !was_closing {
                    self.hub.arm_deadline(key, DeadlineKind::Close);
                }
                self.hub.mark_dirty(key);
                self.hub.account(key);
                self.notify_closed();
            }
        }
    }
}
