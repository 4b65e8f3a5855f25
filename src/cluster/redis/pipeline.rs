//! What a connection waits for, in the order it was written: Redis answers
//! each connection's commands in order, so the front entry takes the next
//! reply, and its deadline is the connection's.

use std::collections::VecDeque;
use std::time::Instant;

/// One command written and not yet answered.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// What the reply is for.
    pub(crate) what: T,
    /// When the bus took the command (for the latency metric).
    pub(crate) taken_at: Instant,
    /// When the connection is declared dead if this is still unanswered.
    pub(crate) deadline: Instant,
}

/// The in-flight queue of one connection.
#[derive(Debug)]
pub(crate) struct Pipeline<T> {
    entries: VecDeque<Entry<T>>,
}

impl<T> Pipeline<T> {
    pub(crate) fn new() -> Pipeline<T> {
        Pipeline {
            entries: VecDeque::new(),
        }
    }

    /// Appends a written command. Deadlines never decrease along the queue:
    /// one written behind a slower one (the handshake's, which has the
    /// connect timeout) gets that one's deadline if it is later, so the
    /// front's deadline is always the earliest.
    pub(crate) fn push(&mut self, what: T, taken_at: Instant, deadline: Instant) {
        let deadline = match self.entries.back() {
            Some(last) => deadline.max(last.deadline),
            None => deadline,
        };
        self.entries.push_back(Entry {
            what,
            taken_at,
            deadline,
        });
    }

    /// The entry the next reply answers; `None` means the reply was
    /// unsolicited (a protocol error).
    pub(crate) fn pop(&mut self) -> Option<Entry<T>> {
        self.entries.pop_front()
    }

    /// The entry the next reply will answer.
    pub(crate) fn front_mut(&mut self) -> Option<&mut Entry<T>> {
        self.entries.front_mut()
    }

    /// Every entry, front first.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry<T>> + '_ {
        self.entries.iter_mut()
    }

    /// The earliest deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.entries.front().map(|e| e.deadline)
    }

    /// Takes every entry (the connection is gone).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Entry<T>> + '_ {
        self.entries.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn replies_match_in_write_order() {
        let t0 = Instant::now();
        let mut p = Pipeline::new();
        for i in 0..1000u32 {
            p.push(i, t0, t0 + Duration::from_secs(1));
        }
        for i in 0..1000u32 {
            assert_eq!(p.pop().map(|e| e.what), Some(i));
        }
        assert!(
            p.pop().is_none(),
            "a reply with nothing in flight is unsolicited"
        );
    }

    #[test]
    fn the_front_deadline_is_the_earliest() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut p = Pipeline::new();
        // Handshake with a long connect timeout, then a short command.
        p.push("auth", t0, t0 + 10 * s);
        p.push("get", t0, t0 + s);
        assert_eq!(p.deadline(), Some(t0 + 10 * s));
        p.pop();
        // The command waits for the handshake's deadline, not less.
        assert_eq!(p.deadline(), Some(t0 + 10 * s));
        p.push("later", t0 + 20 * s, t0 + 21 * s);
        p.pop();
        assert_eq!(p.deadline(), Some(t0 + 21 * s));
    }

    #[test]
    fn drain_takes_everything() {
        let t0 = Instant::now();
        let mut p = Pipeline::new();
        p.push(1, t0, t0);
        p.push(2, t0, t0);
        assert_eq!(p.drain().map(|e| e.what).collect::<Vec<_>>(), vec![1, 2]);
        assert!(p.pop().is_none());
        assert_eq!(p.deadline(), None);
    }
}
