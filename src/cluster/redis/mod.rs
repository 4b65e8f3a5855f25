//! A Redis client for the mio world: RESP2 (encoded and decoded by the
//! sans-IO `redis-protocol` crate) over our own non-blocking sockets, driven
//! by a bus thread with its own `Poll`. No async runtime, and no caller ever
//! waits for Redis.
//!
//! [`RedisClient::start`] parses the URL and starts the thread; it returns a
//! [`RedisHandle`] (`Send + Sync + Clone`, for any thread) and a receiver of
//! [`RedisEvent`]s. The thread keeps two connections ([`Link`]):
//!
//! - **commands**: AUTH and SELECT on connect, then every command pipelined
//!   (many in flight, replies matched in order). Each has a timeout: a
//!   stopped Redis keeps TCP open, so past `command_timeout` every command in
//!   flight fails with [`RedisError::Timeout`] and the connection is
//!   replaced.
//! - **pub/sub**: SUBSCRIBE/UNSUBSCRIBE on a dedicated connection (RESP2
//!   allows nothing else on it). The subscribed set outlives connections: on
//!   reconnect it is subscribed again in batches (`subscribe_batch`), and
//!   then [`RedisEvent::Reconnected`] is reported so the owner can rewrite
//!   what it keeps in Redis. An idle link sends PING to notice a stopped
//!   Redis.
//!
//! Lost connections come back with capped, jittered exponential backoff.
//! Every queue is bounded: a full one is an error returned to the caller,
//! never memory that grows. [`RedisHandle::metrics`] reads the counters.
//!
//! ```no_run
//! use std::sync::mpsc::sync_channel;
//! use gmws::cluster::redis::{RedisClient, RedisEvent, RedisOptions};
//!
//! let (redis, events) = RedisClient::start("redis://127.0.0.1:6379/0", RedisOptions::default())?;
//! // The reply comes back on the bus thread: post it where your loop looks
//! // (and wake that loop's mio Waker, if it has one).
//! let (tx, rx) = sync_channel(1);
//! redis.command(["INCR", "gmws:instance"], move |reply| {
//!     let _ = tx.try_send(reply);
//! })?;
//! redis.subscribe(["gmws:group:chat"])?;
//! for event in events.iter() {
//!     if let RedisEvent::Message { channel, payload } = event {
//!         println!("{} bytes on {:?}", payload.len(), channel);
//!     }
//! }
//! # let _ = rx;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backoff;
mod bus;
mod client;
mod codec;
mod commands;
mod conn;
mod error;
mod events;
mod link;
mod metrics;
mod options;
mod pipeline;
mod pubsub;
mod reply;
mod url;

pub use client::{RedisClient, RedisHandle};
pub use codec::CodecError;
pub use commands::ReplyCallback;
pub use error::{RedisError, StartError};
pub use events::{Link, RedisEvent, RedisEvents};
pub use metrics::{RedisMetrics, RedisMetricsSnapshot, LATENCY_BUCKETS_US};
pub use options::{OptionsError, RedisOptions};
pub use reply::Reply;
pub use url::{RedisUrl, UrlError, DEFAULT_PORT};
