//! Socket ids: which node, which loop, which connection of its life.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

/// Bits of the per-loop connection counter.
const LOCAL_BITS: u32 = 40;
/// Bits of the loop index.
const LOOP_BITS: u32 = 8;

/// Identifies one WebSocket connection, never reused within a process.
///
/// The value is `node << 48 | loop << 40 | counter`: the node's instance
/// number (0 on a single node; the cluster gives each node its own), the
/// index of the event loop that owns the socket (so a send finds its loop in
/// O(1)), and that loop's count of accepted connections. An id repeats only
/// after 2^40 connections on one loop (at 100,000 a second, 127 days); a
/// stale id addresses nothing.
///
/// On the wire (JSON, HTTP API) it travels as a decimal string, since a `u64`
/// does not fit a JavaScript number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(u64);

impl SocketId {
    /// The id of connection `local` (the loop's counter) of loop `loop_index`
    /// on node `node`. `local` is taken modulo 2^40.
    pub fn new(node: u16, loop_index: u8, local: u64) -> SocketId {
        SocketId(
            u64::from(node) << (LOCAL_BITS + LOOP_BITS)
                | u64::from(loop_index) << LOCAL_BITS
                | (local & ((1 << LOCAL_BITS) - 1)),
        )
    }

    /// The node's instance number.
    pub fn node(self) -> u16 {
        (self.0 >> (LOCAL_BITS + LOOP_BITS)) as u16
    }

    /// The index of the loop that owns the socket.
    pub fn loop_index(self) -> u8 {
        (self.0 >> LOCAL_BITS) as u8
    }

    /// The loop's connection counter at this connection's accept.
    pub fn local(self) -> u64 {
        self.0 & ((1 << LOCAL_BITS) - 1)
    }

    /// The raw `u64`.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// An id from its raw `u64`.
    pub fn from_u64(raw: u64) -> SocketId {
        SocketId(raw)
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SocketId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(SocketId)
    }
}

/// A hasher for maps keyed by socket id: ids are counters the server hands
/// out (a peer can look one up but never insert one), so a multiplicative
/// mix is enough and much cheaper than SipHash.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Builds [`IdHasher`]s.
pub(crate) type IdHash = BuildHasherDefault<IdHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = SocketId::new(0xBEEF, 7, 123_456_789);
        assert_eq!(id.node(), 0xBEEF);
        assert_eq!(id.loop_index(), 7);
        assert_eq!(id.local(), 123_456_789);
        assert_eq!(id.to_string().parse::<SocketId>().unwrap(), id);
        assert_ne!(SocketId::new(0, 0, 1), SocketId::new(0, 1, 1));
        assert_eq!(SocketId::new(0, 0, 1 << 40), SocketId::new(0, 0, 0));
    }
}
