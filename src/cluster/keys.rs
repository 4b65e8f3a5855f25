//! The Redis keys and channels of one cluster, all under `cluster_name`.
//!
//! | name | kind | holds |
//! |---|---|---|
//! | `{c}:instance` | counter | INCR at start: the node's instance number |
//! | `{c}:node:{n}` | string, TTL | node `n`'s lease: its summary as JSON |
//! | `{c}:nodes` | set | node numbers that held a lease (pruned when it lapses) |
//! | `{c}:client:{id}` | hash | node → that node's socket ids of the client |
//! | `{c}:nc:{n}` | set | the client ids bound on node `n` (emptied by a sweep once its lease lapsed) |
//! | `{c}:clients` | hash | client id → how many nodes' `nc` sets hold it: its length is the cluster's distinct online clients |
//! | `{c}:group:{g}` | hash | node → that node's member count |
//! | `{c}:gm:{g}:{n}` | hash | node `n`'s members of group `g`: socket id → client id (`""` unbound) |
//! | channel `{c}:n:{n}` | pub/sub | messages for node `n` (sockets, probes) |
//! | channel `{c}:c:{id}` | pub/sub | messages for a client's sockets |
//! | channel `{c}:g:{g}` | pub/sub | messages for a group |
//! | channel `{c}:all` | pub/sub | messages for every socket |

/// The names of one cluster's keys and channels.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys of cluster `name`.
    pub fn new(name: &str) -> Keys {
        Keys {
            prefix: name.to_owned(),
        }
    }

    fn join(&self, kind: &str, name: impl AsRef<[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + kind.len() + 2 + name.as_ref().len());
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b':');
        out.extend_from_slice(kind.as_bytes());
        if !name.as_ref().is_empty() {
            out.push(b':');
            out.extend_from_slice(name.as_ref());
        }
        out
    }

    /// The instance counter.
    pub fn instance(&self) -> Vec<u8> {
        self.join("instance", "")
    }

    /// The set of nodes.
    pub fn nodes(&self) -> Vec<u8> {
        self.join("nodes", "")
    }

    /// Node `n`'s lease key.
    pub fn lease(&self, node: u16) -> Vec<u8> {
        self.join("node", node.to_string())
    }

    /// The prefix of every lease key (`{c}:node:`), for the scripts.
    pub fn lease_prefix(&self) -> Vec<u8> {
        let mut p = self.join("node", "");
        p.push(b':');
        p
    }

    /// A client's presence hash.
    pub fn client(&self, client: &str) -> Vec<u8> {
        self.join("client", client)
    }

    /// The prefix of every client's presence hash (`{c}:client:`).
    pub fn client_prefix(&self) -> Vec<u8> {
        let mut p = self.join("client", "");
        p.push(b':');
        p
    }

    /// Node `n`'s set of bound client ids.
    pub fn node_clients(&self, node: u16) -> Vec<u8> {
        self.join("nc", node.to_string())
    }

    /// The prefix of every node's client set (`{c}:nc:`).
    pub fn node_clients_prefix(&self) -> Vec<u8> {
        let mut p = self.join("nc", "");
        p.push(b':');
        p
    }

    /// The cluster's distinct client ids, each with its number of nodes.
    pub fn clients(&self) -> Vec<u8> {
        self.join("clients", "")
    }

    /// A group's presence hash.
    pub fn group(&self, group: &str) -> Vec<u8> {
        self.join("group", group)
    }

    /// The prefix of a group's per-node member hashes (`{c}:gm:{g}:`; the
    /// node number follows).
    pub fn group_members_prefix(&self, group: &str) -> Vec<u8> {
        let mut p = self.join("gm", group);
        p.push(b':');
        p
    }

    /// Node `n`'s member hash of `group`.
    pub fn group_members(&self, group: &str, node: u16) -> Vec<u8> {
        let mut k = self.group_members_prefix(group);
        k.extend_from_slice(node.to_string().as_bytes());
        k
    }

    /// Node `n`'s channel.
    pub fn node_channel(&self, node: u16) -> Vec<u8> {
        self.join("n", node.to_string())
    }

    /// A client's channel.
    pub fn client_channel(&self, client: &str) -> Vec<u8> {
        self.join("c", client)
    }

    /// A group's channel.
    pub fn group_channel(&self, group: &str) -> Vec<u8> {
        self.join("g", group)
    }

    /// The channel every node listens on.
    pub fn all_channel(&self) -> Vec<u8> {
        self.join("all", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_cluster_prefix() {
        let k = Keys::new("blue");
        assert_eq!(k.group_channel("room"), b"blue:g:room");
        assert_eq!(k.client("a"), b"blue:client:a");
        assert_eq!(k.lease(3), b"blue:node:3");
        assert_eq!(k.lease_prefix(), b"blue:node:");
        assert_eq!(k.all_channel(), b"blue:all");
        assert_eq!(k.instance(), b"blue:instance");
        assert_eq!(k.group_members("a:b", 7), b"blue:gm:a:b:7");
        assert_eq!(k.client_prefix(), b"blue:client:");
        assert_eq!(k.node_clients(4), b"blue:nc:4");
        assert_eq!(k.node_clients_prefix(), b"blue:nc:");
        assert_eq!(k.clients(), b"blue:clients");
    }
}
