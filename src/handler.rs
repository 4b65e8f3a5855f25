//! The application's hooks: what happens on connect, message, close, timer.
//!
//! Every method has a default, so an application implements only what it needs.
//! Each receives `&mut Hub`, through which it acts on any socket: the hub queues
//! the work and the event loop carries it out after the hook returns. Hooks must
//! not block: they run on the event loop. A panic inside a hook is caught; the
//! socket the hook was called for is closed with 1011 and the loop goes on.

use crate::hub::Hub;
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
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let _ = (hub, socket, text);
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
}
