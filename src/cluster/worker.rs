//! The cluster thread (`gmws-cluster`): its own mio `Poll`, woken by the
//! Redis client's events and by changes of the node's interest. It
//!
//! - hands messages of other nodes to this node's loops (the frame encoded
//!   once per node, one bus command per loop), counting sequence gaps;
//! - subscribes a group's or client's channel when the node gets its first
//!   member and unsubscribes [`UNSUBSCRIBE_DELAY`] after its last, and
//!   writes the node's presence entries as they change;
//! - refreshes the node's lease every quarter of `node_lease` (with a TTL
//!   of three quarters) and rewrites every entry when it finds the lease
//!   lapsed or a link reconnected;
//! - publishes a liveness probe to itself; one that does not come back in
//!   time restarts the Redis client (a subscription can die silently);
//! - reads the live nodes' summaries (`GET /api/nodes`, `/status`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use gmws_protocol::encoder::encode_frame;
use gmws_protocol::OpCode;
use mio::Events;
use serde_json::json;

use super::node::{Cluster, NodeInfo, Seed};
use super::presence::{
    nodes_answer, CLIENT_WRITE_SCRIPT, NODES_SCRIPT, RECONCILE_SCRIPT, SWEEP_BATCH,
};
use super::redis::{Link, RedisEvent, RedisEvents, Reply};
use super::wire::{self, SocketOp, WireTarget};
use crate::bus::{Bus, Command, Target};
use crate::compression::Outgoing;
use crate::outqueue::SharedFrame;

/// How long a channel stays subscribed after the node's last member left
/// (a member that comes back meanwhile costs no SUBSCRIBE).
pub(crate) const UNSUBSCRIBE_DELAY: Duration = Duration::from_secs(2);

/// Client entries a node sweeps of itself when it leaves. A Lua number:
/// Redis takes it as an integer only while it prints as one (up to 10^14).
const LEAVE_SWEEP: usize = 1_000_000;

/// The longest wait in `poll`.
const TICK: Duration = Duration::from_millis(100);

/// Flags the Redis client's callbacks raise for the cluster thread.
#[derive(Default)]
struct Flags {
    /// The lease was found missing: rewrite everything.
    lapsed: AtomicBool,
    /// At least one lease write succeeded.
    leased: AtomicBool,
    /// The last nodes reading left a lapsed node to sweep: read again soon.
    sweep_more: AtomicBool,
}

/// One presence write of [`Worker::flush_interest`].
enum Write {
    /// A group's hash and this node's member count (`None`: no members).
    Group(Vec<u8>, Option<String>),
    /// A client id and this node's socket ids of it (empty: none).
    Client(String, String),
}

impl Write {
    /// Whether this node has members of the name (so its channel is wanted).
    fn is_present(&self) -> bool {
        match self {
            Write::Group(_, n) => n.is_some(),
            Write::Client(_, ids) => !ids.is_empty(),
        }
    }
}

/// The cluster thread's state.
pub(crate) struct Worker {
    cluster: Arc<Cluster>,
    bus: Weak<Bus>,
    addr: String,
    poll: mio::Poll,
    events: RedisEvents,
    subscribed: HashSet<Vec<u8>>,
    unsubscribe_at: HashMap<Vec<u8>, Instant>,
    /// Per channel, per origin node: the last sequence number seen.
    seen: HashMap<Vec<u8>, HashMap<u16, u64>>,
    written_groups: HashSet<String>,
    written_clients: HashSet<String>,
    rewrite: bool,
    flags: Arc<Flags>,
    next_lease: Instant,
    next_probe: Instant,
    probe: Option<(u64, Instant)>,
    probe_token: u64,
    /// Barriers asked and not yet confirmed: token, channels subscribed
    /// before it (see [`Cluster::when_group_ready`]).
    barriers: VecDeque<(u64, Vec<Vec<u8>>)>,
    barrier_token: u64,
}

/// How often the liveness probe goes out: a quarter of the node lease,
/// between 250 ms and 3 s.
fn probe_interval(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(250), Duration::from_secs(3))
}

impl Worker {
    /// Start the thread for `cluster` on `bus` (the server listening on `addr`).
    pub(crate) fn spawn(
        cluster: Arc<Cluster>,
        seed: Seed,
        bus: &Arc<Bus>,
        addr: String,
    ) -> std::io::Result<()> {
        let now = Instant::now();
        let first_probe = now + probe_interval(cluster.lease);
        let worker = Worker {
            cluster,
            bus: Arc::downgrade(bus),
            addr,
            poll: seed.poll,
            events: seed.events,
            subscribed: HashSet::new(),
            unsubscribe_at: HashMap::new(),
            seen: HashMap::new(),
            written_groups: HashSet::new(),
            written_clients: HashSet::new(),
            rewrite: false,
            flags: Arc::new(Flags::default()),
            next_lease: now,
            // Not at once: the node's own channel is subscribed after the
            // pub/sub link came up, and a first probe published before
            // Redis took that SUBSCRIBE would be lost and, three intervals
            // later, restart a healthy client (seen under load at start).
            next_probe: first_probe,
            probe: None,
            probe_token: 0,
            barriers: VecDeque::new(),
            barrier_token: 0,
        };
        std::thread::Builder::new()
            .name("gmws-cluster".into())
            .spawn(move || worker.run())
            .map(|_| ())
    }

    fn probe_interval(&self) -> Duration {
        probe_interval(self.cluster.lease)
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(16);
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("cluster: poll failed: {e}; the cluster thread stops");
                    return;
                }
            }
            let Some(bus) = self.bus.upgrade() else {
                return;
            };
            if bus.stop.load(Ordering::Relaxed) {
                self.leave();
                return;
            }
            self.cluster.woken();
            self.drain(&bus);
            self.flush_interest();
            self.timers(&bus);
        }
    }

    /// Leave the cluster at shutdown: drop the lease, so the node vanishes
    /// at once rather than when it lapses.
    fn leave(&self) {
        let redis = self.cluster.redis();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let _ = redis.command(
            [
                b"DEL".to_vec(),
                self.cluster.keys.lease(self.cluster.node()),
            ],
            |_| {},
        );
        // With the lease gone, the sweep takes this node's clients out of
        // the cluster's count now (and the node out of the set of nodes);
        // what is past the budget the other nodes' readings sweep.
        let sent = redis.command(self.nodes_command(LEAVE_SWEEP), move |r| {
            let _ = tx.try_send(r);
        });
        if sent.is_ok() {
            let _ = rx.recv_timeout(Duration::from_millis(500));
        }
        redis.shutdown();
    }

    fn drain(&mut self, bus: &Arc<Bus>) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                RedisEvent::Connected(link) => {
                    self.cluster.link(link, true);
                    if link == Link::PubSub {
                        self.barrier_all();
                    }
                }
                RedisEvent::Reconnected(link) => {
                    self.cluster.link(link, true);
                    self.rewrite = true;
                    if link == Link::PubSub {
                        self.barrier_all();
                    }
                    log::info!("cluster: Redis {link:?} link back");
                }
                RedisEvent::Disconnected { link, error } => {
                    if self.cluster.links.load(Ordering::Acquire) == 0b11 {
                        log::warn!("cluster: Redis {link:?} link lost: {error}");
                    }
                    self.cluster.link(link, false);
                    self.probe = None;
                    if link == Link::PubSub {
                        self.cluster.unconfirm_all();
                        self.barriers.clear();
                    }
                }
                RedisEvent::Confirmed(token) => self.confirmed(token),
                RedisEvent::Message { channel, payload } => self.message(bus, channel, &payload),
            }
        }
    }

    /// Ask Redis to confirm `channels` (just subscribed) with a barrier.
    fn barrier(&mut self, channels: Vec<Vec<u8>>) {
        self.barrier_token += 1;
        if self.cluster.redis().barrier(self.barrier_token).is_ok() {
            self.barriers.push_back((self.barrier_token, channels));
        }
    }

    /// The pub/sub link is up with every channel of the set subscribed
    /// again: a barrier confirms them all (asked now, so that it also
    /// covers a subscription asked just before this event).
    fn barrier_all(&mut self) {
        let channels = self.subscribed.iter().cloned().collect();
        self.barrier(channels);
    }

    /// Redis confirmed barrier `token`: its channels (and those of every
    /// barrier before it) that are still subscribed are live.
    fn confirmed(&mut self, token: u64) {
        let mut live = Vec::new();
        while self.barriers.front().is_some_and(|(t, _)| *t <= token) {
            if let Some((_, channels)) = self.barriers.pop_front() {
                live.extend(channels);
            }
        }
        live.retain(|c| self.subscribed.contains(c));
        self.cluster.confirmed(live);
    }

    fn message(&mut self, bus: &Arc<Bus>, channel: Vec<u8>, payload: &[u8]) {
        let publication = match wire::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                self.cluster.metrics.malformed();
                log::debug!("cluster: dropped a message: {e}");
                return;
            }
        };
        if publication.origin == self.cluster.node() {
            if publication.target == WireTarget::Probe {
                let token = publication.payload.get(..8).and_then(|b| b.try_into().ok());
                if let (Some((want, _)), Some(got)) = (self.probe, token.map(u64::from_be_bytes)) {
                    if want == got {
                        self.probe = None;
                        self.cluster.probe_ok.store(true, Ordering::Release);
                    }
                }
            }
            // Our own sends were delivered here when they were made.
            return;
        }
        let last = self
            .seen
            .entry(channel)
            .or_default()
            .entry(publication.origin)
            .or_insert(0);
        if *last != 0 && publication.seq > *last + 1 {
            self.cluster.metrics.gaps(publication.seq - *last - 1);
        }
        // A lower number: the origin started its numbers again.
        *last = publication.seq;
        self.cluster.metrics.received();
        self.deliver(bus, publication);
    }

    /// Hand a publication to the loops: the frame once, one command per loop.
    fn deliver(&self, bus: &Arc<Bus>, p: wire::Publication) {
        if let WireTarget::Op(id, op) = p.target {
            return self.apply_op(bus, id, op);
        }
        let opcode = if p.binary {
            OpCode::Binary
        } else {
            OpCode::Text
        };
        let mut frame = Vec::with_capacity(p.payload.len() + 14);
        encode_frame(&mut frame, opcode, true, &p.payload, None);
        let frame = Outgoing::new(SharedFrame::new(frame, &bus.gauge), true);
        let payload_len = p.payload.len();
        let loops: Vec<usize> = match &p.target {
            WireTarget::Socket(id) if id.node() == self.cluster.node() => {
                vec![usize::from(id.loop_index())]
            }
            WireTarget::Socket(_) | WireTarget::Probe | WireTarget::Op(..) => return,
            _ => (0..bus.loops()).collect(),
        };
        let target = match p.target {
            WireTarget::Socket(id) => Target::Socket(id),
            WireTarget::Client(c) => Target::Client(Arc::from(c)),
            WireTarget::Group(g, ex) => Target::Group(Arc::from(g), Arc::from(ex)),
            WireTarget::All => Target::All,
            WireTarget::AllClients => Target::AllClients,
            WireTarget::Probe | WireTarget::Op(..) => return,
        };
        for index in loops {
            let target = target.clone();
            let command = Command::Send {
                target,
                frame: frame.clone(),
                payload_len,
            };
            if let Err(e) = bus.post(index, command) {
                log::warn!("cluster: a message for loop {index} was dropped: {e}");
            }
        }
    }

    /// Another node asked for `op` on this node's socket `id`: post it to
    /// the socket's loop, which checks and applies it as a local call.
    fn apply_op(&self, bus: &Arc<Bus>, id: crate::SocketId, op: SocketOp) {
        if id.node() != self.cluster.node() {
            return;
        }
        let command = match op {
            SocketOp::Join(group) => Command::Join(id, group),
            SocketOp::Leave(group) => Command::Leave(id, group),
            SocketOp::Close(code, reason) => Command::Close(id, crate::CloseCode(code), reason),
        };
        if let Err(e) = bus.post(usize::from(id.loop_index()), command) {
            log::warn!("cluster: an operation for socket {id} was dropped: {e}");
        }
    }

    /// Act on the groups and clients that changed: (un)subscribe, write
    /// presence.
    fn flush_interest(&mut self) {
        if self.flags.lapsed.swap(false, Ordering::AcqRel) {
            self.rewrite = true;
        }
        let rewrite = std::mem::take(&mut self.rewrite);
        self.flush_members(rewrite);
        let (groups, clients) = {
            let mut interest = self.cluster.interest_quiet();
            if rewrite {
                interest.touch_all();
                interest
                    .dirty_groups
                    .extend(self.written_groups.iter().cloned());
                interest
                    .dirty_clients
                    .extend(self.written_clients.iter().cloned());
            }
            let groups: Vec<(String, u32)> = std::mem::take(&mut interest.dirty_groups)
                .into_iter()
                .map(|g| {
                    let n = interest.groups.get(&g).copied().unwrap_or(0);
                    (g, n)
                })
                .collect();
            let clients: Vec<(String, String)> = std::mem::take(&mut interest.dirty_clients)
                .into_iter()
                .map(|c| {
                    let ids = interest.clients.get(&c).map_or_else(String::new, |ids| {
                        ids.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    });
                    (c, ids)
                })
                .collect();
            (groups, clients)
        };
        if rewrite {
            self.cluster.metrics.rewrite();
        }
        let node = self.cluster.node().to_string();
        let redis = self.cluster.redis();
        let mut subscribe = Vec::new();
        let now = Instant::now();
        let keys = self.cluster.keys.clone();
        if rewrite {
            self.reconcile_clients();
        }
        // Per name: its channel, and the write (None: this node has none).
        let mut changes: Vec<(Vec<u8>, Write)> = Vec::new();
        for (group, n) in groups {
            let channel = keys.group_channel(&group);
            let key = keys.group(&group);
            let value = (n > 0).then(|| n.to_string());
            if n > 0 {
                self.written_groups.insert(group);
            } else {
                self.written_groups.remove(&group);
            }
            changes.push((channel, Write::Group(key, value)));
        }
        for (client, ids) in clients {
            let channel = keys.client_channel(&client);
            if self.cluster_has_client(&client) {
                self.written_clients.insert(client.clone());
            } else {
                self.written_clients.remove(&client);
            }
            changes.push((channel, Write::Client(client, ids)));
        }
        for (channel, write) in changes {
            if write.is_present() {
                self.unsubscribe_at.remove(&channel);
                if self.subscribed.insert(channel.clone()) || rewrite {
                    subscribe.push(channel);
                }
            } else if self.subscribed.contains(&channel) {
                self.unsubscribe_at
                    .entry(channel)
                    .or_insert(now + UNSUBSCRIBE_DELAY);
            }
            let command = match write {
                Write::Group(key, Some(n)) => vec![
                    b"HSET".to_vec(),
                    key,
                    node.clone().into_bytes(),
                    n.into_bytes(),
                ],
                Write::Group(key, None) => vec![b"HDEL".to_vec(), key, node.clone().into_bytes()],
                Write::Client(client, ids) => vec![
                    b"EVAL".to_vec(),
                    CLIENT_WRITE_SCRIPT.as_bytes().to_vec(),
                    b"4".to_vec(),
                    keys.client(&client),
                    keys.node_clients(self.cluster.node()),
                    keys.clients(),
                    keys.nodes(),
                    node.clone().into_bytes(),
                    client.into_bytes(),
                    ids.into_bytes(),
                ],
            };
            // Lost when Redis is down: the reconnect rewrites everything.
            let _ = redis.command(command, |_| {});
        }
        if !subscribe.is_empty() {
            match redis.subscribe(subscribe.clone()) {
                Ok(()) => self.barrier(subscribe),
                Err(e) => log::warn!("cluster: subscribe refused: {e}"),
            }
        }
    }

    /// Write the member changes (HSET/HDEL on the groups' member hashes, in
    /// the order made), or every member hash again on a rewrite.
    fn flush_members(&mut self, rewrite: bool) {
        let node = self.cluster.node();
        let keys = self.cluster.keys.clone();
        let mut commands: Vec<Vec<Vec<u8>>> = Vec::new();
        {
            let mut interest = self.cluster.interest_quiet();
            let ops = std::mem::take(&mut interest.member_ops);
            if rewrite || std::mem::take(&mut interest.members_overflow) {
                let mut names: HashSet<&String> = self.written_groups.iter().collect();
                names.extend(interest.members.keys());
                for group in names {
                    let key = keys.group_members(group, node);
                    commands.push(vec![b"DEL".to_vec(), key.clone()]);
                    if let Some(members) = interest.members.get(group).filter(|m| !m.is_empty()) {
                        let mut hset = Vec::with_capacity(2 + 2 * members.len());
                        hset.push(b"HSET".to_vec());
                        hset.push(key);
                        for (socket, client) in members {
                            hset.push(socket.to_string().into_bytes());
                            hset.push(client.clone().into_bytes());
                        }
                        commands.push(hset);
                    }
                }
            } else {
                for (group, socket, client) in ops {
                    let key = keys.group_members(&group, node);
                    let field = socket.to_string().into_bytes();
                    commands.push(match client {
                        Some(client) => vec![b"HSET".to_vec(), key, field, client.into_bytes()],
                        None => vec![b"HDEL".to_vec(), key, field],
                    });
                }
            }
        }
        let redis = self.cluster.redis();
        for command in commands {
            // Lost when Redis is down: the reconnect rewrites everything.
            let _ = redis.command(command, |_| {});
        }
    }

    /// Before a rewrite: take out of Redis the client ids this node's set
    /// holds and the node no longer does (unbound while Redis was
    /// unreachable, so their removal was lost); the rewrite adds the rest.
    fn reconcile_clients(&self) {
        let keys = &self.cluster.keys;
        let node = self.cluster.node();
        let mut args = vec![
            b"EVAL".to_vec(),
            RECONCILE_SCRIPT.as_bytes().to_vec(),
            b"2".to_vec(),
            keys.node_clients(node),
            keys.clients(),
            node.to_string().into_bytes(),
            keys.client_prefix(),
        ];
        args.extend(
            self.cluster
                .interest_quiet()
                .clients
                .keys()
                .map(|c| c.clone().into_bytes()),
        );
        let _ = self.cluster.redis().command(args, |_| {});
    }

    fn cluster_has_client(&self, client: &str) -> bool {
        self.cluster.interest_quiet().clients.contains_key(client)
    }

    fn timers(&mut self, bus: &Arc<Bus>) {
        let now = Instant::now();
        let due: Vec<Vec<u8>> = self
            .unsubscribe_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(c, _)| c.clone())
            .collect();
        if !due.is_empty() {
            for channel in &due {
                self.unsubscribe_at.remove(channel);
                self.subscribed.remove(channel);
                self.seen.remove(channel);
                self.cluster.unconfirmed(channel);
            }
            let _ = self.cluster.redis().unsubscribe(due);
        }
        if now >= self.next_lease {
            self.next_lease = now + self.cluster.lease / 4;
            self.refresh_lease(bus);
            self.read_nodes();
        } else if self.flags.sweep_more.swap(false, Ordering::AcqRel) {
            self.read_nodes();
        }
        self.probe(now);
        self.cluster.expire_waiters(now);
    }

    fn refresh_lease(&self, bus: &Arc<Bus>) {
        let (clients, groups) = {
            let interest = self.cluster.interest_quiet();
            (interest.clients.len(), interest.groups.len())
        };
        let summary = json!({
            "node": self.cluster.node(),
            "addr": self.addr,
            "online_sockets": bus.totals.online.load(Ordering::Relaxed),
            "online_clients": clients,
            "groups": groups,
        })
        .to_string();
        let ttl = (self.cluster.lease * 3 / 4).as_millis().max(1).to_string();
        let node = self.cluster.node();
        let redis = self.cluster.redis();
        let flags = Arc::clone(&self.flags);
        let waker = Arc::clone(&self.cluster.waker);
        let metrics = Arc::clone(&self.cluster);
        let _ = redis.command(
            [
                b"SET".to_vec(),
                self.cluster.keys.lease(node),
                summary.into_bytes(),
                b"PX".to_vec(),
                ttl.into_bytes(),
                b"GET".to_vec(),
            ],
            move |reply| {
                if let Ok(reply) = reply {
                    let had = flags.leased.swap(true, Ordering::AcqRel);
                    if reply == Reply::Nil && had {
                        metrics.metrics.lease_lapse();
                        flags.lapsed.store(true, Ordering::Release);
                        let _ = waker.wake();
                    }
                }
            },
        );
        let _ = redis.command(
            [
                b"SADD".to_vec(),
                self.cluster.keys.nodes(),
                node.to_string().into_bytes(),
            ],
            |_| {},
        );
    }

    /// The nodes script's command, sweeping at most `budget` client
    /// entries of lapsed nodes.
    fn nodes_command(&self, budget: usize) -> Vec<Vec<u8>> {
        let keys = &self.cluster.keys;
        vec![
            b"EVAL".to_vec(),
            NODES_SCRIPT.as_bytes().to_vec(),
            b"2".to_vec(),
            keys.nodes(),
            keys.clients(),
            keys.lease_prefix(),
            keys.node_clients_prefix(),
            keys.client_prefix(),
            budget.to_string().into_bytes(),
        ]
    }

    fn read_nodes(&self) {
        let cluster = Arc::clone(&self.cluster);
        let flags = Arc::clone(&self.flags);
        let waker = Arc::clone(&self.cluster.waker);
        let args = self.nodes_command(SWEEP_BATCH);
        let _ = self.cluster.redis().command(args, move |reply| {
            let Ok((leases, online_clients, more)) = reply
                .map_err(super::ClusterError::Redis)
                .and_then(nodes_answer)
            else {
                return;
            };
            let mut nodes: Vec<NodeInfo> = leases
                .iter()
                .filter_map(|bytes| serde_json::from_slice(bytes).ok())
                .collect();
            nodes.sort_by_key(|n| n.node);
            let mut view = cluster.view.write().unwrap_or_else(|p| p.into_inner());
            view.nodes = nodes;
            view.online_clients = online_clients;
            view.at = Some(Instant::now());
            if more {
                flags.sweep_more.store(true, Ordering::Release);
                let _ = waker.wake();
            }
        });
    }

    fn probe(&mut self, now: Instant) {
        let interval = self.probe_interval();
        if let Some((_, sent)) = self.probe {
            if now.duration_since(sent) > interval * 3 {
                self.probe = None;
                self.cluster.metrics.probe_failure();
                self.cluster.probe_ok.store(false, Ordering::Release);
                log::warn!("cluster: the liveness probe did not come back; reconnecting to Redis");
                if let Some(events) = self.cluster.restart_client() {
                    self.events = events;
                    self.cluster.unconfirm_all();
                    self.barriers.clear();
                    let mut channels: Vec<Vec<u8>> = self.subscribed.iter().cloned().collect();
                    channels.push(self.cluster.keys.node_channel(self.cluster.node()));
                    channels.push(self.cluster.keys.all_channel());
                    let _ = self.cluster.redis().subscribe(channels);
                    self.rewrite = true;
                }
                self.next_probe = now + interval;
            }
            return;
        }
        if now < self.next_probe || self.cluster.links.load(Ordering::Acquire) != 0b11 {
            return;
        }
        self.next_probe = now + interval;
        self.probe_token += 1;
        let payload = self.probe_token.to_be_bytes();
        let channel = self.cluster.keys.node_channel(self.cluster.node());
        let bytes = wire::encode(self.cluster.node(), 0, &WireTarget::Probe, true, &payload);
        if self.cluster.redis().publish(&channel, &bytes).is_ok() {
            self.probe = Some((self.probe_token, now));
        }
    }
}
