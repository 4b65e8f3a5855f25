//! The JSON envelope protocol, as a layer over [`Handler`]: every text
//! message is one `{"type": …, "data": …}` envelope. Bad JSON gets a
//! `bad_json` error envelope (the connection stays open), `ping` gets `pong`,
//! `bind` goes through [`EnvelopeHandler::on_auth`], and every other type to
//! [`EnvelopeHandler::on_message`]. The gateway is one such handler; a
//! library user implements [`EnvelopeHandler`] for their own types and gets
//! the protocol, or [`Handler`] directly for raw messages.
//!
//! Every type implementing [`EnvelopeHandler`] is a [`Handler`] (a blanket
//! implementation): pass it to `Server::bind` as it is.
//!
//! A request id (`"id"` beside `type`, see [`Envelope::id`]) is echoed in the
//! `pong` and `bind` replies and in the error envelopes of that request; an
//! `on_message` that replies should echo it too ([`with_id`],
//! [`Hub::reply_error_with_id`]). A `bad_json` error carries no id: the
//! request could not be read.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::auth::jwt;
use crate::close::CloseReason;
use crate::handler::Handler;
use crate::http::{HttpRequest, Response};
use crate::hub::{Hub, TimerHandle};
use crate::message::{codes, envelope, id_value, with_id, Envelope};
use crate::scheduler::Fire;
use crate::socket_id::SocketId;
use crate::upgrade::{Upgrade, UpgradeRequest};

/// An application speaking the JSON envelope protocol. Every method has a
/// default; see [`Handler`] for the hooks they mirror.
pub trait EnvelopeHandler {
    /// See [`Handler::on_upgrade`].
    fn on_upgrade(&mut self, hub: &mut Hub, request: &UpgradeRequest<'_>) -> Upgrade {
        let _ = (hub, request);
        Upgrade::accept()
    }

    /// See [`Handler::on_connect`].
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let _ = (hub, socket);
    }

    /// A `bind` request: return the client id to bind `socket` to, or why not.
    ///
    /// The default takes `data.client_id` (a string, or an integer kept as its
    /// decimal string). With `auth_secret` configured, `data.token` must be an
    /// HS256 JWT signed with it whose `sub` is that client id and that passes
    /// the configured checks (`auth_require_exp`, `auth_audience`,
    /// `auth_issuer`, `auth_leeway`), against the wall clock.
    fn on_auth(&mut self, hub: &mut Hub, socket: SocketId, data: &Value) -> Result<String, String> {
        let _ = socket;
        default_auth(hub, data)
    }

    /// An envelope of a type the protocol does not handle itself (not `bind`,
    /// not `ping`). The default answers `unknown_type` (with the request's id).
    fn on_message(&mut self, hub: &mut Hub, socket: SocketId, message: &Envelope) {
        hub.reply_error_with_id(
            socket,
            codes::UNKNOWN_TYPE,
            "unknown message type",
            Some(&message.kind),
            message.id.as_ref(),
        );
    }

    /// See [`Handler::on_binary`]: binary frames are not part of the JSON
    /// protocol; the default ignores them.
    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        let _ = (hub, socket, data);
    }

    /// See [`Handler::on_close`].
    fn on_close(&mut self, hub: &mut Hub, socket: SocketId, reason: &CloseReason) {
        let _ = (hub, socket, reason);
    }

    /// See [`Handler::on_timer`].
    fn on_timer(&mut self, hub: &mut Hub, timer: TimerHandle, socket: Option<SocketId>) {
        let _ = (hub, timer, socket);
    }

    /// See [`Handler::on_job`].
    fn on_job(&mut self, hub: &mut Hub, job: &Fire) {
        let _ = (hub, job);
    }

    /// See [`Handler::on_http`].
    fn on_http(&mut self, hub: &mut Hub, request: &HttpRequest) -> Option<Response> {
        let _ = (hub, request);
        None
    }
}

impl<T: EnvelopeHandler> Handler for T {
    fn on_upgrade(&mut self, hub: &mut Hub, request: &UpgradeRequest<'_>) -> Upgrade {
        EnvelopeHandler::on_upgrade(self, hub, request)
    }

    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        EnvelopeHandler::on_connect(self, hub, socket);
    }

    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        dispatch_envelope(self, hub, socket, text);
    }

    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        EnvelopeHandler::on_binary(self, hub, socket, data);
    }

    fn on_close(&mut self, hub: &mut Hub, socket: SocketId, reason: &CloseReason) {
        EnvelopeHandler::on_close(self, hub, socket, reason);
    }

    fn on_timer(&mut self, hub: &mut Hub, timer: TimerHandle, socket: Option<SocketId>) {
        EnvelopeHandler::on_timer(self, hub, timer, socket);
    }

    fn on_job(&mut self, hub: &mut Hub, job: &Fire) {
        EnvelopeHandler::on_job(self, hub, job);
    }

    fn on_http(&mut self, hub: &mut Hub, request: &HttpRequest) -> Option<Response> {
        EnvelopeHandler::on_http(self, hub, request)
    }
}

/// One text message through the protocol: parse, `ping`, `bind`, or
/// [`EnvelopeHandler::on_message`].
fn dispatch_envelope<H: EnvelopeHandler + ?Sized>(
    handler: &mut H,
    hub: &mut Hub,
    socket: SocketId,
    text: &str,
) {
    let message = match Envelope::parse(text) {
        Ok(message) => message,
        Err(why) => {
            hub.reply_error(socket, codes::BAD_JSON, &why, None);
            return;
        }
    };
    let id = message.id.as_ref();
    match message.kind.as_str() {
        "ping" => {
            let _ = hub.send_to_socket(socket, &with_id(envelope("pong", Value::Null), id));
        }
        "bind" => match handler.on_auth(hub, socket, &message.data) {
            Ok(client_id) => match hub.bind_client(socket, &client_id) {
                Ok(()) => {
                    let data = json!({ "socket_id": socket.to_string(), "client_id": client_id });
                    let _ = hub.send_to_socket(socket, &with_id(envelope("bind", data), id));
                }
                Err(e) => hub.reply_error_with_id(
                    socket,
                    codes::BAD_REQUEST,
                    &e.to_string(),
                    Some("bind"),
                    id,
                ),
            },
            Err(why) => {
                log::debug!("socket {socket}: bind refused: {why}");
                hub.reply_error_with_id(socket, codes::AUTH_FAILED, &why, Some("bind"), id);
            }
        },
        _ => handler.on_message(hub, socket, &message),
    }
}

/// The default `on_auth`: see [`EnvelopeHandler::on_auth`].
pub fn default_auth(hub: &Hub, data: &Value) -> Result<String, String> {
    let client_id = data
        .get("client_id")
        .and_then(id_value)
        .ok_or("data.client_id (string or integer) required")?;
    let Some(secret) = hub.config().auth_secret.as_deref() else {
        return Ok(client_id);
    };
    let token = data
        .get("token")
        .and_then(Value::as_str)
        .ok_or("data.token required")?;
    // The wall clock at each verification: token times are wall-clock times.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let options = hub.config().verify_options();
    let claims =
        jwt::verify_hs256(token, secret.as_bytes(), now, &options).map_err(|e| e.to_string())?;
    if claims.sub != client_id {
        return Err("token subject does not match client_id".to_owned());
    }
    Ok(client_id)
}
