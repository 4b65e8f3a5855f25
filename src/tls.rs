//! TLS on the listening port (wss and https): rustls's connection, which is
//! sans-IO, driven by the event loop over the same non-blocking sockets.
//!
//! With `tls_cert` and `tls_key` set, every connection on the port is TLS
//! (TLS 1.2 and 1.3, ALPN `http/1.1`); the rest of the server sees the
//! plaintext through `Io`, which reads and writes a socket either as it
//! is or through its [`ServerConnection`]:
//!
//! - **reading** takes plaintext rustls already decrypted, else reads TLS
//!   records from the socket (`read_tls`), decrypts them
//!   (`process_new_packets`) and tries again, until plaintext, `WouldBlock`
//!   or EOF (a `close_notify`, or TCP closed without one);
//! - **writing** first pushes out the records rustls holds (`write_tls`); only
//!   when none is left does it encrypt more plaintext (at most
//!   [`SEND_BUFFER_LIMIT`] waiting in rustls), and it goes on while the
//!   kernel takes every record, so "less was taken than offered" keeps its
//!   meaning for backpressure (the kernel refused): what rustls holds is
//!   bounded, and the connection's queue keeps the rest. The loop treats a connection whose
//!   rustls still holds records (`wants_write`) as one
//!   with output waiting.
//!
//! The handshake has no deadline of its own: `handshake_timeout` runs from
//! the connection's start until its request head is read, and the head
//! cannot come before the TLS handshake is done. Certificates are reloaded
//! with [`TlsConfig::reload`] (the binary does it on SIGHUP): connections
//! made afterwards use the new ones, open ones keep theirs.

use std::fmt;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

/// Most encrypted bytes a connection's rustls holds that the kernel has
/// not taken: past it, writing more plaintext waits (what waits stays in
/// the connection's own, accounted queue).
pub const SEND_BUFFER_LIMIT: usize = 32 * 1024;

/// Why the certificate or key could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or holds no valid PEM of the kind wanted.
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The certificate file holds no certificate.
    NoCertificate(PathBuf),
    /// rustls refused the pair (e.g. the key does not match the certificate).
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        error: rustls::Error,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File { path, reason } => write!(f, "{}: {reason}", path.display()),
            TlsError::NoCertificate(path) => {
                write!(f, "{}: no certificate in the file", path.display())
            }
            TlsError::Rejected { cert, key, error } => {
                write!(f, "{} with {}: {error}", cert.display(), key.display())
            }
        }
    }
}

impl std::error::Error for TlsError {}

/// The server's TLS settings: the certificate chain and key (from PEM
/// files, reloadable), shared by every loop.
pub struct TlsConfig {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Load the certificate chain in `cert` and the private key in `key`
    /// (PEM files).
    ///
    /// # Errors
    ///
    /// [`TlsError`] naming the file at fault.
    pub fn load(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<TlsConfig, TlsError> {
        let (cert, key) = (cert.as_ref().to_owned(), key.as_ref().to_owned());
        let config = server_config(&cert, &key)?;
        Ok(TlsConfig {
            cert,
            key,
            current: RwLock::new(config),
        })
    }

    /// Read the files again; on success new connections use them (open
    /// ones keep theirs), on failure nothing changes.
    ///
    /// # Errors
    ///
    /// As [`TlsConfig::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key)?;
        match self.current.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// A server connection for a newly accepted socket.
    pub(crate) fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        let config = match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        let mut conn = ServerConnection::new(config)?;
        conn.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(conn)
    }
}

/// rustls's settings for the pair of files.
fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let file_error = |path: &Path| {
        let path = path.to_owned();
        move |e: rustls::pki_types::pem::Error| TlsError::File {
            path,
            reason: pem_reason(e),
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(file_error(cert))?
        .collect::<Result<_, _>>()
        .map_err(file_error(cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(file_error(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rejected = |error| TlsError::Rejected {
        cert: cert.to_owned(),
        key: key.to_owned(),
        error,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(rejected)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A PEM error in words.
fn pem_reason(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM section of the kind wanted (a private key?)".to_owned(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// A socket as the server reads and writes it: plain, or through TLS.
pub(crate) struct Io<'a> {
    stream: &'a mut TcpStream,
    tls: Option<&'a mut ServerConnection>,
}

impl<'a> Io<'a> {
    /// The socket `stream`, through `tls` if it is a TLS connection.
    pub(crate) fn new(
        stream: &'a mut TcpStream,
        tls: &'a mut Option<Box<ServerConnection>>,
    ) -> Io<'a> {
        Io {
            stream,
            tls: tls.as_deref_mut(),
        }
    }

    /// Push out the records rustls holds. `Ok(true)` when none is left.
    pub(crate) fn flush_tls(&mut self) -> io::Result<bool> {
        match self.tls.as_deref_mut() {
            Some(tls) => drain(tls, self.stream),
            None => Ok(true),
        }
    }

    /// Send TLS `close_notify` (best effort) before our side of TCP is shut.
    pub(crate) fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
        }
        let _ = self.flush_tls();
    }
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                // TCP closed without close_notify: EOF all the same.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(self.stream) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = tls.process_new_packets() {
                // Tell the peer why (an alert), then give up on it.
                let _ = tls.write_tls(self.stream);
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
            // Handshake messages (or a key update) to answer: sent now if
            // the kernel takes them, else by the loop's flush.
            let _ = drain(tls, self.stream);
        }
    }
}

impl Write for Io<'_> {
    /// Through TLS: encrypt `buf` piece by piece (rustls holds at most
    /// [`SEND_BUFFER_LIMIT`]) while the kernel takes every record, so that
    /// less than `buf` is taken only when the kernel refused more — what the
    /// write queue's backpressure relies on.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.stream.write(buf);
        };
        let mut taken = 0;
        loop {
            if !drain(tls, self.stream)? {
                break; // the kernel refused: the rest waits
            }
            if taken == buf.len() {
                break;
            }
            let n = tls.writer().write(&buf[taken..])?;
            if n == 0 {
                break; // handshake not done and rustls's buffer full
            }
            taken += n;
        }
        if taken == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.stream.write_vectored(bufs);
        }
        let mut taken = 0;
        for buf in bufs {
            match self.write(buf) {
                Ok(n) => {
                    taken += n;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if taken > 0 && e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls().map(|_| ())
    }
}

/// Push out the records `tls` holds. `Ok(true)` when none is left,
/// `Ok(false)` when the kernel refused more.
fn drain(tls: &mut ServerConnection, stream: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
