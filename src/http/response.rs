//! Building HTTP/1.1 responses into a caller-owned `Vec<u8>`.
//!
//! A [`Response`] is a status, a list of headers and a body. The
//! constructors ([`Response::json`], [`Response::text`], [`Response::html`],
//! [`Response::error`]) set a `Content-Type` header;
//! [`Response::write_to`] serialises the whole message.
//!
//! # Framing and safety rules applied by `write_to`
//!
//! * The writer owns message framing: it always writes `Content-Length`
//!   (except where forbidden, below) and `Connection`, and **drops** any
//!   user header named `Content-Length`, `Transfer-Encoding` or `Connection`
//!   (case-insensitive), so that a handler can never produce a message with
//!   conflicting lengths. The one exception is `101 Switching Protocols`,
//!   where the user's `Connection` header (e.g. `Upgrade`) is kept and the
//!   `keep_alive` flag is ignored.
//! * Status codes outside `100..=999` are written as `500`.
//! * `1xx`, `204` and `304` responses carry no body and no `Content-Length`
//!   (RFC 9110 §8.6, §15.3.5, §15.4.5): the body, if any, is not written.
//! * For `HEAD` (`head_only`), the body is omitted but `Content-Length` still
//!   gives the length the body would have had.
//! * Header names that are not RFC 9110 tokens (empty, or containing spaces,
//!   `:`, control characters, non-ASCII, …) are **skipped** entirely.
//!   Header values have every control character other than horizontal tab
//!   (in particular CR, LF and NUL) **stripped**, and surrounding spaces and
//!   tabs trimmed, so a value can never inject extra header lines or split
//!   the response.
//! * Unknown status codes get an empty reason phrase (`HTTP/1.1 599 \r\n`),
//!   which RFC 9112 allows.

use serde_json::Value;

/// Content type set by [`Response::json`] and [`Response::error`].
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type set by [`Response::text`].
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";
/// Content type set by [`Response::html`].
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";

/// An HTTP/1.1 response ready to be serialised with [`Response::write_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// Header `(name, value)` pairs, written in order (after the framing
    /// headers that `write_to` produces itself).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with the given status, no headers and an empty body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with `body` and the given `Content-Type`.
    pub fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body,
        }
    }

    /// A compact JSON response (`Content-Type: application/json`).
    pub fn json(status: u16, value: &Value) -> Response {
        Response::with_body(status, CONTENT_TYPE_JSON, value.to_string().into_bytes())
    }

    /// A plain-text response (`Content-Type: text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::with_body(status, CONTENT_TYPE_TEXT, body.into().into_bytes())
    }

    /// An HTML response (`Content-Type: text/html; charset=utf-8`); accepts a
    /// `&'static str` page as well as a generated `String`.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::with_body(status, CONTENT_TYPE_HTML, body.into().into_bytes())
    }

    /// A JSON error response: `{"error":"<message>"}`, with the message
    /// JSON-escaped.
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    /// Appends a header (builder style). The name and value are sanitised
    /// when written, see the [module documentation](self).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends the serialised response to `out`.
    ///
    /// Writes the status line, `Content-Length`, `Connection: keep-alive` or
    /// `Connection: close`, the user headers (including `Content-Type` set by
    /// the constructors), a blank line, and the body. With `head_only` (a
    /// response to `HEAD`) the body is omitted while `Content-Length` keeps
    /// the full length. See the [module documentation](self) for the framing
    /// and sanitising rules.
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        let status = if (100..=999).contains(&self.status) {
            self.status
        } else {
            500
        };
        let informational = status < 200;
        let switching = status == 101;
        let bodyless = informational || status == 204 || status == 304;
        let send_body = !bodyless && !head_only;

        let headers_len: usize = self.headers.iter().fold(0usize, |acc, (n, v)| {
            acc.saturating_add(n.len())
                .saturating_add(v.len())
                .saturating_add(4)
        });
        let body_len = if send_body { self.body.len() } else { 0 };
        out.reserve(headers_len.saturating_add(body_len).saturating_add(64));

        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason_phrase(status).as_bytes());
        out.extend_from_slice(b"\r\n");

        if !bodyless {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(self.body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !switching {
            out.extend_from_slice(if keep_alive {
                b"Connection: keep-alive\r\n".as_slice()
            } else {
                b"Connection: close\r\n".as_slice()
            });
        }

        for (name, value) in &self.headers {
            if !is_token(name) {
                continue;
            }
            let framing = name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
                || (name.eq_ignore_ascii_case("connection") && !switching);
            if framing {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            write_sanitized_value(out, value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");

        if send_body {
            out.extend_from_slice(&self.body);
        }
    }
}

/// Whether `name` is a non-empty RFC 9110 `token` (a valid field name).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Writes `value` without control characters (except HTAB) and without
/// leading/trailing spaces or tabs.
fn write_sanitized_value(out: &mut Vec<u8>, value: &str) {
    let is_ctl = |c: char| c != '\t' && c.is_ascii_control();
    let trimmed = value.trim_matches(|c: char| c == ' ' || c == '\t' || is_ctl(c));
    if !trimmed.contains(is_ctl) {
        out.extend_from_slice(trimmed.as_bytes());
        return;
    }
    let cleaned: String = trimmed.chars().filter(|&c| !is_ctl(c)).collect();
    // Removing control characters may expose new surrounding whitespace.
    out.extend_from_slice(cleaned.trim_matches([' ', '\t']).as_bytes());
}

/// The standard reason phrase for `status` (RFC 9110 and the registry), or
/// `""` for codes without one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(r: &Response, keep_alive: bool, head_only: bool) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out, keep_alive, head_only);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_response() {
        let r = Response::json(200, &serde_json::json!({"ok": true, "n": 3}));
        assert_eq!(
            render(&r, true, false),
            "HTTP/1.1 200 OK\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\
             Content-Type: application/json\r\n\r\n{\"n\":3,\"ok\":true}"
        );
    }

    #[test]
    fn error_response_escapes_message() {
        let r = Response::error(404, "no \"such\" socket");
        assert_eq!(r.header("content-type"), Some(CONTENT_TYPE_JSON));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, serde_json::json!({"error": "no \"such\" socket"}));
        let s = render(&r, false, false);
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(s.contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn text_html_and_headers() {
        let r = Response::text(201, "created").with_header("X-Id", "42");
        assert_eq!(
            render(&r, false, false),
            "HTTP/1.1 201 Created\r\nContent-Length: 7\r\nConnection: close\r\n\
             Content-Type: text/plain; charset=utf-8\r\nX-Id: 42\r\n\r\ncreated"
        );
        let page: &'static str = "<p>hi</p>";
        let r = Response::html(200, page);
        assert_eq!(r.header("Content-Type"), Some(CONTENT_TYPE_HTML));
        assert_eq!(r.body, page.as_bytes());
        let r = Response::html(200, format!("<p>{}</p>", 1));
        assert_eq!(r.body, b"<p>1</p>");
        let r = Response::text(200, String::from("owned"));
        assert_eq!(r.body, b"owned");
    }

    #[test]
    fn head_keeps_content_length() {
        let r = Response::text(200, "hello");
        let s = render(&r, true, true);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
    }

    #[test]
    fn empty_and_bodyless_statuses() {
        assert_eq!(
            render(&Response::empty(200), true, false),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
        let r = Response::text(204, "ignored");
        assert_eq!(
            render(&r, true, false),
            "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        let s = render(&Response::text(304, "x"), false, false);
        assert!(!s.contains("Content-Length"));
        assert!(s.ends_with("\r\n\r\n"));
        let s = render(&Response::empty(100), true, false);
        assert_eq!(s, "HTTP/1.1 100 Continue\r\nConnection: keep-alive\r\n\r\n");
    }

    #[test]
    fn switching_protocols_keeps_user_connection() {
        let r = Response::empty(101)
            .with_header("Upgrade", "websocket")
            .with_header("Connection", "Upgrade")
            .with_header("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            render(&r, false, false),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn framing_headers_are_owned_by_writer() {
        let r = Response::text(200, "abc")
            .with_header("content-length", "999")
            .with_header("Transfer-Encoding", "chunked")
            .with_header("CONNECTION", "upgrade");
        let s = render(&r, true, false);
        assert_eq!(s.matches("Content-Length").count(), 1);
        assert!(s.contains("Content-Length: 3\r\n"));
        assert!(!s.to_ascii_lowercase().contains("transfer-encoding"));
        assert_eq!(s.to_ascii_lowercase().matches("connection:").count(), 1);
    }

    #[test]
    fn header_injection_is_neutralised() {
        let r = Response::empty(200)
            .with_header("Location", "/a\r\nSet-Cookie: evil=1\r\n\r\n<html>")
            .with_header("X-Null", "a\0b\tc")
            .with_header("X-Trim", "  \r\n v \n")
            .with_header("Bad Name", "x")
            .with_header("Bad\r\nName", "x")
            .with_header("Bad:Name", "x")
            .with_header("", "x")
            .with_header("X-Unicode", "café");
        let s = render(&r, true, false);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\
             Location: /aSet-Cookie: evil=1<html>\r\nX-Null: ab\tc\r\nX-Trim: v\r\n\
             X-Unicode: café\r\n\r\n"
        );
    }

    #[test]
    fn status_out_of_range_and_unknown() {
        let s = render(&Response::empty(42), false, false);
        assert!(s.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
        let s = render(&Response::empty(1000), false, false);
        assert!(s.starts_with("HTTP/1.1 500 "));
        let s = render(&Response::empty(599), false, false);
        assert!(s.starts_with("HTTP/1.1 599 \r\n"));
    }

    #[test]
    fn reason_phrases() {
        for (code, phrase) in [
            (200, "OK"),
            (201, "Created"),
            (204, "No Content"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (413, "Content Too Large"),
            (426, "Upgrade Required"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
        ] {
            assert_eq!(reason_phrase(code), phrase);
        }
        assert_eq!(reason_phrase(0), "");
        assert_eq!(reason_phrase(299), "");
    }

    #[test]
    fn appends_to_existing_buffer() {
        let mut out = b"prefix".to_vec();
        Response::empty(200).write_to(&mut out, true, false);
        assert!(out.starts_with(b"prefixHTTP/1.1 200 OK\r\n"));
    }

    proptest::proptest! {
        #[test]
        fn headers_never_break_framing(
            name in "\\PC{0,12}|[\\x00-\\x7f]{0,12}",
            value in "[\\x00-\\x7f]{0,32}|\\PC{0,16}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            status in 0u16..1200,
        ) {
            let r = Response { status, headers: vec![(name, value)], body: body.clone() };
            let mut out = Vec::new();
            r.write_to(&mut out, true, false);
            // Exactly one blank line ends the head; the head has no bare CR/LF.
            let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let head = &out[..end + 2];
            for line in head.split(|&b| b == b'\n') {
                if line.is_empty() { continue; }
                proptest::prop_assert_eq!(line.last(), Some(&b'\r'));
                proptest::prop_assert!(!line[..line.len() - 1].contains(&b'\r'));
                proptest::prop_assert!(!line.contains(&0));
            }
            let head_str = String::from_utf8_lossy(head).into_owned();
            let tail = &out[end + 4..];
            if head_str.contains("Content-Length: ") {
                proptest::prop_assert_eq!(tail, &body[..]);
            } else {
                proptest::prop_assert!(tail.is_empty());
            }
        }
    }
}
