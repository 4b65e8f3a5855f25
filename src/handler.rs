//! The application's hooks: what happens on connect, message, close, timer.
//!
//! Every method has a default, so an application implements only what it needs.
//! Each receives `&mut Hub`, through which it acts on any socket: the hub queues
//! the work and the event loop carries it out after the hook returns. Hooks must
//! not block: they run on the event loop. A panic inside a hook is caught; the
//! socket the hook was called for is closed with 1011 and the loop goes on.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::auth::jwt;
use crate::http::{HttpRequest, Response};
use crate::hub::{Hub, TimerHandle};
use crate::message::{codes, envelope, id_value, Envelope};
use crate::socket_id::SocketId;
use gmws_protocol::ProtocolError;

/// Why a socket closed, as told to [`Handler::on_close`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent a close frame, with its code if it gave one.
    ClientClose(Option<u16>),
    /// The TCP connection ended (FIN or reset) without a close frame.
    ConnectionLost,
    /// The client broke the protocol; the close frame carried `error.close_code()`.
    ProtocolError(ProtocolError),
    /// The client left `ping_timeout_count` pings unanswered.
    HeartbeatTimeout,
    /// The client did not bind a client id within `auth_timeout`.
    AuthTimeout,
    /// The client did not read its messages: more than `max_backpressure` bytes queued.
    Backpressure,
    /// The server (a handler or the HTTP API) closed the socket with this code.
    ServerClose(u16),
    /// A handler panicked while handling this socket (closed with 1011).
    HandlerPanic,
    /// The server is shutting down (closed with 1001).
    Shutdown,
    /// The client sent more than `invalid_message_limit` invalid messages in
    /// `invalid_message_window` (closed with 1008).
    RateLimited,
    /// The process held more than `max_buffer_memory` and this socket held
    /// the most (closed with 1013).
    MemoryBudget,
}

impl CloseReason {
    /// A short label for logs and metrics (`client_close`, `heartbeat_timeout`, …).
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::ClientClose(_) => "client_close",
            CloseReason::ConnectionLost => "connection_lost",
            CloseReason::ProtocolError(_) => "protocol_error",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::AuthTimeout => "auth_timeout",
            CloseReason::Backpressure => "backpressure",
            CloseReason::ServerClose(_) => "server_close",
            CloseReason::HandlerPanic => "handler_panic",
            CloseReason::Shutdown => "shutdown",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::MemoryBudget => "memory_budget",
        }
    }
}

/// The application: override the hooks you need.
pub trait Handler {
    /// A WebSocket handshake completed: `socket` is open.
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let _ = (hub, socket);
    }

    /// A text message arrived (valid UTF-8, reassembled from its fragments).
    ///
    /// The default speaks the JSON envelope protocol: it parses the envelope
    /// (bad JSON: an error envelope), answers `ping` with `pong`, runs `bind`
    /// through [`Handler::on_auth`], and hands every other type to
    /// [`Handler::on_message`]. Override it to speak raw text instead.
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        dispatch_envelope(self, hub, socket, text);
    }

    /// A `bind` request: return the client id to bind `socket` to, or why not.
    ///
    /// The default takes `data.client_id` (a string, or an integer kept as its
    /// decimal string). With `auth_secret` configured, `data.token` must be an
    /// HS256 JWT signed with it whose `sub` is that client id, checked against
    /// the wall clock of the moment and the `auth_*` keys: an `exp` (unless
    /// `auth_require_exp` is off) not passed and an `nbf` reached, both give or
    /// take `auth_leeway`; `aud` holding `auth_audience` and `iss` equal to
    /// `auth_issuer` when those are set (see [`jwt`]).
    fn on_auth(&mut self, hub: &mut Hub, socket: SocketId, data: &Value) -> Result<String, String> {
        let _ = socket;
        default_auth(hub, data)
    }

    /// An envelope of a type the framework does not handle itself (not `bind`,
    /// not `ping`). The default answers `unknown_type`.
    fn on_message(&mut self, hub: &mut Hub, socket: SocketId, message: &Envelope) {
        hub.reply_error(
            socket,
            codes::UNKNOWN_TYPE,
            "unknown message type",
            Some(&message.kind),
        );
    }

    /// A binary message arrived.
    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        let _ = (hub, socket, data);
    }

    /// `socket` closed (or began closing): it is no longer online. Its data
    /// (client id, groups, session) can still be read here; it is removed after
    /// this hook returns.
    fn on_close(&mut self, hub: &mut Hub, socket: SocketId, reason: &CloseReason) {
        let _ = (hub, socket, reason);
    }

    /// A timer from [`Hub::add_timer`] fired (`socket`: the socket it is tied to).
    fn on_timer(&mut self, hub: &mut Hub, timer: TimerHandle, socket: Option<SocketId>) {
        let _ = (hub, timer, socket);
    }

    /// A plain HTTP request that no route matched. Return a response to serve
    /// it, or `None` for the server's 404 (or 405).
    fn on_http(&mut self, hub: &mut Hub, request: &HttpRequest) -> Option<Response> {
        let _ = (hub, request);
        None
    }
}

/// The default `on_text`: the JSON envelope protocol's framework part.
pub fn dispatch_envelope<H: Handler + ?Sized>(
    handler: &mut H,
    hub: &mut Hub,
    socket: SocketId,
    text: &str,
) {
    let message = match Envelope::parse(text) {
        Ok(message) => message,
        Err(why) => {
            hub.reply_error(socket, codes::BAD_JSON, &why, None);
            return;
        }
    };
    match message.kind.as_str() {
        "ping" => {
            hub.send_to_socket(socket, &envelope("pong", Value::Null));
        }
        "bind" => match handler.on_auth(hub, socket, &message.data) {
            Ok(client_id) => match hub.bind_client(socket, &client_id) {
                Ok(()) => {
                    let data = json!({ "socket_id": socket.to_string(), "client_id": client_id });
                    hub.send_to_socket(socket, &envelope("bind", data));
                }
                Err(e) => hub.reply_error(socket, codes::BAD_REQUEST, &e.to_string(), Some("bind")),
            },
            Err(why) => {
                log::debug!("socket {socket}: bind refused: {why}");
                hub.reply_error(socket, codes::AUTH_FAILED, &why, Some("bind"));
            }
        },
        _ => handler.on_message(hub, socket, &message),
    }
}

/// The default `on_auth`: see [`Handler::on_auth`].
pub fn default_auth(hub: &Hub, data: &Value) -> Result<String, String> {
    let client_id = data
        .get("client_id")
        .and_then(id_value)
        .ok_or("data.client_id (string or integer) required")?;
    let Some(secret) = hub.config().auth_secret.as_deref() else {
        return Ok(client_id);
    };
    let token = data
        .get("token")
        .and_then(Value::as_str)
        .ok_or("data.token required")?;
    // The wall clock at each verification: token times are wall-clock times.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let options = hub.config().verify_options();
    let claims =
        jwt::verify_hs256(token, secret.as_bytes(), now, &options).map_err(|e| e.to_string())?;
    if claims.sub != client_id {
        return Err("token subject does not match client_id".to_owned());
    }
    Ok(client_id)
}
