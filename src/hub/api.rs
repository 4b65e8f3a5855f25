//! The seed's API beyond sending: client binding, groups, sessions, error
//! replies (user timers are in `user_timers`).

use serde_json::{Map, Value};

use super::{millis, Hub};
use std::sync::Arc;

use crate::bus::Command;
use crate::cluster::wire::SocketOp;
use crate::socket_app::SocketApp;
use crate::socket_id::SocketId;

/// Why a hub operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// The socket is not an open WebSocket (closed, closing, or a stale id).
    NotOnline,
    /// The socket is in `max_groups_per_socket` groups already.
    TooManyGroups,
    /// The group name is empty or longer than `max_group_name`.
    BadGroupName,
    /// The client id is empty or longer than `max_client_id`.
    BadClientId,
    /// The socket's group names would pass `max_group_bytes_per_socket`.
    GroupBytesExceeded,
    /// The session would serialise to more than `max_session_size` bytes.
    SessionTooLarge,
    /// The close code may not be sent on the wire.
    InvalidCloseCode,
    /// The socket's loop is behind (its inbox is full); nothing was done.
    Busy,
    /// The socket lives on another node and the cluster (Redis) is
    /// unreachable: nothing was done.
    ClusterUnreachable,
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HubError::NotOnline => "socket not online",
            HubError::TooManyGroups => "too many groups for this socket",
            HubError::BadGroupName => "group name empty or too long",
            HubError::BadClientId => "client id empty or too long",
            HubError::GroupBytesExceeded => {
                "the socket's group names are over max_group_bytes_per_socket"
            }
            HubError::SessionTooLarge => "session over max_session_size",
            HubError::InvalidCloseCode => "close code not valid on the wire",
            HubError::Busy => "the socket's loop is behind (its inbox is full)",
            HubError::ClusterUnreachable => {
                "the socket's node is unreachable (the cluster is down)"
            }
        })
    }
}

impl std::error::Error for HubError {}

impl Hub {
    /// `socket`'s state changed size: measure it again and count it.
    fn app_changed(&mut self, socket: SocketId) {
        if let Some(app) = self.conn_mut(socket).and_then(|c| c.app.as_deref_mut()) {
            app.bytes = app.measure();
        }
        if let Some(key) = self.key(socket) {
            self.account(key);
        }
    }

    pub(super) fn app_mut(&mut self, socket: SocketId) -> Result<&mut SocketApp, HubError> {
        match self.conn_mut(socket) {
            Some(conn) if conn.is_open() => Ok(conn.app.get_or_insert_with(Default::default)),
            _ => Err(HubError::NotOnline),
        }
    }

    /// A socket's data for reading: also while it closes, so `on_close` can
    /// still see its client id, groups and session (they are dropped after).
    fn app(&self, socket: SocketId) -> Option<&SocketApp> {
        self.conn(socket).and_then(|c| c.app.as_deref())
    }

    /// Add `socket` to `group`. `Ok(false)` if it was a member already. A
    /// socket of another loop is added when that loop applies it (`Ok(true)`
    /// once posted; that loop checks the limits and logs a refusal). A
    /// socket of another node of the cluster likewise, through one PUBLISH
    /// on that node's channel (`Ok(true)` once published;
    /// [`HubError::ClusterUnreachable`] when Redis is not reachable).
    pub fn join_group(&mut self, socket: SocketId, group: &str) -> Result<bool, HubError> {
        if group.is_empty() || group.len() > self.settings.max_group_name {
            return Err(HubError::BadGroupName);
        }
        if let Some(cluster) = self.other_node(socket) {
            return cluster
                .socket_op(socket, SocketOp::Join(group.to_owned()))
                .map(|()| true)
                .map_err(|_| HubError::ClusterUnreachable);
        }
        if self.is_remote(socket) {
            let member = self.remote_member(socket, group);
            return match member {
                None => Err(HubError::NotOnline),
                Some(true) => Ok(false),
                Some(false) => self
                    .post_to(socket, Command::Join(socket, group.to_owned()))
                    .map(|()| true),
            };
        }
        let (max, max_bytes) = (
            self.settings.max_groups_per_socket,
            self.settings.max_group_bytes,
        );
        let app = self.app_mut(socket)?;
        if app.groups.iter().any(|g| g == group) {
            return Ok(false);
        }
        if app.groups.len() >= max {
            return Err(HubError::TooManyGroups);
        }
        if app.groups.iter().map(String::len).sum::<usize>() + group.len() > max_bytes {
            return Err(HubError::GroupBytesExceeded);
        }
        app.groups.push(group.to_owned());
        let client = app.client_id.clone();
        self.groups.add(group, socket, client.as_deref());
        if let Some(mut interest) = self.interest() {
            interest.join(group, socket, client.as_deref());
        }
        self.app_changed(socket);
        if self.bus.shared() {
            let loops = self.bus.loops();
            self.bus.write().join(socket, group, loops);
        }
        Ok(true)
    }

    /// Whether another loop's `socket` is in `group`, by the process-wide
    /// view (`None`: not online).
    fn remote_member(&self, socket: SocketId, group: &str) -> Option<bool> {
        self.bus
            .read()
            .socket(socket)
            .map(|s| s.groups.iter().any(|g| g == group))
    }

    /// Remove `socket` from `group`. False if it was not a member. A socket
    /// of another node is asked to leave through one PUBLISH (true once
    /// published; false, and logged, when the cluster is unreachable).
    pub fn leave_group(&mut self, socket: SocketId, group: &str) -> bool {
        if let Some(cluster) = self.other_node(socket) {
            return match cluster.socket_op(socket, SocketOp::Leave(group.to_owned())) {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("socket {socket}: leave {group:?} not sent to its node: {e}");
                    false
                }
            };
        }
        if self.is_remote(socket) {
            let member = self.remote_member(socket, group) == Some(true);
            return member
                && self
                    .post_to(socket, Command::Leave(socket, group.to_owned()))
                    .is_ok();
        }
        let Ok(app) = self.app_mut(socket) else {
            return false;
        };
        let Some(pos) = app.groups.iter().position(|g| g == group) else {
            return false;
        };
        app.groups.swap_remove(pos);
        let client = app.client_id.clone();
        let removed = self.groups.remove(group, socket, client.as_deref());
        if let Some(mut interest) = self.interest() {
            interest.leave(group, socket);
        }
        self.app_changed(socket);
        if self.bus.shared() {
            self.bus.write().leave(socket, group);
        }
        removed
    }

    /// Dissolve `group`: every member leaves, on every loop. Returns how
    /// many members it had (those of other loops leave when their loop
    /// applies it).
    pub fn ungroup(&mut self, group: &str) -> usize {
        let mut count = 0;
        let remote = self.other_loops(|view| view.group_loops(group));
        let name: Arc<str> = Arc::from(group);
        for (index, members) in remote {
            if self
                .bus
                .post(index, Command::Ungroup(Arc::clone(&name)))
                .is_ok()
            {
                count += members as usize;
            }
        }
        count + self.ungroup_local(group)
    }

    /// Dissolve `group` on this loop only; returns how many members left.
    pub(crate) fn ungroup_local(&mut self, group: &str) -> usize {
        let Some(members) = self.groups.take(group) else {
            return 0;
        };
        for id in &members.sockets {
            if let Some(app) = self.conn_mut(*id).and_then(|c| c.app.as_deref_mut()) {
                app.groups.retain(|g| g != group);
            }
            if let Some(mut interest) = self.interest() {
                interest.leave(group, *id);
            }
            self.app_changed(*id);
            if self.bus.shared() {
                self.bus.write().leave(*id, group);
            }
        }
        members.sockets.len()
    }

    /// Post `command` to the loop of `socket`.
    fn post_to(&self, socket: SocketId, command: Command) -> Result<(), HubError> {
        self.bus
            .post(usize::from(socket.loop_index()), command)
            .map_err(|_| HubError::Busy)
    }

    /// How many sockets are in `group`.
    pub fn group_sockets_count(&self, group: &str) -> usize {
        if self.bus.shared() {
            return self
                .bus
                .read()
                .groups
                .get(group)
                .map_or(0, |g| g.members.len());
        }
        self.groups.get(group).map_or(0, |g| g.sockets.len())
    }

    /// How many distinct bound client ids have a socket in `group`.
    pub fn group_clients_count(&self, group: &str) -> usize {
        if self.bus.shared() {
            return self
                .bus
                .read()
                .groups
                .get(group)
                .map_or(0, |g| g.clients.len());
        }
        self.groups.get(group).map_or(0, |g| g.clients.len())
    }

    /// The sockets in `group` (in no particular order).
    pub fn group_members(&self, group: &str) -> Vec<SocketId> {
        if self.bus.shared() {
            return self
                .bus
                .read()
                .groups
                .get(group)
                .map_or_else(Vec::new, |g| g.members.iter().copied().collect());
        }
        self.groups
            .get(group)
            .map_or_else(Vec::new, |g| g.sockets.iter().copied().collect())
    }

    /// How many groups have members.
    pub fn groups_count(&self) -> usize {
        if self.bus.shared() {
            return self.bus.read().groups.len();
        }
        self.groups.len()
    }

    /// The groups `socket` is in.
    pub fn socket_groups(&self, socket: SocketId) -> Vec<String> {
        if self.is_remote(socket) {
            return self
                .bus
                .read()
                .socket(socket)
                .map_or_else(Vec::new, |s| s.groups.clone());
        }
        self.app(socket).map_or_else(Vec::new, |a| a.groups.clone())
    }

    /// Bind `socket` to `client_id` (rebinding moves it from its previous id).
    /// One client id may hold several sockets (several tabs).
    pub fn bind_client(&mut self, socket: SocketId, client_id: &str) -> Result<(), HubError> {
        if client_id.is_empty() || client_id.len() > self.settings.max_client_id {
            return Err(HubError::BadClientId);
        }
        if self.is_remote(socket) {
            if !self.is_socket_online(socket) {
                return Err(HubError::NotOnline);
            }
            return self.post_to(socket, Command::Bind(socket, client_id.to_owned()));
        }
        let app = self.app_mut(socket)?;
        let old = app.client_id.replace(client_id.to_owned());
        let groups = app.groups.clone();
        if old.as_deref() == Some(client_id) {
            return Ok(());
        }
        if let Some(old) = &old {
            self.clients.remove(old, socket);
        }
        self.clients.add(client_id, socket);
        if let Some(mut interest) = self.interest() {
            if let Some(old) = &old {
                interest.unbind(old, socket);
            }
            interest.bind(client_id, socket);
            interest.member_client(&groups, socket, Some(client_id));
        }
        for group in &groups {
            self.groups
                .set_client(group, old.as_deref(), Some(client_id));
        }
        if let Some(conn) = self.conn_mut(socket) {
            if let Some(t) = conn.auth_deadline.take() {
                self.timers.cancel(t);
            }
        }
        self.app_changed(socket);
        if self.bus.shared() {
            self.bus.write().bind(socket, Some(client_id));
        }
        Ok(())
    }

    /// Unbind `socket` from its client id; returns the id it had.
    pub fn unbind_client(&mut self, socket: SocketId) -> Option<String> {
        if self.is_remote(socket) {
            let old = self.bus.read().socket(socket)?.client.clone()?;
            return self
                .post_to(socket, Command::Unbind(socket))
                .ok()
                .map(|()| old);
        }
        let app = self.app_mut(socket).ok()?;
        let old = app.client_id.take()?;
        let groups = app.groups.clone();
        self.clients.remove(&old, socket);
        if let Some(mut interest) = self.interest() {
            interest.unbind(&old, socket);
            interest.member_client(&groups, socket, None);
        }
        for group in &groups {
            self.groups.set_client(group, Some(&old), None);
        }
        self.app_changed(socket);
        if self.bus.shared() {
            self.bus.write().bind(socket, None);
        }
        Some(old)
    }

    /// The client id `socket` is bound to (a socket of this loop; for any
    /// socket of the process, [`Hub::client_id_of`]).
    pub fn client_id(&self, socket: SocketId) -> Option<&str> {
        self.app(socket).and_then(|a| a.client_id.as_deref())
    }

    /// The client id of any socket of the process.
    pub fn client_id_of(&self, socket: SocketId) -> Option<String> {
        if self.is_remote(socket) {
            return self.bus.read().socket(socket)?.client.clone();
        }
        self.client_id(socket).map(str::to_owned)
    }

    /// Whether any open socket of the process is bound to `client_id`.
    pub fn is_client_online(&self, client_id: &str) -> bool {
        if self.bus.shared() {
            return self.bus.read().clients.contains_key(client_id);
        }
        self.clients.get(client_id).is_some_and(|s| !s.is_empty())
    }

    /// The open sockets bound to `client_id`, on every loop.
    pub fn client_sockets(&self, client_id: &str) -> Vec<SocketId> {
        if self.bus.shared() {
            return self
                .bus
                .read()
                .clients
                .get(client_id)
                .cloned()
                .unwrap_or_default();
        }
        self.clients.get(client_id).cloned().unwrap_or_default()
    }

    /// How many distinct client ids are bound, in the process.
    pub fn online_clients(&self) -> usize {
        if self.bus.shared() {
            return self.bus.read().clients.len();
        }
        self.clients.len()
    }

    /// Replace `socket`'s session. Refused if it is not online or if the
    /// session would serialise to more than `max_session_size` bytes.
    pub fn set_session(&mut self, socket: SocketId, session: Value) -> Result<(), HubError> {
        let max = self.settings.max_session_size;
        if self.is_remote(socket) {
            if !self.is_socket_online(socket) {
                return Err(HubError::NotOnline);
            }
            if json_size(&session) > max {
                return Err(HubError::SessionTooLarge);
            }
            return self.post_to(socket, Command::SetSession(socket, session));
        }
        let app = self.app_mut(socket)?;
        let size = json_size(&session);
        if size > max {
            return Err(HubError::SessionTooLarge);
        }
        app.session = Some(session);
        app.session_bytes = size;
        self.session_changed(socket);
        Ok(())
    }

    /// Merge `fields` into `socket`'s session object (top-level keys replaced;
    /// a `null` removes the key). Refused, leaving the session as it was, if
    /// it is not online or the result would pass `max_session_size`.
    pub fn update_session(
        &mut self,
        socket: SocketId,
        fields: Map<String, Value>,
    ) -> Result<(), HubError> {
        let max = self.settings.max_session_size;
        if self.is_remote(socket) {
            if !self.is_socket_online(socket) {
                return Err(HubError::NotOnline);
            }
            return self.post_to(socket, Command::UpdateSession(socket, fields));
        }
        let app = self.app_mut(socket)?;
        let mut map = match &app.session {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        for (k, v) in fields {
            if v.is_null() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
        let session = Value::Object(map);
        let size = json_size(&session);
        if size > max {
            return Err(HubError::SessionTooLarge);
        }
        app.session = Some(session);
        app.session_bytes = size;
        self.session_changed(socket);
        Ok(())
    }

    /// A local socket's session changed: count it, and copy it to the view.
    fn session_changed(&mut self, socket: SocketId) {
        self.app_changed(socket);
        if self.bus.shared() {
            let session = self.app(socket).and_then(|a| a.session.clone());
            self.bus.write().session(socket, session);
        }
    }

    /// `socket`'s session, if it has one. For a socket of another loop, the
    /// copy its loop last wrote to the view (as fresh as that loop's last
    /// turn; a change just posted to it shows once it is applied).
    pub fn get_session(&self, socket: SocketId) -> Option<Value> {
        if self.is_remote(socket) {
            return self.bus.read().socket(socket)?.session.clone();
        }
        self.app(socket).and_then(|a| a.session.clone())
    }

    /// Answer an invalid client message with an error envelope
    /// (`{"type":"error","data":{"code","message","request"}}`), and count it:
    /// past `invalid_message_limit` in `invalid_message_window`, the socket is
    /// closed with 1008.
    pub fn reply_error(
        &mut self,
        socket: SocketId,
        code: &str,
        message: &str,
        request: Option<&str>,
    ) {
        self.reply_error_with_id(socket, code, message, request, None);
    }

    /// [`Hub::reply_error`] for a request that carried an id (see
    /// [`crate::message::Envelope::id`]): the error envelope echoes it as its
    /// `id` field; `None` gives exactly `reply_error`'s envelope.
    pub fn reply_error_with_id(
        &mut self,
        socket: SocketId,
        code: &str,
        message: &str,
        request: Option<&str>,
        id: Option<&Value>,
    ) {
        let error = crate::message::with_id(crate::message::error(code, message, request), id);
        let _ = self.send_to_socket(socket, &error);
        let (limit, window) = (
            self.config.invalid_message_limit,
            millis(self.config.invalid_message_window),
        );
        let now = self.now;
        let Ok(app) = self.app_mut(socket) else {
            return;
        };
        let (count, since) = &mut app.invalid;
        if now.saturating_sub(*since) >= window || *count == 0 {
            *count = 0;
            *since = now;
        }
        *count += 1;
        if *count > limit {
            crate::log::peer_log!(
                "socket {socket}: more than {limit} invalid messages in the window; closing 1008"
            );
            if let Some(key) = self.key(socket) {
                self.begin_close(
                    key,
                    gmws_protocol::CloseCode::POLICY,
                    "too many invalid messages",
                    crate::close::CloseReason::RateLimited,
                );
            }
        }
    }

    /// Remove a closed socket from every index and cancel its timers.
    /// Costs O(its groups + its timers).
    pub(crate) fn forget(&mut self, socket: SocketId) {
        let Some(app) = self.conn_mut(socket).and_then(|c| c.app.take()) else {
            return;
        };
        if let Some(key) = self.key(socket) {
            self.account(key);
        }
        let client = app.client_id.as_deref();
        if let Some(client) = client {
            self.clients.remove(client, socket);
        }
        for group in &app.groups {
            self.groups.remove(group, socket, client);
        }
        if let Some(mut interest) = self.interest() {
            if let Some(client) = client {
                interest.unbind(client, socket);
            }
            for group in &app.groups {
                interest.leave(group, socket);
            }
        }
        for handle in &app.timers {
            if let Some(timer) = self.user_timers.remove(handle) {
                self.timers.cancel(timer.current);
            }
        }
    }
}

/// The length of `value` serialised as JSON, without keeping the bytes.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}
