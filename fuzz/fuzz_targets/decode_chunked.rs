//! Any chunking of the input gives the same messages, the same error and the
//! same unconsumed rest as the whole input at once (STYLE.md §5).
#![no_main]

use arbitrary::Arbitrary;
use gmws_protocol::decoder::{Decoder, Limits, Role, MAX_CONTROL_FRAME_LEN};
use gmws_protocol::ProtocolError;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    server: bool,
    max_frame_size: u8,
    max_message_size: u16,
    max_fragments: u8,
    cuts: Vec<u16>,
    bytes: &'a [u8],
}

/// Messages (as their `Debug` text), the outcome, the bytes left unconsumed
/// (none after an error: the connection closes) and `is_mid_message`.
type Run = (Vec<String>, Result<(), ProtocolError>, Vec<u8>, bool);

/// Feed `chunks` the way a server reads: append to what is left, decode until
/// `(0, None)`, drop what was consumed.
fn run(decoder: &mut Decoder, chunks: &[&[u8]]) -> Run {
    let (mut messages, mut pending) = (Vec::new(), Vec::new());
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        let mut at = 0;
        loop {
            match decoder.decode(&mut pending[at..]) {
                Ok((0, None)) => {
                    assert!(pending.len() - at <= MAX_CONTROL_FRAME_LEN);
                    break;
                }
                Ok((consumed, message)) => {
                    messages.extend(message.map(|m| format!("{m:?}")));
                    at += consumed;
                }
                Err(e) => return (messages, Err(e), Vec::new(), false),
            }
        }
        pending.drain(..at);
    }
    (messages, Ok(()), pending, decoder.is_mid_message())
}

fuzz_target!(|input: Input<'_>| {
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    let limits = Limits::new(
        input.max_frame_size.into(),
        input.max_message_size.into(),
        input.max_fragments.into(),
    );
    let bytes = input.bytes;
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| usize::from(c) % (bytes.len() + 1))
        .collect();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    let mut chunks = Vec::new();
    let mut last = 0;
    for c in cuts {
        chunks.push(&bytes[last..c]);
        last = c;
    }
    let whole = run(&mut Decoder::new(role, limits), &[bytes]);
    let chunked = run(&mut Decoder::new(role, limits), &chunks);
    assert_eq!(whole, chunked);
});
