//! Socket ids: which connection, and which life of its slot.

use std::fmt;
use std::str::FromStr;

/// Identifies one WebSocket connection for the life of the process.
///
/// The value is `generation << 32 | slot`: the slot is the connection's index in
/// the server's slab (O(1) lookup), the generation is drawn from a process-wide
/// counter at accept, so a later connection in the same slot gets another id and
/// a stale id addresses nothing. (The counter wraps after 2^32 accepts.)
///
/// On the wire (JSON, HTTP API) it travels as a decimal string, since a `u64`
/// does not fit a JavaScript number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(u64);

impl SocketId {
    /// The id for `slot` in its `generation`.
    pub fn new(slot: usize, generation: u32) -> SocketId {
        SocketId((u64::from(generation) << 32) | (slot as u64 & 0xFFFF_FFFF))
    }

    /// The slab index.
    pub fn slot(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }

    /// The generation.
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = SocketId::new(12345, 0xDEAD_BEEF);
        assert_eq!(id.slot(), 12345);
        assert_eq!(id.generation(), 0xDEAD_BEEF);
        assert_eq!(id.to_string().parse::<SocketId>().unwrap(), id);
        assert_ne!(SocketId::new(1, 1), SocketId::new(1, 2));
    }
}
