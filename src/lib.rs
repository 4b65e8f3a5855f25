//! `gmws`: a WebSocket server framework and real-time gateway on mio.
//!
//! The successor of GMWebSockets: socket ids, client-id binding, groups,
//! sessions, heartbeats and an HTTP API on the same port, over its own RFC 6455
//! implementation ([`gmws_protocol`]) and a mio event loop with no async runtime.
//!
//! Implement [`Handler`] (raw messages) or [`EnvelopeHandler`] (the JSON
//! envelope protocol of the gateway), build a [`Config`], and run a
//! [`Server`]:
//!
//! ```no_run
//! use gmws::{Config, Handler, Hub, Server, SocketId, Upgrade, UpgradeRequest};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_upgrade(&mut self, _hub: &mut Hub, request: &UpgradeRequest<'_>) -> Upgrade {
//!         match request.query_param("token").as_deref() {
//!             Some("let-me-in") => Upgrade::accept().with_client_id("guest"),
//!             _ => Upgrade::refuse(401, "token required"),
//!         }
//!     }
//!     fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
//!         if let Err(e) = hub.send_text(socket, text) {
//!             eprintln!("not echoed: {e}");
//!         }
//!     }
//! }
//!
//! let mut server = Server::bind(Config::default(), Echo)?;
//! server.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The library logs through the [`log`](https://docs.rs/log) facade and
//! installs no logger: the application chooses one (the `gmws` binary's
//! writes from a thread of its own). Lines a peer can cause are rate-limited
//! (20 a second process-wide, the skipped ones counted in the next line).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod log;

pub mod auth;
#[cfg(feature = "bench-internals")]
pub mod bench_support;
mod bus;
pub mod close;
pub mod cluster;
mod compression;
pub mod config;
pub mod connection;
mod error;
pub mod gateway;
pub mod handler;
pub mod http;
pub mod hub;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod outqueue;
pub mod remote;
pub mod scheduler;
mod server;
mod socket_app;
pub mod socket_id;
pub mod timer;
mod timer_handle;
pub mod tls;
pub mod upgrade;

pub use bus::PostError;
pub use close::{CloseCode, CloseReason};
pub use config::{BinaryMessages, Config, ConfigError, LogLevel};
pub use error::{BindError, BindStep};
pub use gateway::{EnvelopeHandler, Gateway};
pub use gmws_protocol as protocol;
pub use handler::Handler;
pub use hub::{Audience, Hub, HubError, Payload, SendError, TimerHandle};
pub use message::Envelope;
pub use remote::{Remote, RemoteError};
pub use server::{Server, ShutdownHandle, STALL_MS};
pub use socket_id::SocketId;
pub use upgrade::{Upgrade, UpgradeRequest};
