//! The group index: group name → member sockets, and per group how many
//! sockets each client id holds in it (for the client count).

use std::collections::{HashMap, HashSet};

use crate::socket_id::SocketId;

/// One group's members.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// Member sockets.
    pub sockets: HashSet<SocketId>,
    /// Bound client ids among the members, with how many of their sockets are in.
    pub clients: HashMap<String, u32>,
}

/// Every group with at least one member.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    map: HashMap<String, Group>,
}

impl Groups {
    pub fn get(&self, name: &str) -> Option<&Group> {
        self.map.get(name)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Add `socket` (bound to `client`, if any). False if it was a member already.
    pub fn add(&mut self, name: &str, socket: SocketId, client: Option<&str>) -> bool {
        let group = self.map.entry(name.to_owned()).or_default();
        if !group.sockets.insert(socket) {
            return false;
        }
        if let Some(client) = client {
            *group.clients.entry(client.to_owned()).or_insert(0) += 1;
        }
        true
    }

    /// Remove `socket`; an empty group disappears. False if it was not a member.
    pub fn remove(&mut self, name: &str, socket: SocketId, client: Option<&str>) -> bool {
        let Some(group) = self.map.get_mut(name) else {
            return false;
        };
        if !group.sockets.remove(&socket) {
            return false;
        }
        if let Some(client) = client {
            Self::uncount(group, client);
        }
        if group.sockets.is_empty() {
            self.map.remove(name);
        }
        true
    }

    /// Count (or uncount) a member socket's client id after it binds (unbinds).
    pub fn set_client(&mut self, name: &str, old: Option<&str>, new: Option<&str>) {
        if let Some(group) = self.map.get_mut(name) {
            if let Some(old) = old {
                Self::uncount(group, old);
            }
            if let Some(new) = new {
                *group.clients.entry(new.to_owned()).or_insert(0) += 1;
            }
        }
    }

    /// Remove the whole group; returns its members.
    pub fn take(&mut self, name: &str) -> Option<Group> {
        self.map.remove(name)
    }

    fn uncount(group: &mut Group, client: &str) {
        if let Some(n) = group.clients.get_mut(client) {
            *n -= 1;
            if *n == 0 {
                group.clients.remove(client);
            }
        }
    }
}
