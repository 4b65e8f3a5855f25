//! The bus thread: one mio `Poll` for the two Redis connections and a
//! `Waker` for the handles' queues. Every turn it reads, checks deadlines,
//! takes queued work (commands only while under `max_in_flight`) and writes.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};

use super::commands::{answer, Command, Commands};
use super::conn::Conn;
use super::error::RedisError;
use super::events::EventSink;
use super::link::Driver;
use super::metrics::RedisMetrics;
use super::options::RedisOptions;
use super::pubsub::PubSub;
use super::url::RedisUrl;

pub(crate) const WAKER: Token = Token(0);
const COMMANDS: Token = Token(1);
const PUBSUB: Token = Token(2);

/// How often kept connection events are offered again while the receiver
/// is full.
const EVENT_RETRY: Duration = Duration::from_millis(10);

/// What the links need from the bus for one call.
pub(crate) struct Ctx<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) options: &'a RedisOptions,
    pub(crate) url: &'a RedisUrl,
    pub(crate) metrics: &'a RedisMetrics,
    pub(crate) events: &'a mut EventSink,
    pub(crate) now: Instant,
}

/// Subscription changes posted by handles.
pub(crate) enum Control {
    Subscribe(Vec<Vec<u8>>),
    Unsubscribe(Vec<Vec<u8>>),
    Barrier(u64),
}

/// The flags a handle and the bus share.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    /// Set by `shutdown()` or when the last handle is dropped.
    pub(crate) shutdown: AtomicBool,
    /// A wake is on its way: senders skip theirs (one wake per turn).
    pub(crate) woken: AtomicBool,
}

/// The bus's configuration and outputs, lent to the links as a [`Ctx`].
pub(crate) struct Env {
    pub(crate) url: RedisUrl,
    pub(crate) options: RedisOptions,
    pub(crate) metrics: Arc<RedisMetrics>,
    pub(crate) events: EventSink,
}

impl Env {
    fn ctx<'a>(&'a mut self, registry: &'a Registry) -> Ctx<'a> {
        Ctx {
            registry,
            options: &self.options,
            url: &self.url,
            metrics: &self.metrics,
            events: &mut self.events,
            now: Instant::now(),
        }
    }
}

pub(crate) struct Bus {
    pub(crate) poll: Poll,
    pub(crate) env: Env,
    pub(crate) commands_rx: Receiver<Command>,
    pub(crate) control_rx: Receiver<Control>,
    pub(crate) flags: Arc<Flags>,
}

impl Bus {
    /// Runs until shutdown or until every handle is gone.
    pub(crate) fn run(mut self) {
        let now = Instant::now();
        let options = &self.env.options;
        let mut commands = Driver {
            conn: Conn::new(COMMANDS, options, now),
            proto: Commands::new(),
        };
        let mut pubsub = Driver {
            conn: Conn::new(PUBSUB, options, now),
            proto: PubSub::new(now, options.pubsub_ping_interval),
        };
        let max_in_flight = options.max_in_flight;
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            let mut timeout = [commands.deadline(), pubsub.deadline()]
                .into_iter()
                .flatten()
                .min()
                .map(|d| d.saturating_duration_since(now));
            if self.env.events.has_pending() {
                timeout = Some(timeout.map_or(EVENT_RETRY, |t| t.min(EVENT_RETRY)));
            }
            if commands.wants_read() || pubsub.wants_read() {
                timeout = Some(Duration::ZERO);
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("Redis bus: poll failed, the client stops: {e}");
                break;
            }
            let (mut command_io, mut pubsub_io) = (commands.wants_read(), pubsub.wants_read());
            for event in events.iter() {
                match event.token() {
                    COMMANDS => command_io = true,
                    PUBSUB => pubsub_io = true,
                    // The waker: the queues are drained below every turn.
                    _ => {}
                }
            }
            let mut ctx = self.env.ctx(self.poll.registry());
            if command_io {
                commands.handle_io(&mut ctx);
            }
            if pubsub_io {
                pubsub.handle_io(&mut ctx);
            }
            commands.handle_timeout(&mut ctx);
            pubsub.handle_timeout(&mut ctx);

            // Clear before draining: a send after this point wakes us again.
            self.flags.woken.store(false, SeqCst);
            let mut handles_gone = false;
            loop {
                match self.control_rx.try_recv() {
                    Ok(Control::Subscribe(c)) => pubsub.subscribe(&mut ctx, c),
                    Ok(Control::Unsubscribe(c)) => pubsub.unsubscribe(&mut ctx, c),
                    Ok(Control::Barrier(token)) => pubsub.barrier(&mut ctx, token),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        handles_gone = true;
                        break;
                    }
                }
            }
            while commands.has_room(max_in_flight) {
                match self.commands_rx.try_recv() {
                    Ok(command) => commands.submit(&mut ctx, command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        handles_gone = true;
                        break;
                    }
                }
            }
            commands.flush(&mut ctx);
            pubsub.flush(&mut ctx);
            ctx.events.flush();
            ctx.events.wake();
            if handles_gone || self.flags.shutdown.load(SeqCst) {
                break;
            }
        }
        self.flags.shutdown.store(true, SeqCst);
        let mut ctx = self.env.ctx(self.poll.registry());
        commands.shut_down(&mut ctx);
        pubsub.close(&mut ctx);
        // Whatever is still queued gets its answer.
        while let Ok(command) = self.commands_rx.try_recv() {
            answer(command.reply, Err(RedisError::Shutdown), ctx.metrics);
        }
        ctx.events.wake();
    }
}
