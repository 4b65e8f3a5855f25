//! Many WebSocket client connections on one mio `Poll`: connect, handshake,
//! decode, answer pings, close. What the connections say is up to a [`Client`]
//! (the mode); the driver only moves bytes.
//!
//! Each connection keeps no read buffer of its own: reads go into the
//! driver's shared buffer and the decoder streams partial frames out of it, so
//! at most a partial frame header or control frame (under 140 bytes) is kept
//! per connection between reads. Output waits in the connection's [`Outbox`]
//! and is written at once (and again on writable events).
//!
//! What goes over the wire is set by [`Wire`]: TLS over the socket
//! (`--tls`, see [`crate::tls`]) and permessage-deflate (`--deflate`, see
//! `deflate.rs`), each optional; the modes see the same plaintext,
//! uncompressed messages either way.

use std::io::{Error as IoError, ErrorKind as IoKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::protocol::decoder::{Decoder, Limits, Message, Role};
use crate::protocol::deflate::client::ClientOffer;
use crate::protocol::deflate::DeflateParams;
use crate::protocol::encoder::encode_frame;
use crate::protocol::handshake::{client_request, parse_response, ClientHandshake};
use crate::protocol::{CloseCode, OpCode};

use super::deflate::{self, Inbound, Outbound, SharedStates};
use super::payload::Rng;
use super::stats::ErrorKind;
use super::tls::{is_tls_error, TlsClient, Transport};

/// Size of the shared read buffer.
const READ_BUF: usize = 128 * 1024;
/// How long a connection waits for the server's close (or EOF) after ours.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How often deadlines are checked.
const DEADLINE_TICK: Duration = Duration::from_millis(20);
/// Largest frame or message accepted from the server.
const MAX_INBOUND: u64 = 64 << 20;

/// A data message from the server.
#[derive(Clone, Copy, Debug)]
pub enum Data<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

/// What a [`Client`] wants done with a connection after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it open.
    Keep,
    /// Close it now (close frame, then wait for the server's).
    Close,
}

/// How a run's connections talk: TLS or not, permessage-deflate or not.
#[derive(Clone, Debug, Default)]
pub struct Wire {
    /// TLS over each socket (`--tls`).
    pub tls: Option<TlsClient>,
    /// Offer permessage-deflate and require it (`--deflate`).
    pub deflate: Option<ClientOffer>,
}

/// Frames waiting to be written on one connection.
#[derive(Debug)]
pub struct Outbox {
    buf: Vec<u8>,
    written: usize,
    rng: Rng,
    /// Compresses data messages once permessage-deflate is agreed.
    deflate: Option<Outbound>,
}

impl Outbox {
    fn new(seed: u64) -> Self {
        Outbox {
            buf: Vec::new(),
            written: 0,
            rng: Rng::new(seed),
            deflate: None,
        }
    }

    /// Queue one whole masked message (or control frame); a data message is
    /// compressed (RSV1 set) when permessage-deflate was agreed.
    pub fn send(&mut self, opcode: OpCode, payload: &[u8]) {
        let key = self.rng.mask_key();
        match self.deflate.as_mut() {
            Some(deflate) if !opcode.is_control() => {
                deflate.encode(&mut self.buf, opcode, payload, key);
            }
            _ => encode_frame(&mut self.buf, opcode, true, payload, Some(key)),
        }
    }

    /// Whether everything queued has been written.
    pub fn is_empty(&self) -> bool {
        self.written == self.buf.len()
    }

    /// Write as much as the socket takes. `Ok` also when it would block.
    /// Under TLS the stream takes everything and `flush` writes what TLS
    /// still holds, also when nothing new was queued.
    fn flush(&mut self, stream: &mut impl Write) -> std::io::Result<()> {
        while self.written < self.buf.len() {
            match stream.write(&self.buf[self.written..]) {
                Ok(0) => return Err(IoKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        self.written = 0;
        stream.flush()
    }
}

/// What a mode does with its connections' events.
pub trait Client {
    /// Connection `i` finished its handshake.
    fn on_open(&mut self, i: usize, out: &mut Outbox);
    /// Connection `i` received a data message.
    fn on_data(&mut self, i: usize, data: Data<'_>, out: &mut Outbox) -> Verdict;
    /// Connection `i` is gone: `Some(kind)` if that was a fault (a failed
    /// setup, an unexpected close, an I/O or protocol error), `None` if it
    /// closed as asked.
    fn on_gone(&mut self, i: usize, error: Option<ErrorKind>);
    /// An event for a token the mode registered itself (see [`Driver::registry`]).
    fn on_other(&mut self, _event: &Event) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshaking,
    Open,
    Closing,
}

#[derive(Debug)]
struct Conn {
    stream: Transport,
    phase: Phase,
    /// What the handshake response is checked against (while handshaking).
    handshake: ClientHandshake,
    decoder: Decoder,
    /// Bytes kept between reads: a partial response head or frame.
    pending: Vec<u8>,
    out: Outbox,
    /// Marks and inflates compressed messages once permessage-deflate is
    /// agreed.
    inflate: Option<Inbound>,
    /// When connecting, handshaking or closing must be over.
    deadline: Option<Instant>,
}

/// How a connection ended, inside the driver.
enum End {
    /// Closed as asked (our close answered, or EOF while closing).
    Clean,
    Fault(ErrorKind),
}

/// The connections of one thread, on one `Poll`.
pub struct Driver {
    poll: Poll,
    events: Events,
    addr: SocketAddr,
    /// Where every other connection goes instead, if set.
    also: Option<SocketAddr>,
    host: String,
    path: String,
    conns: Vec<Option<Conn>>,
    buf: Vec<u8>,
    rng: Rng,
    next: usize,
    setting_up: usize,
    window: usize,
    timeout: Duration,
    opened: usize,
    failed: usize,
    live: usize,
    next_deadline_check: Instant,
    wire: Wire,
    /// zlib states shared by connections, and the inflate buffer.
    deflate: SharedStates,
}

impl Driver {
    /// A driver for `count` connections to `addr` (`host` goes in the
    /// `Host` header), at most `window` of them being set up at once, each
    /// allowed `timeout` to connect and finish its handshake (TLS included),
    /// over `wire`. Nothing is connected before the first [`Driver::turn`].
    pub fn new(
        addr: SocketAddr,
        host: &str,
        path: &str,
        count: usize,
        window: usize,
        timeout: Duration,
        wire: &Wire,
    ) -> std::io::Result<Driver> {
        Ok(Driver {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            addr,
            also: None,
            host: host.to_owned(),
            path: path.to_owned(),
            conns: (0..count).map(|_| None).collect(),
            buf: vec![0; READ_BUF],
            rng: Rng::from_entropy(),
            next: 0,
            setting_up: 0,
            window: window.max(1),
            timeout,
            opened: 0,
            failed: 0,
            live: 0,
            next_deadline_check: Instant::now(),
            wire: wire.clone(),
            deflate: SharedStates::default(),
        })
    }

    /// Connect the odd-numbered connections to `also` instead of the
    /// driver's address (a group split over two nodes of a cluster).
    pub fn alternate_with(&mut self, also: SocketAddr) {
        self.also = Some(also);
    }

    /// The poll's registry, for a mode's own sockets (use tokens from
    /// [`Driver::extra_token`]).
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// The `n`th token free for a mode's own use.
    pub fn extra_token(n: usize) -> Token {
        Token(usize::MAX - 1 - n)
    }

    /// Connections that completed their handshake so far.
    pub fn opened(&self) -> usize {
        self.opened
    }

    /// Connections whose setup failed.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// Connections open or closing now.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Whether every connection has been set up or has failed.
    pub fn settled(&self) -> bool {
        self.next == self.conns.len() && self.setting_up == 0
    }

    /// Whether every connection is gone.
    pub fn finished(&self) -> bool {
        self.settled() && self.live == 0
    }

    /// The outbox of open connection `i`, to queue a message outside a
    /// callback; call [`Driver::flush`] after.
    pub fn outbox(&mut self, i: usize) -> Option<&mut Outbox> {
        match self.conns.get_mut(i) {
            Some(Some(conn)) if conn.phase == Phase::Open => Some(&mut conn.out),
            _ => None,
        }
    }

    /// Write what connection `i` has queued.
    pub fn flush(&mut self, i: usize, client: &mut impl Client) {
        let Some(Some(conn)) = self.conns.get_mut(i) else {
            return;
        };
        if conn.out.flush(&mut conn.stream).is_err() {
            self.end(i, End::Fault(ErrorKind::Io), client);
        }
    }

    /// Drop connection `i` at once (no close handshake), reporting nothing.
    pub fn abort(&mut self, i: usize) {
        if let Some(conn) = self.conns.get_mut(i).and_then(Option::take) {
            self.forget(conn.phase);
        }
    }

    /// Stop setting up: connections not started yet, and those still
    /// connecting or handshaking, fail now (reported as `connect` or
    /// `handshake` faults). Bounds the setup of a run against a server that
    /// accepts slowly or not at all.
    pub fn give_up_setup(&mut self, client: &mut impl Client) {
        for i in self.next..self.conns.len() {
            self.failed += 1;
            client.on_gone(i, Some(ErrorKind::Connect));
        }
        self.next = self.conns.len();
        for i in 0..self.conns.len() {
            let kind = match self.conns[i].as_ref().map(|conn| conn.phase) {
                Some(Phase::Connecting) => ErrorKind::Connect,
                Some(Phase::Handshaking) => ErrorKind::Handshake,
                _ => continue,
            };
            self.end(i, End::Fault(kind), client);
        }
    }

    /// Start the close handshake on every open connection and drop those
    /// still being set up; each has [`CLOSE_WAIT`] to finish.
    pub fn close_all(&mut self, client: &mut impl Client) {
        self.next = self.conns.len();
        let deadline = Instant::now() + CLOSE_WAIT;
        for i in 0..self.conns.len() {
            let Some(phase) = self.conns[i].as_ref().map(|conn| conn.phase) else {
                continue;
            };
            match phase {
                Phase::Connecting | Phase::Handshaking => self.abort(i),
                Phase::Open => {
                    if let Some(conn) = self.conns[i].as_mut() {
                        start_close(conn, deadline);
                    }
                    self.flush(i, client);
                }
                Phase::Closing => {}
            }
        }
    }

    /// Start connections (within the window), wait up to `wait` for events
    /// and handle them, then enforce deadlines.
    pub fn turn(&mut self, client: &mut impl Client, wait: Duration) -> std::io::Result<()> {
        while self.next < self.conns.len() && self.setting_up < self.window {
            let i = self.next;
            self.next += 1;
            self.connect(i, client);
        }
        let now = Instant::now();
        let wait = wait.min(self.next_deadline_check.saturating_duration_since(now));
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            let i = event.token().0;
            if i >= self.conns.len() {
                client.on_other(event);
                continue;
            }
            self.handle(i, event, client);
        }
        std::mem::swap(&mut self.events, &mut events);
        let now = Instant::now();
        if now >= self.next_deadline_check {
            self.next_deadline_check = now + DEADLINE_TICK;
            self.check_deadlines(now, client);
        }
        Ok(())
    }

    fn connect(&mut self, i: usize, client: &mut impl Client) {
        let addr = match self.also {
            Some(also) if i % 2 == 1 => also,
            _ => self.addr,
        };
        let mut tcp = match TcpStream::connect(addr) {
            Ok(stream) => stream,
            Err(_) => {
                self.failed += 1;
                client.on_gone(i, Some(ErrorKind::Connect));
                return;
            }
        };
        if self
            .poll
            .registry()
            .register(&mut tcp, Token(i), Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            self.failed += 1;
            client.on_gone(i, Some(ErrorKind::Connect));
            return;
        }
        let stream = match &self.wire.tls {
            None => Transport::plain(tcp),
            Some(tls) => match Transport::over_tls(tcp, tls) {
                Ok(stream) => stream,
                Err(_) => {
                    self.failed += 1;
                    client.on_gone(i, Some(ErrorKind::Tls));
                    return;
                }
            },
        };
        self.setting_up += 1;
        self.live += 1;
        let limits = Limits::new(MAX_INBOUND, MAX_INBOUND, 1 << 20);
        self.conns[i] = Some(Conn {
            stream,
            phase: Phase::Connecting,
            handshake: ClientHandshake::default(),
            decoder: Decoder::new(Role::Client, limits),
            pending: Vec::new(),
            out: Outbox::new(self.rng.next_u64()),
            inflate: None,
            deadline: Some(Instant::now() + self.timeout),
        });
    }

    fn handle(&mut self, i: usize, event: &Event, client: &mut impl Client) {
        let Some(conn) = self.conns[i].as_mut() else {
            return; // sporadic event of a dropped connection
        };
        if conn.phase == Phase::Connecting {
            match conn.stream.tcp.take_error() {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return self.end(i, End::Fault(ErrorKind::Connect), client),
            }
            match conn.stream.tcp.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == IoKind::NotConnected && !event.is_error() => return,
                Err(_) => return self.end(i, End::Fault(ErrorKind::Connect), client),
            }
            let _ = conn.stream.tcp.set_nodelay(true);
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&self.rng.next_u64().to_ne_bytes());
            key[8..].copy_from_slice(&self.rng.next_u64().to_ne_bytes());
            let Ok((mut request, handshake)) = client_request(&self.host, &self.path, key, &[])
            else {
                return self.end(i, End::Fault(ErrorKind::Handshake), client);
            };
            if let Some(offer) = &self.wire.deflate {
                deflate::add_offer(&mut request, offer);
            }
            conn.handshake = handshake;
            conn.out.buf.extend_from_slice(&request);
            conn.phase = Phase::Handshaking;
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            if let Err(end) = self.read(i, client) {
                return self.end(i, end, client);
            }
        }
        // Write whatever reading queued (pongs, the mode's next message) and
        // whatever a writable event lets out.
        self.flush(i, client);
    }

    /// Read until the socket would block; hand out every complete message.
    fn read(&mut self, i: usize, client: &mut impl Client) -> Result<(), End> {
        let Some(conn) = self.conns[i].as_mut() else {
            return Ok(());
        };
        if conn.phase == Phase::Handshaking {
            return self.read_handshake(i, client);
        }
        let mut filled = conn.pending.len();
        self.buf[..filled].copy_from_slice(&conn.pending);
        conn.pending.clear();
        loop {
            match conn.stream.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    return Err(match conn.phase {
                        Phase::Closing => End::Clean,
                        _ => End::Fault(ErrorKind::Closed),
                    })
                }
                Ok(n) => {
                    filled += n;
                    let inflated = &mut self.deflate.inflated;
                    let used = dispatch(conn, i, &mut self.buf[..filled], inflated, client)?;
                    self.buf.copy_within(used..filled, 0);
                    filled -= used;
                }
                Err(e) if e.kind() == IoKind::WouldBlock => break,
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) => {
                    return Err(match conn.phase {
                        Phase::Closing => End::Clean,
                        _ => End::Fault(io_fault(&e, ErrorKind::Io)),
                    })
                }
            }
        }
        conn.pending.extend_from_slice(&self.buf[..filled]);
        Ok(())
    }

    fn read_handshake(&mut self, i: usize, client: &mut impl Client) -> Result<(), End> {
        let Some(conn) = self.conns[i].as_mut() else {
            return Ok(());
        };
        loop {
            match conn.stream.read(&mut self.buf) {
                Ok(0) => return Err(End::Fault(ErrorKind::Handshake)),
                Ok(n) => conn.pending.extend_from_slice(&self.buf[..n]),
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(e) => return Err(End::Fault(io_fault(&e, ErrorKind::Handshake))),
            }
            let offer = self.wire.deflate.as_ref();
            match check_response(&conn.pending, &conn.handshake, offer) {
                Ok(None) => continue,
                Err(kind) => return Err(End::Fault(kind)),
                Ok(Some((head_len, agreed))) => {
                    if let Some(params) = agreed {
                        let (outbound, inbound) = self.deflate.for_connection(&params);
                        conn.out.deflate = Some(outbound);
                        conn.inflate = Some(inbound);
                    }
                    conn.pending.drain(..head_len);
                    conn.handshake = ClientHandshake::default();
                    conn.phase = Phase::Open;
                    conn.deadline = None;
                    self.setting_up -= 1;
                    self.opened += 1;
                    client.on_open(i, &mut conn.out);
                    // Frames that came with the response head.
                    let mut early = std::mem::take(&mut conn.pending);
                    let used = dispatch(conn, i, &mut early, &mut self.deflate.inflated, client)?;
                    early.drain(..used);
                    conn.pending = early;
                    return self.read(i, client);
                }
            }
        }
    }

    fn check_deadlines(&mut self, now: Instant, client: &mut impl Client) {
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_ref() else {
                continue;
            };
            if conn.deadline.is_some_and(|d| now >= d) {
                let end = match conn.phase {
                    Phase::Connecting => End::Fault(ErrorKind::Connect),
                    Phase::Handshaking => End::Fault(ErrorKind::Handshake),
                    // The server did not finish the close in time: drop it.
                    Phase::Open | Phase::Closing => End::Clean,
                };
                self.end(i, end, client);
            }
        }
    }

    fn end(&mut self, i: usize, end: End, client: &mut impl Client) {
        let Some(conn) = self.conns[i].take() else {
            return;
        };
        let setting_up = matches!(conn.phase, Phase::Connecting | Phase::Handshaking);
        self.forget(conn.phase);
        if setting_up {
            self.failed += 1;
        }
        client.on_gone(
            i,
            match end {
                End::Clean => None,
                End::Fault(kind) => Some(kind),
            },
        );
    }

    /// Update the counts for a connection in `phase` that is dropped.
    fn forget(&mut self, phase: Phase) {
        self.live -= 1;
        if matches!(phase, Phase::Connecting | Phase::Handshaking) {
            self.setting_up -= 1;
        }
    }
}

/// The fault an I/O error is: a TLS failure, or `otherwise`.
fn io_fault(error: &IoError, otherwise: ErrorKind) -> ErrorKind {
    if is_tls_error(error) {
        ErrorKind::Tls
    } else {
        otherwise
    }
}

/// Check the server's response head in `pending` (and its answer to the
/// permessage-deflate `offer`, if made). `Ok(None)`: incomplete.
/// `Ok(Some((head_len, agreed)))`: a valid 101 and, with an offer, the
/// agreed parameters (a server that declines is a fault: `--deflate`
/// measures compression).
fn check_response(
    pending: &[u8],
    handshake: &ClientHandshake,
    offer: Option<&ClientOffer>,
) -> Result<Option<(usize, Option<DeflateParams>)>, ErrorKind> {
    let Some(offer) = offer else {
        return match parse_response(pending, handshake) {
            Ok(None) => Ok(None),
            Ok(Some((_, head_len))) => Ok(Some((head_len, None))),
            Err(_) => Err(ErrorKind::Handshake),
        };
    };
    let answer = match deflate::split_answer(pending) {
        // The protocol crate's check bounds the size of a partial head.
        Ok(None) => {
            return parse_response(pending, handshake)
                .map(|_| None)
                .map_err(|_| ErrorKind::Handshake)
        }
        Ok(Some(answer)) => answer,
        Err(_) => return Err(ErrorKind::Handshake),
    };
    let Ok(Some((_, head_len))) = parse_response(&answer.head, handshake) else {
        return Err(ErrorKind::Handshake);
    };
    let values: Vec<&str> = answer.extensions.iter().map(String::as_str).collect();
    match offer.accept(&values) {
        Ok(Some(params)) => Ok(Some((head_len, Some(params)))),
        Ok(None) => Err(ErrorKind::DeflateDeclined),
        Err(_) => Err(ErrorKind::Deflate),
    }
}

/// Decode every complete frame in `data` and act on it; returns the bytes
/// used (the rest is a partial frame to keep). Compressed messages are
/// inflated into `inflated` before the client sees them.
fn dispatch(
    conn: &mut Conn,
    i: usize,
    data: &mut [u8],
    inflated: &mut Vec<u8>,
    client: &mut impl Client,
) -> Result<usize, End> {
    let mut used = 0;
    loop {
        let closing = conn.phase == Phase::Closing;
        if let Some(inbound) = conn.inflate.as_mut() {
            inbound.before_decode(&mut data[used..]);
        }
        let (n, message) = conn
            .decoder
            .decode(&mut data[used..])
            .map_err(|_| End::Fault(ErrorKind::Protocol))?;
        let compressed = match conn.inflate.as_mut() {
            Some(inbound) => {
                inbound.after_decode(n);
                match message {
                    Some(Message::Binary(_)) => inbound.take_compressed(),
                    _ => None,
                }
            }
            None => None,
        };
        let message = match (message, compressed, conn.inflate.as_mut()) {
            (Some(Message::Binary(payload)), Some(text), Some(inbound)) => {
                inbound
                    .inflate(payload, MAX_INBOUND as usize, inflated)
                    .map_err(|_| End::Fault(ErrorKind::Deflate))?;
                Some(if text {
                    let text = std::str::from_utf8(inflated)
                        .map_err(|_| End::Fault(ErrorKind::Protocol))?;
                    Message::Text(text)
                } else {
                    Message::Binary(inflated)
                })
            }
            (message, _, _) => message,
        };
        let Some(message) = message else {
            used += n;
            if n == 0 {
                return Ok(used);
            }
            continue;
        };
        let verdict = match message {
            Message::Text(text) if !closing => client.on_data(i, Data::Text(text), &mut conn.out),
            Message::Binary(bytes) if !closing => {
                client.on_data(i, Data::Binary(bytes), &mut conn.out)
            }
            Message::Text(_) | Message::Binary(_) | Message::Pong(_) => Verdict::Keep,
            Message::Ping(payload) => {
                if !closing {
                    conn.out.send(OpCode::Pong, payload);
                }
                Verdict::Keep
            }
            Message::Close(_) if closing => return Err(End::Clean),
            Message::Close(_) => {
                // The server closes first: answer, and count it as a fault
                // (a load run never expects it).
                conn.out
                    .send(OpCode::Close, &CloseCode::NORMAL.0.to_be_bytes());
                let _ = conn.out.flush(&mut conn.stream);
                return Err(End::Fault(ErrorKind::Closed));
            }
        };
        used += n;
        if verdict == Verdict::Close && conn.phase == Phase::Open {
            start_close(conn, Instant::now() + CLOSE_WAIT);
        }
    }
}

/// Queue a close frame (1000) and wait for the server's until `deadline`.
fn start_close(conn: &mut Conn, deadline: Instant) {
    conn.out
        .send(OpCode::Close, &CloseCode::NORMAL.0.to_be_bytes());
    conn.phase = Phase::Closing;
    conn.deadline = Some(deadline);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_masks_and_flushes() {
        let mut out = Outbox::new(7);
        assert!(out.is_empty());
        out.send(OpCode::Binary, b"abc");
        assert!(!out.is_empty());
        let mut wire = Vec::new();
        out.flush(&mut wire).expect("flush into a Vec");
        assert!(out.is_empty());
        assert_eq!(wire.len(), 2 + 4 + 3);
        assert_eq!(wire[0], 0x82);
        assert_eq!(wire[1], 0x80 | 3);
        let key = [wire[2], wire[3], wire[4], wire[5]];
        let unmasked: Vec<u8> = wire[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(unmasked, b"abc");
    }

    #[test]
    fn extra_tokens_do_not_collide_with_connections() {
        assert!(Driver::extra_token(0).0 > 1 << 40);
        assert_ne!(Driver::extra_token(0), Driver::extra_token(1));
    }
}
