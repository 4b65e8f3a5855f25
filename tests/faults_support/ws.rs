//! A small blocking WebSocket client on the protocol crate's client role that
//! returns errors instead of panicking (the canary records them), answers the
//! server's pings by itself, and reads with deadlines.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gmws::protocol::decoder::{Decoder, Limits, Message, Role};
use gmws::protocol::encoder::encode_frame;
use gmws::protocol::OpCode;
use serde_json::{json, Value};

use super::random_u64;

/// One thing read from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    /// The server closed TCP (or reset it).
    Eof,
}

/// An owned copy of a decoded message.
pub fn own(m: Message<'_>) -> Frame {
    match m {
        Message::Text(t) => Frame::Text(t.to_owned()),
        Message::Binary(b) => Frame::Binary(b.to_vec()),
        Message::Ping(b) => Frame::Ping(b.to_vec()),
        Message::Pong(b) => Frame::Pong(b.to_vec()),
        Message::Close(c) => match c {
            Some(c) => Frame::Close(Some(c.code.0), c.reason.to_owned()),
            None => Frame::Close(None, String::new()),
        },
    }
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// A masked client frame.
pub fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        opcode,
        fin,
        payload,
        Some((random_u64() as u32).to_be_bytes()),
    );
    out
}

/// A masked text frame holding `value` as JSON.
pub fn json_frame(value: &Value) -> Vec<u8> {
    client_frame(OpCode::Text, true, value.to_string().as_bytes())
}

/// A WebSocket client connection.
pub struct Ws {
    pub stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
    /// The socket id from the welcome message.
    pub socket_id: String,
    /// Answer pings with pongs inside [`Ws::next`] instead of returning them.
    pub auto_pong: bool,
    /// Pings answered by `next`.
    pub pings: u64,
}

impl Ws {
    /// Connect, upgrade, and read the welcome message (within `timeout`).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Ws> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        Ws::handshake(stream, addr, timeout)
    }

    /// Upgrade an already connected stream and read the welcome message.
    pub fn handshake(mut stream: TcpStream, addr: SocketAddr, timeout: Duration) -> io::Result<Ws> {
        let deadline = Instant::now() + timeout;
        stream.set_nodelay(true)?;
        let buf = crate::support::upgrade(&mut stream, &addr.to_string(), "/", deadline)?;
        let mut ws = Ws {
            stream,
            decoder: Decoder::new(Role::Client, Limits::new(64 << 20, 64 << 20, 100_000)),
            buf,
            socket_id: String::new(),
            auto_pong: true,
            pings: 0,
        };
        let welcome = ws.expect_type("welcome", deadline)?;
        ws.socket_id = welcome["data"]["socket_id"]
            .as_str()
            .ok_or_else(|| other(format!("welcome without socket_id: {welcome}")))?
            .to_owned();
        Ok(ws)
    }

    /// Send one masked frame.
    pub fn send(&mut self, opcode: OpCode, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&client_frame(opcode, true, payload))
    }

    /// Send a JSON value as a text message.
    pub fn send_json(&mut self, value: &Value) -> io::Result<()> {
        self.stream.write_all(&json_frame(value))
    }

    /// Send a close frame with `code`.
    pub fn send_close(&mut self, code: u16) -> io::Result<()> {
        self.send(OpCode::Close, &code.to_be_bytes())
    }

    /// The next frame, or `None` once `deadline` passes. Pings are answered
    /// and skipped while `auto_pong` is set.
    pub fn next(&mut self, deadline: Instant) -> io::Result<Option<Frame>> {
        loop {
            let (n, msg) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| other(format!("server sent a bad frame: {e}")))?;
            let frame = msg.map(own);
            self.buf.drain(..n);
            match frame {
                Some(Frame::Ping(payload)) if self.auto_pong => {
                    self.pings += 1;
                    // A pong that cannot be written shows up as an error on the next send.
                    let _ = self.send(OpCode::Pong, &payload);
                    continue;
                }
                Some(frame) => return Ok(Some(frame)),
                None if n > 0 => continue,
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Some(Frame::Eof)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(Some(Frame::Eof)),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next frame within `timeout`; a timeout is an error.
    pub fn next_within(&mut self, timeout: Duration) -> io::Result<Frame> {
        self.next(Instant::now() + timeout)?
            .ok_or_else(|| io::Error::new(ErrorKind::TimedOut, "no frame in time"))
    }

    /// The next text message as JSON (skipping pings); anything else is an error.
    pub fn next_json(&mut self, deadline: Instant) -> io::Result<Value> {
        match self.next(deadline)? {
            Some(Frame::Text(t)) => {
                serde_json::from_str(&t).map_err(|e| other(format!("not JSON ({e}): {t}")))
            }
            Some(other_frame) => Err(other(format!(
                "expected a text message, got {other_frame:?}"
            ))),
            None => Err(io::Error::new(ErrorKind::TimedOut, "no message in time")),
        }
    }

    /// Read messages until one of type `kind` arrives; others are an error.
    pub fn expect_type(&mut self, kind: &str, deadline: Instant) -> io::Result<Value> {
        let value = self.next_json(deadline)?;
        if value["type"] == kind {
            Ok(value)
        } else {
            Err(other(format!("expected a {kind:?} message, got {value}")))
        }
    }

    /// `bind` as `client_id` and wait for the answer.
    pub fn bind(&mut self, client_id: &str) -> io::Result<()> {
        self.send_json(&json!({"type": "bind", "data": {"client_id": client_id}}))?;
        self.expect_type("bind", Instant::now() + super::PATIENCE)
            .map(|_| ())
    }

    /// `join` `group` and wait for the answer.
    pub fn join(&mut self, group: &str) -> io::Result<()> {
        self.send_json(&json!({"type": "join", "data": {"group": group}}))?;
        self.expect_type("join", Instant::now() + super::PATIENCE)
            .map(|_| ())
    }

    /// A JSON ping answered by a pong, within `timeout`.
    pub fn ping_pong(&mut self, timeout: Duration) -> io::Result<Duration> {
        let start = Instant::now();
        self.send_json(&json!({"type": "ping"}))?;
        self.expect_type("pong", start + timeout)?;
        Ok(start.elapsed())
    }

    /// Bytes read from the socket and not decoded yet.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Split into the stream, the decoder and the undecoded bytes (to drive
    /// the connection from a mio loop).
    pub fn into_parts(self) -> (TcpStream, Decoder, Vec<u8>) {
        (self.stream, self.decoder, self.buf)
    }
}
