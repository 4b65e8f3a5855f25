//! A job as a configuration file writes it (`[[jobs]]` in the binary's TOML):
//! read with serde, checked field by field, so a bad job is an error that
//! names the job and the field.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_timezone, JobOptions, Trigger};

/// One `[[jobs]]` entry: a trigger (exactly one of `cron`, `every`, `at`),
/// options, and what the gateway sends on each run (exactly one of
/// `send_to_group`, `send_to_client`, `send_to_all = true`, with `message`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The job's name (unique).
    pub name: String,
    /// A crontab expression (five fields, or six with seconds first).
    pub cron: Option<String>,
    /// An interval in seconds (fractions allowed, at least 0.001).
    pub every: Option<f64>,
    /// One run at this RFC 3339 time (`2027-01-01T00:00:00+01:00`).
    pub at: Option<String>,
    /// IANA time zone for `cron` (default UTC).
    pub timezone: Option<String>,
    /// Random delay of each run, up to this many seconds.
    pub jitter: Option<f64>,
    /// Seconds a run may be late before it is skipped (default 1).
    pub misfire_grace: Option<f64>,
    /// Whether missed runs become one (default true).
    pub coalesce: Option<bool>,
    /// No run before this RFC 3339 time.
    pub start: Option<String>,
    /// No run after this RFC 3339 time.
    pub end: Option<String>,
    /// Send to this group's members.
    pub send_to_group: Option<String>,
    /// Send to this client id's sockets.
    pub send_to_client: Option<String>,
    /// Send to every open socket.
    pub send_to_all: Option<bool>,
    /// The message (any JSON value; default `null`).
    pub message: Option<Value>,
}

/// What is wrong with a job of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpecError {
    /// The job's name (or its position, `#2`, if it has none).
    pub job: String,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for JobSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {}: {}: {}", self.job, self.field, self.reason)
    }
}

impl std::error::Error for JobSpecError {}

impl JobSpec {
    /// The trigger and options of this job (its recipients and message in
    /// the options' `data`), or what is wrong; `index` names a job without a
    /// name.
    pub fn build(&self, index: usize) -> Result<(Trigger, JobOptions), JobSpecError> {
        let job = if self.name.is_empty() {
            format!("#{}", index + 1)
        } else {
            format!("{:?}", self.name)
        };
        let err = |field: &'static str, reason: String| JobSpecError {
            job: job.clone(),
            field,
            reason,
        };
        if self.name.is_empty() {
            return Err(err("name", "a job needs a name".into()));
        }
        let trigger = match (&self.cron, self.every, &self.at) {
            (Some(cron), None, None) => {
                Trigger::cron(cron).map_err(|e| err("cron", e.to_string()))?
            }
            (None, Some(every), None) => {
                let d = seconds(every)
                    .ok_or_else(|| err("every", "must be 0.001 seconds to ten years".into()))?;
                Trigger::every(d).map_err(|e| err("every", e.to_string()))?
            }
            (None, None, Some(at)) => Trigger::at(time(at).map_err(|e| err("at", e))?),
            (None, None, None) => {
                return Err(err("cron", "one of cron, every or at is required".into()))
            }
            _ => return Err(err("cron", "give only one of cron, every and at".into())),
        };
        let mut options = JobOptions::default();
        if let Some(tz) = &self.timezone {
            options.timezone = parse_timezone(tz).map_err(|e| err("timezone", e.to_string()))?;
        }
        if let Some(j) = self.jitter {
            options.jitter = seconds_or_zero(j)
                .ok_or_else(|| err("jitter", "must be 0 seconds to ten years".into()))?;
        }
        if let Some(g) = self.misfire_grace {
            options.misfire_grace = seconds_or_zero(g)
                .ok_or_else(|| err("misfire_grace", "must be 0 seconds to ten years".into()))?;
        }
        if let Some(c) = self.coalesce {
            options.coalesce = c;
        }
        if let Some(start) = &self.start {
            options.start = Some(time(start).map_err(|e| err("start", e))?);
        }
        if let Some(end) = &self.end {
            options.end = Some(time(end).map_err(|e| err("end", e))?);
        }
        if let (Some(s), Some(e)) = (options.start, options.end) {
            if e < s {
                return Err(err("end", "is before start".into()));
            }
        }
        let to = match (&self.send_to_group, &self.send_to_client, self.send_to_all) {
            (Some(g), None, None | Some(false)) if !g.is_empty() => json!({ "group": g }),
            (None, Some(c), None | Some(false)) if !c.is_empty() => json!({ "client": c }),
            (None, None, Some(true)) => json!("all"),
            (None, None, None | Some(false)) => {
                return Err(err(
                    "send_to_group",
                    "one of send_to_group, send_to_client or send_to_all = true is required".into(),
                ))
            }
            _ => {
                return Err(err(
                    "send_to_group",
                    "give exactly one non-empty recipient: send_to_group, send_to_client or send_to_all = true".into(),
                ))
            }
        };
        let message = self.message.clone().unwrap_or(Value::Null);
        options.data = json!({ "to": to, "message": message });
        Ok((trigger, options))
    }
}

/// The longest interval, jitter or grace time a job may give: ten years.
const MAX_SECONDS: f64 = 10.0 * 365.25 * 86_400.0;

fn seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && (0.001..MAX_SECONDS).contains(&s)).then(|| Duration::from_secs_f64(s))
}

fn seconds_or_zero(s: f64) -> Option<Duration> {
    (s.is_finite() && (0.0..MAX_SECONDS).contains(&s)).then(|| Duration::from_secs_f64(s))
}

fn time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> JobSpec {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_good_job_builds_with_its_recipients_in_data() {
        let s = spec(
            r#"{"name":"tick","cron":"*/2 * * * * *","timezone":"Europe/Berlin",
                "send_to_group":"room","message":{"tick":true}}"#,
        );
        let (trigger, options) = s.build(0).unwrap();
        assert_eq!(trigger.describe(), "cron: */2 * * * * *");
        assert_eq!(options.timezone.name(), "Europe/Berlin");
        assert_eq!(
            options.data,
            json!({"to": {"group": "room"}, "message": {"tick": true}})
        );
        let every = spec(r#"{"name":"e","every":30,"send_to_all":true}"#);
        assert_eq!(every.build(0).unwrap().1.data["to"], json!("all"));
        let at = spec(r#"{"name":"a","at":"2027-01-01T00:00:00+01:00","send_to_client":"alice"}"#);
        assert_eq!(
            at.build(0).unwrap().0.describe(),
            "date: 2026-12-31T23:00:00+00:00"
        );
    }

    #[test]
    fn a_bad_job_names_the_job_and_the_field() {
        let cases = [
            (
                r#"{"name":"t","cron":"61 * * * *","send_to_all":true}"#,
                "cron",
            ),
            (
                r#"{"name":"t","cron":"* * * * *","timezone":"Mars/Base","send_to_all":true}"#,
                "timezone",
            ),
            (r#"{"name":"t","every":0,"send_to_all":true}"#, "every"),
            (r#"{"name":"t","at":"tomorrow","send_to_all":true}"#, "at"),
            (r#"{"name":"t","send_to_all":true}"#, "cron"),
            (
                r#"{"name":"t","cron":"* * * * *","every":5,"send_to_all":true}"#,
                "cron",
            ),
            (r#"{"name":"t","every":5}"#, "send_to_group"),
            (
                r#"{"name":"t","every":5,"send_to_all":true,"send_to_group":"g"}"#,
                "send_to_group",
            ),
            (
                r#"{"name":"t","every":5,"send_to_all":true,"jitter":-1}"#,
                "jitter",
            ),
            (
                r#"{"name":"t","every":5,"send_to_all":true,"start":"2027-02-01T00:00:00Z","end":"2027-01-01T00:00:00Z"}"#,
                "end",
            ),
        ];
        for (text, field) in cases {
            let e = spec(text).build(0).unwrap_err();
            assert_eq!((e.job.as_str(), e.field), ("\"t\"", field), "{text}: {e}");
        }
        let e = spec(r#"{"name":"","every":5,"send_to_all":true}"#)
            .build(2)
            .unwrap_err();
        assert_eq!(e.to_string(), "job #3: name: a job needs a name");
        let e = spec(r#"{"name":"tick","cron":"61 * * * *","send_to_all":true}"#)
            .build(0)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("job \"tick\": cron: bad cron expression"),
            "{e}"
        );
    }
}
