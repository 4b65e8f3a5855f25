//! Library use: the application at the upgrade. `/chat` takes a session
//! cookie or a token in the query and binds the socket to its user; `/echo`
//! is open to all; replies are raw text (no JSON protocol). The README's
//! library example.
//!
//! `cargo run --example endpoints -- 127.0.0.1:8091`, then e.g.
//! `websocat 'ws://127.0.0.1:8091/chat?token=demo-token'`.

use gmws::{CloseCode, Config, Handler, Hub, Server, SocketId, Upgrade, UpgradeRequest};

/// `/chat` for holders of a session cookie or a token in the query; `/echo` for all.
struct App;

impl Handler for App {
    fn on_upgrade(&mut self, _hub: &mut Hub, req: &UpgradeRequest<'_>) -> Upgrade {
        let who = match (req.path(), req.cookie("session"), req.query_param("token")) {
            ("/echo", _, _) => return Upgrade::accept(),
            ("/chat", Some(cookie), _) => user_of_session(cookie),
            ("/chat", None, Some(token)) => user_of_token(&token),
            _ => return Upgrade::refuse(404, "no such endpoint"),
        };
        match who {
            Some(user) => Upgrade::accept().with_client_id(user),
            None => Upgrade::refuse(401, "log in first"),
        }
    }

    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let reply = match hub.client_id(socket) {
            Some(user) => format!("{user}: {text}"),
            None => text.to_owned(),
        };
        // A send says why it did not go out: UnknownSocket, Closing, Backpressure.
        if let Err(e) = hub.send_text(socket, &reply) {
            eprintln!("{socket}: not sent: {e}");
        }
        if text == "bye" {
            let _ = hub.close_socket(socket, CloseCode::NORMAL, "bye");
        }
    }
}

fn user_of_session(cookie: &str) -> Option<String> {
    (cookie == "demo-session").then(|| "alice".to_owned()) // your session store here
}

fn user_of_token(token: &str) -> Option<String> {
    (token == "demo-token").then(|| "bob".to_owned()) // your token check here
}

fn main() -> std::io::Result<()> {
    let mut config = Config::default();
    if let Some(addr) = std::env::args().nth(1) {
        config.listen = addr.parse().map_err(std::io::Error::other)?;
    }
    // One App per event loop (`workers`, default one per CPU).
    Server::bind_with(config, |_| App)?.run()
}
