//! Server configuration: every key, its default, and its validation.
//!
//! Defaults work on a laptop and follow GMWebSockets where it had a value
//! (heartbeat every 15 s, closed after 3 unanswered pings). The README's
//! configuration table lists the same keys.

use std::net::SocketAddr;
use std::time::Duration;

use gmws_protocol::handshake::{HeadLimits, UpgradePolicy};
use gmws_protocol::Limits;

use crate::auth::jwt::{VerifyOptions, MIN_SECRET_LEN};

/// Everything the server can be told. Build with `Config::default()` and set
/// fields; [`Config::validate`] checks the combination once at start.
///
/// `Debug` prints every field but shows the secrets (`api_key`, `auth_secret`)
/// only as set or unset.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Interval between server pings (default 15 s); zero disables heartbeats.
    pub ping_interval: Duration,
    /// Unanswered pings before the socket is closed (default 3).
    pub ping_timeout_count: u32,
    /// Time a socket has to bind a client id (default 30 s); zero: no deadline.
    pub auth_timeout: Duration,
    /// Time a connection has to send its whole request head (default 10 s).
    pub handshake_timeout: Duration,
    /// Time to wait for the peer's close frame or FIN after ours (default 5 s).
    pub close_timeout: Duration,
    /// Idle time after which a plain-HTTP keep-alive connection is closed (default 30 s).
    pub http_idle_timeout: Duration,
    /// Largest message in bytes (default 1 MiB); larger: close 1009.
    pub max_message_size: u64,
    /// Largest frame payload in bytes (default 1 MiB); larger: close 1009.
    pub max_frame_size: u64,
    /// Most frames per message, empty ones included (default 1024); more: close 1008.
    pub max_fragments: u32,
    /// Largest HTTP request head in bytes (default 8 KiB); larger: 431.
    pub max_request_head: usize,
    /// Most HTTP request headers (default 64); more: 431.
    pub max_request_headers: usize,
    /// Largest HTTP request body in bytes (default 1 MiB); larger: 413.
    pub max_http_body: usize,
    /// Most bytes queued for one connection (default 1 MiB); more: close 1008.
    pub max_backpressure: usize,
    /// Most open connections, HTTP and WebSocket (default 100000); more are refused with 503.
    pub max_connections: usize,
    /// Most connections still in their HTTP phase (handshake or plain HTTP)
    /// at once (default 1024); past it, accepting pauses (new connections wait
    /// in the kernel's backlog) until one finishes.
    pub max_pending_handshakes: usize,
    /// Invalid client messages (each one answered by an error envelope) one
    /// socket may send per `invalid_message_window` (default 100); more: close 1008.
    pub invalid_message_limit: u32,
    /// The window of `invalid_message_limit` (default 10 s).
    pub invalid_message_window: Duration,
    /// What the gateway does with a binary frame, which its JSON protocol does not
    /// use: `error` (an `unsupported` error envelope, the default), `close` (1003), or `ignore`.
    pub binary_messages: String,
    /// Allowed `Origin`s for upgrades; empty (default) allows any.
    pub allowed_origins: Vec<String>,
    /// Subprotocols offered to clients (default none).
    pub protocols: Vec<String>,
    /// Bearer token for `/api/*` (default unset). When set, every request to
    /// the API must carry `Authorization: Bearer <api_key>` (401 otherwise),
    /// from loopback too. Unset: the API is refused (403) unless
    /// `api_trust_loopback` is on.
    pub api_key: Option<String>,
    /// With no `api_key`, let loopback peers (`127.0.0.0/8`, `::1`,
    /// `::ffff:127.0.0.1`) use `/api/*` without a key (default false: the API
    /// is refused until `api_key` is set). Off by default because behind a
    /// reverse proxy on the same host every request comes from 127.0.0.1, so
    /// trusting loopback would make the API public. Without effect when
    /// `api_key` is set.
    pub api_trust_loopback: bool,
    /// HS256 secret for bind tokens; unset (default): `bind` trusts the client
    /// id given. At least [`MIN_SECRET_LEN`] (32) bytes, else the server does
    /// not start (RFC 7518 §3.2: a key as long as the hash).
    pub auth_secret: Option<String>,
    /// Whether a bind token must have an `exp` claim (default true): a token
    /// that never expires cannot be revoked short of changing the secret.
    pub auth_require_exp: bool,
    /// When set, a bind token's `aud` (a string or an array of strings) must
    /// hold this value (default unset: `aud` is not checked).
    pub auth_audience: Option<String>,
    /// When set, a bind token's `iss` must equal this value (default unset:
    /// `iss` is not checked).
    pub auth_issuer: Option<String>,
    /// Clock skew tolerated on a bind token's `exp` and `nbf` (default 30 s;
    /// whole seconds, a fraction is dropped).
    pub auth_leeway: Duration,
    /// Most groups one socket may join (default 128).
    pub max_groups_per_socket: usize,
    /// Longest group name in bytes (default 255).
    pub max_group_name: usize,
    /// Longest client id in bytes (default 255).
    pub max_client_id: usize,
    /// Whether clients may `join` and `leave` groups themselves (default true).
    pub allow_join: bool,
    /// Whether clients may `send_to_all` (default true).
    pub allow_send_to_all: bool,
    /// Whether clients may `send_to_group` (default true).
    pub allow_send_to_group: bool,
    /// Whether clients may `send_to_client` (default true).
    pub allow_send_to_client: bool,
    /// Whether `GET /` serves the demo page (default true).
    pub demo_page: bool,
    /// Log level: off, error, warn, info, debug (default info).
    pub log_level: String,
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
            max_request_head: 8 * 1024,
            max_request_headers: 64,
            max_http_body: 1 << 20,
            max_backpressure: 1 << 20,
            max_connections: 100_000,
            max_pending_handshakes: 1024,
            invalid_message_limit: 100,
            invalid_message_window: Duration::from_secs(10),
            binary_messages: "error".to_owned(),
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
            allow_join: true,
            allow_send_to_all: true,
            allow_send_to_group: true,
            allow_send_to_client: true,
            demo_page: true,
            log_level: "info".to_owned(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| if s.is_some() { "(set)" } else { "(unset)" };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout_count", &self.ping_timeout_count)
            .field("auth_timeout", &self.auth_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("http_idle_timeout", &self.http_idle_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_fragments", &self.max_fragments)
            .field("max_request_head", &self.max_request_head)
            .field("max_request_headers", &self.max_request_headers)
            .field("max_http_body", &self.max_http_body)
            .field("max_backpressure", &self.max_backpressure)
            .field("max_connections", &self.max_connections)
            .field("max_pending_handshakes", &self.max_pending_handshakes)
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
            .field("allow_join", &self.allow_join)
            .field("allow_send_to_all", &self.allow_send_to_all)
            .field("allow_send_to_group", &self.allow_send_to_group)
            .field("allow_send_to_client", &self.allow_send_to_client)
            .field("demo_page", &self.demo_page)
            .field("log_level", &self.log_level)
            .finish()
    }
}

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A key's value is out of its range: the key and what it must be.
    OutOfRange(&'static str, &'static str),
    /// A secret is shorter than it must be: the key and the minimum in bytes.
    SecretTooShort(&'static str, usize),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::OutOfRange(key, what) => write!(f, "{key}: must be {what}"),
            ConfigError::SecretTooShort(key, min) => write!(
                f,
                "{key}: must be at least {min} bytes (e.g. the output of `openssl rand -hex 32`)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Check the combination of values once, before the server starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(bool, &'static str, &'static str); 14] = [
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
            (
                matches!(self.binary_messages.as_str(), "error" | "close" | "ignore"),
                "binary_messages",
                "one of error, close, ignore",
            ),
            (self.max_group_name >= 1, "max_group_name", "at least 1"),
            (self.max_client_id >= 1, "max_client_id", "at least 1"),
            (
                crate::log::Level::parse(&self.log_level).is_some(),
                "log_level",
                "one of off, error, warn, info, debug",
            ),
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
            (
                self.ping_interval.is_zero() || self.ping_timeout_count >= 1,
                "ping_timeout_count",
                "at least 1 when heartbeats are on",
            ),
        ];
        for (ok, key, what) in checks {
            if !ok {
                return Err(ConfigError::OutOfRange(key, what));
            }
        }
        if self
            .auth_secret
            .as_ref()
            .is_some_and(|s| s.len() < MIN_SECRET_LEN)
        {
            return Err(ConfigError::SecretTooShort("auth_secret", MIN_SECRET_LEN));
        }
        Ok(())
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange("max_backpressure", _))
        ));
    }
}
