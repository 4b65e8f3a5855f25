//! `Utf8Validator` fed in arbitrary pieces agrees with `std::str::from_utf8`,
//! piece by piece: it fails exactly when the bytes so far cannot start valid
//! UTF-8 (fail fast, RFC 6455 §8.1) and is complete exactly on a boundary.
#![no_main]

use arbitrary::Arbitrary;
use gmws_protocol::utf8::Utf8Validator;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    pieces: Vec<u8>,
    bytes: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let bytes = input.bytes;
    let mut validator = Utf8Validator::new();
    let mut end = 0;
    for len in input
        .pieces
        .iter()
        .map(|&n| usize::from(n))
        .chain([bytes.len()])
    {
        let start = end;
        end = (start + len).min(bytes.len());
        let std = std::str::from_utf8(&bytes[..end]);
        let prefix_ok = std
            .as_ref()
            .map_or_else(|e| e.error_len().is_none(), |_| true);
        let fed = validator.feed(&bytes[start..end]);
        assert_eq!(fed.is_ok(), prefix_ok, "piece {start}..{end}");
        if fed.is_err() {
            return;
        }
        assert_eq!(validator.is_complete(), std.is_ok(), "after {end} bytes");
    }
    assert_eq!(
        std::str::from_utf8(bytes).is_ok(),
        validator.finish(&[]).is_ok()
    );
});
