//! Timers: state deadlines, heartbeats, auth deadlines, user timers.
//!
//! A connection keeps the [`TimerId`] of each deadline it has armed; a timer
//! that fires and is not the connection's current one (re-armed since, or of
//! a socket that closed) is stale and does nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};

use gmws_protocol::{CloseCode, OpCode};

use super::event_loop::Loop;
use crate::close::CloseReason;
use crate::connection::{DeadlineKind, State};
use crate::handler::Handler;
use crate::hub::TimerEvent;
use crate::socket_id::SocketId;
use crate::timer::TimerId;

/// Heartbeat deadlines are multiples of this (ms), to batch pings per turn.
const HEARTBEAT_SLOT_MS: u64 = 50;

impl<H: Handler> Loop<H> {
    pub(super) fn fire(&mut self, timer: TimerId, event: TimerEvent) {
        match event {
            TimerEvent::AcceptRetry => {
                self.accept_paused = false;
                self.accept_all();
            }
            TimerEvent::Deadline(id, kind) => {
                let Some(conn) = self.hub.conn_mut(id) else {
                    return;
                };
                if conn.deadline != Some(timer) {
                    return;
                }
                conn.deadline = None;
                match kind {
                    DeadlineKind::Handshake => {
                        crate::log::peer_log!(
                            "socket {id} ({}): request head not complete in time; closing",
                            conn.peer.addr()
                        );
                    }
                    DeadlineKind::HttpIdle => log::debug!("socket {id}: idle keep-alive closed"),
                    DeadlineKind::Close => {
                        log::debug!("socket {id}: close timeout in {:?}", conn.state);
                    }
                }
                if let Some(key) = self.hub.key(id) {
                    self.drop_conn(key);
                }
            }
            TimerEvent::Heartbeat(id) => {
                if self
                    .hub
                    .conn(id)
                    .is_some_and(|c| c.heartbeat == Some(timer))
                {
                    self.heartbeat(id);
                }
            }
            TimerEvent::Auth(id) => {
                let Some(conn) = self.hub.conn_mut(id) else {
                    return;
                };
                if conn.auth_deadline != Some(timer) {
                    return;
                }
                conn.auth_deadline = None;
                if conn.is_open() && self.hub.client_id(id).is_none() {
                    crate::log::peer_log!(
                        "socket {id}: not bound within auth_timeout; closing 1008"
                    );
                    self.hub.begin_close_id(
                        id,
                        CloseCode::POLICY,
                        "auth timeout",
                        CloseReason::AuthTimeout,
                    );
                    self.notify_closed();
                }
            }
            TimerEvent::User(handle) => {
                if let Some(socket) = self.hub.user_timer_fired(handle) {
                    let (hub, handler) = (&mut self.hub, &mut self.handler);
                    if catch_unwind(AssertUnwindSafe(|| handler.on_timer(hub, handle, socket)))
                        .is_err()
                    {
                        hub.metrics.handler_panics += 1;
                        log::error!("on_timer panicked");
                        if let Some(id) = socket.filter(|id| hub.is_socket_online(*id)) {
                            hub.begin_close_id(
                                id,
                                CloseCode::INTERNAL,
                                "internal error",
                                CloseReason::HandlerPanic,
                            );
                        }
                    }
                    self.notify_closed();
                }
            }
            TimerEvent::Scheduler => {
                if self.hub.scheduler_timer != Some(timer) {
                    return; // re-armed since
                }
                for fire in self.hub.take_job_runs() {
                    self.run_job(&fire);
                }
            }
        }
    }

    /// Hand one run of a job to the handler (a run that is due and, in a
    /// cluster, claimed; or one asked for).
    pub(super) fn run_job(&mut self, fire: &crate::scheduler::Fire) {
        let (hub, handler) = (&mut self.hub, &mut self.handler);
        if catch_unwind(AssertUnwindSafe(|| handler.on_job(hub, fire))).is_err() {
            hub.metrics.handler_panics += 1;
            log::error!("on_job panicked (job {:?})", fire.name);
        }
        self.notify_closed();
    }

    fn heartbeat(&mut self, id: SocketId) {
        let limit = self.config.ping_timeout_count;
        let Some(key) = self.hub.key(id) else {
            return;
        };
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        conn.heartbeat = None;
        if conn.state != State::Open {
            return;
        }
        if u32::from(conn.missed_pongs) >= limit {
            crate::log::peer_log!("socket {id}: {limit} pings unanswered; closing");
            self.hub.begin_close(
                key,
                CloseCode::GOING_AWAY,
                "heartbeat timeout",
                CloseReason::HeartbeatTimeout,
            );
            self.hub.finish(key);
            self.notify_closed();
            return;
        }
        conn.missed_pongs = conn.missed_pongs.saturating_add(1);
        self.hub.queue_frame(key, OpCode::Ping, b"");
        self.arm_heartbeat(key, false);
        self.notify_closed();
    }

    pub(super) fn arm_heartbeat(&mut self, key: usize, first: bool) {
        let interval = crate::hub::millis(self.config.ping_interval);
        if interval == 0 {
            return;
        }
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        // The first ping lands at a point of the interval drawn from the id, so
        // sockets that connected together do not ping together.
        let delay = if first {
            interval + spread(conn.id.as_u64()) % interval
        } else {
            interval
        };
        let id = conn.id;
        // Deadlines are rounded up to HEARTBEAT_SLOT_MS: the sockets of a slot
        // are pinged in one loop turn and their pongs come back together, so
        // the loop wakes once per slot rather than twice per socket.
        let due = (self.hub.now + delay).div_ceil(HEARTBEAT_SLOT_MS) * HEARTBEAT_SLOT_MS;
        let timer = self.hub.timers.insert(due, TimerEvent::Heartbeat(id));
        if let Some(conn) = self.hub.conns.get_mut(key) {
            conn.heartbeat = Some(timer);
        }
    }
}

/// A cheap, well-mixed hash of a socket id (splitmix64's finaliser).
fn spread(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
