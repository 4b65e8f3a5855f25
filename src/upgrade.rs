//! The application at the upgrade: [`crate::Handler::on_upgrade`] sees the
//! request of a WebSocket handshake (after the protocol's own checks: method,
//! version, key, `Origin` policy) and accepts it — choosing a subprotocol,
//! attaching a client id or a session to the socket — or refuses it with a
//! status and a body.
//!
//! This is where token-in-query or cookie auth, per-path endpoints and
//! per-peer policies live:
//!
//! ```
//! use gmws::upgrade::{Upgrade, UpgradeRequest};
//!
//! fn decide(request: &UpgradeRequest<'_>) -> Upgrade {
//!     match (request.path(), request.cookie("session")) {
//!         ("/chat", Some(token)) if token == "s3cret" => Upgrade::accept().with_client_id("alice"),
//!         ("/chat", _) => Upgrade::refuse(401, "log in first"),
//!         _ => Upgrade::refuse(404, "no such endpoint"),
//!     }
//! }
//! ```

use std::net::SocketAddr;

use gmws_protocol::handshake::Request;
use serde_json::Value;

/// A WebSocket upgrade request, as the application sees it.
#[derive(Debug)]
pub struct UpgradeRequest<'a> {
    request: &'a Request,
    peer: SocketAddr,
    negotiated: Option<&'a str>,
}

impl<'a> UpgradeRequest<'a> {
    pub(crate) fn new(
        request: &'a Request,
        peer: SocketAddr,
        negotiated: Option<&'a str>,
    ) -> UpgradeRequest<'a> {
        UpgradeRequest {
            request,
            peer,
            negotiated,
        }
    }

    /// The method (always `GET` for an upgrade).
    pub fn method(&self) -> &str {
        &self.request.method
    }

    /// The path, without the query string.
    pub fn path(&self) -> &str {
        let target = self.request.path.as_str();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string (after `?`), undecoded; empty if there is none.
    pub fn raw_query(&self) -> &str {
        self.request.path.split_once('?').map_or("", |(_, q)| q)
    }

    /// The query's pairs, percent-decoded (`+` is a space), in order.
    pub fn query(&self) -> Vec<(String, String)> {
        crate::http::router::parse_query(&self.request.path)
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The first value of header `name` (case-insensitive), as trimmed text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.header_str(name)
    }

    /// Every header, name and raw value, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The cookies of every `Cookie` header, as `name=value` pairs (values
    /// taken as they are, without quotes' special meaning).
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.request
            .headers_named("cookie")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                Some((name.trim(), value.trim()))
            })
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The `Origin` header, if any.
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }

    /// The peer's address (the proxy's, behind a reverse proxy).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        self.request
            .headers_named("sec-websocket-protocol")
            .flat_map(|v| v.split(|&b| b == b','))
            .filter_map(|p| std::str::from_utf8(p.trim_ascii()).ok())
            .filter(|p| !p.is_empty())
    }

    /// The subprotocol the server's `protocols` setting would choose (the
    /// first the client offers that the server lists), if any.
    pub fn negotiated_protocol(&self) -> Option<&str> {
        self.negotiated
    }
}

/// The application's answer to an upgrade request.
#[derive(Clone, Debug, PartialEq)]
pub enum Upgrade {
    /// Open the WebSocket.
    Accept(Accepted),
    /// Answer with an HTTP error and close.
    Refuse {
        /// The status (400-599; anything else is sent as 403).
        status: u16,
        /// The body, sent as `{"error": body}`.
        body: String,
    },
}

/// What an accepted upgrade brings to its socket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accepted {
    /// The subprotocol to answer with: `None` takes the server's own
    /// negotiation (the `protocols` setting), `Some(None)` answers none.
    pub(crate) protocol: Option<Option<String>>,
    /// A client id to bind the socket to before `on_connect`.
    pub(crate) client_id: Option<String>,
    /// A session to give the socket before `on_connect`.
    pub(crate) session: Option<Value>,
}

impl Upgrade {
    /// Accept, with the subprotocol the server's `protocols` setting picks.
    pub fn accept() -> Upgrade {
        Upgrade::Accept(Accepted::default())
    }

    /// Refuse with `status` and a body saying why.
    pub fn refuse(status: u16, body: impl Into<String>) -> Upgrade {
        Upgrade::Refuse {
            status,
            body: body.into(),
        }
    }

    /// Answer with subprotocol `protocol` (it must be one the client offered:
    /// RFC 6455 §4.2.2; otherwise the upgrade fails with 500 and an error
    /// is logged), or with none.
    pub fn with_protocol(self, protocol: Option<&str>) -> Upgrade {
        self.map_accepted(|a| a.protocol = Some(protocol.map(str::to_owned)))
    }

    /// Bind the socket to `client_id` as it opens (as if it had sent `bind`),
    /// e.g. after authenticating a cookie or a token in the query.
    pub fn with_client_id(self, client_id: impl Into<String>) -> Upgrade {
        let client_id = client_id.into();
        self.map_accepted(|a| a.client_id = Some(client_id))
    }

    /// Give the socket `session` as it opens.
    pub fn with_session(self, session: Value) -> Upgrade {
        self.map_accepted(|a| a.session = Some(session))
    }

    fn map_accepted(self, f: impl FnOnce(&mut Accepted)) -> Upgrade {
        match self {
            Upgrade::Accept(mut a) => {
                f(&mut a);
                Upgrade::Accept(a)
            }
            refused => refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmws_protocol::handshake::{parse_request, HeadLimits};

    fn request(head: &str) -> Request {
        parse_request(head.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn the_request_reads_as_the_application_needs() {
        let r = request(
            "GET /chat/room?token=a%20b&x=1 HTTP/1.1\r\nHost: h\r\nOrigin: https://app\r\nCookie: a=1; session=s3; b=2\r\nCookie: c=3\r\nSec-WebSocket-Protocol: v2, v1\r\n\r\n",
        );
        let peer: SocketAddr = "10.0.0.7:5555".parse().unwrap();
        let u = UpgradeRequest::new(&r, peer, Some("v1"));
        assert_eq!(u.method(), "GET");
        assert_eq!(u.path(), "/chat/room");
        assert_eq!(u.raw_query(), "token=a%20b&x=1");
        assert_eq!(u.query_param("token").as_deref(), Some("a b"));
        assert_eq!(u.query_param("nope"), None);
        assert_eq!(u.cookie("session"), Some("s3"));
        assert_eq!(u.cookie("c"), Some("3"));
        assert_eq!(u.cookies().count(), 4);
        assert_eq!(u.origin(), Some("https://app"));
        assert_eq!(u.peer_addr(), peer);
        assert_eq!(u.protocols().collect::<Vec<_>>(), ["v2", "v1"]);
        assert_eq!(u.negotiated_protocol(), Some("v1"));
        assert_eq!(u.header("HOST"), Some("h"));
    }

    #[test]
    fn answers_compose() {
        let a = Upgrade::accept()
            .with_client_id("alice")
            .with_protocol(Some("v2"))
            .with_session(serde_json::json!({"k": 1}));
        let Upgrade::Accept(a) = a else {
            panic!("accepted")
        };
        assert_eq!(a.client_id.as_deref(), Some("alice"));
        assert_eq!(a.protocol, Some(Some("v2".to_owned())));
        assert!(a.session.is_some());
        // A refusal stays a refusal.
        assert_eq!(
            Upgrade::refuse(401, "no").with_client_id("x"),
            Upgrade::refuse(401, "no")
        );
    }
}
