//! The application's hooks: what happens at the upgrade, on connect, on a
//! message, on close, on a timer, on a plain HTTP request.
//!
//! Every method has a default, so an application implements only what it
//! needs; the defaults accept every upgrade and ignore messages. Each hook
//! receives `&mut Hub`, through which it acts on any socket: the hub queues
//! the work and the event loop carries it out after the hook returns. Hooks
//! must not block: they run on the event loop. A panic inside a hook is
//! caught; the socket the hook was called for is closed with 1011 (an upgrade
//! is answered 500) and the loop goes on.
//!
//! Messages arrive raw (`on_text`, `on_binary`). The JSON envelope protocol of
//! the gateway (`bind`, `join`, error envelopes, …) is a layer on top:
//! [`crate::gateway::EnvelopeHandler`].

use crate::close::CloseReason;
use crate::http::{HttpRequest, Response};
use crate::hub::{Hub, TimerHandle};
use crate::scheduler::Fire;
use crate::socket_id::SocketId;
use crate::upgrade::{Upgrade, UpgradeRequest};

/// The application: override the hooks you need.
pub trait Handler {
    /// A WebSocket handshake passed the protocol's checks: accept it (with a
    /// subprotocol, a client id, a session) or refuse it (a status and a
    /// body). The default accepts, with the server's subprotocol negotiation.
    fn on_upgrade(&mut self, hub: &mut Hub, request: &UpgradeRequest<'_>) -> Upgrade {
        let _ = (hub, request);
        Upgrade::accept()
    }

    /// A WebSocket handshake completed: `socket` is open (and bound, if
    /// `on_upgrade` attached a client id).
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let _ = (hub, socket);
    }

    /// A text message arrived (valid UTF-8, reassembled from its fragments).
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let _ = (hub, socket, text);
    }

    /// A binary message arrived.
    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        let _ = (hub, socket, data);
    }

    /// `socket` closed (or began closing): it is no longer online. Its data
    /// (client id, groups, session) can still be read here; it is removed after
    /// this hook returns.
    fn on_close(&mut self, hub: &mut Hub, socket: SocketId, reason: &CloseReason) {
        let _ = (hub, socket, reason);
    }

    /// A timer from [`Hub::add_timer`] fired (`socket`: the socket it is tied to).
    fn on_timer(&mut self, hub: &mut Hub, timer: TimerHandle, socket: Option<SocketId>) {
        let _ = (hub, timer, socket);
    }

    /// A run of a scheduled job of this loop ([`Hub::add_job`], or the
    /// binary's `[[jobs]]`) is due. Like every hook it must not block.
    fn on_job(&mut self, hub: &mut Hub, job: &Fire) {
        let _ = (hub, job);
    }

    /// A plain HTTP request that no route matched. Return a response to serve
    /// it, or `None` for the server's 404 (or 405).
    fn on_http(&mut self, hub: &mut Hub, request: &HttpRequest) -> Option<Response> {
        let _ = (hub, request);
        None
    }
}
