//! The loop's index from socket id to slab slot, one `u64` per socket.
//!
//! Every socket of a loop shares its id's node and loop parts, so the index
//! keys on the 40-bit per-loop counter alone and keeps the slot in the low
//! 24 bits of the same word: a hash set of 8-byte entries, half the 16 bytes
//! a `HashMap<SocketId, usize>` slot takes (at 10,000 sockets in a table of
//! 16,384 slots, ~13 bytes less per connection).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use crate::socket_id::{IdHash, SocketId};

/// Bits of the slot in an entry.
const SLOT_BITS: u32 = 24;

/// Slots the index can hold: a loop refuses a connection past this many
/// (far above any file-descriptor limit a process gets).
pub(crate) const MAX_SLOTS: usize = 1 << SLOT_BITS;

/// An entry: the id's counter above, the slot below. Equal and hashed by
/// the counter only, so a lookup needs no slot.
#[derive(Clone, Copy, Debug)]
struct Entry(u64);

impl Entry {
    fn new(id: SocketId, slot: usize) -> Entry {
        Entry(id.local() << SLOT_BITS | (slot as u64 & (MAX_SLOTS as u64 - 1)))
    }

    fn counter(self) -> u64 {
        self.0 >> SLOT_BITS
    }

    fn slot(self) -> usize {
        (self.0 & (MAX_SLOTS as u64 - 1)) as usize
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.counter() == other.counter()
    }
}

impl Eq for Entry {}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.counter());
    }
}

/// Socket id → slot for the sockets of one loop (ids of other loops and
/// nodes must be filtered out before: only the counter is compared).
#[derive(Debug, Default)]
pub(crate) struct SlotIndex(HashSet<Entry, IdHash>);

impl SlotIndex {
    /// Socket `id` is in `slot` (below [`MAX_SLOTS`]).
    pub fn insert(&mut self, id: SocketId, slot: usize) {
        debug_assert!(slot < MAX_SLOTS);
        self.0.replace(Entry::new(id, slot));
    }

    /// The slot of socket `id`.
    pub fn get(&self, id: SocketId) -> Option<usize> {
        self.0.get(&Entry::new(id, 0)).map(|e| e.slot())
    }

    /// Forget socket `id`.
    pub fn remove(&mut self, id: SocketId) {
        self.0.remove(&Entry::new(id, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_find_their_slots_and_go() {
        let mut index = SlotIndex::default();
        let a = SocketId::new(3, 1, 1);
        let b = SocketId::new(3, 1, (1 << 40) - 1);
        index.insert(a, 0);
        index.insert(b, MAX_SLOTS - 1);
        assert_eq!(index.get(a), Some(0));
        assert_eq!(index.get(b), Some(MAX_SLOTS - 1));
        assert_eq!(index.get(SocketId::new(3, 1, 2)), None);
        index.insert(a, 7);
        assert_eq!(index.get(a), Some(7), "replaced");
        index.remove(a);
        assert_eq!(index.get(a), None);
        assert_eq!(index.get(b), Some(MAX_SLOTS - 1));
    }
}
