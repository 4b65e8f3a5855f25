//! The default gateway: the `gmws` binary's [`crate::Handler`] (an
//! [`EnvelopeHandler`]: the JSON envelope protocol).
//!
//! It speaks the wire contract of DESIGN.md: `welcome` on connect; `bind` and
//! `ping` (handled by the envelope protocol, see [`EnvelopeHandler`]); and `join`,
//! `leave`, `send_to_all`, `send_to_group`, `send_to_client`, each allowed or
//! refused by configuration (`allow_join`, `allow_send_to_*`). Until bound, a
//! socket may only `bind` and `ping`. Every refusal is an error envelope and
//! the connection stays open.
//!
//! Client-initiated sends are paid for: each costs recipients × envelope
//! bytes against the sender's `client_fanout_rate` allowance (a token bucket,
//! see [`Hub::charge_fanout`]); past it the send is refused with a
//! `rate_limited` error envelope. An envelope larger than `max_message_size`
//! allows (JSON numbers may grow when re-serialised) is refused `too_large`.
//! `send_to_all` from clients is off by default (`allow_send_to_all`).
//!
//! In a cluster the `join` reply is held until Redis confirms this node's
//! subscription to the group's channel ([`Hub::send_when_group_ready`]):
//! once a client has it, messages sent to the group from any node reach it.
//!
//! A request id (`"id"`, see [`Envelope::id`]) is echoed in the `join` and
//! `leave` replies and in every error envelope of that request, including those
//! of `send_to_*` (which have no reply when they succeed).
//!
//! Decisions: a sender is among the recipients of its own `send_to_all` and
//! `send_to_group` (as with the HTTP API, everyone in the audience gets the
//! message); binary frames are not part of the JSON protocol: by
//! `binary_messages` they get an `unsupported` error envelope (default), close
//! the socket with 1003, or are ignored. Every error envelope counts toward the
//! socket's `invalid_message_limit`.

use serde_json::{json, Value};

mod envelopes;

pub use envelopes::{default_auth, EnvelopeHandler};

use crate::config::BinaryMessages;
use crate::hub::{Audience, Hub, HubError};
use crate::message::{codes, envelope, with_id, Envelope};
use crate::scheduler::Fire;
use crate::socket_id::SocketId;
use gmws_protocol::encoder::frame_len;

/// The ready-to-run gateway.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gateway;

impl EnvelopeHandler for Gateway {
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let welcome = envelope(
            "welcome",
            json!({
                "socket_id": socket.to_string(),
                "auth_timeout": seconds(hub.config().auth_timeout),
            }),
        );
        let _ = hub.send_to_socket(socket, &welcome);
    }

    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, _data: &[u8]) {
        match hub.config().binary_messages {
            BinaryMessages::Ignore => {}
            BinaryMessages::Close => {
                let _ = hub.close_socket(
                    socket,
                    crate::CloseCode::UNSUPPORTED,
                    "binary frames are not accepted",
                );
            }
            BinaryMessages::Error => hub.reply_error(
                socket,
                codes::UNSUPPORTED,
                "binary frames are not part of the JSON protocol",
                None,
            ),
        }
    }

    /// A job of the binary's `[[jobs]]` ran: its message goes to its
    /// recipients as `{"type":"message","data":{"from":"scheduler","job":
    /// NAME,"to":…,"message":…}}`. (A job added by a library user without
    /// `to` in its data sends nothing.)
    fn on_job(&mut self, hub: &mut Hub, job: &Fire) {
        let (Some(to), Some(message)) = (job.data.get("to"), job.data.get("message")) else {
            return;
        };
        let out = envelope(
            "message",
            json!({ "from": "scheduler", "job": job.name, "to": to, "message": message }),
        );
        let delivered = match to {
            Value::String(all) if all == "all" => hub.send_to_all(&out),
            Value::Object(target) => match (target.get("group"), target.get("client")) {
                (Some(Value::String(group)), _) => hub.send_to_group(group, &out, &[]),
                (_, Some(Value::String(client))) => hub.send_to_client(client, &out),
                _ => 0,
            },
            _ => 0,
        };
        log::debug!("job {:?}: delivered to {delivered} socket(s)", job.name);
    }

    fn on_message(&mut self, hub: &mut Hub, socket: SocketId, message: &Envelope) {
        let id = message.id.as_ref();
        match handle(hub, socket, message) {
            Ok(Some(reply)) => {
                let reply = with_id(reply, id);
                match message.id_field("group").filter(|_| message.kind == "join") {
                    // Held until this node's subscription to the group is
                    // confirmed: once the client has its reply, messages
                    // other nodes send to the group reach it.
                    Some(group) => {
                        let _ = hub.send_when_group_ready(socket, &group, &reply);
                    }
                    None => {
                        let _ = hub.send_to_socket(socket, &reply);
                    }
                }
            }
            Ok(None) => {}
            Err((code, text)) => {
                hub.reply_error_with_id(socket, code, &text, Some(&message.kind), id);
            }
        }
    }
}

type Outcome = Result<Option<Value>, (&'static str, String)>;

fn refuse(code: &'static str, text: impl Into<String>) -> (&'static str, String) {
    (code, text.into())
}

fn handle(hub: &mut Hub, socket: SocketId, message: &Envelope) -> Outcome {
    let kind = message.kind.as_str();
    let known = matches!(
        kind,
        "join" | "leave" | "send_to_all" | "send_to_group" | "send_to_client"
    );
    if !known {
        return Err(refuse(
            codes::UNKNOWN_TYPE,
            format!("unknown message type {kind:?}"),
        ));
    }
    let Some(client_id) = hub.client_id(socket).map(str::to_owned) else {
        return Err(refuse(codes::NOT_BOUND, "bind a client_id first"));
    };
    let config = hub.config();
    let allowed = match kind {
        "join" | "leave" => config.allow_join,
        "send_to_all" => config.allow_send_to_all,
        "send_to_group" => config.allow_send_to_group,
        _ => config.allow_send_to_client,
    };
    if !allowed {
        return Err(refuse(
            codes::FORBIDDEN,
            format!("{kind} is disabled on this server"),
        ));
    }
    let field = |name: &str| {
        message
            .id_field(name)
            .ok_or_else(|| refuse(codes::BAD_REQUEST, format!("data.{name} (string) required")))
    };
    let from = json!({ "socket_id": socket.to_string(), "client_id": client_id });
    match kind {
        "join" => {
            let group = field("group")?;
            match hub.join_group(socket, &group) {
                Ok(_) => Ok(Some(envelope("join", json!({ "group": group })))),
                Err(e @ (HubError::TooManyGroups | HubError::GroupBytesExceeded)) => {
                    Err(refuse(codes::TOO_MANY_GROUPS, e.to_string()))
                }
                Err(e) => Err(refuse(codes::BAD_REQUEST, e.to_string())),
            }
        }
        "leave" => {
            let group = field("group")?;
            hub.leave_group(socket, &group);
            Ok(Some(envelope("leave", json!({ "group": group }))))
        }
        _ => {
            let body = message
                .data
                .get("message")
                .cloned()
                .ok_or_else(|| refuse(codes::BAD_REQUEST, "data.message required"))?;
            let (to, target) = match kind {
                "send_to_group" => {
                    let group = field("group")?;
                    (json!({ "group": group }), group)
                }
                "send_to_client" => {
                    let id = field("client_id")?;
                    (json!({ "client": id }), id)
                }
                _ => (json!({ "all": true }), String::new()),
            };
            let out = envelope(
                "message",
                json!({ "from": from, "to": to, "message": body }),
            );
            let out = serde_json::to_string(&out).unwrap_or_default();
            let config = hub.config();
            if out.len() as u64 > config.max_message_size + config.envelope_overhead() as u64 {
                return Err(refuse(
                    codes::TOO_LARGE,
                    "the message in its envelope is over max_message_size",
                ));
            }
            let audience = match kind {
                "send_to_group" => Audience::Group(&target),
                "send_to_client" => Audience::Client(&target),
                _ => Audience::All,
            };
            let cost = hub.audience(audience) * frame_len(out.len(), false);
            if !hub.charge_fanout(socket, cost) {
                hub.metrics.fanout_rate_limited += 1;
                return Err(refuse(
                    codes::RATE_LIMITED,
                    "sending faster than client_fanout_rate allows; try again later",
                ));
            }
            match audience {
                Audience::Group(group) => hub.send_to_group(group, &out, &[]),
                Audience::Client(client) => hub.send_to_client(client, &out),
                _ => hub.send_to_all(&out),
            };
            Ok(None)
        }
    }
}

/// A duration as JSON seconds: an integer when whole (`30`), else a fraction (`0.5`).
fn seconds(d: std::time::Duration) -> Value {
    if d.subsec_nanos() == 0 {
        json!(d.as_secs())
    } else {
        json!(d.as_secs_f64())
    }
}
