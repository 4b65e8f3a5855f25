//! The cluster's errors.

use std::fmt;

use super::redis::{RedisError, StartError};

/// Why something could not reach the other nodes, or Redis could not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterError {
    /// Redis is unreachable (a link is down, or the liveness probe did not
    /// come back): delivered on this node only.
    Unreachable,
    /// The Redis client's queue is full: not published.
    QueueFull,
    /// Redis answered with an error, timed out or lost the connection.
    Redis(RedisError),
    /// Redis answered something this node does not understand.
    BadReply,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Unreachable => {
                f.write_str("the cluster is unreachable (Redis is down or not answering)")
            }
            ClusterError::QueueFull => f.write_str("the Redis client's queue is full"),
            ClusterError::Redis(e) => write!(f, "Redis: {e}"),
            ClusterError::BadReply => f.write_str("unexpected reply from Redis"),
        }
    }
}

impl std::error::Error for ClusterError {}

/// Why a node could not join its cluster at start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterStartError {
    /// The Redis client did not start (a bad URL, options, or no thread).
    Client(StartError),
    /// No instance number: Redis did not answer the INCR in time, or failed.
    Instance(ClusterError),
    /// The cluster thread's poll could not be made.
    Poll(std::io::Error),
}

impl fmt::Display for ClusterStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterStartError::Client(e) => write!(f, "cluster_redis: {e}"),
            ClusterStartError::Instance(e) => {
                write!(f, "cluster_redis: cannot take an instance number: {e}")
            }
            ClusterStartError::Poll(e) => write!(f, "cluster: cannot create a poll: {e}"),
        }
    }
}

impl std::error::Error for ClusterStartError {}
