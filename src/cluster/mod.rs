//! The cluster: gmws nodes cooperating through Redis (issue 11).
//!
//! Set `cluster_redis` and every node that names the same Redis (and the
//! same `cluster_name`) is one cluster:
//!
//! - **instance number**: at start a node takes `INCR {c}:instance`; it is
//!   the node part of its socket ids, so an id of a dead node never
//!   addresses a socket of a later one (until 65,535 starts have passed);
//! - **delivery**: a send from a handler, a [`crate::Remote`] or the HTTP
//!   API reaches this node's sockets directly and the others through one
//!   PUBLISH on the target's channel (`{c}:g:{group}`, `{c}:c:{client}`,
//!   `{c}:n:{node}` for one socket, `{c}:all`), the payload carried once
//!   and the frame encoded once per receiving node ([`wire`]). A node
//!   subscribes to a group's or client's channel when it gets its first
//!   member and unsubscribes two seconds after its last. Exclusions travel
//!   with the message. Every message carries its origin and a sequence
//!   number per channel: receivers count gaps;
//! - **at most once, said aloud**: when Redis is unreachable, sends reach
//!   this node's sockets and the rest is counted (`undeliverable`); the
//!   hub reports it ([`crate::Hub::cluster_send_result`]), `Remote` sends
//!   return [`crate::PostError::ClusterUnreachable`], `/api/send_*` answers
//!   503 and `/healthz` 503. A probe published to itself catches a
//!   subscription that died silently and restarts the client;
//! - **presence by lease** ([`presence`]): each node writes its own entries
//!   and keeps `{c}:node:{n}` alive (TTL ¾ `node_lease`, refreshed every ¼);
//!   answers trust an entry only while its node's lease lives. A node that
//!   finds its lease lapsed, or a link reconnected, rewrites every entry;
//! - **answers never wait**: [`Cluster::client_sockets`] and friends answer
//!   through a callback (one Redis command each);
//!   [`Cluster::nodes`] is a view the cluster thread reads every ¼
//!   `node_lease`.
//!
//! [`redis`] is the client underneath: RESP over our own non-blocking
//! sockets on a thread of its own, no async runtime.

pub mod claims;
mod error;
mod interest;
mod keys;
mod metrics;
mod node;
pub mod presence;
pub mod redis;
pub mod wire;
mod worker;

pub use error::{ClusterError, ClusterStartError};
pub use metrics::{ClusterMetrics, ClusterMetricsSnapshot};
pub(crate) use node::InterestGuard as InterestRef;
pub use node::{Cluster, ClusterTotals, NodeInfo};
pub use presence::GroupPresence;
pub(crate) use worker::Worker;
