//! Decoded frames to the handler: messages, pings, pongs, the peer's Close.
//! Handler hooks run under `catch_unwind`: a panic closes only its socket.

use std::panic::{catch_unwind, AssertUnwindSafe};

use gmws_protocol::decoder::{Decoder, Message, Role};
use gmws_protocol::deflate::Inflater;
use gmws_protocol::encoder::{encode_close, encode_empty_close};
use gmws_protocol::{CloseCode, OpCode};

use crate::close::CloseReason;
use crate::connection::{DeadlineKind, State};
use crate::handler::Handler;
use crate::hub::Hub;
use crate::socket_id::SocketId;

/// Decode and dispatch frames from `data` for slot `key`. Returns the bytes
/// consumed; the rest must be carried to the next read. Stops early when the
/// connection stops decoding (it closed) or the turn's fan-out budget is
/// spent (the caller defers the rest to the next turn).
pub(super) fn dispatch_frames<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    inflater: &mut Inflater,
    key: usize,
    data: &mut [u8],
) -> usize {
    let Some(conn) = hub.conns.get_mut(key) else {
        return data.len();
    };
    let id = conn.id;
    let limits = conn.decoder.limits();
    let mut decoder = std::mem::replace(&mut conn.decoder, Decoder::new(Role::Server, limits));
    let compression = decoder.compression();
    let mut pos = 0;
    loop {
        match hub.conn(id) {
            Some(c) if c.state.is_websocket() => {}
            _ => break,
        }
        if hub.turn_exhausted() {
            break;
        }
        let decoded = if compression {
            decoder.decode_inflating(&mut data[pos..], inflater)
        } else {
            decoder.decode(&mut data[pos..])
        };
        match decoded {
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
        if conn.state.is_websocket() {
            decoder.release_buffers();
            conn.decoder = decoder;
        }
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
            // After our Close, nothing more is sent (RFC 6455 §5.5.1).
            if hub.is_socket_online(id) {
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
            let state = conn.state;
            if state == State::Open {
                // Echo the peer's code (§5.5.1), then close TCP first (§7.1.1).
                let mut reply = Vec::with_capacity(4);
                match frame {
                    Some(f) => encode_close(&mut reply, f.code, "", None),
                    None => encode_empty_close(&mut reply, None),
                }
                hub.queue_raw(key, &reply);
                hub.leave_open(key, CloseReason::ClientClose(frame.map(|f| f.code)));
            }
            hub.set_state(key, state.on_close_received());
            if state == State::Open {
                hub.arm_deadline(key, DeadlineKind::Close);
            }
            if let Some(conn) = hub.conns.get_mut(key) {
                conn.input.release();
            }
            hub.mark_dirty(key);
        }
    }
}

/// Call a handler hook, catching a panic: the socket is closed with 1011.
pub(super) fn call_handler<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    id: SocketId,
    hook: impl FnOnce(&mut H, &mut Hub),
) {
    if catch_unwind(AssertUnwindSafe(|| hook(handler, hub))).is_err() {
        hub.metrics.handler_panics += 1;
        log::error!("socket {id}: handler panicked; closing the socket with 1011");
        if hub.is_socket_online(id) {
            hub.begin_close_id(
                id,
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
            log::debug!("socket {id}: closed ({})", reason.label());
            if catch_unwind(AssertUnwindSafe(|| handler.on_close(hub, id, &reason))).is_err() {
                hub.metrics.handler_panics += 1;
                log::error!("socket {id}: on_close panicked");
            }
            hub.forget(id);
        }
    }
}
