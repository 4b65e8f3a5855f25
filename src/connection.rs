//! One TCP connection: its socket, its state, its buffers. No business logic.
//!
//! An idle open connection holds no buffer memory: `input` keeps only the
//! unconsumed tail of the last read (a partial frame header or control frame,
//! or a partial HTTP request head) and `output` holds nothing between flushes.
//!
//! The connection's life is one [`State`]; every change of state goes
//! through the transition functions below (pure: no socket, no clock), which
//! say what the event loop must do ([`Action`]). The loop only moves bytes,
//! runs timers and applies those answers.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use gmws_protocol::decoder::Decoder;
use mio::net::TcpStream;

use crate::outqueue::OutQueue;
use crate::socket_app::SocketApp;
use crate::socket_id::SocketId;
use crate::timer::TimerId;

/// Input bytes a closing connection reads and throws away before it is
/// dropped without further ceremony: enough for a peer's last frames, far
/// too little to keep the loop busy reading an attacker's stream.
pub const DISCARD_LIMIT: u32 = 64 * 1024;

/// Where a connection is in its life.
///
/// ```text
///            upgrade                 we close             peer's Close
///  Http ─────────────► Open ─────────────────► CloseSent ─────────────┐
///   │  ▲                │ peer's Close / error / refusal              ▼
///   │  └ keep-alive     └───────────────────────────────────────► Finishing
///   │ final response / refusal ──────────────────────────────────────►│ flushed: shut our side
///   │                                                                 ▼
///   │                       peer's FIN in any state ─► HalfClosed   Draining ─► (dropped on
///   └─► (dropped on timeout, error)                    flushed: drop           FIN or timeout)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Reading HTTP request heads: an upgrade or plain requests. `idle`: a
    /// keep-alive connection between requests (no request partly read).
    Http {
        /// Between requests of a keep-alive connection.
        idle: bool,
    },
    /// A WebSocket: messages flow both ways.
    Open,
    /// We sent a Close frame first; frames are still read (data is dropped)
    /// until the peer's Close arrives.
    CloseSent,
    /// The last bytes are queued (the answer to the peer's Close, a close
    /// after an error, a refusal, a final HTTP response). Input is discarded,
    /// up to [`DISCARD_LIMIT`] bytes; once flushed, our side of TCP is shut.
    Finishing {
        /// Bytes read and thrown away so far.
        discarded: u32,
    },
    /// Our side is shut: waiting for the peer's FIN (or the close timeout),
    /// discarding input up to [`DISCARD_LIMIT`] bytes.
    Draining {
        /// Bytes read and thrown away so far.
        discarded: u32,
    },
    /// The peer shut its side first (FIN): nothing more is read; what is
    /// queued (a Close reply, an HTTP response) is flushed within the close
    /// timeout, then the connection is dropped.
    HalfClosed,
}

/// What the event loop must do after a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the new state.
    None,
    /// Shut our side of TCP (`shutdown(Write)`) and arm the close timeout.
    ShutdownWrite,
    /// Drop the connection now.
    Drop,
}

impl State {
    /// A new connection.
    pub const NEW: State = State::Http { idle: false };

    /// Whether the WebSocket is open for application messages both ways.
    pub fn is_open(self) -> bool {
        self == State::Open
    }

    /// Whether read bytes are decoded (as HTTP or frames); otherwise they are
    /// discarded (`Finishing`, `Draining`) or not read at all (`HalfClosed`).
    pub fn decodes_input(self) -> bool {
        matches!(self, State::Http { .. } | State::Open | State::CloseSent)
    }

    /// Whether the socket is still read at all.
    pub fn reads(self) -> bool {
        self != State::HalfClosed
    }

    /// Whether the connection is a WebSocket (open or closing).
    pub fn is_websocket(self) -> bool {
        matches!(self, State::Open | State::CloseSent)
    }

    /// The handshake succeeded.
    pub fn on_upgrade(self) -> State {
        match self {
            State::Http { .. } => State::Open,
            other => other,
        }
    }

    /// We queued our Close frame first (the application, a timeout, a limit).
    pub fn on_close_sent(self) -> State {
        match self {
            State::Open => State::CloseSent,
            other => other,
        }
    }

    /// The peer's Close frame arrived (our reply, if we owe one, is queued).
    pub fn on_close_received(self) -> State {
        match self {
            State::Open | State::CloseSent => State::Finishing { discarded: 0 },
            other => other,
        }
    }

    /// The last bytes are queued: after a protocol error, a refused request,
    /// a response without keep-alive, or a shed connection.
    pub fn on_finish(self) -> State {
        match self {
            State::Http { .. } | State::Open | State::CloseSent => {
                State::Finishing { discarded: 0 }
            }
            other => other,
        }
    }

    /// The peer shut its side (read returned 0). `queued`: bytes still to write.
    pub fn on_peer_eof(self, queued: usize) -> (State, Action) {
        match self {
            State::Draining { .. } => (self, Action::Drop),
            _ if queued == 0 => (State::HalfClosed, Action::Drop),
            _ => (State::HalfClosed, Action::None),
        }
    }

    /// The write queue is empty.
    pub fn on_flushed(self) -> (State, Action) {
        match self {
            State::Finishing { discarded } => {
                (State::Draining { discarded }, Action::ShutdownWrite)
            }
            State::HalfClosed => (self, Action::Drop),
            other => (other, Action::None),
        }
    }

    /// `n` bytes were read in a state that discards input.
    pub fn on_discarded(self, n: usize) -> (State, Action) {
        let add = |d: u32| d.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        let next = match self {
            State::Finishing { discarded } => State::Finishing {
                discarded: add(discarded),
            },
            State::Draining { discarded } => State::Draining {
                discarded: add(discarded),
            },
            other => return (other, Action::None),
        };
        match next {
            State::Finishing { discarded } | State::Draining { discarded }
                if discarded > DISCARD_LIMIT =>
            {
                (next, Action::Drop)
            }
            _ => (next, Action::None),
        }
    }
}

/// Whether (and how soon) a connection has output to flush this turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dirty {
    /// Nothing queued since the last flush.
    Clean,
    /// Only fan-out frames: flushed after the point-to-point ones.
    Fanout,
    /// A message for this socket alone (a reply, a pong, a close, an HTTP
    /// response): flushed first, so a quiet client's answer does not wait
    /// behind a broadcast's thousands of writes.
    Urgent,
    /// Nothing queued, but a fan-out's frame waits for it in the loop's
    /// deferred fan-out (`hub/deferred.rs`): written from there in a later
    /// turn, or queued first when anything else is queued on the socket.
    Deferred,
}

/// Which deadline a connection's `deadline` timer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineKind {
    /// The whole first request head must arrive in `handshake_timeout`.
    Handshake,
    /// A keep-alive connection's next request must start in `http_idle_timeout`.
    HttpIdle,
    /// A closing connection must finish in `close_timeout`.
    Close,
}

/// A peer's address, compact (18 bytes instead of `SocketAddr`'s 32): IPv4
/// is kept as IPv4-mapped IPv6 and given back as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    ip: [u8; 16],
    port: u16,
}

impl PeerAddr {
    /// Store `addr`.
    pub fn new(addr: SocketAddr) -> PeerAddr {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        PeerAddr {
            ip,
            port: addr.port(),
        }
    }

    /// The IP address (IPv4 for IPv4 and IPv4-mapped peers).
    pub fn ip(self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.ip);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }

    /// The address.
    pub fn addr(self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.port)
    }
}

/// Unconsumed input carried between reads, as a `Vec<u8>` (through
/// `Deref`): nothing is allocated while it is empty and the connection holds
/// 8 bytes for it, not a `Vec`'s 24 (an idle connection carries no input).
/// Writing through `DerefMut` allocates it; [`Input::release`] frees it.
#[derive(Debug, Default)]
// The box is the point: 8 bytes in every connection's slot instead of 24.
#[allow(clippy::box_collection)]
pub struct Input(Option<Box<Vec<u8>>>);

/// What an empty [`Input`] reads as.
static NO_INPUT: Vec<u8> = Vec::new();

impl std::ops::Deref for Input {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        self.0.as_deref().unwrap_or(&NO_INPUT)
    }
}

impl std::ops::DerefMut for Input {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.0.get_or_insert_with(Box::default)
    }
}

impl Input {
    /// Free the buffer (and its box): the connection holds nothing for it.
    pub fn release(&mut self) {
        self.0 = None;
    }
}

/// One accepted connection.
#[derive(Debug)]
pub struct Connection {
    /// The socket.
    pub stream: TcpStream,
    /// Its id.
    pub id: SocketId,
    /// Where it is in its life.
    pub state: State,
    /// The frame decoder (from `Open` on).
    pub decoder: Decoder,
    /// Unconsumed input bytes carried to the next read.
    pub input: Input,
    /// Bytes waiting to be written.
    pub output: OutQueue,
    /// The deadline of the current state (see [`DeadlineKind`]).
    pub deadline: Option<TimerId>,
    /// The next heartbeat ping.
    pub heartbeat: Option<TimerId>,
    /// The auth deadline (until the socket binds a client id).
    pub auth_deadline: Option<TimerId>,
    /// Client id, groups, session, user timers: allocated on first use.
    pub(crate) app: Option<Box<SocketApp>>,
    /// Bytes this connection holds, as last counted in the memory gauge.
    pub accounted: u32,
    /// The peer's address.
    pub peer: PeerAddr,
    /// Pings sent and not answered.
    pub missed_pongs: u8,
    /// Which of the loop's flush lists the connection is in.
    pub dirty: Dirty,
    /// Whether the connection is queued to be read again (read or fan-out
    /// budget ran out, or a paused HTTP connection may go on).
    pub read_again: bool,
    /// Whether WRITABLE interest is registered (only while output waits).
    pub writable_interest: bool,
    /// permessage-deflate: 0 when not negotiated, else the window (in bits)
    /// the server may compress with; 8 is negotiated but sent uncompressed
    /// (zlib has no 256-byte window).
    pub deflate: u8,
    /// permessage-deflate with server context takeover: messages to this
    /// socket are compressed with a compressor of its own, kept between
    /// messages (`compression_context_takeover`).
    pub deflate_context: bool,
    /// The TLS session, on a port with `tls_cert`/`tls_key` (boxed: a plain
    /// connection pays one pointer for it).
    pub tls: Option<Box<rustls::ServerConnection>>,
}

impl Connection {
    /// A new connection in the `Http` state.
    pub fn new(stream: TcpStream, id: SocketId, peer: SocketAddr, decoder: Decoder) -> Connection {
        Connection {
            stream,
            id,
            state: State::NEW,
            decoder,
            input: Input::default(),
            output: OutQueue::new(),
            deadline: None,
            heartbeat: None,
            auth_deadline: None,
            app: None,
            accounted: 0,
            peer: PeerAddr::new(peer),
            missed_pongs: 0,
            dirty: Dirty::Clean,
            deflate: 0,
            deflate_context: false,
            tls: None,
            read_again: false,
            writable_interest: false,
        }
    }

    /// Whether the WebSocket is open for application messages both ways.
    pub fn is_open(&self) -> bool {
        self.state.is_open()
    }

    /// Whether bytes wait to be written: in the queue, or encrypted and
    /// held by the TLS session.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Bytes this connection owns: buffer capacity (shared frames in its
    /// queue are counted where they were made) and its application state.
    pub fn owned_bytes(&self) -> usize {
        self.input.capacity()
            + self.decoder.buffered()
            + self.output.owned_capacity()
            + self.app_bytes()
    }

    /// Bytes this connection keeps alive: its own plus the shared frames it
    /// still has to write (what closing it would free, at most).
    pub fn held_bytes(&self) -> usize {
        self.input.capacity() + self.decoder.buffered() + self.output.len() + self.app_bytes()
    }

    fn app_bytes(&self) -> usize {
        self.app.as_ref().map_or(0, |a| a.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open connection costs this much of the slab whether it is busy or
    /// idle (the README's memory per connection starts here): keep it small.
    /// 184 bytes in release builds, where mio's `TcpStream` is the 4-byte
    /// descriptor; debug builds add mio's 8-byte selector check to it. (152
    /// before the write queue's inline buffer, 32 bytes that spare replies a
    /// boxed chunk list, and the peer's address, 18 bytes; 184 before the
    /// write queue's `first` slot, 8 bytes that spare a fan-out delivery the
    /// kernel did not take at once a boxed chunk list; 192 before the TLS
    /// session's pointer; 200 before the carried input became an 8-byte
    /// [`Input`] instead of a 24-byte `Vec`.)
    #[test]
    fn input_allocates_only_when_written() {
        let mut input = Input::default();
        assert!(input.is_empty() && input.0.is_none());
        input.extend_from_slice(b"abc");
        assert_eq!(&input[..], b"abc");
        input.release();
        assert!(input.is_empty() && input.0.is_none());
    }

    #[test]
    fn connection_stays_compact() {
        let budget = (180 + std::mem::size_of::<TcpStream>()).next_multiple_of(8);
        let size = std::mem::size_of::<Connection>();
        assert!(size <= budget, "{size} > {budget}");
    }

    #[test]
    fn websocket_closed_by_the_server_first() {
        let s = State::NEW.on_upgrade();
        assert!(s.is_open());
        let s = s.on_close_sent();
        assert_eq!(s, State::CloseSent);
        assert!(s.decodes_input() && !s.is_open());
        let s = s.on_close_received();
        assert_eq!(s, State::Finishing { discarded: 0 });
        assert!(!s.decodes_input() && s.reads());
        let (s, action) = s.on_flushed();
        assert_eq!(
            (s, action),
            (State::Draining { discarded: 0 }, Action::ShutdownWrite)
        );
        assert_eq!(s.on_peer_eof(0), (s, Action::Drop));
    }

    #[test]
    fn websocket_closed_by_the_peer_first() {
        let s = State::Open.on_close_received();
        assert_eq!(s, State::Finishing { discarded: 0 });
        // Sending our own close after the peer's changes nothing.
        assert_eq!(s.on_close_sent(), s);
        assert_eq!(s.on_flushed().1, Action::ShutdownWrite);
    }

    #[test]
    fn close_then_fin_still_gets_the_reply() {
        // The peer sends Close and shuts its side in the same breath: its
        // FIN must not cost it our Close reply (RFC 6455 §5.5.1).
        let s = State::Open.on_close_received();
        let (s, action) = s.on_peer_eof(4);
        assert_eq!((s, action), (State::HalfClosed, Action::None));
        assert!(!s.reads());
        assert_eq!(s.on_flushed(), (State::HalfClosed, Action::Drop));
    }

    #[test]
    fn http_request_then_fin_still_gets_the_response() {
        let (s, action) = State::NEW.on_peer_eof(120);
        assert_eq!((s, action), (State::HalfClosed, Action::None));
        assert_eq!(s.on_flushed().1, Action::Drop);
        // With nothing owed, EOF ends it at once.
        assert_eq!(State::NEW.on_peer_eof(0).1, Action::Drop);
        assert_eq!(State::Open.on_peer_eof(0).1, Action::Drop);
    }

    #[test]
    fn discarding_is_bounded() {
        let s = State::NEW.on_finish();
        let (s, action) = s.on_discarded(DISCARD_LIMIT as usize);
        assert_eq!(action, Action::None);
        assert_eq!(s.on_discarded(1).1, Action::Drop);
        let (d, _) = State::Open.on_finish().on_flushed();
        assert_eq!(d.on_discarded(usize::MAX).1, Action::Drop);
        // States that decode do not count discards.
        assert_eq!(
            State::Open.on_discarded(1 << 30),
            (State::Open, Action::None)
        );
    }

    #[test]
    fn nothing_reopens() {
        for s in [
            State::CloseSent,
            State::Finishing { discarded: 0 },
            State::Draining { discarded: 0 },
            State::HalfClosed,
        ] {
            assert_ne!(s.on_upgrade(), State::Open);
        }
        assert_eq!(State::HalfClosed.on_finish(), State::HalfClosed);
        assert_eq!(State::HalfClosed.on_close_received(), State::HalfClosed);
    }

    #[test]
    fn peer_addresses_round_trip() {
        for text in [
            "127.0.0.1:80",
            "[::1]:443",
            "[2001:db8::7]:9",
            "10.1.2.3:65535",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(PeerAddr::new(addr).addr(), addr);
        }
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5".parse().unwrap();
        assert_eq!(PeerAddr::new(mapped).ip(), IpAddr::from([127, 0, 0, 1]));
    }
}
