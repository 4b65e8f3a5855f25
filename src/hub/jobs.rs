//! Scheduled jobs on a loop: the hub's side of [`crate::scheduler`].
//!
//! A job lives on the loop whose hub added it (the binary's `[[jobs]]` on
//! loop 0) and its [`Handler::on_job`](crate::Handler::on_job) runs there.
//! The hub keeps one wheel timer for the scheduler, armed for the next due
//! run but never more than [`CHECK_MS`] ahead, so that a jump of the system
//! clock is noticed within a second. After every change a loop publishes its
//! jobs' state on the bus, where `/api/jobs` on any loop reads it.

use chrono::{DateTime, Utc};

use super::{Hub, TimerEvent};
use crate::scheduler::{Fire, JobOptions, JobStatus, ScheduleError, Trigger};

/// The longest the scheduler sleeps between looks at the wall clock (ms).
pub(crate) const CHECK_MS: u64 = 1000;

/// What `/api/jobs/:name/…` asks of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobAction {
    /// Stop running it until resumed.
    Pause,
    /// Run it again from its next occurrence.
    Resume,
    /// Run it now, once, outside its schedule.
    Run,
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
    /// handler; re-arms the scheduler's timer.
    pub(crate) fn take_job_runs(&mut self) -> Vec<Fire> {
        self.scheduler_timer = None;
        let mut fires = std::mem::take(&mut self.job_requests);
        fires.extend(self.scheduler.due(Utc::now()));
        self.jobs_changed();
        fires
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
