//! Echo server for conformance testing (Autobahn|Testsuite) and benchmarks.
//!
//! `cargo run --release --example echo -- 127.0.0.1:9001`
//!
//! Echoes every text and binary message back to its sender. Limits are raised
//! to 16 MiB and 2^20 fragments (Autobahn's largest cases: 4 MiB in 64-byte
//! fragments) and heartbeats and the auth deadline are
//! off, so only the RFC 6455 core is exercised.
//!
//! Logging: errors only, or the level in `GMWS_LOG_LEVEL`, to stderr. One
//! event loop, or `GMWS_WORKERS` of them. TLS with `GMWS_TLS_CERT` and
//! `GMWS_TLS_KEY` (PEM files); permessage-deflate is answered unless
//! `GMWS_COMPRESSION=off` (`GMWS_COMPRESSION_MIN_SIZE`: bytes).

use std::time::Duration;

use gmws::{Config, Handler, Hub, LogLevel, Server, SocketId};

struct Echo;

/// Writes each log line to stderr as it comes.
struct Eprintln;

static EPRINTLN: Eprintln = Eprintln;

impl log::Log for Eprintln {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("echo: {} {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

impl Handler for Echo {
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let _ = hub.send_text(socket, text);
    }

    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        let _ = hub.send_binary(socket, data);
    }
}

fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let mut config = Config::default();
    config.listen = match listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("echo: bad listen address {listen:?}: {e}");
            std::process::exit(2);
        }
    };
    config.max_message_size = 16 << 20;
    config.max_frame_size = 16 << 20;
    config.max_fragments = 1 << 20;
    config.max_backpressure = 64 << 20;
    config.ping_interval = Duration::ZERO;
    config.auth_timeout = Duration::ZERO;
    // One loop unless GMWS_WORKERS says otherwise (0: one per CPU).
    config.workers = match std::env::var("GMWS_WORKERS").map(|w| w.parse::<usize>()) {
        Err(_) => 1,
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            eprintln!("echo: GMWS_WORKERS: {e}");
            std::process::exit(2);
        }
    };
    // TLS when GMWS_TLS_CERT and GMWS_TLS_KEY name PEM files; compression
    // (permessage-deflate, on by default) off with GMWS_COMPRESSION=off.
    if let (Ok(cert), Ok(key)) = (
        std::env::var("GMWS_TLS_CERT"),
        std::env::var("GMWS_TLS_KEY"),
    ) {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
    }
    if let Ok(value) = std::env::var("GMWS_COMPRESSION") {
        config.compression = !matches!(value.as_str(), "off" | "false" | "0" | "no");
    }
    if let Ok(Ok(size)) = std::env::var("GMWS_COMPRESSION_MIN_SIZE").map(|v| v.parse()) {
        config.compression_min_size = size;
    }
    let level = match std::env::var("GMWS_LOG_LEVEL") {
        Ok(name) => match name.parse::<LogLevel>() {
            Ok(level) => level,
            Err(e) => {
                eprintln!("echo: GMWS_LOG_LEVEL={name:?}: {e}");
                std::process::exit(2);
            }
        },
        Err(_) => LogLevel::Error,
    };
    // The library logs through the `log` facade and exports no logger; this
    // example writes lines itself rather than depend on the `gmws` binary's
    // package (whose logger writes from a thread: an echo server for
    // conformance and benches logs errors only, so writing in place is fine).
    if log::set_logger(&EPRINTLN).is_ok() {
        log::set_max_level(level.filter());
    }
    let mut server = match Server::bind_with(config, |_| Echo) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("echo: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("echo: listening on {}", server.local_addr());
    if let Err(e) = server.run() {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}
