//! Test support: a real server on an ephemeral port, and a blocking client
//! built on the protocol crate's client role.
#![allow(dead_code, missing_docs)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gmws::protocol::decoder::{Decoder, Limits, Message, Role};
use gmws::protocol::encoder::encode_frame;
use gmws::protocol::handshake::{client_request, parse_response};
use gmws::protocol::OpCode;
use gmws::{Config, Handler, Hub, Server, ShutdownHandle, SocketId};

pub mod cluster;

/// How long a test waits for anything before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server running on its own thread; shut down on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A config for tests: port 0 on loopback, heartbeats off, clients allowed
/// to `send_to_all` (off by default; `send_to_all_is_off_by_default` in
/// tests/gateway.rs checks the default).
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.ping_interval = Duration::ZERO;
    config.auth_timeout = Duration::ZERO;
    config.allow_send_to_all = true;
    config
}

/// [`test_config`] with `api_trust_loopback` on: for tests that call `/api/`
/// from loopback without a key (refused by default).
pub fn api_test_config() -> Config {
    let mut config = test_config();
    config.api_trust_loopback = true;
    config
}

pub fn start<H: Handler + Send + 'static>(config: Config, handler: H) -> TestServer {
    start_with(config, handler, |_| {})
}

/// Echoes every message.
pub struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let _ = hub.send_text(socket, text);
    }
    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        let _ = hub.send_binary(socket, data);
    }
}

pub fn start_echo(config: Config) -> TestServer {
    start(config, Echo)
}

/// A random 64-bit number from the standard library's per-process random keys.
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// An owned message, to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

fn own(m: Message<'_>) -> Msg {
    match m {
        Message::Text(t) => Msg::Text(t.to_owned()),
        Message::Binary(b) => Msg::Binary(b.to_vec()),
        Message::Ping(b) => Msg::Ping(b.to_vec()),
        Message::Pong(b) => Msg::Pong(b.to_vec()),
        Message::Close(c) => match c {
            Some(c) => Msg::Close(Some(c.code.0), c.reason.to_owned()),
            None => Msg::Close(None, String::new()),
        },
    }
}

/// What a read ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    Msg(Msg),
    /// The server closed TCP.
    Eof,
}

/// A blocking WebSocket client over our own protocol crate.
pub struct Client {
    pub stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::connect_path(addr, "/")
    }

    pub fn connect_path(addr: SocketAddr, path: &str) -> Client {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        let buf = upgrade(
            &mut stream,
            &addr.to_string(),
            path,
            Instant::now() + PATIENCE,
        )
        .unwrap_or_else(|e| panic!("handshake: {e}"));
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let limits = Limits::new(64 << 20, 64 << 20, 100_000);
        Client {
            stream,
            decoder: Decoder::new(Role::Client, limits),
            buf,
        }
    }

    /// Send one masked frame.
    pub fn send_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            opcode,
            fin,
            payload,
            Some((random_u64() as u32).to_be_bytes()),
        );
        self.send_raw(&out);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(OpCode::Text, true, text.as_bytes());
    }

    /// The next message or EOF; panics after PATIENCE.
    pub fn recv(&mut self) -> Recv {
        loop {
            let (n, msg) = self
                .decoder
                .decode(&mut self.buf)
                .expect("server sent a bad frame");
            if let Some(m) = msg {
                let m = own(m);
                self.buf.drain(..n);
                return Recv::Msg(m);
            }
            self.buf.drain(..n);
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Recv::Eof,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next data message, answering nothing and skipping pings.
    pub fn recv_msg(&mut self) -> Msg {
        loop {
            match self.recv() {
                Recv::Msg(Msg::Ping(_)) => continue,
                Recv::Msg(m) => return m,
                Recv::Eof => panic!("EOF while waiting for a message"),
            }
        }
    }

    pub fn recv_text(&mut self) -> String {
        match self.recv_msg() {
            Msg::Text(t) => t,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Expect a close frame with `code`, then EOF (the server closes TCP first).
    pub fn expect_close(&mut self, code: u16) {
        match self.recv() {
            Recv::Msg(Msg::Close(got, reason)) => {
                assert_eq!(got, Some(code), "close reason: {reason}")
            }
            other => panic!("expected close {code}, got {other:?}"),
        }
        self.expect_eof();
    }

    pub fn expect_eof(&mut self) {
        let start = Instant::now();
        loop {
            match self.recv() {
                Recv::Eof => return,
                Recv::Msg(m) => assert!(start.elapsed() < PATIENCE, "no EOF; got {m:?}"),
            }
        }
    }

    /// Send a text and expect it back.
    pub fn assert_echo(&mut self, text: &str) {
        self.send_text(text);
        assert_eq!(self.recv_msg(), Msg::Text(text.to_owned()));
    }
}

/// Send raw bytes on a fresh connection and return everything the server sends
/// until it closes (or PATIENCE passes).
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request).unwrap();
    read_to_close(&mut stream)
}

pub fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&out)),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A valid upgrade request for `addr`.
pub fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Send raw bytes on a fresh connection and return the response head (up to
/// the blank line), leaving the connection to be dropped.
pub fn raw_response_head(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- Helpers for the hub, gateway and HTTP API tests. ----

/// Like [`start`], but `configure` may act on the server (add routes, …)
/// before it is moved into its thread.
pub fn start_with<H, F>(config: Config, handler: H, configure: F) -> TestServer
where
    H: Handler + Send + 'static,
    F: FnOnce(&mut Server<H>),
{
    let mut server = Server::bind(config, handler).expect("bind");
    configure(&mut server);
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let thread = std::thread::spawn(move || {
        server.run().expect("server loop");
    });
    TestServer {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// Run an already bound server on its own thread.
pub fn run<H: Handler + Send + 'static>(mut server: Server<H>) -> TestServer {
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let thread = std::thread::spawn(move || {
        server.run().expect("server loop");
    });
    TestServer {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// Poll `probe` until it returns `Some`, or panic after PATIENCE with `what`.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tungstenite client (an independent implementation) connected to `addr`.
pub fn tungstenite_connect(addr: SocketAddr) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (ws, response) =
        tungstenite::client(format!("ws://{addr}/"), stream).expect("tungstenite handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// The next text message from a tungstenite client (skipping control frames).
pub fn tungstenite_recv_text(ws: &mut tungstenite::WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("tungstenite read") {
            tungstenite::Message::Text(t) => return t.as_str().to_owned(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }
}

/// Write one HTTP/1.1 request on `stream` (with `Host` and, for a body,
/// `Content-Length` added).
pub fn write_http_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes).expect("write request");
}

/// Read one HTTP response (head, then a `Content-Length` body) from `stream`.
pub fn read_http_response(stream: &mut TcpStream) -> HttpResponse {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            Ok(_) => panic!(
                "connection closed inside a response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&buf)),
        }
    }
    let head = String::from_utf8(buf).expect("response head is not UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line without ':'");
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("bad Content-Length"));
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("read body");
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// One HTTP request on a fresh connection.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write_http_request(&mut stream, method, path, headers, body);
    read_http_response(&mut stream)
}

/// `GET path` on a fresh connection.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http(addr, "GET", path, &[], None)
}

/// Our client role's opening handshake on a connected `stream` (blocking,
/// until `deadline`): send the upgrade request for `host` and `path`, read and
/// validate the 101. Returns the bytes that came after the response head
/// (already WebSocket frames). Shared by these tests' clients and the fault
/// suite's.
pub fn upgrade(
    stream: &mut TcpStream,
    host: &str,
    path: &str,
    deadline: Instant,
) -> std::io::Result<Vec<u8>> {
    use std::io::Error;
    let key = random_u64()
        .to_le_bytes()
        .repeat(2)
        .try_into()
        .unwrap_or([0; 16]);
    let (request, handshake) =
        client_request(host, path, key, &[]).map_err(|e| Error::other(e.to_string()))?;
    stream.write_all(&request)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::new(ErrorKind::TimedOut, "no handshake response"));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(Error::other(format!(
                "server closed during the handshake: {:?}",
                String::from_utf8_lossy(&buf)
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_response(&buf, &handshake) {
            Ok(Some((_, len))) => {
                buf.drain(..len);
                return Ok(buf);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(Error::other(format!(
                    "handshake refused: {e}: {}",
                    String::from_utf8_lossy(&buf)
                )))
            }
        }
    }
}

/// `POST path` with a JSON body on a fresh connection.
pub fn http_post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> HttpResponse {
    http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Some(body.to_string().as_bytes()),
    )
}

/// The value of an unlabelled metric line `name value` in Prometheus text.
pub fn metric_value(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

impl Client {
    /// The next text message, parsed as JSON.
    pub fn recv_json(&mut self) -> serde_json::Value {
        let text = self.recv_text();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Send a JSON value as a text message.
    pub fn send_json(&mut self, value: &serde_json::Value) {
        self.send_text(&value.to_string());
    }
}

impl Client {
    /// Expect a close frame with `code` (skipping pings), answer it as a
    /// client should (echoing the code), then expect the server to close TCP.
    /// Returns the close reason.
    pub fn answer_close(&mut self, code: u16) -> String {
        let reason = loop {
            match self.recv() {
                Recv::Msg(Msg::Ping(_)) => {}
                Recv::Msg(Msg::Close(got, reason)) => {
                    assert_eq!(got, Some(code), "close reason: {reason}");
                    break reason;
                }
                other => panic!("expected close {code}, got {other:?}"),
            }
        };
        self.send_frame(OpCode::Close, true, &code.to_be_bytes());
        self.expect_eof();
        reason
    }
}
