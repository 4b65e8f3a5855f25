//! The opening handshake on arbitrary bytes: parse a request, validate it, write
//! the answer and read a 101 back as a client would; also parse a response.
#![no_main]

use gmws_protocol::deflate::DeflatePolicy;
use gmws_protocol::handshake::{
    client_request, parse_request, parse_response, validate_upgrade, write_accept_response,
    write_error_response, ClientHandshake, HeadLimits, UpgradePolicy,
};
use gmws_protocol::HandshakeError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut policy = UpgradePolicy {
        allowed_origins: vec![],
        protocols: vec!["chat".into(), "json".into()],
        deflate: None,
    };
    // An odd last byte (not the usual final '\n') restricts the origin.
    if data.last().is_some_and(|b| b & 1 == 1) {
        policy.allowed_origins.push("http://a.example".into());
    }
    // Every refusal, of a head or of an upgrade, writes a well-formed answer.
    let refuse = |e: HandshakeError| {
        let mut out = Vec::new();
        write_error_response(&mut out, e);
        assert!(out.starts_with(format!("HTTP/1.1 {} ", e.status()).as_bytes()));
    };
    for limits in [HeadLimits::default(), HeadLimits::new(200, 4)] {
        let (request, len) = match parse_request(data, &limits) {
            Ok(Some(head)) => head,
            Ok(None) => continue,
            Err(e) => {
                refuse(e);
                continue;
            }
        };
        assert!(len <= data.len().min(limits.max_head_bytes));
        // The head alone parses the same: bytes after it do not matter.
        assert_eq!(
            parse_request(&data[..len], &limits),
            Ok(Some((request.clone(), len)))
        );
        // Without and with permessage-deflate (any Sec-WebSocket-Extensions
        // the input holds is negotiated).
        for deflate in [None, Some(DeflatePolicy::default())] {
            policy.deflate = deflate;
            match validate_upgrade(&request, &policy) {
                Ok(accept) => {
                    assert!(request.is_websocket_upgrade());
                    let mut out = Vec::new();
                    write_accept_response(&mut out, &accept);
                    if let Some(agreed) = &accept.deflate {
                        // The answer is one well-formed header line, and a
                        // window the server may use.
                        assert!(!agreed.response.contains(['\r', '\n']));
                        assert!((8..=15).contains(&agreed.params.server_max_window_bits));
                        assert!((8..=15).contains(&agreed.params.client_max_window_bits));
                        // (The client role's parse_response offers no extension.)
                        continue;
                    }
                    let offered = ClientHandshake {
                        accept_key: accept.accept_key.clone(),
                        protocols: accept.protocol.iter().cloned().collect(),
                    };
                    let (response, n) = parse_response(&out, &offered).unwrap().unwrap();
                    assert_eq!((response.protocol, n), (accept.protocol, out.len()));
                }
                Err(e) => refuse(e),
            }
        }
    }
    let offered = ClientHandshake {
        accept_key: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
        protocols: vec!["chat".into()],
    };
    if let Ok(Some((response, n))) = parse_response(data, &offered) {
        assert!(n <= data.len());
        assert!(response.protocol.is_none_or(|p| p == "chat"));
    }
    // Our own client's request, with a key from the input, is accepted.
    let key: [u8; 16] = std::array::from_fn(|i| data.get(i).copied().unwrap_or(0));
    let (request, expected) = client_request("h.example", "/ws", key, &["json"]).unwrap();
    let (parsed, _) = parse_request(&request, &HeadLimits::default())
        .unwrap()
        .unwrap();
    let accept = validate_upgrade(&parsed, &UpgradePolicy::default()).unwrap();
    assert_eq!(accept.accept_key, expected.accept_key);
});
