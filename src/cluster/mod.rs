//! Cluster support: gmws nodes cooperating through Redis (issue 11).
//!
//! For now this holds the foundation only, [`redis`]: a Redis client that
//! lives in our mio world (a bus thread with its own `Poll`, RESP over our own
//! non-blocking sockets, no async runtime). Nothing in the server uses it yet.

pub mod redis;
