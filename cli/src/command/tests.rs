//! The command line's tests (beside `command.rs`, split out for length):
//! every source, every kind of value, every error naming its key, value and
//! source, secrets never shown.

use super::*;
use gmws::{BinaryMessages, LogLevel};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
        Ok((Command::Serve(config, _), _)) => config,
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

#[test]
fn no_arguments_serve_the_defaults() {
    let (command, warnings) = run(&[], &[]).expect("defaults");
    assert!(warnings.is_empty());
    let Command::Serve(config, _) = command else {
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
    assert_eq!(c.log_level, LogLevel::Debug); // file
    assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap()); // file
    assert_eq!(c.close_timeout, Config::default().close_timeout); // default

    // --config beats GMWS_CONFIG.
    let other = TempFile::new("log_level = \"warn\"\n");
    let c = loaded(&["serve", "--config", other.path()], &vars);
    assert_eq!(c.log_level, LogLevel::Warn);
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
    let c = loaded(&["--auth-leeway=.5", "--close-timeout", "2."], &[]);
    assert_eq!(c.auth_leeway, Duration::from_millis(500));
    assert_eq!(c.close_timeout, Duration::from_secs(2));
    // In the file, the flag's spelling is taken too.
    let file = TempFile::new("ping_interval = \"0.001\"\n");
    let c = loaded(&["--config", file.path()], &[]);
    assert_eq!(c.ping_interval, Duration::from_millis(1));
    let negative = TempFile::new("ping_interval = -1.5\n");
    let e = error(&["--config", negative.path()], &[]);
    assert!(
        matches!(&e, CliError::BadValue { key, value, source: Source::File(_), .. } if key == "ping_interval" && value == "-1.5"),
        "{e:?}"
    );
    for bad in ["-1", "1e3", "1s", "inf"] {
        let e = error(&["--ping-interval", bad], &[]);
        assert!(e.to_string().contains("expected seconds"), "{bad}: {e}");
    }
}

#[test]
fn sizes_take_suffixes() {
    let file = TempFile::new("max_session_size = \"2MiB\"\nmax_request_head = 4096\n");
    let c = loaded(
        &["--max-http-body", "64KiB", "--config", file.path()],
        &[
            ("GMWS_MAX_BUFFER_MEMORY", "1 gib"),
            ("GMWS_CLIENT_FANOUT_RATE", "1MB"),
        ],
    );
    assert_eq!(c.max_http_body, 64 * 1024);
    assert_eq!(c.max_buffer_memory, 1 << 30);
    assert_eq!(c.client_fanout_rate, 1_000_000);
    assert_eq!(c.max_session_size, 2 << 20);
    assert_eq!(c.max_request_head, 4096);
    for bad in ["MiB", "1.5MiB", "-1", "1XB", "99999999999GiB"] {
        let e = error(&["--max-http-body", bad], &[]);
        assert!(
            matches!(&e, CliError::BadValue { key, value, .. } if key == "max_http_body" && value == bad),
            "{bad}: {e:?}"
        );
        assert!(e.to_string().contains("expected bytes"), "{e}");
    }
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
    let e = error(&["--config", file.path()], &[]);
    assert!(
        matches!(&e, CliError::BadValue { key, value, source: Source::File(_), .. } if key == "protocols" && value == "array"),
        "{e:?}"
    );
    assert!(e.to_string().contains("expected a string"), "{e}");
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
    for args in [&["--demo-page", "maybe"][..], &["--demo-page=maybe"]] {
        let e = error(args, &[]);
        assert!(
            matches!(&e, CliError::BadValue { key, value, source: Source::Flag(flag), .. } if key == "demo_page" && value == "maybe" && flag == "--demo-page"),
            "{e:?}"
        );
    }
    // In the file, a number is not a boolean (only the flag spellings, as strings).
    let file = TempFile::new("allow_join = 1\n");
    let e = error(&["--config", file.path()], &[]);
    assert!(
        matches!(&e, CliError::BadValue { key, value, source: Source::File(_), .. } if key == "allow_join" && value == "1"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains(
            "bad value `1` for allow_join: invalid type: integer `1`, expected a boolean"
        ),
        "{text}"
    );
    let file = TempFile::new("allow_join = \"no\"\n");
    assert!(!loaded(&["--config", file.path()], &[]).allow_join);
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
    assert!(matches!(command, Command::Serve(..)));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("GMWS_PING_INTERVALL"));
}

#[test]
fn bad_values_name_key_value_and_source() {
    let e = error(&["--max-connections", "lots"], &[]);
    assert!(matches!(
        &e,
        CliError::BadValue { key, value, source: Source::Flag(flag), .. }
            if key == "max_connections" && value == "lots" && flag == "--max-connections"
    ));
    assert_eq!(
        e.to_string(),
        "flag --max-connections: bad value `lots` for max_connections: invalid value: string \"lots\", expected a non-negative integer in range"
    );
    let e = error(&[], &[("GMWS_PING_TIMEOUT_COUNT", "4294967296")]);
    assert!(matches!(
        &e,
        CliError::BadValue { key, source: Source::Env(var), .. }
            if key == "ping_timeout_count" && var == "GMWS_PING_TIMEOUT_COUNT"
    ));
    assert!(
        e.to_string()
            .starts_with("environment variable GMWS_PING_TIMEOUT_COUNT: bad value `4294967296`"),
        "{e}"
    );
    assert!(matches!(
        error(&["--listen", "localhost"], &[]),
        CliError::BadValue { key, .. } if key == "listen"
    ));
    let file = TempFile::new("ping_interval = \"fast\"\n");
    let e = error(&["--config", file.path()], &[]);
    assert!(matches!(
        &e,
        CliError::BadValue { key, value, source: Source::File(_), .. }
            if key == "ping_interval" && value == "fast"
    ));
    assert!(e.to_string().starts_with("config file "), "{e}");
    // Choices are named in the message.
    let e = error(&["--binary-messages", "drop"], &[]);
    assert!(
        e.to_string()
            .ends_with("expected one of error, close, ignore"),
        "{e}"
    );
    assert!(matches!(
        error(&[], &[("GMWS_LOG_LEVEL", "loud")]),
        CliError::BadValue { key, source: Source::Env(_), .. } if key == "log_level"
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
    assert_eq!(c.log_level, LogLevel::Warn);
    let file = TempFile::new("log_level = \"debug\"\n");
    let c = loaded(&[&format!("--config={}", file.path())], &[]);
    assert_eq!(c.log_level, LogLevel::Debug);
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
    let file =
        TempFile::new("auth_require_exp = false\nauth_leeway = 2.5\nauth_audience = \"gmws\"\n");
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
    let e = error(&["--max-backpressure", "10"], &[]);
    assert!(
        matches!(&e, CliError::Invalid(ConfigError::Several(errors)) if matches!(errors[0], ConfigError::OutOfRange("max_backpressure", _))),
        "{e:?}"
    );
    // Zero deadlines: every key named.
    let e = error(
        &["--handshake-timeout", "0"],
        &[("GMWS_CLOSE_TIMEOUT", "0")],
    );
    let text = e.to_string();
    assert!(
        text.starts_with("invalid configuration: handshake_timeout: must be above 0")
            && text.contains("; close_timeout: must be above 0"),
        "{text}"
    );
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
fn choices_are_enums() {
    let c = loaded(
        &["--binary-messages", "close"],
        &[("GMWS_LOG_LEVEL", "WARN")],
    );
    assert_eq!(c.binary_messages, BinaryMessages::Close);
    assert_eq!(c.log_level, LogLevel::Warn);
    let file = TempFile::new("binary_messages = \"ignore\"\nlog_level = \"off\"\n");
    let c = loaded(&["--config", file.path()], &[]);
    assert_eq!(c.binary_messages, BinaryMessages::Ignore);
    assert_eq!(c.log_level, LogLevel::Off);
    let c = loaded(&[], &[]);
    assert_eq!(c.binary_messages, BinaryMessages::Error);
    assert_eq!(c.log_level, LogLevel::Info);
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
    assert!(shown.contains("api_key: \"(set)\""), "{shown}");
    assert!(shown.contains("auth_secret: \"(set)\""), "{shown}");
    assert!(shown.contains("ping_interval: 15s"), "{shown}");
    assert!(warnings.iter().any(|w| w.contains("--api-key")));
    assert!(warnings.iter().all(|w| !w.contains("s3cret")));
    // A secret of the wrong type: named, its value hidden.
    let file = TempFile::new("api_key = 12345678\n");
    let e = error(&["--config", file.path()], &[]);
    let text = e.to_string();
    assert!(
        matches!(&e, CliError::BadValue { key, value, .. } if key == "api_key" && value == "(hidden)"),
        "{e:?}"
    );
    assert!(!text.contains("12345678"), "{text}");
}

#[test]
fn help_is_a_command() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["serve", "--listen", "1.2.3.4:5", "-h"],
    ] {
        let (command, _) = run(args, &[]).expect("help");
        assert!(matches!(command, Command::Help(_)), "{args:?}");
    }
    let (command, _) = run(&["help"], &[]).expect("help");
    assert!(matches!(command, Command::Help(text) if text == usage()));
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
