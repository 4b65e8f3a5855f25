//! In-test peers for `gmws load --tls` and `--deflate`, made of
//! implementations independent of ours: rustls's server side and
//! tungstenite (handshake, frames), miniz_oxide for DEFLATE. Each listens on
//! an ephemeral loopback port and serves each connection on a thread of its
//! own until the client goes.

#![allow(dead_code)] // each test file uses part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameSocket};
use tungstenite::Message;

/// A self-signed certificate for `localhost` and 127.0.0.1, its key, and
/// the certificate as a PEM file (for `--tls-ca`).
pub struct TestCert {
    pub der: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub pem_file: PathBuf,
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem_file);
    }
}

/// Make a certificate with rcgen and write its PEM to a temporary file.
pub fn make_cert() -> TestCert {
    static N: AtomicUsize = AtomicUsize::new(0);
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("rcgen");
    let pem_file = std::env::temp_dir().join(format!(
        "gmws-load-test-{}-{}.pem",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&pem_file, certified.cert.pem()).expect("write the PEM file");
    TestCert {
        der: certified.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der())),
        pem_file,
    }
}

/// Accept on an ephemeral loopback port; each connection is given to
/// `serve` on its own thread.
fn listen(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Echo data messages with tungstenite's WebSocket over any stream.
fn echo<S: Read + Write>(stream: S) {
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(message).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// A wss echo server: rustls's server connection (only TLS 1.2 when
/// `tls12_only`) under tungstenite.
pub fn tls_echo(cert: &TestCert, tls12_only: bool) -> SocketAddr {
    let config = tls_config(cert, tls12_only);
    listen(move |tcp| {
        let Ok(conn) = ServerConnection::new(config.clone()) else {
            return;
        };
        echo(StreamOwned::new(conn, tcp));
    })
}

/// rustls's server configuration for `cert` (TLS 1.2 and 1.3, or only 1.2).
fn tls_config(cert: &TestCert, tls12_only: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der.clone()], cert.key.clone_key())
        .expect("server config");
    Arc::new(config)
}

fn server_config(cert: &TestCert) -> Arc<ServerConfig> {
    tls_config(cert, false)
}

/// A plain echo server that offers no extension.
pub fn plain_echo() -> SocketAddr {
    listen(echo)
}

/// The permessage-deflate answer of [`deflate_echo`].
pub const DEFLATE_ANSWER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// An echo server that accepts permessage-deflate, over TLS when given a
/// certificate: the handshake by hand (httparse, tungstenite's accept key),
/// frames through tungstenite's frame socket, DEFLATE through miniz_oxide.
/// Every message must come compressed (RSV1) and masked; echoes of
/// odd-numbered messages go back compressed (a final DEFLATE block, as RFC
/// 7692 §7.2.3.4 allows), the others uncompressed, as a server's minimum
/// size would.
pub fn deflate_echo(cert: Option<&TestCert>) -> SocketAddr {
    let config = cert.map(server_config);
    listen(move |tcp| match &config {
        Some(config) => {
            let Ok(conn) = ServerConnection::new(config.clone()) else {
                return;
            };
            deflate_serve(StreamOwned::new(conn, tcp));
        }
        None => deflate_serve(tcp),
    })
}

/// Read the upgrade request and answer it with [`DEFLATE_ANSWER`] if
/// permessage-deflate was offered.
fn deflate_handshake<S: Read + Write>(stream: &mut S) -> Option<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        stream.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&head).ok()?;
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let key = header("sec-websocket-key")?;
    let offered =
        header("sec-websocket-extensions").is_some_and(|v| v.starts_with(b"permessage-deflate"));
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        tungstenite::handshake::derive_accept_key(key)
    );
    if offered {
        response.push_str(&format!("Sec-WebSocket-Extensions: {DEFLATE_ANSWER}\r\n"));
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes()).ok()?;
    stream.flush().ok()
}

fn deflate_serve<S: Read + Write>(mut stream: S) {
    if deflate_handshake(&mut stream).is_none() {
        return;
    }
    let mut frames = FrameSocket::new(stream);
    let mut n = 0u64;
    loop {
        let Ok(Some(frame)) = frames.read(None) else {
            return;
        };
        let header = frame.header().clone();
        let Some(mask) = header.mask else { return };
        let mut payload = frame.into_payload().to_vec();
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        let reply = match header.opcode {
            OpCode::Data(data @ (Data::Text | Data::Binary)) => {
                // Every message from `gmws load --deflate` is compressed.
                if !header.rsv1 || !header.is_final {
                    return;
                }
                let Some(message) = inflate(&payload) else {
                    return;
                };
                n += 1;
                if n % 2 == 1 {
                    let compressed = miniz_oxide::deflate::compress_to_vec(&message, 6);
                    let mut f = Frame::message(compressed, OpCode::Data(data), true);
                    f.header_mut().rsv1 = true;
                    f
                } else {
                    Frame::message(message, OpCode::Data(data), true)
                }
            }
            OpCode::Control(Control::Close) => {
                let _ = frames.send(Frame::close(None));
                return;
            }
            _ => continue,
        };
        if frames.send(reply).is_err() {
            return;
        }
    }
}

/// A permessage-deflate payload inflated: the removed `00 00 ff ff` put
/// back, then an empty final stored block so miniz_oxide sees an end.
fn inflate(payload: &[u8]) -> Option<Vec<u8>> {
    let mut stream = payload.to_vec();
    stream.extend_from_slice(&[0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff]);
    miniz_oxide::inflate::decompress_to_vec_with_limit(&stream, 64 << 20).ok()
}
