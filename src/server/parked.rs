//! HTTP requests parked while the cluster answers them
//! ([`super::http::Parked`]): reading paused until the answer, then the
//! response queued and the connection resumed (its pipelined requests
//! served, more read).

use super::event_loop::Loop;
use super::http::{self as serve, Parked};
use crate::connection::{DeadlineKind, State};
use crate::handler::Handler;
use crate::http::Response;
use crate::socket_id::SocketId;

impl<H: Handler> Loop<H> {
    /// Park slot `key`'s request until its answer: nothing more is read or
    /// parsed on the connection meanwhile.
    pub(super) fn park(&mut self, key: usize, parked: Parked) {
        self.parked.insert(key, parked);
    }

    /// Whether slot `key` waits for an answer (reading paused).
    pub(super) fn is_parked(&self, key: usize) -> bool {
        !self.parked.is_empty() && self.parked.contains_key(&key)
    }

    /// The answer to a parked request arrived: queue it and resume the
    /// connection. A stale answer (the connection gone, its slot reused, or
    /// the request answered already by its deadline) is dropped.
    pub(super) fn answer_parked(&mut self, conn: SocketId, token: u64, response: &Response) {
        let Some(key) = self.hub.key(conn) else {
            return;
        };
        let Some(parked) = self.parked.get(&key).copied() else {
            return;
        };
        if parked.token != token || parked.conn != conn {
            return;
        }
        self.unpark(key, parked, response);
    }

    /// Answer the parked requests whose deadline passed with 504, and forget
    /// those whose connection is gone.
    pub(super) fn expire_parked(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        let now = self.hub.now;
        let due: Vec<(usize, Parked)> = self
            .parked
            .iter()
            .filter(|(key, p)| {
                p.deadline <= now || self.hub.conns.get(**key).is_none_or(|c| c.id != p.conn)
            })
            .map(|(k, p)| (*k, *p))
            .collect();
        for (key, parked) in due {
            if self.hub.conns.get(key).is_some_and(|c| c.id == parked.conn) {
                self.unpark(key, parked, &serve::timed_out());
            } else {
                self.parked.remove(&key);
            }
        }
    }

    /// The earliest deadline of a parked request (hub clock, ms).
    pub(super) fn parked_deadline(&self) -> Option<u64> {
        self.parked.values().map(|p| p.deadline).min()
    }

    fn unpark(&mut self, key: usize, parked: Parked, response: &Response) {
        self.parked.remove(&key);
        if !matches!(
            self.hub.conns.get(key).map(|c| c.state),
            Some(State::Http { .. })
        ) {
            return;
        }
        serve::respond(
            &mut self.hub,
            key,
            response,
            parked.keep_alive,
            parked.head_only,
        );
        if !parked.keep_alive {
            self.hub.finish(key);
            return;
        }
        let pipelined = self.hub.conns.get(key).is_some_and(|c| !c.input.is_empty());
        if pipelined {
            self.hub.arm_deadline(key, DeadlineKind::Handshake);
        } else {
            self.go_idle(key);
        }
        // Serve what was pipelined and read on (the kernel may hold bytes
        // whose readiness edge came while reading was paused).
        self.defer(key);
    }
}
