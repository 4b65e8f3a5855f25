//! The command link: AUTH/SELECT/PING on connect, then user commands and
//! PUBLISH pipelined, each reply handed to the command it answers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::bus::Ctx;
use super::codec::{encode_command, CodecError};
use super::conn::Conn;
use super::error::RedisError;
use super::events::Link;
use super::link::{announce_up, Driver, Protocol};
use super::metrics::RedisMetrics;
use super::pipeline::Pipeline;
use super::reply::Reply;

/// Where a command's reply goes; called exactly once, on the bus thread, so
/// it must not block (post to a channel, wake a loop).
pub type ReplyCallback = Box<dyn FnOnce(Result<Reply, RedisError>) + Send + 'static>;

/// A command on its way to the bus, already encoded by the caller's thread.
pub(crate) struct Command {
    pub(crate) bytes: Vec<u8>,
    pub(crate) reply: ReplyTo,
}

/// Who wants the reply.
pub(crate) enum ReplyTo {
    Callback(ReplyCallback),
    /// A PUBLISH: failures are counted, the reply is dropped.
    Publish,
}

enum Waiting {
    Auth,
    Select,
    /// The handshake's last step: its reply means the link is up.
    Ping,
    User(ReplyTo),
}

/// The command link's protocol state: what is in flight.
pub(crate) struct Commands {
    pipeline: Pipeline<Waiting>,
    user_in_flight: usize,
}

impl Commands {
    pub(crate) fn new() -> Commands {
        Commands {
            pipeline: Pipeline::new(),
            user_in_flight: 0,
        }
    }
}

impl Driver<Commands> {
    /// Whether the bus may take another command from the queue: always
    /// while down (it fails at once), else while under `max_in_flight`.
    pub(crate) fn has_room(&self, max_in_flight: usize) -> bool {
        self.conn.is_down() || self.proto.user_in_flight < max_in_flight
    }

    /// Queues a command for writing, or fails it at once when the link is
    /// down. Written behind a handshake in progress, it waits for that.
    pub(crate) fn submit(&mut self, ctx: &mut Ctx<'_>, command: Command) {
        if self.conn.is_down() {
            ctx.metrics.lost();
            answer(command.reply, Err(RedisError::NotConnected), ctx.metrics);
            return;
        }
        self.conn.out().extend_from_slice(&command.bytes);
        ctx.metrics.sent(1);
        self.proto.user_in_flight += 1;
        let deadline = ctx.now + ctx.options.command_timeout;
        self.proto
            .pipeline
            .push(Waiting::User(command.reply), ctx.now, deadline);
    }

    /// Fails what is in flight with [`RedisError::Shutdown`] and closes.
    pub(crate) fn shut_down(&mut self, ctx: &mut Ctx<'_>) {
        self.close(ctx);
        for entry in self.proto.pipeline.drain() {
            if let Waiting::User(to) = entry.what {
                answer(to, Err(RedisError::Shutdown), ctx.metrics);
            }
        }
    }
}

impl Protocol for Commands {
    const LINK: Link = Link::Commands;

    fn on_open(&mut self, conn: &mut Conn, ctx: &mut Ctx<'_>, deadline: Instant) {
        if conn.write_auth(ctx.url) {
            self.pipeline.push(Waiting::Auth, ctx.now, deadline);
        }
        if ctx.url.db != 0 {
            encode_command(&["SELECT", &ctx.url.db.to_string()], conn.out());
            self.pipeline.push(Waiting::Select, ctx.now, deadline);
        }
        encode_command(&["PING"], conn.out());
        self.pipeline.push(Waiting::Ping, ctx.now, deadline);
    }

    fn handle_reply(
        &mut self,
        conn: &mut Conn,
        ctx: &mut Ctx<'_>,
        reply: Reply,
    ) -> Result<(), RedisError> {
        let entry = self
            .pipeline
            .pop()
            .ok_or(RedisError::Protocol(CodecError::Unsolicited))?;
        match (entry.what, reply) {
            (Waiting::Auth, Reply::Error(e)) => Err(RedisError::Auth(e)),
            (Waiting::Select, Reply::Error(e)) => Err(RedisError::Select(e)),
            (Waiting::Ping, Reply::Error(e)) => Err(RedisError::Reply(e)),
            (Waiting::Auth | Waiting::Select, _) => Ok(()),
            (Waiting::Ping, _) => {
                announce_up(conn, ctx, Link::Commands);
                Ok(())
            }
            (Waiting::User(to), reply) => {
                self.user_in_flight = self.user_in_flight.saturating_sub(1);
                let error = matches!(reply, Reply::Error(_));
                let latency = ctx.now.saturating_duration_since(entry.taken_at);
                ctx.metrics.reply(latency, error);
                let result = match reply {
                    Reply::Error(e) => Err(RedisError::Reply(e)),
                    other => Ok(other),
                };
                answer(to, result, ctx.metrics);
                Ok(())
            }
        }
    }

    fn on_lost(&mut self, ctx: &mut Ctx<'_>, error: &RedisError) {
        self.user_in_flight = 0;
        let for_commands = match error {
            RedisError::Timeout | RedisError::Auth(_) | RedisError::Select(_) => error.clone(),
            _ => RedisError::ConnectionLost,
        };
        for entry in self.pipeline.drain() {
            if let Waiting::User(to) = entry.what {
                if for_commands == RedisError::Timeout {
                    ctx.metrics.timeout();
                } else {
                    ctx.metrics.lost();
                }
                answer(to, Err(for_commands.clone()), ctx.metrics);
            }
        }
    }

    fn in_flight_deadline(&self) -> Option<Instant> {
        self.pipeline.deadline()
    }
}

/// Hands a result to whoever waits for it. A panicking callback is caught
/// and counted: it must not take the bus down.
pub(crate) fn answer(to: ReplyTo, result: Result<Reply, RedisError>, metrics: &RedisMetrics) {
    match to {
        ReplyTo::Callback(callback) => {
            if catch_unwind(AssertUnwindSafe(|| callback(result))).is_err() {
                metrics.callback_panic();
            }
        }
        ReplyTo::Publish => {
            if result.is_err() {
                metrics.publish_failure();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_callback_is_caught_and_counted() {
        let metrics = RedisMetrics::default();
        let to = ReplyTo::Callback(Box::new(|_| panic!("a user callback bug")));
        answer(to, Ok(Reply::Nil), &metrics);
        assert_eq!(metrics.snapshot().callback_panics, 1);
    }

    #[test]
    fn a_failed_publish_is_counted() {
        let metrics = RedisMetrics::default();
        answer(ReplyTo::Publish, Ok(Reply::Integer(0)), &metrics);
        answer(ReplyTo::Publish, Err(RedisError::Timeout), &metrics);
        assert_eq!(metrics.snapshot().publish_failures, 1);
    }
}
