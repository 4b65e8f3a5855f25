//! Several event loops in one process (`workers = 4` on a 2-core machine),
//! over real TCP with tungstenite clients: every hub operation across
//! loops, the process-wide counts, the `Remote` from a foreign thread, the
//! HTTP API whichever loop serves it, and shutdown.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use gmws::{CloseCode, Config, Gateway, Handler, Hub, Remote, Server, SocketId};
use serde_json::{json, Value};
use support::*;
use tungstenite::{Message, WebSocket};

/// A command interpreter: each text message is one hub call, answered with
/// its result. `me` is the caller's socket.
struct Commands;

fn sid(me: SocketId, word: &str) -> SocketId {
    if word == "me" {
        me
    } else {
        word.parse().expect("socket id")
    }
}

impl Handler for Commands {
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let _ = hub.send_text(socket, &format!("id {socket} loop {}", hub.loop_index()));
    }

    fn on_text(&mut self, hub: &mut Hub, me: SocketId, text: &str) {
        let mut words = text.splitn(3, ' ');
        let cmd = words.next().unwrap_or("");
        let a = words.next().unwrap_or("");
        let b = words.next().unwrap_or("");
        let reply = match cmd {
            "send" => format!("{:?}", hub.send_to_socket(sid(me, a), b)),
            "group" => hub.send_to_group(a, b, &[]).to_string(),
            "group_but" => hub.send_to_group(a, "x", &[sid(me, b)]).to_string(),
            "client" => hub.send_to_client(a, b).to_string(),
            "all" => hub.send_to_all(a).to_string(),
            "all_clients" => hub.send_to_all_clients(a).to_string(),
            "join" => format!("{:?}", hub.join_group(sid(me, a), b)),
            "leave" => hub.leave_group(sid(me, a), b).to_string(),
            "ungroup" => hub.ungroup(a).to_string(),
            "bind" => format!("{:?}", hub.bind_client(sid(me, a), b)),
            "close" => format!("{:?}", hub.close_socket(sid(me, a), CloseCode(4000), b)),
            "session_set" => format!(
                "{:?}",
                hub.set_session(sid(me, a), serde_json::from_str(b).unwrap())
            ),
            "session_get" => format!("{:?}", hub.get_session(sid(me, a))),
            "online" => hub.is_socket_online(sid(me, a)).to_string(),
            "client_online" => hub.is_client_online(a).to_string(),
            "client_sockets" => hub.client_sockets(a).len().to_string(),
            "members" => {
                let mut m: Vec<u64> = hub.group_members(a).iter().map(|s| s.as_u64()).collect();
                m.sort_unstable();
                format!("{m:?}")
            }
            "counts" => format!(
                "sockets={} clients={} groups={} group_sockets={} group_clients={}",
                hub.online_sockets(),
                hub.online_clients(),
                hub.groups_count(),
                hub.group_sockets_count(a),
                hub.group_clients_count(a),
            ),
            other => format!("unknown {other}"),
        };
        let _ = hub.send_text(me, &format!("> {reply}"));
    }
}

struct Peer {
    ws: WebSocket<TcpStream>,
    id: SocketId,
    loop_index: usize,
    /// Messages that arrived while waiting for a command's reply.
    pending: std::collections::VecDeque<String>,
}

impl Peer {
    fn connect(addr: SocketAddr) -> Peer {
        let mut ws = tungstenite_connect(addr);
        let hello = tungstenite_recv_text(&mut ws);
        let words: Vec<&str> = hello.split(' ').collect();
        let id: SocketId = words[1].parse().unwrap();
        let loop_index: usize = words[3].parse().unwrap();
        assert_eq!(
            id.loop_index() as usize,
            loop_index,
            "the id names its loop"
        );
        Peer {
            ws,
            id,
            loop_index,
            pending: Default::default(),
        }
    }

    /// Send a command, return its `> ` reply (other messages are kept for
    /// `recv`).
    fn cmd(&mut self, line: &str) -> String {
        self.ws.send(Message::text(line)).unwrap();
        loop {
            let text = tungstenite_recv_text(&mut self.ws);
            match text.strip_prefix("> ") {
                Some(reply) => return reply.to_owned(),
                None => self.pending.push_back(text),
            }
        }
    }

    fn recv(&mut self) -> String {
        self.pending
            .pop_front()
            .unwrap_or_else(|| tungstenite_recv_text(&mut self.ws))
    }
}

fn multi(config: Config, configure: impl FnOnce(&mut Server<Commands>)) -> TestServer {
    let mut server = Server::bind_with(config, |_| Commands).expect("bind");
    configure(&mut server);
    support::run(server)
}

fn workers(n: usize) -> Config {
    let mut config = test_config();
    config.workers = n;
    config
}

/// `n` peers, asserting they landed on every loop.
fn peers(addr: SocketAddr, n: usize, loops: usize) -> Vec<Peer> {
    let peers: Vec<Peer> = (0..n).map(|_| Peer::connect(addr)).collect();
    let mut used: Vec<usize> = peers.iter().map(|p| p.loop_index).collect();
    used.sort_unstable();
    used.dedup();
    assert_eq!(
        used.len(),
        loops,
        "connections spread over every loop: {used:?}"
    );
    peers
}

#[test]
fn every_hub_operation_reaches_sockets_of_other_loops() {
    let server = multi(workers(4), |_| {});
    let mut p = peers(server.addr, 8, 4);
    let (a, b) = (p[0].id, p[1].id);
    assert_ne!(a.loop_index(), b.loop_index());

    // send_to_socket across loops.
    assert_eq!(p[0].cmd(&format!("send {b} hello from a")), "Ok(())");
    assert_eq!(p[1].recv(), "hello from a");

    // join another loop's socket, then group sends from any loop.
    for peer in &mut p[1..4] {
        let id = peer.id;
        assert_eq!(peer.cmd(&format!("join {id} room")), "Ok(true)");
    }
    let fifth = p[4].id;
    assert_eq!(p[0].cmd(&format!("join {fifth} room")), "Ok(true)");
    wait_for("the view to show 4 members", || {
        (p[0].cmd("counts room").contains("group_sockets=4")).then_some(())
    });
    assert_eq!(p[0].cmd("group room to the room"), "4");
    for peer in &mut p[1..5] {
        assert_eq!(peer.recv(), "to the room");
    }
    // Exclusions across loops.
    let excluded = p[2].id;
    assert_eq!(p[0].cmd(&format!("group_but room {excluded}")), "3");
    for i in [1, 3, 4] {
        assert_eq!(p[i].recv(), "x");
    }
    // Members, from any loop.
    let mut expected: Vec<u64> = p[1..5].iter().map(|x| x.id.as_u64()).collect();
    expected.sort_unstable();
    assert_eq!(p[7].cmd("members room"), format!("{expected:?}"));

    // bind across loops, send_to_client reaching sockets on two loops.
    let seventh = p[6].id;
    assert_eq!(p[5].cmd(&format!("bind {seventh} carol")), "Ok(())");
    assert_eq!(p[5].cmd("bind me carol"), "Ok(())");
    wait_for("carol on two sockets", || {
        (p[0].cmd("client_sockets carol") == "2").then_some(())
    });
    assert_eq!(p[0].cmd("client_online carol"), "true");
    assert_eq!(p[0].cmd("client carol for carol"), "2");
    assert_eq!(p[5].recv(), "for carol");
    assert_eq!(p[6].recv(), "for carol");
    assert_eq!(p[7].cmd("all_clients to-the-bound"), "2");
    assert_eq!(p[5].recv(), "to-the-bound");
    assert_eq!(p[6].recv(), "to-the-bound");

    // Sessions of another loop's socket: set there, read here.
    let far = p[3].id;
    assert_eq!(
        p[0].cmd(&format!(r#"session_set {far} {{"k":1}}"#)),
        "Ok(())"
    );
    wait_for("the session in the view", || {
        (p[0].cmd(&format!("session_get {far}")) == r#"Some(Object {"k": Number(1)})"#)
            .then_some(())
    });

    // leave and ungroup across loops.
    assert_eq!(p[0].cmd(&format!("leave {fifth} room")), "true");
    wait_for("3 members", || {
        (p[0].cmd("counts room").contains("group_sockets=3")).then_some(())
    });
    assert_eq!(p[7].cmd("ungroup room"), "3");
    wait_for("no group", || {
        (p[0].cmd("counts room").contains("groups=0")).then_some(())
    });

    // send_to_all reaches every loop.
    assert_eq!(p[0].cmd("all everyone"), "8");
    for peer in &mut p {
        assert_eq!(peer.recv(), "everyone");
    }

    // Close another loop's socket.
    let victim = p[7].id;
    assert_eq!(p[0].cmd(&format!("close {victim} bye")), "Ok(())");
    match p[7].ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected a close, got {other:?}"),
    }
    wait_for("7 sockets", || {
        (p[0].cmd("counts -").contains("sockets=7")).then_some(())
    });
    assert_eq!(p[0].cmd(&format!("online {victim}")), "false");
    assert_eq!(
        p[0].cmd(&format!("send {victim} late")),
        "Err(UnknownSocket)"
    );
}

#[test]
fn the_remote_sends_from_a_foreign_thread() {
    let mut remote: Option<Remote> = None;
    let server = multi(workers(4), |s| remote = Some(s.remote()));
    let remote = remote.unwrap();
    let mut p = peers(server.addr, 4, 4);
    for peer in &mut p {
        let id = peer.id;
        assert_eq!(peer.cmd(&format!("join {id} news")), "Ok(true)");
    }
    let target = p[2].id;
    let thread = std::thread::spawn(move || {
        remote
            .send_to_group("news", &json!({"headline": "remote"}), &[])
            .unwrap();
        remote.send_to_socket(target, "just you").unwrap();
        remote
            .close_socket(target, CloseCode(4001), "done")
            .unwrap();
    });
    thread.join().unwrap();
    for peer in &mut p {
        let v: Value = serde_json::from_str(&peer.recv()).unwrap();
        assert_eq!(v["headline"], "remote");
    }
    assert_eq!(p[2].recv(), "just you");
    match p[2].ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4001),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[test]
fn the_http_api_and_status_answer_for_the_whole_process() {
    let mut config = api_test_config();
    config.workers = 4;
    config.ping_interval = Duration::ZERO;
    config.auth_timeout = Duration::ZERO;
    let server = support::run(Server::bind_with(config, |_| Gateway).expect("bind"));
    let mut clients: Vec<_> = (0..8)
        .map(|i| {
            let mut ws = tungstenite_connect(server.addr);
            let _welcome = tungstenite_recv_text(&mut ws);
            let bind = json!({"type": "bind", "data": {"client_id": format!("u{i}")}});
            ws.send(Message::text(bind.to_string())).unwrap();
            let join = json!({"type": "join", "data": {"group": "all8"}});
            ws.send(Message::text(join.to_string())).unwrap();
            let _bound = tungstenite_recv_text(&mut ws);
            let _joined = tungstenite_recv_text(&mut ws);
            ws
        })
        .collect();
    // /status and /api, whichever loop serves them, see all 8.
    for _ in 0..8 {
        let status = wait_for("8 online", || {
            let s = http_get(server.addr, "/status").json();
            (s["online_sockets"] == 8).then_some(s)
        });
        assert_eq!(status["online_clients"], 8);
        assert_eq!(status["groups"], 1);
        let group = http_get(server.addr, "/api/groups/all8").json();
        assert_eq!(group["sockets"], 8);
        assert_eq!(group["clients"], 8);
    }
    let r = http_post_json(
        server.addr,
        "/api/send_to_group",
        &json!({"group": "all8", "message": "via api"}),
    );
    assert_eq!(r.json()["delivered"], 8);
    for ws in &mut clients {
        let v: Value = serde_json::from_str(&tungstenite_recv_text(ws)).unwrap();
        assert_eq!(v["data"]["message"], "via api");
    }
    let metrics = http_get(server.addr, "/metrics").text();
    assert!(metrics.contains("gmws_online_sockets 8"), "{metrics}");
    for i in 0..4 {
        assert!(
            metrics.contains(&format!("gmws_loop_connections{{loop=\"{i}\"}}")),
            "{metrics}"
        );
    }
}

#[test]
fn shutdown_closes_every_loops_sockets_with_1001() {
    let server = multi(workers(4), |_| {});
    let mut p = peers(server.addr, 4, 4);
    drop(server); // shuts down and joins every loop
    for peer in &mut p {
        match peer.ws.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected 1001, got {other:?}"),
        }
    }
}

/// A loop stuck in a handler is not handed new connections: with two loops
/// and one of them blocked (its handler waits on a gate the test holds),
/// every new client is served by the other loop.
#[test]
fn a_stalled_loop_is_not_handed_new_connections() {
    use std::sync::mpsc::{sync_channel, Receiver};
    use std::sync::{Arc, Mutex};

    struct Staller {
        gate: Arc<Mutex<Receiver<()>>>,
    }
    impl Handler for Staller {
        fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
            let _ = hub.send_text(socket, &format!("id {socket} loop {}", hub.loop_index()));
        }
        fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
            if text == "stall" {
                let _ = self.gate.lock().unwrap().recv(); // the loop stops here
            }
            let _ = hub.send_text(socket, text);
        }
    }
    let (release, gate) = sync_channel::<()>(0);
    let gate = Arc::new(Mutex::new(gate));
    let server = support::run(
        Server::bind_with(workers(2), move |_| Staller {
            gate: Arc::clone(&gate),
        })
        .expect("bind"),
    );
    let mut first = Peer::connect(server.addr);
    first.ws.send(Message::text("stall")).unwrap();
    // Past STALL_MS the acceptor sees the loop stalled.
    std::thread::sleep(Duration::from_millis(gmws::STALL_MS + 150));
    let fresh: Vec<Peer> = (0..6).map(|_| Peer::connect(server.addr)).collect();
    for p in &fresh {
        assert_ne!(p.loop_index, first.loop_index, "handed to the stalled loop");
    }
    release.send(()).unwrap();
    assert_eq!(first.recv(), "stall");
}
