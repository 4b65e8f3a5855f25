//! Internals for the hub benches (`cargo bench --bench hub --features
//! bench-internals`) and the fuzz targets (`fuzz/`): a hub full of open
//! sockets without an event loop, plain HTTP requests served on it as the
//! loop serves them, and the loop's bookkeeping between reads.
//!
//! Not part of the stable API; compiled only with the `bench-internals` feature.
//!
//! Handler hooks called from here ([`Handler::on_upgrade`] and
//! [`Handler::on_connect`] for an upgrade) are called directly: a panic
//! propagates instead of being caught as the loop does, since the fuzz
//! targets exist to find them.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use gmws_protocol::decoder::{Decoder, Role};
use gmws_protocol::handshake::{
    parse_request, validate_upgrade, write_accept_response, write_error_response, Accept, Request,
};
use gmws_protocol::{CloseCode, HandshakeError};

use crate::close::CloseReason;
use crate::config::Config;
use crate::connection::{Connection, DeadlineKind, State};
use crate::handler::Handler;
use crate::http::router::Router;
use crate::http::Response;
use crate::hub::Hub;
use crate::server::http::{self as serve, HttpOutcome, Route};
use crate::socket_id::SocketId;
use crate::upgrade::{Upgrade, UpgradeRequest};

/// An empty hub with `config`, as the event loop would make it.
///
/// # Panics
///
/// If the system cannot make an `epoll` instance (the hub's bus needs a
/// waker, though nothing is ever posted to it).
pub fn new_hub(config: Config) -> Hub {
    let bus = crate::bus::Bus::detached().expect("an epoll instance for the hub's bus");
    Hub::new(Arc::new(config), bus, 0)
}

/// Add `n` open sockets to `hub`, each a duplicate of `stream` (one file
/// descriptor each). Nothing is ever written to them: call
/// [`discard_output`] where the event loop would flush.
pub fn add_sockets(hub: &mut Hub, stream: &TcpStream, n: usize) -> io::Result<Vec<SocketId>> {
    let limits = hub.config().frame_limits();
    let peer = stream.peer_addr()?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let clone = stream.try_clone()?;
        clone.set_nonblocking(true)?;
        let decoder = Decoder::new(Role::Server, limits);
        let key = hub.insert(
            |id| Connection::new(mio::net::TcpStream::from_std(clone), id, peer, decoder),
            false,
        );
        hub.enter_open(key);
        ids.push(hub.conns[key].id);
    }
    Ok(ids)
}

/// Drop every queued byte, as if the loop had flushed it (recycling buffers).
/// Also ends the loop's turn: the fan-out budget starts again.
pub fn discard_output(hub: &mut Hub) {
    let mut keys = std::mem::take(&mut hub.dirty);
    keys.append(&mut hub.dirty_fanout);
    for key in keys {
        if let Some(conn) = hub.conns.get_mut(key) {
            conn.dirty = crate::connection::Dirty::Clean;
            conn.output.clear(&mut hub.pool);
        }
        hub.account(key);
    }
    hub.turn_fanout = 0;
}

/// Take every byte queued on `socket` (its frames, in order), as a flush to
/// a peer that reads it all would; empty if the socket is gone.
pub fn take_output(hub: &mut Hub, socket: SocketId) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(key) = hub.key(socket) {
        drain_output(hub, key, &mut out);
    }
    out
}

/// Close a socket as a peer's FIN would: `on_close`-less removal from every
/// index (no handler runs).
pub fn drop_socket(hub: &mut Hub, id: SocketId) {
    let Some(key) = hub.key(id) else {
        return;
    };
    hub.leave_open(key, crate::close::CloseReason::ConnectionLost);
    hub.closed.clear();
    hub.forget(id);
    hub.remove(key);
}

/// Run `on_close` for every socket that stopped being online (closed by the
/// API, a handler, a limit), then forget its client id, groups, session and
/// timers, as the loop does after every read. Uses the loop's own function,
/// which catches a panicking `on_close`.
pub fn notify_closed<H: Handler>(hub: &mut Hub, handler: &mut H) {
    crate::server::notify_closed(hub, handler);
}

/// Move the hub's clock (the loop's milliseconds since start) `ms` forward,
/// as time passing between reads would: token buckets refill, windows pass.
/// No timer fires (nothing polls the timer wheel).
pub fn advance_clock(hub: &mut Hub, ms: u64) {
    hub.now = hub.now.saturating_add(ms);
}

/// The server's built-in HTTP routes (`/healthz`, `/status`, `/metrics`,
/// `/`, the `/api/` endpoints), as [`Server::bind`](crate::Server::bind)
/// installs them; the route type itself is internal.
pub struct HttpRoutes(Router<Route>);

impl HttpRoutes {
    /// The built-in routes.
    pub fn builtin() -> HttpRoutes {
        HttpRoutes(serve::builtin_router())
    }
}

/// A connection in the HTTP phase, added by [`open_http`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpConn(SocketId);

impl HttpConn {
    /// The connection's socket id (a WebSocket's id once upgraded).
    pub fn id(self) -> SocketId {
        self.0
    }
}

/// What one [`feed_http`] (one read, in the loop's terms) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRead {
    /// Every byte queued on the connection during the read, in order: the
    /// responses, a refusal, or a 101 (and what `on_connect` sent after it).
    pub output: Vec<u8>,
    /// The connection's state afterwards: `Http` (waiting for more), `Open`
    /// (upgraded), `Finishing` (a final response or refusal was queued).
    /// `None` once the connection is gone.
    pub state: Option<State>,
    /// Input bytes waiting for the rest of their request.
    pub pending: usize,
}

/// Add a connection in the HTTP phase to `hub`, as the loop does at accept:
/// a duplicate of `stream` (one file descriptor), its handshake deadline
/// armed. `peer` is the address the server sees (what `/api` authorization
/// with `api_trust_loopback` judges); it need not be `stream`'s.
pub fn open_http(hub: &mut Hub, stream: &TcpStream, peer: SocketAddr) -> io::Result<HttpConn> {
    let clone = stream.try_clone()?;
    clone.set_nonblocking(true)?;
    let decoder = Decoder::new(Role::Server, hub.config().frame_limits());
    let key = hub.insert(
        |id| Connection::new(mio::net::TcpStream::from_std(clone), id, peer, decoder),
        false,
    );
    hub.arm_deadline(key, DeadlineKind::Handshake);
    Ok(HttpConn(hub.conns[key].id))
}

/// Hand `bytes` to `conn` as one read from its socket, and serve what they
/// complete as the loop's `process_http` does: parse a request head
/// ([`parse_request`] with the config's limits); an upgrade is validated and
/// put to `handler.on_upgrade`, then answered 101 (the socket opens, bound
/// and with a session if the application said so, `handler.on_connect` runs;
/// frames after it are not decoded here) or refused with the application's
/// status; a bad head is refused (error response, then the connection
/// finishes); a plain request goes to the server's own
/// `serve::handle` (Host, Content-Length and Transfer-Encoding checks, body,
/// router, built-in routes, `handler.on_http`). Pipelined requests are
/// served one after the other until one is incomplete (its bytes wait for
/// the next read) or the connection stops reading HTTP.
///
/// Differences from the loop: the responses are taken out of the queue as
/// they are produced (a peer that reads at once), so the loop's pause at
/// 64 KiB of unwritten responses never comes; where the loop would end its
/// turn for the fan-out budget, every other socket's output is discarded
/// ([`discard_output`]) and serving goes on; a keep-alive connection that
/// goes idle is not queued for `max_idle_http` eviction. Bytes read by a
/// connection that is no longer in the HTTP phase are counted as discarded
/// input (dropping it past the bound, as the loop does), or ignored if it is
/// a WebSocket.
pub fn feed_http<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    routes: &mut HttpRoutes,
    conn: HttpConn,
    bytes: &[u8],
) -> HttpRead {
    let mut read = HttpRead::default();
    let Some(key) = hub.key(conn.0) else {
        return read;
    };
    let Some(c) = hub.conns.get_mut(key) else {
        return read;
    };
    match c.state {
        State::Http { idle } => {
            c.input.extend_from_slice(bytes);
            if idle {
                // The next request has begun: it has handshake_timeout.
                hub.set_state(key, State::NEW);
                hub.arm_deadline(key, DeadlineKind::Handshake);
            }
            process_http(hub, handler, &mut routes.0, key, &mut read.output);
        }
        state if !state.decodes_input() => {
            let (next, action) = state.on_discarded(bytes.len());
            hub.set_state(key, next);
            if action == crate::connection::Action::Drop {
                hub.remove(key);
            }
        }
        _ => {}
    }
    hub.account(key);
    notify_closed(hub, handler);
    drain_output(hub, key, &mut read.output);
    if let Some(c) = hub.conn(conn.0) {
        read.state = Some(c.state);
        read.pending = c.input.len();
    }
    read
}

/// Remove `conn` as a dropped TCP connection: if it had upgraded, it leaves
/// the online set (`on_close` runs with `ConnectionLost`); its queue is dropped.
pub fn close_http<H: Handler>(hub: &mut Hub, handler: &mut H, conn: HttpConn) {
    let Some(key) = hub.key(conn.0) else {
        return;
    };
    hub.leave_open(key, CloseReason::ConnectionLost);
    notify_closed(hub, handler);
    hub.remove(key);
}

/// [`open_http`], one [`feed_http`] of `input`, [`close_http`]: a client
/// that sends `input` at once and hangs up after the answers.
pub fn serve_http<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    routes: &mut HttpRoutes,
    stream: &TcpStream,
    peer: SocketAddr,
    input: &[u8],
) -> io::Result<HttpRead> {
    let conn = open_http(hub, stream, peer)?;
    let read = feed_http(hub, handler, routes, conn, input);
    close_http(hub, handler, conn);
    Ok(read)
}

/// The steps of `Server::process_http`, on the hub alone.
fn process_http<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    router: &mut Router<Route>,
    key: usize,
    output: &mut Vec<u8>,
) {
    let head_limits = hub.config().head_limits();
    let policy = hub.config().upgrade_policy();
    loop {
        if hub.turn_exhausted() {
            // The loop would defer the rest to its next turn, after a flush.
            drain_output(hub, key, output);
            discard_output(hub);
        }
        let Some(conn) = hub.conns.get_mut(key) else {
            return;
        };
        if !matches!(conn.state, State::Http { .. }) || conn.input.is_empty() {
            return;
        }
        let (request, head_len) = match parse_request(&conn.input, &head_limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return,
            Err(e) => return refuse(hub, key, e),
        };
        if request.is_websocket_upgrade() {
            match validate_upgrade(&request, &policy) {
                Ok(accept) => upgrade(hub, handler, key, &request, head_len, accept),
                Err(e) => refuse(hub, key, e),
            }
            return;
        }
        match serve::handle(hub, handler, router, key, &request, head_len) {
            // A bench hub is in no cluster: nothing is parked.
            HttpOutcome::NeedMore | HttpOutcome::Parked(_) => return,
            HttpOutcome::Done { close: true } => {
                hub.finish(key);
                return;
            }
            HttpOutcome::Done { close: false } => {
                let pipelined = hub.conns.get(key).is_some_and(|c| !c.input.is_empty());
                if pipelined {
                    hub.arm_deadline(key, DeadlineKind::Handshake);
                } else {
                    // `Server::go_idle`, without the `max_idle_http` queue.
                    if let Some(conn) = hub.conns.get_mut(key) {
                        conn.input.release(); // an idle connection holds no buffer
                    }
                    hub.account(key);
                    hub.set_state(key, State::Http { idle: true });
                    hub.arm_deadline(key, DeadlineKind::HttpIdle);
                    return;
                }
            }
        }
    }
}

/// `Server::upgrade`: the application decides ([`Handler::on_upgrade`]);
/// accepted, the 101 is queued and the socket opens, refused, the
/// application's status and body are sent.
fn upgrade<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    key: usize,
    request: &Request,
    head_len: usize,
    mut accept: Accept,
) {
    let Some(conn) = hub.conns.get(key) else {
        return;
    };
    let peer = conn.peer.addr();
    let view = UpgradeRequest::new(request, peer, accept.protocol.as_deref());
    let accepted = match handler.on_upgrade(hub, &view) {
        Upgrade::Accept(accepted) => accepted,
        Upgrade::Refuse { status, body } => {
            let status = if (400..=599).contains(&status) {
                status
            } else {
                403
            };
            return refuse_with(hub, key, &Response::error(status, &body));
        }
    };
    if let Some(protocol) = accepted.protocol {
        if protocol
            .as_deref()
            .is_some_and(|p| !view.protocols().any(|o| o == p))
        {
            return refuse_with(hub, key, &Response::error(500, "internal error"));
        }
        accept.protocol = protocol;
    }
    if let Some(conn) = hub.conns.get_mut(key) {
        conn.input.drain(..head_len);
        if conn.input.is_empty() {
            // An open socket keeps no buffer of the request head.
            conn.input.release();
        }
    }
    let mut response = Vec::with_capacity(160);
    write_accept_response(&mut response, &accept);
    hub.queue_raw(key, &response);
    open(hub, handler, key, accepted.client_id, accepted.session);
}

/// `Server::open` without heartbeat and auth timers: the socket is online,
/// bound to `client_id` and holding `session` if the application said so,
/// and `on_connect` runs.
fn open<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    key: usize,
    client_id: Option<String>,
    session: Option<serde_json::Value>,
) {
    let Some(conn) = hub.conns.get_mut(key) else {
        return;
    };
    let id = conn.id;
    if let Some(t) = conn.deadline.take() {
        hub.timers.cancel(t);
    }
    hub.enter_open(key);
    hub.metrics.handshakes += 1;
    if let Some(client_id) = client_id {
        if hub.bind_client(id, &client_id).is_err() {
            let _ = hub.close_socket(id, CloseCode::INTERNAL, "internal error");
        }
    }
    if let Some(session) = session {
        if hub.set_session(id, session).is_err() {
            let _ = hub.close_socket(id, CloseCode::INTERNAL, "internal error");
        }
    }
    if hub.is_socket_online(id) {
        handler.on_connect(hub, id);
    }
}

/// `Server::refuse_with`: answer a request head with `response` and close.
fn refuse_with(hub: &mut Hub, key: usize, response: &Response) {
    hub.metrics.handshake_failures += 1;
    let mut out = Vec::new();
    response.write_to(&mut out, false, false);
    if let Some(conn) = hub.conns.get_mut(key) {
        conn.input.release();
    }
    hub.queue_raw(key, &out);
    hub.finish(key);
}

/// `Server::refuse`: the error response, then the connection finishes.
fn refuse(hub: &mut Hub, key: usize, err: HandshakeError) {
    let Some(conn) = hub.conns.get_mut(key) else {
        return;
    };
    hub.metrics.handshake_failures += 1;
    conn.input.release();
    let mut response = Vec::new();
    write_error_response(&mut response, err);
    hub.queue_raw(key, &response);
    hub.finish(key);
}

/// Move everything queued on slot `key` to `out`, as a flush to a peer that
/// takes it all would.
fn drain_output(hub: &mut Hub, key: usize, out: &mut Vec<u8>) {
    if let Some(conn) = hub.conns.get_mut(key) {
        while !conn.output.is_empty() {
            match conn.output.write_to(out, &mut hub.pool) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
    hub.account(key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gateway;

    fn loopback() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    fn peer() -> SocketAddr {
        "192.0.2.1:5000".parse().unwrap()
    }

    fn statuses(output: &[u8]) -> Vec<&str> {
        let text = std::str::from_utf8(output).unwrap();
        text.match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect()
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let (stream, _peer) = loopback();
        let mut hub = new_hub(Config::default());
        let input = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n\
                      GET /nope HTTP/1.1\r\nHost: a\r\n\r\n\
                      GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\
                      GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
        let read = serve_http(
            &mut hub,
            &mut Gateway,
            &mut HttpRoutes::builtin(),
            &stream,
            peer(),
            input,
        )
        .unwrap();
        assert_eq!(statuses(&read.output), ["200", "404", "200"]);
        assert_eq!(read.state, Some(State::Finishing { discarded: 0 }));
        assert_eq!(hub.metrics().http_requests, 3);
        assert_eq!(hub.connections(), 0);
    }

    #[test]
    fn a_body_in_two_reads_and_the_api_on_open_sockets() {
        let (stream, _peer) = loopback();
        let config = Config {
            api_key: Some("k".to_owned()),
            ..Config::default()
        };
        let mut hub = new_hub(config);
        let ids = add_sockets(&mut hub, &stream, 3).unwrap();
        hub.join_group(ids[0], "room").unwrap();
        hub.join_group(ids[2], "room").unwrap();
        let mut routes = HttpRoutes::builtin();
        let conn = open_http(&mut hub, &stream, peer()).unwrap();
        let body = br#"{"group":"room","message":"hi"}"#;
        let head = format!(
            "POST /api/send_to_group HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut input = head.into_bytes();
        input.extend_from_slice(body);
        let (first, second) = input.split_at(input.len() - 5);
        let read = feed_http(&mut hub, &mut Gateway, &mut routes, conn, first);
        assert!(read.output.is_empty());
        assert_eq!(read.pending, first.len());
        let read = feed_http(&mut hub, &mut Gateway, &mut routes, conn, second);
        assert_eq!(statuses(&read.output), ["200"]);
        assert!(read.output.ends_with(br#"{"delivered":2}"#));
        assert_eq!(read.state, Some(State::Http { idle: true }));
        assert_eq!(read.pending, 0);
        assert!(!take_output(&mut hub, ids[0]).is_empty());
        assert!(take_output(&mut hub, ids[1]).is_empty());

        let close = format!(
            "POST /api/sockets/{}/close HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\n\r\n",
            ids[2]
        );
        let read = feed_http(&mut hub, &mut Gateway, &mut routes, conn, close.as_bytes());
        assert!(read.output.ends_with(br#"{"closed":true}"#));
        // feed_http ran on_close: the closed socket left its group.
        assert_eq!(hub.group_members("room"), [ids[0]]);
        close_http(&mut hub, &mut Gateway, conn);
        assert_eq!(hub.connections(), 3);
        discard_output(&mut hub);
    }

    #[test]
    fn an_upgrade_opens_the_socket_and_a_bad_head_is_refused() {
        let (stream, _peer) = loopback();
        let mut hub = new_hub(Config::default());
        let mut routes = HttpRoutes::builtin();
        let upgrade = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let conn = open_http(&mut hub, &stream, peer()).unwrap();
        let read = feed_http(&mut hub, &mut Gateway, &mut routes, conn, upgrade);
        assert!(read.output.starts_with(b"HTTP/1.1 101 "));
        assert_eq!(read.state, Some(State::Open));
        assert!(hub.is_socket_online(conn.id()));
        close_http(&mut hub, &mut Gateway, conn);
        assert!(!hub.is_socket_online(conn.id()));
        assert_eq!(hub.online_sockets(), 0);

        let read = serve_http(
            &mut hub,
            &mut Gateway,
            &mut routes,
            &stream,
            peer(),
            b"\0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(statuses(&read.output), ["400"]);
        assert_eq!(read.state, Some(State::Finishing { discarded: 0 }));
        assert_eq!(hub.connections(), 0);
    }

    /// Accepts `/` as client `carol` with a session, refuses the rest.
    struct Picky;

    impl Handler for Picky {
        fn on_upgrade(&mut self, _hub: &mut Hub, request: &UpgradeRequest<'_>) -> Upgrade {
            if request.path() == "/" {
                Upgrade::accept()
                    .with_client_id("carol")
                    .with_session(serde_json::json!({"n": 1}))
            } else {
                Upgrade::refuse(401, "who are you")
            }
        }
    }

    #[test]
    fn the_application_decides_an_upgrade() {
        let (stream, _peer) = loopback();
        let mut hub = new_hub(Config::default());
        let mut routes = HttpRoutes::builtin();
        let upgrade = |path: &str| {
            format!(
                "GET {path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
        };
        let conn = open_http(&mut hub, &stream, peer()).unwrap();
        let read = feed_http(
            &mut hub,
            &mut Picky,
            &mut routes,
            conn,
            upgrade("/").as_bytes(),
        );
        assert_eq!(read.state, Some(State::Open));
        assert_eq!(hub.client_id(conn.id()), Some("carol"));
        assert_eq!(
            hub.get_session(conn.id()),
            Some(serde_json::json!({"n": 1}))
        );
        close_http(&mut hub, &mut Picky, conn);

        let conn = open_http(&mut hub, &stream, peer()).unwrap();
        let read = feed_http(
            &mut hub,
            &mut Picky,
            &mut routes,
            conn,
            upgrade("/x").as_bytes(),
        );
        assert_eq!(statuses(&read.output), ["401"]);
        assert_eq!(read.state, Some(State::Finishing { discarded: 0 }));
        assert!(!hub.is_socket_online(conn.id()));
        close_http(&mut hub, &mut Picky, conn);
        assert_eq!(hub.connections(), 0);
    }

    #[test]
    fn the_clock_moves_forward() {
        let mut hub = new_hub(Config::default());
        advance_clock(&mut hub, 1500);
        assert_eq!((hub.now_ms(), hub.uptime_secs()), (1500, 1));
    }
}
