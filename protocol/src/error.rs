//! Errors: one enum for the frame layer, one for the opening handshake.
//!
//! Each [`ProtocolError`] knows the close code the peer must receive
//! ([`ProtocolError::close_code`]); each [`HandshakeError`] knows its HTTP status
//! ([`HandshakeError::status`]). Neither carries a `String`: they are small,
//! `Copy`, and cheap on the paths a hostile peer can drive.

use std::fmt;

/// A violation of RFC 6455 (or of a configured limit) by the peer's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 set without a negotiated extension (§5.2).
    ReservedBits,
    /// Opcode 0x3-0x7 or 0xB-0xF (§5.2).
    ReservedOpcode(u8),
    /// A client sent an unmasked frame (§5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    MaskedFrame,
    /// A control frame with a payload over 125 bytes (§5.5).
    ControlFrameTooLong,
    /// A control frame without FIN (§5.5).
    FragmentedControlFrame,
    /// A continuation frame with no fragmented message open (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is open (§5.4).
    ExpectedContinuation,
    /// A 64-bit length with the most significant bit set (§5.2).
    InvalidLength,
    /// A frame longer than the configured `max_frame_size`.
    FrameTooLarge,
    /// A message longer than the configured `max_message_size`.
    MessageTooLarge,
    /// More fragments in one message than the configured `max_fragments`.
    TooManyFragments,
    /// A text message (or close reason) that is not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1).
    InvalidClosePayload,
    /// A close code that may not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A data frame after the peer's close frame (§5.5.1).
    DataAfterClose,
    /// A compressed message (permessage-deflate, RFC 7692) that is not
    /// valid DEFLATE data: closed 1007, as payload data inconsistent with
    /// the message.
    BadCompressedData,
    /// RSV1 (compressed) on a continuation or control frame: only a
    /// message's first frame says it is compressed (RFC 7692 §6).
    MisplacedCompressionBit,
}

impl ProtocolError {
    /// The close code to send to the peer for this error (§7.4.1).
    ///
    /// 1002 for protocol violations, 1007 for invalid UTF-8 or compressed
    /// data, 1009 for sizes over
    /// a limit, 1008 (policy) for too many fragments.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::BadCompressedData => 1007,
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => 1009,
            ProtocolError::TooManyFragments => 1008,
            _ => 1002,
        }
    }

    /// A short static reason for the close frame and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::UnmaskedFrame => "client frame not masked",
            ProtocolError::MaskedFrame => "server frame masked",
            ProtocolError::ControlFrameTooLong => "control frame over 125 bytes",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "new message inside a fragmented one",
            ProtocolError::InvalidLength => "invalid payload length",
            ProtocolError::FrameTooLarge => "frame too large",
            ProtocolError::MessageTooLarge => "message too large",
            ProtocolError::TooManyFragments => "too many fragments",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::InvalidClosePayload => "close payload of one byte",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::DataAfterClose => "frame after close",
            ProtocolError::BadCompressedData => "invalid compressed data",
            ProtocolError::MisplacedCompressionBit => "RSV1 on a continuation or control frame",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why an opening handshake (or a plain HTTP request head) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request head is not valid HTTP/1.x.
    Malformed,
    /// The request head is longer than the configured limit.
    HeadTooLarge,
    /// The request has more headers than the configured limit.
    TooManyHeaders,
    /// Not HTTP/1.1.
    HttpVersion,
    /// An upgrade request whose method is not GET.
    MethodNotAllowed,
    /// An HTTP/1.1 request without a `Host` header (RFC 9112 §3.2).
    MissingHost,
    /// A request with more than one `Host` header line (RFC 9112 §3.2: 400,
    /// whatever the HTTP version).
    DuplicateHost,
    /// No `Upgrade: websocket` token.
    NotWebSocketUpgrade,
    /// No `upgrade` token in `Connection`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` missing or not base64 of 16 bytes.
    BadKey,
    /// `Sec-WebSocket-Version` missing or not 13.
    UnsupportedVersion,
    /// The `Origin` is not in the allowed list.
    OriginNotAllowed,
    /// Client role: the response is not a valid 101 for our key.
    BadResponse,
    /// Client role: the server chose a subprotocol the client did not offer
    /// (RFC 6455 §4.1: the client must fail the connection).
    UnofferedSubprotocol,
    /// Client role: the server named an extension the client did not offer
    /// (this client offers none).
    UnofferedExtension,
    /// Client role: a host, path or subprotocol that cannot be written into a
    /// request head (control characters, spaces, a path not starting with
    /// `/`, a subprotocol that is not an HTTP token, a repeated subprotocol).
    InvalidClientRequest,
}

impl HandshakeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => 431,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::NotWebSocketUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::OriginNotAllowed => 403,
            HandshakeError::Malformed
            | HandshakeError::HttpVersion
            | HandshakeError::MissingHost
            | HandshakeError::DuplicateHost
            | HandshakeError::BadKey
            | HandshakeError::BadResponse
            | HandshakeError::UnofferedSubprotocol
            | HandshakeError::UnofferedExtension
            | HandshakeError::InvalidClientRequest => 400,
        }
    }

    /// A short static description, for the response body and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Malformed => "malformed request",
            HandshakeError::HeadTooLarge => "request head too large",
            HandshakeError::TooManyHeaders => "too many headers",
            HandshakeError::HttpVersion => "HTTP/1.1 required",
            HandshakeError::MethodNotAllowed => "upgrade requires GET",
            HandshakeError::MissingHost => "missing Host header",
            HandshakeError::DuplicateHost => "more than one Host header",
            HandshakeError::NotWebSocketUpgrade => "Upgrade: websocket required",
            HandshakeError::MissingConnectionUpgrade => "Connection: upgrade required",
            HandshakeError::BadKey => "invalid Sec-WebSocket-Key",
            HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version: 13 required",
            HandshakeError::OriginNotAllowed => "origin not allowed",
            HandshakeError::BadResponse => "invalid handshake response",
            HandshakeError::UnofferedSubprotocol => {
                "server chose a subprotocol that was not offered"
            }
            HandshakeError::UnofferedExtension => "server named an extension that was not offered",
            HandshakeError::InvalidClientRequest => {
                "invalid host, path or subprotocol for a request"
            }
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HandshakeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_small() {
        assert!(std::mem::size_of::<ProtocolError>() <= 4);
        assert_eq!(std::mem::size_of::<HandshakeError>(), 1);
    }

    #[test]
    fn close_codes() {
        assert_eq!(ProtocolError::ReservedBits.close_code(), 1002);
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
        assert_eq!(ProtocolError::FrameTooLarge.close_code(), 1009);
        assert_eq!(ProtocolError::MessageTooLarge.close_code(), 1009);
        assert_eq!(ProtocolError::TooManyFragments.close_code(), 1008);
        assert_eq!(ProtocolError::InvalidCloseCode(999).close_code(), 1002);
    }

    #[test]
    fn statuses() {
        assert_eq!(HandshakeError::HeadTooLarge.status(), 431);
        assert_eq!(HandshakeError::TooManyHeaders.status(), 431);
        assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
        assert_eq!(HandshakeError::BadKey.status(), 400);
        assert_eq!(HandshakeError::MethodNotAllowed.status(), 405);
    }
}
