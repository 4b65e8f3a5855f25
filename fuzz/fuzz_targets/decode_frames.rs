//! The whole input, as one buffer, to a server-role and a client-role decoder,
//! with and without permessage-deflate negotiated (compressed messages
//! inflated, bounded by the message limit), looped per the call-order
//! contract in `decoder.rs`.
#![no_main]

use gmws_protocol::decoder::{Decoder, Limits, Message, Role, MAX_CONTROL_FRAME_LEN};
use gmws_protocol::deflate::Inflater;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut inflater = Inflater::new();
    for (role, compression) in [
        (Role::Server, false),
        (Role::Client, false),
        (Role::Server, true),
        (Role::Client, true),
    ] {
        // A small message limit with compression: inflation must stop there.
        let limits = if compression {
            Limits::new(1 << 20, 64 * 1024, 1024)
        } else {
            Limits::default()
        };
        let mut decoder = Decoder::new(role, limits);
        decoder.set_compression(compression);
        let mut buf = data.to_vec();
        let mut at = 0;
        loop {
            let decoded = if compression {
                decoder.decode_inflating(&mut buf[at..], &mut inflater)
            } else {
                decoder.decode(&mut buf[at..])
            };
            let Ok((consumed, message)) = decoded else {
                break;
            };
            let rest = data.len() - at;
            assert!(consumed <= rest, "consumed {consumed} of {rest}");
            match message {
                // Nothing consumed and nothing out: the caller keeps the rest,
                // which must never be payload it could have been spared.
                None if consumed == 0 => {
                    assert!(rest <= MAX_CONTROL_FRAME_LEN, "kept {rest} bytes");
                    break;
                }
                None => {}
                // A message always ends at least a 2-byte frame header.
                Some(_) if consumed == 0 => panic!("message without consuming"),
                Some(Message::Text(t)) => assert!(t.len() as u64 <= limits.max_message_size),
                Some(Message::Binary(b)) => assert!(b.len() as u64 <= limits.max_message_size),
                Some(Message::Ping(p) | Message::Pong(p)) => assert!(p.len() <= 125),
                Some(Message::Close(c)) => {
                    assert!(c.is_none_or(|c| c.code.is_valid_on_wire() && c.reason.len() <= 123))
                }
            }
            at += consumed;
        }
    }
});
