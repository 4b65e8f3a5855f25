//! Writing: each dirty socket once per turn; backpressure judged on what the
//! kernel did not take; the process-wide buffer budget.

use std::io::ErrorKind;
use std::net::Shutdown;

use gmws_protocol::CloseCode;
use mio::{Interest, Token};

use super::event_loop::Loop;
use crate::close::CloseReason;
use crate::connection::{Action, Dirty, State};
use crate::handler::Handler;
use crate::tls::Io;

impl<H: Handler> Loop<H> {
    /// Flush what this turn queued: point-to-point output first; then, as
    /// many as the turn's fan-out writes allow (`max_fanout_writes_per_turn`,
    /// less the direct writes the fan-outs made), the deferred fan-out's next
    /// sockets (`hub/deferred.rs`: first, since its list never grows, so
    /// nothing queued after it can hold it back for long) and the sockets
    /// that only have fan-out frames; those left are written first next turn
    /// (and meanwhile gather more frames into the same write).
    pub(super) fn flush_dirty(&mut self) {
        for key in std::mem::take(&mut self.hub.dirty) {
            self.flush(key);
        }
        self.hub.write_deferred();
        let mut fanout = std::mem::take(&mut self.hub.dirty_fanout);
        let now = fanout.len().min(self.hub.fanout_writes_left);
        self.hub.fanout_writes_left -= now;
        for key in fanout.drain(..now) {
            if self
                .hub
                .conns
                .get(key)
                .is_some_and(|c| c.dirty != Dirty::Clean)
            {
                self.flush(key);
            }
        }
        // The rest go first next turn.
        fanout.append(&mut self.hub.dirty_fanout);
        self.hub.dirty_fanout = fanout;
    }

    /// Write slot `key`'s queue once; manage WRITABLE interest, backpressure
    /// and the state machine's answer to an emptied queue.
    pub(super) fn flush(&mut self, key: usize) {
        let Some(conn) = self.hub.conns.get_mut(key) else {
            return;
        };
        if conn.dirty == Dirty::Deferred || (conn.dirty == Dirty::Clean && !conn.has_output()) {
            // A writable edge with nothing waiting (a deferred socket has
            // nothing queued: its frame is written from the deferred fan-out).
            return;
        }
        conn.dirty = Dirty::Clean;
        if conn.has_output() {
            let mut io = Io::new(&mut conn.stream, &mut conn.tls);
            let written = io
                .flush_tls()
                .and_then(|_| conn.output.write_to(&mut io, &mut self.hub.pool));
            match written {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => {
                    log::debug!("socket {}: write: {e}", conn.id);
                    return self.drop_conn(key);
                }
            }
        }
        let registry = self.poll.registry();
        if conn.has_output() {
            // The kernel took what it could: what waits now is backpressure.
            let over = conn.output.len() > self.config.max_backpressure;
            if !conn.writable_interest {
                conn.writable_interest = true;
                let _ = registry.reregister(
                    &mut conn.stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                );
            }
            if over && conn.state.is_websocket() {
                self.hub.backpressure(key);
                // The close frame went behind a partly written frame: try it.
                self.hub.mark_dirty(key);
            } else if over && matches!(conn.state, State::Http { .. }) {
                self.hub.finish(key);
            }
            self.hub.account(key);
            self.notify_closed();
            return;
        }
        if conn.writable_interest {
            conn.writable_interest = false;
            let _ = registry.reregister(&mut conn.stream, Token(key), Interest::READABLE);
        }
        let (next, action) = conn.state.on_flushed();
        let resume_http = matches!(conn.state, State::Http { .. });
        match action {
            Action::ShutdownWrite => {
                Io::new(&mut conn.stream, &mut conn.tls).close_notify();
                let _ = conn.stream.shutdown(Shutdown::Write);
            }
            Action::Drop => return self.drop_conn(key),
            Action::None => {}
        }
        self.hub.set_state(key, next);
        self.hub.account(key);
        if resume_http {
            // Pipelined requests may wait for this flush (HTTP_OUTPUT_CAP).
            self.defer(key);
        }
    }

    /// Hold the buffered bytes to `max_buffer_memory`: past it, close the
    /// connections holding the most (WebSockets with 1013, others dropped)
    /// until the total is back under seven eighths of the budget.
    pub(super) fn enforce_memory(&mut self) {
        let limit = self.config.max_buffer_memory;
        if self.hub.gauge.total() <= limit {
            return;
        }
        let mut holders: Vec<(usize, usize)> = self
            .hub
            .conns
            .iter()
            .map(|(key, c)| (c.held_bytes(), key))
            .filter(|(held, _)| *held > 0)
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        let target = limit - limit / 8;
        log::warn!(
            "{} bytes buffered, over max_buffer_memory ({limit}): closing the largest holders",
            self.hub.gauge.total()
        );
        for (held, key) in holders {
            if self.hub.gauge.total() <= target {
                break;
            }
            let Some(conn) = self.hub.conns.get(key) else {
                continue;
            };
            self.hub.metrics.memory_sheds += 1;
            crate::log::peer_log!(
                "socket {}: holds {held} bytes; closed for max_buffer_memory",
                conn.id
            );
            if conn.state.is_websocket() {
                self.hub.close_overloaded(
                    key,
                    CloseCode::TRY_AGAIN_LATER,
                    "server memory budget",
                    CloseReason::MemoryBudget,
                );
                self.flush(key);
            } else {
                self.drop_conn(key);
            }
        }
        self.notify_closed();
    }
}
