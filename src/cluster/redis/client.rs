//! [`RedisClient::start`] and the [`RedisHandle`] every thread uses.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use mio::{Poll, Waker};

use super::bus::{Bus, Control, Env, Flags, WAKER};
use super::codec::encode_command;
use super::commands::{Command, ReplyTo};
use super::error::{RedisError, StartError};
use super::events::{EventSink, RedisEvents};
use super::metrics::{RedisMetrics, RedisMetricsSnapshot};
use super::options::RedisOptions;
use super::reply::Reply;
use super::url::RedisUrl;

/// Starts the bus thread that owns the Redis connections.
#[derive(Debug)]
pub struct RedisClient;

impl RedisClient {
    /// Parses `url` (`redis://[[user]:password@]host[:port][/db]`), checks
    /// `options`, and starts the bus thread (`gmws-redis`), which connects
    /// both links at once and keeps reconnecting them with backoff. Returns
    /// the handle and the receiver of [`super::RedisEvent`]s (connection
    /// changes and pub/sub messages). Nothing here waits for Redis: an
    /// unreachable server is reported through events and errors.
    pub fn start(
        url: &str,
        options: RedisOptions,
    ) -> Result<(RedisHandle, RedisEvents), StartError> {
        let url = RedisUrl::parse(url).map_err(StartError::Url)?;
        options.validate().map_err(StartError::Options)?;
        let poll = Poll::new().map_err(StartError::Poll)?;
        let waker = Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?;
        let (commands_tx, commands_rx) = sync_channel(options.queue_capacity);
        let (control_tx, control_rx) = sync_channel(options.control_capacity);
        let (events_tx, events_rx) = sync_channel(options.event_capacity);
        let metrics = Arc::new(RedisMetrics::default());
        let flags = Arc::new(Flags::default());
        let env = Env {
            url,
            events: EventSink::new(events_tx, options.events_waker.clone()),
            options,
            metrics: Arc::clone(&metrics),
        };
        let bus = Bus {
            poll,
            env,
            commands_rx,
            control_rx,
            flags: Arc::clone(&flags),
        };
        std::thread::Builder::new()
            .name("gmws-redis".into())
            .spawn(move || bus.run())
            .map_err(StartError::Thread)?;
        let shared = Shared {
            commands_tx,
            control_tx,
            waker,
            flags,
            metrics,
        };
        Ok((
            RedisHandle {
                shared: Arc::new(shared),
            },
            events_rx,
        ))
    }
}

struct Shared {
    commands_tx: SyncSender<Command>,
    control_tx: SyncSender<Control>,
    waker: Waker,
    flags: Arc<Flags>,
    metrics: Arc<RedisMetrics>,
}

impl Shared {
    fn wake(&self) {
        if !self.flags.woken.swap(true, SeqCst) {
            // A failed wake (the poll is gone) means the bus is gone too;
            // the next send reports it.
            let _ = self.waker.wake();
        }
    }
}

// The last handle gone: the bus thread closes its connections and ends.
impl Drop for Shared {
    fn drop(&mut self) {
        self.flags.shutdown.store(true, SeqCst);
        let _ = self.waker.wake();
    }
}

/// The way to Redis from any thread: `Send + Sync + Clone`, and no method
/// ever waits for Redis or for the bus thread. Work goes through bounded
/// queues; a full queue is [`RedisError::QueueFull`], returned at once.
#[derive(Clone)]
pub struct RedisHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle")
            .field("shut_down", &self.shared.flags.shutdown.load(SeqCst))
            .finish()
    }
}

impl RedisHandle {
    /// Sends a command (`["SET", "k", "v"]`): it is encoded on this thread
    /// and queued for the bus, which pipelines it. `reply_to` is called once,
    /// on the bus thread, with the reply or the error (an error reply,
    /// timeout, lost connection, not connected); it must not block: post the
    /// result to a channel and wake your loop. On `Err` nothing was queued
    /// and `reply_to` is dropped without being called.
    pub fn command<I, A, F>(&self, args: I, reply_to: F) -> Result<(), RedisError>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
        F: FnOnce(Result<Reply, RedisError>) + Send + 'static,
    {
        let args: Vec<A> = args.into_iter().collect();
        if args.is_empty() {
            return Err(RedisError::EmptyCommand);
        }
        let mut bytes = Vec::new();
        encode_command(&args, &mut bytes);
        self.post(Command {
            bytes,
            reply: ReplyTo::Callback(Box::new(reply_to)),
        })
    }

    /// PUBLISH `payload` on `channel`. Fire and forget: a failure after
    /// queueing (timeout, lost connection, error reply) is counted in
    /// `publish_failures`; at most once, like every cross-node delivery.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> Result<(), RedisError> {
        let mut bytes = Vec::new();
        encode_command(&[b"PUBLISH", channel, payload], &mut bytes);
        self.post(Command {
            bytes,
            reply: ReplyTo::Publish,
        })
    }

    /// Adds channels to the subscribed set; messages on them arrive as
    /// [`super::RedisEvent::Message`]. Channels already in the set are
    /// ignored. The set outlives connections: it is subscribed again on
    /// every reconnect.
    pub fn subscribe<I, A>(&self, channels: I) -> Result<(), RedisError>
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.control(Control::Subscribe(
            channels.into_iter().map(Into::into).collect(),
        ))
    }

    /// Removes channels from the subscribed set (unknown ones are ignored).
    pub fn unsubscribe<I, A>(&self, channels: I) -> Result<(), RedisError>
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.control(Control::Unsubscribe(
            channels.into_iter().map(Into::into).collect(),
        ))
    }

    /// Asks for [`super::RedisEvent::Confirmed`]`(token)` once Redis has
    /// applied every subscribe and unsubscribe asked before this call (a
    /// PING on the pub/sub link behind them). Not reported if the link is
    /// down or lost meanwhile: then `Connected`/`Reconnected`, which come
    /// only once every channel of the set is subscribed, take its place.
    pub fn barrier(&self, token: u64) -> Result<(), RedisError> {
        self.control(Control::Barrier(token))
    }

    /// Asks the bus thread to stop: commands in flight or queued fail with
    /// [`RedisError::Shutdown`], the connections close, the events receiver
    /// disconnects. Returns at once. Dropping the last handle does the same.
    pub fn shutdown(&self) {
        self.shared.flags.shutdown.store(true, SeqCst);
        let _ = self.shared.waker.wake();
    }

    /// The client's counters now.
    pub fn metrics(&self) -> RedisMetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    fn post(&self, command: Command) -> Result<(), RedisError> {
        self.send(&self.shared.commands_tx, command)
    }

    fn control(&self, control: Control) -> Result<(), RedisError> {
        self.send(&self.shared.control_tx, control)
    }

    fn send<T>(&self, queue: &SyncSender<T>, item: T) -> Result<(), RedisError> {
        if self.shared.flags.shutdown.load(SeqCst) {
            return Err(RedisError::Shutdown);
        }
        match queue.try_send(item) {
            Ok(()) => {
                self.shared.wake();
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.shared.metrics.queue_full();
                Err(RedisError::QueueFull)
            }
            Err(TrySendError::Disconnected(_)) => Err(RedisError::Shutdown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn handle_is_send_sync_clone() {
        assert_send_sync_clone::<RedisHandle>();
    }

    #[test]
    fn start_rejects_bad_urls_and_options() {
        assert!(matches!(
            RedisClient::start("http://x", RedisOptions::default()),
            Err(StartError::Url(_))
        ));
        let o = RedisOptions {
            queue_capacity: 0,
            ..RedisOptions::default()
        };
        assert!(matches!(
            RedisClient::start("redis://127.0.0.1", o),
            Err(StartError::Options(_))
        ));
    }

    #[test]
    fn empty_commands_are_refused() {
        // Port 1: nothing listens; the command is refused before that matters.
        let (redis, _events) =
            match RedisClient::start("redis://127.0.0.1:1", RedisOptions::default()) {
                Ok(started) => started,
                Err(e) => panic!("start: {e}"),
            };
        let none: [&str; 0] = [];
        assert_eq!(redis.command(none, |_| {}), Err(RedisError::EmptyCommand));
        redis.shutdown();
        assert_eq!(redis.command(["PING"], |_| {}), Err(RedisError::Shutdown));
    }
}
