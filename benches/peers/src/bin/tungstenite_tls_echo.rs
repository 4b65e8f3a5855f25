//! tokio-tungstenite echo server over TLS (tokio-rustls, ring provider),
//! otherwise the same as `tungstenite_echo`: a current-thread runtime,
//! TCP_NODELAY, frame and message limits of 16 MiB.
//!
//! `tungstenite_tls_echo 127.0.0.1:9003 --tls-cert CERT.pem --tls-key KEY.pem`
//!
//! The certificate chain and the private key are PEM files, given as flags
//! or as GMWS_TLS_CERT and GMWS_TLS_KEY (the names gmws itself reads).

use std::sync::Arc;

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Frame and message limit, the same as gmws's echo example.
const LIMIT: usize = 16 << 20;

fn fail(message: String) -> ! {
    eprintln!("tungstenite_tls_echo: {message}");
    std::process::exit(1);
}

/// The value of `--flag VALUE`, else of the environment variable `env`.
fn setting(args: &[String], flag: &str, env: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
}

fn tls_config(cert: &str, key: &str) -> ServerConfig {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .unwrap_or_else(|e| fail(format!("cannot read the certificate {cert}: {e}")));
    let key = PrivateKeyDer::from_pem_file(key)
        .unwrap_or_else(|e| fail(format!("cannot read the key {key}: {e}")));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail(format!("TLS versions: {e}")))
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap_or_else(|e| fail(format!("certificate and key: {e}")));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9003".to_owned());
    let (Some(cert), Some(key)) = (
        setting(&args, "--tls-cert", "GMWS_TLS_CERT"),
        setting(&args, "--tls-key", "GMWS_TLS_KEY"),
    ) else {
        fail("give --tls-cert FILE --tls-key FILE (or GMWS_TLS_CERT, GMWS_TLS_KEY)".to_owned())
    };
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&cert, &key)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap_or_else(|e| fail(format!("cannot start the runtime: {e}")));
    runtime.block_on(async move {
        let listener = TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
        eprintln!("tungstenite_tls_echo: listening on {addr}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(acceptor.clone(), stream));
                }
                // EMFILE and friends: keep serving the connections we have.
                Err(e) => {
                    eprintln!("tungstenite_tls_echo: accept: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    });
}

async fn serve(acceptor: TlsAcceptor, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(stream) = acceptor.accept(stream).await else {
        return;
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(LIMIT))
        .max_frame_size(Some(LIMIT));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (write, read) = ws.split();
    // Only data messages are echoed; tungstenite answers pings and closes itself.
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
