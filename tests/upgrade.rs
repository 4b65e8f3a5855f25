//! The application at the upgrade (`Handler::on_upgrade`), over real TCP:
//! cookie auth, a token in the query, two endpoints with different behaviour
//! on one port, refusals with the application's status and body, a chosen
//! subprotocol, the peer address; and raw messages with the default
//! `Handler` (no JSON protocol unless asked for). Clients: tungstenite (an
//! independent implementation) and our own client role.

mod support;

use std::net::TcpStream;

use gmws::{Handler, Hub, SocketId, Upgrade, UpgradeRequest};
use serde_json::{json, Value};
use support::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// `/echo` echoes raw text; `/chat` needs a session cookie or a token in the
/// query, binds the socket to who it is, and prefixes replies with its name;
/// `/proto` answers with subprotocol `v2` when offered; anything else is 404.
struct Endpoints;

impl Handler for Endpoints {
    fn on_upgrade(&mut self, _hub: &mut Hub, req: &UpgradeRequest<'_>) -> Upgrade {
        let endpoint = |name: &str| json!({ "endpoint": name });
        match req.path() {
            "/echo" => Upgrade::accept().with_session(endpoint("echo")),
            "/chat" => {
                let who = match (req.cookie("session"), req.query_param("token")) {
                    (Some("cookie-alice"), _) => "alice",
                    (_, Some(token)) if token == "token bob" => "bob",
                    _ => return Upgrade::refuse(401, "who are you?"),
                };
                Upgrade::accept()
                    .with_client_id(who)
                    .with_session(endpoint("chat"))
            }
            "/proto" if req.protocols().any(|p| p == "v2") => Upgrade::accept()
                .with_protocol(Some("v2"))
                .with_session(endpoint("proto")),
            "/proto" => Upgrade::refuse(400, "speak v2"),
            "/bad-proto" => Upgrade::accept().with_protocol(Some("never-offered")),
            "/panic" => panic!("the test asked for a panic at the upgrade"),
            _ => Upgrade::refuse(404, "no such endpoint"),
        }
    }

    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let peer = hub.peer_addr(socket).map(|a| a.ip().to_string());
        let hello = json!({ "client": hub.client_id(socket), "peer": peer });
        let _ = hub.send_text(socket, &hello.to_string());
    }

    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let endpoint = hub
            .get_session(socket)
            .and_then(|s| s["endpoint"].as_str().map(str::to_owned));
        let reply = match endpoint.as_deref() {
            Some("chat") => format!("{}: {text}", hub.client_id(socket).unwrap_or("?")),
            _ => text.to_owned(),
        };
        let _ = hub.send_text(socket, &reply);
    }
}

fn connect(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<tungstenite::WebSocket<TcpStream>, Box<tungstenite::Error>> {
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .map_err(Box::new)?;
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("header value"));
    }
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    tungstenite::client(request, stream)
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => Box::new(e),
            tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
        })
}

fn hello(ws: &mut tungstenite::WebSocket<TcpStream>) -> Value {
    serde_json::from_str(&tungstenite_recv_text(ws)).expect("hello is JSON")
}

fn say(ws: &mut tungstenite::WebSocket<TcpStream>, text: &str) -> String {
    ws.send(Message::text(text)).unwrap();
    tungstenite_recv_text(ws)
}

/// The refusal's status and JSON body, read off the raw response.
fn refused(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = upgrade_request(addr).replacen("GET / ", &format!("GET {path} "), 1);
    use std::io::Write;
    s.write_all(request.as_bytes()).unwrap();
    let r = read_http_response(&mut s);
    (r.status, r.json())
}

#[test]
fn a_session_cookie_authenticates_at_the_upgrade() {
    let server = start(test_config(), Endpoints);
    let mut ws = connect(
        server.addr,
        "/chat",
        &[("Cookie", "theme=dark; session=cookie-alice")],
    )
    .expect("accepted");
    assert_eq!(hello(&mut ws)["client"], "alice", "bound before on_connect");
    assert_eq!(say(&mut ws, "hi"), "alice: hi");
    let wrong = connect(server.addr, "/chat", &[("Cookie", "session=forged")]);
    match wrong {
        Err(e) => match *e {
            tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
            other => panic!("expected a 401, got {other:?}"),
        },
        Ok(_) => panic!("a forged cookie was accepted"),
    }
}

#[test]
fn a_token_in_the_query_authenticates_at_the_upgrade() {
    let server = start(test_config(), Endpoints);
    let mut ws = connect(server.addr, "/chat?token=token%20bob", &[]).expect("accepted");
    assert_eq!(hello(&mut ws)["client"], "bob");
    assert_eq!(say(&mut ws, "yo"), "bob: yo");
    assert_eq!(
        refused(server.addr, "/chat?token=nope"),
        (401, json!({"error": "who are you?"}))
    );
}

#[test]
fn two_endpoints_on_one_port_behave_differently() {
    let server = start(test_config(), Endpoints);
    let mut echo = connect(server.addr, "/echo", &[]).expect("accepted");
    let mut chat = connect(server.addr, "/chat", &[("Cookie", "session=cookie-alice")]).unwrap();
    assert_eq!(hello(&mut echo)["client"], Value::Null);
    let _ = hello(&mut chat);
    assert_eq!(say(&mut echo, "same words"), "same words");
    assert_eq!(say(&mut chat, "same words"), "alice: same words");
    assert_eq!(
        refused(server.addr, "/elsewhere"),
        (404, json!({"error": "no such endpoint"}))
    );
}

#[test]
fn the_peer_address_is_known_on_every_socket() {
    let server = start(test_config(), Endpoints);
    let mut ws = connect(server.addr, "/echo", &[]).unwrap();
    assert_eq!(hello(&mut ws)["peer"], "127.0.0.1");
}

#[test]
fn the_application_chooses_a_subprotocol_the_client_offered() {
    let server = start(test_config(), Endpoints);
    let mut request = format!("ws://{}/proto", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "v1, v2".parse().unwrap());
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, response) = tungstenite::client(request, stream).expect("accepted");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("v2")
    );
    let _ = hello(&mut ws);
    assert_eq!(refused(server.addr, "/proto").0, 400);
    // Choosing one the client did not offer is the application's bug: 500.
    assert_eq!(refused(server.addr, "/bad-proto").0, 500);
}

#[test]
fn a_panic_at_the_upgrade_is_a_500_and_the_server_goes_on() {
    let server = start(test_config(), Endpoints);
    assert_eq!(refused(server.addr, "/panic").0, 500);
    let mut ws = connect(server.addr, "/echo", &[]).unwrap();
    let _ = hello(&mut ws);
    assert_eq!(say(&mut ws, "alive"), "alive");
}

/// The default `Handler` speaks no JSON protocol: text arrives as it was
/// sent (our own client role this time).
#[test]
fn messages_arrive_raw_by_default() {
    struct Raw;
    impl Handler for Raw {
        fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
            let _ = hub.send_text(socket, &format!("raw:{text}"));
        }
    }
    let server = start(test_config(), Raw);
    let mut c = Client::connect(server.addr);
    c.send_text("{\"type\":\"ping\"}");
    assert_eq!(c.recv_text(), "raw:{\"type\":\"ping\"}");
    c.send_text("not json at all");
    assert_eq!(c.recv_text(), "raw:not json at all");
}
