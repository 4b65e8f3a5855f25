//! permessage-deflate on the sending side: one loop's compressors, and a
//! fan-out's frame in the forms its recipients need.
//!
//! The server never keeps compression context between messages (it always
//! answers `server_no_context_takeover`), so the compressed form of a
//! message depends only on the message and the window size: one
//! [`Compressor`] per window size and loop serves every socket, no zlib
//! state sits on a socket, and a fan-out compresses its message once per
//! window size its recipients negotiated (in practice once: browsers leave
//! the window at 15 bits), not once per recipient. [`Outgoing`] holds the
//! forms already made, shared by every loop the message is posted to.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use gmws_protocol::deflate::Compressor;
use gmws_protocol::encoder::encode_frame;
use gmws_protocol::frame::FrameHeader;
use gmws_protocol::OpCode;

use crate::memory::Gauge;
use crate::outqueue::SharedFrame;
use crate::socket_id::{IdHash, SocketId};

/// What one socket's own compressor (context takeover) is counted as in the
/// memory gauge: zlib's deflate state at 15 bits, measured with a counting
/// allocator (268,248 bytes; 139 KB at 9 bits), rounded up.
pub(crate) const CONTEXT_BYTES: usize = 270 * 1024;

/// The smallest window zlib compresses with; a connection that allows only
/// 8 bits gets its messages uncompressed.
const MIN_WINDOW: u8 = 9;
/// Window sizes a compressor is kept for: 9 to 15 bits.
const WINDOWS: usize = 7;

/// RSV1: the frame's message is compressed (RFC 7692 §6).
const RSV1: u8 = 0x40;

/// One loop's compressors (made on first use, one per window size) and the
/// threshold under which messages go uncompressed.
pub(crate) struct Compression {
    /// Smallest message compressed; `usize::MAX` when compression is off.
    min_size: usize,
    compressors: [Option<Compressor>; WINDOWS],
    /// The own compressors of sockets that keep context between messages
    /// (`compression_context_takeover`), made at their first compressed
    /// message and dropped with the socket.
    contexts: HashMap<SocketId, Box<Compressor>, IdHash>,
    /// The compressed payload of the last message (reused between messages).
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compression")
            .field("min_size", &self.min_size)
            .finish_non_exhaustive()
    }
}

/// Scratch buffers larger than this are freed after use.
const KEEP_SCRATCH: usize = 64 * 1024;

impl Compression {
    /// Compression of messages of at least `min_size` bytes, or none.
    pub(crate) fn new(enabled: bool, min_size: usize) -> Compression {
        Compression {
            min_size: if enabled { min_size } else { usize::MAX },
            compressors: Default::default(),
            contexts: HashMap::default(),
            scratch: Vec::new(),
        }
    }

    /// Whether a `len`-byte message with `opcode` is compressed for a
    /// connection that negotiated `window` (see `Connection::deflate`).
    pub(crate) fn applies(&self, opcode: OpCode, len: usize, window: u8) -> bool {
        window >= MIN_WINDOW
            && len >= self.min_size
            && matches!(opcode, OpCode::Text | OpCode::Binary)
    }

    /// Whether a `len`-byte message may be compressed for some connection.
    pub(crate) fn may_apply(&self, len: usize) -> bool {
        len >= self.min_size
    }

    /// The compressed form of `payload` with a `window`-bit window (9-15),
    /// valid until the next call.
    pub(crate) fn compress(&mut self, window: u8, payload: &[u8]) -> &[u8] {
        let slot = usize::from(window.clamp(MIN_WINDOW, 15) - MIN_WINDOW);
        let compressor =
            self.compressors[slot].get_or_insert_with(|| Compressor::new(window, true));
        if self.scratch.capacity() > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
        self.scratch.clear();
        compressor.compress(payload, &mut self.scratch);
        &self.scratch
    }

    /// The compressed form of `payload` for `socket`: with its own
    /// compressor when it keeps context (`context`; made now if it has none,
    /// counted in `gauge`), else with the loop's. Valid until the next call.
    pub(crate) fn compress_for(
        &mut self,
        socket: SocketId,
        window: u8,
        context: bool,
        payload: &[u8],
        gauge: &Gauge,
    ) -> &[u8] {
        if !context {
            return self.compress(window, payload);
        }
        let compressor = self.contexts.entry(socket).or_insert_with(|| {
            gauge.add(CONTEXT_BYTES);
            Box::new(Compressor::new(window, false))
        });
        if self.scratch.capacity() > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
        self.scratch.clear();
        compressor.compress(payload, &mut self.scratch);
        &self.scratch
    }

    /// Drop `socket`'s own compressor, if it has one.
    pub(crate) fn forget(&mut self, socket: SocketId, gauge: &Gauge) {
        if self.contexts.remove(&socket).is_some() {
            gauge.sub(CONTEXT_BYTES);
        }
    }

    /// Encode a whole frame of `payload` compressed with `window` onto `out`.
    fn encode_compressed(&mut self, out: &mut Vec<u8>, opcode: OpCode, window: u8, payload: &[u8]) {
        let start = out.len();
        let compressed = self.compress(window, payload);
        encode_frame(out, opcode, true, compressed, None);
        out[start] |= RSV1;
    }
}

/// A fan-out's frame: encoded once as it is, and compressed once per window
/// size that recipients need, when the message is large enough. Cloning is
/// cheap (reference counts); the clones on every loop share the forms made.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    plain: SharedFrame,
    /// The compressed forms, by window size (9-15), made on first need by
    /// whichever loop needs it; `None` when the message is never compressed.
    deflated: Option<Arc<[OnceLock<SharedFrame>; WINDOWS]>>,
}

impl Outgoing {
    /// A frame that is compressed for recipients that negotiated it when
    /// `compressible` (the loops still apply their `compression_min_size`).
    pub(crate) fn new(plain: SharedFrame, compressible: bool) -> Outgoing {
        Outgoing {
            plain,
            deflated: compressible.then(Default::default),
        }
    }

    /// The frame as it is.
    pub(crate) fn plain(&self) -> &SharedFrame {
        &self.plain
    }

    /// The message's opcode and payload (to compress it for a socket with
    /// its own compressor).
    pub(crate) fn message(&self) -> Option<(OpCode, &[u8])> {
        let (header, header_len) = FrameHeader::parse(self.plain.bytes()).ok().flatten()?;
        Some((header.opcode, self.plain.bytes().get(header_len..)?))
    }

    /// The form for a connection that negotiated `window` (0: none): the
    /// compressed one, made now with `compression` if no loop made it yet
    /// (counted in `gauge`), or the plain one.
    pub(crate) fn frame_for(
        &self,
        window: u8,
        payload_len: usize,
        compression: &mut Compression,
        gauge: &Gauge,
    ) -> &SharedFrame {
        // Most recipients (no compression negotiated, or a small message)
        // leave here, before the frame's header is read.
        let Some(deflated) = self.deflated.as_ref().filter(|_| window >= MIN_WINDOW) else {
            return &self.plain;
        };
        if !compression.may_apply(payload_len) {
            return &self.plain;
        }
        let Some((header, header_len)) = FrameHeader::parse(self.plain.bytes()).ok().flatten()
        else {
            return &self.plain;
        };
        if !compression.applies(header.opcode, payload_len, window) {
            return &self.plain;
        }
        let slot = &deflated[usize::from(window.min(15) - MIN_WINDOW)];
        if let Some(frame) = slot.get() {
            return frame;
        }
        let payload = self.plain.bytes().get(header_len..).unwrap_or_default();
        let mut out = Vec::with_capacity(payload.len() / 2 + 16);
        compression.encode_compressed(&mut out, header.opcode, window, payload);
        // Another loop may have made it meanwhile: either form is the same.
        let _ = slot.set(SharedFrame::new(out, gauge));
        slot.get().unwrap_or(&self.plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmws_protocol::deflate::Inflater;
    use gmws_protocol::{Decoder, Limits, Message, Role};

    /// Decode one server frame as a client that negotiated compression.
    fn read_back(frame: &[u8]) -> (bool, Vec<u8>) {
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        decoder.set_compression(true);
        let mut inflater = Inflater::new();
        let mut buf = frame.to_vec();
        let compressed = buf[0] & RSV1 != 0;
        match decoder.decode_inflating(&mut buf, &mut inflater).unwrap() {
            (_, Some(Message::Text(t))) => (compressed, t.as_bytes().to_vec()),
            (_, Some(Message::Binary(b))) => (compressed, b.to_vec()),
            other => panic!("{other:?}"),
        }
    }

    fn plain(payload: &[u8], gauge: &Gauge) -> SharedFrame {
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Text, true, payload, None);
        SharedFrame::new(out, gauge)
    }

    #[test]
    fn a_fan_out_is_compressed_once_per_window_and_shared() {
        let gauge = Gauge::default();
        let mut compression = Compression::new(true, 100);
        let text = "a broadcast to many ".repeat(50);
        let outgoing = Outgoing::new(plain(text.as_bytes(), &gauge), true);
        let first = outgoing.frame_for(15, text.len(), &mut compression, &gauge);
        let (compressed, back) = read_back(first.bytes());
        assert!(compressed && first.len() < text.len() / 4);
        assert_eq!(back, text.as_bytes());
        // The same form again (not compressed twice), also from a clone (as
        // another loop holds it).
        let again = outgoing.clone();
        let second = again.frame_for(15, text.len(), &mut compression, &gauge);
        assert!(std::ptr::eq(first.bytes(), second.bytes()));
        // Another window is another form; 8 bits or none is the plain frame.
        let small = outgoing.frame_for(10, text.len(), &mut compression, &gauge);
        assert_eq!(read_back(small.bytes()), (true, text.as_bytes().to_vec()));
        for window in [0, 8] {
            let frame = outgoing.frame_for(window, text.len(), &mut compression, &gauge);
            assert!(std::ptr::eq(frame.bytes(), outgoing.plain().bytes()));
        }
    }

    #[test]
    fn a_socket_with_context_takeover_has_its_own_compressor_until_forgotten() {
        let gauge = Gauge::default();
        let mut compression = Compression::new(true, 0);
        let socket = SocketId::new(0, 0, 7);
        let text = "the same long line, again and again ".repeat(8);
        let first = compression
            .compress_for(socket, 15, true, text.as_bytes(), &gauge)
            .to_vec();
        let second = compression
            .compress_for(socket, 15, true, text.as_bytes(), &gauge)
            .to_vec();
        // The second refers back to the first: a few bytes.
        assert!(
            second.len() < first.len() / 4,
            "{} vs {}",
            second.len(),
            first.len()
        );
        let mut inflater = gmws_protocol::deflate::Decompressor::new(15, false);
        for wire in [&first, &second] {
            let mut back = Vec::new();
            inflater.inflate(wire, 1 << 20, &mut back).unwrap();
            assert_eq!(back, text.as_bytes());
        }
        assert_eq!(compression.contexts.len(), 1);
        assert_eq!(gauge.total(), CONTEXT_BYTES);
        compression.forget(socket, &gauge);
        assert!(compression.contexts.is_empty());
        assert_eq!(gauge.total(), 0);
        // Without context: the loop's compressor, nothing kept per socket.
        compression.compress_for(socket, 15, false, text.as_bytes(), &gauge);
        assert!(compression.contexts.is_empty());
    }

    #[test]
    fn small_messages_and_compression_off_stay_plain() {
        let gauge = Gauge::default();
        for (mut compression, text) in [
            (Compression::new(true, 100), "short".to_owned()),
            (Compression::new(false, 0), "long enough ".repeat(20)),
        ] {
            let outgoing = Outgoing::new(plain(text.as_bytes(), &gauge), true);
            let frame = outgoing.frame_for(15, text.len(), &mut compression, &gauge);
            assert_eq!(read_back(frame.bytes()), (false, text.as_bytes().to_vec()));
        }
        assert!(!Compression::new(true, 10).applies(OpCode::Ping, 100, 15));
    }
}
