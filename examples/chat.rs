//! Library use: the seed's send_to_all chat on the JSON envelope protocol (an
//! `EnvelopeHandler`: `bind` and `ping` come with it, other types reach
//! `on_message`), with a custom HTTP route and an interval timer.
//!
//! `cargo run --example chat -- 127.0.0.1:8090`, then connect with any
//! WebSocket client, send `{"type":"bind","data":{"client_id":"alice"}}` and
//! `{"type":"say","data":{"text":"hi"}}`; `curl 127.0.0.1:8090/hello/you`.

use std::time::Duration;

use gmws::http::{Method, Response};
use gmws::{CloseReason, Config, Envelope, EnvelopeHandler, Hub, Server, SocketId, TimerHandle};
use serde_json::json;

/// Every message goes to everyone; a tick every 30 s tells how many are online.
struct Chat;

impl EnvelopeHandler for Chat {
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let hello = json!({"type": "hello", "data": {"socket_id": socket.to_string(), "online": hub.online_sockets()}});
        let _ = hub.send_to_socket(socket, &hello);
    }

    fn on_message(&mut self, hub: &mut Hub, socket: SocketId, message: &Envelope) {
        let from = hub.client_id(socket).unwrap_or("anonymous").to_owned();
        let out = json!({"type": "chat", "data": {"from": from, "kind": message.kind, "body": message.data}});
        hub.send_to_all(&out);
    }

    fn on_close(&mut self, hub: &mut Hub, socket: SocketId, reason: &CloseReason) {
        let who = hub.client_id(socket).unwrap_or("anonymous").to_owned();
        hub.send_to_all(&json!({"type": "left", "data": {"who": who, "why": reason.label()}}));
    }

    fn on_timer(&mut self, hub: &mut Hub, _timer: TimerHandle, _socket: Option<SocketId>) {
        hub.send_to_all(&json!({"type": "tick", "data": {"online": hub.online_sockets()}}));
    }
}

fn main() -> std::io::Result<()> {
    let mut config = Config::default();
    if let Some(addr) = std::env::args().nth(1) {
        config.listen = addr.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
        })?;
    }
    config.auth_timeout = Duration::ZERO; // anonymous chatters are welcome
                                          // One Chat per event loop (`workers`, default one per CPU).
    let mut server = Server::bind_with(config, |_| Chat)?;
    server
        .route(Method::Get, "/hello/:name", |hub, req| {
            let name = req.param("name").unwrap_or("stranger");
            Response::json(200, &json!({"hello": name, "online": hub.online_sockets()}))
        })
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // The hub is reachable before `run`: start the interval timer.
    server
        .hub_mut()
        .add_timer(Duration::from_secs(30), Some(Duration::from_secs(30)), None);
    eprintln!("chat: listening on {}", server.local_addr());
    server.run()
}
