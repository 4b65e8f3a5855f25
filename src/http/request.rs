//! A plain HTTP request as routes see it.

use std::net::{IpAddr, SocketAddr};

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

    /// Whether the peer is on a loopback address ([`is_loopback_ip`]); a
    /// peer the socket no longer knows is not.
    pub fn is_loopback(&self) -> bool {
        self.peer.is_some_and(|p| is_loopback_ip(p.ip()))
    }
}

/// Whether `ip` is a loopback address: IPv4 `127.0.0.0/8`, IPv6 `::1`, or an
/// IPv4-mapped IPv6 loopback address (`::ffff:127.0.0.1`, how an IPv4 peer of
/// a dual-stack IPv6 listener appears). The deprecated IPv4-compatible form
/// (`::127.0.0.1`) is not loopback: no socket reports a peer that way.
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        for ip in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.254",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.1.2.3",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_loopback_ip(ip), "{ip}");
        }
        for ip in [
            "128.0.0.1",
            "126.255.255.255",
            "0.0.0.0",
            "10.0.0.1",
            "192.0.2.1",
            "::",
            "::2",
            "::ffff:10.0.0.1",
            "::ffff:128.0.0.1",
            "::127.0.0.1",
            "fe80::1",
            "fd00::1",
            "2001:db8::1",
            "::1:0:0:1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_loopback_ip(ip), "{ip}");
        }
    }
}
