//! Configuration loading for the `gmws` binary: `gmws [serve] [FLAGS]`,
//! `gmws load ARGS`, `gmws --help`.
//!
//! Every [`Config`] key can be given four ways; the first one found wins:
//!
//! 1. a flag, `--<key-with-dashes> VALUE` or `--<key-with-dashes>=VALUE`
//!    (`--ping-interval 0.5`); a bool flag with no value (`--demo-page`
//!    followed by another flag or by nothing) means `true`;
//! 2. an environment variable `GMWS_<KEY>` (`GMWS_PING_INTERVAL=0.5`);
//! 3. a top-level key of the TOML file named by `--config FILE` or, without that
//!    flag, by `GMWS_CONFIG` (`ping_interval = 0.5`);
//! 4. the default of [`Config::default`].
//!
//! Value formats, the same in all three sources except where noted:
//!
//! - durations are seconds, fractions allowed (`15`, `0.5`; a TOML integer or
//!   float);
//! - sizes are bytes: a plain integer, or an integer with a suffix `KiB`,
//!   `MiB`, `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000), any
//!   case, optionally after a space (`8KiB`, `1 MiB`); in TOML an integer or such
//!   a string;
//! - integers are plain non-negative integers;
//! - bools are `true`/`false`, `1`/`0`, `yes`/`no` (any case); in TOML a boolean;
//! - string lists are comma-separated in flags and env (`a, b`; empty entries
//!   are dropped), an array of strings in TOML;
//! - optional strings are unset by an empty value;
//! - socket addresses are `IP:PORT` (`0.0.0.0:8080`, `[::1]:8080`).
//!
//! Unknown flags, unknown file keys and values of the wrong type or format are
//! errors; an unknown `GMWS_*` variable is only a warning (returned to the
//! caller), since the environment is shared with other programs. The resulting
//! configuration is checked with [`Config::validate`]. Secrets (`api_key`,
//! `auth_secret`) are never printed: help, errors and `Debug` show only
//! `(set)`/`(unset)`.
//!
//! All keys live in one table (`KEYS`) that drives the file, the environment,
//! the flags and the help text alike.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, ConfigError};

/// Prefix of the environment variables that set keys.
const ENV_PREFIX: &str = "GMWS_";
/// Environment variable naming the TOML file (when `--config` is absent).
const CONFIG_ENV: &str = "GMWS_CONFIG";

/// What the binary was asked to do.
// Built once at start and matched at once: boxing the `Config` buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the gateway with this configuration (already validated).
    Serve(Config),
    /// Run the load generator: the raw arguments after `load`, parsed elsewhere.
    Load(Vec<String>),
    /// Print this text (the usage) and exit successfully.
    Help(String),
}

impl fmt::Debug for Command {
    /// Like a derived `Debug`, but a configuration is shown key by key with
    /// secrets hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Serve(config) => {
                let mut config = config.clone();
                let mut out = f.debug_struct("Serve");
                for key in KEYS {
                    let shown = key.show(&mut config);
                    out.field(key.name, &format_args!("{shown}"));
                }
                out.finish()
            }
            Command::Load(args) => f.debug_tuple("Load").field(args).finish(),
            Command::Help(text) => f.debug_tuple("Help").field(text).finish(),
        }
    }
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// This command-line flag (as `--name`, without its value).
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "config file {}", path.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Why the configuration file could not be used.
#[derive(Debug)]
pub enum FileError {
    /// It could not be read.
    Read(std::io::Error),
    /// It is not valid TOML: where and why (without echoing the line, which
    /// may hold a secret).
    Parse(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Read(error) => write!(f, "cannot read it: {error}"),
            FileError::Parse(message) => write!(f, "not valid TOML: {message}"),
        }
    }
}

/// What was wrong with the command line, the environment or the file.
#[derive(Debug)]
pub enum CliError {
    /// The first argument is not `serve`, `load`, `help` or a flag.
    UnknownCommand(String),
    /// A flag that names no key (given as `--name`, without its value).
    UnknownFlag(String),
    /// A positional argument where only flags are taken.
    UnexpectedArgument(String),
    /// A flag at the end of the line with no value after it.
    MissingValue(String),
    /// A value that does not parse as its key's kind (secrets shown as `(hidden)`).
    BadValue {
        /// The config key.
        key: &'static str,
        /// The value as given.
        value: String,
        /// What the key takes.
        expected: &'static str,
        /// Where the value came from.
        source: Source,
    },
    /// A TOML value of the wrong type (`ping_interval = "fast"`).
    WrongType {
        /// The config key.
        key: &'static str,
        /// The TOML type found (`string`, `array`, ...).
        found: &'static str,
        /// The TOML type the key takes.
        expected: &'static str,
        /// Where the value came from.
        source: Source,
    },
    /// A key in the file that is not a config key (a typo is never ignored).
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was found.
        source: Source,
    },
    /// The configuration file could not be read or parsed.
    File {
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        error: FileError,
    },
    /// Every value parsed, but [`Config::validate`] refused the combination.
    Invalid(ConfigError),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownCommand(command) => write!(
                f,
                "unknown command `{command}`: expected serve, load or help (see gmws --help)"
            ),
            CliError::UnknownFlag(flag) => {
                write!(f, "unknown flag `{flag}` (see gmws --help)")
            }
            CliError::UnexpectedArgument(arg) => {
                write!(f, "unexpected argument `{arg}`: serve takes only flags")
            }
            CliError::MissingValue(flag) => write!(f, "flag `{flag}` needs a value"),
            CliError::BadValue {
                key,
                value,
                expected,
                source,
            } => write!(
                f,
                "{source}: bad value `{value}` for {key}: expected {expected}"
            ),
            CliError::WrongType {
                key,
                found,
                expected,
                source,
            } => write!(f, "{source}: {key} must be {expected}, not a TOML {found}"),
            CliError::UnknownKey { key, source } => {
                write!(f, "{source}: unknown key `{key}` (see gmws --help)")
            }
            CliError::File { path, error } => {
                write!(f, "config file {}: {error}", path.display())
            }
            CliError::Invalid(error) => write!(f, "invalid configuration: {error}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::File {
                error: FileError::Read(error),
                ..
            } => Some(error),
            CliError::Invalid(error) => Some(error),
            _ => None,
        }
    }
}

/// What kind of value a key takes; decides parsing, help and error texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Seconds,
    Bytes,
    Integer,
    Bool,
    Text,
    OptText,
    List,
    Addr,
}

impl Kind {
    /// The value's name in the usage (`--ping-interval SECONDS`).
    fn placeholder(self) -> &'static str {
        match self {
            Kind::Seconds => "SECONDS",
            Kind::Bytes => "BYTES",
            Kind::Integer => "N",
            Kind::Bool => "BOOL",
            Kind::Text | Kind::OptText => "STRING",
            Kind::List => "LIST",
            Kind::Addr => "ADDR",
        }
    }

    /// What a well-formed value looks like, for [`CliError::BadValue`].
    fn expected(self) -> &'static str {
        match self {
            Kind::Seconds => "seconds, fractions allowed (15, 0.5)",
            Kind::Bytes => "bytes, optionally with a suffix (1048576, 8KiB, 1MiB, 1MB)",
            Kind::Integer => "a non-negative integer in range",
            Kind::Bool => "true/false, 1/0 or yes/no",
            Kind::Text | Kind::OptText => "a string",
            Kind::List => "a comma-separated list",
            Kind::Addr => "a socket address IP:PORT (127.0.0.1:8080)",
        }
    }

    /// The TOML type the key takes, for [`CliError::WrongType`].
    fn toml_type(self) -> &'static str {
        match self {
            Kind::Seconds => "a number of seconds (integer or float)",
            Kind::Bytes => "an integer or a size string (\"1MiB\")",
            Kind::Integer => "an integer",
            Kind::Bool => "a boolean",
            Kind::Text | Kind::OptText | Kind::Addr => "a string",
            Kind::List => "an array of strings",
        }
    }
}

/// Reaches one field of a `Config`, to read its default or to set it.
type At<T> = fn(&mut Config) -> &mut T;

/// A key's field, by Rust type (and by kind where two kinds share a type).
#[derive(Clone, Copy)]
enum Field {
    Seconds(At<Duration>),
    Bytes64(At<u64>),
    Bytes(At<usize>),
    Count32(At<u32>),
    Count(At<usize>),
    Bool(At<bool>),
    Text(At<String>),
    OptText(At<Option<String>>),
    List(At<Vec<String>>),
    Addr(At<SocketAddr>),
}

/// A value parsed for its kind, before it is narrowed to the field's type.
enum Parsed {
    Secs(Duration),
    Num(u64),
    Bool(bool),
    Text(String),
    List(Vec<String>),
    Addr(SocketAddr),
}

impl Field {
    fn kind(self) -> Kind {
        match self {
            Field::Seconds(_) => Kind::Seconds,
            Field::Bytes64(_) | Field::Bytes(_) => Kind::Bytes,
            Field::Count32(_) | Field::Count(_) => Kind::Integer,
            Field::Bool(_) => Kind::Bool,
            Field::Text(_) => Kind::Text,
            Field::OptText(_) => Kind::OptText,
            Field::List(_) => Kind::List,
            Field::Addr(_) => Kind::Addr,
        }
    }

    /// Store a parsed value; `None` if it does not fit the field's type.
    fn store(self, config: &mut Config, value: Parsed) -> Option<()> {
        match (self, value) {
            (Field::Seconds(at), Parsed::Secs(d)) => *at(config) = d,
            (Field::Bytes64(at), Parsed::Num(n)) => *at(config) = n,
            (Field::Bytes(at) | Field::Count(at), Parsed::Num(n)) => {
                *at(config) = usize::try_from(n).ok()?
            }
            (Field::Count32(at), Parsed::Num(n)) => *at(config) = u32::try_from(n).ok()?,
            (Field::Bool(at), Parsed::Bool(b)) => *at(config) = b,
            (Field::Text(at), Parsed::Text(s)) => *at(config) = s,
            (Field::OptText(at), Parsed::Text(s)) => {
                *at(config) = Some(s).filter(|s| !s.is_empty())
            }
            (Field::List(at), Parsed::List(items)) => *at(config) = items,
            (Field::Addr(at), Parsed::Addr(addr)) => *at(config) = addr,
            _ => return None,
        }
        Some(())
    }

    /// The field's value as the help text shows it (and as it could be given).
    fn show(self, config: &mut Config) -> String {
        match self {
            Field::Seconds(at) => fmt_secs(*at(config)),
            Field::Bytes64(at) => fmt_size(*at(config)),
            Field::Bytes(at) => fmt_size(*at(config) as u64),
            Field::Count32(at) => at(config).to_string(),
            Field::Count(at) => at(config).to_string(),
            Field::Bool(at) => at(config).to_string(),
            Field::Text(at) if at(config).is_empty() => "\"\"".to_owned(),
            Field::Text(at) => at(config).clone(),
            Field::OptText(at) => at(config).clone().unwrap_or_else(|| "(unset)".to_owned()),
            Field::List(at) if at(config).is_empty() => "(empty)".to_owned(),
            Field::List(at) => at(config).join(","),
            Field::Addr(at) => at(config).to_string(),
        }
    }
}

/// One config key: its name (the `Config` field), how to reach the field, its
/// help line, and whether its value is a secret never to be printed.
struct Key {
    name: &'static str,
    field: Field,
    help: &'static str,
    secret: bool,
}

impl Key {
    fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    fn env(&self) -> String {
        format!("{ENV_PREFIX}{}", self.name.to_ascii_uppercase())
    }

    /// The value for help and `Debug`, secrets reduced to `(set)`/`(unset)`.
    fn show(&self, config: &mut Config) -> String {
        match (self.secret, self.field) {
            (false, field) => field.show(config),
            (true, Field::OptText(at)) if at(config).is_none() => "(unset)".to_owned(),
            (true, _) => "(set)".to_owned(),
        }
    }
}

/// One table entry: the name is the `Config` field itself, so the two cannot
/// drift apart.
macro_rules! key {
    ($name:ident, $field:ident, $help:expr) => {
        key!($name, $field, $help, false)
    };
    ($name:ident, $field:ident, $help:expr, secret) => {
        key!($name, $field, $help, true)
    };
    ($name:ident, $field:ident, $help:expr, $secret:expr) => {
        Key {
            name: stringify!($name),
            field: Field::$field(|c| &mut c.$name),
            help: $help,
            secret: $secret,
        }
    };
}

/// Every `Config` key, in the order of the struct (and of the help).
static KEYS: &[Key] = &[
    key!(listen, Addr, "Address to listen on."),
    key!(
        ping_interval,
        Seconds,
        "Seconds between server pings; 0 turns heartbeats off."
    ),
    key!(
        ping_timeout_count,
        Count32,
        "Unanswered pings before the socket is closed."
    ),
    key!(
        auth_timeout,
        Seconds,
        "Seconds a socket has to bind a client id, else close 1008; 0: no deadline."
    ),
    key!(
        handshake_timeout,
        Seconds,
        "Seconds a connection has to send its whole request head."
    ),
    key!(
        close_timeout,
        Seconds,
        "Seconds to wait for the peer's close after ours, then drop TCP."
    ),
    key!(
        http_idle_timeout,
        Seconds,
        "Seconds before an idle plain-HTTP keep-alive connection is closed."
    ),
    key!(
        max_message_size,
        Bytes64,
        "Largest message; larger: close 1009."
    ),
    key!(
        max_frame_size,
        Bytes64,
        "Largest frame payload; larger: close 1009."
    ),
    key!(
        max_fragments,
        Count32,
        "Most frames per message, empty ones included; more: close 1008."
    ),
    key!(
        max_request_head,
        Bytes,
        "Largest HTTP request head; larger: 431."
    ),
    key!(
        max_request_headers,
        Count,
        "Most HTTP request headers; more: 431."
    ),
    key!(
        max_http_body,
        Bytes,
        "Largest HTTP request body; larger: 413."
    ),
    key!(
        max_backpressure,
        Bytes,
        "Most output one connection may have waiting after the kernel took what it could; more: close 1008."
    ),
    key!(
        max_connections,
        Count,
        "Most open connections, HTTP and WebSocket; more are refused with 503."
    ),
    key!(
        max_pending_handshakes,
        Count,
        "Most connections reading a request head at once; past it new ones get 503."
    ),
    key!(
        max_idle_http,
        Count,
        "Most idle keep-alive HTTP connections; past it the oldest is closed."
    ),
    key!(
        max_connections_per_ip,
        Count,
        "Most connections from one IP (0: no limit); more get 429."
    ),
    key!(
        per_ip_exempt,
        List,
        "IP addresses and CIDR ranges not held to max_connections_per_ip."
    ),
    key!(
        max_buffer_memory,
        Bytes,
        "Bytes buffered for peers, process-wide; past it the largest holders are closed (1013)."
    ),
    key!(
        max_fanout_per_turn,
        Bytes,
        "Fan-out delivery bytes per loop turn before decoding waits for the next turn."
    ),
    key!(
        client_fanout_rate,
        Bytes64,
        "Delivery bytes per second a socket may cause by its sends (0: no limit)."
    ),
    key!(
        client_fanout_burst,
        Bytes64,
        "Burst of client_fanout_rate, in delivery bytes."
    ),
    key!(
        invalid_message_limit,
        Count32,
        "Invalid messages per window before a socket is closed (1008)."
    ),
    key!(
        invalid_message_window,
        Seconds,
        "The window of invalid_message_limit, in seconds."
    ),
    key!(
        binary_messages,
        Text,
        "Gateway answer to a binary frame: error, close (1003) or ignore."
    ),
    key!(
        allowed_origins,
        List,
        "Origins allowed to upgrade (others get 403); empty allows any."
    ),
    key!(protocols, List, "Subprotocols offered to clients."),
    key!(
        api_key,
        OptText,
        "Bearer token for /api/* (Authorization: Bearer KEY); unset: the API is refused.",
        secret
    ),
    key!(
        api_trust_loopback,
        Bool,
        "Without api_key, let loopback peers use /api/* keyless (unsafe behind a local proxy)."
    ),
    key!(
        auth_secret,
        OptText,
        "HS256 secret for bind tokens, at least 32 bytes; unset: bind trusts the client id given.",
        secret
    ),
    key!(
        auth_require_exp,
        Bool,
        "Whether a bind token must have an exp claim."
    ),
    key!(
        auth_audience,
        OptText,
        "When set, a bind token's aud (string or array) must hold it."
    ),
    key!(
        auth_issuer,
        OptText,
        "When set, a bind token's iss must equal it."
    ),
    key!(
        auth_leeway,
        Seconds,
        "Seconds of clock skew tolerated on a bind token's exp and nbf."
    ),
    key!(
        max_groups_per_socket,
        Count,
        "Most groups one socket may join."
    ),
    key!(max_group_name, Bytes, "Longest group name."),
    key!(max_client_id, Bytes, "Longest client id."),
    key!(
        max_group_bytes_per_socket,
        Bytes,
        "Most bytes of group names one socket's groups may add up to."
    ),
    key!(
        max_session_size,
        Bytes,
        "Largest session of one socket, as JSON."
    ),
    key!(
        allow_join,
        Bool,
        "Whether clients may join and leave groups themselves."
    ),
    key!(allow_send_to_all, Bool, "Whether clients may send_to_all."),
    key!(
        allow_send_to_group,
        Bool,
        "Whether clients may send_to_group."
    ),
    key!(
        allow_send_to_client,
        Bool,
        "Whether clients may send_to_client."
    ),
    key!(demo_page, Bool, "Whether GET / serves the demo page."),
    key!(
        log_level,
        Text,
        "Log level: off, error, warn, info or debug."
    ),
];

/// A raw value from one of the three sources.
enum Input<'a> {
    Text(&'a str),
    Toml(&'a toml::Value),
}

impl Input<'_> {
    /// The value as given, for error messages.
    fn text(&self) -> String {
        match self {
            Input::Text(text) => (*text).to_owned(),
            Input::Toml(value) => toml_text(value),
        }
    }
}

/// A TOML scalar as text (strings unquoted); other types by their type name.
fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.type_str().to_owned(),
    }
}

/// Why a value was refused.
enum Problem {
    /// The right type, but not a valid value.
    Bad,
    /// A TOML value of this (wrong) type.
    WrongType(&'static str),
}

fn parse(kind: Kind, input: &Input<'_>) -> Result<Parsed, Problem> {
    use toml::Value as V;
    let value = match input {
        Input::Text(text) => return parse_text(kind, text).ok_or(Problem::Bad),
        Input::Toml(value) => value,
    };
    match (kind, value) {
        (Kind::List, V::Array(items)) => items
            .iter()
            .map(|item| match item {
                V::String(s) => Ok(s.clone()),
                other => Err(Problem::WrongType(match other {
                    V::Integer(_) | V::Float(_) => "array with a number in it",
                    V::Boolean(_) => "array with a boolean in it",
                    _ => "array with a non-string in it",
                })),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Parsed::List),
        (Kind::Seconds, V::Integer(_) | V::Float(_))
        | (Kind::Bytes, V::Integer(_) | V::String(_))
        | (Kind::Integer, V::Integer(_))
        | (Kind::Bool, V::Boolean(_))
        | (Kind::Text | Kind::OptText | Kind::Addr, V::String(_)) => {
            parse_text(kind, &toml_text(value)).ok_or(Problem::Bad)
        }
        (_, other) => Err(Problem::WrongType(other.type_str())),
    }
}

fn parse_text(kind: Kind, text: &str) -> Option<Parsed> {
    Some(match kind {
        Kind::Seconds => Parsed::Secs(parse_secs(text)?),
        Kind::Bytes => Parsed::Num(parse_size(text)?),
        Kind::Integer => Parsed::Num(text.trim().parse().ok()?),
        Kind::Bool => Parsed::Bool(parse_bool(text)?),
        Kind::Text | Kind::OptText => Parsed::Text(text.to_owned()),
        Kind::List => Parsed::List(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Kind::Addr => Parsed::Addr(text.trim().parse().ok()?),
    })
}

/// `15`, `0.5`, `.25`, `2.` as seconds; exact to the nanosecond (further
/// digits are dropped); no sign, exponent or unit.
fn parse_secs(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return None;
    }
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    Some(Duration::new(secs, nanos))
}

/// Seconds with as many decimals as needed: `15`, `0.5`, `0.001`.
fn fmt_secs(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return d.as_secs().to_string();
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
}

const SIZE_SUFFIXES: [(&str, u64); 7] = [
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
];

/// Bytes: `4096`, `8KiB`, `1 MiB`, `1MB`, `2GiB` (suffix in any case).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let suffix = suffix.trim_start().to_ascii_lowercase();
    let scale = if suffix.is_empty() {
        1
    } else {
        SIZE_SUFFIXES
            .iter()
            .find(|(name, _)| *name == suffix)
            .map(|(_, scale)| *scale)?
    };
    if number.is_empty() {
        return None;
    }
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// Bytes in the largest binary unit that divides them exactly: `1MiB`, `8KiB`, `255`.
fn fmt_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Parse and store one value of `key`.
fn apply(config: &mut Config, key: &Key, input: Input<'_>, source: Source) -> Result<(), CliError> {
    let kind = key.field.kind();
    let bad = |source| CliError::BadValue {
        key: key.name,
        value: if key.secret {
            "(hidden)".to_owned()
        } else {
            input.text()
        },
        expected: kind.expected(),
        source,
    };
    match parse(kind, &input) {
        Ok(parsed) => key.field.store(config, parsed).ok_or_else(|| bad(source)),
        Err(Problem::Bad) => Err(bad(source)),
        Err(Problem::WrongType(found)) => Err(CliError::WrongType {
            key: key.name,
            found,
            expected: kind.toml_type(),
            source,
        }),
    }
}

/// Apply every top-level key of the TOML file at `path`.
fn apply_file(config: &mut Config, path: &Path) -> Result<(), CliError> {
    let file_error = |error| CliError::File {
        path: path.to_owned(),
        error,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(FileError::Read(e)))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_error(FileError::Parse(toml_message(&text, &e))))?;
    for (name, value) in &table {
        let source = Source::File(path.to_owned());
        let Some(key) = KEYS.iter().find(|key| key.name == name) else {
            return Err(CliError::UnknownKey {
                key: name.clone(),
                source,
            });
        };
        apply(config, key, Input::Toml(value), source)?;
    }
    Ok(())
}

/// The parser's message with a line and column, but not the offending line
/// itself (it may hold a secret).
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// Apply every `GMWS_<KEY>` variable; unknown `GMWS_*` ones become warnings.
fn apply_env(
    config: &mut Config,
    env: &[(String, String)],
    warnings: &mut Vec<String>,
) -> Result<(), CliError> {
    for (var, value) in env {
        if !var.starts_with(ENV_PREFIX) || var == CONFIG_ENV {
            continue;
        }
        match KEYS.iter().find(|key| key.env() == *var) {
            Some(key) => apply(config, key, Input::Text(value), Source::Env(var.clone()))?,
            None => warnings.push(format!(
                "ignoring unknown environment variable {var} (see gmws --help)"
            )),
        }
    }
    Ok(())
}

/// The flags of `serve`, before they are applied.
#[derive(Default)]
struct Flags {
    config: Option<PathBuf>,
    /// Key, value, and the flag as written (`--name`).
    values: Vec<(&'static Key, String, String)>,
}

/// Read the flags; `Ok(None)` when help was asked for.
fn parse_flags(args: &[String]) -> Result<Option<Flags>, CliError> {
    let mut flags = Flags::default();
    let mut args = args.iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(if arg.starts_with('-') {
                CliError::UnknownFlag(arg.clone())
            } else {
                CliError::UnexpectedArgument(arg.clone())
            });
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (body, None),
        };
        let flag = format!("--{name}");
        let key = KEYS.iter().find(|key| key.flag() == flag);
        let bare_bool = inline.is_none()
            && key.is_some_and(|key| key.field.kind() == Kind::Bool)
            && args.peek().is_none_or(|next| next.starts_with('-'));
        if key.is_none() && name != "config" {
            return Err(CliError::UnknownFlag(flag));
        }
        let value = match inline {
            Some(value) => value,
            None if bare_bool => "true".to_owned(),
            None => match args.next() {
                Some(value) => value.clone(),
                None => return Err(CliError::MissingValue(flag)),
            },
        };
        match key {
            Some(key) => flags.values.push((key, value, flag)),
            None => flags.config = Some(PathBuf::from(value)),
        }
    }
    Ok(Some(flags))
}

/// Build the configuration of `serve`: defaults, file, env, flags, validate.
fn serve(args: &[String], env: &[(String, String)]) -> Result<(Command, Vec<String>), CliError> {
    let Some(flags) = parse_flags(args)? else {
        return Ok((Command::Help(usage()), Vec::new()));
    };
    let mut config = Config::default();
    let mut warnings = Vec::new();
    let path = flags.config.or_else(|| {
        env.iter()
            .rev()
            .find(|(var, value)| var == CONFIG_ENV && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    });
    if let Some(path) = path {
        apply_file(&mut config, &path)?;
    }
    apply_env(&mut config, env, &mut warnings)?;
    for (key, value, flag) in flags.values {
        if key.secret {
            warnings.push(format!(
                "{flag} on the command line is visible to other local users; prefer {} or the config file",
                key.env()
            ));
        }
        apply(&mut config, key, Input::Text(&value), Source::Flag(flag))?;
    }
    config.validate().map_err(CliError::Invalid)?;
    Ok((Command::Serve(config), warnings))
}

/// Decide what to run from the arguments (without `argv[0]`) and the process
/// environment (passed in so tests need not touch the real one).
///
/// The first argument may be `serve` (the default, also when it is absent or
/// starts with `-`), `load` (the rest is returned as is) or `help`. For
/// `serve`, the configuration is built with precedence flag > env > file >
/// default and validated. The second value holds warnings for the caller to
/// log (unknown `GMWS_*` variables, secrets given as flags).
pub fn parse_command(
    args: &[String],
    env: &[(String, String)],
) -> Result<(Command, Vec<String>), CliError> {
    match args.first().map(String::as_str) {
        None => serve(args, env),
        Some(flag) if flag.starts_with('-') => serve(args, env),
        Some("serve") => serve(&args[1..], env),
        Some("load") => Ok((Command::Load(args[1..].to_vec()), Vec::new())),
        Some("help") => Ok((Command::Help(usage()), Vec::new())),
        Some(other) => Err(CliError::UnknownCommand(other.to_owned())),
    }
}

/// The text of `gmws --help`: the commands, the precedence, the value formats,
/// and every key with its flag, environment variable, default and meaning.
pub fn usage() -> String {
    let mut defaults = Config::default();
    let heads: Vec<String> = KEYS
        .iter()
        .map(|key| format!("{} {}", key.flag(), key.field.kind().placeholder()))
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
yes/no; a BOOL flag with no value means true. LIST is comma-separated (an array
of strings in the file). An empty STRING unsets an optional key.

Options:
  --config FILE     TOML configuration file; also GMWS_CONFIG
  -h, --help        print this help

Keys:
",
    );
    for (key, head) in KEYS.iter().zip(&heads) {
        out.push_str(&format!(
            "  {head:width$}  [env {}] (default {})\n        {}\n",
            key.env(),
            key.show(&mut defaults),
            key.help,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn run(args: &[&str], vars: &[(&str, &str)]) -> Result<(Command, Vec<String>), CliError> {
        parse_command(&strings(args), &env(vars))
    }

    fn loaded(args: &[&str], vars: &[(&str, &str)]) -> Config {
        match run(args, vars) {
            Ok((Command::Serve(config), _)) => config,
            other => panic!("expected Serve, got {other:?}"),
        }
    }

    fn error(args: &[&str], vars: &[(&str, &str)]) -> CliError {
        match run(args, vars) {
            Err(error) => error,
            Ok(other) => panic!("expected an error, got {other:?}"),
        }
    }

    /// A TOML file in the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "gmws-cli-test-{}-{}.toml",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, text).expect("write temp config");
            TempFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The field names of `Config`, from its derived `Debug`.
    fn config_fields() -> Vec<String> {
        format!("{:#?}", Config::default())
            .lines()
            .filter_map(|line| line.strip_prefix("    "))
            .filter(|line| !line.starts_with(' '))
            .filter_map(|line| line.split_once(':').map(|(name, _)| name.to_owned()))
            .collect()
    }

    #[test]
    fn no_arguments_serve_the_defaults() {
        let (command, warnings) = run(&[], &[]).expect("defaults");
        assert!(warnings.is_empty());
        let Command::Serve(config) = command else {
            panic!("expected Serve");
        };
        let default = Config::default();
        assert_eq!(config.listen, default.listen);
        assert_eq!(config.ping_interval, default.ping_interval);
        assert_eq!(config.protocols, default.protocols);
        assert_eq!(config.api_key, None);
        assert!(!config.api_trust_loopback);
        let config = loaded(&["serve"], &[]);
        assert_eq!(config.max_message_size, default.max_message_size);
    }

    #[test]
    fn the_table_has_every_config_field_once() {
        let names: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
        assert_eq!(config_fields(), names);
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let file = TempFile::new(
            r#"
ping_interval = 1
max_message_size = "2MiB"
allow_join = false
protocols = ["file"]
log_level = "debug"
max_connections = 10
listen = "0.0.0.0:9000"
"#,
        );
        let vars = [
            ("GMWS_CONFIG", file.path()),
            ("GMWS_PING_INTERVAL", "2"),
            ("GMWS_MAX_MESSAGE_SIZE", "3000"),
            ("GMWS_PROTOCOLS", "env1,env2"),
            ("GMWS_ALLOW_JOIN", "yes"),
            ("GMWS_MAX_CONNECTIONS", "20"),
        ];
        let c = loaded(
            &[
                "--ping-interval",
                "3",
                "--allow-join=no",
                "--protocols",
                "flag",
            ],
            &vars,
        );
        assert_eq!(c.ping_interval, Duration::from_secs(3)); // flag
        assert!(!c.allow_join); // flag over env
        assert_eq!(c.protocols, ["flag"]); // flag
        assert_eq!(c.max_message_size, 3000); // env over file
        assert_eq!(c.max_connections, 20); // env over file
        assert_eq!(c.log_level, "debug"); // file
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap()); // file
        assert_eq!(c.close_timeout, Config::default().close_timeout); // default

        // --config beats GMWS_CONFIG.
        let other = TempFile::new("log_level = \"warn\"\n");
        let c = loaded(&["serve", "--config", other.path()], &vars);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.ping_interval, Duration::from_secs(2));
    }

    #[test]
    fn durations_take_fractions() {
        let file = TempFile::new("close_timeout = 0.25\nhttp_idle_timeout = 2\n");
        let c = loaded(
            &["--ping-interval", "0.5", "--config", file.path()],
            &[("GMWS_AUTH_TIMEOUT", "1.125")],
        );
        assert_eq!(c.ping_interval, Duration::from_millis(500));
        assert_eq!(c.auth_timeout, Duration::from_millis(1125));
        assert_eq!(c.close_timeout, Duration::from_millis(250));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(2));
        assert_eq!(parse_secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs("2."), Some(Duration::from_secs(2)));
        assert_eq!(parse_secs("0.000000001"), Some(Duration::from_nanos(1)));
        for bad in ["", ".", "-1", "1e3", "1s", "1.2.3", "inf", "NaN"] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
        assert_eq!(fmt_secs(Duration::from_secs(15)), "15");
        assert_eq!(fmt_secs(Duration::from_millis(500)), "0.5");
        assert_eq!(fmt_secs(Duration::from_millis(1)), "0.001");
        let negative = TempFile::new("ping_interval = -1.5\n");
        assert!(matches!(
            error(&["--config", negative.path()], &[]),
            CliError::BadValue {
                key: "ping_interval",
                ..
            }
        ));
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("8KiB"), Some(8192));
        assert_eq!(parse_size("1 mib"), Some(1 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        for bad in ["", "MiB", "1.5MiB", "-1", "1XB", "99999999999GiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(fmt_size(1 << 20), "1MiB");
        assert_eq!(fmt_size(8192), "8KiB");
        assert_eq!(fmt_size(255), "255");
        assert_eq!(fmt_size(0), "0");
        let c = loaded(&["--max-http-body", "64KiB"], &[]);
        assert_eq!(c.max_http_body, 64 * 1024);
    }

    #[test]
    fn lists_split_on_commas_and_come_as_toml_arrays() {
        let c = loaded(
            &["--allowed-origins", " https://a.test, ,https://b.test,"],
            &[],
        );
        assert_eq!(c.allowed_origins, ["https://a.test", "https://b.test"]);
        let c = loaded(&[], &[("GMWS_PROTOCOLS", "")]);
        assert!(c.protocols.is_empty());
        let file = TempFile::new("protocols = [\"chat, v1\", \"x\"]\n");
        let c = loaded(&["--config", file.path()], &[]);
        assert_eq!(c.protocols, ["chat, v1", "x"]);
        let file = TempFile::new("protocols = [\"a\", 2]\n");
        assert!(matches!(
            error(&["--config", file.path()], &[]),
            CliError::WrongType {
                key: "protocols",
                ..
            }
        ));
    }

    #[test]
    fn bools_take_several_spellings() {
        for (text, want) in [
            ("true", true),
            ("false", false),
            ("1", true),
            ("0", false),
            ("yes", true),
            ("NO", false),
        ] {
            let c = loaded(&[], &[("GMWS_DEMO_PAGE", text)]);
            assert_eq!(c.demo_page, want, "{text}");
            let c = loaded(
                &["--allow-send-to-all", text],
                &[("GMWS_ALLOW_SEND_TO_ALL", "1")],
            );
            assert_eq!(c.allow_send_to_all, want, "{text}");
        }
        // A bool flag with no value means true.
        let c = loaded(
            &["--demo-page", "--listen", "127.0.0.1:1"],
            &[("GMWS_DEMO_PAGE", "no")],
        );
        assert!(c.demo_page);
        let c = loaded(&["--allow-join"], &[("GMWS_ALLOW_JOIN", "0")]);
        assert!(c.allow_join);
        assert!(matches!(
            error(&["--demo-page", "maybe"], &[]),
            CliError::BadValue {
                key: "demo_page",
                ..
            }
        ));
        assert!(matches!(
            error(&["--demo-page=maybe"], &[]),
            CliError::BadValue {
                key: "demo_page",
                ..
            }
        ));
        let file = TempFile::new("allow_join = 1\n");
        let e = error(&["--config", file.path()], &[]);
        assert!(matches!(
            e,
            CliError::WrongType {
                key: "allow_join",
                found: "integer",
                ..
            }
        ));
        assert!(
            e.to_string().contains("allow_join must be a boolean"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let file = TempFile::new("ping_intervall = 3\n");
        let e = error(&["--config", file.path()], &[]);
        assert!(
            matches!(&e, CliError::UnknownKey { key, source: Source::File(_) } if key == "ping_intervall")
        );
        assert!(e.to_string().contains("ping_intervall"), "{e}");
        let file = TempFile::new("[server]\nlisten = \"127.0.0.1:1\"\n");
        assert!(matches!(
            error(&["--config", file.path()], &[]),
            CliError::UnknownKey { .. }
        ));
        assert!(matches!(
            error(&["--ping-intervall", "3"], &[]),
            CliError::UnknownFlag(flag) if flag == "--ping-intervall"
        ));
        assert!(matches!(
            error(&["--ping_interval", "3"], &[]),
            CliError::UnknownFlag(_)
        ));
        assert!(matches!(error(&["-p"], &[]), CliError::UnknownFlag(_)));
        assert!(matches!(
            error(&["serve", "extra"], &[]),
            CliError::UnexpectedArgument(arg) if arg == "extra"
        ));
        assert!(matches!(error(&["srve"], &[]), CliError::UnknownCommand(_)));
    }

    #[test]
    fn unknown_env_vars_are_warnings() {
        let file = TempFile::new("");
        let (command, warnings) = run(
            &[],
            &[
                ("GMWS_PING_INTERVALL", "3"),
                ("GMWS_CONFIG", file.path()),
                ("PATH", "/bin"),
                ("gmws_ping_interval", "9"),
            ],
        )
        .expect("warnings only");
        assert!(matches!(command, Command::Serve(_)));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("GMWS_PING_INTERVALL"));
    }

    #[test]
    fn bad_values_name_key_value_and_source() {
        let e = error(&["--max-connections", "lots"], &[]);
        assert!(matches!(
            &e,
            CliError::BadValue { key: "max_connections", value, source: Source::Flag(_), .. } if value == "lots"
        ));
        assert!(e.to_string().contains("max_connections"), "{e}");
        assert!(matches!(
            error(&[], &[("GMWS_PING_TIMEOUT_COUNT", "4294967296")]),
            CliError::BadValue {
                key: "ping_timeout_count",
                source: Source::Env(_),
                ..
            }
        ));
        assert!(matches!(
            error(&["--listen", "localhost"], &[]),
            CliError::BadValue { key: "listen", .. }
        ));
        let file = TempFile::new("ping_interval = \"fast\"\n");
        let e = error(&["--config", file.path()], &[]);
        assert!(matches!(
            e,
            CliError::WrongType {
                key: "ping_interval",
                found: "string",
                ..
            }
        ));
        assert!(matches!(
            error(&["--listen"], &[]),
            CliError::MissingValue(flag) if flag == "--listen"
        ));
        assert!(matches!(
            error(&["--config"], &[]),
            CliError::MissingValue(_)
        ));
    }

    #[test]
    fn key_equals_value() {
        let c = loaded(
            &["--listen=0.0.0.0:1234", "--api-key=a=b", "--log-level=warn"],
            &[],
        );
        assert_eq!(c.listen, "0.0.0.0:1234".parse().unwrap());
        assert_eq!(c.api_key.as_deref(), Some("a=b"));
        assert_eq!(c.log_level, "warn");
        let file = TempFile::new("log_level = \"debug\"\n");
        let c = loaded(&[&format!("--config={}", file.path())], &[]);
        assert_eq!(c.log_level, "debug");
    }

    #[test]
    fn optional_strings_are_unset_by_empty() {
        let secret = "s".repeat(32);
        let c = loaded(&["--auth-secret", ""], &[("GMWS_AUTH_SECRET", &secret)]);
        assert_eq!(c.auth_secret, None);
        let c = loaded(&[], &[("GMWS_AUTH_SECRET", &secret)]);
        assert_eq!(c.auth_secret.as_deref(), Some(secret.as_str()));
        let c = loaded(&["--auth-audience", "", "--auth-issuer", "me"], &[]);
        assert_eq!(c.auth_audience, None);
        assert_eq!(c.auth_issuer.as_deref(), Some("me"));
    }

    #[test]
    fn auth_token_keys() {
        let c = loaded(&[], &[]);
        assert!(c.auth_require_exp);
        assert_eq!(c.auth_leeway, Duration::from_secs(30));
        assert_eq!((c.auth_audience, c.auth_issuer), (None, None));
        let file = TempFile::new(
            "auth_require_exp = false\nauth_leeway = 2.5\nauth_audience = \"gmws\"\n",
        );
        let c = loaded(
            &["--config", file.path(), "--auth-issuer=https://id.example"],
            &[("GMWS_AUTH_LEEWAY", "5")],
        );
        assert!(!c.auth_require_exp);
        assert_eq!(c.auth_leeway, Duration::from_secs(5)); // env over file
        assert_eq!(c.auth_audience.as_deref(), Some("gmws"));
        assert_eq!(c.auth_issuer.as_deref(), Some("https://id.example"));
        let c = loaded(&["--config", file.path()], &[]);
        assert_eq!(c.auth_leeway, Duration::from_millis(2500));
    }

    #[test]
    fn validate_runs_last() {
        assert!(matches!(
            error(&["--max-backpressure", "10"], &[]),
            CliError::Invalid(ConfigError::OutOfRange("max_backpressure", _))
        ));
        assert!(matches!(
            error(&[], &[("GMWS_LOG_LEVEL", "loud")]),
            CliError::Invalid(_)
        ));
        // A short auth_secret is refused at start, naming the key and the
        // minimum, never the secret.
        let e = error(&[], &[("GMWS_AUTH_SECRET", "tooshort-s3cret")]);
        assert!(matches!(
            e,
            CliError::Invalid(ConfigError::SecretTooShort("auth_secret", 32))
        ));
        let text = e.to_string();
        assert!(
            text.contains("auth_secret: must be at least 32 bytes"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn file_errors() {
        let missing = std::env::temp_dir().join("gmws-cli-test-does-not-exist.toml");
        assert!(matches!(
            error(&["--config", missing.to_str().expect("utf-8")], &[]),
            CliError::File {
                error: FileError::Read(_),
                ..
            }
        ));
        let file = TempFile::new("api_key = \"s3cret\nlisten = 1\n");
        let e = error(&["--config", file.path()], &[]);
        assert!(matches!(
            e,
            CliError::File {
                error: FileError::Parse(_),
                ..
            }
        ));
        let text = e.to_string();
        assert!(text.contains("line 1"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let (command, warnings) = run(
            &["--api-key", "s3cret"],
            &[(
                "GMWS_AUTH_SECRET",
                "t0ps3cret-t0ps3cret-t0ps3cret-t0ps3cret",
            )],
        )
        .expect("serve");
        let shown = format!("{command:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("api_key: (set)"), "{shown}");
        assert!(shown.contains("ping_interval: 15"), "{shown}");
        assert!(warnings.iter().any(|w| w.contains("--api-key")));
        assert!(warnings.iter().all(|w| !w.contains("s3cret")));
        assert!(usage().contains("--api-key STRING"));
    }

    #[test]
    fn help_lists_every_key_with_its_default() {
        for args in [
            &["--help"][..],
            &["-h"],
            &["help"],
            &["serve", "--listen", "1.2.3.4:5", "-h"],
        ] {
            let (command, _) = run(args, &[]).expect("help");
            assert!(matches!(command, Command::Help(_)), "{args:?}");
        }
        let text = usage();
        let listed = text.lines().filter(|l| l.contains("[env GMWS_")).count();
        assert_eq!(listed, KEYS.len());
        assert_eq!(listed, config_fields().len());
        for needle in [
            "--listen ADDR",
            "[env GMWS_PING_INTERVAL] (default 15)",
            "--max-message-size BYTES",
            "[env GMWS_MAX_MESSAGE_SIZE] (default 1MiB)",
            "[env GMWS_MAX_REQUEST_HEAD] (default 8KiB)",
            "[env GMWS_API_KEY] (default (unset))",
            "--api-trust-loopback BOOL",
            "[env GMWS_API_TRUST_LOOPBACK] (default false)",
            "[env GMWS_AUTH_REQUIRE_EXP] (default true)",
            "--auth-leeway SECONDS",
            "[env GMWS_AUTH_LEEWAY] (default 30)",
            "[env GMWS_AUTH_AUDIENCE] (default (unset))",
            "[env GMWS_ALLOWED_ORIGINS] (default (empty))",
            "[env GMWS_DEMO_PAGE] (default true)",
            "[env GMWS_LOG_LEVEL] (default info)",
            "--config FILE",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn load_passes_its_arguments_through() {
        let (command, warnings) = run(
            &["load", "--connections", "10", "x"],
            &[("GMWS_BOGUS", "1")],
        )
        .expect("load");
        assert!(warnings.is_empty());
        match command {
            Command::Load(args) => assert_eq!(args, strings(&["--connections", "10", "x"])),
            other => panic!("expected Load, got {other:?}"),
        }
    }
}
