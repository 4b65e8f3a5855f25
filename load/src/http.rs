//! The broadcast publisher over HTTP: `POST /api/send_to_group` on one
//! keep-alive connection, one request at a time, on the driver's `Poll`.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::SocketAddr;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::stats::ErrorKind;

/// Largest response head and body accepted.
const MAX_RESPONSE: usize = 64 * 1024;

/// An answer of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: u16,
    /// `delivered` from a JSON body `{"delivered":N}`, if there was one.
    pub delivered: Option<u64>,
}

/// One keep-alive HTTP connection to the server's API.
pub struct HttpPublisher {
    stream: TcpStream,
    connected: bool,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    awaiting: bool,
    host: String,
    api_key: Option<String>,
}

impl HttpPublisher {
    /// Start connecting to `addr`, registered under `token`.
    pub fn connect(
        registry: &Registry,
        token: Token,
        addr: SocketAddr,
        host: &str,
        api_key: Option<&str>,
    ) -> std::io::Result<HttpPublisher> {
        let mut stream = TcpStream::connect(addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(HttpPublisher {
            stream,
            connected: false,
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            awaiting: false,
            host: host.to_owned(),
            api_key: api_key.map(str::to_owned),
        })
    }

    /// Whether a request can be sent now (connected, no answer awaited).
    pub fn is_idle(&self) -> bool {
        self.connected && !self.awaiting
    }

    /// Send `POST /api/send_to_group` with this JSON body.
    pub fn post(&mut self, body: &str) -> Result<(), ErrorKind> {
        use std::fmt::Write as _;
        let mut head = String::with_capacity(160);
        let _ = write!(
            head,
            "POST /api/send_to_group HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(key) = &self.api_key {
            let _ = write!(head, "Authorization: Bearer {key}\r\n");
        }
        head.push_str("\r\n");
        self.out.extend_from_slice(head.as_bytes());
        self.out.extend_from_slice(body.as_bytes());
        self.awaiting = true;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        while self.connected && self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(ErrorKind::Io),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(_) => return Err(ErrorKind::Io),
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        Ok(())
    }

    /// Handle a readiness event: finish connecting, write, read. Returns the
    /// response when one is complete.
    pub fn on_event(&mut self, event: &Event) -> Result<Option<ApiResponse>, ErrorKind> {
        if !self.connected {
            match self.stream.take_error() {
                Ok(None) => {}
                _ => return Err(ErrorKind::Connect),
            }
            match self.stream.peer_addr() {
                Ok(_) => {
                    self.connected = true;
                    let _ = self.stream.set_nodelay(true);
                }
                Err(e) if e.kind() == IoKind::NotConnected && !event.is_error() => return Ok(None),
                Err(_) => return Err(ErrorKind::Connect),
            }
        }
        self.flush()?;
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ErrorKind::Closed),
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    if self.input.len() > MAX_RESPONSE {
                        return Err(ErrorKind::Protocol);
                    }
                }
                Err(e) if e.kind() == IoKind::WouldBlock => break,
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(_) => return Err(ErrorKind::Io),
            }
        }
        match parse_response(&self.input)? {
            Some((response, used)) => {
                self.input.drain(..used);
                self.awaiting = false;
                Ok(Some(response))
            }
            None => Ok(None),
        }
    }
}

/// Parse one HTTP/1.1 response with a `Content-Length` body from the start of
/// `buf`: `Ok(None)` if incomplete, else the response and the bytes it used.
pub fn parse_response(buf: &[u8]) -> Result<Option<(ApiResponse, usize)>, ErrorKind> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ErrorKind::Protocol)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(ErrorKind::Protocol);
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(ErrorKind::Protocol)?;
    let mut length = 0usize;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| ErrorKind::Protocol)?;
            }
        }
    }
    if length > MAX_RESPONSE {
        return Err(ErrorKind::Protocol);
    }
    let body_start = head_end + 4;
    let Some(body) = buf.get(body_start..body_start + length) else {
        return Ok(None);
    };
    let delivered = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("delivered").and_then(serde_json::Value::as_u64));
    Ok(Some((
        ApiResponse { status, delivered },
        body_start + length,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 15\r\n\r\n{\"delivered\":7}HTTP/1.1";
        let (response, used) = parse_response(ok).expect("valid").expect("complete");
        assert_eq!(
            response,
            ApiResponse {
                status: 200,
                delivered: Some(7)
            }
        );
        assert_eq!(&ok[used..], b"HTTP/1.1");
        assert_eq!(parse_response(&ok[..40]), Ok(None));
        assert_eq!(parse_response(&ok[..80]), Ok(None));
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}";
        let (response, _) = parse_response(refused).expect("valid").expect("complete");
        assert_eq!(response.status, 403);
        assert_eq!(response.delivered, None);
        assert_eq!(parse_response(b"SSH-2.0\r\n\r\n"), Err(ErrorKind::Protocol));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(ErrorKind::Protocol)
        );
    }
}
