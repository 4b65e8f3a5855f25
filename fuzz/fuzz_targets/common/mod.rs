//! Shared by the `http_request` and `json_envelope` targets: one loopback TCP
//! pair for the hub's sockets, a hub with a few open sockets (bound, unbound,
//! in groups), and checks of what the hub queued and of its indexes.
#![allow(dead_code)] // each target uses part of it

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;

use gmws::bench_support::add_sockets;
use gmws::protocol::decoder::{Decoder, Limits, Message, Role};
use gmws::{Hub, SocketId};
use serde_json::json;

/// The client end of a loopback connection, made once. Every socket of every
/// hub is a duplicate of it (one file descriptor each, closed with the hub);
/// the accepted end is kept open and never read, so nothing written reaches
/// anyone (and a write cannot raise SIGPIPE).
pub fn stream() -> &'static TcpStream {
    static PAIR: OnceLock<(TcpStream, TcpStream)> = OnceLock::new();
    &PAIR
        .get_or_init(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            let client = TcpStream::connect(listener.local_addr().expect("local_addr"))
                .expect("connect over loopback");
            let (server, _) = listener.accept().expect("accept");
            (client, server)
        })
        .0
}

/// Six open sockets, ids 1 to 6 (a hub of `bench_support` is node 0, loop
/// 0: an id is the hub's connection counter; the next connection gets 7),
/// here by index:
///
/// | index | client id | groups | session |
/// | --- | --- | --- | --- |
/// | 0 | `alice` | `room`, `lobby` | `{"name":"alice","n":1}` |
/// | 1 | `alice` | `room` | |
/// | 2 | `bob` | `lobby` | |
/// | 3 | (unbound) | `room` | |
/// | 4 | (unbound) | | |
/// | 5 | `42` | | |
pub fn populate(hub: &mut Hub) -> Vec<SocketId> {
    let ids = add_sockets(hub, stream(), 6).expect("sockets over loopback");
    for (slot, client) in [(0, "alice"), (1, "alice"), (2, "bob"), (5, "42")] {
        hub.bind_client(ids[slot], client).expect("bind");
    }
    for (slot, group) in [
        (0, "room"),
        (0, "lobby"),
        (1, "room"),
        (2, "lobby"),
        (3, "room"),
    ] {
        hub.join_group(ids[slot], group).expect("join");
    }
    hub.set_session(ids[0], json!({"name": "alice", "n": 1}))
        .expect("session");
    ids
}

/// What the server queued on a WebSocket is whole, unmasked frames: text
/// messages shaped as JSON envelopes (an object with a string `type`), or a
/// close frame with a valid code.
pub fn check_frames(bytes: &[u8]) {
    let mut buf = bytes.to_vec();
    let mut decoder = Decoder::new(Role::Client, Limits::default());
    let mut at = 0;
    while at < buf.len() {
        let (consumed, message) = decoder
            .decode(&mut buf[at..])
            .unwrap_or_else(|e| panic!("queued frames do not decode: {e} at {at} of {bytes:?}"));
        assert!(
            consumed > 0,
            "a partial frame is queued: {:?}",
            &bytes[at..]
        );
        at += consumed;
        match message {
            None => {}
            Some(Message::Text(text)) => {
                // Envelopes are serde_json's output: their shape is checked,
                // not re-parsed (that tripled the cost of a run).
                assert!(
                    text.starts_with("{\"") && text.ends_with('}') && text.contains("\"type\":\""),
                    "not an envelope: {text}"
                );
            }
            Some(Message::Close(close)) => {
                assert!(close.is_none_or(|c| c.code.is_valid_on_wire()));
            }
            Some(other) => panic!("unexpected message queued: {other:?}"),
        }
    }
}

/// The hub's indexes agree with each socket's own data: every online bound
/// socket is among its client's sockets, every group it is in lists it, every
/// group member is online, each group's client count is the number of
/// distinct bound clients among its members, the online counts match.
pub fn check_indexes(hub: &Hub, sockets: &[SocketId]) {
    let online: Vec<SocketId> = sockets
        .iter()
        .copied()
        .filter(|s| hub.is_socket_online(*s))
        .collect();
    let mut clients = HashSet::new();
    let mut groups = HashSet::new();
    for &s in &online {
        if let Some(client) = hub.client_id(s) {
            assert!(
                hub.client_sockets(client).contains(&s),
                "{s} not among {client}'s sockets"
            );
            clients.insert(client.to_owned());
        }
        for group in hub.socket_groups(s) {
            assert!(
                hub.group_members(&group).contains(&s),
                "{s} not listed in {group:?}"
            );
            groups.insert(group);
        }
    }
    for s in sockets.iter().filter(|s| !hub.is_socket_online(**s)) {
        assert!(hub.client_id(*s).is_none(), "closed {s} keeps a client id");
        assert!(hub.socket_groups(*s).is_empty(), "closed {s} keeps groups");
    }
    for group in &groups {
        let members = hub.group_members(group);
        assert!(
            members.iter().all(|m| hub.is_socket_online(*m)),
            "{group:?} lists a closed socket"
        );
        let bound: HashSet<&str> = members.iter().filter_map(|m| hub.client_id(*m)).collect();
        assert_eq!(
            hub.group_clients_count(group),
            bound.len(),
            "client count of {group:?}"
        );
        assert_eq!(hub.group_sockets_count(group), members.len());
    }
    assert!(hub.online_sockets() >= online.len());
    assert_eq!(hub.online_clients(), clients.len(), "online clients");
    assert_eq!(hub.groups_count(), groups.len(), "groups");
}
