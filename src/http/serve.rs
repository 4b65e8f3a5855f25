//! Serving one plain HTTP request on a connection in the `Http` phase.
//!
//! Requests are HTTP/1.1 with keep-alive (HTTP/1.0 closes after the response
//! unless it asks for keep-alive). Bodies come with `Content-Length` only:
//! `Transfer-Encoding` is refused (501, or 400 with `Content-Length` too, since
//! that pair is a request-smuggling vector) and the connection closed. A body
//! over `max_http_body` is refused with 413 as soon as its length is known,
//! without reading it.

use gmws_protocol::handshake::Request;

use crate::config::Config;
use crate::handler::Handler;
use crate::http::response::Response;
use crate::hub::Hub;

/// What became of the request at the head of a connection's input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HttpOutcome {
    /// The body has not fully arrived.
    NeedMore,
    /// A response is queued (the connection may be closing).
    Done,
}

/// Serve the request whose head (`head_len` bytes) starts the input of slot `key`.
pub(crate) fn handle<H: Handler>(
    hub: &mut Hub,
    handler: &mut H,
    key: usize,
    request: &Request,
    head_len: usize,
    config: &Config,
) -> HttpOutcome {
    let _ = handler;
    let body_len = match body_length(request) {
        Ok(len) => len,
        Err((status, message)) => {
            respond(hub, key, &Response::error(status, message), false, false);
            return HttpOutcome::Done;
        }
    };
    if body_len > config.max_http_body {
        respond(
            hub,
            key,
            &Response::error(413, "request body too large"),
            false,
            false,
        );
        return HttpOutcome::Done;
    }
    let Some(conn) = hub.conns.get_mut(key) else {
        return HttpOutcome::Done;
    };
    if conn.input.len() < head_len + body_len {
        return HttpOutcome::NeedMore;
    }
    let body: Vec<u8> = conn
        .input
        .drain(..head_len + body_len)
        .skip(head_len)
        .collect();
    let keep_alive = wants_keep_alive(request);
    let head_only = request.method == "HEAD";
    let response = builtin(request, &body);
    hub.metrics.http_requests += 1;
    respond(hub, key, &response, keep_alive, head_only);
    HttpOutcome::Done
}

/// The built-in routes.
fn builtin(request: &Request, _body: &[u8]) -> Response {
    let path = request.path.split('?').next().unwrap_or("");
    match (request.method.as_str(), path) {
        ("GET" | "HEAD", "/healthz") => Response::text(200, "ok\n"),
        (_, "/healthz") => {
            Response::error(405, "method not allowed").with_header("Allow", "GET, HEAD")
        }
        _ => Response::error(404, "not found"),
    }
}

/// Queue `response`; without keep-alive, close the connection after it.
fn respond(hub: &mut Hub, key: usize, response: &Response, keep_alive: bool, head_only: bool) {
    let mut out = Vec::new();
    response.write_to(&mut out, keep_alive, head_only);
    hub.queue_raw(key, &out);
    if !keep_alive {
        if let Some(conn) = hub.conns.get_mut(key) {
            conn.discard_input = true;
            conn.shutdown_after_flush = true;
            conn.input = Vec::new();
        }
    }
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
