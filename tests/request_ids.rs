//! The optional request id of the JSON protocol, over real TCP: a client
//! envelope's `id` (a JSON number or a string of at most 64 bytes) comes back
//! in the reply to that request and in its error envelopes; without an id, or
//! with one of another shape, the replies are exactly what they were before.

mod support;

use std::time::Duration;

use gmws::{Config, Gateway};
use serde_json::{json, Value};
use support::*;

fn gateway(config: Config) -> TestServer {
    start(config, Gateway)
}

/// Connect and read the welcome; returns the client and its socket id.
fn connect(s: &TestServer) -> (Client, String) {
    let mut c = Client::connect(s.addr);
    let welcome = c.recv_json();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert!(welcome.get("id").is_none(), "{welcome}");
    let id = welcome["data"]["socket_id"].as_str().unwrap().to_owned();
    (c, id)
}

/// Send `request` and return the next envelope.
fn ask(c: &mut Client, request: Value) -> Value {
    c.send_json(&request);
    c.recv_json()
}

#[test]
fn replies_echo_the_request_id() {
    let s = gateway(test_config());
    let (mut c, socket) = connect(&s);
    assert_eq!(
        ask(&mut c, json!({"type": "ping", "id": 1})),
        json!({"type": "pong", "id": 1})
    );
    assert_eq!(
        ask(
            &mut c,
            json!({"type": "bind", "id": "b-1", "data": {"client_id": "alice"}})
        ),
        json!({"type": "bind", "id": "b-1", "data": {"socket_id": socket, "client_id": "alice"}})
    );
    assert_eq!(
        ask(
            &mut c,
            json!({"type": "join", "id": 3, "data": {"group": "room1"}})
        ),
        json!({"type": "join", "id": 3, "data": {"group": "room1"}})
    );
    assert_eq!(
        ask(
            &mut c,
            json!({"type": "leave", "id": 4.5, "data": {"group": "room1"}})
        ),
        json!({"type": "leave", "id": 4.5, "data": {"group": "room1"}})
    );
    // A send has no reply; the recipient's message envelope carries no id.
    ask(
        &mut c,
        json!({"type": "join", "id": 5, "data": {"group": "room2"}}),
    );
    c.send_json(
        &json!({"type": "send_to_group", "id": 6, "data": {"group": "room2", "message": "hi"}}),
    );
    let message = c.recv_json();
    assert_eq!(message["type"], "message", "{message}");
    assert!(message.get("id").is_none(), "{message}");
}

#[test]
fn errors_echo_the_request_id() {
    let mut config = test_config();
    config.allow_send_to_all = false;
    config.max_groups_per_socket = 1;
    let s = gateway(config);
    let (mut c, _) = connect(&s);
    let error = |code: &str, request: &str, id: Value| json!({"type": "error", "id": id, "data": {"code": code, "request": request}});
    // The message text is the server's; compare the rest.
    let strip = |mut v: Value| {
        let message = v["data"]
            .as_object_mut()
            .and_then(|d| d.remove("message"))
            .unwrap_or_else(|| panic!("no message in {v}"));
        assert!(message.is_string());
        v
    };
    let reply = ask(
        &mut c,
        json!({"type": "join", "id": 1, "data": {"group": "g"}}),
    );
    assert_eq!(strip(reply), error("not_bound", "join", json!(1)));
    let reply = ask(
        &mut c,
        json!({"type": "bind", "id": 2, "data": {"client_id": ""}}),
    );
    assert_eq!(strip(reply), error("bad_request", "bind", json!(2)));
    let reply = ask(&mut c, json!({"type": "bind", "id": 3, "data": {}}));
    assert_eq!(strip(reply), error("auth_failed", "bind", json!(3)));
    ask(
        &mut c,
        json!({"type": "bind", "data": {"client_id": "alice"}}),
    );
    ask(
        &mut c,
        json!({"type": "join", "id": 4, "data": {"group": "one"}}),
    );
    let reply = ask(
        &mut c,
        json!({"type": "join", "id": "j", "data": {"group": "two"}}),
    );
    assert_eq!(strip(reply), error("too_many_groups", "join", json!("j")));
    let reply = ask(&mut c, json!({"type": "join", "id": 5, "data": {}}));
    assert_eq!(strip(reply), error("bad_request", "join", json!(5)));
    let reply = ask(
        &mut c,
        json!({"type": "send_to_all", "id": 6, "data": {"message": 1}}),
    );
    assert_eq!(strip(reply), error("forbidden", "send_to_all", json!(6)));
    let reply = ask(
        &mut c,
        json!({"type": "send_to_group", "id": 7, "data": {"group": "one"}}),
    );
    assert_eq!(
        strip(reply),
        error("bad_request", "send_to_group", json!(7))
    );
    let reply = ask(&mut c, json!({"type": "nope", "id": 8}));
    assert_eq!(strip(reply), error("unknown_type", "nope", json!(8)));
    // Text that is no envelope has no id to echo.
    let reply = ask(&mut c, json!({"id": 9}));
    assert_eq!(reply["data"]["code"], "bad_json", "{reply}");
    assert!(reply.get("id").is_none(), "{reply}");
}

#[test]
fn auth_failures_echo_the_request_id() {
    let mut config = test_config();
    config.auth_secret = Some("0123456789abcdef0123456789abcdef-ids".to_owned());
    config.auth_timeout = Duration::ZERO;
    let s = gateway(config);
    let (mut c, _) = connect(&s);
    let reply = ask(
        &mut c,
        json!({"type": "bind", "id": 11, "data": {"client_id": "alice", "token": "bad"}}),
    );
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["id"], 11, "{reply}");
    assert_eq!(reply["data"]["code"], "auth_failed", "{reply}");
    assert_eq!(reply["data"]["request"], "bind", "{reply}");
}

#[test]
fn without_an_id_or_with_an_unusable_one_replies_are_unchanged() {
    let s = gateway(test_config());
    let (mut c, socket) = connect(&s);
    let long = "x".repeat(65);
    for id in [
        None,
        Some(json!(null)),
        Some(json!(true)),
        Some(json!([1])),
        Some(json!({"a": 1})),
        Some(json!(long)),
    ] {
        let with = |mut v: Value| {
            if let Some(id) = &id {
                v["id"] = id.clone();
            }
            v
        };
        assert_eq!(
            ask(&mut c, with(json!({"type": "ping"}))),
            json!({"type": "pong"})
        );
        assert_eq!(
            ask(
                &mut c,
                with(json!({"type": "bind", "data": {"client_id": "bob"}}))
            ),
            json!({"type": "bind", "data": {"socket_id": socket, "client_id": "bob"}})
        );
        assert_eq!(
            ask(
                &mut c,
                with(json!({"type": "join", "data": {"group": "room1"}}))
            ),
            json!({"type": "join", "data": {"group": "room1"}})
        );
        assert_eq!(
            ask(
                &mut c,
                with(json!({"type": "leave", "data": {"group": "room1"}}))
            ),
            json!({"type": "leave", "data": {"group": "room1"}})
        );
        let reply = ask(&mut c, with(json!({"type": "nope"})));
        assert_eq!(reply["data"]["code"], "unknown_type", "{reply}");
        assert!(reply.get("id").is_none(), "{reply}");
    }
    // The longest id that is echoed: 64 bytes.
    let longest = "y".repeat(64);
    assert_eq!(
        ask(&mut c, json!({"type": "ping", "id": longest})),
        json!({"type": "pong", "id": longest})
    );
}

#[test]
fn gmws_js_is_served_as_javascript() {
    let s = gateway(test_config());
    let r = http_get(s.addr, "/gmws.js");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(r.text().contains("export class Gmws"));
    // The demo page loads it.
    let page = http_get(s.addr, "/").text();
    assert!(
        page.contains("/gmws.js"),
        "the demo page does not use gmws.js"
    );
    // Also without the demo page: the client is for applications' pages too.
    let mut config = test_config();
    config.demo_page = false;
    let s = gateway(config);
    assert_eq!(http_get(s.addr, "/gmws.js").status, 200);
}
