//! A plain HTTP request as routes see it.

use std::net::SocketAddr;

use serde_json::Value;

use super::router::{Method, Params};

/// A complete HTTP request: head, body, route parameters and the peer.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The path, without the query string.
    pub path: String,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The route's `:param` values.
    pub params: Params,
    /// Header names and raw values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
    /// The peer's address, when the socket still knows it.
    pub peer: Option<SocketAddr>,
}

impl HttpRequest {
    /// The first value of header `name` (case-insensitive), as trimmed text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// A route parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The body parsed as JSON (an empty body is an error).
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("invalid JSON body: {e}"))
    }

    /// Whether the peer is on a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.peer.is_some_and(|p| p.ip().is_loopback())
    }
}
