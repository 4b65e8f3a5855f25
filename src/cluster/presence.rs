//! Presence and counts from Redis, one command (a script) per question,
//! answered through a callback: no loop ever waits for Redis.
//!
//! Each node writes its own entries (`{c}:client:{id}` and `{c}:group:{g}`
//! hashes, one field per node) and keeps a lease (`{c}:node:{n}`). The
//! scripts trust a field only while its node's lease lives, and delete the
//! fields of lapsed nodes as they meet them: a node killed with SIGKILL
//! vanishes from every answer when its lease lapses (within `node_lease`),
//! with no refresh traffic per socket.
//!
//! Distinct clients across the cluster (a client with sockets on two nodes
//! counts once): each node also keeps the set of its client ids
//! (`{c}:nc:{n}`) and the cluster keeps one hash, client id → how many of
//! those sets hold it (`{c}:clients`), both changed together by one script
//! per bind or unbind (`CLIENT_WRITE_SCRIPT`). The hash's length is the
//! answer. The nodes script, which every node runs each quarter of
//! `node_lease`, sweeps the sets of lapsed nodes out of it
//! (`NODES_SCRIPT`), so a SIGKILLed node's clients leave the count
//! within `node_lease` too.

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

/// KEYS[1]: the group's hash; ARGV[1]: the lease prefix; ARGV[2]: the
/// prefix of the group's member hashes. Returns the live nodes' member
/// count.
const GROUP_SCRIPT: &str = r"
local h = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #h, 2 do
  if redis.call('EXISTS', ARGV[1] .. h[i]) == 1 then
    n = n + (tonumber(h[i + 1]) or 0)
  else
    redis.call('HDEL', KEYS[1], h[i])
    redis.call('DEL', ARGV[2] .. h[i])
  end
end
return n
";

/// KEYS[1]: the group's hash; ARGV[1]: the lease prefix; ARGV[2]: the
/// prefix of the group's member hashes (`{c}:gm:{g}:`, the node follows).
/// Returns `{distinct bound clients, {socket ids}}` over the live nodes.
const GROUP_MEMBERS_SCRIPT: &str = r"
local h = redis.call('HGETALL', KEYS[1])
local members = {}
local seen = {}
local clients = 0
for i = 1, #h, 2 do
  if redis.call('EXISTS', ARGV[1] .. h[i]) == 1 then
    local m = redis.call('HGETALL', ARGV[2] .. h[i])
    for j = 1, #m, 2 do
      table.insert(members, m[j])
      local c = m[j + 1]
      if c ~= '' and not seen[c] then
        seen[c] = true
        clients = clients + 1
      end
    end
  else
    redis.call('HDEL', KEYS[1], h[i])
    redis.call('DEL', ARGV[2] .. h[i])
  end
end
return {clients, members}
";

/// A group across the cluster, as [`Cluster::group_members`] answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupPresence {
    /// Its members (sockets) on every live node, in no particular order.
    pub sockets: Vec<SocketId>,
    /// How many distinct bound client ids have a socket in it.
    pub clients: u64,
}

/// KEYS[1]: the set of nodes; KEYS[2]: the cluster's clients hash;
/// ARGV[1]: the lease prefix; ARGV[2]: the prefix of the nodes' client
/// sets; ARGV[3]: the prefix of the clients' hashes; ARGV[4]: how many
/// client entries of lapsed nodes to sweep at most.
///
/// Returns `{live leases (their JSON summaries), distinct online clients,
/// 1 if a lapsed node is left to sweep}`. The sweep pops a lapsed node's
/// client ids, takes its field out of each client's hash and one off each
/// client's node count (the field goes at zero); a node is dropped from
/// the set once nothing of it is left.
pub(crate) const NODES_SCRIPT: &str = r"
local ns = redis.call('SMEMBERS', KEYS[1])
local out = {}
local budget = tonumber(ARGV[4]) or 0
local more = 0
for _, n in ipairs(ns) do
  local v = redis.call('GET', ARGV[1] .. n)
  if v then
    table.insert(out, v)
  else
    local set = ARGV[2] .. n
    if budget > 0 then
      local gone = redis.call('SPOP', set, budget)
      budget = budget - #gone
      for _, c in ipairs(gone) do
        redis.call('HDEL', ARGV[3] .. c, n)
        if redis.call('HINCRBY', KEYS[2], c, -1) <= 0 then
          redis.call('HDEL', KEYS[2], c)
        end
      end
    end
    if redis.call('EXISTS', set) == 0 then
      redis.call('SREM', KEYS[1], n)
    else
      more = 1
    end
  end
end
return {out, redis.call('HLEN', KEYS[2]), more}
";

/// Client entries a sweep takes at most per call (a few ms of Redis); the
/// cluster thread calls again at once while a lapsed node is left.
pub(crate) const SWEEP_BATCH: usize = 20_000;

/// KEYS[1]: the client's hash; KEYS[2]: this node's client set; KEYS[3]:
/// the cluster's clients hash; KEYS[4]: the set of nodes. ARGV[1]: the
/// node; ARGV[2]: the client id; ARGV[3]: the node's socket ids of the
/// client (`''`: none left). Keeps the invariant of `{c}:clients`: a
/// client's count is the number of node sets that hold it.
pub(crate) const CLIENT_WRITE_SCRIPT: &str = r"
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then
    redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
    redis.call('SADD', KEYS[4], ARGV[1])
  end
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('SREM', KEYS[2], ARGV[2]) == 1 then
    if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) <= 0 then
      redis.call('HDEL', KEYS[3], ARGV[2])
    end
  end
end
return 1
";

/// KEYS[1]: this node's client set; KEYS[2]: the cluster's clients hash.
/// ARGV[1]: the node; ARGV[2]: the prefix of the clients' hashes;
/// ARGV[3..]: every client id the node holds now. Takes out of Redis the
/// clients the set holds and the node does not (unbound while Redis was
/// unreachable); a rewrite then adds the others again.
pub(crate) const RECONCILE_SCRIPT: &str = r"
local keep = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end
local removed = 0
for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not keep[c] then
    redis.call('SREM', KEYS[1], c)
    redis.call('HDEL', ARGV[2] .. c, ARGV[1])
    if redis.call('HINCRBY', KEYS[2], c, -1) <= 0 then
      redis.call('HDEL', KEYS[2], c)
    end
    removed = removed + 1
  end
end
return removed
";

/// What the nodes script answers: the live nodes' summaries, the distinct
/// online clients, and whether a lapsed node is left to sweep.
pub(crate) fn nodes_answer(reply: Reply) -> Result<(Vec<Vec<u8>>, u64, bool), ClusterError> {
    let Reply::Array(parts) = reply else {
        return Err(ClusterError::BadReply);
    };
    let [Reply::Array(leases), Reply::Integer(clients), Reply::Integer(more)] = parts.as_slice()
    else {
        return Err(ClusterError::BadReply);
    };
    let leases = leases
        .iter()
        .map(|l| {
            l.as_bytes()
                .map(<[u8]>::to_vec)
                .ok_or(ClusterError::BadReply)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((leases, u64::try_from(*clients).unwrap_or(0), *more != 0))
}

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

/// The answer of the group members script.
fn group_presence(reply: Reply) -> Result<GroupPresence, ClusterError> {
    let Reply::Array(parts) = reply else {
        return Err(ClusterError::BadReply);
    };
    let [Reply::Integer(clients), Reply::Array(ids)] = parts.as_slice() else {
        return Err(ClusterError::BadReply);
    };
    let sockets = ids
        .iter()
        .map(|id| {
            id.as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
                .ok_or(ClusterError::BadReply)
        })
        .collect::<Result<Vec<SocketId>, _>>()?;
    Ok(GroupPresence {
        sockets,
        clients: u64::try_from(*clients).unwrap_or(0),
    })
}

impl Cluster {
    fn script<F>(&self, script: &str, key: Vec<u8>, extra: Option<Vec<u8>>, reply: F)
    where
        F: FnOnce(Result<Reply, ClusterError>) + Send + 'static,
    {
        let prefix = self.keys.lease_prefix();
        let mut args: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), b"1", &key, &prefix];
        if let Some(extra) = &extra {
            args.push(extra);
        }
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
        self.script(CLIENT_SCRIPT, self.keys.client(client_id), None, move |r| {
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
        let members = self.keys.group_members_prefix(group);
        self.script(
            GROUP_SCRIPT,
            self.keys.group(group),
            Some(members),
            move |r| {
                reply(match r {
                    Ok(Reply::Integer(n)) => Ok(n.max(0) as u64),
                    Ok(_) => Err(ClusterError::BadReply),
                    Err(e) => Err(e),
                });
            },
        );
    }

    /// The members of `group` on every live node and how many distinct
    /// bound client ids they have (one command; the work in Redis is
    /// O(members)). `reply` runs on the Redis client's thread, once.
    pub fn group_members(
        &self,
        group: &str,
        reply: impl FnOnce(Result<GroupPresence, ClusterError>) + Send + 'static,
    ) {
        let members = self.keys.group_members_prefix(group);
        self.script(
            GROUP_MEMBERS_SCRIPT,
            self.keys.group(group),
            Some(members),
            move |r| reply(r.and_then(group_presence)),
        );
    }

    /// How many distinct bound client ids have a socket in `group`, on
    /// every live node (as [`Cluster::group_members`]).
    pub fn group_clients_count(
        &self,
        group: &str,
        reply: impl FnOnce(Result<u64, ClusterError>) + Send + 'static,
    ) {
        self.group_members(group, move |r| reply(r.map(|g| g.clients)));
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

    #[test]
    fn nodes_answers_parse_and_garbage_is_an_error() {
        let reply = Reply::Array(vec![
            Reply::Array(vec![Reply::Bulk(b"{}".to_vec())]),
            Reply::Integer(7),
            Reply::Integer(1),
        ]);
        assert_eq!(nodes_answer(reply), Ok((vec![b"{}".to_vec()], 7, true)));
        let empty = Reply::Array(vec![
            Reply::Array(vec![]),
            Reply::Integer(0),
            Reply::Integer(0),
        ]);
        assert_eq!(nodes_answer(empty), Ok((vec![], 0, false)));
        for bad in [
            Reply::Nil,
            Reply::Array(vec![Reply::Array(vec![]), Reply::Integer(0)]),
            Reply::Array(vec![
                Reply::Array(vec![Reply::Integer(1)]),
                Reply::Integer(0),
                Reply::Integer(0),
            ]),
        ] {
            assert_eq!(nodes_answer(bad), Err(ClusterError::BadReply));
        }
    }

    #[test]
    fn group_answers_parse_and_garbage_is_an_error() {
        let reply = Reply::Array(vec![
            Reply::Integer(2),
            Reply::Array(vec![Reply::Bulk(b"5".to_vec()), Reply::Bulk(b"6".to_vec())]),
        ]);
        assert_eq!(
            group_presence(reply),
            Ok(GroupPresence {
                sockets: vec![SocketId::from_u64(5), SocketId::from_u64(6)],
                clients: 2
            })
        );
        for bad in [
            Reply::Nil,
            Reply::Array(vec![Reply::Integer(1)]),
            Reply::Array(vec![Reply::Integer(1), Reply::Bulk(b"x".to_vec())]),
            Reply::Array(vec![
                Reply::Integer(1),
                Reply::Array(vec![Reply::Bulk(b"no".to_vec())]),
            ]),
        ] {
            assert_eq!(group_presence(bad), Err(ClusterError::BadReply));
        }
    }
}
