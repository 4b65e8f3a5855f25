//! The pub/sub link: a dedicated connection (RESP2 allows only SUBSCRIBE,
//! UNSUBSCRIBE and PING on it once subscribed). It keeps the set of channels
//! the owner asked for; on every (re)connect it subscribes all of them again
//! in batches, then a PING: its answer means every channel is subscribed, and
//! only then is `Connected`/`Reconnected` reported.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::bus::Ctx;
use super::codec::{encode_command, CodecError};
use super::conn::Conn;
use super::error::RedisError;
use super::events::{Link, RedisEvent};
use super::link::{announce_up, Driver, Protocol};
use super::pipeline::Pipeline;
use super::reply::Reply;

/// What the link waits for, in order.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Auth,
    /// This many `subscribe` confirmations.
    Subscribe(usize),
    /// This many `unsubscribe` confirmations.
    Unsubscribe(usize),
    /// A PONG; `announce`: the handshake's, whose answer means up.
    Pong {
        announce: bool,
    },
    /// The PONG of a barrier: every (un)subscription written before it is
    /// applied; reported as [`RedisEvent::Confirmed`].
    Barrier(u64),
}

/// What one reply on the link is.
#[derive(Debug, PartialEq, Eq)]
enum Push {
    Message { channel: Vec<u8>, payload: Vec<u8> },
    Subscribed,
    Unsubscribed,
    Pong,
    Ok,
    Error(String),
}

fn classify(reply: Reply) -> Result<Push, RedisError> {
    let bad = RedisError::Protocol(CodecError::Unsolicited);
    match reply {
        Reply::Status(s) if s == b"OK" => Ok(Push::Ok),
        Reply::Status(s) if s == b"PONG" => Ok(Push::Pong),
        Reply::Error(e) => Ok(Push::Error(e)),
        Reply::Array(items) => {
            let mut items = items.into_iter();
            let kind = match items.next() {
                Some(Reply::Bulk(kind)) => kind,
                _ => return Err(bad),
            };
            match (kind.as_slice(), items.next(), items.next()) {
                (b"message", Some(Reply::Bulk(channel)), Some(Reply::Bulk(payload))) => {
                    Ok(Push::Message { channel, payload })
                }
                (b"subscribe", _, _) => Ok(Push::Subscribed),
                (b"unsubscribe", _, _) => Ok(Push::Unsubscribed),
                (b"pong", _, _) => Ok(Push::Pong),
                _ => Err(bad),
            }
        }
        _ => Err(bad),
    }
}

#[derive(Debug, Clone, Copy)]
enum Verb {
    Subscribe,
    Unsubscribe,
}

impl Verb {
    fn name(self) -> &'static [u8] {
        match self {
            Verb::Subscribe => b"SUBSCRIBE",
            Verb::Unsubscribe => b"UNSUBSCRIBE",
        }
    }

    fn expect(self, n: usize) -> Expect {
        match self {
            Verb::Subscribe => Expect::Subscribe(n),
            Verb::Unsubscribe => Expect::Unsubscribe(n),
        }
    }
}

/// Appends `verb` commands of at most `batch` channels each; returns the
/// number of channels in each command written.
fn write_batches(verb: Verb, channels: &[&[u8]], batch: usize, out: &mut Vec<u8>) -> Vec<usize> {
    channels
        .chunks(batch.max(1))
        .map(|chunk| {
            let mut args: Vec<&[u8]> = Vec::with_capacity(chunk.len() + 1);
            args.push(verb.name());
            args.extend_from_slice(chunk);
            encode_command(&args, out);
            chunk.len()
        })
        .collect()
}

/// The pub/sub link's protocol state: the subscribed set and what is in
/// flight.
pub(crate) struct PubSub {
    channels: HashSet<Vec<u8>>,
    pipeline: Pipeline<Expect>,
    last_heard: Instant,
    ping_interval: Duration,
}

impl PubSub {
    pub(crate) fn new(now: Instant, ping_interval: Duration) -> PubSub {
        PubSub {
            channels: HashSet::new(),
            pipeline: Pipeline::new(),
            last_heard: now,
            ping_interval,
        }
    }
}

impl Driver<PubSub> {
    /// Adds channels; those not yet in the set are subscribed now if the
    /// link is connecting or up (else on the next connect).
    pub(crate) fn subscribe(&mut self, ctx: &mut Ctx<'_>, channels: Vec<Vec<u8>>) {
        let mut new = Vec::new();
        for channel in channels {
            if !self.proto.channels.contains(&channel) {
                self.proto.channels.insert(channel.clone());
                new.push(channel);
            }
        }
        self.send(ctx, Verb::Subscribe, &new);
    }

    /// A barrier: a PING on the link, whose answer (Redis answers in order)
    /// means every SUBSCRIBE and UNSUBSCRIBE written before it is applied;
    /// reported as [`RedisEvent::Confirmed`]`(token)`. Nothing is written
    /// while the link is down: `Connected`/`Reconnected` then says more
    /// (every channel of the set is subscribed), and a barrier in flight
    /// when the link is lost is never reported.
    pub(crate) fn barrier(&mut self, ctx: &mut Ctx<'_>, token: u64) {
        if self.conn.is_down() {
            return;
        }
        encode_command(&["PING"], self.conn.out());
        let deadline = ctx.now + ctx.options.command_timeout;
        self.proto
            .pipeline
            .push(Expect::Barrier(token), ctx.now, deadline);
    }

    /// Removes channels; those that were in the set are unsubscribed now if
    /// the link is connecting or up.
    pub(crate) fn unsubscribe(&mut self, ctx: &mut Ctx<'_>, channels: Vec<Vec<u8>>) {
        let gone: Vec<Vec<u8>> = channels
            .into_iter()
            .filter(|c| self.proto.channels.remove(c))
            .collect();
        self.send(ctx, Verb::Unsubscribe, &gone);
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, verb: Verb, channels: &[Vec<u8>]) {
        if channels.is_empty() || self.conn.is_down() {
            return;
        }
        let refs: Vec<&[u8]> = channels.iter().map(Vec::as_slice).collect();
        let deadline = ctx.now + ctx.options.command_timeout;
        let batch = ctx.options.subscribe_batch;
        for n in write_batches(verb, &refs, batch, self.conn.out()) {
            self.proto.pipeline.push(verb.expect(n), ctx.now, deadline);
        }
        if !self.conn.is_up() {
            // Still connecting: "up" must mean these are subscribed too, so
            // a new PING after them becomes the one that announces it.
            for entry in self.proto.pipeline.iter_mut() {
                if let Expect::Pong { announce } = &mut entry.what {
                    *announce = false;
                }
            }
            encode_command(&["PING"], self.conn.out());
            let pong = Expect::Pong { announce: true };
            self.proto.pipeline.push(pong, ctx.now, deadline);
        }
    }
}

impl Protocol for PubSub {
    const LINK: Link = Link::PubSub;

    fn on_open(&mut self, conn: &mut Conn, ctx: &mut Ctx<'_>, deadline: Instant) {
        self.last_heard = ctx.now;
        if conn.write_auth(ctx.url) {
            self.pipeline.push(Expect::Auth, ctx.now, deadline);
        }
        let all: Vec<&[u8]> = self.channels.iter().map(Vec::as_slice).collect();
        let batch = ctx.options.subscribe_batch;
        for n in write_batches(Verb::Subscribe, &all, batch, conn.out()) {
            self.pipeline.push(Expect::Subscribe(n), ctx.now, deadline);
        }
        encode_command(&["PING"], conn.out());
        self.pipeline
            .push(Expect::Pong { announce: true }, ctx.now, deadline);
    }

    fn handle_reply(
        &mut self,
        conn: &mut Conn,
        ctx: &mut Ctx<'_>,
        reply: Reply,
    ) -> Result<(), RedisError> {
        self.last_heard = ctx.now;
        let push = classify(reply)?;
        if let Push::Message { channel, payload } = push {
            ctx.metrics.message();
            ctx.events
                .message(RedisEvent::Message { channel, payload }, ctx.metrics);
            return Ok(());
        }
        let unsolicited = RedisError::Protocol(CodecError::Unsolicited);
        let front = self.pipeline.front_mut().ok_or(unsolicited.clone())?;
        let done = match (&mut front.what, push) {
            (Expect::Auth, Push::Ok) => true,
            (Expect::Auth, Push::Error(e)) => return Err(RedisError::Auth(e)),
            (Expect::Subscribe(left), Push::Subscribed)
            | (Expect::Unsubscribe(left), Push::Unsubscribed) => {
                *left = left.saturating_sub(1);
                *left == 0
            }
            (Expect::Pong { announce }, Push::Pong) => {
                if *announce {
                    announce_up(conn, ctx, Link::PubSub);
                }
                true
            }
            (Expect::Barrier(token), Push::Pong) => {
                ctx.events.control(RedisEvent::Confirmed(*token));
                true
            }
            (_, Push::Error(e)) => return Err(RedisError::Reply(e)),
            _ => return Err(unsolicited),
        };
        if done {
            self.pipeline.pop();
        }
        Ok(())
    }

    fn on_lost(&mut self, _ctx: &mut Ctx<'_>, _error: &RedisError) {
        // Nothing waits on these: the set is subscribed again on connect.
        self.pipeline.drain().for_each(drop);
    }

    fn in_flight_deadline(&self) -> Option<Instant> {
        self.pipeline.deadline()
    }

    /// Nothing heard for `pubsub_ping_interval`: PING, so that a stopped
    /// Redis is noticed (its PONG has `command_timeout`).
    fn on_idle(&mut self, conn: &mut Conn, ctx: &mut Ctx<'_>) {
        if ctx.now < self.last_heard + self.ping_interval {
            return;
        }
        encode_command(&["PING"], conn.out());
        let deadline = ctx.now + ctx.options.command_timeout;
        self.pipeline
            .push(Expect::Pong { announce: false }, ctx.now, deadline);
    }

    fn idle_deadline(&self) -> Option<Instant> {
        Some(self.last_heard + self.ping_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn classifies_pushes() {
        let msg = Reply::Array(vec![bulk("message"), bulk("ch"), bulk("hi")]);
        assert_eq!(
            classify(msg),
            Ok(Push::Message {
                channel: b"ch".to_vec(),
                payload: b"hi".to_vec()
            })
        );
        let sub = Reply::Array(vec![bulk("subscribe"), bulk("ch"), Reply::Integer(1)]);
        assert_eq!(classify(sub), Ok(Push::Subscribed));
        let unsub = Reply::Array(vec![bulk("unsubscribe"), bulk("ch"), Reply::Integer(0)]);
        assert_eq!(classify(unsub), Ok(Push::Unsubscribed));
        assert_eq!(
            classify(Reply::Array(vec![bulk("pong"), bulk("")])),
            Ok(Push::Pong)
        );
        assert_eq!(classify(Reply::Status(b"PONG".to_vec())), Ok(Push::Pong));
        assert_eq!(classify(Reply::Status(b"OK".to_vec())), Ok(Push::Ok));
    }

    #[test]
    fn odd_pushes_are_errors_not_panics() {
        let bad = Err(RedisError::Protocol(CodecError::Unsolicited));
        assert_eq!(classify(Reply::Integer(1)), bad);
        assert_eq!(classify(Reply::Array(vec![])), bad);
        assert_eq!(classify(Reply::Array(vec![Reply::Integer(1)])), bad);
        assert_eq!(
            classify(Reply::Array(vec![bulk("message"), bulk("ch")])),
            bad
        );
        assert_eq!(classify(Reply::Array(vec![bulk("pmessage")])), bad);
    }

    #[test]
    fn batches_hold_at_most_batch_channels() {
        let names: Vec<Vec<u8>> = (0..1201).map(|i| format!("c{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        assert_eq!(
            write_batches(Verb::Subscribe, &refs, 500, &mut out),
            vec![500, 500, 201]
        );
        assert!(out.starts_with(b"*501\r\n$9\r\nSUBSCRIBE\r\n$2\r\nc0\r\n"));
        assert!(write_batches(Verb::Subscribe, &[], 500, &mut Vec::new()).is_empty());
    }
}
