//! What this node holds, as the cluster needs it: members per group and
//! sockets per client id, across the node's loops. Loops write it when they
//! apply a change (a short lock, as the bus's view); the cluster thread takes
//! the names that changed and subscribes, unsubscribes and writes presence.

use std::collections::{HashMap, HashSet};

use crate::socket_id::SocketId;

/// The node's groups and clients, and which of them changed.
#[derive(Debug, Default)]
pub(crate) struct Interest {
    pub groups: HashMap<String, u32>,
    pub clients: HashMap<String, Vec<SocketId>>,
    pub dirty_groups: HashSet<String>,
    pub dirty_clients: HashSet<String>,
}

impl Interest {
    /// A socket joined `group`.
    pub fn join(&mut self, group: &str) {
        *self.groups.entry(group.to_owned()).or_insert(0) += 1;
        self.dirty_groups.insert(group.to_owned());
    }

    /// A socket left `group`.
    pub fn leave(&mut self, group: &str) {
        if let Some(n) = self.groups.get_mut(group) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.groups.remove(group);
            }
        }
        self.dirty_groups.insert(group.to_owned());
    }

    /// `socket` was bound to `client`.
    pub fn bind(&mut self, client: &str, socket: SocketId) {
        let sockets = self.clients.entry(client.to_owned()).or_default();
        if !sockets.contains(&socket) {
            sockets.push(socket);
        }
        self.dirty_clients.insert(client.to_owned());
    }

    /// `socket` was unbound from `client` (or closed).
    pub fn unbind(&mut self, client: &str, socket: SocketId) {
        if let Some(sockets) = self.clients.get_mut(client) {
            sockets.retain(|s| *s != socket);
            if sockets.is_empty() {
                self.clients.remove(client);
            }
        }
        self.dirty_clients.insert(client.to_owned());
    }

    /// Mark every name changed (a full rewrite).
    pub fn touch_all(&mut self) {
        self.dirty_groups.extend(self.groups.keys().cloned());
        self.dirty_clients.extend(self.clients.keys().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_changes_and_names_are_marked() {
        let mut i = Interest::default();
        let a = SocketId::new(1, 0, 1);
        i.join("room");
        i.join("room");
        i.bind("alice", a);
        i.bind("alice", a);
        assert_eq!(i.groups["room"], 2);
        assert_eq!(i.clients["alice"], vec![a]);
        i.leave("room");
        i.leave("room");
        i.unbind("alice", a);
        assert!(i.groups.is_empty() && i.clients.is_empty());
        assert!(i.dirty_groups.contains("room") && i.dirty_clients.contains("alice"));
    }
}
