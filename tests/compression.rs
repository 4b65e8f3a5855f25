//! permessage-deflate (RFC 7692) over TCP: the negotiation as browsers and
//! Autobahn offer it, compressed messages both ways, the threshold, the
//! bound on inflation (1009), corrupt data (1007), compression off, and a
//! group broadcast to sockets with and without compression on two loops.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use gmws::protocol::deflate::{Compressor, Inflater};
use gmws::protocol::encoder::encode_frame;
use gmws::protocol::{Decoder, Limits, Message, OpCode, Role};
use gmws::{Config, Handler, Hub, SocketId};
use support::*;

/// A client speaking permessage-deflate with the protocol crate's codec:
/// its own handshake (the offer is ours to write), frames read raw so the
/// test sees which came compressed.
struct DeflateClient {
    stream: TcpStream,
    buf: Vec<u8>,
    decoder: Decoder,
    inflater: Inflater,
    compressor: Compressor,
    /// The `Sec-WebSocket-Extensions` answer, if any.
    extensions: Option<String>,
}

/// A message as received: whether its frame had RSV1, and its text.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Text { compressed: bool, text: String },
    Close(u16),
}

impl DeflateClient {
    fn connect(addr: SocketAddr, offer: Option<&str>) -> DeflateClient {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        if let Some(offer) = offer {
            request.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let extensions = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
            .map(str::to_owned);
        buf.drain(..head_end);
        let mut decoder = Decoder::new(Role::Client, Limits::new(64 << 20, 64 << 20, 10_000));
        decoder.set_compression(extensions.is_some());
        DeflateClient {
            stream,
            buf,
            decoder,
            inflater: Inflater::new(),
            compressor: Compressor::new(15, true),
            extensions,
        }
    }

    /// Send `text` in one frame, compressed (RSV1) or not.
    fn send(&mut self, text: &str, compressed: bool) {
        let mut payload = Vec::new();
        if compressed {
            self.compressor.compress(text.as_bytes(), &mut payload);
        } else {
            payload.extend_from_slice(text.as_bytes());
        }
        self.send_payload(&payload, compressed);
    }

    fn send_payload(&mut self, payload: &[u8], rsv1: bool) {
        let mut frame = Vec::new();
        encode_frame(&mut frame, OpCode::Text, true, payload, Some([1, 2, 3, 4]));
        if rsv1 {
            frame[0] |= 0x40;
        }
        self.stream.write_all(&frame).unwrap();
    }

    /// The next text or close (pings skipped).
    fn recv(&mut self) -> Got {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let compressed = self.buf.first().is_some_and(|b| b & 0x40 != 0);
            let decoded = self
                .decoder
                .decode_inflating(&mut self.buf, &mut self.inflater)
                .expect("the server sent a bad frame");
            let got = match decoded {
                (n, Some(Message::Text(t))) => Some((
                    n,
                    Got::Text {
                        compressed,
                        text: t.to_owned(),
                    },
                )),
                (n, Some(Message::Close(c))) => Some((n, Got::Close(c.map_or(1005, |c| c.code.0)))),
                (n, Some(_)) => {
                    self.buf.drain(..n);
                    continue;
                }
                (_, None) => None,
            };
            if let Some((n, got)) = got {
                self.buf.drain(..n);
                return got;
            }
            assert!(Instant::now() < deadline, "nothing received");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("EOF while waiting for a message"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}

fn text(compressed: bool, text: &str) -> Got {
    Got::Text {
        compressed,
        text: text.to_owned(),
    }
}

#[test]
fn browsers_offers_are_answered_and_messages_compressed_both_ways() {
    let server = start_echo(test_config());
    let long = "compress me, I repeat myself; ".repeat(40);
    // Chrome's offer, Firefox's and Safari's bare one.
    for offer in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate",
    ] {
        let mut c = DeflateClient::connect(server.addr, Some(offer));
        let answer = c.extensions.clone().expect("permessage-deflate answered");
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
        assert!(answer.contains("server_no_context_takeover"), "{answer}");
        assert!(answer.contains("client_no_context_takeover"), "{answer}");
        assert_eq!(
            answer.contains("client_max_window_bits"),
            offer.contains("client_max_window_bits"),
            "{answer}"
        );
        // Compressed in, compressed out; plain in, compressed out (the
        // server decides per message); under compression_min_size, plain.
        c.send(&long, true);
        assert_eq!(c.recv(), text(true, &long));
        c.send(&long, false);
        assert_eq!(c.recv(), text(true, &long));
        c.send("short", true);
        assert_eq!(c.recv(), text(false, "short"));
        // An empty compressed message (one 0x00 byte on the wire).
        c.send("", true);
        assert_eq!(c.recv(), text(false, ""));
    }
    // No offer, no extension: messages go plain.
    let mut plain = DeflateClient::connect(server.addr, None);
    assert_eq!(plain.extensions, None);
    plain.send(&long, false);
    assert_eq!(plain.recv(), text(false, &long));
}

#[test]
fn an_eight_bit_window_is_accepted_and_answered_uncompressed() {
    let server = start_echo(test_config());
    let mut c = DeflateClient::connect(
        server.addr,
        Some("permessage-deflate; server_max_window_bits=8"),
    );
    let answer = c.extensions.clone().unwrap();
    assert!(answer.contains("server_max_window_bits=8"), "{answer}");
    let long = "eight bits ".repeat(100);
    c.send(&long, true);
    assert_eq!(c.recv(), text(false, &long));
}

#[test]
fn a_compression_bomb_is_closed_1009_and_others_are_served() {
    let mut config = test_config();
    config.max_message_size = 64 * 1024;
    config.max_frame_size = 64 * 1024;
    let server = start_echo(config);
    let mut bystander = DeflateClient::connect(server.addr, Some("permessage-deflate"));
    let mut bomber = DeflateClient::connect(server.addr, Some("permessage-deflate"));
    // 16 MiB of zeros deflate to ~16 KiB: under the frame limit, 256 times
    // over the message limit once inflated.
    let mut payload = Vec::new();
    Compressor::new(15, true).compress(&vec![0u8; 16 << 20], &mut payload);
    assert!(payload.len() < 64 * 1024, "{}", payload.len());
    bomber.send_payload(&payload, true);
    assert_eq!(bomber.recv(), Got::Close(1009));
    bystander.send("still here", true);
    assert_eq!(bystander.recv(), text(false, "still here"));
}

#[test]
fn corrupt_compressed_data_is_closed_1007() {
    let server = start_echo(test_config());
    let mut c = DeflateClient::connect(server.addr, Some("permessage-deflate"));
    // Block type 3 is reserved in DEFLATE.
    c.send_payload(&[0xff, 0xff, 0xff], true);
    assert_eq!(c.recv(), Got::Close(1007));
}

#[test]
fn compression_off_answers_no_offer_and_refuses_rsv1() {
    let mut config = test_config();
    config.compression = false;
    let server = start_echo(config);
    let mut c = DeflateClient::connect(server.addr, Some("permessage-deflate"));
    assert_eq!(c.extensions, None);
    let mut payload = Vec::new();
    Compressor::new(15, true).compress(b"hello", &mut payload);
    c.send_payload(&payload, true);
    assert_eq!(c.recv(), Got::Close(1002));
}

/// Joins every socket to "room"; a text starting with "all:" goes to the
/// room.
struct Room;

impl Handler for Room {
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let _ = hub.join_group(socket, "room");
        let _ = hub.send_text(socket, "joined");
    }
    fn on_text(&mut self, hub: &mut Hub, _socket: SocketId, text: &str) {
        if let Some(rest) = text.strip_prefix("all:") {
            hub.send_to_group("room", rest, &[]);
        }
    }
}

#[test]
fn a_group_broadcast_reaches_compressed_and_plain_sockets_on_every_loop() {
    let mut config: Config = api_test_config();
    config.workers = 2;
    let server = start_with(config, Room, |_| {});
    // Four sockets: the acceptor hands them to both loops in turn.
    let mut members: Vec<DeflateClient> = (0..4)
        .map(|i| DeflateClient::connect(server.addr, (i % 2 == 0).then_some("permessage-deflate")))
        .collect();
    for member in &mut members {
        assert_eq!(member.recv(), text(false, "joined"));
    }
    let long = "to the whole room ".repeat(50);
    members[1].send(&format!("all:{long}"), false);
    for (i, member) in members.iter_mut().enumerate() {
        assert_eq!(member.recv(), text(i % 2 == 0, &long), "member {i}");
    }
    // Counted per delivery: the two compressed sockets, whichever loop.
    let compressed = wait_for("the metrics to count both loops", || {
        let metrics = http_get(server.addr, "/metrics").text();
        metric_value(&metrics, "gmws_messages_compressed_total").filter(|n| *n >= 2)
    });
    assert_eq!(compressed, 2);
}

impl DeflateClient {
    /// The next frame as it came: RSV1, and its payload (still compressed).
    fn recv_raw(&mut self) -> (bool, Vec<u8>) {
        use gmws::protocol::FrameHeader;
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some((header, len))) = FrameHeader::parse(&self.buf) {
                let end = len + header.payload_len as usize;
                if self.buf.len() >= end {
                    let payload = self.buf[len..end].to_vec();
                    self.buf.drain(..end);
                    return (header.rsv & 0b100 != 0, payload);
                }
            }
            assert!(Instant::now() < deadline, "no frame");
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "EOF");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[test]
fn context_takeover_when_configured_compresses_against_earlier_messages() {
    use gmws::protocol::deflate::Decompressor;
    let mut config = test_config();
    config.compression_context_takeover = true;
    let server = start_echo(config);
    // Unless the client asks for it, server_no_context_takeover is not
    // answered now.
    let mut c = DeflateClient::connect(server.addr, Some("permessage-deflate"));
    let answer = c.extensions.clone().unwrap();
    assert!(!answer.contains("server_no_context_takeover"), "{answer}");
    let asked = DeflateClient::connect(
        server.addr,
        Some("permessage-deflate; server_no_context_takeover"),
    );
    assert!(asked
        .extensions
        .unwrap()
        .contains("server_no_context_takeover"));

    let long = "a line the server has seen before; ".repeat(20);
    let mut inflater = Decompressor::new(15, false);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        c.send(&long, true);
        let (compressed, wire) = c.recv_raw();
        assert!(compressed);
        let mut back = Vec::new();
        inflater.inflate(&wire, 1 << 20, &mut back).unwrap();
        assert_eq!(back, long.as_bytes());
        sizes.push(wire.len());
    }
    // The repeats refer back to the first: a few bytes each.
    assert!(
        sizes[1] < sizes[0] / 4 && sizes[2] < sizes[0] / 4,
        "{sizes:?}"
    );
}

#[test]
fn a_broadcast_to_sockets_with_context_is_compressed_for_each() {
    use gmws::protocol::deflate::Decompressor;
    let mut config = test_config();
    config.compression_context_takeover = true;
    let server = start(config, Room);
    let mut members: Vec<DeflateClient> = (0..2)
        .map(|_| DeflateClient::connect(server.addr, Some("permessage-deflate")))
        .collect();
    let mut inflaters: Vec<Decompressor> = (0..2).map(|_| Decompressor::new(15, false)).collect();
    for member in &mut members {
        assert_eq!(member.recv_raw(), (false, b"joined".to_vec()));
    }
    let long = "the room hears this twice ".repeat(20);
    for _ in 0..2 {
        members[0].send(&format!("all:{long}"), false);
        for (member, inflater) in members.iter_mut().zip(&mut inflaters) {
            let (compressed, wire) = member.recv_raw();
            assert!(compressed);
            let mut back = Vec::new();
            inflater.inflate(&wire, 1 << 20, &mut back).unwrap();
            assert_eq!(back, long.as_bytes());
        }
    }
}
