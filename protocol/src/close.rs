//! Closing (RFC 6455 §5.5.1, §7): close codes, close payloads, handshake state.

use crate::error::ProtocolError;

/// A close status code (§7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: going away (server shutdown, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1007: data inconsistent with the message type (invalid UTF-8).
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: message too big.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: unexpected condition in the server.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1013: try again later (the server is overloaded).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// Whether this code may appear in a close frame on the wire.
    ///
    /// Valid: 1000-1003, 1007-1011 (1012-1014 are registered by IANA and
    /// accepted too), 3000-4999. Invalid: below 1000, 1004 (reserved), 1005 and
    /// 1006 (never sent), 1015 (TLS, never sent), 1016-2999 (unassigned).
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// A parsed close frame payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code.
    pub code: CloseCode,
    /// The reason, valid UTF-8, at most 123 bytes.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parse a close payload: empty (no code), or a valid code and a UTF-8 reason.
    pub fn parse(payload: &'a [u8]) -> Result<Option<CloseFrame<'a>>, ProtocolError> {
        match payload {
            [] => Ok(None),
            [_] => Err(ProtocolError::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
                Ok(Some(CloseFrame { code, reason }))
            }
        }
    }

    /// Append this close payload (code + reason, the reason cut to 123 bytes on a
    /// character boundary) to `out`.
    pub fn encode_payload(code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(&code.0.to_be_bytes());
        out.extend_from_slice(truncate_reason(reason).as_bytes());
    }
}

/// Cut a reason to the 123 bytes a control frame leaves, on a char boundary.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= 123 {
        return reason;
    }
    let mut end = 123;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Where a connection is in the close handshake (§7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CloseState {
    /// Open: data flows both ways.
    #[default]
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// The peer sent a close frame; we owe it ours.
    CloseReceived,
    /// Both close frames have been exchanged; only the TCP close remains.
    Closed,
}

impl CloseState {
    /// Whether data frames may still be read from the peer.
    pub fn can_read(self) -> bool {
        matches!(self, CloseState::Open | CloseState::CloseSent)
    }

    /// Whether data frames may still be sent to the peer.
    pub fn can_write(self) -> bool {
        matches!(self, CloseState::Open | CloseState::CloseReceived)
    }

    /// The state after we send a close frame.
    pub fn on_close_sent(self) -> CloseState {
        match self {
            CloseState::Open => CloseState::CloseSent,
            _ => CloseState::Closed,
        }
    }

    /// The state after the peer's close frame arrives.
    pub fn on_close_received(self) -> CloseState {
        match self {
            CloseState::Open => CloseState::CloseReceived,
            _ => CloseState::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4000, 4999,
        ] {
            assert!(CloseCode(ok).is_valid_on_wire(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(bad).is_valid_on_wire(), "{bad}");
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(CloseFrame::parse(&[]), Ok(None));
        assert_eq!(
            CloseFrame::parse(&[3]),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xE8, b'o', b'k']),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: "ok"
            }))
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xEC]),
            Err(ProtocolError::InvalidCloseCode(1004))
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xE8, 0xFF]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn reason_truncated_on_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123);
        assert_eq!(cut.len(), 122);
    }

    #[test]
    fn state_machine() {
        let s = CloseState::Open;
        assert!(s.can_read() && s.can_write());
        let sent = s.on_close_sent();
        assert_eq!(sent, CloseState::CloseSent);
        assert!(sent.can_read() && !sent.can_write());
        assert_eq!(sent.on_close_received(), CloseState::Closed);
        let recv = s.on_close_received();
        assert!(!recv.can_read() && recv.can_write());
        assert_eq!(recv.on_close_sent(), CloseState::Closed);
    }
}
