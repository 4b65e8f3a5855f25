//! User timers: `add_timer` / `cancel_timer` on the loop's timer wheel, and
//! what happens when one fires.

use std::time::Duration;

use super::{millis, Hub, TimerEvent};
use crate::socket_id::SocketId;
pub use crate::timer_handle::TimerHandle;

/// A user timer's schedule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserTimer {
    pub current: crate::timer::TimerId,
    pub interval_ms: Option<u64>,
    pub socket: Option<SocketId>,
}

impl Hub {
    /// Schedule `on_timer` after `delay`, then every `every` if given. A timer
    /// tied to a `socket` is cancelled when that socket closes; tied to a socket
    /// that is not online, it is never scheduled (the handle is inert:
    /// `cancel_timer` answers false).
    pub fn add_timer(
        &mut self,
        delay: Duration,
        every: Option<Duration>,
        socket: Option<SocketId>,
    ) -> TimerHandle {
        self.next_timer += 1;
        let handle = TimerHandle(self.next_timer);
        if socket.is_some_and(|id| !self.is_socket_online(id)) {
            return handle;
        }
        let current = self
            .timers
            .insert(self.now + millis(delay), TimerEvent::User(handle));
        let interval_ms = every.map(|d| millis(d).max(1));
        self.user_timers.insert(
            handle,
            UserTimer {
                current,
                interval_ms,
                socket,
            },
        );
        if let Some(id) = socket {
            if let Ok(app) = self.app_mut(id) {
                app.timers.push(handle);
            }
        }
        handle
    }

    /// Cancel a user timer. False if it had fired (one-shot) or was cancelled.
    pub fn cancel_timer(&mut self, handle: TimerHandle) -> bool {
        let Some(timer) = self.user_timers.remove(&handle) else {
            return false;
        };
        self.timers.cancel(timer.current);
        if let Some(app) = timer
            .socket
            .and_then(|id| self.conn_mut(id))
            .and_then(|c| c.app.as_deref_mut())
        {
            app.timers.retain(|t| *t != handle);
        }
        true
    }

    /// A user timer fired: re-arm an interval timer; returns its socket (if
    /// tied to one) or `None` when the timer is gone.
    pub(crate) fn user_timer_fired(&mut self, handle: TimerHandle) -> Option<Option<SocketId>> {
        let timer = self.user_timers.get_mut(&handle)?;
        let socket = timer.socket;
        match timer.interval_ms {
            Some(every) => {
                timer.current = self
                    .timers
                    .insert(self.now + every, TimerEvent::User(handle));
            }
            None => {
                self.user_timers.remove(&handle);
                if let Some(app) = socket
                    .and_then(|id| self.conn_mut(id))
                    .and_then(|c| c.app.as_deref_mut())
                {
                    app.timers.retain(|t| *t != handle);
                }
            }
        }
        Some(socket)
    }
}
