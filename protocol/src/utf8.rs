//! Incremental UTF-8 validation for text that arrives in pieces.
//!
//! A text message may be split across frames, and a frame across reads, at any
//! byte, even inside a code point. [`Utf8Validator`] carries at most three bytes
//! of an unfinished code point between pieces and fails at the first piece that
//! cannot be the start of valid UTF-8 (RFC 6455 §8.1: fail fast).

use std::str;

/// Validates a byte stream as UTF-8, piece by piece.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    /// Bytes of an unfinished code point carried from the previous piece.
    partial: [u8; 4],
    /// How many bytes of `partial` are used (0 to 3).
    partial_len: u8,
}

/// The input is not (and cannot become) valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub const fn new() -> Self {
        Utf8Validator {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Whether the stream so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Forget any carried state.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Feed the next piece. Fails as soon as the bytes seen cannot be a prefix of
    /// valid UTF-8.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let need = sequence_len(self.partial[0]).ok_or(InvalidUtf8)?;
            let take = (need - have).min(input.len());
            self.partial[have..have + take].copy_from_slice(&input[..take]);
            let now = have + take;
            input = &input[take..];
            match str::from_utf8(&self.partial[..now]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; the piece ended inside it.
                    self.partial_len = now as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.error_len().is_some() {
                    return Err(InvalidUtf8);
                }
                let tail = &input[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Feed the last piece: the stream must end on a code point boundary.
    pub fn finish(&mut self, input: &[u8]) -> Result<(), InvalidUtf8> {
        self.feed(input)?;
        if self.is_complete() {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// The length of a UTF-8 sequence from its first byte, if it can start one.
fn sequence_len(first: u8) -> Option<usize> {
    match first {
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunked(input: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut last = 0;
        for &c in cuts {
            let c = c.min(input.len()).max(last);
            v.feed(&input[last..c])?;
            last = c;
        }
        v.finish(&input[last..])
    }

    #[test]
    fn split_code_points() {
        let s = "κόσμε€𝄞".as_bytes();
        for i in 0..=s.len() {
            for j in i..=s.len() {
                assert!(chunked(s, &[i, j]).is_ok(), "{i} {j}");
            }
        }
    }

    #[test]
    fn fails_fast_on_bad_prefix() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"abc").is_ok());
        // 0xF5 can never start a sequence: fail now, not at the end.
        assert_eq!(v.feed(&[0xF5]), Err(InvalidUtf8));
        // A surrogate (ED A0 80) fails on its second byte.
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xED]).is_ok());
        assert_eq!(v.feed(&[0xA0]), Err(InvalidUtf8));
        // Overlong encoding.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xC0, 0x80]), Err(InvalidUtf8));
    }

    #[test]
    fn unfinished_at_end_fails() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xE2, 0x82]).is_ok());
        assert!(!v.is_complete());
        assert_eq!(v.finish(&[]), Err(InvalidUtf8));
    }

    proptest! {
        #[test]
        fn agrees_with_std(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                           cuts in proptest::collection::vec(0usize..64, 0..6)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            prop_assert_eq!(chunked(&bytes, &cuts).is_ok(), str::from_utf8(&bytes).is_ok());
        }

        #[test]
        fn valid_strings_pass(s in "\\PC*", cuts in proptest::collection::vec(0usize..64, 0..6)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            prop_assert!(chunked(s.as_bytes(), &cuts).is_ok());
        }
    }
}
