//! One non-blocking TCP connection to Redis: connect, buffered writes, reads
//! into the decoder, and the phase it is in (down and waiting, connecting,
//! up). What is sent on it is the business of `commands` and `pubsub`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::backoff::Backoff;
use super::codec::{encode_command, Decoder};
use super::error::RedisError;
use super::options::RedisOptions;
use super::reply::Reply;
use super::url::RedisUrl;

/// Read at most this much per readiness event before letting the other link
/// and the queues have a turn.
const READ_BUDGET: usize = 1 << 20;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No socket; the next attempt is at `retry_at`.
    Down { retry_at: Instant },
    /// TCP connect and handshake (AUTH, SELECT, PING) under way.
    Connecting { deadline: Instant },
    /// The handshake's PING was answered.
    Up,
}

pub(crate) struct Conn {
    token: Token,
    stream: Option<TcpStream>,
    tcp_connected: bool,
    decoder: Decoder,
    out: Vec<u8>,
    out_pos: usize,
    pub(crate) phase: Phase,
    backoff: Backoff,
    /// The link was up at least once (so the next up is a reconnect).
    pub(crate) ever_up: bool,
    attempts: usize,
    /// The last read stopped at the budget: bytes may wait without a new
    /// readiness event.
    pub(crate) read_again: bool,
}

impl Conn {
    pub(crate) fn new(token: Token, options: &RedisOptions, now: Instant) -> Conn {
        Conn {
            token,
            stream: None,
            tcp_connected: false,
            decoder: Decoder::new(options.max_reply_depth, options.max_reply_bytes),
            out: Vec::new(),
            out_pos: 0,
            phase: Phase::Down { retry_at: now },
            backoff: Backoff::new(options.backoff_base, options.backoff_max),
            ever_up: false,
            attempts: 0,
            read_again: false,
        }
    }

    /// Starts a connect attempt; on error the caller calls [`Conn::down`].
    /// Name resolution happens here, on the bus thread (it may block it, never
    /// a caller).
    pub(crate) fn open(
        &mut self,
        registry: &Registry,
        url: &RedisUrl,
        deadline: Instant,
    ) -> Result<(), RedisError> {
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
        // Several addresses (localhost: ::1 and 127.0.0.1): take turns.
        let Some(&addr) = addrs.get(self.attempts % addrs.len().max(1)) else {
            return Err(RedisError::Io(io::ErrorKind::NotFound));
        };
        self.attempts = self.attempts.wrapping_add(1);
        let mut stream = TcpStream::connect(addr)?;
        registry.register(
            &mut stream,
            self.token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        // Commands need no batching delay: they are already pipelined.
        let _ = stream.set_nodelay(true);
        self.stream = Some(stream);
        self.tcp_connected = false;
        self.decoder.clear();
        self.out.clear();
        self.out_pos = 0;
        self.phase = Phase::Connecting { deadline };
        Ok(())
    }

    /// Drops the socket and schedules the next attempt with backoff.
    /// Returns whether the link was up.
    pub(crate) fn down(&mut self, registry: &Registry, now: Instant) -> bool {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
        let was_up = self.phase == Phase::Up;
        self.read_again = false;
        self.out.clear();
        self.out_pos = 0;
        self.decoder.clear();
        self.phase = Phase::Down {
            retry_at: now + self.backoff.next_delay(),
        };
        was_up
    }

    /// Closes the socket for good (shutdown).
    pub(crate) fn close(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
    }

    /// The handshake finished.
    pub(crate) fn set_up(&mut self) {
        self.phase = Phase::Up;
        self.backoff.reset();
        self.ever_up = true;
    }

    pub(crate) fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    pub(crate) fn is_down(&self) -> bool {
        matches!(self.phase, Phase::Down { .. })
    }

    /// Queues bytes to write (sent by [`Conn::flush`]).
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Writes what is queued until the kernel takes no more.
    pub(crate) fn flush(&mut self) -> Result<(), RedisError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        if !self.tcp_connected {
            // mio: a connect is done when peer_addr answers.
            match stream.peer_addr() {
                Ok(_) => self.tcp_connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    if let Some(e) = stream.take_error()? {
                        return Err(e.into());
                    }
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        while let Some(pending) = self.out.get(self.out_pos..).filter(|p| !p.is_empty()) {
            match stream.write(pending) {
                Ok(0) => return Err(RedisError::ConnectionLost),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > (1 << 16) && self.out_pos > self.out.len() / 2 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Writes what is queued, then reads what the socket has (up to a
    /// budget) and appends the complete replies. End of stream is
    /// [`RedisError::ConnectionLost`], with the replies before it appended.
    pub(crate) fn pump(&mut self, replies: &mut Vec<Reply>) -> Result<(), RedisError> {
        self.flush()?;
        self.read_again = false;
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        if !self.tcp_connected {
            return Ok(());
        }
        let mut chunk = [0u8; 16 * 1024];
        let mut total = 0;
        let mut eof = false;
        while total < READ_BUDGET {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    total += n;
                    self.decoder.extend(chunk.get(..n).unwrap_or_default());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        while let Some(reply) = self.decoder.next_reply()? {
            replies.push(reply);
        }
        if eof {
            return Err(RedisError::ConnectionLost);
        }
        self.read_again = total >= READ_BUDGET;
        Ok(())
    }

    /// Appends AUTH for the URL's credentials; returns whether it did.
    pub(crate) fn write_auth(&mut self, url: &RedisUrl) -> bool {
        match (&url.username, &url.password) {
            (Some(user), Some(pass)) => encode_command(&["AUTH", user, pass], &mut self.out),
            (None, Some(pass)) => encode_command(&["AUTH", pass], &mut self.out),
            _ => return false,
        }
        true
    }
}
