//! `/api` answers that come from the whole cluster (issue 11: "/api on any
//! node acts on the whole cluster"): `GET /api/clients/:id` and
//! `GET /api/groups/:group` on a node of a cluster are answered from Redis
//! (one command each, see [`crate::cluster::presence`]), never by asking
//! every node.
//!
//! Redis answers on its own thread, so the request is *parked*: the
//! connection stays in its HTTP state with reading paused (pipelined
//! requests wait, unparsed), the question goes to Redis with a token, and
//! the answer comes back to the owning loop as a bus command
//! ([`Command::HttpReply`]) that queues the response and resumes the
//! connection. Redis unreachable before asking: 503 at once; Redis failing
//! or timing out: 503 or 504 with a JSON error; no answer by the loop's own
//! deadline (the reply lost on a full inbox): 504.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::api::ApiRoute;
use crate::bus::{Bus, Command};
use crate::cluster::redis::RedisError;
use crate::cluster::{ClusterError, GroupPresence};
use crate::http::request::HttpRequest;
use crate::http::response::Response;
use crate::hub::Hub;
use crate::socket_id::SocketId;

/// Tokens of parked requests, unique in the process.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Past the Redis client's own command timeout, how long a loop still waits
/// for an answer before it answers 504 itself.
const GRACE: Duration = Duration::from_secs(1);

/// A request waiting for the cluster's answer, on its loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parked {
    /// Matches the [`Command::HttpReply`] that answers it.
    pub token: u64,
    /// The connection (its generation guards against a reused slot).
    pub conn: SocketId,
    /// Keep the connection after the response.
    pub keep_alive: bool,
    /// A HEAD request: no body in the response.
    pub head_only: bool,
    /// The hub clock (ms) past which the loop answers 504 itself.
    pub deadline: u64,
}

/// Whether `route` is answered from the cluster on this hub.
pub(super) fn from_cluster(hub: &Hub, route: ApiRoute) -> bool {
    hub.cluster().is_some() && matches!(route, ApiRoute::Client | ApiRoute::Group)
}

/// Ask the cluster for the answer to `request` (on connection `conn`):
/// `Ok(token, deadline)` once the question is on its way, `Err(response)`
/// to answer at once (Redis unreachable).
pub(super) fn ask(
    hub: &Hub,
    conn: SocketId,
    route: ApiRoute,
    request: &HttpRequest,
) -> Result<(u64, u64), Response> {
    let Some(cluster) = hub.cluster() else {
        return Err(Response::error(500, "not in a cluster"));
    };
    if !cluster.is_reachable() {
        return Err(failure(&ClusterError::Unreachable));
    }
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let wait = cluster.options.command_timeout + GRACE;
    let deadline = hub.now.saturating_add(crate::hub::millis(wait));
    let answer = Answer {
        bus: Arc::clone(&hub.bus),
        conn,
        token,
    };
    match route {
        ApiRoute::Client => {
            let client = request.param("client_id").unwrap_or_default();
            cluster.client_sockets(client, move |r| answer.send(r.map(client_json)));
        }
        _ => {
            let group = request.param("group").unwrap_or_default();
            cluster.group_members(group, move |r| answer.send(r.map(group_json)));
        }
    }
    Ok((token, deadline))
}

/// Where an answer goes back to.
struct Answer {
    bus: Arc<Bus>,
    conn: SocketId,
    token: u64,
}

impl Answer {
    /// Post the response to the connection's loop (on the Redis thread). A
    /// full inbox loses it: the loop's deadline answers 504 instead.
    fn send(self, result: Result<serde_json::Value, ClusterError>) {
        let response = match result {
            Ok(body) => Response::json(200, &body),
            Err(e) => failure(&e),
        };
        let command = Command::HttpReply {
            conn: self.conn,
            token: self.token,
            response,
        };
        if let Err(e) = self.bus.post(usize::from(self.conn.loop_index()), command) {
            log::warn!("socket {}: a cluster answer was lost: {e}", self.conn);
        }
    }
}

fn client_json(sockets: Vec<SocketId>) -> serde_json::Value {
    let sockets: Vec<String> = sockets.iter().map(SocketId::to_string).collect();
    json!({ "online": !sockets.is_empty(), "sockets": sockets, "cluster": true })
}

fn group_json(group: GroupPresence) -> serde_json::Value {
    let members: Vec<String> = group.sockets.iter().map(SocketId::to_string).collect();
    json!({
        "sockets": members.len(),
        "clients": group.clients,
        "members": members,
        "cluster": true,
    })
}

/// The response for a cluster that could not answer: 504 for a timeout,
/// 503 otherwise.
pub(crate) fn failure(e: &ClusterError) -> Response {
    let status = match e {
        ClusterError::Redis(RedisError::Timeout) => 504,
        _ => 503,
    };
    Response::json(
        status,
        &json!({
            "error": format!("cluster unreachable: {e}"),
            "cluster": "unreachable",
        }),
    )
}

/// The response when the loop's own deadline passes first.
pub(crate) fn timed_out() -> Response {
    Response::json(
        504,
        &json!({
            "error": "cluster unreachable: no answer from Redis in time",
            "cluster": "unreachable",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_unreachable_with_503_or_504() {
        let r = failure(&ClusterError::Redis(RedisError::Timeout));
        assert_eq!(r.status, 504);
        let r = failure(&ClusterError::Unreachable);
        assert_eq!(r.status, 503);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["cluster"], "unreachable");
        assert_eq!(timed_out().status, 504);
    }

    #[test]
    fn answers_have_the_local_shape() {
        let v = client_json(vec![SocketId::from_u64(9)]);
        assert_eq!(
            v,
            json!({"online": true, "sockets": ["9"], "cluster": true})
        );
        let v = group_json(GroupPresence {
            sockets: vec![SocketId::from_u64(1), SocketId::from_u64(2)],
            clients: 1,
        });
        assert_eq!(v["sockets"], 2);
        assert_eq!(v["clients"], 1);
        assert_eq!(v["members"], json!(["1", "2"]));
    }
}
