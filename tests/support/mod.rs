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

/// A config for tests: port 0 on loopback, heartbeats off.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.ping_interval = Duration::ZERO;
    config.auth_timeout = Duration::ZERO;
    config
}

pub fn start<H: Handler + Send + 'static>(config: Config, handler: H) -> TestServer {
    let mut server = Server::bind(config, handler).expect("bind");
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

/// Echoes every message.
pub struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        hub.send_text(socket, text);
    }
    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        hub.send_binary(socket, data);
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
        let key = random_u64().to_le_bytes().repeat(2).try_into().unwrap();
        let (request, accept) = client_request(&addr.to_string(), path, key, &[]);
        stream.write_all(&request).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).expect("handshake response");
            assert!(
                n > 0,
                "server closed during handshake: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            match parse_response(&buf, &accept) {
                Ok(Some((_, len))) => {
                    buf.drain(..len);
                    break;
                }
                Ok(None) => {}
                Err(e) => panic!("handshake refused: {e}: {}", String::from_utf8_lossy(&buf)),
            }
        }
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
