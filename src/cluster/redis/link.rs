//! What both links do alike, around what differs: a [`Protocol`] says what
//! to write on a fresh connection and what a reply means; the [`Driver`]
//! connects, reads, writes, watches deadlines and reconnects.

use std::time::Instant;

use super::bus::Ctx;
use super::conn::{Conn, Phase};
use super::error::RedisError;
use super::events::{Link, RedisEvent};
use super::reply::Reply;

/// What one link sends and expects.
pub(crate) trait Protocol {
    /// Which link this is (for events).
    const LINK: Link;
    /// A connection was opened: queue the handshake; its entries wait until
    /// `deadline`.
    fn on_open(&mut self, conn: &mut Conn, ctx: &mut Ctx<'_>, deadline: Instant);
    /// One reply; an error drops the connection.
    fn handle_reply(
        &mut self,
        conn: &mut Conn,
        ctx: &mut Ctx<'_>,
        reply: Reply,
    ) -> Result<(), RedisError>;
    /// The connection is gone: fail or forget what was in flight.
    fn on_lost(&mut self, ctx: &mut Ctx<'_>, error: &RedisError);
    /// The earliest deadline of what is in flight.
    fn in_flight_deadline(&self) -> Option<Instant>;
    /// The link is up and has nothing in flight; `now` may be the time for
    /// a liveness probe.
    fn on_idle(&mut self, _conn: &mut Conn, _ctx: &mut Ctx<'_>) {}
    /// When [`Protocol::on_idle`] next has work.
    fn idle_deadline(&self) -> Option<Instant> {
        None
    }
}

/// A connection and the protocol spoken on it.
pub(crate) struct Driver<P> {
    pub(crate) conn: Conn,
    pub(crate) proto: P,
}

impl<P: Protocol> Driver<P> {
    /// Socket readiness, or a turn after the read budget ran out.
    pub(crate) fn handle_io(&mut self, ctx: &mut Ctx<'_>) {
        let mut replies = Vec::new();
        let result = self.conn.pump(&mut replies);
        for reply in replies {
            if let Err(e) = self.proto.handle_reply(&mut self.conn, ctx, reply) {
                return self.lost(ctx, e);
            }
        }
        if let Err(e) = result {
            self.lost(ctx, e);
        }
    }

    /// Whether reads stopped at the budget with bytes maybe still waiting.
    pub(crate) fn wants_read(&self) -> bool {
        self.conn.read_again
    }

    /// Writes what was queued.
    pub(crate) fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if let Err(e) = self.conn.flush() {
            self.lost(ctx, e);
        }
    }

    /// Deadlines: a stuck reply or connect attempt drops the connection (a
    /// stopped Redis keeps TCP open); a due reconnect starts.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let expired = self
            .proto
            .in_flight_deadline()
            .is_some_and(|d| ctx.now >= d);
        match self.conn.phase {
            Phase::Down { retry_at } if ctx.now >= retry_at => self.connect(ctx),
            Phase::Down { .. } => {}
            Phase::Connecting { deadline } if ctx.now >= deadline => {
                self.lost(ctx, RedisError::Timeout)
            }
            _ if expired => self.lost(ctx, RedisError::Timeout),
            Phase::Up if self.proto.in_flight_deadline().is_none() => {
                self.proto.on_idle(&mut self.conn, ctx)
            }
            _ => {}
        }
    }

    /// The next instant [`Driver::handle_timeout`] has work.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let phase = match self.conn.phase {
            Phase::Down { retry_at } => return Some(retry_at),
            Phase::Connecting { deadline } => Some(deadline),
            // The probe waits while something is in flight.
            Phase::Up if self.proto.in_flight_deadline().is_none() => self.proto.idle_deadline(),
            Phase::Up => None,
        };
        [phase, self.proto.in_flight_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn connect(&mut self, ctx: &mut Ctx<'_>) {
        let deadline = ctx.now + ctx.options.connect_timeout;
        match self.conn.open(ctx.registry, ctx.url, deadline) {
            Ok(()) => self.proto.on_open(&mut self.conn, ctx, deadline),
            Err(e) => self.lost(ctx, e),
        }
    }

    /// The connection failed: it goes down and retries with backoff.
    fn lost(&mut self, ctx: &mut Ctx<'_>, error: RedisError) {
        let was_up = self.conn.down(ctx.registry, ctx.now);
        self.proto.on_lost(ctx, &error);
        if was_up {
            log::warn!("Redis {:?} link lost: {error}", P::LINK);
            ctx.events.control(RedisEvent::Disconnected {
                link: P::LINK,
                error,
            });
        } else {
            ctx.metrics.connect_failure();
            log::debug!("Redis {:?} link: connect attempt failed: {error}", P::LINK);
        }
    }

    /// Closes the socket for good (shutdown).
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.conn.close(ctx.registry);
    }
}

/// The handshake's last reply came: the link is up; say so.
pub(crate) fn announce_up(conn: &mut Conn, ctx: &mut Ctx<'_>, link: Link) {
    let again = conn.ever_up;
    conn.set_up();
    if again {
        ctx.metrics.reconnect();
        ctx.events.control(RedisEvent::Reconnected(link));
    } else {
        ctx.events.control(RedisEvent::Connected(link));
    }
}
