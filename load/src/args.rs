//! The command line of `gmws load`: [`parse`] and [`usage`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::payload::PayloadKind;

/// What the run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Round trips: one message in flight per connection, every echo checked.
    Echo,
    /// Memory: open connections, hold them, read the server's RSS.
    Idle,
    /// Fan-out: subscribers in one group, one publisher, delivery latency.
    Broadcast,
}

impl Mode {
    /// The mode's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Idle => "idle",
            Mode::Broadcast => "broadcast",
        }
    }

    fn parse(text: &str) -> Option<Mode> {
        match text {
            "echo" => Some(Mode::Echo),
            "idle" => Some(Mode::Idle),
            "broadcast" => Some(Mode::Broadcast),
            _ => None,
        }
    }
}

/// How broadcast mode publishes to the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publisher {
    /// `POST /api/send_to_group` on a keep-alive HTTP connection.
    Http,
    /// A `send_to_group` envelope on a bound WebSocket that is not in the group.
    Socket,
}

/// Everything a run needs; [`Default`] gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoadArgs {
    /// Echo, idle or broadcast (default echo).
    pub mode: Mode,
    /// The server, `HOST:PORT` (default `127.0.0.1:9001`, the echo example's).
    pub target: String,
    /// The request path of the upgrade (default `/`).
    pub path: String,
    /// Allow a target that does not resolve to a loopback address (default false).
    pub allow_remote: bool,
    /// Connections (echo), connections held (idle) or subscribers (broadcast);
    /// default 100.
    pub connections: usize,
    /// Payload bytes per message (default 1024; broadcast: the length of the
    /// published message string, default 64).
    pub size: usize,
    /// Binary or text frames (default binary; broadcast always sends text).
    pub kind: PayloadKind,
    /// Unmeasured time once all connections are up (default 1 s).
    pub warmup: Duration,
    /// Measured time (default 5 s).
    pub duration: Duration,
    /// How long idle mode holds its connections (default 10 s).
    pub hold: Duration,
    /// Server process to watch: CPU time (all modes) and RSS (idle); default none.
    pub pid: Option<u32>,
    /// Load generator threads, each with its own event loop (echo only; default 1).
    pub threads: usize,
    /// Connect + handshake timeout, and the longest wait for one echo or one
    /// publication's deliveries (default 10 s).
    pub timeout: Duration,
    /// Connections being set up at once (default 256).
    pub connect_window: usize,
    /// The group broadcast subscribers join (default `load`).
    pub group: String,
    /// How broadcast publishes (default http).
    pub publisher: Publisher,
    /// Publications per second; 0 publishes the next one as soon as the
    /// previous one has reached every subscriber (default 0).
    pub rate: f64,
    /// Bearer token for the HTTP API, the gateway's `api_key` (default none:
    /// the gateway must then run with `api_trust_loopback`).
    pub api_key: Option<String>,
    /// The gateway's `auth_secret`, to sign each `bind` token (default none).
    pub auth_secret: Option<String>,
    /// Connect over TLS (wss) (default false; needs `tls_ca` or
    /// `tls_insecure`).
    pub tls: bool,
    /// PEM file of the CA (or self-signed certificate) the server's
    /// certificate is checked against (default none).
    pub tls_ca: Option<PathBuf>,
    /// Take any server certificate, for loopback benchmarks (default false).
    pub tls_insecure: bool,
    /// Offer permessage-deflate, require it, compress every message sent
    /// (default false).
    pub deflate: bool,
    /// Broadcast over HTTP: the node (`HOST:PORT`) the publisher posts to,
    /// when it is not the target (another node of a cluster); its 200 is
    /// taken whatever its `delivered` says, since a node counts only its own
    /// sockets (default none: the target).
    pub publish_target: Option<String>,
    /// Broadcast: a second node (`HOST:PORT`) every other subscriber connects
    /// to, so the group is split over two nodes (default none).
    pub also_target: Option<String>,
}

impl Default for LoadArgs {
    fn default() -> Self {
        LoadArgs {
            mode: Mode::Echo,
            target: "127.0.0.1:9001".to_owned(),
            path: "/".to_owned(),
            allow_remote: false,
            connections: 100,
            size: 1024,
            kind: PayloadKind::Binary,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            hold: Duration::from_secs(10),
            pid: None,
            threads: 1,
            timeout: Duration::from_secs(10),
            connect_window: 256,
            group: "load".to_owned(),
            publisher: Publisher::Http,
            rate: 0.0,
            api_key: None,
            auth_secret: None,
            tls: false,
            tls_ca: None,
            tls_insecure: false,
            deflate: false,
            publish_target: None,
            also_target: None,
        }
    }
}

/// The default message size of broadcast mode.
const BROADCAST_SIZE: usize = 64;
/// Largest message size accepted (the echo example's limit).
const MAX_SIZE: usize = 16 << 20;

/// The flags that take a value.
const VALUE_FLAGS: [&str; 20] = [
    "--mode",
    "--target",
    "--path",
    "--connections",
    "--size",
    "--warmup",
    "--duration",
    "--hold",
    "--timeout",
    "--pid",
    "--threads",
    "--connect-window",
    "--group",
    "--publisher",
    "--rate",
    "--api-key",
    "--auth-secret",
    "--tls-ca",
    "--publish-target",
    "--also-target",
];

/// What the command line asks for.
// Built once and matched at once: boxing the arguments buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    /// Run with these arguments.
    Run(LoadArgs),
    /// Print [`usage`].
    Help,
}

/// What was wrong with the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// A flag `gmws load` does not take.
    UnknownFlag(String),
    /// A flag at the end with no value.
    MissingValue(String),
    /// A positional argument other than the mode, or a second one.
    UnexpectedArgument(String),
    /// A value that does not parse.
    BadValue {
        /// The flag, as `--name`.
        flag: String,
        /// The value as given.
        value: String,
        /// What the flag takes.
        expected: &'static str,
    },
    /// A combination that cannot run.
    Invalid(&'static str),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::UnknownFlag(flag) => write!(f, "unknown flag `{flag}`"),
            ArgsError::MissingValue(flag) => write!(f, "flag `{flag}` needs a value"),
            ArgsError::UnexpectedArgument(arg) => write!(
                f,
                "unexpected argument `{arg}` (the mode is echo, idle or broadcast)"
            ),
            ArgsError::BadValue {
                flag,
                value,
                expected,
            } => write!(f, "bad value `{value}` for {flag}: expected {expected}"),
            ArgsError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ArgsError {}

/// The text of `gmws load --help`.
pub fn usage() -> String {
    let d = LoadArgs::default();
    format!(
        "gmws load: a WebSocket load generator (our own client role, one mio event loop per thread)

Usage:
  gmws load [echo|idle|broadcast] [FLAGS]

Modes:
  echo       C connections, each with exactly one S-byte masked message in flight;
             every echo is checked byte for byte (the payload carries the
             connection id and sequence number); msgs/s, round trip p50/p99/max
  idle       open C connections and hold them; with --pid, the server's RSS
             growth per connection (VmRSS from /proc/PID/status)
  broadcast  C subscribers bind and join one group (the gateway's JSON protocol);
             one publisher sends to the group through POST /api/send_to_group or
             a socket's send_to_group; deliveries/s and delivery latency
             (publication time carried in the message)

Flags (SECONDS may have a fraction; BYTES may end in KiB, MiB, KB, MB):
  --target HOST:PORT     server to load; also ws://HOST:PORT/PATH (default {target})
  --path PATH            request path of the upgrade (default {path})
  --allow-remote         allow a target that is not a loopback address (default: refuse)
  -c, --connections N    connections / subscribers (default {conns})
  -s, --size BYTES       payload per message; broadcast: length of the published
                         message string (default {size}; broadcast {bsize})
  --text                 send text frames (default binary; broadcast is always text)
  -w, --warmup SECONDS   unmeasured run once all connections are up (default {warmup})
  -d, --duration SECONDS measured window (default {duration})
  --hold SECONDS         idle: how long to hold the connections (default {hold})
  --pid PID              server process: its CPU time over the measured window (per
                         message / delivery) and, in idle mode, its RSS (default none)
  --threads N            echo: event-loop threads sharing the connections (default {threads})
  --timeout SECONDS      connect + handshake limit, and the longest wait for one echo
                         or one publication's deliveries (default {timeout})
  --connect-window N     connections being set up at once (default {window})
  --group NAME           broadcast: the group (default {group})
  --publisher http|socket broadcast: publish via the HTTP API or a socket (default http)
  --publish-target HOST:PORT broadcast over http: post to this node instead of the
                         target (another node of a cluster; its 200 is taken whatever
                         its local `delivered` count says)
  --also-target HOST:PORT broadcast: every other subscriber connects here (a group
                         split over two nodes of a cluster)
  --rate N               broadcast: publications per second; 0 = the next one as soon
                         as every subscriber has the previous one (default 0)
  --api-key KEY          broadcast: bearer token for the HTTP API, the gateway's api_key
                         (default none: the gateway must run with api_trust_loopback)
  --auth-secret SECRET   broadcast: the gateway's auth_secret, to sign bind tokens
                         (default none: bind without a token)
  --tls                  connect over TLS (wss; rustls, TLS 1.2 and 1.3); also implied
                         by a wss:// target; needs --tls-ca or --tls-insecure
  --tls-ca FILE          PEM file of the CA or self-signed certificate to trust
  --tls-insecure         take any server certificate (loopback benchmarks only)
  --deflate              offer permessage-deflate (Chrome's offer) and require it:
                         every message sent is compressed, every compressed echo
                         inflated; a server that declines counts deflate_declined
  -h, --help             print this help

Every run is bounded in time: setup (each connection at most --timeout, all of them
at most 3 x --timeout), warm-up, the measured window (or the hold), at most 5 s for
echoes or deliveries still out, then a close of at most 2 s. The last line is machine-readable:
  RESULT mode=echo conns=100 size=1024 kind=binary msgs=... msgs_per_s=... p50_us=...
         p99_us=... max_us=... errors=0 server_cpu_us_per_msg=... server_switches_per_msg=...
         (na when not measured)
Exit status: 0 without errors, 1 when any error was counted, 2 for a bad command line
or a run that could not start.

The target must be a loopback address unless --allow-remote is given: a load test
is for your own servers. Each connection takes a file descriptor: raise the soft
limit (`ulimit -n`, up to the hard limit `ulimit -Hn`) before large runs; gmws load
warns when the limit is too low for the connections asked for.
",
        target = d.target,
        path = d.path,
        conns = d.connections,
        size = d.size,
        bsize = BROADCAST_SIZE,
        warmup = d.warmup.as_secs_f64(),
        duration = d.duration.as_secs_f64(),
        hold = d.hold.as_secs_f64(),
        threads = d.threads,
        timeout = d.timeout.as_secs_f64(),
        window = d.connect_window,
        group = d.group,
    )
}

/// Parse the arguments after `gmws load`.
pub fn parse(args: &[String]) -> Result<Parsed, ArgsError> {
    let mut out = LoadArgs::default();
    let mut mode_given = false;
    let mut size_given = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if !arg.starts_with('-') {
            match Mode::parse(arg) {
                Some(mode) if !mode_given => {
                    out.mode = mode;
                    mode_given = true;
                    continue;
                }
                _ => return Err(ArgsError::UnexpectedArgument(arg.to_owned())),
            }
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg, None),
        };
        let flag = match flag {
            "-c" => "--connections",
            "-s" => "--size",
            "-w" => "--warmup",
            "-d" => "--duration",
            "-h" => "--help",
            other => other,
        };
        // Flags without a value.
        match flag {
            "--help" => return Ok(Parsed::Help),
            "--text" | "--allow-remote" | "--tls" | "--tls-insecure" | "--deflate"
                if inline.is_none() =>
            {
                match flag {
                    "--text" => out.kind = PayloadKind::Text,
                    "--allow-remote" => out.allow_remote = true,
                    "--tls" => out.tls = true,
                    "--tls-insecure" => out.tls_insecure = true,
                    _ => out.deflate = true,
                }
                continue;
            }
            _ => {}
        }
        if !VALUE_FLAGS.contains(&flag) {
            return Err(ArgsError::UnknownFlag(flag.to_owned()));
        }
        let value = match inline {
            Some(value) => value,
            None => {
                let value = args
                    .get(i)
                    .ok_or_else(|| ArgsError::MissingValue(flag.to_owned()))?;
                i += 1;
                value.as_str()
            }
        };
        let bad = |expected: &'static str| ArgsError::BadValue {
            flag: flag.to_owned(),
            value: value.to_owned(),
            expected,
        };
        match flag {
            "--mode" => {
                out.mode = Mode::parse(value).ok_or_else(|| bad("echo, idle or broadcast"))?;
                mode_given = true;
            }
            "--target" => {
                let (target, path) = split_target(value).ok_or_else(|| bad("HOST:PORT"))?;
                out.tls |= value.starts_with("wss://");
                out.target = target;
                if let Some(path) = path {
                    out.path = valid_path(&path).ok_or_else(|| bad("HOST:PORT/PATH"))?;
                }
            }
            "--path" => {
                out.path = valid_path(value)
                    .ok_or_else(|| bad("a path starting with /, visible ASCII"))?;
            }
            "--connections" => out.connections = parse_count(value).ok_or_else(|| bad("N"))?,
            "--size" => {
                out.size = parse_size(value)
                    .filter(|&s| s <= MAX_SIZE)
                    .ok_or_else(|| bad("bytes, at most 16MiB"))?;
                size_given = true;
            }
            "--warmup" => out.warmup = parse_secs(value).ok_or_else(|| bad("seconds"))?,
            "--duration" => out.duration = parse_secs(value).ok_or_else(|| bad("seconds"))?,
            "--hold" => out.hold = parse_secs(value).ok_or_else(|| bad("seconds"))?,
            "--timeout" => out.timeout = parse_secs(value).ok_or_else(|| bad("seconds"))?,
            "--pid" => out.pid = Some(value.parse().map_err(|_| bad("a process id"))?),
            "--threads" => out.threads = parse_count(value).ok_or_else(|| bad("N"))?,
            "--connect-window" => {
                out.connect_window = parse_count(value).ok_or_else(|| bad("N"))?
            }
            "--group" if !value.is_empty() => out.group = value.to_owned(),
            "--group" => return Err(bad("a group name")),
            "--publisher" => {
                out.publisher = match value {
                    "http" => Publisher::Http,
                    "socket" => Publisher::Socket,
                    _ => return Err(bad("http or socket")),
                }
            }
            "--rate" => {
                out.rate = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r >= 0.0)
                    .ok_or_else(|| bad("publications per second, 0 or more"))?
            }
            "--api-key" => out.api_key = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "--auth-secret" => out.auth_secret = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "--tls-ca" if !value.is_empty() => out.tls_ca = Some(PathBuf::from(value)),
            "--tls-ca" => return Err(bad("a PEM file")),
            "--publish-target" if value.contains(':') => {
                out.publish_target = Some(value.to_owned())
            }
            "--publish-target" => return Err(bad("HOST:PORT")),
            "--also-target" if value.contains(':') => out.also_target = Some(value.to_owned()),
            "--also-target" => return Err(bad("HOST:PORT")),
            _ => return Err(ArgsError::UnknownFlag(flag.to_owned())),
        }
    }
    if out.mode == Mode::Broadcast && !size_given {
        out.size = BROADCAST_SIZE;
    }
    validate(&out)?;
    Ok(Parsed::Run(out))
}

/// Checks that do not depend on the network.
pub fn validate(args: &LoadArgs) -> Result<(), ArgsError> {
    if args.connections == 0 {
        return Err(ArgsError::Invalid("--connections must be at least 1"));
    }
    if args.threads == 0 || args.threads > 64 {
        return Err(ArgsError::Invalid("--threads must be 1 to 64"));
    }
    if args.connect_window == 0 {
        return Err(ArgsError::Invalid("--connect-window must be at least 1"));
    }
    if args.timeout.is_zero() {
        return Err(ArgsError::Invalid("--timeout must be more than 0"));
    }
    if args.mode != Mode::Idle && args.duration.is_zero() {
        return Err(ArgsError::Invalid("--duration must be more than 0"));
    }
    if args.connections > u32::MAX as usize {
        return Err(ArgsError::Invalid("--connections is too large"));
    }
    let other_targets = args.publish_target.is_some() || args.also_target.is_some();
    if other_targets && (args.mode != Mode::Broadcast || args.publisher != Publisher::Http) {
        return Err(ArgsError::Invalid(
            "--publish-target and --also-target go with broadcast and --publisher http",
        ));
    }
    validate_tls(args)
}

/// The TLS flags go together: `--tls` with exactly one way to trust.
fn validate_tls(args: &LoadArgs) -> Result<(), ArgsError> {
    match (args.tls, args.tls_ca.is_some(), args.tls_insecure) {
        (false, false, false) => Ok(()),
        (false, _, _) => Err(ArgsError::Invalid(
            "--tls-ca and --tls-insecure go with --tls",
        )),
        (true, false, false) => Err(ArgsError::Invalid(
            "--tls needs --tls-ca FILE or --tls-insecure (no system roots are loaded)",
        )),
        (true, true, true) => Err(ArgsError::Invalid(
            "give --tls-ca or --tls-insecure, not both",
        )),
        (true, _, _) if args.mode == Mode::Broadcast && args.publisher == Publisher::Http => {
            Err(ArgsError::Invalid(
                "--tls with broadcast needs --publisher socket (the HTTP publisher speaks plain HTTP)",
            ))
        }
        (true, _, _) => Ok(()),
    }
}

/// `path` if our client role can put it in a request line (it refuses
/// spaces, control characters and anything not starting with `/`).
fn valid_path(path: &str) -> Option<String> {
    crate::protocol::handshake::is_request_path(path).then(|| path.to_owned())
}

/// `HOST:PORT` or `ws[s]://HOST:PORT[/PATH]` into the target and the path.
fn split_target(value: &str) -> Option<(String, Option<String>)> {
    let rest = value
        .strip_prefix("ws://")
        .or_else(|| value.strip_prefix("wss://"))
        .unwrap_or(value);
    let (host_port, path) = match rest.find('/') {
        Some(at) => (&rest[..at], Some(rest[at..].to_owned())),
        None => (rest, None),
    };
    let (host, port) = host_port.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    Some((host_port.to_owned(), path))
}

fn parse_count(text: &str) -> Option<usize> {
    text.parse().ok()
}

/// Seconds, fractions allowed, finite, at most a day.
fn parse_secs(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// Bytes: an integer, optionally followed by KiB/MiB/GiB (x1024) or KB/MB/GB
/// (x1000), any case, optionally after a space.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let n: usize = digits.parse().ok()?;
    let unit: usize = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<LoadArgs, ArgsError> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        match parse(&args)? {
            Parsed::Run(a) => Ok(a),
            Parsed::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn defaults() {
        let a = run(&[]).expect("defaults");
        assert_eq!(a, LoadArgs::default());
        assert_eq!(a.mode, Mode::Echo);
        assert_eq!(a.target, "127.0.0.1:9001");
        assert_eq!(a.size, 1024);
        let b = run(&["broadcast"]).expect("broadcast");
        assert_eq!(b.size, BROADCAST_SIZE);
        let b = run(&["broadcast", "-s", "200"]).expect("broadcast");
        assert_eq!(b.size, 200);
    }

    #[test]
    fn cluster_targets_go_with_an_http_broadcast() {
        let a = run(&[
            "broadcast",
            "--target",
            "127.0.0.1:9002",
            "--publish-target",
            "127.0.0.1:9001",
            "--also-target=127.0.0.1:9003",
        ])
        .expect("cluster targets");
        assert_eq!(a.publish_target.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!(a.also_target.as_deref(), Some("127.0.0.1:9003"));
        assert!(run(&["echo", "--also-target", "127.0.0.1:1"]).is_err());
        assert!(run(&[
            "broadcast",
            "--publisher",
            "socket",
            "--publish-target",
            "127.0.0.1:1"
        ])
        .is_err());
        assert!(run(&["broadcast", "--publish-target", "nowhere"]).is_err());
    }

    #[test]
    fn every_flag() {
        let a = run(&[
            "idle",
            "--target",
            "ws://localhost:8080/ws",
            "--allow-remote",
            "-c",
            "10000",
            "--size=64KiB",
            "--text",
            "-w",
            "0.5",
            "-d",
            "3",
            "--hold",
            "20",
            "--pid",
            "4242",
            "--threads",
            "2",
            "--timeout",
            "5",
            "--connect-window",
            "64",
            "--group",
            "room",
            "--publisher",
            "socket",
            "--rate",
            "100",
            "--api-key",
            "k",
            "--auth-secret",
            "s",
            "--tls",
            "--tls-ca",
            "ca.pem",
            "--deflate",
        ])
        .expect("all flags");
        assert!(a.tls && a.deflate && !a.tls_insecure);
        assert_eq!(a.tls_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(a.mode, Mode::Idle);
        assert_eq!(a.target, "localhost:8080");
        assert_eq!(a.path, "/ws");
        assert!(a.allow_remote);
        assert_eq!(a.connections, 10_000);
        assert_eq!(a.size, 65536);
        assert_eq!(a.kind, PayloadKind::Text);
        assert_eq!(a.warmup, Duration::from_millis(500));
        assert_eq!(a.duration, Duration::from_secs(3));
        assert_eq!(a.hold, Duration::from_secs(20));
        assert_eq!(a.pid, Some(4242));
        assert_eq!(a.threads, 2);
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(a.connect_window, 64);
        assert_eq!(a.group, "room");
        assert_eq!(a.publisher, Publisher::Socket);
        assert_eq!(a.rate, 100.0);
        assert_eq!(a.api_key.as_deref(), Some("k"));
        assert_eq!(a.auth_secret.as_deref(), Some("s"));
        let a = run(&["--mode", "broadcast", "--target", "[::1]:9"]).expect("ipv6");
        assert_eq!(a.target, "[::1]:9");
        assert_eq!(a.mode, Mode::Broadcast);
    }

    #[test]
    fn help_anywhere() {
        for args in [&["--help"][..], &["-h"], &["echo", "-c", "3", "--help"]] {
            let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(parse(&args), Ok(Parsed::Help));
        }
        let text = usage();
        for flag in [
            "--target",
            "--path",
            "--allow-remote",
            "--connections",
            "--size",
            "--text",
            "--warmup",
            "--duration",
            "--hold",
            "--pid",
            "--threads",
            "--timeout",
            "--connect-window",
            "--group",
            "--publisher",
            "--rate",
            "--api-key",
            "--auth-secret",
            "--tls",
            "--tls-ca",
            "--tls-insecure",
            "--deflate",
            "--help",
        ] {
            assert!(text.contains(flag), "{flag} missing from usage");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            run(&["--bogus", "1"]),
            Err(ArgsError::UnknownFlag("--bogus".into()))
        );
        assert_eq!(
            run(&["--bogus"]),
            Err(ArgsError::UnknownFlag("--bogus".into()))
        );
        assert_eq!(
            run(&["-c"]),
            Err(ArgsError::MissingValue("--connections".into()))
        );
        assert!(matches!(
            run(&["-c", "many"]),
            Err(ArgsError::BadValue { expected: "N", .. })
        ));
        assert!(matches!(
            run(&["--size", "1.5MiB"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            run(&["--size", "17MiB"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            run(&["--target", "localhost"]),
            Err(ArgsError::BadValue { .. })
        ));
        for path in ["ws", "/a b", "/a\r\nX: 1"] {
            assert!(
                matches!(run(&["--path", path]), Err(ArgsError::BadValue { .. })),
                "{path:?}"
            );
        }
        assert!(matches!(
            run(&["--target", "ws://127.0.0.1:9/a\tb"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            run(&["--target", "h:99999"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            run(&["-d", "-1"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            run(&["-d", "NaN"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            run(&["--rate", "-3"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            run(&["--publisher", "ftp"]),
            Err(ArgsError::BadValue { .. })
        ));
        assert_eq!(
            run(&["echo", "idle"]),
            Err(ArgsError::UnexpectedArgument("idle".into()))
        );
        assert_eq!(
            run(&["ping"]),
            Err(ArgsError::UnexpectedArgument("ping".into()))
        );
        assert!(matches!(run(&["-c", "0"]), Err(ArgsError::Invalid(_))));
        assert!(matches!(
            run(&["--threads", "0"]),
            Err(ArgsError::Invalid(_))
        ));
        assert!(matches!(run(&["-d", "0"]), Err(ArgsError::Invalid(_))));
        assert!(run(&["idle", "-d", "0"]).is_ok());
        for bad_tls in [
            &["--tls"][..],
            &["--tls-insecure"],
            &["--tls-ca", "x.pem"],
            &["--tls", "--tls-insecure", "--tls-ca", "x.pem"],
            &["broadcast", "--tls", "--tls-insecure"],
            &["--target", "wss://127.0.0.1:9"],
        ] {
            assert!(
                matches!(run(bad_tls), Err(ArgsError::Invalid(_))),
                "{bad_tls:?}"
            );
        }
        let a = run(&["--target", "wss://127.0.0.1:9/x", "--tls-insecure"]).expect("wss");
        assert!(a.tls && a.tls_insecure);
        assert!(run(&[
            "broadcast",
            "--tls",
            "--tls-insecure",
            "--publisher",
            "socket"
        ])
        .is_ok());
        assert!(matches!(
            run(&["--text=yes"]),
            Err(ArgsError::UnknownFlag(_))
        ));
    }

    #[test]
    fn sizes_and_seconds() {
        assert_eq!(parse_size("16"), Some(16));
        assert_eq!(parse_size("1KiB"), Some(1024));
        assert_eq!(parse_size("64 kib"), Some(65536));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        assert_eq!(parse_size("16B"), Some(16));
        assert_eq!(parse_size("KiB"), None);
        assert_eq!(parse_size("1XB"), None);
        assert_eq!(parse_secs("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_secs("inf"), None);
        assert_eq!(parse_secs("1e9"), None);
    }
}
