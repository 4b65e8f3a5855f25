//! The scheduler: jobs that fire on a trigger, in wall-clock time.
//!
//! A [`Scheduler`] holds named jobs, each with a [`Trigger`] (`date`: once at
//! a wall-clock time; `interval`: every so long; `cron`: a crontab
//! expression, parsed by the `croner` crate) and [`JobOptions`] (time zone,
//! jitter, misfire grace time, coalescing, start and end). It keeps no clock
//! of its own: every call that needs the time is given the wall clock
//! ("now", UTC), so it is tested with any time and any jump of the clock. The
//! hub asks it when the next job is due, sleeps on its timer wheel until then
//! (at most a second at a time, so a jump of the system clock is noticed
//! within a second), and asks it which jobs are [`Scheduler::due`].
//!
//! Rules (the ones APScheduler users ask about):
//!
//! - **An occurrence fires at most once.** The next run is always computed
//!   strictly after the last occurrence handled (run or missed), so a clock
//!   set back (NTP step, a VM restored) never fires an occurrence twice: the
//!   job waits until the wall clock reaches its next occurrence again.
//! - **Late runs.** A run found due later than `misfire_grace` after its time
//!   (the process was stopped, the clock jumped forward, the loop was busy)
//!   is skipped and counted as a misfire. With `coalesce` (the default),
//!   several missed occurrences become one: the latest, run if it is within
//!   the grace time; without it, each one within the grace time runs.
//! - **Cron semantics** are POSIX: five fields, or six with seconds first;
//!   0 and 7 are Sunday; when both day-of-month and day-of-week are
//!   restricted a day matching either runs; `L`, `W`, `#` and `@hourly`,
//!   `@daily`, `@weekly`, `@monthly`, `@yearly`.
//! - **Daylight-saving time** (cron jobs, in their time zone), as croner and
//!   Vixie cron do it: a fixed-time job (seconds, minutes and hours all
//!   fixed, e.g. 02:30 daily) whose time falls in a spring-forward gap runs
//!   once at the first valid time after the gap (03:00 in Europe/Berlin);
//!   in a fall-back overlap it runs once, at the first of the two 02:30s.
//!   Jobs with a wildcard or a step in those fields skip the gap and run in
//!   both halves of the overlap (they follow the wall clock).
//! - **Intervals** are exact durations from their start (`start`, or when
//!   the job was added plus one interval): a daylight-saving change does not
//!   move them. A scheduler [aligned](Scheduler::set_aligned) for a cluster
//!   anchors an interval without `start` at the Unix epoch instead (runs at
//!   the multiples of the interval), so that every node computes the same
//!   occurrences whenever it added the job.
//! - **Runs in two steps.** [`Scheduler::take_due`] hands out the due
//!   [`Occurrence`]s (the late ones already counted as misfires) and the
//!   caller reports each one's fate with [`Scheduler::settle`]: at once
//!   ([`Scheduler::due`] does both), or after a round trip, as the hub does
//!   in a cluster when it first claims the occurrence in Redis.

mod job;
mod spec;

pub use job::{
    parse_timezone, CronTrigger, Fire, JobOptions, JobStatus, Occurrence, Outcome, ScheduleError,
    Trigger,
};
pub use spec::{JobSpec, JobSpecError};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use job::Job;

/// Missed occurrences counted one by one at most; past this many a job's
/// backlog is skipped in one step (an interval of a second after a week of
/// suspend).
const MAX_MISSED_WALK: usize = 10_000;

/// Named jobs and their next runs. See the module docs.
#[derive(Debug)]
pub struct Scheduler {
    jobs: BTreeMap<String, Job>,
    /// Interval jobs without `start` are anchored at the Unix epoch.
    aligned: bool,
    /// xorshift state for jitter.
    rng: u64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl Scheduler {
    /// A scheduler without jobs.
    pub fn new() -> Scheduler {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        Scheduler {
            jobs: BTreeMap::new(),
            aligned: false,
            rng: seed | 1,
        }
    }

    /// Anchor interval jobs added from now on without a `start` at the Unix
    /// epoch (their runs fall on the multiples of the interval) rather than
    /// one interval after they were added: what the nodes of a cluster need
    /// to agree on each occurrence, and so on its claim key.
    pub fn set_aligned(&mut self, aligned: bool) {
        self.aligned = aligned;
    }

    /// Whether there are no jobs.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Add job `name`, its first run computed from `now`. Refused if the
    /// name is empty or taken, or the options contradict each other.
    pub fn add(
        &mut self,
        name: &str,
        trigger: Trigger,
        options: JobOptions,
        now: DateTime<Utc>,
    ) -> Result<(), ScheduleError> {
        if name.is_empty() {
            return Err(ScheduleError::EmptyName);
        }
        if self.jobs.contains_key(name) {
            return Err(ScheduleError::DuplicateName(name.to_owned()));
        }
        if let (Some(start), Some(end)) = (options.start, options.end) {
            if end < start {
                return Err(ScheduleError::EndBeforeStart);
            }
        }
        let mut options = options;
        if self.aligned && options.start.is_none() && matches!(trigger, Trigger::Interval(_)) {
            options.start = Some(DateTime::UNIX_EPOCH);
        }
        let mut job = Job::new(name, trigger, options, now);
        job.schedule_first(now, self.next_random());
        self.jobs.insert(name.to_owned(), job);
        Ok(())
    }

    /// Remove job `name`; false if there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        self.jobs.remove(name).is_some()
    }

    /// Pause job `name`: it does not run until resumed.
    pub fn pause(&mut self, name: &str) -> Result<(), ScheduleError> {
        let job = self.job_mut(name)?;
        job.paused = true;
        Ok(())
    }

    /// Resume job `name`: occurrences that passed while it was paused are
    /// not run; its next run is the first occurrence after `now`.
    pub fn resume(&mut self, name: &str, now: DateTime<Utc>) -> Result<(), ScheduleError> {
        let jitter = self.next_random();
        let job = self.job_mut(name)?;
        if job.paused {
            job.paused = false;
            job.schedule_after(now, jitter);
        }
        Ok(())
    }

    /// A run of job `name` now, outside its schedule (which is unchanged).
    pub fn run_now(&mut self, name: &str, now: DateTime<Utc>) -> Result<Fire, ScheduleError> {
        let job = self.job_mut(name)?;
        job.runs += 1;
        job.last_run = Some(now);
        Ok(Fire {
            name: job.name.clone(),
            scheduled: now,
            data: job.data().clone(),
        })
    }

    /// When the earliest job is due (jitter included), if any is scheduled.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.jobs
            .values()
            .filter(|j| !j.paused)
            .filter_map(|j| j.fire_at)
            .min()
    }

    /// The runs due at `now`, in order of their scheduled times, each
    /// counted as run; each job's next run is computed, late runs are
    /// skipped (counted as misfires) or coalesced. See the module docs.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Fire> {
        let due = self.take_due(now);
        let mut fires = Vec::with_capacity(due.len());
        for occurrence in due {
            if let Some(job) = self.jobs.get_mut(&occurrence.fire.name) {
                job.settle(Outcome::Ran, now);
            }
            fires.push(occurrence.fire);
        }
        fires
    }

    /// The occurrences due at `now`, in order of their scheduled times, not
    /// yet counted: report each one's fate with [`Scheduler::settle`]. As
    /// with [`Scheduler::due`], each job's next run is computed and late
    /// runs are skipped (counted as misfires) or coalesced.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Occurrence> {
        let mut fires = Vec::new();
        let names: Vec<String> = self
            .jobs
            .values()
            .filter(|j| !j.paused && j.fire_at.is_some_and(|t| t <= now))
            .map(|j| j.name.clone())
            .collect();
        for name in names {
            let jitter = self.next_random();
            if let Some(job) = self.jobs.get_mut(&name) {
                job.take_due(now, jitter, &mut fires);
            }
        }
        fires.sort_by_key(|o| o.fire.scheduled);
        fires
    }

    /// Count what became of an occurrence of job `name` handed out by
    /// [`Scheduler::take_due`] (`now`: when, for `last_run`). An error if
    /// the job was removed since.
    pub fn settle(
        &mut self,
        name: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), ScheduleError> {
        self.job_mut(name)?.settle(outcome, now);
        Ok(())
    }

    /// The next `n` run times of job `name` (without jitter), from its next
    /// run on.
    pub fn next_run_times(
        &self,
        name: &str,
        n: usize,
    ) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        let job = self
            .jobs
            .get(name)
            .ok_or_else(|| ScheduleError::NoSuchJob(name.to_owned()))?;
        let mut out = Vec::with_capacity(n.min(1024));
        let mut next = job.next;
        while let Some(t) = next {
            if out.len() >= n {
                break;
            }
            out.push(t);
            next = job.occurrence_after(t);
        }
        Ok(out)
    }

    /// Every job's state, by name.
    pub fn status(&self) -> Vec<JobStatus> {
        self.jobs.values().map(Job::status).collect()
    }

    /// Job `name`'s state.
    pub fn job_status(&self, name: &str) -> Option<JobStatus> {
        self.jobs.get(name).map(Job::status)
    }

    fn job_mut(&mut self, name: &str) -> Result<&mut Job, ScheduleError> {
        self.jobs
            .get_mut(name)
            .ok_or_else(|| ScheduleError::NoSuchJob(name.to_owned()))
    }

    /// A random number in [0, 1) for jitter (xorshift64*).
    fn next_random(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
