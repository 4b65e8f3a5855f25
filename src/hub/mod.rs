//! The hub: the one owner of every socket and every index over them.
//!
//! Handlers receive `&mut Hub` and act through it; nothing else mutates
//! connections. Every operation that crosses sockets goes through here, so a
//! bus between loops (or machines) can later slot in behind the same methods.
//!
//! Sending queues: bytes go to the socket's write queue (a fan-out queues one
//! shared frame, see [`crate::outqueue`]) and the socket is marked dirty; the
//! event loop writes each dirty socket once per turn. The exception is a
//! large message (16 KiB or more) to a socket with nothing queued, written at
//! once with `writev` (what the kernel does not take is queued).
//!
//! Backpressure is what the kernel did not take: a queue past
//! `max_backpressure` is offered to the kernel at once, and only when a write
//! has returned `WouldBlock` and more than `max_backpressure` still waits is
//! the socket closed (1008). The event loop checks the same after each flush.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

mod api;
mod clients;
mod deferred;
mod groups;
mod jobs;
mod lifecycle;
mod payload;
mod queue;
mod send;
mod slots;
mod user_timers;

pub use api::HubError;
pub use jobs::JobAction;
pub(crate) use jobs::JobClaim;
pub use payload::Payload;
pub(crate) use send::encode;
pub use send::{Audience, SendError};
pub use user_timers::TimerHandle;

use crate::bus::Bus;
use crate::close::CloseReason;
use crate::config::Config;
use crate::connection::{Connection, DeadlineKind, State};
use crate::memory::Gauge;
use crate::metrics::Metrics;
use crate::outqueue::Pool;
use crate::socket_id::SocketId;
use crate::timer::{TimerId, TimerWheel};

/// What a timer entry is for. Entries carry the full socket id, and the
/// connection keeps the [`TimerId`] of each deadline it has armed: a timer
/// that is not the connection's current one (re-armed since, or of a
/// closed socket) fires into nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerEvent {
    /// The deadline of the socket's state (handshake, HTTP idle, close).
    Deadline(SocketId, DeadlineKind),
    /// Time to send the socket a heartbeat ping.
    Heartbeat(SocketId),
    /// The socket's auth deadline: not bound by now, it is closed (1008).
    Auth(SocketId),
    /// Retry accepting after EMFILE.
    AcceptRetry,
    /// A user timer.
    User(TimerHandle),
    /// Time for the scheduler to look for due jobs.
    Scheduler,
}

/// Settings the hub applies on every send and close.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HubSettings {
    pub max_backpressure: usize,
    pub close_timeout_ms: u64,
    pub max_group_name: usize,
    pub max_groups_per_socket: usize,
    pub max_group_bytes: usize,
    pub max_session_size: usize,
    pub max_client_id: usize,
    pub fanout_per_turn: usize,
    pub fanout_writes_per_turn: usize,
}

impl HubSettings {
    pub fn from_config(config: &Config) -> HubSettings {
        HubSettings {
            max_backpressure: config.max_backpressure,
            close_timeout_ms: millis(config.close_timeout),
            max_group_name: config.max_group_name,
            max_groups_per_socket: config.max_groups_per_socket,
            max_group_bytes: config.max_group_bytes_per_socket,
            max_session_size: config.max_session_size,
            max_client_id: config.max_client_id,
            fanout_per_turn: config.max_fanout_per_turn,
            fanout_writes_per_turn: config.max_fanout_writes_per_turn,
        }
    }
}

/// Connection counts by state, kept by [`Hub::set_state`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    /// Open WebSockets.
    pub online: usize,
    /// Connections reading a request head (not idle keep-alive ones).
    pub pending_http: usize,
    /// Keep-alive HTTP connections between requests.
    pub idle_http: usize,
}

pub(crate) use slots::MAX_SLOTS;

/// The sockets, and what the application can do with them.
pub struct Hub {
    pub(crate) conns: Slab<Connection>,
    /// Slot of each connected socket.
    ids: slots::SlotIndex,
    /// This node's instance number and this loop's index (parts of every id).
    node: u16,
    pub(crate) loop_index: u8,
    /// Connections this loop has accepted (the last part of every id).
    next_local: u64,
    pub(crate) timers: TimerWheel<TimerEvent>,
    /// Milliseconds since the loop started (the timer wheel's clock).
    pub(crate) now: u64,
    /// Slots with point-to-point output to flush this turn (flushed first).
    pub(crate) dirty: Vec<usize>,
    /// Slots with only fan-out output to flush this turn.
    pub(crate) dirty_fanout: Vec<usize>,
    /// Sockets that stopped being online, waiting for `on_close`.
    pub(crate) closed: Vec<(SocketId, CloseReason)>,
    pub(crate) settings: HubSettings,
    pub(crate) metrics: Metrics,
    pub(crate) counts: Counts,
    /// Keep-alive connections in the order they went idle (entries whose
    /// deadline no longer matches are stale and skipped).
    pub(crate) idle_order: VecDeque<(SocketId, TimerId)>,
    /// Fan-out work done this turn (deliveries weighted by bytes).
    pub(crate) turn_fanout: usize,
    /// Fan-out writes this turn may still make (the loop sets
    /// `max_fanout_writes_per_turn` at each turn's start; a hub without a
    /// loop, as in the benches, keeps 0 and only queues).
    pub(crate) fanout_writes_left: usize,
    /// Whether fan-outs may defer writes past the turn's bound (the loop
    /// turns it on; a hub without a loop, as in the benches, only queues).
    pub(crate) defer_fanout: bool,
    /// The fan-out whose writes wait for later turns, if any.
    pub(crate) deferred: Option<Box<deferred::Deferred>>,
    /// Posted commands wait that this turn did not apply.
    pub(crate) inbox_pending: bool,
    clients: clients::Clients,
    groups: groups::Groups,
    user_timers: HashMap<TimerHandle, user_timers::UserTimer>,
    next_timer: u64,
    /// This loop's scheduled jobs (see `jobs.rs`).
    pub(crate) scheduler: crate::scheduler::Scheduler,
    /// The wheel timer of the scheduler's next check, if armed.
    pub(crate) scheduler_timer: Option<TimerId>,
    /// Runs asked for (`run_job`) that the next check hands to the handler.
    pub(crate) job_requests: Vec<crate::scheduler::Fire>,
    /// Reused buffer for encoding a frame once before fan-out.
    frame_scratch: Vec<u8>,
    /// permessage-deflate's compressors for this loop's sockets.
    pub(crate) compression: crate::compression::Compression,
    /// Emptied output buffers and queue states, lent to the next sender.
    pub(crate) pool: Pool,
    /// Buffered bytes, held against `max_buffer_memory` (the bus's gauge:
    /// one count for the process).
    pub(crate) gauge: Gauge,
    /// The process's loops, their view and totals.
    pub(crate) bus: Arc<Bus>,
    /// Whether the last send crossed to the other nodes (see
    /// [`Hub::cluster_send_result`]).
    cluster_result: Result<(), crate::cluster::ClusterError>,
    config: Arc<Config>,
}

impl Hub {
    /// The hub of loop `loop_index` of `bus`.
    pub(crate) fn new(config: Arc<Config>, bus: Arc<Bus>, loop_index: u8) -> Hub {
        let settings = HubSettings::from_config(&config);
        let node = bus.cluster.as_ref().map_or(0, |c| c.node());
        Hub {
            cluster_result: Ok(()),
            clients: Default::default(),
            groups: Default::default(),
            user_timers: HashMap::new(),
            next_timer: 0,
            scheduler: crate::scheduler::Scheduler::new(),
            scheduler_timer: None,
            job_requests: Vec::new(),
            frame_scratch: Vec::new(),
            compression: crate::compression::Compression::new(
                config.compression,
                config.compression_min_size,
            ),
            pool: Pool::new(),
            gauge: bus.gauge.clone(),
            bus,
            config,
            conns: Slab::new(),
            ids: slots::SlotIndex::default(),
            node,
            loop_index,
            next_local: 0,
            timers: TimerWheel::new(),
            now: 0,
            dirty: Vec::new(),
            dirty_fanout: Vec::new(),
            closed: Vec::new(),
            settings,
            metrics: Metrics::default(),
            counts: Counts::default(),
            idle_order: VecDeque::new(),
            turn_fanout: 0,
            fanout_writes_left: 0,
            defer_fanout: false,
            deferred: None,
            inbox_pending: false,
        }
    }

    /// Insert a connection made by `make` from its id; returns its slot.
    /// `reserved`: the process totals count it already (the acceptor
    /// reserved its place when it handed it over).
    pub(crate) fn insert(
        &mut self,
        make: impl FnOnce(SocketId) -> Connection,
        reserved: bool,
    ) -> usize {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.next_local += 1;
        let id = SocketId::new(self.node, self.loop_index, self.next_local);
        let conn = make(id);
        let pending = conn.state == State::NEW;
        if pending {
            self.counts.pending_http += 1;
        }
        entry.insert(conn);
        self.ids.insert(id, key);
        if !reserved {
            let totals = &self.bus.totals;
            totals
                .connections
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            if pending {
                totals
                    .pending_http
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
        key
    }

    /// The slot of socket `id`, if it is still connected.
    pub(crate) fn key(&self, id: SocketId) -> Option<usize> {
        if id.node() != self.node || id.loop_index() != self.loop_index {
            return None;
        }
        self.ids.get(id)
    }

    /// The slot of socket `id`, if it is an open WebSocket.
    pub(crate) fn online_key(&self, id: SocketId) -> Option<usize> {
        let key = self.key(id)?;
        self.conns.get(key).filter(|c| c.is_open()).map(|_| key)
    }

    /// The connection `id` addresses, if it is still that connection.
    pub(crate) fn conn_mut(&mut self, id: SocketId) -> Option<&mut Connection> {
        let key = self.key(id)?;
        self.conns.get_mut(key)
    }

    pub(crate) fn conn(&self, id: SocketId) -> Option<&Connection> {
        self.conns.get(self.key(id)?)
    }

    /// Milliseconds since the loop started.
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Seconds since the loop started.
    pub fn uptime_secs(&self) -> u64 {
        self.now / 1000
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters since start.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Bytes buffered for peers now (input, reassembly, output), as held
    /// against `max_buffer_memory`.
    pub fn buffered_bytes(&self) -> usize {
        self.gauge.total()
    }

    /// Whether `socket` is an open WebSocket.
    pub fn is_socket_online(&self, socket: SocketId) -> bool {
        if self.is_remote(socket) {
            return self.bus.shared() && self.bus.read().is_open(socket);
        }
        self.conn(socket).is_some_and(Connection::is_open)
    }

    /// How many WebSockets are open in the process.
    pub fn online_sockets(&self) -> usize {
        if self.bus.shared() {
            return self
                .bus
                .totals
                .online
                .load(std::sync::atomic::Ordering::Relaxed);
        }
        self.counts.online
    }

    /// Which loop this hub is (0 with one loop).
    pub fn loop_index(&self) -> usize {
        usize::from(self.loop_index)
    }

    /// How many TCP connections are held (HTTP, open and closing).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// This loop's numbers as they are now (what it publishes on the bus).
    pub(crate) fn live_stats(&self) -> crate::bus::LoopStats {
        crate::bus::LoopStats {
            metrics: self.metrics.clone(),
            connections: self.conns.len(),
            online: self.counts.online,
            pending_http: self.counts.pending_http,
            idle_http: self.counts.idle_http,
        }
    }

    /// This node's cluster (`cluster_redis` set), for presence answered
    /// from Redis through callbacks and the live nodes.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.bus.cluster.as_ref()
    }

    /// Whether the last `send_to_*` call reached the other nodes of the
    /// cluster: `Ok` when it was published (or there is no cluster, or it
    /// addressed a socket of this node), else why not. Its local delivery
    /// happened either way (at most once: what could not cross is counted).
    pub fn cluster_send_result(&self) -> Result<(), crate::cluster::ClusterError> {
        self.cluster_result.clone()
    }

    /// Publish a send to the other nodes (nothing without a cluster); the
    /// outcome is kept for [`Hub::cluster_send_result`].
    pub(crate) fn cross(
        &mut self,
        target: crate::cluster::wire::WireTarget,
        binary: bool,
        payload: &[u8],
    ) {
        self.cluster_result = match &self.bus.cluster {
            Some(cluster) => cluster.publish(&target, binary, payload),
            None => Ok(()),
        };
    }

    /// A send that has nothing to cross (a socket of this node).
    pub(crate) fn cross_nothing(&mut self) {
        self.cluster_result = Ok(());
    }

    /// The cluster, when `socket` lives on another of its nodes.
    pub(crate) fn other_node(&self, socket: SocketId) -> Option<&Arc<crate::cluster::Cluster>> {
        self.bus
            .cluster
            .as_ref()
            .filter(|c| c.is_other_node(socket))
    }

    /// The node interest to update, when in a cluster.
    pub(crate) fn interest(&self) -> Option<crate::cluster::InterestRef<'_>> {
        self.bus.cluster.as_ref().map(|c| c.interest())
    }

    /// The peer address of `socket` (while it is connected).
    pub fn peer_addr(&self, socket: SocketId) -> Option<std::net::SocketAddr> {
        self.conn(socket).map(|c| c.peer.addr())
    }
}

/// Milliseconds in a duration, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
