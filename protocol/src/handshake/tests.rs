use super::*;

const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn parse(s: &str) -> Request {
    parse_request(s.as_bytes(), &HeadLimits::default())
        .unwrap()
        .unwrap()
        .0
}

fn validate(s: &str) -> Result<Accept, HandshakeError> {
    validate_upgrade(&parse(s), &UpgradePolicy::default())
}

#[test]
fn rfc_accept_vector() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn valid_upgrade() {
    let accept = validate(GOOD).unwrap();
    assert_eq!(accept.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(accept.protocol, None);
    let mut out = Vec::new();
    write_accept_response(&mut out, &accept);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
}

#[test]
fn partial_head_is_not_an_error() {
    for n in 0..GOOD.len() {
        assert_eq!(
            parse_request(&GOOD.as_bytes()[..n], &HeadLimits::default()),
            Ok(None),
            "{n}"
        );
    }
    let (_, len) = parse_request(GOOD.as_bytes(), &HeadLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(len, GOOD.len());
}

#[test]
fn tokens_are_case_insensitive_comma_lists() {
    let req = GOOD
        .replace("Upgrade: websocket", "UPGRADE: h2c, WebSocket")
        .replace("Connection: Upgrade", "connection: keep-alive, upgrade");
    assert!(validate(&req).is_ok());
    // A token must match whole: "upgraded" is not "upgrade".
    let req = GOOD.replace("Connection: Upgrade", "Connection: upgraded");
    assert_eq!(
        validate(&req),
        Err(HandshakeError::MissingConnectionUpgrade)
    );
}

#[test]
fn each_rule_refused_with_its_status() {
    let cases: &[(String, HandshakeError, u16)] = &[
        (
            GOOD.replace("GET", "POST"),
            HandshakeError::MethodNotAllowed,
            405,
        ),
        (
            GOOD.replace("HTTP/1.1", "HTTP/1.0"),
            HandshakeError::HttpVersion,
            400,
        ),
        (
            GOOD.replace("Host: server.example.com\r\n", ""),
            HandshakeError::MissingHost,
            400,
        ),
        (
            GOOD.replace("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n"),
            HandshakeError::DuplicateHost,
            400,
        ),
        (
            GOOD.replace("Connection: Upgrade\r\n", ""),
            HandshakeError::MissingConnectionUpgrade,
            426,
        ),
        (
            GOOD.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
            HandshakeError::BadKey,
            400,
        ),
        (
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!notbase64!!!!!!!!!!!"),
            HandshakeError::BadKey,
            400,
        ),
        (
            GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            HandshakeError::BadKey,
            400,
        ),
    ];
    for (req, err, status) in cases {
        assert_eq!(validate(req), Err(*err), "{req}");
        assert_eq!(err.status(), *status);
    }
}

#[test]
fn version_mismatch_response_names_version_13() {
    let mut out = Vec::new();
    write_error_response(&mut out, HandshakeError::UnsupportedVersion);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
    assert!(text.contains("Connection: close\r\n"));
}

#[test]
fn head_limits() {
    let limits = HeadLimits::default();
    let big = GOOD.replace(
        "Origin: http://example.com",
        &format!("X-Big: {}", "a".repeat(9000)),
    );
    assert_eq!(
        parse_request(big.as_bytes(), &limits),
        Err(HandshakeError::HeadTooLarge)
    );
    // A head that never ends is refused once it passes the limit.
    let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(8200));
    assert_eq!(
        parse_request(endless.as_bytes(), &limits),
        Err(HandshakeError::HeadTooLarge)
    );
    let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = GOOD.replace("Origin: http://example.com\r\n", &many);
    assert_eq!(
        parse_request(req.as_bytes(), &limits),
        Err(HandshakeError::TooManyHeaders)
    );
    let ok: String = (0..57).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = GOOD.replace("Origin: http://example.com\r\n", &ok);
    assert!(parse_request(req.as_bytes(), &limits).unwrap().is_some());
}

#[test]
fn garbage_is_malformed() {
    assert_eq!(
        parse_request(b"\x16\x03\x01\x02\x00\r\n\r\n", &HeadLimits::default()),
        Err(HandshakeError::Malformed)
    );
}

#[test]
fn origin_policy_and_subprotocols() {
    let policy = UpgradePolicy {
        allowed_origins: vec!["http://example.com".into()],
        protocols: vec!["superchat".into(), "chat".into()],
        deflate: None,
    };
    let accept = validate_upgrade(&parse(GOOD), &policy).unwrap();
    // The client's order decides among protocols both sides speak.
    assert_eq!(accept.protocol.as_deref(), Some("chat"));
    let other = GOOD.replace("http://example.com", "http://evil.example");
    assert_eq!(
        validate_upgrade(&parse(&other), &policy),
        Err(HandshakeError::OriginNotAllowed)
    );
}

#[test]
fn host_rules_of_rfc_9112() {
    let ok = |s: &str| parse(s).check_host();
    // HTTP/1.1: exactly one Host, whatever its value (an empty one is valid).
    assert_eq!(ok("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(()));
    assert_eq!(ok("GET / HTTP/1.1\r\nhOST: x:80\r\n\r\n"), Ok(()));
    assert_eq!(ok("GET / HTTP/1.1\r\nHost:\r\n\r\n"), Ok(()));
    assert_eq!(
        ok("GET / HTTP/1.1\r\nX-Host: x\r\n\r\n"),
        Err(HandshakeError::MissingHost)
    );
    assert_eq!(
        ok("GET / HTTP/1.1\r\n\r\n"),
        Err(HandshakeError::MissingHost)
    );
    for two in [
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: \r\n\r\n",
    ] {
        assert_eq!(ok(two), Err(HandshakeError::DuplicateHost), "{two:?}");
    }
    // HTTP/1.0 may omit Host, but two are refused in any version.
    assert_eq!(ok("GET / HTTP/1.0\r\n\r\n"), Ok(()));
    assert_eq!(ok("GET / HTTP/1.0\r\nHost: x\r\n\r\n"), Ok(()));
    assert_eq!(
        ok("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        Err(HandshakeError::DuplicateHost)
    );
    assert_eq!(HandshakeError::DuplicateHost.status(), 400);
    assert_eq!(HandshakeError::MissingHost.status(), 400);
    let mut out = Vec::new();
    write_error_response(&mut out, HandshakeError::DuplicateHost);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.ends_with("more than one Host header\n"), "{text}");
}

#[test]
fn plain_http_is_not_an_upgrade() {
    let req = parse("GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!req.is_websocket_upgrade());
    assert!(parse(GOOD).is_websocket_upgrade());
}

#[test]
fn client_round_trip() {
    let key = [7u8; 16];
    let (request, hs) = client_request("localhost:8080", "/ws", key, &["chat", "json"]).unwrap();
    assert_eq!(hs.protocols, ["chat", "json"]);
    let text = std::str::from_utf8(&request).unwrap();
    let policy = UpgradePolicy {
        protocols: vec!["json".into()],
        ..Default::default()
    };
    let accept = validate_upgrade(&parse(text), &policy).unwrap();
    assert_eq!(accept.accept_key, hs.accept_key);
    let mut response = Vec::new();
    write_accept_response(&mut response, &accept);
    response.extend_from_slice(&[0x81, 0x00]);
    let (resp, len) = parse_response(&response, &hs).unwrap().unwrap();
    assert_eq!(resp.protocol.as_deref(), Some("json"));
    assert_eq!(&response[len..], &[0x81, 0x00]);
    assert_eq!(parse_response(&response[..10], &hs), Ok(None));
    let wrong = ClientHandshake {
        accept_key: "wrong".into(),
        ..hs.clone()
    };
    assert_eq!(
        parse_response(&response, &wrong),
        Err(HandshakeError::BadResponse)
    );
}

/// A 101 for `hs` with extra header lines.
fn switching(hs: &ClientHandshake, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        hs.accept_key
    )
    .into_bytes()
}

#[test]
fn client_fails_on_a_subprotocol_it_did_not_offer() {
    // RFC 6455 §4.1: a subprotocol "that was not present in the client's
    // handshake" fails the connection, also when none was offered.
    let (_, none) = client_request("h", "/", [1; 16], &[]).unwrap();
    assert_eq!(
        parse_response(&switching(&none, "Sec-WebSocket-Protocol: chat\r\n"), &none),
        Err(HandshakeError::UnofferedSubprotocol)
    );
    let (_, chat) = client_request("h", "/", [1; 16], &["chat"]).unwrap();
    assert_eq!(
        parse_response(&switching(&chat, "Sec-WebSocket-Protocol: Chat\r\n"), &chat),
        Err(HandshakeError::UnofferedSubprotocol)
    );
    assert_eq!(
        parse_response(
            &switching(&chat, "Sec-WebSocket-Protocol: chat, json\r\n"),
            &chat
        ),
        Err(HandshakeError::UnofferedSubprotocol)
    );
    assert_eq!(
        parse_response(
            &switching(
                &chat,
                "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: json\r\n"
            ),
            &chat
        ),
        Err(HandshakeError::BadResponse)
    );
    let ok = switching(&chat, "Sec-WebSocket-Protocol: chat\r\n");
    let (resp, _) = parse_response(&ok, &chat).unwrap().unwrap();
    assert_eq!(resp.protocol.as_deref(), Some("chat"));
    // No subprotocol in the answer is fine: the server declined them all.
    let (resp, _) = parse_response(&switching(&chat, ""), &chat)
        .unwrap()
        .unwrap();
    assert_eq!(resp.protocol, None);
}

#[test]
fn client_fails_on_an_extension_it_did_not_offer() {
    let (_, hs) = client_request("h", "/", [2; 16], &[]).unwrap();
    assert_eq!(
        parse_response(
            &switching(&hs, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            &hs
        ),
        Err(HandshakeError::UnofferedExtension)
    );
    // An empty header names no extension.
    assert!(
        parse_response(&switching(&hs, "Sec-WebSocket-Extensions: \r\n"), &hs)
            .unwrap()
            .is_some()
    );
}

#[test]
fn client_request_refuses_what_would_break_the_head() {
    let key = [3u8; 16];
    let bad = HandshakeError::InvalidClientRequest;
    for host in ["", "a b", "h\r\nX-Injected: 1", "h\n", "h\u{e9}"] {
        assert_eq!(
            client_request(host, "/", key, &[]).err(),
            Some(bad),
            "{host:?}"
        );
    }
    for path in ["", "ws", "/a b", "/\r\nX: 1", "/\u{e9}", "/\t"] {
        assert_eq!(
            client_request("h", path, key, &[]).err(),
            Some(bad),
            "{path:?}"
        );
    }
    for protocols in [
        &[""][..],
        &["a b"],
        &["a,b"],
        &["chat\r\nX: 1"],
        &["chat", "chat"],
    ] {
        assert_eq!(
            client_request("h", "/", key, protocols).err(),
            Some(bad),
            "{protocols:?}"
        );
    }
    // What is allowed: IPv6 hosts with ports, queries, token subprotocols.
    let (request, _) =
        client_request("[::1]:80", "/a/b?c=d&e=%20", key, &["v2.json", "x-y_z"]).unwrap();
    let (parsed, _) = parse_request(&request, &HeadLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(parsed.path, "/a/b?c=d&e=%20");
}

#[test]
fn permessage_deflate_is_answered_when_the_policy_allows_it() {
    let offer = GOOD.replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    );
    let policy = UpgradePolicy {
        deflate: Some(crate::deflate::DeflatePolicy::default()),
        ..Default::default()
    };
    let accept = validate_upgrade(&parse(&offer), &policy).unwrap();
    let agreed = accept.deflate.clone().unwrap();
    assert!(agreed.params.client_no_context_takeover);
    let mut response = Vec::new();
    write_accept_response(&mut response, &accept);
    let text = String::from_utf8(response).unwrap();
    assert!(
        text.contains(&format!(
            "\r\nSec-WebSocket-Extensions: {}\r\n",
            agreed.response
        )),
        "{text}"
    );
    // Off in the policy, or not offered: nothing is answered.
    let off = validate_upgrade(&parse(&offer), &UpgradePolicy::default()).unwrap();
    assert_eq!(off.deflate, None);
    let none = validate_upgrade(&parse(GOOD), &policy).unwrap();
    assert_eq!(none.deflate, None);
}
