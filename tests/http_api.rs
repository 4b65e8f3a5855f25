//! Plain HTTP on the WebSocket port: the built-in routes, the `/api/` routes
//! of the wire contract, their guard, limits, and user routes. Raw HTTP/1.1
//! over `TcpStream`; the WebSocket side with our client and tungstenite.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};

use gmws::http::{HttpRequest, Method, Response};
use gmws::{Config, Gateway, Handler, Hub};
use serde_json::{json, Value};
use support::*;

fn gateway(config: Config) -> TestServer {
    start(config, Gateway)
}

/// Connect a gateway client; returns it and its socket id.
fn ws(addr: SocketAddr) -> (Client, String) {
    let mut c = Client::connect(addr);
    let welcome = c.recv_json();
    let id = welcome["data"]["socket_id"].as_str().unwrap().to_owned();
    (c, id)
}

fn ws_bound(addr: SocketAddr, client_id: &str) -> (Client, String) {
    let (mut c, id) = ws(addr);
    c.send_json(&json!({"type": "bind", "data": {"client_id": client_id}}));
    assert_eq!(c.recv_json()["type"], "bind");
    (c, id)
}

fn join(c: &mut Client, group: &str) {
    c.send_json(&json!({"type": "join", "data": {"group": group}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "join", "data": {"group": group}})
    );
}

fn assert_alive(c: &mut Client) {
    c.send_json(&json!({"type": "ping"}));
    assert_eq!(c.recv_json(), json!({"type": "pong"}));
}

fn post(addr: SocketAddr, path: &str, body: Value) -> HttpResponse {
    http_post_json(addr, path, &body)
}

/// A 200 JSON answer.
fn ok_json(r: HttpResponse) -> Value {
    assert_eq!(r.status, 200, "{:?}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    r.json()
}

/// An error answer with `status` and a JSON `{"error": "…"}` body.
fn assert_error(r: &HttpResponse, status: u16) {
    assert_eq!(r.status, status, "{:?}", r.text());
    let v = r.json();
    assert!(v["error"].is_string(), "{v}");
}

fn status(addr: SocketAddr) -> Value {
    ok_json(http_get(addr, "/status"))
}

// ---- Built-in routes ----

#[test]
fn healthz() {
    let s = gateway(test_config());
    let r = http_get(s.addr, "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.text().trim(), "ok");
    // A query string does not change the route.
    assert_eq!(http_get(s.addr, "/healthz?probe=1").status, 200);
    // HEAD: the head only, with the length the body would have.
    let head = raw_response_head(
        s.addr,
        b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 3"),
        "{head}"
    );
}

#[test]
fn status_counts_follow_connects_binds_and_joins() {
    let s = gateway(test_config());
    let v = status(s.addr);
    assert_eq!(v["online_sockets"], 0);
    assert_eq!(v["online_clients"], 0);
    assert_eq!(v["groups"], 0);
    assert!(v["uptime_s"].is_u64(), "{v}");

    let (mut a, _) = ws(s.addr);
    let mut t = tungstenite_connect(s.addr);
    tungstenite_recv_text(&mut t);
    assert_eq!(status(s.addr)["online_sockets"], 2);
    assert_eq!(status(s.addr)["online_clients"], 0);

    a.send_json(&json!({"type": "bind", "data": {"client_id": "alice"}}));
    assert_eq!(a.recv_json()["type"], "bind");
    t.send(tungstenite::Message::text(
        json!({"type": "bind", "data": {"client_id": "alice"}}).to_string(),
    ))
    .unwrap();
    tungstenite_recv_text(&mut t);
    let (_b, _) = ws_bound(s.addr, "bob");
    let v = status(s.addr);
    assert_eq!(v["online_sockets"], 3);
    assert_eq!(v["online_clients"], 2, "two sockets of alice count once");

    join(&mut a, "room1");
    join(&mut a, "room2");
    assert_eq!(status(s.addr)["groups"], 2);

    drop(a);
    let v = wait_for("the socket to be gone", || {
        let v = status(s.addr);
        (v["online_sockets"] == 2).then_some(v)
    });
    assert_eq!(v["online_clients"], 2, "alice still has a tab open");
    assert_eq!(v["groups"], 0);
    drop(t);
    let v = wait_for("the socket to be gone", || {
        let v = status(s.addr);
        (v["online_sockets"] == 1).then_some(v)
    });
    assert_eq!(v["online_clients"], 1);
}

#[test]
fn metrics_is_prometheus_text() {
    let s = gateway(test_config());
    let (mut a, _) = ws_bound(s.addr, "alice");
    let r = http_get(s.addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    let text = r.text();
    assert_eq!(
        metric_value(&text, "gmws_online_sockets"),
        Some(1),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "gmws_online_clients"),
        Some(1),
        "{text}"
    );
    assert!(text.contains("# TYPE gmws_online_sockets gauge"), "{text}");
    assert!(text.contains("# TYPE gmws_closes_total counter"), "{text}");
    for reason in [
        "client_close",
        "heartbeat_timeout",
        "auth_timeout",
        "server_close",
    ] {
        let line = format!("gmws_closes_total{{reason=\"{reason}\"}}");
        assert_eq!(metric_value(&text, &line), Some(0), "{line} in {text}");
    }
    // Every sample line is `name[{labels}] value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').expect(line);
        assert!(name.starts_with("gmws_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    let msgs_in = metric_value(&text, "gmws_messages_in_total").unwrap();

    assert_alive(&mut a);
    a.send_frame(gmws::protocol::OpCode::Close, true, &1000u16.to_be_bytes());
    a.expect_close(1000);
    let text = http_get(s.addr, "/metrics").text();
    assert_eq!(
        metric_value(&text, "gmws_online_sockets"),
        Some(0),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "gmws_closes_total{reason=\"client_close\"}"),
        Some(1),
        "{text}"
    );
    assert!(metric_value(&text, "gmws_messages_in_total").unwrap() > msgs_in);
    assert!(metric_value(&text, "gmws_http_requests_total").unwrap() >= 2);
    assert!(metric_value(&text, "gmws_handshakes_total").unwrap() >= 1);
}

#[test]
fn demo_page() {
    let s = gateway(test_config());
    let r = http_get(s.addr, "/");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        r.headers
    );
    assert!(r.text().to_ascii_lowercase().contains("<html"));
    // Off by configuration.
    let mut config = test_config();
    config.demo_page = false;
    let s = gateway(config);
    assert_eq!(http_get(s.addr, "/").status, 404);
}

#[test]
fn not_found_and_method_not_allowed() {
    let s = gateway(test_config());
    let r = http_get(s.addr, "/nope");
    assert_error(&r, 404);
    assert_error(&http_get(s.addr, "/api/unknown"), 404);

    let r = http(s.addr, "POST", "/healthz", &[], Some(b"x"));
    assert_error(&r, 405);
    let allow = r.header("allow").expect("Allow header");
    assert!(allow.contains("GET"), "{allow}");
    assert!(!allow.contains("POST"), "{allow}");

    let r = http_get(s.addr, "/api/send_to_all");
    assert_error(&r, 405);
    assert_eq!(r.header("allow"), Some("POST"));

    let r = http(s.addr, "DELETE", "/api/sockets/1/session", &[], None);
    assert_error(&r, 405);
    let allow = r.header("allow").unwrap();
    for m in ["GET", "PUT", "PATCH"] {
        assert!(allow.contains(m), "{allow}");
    }
    // A method the server does not know at all.
    let r = http(s.addr, "BREW", "/healthz", &[], None);
    assert_eq!(r.status, 405);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let s = gateway(api_test_config());
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write_http_request(&mut stream, "GET", "/healthz", &[], None);
    let r = read_http_response(&mut stream);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    write_http_request(&mut stream, "GET", "/status", &[], None);
    assert_eq!(read_http_response(&mut stream).json()["online_sockets"], 0);
    // A POST with a body, then a pipelined pair in one write.
    write_http_request(
        &mut stream,
        "POST",
        "/api/send_to_all",
        &[],
        Some(br#"{"message":1}"#),
    );
    assert_eq!(
        read_http_response(&mut stream).json(),
        json!({"delivered": 0})
    );
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_http_response(&mut stream).status, 200);
    assert_eq!(read_http_response(&mut stream).status, 404);
    // Connection: close ends it after the response.
    write_http_request(
        &mut stream,
        "GET",
        "/healthz",
        &[("Connection", "close")],
        None,
    );
    let r = read_http_response(&mut stream);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(read_to_close(&mut stream), "");
}

#[test]
fn http_1_0_closes_unless_keep_alive() {
    let s = gateway(test_config());
    let out = raw_exchange(s.addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("connection: close"),
        "{out}"
    );
}

#[test]
fn http_1_1_without_host_or_with_two_is_400_and_closed() {
    let s = gateway(test_config());
    for (request, reason) in [
        (&b"GET /healthz HTTP/1.1\r\n\r\n"[..], "missing Host header"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "more than one Host header",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nhost: t\r\n\r\n",
            "more than one Host header",
        ),
        // RFC 9112 §3.2 refuses two Host lines whatever the version.
        (
            b"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            "more than one Host header",
        ),
        // The connection closes after the answer: a request pipelined after
        // the refused one is never run.
        (
            b"POST /api/send_to_all HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
            "missing Host header",
        ),
    ] {
        let out = raw_exchange(s.addr, request);
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
        let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], reason, "{out}");
    }
    // On a keep-alive connection, the good request is served and the bad one
    // ends the connection.
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_http_response(&mut stream).status, 200);
    assert_error(&read_http_response(&mut stream), 400);
    assert_eq!(read_to_close(&mut stream), "");
    // HTTP/1.0 may omit Host (the test above, http_1_0_closes_unless_keep_alive, too).
    let out = raw_exchange(s.addr, b"GET /status HTTP/1.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
}

// ---- The API ----

fn message_from_server(to: Value, message: Value) -> Value {
    json!({"type": "message", "data": {"from": "server", "to": to, "message": message}})
}

#[test]
fn api_send_to_all() {
    let s = gateway(api_test_config());
    let (mut a, _) = ws_bound(s.addr, "alice");
    let (mut u, _) = ws(s.addr);
    let mut t = tungstenite_connect(s.addr);
    tungstenite_recv_text(&mut t);
    let r = ok_json(post(
        s.addr,
        "/api/send_to_all",
        json!({"message": {"news": 1}}),
    ));
    assert_eq!(r, json!({"delivered": 3}));
    let expected = message_from_server(json!({"all": true}), json!({"news": 1}));
    assert_eq!(a.recv_json(), expected);
    assert_eq!(u.recv_json(), expected);
    let got: Value = serde_json::from_str(&tungstenite_recv_text(&mut t)).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn api_send_to_client() {
    let s = gateway(api_test_config());
    let (mut a1, _) = ws_bound(s.addr, "alice");
    let (mut a2, _) = ws_bound(s.addr, "alice");
    let (mut b, _) = ws_bound(s.addr, "bob");
    let r = ok_json(post(
        s.addr,
        "/api/send_to_client",
        json!({"client_id": "alice", "message": "hi"}),
    ));
    assert_eq!(r, json!({"delivered": 2}));
    let expected = message_from_server(json!({"client": "alice"}), json!("hi"));
    assert_eq!(a1.recv_json(), expected);
    assert_eq!(a2.recv_json(), expected);
    assert_alive(&mut b);
    let r = ok_json(post(
        s.addr,
        "/api/send_to_client",
        json!({"client_id": "nobody", "message": "hi"}),
    ));
    assert_eq!(r, json!({"delivered": 0}));
    // An integer client id is its decimal string.
    let (mut n, _) = ws_bound(s.addr, "7");
    let r = ok_json(post(
        s.addr,
        "/api/send_to_client",
        json!({"client_id": 7, "message": null}),
    ));
    assert_eq!(r, json!({"delivered": 1}));
    assert_eq!(
        n.recv_json(),
        message_from_server(json!({"client": "7"}), Value::Null)
    );
}

#[test]
fn api_send_to_group_with_exclusions() {
    let s = gateway(api_test_config());
    let (mut a, a_id) = ws_bound(s.addr, "alice");
    let (mut b, b_id) = ws_bound(s.addr, "bob");
    let (mut c, _) = ws_bound(s.addr, "carol");
    let (mut outsider, _) = ws_bound(s.addr, "dave");
    for x in [&mut a, &mut b, &mut c] {
        join(x, "room");
    }
    let r = ok_json(post(
        s.addr,
        "/api/send_to_group",
        json!({"group": "room", "message": [1, 2]}),
    ));
    assert_eq!(r, json!({"delivered": 3}));
    let expected = message_from_server(json!({"group": "room"}), json!([1, 2]));
    for x in [&mut a, &mut b, &mut c] {
        assert_eq!(x.recv_json(), expected);
    }
    assert_alive(&mut outsider);
    // Exclusions: socket ids as strings (as they travel), or integers.
    let b_num: u64 = b_id.parse().unwrap();
    let r = ok_json(post(
        s.addr,
        "/api/send_to_group",
        json!({"group": "room", "message": "x", "exclude": [a_id, b_num]}),
    ));
    assert_eq!(r, json!({"delivered": 1}));
    assert_eq!(c.recv_json()["data"]["message"], "x");
    assert_alive(&mut a);
    assert_alive(&mut b);
    // Bad exclusions are 400.
    for exclude in [json!("nope"), json!(["abc"]), json!([1.5])] {
        let r = post(
            s.addr,
            "/api/send_to_group",
            json!({"group": "room", "message": "x", "exclude": exclude}),
        );
        assert_error(&r, 400);
    }
    assert_alive(&mut c);
    let r = ok_json(post(
        s.addr,
        "/api/send_to_group",
        json!({"group": "nobody-here", "message": 1}),
    ));
    assert_eq!(r, json!({"delivered": 0}));
}

#[test]
fn api_send_to_socket() {
    let s = gateway(api_test_config());
    let (mut a, a_id) = ws(s.addr);
    let (mut b, _) = ws(s.addr);
    let r = ok_json(post(
        s.addr,
        "/api/send_to_socket",
        json!({"socket_id": a_id, "message": {"k": "v"}}),
    ));
    assert_eq!(r, json!({"delivered": 1}));
    assert_eq!(
        a.recv_json(),
        message_from_server(json!({"socket": a_id}), json!({"k": "v"}))
    );
    assert_alive(&mut b);
    let r = ok_json(post(
        s.addr,
        "/api/send_to_socket",
        json!({"socket_id": "18446744073709551615", "message": 1}),
    ));
    assert_eq!(r, json!({"delivered": 0}));
    let r = post(
        s.addr,
        "/api/send_to_socket",
        json!({"socket_id": "abc", "message": 1}),
    );
    assert_error(&r, 400);
}

#[test]
fn api_send_bodies_are_checked() {
    let s = gateway(api_test_config());
    for (path, body) in [
        ("/api/send_to_all", "{}"),
        ("/api/send_to_all", "not json"),
        ("/api/send_to_all", ""),
        ("/api/send_to_client", r#"{"message":1}"#),
        ("/api/send_to_client", r#"{"client_id":[1],"message":1}"#),
        ("/api/send_to_group", r#"{"message":1}"#),
        ("/api/send_to_socket", r#"{"message":1}"#),
        ("/api/send_to_socket", r#"{"socket_id":"1"}"#),
    ] {
        let r = http(s.addr, "POST", path, &[], Some(body.as_bytes()));
        assert_error(&r, 400);
    }
}

#[test]
fn api_clients_and_groups() {
    let s = gateway(api_test_config());
    let (_a1, a1) = ws_bound(s.addr, "alice");
    let (mut a2, a2_id) = ws_bound(s.addr, "alice");
    let (mut b, b_id) = ws_bound(s.addr, "bob");
    let (mut u, u_id) = ws(s.addr);

    let v = ok_json(http_get(s.addr, "/api/clients/alice"));
    assert_eq!(v["online"], true);
    let mut sockets: Vec<String> = v["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().expect("socket ids are strings").to_owned())
        .collect();
    sockets.sort();
    let mut want = vec![a1.clone(), a2_id.clone()];
    want.sort();
    assert_eq!(sockets, want);
    assert_eq!(
        ok_json(http_get(s.addr, "/api/clients/nobody")),
        json!({"online": false, "sockets": []})
    );

    join(&mut a2, "room 1");
    join(&mut b, "room 1");
    // Unbound sockets cannot join through the gateway; members count anyway.
    u.send_json(&json!({"type": "join", "data": {"group": "room 1"}}));
    assert_eq!(u.recv_json()["data"]["code"], "not_bound");
    let v = ok_json(http_get(s.addr, "/api/groups/room%201"));
    assert_eq!(v["sockets"], 2);
    assert_eq!(v["clients"], 2);
    let mut members: Vec<&str> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    members.sort();
    let mut want = vec![a2_id.as_str(), b_id.as_str()];
    want.sort();
    assert_eq!(members, want);
    assert_eq!(
        ok_json(http_get(s.addr, "/api/groups/none")),
        json!({"sockets": 0, "clients": 0, "members": []})
    );
    assert!(!u_id.is_empty());
}

#[test]
fn api_sessions_get_put_patch() {
    let s = gateway(api_test_config());
    let (_a, a_id) = ws(s.addr);
    let path = format!("/api/sockets/{a_id}/session");
    assert_eq!(ok_json(http_get(s.addr, &path)), json!({}));
    let put = |body: &str| http(s.addr, "PUT", &path, &[], Some(body.as_bytes()));
    let patch = |body: &str| http(s.addr, "PATCH", &path, &[], Some(body.as_bytes()));

    assert_eq!(
        ok_json(put(r#"{"name":"Ann","level":1}"#)),
        json!({"name": "Ann", "level": 1})
    );
    assert_eq!(
        ok_json(http_get(s.addr, &path)),
        json!({"name": "Ann", "level": 1})
    );
    // PATCH merges top-level keys; null removes one.
    assert_eq!(
        ok_json(patch(r#"{"level":2,"tags":["x"],"name":null}"#)),
        json!({"level": 2, "tags": ["x"]})
    );
    assert_eq!(
        ok_json(http_get(s.addr, &path)),
        json!({"level": 2, "tags": ["x"]})
    );
    // PUT replaces.
    assert_eq!(ok_json(put(r#"{"fresh":true}"#)), json!({"fresh": true}));
    // Errors.
    assert_error(&patch("[1]"), 400);
    assert_error(&patch("nope"), 400);
    assert_error(&put("nope"), 400);
    assert_eq!(ok_json(http_get(s.addr, &path)), json!({"fresh": true}));
    assert_error(
        &http_get(s.addr, "/api/sockets/18446744073709551615/session"),
        404,
    );
    assert_error(&http_get(s.addr, "/api/sockets/abc/session"), 400);
    let r = http(
        s.addr,
        "PUT",
        "/api/sockets/18446744073709551615/session",
        &[],
        Some(b"{}"),
    );
    assert_error(&r, 404);
}

#[test]
fn api_close_socket() {
    let s = gateway(api_test_config());
    let (mut a, a_id) = ws_bound(s.addr, "alice");
    let (mut b, b_id) = ws(s.addr);
    let path = format!("/api/sockets/{a_id}/close");
    let r = ok_json(post(
        s.addr,
        &path,
        json!({"code": 4000, "reason": "kicked"}),
    ));
    assert_eq!(r, json!({"closed": true}));
    assert_eq!(a.answer_close(4000), "kicked");
    assert_eq!(
        ok_json(post(s.addr, &path, json!({"code": 4000}))),
        json!({"closed": false})
    );
    assert_eq!(
        ok_json(http_get(s.addr, "/api/clients/alice")),
        json!({"online": false, "sockets": []})
    );
    // Invalid codes are refused and the socket stays.
    let b_path = format!("/api/sockets/{b_id}/close");
    for code in [
        json!(1005),
        json!(999),
        json!(5000),
        json!("4000"),
        json!(70000),
    ] {
        assert_error(&post(s.addr, &b_path, json!({ "code": code })), 400);
    }
    assert_alive(&mut b);
    // No body: a normal close (1000).
    let r = http(s.addr, "POST", &b_path, &[], None);
    assert_eq!(ok_json(r), json!({"closed": true}));
    b.answer_close(1000);
    // tungstenite sees the code too.
    let mut t = tungstenite_connect(s.addr);
    let welcome: Value = serde_json::from_str(&tungstenite_recv_text(&mut t)).unwrap();
    let t_id = welcome["data"]["socket_id"].as_str().unwrap();
    let r = post(
        s.addr,
        &format!("/api/sockets/{t_id}/close"),
        json!({"code": 4321, "reason": "bye"}),
    );
    assert_eq!(ok_json(r), json!({"closed": true}));
    match t.read().unwrap() {
        tungstenite::Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 4321);
            assert_eq!(f.reason.as_str(), "bye");
        }
        other => panic!("expected close, got {other:?}"),
    }
    let text = http_get(s.addr, "/metrics").text();
    assert_eq!(
        metric_value(&text, "gmws_closes_total{reason=\"server_close\"}"),
        Some(3)
    );
}

// ---- The guard ----

#[test]
fn api_key_is_required_when_set() {
    let mut config = test_config();
    config.api_key = Some("k3y".to_owned());
    let s = gateway(config);
    let (mut a, _) = ws(s.addr);
    let body = br#"{"message":"m"}"#;
    for headers in [
        &[][..],
        &[("Authorization", "Bearer wrong")][..],
        &[("Authorization", "Bearer k3")][..],
        &[("Authorization", "Bearer k3y2")][..],
        &[("Authorization", "Basic k3y")][..],
        &[("Authorization", "k3y")][..],
        &[("Authorization", "Bearer K3Y")][..],
        &[("Authorization", "Bearerk3y")][..],
    ] {
        let r = http(s.addr, "POST", "/api/send_to_all", headers, Some(body));
        assert_error(&r, 401);
        let r = http(s.addr, "GET", "/api/clients/x", headers, None);
        assert_error(&r, 401);
    }
    // Nothing was sent by the refused requests.
    assert_alive(&mut a);
    let auth = [("Authorization", "Bearer k3y")];
    let r = http(s.addr, "POST", "/api/send_to_all", &auth, Some(body));
    assert_eq!(ok_json(r), json!({"delivered": 1}));
    assert_eq!(a.recv_json()["data"]["from"], "server");
    // The scheme in any case, and more than one space before the token.
    for value in ["bearer k3y", "BEARER k3y", "Bearer    k3y"] {
        let r = http(
            s.addr,
            "GET",
            "/api/clients/x",
            &[("Authorization", value)],
            None,
        );
        assert_eq!(r.status, 200, "{value:?}: {:?}", r.text());
    }
    let r = http(s.addr, "GET", "/api/clients/x", &auth, None);
    assert_eq!(ok_json(r)["online"], false);
    // The public routes need no key.
    assert_eq!(http_get(s.addr, "/healthz").status, 200);
    assert_eq!(http_get(s.addr, "/status").status, 200);
    assert_eq!(http_get(s.addr, "/metrics").status, 200);
}

#[test]
fn without_api_key_the_api_is_refused_even_from_loopback() {
    // The default: no api_key, loopback not trusted. This test's peer is
    // 127.0.0.1, as a reverse proxy on the same host would be.
    let config = test_config();
    assert!(config.api_key.is_none() && !config.api_trust_loopback);
    let s = gateway(config);
    let (mut a, a_id) = ws_bound(s.addr, "alice");
    for r in [
        post(s.addr, "/api/send_to_all", json!({"message": 1})),
        post(
            s.addr,
            "/api/send_to_socket",
            json!({"socket_id": a_id, "message": 1}),
        ),
        post(s.addr, &format!("/api/sockets/{a_id}/close"), json!({})),
        http_get(s.addr, "/api/clients/alice"),
        http(
            s.addr,
            "GET",
            "/api/clients/alice",
            &[("Authorization", "Bearer anything")],
            None,
        ),
    ] {
        assert_error(&r, 403);
        let message = r.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains("set api_key"), "{message}");
        assert!(message.contains("api_trust_loopback"), "{message}");
    }
    // Nothing was sent or closed by the refused requests.
    assert_alive(&mut a);
    // The public routes stay open.
    assert_eq!(http_get(s.addr, "/healthz").status, 200);
    assert_eq!(http_get(s.addr, "/status").status, 200);
    assert_eq!(http_get(s.addr, "/metrics").status, 200);
    assert_eq!(http_get(s.addr, "/").status, 200);
}

#[test]
fn api_trust_loopback_opens_the_api_to_loopback_peers() {
    let s = gateway(api_test_config());
    let (mut a, _) = ws_bound(s.addr, "alice");
    let r = post(s.addr, "/api/send_to_all", json!({"message": "hi"}));
    assert_eq!(ok_json(r), json!({"delivered": 1}));
    assert_eq!(a.recv_json()["data"]["message"], "hi");
    assert_eq!(
        ok_json(http_get(s.addr, "/api/clients/alice"))["online"],
        true
    );

    // With an api_key as well, the key is required from loopback too.
    let mut config = api_test_config();
    config.api_key = Some("k".to_owned());
    let s = gateway(config);
    assert_error(&http_get(s.addr, "/api/clients/x"), 401);
    let r = http(
        s.addr,
        "GET",
        "/api/clients/x",
        &[("Authorization", "bearer   k")],
        None,
    );
    assert_eq!(ok_json(r)["online"], false);
}

#[test]
fn an_ipv4_mapped_loopback_peer_is_loopback() {
    // A listener on the IPv6 socket address ::ffff:127.0.0.1 sees IPv4
    // clients as ::ffff:127.0.0.1 (how a dual-stack listener on [::] sees
    // them). This needs IPv6 sockets in the kernel; it fails, rather than
    // skips, without them.
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:0".parse().unwrap();
    for (trust, status) in [(false, 403), (true, 200)] {
        let mut config = test_config();
        config.listen = mapped;
        config.api_trust_loopback = trust;
        let s = gateway(config);
        assert!(s.addr.is_ipv6(), "{}", s.addr);
        let r = http_get(s.addr, "/api/clients/x");
        assert_eq!(r.status, status, "trust {trust}: {:?}", r.text());
    }
}

/// A non-loopback address of this machine, if it has one (e.g. eth0's).
fn non_loopback_ip() -> Option<IpAddr> {
    // The source address the kernel picks for an outside destination (no
    // packet is sent by connecting a UDP socket).
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("192.0.2.1:9").ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn api_trust_loopback_does_not_open_the_api_to_other_peers() {
    // Covered without a network by the unit tests of `http::api`; over TCP it
    // needs an address of this machine that is not loopback.
    // No silent pass: a machine without such an address fails this test.
    let ip = non_loopback_ip()
        .expect("this test needs a non-loopback address on this machine (e.g. eth0's)");
    let mut config = api_test_config();
    config.listen = SocketAddr::new(ip, 0);
    let s = gateway(config);
    // Connecting to that address from this machine: the peer is `ip` too.
    let r = post(s.addr, "/api/send_to_all", json!({"message": 1}));
    assert_error(&r, 403);
    assert_error(&http_get(s.addr, "/api/clients/x"), 403);
    assert_eq!(http_get(s.addr, "/healthz").status, 200);

    // With a key, such a peer is served when it presents it.
    let mut config = test_config();
    config.listen = SocketAddr::new(ip, 0);
    config.api_key = Some("k".to_owned());
    let s = gateway(config);
    let r = http(
        s.addr,
        "GET",
        "/api/clients/x",
        &[("Authorization", "Bearer k")],
        None,
    );
    assert_eq!(ok_json(r)["online"], false);
    assert_error(&http_get(s.addr, "/api/clients/x"), 401);
}

// ---- Limits and framing ----

#[test]
fn oversized_body_is_413_without_reading_it() {
    let mut config = api_test_config();
    config.max_http_body = 100;
    let s = gateway(config);
    let big = vec![b'x'; 101];
    let r = http(s.addr, "POST", "/api/send_to_all", &[], Some(&big));
    assert_error(&r, 413);
    assert_eq!(r.header("connection"), Some("close"));
    // Only the head, announcing a huge body: answered at once.
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(
            b"POST /api/send_to_all HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n",
        )
        .unwrap();
    assert_error(&read_http_response(&mut stream), 413);
    // At the limit is fine.
    let body = format!(r#"{{"message":"{}"}}"#, "y".repeat(100 - 14));
    assert_eq!(body.len(), 100);
    let r = http(
        s.addr,
        "POST",
        "/api/send_to_all",
        &[],
        Some(body.as_bytes()),
    );
    assert_eq!(ok_json(r), json!({"delivered": 0}));
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    let s = gateway(test_config());
    let out = raw_exchange(
        s.addr,
        b"POST /api/send_to_all HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    // Transfer-Encoding alone is not supported.
    let out = raw_exchange(
        s.addr,
        b"POST /api/send_to_all HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 501 "), "{out}");
    // Two Content-Lengths, or a bad one.
    let out = raw_exchange(
        s.addr,
        b"POST /api/send_to_all HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    let out = raw_exchange(
        s.addr,
        b"POST /api/send_to_all HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
}

#[test]
fn oversized_request_head_is_431() {
    let s = gateway(test_config());
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // The server may answer and close before reading it all.
    let _ = stream.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
}

// ---- User routes ----

#[test]
fn user_routes() {
    let s = start_with(test_config(), Gateway, |server| {
        server
            .route(Method::Get, "/hello/:name", |_hub, req| {
                Response::text(200, format!("hello {}", req.param("name").unwrap()))
            })
            .unwrap();
        server
            .route(Method::Post, "/echo", |_hub, req| {
                Response::with_body(201, "application/octet-stream", req.body.clone())
            })
            .unwrap();
        server
            .route(Method::Get, "/online", |hub, _req| {
                Response::json(200, &json!({"n": hub.online_sockets()}))
            })
            .unwrap();
        server
            .route(Method::Post, "/kick/:client", |hub, req| {
                let client = req.param("client").unwrap();
                let mut n = 0;
                for id in hub.client_sockets(client) {
                    n += usize::from(
                        hub.close_socket(id, gmws::CloseCode(4003), "kicked")
                            .is_ok(),
                    );
                }
                Response::json(200, &json!({"kicked": n}))
            })
            .unwrap();
        server
            .route(Method::Get, "/boom", |_hub, _req| panic!("route panics"))
            .unwrap();
        // A pattern already taken is an error.
        assert!(server
            .route(Method::Get, "/healthz", |_h, _r| Response::empty(204))
            .is_err());
        assert!(server
            .route(Method::Get, "no-slash", |_h, _r| Response::empty(204))
            .is_err());
    });
    let r = http_get(s.addr, "/hello/bob");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello bob");
    assert_eq!(http_get(s.addr, "/hello/J%C3%B6rg").text(), "hello Jörg");
    let r = http(s.addr, "POST", "/hello/bob", &[], Some(b""));
    assert_error(&r, 405);
    assert!(r.header("allow").unwrap().contains("GET"));
    assert_eq!(http_get(s.addr, "/hello").status, 404);
    let r = http(s.addr, "POST", "/echo", &[], Some(b"\x00\x01binary"));
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"\x00\x01binary");
    // Built-ins are still there.
    assert_eq!(http_get(s.addr, "/healthz").status, 200);

    // Routes see the hub.
    let (mut a, _) = ws_bound(s.addr, "alice");
    assert_eq!(ok_json(http_get(s.addr, "/online")), json!({"n": 1}));
    let r = http(s.addr, "POST", "/kick/alice", &[], None);
    assert_eq!(ok_json(r), json!({"kicked": 1}));
    a.answer_close(4003);

    // A panicking route answers 500; the server goes on.
    assert_error(&http_get(s.addr, "/boom"), 500);
    assert_eq!(http_get(s.addr, "/hello/again").text(), "hello again");
}

/// A handler answering unmatched requests itself.
struct Fallback;

impl Handler for Fallback {
    fn on_http(&mut self, hub: &mut Hub, request: &HttpRequest) -> Option<Response> {
        match request.path.as_str() {
            "/custom" => Some(Response::text(
                200,
                format!("custom {} {}", request.method, hub.online_sockets()),
            )),
            "/custom-panic" => panic!("on_http panics"),
            _ => None,
        }
    }
}

#[test]
fn handler_on_http_answers_unmatched_requests() {
    let s = start(test_config(), Fallback);
    let r = http_get(s.addr, "/custom");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "custom GET 0");
    assert_error(&http_get(s.addr, "/other"), 404);
    assert_error(&http_get(s.addr, "/custom-panic"), 500);
    // Routes win over on_http.
    assert_eq!(http_get(s.addr, "/healthz").status, 200);
}

#[test]
fn a_request_arriving_in_pieces_is_served_once_complete() {
    let s = gateway(api_test_config());
    let (mut a, _) = ws(s.addr);
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_nodelay(true).unwrap();
    let body = br#"{"message":"pieces"}"#;
    let head = format!(
        "POST /api/send_to_all HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (h1, h2) = head.as_bytes().split_at(10);
    let (b1, b2) = body.split_at(7);
    for piece in [h1, h2, b1] {
        stream.write_all(piece).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    // Nothing was delivered before the body was complete.
    assert_alive(&mut a);
    stream.write_all(b2).unwrap();
    assert_eq!(
        read_http_response(&mut stream).json(),
        json!({"delivered": 1})
    );
    assert_eq!(a.recv_json()["data"]["message"], "pieces");
    // The connection serves the next request.
    write_http_request(&mut stream, "GET", "/healthz", &[], None);
    assert_eq!(read_http_response(&mut stream).status, 200);
}
