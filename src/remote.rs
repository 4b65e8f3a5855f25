//! The [`Remote`]: the hub's sends, joins and closes for threads that are not
//! an event loop (a database worker, a queue consumer). Work is posted to the
//! loops that own the sockets through their bounded inboxes and they are
//! woken; a full inbox is an error returned to the caller (and counted in
//! `/metrics` as `gmws_bus_posts_refused_total`), never unbounded memory.
//!
//! A message is encoded once and the same frame is posted to each loop that
//! may hold recipients (O(loops) posts, never O(recipients)); each loop finds
//! its own recipients when it applies the post. Like every send, delivery is
//! at most once: a socket that closes meanwhile does not get it.
//!
//! In a cluster the same sends are also published to the other nodes (one
//! PUBLISH each); when Redis is unreachable they reach this node's sockets
//! and return [`PostError::ClusterUnreachable`].

use std::sync::Arc;

use gmws_protocol::encoder::encode_frame;
use gmws_protocol::OpCode;
use serde_json::{Map, Value};

use crate::bus::{Bus, Command, PostError, Target};
use crate::close::CloseCode;
use crate::cluster::wire::{SocketOp, WireTarget};
use crate::compression::Outgoing;
use crate::config::Config;
use crate::hub::{Hub, Payload};
use crate::outqueue::SharedFrame;
use crate::socket_id::SocketId;

/// Why a [`Remote`] call did not post.
pub type RemoteError = PostError;

/// A `Send + Sync + Clone` handle to a running server's loops. Take one with
/// [`crate::Server::remote`] before `run`.
#[derive(Clone)]
pub struct Remote {
    bus: Arc<Bus>,
    config: Arc<Config>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("loops", &self.bus.loops())
            .finish()
    }
}

impl Remote {
    pub(crate) fn new(bus: Arc<Bus>, config: Arc<Config>) -> Remote {
        Remote { bus, config }
    }

    /// How many loops the server runs.
    pub fn loops(&self) -> usize {
        self.bus.loops()
    }

    /// Publish to the other nodes (nothing without a cluster).
    fn cross(&self, target: WireTarget, opcode: OpCode, bytes: &[u8]) -> Result<(), RemoteError> {
        match &self.bus.cluster {
            Some(cluster) => cluster
                .publish(&target, opcode == OpCode::Binary, bytes)
                .map_err(|_| PostError::ClusterUnreachable),
            None => Ok(()),
        }
    }

    fn frame(&self, opcode: OpCode, bytes: &[u8]) -> (Outgoing, usize) {
        let mut frame = Vec::with_capacity(bytes.len() + 14);
        encode_frame(&mut frame, opcode, true, bytes, None);
        // Compressible: each loop applies its compression_min_size.
        let frame = Outgoing::new(SharedFrame::new(frame, &self.bus.gauge), true);
        (frame, bytes.len())
    }

    /// Post one frame to every loop, each for its own recipients in
    /// `target`, and publish it to the other nodes as `wire`. Posted to this
    /// node's loops but not published: [`PostError::ClusterUnreachable`].
    fn broadcast(
        &self,
        payload: Payload<'_>,
        target: impl Fn() -> Target,
        wire: WireTarget,
    ) -> Result<usize, RemoteError> {
        let (opcode, bytes) = crate::hub::encode(payload);
        let crossed = self.cross(wire, opcode, &bytes);
        let (frame, payload_len) = self.frame(opcode, &bytes);
        let mut posted = 0;
        let mut last_error = None;
        for index in 0..self.bus.loops() {
            let command = Command::Send {
                target: target(),
                frame: frame.clone(),
                payload_len,
            };
            match self.bus.post(index, command) {
                Ok(()) => posted += 1,
                Err(e) => last_error = Some(e),
            }
        }
        match (posted, last_error) {
            (0, Some(e)) => Err(e),
            _ => crossed.map(|()| posted),
        }
    }

    fn owner(&self, socket: SocketId) -> Result<usize, RemoteError> {
        let index = usize::from(socket.loop_index());
        if index < self.bus.loops() {
            Ok(index)
        } else {
            Err(PostError::Stopped)
        }
    }

    /// Queue a message to one socket (on its loop's next turn).
    pub fn send_to_socket<'a>(
        &self,
        socket: SocketId,
        payload: impl Into<Payload<'a>>,
    ) -> Result<(), RemoteError> {
        let (opcode, bytes) = crate::hub::encode(payload.into());
        if self
            .bus
            .cluster
            .as_ref()
            .is_some_and(|c| c.node() != socket.node())
        {
            return self.cross(WireTarget::Socket(socket), opcode, &bytes);
        }
        let index = self.owner(socket)?;
        let (frame, payload_len) = self.frame(opcode, &bytes);
        self.bus.post(
            index,
            Command::Send {
                target: Target::Socket(socket),
                frame,
                payload_len,
            },
        )
    }

    /// Queue a message to every socket bound to `client_id`; returns how
    /// many loops it was posted to.
    pub fn send_to_client<'a>(
        &self,
        client_id: &str,
        payload: impl Into<Payload<'a>>,
    ) -> Result<usize, RemoteError> {
        let client: Arc<str> = Arc::from(client_id);
        self.broadcast(
            payload.into(),
            || Target::Client(Arc::clone(&client)),
            WireTarget::Client(client_id.to_owned()),
        )
    }

    /// Queue a message to every member of `group` except `exclude`.
    pub fn send_to_group<'a>(
        &self,
        group: &str,
        payload: impl Into<Payload<'a>>,
        exclude: &[SocketId],
    ) -> Result<usize, RemoteError> {
        let wire = WireTarget::Group(group.to_owned(), exclude.to_vec());
        let (group, exclude): (Arc<str>, Arc<[SocketId]>) = (Arc::from(group), Arc::from(exclude));
        self.broadcast(
            payload.into(),
            || Target::Group(Arc::clone(&group), Arc::clone(&exclude)),
            wire,
        )
    }

    /// Queue a message to every open socket.
    pub fn send_to_all<'a>(&self, payload: impl Into<Payload<'a>>) -> Result<usize, RemoteError> {
        self.broadcast(payload.into(), || Target::All, WireTarget::All)
    }

    /// Queue a message to every bound socket.
    pub fn send_to_all_clients<'a>(
        &self,
        payload: impl Into<Payload<'a>>,
    ) -> Result<usize, RemoteError> {
        self.broadcast(
            payload.into(),
            || Target::AllClients,
            WireTarget::AllClients,
        )
    }

    /// The cluster, when `socket` lives on another of its nodes.
    fn other_node(&self, socket: SocketId) -> Option<&Arc<crate::cluster::Cluster>> {
        self.bus
            .cluster
            .as_ref()
            .filter(|c| c.is_other_node(socket))
    }

    /// Ask `socket`'s node to apply `op` (one PUBLISH).
    fn socket_op(&self, socket: SocketId, op: SocketOp) -> Option<Result<(), RemoteError>> {
        self.other_node(socket).map(|cluster| {
            cluster
                .socket_op(socket, op)
                .map_err(|_| PostError::ClusterUnreachable)
        })
    }

    /// Add `socket` to `group` (applied, and checked, by its loop; a socket
    /// of another node by that node, asked through one PUBLISH:
    /// [`PostError::ClusterUnreachable`] when Redis is not reachable).
    pub fn join_group(&self, socket: SocketId, group: &str) -> Result<(), RemoteError> {
        if let Some(r) = self.socket_op(socket, SocketOp::Join(group.to_owned())) {
            return r;
        }
        self.bus
            .post(self.owner(socket)?, Command::Join(socket, group.to_owned()))
    }

    /// Remove `socket` from `group` (of any node, as [`Remote::join_group`]).
    pub fn leave_group(&self, socket: SocketId, group: &str) -> Result<(), RemoteError> {
        if let Some(r) = self.socket_op(socket, SocketOp::Leave(group.to_owned())) {
            return r;
        }
        self.bus.post(
            self.owner(socket)?,
            Command::Leave(socket, group.to_owned()),
        )
    }

    /// Dissolve `group` on every loop.
    pub fn ungroup(&self, group: &str) -> Result<(), RemoteError> {
        let group: Arc<str> = Arc::from(group);
        for index in 0..self.bus.loops() {
            self.bus.post(index, Command::Ungroup(Arc::clone(&group)))?;
        }
        Ok(())
    }

    /// Bind `socket` to `client_id`.
    pub fn bind_client(&self, socket: SocketId, client_id: &str) -> Result<(), RemoteError> {
        self.bus.post(
            self.owner(socket)?,
            Command::Bind(socket, client_id.to_owned()),
        )
    }

    /// Close `socket` with `code` and `reason` (of any node, as
    /// [`Remote::join_group`]; its node checks the code).
    pub fn close_socket(
        &self,
        socket: SocketId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), RemoteError> {
        if let Some(r) = self.socket_op(socket, SocketOp::Close(code.0, reason.to_owned())) {
            return r;
        }
        self.bus.post(
            self.owner(socket)?,
            Command::Close(socket, code, reason.to_owned()),
        )
    }

    /// Replace `socket`'s session (refused by its loop past `max_session_size`).
    pub fn set_session(&self, socket: SocketId, session: Value) -> Result<(), RemoteError> {
        self.bus
            .post(self.owner(socket)?, Command::SetSession(socket, session))
    }

    /// Merge `fields` into `socket`'s session.
    pub fn update_session(
        &self,
        socket: SocketId,
        fields: Map<String, Value>,
    ) -> Result<(), RemoteError> {
        self.bus
            .post(self.owner(socket)?, Command::UpdateSession(socket, fields))
    }

    /// Run `f` on loop `loop_index` with its hub (for what the calls above do
    /// not cover, e.g. reading a socket's data where it lives). It must not
    /// block, as every hook.
    pub fn run_on(
        &self,
        loop_index: usize,
        f: impl FnOnce(&mut Hub) + Send + 'static,
    ) -> Result<(), RemoteError> {
        self.bus.post(loop_index, Command::Run(Box::new(f)))
    }

    /// Run `f` on the loop that owns `socket`.
    pub fn run_for(
        &self,
        socket: SocketId,
        f: impl FnOnce(&mut Hub) + Send + 'static,
    ) -> Result<(), RemoteError> {
        self.run_on(self.owner(socket)?, f)
    }

    /// This node's cluster (`cluster_redis` set).
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.bus.cluster.as_ref()
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
