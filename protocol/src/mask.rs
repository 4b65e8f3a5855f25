//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, in place.
//!
//! The fast path works a word at a time in safe code: the key is widened to a
//! `u64`, the payload is walked in fixed-size chunks the compiler vectorises,
//! and the tail falls back to bytes. [`apply_mask_fallback`] is the plain
//! byte-by-byte definition the fast path is tested against.

/// XOR `buf` with `key`, starting at key position `offset % 4`.
///
/// Returns the key position after the last byte, so a payload that arrives in
/// pieces can be unmasked piece by piece:
/// `off = apply_mask(a, key, 0); apply_mask(b, key, off)`.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let offset = offset & 3;
    let key = rotate_key(key, offset);
    let next = (offset + buf.len()) & 3;
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(32);
    for chunk in &mut chunks {
        for lane in chunk.chunks_exact_mut(8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(lane);
            lane.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
        }
    }
    // The remainder starts at a multiple of 32, so the key phase is unchanged;
    // whole words first, then bytes.
    let mut words = chunks.into_remainder().chunks_exact_mut(8);
    for lane in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(lane);
        lane.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
    next
}

/// The byte-by-byte definition of masking (§5.3): `out[i] = in[i] ^ key[(offset + i) % 4]`.
pub fn apply_mask_fallback(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
    (offset + buf.len()) & 3
}

#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    [
        key[offset & 3],
        key[(offset + 1) & 3],
        key[(offset + 2) & 3],
        key[(offset + 3) & 3],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example() {
        // §5.7: "Hello" masked with 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn fast_matches_fallback_every_length_alignment_and_offset() {
        let key = [0x6d, 0xb6, 0xb2, 0x80];
        let source: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for align in 0..8 {
            for len in 0..(300 - align) {
                for offset in 0..4 {
                    let mut fast = source[align..align + len].to_vec();
                    let mut slow = fast.clone();
                    let a = apply_mask(&mut fast, key, offset);
                    let b = apply_mask_fallback(&mut slow, key, offset);
                    assert_eq!(fast, slow, "align {align} len {len} offset {offset}");
                    assert_eq!(a, b);
                }
            }
        }
    }

    #[test]
    fn masking_twice_is_identity_and_pieces_compose() {
        let key = [1, 2, 3, 4];
        let original: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = original.clone();
        let mut off = 0;
        for piece in pieces.chunks_mut(37) {
            off = apply_mask(piece, key, off);
        }
        assert_eq!(whole, pieces);
        apply_mask(&mut whole, key, 0);
        assert_eq!(whole, original);
    }
}
