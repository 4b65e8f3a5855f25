//! `--deflate`: permessage-deflate (RFC 7692) on the load generator's
//! connections: the offer in the upgrade request, the server's answer, and
//! each message compressed on the way out and inflated on the way in.
//!
//! The protocol crate's client handshake and decoder do not know the
//! extension yet (its response check refuses any extension; its decoder
//! refuses RSV1), so this module works around both without changing them:
//!
//! - the offer is one more header line put into the request
//!   ([`add_offer`]); the answer's `Sec-WebSocket-Extensions` lines are read
//!   here and blanked in a copy of the head that the protocol crate then
//!   checks as usual ([`split_answer`]);
//! - [`Inbound`] watches frame boundaries ahead of the decoder and, on the
//!   first frame of a compressed message, clears RSV1 and presents a text
//!   message as binary (compressed bytes are not UTF-8); the message is
//!   inflated and, if it was text, checked as UTF-8 here.
//!
//! zlib state: with `client_no_context_takeover` agreed one compressor
//! serves every connection of a thread, else each connection has its own;
//! the same for inflaters and `server_no_context_takeover`.

use std::cell::RefCell;
use std::rc::Rc;

use crate::protocol::deflate::client::ClientOffer;
use crate::protocol::deflate::{Compressor, Decompressor, DeflateParams, InflateError};
use crate::protocol::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::protocol::mask::apply_mask;

/// RSV1 in a frame's first byte: "compressed" (RFC 7692 §6).
const RSV1: u8 = 0x40;

/// Add the offer's `Sec-WebSocket-Extensions` line to a finished request
/// head (it ends with an empty line).
pub fn add_offer(request: &mut Vec<u8>, offer: &ClientOffer) {
    if request.ends_with(b"\r\n\r\n") {
        request.truncate(request.len() - 2);
    }
    request.extend_from_slice(b"Sec-WebSocket-Extensions: ");
    request.extend_from_slice(offer.header_value().as_bytes());
    request.extend_from_slice(b"\r\n\r\n");
}

/// The response head with its extension lines blanked, and those lines.
#[derive(Debug)]
pub struct Answer {
    /// A copy of the head whose `Sec-WebSocket-Extensions` values are
    /// spaces, for the protocol crate's response check.
    pub head: Vec<u8>,
    /// The `Sec-WebSocket-Extensions` values, one per header line.
    pub extensions: Vec<String>,
}

/// Split the response in `buf` into [`Answer`]. `Ok(None)`: the head is
/// not complete yet. `Err`: not an HTTP response head.
pub fn split_answer(buf: &[u8]) -> Result<Option<Answer>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = buf[..len].to_vec();
    let mut extensions = Vec::new();
    for h in response.headers.iter() {
        if !h.name.eq_ignore_ascii_case("sec-websocket-extensions") {
            continue;
        }
        extensions.push(String::from_utf8_lossy(h.value).into_owned());
        // The value is a slice of `buf`: blank the same bytes in the copy.
        let start = h.value.as_ptr() as usize - buf.as_ptr() as usize;
        head[start..start + h.value.len()].fill(b' ');
    }
    Ok(Some(Answer { head, extensions }))
}

/// One zlib state, the thread's or the connection's own.
#[derive(Debug)]
enum Slot<T> {
    Shared(Rc<RefCell<T>>),
    Own(Box<T>),
}

impl<T> Slot<T> {
    fn with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        match self {
            // Never borrowed twice: each use is one call, and calls do not
            // nest.
            Slot::Shared(cell) => f(&mut cell.borrow_mut()),
            Slot::Own(own) => f(own),
        }
    }
}

/// A compressor and its output buffer.
#[derive(Debug)]
struct Deflater {
    compressor: Compressor,
    wire: Vec<u8>,
}

/// The zlib states one thread shares between its connections (those that
/// agreed on no context takeover), by window size.
#[derive(Debug, Default)]
pub struct SharedStates {
    deflaters: Vec<(u8, Rc<RefCell<Deflater>>)>,
    inflaters: Vec<(u8, Rc<RefCell<Decompressor>>)>,
    /// Inflated messages, one at a time.
    pub inflated: Vec<u8>,
}

impl SharedStates {
    /// The outbound and inbound halves for a connection that agreed on
    /// `params`.
    pub fn for_connection(&mut self, params: &DeflateParams) -> (Outbound, Inbound) {
        let client_bits = params.client_max_window_bits;
        let deflater = if params.client_no_context_takeover {
            Slot::Shared(shared(&mut self.deflaters, client_bits, || Deflater {
                compressor: Compressor::new(client_bits, true),
                wire: Vec::new(),
            }))
        } else {
            Slot::Own(Box::new(Deflater {
                compressor: Compressor::new(client_bits, false),
                wire: Vec::new(),
            }))
        };
        let server_bits = params.server_max_window_bits;
        let inflater = if params.server_no_context_takeover {
            Slot::Shared(shared(&mut self.inflaters, server_bits, || {
                Decompressor::new(server_bits, true)
            }))
        } else {
            Slot::Own(Box::new(Decompressor::new(server_bits, false)))
        };
        (
            Outbound { deflater },
            Inbound {
                inflater,
                frame_left: 0,
                compressed: None,
            },
        )
    }
}

/// The state for `bits` in `list`, made by `make` the first time.
fn shared<T>(
    list: &mut Vec<(u8, Rc<RefCell<T>>)>,
    bits: u8,
    make: impl FnOnce() -> T,
) -> Rc<RefCell<T>> {
    if let Some((_, state)) = list.iter().find(|(b, _)| *b == bits) {
        return state.clone();
    }
    let state = Rc::new(RefCell::new(make()));
    list.push((bits, state.clone()));
    state
}

/// The sending half: compresses each data message.
#[derive(Debug)]
pub struct Outbound {
    deflater: Slot<Deflater>,
}

impl Outbound {
    /// Append `payload` compressed, as one masked frame with RSV1, to `out`.
    pub fn encode(&mut self, out: &mut Vec<u8>, opcode: OpCode, payload: &[u8], mask: [u8; 4]) {
        self.deflater.with(|d| {
            d.wire.clear();
            d.compressor.compress(payload, &mut d.wire);
            let header = FrameHeader {
                fin: true,
                rsv: 0b100,
                opcode,
                mask: Some(mask),
                payload_len: d.wire.len() as u64,
            };
            let mut head = [0u8; MAX_HEADER_LEN];
            let head_len = header.encode_into(&mut head);
            out.reserve(head_len + d.wire.len());
            out.extend_from_slice(&head[..head_len]);
            let start = out.len();
            out.extend_from_slice(&d.wire);
            apply_mask(&mut out[start..], mask, 0);
        });
    }
}

/// The receiving half: frame boundaries ahead of the decoder, and inflation.
#[derive(Debug)]
pub struct Inbound {
    inflater: Slot<Decompressor>,
    /// Bytes of the current frame (header included) the decoder has not
    /// consumed yet; 0 at a frame boundary.
    frame_left: u64,
    /// The data message being received is compressed: `Some(was_text)`.
    compressed: Option<bool>,
}

impl Inbound {
    /// Call before the decoder reads `data`, which starts where it stopped.
    /// At a frame boundary with a whole header: on the first frame of a
    /// compressed data message, clear RSV1 and make a text opcode binary.
    /// RSV1 anywhere else is left for the decoder to refuse.
    pub fn before_decode(&mut self, data: &mut [u8]) {
        if self.frame_left > 0 {
            return;
        }
        let Ok(Some((header, header_len))) = FrameHeader::parse(data) else {
            return; // a partial header, or one the decoder will refuse
        };
        self.frame_left = (header_len as u64).saturating_add(header.payload_len);
        let first_data = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if !first_data {
            return;
        }
        self.compressed = None;
        if header.rsv == 0b100 {
            self.compressed = Some(header.opcode == OpCode::Text);
            data[0] &= !RSV1;
            if header.opcode == OpCode::Text {
                data[0] = (data[0] & 0xf0) | OpCode::Binary.as_u8();
            }
        }
    }

    /// Call with what the decoder consumed.
    pub fn after_decode(&mut self, consumed: usize) {
        self.frame_left = self.frame_left.saturating_sub(consumed as u64);
    }

    /// Whether the message the decoder just completed was compressed:
    /// `Some(was_text)`. Resets for the next message.
    pub fn take_compressed(&mut self) -> Option<bool> {
        self.compressed.take()
    }

    /// Inflate one compressed message into `out` (cleared first), at most
    /// `max` bytes.
    pub fn inflate(
        &mut self,
        payload: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        out.clear();
        self.inflater.with(|d| d.inflate(payload, max, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decoder::{Decoder, Limits, Message, Role};
    use crate::protocol::handshake::{client_request, parse_response};

    #[test]
    fn the_offer_goes_into_the_request_head() {
        let (mut request, _) = client_request("h", "/", [7; 16], &[]).unwrap();
        add_offer(&mut request, &ClientOffer::default());
        let text = String::from_utf8(request).unwrap();
        assert!(text.ends_with(
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ));
    }

    #[test]
    fn the_answer_is_split_from_the_head() {
        let (_, handshake) = client_request("h", "/", [7; 16], &[]).unwrap();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\nsec-websocket-extensions: \r\n\r\n\x01",
            handshake.accept_key
        );
        assert!(split_answer(&response.as_bytes()[..40]).unwrap().is_none());
        let answer = split_answer(response.as_bytes()).unwrap().unwrap();
        assert_eq!(
            answer.extensions,
            ["permessage-deflate; server_no_context_takeover", ""]
        );
        assert_eq!(answer.head.len(), response.len() - 1);
        // The blanked head passes the protocol crate's check.
        assert!(parse_response(&answer.head, &handshake).unwrap().is_some());
        assert!(parse_response(response.as_bytes(), &handshake).is_err());
        assert!(split_answer(b"\x00\x01 nonsense\r\n\r\n").is_err());
    }

    /// A server frame (unmasked) with RSV1, compressed by our compressor.
    fn compressed_frame(opcode: OpCode, message: &[u8], fin: bool) -> Vec<u8> {
        let mut payload = Vec::new();
        Compressor::new(15, true).compress(message, &mut payload);
        let header = FrameHeader {
            fin,
            rsv: 0b100,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut out = Vec::new();
        header.encode(&mut out);
        out.extend_from_slice(&payload);
        out
    }

    fn params() -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    /// Decode `wire` fed `chunk` bytes at a time, the way the driver does;
    /// the messages, inflated.
    fn receive(wire: &[u8], chunk: usize) -> Vec<(bool, Vec<u8>)> {
        let mut states = SharedStates::default();
        let (_, mut inbound) = states.for_connection(&params());
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        let mut got = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for piece in wire.chunks(chunk) {
            pending.extend_from_slice(piece);
            let mut used = 0;
            loop {
                inbound.before_decode(&mut pending[used..]);
                let (n, message) = decoder.decode(&mut pending[used..]).unwrap();
                inbound.after_decode(n);
                used += n;
                match message {
                    Some(Message::Binary(bytes)) => match inbound.take_compressed() {
                        Some(text) => {
                            let mut out = Vec::new();
                            inbound.inflate(bytes, 1 << 20, &mut out).unwrap();
                            got.push((text, out));
                        }
                        None => got.push((false, bytes.to_vec())),
                    },
                    Some(Message::Text(text)) => got.push((true, text.as_bytes().to_vec())),
                    Some(_) => {}
                    None if n == 0 => break,
                    None => {}
                }
            }
            pending.drain(..used);
        }
        got
    }

    #[test]
    fn compressed_messages_pass_the_decoder_in_any_chunking() {
        let text = "hello, deflate ".repeat(40);
        let mut wire = compressed_frame(OpCode::Text, text.as_bytes(), true);
        // A ping between, an uncompressed binary message, then a
        // compressed binary one in two frames.
        wire.extend_from_slice(&[0x89, 0x01, b'p']);
        wire.extend_from_slice(&[0x82, 0x03, 1, 2, 3]);
        let mut fragmented = compressed_frame(OpCode::Binary, &[9u8; 300], false);
        let split = fragmented.len() - 3;
        let tail = fragmented.split_off(split);
        // Rewrite the length of the first frame and add a continuation.
        let header = FrameHeader::parse(&fragmented).unwrap().unwrap();
        let body = fragmented[header.1..].to_vec();
        let mut first = Vec::new();
        FrameHeader {
            payload_len: body.len() as u64,
            ..header.0
        }
        .encode(&mut first);
        first.extend_from_slice(&body);
        wire.extend_from_slice(&first);
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Continuation,
            mask: None,
            payload_len: tail.len() as u64,
        }
        .encode(&mut wire);
        wire.extend_from_slice(&tail);
        for chunk in [1, 2, 3, 7, 64, wire.len()] {
            let got = receive(&wire, chunk);
            assert_eq!(got.len(), 3, "chunk {chunk}");
            assert_eq!(got[0], (true, text.as_bytes().to_vec()));
            assert_eq!(got[1], (false, vec![1, 2, 3]));
            assert_eq!(got[2], (false, vec![9u8; 300]));
        }
    }

    #[test]
    fn rsv1_where_it_may_not_be_is_refused_by_the_decoder() {
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        let mut states = SharedStates::default();
        let (_, mut inbound) = states.for_connection(&params());
        // A ping with RSV1.
        let mut wire = vec![0xc9, 0x00];
        inbound.before_decode(&mut wire);
        assert!(decoder.decode(&mut wire).is_err());
    }

    #[test]
    fn sent_frames_have_rsv1_and_a_mask() {
        let mut states = SharedStates::default();
        let (mut outbound, mut inbound) = states.for_connection(&params());
        let mut wire = Vec::new();
        outbound.encode(&mut wire, OpCode::Text, b"hello hello hello", [1, 2, 3, 4]);
        let (header, len) = FrameHeader::parse(&wire).unwrap().unwrap();
        assert_eq!(header.rsv, 0b100);
        assert_eq!(header.mask, Some([1, 2, 3, 4]));
        let mut payload = wire[len..].to_vec();
        apply_mask(&mut payload, [1, 2, 3, 4], 0);
        let mut out = Vec::new();
        inbound.inflate(&payload, 100, &mut out).unwrap();
        assert_eq!(out, b"hello hello hello");
        // Connections with no context takeover share one compressor.
        let (_second, _) = states.for_connection(&params());
        assert_eq!(states.deflaters.len(), 1);
        assert_eq!(Rc::strong_count(&states.deflaters[0].1), 3);
    }
}
