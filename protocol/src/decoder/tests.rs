use super::*;
use crate::close::CloseCode;
use crate::encoder::encode_frame;
use proptest::prelude::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn server() -> Decoder {
    Decoder::new(Role::Server, Limits::default())
}

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode, fin, payload, Some(KEY));
    out
}

fn raw(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

/// An owned copy of a decoded message, to compare across calls.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

fn own(m: Message<'_>) -> Owned {
    match m {
        Message::Text(t) => Owned::Text(t.to_owned()),
        Message::Binary(b) => Owned::Binary(b.to_vec()),
        Message::Ping(b) => Owned::Ping(b.to_vec()),
        Message::Pong(b) => Owned::Pong(b.to_vec()),
        Message::Close(c) => Owned::Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
    }
}

/// Feed `input` in chunks cut at `cuts`, as a server would: unconsumed bytes are
/// kept and presented again with the next chunk.
fn decode_chunked(
    dec: &mut Decoder,
    input: &[u8],
    cuts: &[usize],
) -> Result<Vec<Owned>, ProtocolError> {
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    points.sort_unstable();
    points.push(input.len());
    for p in points {
        let p = p.max(last);
        pending.extend_from_slice(&input[last..p]);
        last = p;
        let mut pos = 0;
        loop {
            let (n, msg) = dec.decode(&mut pending[pos..])?;
            pos += n;
            match msg {
                Some(m) => out.push(own(m)),
                None if n == 0 => break,
                None => {}
            }
        }
        pending.drain(..pos);
        assert!(
            pending.len() <= MAX_CONTROL_FRAME_LEN,
            "caller never keeps payload"
        );
    }
    Ok(out)
}

fn decode_all(input: &[u8]) -> Result<Vec<Owned>, ProtocolError> {
    decode_chunked(&mut server(), input, &[])
}

macro_rules! rejects {
    ($name:ident, $input:expr, $err:expr) => {
        #[test]
        fn $name() {
            assert_eq!(decode_all(&$input), Err($err));
        }
    };
}

// RFC 6455 §5.7 examples, in the client role (unmasked server frames) and server role.
#[test]
fn rfc_examples_client_role() {
    let mut dec = Decoder::new(Role::Client, Limits::default());
    let input = [
        0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, // "Hello"
        0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f, // "Hel" + "lo"
        0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, // ping "Hello"
    ];
    let got = decode_chunked(&mut dec, &input, &[]).unwrap();
    assert_eq!(
        got,
        vec![
            Owned::Text("Hello".into()),
            Owned::Text("Hello".into()),
            Owned::Ping(b"Hello".to_vec())
        ]
    );
}

#[test]
fn rfc_examples_server_role() {
    let input = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        decode_all(&input).unwrap(),
        vec![Owned::Text("Hello".into())]
    );
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        decode_all(&pong).unwrap(),
        vec![Owned::Pong(b"Hello".to_vec())]
    );
}

#[test]
fn rfc_256_and_64k_binary() {
    let mut dec = Decoder::new(Role::Client, Limits::default());
    let mut input = vec![0x82, 0x7E, 0x01, 0x00];
    input.extend(std::iter::repeat_n(0xAB, 256));
    input.extend([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    input.extend(std::iter::repeat_n(0xCD, 65536));
    let got = decode_chunked(&mut dec, &input, &[]).unwrap();
    assert_eq!(
        got,
        vec![
            Owned::Binary(vec![0xAB; 256]),
            Owned::Binary(vec![0xCD; 65536])
        ]
    );
}

#[test]
fn need_more_bytes_consumes_nothing() {
    let mut dec = server();
    let mut buf = frame(OpCode::Ping, true, b"hi");
    for n in 0..buf.len() {
        assert_eq!(dec.decode(&mut buf.clone()[..n]).unwrap(), (0, None));
    }
    let len = buf.len();
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        (len, Some(Message::Ping(b"hi")))
    );
}

#[test]
fn whole_frame_is_zero_copy() {
    let mut dec = server();
    let mut buf = frame(OpCode::Binary, true, b"payload");
    let range = buf.as_ptr_range();
    let (_, msg) = dec.decode(&mut buf).unwrap();
    match msg {
        Some(Message::Binary(b)) => assert!(range.contains(&b.as_ptr())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn control_frames_between_fragments() {
    let mut input = frame(OpCode::Text, false, b"Hel");
    input.extend(frame(OpCode::Ping, true, b"p"));
    input.extend(frame(OpCode::Continuation, false, b""));
    input.extend(frame(OpCode::Pong, true, b""));
    input.extend(frame(OpCode::Continuation, true, b"lo"));
    assert_eq!(
        decode_all(&input).unwrap(),
        vec![
            Owned::Ping(b"p".to_vec()),
            Owned::Pong(vec![]),
            Owned::Text("Hello".into())
        ]
    );
}

#[test]
fn close_frames() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    assert_eq!(
        decode_all(&frame(OpCode::Close, true, &payload)).unwrap(),
        vec![Owned::Close(Some((1000, "bye".into())))]
    );
    assert_eq!(
        decode_all(&frame(OpCode::Close, true, b"")).unwrap(),
        vec![Owned::Close(None)]
    );
    assert_eq!(
        decode_all(&frame(
            OpCode::Close,
            true,
            &CloseCode(4000).0.to_be_bytes()
        ))
        .unwrap(),
        vec![Owned::Close(Some((4000, String::new())))]
    );
}

#[test]
fn invalid_close_codes() {
    for code in [0u16, 999, 1004, 1005, 1006, 1016, 2999, 5000] {
        assert_eq!(
            decode_all(&frame(OpCode::Close, true, &code.to_be_bytes())),
            Err(ProtocolError::InvalidCloseCode(code)),
            "{code}"
        );
    }
}

rejects!(
    unmasked_client_frame,
    raw(&[0x81, 0x02, b'h', b'i']),
    ProtocolError::UnmaskedFrame
);
rejects!(
    rsv1,
    {
        let mut f = frame(OpCode::Text, true, b"x");
        f[0] |= 0x40;
        f
    },
    ProtocolError::ReservedBits
);
rejects!(
    rsv2,
    {
        let mut f = frame(OpCode::Text, true, b"x");
        f[0] |= 0x20;
        f
    },
    ProtocolError::ReservedBits
);
rejects!(
    rsv3,
    {
        let mut f = frame(OpCode::Text, true, b"x");
        f[0] |= 0x10;
        f
    },
    ProtocolError::ReservedBits
);
rejects!(
    reserved_opcode,
    raw(&[0x83, 0x80, 0, 0, 0, 0]),
    ProtocolError::ReservedOpcode(3)
);
rejects!(
    reserved_control_opcode,
    raw(&[0x8B, 0x80, 0, 0, 0, 0]),
    ProtocolError::ReservedOpcode(0xB)
);
rejects!(
    long_ping,
    frame(OpCode::Ping, true, &[0; 126]),
    ProtocolError::ControlFrameTooLong
);
rejects!(
    fragmented_ping,
    frame(OpCode::Ping, false, b"x"),
    ProtocolError::FragmentedControlFrame
);
rejects!(
    lone_continuation,
    frame(OpCode::Continuation, true, b"x"),
    ProtocolError::UnexpectedContinuation
);
rejects!(
    new_message_inside_fragmented,
    {
        let mut f = frame(OpCode::Text, false, b"a");
        f.extend(frame(OpCode::Binary, true, b"b"));
        f
    },
    ProtocolError::ExpectedContinuation
);
rejects!(
    bad_utf8,
    frame(OpCode::Text, true, &[0xce, 0xba, 0xff]),
    ProtocolError::InvalidUtf8
);
rejects!(
    close_one_byte,
    frame(OpCode::Close, true, &[3]),
    ProtocolError::InvalidClosePayload
);
rejects!(
    close_bad_reason,
    frame(OpCode::Close, true, &[0x03, 0xE8, 0xC0, 0x80]),
    ProtocolError::InvalidUtf8
);

#[test]
fn server_role_decoder_rejects_masked_frames_in_client_role() {
    let mut dec = Decoder::new(Role::Client, Limits::default());
    let mut buf = frame(OpCode::Text, true, b"x");
    assert_eq!(dec.decode(&mut buf), Err(ProtocolError::MaskedFrame));
}

#[test]
fn invalid_utf8_fails_at_first_bad_fragment() {
    let mut dec = server();
    let mut first = frame(OpCode::Text, false, "κό".as_bytes());
    assert!(dec.decode(&mut first).is_ok());
    // The second fragment is bad; the third (never sent) does not matter.
    let mut second = frame(OpCode::Continuation, false, &[0xF5, b'a']);
    assert_eq!(dec.decode(&mut second), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn invalid_utf8_fails_inside_a_partial_frame() {
    let mut dec = server();
    let mut whole = frame(OpCode::Text, true, &[b'a', b'b', 0xFF, b'c', b'd', b'e']);
    // Only the header and the first three payload bytes have arrived.
    let header_len = whole.len() - 6;
    assert_eq!(
        dec.decode(&mut whole[..header_len + 3]),
        Err(ProtocolError::InvalidUtf8)
    );
}

#[test]
fn utf8_split_across_fragments_is_fine() {
    let text = "€𝄞κόσμε".as_bytes();
    let mut input = Vec::new();
    for (i, chunk) in text.chunks(1).enumerate() {
        let op = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        input.extend(frame(op, i == text.len() - 1, chunk));
    }
    assert_eq!(
        decode_all(&input).unwrap(),
        vec![Owned::Text("€𝄞κόσμε".into())]
    );
}

#[test]
fn text_ending_mid_code_point_fails() {
    let mut input = frame(OpCode::Text, false, "€".as_bytes().get(..2).unwrap());
    input.extend(frame(OpCode::Continuation, true, b""));
    assert_eq!(decode_all(&input), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn frame_size_checked_on_the_header() {
    let mut dec = Decoder::new(Role::Server, Limits::new(1000, 1 << 20, 16));
    // Only the header of a 1001-byte frame: refused before any payload.
    let mut header = vec![0x82, 0xFE, 0x03, 0xE9, 0, 0, 0, 0];
    assert_eq!(dec.decode(&mut header), Err(ProtocolError::FrameTooLarge));
    let mut dec = server();
    let mut huge = vec![0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(dec.decode(&mut huge), Err(ProtocolError::FrameTooLarge));
}

#[test]
fn message_size_over_fragments() {
    let mut dec = Decoder::new(Role::Server, Limits::new(1000, 1500, 16));
    let mut input = frame(OpCode::Binary, false, &[0; 1000]);
    input.extend(frame(OpCode::Continuation, true, &[0; 501]));
    assert_eq!(
        decode_chunked(&mut dec, &input, &[]),
        Err(ProtocolError::MessageTooLarge)
    );
}

#[test]
fn fragment_count_limit_counts_empty_fragments() {
    let mut dec = Decoder::new(Role::Server, Limits::new(1000, 1000, 4));
    let mut input = frame(OpCode::Binary, false, b"");
    for _ in 0..3 {
        input.extend(frame(OpCode::Continuation, false, b""));
    }
    // Four frames so far: allowed. The fifth is one too many.
    assert_eq!(decode_chunked(&mut dec, &input, &[]), Ok(vec![]));
    let mut fifth = frame(OpCode::Continuation, true, b"");
    assert_eq!(dec.decode(&mut fifth), Err(ProtocolError::TooManyFragments));
}

#[test]
fn buffers_released_when_idle() {
    let mut dec = server();
    let mut input = frame(OpCode::Binary, false, &[1; 100]);
    input.extend(frame(OpCode::Continuation, true, &[2; 100]));
    let got = decode_chunked(&mut dec, &input, &[]).unwrap();
    assert_eq!(got.len(), 1);
    dec.release_buffers();
    assert!(dec.asm.is_none(), "no assembly state while idle");
}

/// A message to encode: opcode, payload, and how it is fragmented.
fn arb_message() -> impl Strategy<Value = (bool, Vec<u8>, Vec<usize>)> {
    prop_oneof![
        ("\\PC{0,40}", proptest::collection::vec(0usize..200, 0..4)).prop_map(|(s, cuts)| (
            true,
            s.into_bytes(),
            cuts
        )),
        (
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(0usize..300, 0..4)
        )
            .prop_map(|(b, cuts)| (false, b, cuts)),
    ]
}

proptest! {
    /// Random messages × random fragmentation × random read chunking decode to
    /// the same messages.
    #[test]
    fn any_fragmentation_and_chunking_gives_the_same_messages(
        messages in proptest::collection::vec(arb_message(), 1..8),
        pings in proptest::collection::vec(any::<bool>(), 8),
        chunk_cuts in proptest::collection::vec(0usize..4000, 0..12),
        mask_seed in any::<u32>(),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, (is_text, payload, cuts)) in messages.iter().enumerate() {
            let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(payload.len())).collect();
            points.sort_unstable();
            points.dedup();
            let mut pieces = Vec::new();
            let mut last = 0;
            for p in points { pieces.push(&payload[last..p]); last = p; }
            pieces.push(&payload[last..]);
            for (j, piece) in pieces.iter().enumerate() {
                let op = match (j, is_text) { (0, true) => OpCode::Text, (0, false) => OpCode::Binary, _ => OpCode::Continuation };
                let key = (mask_seed.wrapping_add((i * 31 + j) as u32)).to_be_bytes();
                encode_frame(&mut wire, op, j == pieces.len() - 1, piece, Some(key));
                if pings[i] && j == 0 && pieces.len() > 1 {
                    encode_frame(&mut wire, OpCode::Ping, true, b"between", Some(key));
                    expected.push(Owned::Ping(b"between".to_vec()));
                }
            }
            expected.push(if *is_text {
                Owned::Text(String::from_utf8(payload.clone()).unwrap())
            } else {
                Owned::Binary(payload.clone())
            });
        }
        let got = decode_chunked(&mut server(), &wire, &chunk_cuts).unwrap();
        prop_assert_eq!(got, expected);
    }

    /// Arbitrary bytes never panic, in either role, however they are chunked.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                            cuts in proptest::collection::vec(0usize..512, 0..6)) {
        let _ = decode_chunked(&mut server(), &bytes, &cuts);
        let _ = decode_chunked(&mut Decoder::new(Role::Client, Limits::default()), &bytes, &cuts);
    }
}

#[test]
fn an_idle_decoder_is_small() {
    assert!(std::mem::size_of::<Decoder>() <= 40);
}

mod compressed {
    //! Messages compressed with permessage-deflate (RSV1 on the first frame).
    use super::*;
    use crate::deflate::{Compressor, Inflater};

    fn deflated(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Compressor::new(15, true).compress(message, &mut out);
        out
    }

    /// `payload` cut into frames of `piece` bytes, RSV1 on the first.
    fn frames(opcode: OpCode, payload: &[u8], piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = payload.chunks(piece.max(1)).collect();
        let last = pieces.len().saturating_sub(1);
        for (i, p) in pieces.iter().enumerate() {
            let op = if i == 0 { opcode } else { OpCode::Continuation };
            let start = out.len();
            encode_frame(&mut out, op, i == last, p, Some(KEY));
            if i == 0 {
                out[start] |= 0x40;
            }
        }
        out
    }

    fn decoder(limits: Limits) -> Decoder {
        let mut d = Decoder::new(Role::Server, limits);
        d.set_compression(true);
        d
    }

    /// Decode all of `input`, cut into reads of `read` bytes.
    fn decode_all(
        d: &mut Decoder,
        inflater: &mut Inflater,
        input: &[u8],
        read: usize,
    ) -> Result<Vec<Owned>, ProtocolError> {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for chunk in input.chunks(read.max(1)) {
            pending.extend_from_slice(chunk);
            let mut pos = 0;
            loop {
                match d.decode_inflating(&mut pending[pos..], inflater)? {
                    (0, None) => break,
                    (n, m) => {
                        pos += n;
                        if let Some(m) = m {
                            out.push(own(m));
                        }
                    }
                }
            }
            pending.drain(..pos);
        }
        Ok(out)
    }

    #[test]
    fn whole_fragmented_and_split_messages_inflate() {
        let text = "permessage-deflate ".repeat(300);
        let wire = deflated(text.as_bytes());
        for (piece, read) in [
            (wire.len(), 1 << 20),
            (wire.len(), 7),
            (10, 1 << 20),
            (3, 5),
        ] {
            let mut input = frames(OpCode::Text, &wire, piece);
            input.extend(frames(OpCode::Binary, &deflated(b"\x00\x01\x02"), 100));
            input.extend(frame(OpCode::Text, true, b"plain"));
            let got = decode_all(
                &mut decoder(Limits::default()),
                &mut Inflater::new(),
                &input,
                read,
            );
            assert_eq!(
                got.unwrap(),
                vec![
                    Owned::Text(text.clone()),
                    Owned::Binary(vec![0, 1, 2]),
                    Owned::Text("plain".into())
                ],
                "piece {piece}, read {read}"
            );
        }
    }

    #[test]
    fn an_empty_compressed_message_is_empty() {
        let input = frames(OpCode::Text, &deflated(b""), 10);
        let got = decode_all(
            &mut decoder(Limits::default()),
            &mut Inflater::new(),
            &input,
            100,
        );
        assert_eq!(got.unwrap(), vec![Owned::Text(String::new())]);
    }

    #[test]
    fn inflating_past_the_message_limit_is_1009() {
        // 64 KiB of zeros compress to a few dozen bytes: far under the frame
        // limit, far over the message limit once inflated.
        let input = frames(OpCode::Binary, &deflated(&[0u8; 65536]), 1 << 20);
        let limits = Limits::new(1 << 20, 1000, 16);
        let err = decode_all(&mut decoder(limits), &mut Inflater::new(), &input, 1 << 20);
        assert_eq!(err.unwrap_err(), ProtocolError::MessageTooLarge);
        assert_eq!(ProtocolError::MessageTooLarge.close_code(), 1009);
    }

    #[test]
    fn invalid_utf8_once_inflated_is_1007() {
        let input = frames(OpCode::Text, &deflated(&[b'a', 0xff, b'b']), 1 << 20);
        let err = decode_all(
            &mut decoder(Limits::default()),
            &mut Inflater::new(),
            &input,
            1 << 20,
        );
        assert_eq!(err.unwrap_err(), ProtocolError::InvalidUtf8);
    }

    #[test]
    fn corrupt_deflate_data_is_1007() {
        // Block type 3 is reserved in DEFLATE.
        let input = frames(OpCode::Binary, &[0xff, 0xff, 0xff], 1 << 20);
        let err = decode_all(
            &mut decoder(Limits::default()),
            &mut Inflater::new(),
            &input,
            1 << 20,
        );
        assert_eq!(err.unwrap_err(), ProtocolError::BadCompressedData);
        assert_eq!(ProtocolError::BadCompressedData.close_code(), 1007);
    }

    #[test]
    fn rsv1_on_a_continuation_or_control_frame_is_refused() {
        let mut cont = frame(OpCode::Text, false, b"a");
        let at = cont.len();
        cont.extend(frame(OpCode::Continuation, true, b"b"));
        cont[at] |= 0x40;
        let mut ping = frame(OpCode::Ping, true, b"p");
        ping[0] |= 0x40;
        for input in [cont, ping] {
            let err = decode_all(
                &mut decoder(Limits::default()),
                &mut Inflater::new(),
                &input,
                100,
            );
            assert_eq!(err.unwrap_err(), ProtocolError::MisplacedCompressionBit);
        }
    }

    #[test]
    fn rsv1_without_negotiation_or_inflater_is_refused() {
        let input = frames(OpCode::Text, &deflated(b"x"), 100);
        let plain = decode_all(&mut server(), &mut Inflater::new(), &input, 100);
        assert_eq!(plain.unwrap_err(), ProtocolError::ReservedBits);
        let mut d = decoder(Limits::default());
        let mut buf = input.clone();
        assert_eq!(d.decode(&mut buf).unwrap_err(), ProtocolError::ReservedBits);
        let mut rsv2 = frame(OpCode::Text, true, b"x");
        rsv2[0] |= 0x20;
        let err = decode_all(
            &mut decoder(Limits::default()),
            &mut Inflater::new(),
            &rsv2,
            100,
        );
        assert_eq!(err.unwrap_err(), ProtocolError::ReservedBits);
    }
}
