//! Scheduled jobs on a loop: the hub's side of [`crate::scheduler`].
//!
//! A job lives on the loop whose hub added it (the binary's `[[jobs]]` on
//! loop 0) and its [`Handler::on_job`](crate::Handler::on_job) runs there.
//! The hub keeps one wheel timer for the scheduler, armed for the next due
//! run but never more than [`CHECK_MS`] ahead, so that a jump of the system
//! clock is noticed within a second. After every change a loop publishes its
//! jobs' state on the bus, where `/api/jobs` on any loop reads it.
//!
//! **In a cluster** (`cluster_redis` set) a due occurrence is not run at
//! once: the loop claims it in Redis ([`crate::cluster::claims`]: `SET
//! {c}:job:{name}:{ms} {node} NX PX {expiry}`) through the non-blocking
//! client, and the answer is posted back to the loop ([`JobClaim`] on its
//! inbox). Only a claim won before the occurrence's misfire deadline runs
//! `on_job` (on this loop, as always); a claim lost is counted in
//! `claimed_elsewhere`, one that could not be made or got no answer in
//! `skipped_unreachable` (never run late when Redis returns), one won too
//! late in `misfires`. Interval jobs without `start` are anchored at the
//! Unix epoch so every node computes the same occurrences. A run asked for
//! through `/api/jobs/:name/run` ([`JobAction::Run`]) is not claimed: it
//! runs on the node that was asked, once.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Hub, TimerEvent};
use crate::cluster::claims::{claim_expiry, ClaimOutcome};
use crate::scheduler::{Fire, JobOptions, JobStatus, Occurrence, Outcome, ScheduleError, Trigger};

/// The longest the scheduler sleeps between looks at the wall clock (ms).
pub(crate) const CHECK_MS: u64 = 1000;

/// What `/api/jobs/:name/…` asks of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobAction {
    /// Stop running it until resumed.
    Pause,
    /// Run it again from its next occurrence.
    Resume,
    /// Run it now, once, outside its schedule. Local even in a cluster:
    /// it runs on the node (and loop) that was asked, without a claim.
    Run,
}

/// Redis's answer to the claim of a job occurrence, posted to the loop that
/// owns the job.
#[derive(Debug)]
pub(crate) struct JobClaim {
    occurrence: Occurrence,
    outcome: ClaimOutcome,
}

impl JobAction {
    /// The action of a path segment (`pause`, `resume`, `run`).
    pub fn parse(text: &str) -> Option<JobAction> {
        match text {
            "pause" => Some(JobAction::Pause),
            "resume" => Some(JobAction::Resume),
            "run" => Some(JobAction::Run),
            _ => None,
        }
    }
}

impl Hub {
    /// Schedule job `name` on this loop: [`Handler::on_job`](crate::Handler::on_job)
    /// runs here at each of its runs. Refused for an empty or taken name (on
    /// this loop) or contradictory options.
    pub fn add_job(
        &mut self,
        name: &str,
        trigger: Trigger,
        options: JobOptions,
    ) -> Result<(), ScheduleError> {
        if self
            .bus
            .jobs_lock()
            .get(name)
            .is_some_and(|(l, _)| *l != self.loop_index())
        {
            return Err(ScheduleError::DuplicateName(name.to_owned()));
        }
        self.scheduler.set_aligned(self.bus.cluster.is_some());
        self.scheduler.add(name, trigger, options, Utc::now())?;
        self.jobs_changed();
        Ok(())
    }

    /// Remove this loop's job `name`; false if there is none.
    pub fn remove_job(&mut self, name: &str) -> bool {
        let removed = self.scheduler.remove(name);
        if removed {
            self.bus.jobs_lock().remove(name);
            self.jobs_changed();
        }
        removed
    }

    /// Pause, resume or run (once, now) this loop's job `name`. A run's
    /// `on_job` comes at the loop's next look at its timers (this turn or
    /// the next), not inside this call.
    pub fn job_action(&mut self, name: &str, action: JobAction) -> Result<(), ScheduleError> {
        let now = Utc::now();
        match action {
            JobAction::Pause => self.scheduler.pause(name)?,
            JobAction::Resume => self.scheduler.resume(name, now)?,
            JobAction::Run => {
                let fire = self.scheduler.run_now(name, now)?;
                self.job_requests.push(fire);
            }
        }
        self.jobs_changed();
        Ok(())
    }

    /// Post `action` on job `name` to loop `owner`, which applies it on
    /// its next turn.
    pub(crate) fn post_job_action(
        &self,
        owner: usize,
        name: &str,
        action: JobAction,
    ) -> Result<(), crate::bus::PostError> {
        self.bus
            .post(owner, crate::bus::Command::Job(name.into(), action))
    }

    /// This loop's jobs.
    pub fn jobs(&self) -> Vec<JobStatus> {
        self.scheduler.status()
    }

    /// Every loop's jobs, with the loop each lives on, as last published
    /// (fresh as of each loop's last change or run).
    pub fn all_jobs(&self) -> Vec<(usize, JobStatus)> {
        self.bus.jobs_lock().values().cloned().collect()
    }

    /// The next `n` run times of this loop's job `name` (without jitter).
    pub fn job_next_run_times(
        &self,
        name: &str,
        n: usize,
    ) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        self.scheduler.next_run_times(name, n)
    }

    /// The runs due now (and those asked for), for the loop to hand to the
    /// handler; re-arms the scheduler's timer. In a cluster the due runs
    /// are claimed instead, and come back through [`Hub::job_claim_answered`].
    pub(crate) fn take_job_runs(&mut self) -> Vec<Fire> {
        self.scheduler_timer = None;
        let mut fires = std::mem::take(&mut self.job_requests);
        let now = Utc::now();
        match self.bus.cluster.clone() {
            None => fires.extend(self.scheduler.due(now)),
            Some(cluster) => {
                for occurrence in self.scheduler.take_due(now) {
                    self.claim(&cluster, occurrence);
                }
            }
        }
        self.jobs_changed();
        fires
    }

    /// Ask Redis for `occurrence`; the answer is posted to this loop. Not
    /// asked (Redis unreachable, the client's queue full): skipped and
    /// counted at once.
    fn claim(&mut self, cluster: &crate::cluster::Cluster, occurrence: Occurrence) {
        let name = occurrence.fire.name.clone();
        let scheduled = occurrence.fire.scheduled;
        let expiry = claim_expiry(occurrence.period, occurrence.misfire_grace);
        let bus = Arc::downgrade(&self.bus);
        let index = self.loop_index();
        let answered = cluster.claim_job(&name, scheduled, expiry, move |outcome| {
            let Some(bus) = bus.upgrade() else {
                return; // the server is gone
            };
            let claim = JobClaim {
                occurrence,
                outcome,
            };
            if let Err(e) = bus.post(index, crate::bus::Command::JobClaim(Box::new(claim))) {
                log::warn!("job claim answer not delivered to loop {index}: {e}");
            }
        });
        if let Err(e) = answered {
            log::debug!("job {name:?} at {scheduled}: skipped, not claimed: {e}");
            let _ = self
                .scheduler
                .settle(&name, Outcome::Unreachable, Utc::now());
        }
    }

    /// Redis answered a claim: the run to make, if it was won before the
    /// occurrence's deadline (and the job still exists); counted either way.
    pub(crate) fn job_claim_answered(&mut self, claim: JobClaim) -> Option<Fire> {
        let now = Utc::now();
        let JobClaim {
            occurrence,
            outcome,
        } = claim;
        let name = &occurrence.fire.name;
        let settled = match outcome {
            ClaimOutcome::Won if now <= occurrence.deadline => Outcome::Ran,
            ClaimOutcome::Won => {
                log::warn!(
                    "job {name:?} at {}: claimed after its misfire deadline; not run",
                    occurrence.fire.scheduled
                );
                Outcome::Late
            }
            ClaimOutcome::Lost => Outcome::ClaimedElsewhere,
            ClaimOutcome::Failed(e) => {
                log::warn!(
                    "job {name:?} at {}: skipped, the claim failed: {e}",
                    occurrence.fire.scheduled
                );
                Outcome::Unreachable
            }
        };
        let known = self.scheduler.settle(name, settled, now).is_ok();
        self.jobs_changed();
        (known && settled == Outcome::Ran).then_some(occurrence.fire)
    }

    /// Re-arm the scheduler's timer and publish this loop's jobs.
    fn jobs_changed(&mut self) {
        if let Some(t) = self.scheduler_timer.take() {
            self.timers.cancel(t);
        }
        let delay = if !self.job_requests.is_empty() {
            Some(0)
        } else {
            self.scheduler.next_due().map(|due| {
                let ms = (due - Utc::now()).num_milliseconds().max(0);
                (ms as u64).min(CHECK_MS)
            })
        };
        if let Some(delay) = delay {
            self.scheduler_timer =
                Some(self.timers.insert(self.now + delay, TimerEvent::Scheduler));
        }
        let index = self.loop_index();
        let mut published = self.bus.jobs_lock();
        published.retain(|_, (l, _)| *l != index);
        for status in self.scheduler.status() {
            published.insert(status.name.clone(), (index, status));
        }
    }
}
