//! One job: its trigger, options and counters, and how its runs are found.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::MAX_MISSED_WALK;

/// When a job runs.
#[derive(Clone, Debug)]
pub enum Trigger {
    /// Once, at this wall-clock time.
    Date(DateTime<Utc>),
    /// Every so long (at least a millisecond), from the job's `start` or
    /// else one interval after it was added.
    Interval(Duration),
    /// A crontab expression (see the module docs), in the job's time zone.
    Cron(Box<CronTrigger>),
}

/// A parsed cron expression and its text.
#[derive(Clone, Debug)]
pub struct CronTrigger {
    expression: String,
    cron: croner::Cron,
}

impl Trigger {
    /// A cron trigger; an error says what is wrong with `expression` and
    /// where.
    pub fn cron(expression: &str) -> Result<Trigger, ScheduleError> {
        let cron = croner::Cron::from_str(expression).map_err(|e| ScheduleError::BadCron {
            expression: expression.to_owned(),
            reason: match faulty_field(expression) {
                Some(at) => format!("{at}: {e}"),
                None => e.to_string(),
            },
        })?;
        Ok(Trigger::Cron(Box::new(CronTrigger {
            expression: expression.to_owned(),
            cron,
        })))
    }

    /// An interval trigger; at least a millisecond.
    pub fn every(every: Duration) -> Result<Trigger, ScheduleError> {
        if every < Duration::from_millis(1) {
            return Err(ScheduleError::BadInterval);
        }
        Ok(Trigger::Interval(every))
    }

    /// A one-shot trigger at `at`.
    pub fn at(at: DateTime<Utc>) -> Trigger {
        Trigger::Date(at)
    }

    /// How `/api/jobs` shows it: `cron: */2 * * * * *`, `interval: 30s`,
    /// `date: 2027-01-01T00:00:00Z`.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Date(at) => format!("date: {}", at.to_rfc3339()),
            Trigger::Interval(d) => format!("interval: {}", humantime(*d)),
            Trigger::Cron(c) => format!("cron: {}", c.expression),
        }
    }
}

/// Which field of a cron expression is at fault, as "field 2 (hour) `25`":
/// each field is tried alone, the others replaced by `*`.
fn faulty_field(expression: &str) -> Option<String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    const NAMES: [&str; 7] = [
        "second",
        "minute",
        "hour",
        "day of month",
        "month",
        "day of week",
        "year",
    ];
    let names = match fields.len() {
        5 => &NAMES[1..6],
        6 => &NAMES[..6],
        7 => &NAMES[..],
        _ => return None,
    };
    (0..fields.len()).find_map(|i| {
        let alone: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { fields[i] } else { "*" })
            .collect();
        croner::Cron::from_str(&alone.join(" "))
            .is_err()
            .then(|| format!("field {} ({}) `{}`", i + 1, names[i], fields[i]))
    })
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// How a job runs.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// The zone its cron expression is read in (default UTC).
    pub timezone: Tz,
    /// Each run is delayed by a random time up to this (default none).
    pub jitter: Duration,
    /// A run found due later than this after its time is skipped and
    /// counted as a misfire (default 1 s).
    pub misfire_grace: Duration,
    /// Several missed runs become one (default true).
    pub coalesce: bool,
    /// No run before this.
    pub start: Option<DateTime<Utc>>,
    /// No run after this.
    pub end: Option<DateTime<Utc>>,
    /// Application data handed back with every run ([`Fire::data`]); the
    /// gateway's jobs keep their recipients and message here.
    pub data: serde_json::Value,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            timezone: Tz::UTC,
            jitter: Duration::ZERO,
            misfire_grace: Duration::from_secs(1),
            coalesce: true,
            start: None,
            end: None,
            data: serde_json::Value::Null,
        }
    }
}

/// Why a scheduler call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression does not parse: croner's reason.
    BadCron {
        /// The expression as given.
        expression: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// The time zone is not an IANA name this build knows.
    UnknownTimezone(String),
    /// An interval under a millisecond.
    BadInterval,
    /// A job needs a name.
    EmptyName,
    /// A job of that name exists.
    DuplicateName(String),
    /// No job of that name.
    NoSuchJob(String),
    /// `end` is before `start`.
    EndBeforeStart,
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleError::BadCron { expression, reason } => {
                write!(f, "bad cron expression {expression:?}: {reason}")
            }
            ScheduleError::UnknownTimezone(tz) => write!(f, "unknown time zone {tz:?}"),
            ScheduleError::BadInterval => f.write_str("an interval must be at least 1 ms"),
            ScheduleError::EmptyName => f.write_str("a job needs a name"),
            ScheduleError::DuplicateName(n) => write!(f, "a job named {n:?} exists"),
            ScheduleError::NoSuchJob(n) => write!(f, "no job named {n:?}"),
            ScheduleError::EndBeforeStart => f.write_str("end is before start"),
        }
    }
}

impl std::error::Error for ScheduleError {}

/// Parse an IANA time zone name (`Europe/Berlin`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::UnknownTimezone(name.to_owned()))
}

/// A run to make now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fire {
    /// The job's name.
    pub name: String,
    /// The occurrence it stands for (the time of a run made on request).
    pub scheduled: DateTime<Utc>,
    /// The job's [`JobOptions::data`].
    pub data: serde_json::Value,
}

/// A job's state, as `/api/jobs` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    /// Its name.
    pub name: String,
    /// Its trigger ([`Trigger::describe`]).
    pub trigger: String,
    /// Its time zone.
    pub timezone: String,
    /// Its next run (jitter included), if any, in UTC.
    pub next_run: Option<DateTime<Utc>>,
    /// The same in its time zone (RFC 3339 with offset).
    pub next_run_local: Option<String>,
    /// Its last run.
    pub last_run: Option<DateTime<Utc>>,
    /// Runs made.
    pub runs: u64,
    /// Runs skipped for being later than the grace time (in a cluster,
    /// also runs whose claim came back after the grace time).
    pub misfires: u64,
    /// In a cluster: occurrences another node claimed (and ran) first.
    pub claimed_elsewhere: u64,
    /// In a cluster: occurrences skipped because Redis could not be asked
    /// (unreachable, an error or no answer in time). They are not run late.
    pub skipped_unreachable: u64,
    /// Whether it is paused.
    pub paused: bool,
}

/// An occurrence that is due, handed out by
/// [`Scheduler::take_due`](super::Scheduler::take_due) before it runs (in a
/// cluster, before it is claimed). Its fate is reported back with
/// [`Scheduler::settle`](super::Scheduler::settle).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Occurrence {
    /// The run to make.
    pub fire: Fire,
    /// The latest wall-clock time it may still start: when it was due
    /// (jitter included) plus the misfire grace time.
    pub deadline: DateTime<Utc>,
    /// The time from this occurrence to the job's next one, if there is a
    /// next one.
    pub period: Option<Duration>,
    /// The job's misfire grace time.
    pub misfire_grace: Duration,
}

/// What became of an [`Occurrence`], for the job's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran (counted in `runs`, and `last_run` set).
    Ran,
    /// It was found late past its deadline (counted in `misfires`).
    Late,
    /// Another node claimed it (counted in `claimed_elsewhere`).
    ClaimedElsewhere,
    /// Redis could not be asked (counted in `skipped_unreachable`).
    Unreachable,
}

#[derive(Debug)]
pub(super) struct Job {
    pub name: String,
    trigger: Trigger,
    options: JobOptions,
    /// When it was added (the anchor of an interval without `start`).
    added: DateTime<Utc>,
    pub paused: bool,
    /// The next occurrence (without jitter).
    pub next: Option<DateTime<Utc>>,
    /// When it is due: `next` plus its jitter.
    pub fire_at: Option<DateTime<Utc>>,
    pub last_run: Option<DateTime<Utc>>,
    pub runs: u64,
    pub misfires: u64,
    pub claimed_elsewhere: u64,
    pub skipped_unreachable: u64,
}

impl Job {
    pub fn new(name: &str, trigger: Trigger, options: JobOptions, now: DateTime<Utc>) -> Job {
        Job {
            name: name.to_owned(),
            trigger,
            options,
            added: now,
            paused: false,
            next: None,
            fire_at: None,
            last_run: None,
            runs: 0,
            misfires: 0,
            claimed_elsewhere: 0,
            skipped_unreachable: 0,
        }
    }

    /// The first run: a date as given (if past, it is found late and
    /// misfires), an interval at its start or one interval from now, a cron
    /// expression at its first occurrence from now on.
    pub fn schedule_first(&mut self, now: DateTime<Utc>, random: f64) {
        let first = match &self.trigger {
            Trigger::Date(at) => Some(*at),
            _ => self.occurrence_from(now, true),
        };
        self.set_next(first.filter(|t| self.within_end(*t)), random);
    }

    /// The next run: the first occurrence strictly after `after`.
    pub fn schedule_after(&mut self, after: DateTime<Utc>, random: f64) {
        let next = self.occurrence_after(after);
        self.set_next(next, random);
    }

    fn set_next(&mut self, next: Option<DateTime<Utc>>, random: f64) {
        self.next = next;
        // Checked arithmetic throughout: a configured interval or jitter of
        // centuries must not panic the loop at the edge of chrono's range.
        self.fire_at = next.map(|t| {
            t.checked_add_signed(scale(self.options.jitter, random))
                .unwrap_or(t)
        });
    }

    /// The first occurrence strictly after `t`.
    pub fn occurrence_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.trigger {
            Trigger::Date(_) => None,
            _ => self
                .occurrence_from(t, false)
                .filter(|next| self.within_end(*next)),
        }
    }

    /// The first occurrence at or after `t` (`inclusive`) or after it, from
    /// `start` on.
    fn occurrence_from(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        let (t, inclusive) = match self.options.start {
            Some(start) if start > t => (start, true),
            _ => (t, inclusive),
        };
        let next = match &self.trigger {
            Trigger::Date(at) => (*at > t || (inclusive && *at == t)).then_some(*at),
            Trigger::Interval(every) => {
                let every = TimeDelta::from_std(*every).ok()?;
                let anchor = match self.options.start {
                    Some(start) => start,
                    None => self.added.checked_add_signed(every)?,
                };
                if t < anchor || (inclusive && t == anchor) {
                    Some(anchor)
                } else {
                    let step = every.num_milliseconds().max(1);
                    let passed = (t - anchor).num_milliseconds();
                    let mut k = passed / step;
                    if !(inclusive && passed % step == 0) {
                        k += 1;
                    }
                    anchor.checked_add_signed(TimeDelta::milliseconds(step.checked_mul(k)?))
                }
            }
            Trigger::Cron(c) => {
                // Cron occurrences fall on whole seconds (croner would keep
                // the fraction of `t`): from a time with a fraction, the
                // first candidate is the next whole second.
                let whole = t.with_nanosecond(0).unwrap_or(t);
                let inclusive = inclusive && whole == t;
                let local = whole.with_timezone(&self.options.timezone);
                c.cron
                    .find_next_occurrence(&local, inclusive)
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            }
        };
        next.filter(|n| self.within_end(*n))
    }

    fn within_end(&self, t: DateTime<Utc>) -> bool {
        self.options.end.is_none_or(|end| t <= end)
    }

    /// Handle this job's runs due at `now` (see the module docs): the
    /// occurrences to run go to `fires`, not yet counted as runs (see
    /// [`Job::settle`]); the late ones are counted as misfires here.
    pub fn take_due(&mut self, now: DateTime<Utc>, random: f64, fires: &mut Vec<Occurrence>) {
        let Some(first) = self.next else {
            return;
        };
        let grace = TimeDelta::from_std(self.options.misfire_grace).unwrap_or(TimeDelta::MAX);
        let jitter = self.fire_at.map_or(TimeDelta::zero(), |f| f - first);
        // The occurrences due by now, oldest first (bounded).
        let mut due = vec![first];
        let mut last = first;
        while due.len() < MAX_MISSED_WALK {
            match self.occurrence_after(last) {
                Some(t) if t <= now => {
                    due.push(t);
                    last = t;
                }
                _ => break,
            }
        }
        if due.len() == MAX_MISSED_WALK {
            // A long backlog: skip to the present in one step.
            if let Some(t) = self.occurrence_before_or_at(now) {
                last = t;
                if due.last() != Some(&t) {
                    due.push(t);
                }
            }
        }
        // The latest start of a run: when it was due plus the grace time.
        let deadline = |t: &DateTime<Utc>, jitter: TimeDelta| {
            let due = t.checked_add_signed(jitter).unwrap_or(*t);
            due.checked_add_signed(grace)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        if self.options.coalesce {
            let latest = due[due.len() - 1];
            let jitter = if due.len() == 1 {
                jitter
            } else {
                TimeDelta::zero()
            };
            let deadline = deadline(&latest, jitter);
            if now <= deadline {
                self.hand_out(latest, deadline, fires);
            } else {
                self.misfires += 1;
            }
        } else {
            for (i, t) in due.iter().enumerate() {
                let jitter = if i == 0 { jitter } else { TimeDelta::zero() };
                let deadline = deadline(t, jitter);
                if now <= deadline {
                    self.hand_out(*t, deadline, fires);
                } else {
                    self.misfires += 1;
                }
            }
        }
        self.schedule_after(last, random);
    }

    fn hand_out(
        &self,
        scheduled: DateTime<Utc>,
        deadline: DateTime<Utc>,
        fires: &mut Vec<Occurrence>,
    ) {
        let period = self
            .occurrence_after(scheduled)
            .and_then(|next| (next - scheduled).to_std().ok());
        fires.push(Occurrence {
            fire: Fire {
                name: self.name.clone(),
                scheduled,
                data: self.options.data.clone(),
            },
            deadline,
            period,
            misfire_grace: self.options.misfire_grace,
        });
    }

    /// Count what became of an occurrence handed out by [`Job::take_due`].
    pub fn settle(&mut self, outcome: Outcome, now: DateTime<Utc>) {
        match outcome {
            Outcome::Ran => {
                self.runs += 1;
                self.last_run = Some(now);
            }
            Outcome::Late => self.misfires += 1,
            Outcome::ClaimedElsewhere => self.claimed_elsewhere += 1,
            Outcome::Unreachable => self.skipped_unreachable += 1,
        }
    }

    /// The latest occurrence at or before `t` (for skipping a long backlog).
    fn occurrence_before_or_at(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.trigger {
            Trigger::Date(at) => (*at <= t).then_some(*at),
            Trigger::Interval(every) => {
                let every = TimeDelta::from_std(*every).ok()?;
                let anchor = match self.options.start {
                    Some(start) => start,
                    None => self.added.checked_add_signed(every)?,
                };
                if t < anchor {
                    return None;
                }
                let step = every.num_milliseconds().max(1);
                let k = (t - anchor).num_milliseconds() / step;
                anchor.checked_add_signed(TimeDelta::milliseconds(step.checked_mul(k)?))
            }
            Trigger::Cron(c) => c
                .cron
                .find_previous_occurrence(
                    &t.with_nanosecond(0)
                        .unwrap_or(t)
                        .with_timezone(&self.options.timezone),
                    true,
                )
                .ok()
                .map(|d| d.with_timezone(&Utc)),
        }
    }

    pub fn status(&self) -> JobStatus {
        JobStatus {
            name: self.name.clone(),
            trigger: self.trigger.describe(),
            timezone: self.options.timezone.name().to_owned(),
            next_run: if self.paused { None } else { self.fire_at },
            next_run_local: (!self.paused)
                .then_some(self.fire_at)
                .flatten()
                .map(|t| t.with_timezone(&self.options.timezone).to_rfc3339()),
            last_run: self.last_run,
            runs: self.runs,
            misfires: self.misfires,
            claimed_elsewhere: self.claimed_elsewhere,
            skipped_unreachable: self.skipped_unreachable,
            paused: self.paused,
        }
    }

    pub fn data(&self) -> &serde_json::Value {
        &self.options.data
    }
}

/// `d` times `random` (in [0, 1)) as a chrono delta.
fn scale(d: Duration, random: f64) -> TimeDelta {
    TimeDelta::from_std(d.mul_f64(random.clamp(0.0, 1.0))).unwrap_or(TimeDelta::zero())
}
