//! The HTTP API and socket operations across a cluster (issue 11 items 5
//! and 6): `/api/clients/:id` and `/api/groups/:group` on any node answer
//! for the whole cluster from Redis (the request parked on its loop until
//! Redis answers, pipelined requests after it kept in order); join, leave
//! and close of another node's socket from a `Remote` or `/api`; 503 with a
//! JSON error when Redis is gone. A real redis-server, two nodes,
//! tungstenite clients; deadlines only bound waiting.

mod support;

use gmws::{CloseCode, PostError};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use support::cluster::*;
use support::*;

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let r = http_get(addr, path);
    (r.status, r.json())
}

#[test]
fn the_api_on_either_node_answers_for_the_whole_cluster() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    let (_a1, a1_id) = member(a.addr, "alice", &["room"]);
    let (_b1, b1_id) = member(b.addr, "bob", &["room"]);
    let (mut b2, b2_id) = member(b.addr, "alice", &[]);

    let mut alice = vec![a1_id.clone(), b2_id.clone()];
    alice.sort();
    for addr in [a.addr, b.addr] {
        wait_for("alice's sockets on both nodes", || {
            let (status, v) = get(addr, "/api/clients/alice");
            (status == 200 && ids(&v["sockets"]) == alice && v["online"] == true).then_some(())
        });
        let (_, v) = get(addr, "/api/clients/nobody");
        assert_eq!(v["online"], false, "{v}");
        let mut room = vec![a1_id.clone(), b1_id.clone()];
        room.sort();
        wait_for("the room's members on both nodes", || {
            let (status, v) = get(addr, "/api/groups/room");
            (status == 200 && ids(&v["members"]) == room && v["sockets"] == 2 && v["clients"] == 2)
                .then_some(())
        });
    }

    // alice's second socket joins: three sockets, still two clients.
    send(&mut b2, &json!({"type": "join", "data": {"group": "room"}}));
    assert_eq!(recv(&mut b2)["type"], "join");
    wait_for("three members, two clients", || {
        let (_, v) = get(a.addr, "/api/groups/room");
        (v["sockets"] == 3 && v["clients"] == 2).then_some(())
    });

    // Pipelined: a cluster answer (parked) then a local one, in order, on
    // one connection; then the connection goes on serving.
    let mut stream = TcpStream::connect(a.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(
            b"GET /api/groups/room HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /api/clients/alice HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let first = read_http_response(&mut stream);
    assert_eq!(first.json()["sockets"], 3, "{}", first.text());
    let second = read_http_response(&mut stream);
    assert_eq!(ids(&second.json()["sockets"]), alice);
    let third = read_http_response(&mut stream);
    assert_eq!(third.text(), "ok\n");
    write_http_request(&mut stream, "GET", "/api/clients/bob", &[], None);
    let fourth = read_http_response(&mut stream);
    assert_eq!(ids(&fourth.json()["sockets"]), vec![b1_id.clone()]);
    // HEAD gets the head only, then the connection still serves.
    write_http_request(&mut stream, "HEAD", "/api/clients/bob", &[], None);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    write_http_request(&mut stream, "GET", "/healthz", &[], None);
    assert_eq!(read_http_response(&mut stream).text(), "ok\n");
}

#[test]
fn join_leave_and_close_reach_sockets_of_another_node() {
    let mut redis = RedisServer::start();
    let (a, remote_a) = node_with_remote(&redis.url());
    let b = node(&redis.url());
    let (mut a1, a1_id) = member(a.addr, "alice", &["room"]);
    let (mut b1, b1_id) = member(b.addr, "bob", &[]);
    wait_subscribed(&redis, "gmws:n:1", 1);
    wait_subscribed(&redis, "gmws:n:2", 1);
    let b1_socket: gmws::SocketId = b1_id.parse().unwrap();

    // Node A's Remote puts node B's socket in "lobby": B applies it.
    remote_a.join_group(b1_socket, "lobby").expect("published");
    wait_for("bob in lobby, seen from node A", || {
        let (_, v) = get(a.addr, "/api/groups/lobby");
        (ids(&v["members"]) == vec![b1_id.clone()]).then_some(())
    });
    wait_subscribed(&redis, "gmws:g:lobby", 1);
    let r = api(
        a.addr,
        "/api/send_to_group",
        json!({"group": "lobby", "message": "welcome"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(next_message(&mut b1), "welcome");
    remote_a.leave_group(b1_socket, "lobby").expect("published");
    wait_for("lobby empty", || {
        let (_, v) = get(b.addr, "/api/groups/lobby");
        (v["sockets"] == 0).then_some(())
    });

    // /api on node B closes node A's socket; its node does it.
    let r = api(
        b.addr,
        &format!("/api/sockets/{a1_id}/close"),
        json!({"code": 4001, "reason": "bye"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["closed"], true);
    loop {
        match a1.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 4001);
                assert_eq!(frame.reason.as_str(), "bye");
                break;
            }
            Ok(tungstenite::Message::Close(None)) => panic!("close without a code"),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }

    // Redis gone: the caller is told, nothing pretends to work.
    redis.kill();
    wait_for("/healthz 503 on node A", || {
        (http_get(a.addr, "/healthz").status == 503).then_some(())
    });
    assert_eq!(
        remote_a.join_group(b1_socket, "lobby"),
        Err(PostError::ClusterUnreachable)
    );
    assert_eq!(
        remote_a.close_socket(b1_socket, CloseCode(1000), ""),
        Err(PostError::ClusterUnreachable)
    );
    let r = api(a.addr, &format!("/api/sockets/{b1_id}/close"), json!({}));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["cluster"], "unreachable");
    for path in ["/api/clients/bob", "/api/groups/room"] {
        let r = http_get(a.addr, path);
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("cluster unreachable"));
    }
    // Node B's own socket, on node B, is untouched.
    send(&mut b1, &json!({"type": "join", "data": {"group": "solo"}}));
    assert_eq!(recv(&mut b1)["type"], "join");
}
