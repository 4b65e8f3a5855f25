//! Sending: to one socket, a client's sockets, a group, everyone; a
//! fan-out encodes its frame once and shares it; client-initiated sends
//! are paid for by recipients × bytes.

use gmws_protocol::encoder::frame_len;
use gmws_protocol::OpCode;

use super::payload::Payload;
use super::Hub;
use crate::socket_id::SocketId;

/// Who a send reaches: see [`Hub::audience`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience<'a> {
    /// One socket.
    Socket(SocketId),
    /// Every socket bound to a client id.
    Client(&'a str),
    /// Every member of a group.
    Group(&'a str),
    /// Every open socket.
    All,
    /// Every bound socket.
    AllClients,
}

/// Why a message to one socket did not go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No socket has this id: it never did, or it closed and is gone.
    UnknownSocket,
    /// The socket is closing: it takes no more messages.
    Closing,
    /// The socket could not take this message: it was closed for
    /// backpressure (1008) instead.
    Backpressure,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::UnknownSocket => "no such socket",
            SendError::Closing => "the socket is closing",
            SendError::Backpressure => "the socket was closed for backpressure",
        })
    }
}

impl std::error::Error for SendError {}

impl Hub {
    /// Queue one frame to each of `targets` that is online; returns how many
    /// were written to. The frame is encoded once (a JSON value serialised
    /// once) and shared by every recipient's queue.
    fn fan_out(&mut self, targets: &[SocketId], payload: Payload<'_>) -> usize {
        let json;
        let (opcode, bytes) = match payload {
            Payload::Text(t) => (OpCode::Text, t.as_bytes()),
            Payload::Binary(b) => (OpCode::Binary, b),
            Payload::Json(v) => {
                json = serde_json::to_vec(v).unwrap_or_default();
                (OpCode::Text, &json[..])
            }
        };
        self.fan_out_bytes(targets, opcode, bytes)
    }

    fn fan_out_bytes(&mut self, targets: &[SocketId], opcode: OpCode, payload: &[u8]) -> usize {
        self.spend_fanout(targets.len(), frame_len(payload.len(), false));
        if let [single] = targets {
            // One recipient: encode straight into its queue (or its socket).
            let queued = self
                .online_key(*single)
                .is_some_and(|key| self.queue_frame(key, opcode, payload));
            return usize::from(queued);
        }
        let frame = self.shared_frame(opcode, payload);
        let mut delivered = 0;
        for &id in targets {
            if let Some(key) = self.online_key(id) {
                delivered += usize::from(self.queue_shared(key, &frame, payload.len()));
            }
        }
        delivered
    }

    /// How many sockets a send to `target` would reach now (for rate limits
    /// weighted by recipients).
    pub fn audience(&self, target: Audience<'_>) -> usize {
        match target {
            Audience::Socket(id) => usize::from(self.is_socket_online(id)),
            Audience::Client(client) => self.clients.get(client).map_or(0, Vec::len),
            Audience::Group(group) => self.group_sockets_count(group),
            Audience::All => self.online_sockets(),
            Audience::AllClients => self.clients.values().map(Vec::len).sum(),
        }
    }

    /// Queue a message to one socket.
    pub fn send_to_socket<'a>(
        &mut self,
        socket: SocketId,
        payload: impl Into<Payload<'a>>,
    ) -> Result<(), SendError> {
        self.sendable(socket)?;
        if self.fan_out(&[socket], payload.into()) == 1 {
            Ok(())
        } else {
            Err(SendError::Backpressure)
        }
    }

    /// Queue a message to every socket bound to `client_id`; returns how many.
    pub fn send_to_client<'a>(
        &mut self,
        client_id: &str,
        payload: impl Into<Payload<'a>>,
    ) -> usize {
        let targets = self.clients.get(client_id).cloned().unwrap_or_default();
        self.fan_out(&targets, payload.into())
    }

    /// Queue a message to every open socket, bound or not; returns how many.
    pub fn send_to_all<'a>(&mut self, payload: impl Into<Payload<'a>>) -> usize {
        let targets: Vec<SocketId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_open())
            .map(|(_, c)| c.id)
            .collect();
        self.fan_out(&targets, payload.into())
    }

    /// Queue a message to every socket bound to a client id; returns how many.
    pub fn send_to_all_clients<'a>(&mut self, payload: impl Into<Payload<'a>>) -> usize {
        let targets: Vec<SocketId> = self.clients.values().flatten().copied().collect();
        self.fan_out(&targets, payload.into())
    }

    /// Queue a message to every member of `group` except those in `exclude`;
    /// returns how many.
    pub fn send_to_group<'a>(
        &mut self,
        group: &str,
        payload: impl Into<Payload<'a>>,
        exclude: &[SocketId],
    ) -> usize {
        let targets: Vec<SocketId> = match self.groups.get(group) {
            Some(g) => g
                .sockets
                .iter()
                .filter(|id| !exclude.contains(id))
                .copied()
                .collect(),
            None => return 0,
        };
        self.fan_out(&targets, payload.into())
    }

    /// Charge a client-initiated send of `cost` delivery bytes (recipients ×
    /// frame bytes) to `socket`'s allowance: a token bucket holding up to
    /// `client_fanout_burst` bytes, refilled at `client_fanout_rate` bytes per
    /// second. A send is allowed while the bucket is not empty and may take
    /// it below zero, so one message of any allowed size can always go out;
    /// the debt is then paid off by waiting. False (nothing charged) when
    /// the send must wait. A rate of 0 turns the limit off.
    pub fn charge_fanout(&mut self, socket: SocketId, cost: usize) -> bool {
        let (rate, burst) = (
            self.config.client_fanout_rate,
            self.config.client_fanout_burst,
        );
        if rate == 0 {
            return true;
        }
        let now = self.now;
        let Ok(app) = self.app_mut(socket) else {
            return false;
        };
        let burst = i64::try_from(burst).unwrap_or(i64::MAX);
        let (tokens, at) = app.fanout.get_or_insert((burst, now));
        let refill = (u128::from(now.saturating_sub(*at)) * u128::from(rate) / 1000)
            .min(u128::from(u64::MAX)) as u64;
        if refill > 0 {
            *tokens = tokens
                .saturating_add(i64::try_from(refill).unwrap_or(i64::MAX))
                .min(burst);
            *at = now;
        }
        if *tokens <= 0 {
            return false;
        }
        *tokens = tokens.saturating_sub(i64::try_from(cost).unwrap_or(i64::MAX));
        true
    }
}
