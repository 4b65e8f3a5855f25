//! The bus: how a process's event loops (and other threads, through a
//! [`crate::Remote`]) reach each other.
//!
//! Each loop owns its sockets; nothing locks on the path of one socket's
//! messages. Loops meet here:
//!
//! - **inboxes**: each loop has a bounded queue of [`Command`]s and a mio
//!   `Waker`; a send to another loop's socket, group member or client posts
//!   one command per loop that has recipients (a broadcast is one shared
//!   frame, encoded once, in O(loops) commands). A full inbox is an error
//!   returned to the sender and counted, never unbounded memory;
//! - **the view** ([`View`]): a process-wide index of open sockets, client
//!   ids, groups (with how many members each loop holds) and sessions,
//!   written by a socket's own loop when it applies a change and read by
//!   any loop or thread. Answers never wait on another loop; they are as
//!   fresh as the owning loop's last turn (a change posted to another loop
//!   shows once that loop has applied it);
//! - **totals**: process-wide connection counts, the per-IP table, the
//!   buffered-bytes gauge, per-loop statistics for `/metrics`.
//!
//! With one loop the view is not kept (the loop's own indexes answer) and no
//! command is ever posted. The bus is also the seam where a transport to
//! other nodes (the cluster) slots in.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};

use mio::Waker;
use serde_json::{Map, Value};

use crate::close::CloseCode;
use crate::memory::Gauge;
use crate::metrics::Metrics;
use crate::socket_id::{IdHash, SocketId};

/// Commands a loop's inbox holds at most (the channel allocates its slots
/// up front: ~80 bytes each, ~650 KiB a loop).
pub(crate) const INBOX_CAPACITY: usize = 8 * 1024;

/// Who a posted frame is for, on the loop that receives it.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// One socket.
    Socket(SocketId),
    /// The loop's sockets bound to a client id.
    Client(Arc<str>),
    /// The loop's members of a group, except these.
    Group(Arc<str>, Arc<[SocketId]>),
    /// Every open socket of the loop.
    All,
    /// Every bound socket of the loop.
    AllClients,
}

/// Work posted to a loop.
pub(crate) enum Command {
    /// A connection the acceptor admitted and handed over (counted in the
    /// totals already; its address canonical).
    Adopt(mio::net::TcpStream, SocketAddr),
    /// A connection the acceptor refused: answer it and count it.
    Refuse(mio::net::TcpStream, SocketAddr, crate::server::Refusal),
    /// Pause, resume or run one of the loop's jobs (from `/api/jobs` on
    /// another loop).
    Job(Box<str>, crate::hub::JobAction),
    /// Redis answered the claim of one of the loop's job occurrences (sent
    /// from the Redis client's thread): run it if it was won in time.
    JobClaim(Box<crate::hub::JobClaim>),
    /// Queue an encoded frame to the loop's recipients in `target`.
    Send {
        /// Who gets it.
        target: Target,
        /// The frame, shared with every other recipient (and its compressed
        /// forms, made by the first loop that needs each).
        frame: crate::compression::Outgoing,
        /// Its payload's length (for the byte counters).
        payload_len: usize,
    },
    /// Add a socket to a group.
    Join(SocketId, String),
    /// Remove a socket from a group.
    Leave(SocketId, String),
    /// Dissolve a group on the loop.
    Ungroup(Arc<str>),
    /// Bind a socket to a client id.
    Bind(SocketId, String),
    /// Unbind a socket.
    Unbind(SocketId),
    /// Close a socket.
    Close(SocketId, CloseCode, String),
    /// Replace a socket's session.
    SetSession(SocketId, Value),
    /// Merge fields into a socket's session.
    UpdateSession(SocketId, Map<String, Value>),
    /// Run a function on the loop (a `Remote::run` call).
    Run(Box<dyn FnOnce(&mut crate::Hub) + Send>),
    /// The answer to an HTTP request parked on the loop while the cluster
    /// (Redis) answered it: for connection `conn`, the request `token`.
    HttpReply {
        /// The connection that asked (its generation checked on arrival).
        conn: SocketId,
        /// Which parked request (a late answer to an earlier one is dropped).
        token: u64,
        /// What to send.
        response: crate::http::Response,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Adopt(_, addr) => write!(f, "Adopt({addr})"),
            Command::Refuse(_, addr, why) => write!(f, "Refuse({addr}, {why:?})"),
            Command::Job(name, action) => write!(f, "Job({name}, {action:?})"),
            Command::JobClaim(claim) => write!(f, "JobClaim({claim:?})"),
            Command::Send { target, .. } => write!(f, "Send({target:?})"),
            Command::Join(id, g) => write!(f, "Join({id}, {g:?})"),
            Command::Leave(id, g) => write!(f, "Leave({id}, {g:?})"),
            Command::Ungroup(g) => write!(f, "Ungroup({g:?})"),
            Command::Bind(id, c) => write!(f, "Bind({id}, {c:?})"),
            Command::Unbind(id) => write!(f, "Unbind({id})"),
            Command::Close(id, code, _) => write!(f, "Close({id}, {})", code.0),
            Command::SetSession(id, _) => write!(f, "SetSession({id})"),
            Command::UpdateSession(id, _) => write!(f, "UpdateSession({id})"),
            Command::Run(_) => f.write_str("Run"),
            Command::HttpReply { conn, token, .. } => write!(f, "HttpReply({conn}, {token})"),
        }
    }
}

/// Why a command could not be posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostError {
    /// The loop's inbox is full: it is behind by `INBOX_CAPACITY` commands.
    Busy,
    /// The loop has stopped (the server is shutting down).
    Stopped,
    /// Posted to this node's loops, but the cluster (Redis) is unreachable:
    /// the other nodes' sockets do not get it (counted in `/metrics`).
    ClusterUnreachable,
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PostError::Busy => "the loop's inbox is full",
            PostError::Stopped => "the server has stopped",
            PostError::ClusterUnreachable => {
                "delivered on this node only: the cluster is unreachable"
            }
        })
    }
}

impl std::error::Error for PostError {}

/// What a loop publishes about itself (at most every millisecond) for the
/// process-wide `/status` and `/metrics`.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoopStats {
    pub metrics: Metrics,
    pub connections: usize,
    pub online: usize,
    pub pending_http: usize,
    pub idle_http: usize,
}

/// One loop's end of the bus.
pub(crate) struct LoopLink {
    inbox: SyncSender<Command>,
    waker: Arc<Waker>,
    /// Set by the first poster since the loop last drained its inbox, so a
    /// burst of posts costs one wake-up.
    wake_pending: AtomicBool,
    /// Milliseconds (bus clock, at least 1) since the loop's current turn
    /// began; 0 while it waits in `poll`. A loop busy in one turn for long
    /// is stalled, and the acceptor passes it over.
    pub busy_since: AtomicU64,
    pub stats: Mutex<LoopStats>,
}

/// What the acceptor counts across loops (updated by the loops on every
/// change of a connection's state, read when a connection arrives).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub connections: AtomicUsize,
    pub online: AtomicUsize,
    /// Connections reading a request head. The acceptor counts a connection
    /// here (and in `connections`) when it hands it to a loop, before the
    /// loop has it, so the limits hold while a hand-off is under way and a
    /// connection is never counted twice or not at all.
    pub pending_http: AtomicUsize,
}

impl Totals {
    /// Count a connection on its way to a loop (see `pending_http`).
    pub fn reserve(&self) {
        self.connections.fetch_add(1, Ordering::AcqRel);
        self.pending_http.fetch_add(1, Ordering::AcqRel);
    }

    /// Undo `reserve` for a connection that never became a loop's.
    pub fn release(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
        self.pending_http.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process-wide meeting point of the loops. See the module docs.
pub(crate) struct Bus {
    pub links: Vec<LoopLink>,
    pub view: RwLock<View>,
    pub totals: Totals,
    pub per_ip: Mutex<HashMap<IpAddr, u32>>,
    /// Every loop's scheduled jobs as last published by their loop (for
    /// `/api/jobs` on any loop): name → (loop, state).
    pub jobs: Mutex<std::collections::BTreeMap<String, (usize, crate::scheduler::JobStatus)>>,
    pub gauge: Gauge,
    /// Posts refused because an inbox was full.
    pub posts_refused: AtomicU64,
    /// Set once: every loop shuts down.
    pub stop: AtomicBool,
    /// This node's cluster, when `cluster_redis` is set.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    started: std::time::Instant,
}

impl Bus {
    /// The published jobs (a poisoned lock is taken over: the map is
    /// replaced whole by each loop's next publication).
    pub(crate) fn jobs_lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::BTreeMap<String, (usize, crate::scheduler::JobStatus)>,
    > {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection from `ip` is gone: one less against
    /// `max_connections_per_ip` (exempt peers were never counted).
    pub(crate) fn release_ip(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// A bus for loops whose wakers are `wakers`; returns it and each loop's
    /// inbox receiver.
    pub fn new(
        wakers: Vec<Arc<Waker>>,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> (Arc<Bus>, Vec<Receiver<Command>>) {
        Bus::with_capacity(wakers, INBOX_CAPACITY, cluster)
    }

    fn with_capacity(
        wakers: Vec<Arc<Waker>>,
        capacity: usize,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> (Arc<Bus>, Vec<Receiver<Command>>) {
        let mut links = Vec::with_capacity(wakers.len());
        let mut receivers = Vec::with_capacity(wakers.len());
        for waker in wakers {
            let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
            links.push(LoopLink {
                inbox: tx,
                waker,
                wake_pending: AtomicBool::new(false),
                busy_since: AtomicU64::new(0),
                stats: Mutex::new(LoopStats::default()),
            });
            receivers.push(rx);
        }
        let bus = Bus {
            links,
            view: RwLock::new(View::default()),
            totals: Totals::default(),
            per_ip: Mutex::new(HashMap::new()),
            jobs: Mutex::new(std::collections::BTreeMap::new()),
            gauge: Gauge::new(),
            posts_refused: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            cluster,
            started: std::time::Instant::now(),
        };
        (Arc::new(bus), receivers)
    }

    /// A bus for one loop that no server runs (benches, fuzzing): nothing
    /// can be posted to it.
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn detached() -> std::io::Result<Arc<Bus>> {
        let poll = mio::Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0))?);
        Ok(Bus::with_capacity(vec![waker], 1, None).0)
    }

    /// How many loops the process runs.
    pub fn loops(&self) -> usize {
        self.links.len()
    }

    /// Whether the process runs more than one loop (and keeps the view).
    pub fn shared(&self) -> bool {
        self.links.len() > 1
    }

    /// Milliseconds since the bus was made (the clock of `last_turn`).
    pub fn now_ms(&self) -> u64 {
        self.ms_at(std::time::Instant::now())
    }

    /// The bus clock at `at` (ms since the bus started): a loop reads the
    /// clock once per turn and derives both of its clocks from it.
    pub fn ms_at(&self, at: std::time::Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    /// Post `command` to loop `index` and wake it.
    pub fn post(&self, index: usize, command: Command) -> Result<(), PostError> {
        let Some(link) = self.links.get(index) else {
            return Err(PostError::Stopped);
        };
        match link.inbox.try_send(command) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.posts_refused.fetch_add(1, Ordering::Relaxed);
                return Err(PostError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => return Err(PostError::Stopped),
        }
        if !link.wake_pending.swap(true, Ordering::AcqRel) {
            // A failed wake means the loop is gone; its inbox is then moot.
            let _ = link.waker.wake();
        }
        Ok(())
    }

    /// Loop `index` is about to drain its inbox: the next post wakes it again.
    pub fn drained(&self, index: usize) {
        if let Some(link) = self.links.get(index) {
            link.wake_pending.store(false, Ordering::Release);
        }
    }

    /// Wake every loop (shutdown).
    pub fn wake_all(&self) {
        for link in &self.links {
            let _ = link.waker.wake();
        }
    }

    /// Read the view.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Change the view.
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The statistics every loop published, summed, and each loop's own.
    pub fn stats(&self) -> (LoopStats, Vec<LoopStats>) {
        self.stats_with(None)
    }

    /// [`Bus::stats`] with the calling loop's live numbers in place of what
    /// it last published (so its own part is exact, not up to a turn old).
    pub fn stats_with(&self, own: Option<(usize, LoopStats)>) -> (LoopStats, Vec<LoopStats>) {
        let mut own = own;
        let each: Vec<LoopStats> = self
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| match own.take_if(|(o, _)| *o == i) {
                Some((_, live)) => live,
                None => l
                    .stats
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_else(|p| p.into_inner().clone()),
            })
            .collect();
        let mut sum = LoopStats::default();
        for s in &each {
            sum.metrics.add(&s.metrics);
            sum.connections += s.connections;
            sum.online += s.online;
            sum.pending_http += s.pending_http;
            sum.idle_http += s.idle_http;
        }
        (sum, each)
    }
}

/// What other loops may read of a socket.
#[derive(Debug, Default)]
pub(crate) struct SocketView {
    pub client: Option<String>,
    pub groups: Vec<String>,
    pub session: Option<Value>,
}

/// The view of an idle socket (no client id, group or session).
static NO_VIEW: SocketView = SocketView {
    client: None,
    groups: Vec::new(),
    session: None,
};

/// A group across the process.
#[derive(Debug, Default)]
pub(crate) struct GroupView {
    pub members: HashSet<SocketId, IdHash>,
    /// Members per loop.
    pub per_loop: Vec<u32>,
    /// Bound client ids among the members, with their member sockets.
    pub clients: HashMap<String, u32>,
}

/// The process-wide index (kept only with more than one loop). Each entry
/// is written by the loop that owns the socket, when it applies the change.
///
/// An idle socket (no client id, group or session) costs the view one 8-byte
/// slot of the `open` set; what other loops may read of a socket is
/// allocated in `apps` on first use and freed when it holds nothing again.
#[derive(Debug, Default)]
pub(crate) struct View {
    open: HashSet<SocketId, IdHash>,
    apps: HashMap<SocketId, Box<SocketView>, IdHash>,
    pub clients: HashMap<String, Vec<SocketId>>,
    pub groups: HashMap<String, GroupView>,
}

impl View {
    /// What other loops may read of socket `id`; `None` if it is not open.
    pub fn socket(&self, id: SocketId) -> Option<&SocketView> {
        if !self.open.contains(&id) {
            return None;
        }
        Some(self.apps.get(&id).map_or(&NO_VIEW, |v| v))
    }

    /// Whether socket `id` is open.
    pub fn is_open(&self, id: SocketId) -> bool {
        self.open.contains(&id)
    }

    /// Socket `id`'s view, to change it (allocated on first use); `None`
    /// if it is not open.
    fn socket_mut(&mut self, id: SocketId) -> Option<&mut SocketView> {
        if !self.open.contains(&id) {
            return None;
        }
        Some(self.apps.entry(id).or_default())
    }

    /// Free socket `id`'s view once it holds nothing.
    fn tidy(&mut self, id: SocketId) {
        if self
            .apps
            .get(&id)
            .is_some_and(|v| v.client.is_none() && v.groups.is_empty() && v.session.is_none())
        {
            self.apps.remove(&id);
        }
    }

    /// A socket opened.
    pub fn open(&mut self, id: SocketId) {
        self.open.insert(id);
    }

    /// A socket closed: out of every index.
    pub fn close(&mut self, id: SocketId) {
        if !self.open.remove(&id) {
            return;
        }
        let Some(socket) = self.apps.remove(&id) else {
            return;
        };
        for group in &socket.groups {
            self.remove_member(group, id, socket.client.as_deref());
        }
        if let Some(client) = &socket.client {
            self.remove_client(client, id);
        }
    }

    /// A socket was bound to `client` (or unbound, with `None`).
    pub fn bind(&mut self, id: SocketId, client: Option<&str>) {
        let Some(socket) = self.socket_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut socket.client, client.map(str::to_owned));
        let groups = socket.groups.clone();
        self.tidy(id);
        if let Some(old) = &old {
            self.remove_client(old, id);
            for g in &groups {
                if let Some(group) = self.groups.get_mut(g) {
                    uncount(&mut group.clients, old);
                }
            }
        }
        if let Some(new) = client {
            self.clients.entry(new.to_owned()).or_default().push(id);
            for g in &groups {
                if let Some(group) = self.groups.get_mut(g) {
                    *group.clients.entry(new.to_owned()).or_insert(0) += 1;
                }
            }
        }
    }

    /// A socket joined `group`.
    pub fn join(&mut self, id: SocketId, group: &str, loops: usize) {
        match self.socket(id) {
            None => return,
            Some(s) if s.groups.iter().any(|g| g == group) => return,
            Some(_) => {}
        }
        let Some(socket) = self.socket_mut(id) else {
            return;
        };
        socket.groups.push(group.to_owned());
        let client = socket.client.clone();
        let entry = self.groups.entry(group.to_owned()).or_default();
        if entry.per_loop.len() < loops {
            entry.per_loop.resize(loops, 0);
        }
        if entry.members.insert(id) {
            if let Some(n) = entry.per_loop.get_mut(usize::from(id.loop_index())) {
                *n += 1;
            }
            if let Some(client) = client {
                *entry.clients.entry(client).or_insert(0) += 1;
            }
        }
    }

    /// A socket left `group`.
    pub fn leave(&mut self, id: SocketId, group: &str) {
        let Some(at) = self
            .socket(id)
            .and_then(|s| s.groups.iter().position(|g| g == group))
        else {
            return;
        };
        let Some(socket) = self.socket_mut(id) else {
            return;
        };
        socket.groups.swap_remove(at);
        let client = socket.client.clone();
        self.tidy(id);
        self.remove_member(group, id, client.as_deref());
    }

    /// A socket's session changed.
    pub fn session(&mut self, id: SocketId, session: Option<Value>) {
        if let Some(socket) = self.socket_mut(id) {
            socket.session = session;
            self.tidy(id);
        }
    }

    /// Loops that hold members of `group`, with how many.
    pub fn group_loops(&self, group: &str) -> Vec<(usize, u32)> {
        self.groups.get(group).map_or_else(Vec::new, |g| {
            g.per_loop
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (i, *n))
                .collect()
        })
    }

    /// Loops that hold sockets of `client`, with how many.
    pub fn client_loops(&self, client: &str) -> Vec<(usize, u32)> {
        let mut per_loop: Vec<(usize, u32)> = Vec::new();
        for id in self.clients.get(client).into_iter().flatten() {
            let i = usize::from(id.loop_index());
            match per_loop.iter_mut().find(|(l, _)| *l == i) {
                Some((_, n)) => *n += 1,
                None => per_loop.push((i, 1)),
            }
        }
        per_loop
    }

    /// Bound sockets per loop.
    pub fn bound_per_loop(&self, loops: usize) -> Vec<u32> {
        let mut per_loop = vec![0; loops];
        for id in self.clients.values().flatten() {
            if let Some(n) = per_loop.get_mut(usize::from(id.loop_index())) {
                *n += 1;
            }
        }
        per_loop
    }

    fn remove_member(&mut self, group: &str, id: SocketId, client: Option<&str>) {
        let Some(entry) = self.groups.get_mut(group) else {
            return;
        };
        if entry.members.remove(&id) {
            if let Some(n) = entry.per_loop.get_mut(usize::from(id.loop_index())) {
                *n = n.saturating_sub(1);
            }
            if let Some(client) = client {
                uncount(&mut entry.clients, client);
            }
        }
        if entry.members.is_empty() {
            self.groups.remove(group);
        }
    }

    fn remove_client(&mut self, client: &str, id: SocketId) {
        if let Some(ids) = self.clients.get_mut(client) {
            ids.retain(|s| *s != id);
            if ids.is_empty() {
                self.clients.remove(client);
            }
        }
    }
}

fn uncount(counts: &mut HashMap<String, u32>, key: &str) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_stay_small() {
        // The inbox allocates INBOX_CAPACITY of them per loop.
        assert!(
            std::mem::size_of::<Command>() <= 96,
            "{}",
            std::mem::size_of::<Command>()
        );
    }

    #[test]
    fn an_idle_socket_costs_the_view_no_allocation() {
        let mut v = View::default();
        let a = SocketId::new(0, 1, 7);
        v.open(a);
        assert!(v.is_open(a) && v.apps.is_empty());
        v.bind(a, Some("alice"));
        v.join(a, "room", 2);
        assert_eq!(v.socket(a).and_then(|s| s.client.as_deref()), Some("alice"));
        v.session(a, Some(Value::Bool(true)));
        v.leave(a, "room");
        v.session(a, None);
        assert!(v.apps.contains_key(&a), "still bound");
        v.bind(a, None);
        assert!(v.apps.is_empty(), "nothing left: freed");
        assert!(v.socket(a).is_some_and(|s| s.groups.is_empty()));
        v.close(a);
        assert!(!v.is_open(a) && v.socket(a).is_none());
        v.bind(a, Some("late"));
        assert!(v.apps.is_empty() && v.clients.is_empty(), "closed: ignored");
    }

    #[test]
    fn the_view_follows_joins_binds_and_closes_across_loops() {
        let mut v = View::default();
        let (a, b) = (SocketId::new(0, 0, 1), SocketId::new(0, 1, 1));
        v.open(a);
        v.open(b);
        v.join(a, "room", 2);
        v.join(b, "room", 2);
        v.bind(a, Some("alice"));
        assert_eq!(v.group_loops("room"), vec![(0, 1), (1, 1)]);
        assert_eq!(v.groups["room"].clients.get("alice"), Some(&1));
        v.bind(b, Some("alice"));
        assert_eq!(v.client_loops("alice"), vec![(0, 1), (1, 1)]);
        assert_eq!(v.groups["room"].clients.get("alice"), Some(&2));
        v.leave(b, "room");
        assert_eq!(v.group_loops("room"), vec![(0, 1)]);
        v.close(a);
        assert!(v.groups.is_empty());
        assert_eq!(v.client_loops("alice"), vec![(1, 1)]);
        v.bind(b, None);
        assert!(v.clients.is_empty());
        assert_eq!(v.bound_per_loop(2), vec![0, 0]);
    }
}
