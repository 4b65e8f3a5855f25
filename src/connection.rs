//! One TCP connection: its socket, its phase, its buffers. No business logic.
//!
//! An idle open connection holds no buffer memory: `input` keeps only the
//! unconsumed tail of the last read (a partial frame header or control frame,
//! or a partial HTTP request head) and `output` is empty between flushes.

use gmws_protocol::decoder::Decoder;
use gmws_protocol::CloseState;
use mio::net::TcpStream;

use crate::hub::SocketApp;
use crate::socket_id::SocketId;
use crate::timer::TimerId;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading an HTTP request head: an upgrade or a plain HTTP request.
    Http,
    /// A WebSocket: messages flow.
    Open,
    /// Closing: a close frame was sent (or received), waiting for the rest of the
    /// close handshake, then the flush and the TCP close.
    Closing,
    /// Our output is flushed and our side of TCP is shut: waiting for the peer's
    /// FIN (or the close timeout), discarding input.
    Draining,
}

/// One accepted connection.
#[derive(Debug)]
pub struct Connection {
    /// The socket.
    pub stream: TcpStream,
    /// Its id.
    pub id: SocketId,
    /// The phase.
    pub phase: Phase,
    /// The close handshake state (meaningful from `Open` on).
    pub close: CloseState,
    /// The frame decoder (from `Open` on).
    pub decoder: Decoder,
    /// Unconsumed input bytes carried to the next read.
    pub input: Vec<u8>,
    /// Bytes waiting to be written.
    pub output: Vec<u8>,
    /// How much of `output` has been written already.
    pub written: usize,
    /// Whether WRITABLE interest is registered.
    pub writable_interest: bool,
    /// Shut our side of TCP once `output` is flushed.
    pub shutdown_after_flush: bool,
    /// Ignore further input (after a failure or a refused request).
    pub discard_input: bool,
    /// Whether the connection is in the loop's dirty list.
    pub dirty: bool,
    /// Whether the connection is queued to be read again (read budget ran out).
    pub read_again: bool,
    /// The deadline of the current phase: handshake, HTTP idle, or close timeout.
    pub deadline: Option<TimerId>,
    /// The next heartbeat ping.
    pub heartbeat: Option<TimerId>,
    /// The auth deadline (until the socket binds a client id).
    pub auth_deadline: Option<TimerId>,
    /// Pings sent and not answered.
    pub missed_pongs: u32,
    /// Client id, groups, session, user timers: allocated on first use.
    pub app: Option<Box<SocketApp>>,
}

impl Connection {
    /// A new connection in the `Http` phase.
    pub fn new(stream: TcpStream, id: SocketId, decoder: Decoder) -> Connection {
        Connection {
            stream,
            id,
            phase: Phase::Http,
            close: CloseState::Open,
            decoder,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            writable_interest: false,
            shutdown_after_flush: false,
            discard_input: false,
            dirty: false,
            read_again: false,
            deadline: None,
            heartbeat: None,
            auth_deadline: None,
            missed_pongs: 0,
            app: None,
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.output.len() - self.written
    }

    /// Whether the WebSocket is open for application messages both ways.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open && self.close == CloseState::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open connection costs this much of the slab whether it is busy or
    /// idle (the README's memory per connection starts here): keep it small.
    /// 152 bytes in release builds, where mio's `TcpStream` is the 4-byte
    /// descriptor; debug builds add mio's 8-byte selector check to it.
    #[test]
    fn connection_stays_compact() {
        let budget = (148 + std::mem::size_of::<TcpStream>()).next_multiple_of(8);
        let size = std::mem::size_of::<Connection>();
        assert!(size <= budget, "{size} > {budget}");
    }
}
