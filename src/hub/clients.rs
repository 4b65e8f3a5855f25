//! The client index: client id → the open sockets bound to it.

use std::collections::HashMap;

use crate::socket_id::SocketId;

/// Bound client ids and their sockets (several tabs may share one id).
#[derive(Debug, Default)]
pub(crate) struct Clients {
    map: HashMap<String, Vec<SocketId>>,
}

impl Clients {
    pub fn get(&self, client_id: &str) -> Option<&Vec<SocketId>> {
        self.map.get(client_id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &Vec<SocketId>> {
        self.map.values()
    }

    pub fn add(&mut self, client_id: &str, socket: SocketId) {
        let sockets = self.map.entry(client_id.to_owned()).or_default();
        if !sockets.contains(&socket) {
            sockets.push(socket);
        }
    }

    pub fn remove(&mut self, client_id: &str, socket: SocketId) {
        if let Some(sockets) = self.map.get_mut(client_id) {
            sockets.retain(|s| *s != socket);
            if sockets.is_empty() {
                self.map.remove(client_id);
            }
        }
    }
}
