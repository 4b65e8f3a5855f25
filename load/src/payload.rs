//! Tagged payloads: every echo is checked byte for byte, and a wrong one says
//! how it is wrong.
//!
//! A payload is a tag (the connection id and the message's sequence number)
//! followed by a pattern drawn from the tag, cut to the requested size:
//!
//! - binary: the connection id (`u32`, little-endian), the sequence number
//!   (`u64`, little-endian), then pseudo-random bytes;
//! - text: `{conn:x}:{seq:x};` in lowercase hex, then pseudo-random characters
//!   from `[A-Za-z0-9_-]` (valid UTF-8 of any length).
//!
//! A tag that does not fit whole in the size is left out and the payload is
//! all pattern. The pattern is drawn from the tag too, so an echo of another
//! connection's message, or of another message of the same connection,
//! differs from the expected bytes; for a payload too short for the tag it
//! goes unnoticed only by chance (1 in 2^(8·size) for binary, 2^(6·size) for
//! text). When the tag is there, [`check`] names the fault:
//! [`Mismatch::Misrouted`] or [`Mismatch::OutOfOrder`]; otherwise
//! [`Mismatch::Corrupt`] or [`Mismatch::WrongLength`].

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Whether messages go as binary or text frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// Binary frames (opcode 0x2).
    Binary,
    /// Text frames (opcode 0x1): the payload is ASCII.
    Text,
}

/// What identifies a message: which connection sent it, and its number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The connection's id within the run (0-based).
    pub conn: u32,
    /// The message's sequence number on its connection (0-based).
    pub seq: u64,
}

/// How an echo differs from what was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Text came back for binary, or binary for text.
    WrongType,
    /// The length differs.
    WrongLength,
    /// The tag names another connection.
    Misrouted,
    /// The tag names another message of this connection (lost, repeated or
    /// reordered).
    OutOfOrder,
    /// Same tag (or no readable tag), different bytes.
    Corrupt,
}

/// A small, fast pseudo-random generator (SplitMix64) for masking keys and
/// payload patterns. Not for secrets.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator seeded from the standard library's per-process random keys.
    pub fn from_entropy() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x676d_7773);
        Rng(hasher.finish())
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fresh masking key for a client frame.
    pub fn mask_key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }
}

/// The 64 characters of text patterns.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Length of the binary tag.
pub const BINARY_TAG_LEN: usize = 12;

/// Replace the contents of `out` with the `size`-byte payload of `tag`.
///
/// `out` keeps its capacity: after the first message of a connection, filling
/// allocates nothing.
pub fn fill(out: &mut Vec<u8>, kind: PayloadKind, tag: Tag, size: usize) {
    out.clear();
    let mut head = [0u8; 32];
    let head_len = match kind {
        PayloadKind::Binary => {
            head[..4].copy_from_slice(&tag.conn.to_le_bytes());
            head[4..12].copy_from_slice(&tag.seq.to_le_bytes());
            BINARY_TAG_LEN
        }
        PayloadKind::Text => {
            let mut n = write_hex(&mut head, u64::from(tag.conn));
            head[n] = b':';
            n += 1;
            n += write_hex(&mut head[n..], tag.seq);
            head[n] = b';';
            n + 1
        }
    };
    // A tag that does not fit whole is left out: the payload is all pattern.
    if head_len <= size {
        out.extend_from_slice(&head[..head_len]);
    }
    let mut rng = Rng::new((u64::from(tag.conn) << 40) ^ tag.seq ^ 0x5EED_0F6D_7773);
    while out.len() < size {
        let word = rng.next_u64().to_le_bytes();
        let take = (size - out.len()).min(8);
        match kind {
            PayloadKind::Binary => out.extend_from_slice(&word[..take]),
            PayloadKind::Text => {
                out.extend(word[..take].iter().map(|b| ALPHABET[usize::from(b & 63)]))
            }
        }
    }
}

/// Write `value` in lowercase hex (no leading zeros) at the start of `out`
/// (at least 16 bytes); returns the length.
fn write_hex(out: &mut [u8], value: u64) -> usize {
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in out[..digits].iter_mut().enumerate() {
        let nibble = (value >> (4 * (digits - 1 - i))) & 0xF;
        *slot = b"0123456789abcdef"[nibble as usize];
    }
    digits
}

/// Read the tag at the start of `payload`, if it is whole.
pub fn parse_tag(payload: &[u8], kind: PayloadKind) -> Option<Tag> {
    match kind {
        PayloadKind::Binary => {
            let conn = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
            let seq = u64::from_le_bytes(payload.get(4..12)?.try_into().ok()?);
            Some(Tag { conn, seq })
        }
        PayloadKind::Text => {
            let end = payload.iter().take(32).position(|&b| b == b';')?;
            let head = std::str::from_utf8(&payload[..end]).ok()?;
            let (conn, seq) = head.split_once(':')?;
            Some(Tag {
                conn: u32::from_str_radix(conn, 16).ok()?,
                seq: u64::from_str_radix(seq, 16).ok()?,
            })
        }
    }
}

/// Compare a received message (`got`, `got_text`: whether it came as a text
/// frame) with the payload of `tag` that was sent (`sent`).
pub fn check(
    sent: &[u8],
    kind: PayloadKind,
    tag: Tag,
    got: &[u8],
    got_text: bool,
) -> Result<(), Mismatch> {
    if got_text != (kind == PayloadKind::Text) {
        return Err(Mismatch::WrongType);
    }
    if got == sent {
        return Ok(());
    }
    match parse_tag(got, kind) {
        Some(t) if t.conn != tag.conn => Err(Mismatch::Misrouted),
        Some(t) if t.seq != tag.seq => Err(Mismatch::OutOfOrder),
        _ if got.len() != sent.len() => Err(Mismatch::WrongLength),
        _ => Err(Mismatch::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(kind: PayloadKind, conn: u32, seq: u64, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        fill(&mut out, kind, Tag { conn, seq }, size);
        out
    }

    #[test]
    fn sizes_are_exact_and_text_is_ascii() {
        for size in [0, 1, 5, 11, 12, 13, 16, 17, 1024, 65536] {
            for kind in [PayloadKind::Binary, PayloadKind::Text] {
                let p = payload(kind, 7, 123_456, size);
                assert_eq!(p.len(), size);
                if kind == PayloadKind::Text {
                    assert!(p.is_ascii(), "{size}");
                }
            }
        }
    }

    #[test]
    fn tags_read_back() {
        let tag = Tag {
            conn: 999,
            seq: 0xdead_beef,
        };
        let mut out = Vec::new();
        fill(&mut out, PayloadKind::Binary, tag, 16);
        assert_eq!(parse_tag(&out, PayloadKind::Binary), Some(tag));
        fill(&mut out, PayloadKind::Text, tag, 64);
        assert!(out.starts_with(b"3e7:deadbeef;"));
        assert_eq!(parse_tag(&out, PayloadKind::Text), Some(tag));
        fill(&mut out, PayloadKind::Text, Tag { conn: 0, seq: 0 }, 16);
        assert!(out.starts_with(b"0:0;"));
        assert_eq!(parse_tag(b"zz", PayloadKind::Text), None);
        assert_eq!(parse_tag(b"1:2", PayloadKind::Text), None);
        assert_eq!(parse_tag(&[1, 2, 3], PayloadKind::Binary), None);
    }

    #[test]
    fn payloads_differ_by_connection_and_sequence() {
        for kind in [PayloadKind::Binary, PayloadKind::Text] {
            for size in [4, 8, 16, 64] {
                let base = payload(kind, 1, 1, size);
                assert_ne!(base, payload(kind, 2, 1, size), "{kind:?} {size}");
                assert_ne!(base, payload(kind, 1, 2, size), "{kind:?} {size}");
                assert_eq!(base, payload(kind, 1, 1, size));
            }
        }
    }

    #[test]
    fn check_names_the_fault() {
        let kind = PayloadKind::Binary;
        let tag = Tag { conn: 3, seq: 10 };
        let sent = payload(kind, 3, 10, 64);
        assert_eq!(check(&sent, kind, tag, &sent, false), Ok(()));
        assert_eq!(
            check(&sent, kind, tag, &sent, true),
            Err(Mismatch::WrongType)
        );
        let other = payload(kind, 4, 10, 64);
        assert_eq!(
            check(&sent, kind, tag, &other, false),
            Err(Mismatch::Misrouted)
        );
        let older = payload(kind, 3, 9, 64);
        assert_eq!(
            check(&sent, kind, tag, &older, false),
            Err(Mismatch::OutOfOrder)
        );
        assert_eq!(
            check(&sent, kind, tag, &sent[..63], false),
            Err(Mismatch::WrongLength)
        );
        let mut flipped = sent.clone();
        flipped[40] ^= 1;
        assert_eq!(
            check(&sent, kind, tag, &flipped, false),
            Err(Mismatch::Corrupt)
        );
        // Too short for a tag: still caught, as corruption.
        let short = payload(kind, 3, 10, 4);
        let short_other = payload(kind, 3, 11, 4);
        assert_eq!(
            check(&short, kind, tag, &short_other, false),
            Err(Mismatch::Corrupt)
        );
        let text = PayloadKind::Text;
        let sent = payload(text, 3, 10, 32);
        assert_eq!(check(&sent, text, tag, &sent, true), Ok(()));
        assert_eq!(
            check(&sent, text, tag, &payload(text, 3, 11, 32), true),
            Err(Mismatch::OutOfOrder)
        );
    }

    #[test]
    fn hex() {
        let hex = |value: u64| {
            let mut buf = [0u8; 16];
            let n = write_hex(&mut buf, value);
            buf[..n].to_vec()
        };
        assert_eq!(hex(0), b"0");
        assert_eq!(hex(0xabc), b"abc");
        assert_eq!(hex(u64::MAX), b"ffffffffffffffff");
    }

    #[test]
    fn mask_keys_vary() {
        let mut rng = Rng::new(1);
        let a = rng.mask_key();
        let b = rng.mask_key();
        assert_ne!(a, b);
    }
}
