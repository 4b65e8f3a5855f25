//! The frame decoder: bytes in, messages out.
//!
//! [`Decoder::decode`] reads from a caller's buffer and answers how many bytes
//! it consumed and, when one is complete, a [`Message`]:
//!
//! - A whole unfragmented data frame already in the buffer is unmasked in place
//!   and handed out borrowing the caller's buffer: no copy, no allocation.
//! - A data frame that is fragmented, or whose payload has not fully arrived, is
//!   streamed: each piece is unmasked, UTF-8-checked (text) and appended to the
//!   decoder's message buffer as it arrives, so an invalid text message fails at
//!   the first bad piece and the caller never has to keep payload bytes.
//! - Control frames (at most 125 bytes) are decoded only when whole; until then
//!   the decoder consumes nothing and the caller keeps the partial frame (at most
//!   [`MAX_CONTROL_FRAME_LEN`] bytes).
//!
//! Every size limit is checked on the frame header, before anything is
//! allocated or copied.
//!
//! With permessage-deflate negotiated ([`Decoder::set_compression`]), a
//! message whose first frame has RSV1 set is compressed: its frames are
//! assembled as they are (their size bounded like any message's), then
//! inflated whole by the caller's [`Inflater`]
//! ([`Decoder::decode_inflating`]), at most `max_message_size` bytes
//! (more: 1009), and a text message is UTF-8-checked once inflated.
//!
//! # Call-order contract
//!
//! Call `decode` in a loop on the unconsumed rest of the input until it returns
//! `(0, None)`; bytes it did not consume must be presented again, first, with
//! the next input. A returned message borrows the decoder or the buffer and must
//! be dropped before the next call. After an error, the decoder's state is
//! unspecified: close the connection.

use crate::close::CloseFrame;
use crate::deflate::{InflateError, Inflater};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::mask::apply_mask;
use crate::utf8::Utf8Validator;

/// The largest control frame on the wire: a 14-byte header and 125 bytes of payload.
pub const MAX_CONTROL_FRAME_LEN: usize = MAX_HEADER_LEN + 125;

/// Which end of the connection this decoder reads for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A server: every incoming frame must be masked (§5.1).
    Server,
    /// A client: no incoming frame may be masked (§5.1).
    Client,
}

/// Size limits, checked on frame headers before any allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame payload accepted (default 1 MiB); larger: close 1009.
    pub max_frame_size: u64,
    /// Largest message accepted, all fragments together (default 1 MiB); larger: close 1009.
    pub max_message_size: u64,
    /// Most frames in one message, empty ones included (default 1024); more: close 1008.
    pub max_fragments: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            max_fragments: 1024,
        }
    }
}

impl Limits {
    /// Limits with the given frame and message sizes and fragment count.
    pub fn new(max_frame_size: u64, max_message_size: u64, max_fragments: u32) -> Self {
        Limits {
            max_frame_size,
            max_message_size,
            max_fragments,
        }
    }
}

/// A complete message or control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message, validated UTF-8.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping with its payload (at most 125 bytes).
    Ping(&'a [u8]),
    /// A pong with its payload (at most 125 bytes).
    Pong(&'a [u8]),
    /// A close frame, with its code and reason when it had a payload.
    Close(Option<CloseFrame<'a>>),
}

/// The kind of data message being assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataKind {
    Text,
    Binary,
}

/// A data frame whose payload is still arriving.
#[derive(Clone, Copy, Debug)]
struct PartialFrame {
    remaining: u64,
    mask: Option<[u8; 4]>,
    mask_offset: u8,
    fin: bool,
}

/// Decodes a stream of frames for one connection. See the module docs.
///
/// Small (40 bytes) while no message is being assembled: the assembly state
/// lives in a box that exists only for streamed or fragmented messages.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    compression: bool,
    limits: Limits,
    asm: Option<Box<Assembly>>,
}

/// A message being assembled from pieces.
#[derive(Debug, Default)]
struct Assembly {
    /// Payload of the message being assembled.
    message: Vec<u8>,
    /// The message being assembled, if any.
    kind: Option<DataKind>,
    /// The message in `message` was handed out: clear it on the next call.
    delivered: bool,
    /// Frames in the message being assembled.
    fragments: u32,
    /// The message being assembled is compressed (its first frame had RSV1).
    compressed: bool,
    utf8: Utf8Validator,
    frame: Option<PartialFrame>,
}

impl Decoder {
    /// A decoder for `role` with `limits`.
    pub fn new(role: Role, limits: Limits) -> Self {
        Decoder {
            role,
            compression: false,
            limits,
            asm: None,
        }
    }

    /// Accept compressed messages (RSV1 on a message's first frame): the
    /// connection negotiated permessage-deflate. They must then be decoded
    /// with [`Decoder::decode_inflating`].
    pub fn set_compression(&mut self, on: bool) {
        self.compression = on;
    }

    /// Whether compressed messages are accepted.
    pub fn compression(&self) -> bool {
        self.compression
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether a message or frame is partly decoded (its bytes live in the decoder).
    pub fn is_mid_message(&self) -> bool {
        self.asm.as_ref().is_some_and(|a| a.kind.is_some())
    }

    /// Free the message buffer if no message is being assembled.
    ///
    /// Call when a connection goes idle so it holds no payload memory.
    pub fn release_buffers(&mut self) {
        if !self.is_mid_message() {
            self.asm = None;
        }
    }

    /// Drop any message under assembly and its buffer. The decoder must not
    /// be used for that connection's stream again (it would resume mid-frame
    /// without the frame's state): for connections that are being closed.
    pub fn release_all(&mut self) {
        self.asm = None;
    }

    /// Bytes of memory the decoder holds for a message under assembly (the
    /// reassembly buffer's capacity and its bookkeeping); 0 when idle.
    pub fn buffered(&self) -> usize {
        self.asm.as_ref().map_or(0, |a| {
            a.message.capacity() + std::mem::size_of::<Assembly>()
        })
    }

    /// Decode from `buf`: returns the number of bytes consumed and a message if
    /// one completed. `(0, None)` means more bytes are needed.
    ///
    /// Masked payloads are unmasked in place in `buf`. A compressed message
    /// is refused ([`ProtocolError::ReservedBits`]): decode a connection
    /// that negotiated compression with [`Decoder::decode_inflating`].
    pub fn decode<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> Result<(usize, Option<Message<'a>>), ProtocolError> {
        self.decode_with(buf, None)
    }

    /// [`Decoder::decode`] for a connection that negotiated
    /// permessage-deflate: a compressed message is inflated by `inflater`
    /// and handed out from its buffer.
    pub fn decode_inflating<'a>(
        &'a mut self,
        buf: &'a mut [u8],
        inflater: &'a mut Inflater,
    ) -> Result<(usize, Option<Message<'a>>), ProtocolError> {
        self.decode_with(buf, Some(inflater))
    }

    fn decode_with<'a>(
        &'a mut self,
        buf: &'a mut [u8],
        inflater: Option<&'a mut Inflater>,
    ) -> Result<(usize, Option<Message<'a>>), ProtocolError> {
        let max = self.limits.max_message_size;
        let streaming = self.asm.as_ref().is_some_and(|a| a.frame.is_some());
        if let Some(a) = self.asm.as_deref_mut() {
            if a.delivered {
                a.message.clear();
                a.delivered = false;
            }
        }
        if streaming {
            let Some(a) = self.asm.as_deref_mut() else {
                return Ok((0, None));
            };
            let (taken, done) = a.stream_payload(buf)?;
            if !done {
                return Ok((taken, None));
            }
            return Ok((taken, Some(a.delivered_message(inflater, max)?)));
        }
        let Some((header, header_len)) = FrameHeader::parse(buf)? else {
            return Ok((0, None));
        };
        self.check_header(&header)?;
        let compressed = header.rsv & RSV1 != 0;
        if compressed && inflater.is_none() {
            return Err(ProtocolError::ReservedBits);
        }
        if header.opcode.is_control() {
            return decode_control(header, header_len, buf);
        }
        self.check_data_frame(&header)?;
        let payload_len = header.payload_len as usize; // <= max_frame_size, checked
        let arrived = buf.len() - header_len;
        if arrived >= payload_len && header.fin && header.opcode != OpCode::Continuation {
            // Fast path: the whole message is here; hand it out in place.
            let end = header_len + payload_len;
            let payload = &mut buf[header_len..end];
            if let Some(key) = header.mask {
                apply_mask(payload, key, 0);
            }
            let text = header.opcode == OpCode::Text;
            if compressed {
                return Ok((end, Some(inflate(inflater, payload, text, max)?)));
            }
            let message = if text {
                Message::Text(std::str::from_utf8(payload).map_err(|_| ProtocolError::InvalidUtf8)?)
            } else {
                Message::Binary(payload)
            };
            return Ok((end, Some(message)));
        }
        let a = self.asm.get_or_insert_with(Box::default);
        if header.opcode != OpCode::Continuation {
            a.kind = Some(if header.opcode == OpCode::Text {
                DataKind::Text
            } else {
                DataKind::Binary
            });
            a.fragments = 1;
            a.compressed = compressed;
            a.message.clear();
            a.utf8.reset();
        }
        // Room for the whole frame once half of it has arrived, else only for
        // what has: memory follows received bytes (at most twice them), never
        // a declared length alone.
        a.message.reserve(if arrived * 2 >= payload_len {
            payload_len
        } else {
            arrived
        });
        a.frame = Some(PartialFrame {
            remaining: header.payload_len,
            mask: header.mask,
            mask_offset: 0,
            fin: header.fin,
        });
        let (taken, done) = a.stream_payload(&mut buf[header_len..])?;
        if !done {
            return Ok((header_len + taken, None));
        }
        Ok((
            header_len + taken,
            Some(a.delivered_message(inflater, max)?),
        ))
    }

    /// Rules every header must follow: RSV bits, masking, control-frame shape.
    fn check_header(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let reserved = if self.compression {
            header.rsv & !RSV1
        } else {
            header.rsv
        };
        if reserved != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        if header.rsv & RSV1 != 0
            && (header.opcode.is_control() || header.opcode == OpCode::Continuation)
        {
            return Err(ProtocolError::MisplacedCompressionBit);
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if header.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
        }
        Ok(())
    }

    /// Check a data frame header against the open message and the limits
    /// (counting a continuation as one more fragment). Allocates nothing.
    fn check_data_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let len = header.payload_len;
        if len > self.limits.max_frame_size {
            return Err(ProtocolError::FrameTooLarge);
        }
        let open = self.asm.as_deref_mut().filter(|a| a.kind.is_some());
        match (header.opcode, open) {
            (OpCode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(a)) => {
                a.fragments += 1;
                if a.fragments > self.limits.max_fragments {
                    return Err(ProtocolError::TooManyFragments);
                }
                if (a.message.len() as u64).saturating_add(len) > self.limits.max_message_size {
                    return Err(ProtocolError::MessageTooLarge);
                }
                Ok(())
            }
            (_, Some(_)) => Err(ProtocolError::ExpectedContinuation),
            (_, None) if len > self.limits.max_message_size => Err(ProtocolError::MessageTooLarge),
            (_, None) => Ok(()),
        }
    }
}

impl Assembly {
    /// Consume as much of the current frame's payload as `buf` holds.
    /// Returns the bytes taken and whether the message completed.
    fn stream_payload(&mut self, buf: &mut [u8]) -> Result<(usize, bool), ProtocolError> {
        let Some(frame) = self.frame.as_mut() else {
            return Ok((0, false));
        };
        let take = usize::try_from(frame.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let piece = &mut buf[..take];
        if let Some(key) = frame.mask {
            frame.mask_offset = apply_mask(piece, key, usize::from(frame.mask_offset)) as u8;
        }
        frame.remaining -= take as u64;
        let frame_done = frame.remaining == 0;
        let fin = frame.fin;
        if self.kind == Some(DataKind::Text) && !self.compressed {
            self.utf8
                .feed(piece)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.message.extend_from_slice(piece);
        if !frame_done {
            return Ok((take, false));
        }
        self.frame = None;
        if !fin {
            return Ok((take, false));
        }
        if self.kind == Some(DataKind::Text) && !self.compressed && !self.utf8.is_complete() {
            return Err(ProtocolError::InvalidUtf8);
        }
        Ok((take, true))
    }

    /// The completed message in `self.message` (inflated by `inflater` if
    /// compressed); marks it for clearing.
    fn delivered_message<'a>(
        &'a mut self,
        inflater: Option<&'a mut Inflater>,
        max: u64,
    ) -> Result<Message<'a>, ProtocolError> {
        self.delivered = true;
        let kind = self.kind.take();
        if self.compressed {
            let text = kind == Some(DataKind::Text);
            return inflate(inflater, &self.message, text, max);
        }
        Ok(match kind {
            // Validated piece by piece, so `from_utf8` succeeds; it is repeated
            // (at memory speed) only to get a `&str` without `unsafe`.
            Some(DataKind::Text) => match std::str::from_utf8(&self.message) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(&self.message),
            },
            _ => Message::Binary(&self.message),
        })
    }
}

/// The RSV1 bit of [`FrameHeader::rsv`]: the message is compressed.
const RSV1: u8 = 0b100;

/// Inflate a whole compressed message, at most `max` bytes, and check a
/// text message's UTF-8.
fn inflate<'a>(
    inflater: Option<&'a mut Inflater>,
    payload: &[u8],
    text: bool,
    max: u64,
) -> Result<Message<'a>, ProtocolError> {
    let Some(inflater) = inflater else {
        return Err(ProtocolError::ReservedBits);
    };
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let data = inflater.inflate(payload, max).map_err(|e| match e {
        InflateError::TooBig => ProtocolError::MessageTooLarge,
        InflateError::Corrupt => ProtocolError::BadCompressedData,
    })?;
    if text {
        let text = std::str::from_utf8(data).map_err(|_| ProtocolError::InvalidUtf8)?;
        return Ok(Message::Text(text));
    }
    Ok(Message::Binary(data))
}

/// Decode a control frame once it is whole (it is at most 139 bytes).
fn decode_control<'a>(
    header: FrameHeader,
    header_len: usize,
    buf: &'a mut [u8],
) -> Result<(usize, Option<Message<'a>>), ProtocolError> {
    let end = header_len + header.payload_len as usize; // <= 125, checked
    let Some(payload) = buf.get_mut(header_len..end) else {
        return Ok((0, None));
    };
    if let Some(key) = header.mask {
        apply_mask(payload, key, 0);
    }
    let message = match header.opcode {
        OpCode::Ping => Message::Ping(payload),
        OpCode::Pong => Message::Pong(payload),
        _ => Message::Close(CloseFrame::parse(payload)?),
    };
    Ok((end, Some(message)))
}

#[cfg(test)]
mod tests;
