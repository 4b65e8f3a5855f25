//! What this node holds, as the cluster needs it: members per group and
//! sockets per client id, across the node's loops. Loops write it when they
//! apply a change (a short lock, as the bus's view); the cluster thread takes
//! the names that changed and subscribes, unsubscribes and writes presence.

use std::collections::{HashMap, HashSet};

use crate::socket_id::SocketId;

/// A change of one group member on this node, in the order made: the
/// cluster thread writes it to the group's member hash (`Some(client)`:
/// set, `""` for an unbound socket; `None`: removed).
pub(crate) type MemberOp = (String, SocketId, Option<String>);

/// Member changes kept at most between two wakes of the cluster thread;
/// past it they are dropped and a full rewrite of the members is asked
/// instead (the thread is behind; a rewrite is O(members) once).
const MAX_MEMBER_OPS: usize = 65_536;

/// The node's groups and clients, and which of them changed.
#[derive(Debug, Default)]
pub(crate) struct Interest {
    pub groups: HashMap<String, u32>,
    pub clients: HashMap<String, Vec<SocketId>>,
    /// Per group, its members on this node and their client ids (`""`:
    /// unbound), for the cluster-wide member lists and client counts.
    pub members: HashMap<String, HashMap<SocketId, String>>,
    pub dirty_groups: HashSet<String>,
    pub dirty_clients: HashSet<String>,
    pub member_ops: Vec<MemberOp>,
    /// `member_ops` overflowed: rewrite every member hash.
    pub members_overflow: bool,
}

impl Interest {
    fn member_op(&mut self, op: MemberOp) {
        if self.member_ops.len() >= MAX_MEMBER_OPS {
            self.member_ops.clear();
            self.members_overflow = true;
        }
        if !self.members_overflow {
            self.member_ops.push(op);
        }
    }

    /// `socket` (bound to `client`, if it is) joined `group`.
    pub fn join(&mut self, group: &str, socket: SocketId, client: Option<&str>) {
        *self.groups.entry(group.to_owned()).or_insert(0) += 1;
        self.dirty_groups.insert(group.to_owned());
        let client = client.unwrap_or_default().to_owned();
        self.members
            .entry(group.to_owned())
            .or_default()
            .insert(socket, client.clone());
        self.member_op((group.to_owned(), socket, Some(client)));
    }

    /// `socket` left `group`.
    pub fn leave(&mut self, group: &str, socket: SocketId) {
        if let Some(n) = self.groups.get_mut(group) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.groups.remove(group);
            }
        }
        self.dirty_groups.insert(group.to_owned());
        if let Some(members) = self.members.get_mut(group) {
            members.remove(&socket);
            if members.is_empty() {
                self.members.remove(group);
            }
        }
        self.member_op((group.to_owned(), socket, None));
    }

    /// `socket`, a member of `groups`, is now bound to `client` (`None`:
    /// unbound).
    pub fn member_client(&mut self, groups: &[String], socket: SocketId, client: Option<&str>) {
        let client = client.unwrap_or_default();
        for group in groups {
            if let Some(entry) = self.members.get_mut(group).and_then(|m| m.get_mut(&socket)) {
                client.clone_into(entry);
                self.member_op((group.clone(), socket, Some(client.to_owned())));
            }
        }
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
        let b = SocketId::new(1, 0, 2);
        i.join("room", a, None);
        i.join("room", b, Some("bob"));
        i.bind("alice", a);
        i.bind("alice", a);
        assert_eq!(i.groups["room"], 2);
        assert_eq!(i.clients["alice"], vec![a]);
        i.member_client(&["room".to_owned()], a, Some("alice"));
        assert_eq!(i.members["room"][&a], "alice");
        assert_eq!(i.members["room"][&b], "bob");
        i.leave("room", a);
        i.leave("room", b);
        i.unbind("alice", a);
        assert!(i.groups.is_empty() && i.clients.is_empty() && i.members.is_empty());
        assert_eq!(
            i.member_ops,
            vec![
                ("room".to_owned(), a, Some(String::new())),
                ("room".to_owned(), b, Some("bob".to_owned())),
                ("room".to_owned(), a, Some("alice".to_owned())),
                ("room".to_owned(), a, None),
                ("room".to_owned(), b, None),
            ]
        );
        assert!(i.dirty_groups.contains("room") && i.dirty_clients.contains("alice"));
    }
}
