//! Hostile input over real TCP: each case gets the right close code or HTTP
//! status, and a second client (the canary) keeps being served.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gmws::protocol::encoder::encode_frame;
use gmws::protocol::OpCode;
use support::*;

/// Run `attack` against a fresh echo server while a canary client is connected;
/// then check the canary still echoes.
fn with_canary(config: gmws::Config, attack: impl FnOnce(std::net::SocketAddr)) {
    let server = start_echo(config);
    let mut canary = Client::connect(server.addr);
    canary.assert_echo("before");
    attack(server.addr);
    canary.assert_echo("after");
    let mut late = Client::connect(server.addr);
    late.assert_echo("a new client is served too");
}

fn frame_bytes(opcode: OpCode, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode, fin, payload, mask);
    out
}

/// Send `bytes` after the handshake and expect a close with `code`.
fn expect_close_after(bytes: &[u8], code: u16) {
    with_canary(test_config(), |addr| {
        let mut c = Client::connect(addr);
        c.send_raw(bytes);
        c.expect_close(code);
    });
}

const KEY: Option<[u8; 4]> = Some([1, 2, 3, 4]);

#[test]
fn unmasked_client_frame_is_1002() {
    expect_close_after(&frame_bytes(OpCode::Text, true, b"hi", None), 1002);
}

#[test]
fn rsv_bits_are_1002() {
    for bit in [0x40u8, 0x20, 0x10] {
        let mut f = frame_bytes(OpCode::Text, true, b"hi", KEY);
        f[0] |= bit;
        expect_close_after(&f, 1002);
    }
}

#[test]
fn reserved_opcodes_are_1002() {
    for op in [0x3u8, 0x7, 0xB, 0xF] {
        expect_close_after(&[0x80 | op, 0x80, 1, 2, 3, 4], 1002);
    }
}

#[test]
fn long_or_fragmented_control_frames_are_1002() {
    expect_close_after(&frame_bytes(OpCode::Ping, true, &[0; 126], KEY), 1002);
    expect_close_after(&frame_bytes(OpCode::Ping, false, b"x", KEY), 1002);
}

#[test]
fn continuation_without_message_is_1002() {
    expect_close_after(&frame_bytes(OpCode::Continuation, true, b"x", KEY), 1002);
}

#[test]
fn new_data_frame_inside_fragmented_message_is_1002() {
    let mut f = frame_bytes(OpCode::Text, false, b"a", KEY);
    f.extend(frame_bytes(OpCode::Text, true, b"b", KEY));
    expect_close_after(&f, 1002);
}

#[test]
fn oversized_frame_is_1009_before_payload() {
    let mut config = test_config();
    config.max_frame_size = 1000;
    with_canary(config, |addr| {
        let mut c = Client::connect(addr);
        // Only the header of a 2000-byte frame: no payload is ever sent.
        c.send_raw(&[0x82, 0xFE, 0x07, 0xD0, 1, 2, 3, 4]);
        c.expect_close(1009);
    });
}

#[test]
fn invalid_utf8_is_1007_also_across_fragments() {
    expect_close_after(&frame_bytes(OpCode::Text, true, &[b'a', 0xFF], KEY), 1007);
    // A 3-byte sequence split over fragments, broken in the second one; the
    // final fragment is never sent: the server fails at the bad fragment.
    let mut f = frame_bytes(OpCode::Text, false, &[0xE2, 0x82], KEY);
    f.extend(frame_bytes(OpCode::Continuation, false, &[0x28], KEY));
    expect_close_after(&f, 1007);
}

#[test]
fn close_with_one_byte_payload_is_1002() {
    expect_close_after(&frame_bytes(OpCode::Close, true, &[3], KEY), 1002);
}

#[test]
fn invalid_close_codes_are_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1016, 2999] {
        expect_close_after(
            &frame_bytes(OpCode::Close, true, &code.to_be_bytes(), KEY),
            1002,
        );
    }
}

#[test]
fn invalid_utf8_close_reason_is_1007() {
    expect_close_after(
        &frame_bytes(OpCode::Close, true, &[0x03, 0xE8, 0xFF, 0xFE], KEY),
        1007,
    );
}

#[test]
fn valid_close_is_echoed() {
    with_canary(test_config(), |addr| {
        let mut c = Client::connect(addr);
        c.send_frame(OpCode::Close, true, &[0x0F, 0xA0, b'b', b'y', b'e']); // 4000
        c.expect_close(4000);
    });
}

#[test]
fn one_byte_fragments_hit_max_fragments_with_1008() {
    let mut config = test_config();
    config.max_fragments = 16;
    with_canary(config, |addr| {
        let mut c = Client::connect(addr);
        let mut f = frame_bytes(OpCode::Binary, false, b"x", KEY);
        for i in 0..20 {
            // Empty fragments count too.
            let payload: &[u8] = if i % 2 == 0 { b"" } else { b"y" };
            f.extend(frame_bytes(OpCode::Continuation, false, payload, KEY));
        }
        c.send_raw(&f);
        c.expect_close(1008);
    });
}

#[test]
fn request_head_over_8_kib_is_431() {
    with_canary(test_config(), |addr| {
        let big = upgrade_request(addr).replace(
            "\r\n\r\n",
            &format!("\r\nX-Big: {}\r\n\r\n", "a".repeat(9000)),
        );
        let response = raw_exchange(addr, big.as_bytes());
        assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    });
}

#[test]
fn more_than_64_headers_is_431() {
    with_canary(test_config(), |addr| {
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = upgrade_request(addr).replace("\r\n\r\n", &format!("\r\n{many}\r\n"));
        let response = raw_exchange(addr, req.as_bytes());
        assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    });
}

#[test]
fn missing_or_wrong_version_is_426() {
    with_canary(test_config(), |addr| {
        for replacement in ["Sec-WebSocket-Version: 8\r\n", ""] {
            let req = upgrade_request(addr).replace("Sec-WebSocket-Version: 13\r\n", replacement);
            let response = raw_exchange(addr, req.as_bytes());
            assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
            assert!(
                response.contains("Sec-WebSocket-Version: 13\r\n"),
                "{response}"
            );
        }
    });
}

#[test]
fn bad_key_is_400() {
    with_canary(test_config(), |addr| {
        let req = upgrade_request(addr).replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=");
        let response = raw_exchange(addr, req.as_bytes());
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    });
}

#[test]
fn upgrade_without_host_or_with_two_is_400() {
    with_canary(test_config(), |addr| {
        let host = format!("Host: {addr}\r\n");
        for (replacement, reason) in [
            (String::new(), "missing Host header"),
            (format!("{host}{host}"), "more than one Host header"),
            (
                format!("{host}Host: evil.example\r\n"),
                "more than one Host header",
            ),
        ] {
            let req = upgrade_request(addr).replace(&host, &replacement);
            let response = raw_exchange(addr, req.as_bytes());
            assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
            assert!(
                response.ends_with(&format!("\r\n\r\n{reason}\n")),
                "{response}"
            );
            assert!(!response.contains("Sec-WebSocket-Accept"), "{response}");
        }
        // HTTP/1.0 without Host is still refused, for its version.
        let req = upgrade_request(addr)
            .replace(&host, "")
            .replacen("HTTP/1.1", "HTTP/1.0", 1);
        let response = raw_exchange(addr, req.as_bytes());
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
        assert!(response.contains("HTTP/1.1 required"), "{response}");
    });
}

#[test]
fn post_upgrade_is_405() {
    with_canary(test_config(), |addr| {
        let req = upgrade_request(addr).replacen("GET", "POST", 1);
        let response = raw_exchange(addr, req.as_bytes());
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
    });
}

#[test]
fn request_fed_one_byte_at_a_time_is_accepted() {
    with_canary(test_config(), |addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        for b in upgrade_request(addr).as_bytes() {
            stream.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        let response = String::from_utf8_lossy(&buf[..n]);
        assert!(response.starts_with("HTTP/1.1 101 "), "{response}");
        assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        // A frame fed byte by byte too.
        for b in frame_bytes(OpCode::Text, true, b"slow", KEY) {
            stream.write_all(&[b]).unwrap();
        }
        let n = stream.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x81, 4, b's', b'l', b'o', b'w']);
    });
}

#[test]
fn bad_request_fed_one_byte_at_a_time_gets_the_same_answer() {
    with_canary(test_config(), |addr| {
        let req =
            upgrade_request(addr).replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7");
        let whole = raw_exchange(addr, req.as_bytes());
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        for b in req.as_bytes() {
            stream.write_all(&[*b]).unwrap();
        }
        assert_eq!(read_to_close(&mut stream), whole);
    });
}

#[test]
fn request_head_that_never_ends_is_closed_at_handshake_timeout() {
    let mut config = test_config();
    config.handshake_timeout = Duration::from_millis(300);
    with_canary(config, |addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        // Keep dribbling header lines: the deadline is absolute, not idle.
        for i in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            let _ = stream.write_all(format!("X-{i}: y\r\n").as_bytes());
        }
        assert_eq!(read_to_close(&mut stream), "", "closed without a response");
    });
}

#[test]
fn pipelined_request_after_refused_upgrade_is_not_run() {
    with_canary(test_config(), |addr| {
        let bad =
            upgrade_request(addr).replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7");
        let both = format!("{bad}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let response = raw_exchange(addr, both.as_bytes());
        assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
        assert!(!response.contains("200"), "{response}");
    });
}

#[test]
fn max_connections_refuses_new_ones_and_serves_the_rest() {
    let mut config = test_config();
    config.max_connections = 3;
    let server = start_echo(config);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    let mut c = Client::connect(server.addr);
    let refused = raw_exchange(server.addr, upgrade_request(server.addr).as_bytes());
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    a.assert_echo("a");
    b.assert_echo("b");
    c.send_frame(OpCode::Close, true, &1000u16.to_be_bytes());
    c.expect_close(1000);
    drop(c);
    // Once the server has seen c's FIN, its slot is free again.
    let start = std::time::Instant::now();
    loop {
        let answer = raw_response_head(server.addr, upgrade_request(server.addr).as_bytes());
        if answer.starts_with("HTTP/1.1 101 ") {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "slot never freed: {answer}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pending_handshakes_are_capped_with_503_and_serving_resumes() {
    let mut config = test_config();
    config.max_pending_handshakes = 2;
    let server = start_echo(config);
    let mut canary = Client::connect(server.addr);
    // Two connections that never send a request head fill the HTTP phase.
    let a = TcpStream::connect(server.addr).unwrap();
    let _b = TcpStream::connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // A third is answered at once, not left waiting in the backlog.
    let refused = raw_response_head(server.addr, upgrade_request(server.addr).as_bytes());
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    canary.assert_echo("established sockets are unaffected");
    drop(a);
    let start = std::time::Instant::now();
    loop {
        let answer = raw_response_head(server.addr, upgrade_request(server.addr).as_bytes());
        if answer.starts_with("HTTP/1.1 101 ") {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never served again: {answer}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A server that answers our upgrade with whatever `extra` header lines, a
/// correct accept key otherwise; our client role's verdict.
fn client_role_against(extra: &'static str) -> std::io::Result<Vec<u8>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head);
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap_or_default();
        let accept = gmws::protocol::handshake::accept_key(key.trim().as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        );
        let _ = stream.write_all(response.as_bytes());
        std::thread::sleep(Duration::from_millis(200));
    });
    let mut stream = TcpStream::connect(addr).expect("connect");
    let result = upgrade(
        &mut stream,
        &addr.to_string(),
        "/",
        std::time::Instant::now() + PATIENCE,
    );
    server.join().expect("fake server");
    result
}

#[test]
fn our_client_fails_a_server_that_picks_an_unoffered_subprotocol_or_extension() {
    // The honest answer is accepted ...
    assert!(client_role_against("").is_ok());
    // ... a subprotocol or an extension the client never offered is not
    // (RFC 6455 §4.1).
    let e = client_role_against("Sec-WebSocket-Protocol: chat\r\n").unwrap_err();
    assert!(
        e.to_string().contains("subprotocol that was not offered"),
        "{e}"
    );
    let e = client_role_against("Sec-WebSocket-Extensions: permessage-deflate\r\n").unwrap_err();
    assert!(
        e.to_string().contains("extension that was not offered"),
        "{e}"
    );
}
