//! A hashed hierarchical timing wheel.
//!
//! [`TimerWheel`] keeps timers keyed by an absolute deadline measured in
//! abstract *ticks* (the server uses 1 tick = 1 ms since the event loop
//! started). It is pure: it never reads a clock and does no I/O; the caller
//! passes the current tick to [`TimerWheel::poll`] and uses
//! [`TimerWheel::next_expiration`] as its poll timeout.
//!
//! # Algorithm
//!
//! The design follows the timer wheel of tokio / tokio-util:
//!
//! * There are 6 levels of 64 slots each. A slot on level `L` spans
//!   `64^L` ticks, so a level spans `64^(L+1)` ticks and the whole wheel
//!   covers `64^6 = 2^36` ticks (about 795 days at 1 ms per tick).
//! * A timer is placed on the level given by the highest bit in which its
//!   deadline differs from the wheel's current time (`elapsed`), and in the
//!   slot given by the deadline's 6-bit digit for that level. Timers near
//!   `elapsed` therefore live on level 0 with one exact tick per slot, far
//!   ones on higher, coarser levels.
//! * Each level has an `occupied: u64` bitmap, so the next non-empty slot is
//!   found with a rotate and a `trailing_zeros`. The lowest non-empty level
//!   always holds the earliest expiration; for levels above 0 that is the
//!   *start* of the slot, which may be earlier than the timers' deadlines.
//! * When time reaches the start of an occupied slot on a level above 0, the
//!   slot is emptied and its timers *cascade*: each one is either fired (its
//!   deadline has been reached) or re-inserted relative to the new time,
//!   which always puts it on a lower level. Level-0 slots hold timers whose
//!   deadline is exactly the slot's tick, so they simply fire.
//! * Deadlines more than `2^36 - 1` ticks ahead are clamped to the furthest
//!   position of the top level and re-inserted (not fired) when that slot is
//!   reached, so they never fire early; such a timer is revisited about once
//!   per `2^36` ticks until it is in range.
//! * Timers whose deadline is not after `elapsed` go to a *pending* list and
//!   fire on the next poll, before anything else, ordered by deadline.
//!
//! Entries live in a [`Slab`]; every slot (and the pending list) is an
//! intrusive circular doubly linked list threaded through the slab by `u32`
//! indices, and the wheel itself only stores a fixed array of list heads.
//! Insert and cancel are therefore O(1) and allocation free (apart from the
//! slab growing). A [`TimerId`] carries the slab key plus a generation
//! number, so a handle to a timer that already fired or was cancelled
//! cancels nothing even after its slab key was reused.
//!
//! Within one poll, timers are reported in non-decreasing deadline order.
//! Timers with equal deadlines come in insertion order, unless one of them
//! was inserted beyond the wheel's range (and so was clamped).

use std::fmt;
use std::num::NonZeroU32;

use slab::Slab;

/// Number of levels in the wheel.
const LEVELS: usize = 6;
/// log2 of the number of slots per level.
const SLOT_BITS: usize = 6;
/// Number of slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Mask selecting one level digit.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Number of ticks covered by the whole wheel (`64^6 = 2^36`).
const MAX_DURATION: u64 = 1 << (SLOT_BITS * LEVELS);
/// Index of the pending list in [`TimerWheel::heads`].
const PENDING: usize = LEVELS * SLOTS;
/// Number of lists: one per slot, plus the pending list.
const LISTS: usize = PENDING + 1;
/// Sentinel for "no entry" in list heads.
const NIL: u32 = u32::MAX;

/// Handle to a scheduled timer, used to cancel it.
///
/// It contains the timer's slab key and a generation number, so a stale
/// handle (to a timer that already fired or was cancelled) cancels nothing,
/// even when the key has been reused by a newer timer. (The generation is a
/// wrapping 32-bit insertion counter, so a stale handle could only match
/// again after 2^32 further insertions that land on the same key. It is never
/// zero, so an `Option<TimerId>` takes 8 bytes: connections hold three.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: u32,
    generation: NonZeroU32,
}

/// One scheduled timer, stored in the slab.
struct Entry<T> {
    /// The requested deadline (never clamped).
    deadline: u64,
    /// Previous entry in the circular list (itself if alone).
    prev: u32,
    /// Next entry in the circular list (itself if alone).
    next: u32,
    /// Generation handed out in the [`TimerId`].
    generation: NonZeroU32,
    /// Which list the entry is in: `level * SLOTS + slot`, or [`PENDING`].
    list: u16,
    /// The caller's payload.
    value: T,
}

/// A hashed hierarchical timing wheel holding timers with payloads of type `T`.
///
/// Time is an abstract `u64` tick count supplied by the caller; see the
/// [module documentation](self) for the algorithm.
pub struct TimerWheel<T> {
    /// The tick up to which the wheel has been advanced.
    elapsed: u64,
    /// Storage for all live timers.
    slab: Slab<Entry<T>>,
    /// Head of each slot's list (and of the pending list), or [`NIL`].
    heads: [u32; LISTS],
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// Generation for the next inserted timer.
    next_generation: NonZeroU32,
    /// Reused buffer for sorting the pending list on poll.
    scratch: Vec<(u64, u32)>,
}

/// Ticks spanned by one slot of `level`.
fn slot_range(level: usize) -> u64 {
    1 << (SLOT_BITS * level)
}

/// Ticks spanned by all of `level`.
fn level_range(level: usize) -> u64 {
    slot_range(level + 1)
}

/// The level on which a timer due at `when` is stored, seen from `elapsed`.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = ((elapsed ^ when) | SLOT_MASK).min(MAX_DURATION - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    significant / SLOT_BITS
}

/// The slot of `level` in which a timer due at `when` is stored.
fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (SLOT_BITS * level)) & SLOT_MASK) as usize
}

impl<T> TimerWheel<T> {
    /// Creates an empty wheel whose current time is tick 0.
    pub fn new() -> Self {
        Self::with_start(0)
    }

    /// Creates an empty wheel whose current time is tick `now`.
    pub fn with_start(now: u64) -> Self {
        TimerWheel {
            elapsed: now,
            slab: Slab::new(),
            heads: [NIL; LISTS],
            occupied: [0; LEVELS],
            next_generation: NonZeroU32::MIN,
            scratch: Vec::new(),
        }
    }

    /// Schedules `value` to fire at tick `deadline` and returns its handle.
    ///
    /// A deadline that is not after [`elapsed`](Self::elapsed) is never
    /// dropped: the timer fires on the next [`poll`](Self::poll). Deadlines
    /// beyond the wheel's range are supported and never fire early.
    ///
    /// # Panics
    ///
    /// Panics if more than `u32::MAX - 1` timers are alive at once.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerId {
        let generation = self.next_generation;
        self.next_generation =
            NonZeroU32::new(generation.get().wrapping_add(1)).unwrap_or(NonZeroU32::MIN);
        let vacant = self.slab.vacant_entry();
        let key = match u32::try_from(vacant.key()) {
            Ok(key) if key != NIL => key,
            _ => panic!("TimerWheel: too many live timers"),
        };
        vacant.insert(Entry {
            deadline,
            prev: key,
            next: key,
            generation,
            list: 0,
            value,
        });
        self.schedule(key, deadline);
        TimerId { key, generation }
    }

    /// Cancels the timer `id` and returns its payload.
    ///
    /// Returns `None` (and changes nothing) if the timer already fired, was
    /// already cancelled, or `id` is otherwise stale. O(1).
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        match self.slab.get(id.key as usize) {
            Some(entry) if entry.generation == id.generation => {}
            _ => return None,
        }
        self.unlink(id.key);
        Some(self.slab.remove(id.key as usize).value)
    }

    /// Advances the wheel to tick `now` and appends every timer whose
    /// deadline is `<= now` to `out`, together with its handle.
    ///
    /// Timers are appended in non-decreasing deadline order (ties in
    /// insertion order, except for timers inserted more than `2^36 - 2^30`
    /// ticks ahead). A timer never fires before its deadline, and every
    /// timer with a deadline `<= now` fires in this call. If `now` is before
    /// [`elapsed`](Self::elapsed) time does not go backwards, but timers
    /// inserted with past deadlines still fire.
    ///
    /// The cost is proportional to the number of fired timers plus the
    /// number of occupied slots passed.
    pub fn poll(&mut self, now: u64, out: &mut Vec<(TimerId, T)>) {
        self.fire_pending(out);
        while let Some((level, slot, deadline)) = self.next_wheel_expiration() {
            if deadline > now {
                break;
            }
            self.process_slot(level, slot, deadline, out);
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// Returns the earliest tick at which [`poll`](Self::poll) could fire a
    /// timer, or `None` if the wheel is empty.
    ///
    /// This is never later than the earliest deadline, but may be earlier
    /// (the start of a coarse slot whose timers must cascade first); polling
    /// at that tick may then fire nothing, after which this returns a later
    /// tick. If timers with past deadlines are waiting this returns
    /// [`elapsed`](Self::elapsed).
    pub fn next_expiration(&self) -> Option<u64> {
        if self.heads[PENDING] != NIL {
            return Some(self.elapsed);
        }
        self.next_wheel_expiration()
            .map(|(_, _, deadline)| deadline)
    }

    /// Returns the number of scheduled timers.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Returns `true` if no timers are scheduled.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Returns the wheel's current time: the largest tick passed to
    /// [`poll`](Self::poll), or the start tick if it was never polled later.
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Puts the (unlinked) entry `key` into the list matching `deadline`.
    fn schedule(&mut self, key: u32, deadline: u64) {
        let list = if deadline <= self.elapsed {
            PENDING
        } else {
            // Clamp to the end of the top level's furthest slot. That slot is
            // the one just before the current top-level slot, so the current
            // top-level slot never holds next-rotation entries and the
            // rotate-and-scan in `next_wheel_expiration` stays ordered.
            let top_slot_start = self.elapsed & !(slot_range(LEVELS - 1) - 1);
            let placed = deadline.min(top_slot_start.saturating_add(MAX_DURATION - 1));
            let level = level_for(self.elapsed, placed);
            level * SLOTS + slot_for(placed, level)
        };
        self.push_back(list, key);
    }

    /// Appends the (unlinked) entry `key` to the tail of `list`.
    fn push_back(&mut self, list: usize, key: u32) {
        let head = self.heads[list];
        let (prev, next) = if head == NIL {
            self.heads[list] = key;
            (key, key)
        } else {
            let tail = self.slab[head as usize].prev;
            self.slab[tail as usize].next = key;
            self.slab[head as usize].prev = key;
            (tail, head)
        };
        let entry = &mut self.slab[key as usize];
        entry.prev = prev;
        entry.next = next;
        entry.list = list as u16;
        if list < PENDING {
            self.occupied[list / SLOTS] |= 1 << (list % SLOTS);
        }
    }

    /// Removes the entry `key` from the list it is in.
    fn unlink(&mut self, key: u32) {
        let entry = &self.slab[key as usize];
        let (prev, next, list) = (entry.prev, entry.next, entry.list as usize);
        if next == key {
            debug_assert_eq!(self.heads[list], key);
            self.clear_list(list);
        } else {
            self.slab[prev as usize].next = next;
            self.slab[next as usize].prev = prev;
            if self.heads[list] == key {
                self.heads[list] = next;
            }
        }
    }

    /// Marks `list` empty and returns its former head (or [`NIL`]). The
    /// detached entries still form a circle that the caller must re-home.
    fn clear_list(&mut self, list: usize) -> u32 {
        if list < PENDING {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
        std::mem::replace(&mut self.heads[list], NIL)
    }

    /// Removes the entry `key` and appends it to `out`.
    fn fire(&mut self, key: u32, out: &mut Vec<(TimerId, T)>) {
        let entry = self.slab.remove(key as usize);
        let id = TimerId {
            key,
            generation: entry.generation,
        };
        out.push((id, entry.value));
    }

    /// Fires every entry of the pending list, ordered by deadline.
    fn fire_pending(&mut self, out: &mut Vec<(TimerId, T)>) {
        let first = self.clear_list(PENDING);
        if first == NIL {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut key = first;
        loop {
            let entry = &self.slab[key as usize];
            scratch.push((entry.deadline, key));
            key = entry.next;
            if key == first {
                break;
            }
        }
        // Stable sort: equal deadlines keep insertion order.
        scratch.sort_by_key(|&(deadline, _)| deadline);
        for &(_, key) in &scratch {
            self.fire(key, out);
        }
        scratch.clear();
        self.scratch = scratch;
    }

    /// The earliest occupied slot as `(level, slot, start tick)`, if any.
    fn next_wheel_expiration(&self) -> Option<(usize, usize, u64)> {
        let (level, &occupied) = self
            .occupied
            .iter()
            .enumerate()
            .find(|&(_, &occupied)| occupied != 0)?;
        let slot_range = slot_range(level);
        let level_range = level_range(level);
        let now_slot = (self.elapsed / slot_range) & SLOT_MASK;
        let distance = u64::from(occupied.rotate_right(now_slot as u32).trailing_zeros());
        let slot = ((now_slot + distance) & SLOT_MASK) as usize;
        let level_start = self.elapsed & !(level_range - 1);
        let mut deadline = level_start + slot as u64 * slot_range;
        if deadline <= self.elapsed {
            // Only the top level wraps: its slot lies in the next rotation.
            debug_assert_eq!(level, LEVELS - 1);
            deadline = deadline.saturating_add(level_range);
        }
        Some((level, slot, deadline))
    }

    /// Advances to `deadline`, the start of `slot` on `level`, and fires or
    /// cascades every entry of that slot.
    fn process_slot(
        &mut self,
        level: usize,
        slot: usize,
        deadline: u64,
        out: &mut Vec<(TimerId, T)>,
    ) {
        debug_assert!(deadline > self.elapsed);
        self.elapsed = deadline;
        let first = self.clear_list(level * SLOTS + slot);
        let mut key = first;
        while key != NIL {
            let entry = &self.slab[key as usize];
            let (next, when) = (entry.next, entry.deadline);
            if when <= deadline {
                self.fire(key, out);
            } else {
                debug_assert!(level > 0);
                self.schedule(key, when);
            }
            key = if next == first { NIL } else { next };
        }
    }
}

impl<T> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len())
            .field("next_expiration", &self.next_expiration())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Polls at `now` and returns the fired payloads.
    fn poll_values<T>(wheel: &mut TimerWheel<T>, now: u64) -> Vec<T> {
        let mut out = Vec::new();
        wheel.poll(now, &mut out);
        out.into_iter().map(|(_, value)| value).collect()
    }

    #[test]
    fn insert_poll_ordering() {
        let mut wheel = TimerWheel::new();
        for (i, deadline) in [50u64, 3, 7, 3, 1000, 64, 63, 65, 4096].iter().enumerate() {
            wheel.insert(*deadline, (*deadline, i));
        }
        assert_eq!(wheel.len(), 9);
        assert_eq!(poll_values(&mut wheel, 2), vec![]);
        assert_eq!(poll_values(&mut wheel, 3), vec![(3, 1), (3, 3)]);
        assert_eq!(
            poll_values(&mut wheel, 64),
            vec![(7, 2), (50, 0), (63, 6), (64, 5)]
        );
        assert_eq!(
            poll_values(&mut wheel, 10_000),
            vec![(65, 7), (1000, 4), (4096, 8)]
        );
        assert!(wheel.is_empty());
        assert_eq!(wheel.elapsed(), 10_000);
        assert_eq!(wheel.next_expiration(), None);
    }

    #[test]
    fn cancel_removes_timer() {
        let mut wheel = TimerWheel::new();
        let a = wheel.insert(10, "a");
        let b = wheel.insert(10, "b");
        let c = wheel.insert(10_000, "c");
        assert_eq!(wheel.cancel(a), Some("a"));
        assert_eq!(wheel.cancel(a), None);
        assert_eq!(wheel.cancel(c), Some("c"));
        assert_eq!(wheel.len(), 1);
        let mut out = Vec::new();
        wheel.poll(20_000, &mut out);
        assert_eq!(out, vec![(b, "b")]);
        assert_eq!(wheel.cancel(b), None);
        assert!(wheel.is_empty());
    }

    #[test]
    fn stale_id_cancels_nothing_after_reuse() {
        let mut wheel = TimerWheel::new();
        let old = wheel.insert(5, 1);
        assert_eq!(poll_values(&mut wheel, 5), vec![1]);
        let new = wheel.insert(10, 2);
        assert_eq!(old.key, new.key, "slab key is reused");
        assert_ne!(old, new);
        assert_eq!(wheel.cancel(old), None);
        assert_eq!(wheel.len(), 1);
        let cancelled = wheel.insert(20, 3);
        assert_eq!(wheel.cancel(cancelled), Some(3));
        let reused = wheel.insert(30, 4);
        assert_eq!(cancelled.key, reused.key);
        assert_eq!(wheel.cancel(cancelled), None);
        assert_eq!(poll_values(&mut wheel, 100), vec![2, 4]);
    }

    #[test]
    fn past_deadline_fires_next_poll() {
        let mut wheel = TimerWheel::with_start(1000);
        wheel.insert(1500, "later");
        wheel.insert(1000, "now");
        wheel.insert(5, "past");
        wheel.insert(999, "recent");
        assert_eq!(wheel.next_expiration(), Some(1000));
        // Polling with an earlier time still fires due timers, in order.
        assert_eq!(poll_values(&mut wheel, 10), vec!["past", "recent", "now"]);
        assert_eq!(wheel.elapsed(), 1000);
        // 1500 sits in the level-1 slot starting at 1472.
        assert_eq!(wheel.next_expiration(), Some(1472));
        wheel.insert(0, "zero");
        assert_eq!(poll_values(&mut wheel, 1000), vec!["zero"]);
        assert_eq!(poll_values(&mut wheel, 1500), vec!["later"]);
    }

    #[test]
    fn far_future_deadlines_across_levels() {
        let mut deadlines = Vec::new();
        for level in 1..=LEVELS as u32 {
            let base = 64u64.pow(level);
            deadlines.extend([base - 1, base, base + 1, base * 3 + 17]);
        }
        deadlines.extend([MAX_DURATION * 3 + 7, (1 << 40) + 12_345, (1 << 42) - 1]);
        for start in [0u64, 1, 63, MAX_DURATION - 1, 123_456_789] {
            let mut wheel = TimerWheel::with_start(start);
            for &d in &deadlines {
                wheel.insert(start + d, start + d);
            }
            let mut sorted: Vec<u64> = deadlines.iter().map(|d| start + d).collect();
            sorted.sort_unstable();
            for &d in &sorted {
                assert!(poll_values(&mut wheel, d - 1).is_empty(), "early at {d}");
                assert_eq!(poll_values(&mut wheel, d), vec![d]);
            }
            assert!(wheel.is_empty());
        }
    }

    #[test]
    fn extreme_ticks_do_not_overflow() {
        let mut wheel = TimerWheel::with_start(u64::MAX - 100);
        wheel.insert(u64::MAX, 2);
        wheel.insert(u64::MAX - 50, 1);
        assert!(wheel.next_expiration().is_some_and(|t| t <= u64::MAX - 50));
        assert_eq!(poll_values(&mut wheel, u64::MAX), vec![1, 2]);
        wheel.insert(u64::MAX, 3);
        assert_eq!(poll_values(&mut wheel, u64::MAX), vec![3]);

        let mut wheel = TimerWheel::new();
        wheel.insert(u64::MAX, ());
        assert!(poll_values(&mut wheel, 1 << 40).is_empty());
        assert_eq!(wheel.len(), 1);
        assert!(wheel.next_expiration().is_some());
    }

    /// Drives the wheel the way the server does: sleep until
    /// `next_expiration`, then poll at exactly that tick.
    #[test]
    fn next_expiration_drives_exact_firing() {
        let mut wheel = TimerWheel::new();
        let mut state = 0x1234_5678_u64;
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let deadline = (state >> 33) % 300_000 + if state & 1 == 0 { 0 } else { 1 << 30 };
            wheel.insert(deadline, deadline);
        }
        let mut fired = 0;
        let mut wakeups = 0;
        while let Some(t) = wheel.next_expiration() {
            assert!(t >= wheel.elapsed());
            let mut out = Vec::new();
            wheel.poll(t, &mut out);
            wakeups += 1;
            for (_, deadline) in out {
                assert_eq!(deadline, t, "fired exactly at its deadline");
                fired += 1;
            }
        }
        assert_eq!(fired, 2000);
        // Each timer cascades at most once per level.
        assert!(wakeups <= 2000 * LEVELS, "wakeups {wakeups}");
    }

    #[test]
    fn next_expiration_never_after_earliest_deadline() {
        let mut wheel = TimerWheel::with_start(77);
        assert_eq!(wheel.next_expiration(), None);
        let mut state = 42u64;
        let mut deadlines = Vec::new();
        for i in 0..500u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let deadline = 78 + (state >> 20) % (1u64 << (i % 40));
            deadlines.push(deadline);
            wheel.insert(deadline, ());
            let earliest = deadlines.iter().copied().min().unwrap_or(u64::MAX);
            let next = wheel.next_expiration().unwrap_or(u64::MAX);
            assert!(next <= earliest && next > wheel.elapsed());
        }
    }

    #[test]
    fn optional_handle_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Option<TimerId>>(), 8);
    }

    #[test]
    fn generations_skip_zero_when_they_wrap() {
        let mut wheel: TimerWheel<u8> = TimerWheel::new();
        wheel.next_generation = NonZeroU32::MAX;
        let last = wheel.insert(5, 1);
        let wrapped = wheel.insert(5, 2);
        assert_eq!(last.generation, NonZeroU32::MAX);
        assert_eq!(wrapped.generation, NonZeroU32::MIN);
        assert_eq!(wheel.cancel(wrapped), Some(2));
        assert_eq!(wheel.cancel(last), Some(1));
        assert_eq!(wheel.cancel(last), None);
    }

    #[test]
    fn hundred_thousand_timers() {
        const N: usize = 100_000;
        let mut wheel = TimerWheel::new();
        let mut state = 7u64;
        let mut ids = Vec::with_capacity(N);
        let mut deadlines = Vec::with_capacity(N);
        for i in 0..N {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let deadline = 1 + (state >> 24) % 2_000_000;
            ids.push(wheel.insert(deadline, i));
            deadlines.push(deadline);
        }
        assert_eq!(wheel.len(), N);
        let mut cancelled = 0;
        for id in ids.iter().step_by(3) {
            assert!(wheel.cancel(*id).is_some());
            cancelled += 1;
        }
        let mut fired = vec![false; N];
        let mut out = Vec::new();
        let (mut prev_now, mut last_deadline) = (0, 0);
        for now in (0..=2_001_000u64).step_by(997) {
            out.clear();
            wheel.poll(now, &mut out);
            for &(id, i) in &out {
                let d = deadlines[i];
                assert!(d <= now && d > prev_now && d >= last_deadline);
                assert_eq!(ids[i], id);
                assert!(i % 3 != 0 && !fired[i]);
                fired[i] = true;
                last_deadline = d;
            }
            prev_now = now;
        }
        assert!(wheel.is_empty());
        assert_eq!(fired.iter().filter(|&&f| f).count(), N - cancelled);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Insert with deadline `elapsed + offset`.
        Insert(u64),
        /// Insert with deadline `elapsed - back`.
        InsertPast(u64),
        /// Cancel the n-th id ever issued (mod count): live or stale.
        Cancel(usize),
        /// Poll at `elapsed + advance`.
        Poll(u64),
        /// Poll at `elapsed - back`.
        PollBack(u64),
    }

    fn offset() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..70,
            0u64..5_000,
            0u64..300_000,
            0u64..(1 << 37),
            Just(MAX_DURATION - 1),
            Just(MAX_DURATION),
            MAX_DURATION..MAX_DURATION * 3,
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => offset().prop_map(Op::Insert),
            1 => (0u64..100).prop_map(Op::InsertPast),
            3 => any::<usize>().prop_map(Op::Cancel),
            4 => prop_oneof![0u64..3, 0u64..100, 0u64..10_000, 0u64..1_000_000, 0u64..(1 << 38)]
                .prop_map(Op::Poll),
            1 => (0u64..100).prop_map(Op::PollBack),
        ]
    }

    proptest! {
        #[test]
        fn matches_model(start in prop_oneof![Just(0u64), 0u64..(1 << 40), (u64::MAX - (1 << 42))..=u64::MAX],
                         ops in proptest::collection::vec(op(), 1..200)) {
            let mut wheel = TimerWheel::with_start(start);
            // Live timers: id -> (sequence number, deadline, within range).
            let mut live: HashMap<TimerId, (u64, u64, bool)> = HashMap::new();
            let mut issued: Vec<TimerId> = Vec::new();
            let mut seq = 0u64;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(_) | Op::InsertPast(_) => {
                        let deadline = match op {
                            Op::Insert(off) => wheel.elapsed().saturating_add(off),
                            Op::InsertPast(back) => wheel.elapsed().saturating_sub(back),
                            _ => unreachable!(),
                        };
                        // Surely not clamped, so ties keep insertion order.
                        let near = deadline.saturating_sub(wheel.elapsed())
                            < MAX_DURATION - slot_range(LEVELS - 1);
                        let id = wheel.insert(deadline, seq);
                        prop_assert!(live.insert(id, (seq, deadline, near)).is_none());
                        issued.push(id);
                        seq += 1;
                    }
                    Op::Cancel(n) => {
                        if issued.is_empty() {
                            continue;
                        }
                        let id = issued[n % issued.len()];
                        let expected = live.remove(&id).map(|(s, _, _)| s);
                        prop_assert_eq!(wheel.cancel(id), expected);
                    }
                    Op::Poll(_) | Op::PollBack(_) => {
                        let now = match op {
                            Op::Poll(adv) => wheel.elapsed().saturating_add(adv),
                            Op::PollBack(back) => wheel.elapsed().saturating_sub(back),
                            _ => unreachable!(),
                        };
                        let reached = now.max(wheel.elapsed());
                        out.clear();
                        wheel.poll(now, &mut out);
                        prop_assert_eq!(wheel.elapsed(), reached);
                        let mut last_deadline = 0;
                        let mut last_near: Option<(u64, u64)> = None;
                        for &(id, s) in &out {
                            let (model_seq, deadline, near) = live.remove(&id)
                                .ok_or_else(|| TestCaseError::fail("fired twice or cancelled"))?;
                            prop_assert_eq!(model_seq, s);
                            prop_assert!(deadline <= reached, "fired early");
                            prop_assert!(deadline >= last_deadline, "out of order");
                            last_deadline = deadline;
                            if near {
                                prop_assert!(Some((deadline, s)) > last_near, "tie order");
                                last_near = Some((deadline, s));
                            }
                        }
                        prop_assert!(live.values().all(|&(_, d, _)| d > reached), "due timer not fired");
                    }
                }
                prop_assert_eq!(wheel.len(), live.len());
                let earliest = live.values().map(|&(_, d, _)| d.max(wheel.elapsed())).min();
                match (wheel.next_expiration(), earliest) {
                    (None, None) => {}
                    (Some(next), Some(earliest)) => {
                        prop_assert!(next <= earliest && next >= wheel.elapsed());
                    }
                    (next, earliest) => prop_assert!(false, "next {:?} vs {:?}", next, earliest),
                }
            }
            // Drain: everything fires exactly once by the latest deadline.
            let last = live.values().map(|&(_, d, _)| d).max().unwrap_or(0);
            out.clear();
            wheel.poll(last, &mut out);
            for (id, _) in &out {
                prop_assert!(live.remove(id).is_some());
            }
            prop_assert!(live.is_empty() && wheel.is_empty());
        }
    }
}
