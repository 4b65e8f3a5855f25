//! Presence and counts from Redis, one command (a script) per question,
//! answered through a callback: no loop ever waits for Redis.
//!
//! Each node writes its own entries (`{c}:client:{id}` and `{c}:group:{g}`
//! hashes, one field per node) and keeps a lease (`{c}:node:{n}`). The
//! scripts trust a field only while its node's lease lives, and delete the
//! fields of lapsed nodes as they meet them: a node killed with SIGKILL
//! vanishes from every answer when its lease lapses (within `node_lease`),
//! with no refresh traffic per socket.

use super::error::ClusterError;
use super::node::Cluster;
use super::redis::Reply;
use crate::socket_id::SocketId;

/// KEYS[1]: the client's hash; ARGV[1]: the lease prefix. Returns the live
/// nodes' socket lists.
const CLIENT_SCRIPT: &str = r"
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  if redis.call('EXISTS', ARGV[1] .. h[i]) == 1 then
    table.insert(out, h[i + 1])
  else
    redis.call('HDEL', KEYS[1], h[i])
  end
end
return out
";

/// KEYS[1]: the group's hash; ARGV[1]: the lease prefix. Returns the live
/// nodes' member count.
const GROUP_SCRIPT: &str = r"
local h = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #h, 2 do
  if redis.call('EXISTS', ARGV[1] .. h[i]) == 1 then
    n = n + tonumber(h[i + 1])
  else
    redis.call('HDEL', KEYS[1], h[i])
  end
end
return n
";

/// KEYS[1]: the set of nodes; ARGV[1]: the lease prefix. Returns the live
/// nodes' leases (their JSON summaries) and prunes the others.
pub(crate) const NODES_SCRIPT: &str = r"
local ns = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, n in ipairs(ns) do
  local v = redis.call('GET', ARGV[1] .. n)
  if v then table.insert(out, v) else redis.call('SREM', KEYS[1], n) end
end
return out
";

/// The socket ids in a client script's answer.
fn socket_ids(reply: Reply) -> Result<Vec<SocketId>, ClusterError> {
    let Reply::Array(lists) = reply else {
        return Err(ClusterError::BadReply);
    };
    let mut out = Vec::new();
    for list in lists {
        let bytes = list.as_bytes().ok_or(ClusterError::BadReply)?;
        let text = std::str::from_utf8(bytes).map_err(|_| ClusterError::BadReply)?;
        for id in text.split(',').filter(|s| !s.is_empty()) {
            out.push(id.parse().map_err(|_| ClusterError::BadReply)?);
        }
    }
    Ok(out)
}

impl Cluster {
    fn script<F>(&self, script: &str, key: Vec<u8>, reply: F)
    where
        F: FnOnce(Result<Reply, ClusterError>) + Send + 'static,
    {
        let prefix = self.keys.lease_prefix();
        let args: [&[u8]; 5] = [b"EVAL", script.as_bytes(), b"1", &key, &prefix];
        // On Err the callback is dropped unanswered: answer it here instead.
        let cell = std::sync::Arc::new(std::sync::Mutex::new(Some(reply)));
        let inner = std::sync::Arc::clone(&cell);
        let sent = self.redis().command(args, move |r| {
            if let Some(f) = inner.lock().ok().and_then(|mut f| f.take()) {
                f(r.map_err(ClusterError::Redis));
            }
        });
        if let Err(e) = sent {
            if let Some(f) = cell.lock().ok().and_then(|mut f| f.take()) {
                f(Err(ClusterError::Redis(e)));
            }
        }
    }

    /// The open sockets bound to `client_id` on every live node, from Redis
    /// (one command). `reply` runs on the Redis client's thread, once.
    /// Fresh as each node's last write (a node writes a change as soon as
    /// its cluster thread wakes, typically within a millisecond).
    pub fn client_sockets(
        &self,
        client_id: &str,
        reply: impl FnOnce(Result<Vec<SocketId>, ClusterError>) + Send + 'static,
    ) {
        self.script(CLIENT_SCRIPT, self.keys.client(client_id), move |r| {
            reply(r.and_then(socket_ids));
        });
    }

    /// Whether any live node has a socket bound to `client_id` (as
    /// [`Cluster::client_sockets`]).
    pub fn is_client_online(
        &self,
        client_id: &str,
        reply: impl FnOnce(Result<bool, ClusterError>) + Send + 'static,
    ) {
        self.client_sockets(client_id, move |r| reply(r.map(|ids| !ids.is_empty())));
    }

    /// How many sockets of live nodes are in `group` (one command).
    pub fn group_sockets_count(
        &self,
        group: &str,
        reply: impl FnOnce(Result<u64, ClusterError>) + Send + 'static,
    ) {
        self.script(GROUP_SCRIPT, self.keys.group(group), move |r| {
            reply(match r {
                Ok(Reply::Integer(n)) => Ok(n.max(0) as u64),
                Ok(_) => Err(ClusterError::BadReply),
                Err(e) => Err(e),
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_lists_parse_and_garbage_is_an_error() {
        let reply = Reply::Array(vec![
            Reply::Bulk(b"1,2".to_vec()),
            Reply::Bulk(b"".to_vec()),
            Reply::Bulk(b"3".to_vec()),
        ]);
        let ids = socket_ids(reply).unwrap();
        assert_eq!(
            ids,
            vec![
                SocketId::from_u64(1),
                SocketId::from_u64(2),
                SocketId::from_u64(3)
            ]
        );
        assert_eq!(
            socket_ids(Reply::Array(vec![Reply::Bulk(b"x".to_vec())])),
            Err(ClusterError::BadReply)
        );
        assert_eq!(socket_ids(Reply::Nil), Err(ClusterError::BadReply));
    }
}
