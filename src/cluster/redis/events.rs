//! What the client tells its owner: [`RedisEvent`]s through a bounded
//! channel.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use super::error::RedisError;
use super::metrics::RedisMetrics;

/// Which of the client's two connections an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The connection for commands and PUBLISH.
    Commands,
    /// The dedicated SUBSCRIBE connection (RESP2 allows nothing else on it).
    PubSub,
}

/// An event from the bus thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisEvent {
    /// The link is up for the first time (after AUTH/SELECT; for
    /// [`Link::PubSub`], with every channel asked for so far subscribed).
    Connected(Link),
    /// The link is up again after it was lost. For [`Link::PubSub`] every
    /// current channel is subscribed again; messages published meanwhile are
    /// lost, so the owner should rewrite what it keeps in Redis.
    Reconnected(Link),
    /// The link was lost (it is being reconnected with backoff); commands in
    /// flight failed with `error`.
    Disconnected {
        /// The link.
        link: Link,
        /// Why.
        error: RedisError,
    },
    /// Every SUBSCRIBE and UNSUBSCRIBE asked before
    /// [`super::RedisHandle::barrier`]`(token)` is applied by Redis.
    Confirmed(u64),
    /// A message on a subscribed channel.
    Message {
        /// The channel.
        channel: Vec<u8>,
        /// What was published.
        payload: Vec<u8>,
    },
}

/// The receiving end of the events; it holds at most
/// `RedisOptions::event_capacity` of them.
pub type RedisEvents = Receiver<RedisEvent>;

/// Connection events kept while the receiver is full: only the latest few
/// matter, and a message channel full of messages says the owner is behind.
const MAX_PENDING: usize = 8;

/// The bus thread's side: messages are dropped (and counted) when the
/// receiver is full, connection events wait their turn.
pub(crate) struct EventSink {
    tx: SyncSender<RedisEvent>,
    pending: VecDeque<RedisEvent>,
    waker: Option<Arc<mio::Waker>>,
    posted: bool,
    gone: bool,
}

impl EventSink {
    pub(crate) fn new(tx: SyncSender<RedisEvent>, waker: Option<Arc<mio::Waker>>) -> EventSink {
        EventSink {
            tx,
            pending: VecDeque::new(),
            waker,
            posted: false,
            gone: false,
        }
    }

    /// A connection event: delivered now, or kept until there is room.
    pub(crate) fn control(&mut self, event: RedisEvent) {
        if self.gone {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(event);
        self.flush();
    }

    /// A pub/sub message: delivered now or dropped.
    pub(crate) fn message(&mut self, event: RedisEvent, metrics: &RedisMetrics) {
        if self.gone {
            return;
        }
        self.flush();
        if !self.pending.is_empty() {
            metrics.message_dropped();
            return;
        }
        match self.tx.try_send(event) {
            Ok(()) => self.posted = true,
            Err(TrySendError::Full(_)) => metrics.message_dropped(),
            Err(TrySendError::Disconnected(_)) => self.gone = true,
        }
    }

    /// Tries the kept connection events again.
    pub(crate) fn flush(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            match self.tx.try_send(event) {
                Ok(()) => self.posted = true,
                Err(TrySendError::Full(event)) => {
                    self.pending.push_front(event);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.gone = true;
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    /// Whether connection events are waiting for room.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Wakes the owner once if anything was posted since the last call.
    pub(crate) fn wake(&mut self) {
        if std::mem::take(&mut self.posted) {
            if let Some(waker) = &self.waker {
                // A failed wake leaves the events in the channel for the
                // owner's next turn.
                let _ = waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn msg(n: u8) -> RedisEvent {
        RedisEvent::Message {
            channel: b"c".to_vec(),
            payload: vec![n],
        }
    }

    #[test]
    fn messages_drop_when_full_connection_events_wait() {
        let metrics = RedisMetrics::default();
        let (tx, rx) = sync_channel(1);
        let mut sink = EventSink::new(tx, None);
        sink.message(msg(1), &metrics);
        sink.message(msg(2), &metrics);
        assert_eq!(metrics.snapshot().messages_dropped, 1);
        sink.control(RedisEvent::Reconnected(Link::PubSub));
        assert!(sink.has_pending());
        assert_eq!(rx.try_recv(), Ok(msg(1)));
        sink.flush();
        assert!(!sink.has_pending());
        assert_eq!(rx.try_recv(), Ok(RedisEvent::Reconnected(Link::PubSub)));
    }
}
