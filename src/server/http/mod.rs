//! Serving one plain HTTP request on a connection in the `Http` state: the
//! built-in routes, the `/api/`, user routes and `Handler::on_http`.
//!
//! Requests are HTTP/1.1 with keep-alive (HTTP/1.0 closes after the response
//! unless it asks for keep-alive). Bodies come with `Content-Length` only:
//! `Transfer-Encoding` is refused (501, or 400 with `Content-Length` too, since
//! that pair is a request-smuggling vector) and the connection closed. A body
//! over `max_http_body` is refused with 413 as soon as its length is known,
//! without reading it. An HTTP/1.1 request without `Host`, or any request with
//! more than one `Host` line, is refused with 400 and the connection closed
//! (RFC 9112 §3.2, the same rule upgrades follow); HTTP/1.0 may omit `Host`.

use gmws_protocol::handshake::Request;

mod api;
mod cluster;
mod routes;

use api::ApiRoute;
pub(crate) use cluster::{timed_out, Parked};

use crate::handler::Handler;
use crate::http::request::HttpRequest;
use crate::http::response::Response;
use crate::http::router::{allow_header_value, parse_query, Method, Params, RouteMatch, Router};
use crate::hub::Hub;

/// What became of the request at the head of a connection's input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HttpOutcome {
    /// The body has not fully arrived.
    NeedMore,
    /// A response is queued; `close`: the connection ends after it.
    Done {
        /// No keep-alive: finish the connection once the response is written.
        close: bool,
    },
    /// The answer comes from the cluster: the request is parked until its
    /// [`crate::bus::Command::HttpReply`] (or its deadline) arrives.
    Parked(Parked),
}

/// A user route: called with the hub and the request, returns the response.
pub type UserRoute = super::SharedRoute;

/// What a route does.
pub(crate) enum Route {
    Healthz,
    Status,
    Metrics,
    Demo,
    GmwsJs,
    Api(ApiRoute),
    User(UserRoute),
}

/// The router with every built-in route.
pub(crate) fn builtin_router() -> Router<Route> {
    use ApiRoute as A;
    let routes = [
        (Method::Get, "/healthz", Route::Healthz),
        (Method::Get, "/status", Route::Status),
        (Method::Get, "/metrics", Route::Metrics),
        (Method::Get, "/", Route::Demo),
        (Method::Get, "/gmws.js", Route::GmwsJs),
        (Method::Post, "/api/send_to_all", Route::Api(A::SendToAll)),
        (
            Method::Post,
            "/api/send_to_client",
            Route::Api(A::SendToClient),
        ),
        (
            Method::Post,
            "/api/send_to_group",
            Route::Api(A::SendToGroup),
        ),
        (
            Method::Post,
            "/api/send_to_socket",
            Route::Api(A::SendToSocket),
        ),
        (
            Method::Get,
            "/api/clients/:client_id",
            Route::Api(A::Client),
        ),
        (Method::Get, "/api/groups/:group", Route::Api(A::Group)),
        (
            Method::Get,
            "/api/sockets/:socket_id/session",
            Route::Api(A::GetSession),
        ),
        (
            Method::Put,
            "/api/sockets/:socket_id/session",
            Route::Api(A::PutSession),
        ),
        (
            Method::Patch,
            "/api/sockets/:socket_id/session",
            Route::Api(A::PatchSession),
        ),
        (
            Method::Post,
            "/api/sockets/:socket_id/close",
            Route::Api(A::Close),
        ),
        (Method::Get, "/api/jobs", Route::Api(A::Jobs)),
        (Method::Get, "/api/nodes", Route::Api(A::Nodes)),
        (
            Method::Post,
            "/api/jobs/:name/:action",
            Route::Api(A::JobAction),
        ),
    ];
    let mut router = Router::new();
    for (method, pattern, route) in routes {
        // The built-in patterns are constants, checked by a test below.
        let _ = router.add(method, pattern, route);
    }
    router
}

/// Serve the request whose head (`head_len` bytes) starts the input of slot `key`.
pub(crate) fn handle<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    router: &mut Router<Route>,
    key: usize,
    head: &Request,
    head_len: usize,
) -> HttpOutcome {
    if let Err(e) = head.check_host() {
        respond(
            hub,
            key,
            &Response::error(e.status(), e.reason()),
            false,
            false,
        );
        return HttpOutcome::Done { close: true };
    }
    let body_len = match body_length(head) {
        Ok(len) => len,
        Err((status, message)) => {
            respond(hub, key, &Response::error(status, message), false, false);
            return HttpOutcome::Done { close: true };
        }
    };
    if body_len > hub.config().max_http_body {
        respond(
            hub,
            key,
            &Response::error(413, "request body too large"),
            false,
            false,
        );
        return HttpOutcome::Done { close: true };
    }
    let Some(conn) = hub.conns.get_mut(key) else {
        return HttpOutcome::Done { close: true };
    };
    if conn.input.len() < head_len + body_len {
        return HttpOutcome::NeedMore;
    }
    let body: Vec<u8> = conn
        .input
        .drain(..head_len + body_len)
        .skip(head_len)
        .collect();
    let peer = Some(conn.peer.addr());
    let conn_id = conn.id;
    let keep_alive = wants_keep_alive(head);
    let head_only = head.method == "HEAD";
    hub.metrics.http_requests += 1;
    let Some(method) = Method::parse(&head.method) else {
        respond(
            hub,
            key,
            &Response::error(405, "method not allowed"),
            keep_alive,
            false,
        );
        return HttpOutcome::Done { close: !keep_alive };
    };
    let mut request = HttpRequest {
        method,
        path: head.path.split('?').next().unwrap_or_default().to_owned(),
        query: parse_query(&head.path),
        params: Params::default(),
        headers: head.headers.clone(),
        body,
        peer,
    };
    let response = match router.find(method, &head.path) {
        RouteMatch::Found(_, params) => {
            request.params = params;
            match router.find_mut(method, &head.path) {
                Some(Route::Api(api_route)) if cluster::from_cluster(hub, *api_route) => {
                    let asked = api::authorize(hub, &request)
                        .and_then(|()| cluster::ask(hub, conn_id, *api_route, &request));
                    match asked {
                        Ok((token, deadline)) => {
                            return HttpOutcome::Parked(Parked {
                                token,
                                conn: conn_id,
                                keep_alive,
                                head_only,
                                deadline,
                            });
                        }
                        Err(response) => response,
                    }
                }
                Some(route) => run_route(hub, route, &request),
                None => Response::error(404, "not found"),
            }
        }
        RouteMatch::MethodNotAllowed(allowed) => Response::error(405, "method not allowed")
            .with_header("Allow", allow_header_value(&allowed)),
        RouteMatch::NotFound => guarded(|| handler.on_http(hub, &request))
            .unwrap_or_else(|| Some(Response::error(500, "internal error")))
            .unwrap_or_else(|| Response::error(404, "not found")),
    };
    respond(hub, key, &response, keep_alive, head_only);
    HttpOutcome::Done { close: !keep_alive }
}

fn run_route(hub: &mut Hub, route: &mut Route, request: &HttpRequest) -> Response {
    match route {
        Route::Healthz => routes::healthz(hub),
        Route::Status => routes::status(hub),
        Route::Metrics => routes::metrics(hub),
        Route::Demo => routes::demo(hub),
        Route::GmwsJs => routes::gmws_js(),
        Route::Api(api_route) => match api::authorize(hub, request) {
            Ok(()) => api::serve(hub, *api_route, request),
            Err(refusal) => refusal,
        },
        Route::User(f) => {
            guarded(|| f(hub, request)).unwrap_or_else(|| Response::error(500, "internal error"))
        }
    }
}

/// Run user code, turning a panic into `None` (logged).
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(_) => {
            log::error!("HTTP handler panicked; answering 500");
            None
        }
    }
}

/// Queue `response` (with `Connection: close` unless `keep_alive`).
pub(crate) fn respond(
    hub: &mut Hub,
    key: usize,
    response: &Response,
    keep_alive: bool,
    head_only: bool,
) {
    let mut out = Vec::new();
    response.write_to(&mut out, keep_alive, head_only);
    hub.queue_raw(key, &out);
}

/// The body length a request declares, or the error status to answer.
fn body_length(request: &Request) -> Result<usize, (u16, &'static str)> {
    let has_te = request.header("transfer-encoding").is_some();
    let mut lengths = request.headers_named("content-length");
    match (lengths.next(), lengths.next(), has_te) {
        (Some(_), _, true) => Err((400, "both Content-Length and Transfer-Encoding")),
        (None, _, true) => Err((501, "Transfer-Encoding not supported; send Content-Length")),
        (Some(_), Some(_), _) => Err((400, "more than one Content-Length")),
        (Some(value), None, false) => std::str::from_utf8(value)
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or((400, "invalid Content-Length")),
        (None, _, false) => Ok(0),
    }
}

/// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 closes
/// unless `Connection: keep-alive`.
fn wants_keep_alive(request: &Request) -> bool {
    if request.minor_version >= 1 {
        !request.has_token("connection", "close")
    } else {
        request.has_token("connection", "keep-alive")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_patterns_are_all_accepted() {
        assert_eq!(builtin_router().len(), 18);
    }
}
