//! Shared vocabulary of closing: the codes on the wire and why a socket
//! closed. Below the hub, the handler and the metrics, so none of them
//! imports another for it.

pub use gmws_protocol::CloseCode;
use gmws_protocol::ProtocolError;

/// Why a socket closed, as told to [`crate::Handler::on_close`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent a close frame, with its code if it gave one.
    ClientClose(Option<CloseCode>),
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
    ServerClose(CloseCode),
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
