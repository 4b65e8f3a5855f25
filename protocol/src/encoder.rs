//! The frame encoder: frames appended to a caller's buffer.
//!
//! A server's frames are unmasked; a client passes a fresh masking key for each
//! frame (the protocol crate draws no random numbers). A broadcast is encoded
//! once with [`encode_frame`] and the same bytes are queued on every socket.

use crate::close::{CloseCode, CloseFrame};
use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::mask::apply_mask;

/// Append one frame (FIN as given, RSV clear) to `out`, masking the payload
/// with `mask` when given.
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode_into(&mut head);
    out.reserve(head_len + payload.len());
    out.extend_from_slice(&head[..head_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// Append a whole unfragmented message (text or binary) to `out`.
pub fn encode_message(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
    encode_frame(out, opcode, true, payload, mask);
}

/// Append a close frame with `code` and `reason` (cut to 123 bytes) to `out`.
pub fn encode_close(out: &mut Vec<u8>, code: CloseCode, reason: &str, mask: Option<[u8; 4]>) {
    let mut payload = Vec::with_capacity(2 + reason.len().min(123));
    CloseFrame::encode_payload(code, reason, &mut payload);
    encode_frame(out, OpCode::Close, true, &payload, mask);
}

/// Append a close frame with no payload (no status code) to `out`.
pub fn encode_empty_close(out: &mut Vec<u8>, mask: Option<[u8; 4]>) {
    encode_frame(out, OpCode::Close, true, &[], mask);
}

/// The length of the frame `encode_frame` would write for a payload of `len` bytes.
pub fn frame_len(len: usize, masked: bool) -> usize {
    let ext = match len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + ext + if masked { 4 } else { 0 } + len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §5.7 example frames.
    macro_rules! rfc_example {
        ($name:ident, $opcode:expr, $fin:expr, $payload:expr, $mask:expr, $expected:expr) => {
            #[test]
            fn $name() {
                let mut out = Vec::new();
                encode_frame(&mut out, $opcode, $fin, $payload, $mask);
                assert_eq!(out, $expected.to_vec());
            }
        };
    }

    rfc_example!(
        unmasked_hello,
        OpCode::Text,
        true,
        b"Hello",
        None,
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    rfc_example!(
        masked_hello,
        OpCode::Text,
        true,
        b"Hello",
        Some([0x37, 0xfa, 0x21, 0x3d]),
        [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    rfc_example!(
        fragment_hel,
        OpCode::Text,
        false,
        b"Hel",
        None,
        [0x01, 0x03, 0x48, 0x65, 0x6c]
    );
    rfc_example!(
        fragment_lo,
        OpCode::Continuation,
        true,
        b"lo",
        None,
        [0x80, 0x02, 0x6c, 0x6f]
    );
    rfc_example!(
        unmasked_ping,
        OpCode::Ping,
        true,
        b"Hello",
        None,
        [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    rfc_example!(
        masked_pong,
        OpCode::Pong,
        true,
        b"Hello",
        Some([0x37, 0xfa, 0x21, 0x3d]),
        [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );

    #[test]
    fn binary_256_and_64k_length_forms() {
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Binary, true, &[0u8; 256], None);
        assert_eq!(&out[..4], &[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(out.len(), frame_len(256, false));
        out.clear();
        encode_frame(&mut out, OpCode::Binary, true, &vec![0u8; 65536], None);
        assert_eq!(&out[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(out.len(), frame_len(65536, false));
    }

    #[test]
    fn close_frames() {
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::NORMAL, "bye", None);
        assert_eq!(out, [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']);
        out.clear();
        encode_close(&mut out, CloseCode::NORMAL, &"x".repeat(300), None);
        assert_eq!(out.len(), 2 + 125);
        out.clear();
        encode_empty_close(&mut out, None);
        assert_eq!(out, [0x88, 0x00]);
    }
}
