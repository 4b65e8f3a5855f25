//! Server configuration: every key, its default, and its validation.
//!
//! Defaults work on a laptop and follow GMWebSockets where it had a value
//! (heartbeat every 15 s, closed after 3 unanswered pings). The README's
//! configuration table lists the same keys.
//!
//! [`Config`] is serde data: the `gmws` binary deserializes it from one TOML
//! table built from its file, its `GMWS_*` environment variables and its
//! flags. Each kind of key takes its natural TOML type **and a string** in
//! the spelling of a command-line flag, so values that arrive as text (flags,
//! environment variables) go into the same table as the file's:
//!
//! | kind | natural type | as a string |
//! |---|---|---|
//! | seconds | integer or float (`15`, `0.5`) | `"15"`, `"0.5"`, `".5"` (no sign, exponent or unit) |
//! | bytes | integer | `"4096"`, `"8KiB"`, `"1 MiB"`, `"1MB"`: KiB, MiB, GiB (×1024) or KB, MB, GB (×1000), any case |
//! | count | integer | `"20"` |
//! | bool | boolean | `true`/`false`, `1`/`0`, `yes`/`no`, any case |
//! | list | array of strings | comma-separated, items trimmed, empty items dropped |
//! | optional string | string | the empty string unsets it |
//! | socket address | string | `IP:PORT` |
//! | choice ([`BinaryMessages`], [`LogLevel`]) | string | the name, any case |
//!
//! Serialized: seconds as an integer when whole, else a float; bytes and
//! counts as integers; an unset optional string as `""`; choices as their
//! lower-case names. Missing keys keep their defaults; unknown keys are
//! errors.

use std::net::SocketAddr;
use std::time::Duration;

use gmws_protocol::deflate::DeflatePolicy;
use gmws_protocol::handshake::{HeadLimits, UpgradePolicy};
use gmws_protocol::Limits;
use serde::{Deserialize, Serialize};

use crate::auth::jwt::{VerifyOptions, MIN_SECRET_LEN};

mod choices;
mod format;
mod ip_range;

pub use choices::{BinaryMessages, LogLevel, UnknownChoice};
pub use ip_range::IpRange;

/// Everything the server can be told. Build with `Config::default()` and set
/// fields, or deserialize it (a missing key keeps its default, an unknown key
/// is an error); [`Config::validate`] checks the combination once at start.
///
/// `Debug` prints every field but shows the secrets ([`Config::SECRET_KEYS`])
/// only as set or unset. `Serialize` writes them as they are (a serialized
/// configuration must read back the same): never log a serialization.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:8080`).
    #[serde(with = "format::addr")]
    pub listen: SocketAddr,
    /// Event loops, each on its own thread with its own sockets (default 0:
    /// one per CPU the process may use). With `Server::bind` and one handler
    /// there is one loop whatever this says.
    #[serde(with = "format::count")]
    pub workers: usize,
    /// Interval between server pings (default 15 s); zero disables heartbeats.
    #[serde(with = "format::secs")]
    pub ping_interval: Duration,
    /// Unanswered pings before the socket is closed (default 3).
    #[serde(with = "format::count")]
    pub ping_timeout_count: u32,
    /// Time a socket has to bind a client id (default 30 s); zero: no deadline.
    #[serde(with = "format::secs")]
    pub auth_timeout: Duration,
    /// Time a connection has to send its whole request head (default 10 s).
    #[serde(with = "format::secs")]
    pub handshake_timeout: Duration,
    /// Time to wait for the peer's close frame or FIN after ours (default 5 s).
    #[serde(with = "format::secs")]
    pub close_timeout: Duration,
    /// Idle time after which a plain-HTTP keep-alive connection is closed (default 30 s).
    #[serde(with = "format::secs")]
    pub http_idle_timeout: Duration,
    /// Largest message in bytes (default 1 MiB); larger: close 1009.
    #[serde(with = "format::size")]
    pub max_message_size: u64,
    /// Largest frame payload in bytes (default 1 MiB); larger: close 1009.
    #[serde(with = "format::size")]
    pub max_frame_size: u64,
    /// Most frames per message, empty ones included (default 1024); more: close 1008.
    #[serde(with = "format::count")]
    pub max_fragments: u32,
    /// PEM file with the certificate chain (default unset). With `tls_key`,
    /// every connection on `listen` is TLS (wss and https; TLS 1.2 and 1.3,
    /// ALPN `http/1.1`); the files are read at start (a bad one is a
    /// start-up error naming it) and again on SIGHUP.
    #[serde(with = "format::opt_text")]
    pub tls_cert: Option<String>,
    /// PEM file with the private key for `tls_cert` (default unset).
    #[serde(with = "format::opt_text")]
    pub tls_key: Option<String>,
    /// Answer a client's permessage-deflate offer (RFC 7692; default on):
    /// messages of at least `compression_min_size` bytes are then sent
    /// compressed, and compressed messages from the client are inflated
    /// (bounded by `max_message_size`). The server never keeps compression
    /// context between messages (it answers `server_no_context_takeover`
    /// and `client_no_context_takeover`), so no zlib state sits on a socket:
    /// one compressor and one inflater per loop serve every socket, and a
    /// broadcast is compressed once.
    #[serde(with = "format::flag")]
    pub compression: bool,
    /// Keep the compressor's context between messages (default false): the
    /// server then does not answer `server_no_context_takeover` (unless the
    /// client asks for it), and each socket that was sent a compressed
    /// message keeps a compressor of its own (~270 KB of zlib state, counted
    /// in `max_buffer_memory`), which compresses repetitive streams better but
    /// gives up compressing a broadcast once. Off: no zlib state per socket.
    #[serde(with = "format::flag")]
    pub compression_context_takeover: bool,
    /// Messages smaller than this go uncompressed even on a connection that
    /// negotiated compression (default 256 bytes: below it DEFLATE saves a
    /// few bytes at the price of a zlib call).
    #[serde(with = "format::size")]
    pub compression_min_size: usize,
    /// Largest HTTP request head in bytes (default 8 KiB); larger: 431.
    #[serde(with = "format::size")]
    pub max_request_head: usize,
    /// Most HTTP request headers (default 64); more: 431.
    #[serde(with = "format::count")]
    pub max_request_headers: usize,
    /// Largest HTTP request body in bytes (default 1 MiB); larger: 413.
    #[serde(with = "format::size")]
    pub max_http_body: usize,
    /// Most bytes one connection may have waiting after the kernel took what
    /// it could (default 2 MiB); more: close 1008. Must hold one message of
    /// `max_message_size` in the gateway's envelope.
    #[serde(with = "format::size")]
    pub max_backpressure: usize,
    /// Most open connections, HTTP and WebSocket (default 100000); more are refused with 503.
    #[serde(with = "format::count")]
    pub max_connections: usize,
    /// Most connections reading a request head (a handshake or an HTTP
    /// request) at once (default 1024); past it new connections are answered
    /// 503 and closed. Idle keep-alive connections do not count.
    #[serde(with = "format::count")]
    pub max_pending_handshakes: usize,
    /// Most keep-alive HTTP connections idle between requests (default 1024);
    /// past it the one idle longest is closed.
    #[serde(with = "format::count")]
    pub max_idle_http: usize,
    /// Most connections from one IP address (default 1024; 0: no limit); more
    /// are answered 429 and closed. Peers in `per_ip_exempt` are not counted.
    #[serde(with = "format::count")]
    pub max_connections_per_ip: usize,
    /// Addresses and CIDR ranges not held to `max_connections_per_ip`
    /// (default `127.0.0.0/8, ::1`: a reverse proxy on the same host).
    #[serde(with = "format::list")]
    pub per_ip_exempt: Vec<String>,
    /// Bytes the process may hold buffered for peers, all connections together
    /// (default 256 MiB): partial frames and messages, output queues (a shared
    /// broadcast frame counted once), HTTP requests and responses. Past it the
    /// connections holding the most are closed (1013) until it is back under
    /// seven eighths.
    #[serde(with = "format::size")]
    pub max_buffer_memory: usize,
    /// Fan-out work one loop turn may do before it stops decoding messages
    /// until the next turn (default 8 MiB), in delivery bytes: recipients ×
    /// (frame bytes + 256). Keeps one turn, and a quiet client's latency, short.
    #[serde(with = "format::size")]
    pub max_fanout_per_turn: usize,
    /// Writes of fan-out frames one loop turn makes at most (default
    /// 1,024): a fan-out writes at once to the recipients with nothing
    /// queued up to this bound, and the rest in later turns (each turn's
    /// replies first). One write costs ~5 µs on loopback: the default keeps
    /// a turn, and a quiet client's wait behind a large fan-out, near 5-10 ms.
    #[serde(with = "format::count")]
    pub max_fanout_writes_per_turn: usize,
    /// Delivery bytes per second one socket may cause with client-initiated
    /// sends (`send_to_all`, `send_to_group`, `send_to_client`), measured as
    /// recipients × envelope bytes (default 2 MiB); 0: no limit. Past it the
    /// send is refused with a `rate_limited` error envelope.
    #[serde(with = "format::size")]
    pub client_fanout_rate: u64,
    /// The burst of `client_fanout_rate`: delivery bytes a socket may use at
    /// once (default 8 MiB).
    #[serde(with = "format::size")]
    pub client_fanout_burst: u64,
    /// Invalid client messages (each one answered by an error envelope) one
    /// socket may send per `invalid_message_window` (default 100); more: close 1008.
    #[serde(with = "format::count")]
    pub invalid_message_limit: u32,
    /// The window of `invalid_message_limit` (default 10 s).
    #[serde(with = "format::secs")]
    pub invalid_message_window: Duration,
    /// What the gateway does with a binary frame, which its JSON protocol does not
    /// use: `error` (an `unsupported` error envelope, the default), `close` (1003), or `ignore`.
    pub binary_messages: BinaryMessages,
    /// Allowed `Origin`s for upgrades; empty (default) allows any.
    #[serde(with = "format::list")]
    pub allowed_origins: Vec<String>,
    /// Subprotocols offered to clients (default none).
    #[serde(with = "format::list")]
    pub protocols: Vec<String>,
    /// Bearer token for `/api/*` (default unset). When set, every request to
    /// the API must carry `Authorization: Bearer <api_key>` (401 otherwise),
    /// from loopback too. Unset: the API is refused (403) unless
    /// `api_trust_loopback` is on.
    #[serde(with = "format::opt_text")]
    pub api_key: Option<String>,
    /// With no `api_key`, let loopback peers (`127.0.0.0/8`, `::1`,
    /// `::ffff:127.0.0.1`) use `/api/*` without a key (default false: the API
    /// is refused until `api_key` is set). Off by default because behind a
    /// reverse proxy on the same host every request comes from 127.0.0.1, so
    /// trusting loopback would make the API public. Without effect when
    /// `api_key` is set.
    #[serde(with = "format::flag")]
    pub api_trust_loopback: bool,
    /// HS256 secret for bind tokens; unset (default): `bind` trusts the client
    /// id given. At least [`MIN_SECRET_LEN`] (32) bytes, else the server does
    /// not start (RFC 7518 §3.2: a key as long as the hash).
    #[serde(with = "format::opt_text")]
    pub auth_secret: Option<String>,
    /// Whether a bind token must have an `exp` claim (default true): a token
    /// that never expires cannot be revoked short of changing the secret.
    #[serde(with = "format::flag")]
    pub auth_require_exp: bool,
    /// When set, a bind token's `aud` (a string or an array of strings) must
    /// hold this value (default unset: `aud` is not checked).
    #[serde(with = "format::opt_text")]
    pub auth_audience: Option<String>,
    /// When set, a bind token's `iss` must equal this value (default unset:
    /// `iss` is not checked).
    #[serde(with = "format::opt_text")]
    pub auth_issuer: Option<String>,
    /// Clock skew tolerated on a bind token's `exp` and `nbf` (default 30 s;
    /// whole seconds, a fraction is dropped).
    #[serde(with = "format::secs")]
    pub auth_leeway: Duration,
    /// Most groups one socket may join (default 128).
    #[serde(with = "format::count")]
    pub max_groups_per_socket: usize,
    /// Longest group name in bytes (default 255).
    #[serde(with = "format::size")]
    pub max_group_name: usize,
    /// Longest client id in bytes (default 255).
    #[serde(with = "format::size")]
    pub max_client_id: usize,
    /// Most bytes of group names one socket's groups may add up to (default 8 KiB).
    #[serde(with = "format::size")]
    pub max_group_bytes_per_socket: usize,
    /// Largest session of one socket, serialised as JSON (default 16 KiB).
    #[serde(with = "format::size")]
    pub max_session_size: usize,
    /// Whether clients may `join` and `leave` groups themselves (default true).
    #[serde(with = "format::flag")]
    pub allow_join: bool,
    /// Whether clients may `send_to_all` (default false: one client reaching
    /// every socket is a broadcast an operator should opt into; the HTTP API
    /// and handlers can always send to all).
    #[serde(with = "format::flag")]
    pub allow_send_to_all: bool,
    /// Whether clients may `send_to_group` (default true).
    #[serde(with = "format::flag")]
    pub allow_send_to_group: bool,
    /// Whether clients may `send_to_client` (default true).
    #[serde(with = "format::flag")]
    pub allow_send_to_client: bool,
    /// Whether `GET /` serves the demo page (default true).
    #[serde(with = "format::flag")]
    pub demo_page: bool,
    /// Log level: off, error, warn, info, debug (default info).
    pub log_level: LogLevel,
    /// The Redis the nodes of a cluster meet on,
    /// `redis://[[user]:password@]host[:port][/db]` (default unset: a single
    /// node). See [`crate::cluster`].
    #[serde(with = "format::opt_text")]
    pub cluster_redis: Option<String>,
    /// Prefixes every Redis key and channel of the cluster, so several
    /// clusters can share one Redis (default `gmws`; 1 to 64 bytes, no
    /// spaces).
    pub cluster_name: String,
    /// How long a node's entries in Redis are trusted without its lease being
    /// refreshed (default 10 s, at least 1 s; refreshed every third of it):
    /// a killed node vanishes from every answer within this.
    #[serde(with = "format::secs")]
    pub node_lease: Duration,
    /// `/healthz` answers 503 while this node cannot reach the cluster's
    /// Redis (default true: a load balancer then sends clients to nodes that
    /// can reach the others). False: 200 whatever Redis does (local
    /// delivery goes on either way).
    #[serde(with = "format::flag")]
    pub cluster_healthz: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ping_interval: Duration::from_secs(15),
            ping_timeout_count: 3,
            auth_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            http_idle_timeout: Duration::from_secs(30),
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            max_fragments: 1024,
            tls_cert: None,
            tls_key: None,
            compression: true,
            compression_context_takeover: false,
            compression_min_size: 256,
            max_request_head: 8 * 1024,
            max_request_headers: 64,
            max_http_body: 1 << 20,
            max_backpressure: 2 << 20,
            max_connections: 100_000,
            workers: 0,
            max_pending_handshakes: 1024,
            max_idle_http: 1024,
            max_connections_per_ip: 1024,
            per_ip_exempt: vec!["127.0.0.0/8".to_owned(), "::1".to_owned()],
            max_buffer_memory: 256 << 20,
            max_fanout_per_turn: 8 << 20,
            max_fanout_writes_per_turn: 1024,
            client_fanout_rate: 2 << 20,
            client_fanout_burst: 8 << 20,
            invalid_message_limit: 100,
            invalid_message_window: Duration::from_secs(10),
            binary_messages: BinaryMessages::Error,
            allowed_origins: Vec::new(),
            protocols: Vec::new(),
            api_key: None,
            api_trust_loopback: false,
            auth_secret: None,
            auth_require_exp: true,
            auth_audience: None,
            auth_issuer: None,
            auth_leeway: Duration::from_secs(30),
            max_groups_per_socket: 128,
            max_group_name: 255,
            max_client_id: 255,
            max_group_bytes_per_socket: 8 * 1024,
            max_session_size: 16 * 1024,
            allow_join: true,
            allow_send_to_all: false,
            allow_send_to_group: true,
            allow_send_to_client: true,
            demo_page: true,
            log_level: LogLevel::Info,
            cluster_redis: None,
            cluster_name: "gmws".to_owned(),
            node_lease: Duration::from_secs(10),
            cluster_healthz: true,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| if s.is_some() { "(set)" } else { "(unset)" };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("workers", &self.workers)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout_count", &self.ping_timeout_count)
            .field("auth_timeout", &self.auth_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("http_idle_timeout", &self.http_idle_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_fragments", &self.max_fragments)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("compression", &self.compression)
            .field(
                "compression_context_takeover",
                &self.compression_context_takeover,
            )
            .field("compression_min_size", &self.compression_min_size)
            .field("max_request_head", &self.max_request_head)
            .field("max_request_headers", &self.max_request_headers)
            .field("max_http_body", &self.max_http_body)
            .field("max_backpressure", &self.max_backpressure)
            .field("max_connections", &self.max_connections)
            .field("max_pending_handshakes", &self.max_pending_handshakes)
            .field("max_idle_http", &self.max_idle_http)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("per_ip_exempt", &self.per_ip_exempt)
            .field("max_buffer_memory", &self.max_buffer_memory)
            .field("max_fanout_per_turn", &self.max_fanout_per_turn)
            .field(
                "max_fanout_writes_per_turn",
                &self.max_fanout_writes_per_turn,
            )
            .field("client_fanout_rate", &self.client_fanout_rate)
            .field("client_fanout_burst", &self.client_fanout_burst)
            .field("invalid_message_limit", &self.invalid_message_limit)
            .field("invalid_message_window", &self.invalid_message_window)
            .field("binary_messages", &self.binary_messages)
            .field("allowed_origins", &self.allowed_origins)
            .field("protocols", &self.protocols)
            .field("api_key", &secret(&self.api_key))
            .field("api_trust_loopback", &self.api_trust_loopback)
            .field("auth_secret", &secret(&self.auth_secret))
            .field("auth_require_exp", &self.auth_require_exp)
            .field("auth_audience", &self.auth_audience)
            .field("auth_issuer", &self.auth_issuer)
            .field("auth_leeway", &self.auth_leeway)
            .field("max_groups_per_socket", &self.max_groups_per_socket)
            .field("max_group_name", &self.max_group_name)
            .field("max_client_id", &self.max_client_id)
            .field(
                "max_group_bytes_per_socket",
                &self.max_group_bytes_per_socket,
            )
            .field("max_session_size", &self.max_session_size)
            .field("allow_join", &self.allow_join)
            .field("allow_send_to_all", &self.allow_send_to_all)
            .field("allow_send_to_group", &self.allow_send_to_group)
            .field("allow_send_to_client", &self.allow_send_to_client)
            .field("demo_page", &self.demo_page)
            .field("log_level", &self.log_level)
            .field("cluster_redis", &secret(&self.cluster_redis))
            .field("cluster_name", &self.cluster_name)
            .field("node_lease", &self.node_lease)
            .field("cluster_healthz", &self.cluster_healthz)
            .finish()
    }
}

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A key's value is out of its range: the key and what it must be.
    OutOfRange(&'static str, &'static str),
    /// Two keys that do not fit together: the keys, and why.
    Conflict(&'static str, &'static str, String),
    /// An entry of a list key cannot be read: the key and the entry.
    BadEntry(&'static str, String),
    /// A secret is shorter than it must be: the key and the minimum in bytes.
    SecretTooShort(&'static str, usize),
    /// More than one of the above, in the order [`Config::validate`] checks
    /// them (never empty, never nested).
    Several(Vec<ConfigError>),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::OutOfRange(key, what) => write!(f, "{key}: must be {what}"),
            ConfigError::Conflict(a, b, why) => write!(f, "{a} and {b}: {why}"),
            ConfigError::BadEntry(key, entry) => {
                write!(f, "{key}: {entry:?} is not an IP address or CIDR range")
            }
            ConfigError::SecretTooShort(key, min) => write!(
                f,
                "{key}: must be at least {min} bytes (e.g. the output of `openssl rand -hex 32`)"
            ),
            ConfigError::Several(errors) => {
                for (i, error) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

// What the deadline keys must be. A deadline is armed for every connection
// in its state, so 0 drops each one at once (unlike `ping_interval` and
// `auth_timeout`, where 0 turns the feature off).
const HANDSHAKE_DEADLINE: &str =
    "above 0 (a deadline: 0 would drop every connection before its request head arrives)";
const HTTP_IDLE_DEADLINE: &str =
    "above 0 (a deadline: 0 would drop keep-alive connections between requests at once)";
const CLOSE_DEADLINE: &str =
    "above 0 (a deadline: 0 would drop closing connections before their close or last response is written)";

impl Config {
    /// The keys whose values are secrets: never printed (`Debug` shows them
    /// as set or unset; the binary hides them in errors and help).
    pub const SECRET_KEYS: &'static [&'static str] = &["api_key", "auth_secret", "cluster_redis"];

    /// The loops `workers` asks for: itself, or for 0 the CPUs the process
    /// may use (at most 256).
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(256)
    }

    /// Check the combination of values once, before the server starts
    /// ([`Server::bind`](crate::Server::bind) calls it).
    ///
    /// Every problem found is reported, not only the first:
    /// [`ConfigError::Several`] when there are more than one. The rules:
    ///
    /// - **Ranges** ([`ConfigError::OutOfRange`]): the deadlines
    ///   `handshake_timeout`, `http_idle_timeout` and `close_timeout` above 0
    ///   (so a `handshake_timeout` of 0 with a `close_timeout` of 0 names
    ///   both keys); the limits at least what one legitimate peer needs
    ///   (`max_frame_size` and `max_message_size` ≥ 125, a control frame;
    ///   `max_request_head` ≥ 256; `max_request_headers` ≥ 8;
    ///   `max_backpressure` ≥ 1024; `max_buffer_memory` ≥ 1 MiB;
    ///   `max_fanout_per_turn` ≥ 64 KiB; counts that are caps at least 1).
    /// - **Combinations** ([`ConfigError::Conflict`], naming both keys):
    ///   `max_backpressure` holds one `max_message_size` message in the
    ///   gateway's envelope ([`Config::envelope_overhead`]), else a message
    ///   the limits allow closes its recipients; `max_buffer_memory` holds
    ///   one `max_message_size` message, else a sender of one is shed (1013);
    ///   with `ping_interval` above 0, `ping_timeout_count` is at least 1;
    ///   with `client_fanout_rate` above 0, `client_fanout_burst` is at
    ///   least 1 KiB.
    /// - **Entries** ([`ConfigError::BadEntry`]): each `per_ip_exempt` entry
    ///   is an IP address or a CIDR range.
    /// - **Secrets** ([`ConfigError::SecretTooShort`]): `auth_secret`, when
    ///   set, is at least [`MIN_SECRET_LEN`] (32) bytes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ranges: [(bool, &'static str, &'static str); 20] = [
            (
                self.node_lease >= Duration::from_secs(1),
                "node_lease",
                "at least 1 s",
            ),
            (
                !self.cluster_name.is_empty()
                    && self.cluster_name.len() <= 64
                    && !self
                        .cluster_name
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()),
                "cluster_name",
                "1 to 64 bytes without spaces",
            ),
            (
                !self.handshake_timeout.is_zero(),
                "handshake_timeout",
                HANDSHAKE_DEADLINE,
            ),
            (
                !self.http_idle_timeout.is_zero(),
                "http_idle_timeout",
                HTTP_IDLE_DEADLINE,
            ),
            (
                !self.close_timeout.is_zero(),
                "close_timeout",
                CLOSE_DEADLINE,
            ),
            (
                self.max_buffer_memory >= 1 << 20,
                "max_buffer_memory",
                "at least 1 MiB",
            ),
            (
                self.max_fanout_per_turn >= 64 * 1024,
                "max_fanout_per_turn",
                "at least 64 KiB",
            ),
            (
                self.max_fanout_writes_per_turn >= 1,
                "max_fanout_writes_per_turn",
                "at least 1",
            ),
            (self.max_idle_http >= 1, "max_idle_http", "at least 1"),
            (
                self.max_pending_handshakes >= 1,
                "max_pending_handshakes",
                "at least 1",
            ),
            (
                self.invalid_message_limit >= 1,
                "invalid_message_limit",
                "at least 1",
            ),
            (self.max_group_name >= 1, "max_group_name", "at least 1"),
            (self.max_client_id >= 1, "max_client_id", "at least 1"),
            (self.max_frame_size >= 125, "max_frame_size", "at least 125"),
            (
                self.max_message_size >= 125,
                "max_message_size",
                "at least 125",
            ),
            (self.max_fragments >= 1, "max_fragments", "at least 1"),
            (
                self.max_request_head >= 256,
                "max_request_head",
                "at least 256",
            ),
            (
                self.max_request_headers >= 8,
                "max_request_headers",
                "at least 8",
            ),
            (
                self.max_backpressure >= 1024,
                "max_backpressure",
                "at least 1024",
            ),
            (self.max_connections >= 1, "max_connections", "at least 1"),
        ];
        let mut problems: Vec<ConfigError> = ranges
            .into_iter()
            .filter(|(ok, _, _)| !ok)
            .map(|(_, key, what)| ConfigError::OutOfRange(key, what))
            .collect();
        let one_message = self
            .max_message_size
            .saturating_add(self.envelope_overhead() as u64);
        if (self.max_backpressure as u64) < one_message {
            problems.push(ConfigError::Conflict(
                "max_backpressure",
                "max_message_size",
                format!(
                    "max_backpressure must hold one message of max_message_size in its envelope ({one_message} bytes)"
                ),
            ));
        }
        if (self.max_buffer_memory as u64) < self.max_message_size {
            problems.push(ConfigError::Conflict(
                "max_buffer_memory",
                "max_message_size",
                "max_buffer_memory must hold one message of max_message_size (else its sender is shed, 1013)".to_owned(),
            ));
        }
        if !self.ping_interval.is_zero() && self.ping_timeout_count == 0 {
            problems.push(ConfigError::Conflict(
                "ping_timeout_count",
                "ping_interval",
                "ping_timeout_count must be at least 1 when heartbeats are on (ping_interval above 0)".to_owned(),
            ));
        }
        if self.client_fanout_rate != 0 && self.client_fanout_burst < 1024 {
            problems.push(ConfigError::Conflict(
                "client_fanout_burst",
                "client_fanout_rate",
                "client_fanout_burst must be at least 1 KiB when client_fanout_rate is set (above 0)".to_owned(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            problems.push(ConfigError::Conflict(
                "tls_cert",
                "tls_key",
                "tls_cert and tls_key go together: set both (TLS) or neither".to_owned(),
            ));
        }
        for entry in &self.per_ip_exempt {
            if IpRange::parse(entry).is_none() {
                problems.push(ConfigError::BadEntry("per_ip_exempt", entry.clone()));
            }
        }
        if self
            .auth_secret
            .as_ref()
            .is_some_and(|s| s.len() < MIN_SECRET_LEN)
        {
            problems.push(ConfigError::SecretTooShort("auth_secret", MIN_SECRET_LEN));
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            _ => Err(ConfigError::Several(problems)),
        }
    }

    /// The most bytes the gateway's envelope adds around a client's message
    /// (the sender's socket id and client id, the target group or client id,
    /// JSON-escaped at six bytes per byte at worst, and the field names).
    pub fn envelope_overhead(&self) -> usize {
        512 + 6 * (self.max_client_id + self.max_group_name.max(self.max_client_id))
    }

    /// `per_ip_exempt`, parsed (entries that do not parse are skipped;
    /// [`Config::validate`] refuses them).
    pub fn per_ip_exempt_ranges(&self) -> Vec<IpRange> {
        self.per_ip_exempt
            .iter()
            .filter_map(|e| IpRange::parse(e))
            .collect()
    }

    /// What a bind token must satisfy besides its signature: `auth_leeway`,
    /// `auth_require_exp`, `auth_audience` and `auth_issuer`.
    pub fn verify_options(&self) -> VerifyOptions<'_> {
        VerifyOptions {
            leeway: self.auth_leeway,
            require_exp: self.auth_require_exp,
            audience: self.auth_audience.as_deref(),
            issuer: self.auth_issuer.as_deref(),
        }
    }

    /// The frame limits for the decoder.
    pub fn frame_limits(&self) -> Limits {
        Limits::new(
            self.max_frame_size,
            self.max_message_size,
            self.max_fragments,
        )
    }

    /// The request-head limits for the HTTP side.
    pub fn head_limits(&self) -> HeadLimits {
        HeadLimits::new(self.max_request_head, self.max_request_headers)
    }

    /// What upgrades are accepted.
    pub fn upgrade_policy(&self) -> UpgradePolicy {
        UpgradePolicy {
            allowed_origins: self.allowed_origins.clone(),
            protocols: self.protocols.clone(),
            deflate: self.compression.then(|| DeflatePolicy {
                server_context_takeover: self.compression_context_takeover,
                ..DeflatePolicy::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backpressure_must_hold_one_message() {
        let config = Config {
            max_message_size: 4 << 20,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Conflict(
                "max_backpressure",
                "max_message_size",
                _
            ))
        ));
        let bad = Config {
            per_ip_exempt: vec!["localhost".into()],
            ..Config::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::BadEntry("per_ip_exempt", _))
        ));
    }

    #[test]
    fn debug_hides_secrets() {
        let config = Config {
            api_key: Some("hunter2".into()),
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"));
        assert!(text.contains("api_key: \"(set)\""));
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn auth_secret_needs_32_bytes() {
        let with = |secret: &str| Config {
            auth_secret: Some(secret.to_owned()),
            ..Config::default()
        };
        let short = with(&"s".repeat(31));
        assert_eq!(
            short.validate(),
            Err(ConfigError::SecretTooShort("auth_secret", 32))
        );
        let text = short.validate().unwrap_err().to_string();
        assert!(
            text.starts_with("auth_secret: must be at least 32 bytes"),
            "{text}"
        );
        assert!(!text.contains("sss"), "{text}");
        assert_eq!(with("").validate().map_err(|e| e.to_string()), Err(text));
        assert_eq!(with(&"s".repeat(32)).validate(), Ok(()));
        // Unset is fine (bind then trusts the client id, warned at start).
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn verify_options_follow_the_keys() {
        let default = Config::default();
        assert_eq!(default.verify_options(), VerifyOptions::default());
        let config = Config {
            auth_require_exp: false,
            auth_audience: Some("gmws".into()),
            auth_issuer: Some("me".into()),
            auth_leeway: Duration::from_secs(5),
            ..Config::default()
        };
        assert_eq!(
            config.verify_options(),
            VerifyOptions {
                leeway: Duration::from_secs(5),
                require_exp: false,
                audience: Some("gmws"),
                issuer: Some("me"),
            }
        );
    }

    #[test]
    fn nonsense_is_refused() {
        let config = Config {
            max_backpressure: 10,
            ..Config::default()
        };
        // Out of its range, and too small for one message as well.
        let Err(ConfigError::Several(errors)) = config.validate() else {
            panic!("expected several errors");
        };
        assert!(matches!(
            errors.as_slice(),
            [
                ConfigError::OutOfRange("max_backpressure", _),
                ConfigError::Conflict("max_backpressure", "max_message_size", _)
            ]
        ));
    }

    #[test]
    fn deadlines_of_zero_are_refused_naming_every_key() {
        let config = Config {
            handshake_timeout: Duration::ZERO,
            close_timeout: Duration::ZERO,
            ..Config::default()
        };
        let Err(ConfigError::Several(errors)) = config.validate() else {
            panic!("expected several errors");
        };
        assert!(matches!(
            errors.as_slice(),
            [
                ConfigError::OutOfRange("handshake_timeout", _),
                ConfigError::OutOfRange("close_timeout", _)
            ]
        ));
        let text = ConfigError::Several(errors).to_string();
        assert!(
            text.starts_with("handshake_timeout: must be above 0"),
            "{text}"
        );
        assert!(text.contains("; close_timeout: must be above 0"), "{text}");
        // Zero is "off" for the heartbeat and the auth deadline.
        let off = Config {
            ping_interval: Duration::ZERO,
            ping_timeout_count: 0,
            auth_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(off.validate(), Ok(()));
    }

    #[test]
    fn combinations_name_both_keys() {
        let config = Config {
            ping_timeout_count: 0,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Conflict(
                "ping_timeout_count",
                "ping_interval",
                _
            ))
        ));
        let config = Config {
            client_fanout_burst: 10,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Conflict(
                "client_fanout_burst",
                "client_fanout_rate",
                _
            ))
        ));
        let without_rate = Config {
            client_fanout_rate: 0,
            ..config
        };
        assert_eq!(without_rate.validate(), Ok(()));
        let config = Config {
            max_buffer_memory: 1 << 20,
            max_message_size: 2 << 20,
            max_backpressure: 4 << 20,
            ..Config::default()
        };
        let text = config.validate().unwrap_err().to_string();
        assert!(
            text.starts_with("max_buffer_memory and max_message_size:"),
            "{text}"
        );
    }

    /// The keys of a serialized `Config`, in the order written.
    fn serialized(config: &Config) -> toml::Table {
        toml::Table::try_from(config).expect("a Config serializes")
    }

    #[test]
    fn serde_round_trip_and_unknown_keys() {
        let config = Config {
            ping_interval: Duration::from_millis(500),
            api_key: Some("k".into()),
            binary_messages: BinaryMessages::Close,
            log_level: LogLevel::Debug,
            protocols: vec!["chat".into()],
            ..Config::default()
        };
        let table = serialized(&config);
        assert_eq!(table["ping_interval"].as_float(), Some(0.5));
        assert_eq!(table["binary_messages"].as_str(), Some("close"));
        assert_eq!(table["auth_secret"].as_str(), Some(""));
        let back: Config = table.clone().try_into().expect("reads back");
        assert_eq!(serialized(&back), table);
        // Missing keys keep their defaults; unknown keys are errors.
        let partial: Config = toml::from_str("max_http_body = \"64KiB\"\n").expect("partial");
        assert_eq!(partial.max_http_body, 64 * 1024);
        assert_eq!(partial.listen, Config::default().listen);
        let e = toml::from_str::<Config>("ping_intervall = 3\n").unwrap_err();
        assert!(
            e.message().contains("unknown field `ping_intervall`"),
            "{e}"
        );
    }

    #[test]
    fn debug_and_secrets_cover_every_key() {
        let table = serialized(&Config::default());
        assert_eq!(table.len(), 57);
        let debug = format!("{:?}", Config::default());
        for key in table.keys() {
            assert!(debug.contains(&format!(" {key}: ")), "Debug lacks {key}");
        }
        for key in Config::SECRET_KEYS {
            assert!(table.contains_key(*key), "{key}");
        }
    }
}
