//! Sending: to one socket, a client's sockets, a group, everyone; a
//! fan-out encodes its frame once and shares it; client-initiated sends
//! are paid for by recipients × bytes.

use std::borrow::Cow;
use std::sync::Arc;

use gmws_protocol::encoder::frame_len;
use gmws_protocol::OpCode;

use super::deferred::Deferred;
use super::payload::Payload;
use super::Hub;
use crate::bus::{Command, Target, View};
use crate::cluster::wire::WireTarget;
use crate::compression::Outgoing;
use crate::socket_id::SocketId;

/// Who a send reaches: see [`Hub::audience`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience<'a> {
    /// One socket.
    Socket(SocketId),
    /// Every socket bound to a client id.
    Client(&'a str),
    /// Every member of a group.
    Group(&'a str),
    /// Every open socket.
    All,
    /// Every bound socket.
    AllClients,
}

/// Why a message to one socket did not go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No socket has this id: it never did, or it closed and is gone.
    UnknownSocket,
    /// The socket is closing: it takes no more messages.
    Closing,
    /// The socket could not take this message: it was closed for
    /// backpressure (1008) instead.
    Backpressure,
    /// The socket's loop is behind: its inbox is full (counted in
    /// `/metrics`); nothing was sent.
    Busy,
    /// The socket is on another node and the cluster (Redis) is
    /// unreachable: nothing was sent (counted in `/metrics`).
    ClusterUnreachable,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::UnknownSocket => "no such socket",
            SendError::Closing => "the socket is closing",
            SendError::Backpressure => "the socket was closed for backpressure",
            SendError::Busy => "the socket's loop is behind (its inbox is full)",
            SendError::ClusterUnreachable => {
                "the socket's node is unreachable (the cluster is down)"
            }
        })
    }
}

impl std::error::Error for SendError {}

/// A payload's opcode and bytes (a JSON value serialised here, once).
pub(crate) fn encode(payload: Payload<'_>) -> (OpCode, Cow<'_, [u8]>) {
    match payload {
        Payload::Text(t) => (OpCode::Text, Cow::Borrowed(t.as_bytes())),
        Payload::Binary(b) => (OpCode::Binary, Cow::Borrowed(b)),
        Payload::Json(v) => (
            OpCode::Text,
            Cow::Owned(serde_json::to_vec(v).unwrap_or_default()),
        ),
    }
}

impl Hub {
    /// Whether `socket` lives on another loop of this process.
    pub(crate) fn is_remote(&self, socket: SocketId) -> bool {
        socket.loop_index() != self.loop_index
    }

    /// Queue one frame to each of `local` (this loop's sockets) that is
    /// online, and post it to every loop in `remote` (loop index and how
    /// many recipients it holds, as the view counts them) for `target`.
    /// Returns the sockets written to here plus those posted for. The frame
    /// is encoded once and shared by every recipient's queue, here and on
    /// the other loops.
    fn deliver(
        &mut self,
        local: &[SocketId],
        remote: &[(usize, u32)],
        target: impl Fn() -> Target,
        opcode: OpCode,
        bytes: &[u8],
    ) -> usize {
        if remote.is_empty() {
            if let [single] = local {
                // One recipient: encode straight into its queue (or its socket).
                self.spend_fanout(1, frame_len(bytes.len(), false));
                return usize::from(
                    self.online_key(*single)
                        .is_some_and(|key| self.queue_frame(key, opcode, bytes)),
                );
            }
        }
        if local.is_empty() && remote.is_empty() {
            return 0;
        }
        let frame = self.shared_frame(opcode, bytes);
        let mut delivered = self.fan_out_frame(local, &frame, bytes.len());
        for &(index, recipients) in remote {
            let command = Command::Send {
                target: target(),
                frame: frame.clone(),
                payload_len: bytes.len(),
            };
            match self.bus.post(index, command) {
                Ok(()) => delivered += recipients as usize,
                Err(e) => log::warn!("send to loop {index}: {e}; {recipients} recipients missed"),
            }
        }
        delivered
    }

    /// Queue `frame` (of a `payload_len`-byte message; compressed for the
    /// sockets that negotiated it) to each of this loop's `targets` that is
    /// online; returns how many.
    ///
    /// The targets are looked up first and written in slot order, not in
    /// the order given (a group's members come from a hash set, in no
    /// order): the connections are then read in the order they lie in
    /// memory, and the kernel meets the sockets (and their descriptors)
    /// mostly in the order it made them. Measured on a 10,000-member group:
    /// ~15 % less CPU per delivery than in hash order (README, fan-out).
    pub(crate) fn fan_out_frame(
        &mut self,
        targets: &[SocketId],
        frame: &Outgoing,
        payload_len: usize,
    ) -> usize {
        self.spend_fanout(targets.len(), frame.plain().len());
        let mut keys: Vec<usize> = targets
            .iter()
            .filter_map(|&id| self.online_key(id))
            .collect();
        keys.sort_unstable();
        // Idle sockets past the turn's write bound are listed to be written
        // in later turns, unless another fan-out is still being written so.
        let mut later = (self.defer_fanout && self.deferred.is_none()).then(Vec::new);
        let mut delivered = 0;
        for key in keys {
            let (window, context) = self
                .conns
                .get(key)
                .map_or((0, false), |c| (c.deflate, c.deflate_context));
            if context {
                // Its own compressor: compressed for it alone (the
                // parameters do not allow sharing).
                if let Some((opcode, payload)) = frame.message() {
                    delivered += usize::from(self.queue_frame(key, opcode, payload));
                }
                continue;
            }
            let shared = frame.frame_for(window, payload_len, &mut self.compression, &self.gauge);
            if !std::ptr::eq(shared, frame.plain()) {
                self.metrics.messages_compressed += 1;
            }
            delivered += usize::from(self.queue_shared(key, shared, payload_len, later.as_mut()));
        }
        if let Some(later) = later.filter(|l| !l.is_empty()) {
            self.deferred = Some(Box::new(Deferred::new(frame.clone(), payload_len, later)));
        }
        delivered
    }

    /// How many sockets a send to `target` would reach now (for rate limits
    /// weighted by recipients), across the process.
    pub fn audience(&self, target: Audience<'_>) -> usize {
        match target {
            Audience::Socket(id) => usize::from(self.is_socket_online(id)),
            Audience::Client(client) => self.client_sockets(client).len(),
            Audience::Group(group) => self.group_sockets_count(group),
            Audience::All => self.online_sockets(),
            Audience::AllClients if self.bus.shared() => {
                self.bus.read().clients.values().map(Vec::len).sum()
            }
            Audience::AllClients => self.clients.values().map(Vec::len).sum(),
        }
    }

    /// Send `payload` to this node's `socket` once the node's subscription
    /// to `group`'s channel is confirmed by Redis
    /// ([`crate::cluster::Cluster::when_group_ready`]): from then on every
    /// message another node publishes to the group reaches the socket. The
    /// gateway answers `join` with it. Without a cluster, with the channel
    /// confirmed already or with Redis unreachable, it is
    /// [`Hub::send_to_socket`] now; otherwise the message is posted to the
    /// socket's loop when Redis confirms (or after the Redis command
    /// timeout), so it may arrive after messages sent later to the socket.
    pub fn send_when_group_ready<'a>(
        &mut self,
        socket: SocketId,
        group: &str,
        payload: impl Into<Payload<'a>>,
    ) -> Result<(), SendError> {
        let payload = payload.into();
        if let Some(cluster) = self
            .bus
            .cluster
            .clone()
            .filter(|c| socket.node() == self.node && !c.is_group_ready(group))
        {
            let (opcode, bytes) = encode(payload);
            let frame = self.shared_frame(opcode, &bytes);
            let payload_len = bytes.len();
            let bus = Arc::clone(&self.bus);
            let post = move |_confirmed: bool| {
                let command = Command::Send {
                    target: Target::Socket(socket),
                    frame,
                    payload_len,
                };
                if let Err(e) = bus.post(usize::from(socket.loop_index()), command) {
                    log::warn!("socket {socket}: a held reply was lost: {e}");
                }
            };
            if cluster.when_group_ready(group, post).is_none() {
                return Ok(());
            }
        }
        self.send_to_socket(socket, payload)
    }

    /// Queue a message to one socket (of any loop: one of another loop gets
    /// it when that loop next turns; at most once, like every send).
    pub fn send_to_socket<'a>(
        &mut self,
        socket: SocketId,
        payload: impl Into<Payload<'a>>,
    ) -> Result<(), SendError> {
        if self.bus.cluster.is_some() && socket.node() != self.node {
            let (opcode, bytes) = encode(payload.into());
            self.cross(WireTarget::Socket(socket), opcode == OpCode::Binary, &bytes);
            return self
                .cluster_send_result()
                .map_err(|_| SendError::ClusterUnreachable);
        }
        self.cross_nothing();
        self.sendable(socket)?;
        if self.is_remote(socket) {
            let (opcode, bytes) = encode(payload.into());
            let frame = self.shared_frame(opcode, &bytes);
            let command = Command::Send {
                target: Target::Socket(socket),
                frame,
                payload_len: bytes.len(),
            };
            return self
                .bus
                .post(usize::from(socket.loop_index()), command)
                .map_err(|_| SendError::Busy);
        }
        let (opcode, bytes) = encode(payload.into());
        if self.deliver(&[socket], &[], || Target::Socket(socket), opcode, &bytes) == 1 {
            Ok(())
        } else {
            Err(SendError::Backpressure)
        }
    }

    /// Queue a message to every socket bound to `client_id`, on every loop;
    /// returns how many.
    pub fn send_to_client<'a>(
        &mut self,
        client_id: &str,
        payload: impl Into<Payload<'a>>,
    ) -> usize {
        let local = self.clients.get(client_id).cloned().unwrap_or_default();
        let remote = self.other_loops(|view| view.client_loops(client_id));
        let client: Arc<str> = Arc::from(client_id);
        let (opcode, bytes) = encode(payload.into());
        let delivered = self.deliver(
            &local,
            &remote,
            || Target::Client(Arc::clone(&client)),
            opcode,
            &bytes,
        );
        self.cross(
            WireTarget::Client(client_id.to_owned()),
            opcode == OpCode::Binary,
            &bytes,
        );
        delivered
    }

    /// Queue a message to every open socket, bound or not; returns how many.
    pub fn send_to_all<'a>(&mut self, payload: impl Into<Payload<'a>>) -> usize {
        let local: Vec<SocketId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_open())
            .map(|(_, c)| c.id)
            .collect();
        let remote = self.other_loops(|_| {
            let (_, each) = self.bus.stats();
            each.iter()
                .enumerate()
                .map(|(i, s)| (i, s.online as u32))
                .collect()
        });
        let (opcode, bytes) = encode(payload.into());
        let delivered = self.deliver(&local, &remote, || Target::All, opcode, &bytes);
        self.cross(WireTarget::All, opcode == OpCode::Binary, &bytes);
        delivered
    }

    /// Queue a message to every socket bound to a client id; returns how many.
    pub fn send_to_all_clients<'a>(&mut self, payload: impl Into<Payload<'a>>) -> usize {
        let local: Vec<SocketId> = self.clients.values().flatten().copied().collect();
        let loops = self.bus.loops();
        let remote = self.other_loops(|view| {
            view.bound_per_loop(loops)
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .collect()
        });
        let (opcode, bytes) = encode(payload.into());
        let delivered = self.deliver(&local, &remote, || Target::AllClients, opcode, &bytes);
        self.cross(WireTarget::AllClients, opcode == OpCode::Binary, &bytes);
        delivered
    }

    /// Queue a message to every member of `group`, on every loop, except
    /// those in `exclude`; returns how many.
    pub fn send_to_group<'a>(
        &mut self,
        group: &str,
        payload: impl Into<Payload<'a>>,
        exclude: &[SocketId],
    ) -> usize {
        let local: Vec<SocketId> = match self.groups.get(group) {
            Some(g) => g
                .sockets
                .iter()
                .filter(|id| !exclude.contains(id))
                .copied()
                .collect(),
            None => Vec::new(),
        };
        let remote = self.other_loops(|view| {
            let mut loops = view.group_loops(group);
            for (index, n) in &mut loops {
                let excluded = exclude
                    .iter()
                    .filter(|id| usize::from(id.loop_index()) == *index)
                    .filter(|id| {
                        view.groups
                            .get(group)
                            .is_some_and(|g| g.members.contains(id))
                    })
                    .count();
                *n = n.saturating_sub(excluded as u32);
            }
            loops
        });
        let (opcode, bytes) = encode(payload.into());
        let wire = WireTarget::Group(group.to_owned(), exclude.to_vec());
        let (group, exclude): (Arc<str>, Arc<[SocketId]>) = (Arc::from(group), Arc::from(exclude));
        let delivered = self.deliver(
            &local,
            &remote,
            || Target::Group(Arc::clone(&group), Arc::clone(&exclude)),
            opcode,
            &bytes,
        );
        self.cross(wire, opcode == OpCode::Binary, &bytes);
        delivered
    }

    /// The other loops `select` picks from the view (none with one loop).
    pub(super) fn other_loops(
        &self,
        select: impl FnOnce(&View) -> Vec<(usize, u32)>,
    ) -> Vec<(usize, u32)> {
        if !self.bus.shared() {
            return Vec::new();
        }
        let mut loops = select(&self.bus.read());
        loops.retain(|(index, _)| *index != usize::from(self.loop_index));
        loops
    }

    /// Apply a frame another loop posted: queue it to this loop's recipients.
    pub(crate) fn apply_send(&mut self, target: Target, frame: &Outgoing, payload_len: usize) {
        let targets: Vec<SocketId> = match target {
            Target::Socket(id) => vec![id],
            Target::Client(client) => self.clients.get(&client).cloned().unwrap_or_default(),
            Target::Group(group, exclude) => match self.groups.get(&group) {
                Some(g) => g
                    .sockets
                    .iter()
                    .filter(|id| !exclude.contains(id))
                    .copied()
                    .collect(),
                None => Vec::new(),
            },
            Target::All => self
                .conns
                .iter()
                .filter(|(_, c)| c.is_open())
                .map(|(_, c)| c.id)
                .collect(),
            Target::AllClients => self.clients.values().flatten().copied().collect(),
        };
        self.fan_out_frame(&targets, frame, payload_len);
    }

    /// Charge a client-initiated send of `cost` delivery bytes (recipients ×
    /// frame bytes) to `socket`'s allowance: a token bucket holding up to
    /// `client_fanout_burst` bytes, refilled at `client_fanout_rate` bytes per
    /// second. A send is allowed while the bucket is not empty and may take
    /// it below zero, so one message of any allowed size can always go out;
    /// the debt is then paid off by waiting. False (nothing charged) when
    /// the send must wait. A rate of 0 turns the limit off.
    pub fn charge_fanout(&mut self, socket: SocketId, cost: usize) -> bool {
        let (rate, burst) = (
            self.config.client_fanout_rate,
            self.config.client_fanout_burst,
        );
        if rate == 0 {
            return true;
        }
        let now = self.now;
        let Ok(app) = self.app_mut(socket) else {
            return false;
        };
        let burst = i64::try_from(burst).unwrap_or(i64::MAX);
        let (tokens, at) = app.fanout.get_or_insert((burst, now));
        let refill = (u128::from(now.saturating_sub(*at)) * u128::from(rate) / 1000)
            .min(u128::from(u64::MAX)) as u64;
        if refill > 0 {
            *tokens = tokens
                .saturating_add(i64::try_from(refill).unwrap_or(i64::MAX))
                .min(burst);
            *at = now;
        }
        if *tokens <= 0 {
            return false;
        }
        *tokens = tokens.saturating_sub(i64::try_from(cost).unwrap_or(i64::MAX));
        true
    }
}
