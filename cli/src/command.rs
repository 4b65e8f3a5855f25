//! The command line: `gmws [serve] [FLAGS]`, `gmws load ARGS`, `gmws --help`,
//! and the configuration of `serve` from flags, environment and file.
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
//! The three sources feed **one TOML table**, flag over env over file, which
//! is deserialized into the `Config` once: flag and environment values go in
//! as strings, which every key also takes (the formats are the library's
//! `gmws::config` module docs and `gmws --help`). Before it goes into the
//! table, each entry is checked on its own (deserialized alone over the
//! defaults), so a bad value is reported with its key, the value and where
//! it came from, and an unknown key is an error, not a silent typo. An
//! unknown `GMWS_*` variable is only a warning (returned to the caller): the
//! environment is shared with other programs. The result is checked with
//! [`Config::validate`].
//!
//! Secrets ([`Config::SECRET_KEYS`]) are never printed: errors show them as
//! `(hidden)`, help and `Debug` as `(set)`/`(unset)`.

use std::fmt;
use std::path::{Path, PathBuf};

use gmws::scheduler::{JobSpec, JobSpecError};
use gmws::{Config, ConfigError};

use crate::help::{defaults, env_of, flag_of, usage, ENV_PREFIX};

/// Environment variable naming the TOML file (when `--config` is absent).
const CONFIG_ENV: &str = "GMWS_CONFIG";

/// What the binary was asked to do.
// Built once at start and matched at once: boxing the `Config` buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Command {
    /// Run the gateway with this configuration (already validated; its
    /// `Debug` hides the secrets) and the config file's `[[jobs]]` (each
    /// checked).
    Serve(Config, Vec<JobSpec>),
    /// Run the load generator: the raw arguments after `load`, parsed there.
    Load(Vec<String>),
    /// Print this text (the usage) and exit successfully.
    Help(String),
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
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
pub(crate) enum FileError {
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
pub(crate) enum CliError {
    /// The first argument is not `serve`, `load`, `help` or a flag.
    UnknownCommand(String),
    /// A flag that names no key (given as `--name`, without its value).
    UnknownFlag(String),
    /// A positional argument where only flags are taken.
    UnexpectedArgument(String),
    /// A flag at the end of the line with no value after it.
    MissingValue(String),
    /// A key in the file that is not a config key.
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was found.
        source: Source,
    },
    /// A value its key does not take.
    BadValue {
        /// The config key.
        key: String,
        /// The value as given (`(hidden)` for a secret; a TOML array or
        /// table by its type name).
        value: String,
        /// What is wrong: what the key expects.
        reason: String,
        /// Where the value came from.
        source: Source,
    },
    /// The configuration file could not be read or parsed.
    File {
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        error: FileError,
    },
    /// Every entry was read alone, but not the table as a whole (a bug:
    /// no key's reading depends on another's): the parser's message.
    Table(String),
    /// Every value read, but [`Config::validate`] refused the combination.
    Invalid(ConfigError),
    /// A `[[jobs]]` entry of the file is wrong: which job, which field, why.
    Job {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: JobSpecError,
    },
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
            CliError::UnknownKey { key, source } => {
                write!(f, "{source}: unknown key `{key}` (see gmws --help)")
            }
            CliError::BadValue {
                key,
                value,
                reason,
                source,
            } => write!(f, "{source}: bad value `{value}` for {key}: {reason}"),
            CliError::File { path, error } => {
                write!(f, "config file {}: {error}", path.display())
            }
            CliError::Table(message) => write!(f, "cannot read the configuration: {message}"),
            CliError::Invalid(error) => write!(f, "invalid configuration: {error}"),
            CliError::Job { path, error } => write!(f, "config file {}: {error}", path.display()),
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

/// The configuration table being built, and what every key is (from the
/// serialized defaults: the key set, and which keys are booleans).
struct Builder {
    defaults: toml::Table,
    table: toml::Table,
    /// The file's `[[jobs]]`.
    jobs: Vec<JobSpec>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            defaults: defaults(),
            table: toml::Table::new(),
            jobs: Vec::new(),
        }
    }

    fn is_key(&self, key: &str) -> bool {
        self.defaults.contains_key(key)
    }

    fn is_bool(&self, key: &str) -> bool {
        self.defaults.get(key).is_some_and(toml::Value::is_bool)
    }

    /// Check `key = value` on its own, then put it in the table (over what a
    /// weaker source put there).
    fn set(&mut self, key: &str, value: toml::Value, source: Source) -> Result<(), CliError> {
        let mut alone = toml::Table::new();
        alone.insert(key.to_owned(), value.clone());
        if let Err(error) = alone.try_into::<Config>() {
            let secret = Config::SECRET_KEYS.contains(&key);
            let shown = if secret {
                "(hidden)".to_owned()
            } else {
                value_text(&value)
            };
            let mut reason = error.message().trim_end().to_owned();
            if secret {
                // Never echo a secret, even inside the parser's message.
                reason = format!("expected a string, not a TOML {}", value.type_str());
            }
            return Err(CliError::BadValue {
                key: key.to_owned(),
                value: shown,
                reason,
                source,
            });
        }
        self.table.insert(key.to_owned(), value);
        Ok(())
    }

    /// Deserialize the table and validate the result.
    fn build(self) -> Result<(Config, Vec<JobSpec>), CliError> {
        let config: Config = self
            .table
            .try_into()
            .map_err(|error| CliError::Table(error.message().trim_end().to_owned()))?;
        config.validate().map_err(CliError::Invalid)?;
        Ok((config, self.jobs))
    }
}

/// A TOML value as the user wrote it, for error messages: strings unquoted,
/// scalars as written, arrays and tables by their type name.
fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.type_str().to_owned(),
    }
}

/// Put every top-level key of the TOML file at `path` into the table.
fn read_file(builder: &mut Builder, path: &Path) -> Result<(), CliError> {
    let file_error = |error| CliError::File {
        path: path.to_owned(),
        error,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(FileError::Read(e)))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_error(FileError::Parse(toml_message(&text, &e))))?;
    for (key, value) in table {
        let source = Source::File(path.to_owned());
        if key == "jobs" {
            builder.jobs = read_jobs(path, value)?;
            continue;
        }
        if !builder.is_key(&key) {
            return Err(CliError::UnknownKey { key, source });
        }
        builder.set(&key, value, source)?;
    }
    Ok(())
}

/// The `[[jobs]]` of the file at `path`, each checked (the first wrong one
/// is the error, naming the job and the field).
fn read_jobs(path: &Path, value: toml::Value) -> Result<Vec<JobSpec>, CliError> {
    let job_error = |error| CliError::Job {
        path: path.to_owned(),
        error,
    };
    let toml::Value::Array(entries) = value else {
        return Err(job_error(JobSpecError {
            job: "jobs".to_owned(),
            field: "jobs",
            reason: "must be an array of tables ([[jobs]])".to_owned(),
        }));
    };
    let mut specs: Vec<JobSpec> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let name = entry
            .get("name")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), |n| format!("{n:?}"));
        let spec: JobSpec = entry.try_into().map_err(|e: toml::de::Error| {
            job_error(JobSpecError {
                job: name.clone(),
                field: "jobs",
                reason: e.message().trim_end().to_owned(),
            })
        })?;
        spec.build(i).map_err(job_error)?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(job_error(JobSpecError {
                job: name,
                field: "name",
                reason: "another job has this name".to_owned(),
            }));
        }
        specs.push(spec);
    }
    Ok(specs)
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

/// Put every `GMWS_<KEY>` variable into the table; unknown `GMWS_*` ones
/// become warnings.
fn read_env(
    builder: &mut Builder,
    env: &[(String, String)],
    warnings: &mut Vec<String>,
) -> Result<(), CliError> {
    for (var, value) in env {
        if !var.starts_with(ENV_PREFIX) || var == CONFIG_ENV {
            continue;
        }
        let key = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        if builder.is_key(&key) && env_of(&key) == *var {
            let value = toml::Value::String(value.clone());
            builder.set(&key, value, Source::Env(var.clone()))?;
        } else {
            warnings.push(format!(
                "ignoring unknown environment variable {var} (see gmws --help)"
            ));
        }
    }
    Ok(())
}

/// The flags of `serve`, before they go into the table.
#[derive(Default)]
struct Flags {
    config: Option<PathBuf>,
    /// Key, value, and the flag as written (`--name`).
    values: Vec<(String, String, String)>,
}

/// Read the flags; `Ok(None)` when help was asked for.
fn parse_flags(args: &[String], builder: &Builder) -> Result<Option<Flags>, CliError> {
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
        // `--ping-interval` is the only spelling of `ping_interval`.
        let key = name.replace('-', "_");
        let key = (builder.is_key(&key) && flag_of(&key) == flag).then_some(key);
        if key.is_none() && name != "config" {
            return Err(CliError::UnknownFlag(flag));
        }
        let bare_bool = inline.is_none()
            && key.as_deref().is_some_and(|key| builder.is_bool(key))
            && args.peek().is_none_or(|next| next.starts_with('-'));
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

/// Build the configuration of `serve`: file, env, flags, one table,
/// deserialize, validate.
fn serve(args: &[String], env: &[(String, String)]) -> Result<(Command, Vec<String>), CliError> {
    let mut builder = Builder::new();
    let Some(flags) = parse_flags(args, &builder)? else {
        return Ok((Command::Help(usage()), Vec::new()));
    };
    let mut warnings = Vec::new();
    let path = flags.config.or_else(|| {
        env.iter()
            .rev()
            .find(|(var, value)| var == CONFIG_ENV && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    });
    if let Some(path) = path {
        read_file(&mut builder, &path)?;
    }
    read_env(&mut builder, env, &mut warnings)?;
    for (key, value, flag) in flags.values {
        if Config::SECRET_KEYS.contains(&key.as_str()) {
            warnings.push(format!(
                "{flag} on the command line is visible to other local users; prefer {} or the config file",
                env_of(&key)
            ));
        }
        builder.set(&key, toml::Value::String(value), Source::Flag(flag))?;
    }
    let (config, jobs) = builder.build()?;
    Ok((Command::Serve(config, jobs), warnings))
}

/// Decide what to run from the arguments (without `argv[0]`) and the process
/// environment (passed in so tests need not touch the real one).
///
/// The first argument may be `serve` (the default, also when it is absent or
/// starts with `-`), `load` (the rest is returned as is) or `help`. For
/// `serve`, the configuration is built with precedence flag > env > file >
/// default and validated. The second value holds warnings for the caller to
/// log (unknown `GMWS_*` variables, secrets given as flags).
pub(crate) fn parse_command(
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

#[cfg(test)]
mod tests;
