//! Compressing and inflating one message (RFC 7692 §7.2): raw DEFLATE, each
//! message ended by a sync flush whose `00 00 ff ff` tail is not sent.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail a sync flush ends with, removed by the sender and appended by
/// the receiver (§7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Bytes inflated per step: the most produced beyond what is kept.
const STEP: usize = 16 * 1024;

/// Why a compressed message could not be inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates to more than the bound (close 1009).
    TooBig,
    /// It is not valid DEFLATE data (close 1007, as bad payload data).
    Corrupt,
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InflateError::TooBig => "the message inflates past the size limit",
            InflateError::Corrupt => "the compressed data is not valid DEFLATE",
        })
    }
}

impl std::error::Error for InflateError {}

/// A message compressor: one per loop when the server keeps no context
/// between messages, else one per connection.
pub struct Compressor {
    inner: Compress,
    /// Reset after each message (`server_no_context_takeover`).
    reset: bool,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("reset", &self.reset)
            .finish()
    }
}

impl Compressor {
    /// A compressor with a `window_bits` window (9-15; zlib has no 8) that
    /// starts every message afresh when `no_context_takeover`.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Compressor {
        Compressor {
            inner: Compress::new_with_window_bits(
                Compression::default(),
                false,
                window_bits.clamp(9, 15),
            ),
            reset: no_context_takeover,
        }
    }

    /// Append the compressed form of `message` to `out` (the payload of a
    /// frame with RSV1 set).
    pub fn compress(&mut self, message: &[u8], out: &mut Vec<u8>) {
        if message.is_empty() {
            // An empty stored block, its LEN/NLEN being the tail the
            // receiver appends (§7.2.3.6); valid with or without context.
            out.push(0x00);
            return;
        }
        let start = out.len();
        let mut input = message;
        loop {
            out.reserve(input.len() / 2 + 64);
            let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
            // Compressing into memory cannot fail: flate2 reports only
            // buffer errors, which more room (reserved above) resolves.
            let _ = self.inner.compress_vec(input, out, FlushCompress::Sync);
            let used = (self.inner.total_in() - in_before) as usize;
            let produced = self.inner.total_out() - out_before;
            input = &input[used.min(input.len())..];
            // Done once all input is in and zlib stopped with room to
            // spare (so the flush is complete), or made no progress.
            let room_left = out.len() < out.capacity();
            if (input.is_empty() && room_left) || (used == 0 && produced == 0) {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset {
            self.inner.reset();
        }
    }
}

/// A message inflater: one per loop when clients keep no context between
/// messages, else one per connection.
pub struct Decompressor {
    inner: Decompress,
    /// Reset after each message (`client_no_context_takeover`).
    reset: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("reset", &self.reset)
            .finish()
    }
}

impl Decompressor {
    /// An inflater for a peer compressing with up to `window_bits` (8-15)
    /// that starts every message afresh when `no_context_takeover`.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Decompressor {
        Decompressor {
            inner: Decompress::new_with_window_bits(false, window_bits.clamp(9, 15)),
            reset: no_context_takeover,
        }
    }

    /// Inflate the payload of one compressed message onto `out`, producing
    /// at most `max` bytes: past that it stops with [`InflateError::TooBig`]
    /// (having kept at most `max` bytes, and allocated at most one step
    /// more). After an error the inflater is reset; the connection is to be
    /// closed anyway.
    pub fn inflate(
        &mut self,
        payload: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let result = self.inflate_inner(payload, max, out);
        if self.reset || result.is_err() {
            self.inner.reset(false);
        }
        result
    }

    fn inflate_inner(
        &mut self,
        payload: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let start = out.len();
        let mut step = [0u8; STEP];
        for mut input in [payload, &TAIL[..]] {
            loop {
                let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
                let status = self
                    .inner
                    .decompress(input, &mut step, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                let used = (self.inner.total_in() - in_before) as usize;
                let produced = (self.inner.total_out() - out_before) as usize;
                if out.len() - start + produced > max {
                    return Err(InflateError::TooBig);
                }
                out.extend_from_slice(&step[..produced]);
                input = &input[used.min(input.len())..];
                if status == Status::StreamEnd {
                    // A final block: nothing may follow within the message,
                    // and the next message starts afresh.
                    self.inner.reset(false);
                    return Ok(());
                }
                // More to do while input remains or the step filled up.
                if (input.is_empty() && produced < STEP) || (used == 0 && produced == 0) {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// What a decoder inflates compressed messages with
/// ([`Decoder::decode_inflating`](crate::decoder::Decoder::decode_inflating)):
/// an inflater that starts every message afresh and the buffer the inflated
/// message is handed out from. One serves every connection of a loop whose
/// clients were told `client_no_context_takeover`.
#[derive(Debug)]
pub struct Inflater {
    decompressor: Decompressor,
    out: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

/// Inflated-message buffers larger than this are freed after use rather
/// than kept for the next message.
const KEEP_OUT_CAPACITY: usize = 64 * 1024;

impl Inflater {
    /// An inflater for peers compressing with any window (up to 15 bits)
    /// and no context takeover.
    pub fn new() -> Inflater {
        Inflater {
            decompressor: Decompressor::new(15, true),
            out: Vec::new(),
        }
    }

    /// Inflate `payload` (one whole compressed message) into the inflater's
    /// buffer, at most `max` bytes, and return the inflated message.
    pub fn inflate(&mut self, payload: &[u8], max: usize) -> Result<&[u8], InflateError> {
        if self.out.capacity() > KEEP_OUT_CAPACITY {
            self.out = Vec::new();
        }
        self.out.clear();
        self.decompressor.inflate(payload, max, &mut self.out)?;
        Ok(&self.out)
    }

    /// Bytes of buffer held between messages.
    pub fn buffered(&self) -> usize {
        self.out.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(message: &[u8], bits: u8, reset: bool) {
        let mut c = Compressor::new(bits, reset);
        let mut d = Decompressor::new(bits, reset);
        for _ in 0..3 {
            let mut wire = Vec::new();
            c.compress(message, &mut wire);
            assert!(!wire.ends_with(&TAIL));
            let mut back = Vec::new();
            d.inflate(&wire, message.len(), &mut back).unwrap();
            assert_eq!(back, message);
        }
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        let text = "Hello, gmws! ".repeat(1000);
        for bits in [9, 12, 15] {
            for reset in [false, true] {
                roundtrip(text.as_bytes(), bits, reset);
                roundtrip(b"", bits, reset);
                roundtrip(b"x", bits, reset);
            }
        }
        // Incompressible data too.
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        roundtrip(&noise, 15, true);
    }

    #[test]
    fn rfc_7692_examples_inflate() {
        // §7.2.3.1: "Hello" compressed in one block.
        let mut d = Decompressor::new(15, true);
        let mut out = Vec::new();
        d.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out)
            .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.3: the same as a stored (uncompressed) block.
        let mut out = Vec::new();
        d.inflate(
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            100,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: with context takeover, the second "Hello" refers back
        // to the first.
        let mut d = Decompressor::new(15, false);
        let mut out = Vec::new();
        d.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out)
            .unwrap();
        let mut again = Vec::new();
        d.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100, &mut again)
            .unwrap();
        assert_eq!(again, b"Hello");
    }

    #[test]
    fn a_bomb_stops_at_the_bound() {
        // 16 MiB of zeros compress to ~16 KiB.
        let big = vec![0u8; 16 << 20];
        let mut c = Compressor::new(15, true);
        let mut wire = Vec::new();
        c.compress(&big, &mut wire);
        assert!(wire.len() < 64 * 1024, "{}", wire.len());
        let mut d = Decompressor::new(15, true);
        let mut out = Vec::new();
        assert_eq!(
            d.inflate(&wire, 1 << 20, &mut out),
            Err(InflateError::TooBig)
        );
        assert!(out.len() <= 1 << 20, "kept {}", out.len());
        assert!(
            out.capacity() <= (1 << 20) + STEP * 2,
            "allocated {}",
            out.capacity()
        );
        // Exactly at the bound is fine.
        let mut out = Vec::new();
        let small = vec![7u8; 1000];
        let mut wire = Vec::new();
        c.compress(&small, &mut wire);
        d.inflate(&wire, 1000, &mut out).unwrap();
        assert_eq!(out.len(), 1000);
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut d = Decompressor::new(15, true);
        let mut out = Vec::new();
        assert_eq!(
            d.inflate(&[0xff, 0xff, 0xff, 0xff, 0x00], 1000, &mut out),
            Err(InflateError::Corrupt)
        );
        // And the inflater is usable again afterwards.
        let mut c = Compressor::new(15, true);
        let mut wire = Vec::new();
        c.compress(b"after", &mut wire);
        let mut out = Vec::new();
        d.inflate(&wire, 100, &mut out).unwrap();
        assert_eq!(out, b"after");
    }
}
