//! `gmws-protocol`: the WebSocket protocol (RFC 6455) without I/O.
//!
//! This crate turns bytes into protocol events and events into bytes. It opens
//! no sockets, reads no clock, draws no random numbers and knows nothing of JSON:
//! the caller owns every buffer and every side effect. The `gmws` server, its
//! load generator, its tests and its fuzzers all drive it the same way.
//!
//! - [`handshake`]: parse and validate an HTTP/1.1 upgrade request, compute
//!   `Sec-WebSocket-Accept`, build the 101 or error response; the client role
//!   builds requests and validates responses.
//! - [`frame`]: frame headers (FIN, RSV1-3, opcode, mask, 7/16/64-bit lengths).
//! - [`mask`]: the XOR masking of payloads.
//! - [`decoder`]: frames and messages out of a byte stream, with limits,
//!   fragment assembly and streaming UTF-8 validation.
//! - [`encoder`]: frames into a caller's buffer.
//! - [`close`]: close codes, close payloads, the close handshake state.
//! - [`utf8`]: an incremental UTF-8 validator.
//! - [`error`]: [`ProtocolError`] (with its close code) and [`HandshakeError`]
//!   (with its HTTP status).
//!
//! "Need more bytes" is never an error: functions answer `Ok(None)` and consume
//! nothing they cannot use.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use close::{CloseCode, CloseFrame, CloseState};
pub use decoder::{Decoder, Limits, Message, Role};
pub use error::{HandshakeError, ProtocolError};
pub use frame::{FrameHeader, OpCode};
