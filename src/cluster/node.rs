//! [`Cluster`]: this node's membership of a cluster, shared by its loops,
//! its [`crate::Remote`]s and the cluster thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use mio::{Poll, Token, Waker};
use serde::{Deserialize, Serialize};

use super::error::{ClusterError, ClusterStartError};
use super::interest::Interest;
use super::keys::Keys;
use super::metrics::ClusterMetrics;
use super::redis::{Link, RedisClient, RedisError, RedisEvents, RedisHandle, RedisOptions, Reply};
use super::wire::{self, WireTarget};
use crate::config::Config;

/// The cluster thread's waker token.
pub(crate) const WAKER: Token = Token(0);

/// Channels whose sequence numbers a node keeps at most before it starts
/// them again (receivers take a lower number as a new start, not a gap).
const MAX_SEQ_CHANNELS: usize = 65_536;

/// One live node as its lease describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Its instance number (the node part of its socket ids).
    pub node: u16,
    /// The address it listens on.
    pub addr: String,
    /// Its open WebSockets.
    pub online_sockets: u64,
    /// Client ids bound on it.
    pub online_clients: u64,
    /// Groups with members on it.
    pub groups: u64,
}

/// The live nodes as the cluster thread last read them.
#[derive(Debug, Default)]
pub(crate) struct NodesView {
    pub nodes: Vec<NodeInfo>,
    /// Distinct client ids bound on the live nodes.
    pub online_clients: u64,
    pub at: Option<Instant>,
}

/// The cluster's totals, as the cluster thread last read them from Redis
/// ([`Cluster::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterTotals {
    /// Live nodes.
    pub nodes: u64,
    /// Open WebSockets on the live nodes (each node's own count, summed:
    /// a socket lives on one node).
    pub online_sockets: u64,
    /// Distinct client ids bound on the live nodes: a client with sockets
    /// on two nodes counts once.
    pub online_clients: u64,
    /// How long ago they were read (`None` before the first reading).
    pub age: Option<Duration>,
}

/// A reply held until a group's channel is subscribed
/// ([`Cluster::when_group_ready`]).
struct Waiter {
    deadline: Instant,
    run: Box<dyn FnOnce(bool) + Send>,
}

/// Which channels Redis has confirmed subscribed, and what waits for others.
#[derive(Default)]
pub(crate) struct Readiness {
    live: std::collections::HashSet<Vec<u8>>,
    waiting: HashMap<Vec<u8>, Vec<Waiter>>,
}

/// What the cluster thread is started with.
pub(crate) struct Seed {
    pub poll: Poll,
    pub events: RedisEvents,
}

/// This node's place in the cluster. Every method returns at once; answers
/// that need Redis come through a callback (run on the Redis client's
/// thread: post the result to your loop with a [`crate::Remote`]).
pub struct Cluster {
    node: u16,
    pub(crate) keys: Keys,
    pub(crate) lease: Duration,
    url: String,
    pub(crate) options: RedisOptions,
    redis: RwLock<RedisHandle>,
    /// The counters of Redis clients replaced by [`Cluster::restart_client`].
    retired: Mutex<super::redis::RedisMetricsSnapshot>,
    /// Bit 0: the commands link is up; bit 1: the pub/sub link is up.
    pub(crate) links: AtomicU8,
    /// The last liveness probe came back (or none has failed yet).
    pub(crate) probe_ok: AtomicBool,
    pub(crate) metrics: ClusterMetrics,
    seqs: Mutex<HashMap<Vec<u8>, u64>>,
    interest: Mutex<Interest>,
    pub(crate) waker: Arc<Waker>,
    wake_pending: AtomicBool,
    pub(crate) view: RwLock<NodesView>,
    ready: Mutex<Readiness>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("reachable", &self.is_reachable())
            .finish()
    }
}

/// The instance number of INCR's `n`th answer: 1..=65535, never 0 (the
/// single node's).
fn instance(n: i64) -> u16 {
    ((n.max(1) - 1) % i64::from(u16::MAX) + 1) as u16
}

impl Cluster {
    /// Join the cluster of `config` (`cluster_redis` set): start the Redis
    /// client and take an instance number (waits for Redis up to its
    /// `connect_timeout` plus `command_timeout`: this runs at bind, before
    /// any loop).
    pub(crate) fn start(
        config: &Config,
        url: &str,
    ) -> Result<(Arc<Cluster>, Seed), ClusterStartError> {
        let poll = Poll::new().map_err(ClusterStartError::Poll)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ClusterStartError::Poll)?);
        let options = RedisOptions {
            events_waker: Some(Arc::clone(&waker)),
            command_timeout: Duration::from_secs(2).min(config.node_lease / 2),
            connect_timeout: Duration::from_secs(2),
            backoff_max: Duration::from_secs(2),
            pubsub_ping_interval: Duration::from_secs(1).min(config.node_lease / 4),
            ..RedisOptions::default()
        };
        let keys = Keys::new(&config.cluster_name);
        let (redis, events) =
            RedisClient::start(url, options.clone()).map_err(ClusterStartError::Client)?;
        let deadline = options.connect_timeout + options.command_timeout;
        let started = Instant::now();
        let node = loop {
            let (tx, rx) = sync_channel(1);
            redis
                .command([b"INCR".to_vec(), keys.instance()], move |reply| {
                    let _ = tx.try_send(reply);
                })
                .map_err(|e| ClusterStartError::Instance(ClusterError::Redis(e)))?;
            match rx.recv_timeout(deadline) {
                Ok(Ok(Reply::Integer(n))) => break instance(n),
                Ok(Ok(_)) => return Err(ClusterStartError::Instance(ClusterError::BadReply)),
                // Not connected yet: try again until the deadline.
                Ok(Err(RedisError::NotConnected)) if started.elapsed() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(Err(e)) => return Err(ClusterStartError::Instance(ClusterError::Redis(e))),
                Err(_) => return Err(ClusterStartError::Instance(ClusterError::Unreachable)),
            }
        };
        let _ = redis.subscribe([keys.node_channel(node), keys.all_channel()]);
        let cluster = Cluster {
            node,
            lease: config.node_lease,
            url: url.to_owned(),
            options,
            redis: RwLock::new(redis),
            retired: Mutex::new(Default::default()),
            links: AtomicU8::new(0),
            probe_ok: AtomicBool::new(true),
            metrics: ClusterMetrics::default(),
            seqs: Mutex::new(HashMap::new()),
            interest: Mutex::new(Interest::default()),
            waker,
            wake_pending: AtomicBool::new(false),
            view: RwLock::new(NodesView::default()),
            ready: Mutex::new(Readiness::default()),
            keys,
        };
        Ok((Arc::new(cluster), Seed { poll, events }))
    }

    /// This node's instance number (the node part of its socket ids).
    pub fn node(&self) -> u16 {
        self.node
    }

    /// How long a node's entries are trusted without a refresh (`node_lease`).
    pub fn node_lease(&self) -> Duration {
        self.lease
    }

    /// Whether Redis is reachable now: both links up and the last liveness
    /// probe answered. While it is not, sends reach this node's sockets only
    /// and `/healthz` answers 503.
    pub fn is_reachable(&self) -> bool {
        self.links.load(Ordering::Acquire) == 0b11 && self.probe_ok.load(Ordering::Acquire)
    }

    /// The counters.
    pub fn metrics(&self) -> super::ClusterMetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The Redis client's counters (reconnects, command latency, ...),
    /// including those of the clients it replaced (they only grow).
    pub fn redis_metrics(&self) -> super::redis::RedisMetricsSnapshot {
        let retired = *self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.plus(&self.redis().metrics())
    }

    /// The live nodes, as the cluster thread last read them from Redis
    /// (every quarter of `node_lease`), with how long ago that was; `None`
    /// before the first read.
    pub fn nodes(&self) -> (Vec<NodeInfo>, Option<Duration>) {
        let view = self.view.read().unwrap_or_else(|p| p.into_inner());
        (view.nodes.clone(), view.at.map(|at| at.elapsed()))
    }

    /// The cluster's totals: live nodes, their sockets and their distinct
    /// client ids, from the same reading as [`Cluster::nodes`] (one Redis
    /// command every quarter of `node_lease`, never a question to every
    /// node).
    pub fn totals(&self) -> ClusterTotals {
        let view = self.view.read().unwrap_or_else(|p| p.into_inner());
        ClusterTotals {
            nodes: view.nodes.len() as u64,
            online_sockets: view.nodes.iter().map(|n| n.online_sockets).sum(),
            online_clients: view.online_clients,
            age: view.at.map(|at| at.elapsed()),
        }
    }

    pub(crate) fn redis(&self) -> RedisHandle {
        self.redis.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Start a new Redis client in place of the current one (a liveness
    /// probe failed: the subscription may be dead without the socket
    /// knowing). Returns the new events receiver.
    pub(crate) fn restart_client(&self) -> Option<RedisEvents> {
        match RedisClient::start(&self.url, self.options.clone()) {
            Ok((redis, events)) => {
                // Held across the swap: a reader sees the old client's
                // counts either in `retired` or in the client, never neither.
                let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
                let old = std::mem::replace(
                    &mut *self.redis.write().unwrap_or_else(|p| p.into_inner()),
                    redis,
                );
                *retired = retired.plus(&old.metrics());
                drop(retired);
                old.shutdown();
                self.links.store(0, Ordering::Release);
                Some(events)
            }
            Err(e) => {
                log::error!("cluster: cannot restart the Redis client: {e}");
                None
            }
        }
    }

    /// A link went up or down.
    pub(crate) fn link(&self, link: Link, up: bool) {
        let bit = match link {
            Link::Commands => 0b01,
            Link::PubSub => 0b10,
        };
        if up {
            self.links.fetch_or(bit, Ordering::AcqRel);
        } else {
            self.links.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Publish a send to the other nodes: one PUBLISH on the target's
    /// channel, the payload carried once. At most once: Redis unreachable is
    /// an error at once (counted in `undeliverable`), a failure after
    /// queueing is counted by the Redis client.
    pub(crate) fn publish(
        &self,
        target: &WireTarget,
        binary: bool,
        payload: &[u8],
    ) -> Result<(), ClusterError> {
        if !self.is_reachable() {
            self.metrics.undeliverable();
            return Err(ClusterError::Unreachable);
        }
        let channel = match target {
            WireTarget::Socket(id) | WireTarget::Op(id, _) => self.keys.node_channel(id.node()),
            WireTarget::Client(c) => self.keys.client_channel(c),
            WireTarget::Group(g, _) => self.keys.group_channel(g),
            WireTarget::All | WireTarget::AllClients => self.keys.all_channel(),
            WireTarget::Probe => self.keys.node_channel(self.node),
        };
        let redis = self.redis();
        // The number and the PUBLISH are taken together, so they reach Redis
        // in the same order.
        let mut seqs = self.seqs.lock().unwrap_or_else(|p| p.into_inner());
        if seqs.len() >= MAX_SEQ_CHANNELS && !seqs.contains_key(&channel) {
            seqs.clear();
        }
        let seq = seqs.entry(channel.clone()).or_insert(0);
        *seq += 1;
        let bytes = wire::encode(self.node, *seq, target, binary, payload);
        match redis.publish(&channel, &bytes) {
            Ok(()) => {
                self.metrics.published();
                Ok(())
            }
            Err(RedisError::QueueFull) => {
                self.metrics.undeliverable();
                Err(ClusterError::QueueFull)
            }
            Err(_) => {
                self.metrics.undeliverable();
                Err(ClusterError::Unreachable)
            }
        }
    }

    /// Whether `socket` lives on another node of the cluster.
    pub fn is_other_node(&self, socket: crate::SocketId) -> bool {
        socket.node() != self.node
    }

    /// Ask the node of `socket` to apply `op` to it (one PUBLISH on that
    /// node's channel; applied there by the socket's loop, checked as if
    /// asked there). At most once: `Ok` says it was published, not that it
    /// was applied (a stale id, a full group or a bad close code is refused
    /// and logged there).
    pub(crate) fn socket_op(
        &self,
        socket: crate::SocketId,
        op: wire::SocketOp,
    ) -> Result<(), ClusterError> {
        self.publish(&WireTarget::Op(socket, op), false, &[])
    }

    /// Run `f` once this node's subscription to `group`'s channel is
    /// confirmed by Redis, so that from then on every message another node
    /// publishes to the group reaches this node. Returns `Some(f)`, not
    /// run, when there is nothing to wait for (the channel is confirmed
    /// already, or Redis is unreachable: at most once); the caller runs it
    /// then. Otherwise `f(true)` runs on the cluster thread when Redis
    /// confirms, or `f(false)` after the Redis command timeout.
    ///
    /// The gateway holds its `join` reply with this. Call it after the
    /// join that makes the group's first member on this node: a join
    /// never confirmed (the group lost its members meanwhile) waits for
    /// the timeout.
    pub fn when_group_ready<F>(&self, group: &str, f: F) -> Option<F>
    where
        F: FnOnce(bool) + Send + 'static,
    {
        if !self.is_reachable() {
            return Some(f);
        }
        let channel = self.keys.group_channel(group);
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if ready.live.contains(&channel) {
            return Some(f);
        }
        ready.waiting.entry(channel).or_default().push(Waiter {
            deadline: Instant::now() + self.options.command_timeout,
            run: Box::new(f),
        });
        None
    }

    /// Whether there is nothing to wait for before `group`'s messages from
    /// other nodes reach this node (as [`Cluster::when_group_ready`] would
    /// answer now: confirmed, or Redis unreachable).
    pub fn is_group_ready(&self, group: &str) -> bool {
        !self.is_reachable()
            || self
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .live
                .contains(&self.keys.group_channel(group))
    }

    /// Redis confirmed `channels` subscribed: release what waits for them.
    pub(crate) fn confirmed(&self, channels: impl IntoIterator<Item = Vec<u8>>) {
        let mut run = Vec::new();
        {
            let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            for channel in channels {
                if let Some(waiters) = ready.waiting.remove(&channel) {
                    run.extend(waiters);
                }
                ready.live.insert(channel);
            }
        }
        for waiter in run {
            (waiter.run)(true);
        }
    }

    /// `channel` is being unsubscribed: no longer confirmed.
    pub(crate) fn unconfirmed(&self, channel: &[u8]) {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        ready.live.remove(channel);
    }

    /// The pub/sub link was lost (or the client restarted): nothing is
    /// confirmed until it is back.
    pub(crate) fn unconfirm_all(&self) {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        ready.live.clear();
    }

    /// Release the waiters whose timeout passed (with `false`).
    pub(crate) fn expire_waiters(&self, now: Instant) {
        let mut run = Vec::new();
        {
            let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            if ready.waiting.is_empty() {
                return;
            }
            ready.waiting.retain(|_, waiters| {
                let (due, keep): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(waiters)
                    .into_iter()
                    .partition(|w| w.deadline <= now);
                run.extend(due);
                *waiters = keep;
                !waiters.is_empty()
            });
        }
        for waiter in run {
            (waiter.run)(false);
        }
    }

    /// The node's interest, to change it; the cluster thread is woken to
    /// act on the change.
    pub(crate) fn interest(&self) -> InterestGuard<'_> {
        InterestGuard {
            guard: self.interest.lock().unwrap_or_else(|p| p.into_inner()),
            cluster: self,
        }
    }

    /// The node's interest for the cluster thread itself (no wake).
    pub(crate) fn interest_quiet(&self) -> MutexGuard<'_, Interest> {
        self.interest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wake the cluster thread (once per burst).
    pub(crate) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }

    /// The cluster thread is about to look at everything.
    pub(crate) fn woken(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }
}

/// [`Cluster::interest`]: wakes the cluster thread when dropped.
pub(crate) struct InterestGuard<'a> {
    guard: MutexGuard<'a, Interest>,
    cluster: &'a Cluster,
}

impl std::ops::Deref for InterestGuard<'_> {
    type Target = Interest;
    fn deref(&self) -> &Interest {
        &self.guard
    }
}

impl std::ops::DerefMut for InterestGuard<'_> {
    fn deref_mut(&mut self) -> &mut Interest {
        &mut self.guard
    }
}

impl Drop for InterestGuard<'_> {
    fn drop(&mut self) {
        self.cluster.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_numbers_skip_zero_and_wrap() {
        assert_eq!(instance(1), 1);
        assert_eq!(instance(65_535), 65_535);
        assert_eq!(instance(65_536), 1);
        assert_eq!(instance(0), 1);
        assert_eq!(instance(-5), 1);
    }
}
