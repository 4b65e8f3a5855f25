//! The server API under `/api/`: push to sockets, clients, groups and all;
//! look up clients, groups and sessions; close sockets.
//!
//! Guarded by `Authorization: Bearer <api_key>` (401 otherwise). With no
//! `api_key` configured it is refused (403), unless `api_trust_loopback` lets
//! loopback peers in without a key (see [`authorize`]).
//! Messages pushed here reach sockets as
//! `{"type":"message","data":{"from":"server","to":{…},"message":…}}`.

use hmac::digest::CtOutput;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::http::request::HttpRequest;
use crate::http::response::Response;
use crate::hub::{Hub, JobAction};
use crate::message::{envelope, id_value};
use crate::scheduler::JobStatus;
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
    /// `GET /api/jobs`
    Jobs,
    /// `POST /api/jobs/:name/:action` (`pause`, `resume`, `run`)
    JobAction,
    /// `GET /api/nodes`: the cluster's live nodes
    Nodes,
}

/// Whether the request may use the API: `Err(response)` if not.
///
/// * `api_key` set: the request must carry `Authorization: Bearer <api_key>`
///   (the scheme in any case, one or more spaces before the token, RFC 9110
///   §11.4), else 401 with `WWW-Authenticate: Bearer`. Loopback peers too.
///   The key is compared in constant time without revealing its length: the
///   SHA-256 digests of the given and the expected key are compared with a
///   constant-time equality.
/// * no `api_key`, `api_trust_loopback` off (the default): 403 for everyone,
///   saying to set `api_key`.
/// * no `api_key`, `api_trust_loopback` on: loopback peers
///   ([`is_loopback_ip`](super::request::is_loopback_ip)) are served without a
///   key, others get 403.
///
/// Loopback is not trusted by default because behind a reverse proxy on the
/// same host every request comes from 127.0.0.1: trusting it made the API
/// public.
pub fn authorize(hub: &Hub, request: &HttpRequest) -> Result<(), Response> {
    authorize_with(hub.config(), request)
}

fn authorize_with(config: &Config, request: &HttpRequest) -> Result<(), Response> {
    match config.api_key.as_deref() {
        Some(key) => {
            let given = request.header("authorization").and_then(bearer_token);
            if given.is_some_and(|given| key_matches(given, key)) {
                Ok(())
            } else {
                Err(Response::error(401, "missing or wrong bearer token")
                    .with_header("WWW-Authenticate", "Bearer"))
            }
        }
        None if !config.api_trust_loopback => Err(Response::error(
            403,
            "the API is disabled: set api_key and send Authorization: Bearer <api_key> \
             (or set api_trust_loopback to let loopback peers in without a key)",
        )),
        None if request.is_loopback() => Ok(()),
        None => Err(Response::error(
            403,
            "no api_key set: the API answers loopback peers only (api_trust_loopback); \
             set api_key to use it from elsewhere",
        )),
    }
}

/// The token of an `Authorization` value `Bearer <token>`: the scheme matched
/// case-insensitively, then one or more spaces (RFC 9110 §11.4:
/// `auth-scheme 1*SP token68`). `None` for another scheme or no token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    let token = rest.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Constant-time comparison that reveals neither where the keys differ nor the
/// expected key's length: both are hashed to 32 bytes, and the digests are
/// compared with `digest`'s constant-time equality (`subtle`, as `hmac`'s own
/// `verify_slice` does).
fn key_matches(given: &str, expected: &str) -> bool {
    let digest = |s: &str| CtOutput::<Sha256>::new(Sha256::digest(s.as_bytes()));
    digest(given) == digest(expected)
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
        ApiRoute::Jobs => {
            let jobs: Vec<Value> = hub.all_jobs().into_iter().map(job_json).collect();
            Ok(Response::json(200, &json!({ "jobs": jobs })))
        }
        ApiRoute::JobAction => job_action(hub, request),
        ApiRoute::Nodes => Ok(nodes(hub)),
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
            let elsewhere = hub.cluster().filter(|c| c.is_other_node(socket)).is_some();
            match hub.close_socket(socket, crate::CloseCode(code), reason) {
                // Another node's socket: asked of its node (at most once).
                Ok(()) if elsewhere => Ok(Response::json(
                    200,
                    &json!({ "closed": true, "node": socket.node() }),
                )),
                Err(crate::hub::HubError::ClusterUnreachable) => Ok(Response::json(
                    503,
                    &json!({
                        "error": "cluster unreachable: the socket's node cannot be asked",
                        "cluster": "unreachable",
                        "closed": false,
                    }),
                )),
                r => Ok(Response::json(200, &json!({ "closed": r.is_ok() }))),
            }
        }
    }
}

/// A job's state as `/api/jobs` shows it, with the loop it lives on.
fn job_json((index, status): (usize, JobStatus)) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("loop".to_owned(), json!(index));
    }
    value
}

/// `POST /api/jobs/:name/:action`: applied at once when the job is on this
/// loop (200 with its state), else posted to its loop (202: applied on that
/// loop's next turn).
fn job_action(hub: &mut Hub, request: &HttpRequest) -> ApiResult {
    let name = request.param("name").unwrap_or_default();
    let action = request.param("action").unwrap_or_default();
    let action = JobAction::parse(action).ok_or_else(|| {
        (
            404,
            format!("no job action {action:?} (pause, resume, run)"),
        )
    })?;
    let owner = hub
        .all_jobs()
        .into_iter()
        .find(|(_, s)| s.name == name)
        .map(|(index, _)| index)
        .ok_or_else(|| (404, format!("no job named {name:?}")))?;
    if owner == hub.loop_index() {
        hub.job_action(name, action)
            .map_err(|e| (404, e.to_string()))?;
        let status = hub
            .all_jobs()
            .into_iter()
            .find(|(_, s)| s.name == name)
            .map_or(Value::Null, job_json);
        return Ok(Response::json(
            200,
            &json!({ "applied": true, "job": status }),
        ));
    }
    hub.post_job_action(owner, name, action)
        .map_err(|_| (503, "the job's loop is busy; try again".to_owned()))?;
    Ok(Response::json(
        202,
        &json!({ "applied": false, "posted_to_loop": owner, "job": name }),
    ))
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
            usize::from(hub.send_to_socket(socket, &out).is_ok())
        }
        _ => hub.send_to_all(&out),
    };
    if let Err(e) = hub.cluster_send_result() {
        return Ok(Response::json(
            503,
            &json!({
                "error": format!("cluster unreachable: delivered on this node only ({e})"),
                "cluster": "unreachable",
                "delivered_locally": delivered,
            }),
        ));
    }
    Ok(Response::json(200, &json!({ "delivered": delivered })))
}

/// `GET /api/nodes`: the live nodes as the cluster thread last read their
/// leases (every quarter of `node_lease`), with the age of that reading;
/// without a cluster, this node alone.
fn nodes(hub: &Hub) -> Response {
    let Some(cluster) = hub.cluster() else {
        return Response::json(
            200,
            &json!({
                "cluster": false,
                "nodes": [{
                    "node": 0,
                    "online_sockets": hub.online_sockets(),
                    "online_clients": hub.online_clients(),
                    "groups": hub.groups_count(),
                }],
            }),
        );
    };
    let (nodes, age) = cluster.nodes();
    Response::json(
        200,
        &json!({
            "cluster": true,
            "node": cluster.node(),
            "reachable": cluster.is_reachable(),
            "age_ms": age.map(|a| a.as_millis() as u64),
            "nodes": nodes,
        }),
    )
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
        .unwrap_or_else(|| Value::Object(Map::new()));
    Ok(Response::json(200, &session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Method, Params};
    use std::net::SocketAddr;

    fn request(peer: &str, authorization: Option<&str>) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            path: "/api/clients/x".to_owned(),
            query: Vec::new(),
            params: Params::default(),
            headers: authorization
                .map(|v| ("Authorization".to_owned(), v.as_bytes().to_vec()))
                .into_iter()
                .collect(),
            body: Vec::new(),
            peer: Some(peer.parse::<SocketAddr>().unwrap()),
        }
    }

    fn status(config: &Config, peer: &str, authorization: Option<&str>) -> u16 {
        match authorize_with(config, &request(peer, authorization)) {
            Ok(()) => 200,
            Err(response) => response.status,
        }
    }

    const LOOPBACK: [&str; 4] = [
        "127.0.0.1:5000",
        "127.9.9.9:5000",
        "[::1]:5000",
        "[::ffff:127.0.0.1]:5000",
    ];
    const OTHERS: [&str; 4] = [
        "192.0.2.1:5000",
        "[2001:db8::1]:5000",
        "[::ffff:192.0.2.1]:5000",
        "[::127.0.0.1]:5000",
    ];

    #[test]
    fn without_a_key_the_api_is_refused_by_default() {
        let config = Config::default();
        assert!(!config.api_trust_loopback);
        for peer in LOOPBACK.iter().chain(&OTHERS) {
            let refusal = authorize_with(&config, &request(peer, None)).unwrap_err();
            assert_eq!(refusal.status, 403, "{peer}");
            let body = String::from_utf8(refusal.body).unwrap();
            assert!(body.contains("set api_key"), "{body}");
            assert_eq!(status(&config, peer, Some("Bearer x")), 403, "{peer}");
        }
        // No peer address at all: refused too.
        let mut unknown = request("127.0.0.1:1", None);
        unknown.peer = None;
        assert!(authorize_with(&config, &unknown).is_err());
    }

    #[test]
    fn api_trust_loopback_lets_only_loopback_peers_in() {
        let config = Config {
            api_trust_loopback: true,
            ..Config::default()
        };
        for peer in LOOPBACK {
            assert_eq!(status(&config, peer, None), 200, "{peer}");
        }
        for peer in OTHERS {
            assert_eq!(status(&config, peer, None), 403, "{peer}");
        }
        let mut unknown = request("127.0.0.1:1", None);
        unknown.peer = None;
        assert_eq!(
            authorize_with(&config, &unknown).map_err(|r| r.status),
            Err(403)
        );
    }

    #[test]
    fn with_a_key_everyone_needs_it_even_loopback_and_trusted_loopback() {
        for trust in [false, true] {
            let config = Config {
                api_key: Some("k3y".to_owned()),
                api_trust_loopback: trust,
                ..Config::default()
            };
            for peer in LOOPBACK.iter().chain(&OTHERS) {
                for good in ["Bearer k3y", "bearer k3y", "BEARER k3y", "BeArEr   k3y"] {
                    assert_eq!(status(&config, peer, Some(good)), 200, "{good:?}");
                }
                for bad in [
                    None,
                    Some(""),
                    Some("Bearer"),
                    Some("Bearer "),
                    Some("Bearerk3y"),
                    Some("Bearer k3"),
                    Some("Bearer k3y2"),
                    Some("Bearer K3Y"),
                    Some("Bearer\tk3y"),
                    Some("Basic k3y"),
                    Some("k3y"),
                    Some("Bearer  k3y x"),
                    Some("Token k3y"),
                ] {
                    let refusal = authorize_with(&config, &request(peer, bad)).unwrap_err();
                    assert_eq!(refusal.status, 401, "{bad:?}");
                    assert_eq!(refusal.header("www-authenticate"), Some("Bearer"));
                }
            }
        }
    }

    #[test]
    fn bearer_tokens_and_key_comparison() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer    abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer a b"), Some("a b"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearers abc"), None);
        assert!(key_matches("k", "k"));
        assert!(key_matches("", ""));
        assert!(!key_matches("k", "K"));
        assert!(!key_matches("k", "kk"));
        assert!(!key_matches("", "k"));
        let long = "x".repeat(10_000);
        assert!(key_matches(&long, &long));
        assert!(!key_matches(&long, &long[1..]));
    }
}
