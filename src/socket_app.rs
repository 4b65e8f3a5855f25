//! A socket's application state: client id, groups, session, user timers,
//! rate-limit buckets. Below the connection and the hub, which both hold it.

use serde_json::Value;

use crate::timer_handle::TimerHandle;

/// Per-socket application state, allocated on first use (an idle socket that
/// never binds, joins or stores a session has none).
#[derive(Debug, Default)]
pub(crate) struct SocketApp {
    /// The bound client id.
    pub(crate) client_id: Option<String>,
    /// Groups joined.
    pub(crate) groups: Vec<String>,
    /// The session object.
    pub(crate) session: Option<Value>,
    /// User timers tied to this socket.
    pub(crate) timers: Vec<TimerHandle>,
    /// Invalid messages in the current window, and when the window began (ms).
    pub(crate) invalid: (u32, u64),
    /// The fan-out token bucket: bytes left (negative: in debt) and when it
    /// was last refilled (ms). `None` until the first client-initiated send.
    pub(crate) fanout: Option<(i64, u64)>,
    /// The session's size as JSON.
    pub(crate) session_bytes: usize,
    /// What this state holds, as counted in the memory gauge (see
    /// [`SocketApp::measure`]).
    pub(crate) bytes: usize,
}

/// What one group membership costs beyond its name: the index entries both
/// ways (group → socket, socket → group) and the group's share of a map slot.
const MEMBERSHIP_COST: usize = 96;

impl SocketApp {
    /// The bytes this state holds: the client id, the group names and their
    /// index entries, the session (its JSON size), the state itself.
    pub(crate) fn measure(&self) -> usize {
        std::mem::size_of::<SocketApp>()
            + self.client_id.as_ref().map_or(0, String::len)
            + self
                .groups
                .iter()
                .map(|g| g.len() + MEMBERSHIP_COST)
                .sum::<usize>()
            + self.session_bytes
    }
}
