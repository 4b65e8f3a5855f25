//! The opening handshake (RFC 6455 §4), server and client roles.
//!
//! Server: [`parse_request`] reads an HTTP/1.1 request head (httparse, bounded
//! by [`HeadLimits`]); [`Request::is_websocket_upgrade`] tells an upgrade from a
//! plain HTTP request; [`validate_upgrade`] checks it and yields the
//! `Sec-WebSocket-Accept` value and the chosen subprotocol;
//! [`write_accept_response`] and [`write_error_response`] build the answers.
//!
//! Client: [`client_request`] builds a request from a caller-supplied random
//! key (refusing a host, path or subprotocol that would break the head);
//! [`parse_response`] validates the server's 101 against the resulting
//! [`ClientHandshake`]: status, `Upgrade`, `Connection`, the accept key, and
//! no subprotocol or extension that was not offered.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::deflate::{negotiate, Agreement, DeflatePolicy};
use crate::error::HandshakeError;

/// The GUID appended to the key before hashing (§1.3).
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Bounds on a request head. Over either: HTTP 431.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeadLimits {
    /// Most bytes in the request line and headers, final CRLF included (default 8 KiB).
    pub max_head_bytes: usize,
    /// Most header lines (default 64).
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
        }
    }
}

impl HeadLimits {
    /// Limits of `max_head_bytes` bytes and `max_headers` header lines.
    pub fn new(max_head_bytes: usize, max_headers: usize) -> Self {
        HeadLimits {
            max_head_bytes,
            max_headers,
        }
    }
}

/// A parsed HTTP/1.x request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (`GET`, `POST`, …).
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header names and raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name` as UTF-8 text, trimmed.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// Every value of header `name`.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether any `name` header holds `token` in its comma-separated list
    /// (both compared case-insensitively).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name).any(|value| {
            value
                .split(|&b| b == b',')
                .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request must carry exactly one `Host`
    /// header; a request of any version with more than one is refused too (a
    /// proxy and the server could each read a different one). HTTP/1.0 may
    /// omit it. Both refusals are 400. The value itself is not checked (an
    /// empty `Host` is valid for a target without an authority).
    ///
    /// [`validate_upgrade`] applies this to upgrades; a server applies it to
    /// plain HTTP requests itself.
    pub fn check_host(&self) -> Result<(), HandshakeError> {
        let mut hosts = self.headers_named("host");
        match (hosts.next(), hosts.next()) {
            (Some(_), Some(_)) => Err(HandshakeError::DuplicateHost),
            (None, _) if self.minor_version >= 1 => Err(HandshakeError::MissingHost),
            _ => Ok(()),
        }
    }

    /// Whether this request asks for a WebSocket (an `Upgrade: websocket`
    /// token). Such requests go to [`validate_upgrade`]; all others are plain HTTP.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }
}

/// Parse a request head from the start of `buf`.
///
/// `Ok(None)`: incomplete (and still within the limits). `Ok(Some((request,
/// head_len)))`: the head ended at `head_len`; any bytes after it are a body or
/// the next request.
pub fn parse_request(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(Request, usize)>, HandshakeError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let status = req.parse(buf).map_err(|e| match e {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders,
        _ => HandshakeError::Malformed,
    });
    match status {
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                Err(HandshakeError::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > limits.max_head_bytes {
                return Err(HandshakeError::HeadTooLarge);
            }
            let request = Request {
                method: req.method.unwrap_or_default().to_owned(),
                path: req.path.unwrap_or_default().to_owned(),
                minor_version: req.version.unwrap_or(0),
                headers: req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), h.value.to_owned()))
                    .collect(),
            };
            Ok(Some((request, len)))
        }
        // A head past the byte limit is reported as such, even if malformed later.
        Err(_) if buf.len() > limits.max_head_bytes => Err(HandshakeError::HeadTooLarge),
        Err(e) => Err(e),
    }
}

/// What the server accepts in an upgrade.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpgradePolicy {
    /// Allowed `Origin` values (exact, case-insensitive); empty allows any origin
    /// and requests without one.
    pub allowed_origins: Vec<String>,
    /// Subprotocols the server speaks; the first one the client offers (in the
    /// client's order) is chosen. Empty: none is negotiated.
    pub protocols: Vec<String>,
    /// permessage-deflate (RFC 7692) on these terms, when the client offers
    /// it; `None`: never negotiated.
    pub deflate: Option<DeflatePolicy>,
}

/// A validated upgrade: what goes into the 101 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// The chosen subprotocol, if any.
    pub protocol: Option<String>,
    /// permessage-deflate as agreed, if the client offered it and the
    /// policy allows it (answered in `Sec-WebSocket-Extensions`).
    pub deflate: Option<Agreement>,
}

/// Validate a WebSocket upgrade request (§4.2.1): GET, HTTP/1.1, exactly one
/// `Host` ([`Request::check_host`]), the `Upgrade` and `Connection` tokens,
/// version 13, one key of 16 bytes, and an allowed `Origin`. The first failed
/// rule is the error; [`HandshakeError::status`] gives its HTTP status.
pub fn validate_upgrade(req: &Request, policy: &UpgradePolicy) -> Result<Accept, HandshakeError> {
    if req.method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if req.minor_version < 1 {
        return Err(HandshakeError::HttpVersion);
    }
    req.check_host()?;
    if !req.is_websocket_upgrade() {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    if !req.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if req.header_str("sec-websocket-version") != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = req.headers_named("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.trim_ascii(),
        _ => return Err(HandshakeError::BadKey),
    };
    match BASE64.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    if !policy.allowed_origins.is_empty() {
        let origin = req.header_str("origin").unwrap_or("");
        if !policy
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return Err(HandshakeError::OriginNotAllowed);
        }
    }
    let deflate = policy.deflate.as_ref().and_then(|deflate| {
        let offers: Vec<&str> = req
            .headers_named("sec-websocket-extensions")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .collect();
        negotiate(&offers, deflate)
    });
    Ok(Accept {
        accept_key: accept_key(key),
        protocol: choose_protocol(req, &policy.protocols),
        deflate,
    })
}

fn choose_protocol(req: &Request, supported: &[String]) -> Option<String> {
    if supported.is_empty() {
        return None;
    }
    req.headers_named("sec-websocket-protocol")
        .flat_map(|v| v.split(|&b| b == b','))
        .filter_map(|p| std::str::from_utf8(p.trim_ascii()).ok())
        .find_map(|p| supported.iter().find(|s| s.as_str() == p).cloned())
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key ++ GUID)) (§4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID);
    BASE64.encode(sha.finalize())
}

/// Append the `101 Switching Protocols` response to `out`.
pub fn write_accept_response(out: &mut Vec<u8>, accept: &Accept) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.accept_key.as_bytes());
    if let Some(protocol) = &accept.protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
    }
    if let Some(deflate) = &accept.deflate {
        out.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
        out.extend_from_slice(deflate.response.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// Append the error response for a refused handshake to `out`: the status, a
/// plain-text reason, `Connection: close`, and for a version mismatch
/// `Sec-WebSocket-Version: 13` (§4.4).
pub fn write_error_response(out: &mut Vec<u8>, err: HandshakeError) {
    let status = err.status();
    let body = err.reason();
    let extra = match err {
        HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version: 13\r\n",
        HandshakeError::NotWebSocketUpgrade | HandshakeError::MissingConnectionUpgrade => {
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        }
        HandshakeError::MethodNotAllowed => "Allow: GET\r\n",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        status_reason(status),
        body.len() + 1,
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
}

fn status_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// What a client keeps between [`client_request`] and [`parse_response`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHandshake {
    /// The `Sec-WebSocket-Accept` value the server must answer with.
    pub accept_key: String,
    /// The subprotocols offered, in order of preference.
    pub protocols: Vec<String>,
}

/// Build a client upgrade request for `host` and `path` with a caller-drawn
/// random `key` (16 bytes), offering `protocols`. Returns the request bytes
/// and what [`parse_response`] checks the answer against.
///
/// `host` must be visible ASCII; `path` visible ASCII starting with `/`
/// (percent-encode anything else); each subprotocol an HTTP token, none
/// repeated (RFC 6455 §4.1). Anything else is
/// [`HandshakeError::InvalidClientRequest`], so no caller-supplied string can
/// inject a header or end the head early.
pub fn client_request(
    host: &str,
    path: &str,
    key: [u8; 16],
    protocols: &[&str],
) -> Result<(Vec<u8>, ClientHandshake), HandshakeError> {
    let unique = protocols
        .iter()
        .enumerate()
        .all(|(i, p)| !protocols[..i].contains(p));
    if !is_visible_ascii(host)
        || !is_request_path(path)
        || !protocols.iter().all(|p| is_token(p))
        || !unique
    {
        return Err(HandshakeError::InvalidClientRequest);
    }
    let key = BASE64.encode(key);
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        req.push_str("Sec-WebSocket-Protocol: ");
        req.push_str(&protocols.join(", "));
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let handshake = ClientHandshake {
        accept_key: accept_key(key.as_bytes()),
        protocols: protocols.iter().map(|p| (*p).to_owned()).collect(),
    };
    Ok((req.into_bytes(), handshake))
}

/// Whether [`client_request`] accepts `path`: visible ASCII (no spaces or
/// control characters: percent-encode them) starting with `/`.
pub fn is_request_path(path: &str) -> bool {
    path.starts_with('/') && is_visible_ascii(path)
}

/// Whether `s` is non-empty and all visible ASCII (`!` to `~`).
fn is_visible_ascii(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2: one or more tchar).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A server's validated handshake response, client side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The subprotocol the server chose, if any (always one that was offered).
    pub protocol: Option<String>,
}

/// Parse and validate the server's response to [`client_request`].
///
/// `Ok(None)`: incomplete. `Ok(Some((response, head_len)))`: a valid 101; bytes
/// after `head_len` are already WebSocket frames. A non-101 status, a missing
/// `Upgrade`/`Connection` token or a wrong accept key is
/// [`HandshakeError::BadResponse`]; a subprotocol that was not offered,
/// [`HandshakeError::UnofferedSubprotocol`]; any extension (none is offered),
/// [`HandshakeError::UnofferedExtension`].
pub fn parse_response(
    buf: &[u8],
    handshake: &ClientHandshake,
) -> Result<Option<(Response, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= HeadLimits::default().max_head_bytes => {
            return Ok(None)
        }
        Ok(httparse::Status::Partial) => return Err(HandshakeError::HeadTooLarge),
        Err(_) => return Err(HandshakeError::Malformed),
    };
    let named = |name: &'static str| {
        resp.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let header = |name: &'static str| {
        named(name)
            .next()
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let ok = resp.code == Some(101)
        && header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && header("connection").is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
        && header("sec-websocket-accept") == Some(handshake.accept_key.as_str());
    // The server picks one subprotocol at most: a second header line is as
    // wrong as a list.
    if !ok || named("sec-websocket-protocol").count() > 1 {
        return Err(HandshakeError::BadResponse);
    }
    let protocol = match header("sec-websocket-protocol") {
        None => None,
        Some(p) if handshake.protocols.iter().any(|offered| offered == p) => Some(p.to_owned()),
        Some(_) => return Err(HandshakeError::UnofferedSubprotocol),
    };
    if named("sec-websocket-extensions").any(|h| !h.value.iter().all(u8::is_ascii_whitespace)) {
        return Err(HandshakeError::UnofferedExtension);
    }
    Ok(Some((Response { protocol }, len)))
}

#[cfg(test)]
mod tests;
