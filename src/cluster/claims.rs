//! Job claims: one node per occurrence of a scheduled job (issue 13).
//!
//! Every node of a cluster schedules the same jobs, and each computes the
//! same occurrences (cron and date triggers by their nature; intervals
//! because the hub anchors them at the Unix epoch in a cluster, see
//! [`crate::scheduler::Scheduler::set_aligned`]). When an occurrence is due,
//! a node does not run it at once: it asks Redis
//!
//! ```text
//! SET {cluster_name}:job:{name}:{scheduled_unix_ms} {node} NX PX {expiry}
//! ```
//!
//! and only the node that gets `OK` runs it. The key is never deleted: it
//! lapses after [`claim_expiry`] (at least a minute, twice the job's period,
//! and its misfire grace plus a minute), longer than a run plus any clock
//! skew between nodes, so a node that finds the occurrence due later (its
//! clock behind, its loop busy) still finds the key and does not run it
//! again. Its value names the node that ran it.
//!
//! At most once, said aloud:
//!
//! - Redis unreachable (or an error, or no answer within the client's
//!   `command_timeout`): the node skips the occurrence and counts it
//!   ([`ClaimOutcome::Failed`]). It is never run late when Redis returns,
//!   so an outage can lose occurrences but never double them;
//! - a node that dies between its claim and its run loses that
//!   occurrence: no other node takes it over;
//! - a claim won after the occurrence's misfire deadline is not run (the
//!   hub counts a misfire);
//! - Redis restarted empty (no persistence) forgets the claims it held: a
//!   node whose clock lags by more than the time since could claim a recent
//!   occurrence again.
//!
//! The answer comes on the Redis client's thread ([`Cluster::claim_job`]
//! takes a callback); the hub posts it to the loop that owns the job, which
//! runs the job there. No loop ever waits for Redis.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::keys::Keys;
use super::redis::{RedisError, Reply};
use super::Cluster;

/// The shortest life of a claim key.
pub const MIN_EXPIRY: Duration = Duration::from_secs(60);

/// The longest life of a claim key (a weekly or yearly job's key does not
/// need to outlive clock skew by years).
pub const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// What Redis said to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This node holds the occurrence: run it.
    Won,
    /// Another node claimed it first: do not run it.
    Lost,
    /// Redis could not be asked or did not answer: skip the occurrence.
    Failed(ClaimError),
}

/// Why a claim got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimError {
    /// The command failed: not connected, queue full, timeout, connection
    /// lost, an error reply.
    Redis(RedisError),
    /// Redis answered something that is neither `OK` nor nil.
    BadReply,
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::Redis(e) => write!(f, "{e}"),
            ClaimError::BadReply => f.write_str("Redis answered a claim with neither OK nor nil"),
        }
    }
}

impl std::error::Error for ClaimError {}

/// How long the claim key of an occurrence lives: the longest of
/// [`MIN_EXPIRY`], twice the job's `period` (the time to its next
/// occurrence) and its misfire `grace` plus [`MIN_EXPIRY`], at most
/// [`MAX_EXPIRY`]. Longer than a run plus the clock skew between nodes.
pub fn claim_expiry(period: Option<Duration>, grace: Duration) -> Duration {
    let twice = period.map_or(Duration::ZERO, |p| p.saturating_mul(2));
    MIN_EXPIRY
        .max(twice)
        .max(grace.saturating_add(MIN_EXPIRY))
        .min(MAX_EXPIRY)
}

/// The claim key of job `name`'s occurrence at `scheduled_ms` (Unix
/// milliseconds): `{c}:job:{name}:{ms}`.
pub(crate) fn claim_key(keys: &Keys, name: &str, scheduled_ms: i64) -> Vec<u8> {
    // `{c}:instance` is the one key without a name part: its prefix is the
    // cluster's.
    let mut key = keys.instance();
    key.truncate(key.len().saturating_sub(b"instance".len()));
    key.extend_from_slice(b"job:");
    key.extend_from_slice(name.as_bytes());
    key.push(b':');
    key.extend_from_slice(scheduled_ms.to_string().as_bytes());
    key
}

/// Read Redis's answer to a claim's `SET … NX`.
pub(crate) fn read_reply(reply: Result<Reply, RedisError>) -> ClaimOutcome {
    match reply {
        Ok(r) if r.is_ok() => ClaimOutcome::Won,
        Ok(Reply::Nil) => ClaimOutcome::Lost,
        Ok(_) => ClaimOutcome::Failed(ClaimError::BadReply),
        Err(e) => ClaimOutcome::Failed(ClaimError::Redis(e)),
    }
}

impl Cluster {
    /// Claim job `name`'s occurrence at `scheduled` for this node, the key
    /// living `expiry` (see the [module docs](self) and [`claim_expiry`]).
    /// Returns at once; `answer` is called once, on the Redis client's
    /// thread (it must not block: post to your loop), with
    /// [`ClaimOutcome::Failed`] when the client is not connected now or
    /// gets no answer within its `command_timeout`. On `Err` (the client's
    /// queue is full, or it is shut down) nothing was sent and `answer` is
    /// dropped uncalled: skip the occurrence.
    pub fn claim_job<F>(
        &self,
        name: &str,
        scheduled: DateTime<Utc>,
        expiry: Duration,
        answer: F,
    ) -> Result<(), ClaimError>
    where
        F: FnOnce(ClaimOutcome) + Send + 'static,
    {
        let key = claim_key(&self.keys, name, scheduled.timestamp_millis());
        let px = u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX).max(1);
        let args: [Vec<u8>; 6] = [
            b"SET".to_vec(),
            key,
            self.node().to_string().into_bytes(),
            b"NX".to_vec(),
            b"PX".to_vec(),
            px.to_string().into_bytes(),
        ];
        self.redis()
            .command(args, move |reply| answer(read_reply(reply)))
            .map_err(ClaimError::Redis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_cluster_job_and_time() {
        let keys = Keys::new("blue");
        assert_eq!(
            claim_key(&keys, "tick", 1_800_000_000_000),
            b"blue:job:tick:1800000000000"
        );
    }

    #[test]
    fn expiry_outlives_the_run_the_period_and_the_grace() {
        let s = Duration::from_secs;
        assert_eq!(claim_expiry(Some(s(1)), s(1)), s(61));
        assert_eq!(claim_expiry(None, Duration::ZERO), s(60));
        assert_eq!(claim_expiry(Some(s(3600)), s(1)), s(7200));
        assert_eq!(claim_expiry(Some(s(10)), s(300)), s(360));
        assert_eq!(claim_expiry(Some(s(365 * 86_400)), s(1)), MAX_EXPIRY);
        assert_eq!(claim_expiry(Some(Duration::MAX), Duration::MAX), MAX_EXPIRY);
    }

    #[test]
    fn replies_read_as_outcomes() {
        assert_eq!(
            read_reply(Ok(Reply::Status(b"OK".to_vec()))),
            ClaimOutcome::Won
        );
        assert_eq!(read_reply(Ok(Reply::Nil)), ClaimOutcome::Lost);
        assert_eq!(
            read_reply(Ok(Reply::Integer(1))),
            ClaimOutcome::Failed(ClaimError::BadReply)
        );
        assert_eq!(
            read_reply(Err(RedisError::Timeout)),
            ClaimOutcome::Failed(ClaimError::Redis(RedisError::Timeout))
        );
    }
}
