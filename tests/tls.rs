//! TLS on the port (wss and https) with certificates made here (rcgen),
//! against an independent client stack: rustls's client with tungstenite
//! on top, and plain HTTP/1.1 over rustls.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmws::tls::TlsConfig;
use gmws::Config;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use support::*;

/// A CA, and a leaf for 127.0.0.1 signed by it, written as PEM files.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    /// The leaf's DER (to tell which certificate a server presented).
    leaf: Vec<u8>,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("gmws-tls-{tag}-{}", random_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut pki = Pki {
            dir,
            ca,
            ca_key,
            leaf: Vec::new(),
        };
        pki.issue();
        pki
    }

    /// A new leaf from the CA, written over the files.
    fn issue(&mut self) {
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        std::fs::write(self.cert(), leaf.pem()).unwrap();
        std::fs::write(self.key(), key.serialize_pem()).unwrap();
        self.leaf = leaf.der().to_vec();
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    fn config(&self) -> Config {
        let mut config = api_test_config();
        config.tls_cert = Some(self.cert().display().to_string());
        config.tls_key = Some(self.key().display().to_string());
        config
    }

    /// A client trusting the CA, for TLS `versions`.
    fn client(&self, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A finished TLS handshake with `addr`.
fn connect_tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = StreamOwned::new(ClientConnection::new(config, name).unwrap(), tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    tls
}

/// `GET path` over `tls`; the response as text (read until the server closes).
fn https_get(tls: &mut Tls, path: &str) -> String {
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("https read: {e}"),
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn wss(addr: SocketAddr, config: Arc<ClientConfig>) -> tungstenite::WebSocket<Tls> {
    let tls = connect_tls(addr, config);
    let url = format!("wss://127.0.0.1:{}/", addr.port());
    let (ws, response) = tungstenite::client(url.as_str(), tls).expect("wss handshake");
    assert_eq!(response.status(), 101);
    ws
}

fn echo_text(ws: &mut tungstenite::WebSocket<Tls>, text: &str) -> String {
    ws.send(tungstenite::Message::text(text)).unwrap();
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return t.as_str().to_owned(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn wss_and_https_on_one_port_with_tls_1_2_and_1_3() {
    let pki = Pki::new("both");
    let server = start_echo(pki.config());
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = pki.client(&[version]);
        let mut ws = wss(server.addr, Arc::clone(&config));
        assert_eq!(
            ws.get_ref().conn.protocol_version(),
            Some(if std::ptr::eq(version, &rustls::version::TLS13) {
                ProtocolVersion::TLSv1_3
            } else {
                ProtocolVersion::TLSv1_2
            })
        );
        assert_eq!(ws.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        // Small and large (many TLS records, more than the kernel and
        // rustls's send buffer take at once).
        assert_eq!(echo_text(&mut ws, "over TLS"), "over TLS");
        for size in [10_000, 40_000, 100_000, 300_000, 900_000] {
            let large = "x".repeat(size);
            assert_eq!(echo_text(&mut ws, &large), large);
        }
        ws.close(None).unwrap();
        let mut tls = connect_tls(server.addr, config);
        let status = https_get(&mut tls, "/status");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
}

#[test]
fn a_plain_client_on_a_tls_port_gets_nothing_and_others_are_served() {
    let pki = Pki::new("plain");
    let server = start_echo(pki.config());
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    plain
        .write_all(upgrade_request(server.addr).as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out);
    assert!(!String::from_utf8_lossy(&out).contains("101"), "{out:?}");
    let mut ws = wss(server.addr, pki.client(&[&rustls::version::TLS13]));
    assert_eq!(echo_text(&mut ws, "still served"), "still served");
}

#[test]
fn a_tls_handshake_that_does_not_finish_is_dropped_after_handshake_timeout() {
    let pki = Pki::new("slow");
    let mut config = pki.config();
    config.handshake_timeout = Duration::from_millis(300);
    let server = start_echo(config);
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    // Half a ClientHello's record header, then nothing.
    idle.write_all(&[0x16, 0x03]).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = match idle.read(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(n, 0, "dropped without a word");
    assert!(start.elapsed() < PATIENCE);
}

#[test]
fn certificates_reload_without_dropping_a_connection() {
    let mut pki = Pki::new("reload");
    let first_leaf = pki.leaf.clone();
    let server = gmws::Server::bind(pki.config(), Echo).unwrap();
    let tls = server.tls().expect("TLS configured");
    let server = run(server);
    let client = pki.client(&[&rustls::version::TLS13]);
    let mut before = wss(server.addr, Arc::clone(&client));
    assert_eq!(presented(&before), first_leaf);

    pki.issue();
    tls.reload().expect("reload");
    let mut after = wss(server.addr, client);
    assert_eq!(presented(&after), pki.leaf);
    assert_ne!(pki.leaf, first_leaf);
    // The connection made before the reload goes on.
    assert_eq!(echo_text(&mut before, "old cert"), "old cert");
    assert_eq!(echo_text(&mut after, "new cert"), "new cert");

    // A bad file on reload keeps the current certificate.
    std::fs::write(pki.key(), "not a key").unwrap();
    let e = tls.reload().unwrap_err().to_string();
    assert!(e.contains("key.pem"), "{e}");
}

/// The server certificate a wss connection was given.
fn presented(ws: &tungstenite::WebSocket<Tls>) -> Vec<u8> {
    ws.get_ref().conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn bad_files_are_start_up_errors_that_name_the_file() {
    let pki = Pki::new("bad");
    let missing = pki.dir.join("missing.pem");
    let mut config = pki.config();
    config.tls_cert = Some(missing.display().to_string());
    let e = gmws::Server::bind(config, Echo).err().unwrap().to_string();
    assert!(e.contains("missing.pem"), "{e}");

    let garbage = pki.dir.join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let mut config = pki.config();
    config.tls_key = Some(garbage.display().to_string());
    let e = gmws::Server::bind(config, Echo).err().unwrap().to_string();
    assert!(e.contains("garbage.pem"), "{e}");

    let mut config = pki.config();
    config.tls_key = None;
    let e = gmws::Server::bind(config, Echo).err().unwrap().to_string();
    assert!(e.contains("tls_key"), "{e}");

    // A direct load names the file too.
    let e = TlsConfig::load(Path::new(&missing), pki.key())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.pem"), "{e}");
}
