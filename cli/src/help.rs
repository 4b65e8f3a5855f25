//! The text of `gmws --help`: every [`Config`] key with its flag, its
//! environment variable, its default and one line of help.
//!
//! The defaults are not written here: they come from serializing
//! `Config::default()`. What is written here is the help line and the kind
//! of value each key takes (its placeholder); a test checks that the table
//! has exactly the `Config`'s keys, in the struct's order, and that each
//! placeholder fits the default's type.

use gmws::Config;

/// Prefix of the environment variables that set keys.
pub(crate) const ENV_PREFIX: &str = "GMWS_";

/// What kind of value a key takes, as the usage names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placeholder {
    Addr,
    Seconds,
    Count,
    Bytes,
    Bool,
    Text,
    List,
    Choice,
}

impl Placeholder {
    fn as_str(self) -> &'static str {
        match self {
            Placeholder::Addr => "ADDR",
            Placeholder::Seconds => "SECONDS",
            Placeholder::Count => "N",
            Placeholder::Bytes => "BYTES",
            Placeholder::Bool => "BOOL",
            Placeholder::Text => "STRING",
            Placeholder::List => "LIST",
            Placeholder::Choice => "CHOICE",
        }
    }
}

/// One key of the help: the `Config` field, its placeholder, its help line.
pub(crate) struct KeyHelp {
    pub(crate) name: &'static str,
    pub(crate) placeholder: Placeholder,
    pub(crate) help: &'static str,
}

impl KeyHelp {
    /// `--ping-interval` for `ping_interval`.
    pub(crate) fn flag(&self) -> String {
        flag_of(self.name)
    }
}

/// The flag of a key: `--` and the key with dashes.
pub(crate) fn flag_of(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// The environment variable of a key: `GMWS_PING_INTERVAL`.
pub(crate) fn env_of(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

macro_rules! key {
    ($name:ident, $placeholder:ident, $help:expr) => {
        KeyHelp {
            name: stringify!($name),
            placeholder: Placeholder::$placeholder,
            help: $help,
        }
    };
}

/// Every `Config` key, in the order of the struct.
pub(crate) static KEYS: &[KeyHelp] = &[
    key!(listen, Addr, "Address to listen on."),
    key!(workers, Count, "Event loops, one thread each (0: one per CPU the process may use)."),
    key!(ping_interval, Seconds, "Seconds between server pings; 0 turns heartbeats off."),
    key!(ping_timeout_count, Count, "Unanswered pings before the socket is closed."),
    key!(auth_timeout, Seconds, "Seconds a socket has to bind a client id, else close 1008; 0: no deadline."),
    key!(handshake_timeout, Seconds, "Seconds a connection has to send its whole request head."),
    key!(close_timeout, Seconds, "Seconds to wait for the peer's close after ours, then drop TCP."),
    key!(http_idle_timeout, Seconds, "Seconds before an idle plain-HTTP keep-alive connection is closed."),
    key!(max_message_size, Bytes, "Largest message; larger: close 1009."),
    key!(max_frame_size, Bytes, "Largest frame payload; larger: close 1009."),
    key!(max_fragments, Count, "Most frames per message, empty ones included; more: close 1008."),
    key!(tls_cert, Text, "PEM certificate chain: with tls_key the port serves wss and https (reloaded on SIGHUP)."),
    key!(tls_key, Text, "PEM private key for tls_cert."),
    key!(compression, Bool, "Answer permessage-deflate offers (no context takeover: no zlib state per socket)."),
    key!(compression_context_takeover, Bool, "Keep each socket's compression context between messages (~270 KB of zlib state per socket)."),
    key!(compression_min_size, Bytes, "Smaller messages go uncompressed on a compressed connection."),
    key!(max_request_head, Bytes, "Largest HTTP request head; larger: 431."),
    key!(max_request_headers, Count, "Most HTTP request headers; more: 431."),
    key!(max_http_body, Bytes, "Largest HTTP request body; larger: 413."),
    key!(max_backpressure, Bytes, "Most output one connection may have waiting after the kernel took what it could; more: close 1008."),
    key!(max_connections, Count, "Most open connections, HTTP and WebSocket; more are refused with 503."),
    key!(max_pending_handshakes, Count, "Most connections reading a request head at once; past it new ones get 503."),
    key!(max_idle_http, Count, "Most idle keep-alive HTTP connections; past it the oldest is closed."),
    key!(max_connections_per_ip, Count, "Most connections from one IP (0: no limit); more get 429."),
    key!(per_ip_exempt, List, "IP addresses and CIDR ranges not held to max_connections_per_ip."),
    key!(max_buffer_memory, Bytes, "Bytes buffered for peers, process-wide; past it the largest holders are closed (1013)."),
    key!(max_fanout_per_turn, Bytes, "Fan-out delivery bytes per loop turn before decoding waits for the next turn."),
    key!(max_fanout_writes_per_turn, Count, "Fan-out writes per loop turn; the rest go in later turns."),
    key!(client_fanout_rate, Bytes, "Delivery bytes per second a socket may cause by its sends (0: no limit)."),
    key!(client_fanout_burst, Bytes, "Burst of client_fanout_rate, in delivery bytes."),
    key!(invalid_message_limit, Count, "Invalid messages per window before a socket is closed (1008)."),
    key!(invalid_message_window, Seconds, "The window of invalid_message_limit, in seconds."),
    key!(binary_messages, Choice, "Gateway answer to a binary frame: error, close (1003) or ignore."),
    key!(allowed_origins, List, "Origins allowed to upgrade (others get 403); empty allows any."),
    key!(protocols, List, "Subprotocols offered to clients."),
    key!(api_key, Text, "Bearer token for /api/* (Authorization: Bearer KEY); unset: the API is refused."),
    key!(api_trust_loopback, Bool, "Without api_key, let loopback peers use /api/* keyless (unsafe behind a local proxy)."),
    key!(auth_secret, Text, "HS256 secret for bind tokens, at least 32 bytes; unset: bind trusts the client id given."),
    key!(auth_require_exp, Bool, "Whether a bind token must have an exp claim."),
    key!(auth_audience, Text, "When set, a bind token's aud (string or array) must hold it."),
    key!(auth_issuer, Text, "When set, a bind token's iss must equal it."),
    key!(auth_leeway, Seconds, "Seconds of clock skew tolerated on a bind token's exp and nbf."),
    key!(max_groups_per_socket, Count, "Most groups one socket may join."),
    key!(max_group_name, Bytes, "Longest group name."),
    key!(max_client_id, Bytes, "Longest client id."),
    key!(max_group_bytes_per_socket, Bytes, "Most bytes of group names one socket's groups may add up to."),
    key!(max_session_size, Bytes, "Largest session of one socket, as JSON."),
    key!(allow_join, Bool, "Whether clients may join and leave groups themselves."),
    key!(allow_send_to_all, Bool, "Whether clients may send_to_all."),
    key!(allow_send_to_group, Bool, "Whether clients may send_to_group."),
    key!(allow_send_to_client, Bool, "Whether clients may send_to_client."),
    key!(demo_page, Bool, "Whether GET / serves the demo page."),
    key!(log_level, Choice, "Log level: off, error, warn, info or debug."),
    key!(cluster_redis, Text, "Redis URL the cluster's nodes meet on (redis://[:password@]host:port[/db]); unset: a single node."),
    key!(cluster_name, Text, "Prefix of every Redis key and channel, so clusters can share one Redis."),
    key!(node_lease, Seconds, "Seconds a node's presence in Redis is trusted without a refresh; a killed node vanishes within it."),
    key!(cluster_healthz, Bool, "In a cluster, /healthz answers 503 while Redis is unreachable (false: always 200)."),
];

/// `Config::default()` as a TOML table: every key with its default (an unset
/// optional string as `""`).
pub(crate) fn defaults() -> toml::Table {
    // Serializing our own plain struct into a table cannot fail: every field
    // is a string, number, bool or array of strings.
    toml::Table::try_from(Config::default()).unwrap_or_default()
}

/// A default as the help shows it (and as it could be given).
fn show(key: &KeyHelp, value: Option<&toml::Value>) -> String {
    use toml::Value as V;
    if Config::SECRET_KEYS.contains(&key.name) {
        let set = value.and_then(V::as_str).is_some_and(|s| !s.is_empty());
        return if set { "(set)" } else { "(unset)" }.to_owned();
    }
    match value {
        Some(V::Integer(n)) if key.placeholder == Placeholder::Bytes => fmt_size(*n),
        Some(V::Integer(n)) => n.to_string(),
        Some(V::Float(x)) => x.to_string(),
        Some(V::Boolean(b)) => b.to_string(),
        Some(V::String(s)) if s.is_empty() => "(unset)".to_owned(),
        Some(V::String(s)) => s.clone(),
        Some(V::Array(items)) if items.is_empty() => "(empty)".to_owned(),
        Some(V::Array(items)) => items
            .iter()
            .map(|item| item.as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.type_str().to_owned(),
        None => "?".to_owned(),
    }
}

/// Bytes in the largest binary unit that divides them exactly: `1MiB`, `8KiB`, `255`.
fn fmt_size(bytes: i64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes % (1i64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// The text of `gmws --help`: the commands, the precedence, the value formats,
/// and every key with its flag, environment variable, default and meaning.
pub(crate) fn usage() -> String {
    let defaults = defaults();
    let heads: Vec<String> = KEYS
        .iter()
        .map(|key| format!("{} {}", key.flag(), key.placeholder.as_str()))
        .collect();
    let width = heads.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::from(
        "gmws: a WebSocket gateway

Usage:
  gmws [serve] [--config FILE] [--<key> VALUE | --<key>=VALUE]...
  gmws load [ARGS]...     run the load generator (see gmws load --help)
  gmws help | --help | -h

Each key is read from the first of: its flag (--ping-interval 0.5), its
environment variable (GMWS_PING_INTERVAL=0.5), the TOML file named by --config
or GMWS_CONFIG (top-level `ping_interval = 0.5`), its default.
SECONDS may have a fraction (0.5). BYTES is an integer, optionally with a
suffix: KiB, MiB, GiB (x1024) or KB, MB, GB (x1000). BOOL is true/false, 1/0 or
yes/no; a BOOL flag with no value means true. LIST is comma-separated (or an
array of strings in the file). CHOICE is one of the names the help line lists.
An empty STRING unsets an optional key. In the file, every value may also be
given as a string in the flag's spelling (\"64KiB\", \"0.5\").

Options:
  --config FILE     TOML configuration file; also GMWS_CONFIG
  -h, --help        print this help

Keys:
",
    );
    for (key, head) in KEYS.iter().zip(&heads) {
        out.push_str(&format!(
            "  {head:width$}  [env {}] (default {})\n        {}\n",
            env_of(key.name),
            show(key, defaults.get(key.name)),
            key.help,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{self, Deserialize, Visitor};
    use std::fmt;

    /// Stops a `Deserialize` at `deserialize_struct` to learn its field
    /// names, in declaration order (serde passes them to the deserializer).
    struct FieldNames;

    #[derive(Debug)]
    struct Found(&'static [&'static str]);

    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fields {:?}", self.0)
        }
    }

    impl std::error::Error for Found {}

    impl de::Error for Found {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Found(&[])
        }
    }

    impl<'de> de::Deserializer<'de> for FieldNames {
        type Error = Found;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    fn config_fields() -> &'static [&'static str] {
        match Config::deserialize(FieldNames) {
            Err(Found(fields)) => fields,
            Ok(_) => panic!("FieldNames deserialized a Config"),
        }
    }

    #[test]
    fn the_table_has_every_config_key_in_order() {
        let names: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
        assert_eq!(names, config_fields());
        let defaults = defaults();
        assert_eq!(defaults.len(), KEYS.len());
        for key in KEYS {
            use toml::Value as V;
            let value = &defaults[key.name];
            let fits = match key.placeholder {
                Placeholder::Seconds => matches!(value, V::Integer(_) | V::Float(_)),
                Placeholder::Count | Placeholder::Bytes => value.is_integer(),
                Placeholder::Bool => value.is_bool(),
                Placeholder::List => value.is_array(),
                Placeholder::Addr | Placeholder::Text | Placeholder::Choice => value.is_str(),
            };
            assert!(fits, "{}: {:?} for a {value:?}", key.name, key.placeholder);
            if matches!(key.placeholder, Placeholder::Count | Placeholder::Bytes) {
                // A flag or an environment variable gives it as a string.
                let mut table = defaults.clone();
                let n = value.as_integer().unwrap_or_default();
                table.insert(key.name.to_owned(), V::String(n.to_string()));
                let read: Result<Config, _> = table.try_into();
                assert!(read.is_ok(), "{}: a string is refused: {read:?}", key.name);
            }
        }
    }

    #[test]
    fn help_lists_every_key_with_its_default() {
        let text = usage();
        let listed = text.lines().filter(|l| l.contains("[env GMWS_")).count();
        assert_eq!(listed, KEYS.len());
        for needle in [
            "--listen ADDR",
            "[env GMWS_PING_INTERVAL] (default 15)",
            "--max-message-size BYTES",
            "[env GMWS_MAX_MESSAGE_SIZE] (default 1MiB)",
            "[env GMWS_MAX_REQUEST_HEAD] (default 8KiB)",
            "[env GMWS_MAX_CONNECTIONS] (default 100000)",
            "[env GMWS_API_KEY] (default (unset))",
            "--api-key STRING",
            "--api-trust-loopback BOOL",
            "[env GMWS_API_TRUST_LOOPBACK] (default false)",
            "[env GMWS_AUTH_REQUIRE_EXP] (default true)",
            "--auth-leeway SECONDS",
            "[env GMWS_AUTH_LEEWAY] (default 30)",
            "[env GMWS_AUTH_AUDIENCE] (default (unset))",
            "[env GMWS_ALLOWED_ORIGINS] (default (empty))",
            "[env GMWS_PER_IP_EXEMPT] (default 127.0.0.0/8,::1)",
            "--binary-messages CHOICE",
            "[env GMWS_BINARY_MESSAGES] (default error)",
            "[env GMWS_DEMO_PAGE] (default true)",
            "[env GMWS_LOG_LEVEL] (default info)",
            "--config FILE",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    /// The README's configuration table: (key, default) per row, in order.
    fn readme_rows() -> Vec<(String, String)> {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("## Configuration\n")
            .nth(1)
            .expect("a Configuration section");
        table
            .lines()
            .skip_while(|line| !line.starts_with("| key |"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                (cells[1].to_owned(), cells[2].to_owned())
            })
            .collect()
    }

    /// A default as the README or the help writes it, in one spelling:
    /// `15 s` and `15`, `1 MiB` and `1MiB`, `empty (any)` and `(empty)`.
    fn normal(default: &str) -> String {
        let text = default.split(" (").next().unwrap_or(default);
        let text = text.strip_suffix(" s").unwrap_or(text);
        text.replace([' ', '(', ')'], "")
    }

    #[test]
    fn the_readme_table_has_every_key_and_default() {
        let rows = readme_rows();
        // Each key once (the README orders them by topic).
        let mut names: Vec<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
        let mut keys: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
        names.sort_unstable();
        keys.sort_unstable();
        assert_eq!(names, keys, "README.md's configuration table");
        let defaults = defaults();
        for (key, readme) in &rows {
            let help = KEYS.iter().find(|k| k.name == key).expect("a key");
            let shown = show(help, defaults.get(key.as_str()));
            assert_eq!(
                normal(readme),
                normal(&shown),
                "{key}: README {readme:?}, help {shown:?}"
            );
        }
    }

    #[test]
    fn defaults_as_shown() {
        assert_eq!(fmt_size(1 << 20), "1MiB");
        assert_eq!(fmt_size(8192), "8KiB");
        assert_eq!(fmt_size(255), "255");
        assert_eq!(fmt_size(0), "0");
        let key = |name| KEYS.iter().find(|k| k.name == name).expect("a key");
        let half = toml::Value::Float(0.5);
        assert_eq!(show(key("ping_interval"), Some(&half)), "0.5");
        // A secret that is set shows as set, never as its value.
        let set = toml::Value::String("s3cret".into());
        assert_eq!(show(key("auth_secret"), Some(&set)), "(set)");
    }
}
