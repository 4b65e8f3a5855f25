//! The default gateway (`gmws::Gateway`) against the wire contract of
//! DESIGN.md, over real TCP with our client and with tungstenite.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gmws::auth::jwt::sign_hs256;
use gmws::protocol::OpCode;
use gmws::{Config, Gateway};
use serde_json::{json, Value};
use support::*;
use tungstenite::{Message, WebSocket};

fn gateway(config: Config) -> TestServer {
    start(config, Gateway)
}

/// Connect, read the welcome, return the client and its socket id.
fn connect(addr: SocketAddr) -> (Client, String) {
    let mut c = Client::connect(addr);
    let welcome = c.recv_json();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let id = welcome["data"]["socket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("socket_id is not a string: {welcome}"))
        .to_owned();
    (c, id)
}

/// Connect and bind to `client_id`.
fn connect_bound(addr: SocketAddr, client_id: &str) -> (Client, String) {
    let (mut c, id) = connect(addr);
    c.send_json(&json!({"type": "bind", "data": {"client_id": client_id}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "bind", "data": {"socket_id": id, "client_id": client_id}})
    );
    (c, id)
}

/// A ping round trip: the connection is open and nothing else was pending.
fn assert_alive(c: &mut Client) {
    c.send_json(&json!({"type": "ping"}));
    assert_eq!(c.recv_json(), json!({"type": "pong"}));
}

/// Expect an error envelope with `code` (and `request`, when given).
fn expect_error(c: &mut Client, code: &str, request: Option<&str>) -> Value {
    let v = c.recv_json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["data"]["code"], code, "{v}");
    assert!(v["data"]["message"].is_string(), "{v}");
    match request {
        Some(r) => assert_eq!(v["data"]["request"], r, "{v}"),
        None => assert!(v["data"].get("request").is_none(), "{v}"),
    }
    v
}

fn ws_connect(addr: SocketAddr) -> (WebSocket<TcpStream>, String) {
    let mut ws = tungstenite_connect(addr);
    let welcome: Value = serde_json::from_str(&tungstenite_recv_text(&mut ws)).unwrap();
    assert_eq!(welcome["type"], "welcome");
    let id = welcome["data"]["socket_id"].as_str().unwrap().to_owned();
    (ws, id)
}

fn ws_send(ws: &mut WebSocket<TcpStream>, v: &Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

fn ws_recv(ws: &mut WebSocket<TcpStream>) -> Value {
    serde_json::from_str(&tungstenite_recv_text(ws)).unwrap()
}

fn metrics(addr: SocketAddr) -> String {
    let r = http_get(addr, "/metrics");
    assert_eq!(r.status, 200);
    r.text()
}

fn closes(addr: SocketAddr, reason: &str) -> u64 {
    let text = metrics(addr);
    metric_value(&text, &format!("gmws_closes_total{{reason=\"{reason}\"}}"))
        .unwrap_or_else(|| panic!("no close metric for {reason}:\n{text}"))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn welcome_carries_the_socket_id_as_a_string_and_the_auth_timeout() {
    let mut config = test_config();
    config.auth_timeout = Duration::from_secs(30);
    let s = gateway(config);
    let mut c = Client::connect(s.addr);
    let v = c.recv_json();
    assert_eq!(v["type"], "welcome");
    let id = v["data"]["socket_id"].as_str().expect("a string");
    let n: u64 = id.parse().expect("a decimal u64");
    assert_eq!(n.to_string(), id);
    assert_eq!(v["data"]["auth_timeout"].as_f64(), Some(30.0), "{v}");
    // Each connection gets its own id.
    let (_d, other) = connect(s.addr);
    assert_ne!(other, id);
    // tungstenite sees the same welcome.
    let (_ws, third) = ws_connect(s.addr);
    assert_ne!(third, id);
}

#[test]
fn bind_and_ping_replies() {
    let s = gateway(test_config());
    let (mut c, id) = connect(s.addr);
    // ping is allowed before bind.
    assert_alive(&mut c);
    c.send_json(&json!({"type": "bind", "data": {"client_id": "alice"}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "bind", "data": {"socket_id": id, "client_id": "alice"}})
    );
    assert_alive(&mut c);
    // Binding again to another id is allowed (moves the socket).
    c.send_json(&json!({"type": "bind", "data": {"client_id": "alice2"}}));
    assert_eq!(c.recv_json()["data"]["client_id"], "alice2");
    let status = http_get(s.addr, "/status").json();
    assert_eq!(status["online_clients"], 1);
}

#[test]
fn client_id_as_a_json_integer_is_kept_as_its_decimal_string() {
    let s = gateway(api_test_config());
    let (mut c, id) = connect(s.addr);
    c.send_json(&json!({"type": "bind", "data": {"client_id": 12345678901234u64}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "bind", "data": {"socket_id": id, "client_id": "12345678901234"}})
    );
    // Others reach it by the string, or by the integer again.
    let (mut other, other_id) = connect_bound(s.addr, "other");
    for target in [json!("12345678901234"), json!(12345678901234u64)] {
        other.send_json(
            &json!({"type": "send_to_client", "data": {"client_id": target, "message": "hi"}}),
        );
        assert_eq!(
            c.recv_json(),
            json!({"type": "message", "data": {
                "from": {"socket_id": other_id, "client_id": "other"},
                "to": {"client": "12345678901234"},
                "message": "hi"}})
        );
    }
    let r = http_get(s.addr, "/api/clients/12345678901234").json();
    assert_eq!(r, json!({"online": true, "sockets": [id]}));
}

#[test]
fn join_and_leave_replies() {
    let s = gateway(api_test_config());
    let (mut c, _) = connect_bound(s.addr, "alice");
    c.send_json(&json!({"type": "join", "data": {"group": "room1"}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "join", "data": {"group": "room1"}})
    );
    // Joining twice is not an error.
    c.send_json(&json!({"type": "join", "data": {"group": "room1"}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "join", "data": {"group": "room1"}})
    );
    let g = http_get(s.addr, "/api/groups/room1").json();
    assert_eq!(g["sockets"], 1);
    assert_eq!(g["clients"], 1);
    c.send_json(&json!({"type": "leave", "data": {"group": "room1"}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "leave", "data": {"group": "room1"}})
    );
    let g = http_get(s.addr, "/api/groups/room1").json();
    assert_eq!(g, json!({"sockets": 0, "clients": 0, "members": []}));
    // Leaving a group one is not in is answered the same way.
    c.send_json(&json!({"type": "leave", "data": {"group": "never"}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "leave", "data": {"group": "never"}})
    );
}

#[test]
fn send_to_all_reaches_every_socket_with_the_exact_shape() {
    let s = gateway(test_config());
    let (mut alice, alice_id) = connect_bound(s.addr, "alice");
    let (mut bob, _) = connect_bound(s.addr, "bob");
    let (mut unbound, _) = connect(s.addr);
    let message = json!({"text": "hello", "n": [1, 2, {"deep": null}]});
    alice.send_json(&json!({"type": "send_to_all", "data": {"message": message}}));
    let expected = json!({"type": "message", "data": {
        "from": {"socket_id": alice_id, "client_id": "alice"},
        "to": {"all": true},
        "message": message}});
    // The sender is among the recipients (the gateway's documented decision).
    for c in [&mut alice, &mut bob, &mut unbound] {
        assert_eq!(c.recv_json(), expected);
    }
    // Any JSON value is a message.
    for m in [json!("text"), json!(42), json!(null), json!([true])] {
        bob.send_json(&json!({"type": "send_to_all", "data": {"message": m}}));
        for c in [&mut alice, &mut bob, &mut unbound] {
            assert_eq!(c.recv_json()["data"]["message"], m);
        }
    }
    assert_alive(&mut alice);
}

#[test]
fn send_to_group_reaches_members_only() {
    let s = gateway(test_config());
    let (mut alice, alice_id) = connect_bound(s.addr, "alice");
    let (mut bob, _) = connect_bound(s.addr, "bob");
    let (mut carol, _) = connect_bound(s.addr, "carol");
    for c in [&mut alice, &mut bob] {
        c.send_json(&json!({"type": "join", "data": {"group": "room1"}}));
        assert_eq!(c.recv_json()["type"], "join");
    }
    alice.send_json(
        &json!({"type": "send_to_group", "data": {"group": "room1", "message": {"hi": 1}}}),
    );
    let expected = json!({"type": "message", "data": {
        "from": {"socket_id": alice_id, "client_id": "alice"},
        "to": {"group": "room1"},
        "message": {"hi": 1}}});
    assert_eq!(bob.recv_json(), expected);
    assert_eq!(alice.recv_json(), expected);
    assert_alive(&mut carol);
    // A non-member may send to a group; it does not receive its own message.
    let carol_id = {
        carol.send_json(&json!({"type": "send_to_group", "data": {"group": "room1", "message": "from outside"}}));
        let v = bob.recv_json();
        assert_eq!(v["data"]["from"]["client_id"], "carol");
        assert_eq!(alice.recv_json(), v);
        v["data"]["from"]["socket_id"].as_str().unwrap().to_owned()
    };
    assert!(!carol_id.is_empty());
    assert_alive(&mut carol);
    // After leaving, no more messages.
    bob.send_json(&json!({"type": "leave", "data": {"group": "room1"}}));
    assert_eq!(bob.recv_json()["type"], "leave");
    alice.send_json(&json!({"type": "send_to_group", "data": {"group": "room1", "message": 2}}));
    assert_eq!(alice.recv_json()["data"]["message"], 2);
    assert_alive(&mut bob);
    // A group with no members: nothing, and no error.
    alice.send_json(&json!({"type": "send_to_group", "data": {"group": "empty", "message": 3}}));
    assert_alive(&mut alice);
}

#[test]
fn send_to_client_reaches_every_socket_of_that_client() {
    let s = gateway(test_config());
    let (mut alice, alice_id) = connect_bound(s.addr, "alice");
    let (mut bob1, _) = connect_bound(s.addr, "bob");
    let (mut bob2, _) = connect_bound(s.addr, "bob");
    alice.send_json(
        &json!({"type": "send_to_client", "data": {"client_id": "bob", "message": "psst"}}),
    );
    let expected = json!({"type": "message", "data": {
        "from": {"socket_id": alice_id, "client_id": "alice"},
        "to": {"client": "bob"},
        "message": "psst"}});
    assert_eq!(bob1.recv_json(), expected);
    assert_eq!(bob2.recv_json(), expected);
    // Not to the sender; an offline client: nothing, no error.
    assert_alive(&mut alice);
    alice.send_json(
        &json!({"type": "send_to_client", "data": {"client_id": "nobody", "message": 1}}),
    );
    assert_alive(&mut alice);
    assert_alive(&mut bob1);
}

#[test]
fn until_bound_only_bind_and_ping_are_allowed() {
    let s = gateway(test_config());
    let (mut c, _) = connect(s.addr);
    let (mut bob, _) = connect_bound(s.addr, "bob");
    for (kind, data) in [
        ("join", json!({"group": "g"})),
        ("leave", json!({"group": "g"})),
        ("send_to_all", json!({"message": 1})),
        ("send_to_group", json!({"group": "g", "message": 1})),
        ("send_to_client", json!({"client_id": "bob", "message": 1})),
    ] {
        c.send_json(&json!({"type": kind, "data": data}));
        expect_error(&mut c, "not_bound", Some(kind));
    }
    // Nothing was delivered, and the connection stays open.
    assert_alive(&mut bob);
    assert_alive(&mut c);
    let status = http_get(s.addr, "/status").json();
    assert_eq!(status["groups"], 0);
    // After binding, the same requests work.
    c.send_json(&json!({"type": "bind", "data": {"client_id": "late"}}));
    assert_eq!(c.recv_json()["type"], "bind");
    c.send_json(&json!({"type": "join", "data": {"group": "g"}}));
    assert_eq!(c.recv_json()["type"], "join");
}

#[test]
fn bad_json_and_unknown_types_get_errors_and_the_connection_stays() {
    let s = gateway(test_config());
    let (mut c, _) = connect_bound(s.addr, "alice");
    for text in [
        "{not json",
        "",
        "[1,2]",
        "\"just a string\"",
        "{\"data\":{}}",
        "{\"type\":42}",
        "{\"type\":\"ping\"",
    ] {
        c.send_text(text);
        expect_error(&mut c, "bad_json", None);
    }
    c.send_json(&json!({"type": "dance", "data": {}}));
    expect_error(&mut c, "unknown_type", Some("dance"));
    c.send_json(&json!({"type": "welcome"}));
    expect_error(&mut c, "unknown_type", Some("welcome"));
    // Deep nesting is an error, not a crash.
    let deep = format!(
        r#"{{"type":"send_to_all","data":{{"message":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    c.send_text(&deep);
    expect_error(&mut c, "bad_json", None);
    assert_alive(&mut c);
}

#[test]
fn malformed_requests_are_bad_request() {
    let s = gateway(api_test_config());
    let (mut c, _) = connect_bound(s.addr, "alice");
    for (kind, data) in [
        ("join", json!({})),
        ("join", json!({"group": ["x"]})),
        ("join", json!({"group": ""})),
        ("join", json!({"group": "g".repeat(256)})),
        ("leave", json!(null)),
        ("send_to_all", json!({})),
        ("send_to_group", json!({"message": 1})),
        ("send_to_group", json!({"group": "g"})),
        ("send_to_client", json!({"message": 1})),
        ("send_to_client", json!({"client_id": 1.5, "message": 1})),
    ] {
        c.send_json(&json!({"type": kind, "data": data}));
        expect_error(&mut c, "bad_request", Some(kind));
    }
    // A group name of 255 bytes is fine.
    let longest = "g".repeat(255);
    c.send_json(&json!({"type": "join", "data": {"group": longest}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "join", "data": {"group": longest}})
    );
    // A bind with an over-long client id is refused; the old binding stays.
    c.send_json(&json!({"type": "bind", "data": {"client_id": "c".repeat(256)}}));
    expect_error(&mut c, "bad_request", Some("bind"));
    let r = http_get(s.addr, "/api/clients/alice").json();
    assert_eq!(r["online"], true);
    // A bind without a client id is refused.
    c.send_json(&json!({"type": "bind", "data": {}}));
    let v = c.recv_json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["data"]["request"], "bind");
    assert_alive(&mut c);
}

/// A request type, the switch that disables it, and its data.
type ForbiddenCase = (&'static str, fn(&mut Config), Value);

#[test]
fn disabled_actions_are_forbidden() {
    let cases: [ForbiddenCase; 5] = [
        (
            "send_to_all",
            |c| c.allow_send_to_all = false,
            json!({"message": 1}),
        ),
        (
            "send_to_group",
            |c| c.allow_send_to_group = false,
            json!({"group": "g", "message": 1}),
        ),
        (
            "send_to_client",
            |c| c.allow_send_to_client = false,
            json!({"client_id": "alice", "message": 1}),
        ),
        ("join", |c| c.allow_join = false, json!({"group": "g"})),
        ("leave", |c| c.allow_join = false, json!({"group": "g"})),
    ];
    for (kind, disable, data) in cases {
        let mut config = api_test_config();
        disable(&mut config);
        let s = gateway(config);
        let (mut c, _) = connect_bound(s.addr, "alice");
        let (mut other, _) = connect_bound(s.addr, "bob");
        c.send_json(&json!({"type": kind, "data": data}));
        expect_error(&mut c, "forbidden", Some(kind));
        assert_alive(&mut c);
        assert_alive(&mut other);
        // The other actions still work.
        if kind != "send_to_all" {
            c.send_json(&json!({"type": "send_to_all", "data": {"message": "ok"}}));
            assert_eq!(c.recv_json()["data"]["message"], "ok");
            assert_eq!(other.recv_json()["data"]["message"], "ok");
        }
        // The HTTP API is not affected by the allow_* switches.
        let r = http_post_json(s.addr, "/api/send_to_all", &json!({"message": "api"}));
        assert_eq!(r.json(), json!({"delivered": 2}));
        assert_eq!(c.recv_json()["data"]["from"], "server");
        assert_eq!(other.recv_json()["data"]["from"], "server");
    }
}

#[test]
fn too_many_groups() {
    let mut config = test_config();
    config.max_groups_per_socket = 2;
    let s = gateway(config);
    let (mut c, _) = connect_bound(s.addr, "alice");
    for g in ["a", "b"] {
        c.send_json(&json!({"type": "join", "data": {"group": g}}));
        assert_eq!(c.recv_json()["type"], "join");
    }
    c.send_json(&json!({"type": "join", "data": {"group": "c"}}));
    expect_error(&mut c, "too_many_groups", Some("join"));
    assert_alive(&mut c);
    // Leaving one makes room.
    c.send_json(&json!({"type": "leave", "data": {"group": "a"}}));
    assert_eq!(c.recv_json()["type"], "leave");
    c.send_json(&json!({"type": "join", "data": {"group": "c"}}));
    assert_eq!(
        c.recv_json(),
        json!({"type": "join", "data": {"group": "c"}})
    );
}

#[test]
fn binary_frames_are_unsupported_and_the_connection_stays() {
    let s = gateway(test_config());
    let (mut c, _) = connect(s.addr);
    c.send_frame(OpCode::Binary, true, &[1, 2, 3]);
    expect_error(&mut c, "unsupported", None);
    assert_alive(&mut c);
    let (mut ws, _) = ws_connect(s.addr);
    ws.send(Message::binary(vec![0u8; 1000])).unwrap();
    let v = ws_recv(&mut ws);
    assert_eq!(v["type"], "error");
    assert_eq!(v["data"]["code"], "unsupported");
}

#[test]
fn tungstenite_clients_speak_the_protocol() {
    let s = gateway(test_config());
    let (mut ws, ws_id) = ws_connect(s.addr);
    ws_send(&mut ws, &json!({"type": "ping"}));
    assert_eq!(ws_recv(&mut ws), json!({"type": "pong"}));
    ws_send(&mut ws, &json!({"type": "join", "data": {"group": "g"}}));
    assert_eq!(ws_recv(&mut ws)["data"]["code"], "not_bound");
    ws_send(
        &mut ws,
        &json!({"type": "bind", "data": {"client_id": "tung"}}),
    );
    assert_eq!(
        ws_recv(&mut ws),
        json!({"type": "bind", "data": {"socket_id": ws_id, "client_id": "tung"}})
    );
    ws_send(&mut ws, &json!({"type": "join", "data": {"group": "g"}}));
    assert_eq!(
        ws_recv(&mut ws),
        json!({"type": "join", "data": {"group": "g"}})
    );

    let (mut ours, ours_id) = connect_bound(s.addr, "ours");
    // ours → tungstenite, by client and by group.
    ours.send_json(
        &json!({"type": "send_to_client", "data": {"client_id": "tung", "message": "κόσμε"}}),
    );
    assert_eq!(
        ws_recv(&mut ws),
        json!({"type": "message", "data": {
            "from": {"socket_id": ours_id, "client_id": "ours"},
            "to": {"client": "tung"}, "message": "κόσμε"}})
    );
    ours.send_json(&json!({"type": "send_to_group", "data": {"group": "g", "message": [1]}}));
    assert_eq!(ws_recv(&mut ws)["data"]["to"], json!({"group": "g"}));
    // tungstenite → ours, with a large message.
    let big = "x".repeat(200_000);
    ws_send(
        &mut ws,
        &json!({"type": "send_to_client", "data": {"client_id": "ours", "message": big}}),
    );
    assert_eq!(
        ours.recv_json(),
        json!({"type": "message", "data": {
            "from": {"socket_id": ws_id, "client_id": "tung"},
            "to": {"client": "ours"}, "message": big}})
    );
    // Errors reach tungstenite as envelopes too.
    ws.send(Message::text("nope")).unwrap();
    assert_eq!(ws_recv(&mut ws)["data"]["code"], "bad_json");
}

// ---- JWT binding ----

/// 36 bytes: `auth_secret` must have at least 32.
const SECRET: &str = "s3cret-for-tests-of-at-least-32-bytes";

fn jwt_config() -> Config {
    let mut config = api_test_config();
    config.auth_secret = Some(SECRET.to_owned());
    config
}

fn jwt_gateway() -> TestServer {
    gateway(jwt_config())
}

fn try_bind(c: &mut Client, data: Value) -> Value {
    c.send_json(&json!({"type": "bind", "data": data}));
    c.recv_json()
}

/// Expect `bind` with `claims` signed by SECRET to be refused with a message
/// holding `why`, leaving the socket unbound and open.
fn expect_bind_refused(c: &mut Client, claims: Value, why: &str) {
    let token = sign_hs256(&claims, SECRET.as_bytes());
    let v = try_bind(c, json!({"client_id": "alice", "token": token}));
    assert_eq!(v["data"]["code"], "auth_failed", "{claims}: {v}");
    let message = v["data"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{claims}: {v}");
    c.send_json(&json!({"type": "join", "data": {"group": "g"}}));
    expect_error(c, "not_bound", Some("join"));
}

fn expect_bind_ok(c: &mut Client, id: &str, claims: Value) {
    let token = sign_hs256(&claims, SECRET.as_bytes());
    let v = try_bind(c, json!({"client_id": "alice", "token": token}));
    assert_eq!(
        v,
        json!({"type": "bind", "data": {"socket_id": id, "client_id": "alice"}}),
        "{claims}"
    );
}

#[test]
fn jwt_valid_token_binds() {
    let s = jwt_gateway();
    let (mut c, id) = connect(s.addr);
    let token = sign_hs256(
        &json!({"sub": "alice", "exp": now_unix() + 600}),
        SECRET.as_bytes(),
    );
    assert_eq!(
        try_bind(&mut c, json!({"client_id": "alice", "token": token})),
        json!({"type": "bind", "data": {"socket_id": id, "client_id": "alice"}})
    );
    // An integer sub with an integer client id.
    let (mut d, _) = connect(s.addr);
    let token = sign_hs256(
        &json!({"sub": 42, "exp": now_unix() + 600}),
        SECRET.as_bytes(),
    );
    let v = try_bind(&mut d, json!({"client_id": 42, "token": token}));
    assert_eq!(v["data"]["client_id"], "42", "{v}");
    let r = http_get(s.addr, "/api/clients/alice").json();
    assert_eq!(r, json!({"online": true, "sockets": [id]}));
}

#[test]
fn jwt_bad_tokens_are_auth_failed_and_the_socket_stays_unbound() {
    let s = jwt_gateway();
    let secret = SECRET.as_bytes();
    let later = now_unix() + 600;
    let cases = [
        (
            "expired beyond the leeway",
            json!({"client_id": "alice",
                   "token": sign_hs256(&json!({"sub": "alice", "exp": now_unix() - 120}), secret)}),
        ),
        (
            "no exp",
            json!({"client_id": "alice",
                   "token": sign_hs256(&json!({"sub": "alice"}), secret)}),
        ),
        (
            "wrong signature",
            json!({"client_id": "alice",
                   "token": sign_hs256(&json!({"sub": "alice", "exp": later}), b"another secret")}),
        ),
        (
            "sub mismatch",
            json!({"client_id": "alice",
                   "token": sign_hs256(&json!({"sub": "mallory", "exp": later}), secret)}),
        ),
        ("missing token", json!({"client_id": "alice"})),
        (
            "token not a string",
            json!({"client_id": "alice", "token": 5}),
        ),
        (
            "garbage token",
            json!({"client_id": "alice", "token": "a.b.c"}),
        ),
        (
            "not yet valid",
            json!({"client_id": "alice",
                   "token": sign_hs256(&json!({"sub": "alice", "nbf": later, "exp": later + 60}), secret)}),
        ),
    ];
    let (mut c, _) = connect(s.addr);
    for (what, data) in cases {
        let v = try_bind(&mut c, data);
        assert_eq!(v["type"], "error", "{what}: {v}");
        assert_eq!(v["data"]["code"], "auth_failed", "{what}: {v}");
        assert_eq!(v["data"]["request"], "bind", "{what}: {v}");
        // Still unbound, still open.
        c.send_json(&json!({"type": "join", "data": {"group": "g"}}));
        expect_error(&mut c, "not_bound", Some("join"));
    }
    assert_alive(&mut c);
    let r = http_get(s.addr, "/api/clients/alice").json();
    assert_eq!(r["online"], false);
    // A tampered payload (sub changed, signature kept) is refused too.
    let token = sign_hs256(&json!({"sub": "alice", "exp": later}), secret);
    let parts: Vec<&str> = token.split('.').collect();
    let other = sign_hs256(&json!({"sub": "admin", "exp": later}), b"x");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    let v = try_bind(&mut c, json!({"client_id": "admin", "token": forged}));
    assert_eq!(v["data"]["code"], "auth_failed", "{v}");
    // And the right token still works on the same socket.
    let v = try_bind(&mut c, json!({"client_id": "alice", "token": token}));
    assert_eq!(v["type"], "bind", "{v}");
}

#[test]
fn jwt_exp_is_required_unless_auth_require_exp_is_off() {
    let s = jwt_gateway();
    let (mut c, _) = connect(s.addr);
    expect_bind_refused(&mut c, json!({"sub": "alice"}), "token has no expiry (exp)");
    expect_bind_refused(
        &mut c,
        json!({"sub": "alice", "nbf": now_unix() - 5}),
        "token has no expiry (exp)",
    );

    let mut config = jwt_config();
    config.auth_require_exp = false;
    let s = gateway(config);
    let (mut c, id) = connect(s.addr);
    expect_bind_ok(&mut c, &id, json!({"sub": "alice"}));
    // An exp, when present, still counts.
    let (mut d, _) = connect(s.addr);
    expect_bind_refused(
        &mut d,
        json!({"sub": "alice", "exp": now_unix() - 120}),
        "token has expired",
    );
}

#[test]
fn jwt_leeway_absorbs_clock_skew() {
    // The default leeway is 30 s: 10 s past exp or before nbf still binds.
    let s = jwt_gateway();
    let now = now_unix();
    for claims in [
        json!({"sub": "alice", "exp": now - 10}),
        json!({"sub": "alice", "exp": now + 600, "nbf": now + 10}),
    ] {
        let (mut c, id) = connect(s.addr);
        expect_bind_ok(&mut c, &id, claims);
    }
    let (mut c, _) = connect(s.addr);
    expect_bind_refused(
        &mut c,
        json!({"sub": "alice", "exp": now - 60}),
        "token has expired",
    );
    expect_bind_refused(
        &mut c,
        json!({"sub": "alice", "exp": now + 600, "nbf": now + 120}),
        "token is not valid yet",
    );

    // With no leeway, 10 s past exp is expired.
    let mut config = jwt_config();
    config.auth_leeway = Duration::ZERO;
    let s = gateway(config);
    let (mut c, _) = connect(s.addr);
    expect_bind_refused(
        &mut c,
        json!({"sub": "alice", "exp": now - 10}),
        "token has expired",
    );
    expect_bind_refused(
        &mut c,
        json!({"sub": "alice", "exp": now + 600, "nbf": now + 10}),
        "token is not valid yet",
    );
}

#[test]
fn jwt_audience_and_issuer_when_configured() {
    let mut config = jwt_config();
    config.auth_audience = Some("gmws".to_owned());
    config.auth_issuer = Some("https://id.example".to_owned());
    let s = gateway(config);
    let exp = now_unix() + 600;
    let iss = "https://id.example";
    for aud in [json!("gmws"), json!(["other", "gmws"])] {
        let (mut c, id) = connect(s.addr);
        expect_bind_ok(
            &mut c,
            &id,
            json!({"sub": "alice", "exp": exp, "iss": iss, "aud": aud}),
        );
    }
    let (mut c, _) = connect(s.addr);
    for (claims, why) in [
        (
            json!({"sub": "alice", "exp": exp, "iss": iss}),
            "audience (aud)",
        ),
        (
            json!({"sub": "alice", "exp": exp, "iss": iss, "aud": "other"}),
            "audience (aud)",
        ),
        (
            json!({"sub": "alice", "exp": exp, "iss": iss, "aud": ["other"]}),
            "audience (aud)",
        ),
        (
            json!({"sub": "alice", "exp": exp, "aud": "gmws"}),
            "issuer (iss)",
        ),
        (
            json!({"sub": "alice", "exp": exp, "iss": "https://evil.example", "aud": "gmws"}),
            "issuer (iss)",
        ),
        (
            json!({"sub": "alice", "exp": exp, "iss": iss, "aud": 7}),
            "invalid token claims",
        ),
    ] {
        expect_bind_refused(&mut c, claims, why);
    }
    assert_alive(&mut c);

    // Unset (the default), aud and iss are not looked at.
    let s = jwt_gateway();
    let (mut c, id) = connect(s.addr);
    expect_bind_ok(
        &mut c,
        &id,
        json!({"sub": "alice", "exp": exp, "iss": "anyone", "aud": ["whatever"]}),
    );
}

#[test]
fn a_short_auth_secret_is_a_start_up_error() {
    let mut config = test_config();
    config.auth_secret = Some("s".repeat(31));
    let error = match gmws::Server::bind(config, Gateway) {
        Ok(_) => panic!("a 31-byte auth_secret was accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(
            error,
            gmws::BindError::Config(gmws::ConfigError::SecretTooShort("auth_secret", 32))
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("auth_secret: must be at least 32 bytes"),
        "{text}"
    );
    assert!(!text.contains("sss"), "{text}");
    // The binary's refusal: cli/tests/startup.rs.
}

// ---- Heartbeats and the auth deadline ----

fn heartbeat_config() -> Config {
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(100);
    config.ping_timeout_count = 2;
    config
}

#[test]
fn a_client_that_never_answers_pings_is_closed() {
    let s = gateway(heartbeat_config());
    let (mut c, _) = connect_bound(s.addr, "silent");
    let mut pings = 0;
    let code = loop {
        match c.recv() {
            Recv::Msg(Msg::Ping(_)) => pings += 1,
            Recv::Msg(Msg::Close(code, _)) => break code,
            other => panic!("expected pings then a close, got {other:?}"),
        }
    };
    assert_eq!(pings, 2, "closed after ping_timeout_count unanswered pings");
    assert!(code.is_some(), "the close frame carries a code");
    // The server closes TCP without waiting for our close reply.
    c.expect_eof();
    assert_eq!(closes(s.addr, "heartbeat_timeout"), 1);
    let status = http_get(s.addr, "/status").json();
    assert_eq!(status["online_sockets"], 0);
    assert_eq!(status["online_clients"], 0);
}

#[test]
fn a_client_that_answers_pings_stays_connected() {
    let s = gateway(heartbeat_config());
    // Our client, answering each ping by hand.
    let (mut c, _) = connect_bound(s.addr, "ours");
    let mut pings = 0;
    while pings < 6 {
        match c.recv() {
            Recv::Msg(Msg::Ping(payload)) => {
                pings += 1;
                c.send_frame(OpCode::Pong, true, &payload);
            }
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    c.send_json(&json!({"type": "ping"}));
    loop {
        match c.recv() {
            Recv::Msg(Msg::Ping(payload)) => c.send_frame(OpCode::Pong, true, &payload),
            Recv::Msg(Msg::Text(t)) => {
                assert_eq!(t, r#"{"type":"pong"}"#);
                break;
            }
            other => panic!("expected pong, got {other:?}"),
        }
    }
    assert_eq!(closes(s.addr, "heartbeat_timeout"), 0);
}

#[test]
fn tungstenite_answers_pings_and_stays_connected() {
    let s = gateway(heartbeat_config());
    let (mut ws, _) = ws_connect(s.addr);
    ws_send(
        &mut ws,
        &json!({"type": "bind", "data": {"client_id": "tung"}}),
    );
    assert_eq!(ws_recv(&mut ws)["type"], "bind");
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    // Keep reading (tungstenite answers pings inside read) for many intervals.
    let mut pings = 0;
    let start = Instant::now();
    while pings < 8 {
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("connection lost after {pings} pings: {e}"),
        }
        assert!(start.elapsed() < PATIENCE, "only {pings} pings");
    }
    ws.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    ws_send(&mut ws, &json!({"type": "ping"}));
    assert_eq!(ws_recv(&mut ws), json!({"type": "pong"}));
    assert_eq!(closes(s.addr, "heartbeat_timeout"), 0);
}

#[test]
fn auth_timeout_closes_unbound_sockets_with_1008_only() {
    let mut config = test_config();
    config.auth_timeout = Duration::from_millis(300);
    let s = gateway(config);
    let mut unbound = Client::connect(s.addr);
    let welcome = unbound.recv_json();
    assert_eq!(
        welcome["data"]["auth_timeout"].as_f64(),
        Some(0.3),
        "{welcome}"
    );
    let (mut bound, _) = connect_bound(s.addr, "alice");
    // One that tries to bind and fails is still unbound.
    let (mut refused, _) = connect(s.addr);
    refused.send_json(&json!({"type": "bind", "data": {}}));
    assert_eq!(refused.recv_json()["type"], "error");

    unbound.answer_close(1008);
    refused.answer_close(1008);
    assert_eq!(closes(s.addr, "auth_timeout"), 2);
    // Well past the deadline, the bound socket is still served.
    std::thread::sleep(Duration::from_millis(600));
    assert_alive(&mut bound);
    assert_eq!(closes(s.addr, "auth_timeout"), 2);
    let status = http_get(s.addr, "/status").json();
    assert_eq!(status["online_sockets"], 1);
}

#[test]
fn auth_timeout_with_tungstenite() {
    let mut config = test_config();
    config.auth_timeout = Duration::from_millis(300);
    let s = gateway(config);
    let (mut ws, _) = ws_connect(s.addr);
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected close 1008, got {other:?}"),
    }
}
