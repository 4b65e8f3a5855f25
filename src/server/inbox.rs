//! A loop's side of the bus: applying what other loops and threads posted,
//! and publishing the loop's numbers for the process-wide answers.

use std::sync::atomic::Ordering;

use super::event_loop::Loop;
use crate::bus::Command;
use crate::handler::Handler;

/// Commands applied per turn at most: a flood of posts cannot hold up the
/// loop's own sockets for more than a turn's worth.
const COMMANDS_PER_TURN: usize = 4096;

impl<H: Handler> Loop<H> {
    /// Apply posted commands (at most [`COMMANDS_PER_TURN`], and none once
    /// the turn's fan-out budget is spent; the rest wait for the next turn).
    pub(super) fn serve_inbox(&mut self) {
        self.hub.bus.drained(self.hub.loop_index());
        self.hub.inbox_pending = false;
        for _ in 0..COMMANDS_PER_TURN {
            if self.hub.turn_exhausted() {
                self.hub.inbox_pending = true;
                return;
            }
            let Ok(command) = self.inbox.try_recv() else {
                return;
            };
            self.apply(command);
        }
        self.hub.inbox_pending = true;
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Adopt(stream, addr) => self.hold(stream, addr),
            Command::Refuse(stream, addr, why) => self.refuse_at_accept(stream, addr, why),
            Command::Job(name, action) => {
                if let Err(e) = self.hub.job_action(&name, action) {
                    log::debug!("posted job action {action:?} on {name:?} refused: {e}");
                }
            }
            Command::JobClaim(claim) => {
                if let Some(fire) = self.hub.job_claim_answered(*claim) {
                    self.run_job(&fire);
                }
            }
            Command::Send {
                target,
                frame,
                payload_len,
            } => self.hub.apply_send(target, &frame, payload_len),
            Command::Join(id, group) => {
                if let Err(e) = self.hub.join_group(id, &group) {
                    log::debug!("socket {id}: posted join {group:?} refused: {e}");
                }
            }
            Command::Leave(id, group) => {
                self.hub.leave_group(id, &group);
            }
            Command::Ungroup(group) => {
                self.hub.ungroup_local(&group);
            }
            Command::Bind(id, client) => {
                if let Err(e) = self.hub.bind_client(id, &client) {
                    log::debug!("socket {id}: posted bind refused: {e}");
                }
            }
            Command::Unbind(id) => {
                self.hub.unbind_client(id);
            }
            Command::Close(id, code, reason) => {
                let _ = self.hub.close_socket(id, code, &reason);
            }
            Command::SetSession(id, session) => {
                let _ = self.hub.set_session(id, session);
            }
            Command::UpdateSession(id, fields) => {
                let _ = self.hub.update_session(id, fields);
            }
            Command::HttpReply {
                conn,
                token,
                response,
            } => self.answer_parked(conn, token, &response),
            Command::Run(f) => {
                let hub = &mut self.hub;
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(hub))).is_err() {
                    self.hub.metrics.handler_panics += 1;
                    log::error!(
                        "a function posted to loop {} panicked",
                        self.hub.loop_index()
                    );
                }
            }
        }
        self.notify_closed();
    }

    /// Mark the loop busy in a turn (`true`, after `poll` returned) or
    /// waiting in `poll` (`false`): the acceptor tells a stalled loop by it.
    pub(super) fn mark_busy(&self, busy: bool) {
        let bus = &self.hub.bus;
        if bus.shared() {
            let since = if busy { self.turn_ms.max(1) } else { 0 };
            bus.links[self.hub.loop_index()]
                .busy_since
                .store(since, Ordering::Relaxed);
        }
    }

    /// Publish this loop's numbers (at most once a millisecond while busy;
    /// what that holds back goes out before the loop sleeps, see
    /// [`EventLoop::publish_held`]).
    pub(super) fn publish(&mut self) {
        let bus = &self.hub.bus;
        if !bus.shared() {
            return;
        }
        let now = self.turn_ms;
        if now == self.published_at {
            self.publish_pending = true;
            return;
        }
        self.published_at = now;
        self.store_stats();
    }

    /// Publish the numbers a busy turn held back, if any.
    pub(super) fn publish_held(&mut self) {
        if self.publish_pending {
            self.store_stats();
        }
    }

    fn store_stats(&mut self) {
        let bus = &self.hub.bus;
        let link = &bus.links[self.hub.loop_index()];
        self.publish_pending = false;
        let stats = self.hub.live_stats();
        match link.stats.lock() {
            Ok(mut slot) => *slot = stats,
            Err(poisoned) => *poisoned.into_inner() = stats,
        }
    }
}
