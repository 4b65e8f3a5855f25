//! Internals for the hub benches (`cargo bench --bench hub --features
//! bench-internals`): a hub full of open sockets without an event loop.
//!
//! Not part of the stable API; compiled only with the `bench-internals` feature.

use std::net::TcpStream;
use std::sync::Arc;

use gmws_protocol::decoder::{Decoder, Role};

use crate::config::Config;
use crate::connection::Connection;
use crate::hub::Hub;
use crate::socket_id::SocketId;

/// An empty hub with `config`, as the event loop would make it.
pub fn new_hub(config: Config) -> Hub {
    Hub::new(Arc::new(config))
}

/// Add `n` open sockets to `hub`, each a duplicate of `stream` (one file
/// descriptor each). Nothing is ever written to them: call
/// [`discard_output`] where the event loop would flush.
pub fn add_sockets(hub: &mut Hub, stream: &TcpStream, n: usize) -> std::io::Result<Vec<SocketId>> {
    let limits = hub.config().frame_limits();
    let peer = stream.peer_addr()?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let clone = stream.try_clone()?;
        clone.set_nonblocking(true)?;
        let decoder = Decoder::new(Role::Server, limits);
        let key = hub
            .insert(|id| Connection::new(mio::net::TcpStream::from_std(clone), id, peer, decoder));
        hub.enter_open(key);
        ids.push(hub.conns[key].id);
    }
    Ok(ids)
}

/// Drop every queued byte, as if the loop had flushed it (recycling buffers).
pub fn discard_output(hub: &mut Hub) {
    let keys = std::mem::take(&mut hub.dirty);
    for key in keys {
        if let Some(conn) = hub.conns.get_mut(key) {
            conn.dirty = false;
            conn.output.clear(&mut hub.pool);
        }
        hub.account(key);
    }
    hub.turn_fanout = 0;
}

/// Close a socket as a peer's FIN would: `on_close`-less removal from every
/// index (no handler runs).
pub fn drop_socket(hub: &mut Hub, id: SocketId) {
    hub.leave_open(id.slot(), crate::handler::CloseReason::ConnectionLost);
    hub.closed.clear();
    hub.forget(id);
    hub.remove(id.slot());
}
