//! The server API under `/api/`: push to sockets, clients, groups and all;
//! look up clients, groups and sessions; close sockets.
//!
//! Guarded by `Authorization: Bearer <api_key>` (401 otherwise). With no
//! `api_key` configured it answers loopback peers only (403 for others).
//! Messages pushed here reach sockets as
//! `{"type":"message","data":{"from":"server","to":{…},"message":…}}`.

use serde_json::{json, Map, Value};

use super::request::HttpRequest;
use super::response::Response;
use crate::hub::Hub;
use crate::message::{envelope, id_value};
use crate::socket_id::SocketId;

/// The API endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiRoute {
    /// `POST /api/send_to_all`
    SendToAll,
    /// `POST /api/send_to_client`
    SendToClient,
    /// `POST /api/send_to_group`
    SendToGroup,
    /// `POST /api/send_to_socket`
    SendToSocket,
    /// `GET /api/clients/:client_id`
    Client,
    /// `GET /api/groups/:group`
    Group,
    /// `GET /api/sockets/:socket_id/session`
    GetSession,
    /// `PUT /api/sockets/:socket_id/session`
    PutSession,
    /// `PATCH /api/sockets/:socket_id/session`
    PatchSession,
    /// `POST /api/sockets/:socket_id/close`
    Close,
}

/// Whether the request may use the API: `Err(response)` if not.
pub fn authorize(hub: &Hub, request: &HttpRequest) -> Result<(), Response> {
    match hub.config().api_key.as_deref() {
        Some(key) => {
            let given = request
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "));
            if given.is_some_and(|g| constant_time_eq(g.trim().as_bytes(), key.as_bytes())) {
                Ok(())
            } else {
                Err(Response::error(401, "missing or wrong bearer token")
                    .with_header("WWW-Authenticate", "Bearer"))
            }
        }
        None if request.is_loopback() => Ok(()),
        None => Err(Response::error(
            403,
            "no api_key configured: the API answers loopback peers only",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serve one API request (already authorized).
pub fn serve(hub: &mut Hub, route: ApiRoute, request: &HttpRequest) -> Response {
    match run(hub, route, request) {
        Ok(response) => response,
        Err((status, message)) => Response::error(status, &message),
    }
}

type ApiResult = Result<Response, (u16, String)>;

fn bad(message: impl Into<String>) -> (u16, String) {
    (400, message.into())
}

fn run(hub: &mut Hub, route: ApiRoute, request: &HttpRequest) -> ApiResult {
    match route {
        ApiRoute::SendToAll
        | ApiRoute::SendToClient
        | ApiRoute::SendToGroup
        | ApiRoute::SendToSocket => send(hub, route, request),
        ApiRoute::Client => {
            let client_id = request.param("client_id").unwrap_or_default();
            let sockets: Vec<String> = hub
                .client_sockets(client_id)
                .iter()
                .map(SocketId::to_string)
                .collect();
            Ok(Response::json(
                200,
                &json!({ "online": !sockets.is_empty(), "sockets": sockets }),
            ))
        }
        ApiRoute::Group => {
            let group = request.param("group").unwrap_or_default();
            let members: Vec<String> = hub
                .group_members(group)
                .iter()
                .map(SocketId::to_string)
                .collect();
            Ok(Response::json(
                200,
                &json!({
                    "sockets": members.len(),
                    "clients": hub.group_clients_count(group),
                    "members": members,
                }),
            ))
        }
        ApiRoute::GetSession | ApiRoute::PutSession | ApiRoute::PatchSession => {
            session(hub, route, request)
        }
        ApiRoute::Close => {
            let socket = path_socket(request)?;
            let body = if request.body.is_empty() {
                json!({})
            } else {
                request.json().map_err(bad)?
            };
            let code = match body.get("code") {
                None => 1000,
                Some(v) => v
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|c| gmws_protocol::CloseCode(*c).is_valid_on_wire())
                    .ok_or_else(|| {
                        bad("code must be a valid close code (1000-1003, 1007-1014, 3000-4999)")
                    })?,
            };
            let reason = body.get("reason").and_then(Value::as_str).unwrap_or("");
            let closed = hub.close_socket(socket, code, reason);
            Ok(Response::json(200, &json!({ "closed": closed })))
        }
    }
}

fn send(hub: &mut Hub, route: ApiRoute, request: &HttpRequest) -> ApiResult {
    let body = request.json().map_err(bad)?;
    let message = body
        .get("message")
        .ok_or_else(|| bad("field \"message\" required"))?
        .clone();
    let field = |name: &str| {
        body.get(name)
            .and_then(id_value)
            .ok_or_else(|| bad(format!("field \"{name}\" required")))
    };
    let (to, target) = match route {
        ApiRoute::SendToClient => {
            let id = field("client_id")?;
            (json!({ "client": id }), id)
        }
        ApiRoute::SendToGroup => {
            let group = field("group")?;
            (json!({ "group": group }), group)
        }
        ApiRoute::SendToSocket => {
            let id = field("socket_id")?;
            (json!({ "socket": id }), id)
        }
        _ => (json!({ "all": true }), String::new()),
    };
    let out = envelope(
        "message",
        json!({ "from": "server", "to": to, "message": message }),
    );
    let delivered = match route {
        ApiRoute::SendToClient => hub.send_to_client(&target, &out),
        ApiRoute::SendToGroup => {
            let exclude = socket_list(body.get("exclude"))?;
            hub.send_to_group(&target, &out, &exclude)
        }
        ApiRoute::SendToSocket => {
            let socket: SocketId = target
                .parse()
                .map_err(|_| bad("socket_id must be a decimal id"))?;
            usize::from(hub.send_to_socket(socket, &out))
        }
        _ => hub.send_to_all(&out),
    };
    Ok(Response::json(200, &json!({ "delivered": delivered })))
}

fn socket_list(value: Option<&Value>) -> Result<Vec<SocketId>, (u16, String)> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| bad("exclude must be a list of socket ids"))?;
    items
        .iter()
        .map(|v| {
            id_value(v)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("exclude must be a list of socket ids"))
        })
        .collect()
}

fn path_socket(request: &HttpRequest) -> Result<SocketId, (u16, String)> {
    request
        .param("socket_id")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("socket_id must be a decimal id"))
}

/// A refused session write: too large (413) or the socket is gone (404).
fn session_error(e: crate::hub::HubError) -> (u16, String) {
    match e {
        crate::hub::HubError::SessionTooLarge => (413, e.to_string()),
        _ => (404, e.to_string()),
    }
}

fn session(hub: &mut Hub, route: ApiRoute, request: &HttpRequest) -> ApiResult {
    let socket = path_socket(request)?;
    if !hub.is_socket_online(socket) {
        return Err((404, "socket not online".to_owned()));
    }
    match route {
        ApiRoute::PutSession => {
            let value = request.json().map_err(bad)?;
            hub.set_session(socket, value).map_err(session_error)?;
        }
        ApiRoute::PatchSession => {
            let Value::Object(fields) = request.json().map_err(bad)? else {
                return Err(bad("PATCH body must be a JSON object"));
            };
            hub.update_session(socket, fields).map_err(session_error)?;
        }
        _ => {}
    }
    let session = hub
        .get_session(socket)
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    Ok(Response::json(200, &session))
}
