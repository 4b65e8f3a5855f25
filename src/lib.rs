//! `gmws`: a WebSocket server framework and real-time gateway on mio.
//!
//! The successor of GMWebSockets: socket ids, client-id binding, groups,
//! sessions, heartbeats and an HTTP API on the same port, over its own RFC 6455
//! implementation ([`gmws_protocol`]) and a mio event loop with no async runtime.
//!
//! Implement [`Handler`], build a [`Config`], and run a [`Server`]:
//!
//! ```no_run
//! use gmws::{Config, Handler, Hub, Server, SocketId};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
//!         hub.send_text(socket, text);
//!     }
//! }
//!
//! let mut server = Server::bind(Config::default(), Echo)?;
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod log;

pub mod auth;
#[cfg(feature = "bench-internals")]
pub mod bench_support;
pub mod cli;
pub mod config;
pub mod connection;
pub mod gateway;
pub mod handler;
pub mod http;
pub mod hub;
pub mod load;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod outqueue;
mod server;
pub mod socket_id;
pub mod timer;

pub use config::Config;
pub use gateway::Gateway;
pub use gmws_protocol as protocol;
pub use handler::{CloseReason, Handler};
pub use hub::{Audience, Hub, HubError, Payload, TimerHandle};
pub use message::Envelope;
pub use server::{Server, ShutdownHandle};
pub use socket_id::SocketId;
