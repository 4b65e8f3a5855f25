//! `--tls`: rustls's client connection driven over the driver's own
//! non-blocking sockets, with no async runtime.
//!
//! rustls's `ClientConnection` is sans-IO: ciphertext goes in through
//! `read_tls` and out through `write_tls`, plaintext through `reader()` and
//! `writer()`. [`Transport`] puts that behind `Read` and `Write` so the
//! driver reads and writes a TLS connection the way it does a plain one:
//! `read` gives plaintext or `WouldBlock`, `write` takes everything (rustls
//! keeps what the socket does not take yet) and `flush` writes what rustls
//! holds until the socket would block.

use std::fmt;
use std::io::{self, ErrorKind as IoKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// How the server's certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Against the certificates in this PEM file (a CA, or the server's
    /// self-signed certificate): `--tls-ca FILE`.
    Ca(PathBuf),
    /// Not at all (the handshake signature is still checked against the
    /// certificate's key): `--tls-insecure`, for loopback benchmarks.
    Insecure,
}

/// Why TLS could not be set up for a run.
#[derive(Debug)]
pub enum TlsError {
    /// The `--tls-ca` file could not be read or is not PEM.
    ReadCa {
        /// The file.
        path: PathBuf,
        /// What reading or decoding it said.
        error: rustls::pki_types::pem::Error,
    },
    /// The `--tls-ca` file holds no certificate rustls accepts as a root.
    NoRoots(PathBuf),
    /// The target's host is neither a DNS name nor an IP address.
    ServerName(String),
    /// rustls refused the configuration.
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::ReadCa { path, error } => {
                write!(f, "cannot read --tls-ca {}: {error}", path.display())
            }
            TlsError::NoRoots(path) => {
                write!(f, "--tls-ca {} holds no usable certificate", path.display())
            }
            TlsError::ServerName(host) => write!(f, "{host:?} is not a TLS server name"),
            TlsError::Config(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// What every TLS connection of a run shares: the configuration and the
/// name the server's certificate is checked against.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// A client for `host` (the target's host part, brackets allowed around
    /// an IPv6 address) trusting as `trust` says. TLS 1.2 and 1.3 with the
    /// ring provider; ALPN `http/1.1`.
    pub fn new(host: &str, trust: &Trust) -> Result<TlsClient, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let mut config = match trust {
            Trust::Ca(path) => builder
                .with_root_certificates(roots(path)?)
                .with_no_client_auth(),
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::ServerName(host.to_owned()))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// A new client connection (nothing sent yet).
    fn connect(&self) -> Result<ClientConnection, rustls::Error> {
        let mut conn = ClientConnection::new(self.config.clone(), self.server_name.clone())?;
        // The outbox holds at most a message or two per connection: let
        // rustls take all of it (what the socket refuses waits in rustls,
        // written on the next writable event).
        conn.set_buffer_limit(None);
        Ok(conn)
    }
}

/// The certificates of a PEM file as roots.
fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let read_error = |error| TlsError::ReadCa {
        path: path.to_owned(),
        error,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(read_error)? {
        // A certificate webpki cannot use as a trust anchor is skipped; none
        // at all is an error below.
        let _ = roots.add(cert.map_err(read_error)?);
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots(path.to_owned()));
    }
    Ok(roots)
}

/// `--tls-insecure`: any certificate is taken, but the handshake's
/// signature must still be made with its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A connection's byte stream: the TCP socket, or TLS over it.
#[derive(Debug)]
pub struct Transport {
    /// The socket (registered with the poll; connect state read from it).
    pub tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

impl Transport {
    /// `tcp` as it is (no TLS).
    pub fn plain(tcp: TcpStream) -> Transport {
        Transport { tcp, tls: None }
    }

    /// TLS over `tcp`, the handshake started on the first write or flush.
    pub fn over_tls(tcp: TcpStream, client: &TlsClient) -> Result<Transport, rustls::Error> {
        Ok(Transport {
            tcp,
            tls: Some(Box::new(client.connect()?)),
        })
    }

    /// Write what rustls holds until the socket would block.
    fn write_tls(tls: &mut ClientConnection, tcp: &mut TcpStream) -> io::Result<()> {
        while tls.wants_write() {
            match tls.write_tls(tcp) {
                Ok(0) => return Err(IoKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether an I/O error is a TLS failure (a bad certificate, an alert, a
/// record that does not decrypt) rather than a socket's.
pub fn is_tls_error(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

impl Read for Transport {
    /// Plaintext, `WouldBlock` when none is there yet, `Ok(0)` at the end
    /// (the peer's close_notify, or EOF without one once the handshake is
    /// done: a WebSocket close handshake, not TLS, tells a clean end here).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.tcp.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == IoKind::WouldBlock => {}
                // EOF before the handshake is done: a TLS failure (a server
                // that does not speak TLS closes on our ClientHello).
                Err(e) if e.kind() == IoKind::UnexpectedEof && tls.is_handshaking() => {
                    return Err(io::Error::new(
                        IoKind::InvalidData,
                        rustls::Error::General("EOF during the TLS handshake".to_owned()),
                    ))
                }
                Err(e) if e.kind() == IoKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.tcp) {
                // EOF: rustls noted it; the next reader().read says so.
                Ok(_) => {}
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = tls.process_new_packets() {
                // rustls queued an alert for the peer: try to send it.
                let _ = Self::write_tls(tls, &mut self.tcp);
                return Err(io::Error::new(IoKind::InvalidData, e));
            }
            // Handshake messages, and the plaintext written before the
            // handshake was done, go out now.
            Self::write_tls(tls, &mut self.tcp)?;
        }
    }
}

impl Write for Transport {
    /// Takes all of `buf` under TLS (see [`TlsClient`]), then writes what
    /// it can; `WouldBlock` only without TLS.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.tcp.write(buf);
        };
        let n = tls.writer().write(buf)?;
        Self::write_tls(tls, &mut self.tcp)?;
        Ok(n)
    }

    /// Write what rustls holds until the socket would block (`Ok` then).
    fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => Self::write_tls(tls, &mut self.tcp),
            None => Ok(()),
        }
    }
}
