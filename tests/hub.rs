//! Every hub function over real TCP, driven by a test handler that reads
//! one command per text message and answers with its result as text.
//!
//! Commands (`me` stands for the sender's own socket id):
//! `join SID G`, `leave SID G`, `ungroup G`, `group G`, `groups_of SID`,
//! `bind SID CID`, `unbind SID`, `client_id SID`, `client_sockets CID`,
//! `online_socket SID`, `online_client CID`, `send_to_socket SID TEXT`,
//! `send_bytes SID TEXT`, `send_json SID JSON`, `send_to_client CID TEXT`,
//! `send_to_all TEXT`, `send_to_all_clients TEXT`,
//! `send_to_group G EXCL,… TEXT` (`-` for no exclusion), `session_set SID JSON`,
//! `session_update SID JSON`, `session_get SID`, `close SID CODE REASON`,
//! `counts`, `timer MS` / `interval MS` (tied to the sender),
//! `free_timer MS SID` / `free_interval MS SID` (tied to no socket, fired at
//! SID), `timer_on MS SID` (tied to SID, reported to the sender), `cancel N`, `fires N`, `watch`, `echo TEXT`, `panic`,
//! `batch CMD | CMD | …` (several commands in one handler call, in order).
//! Every reply is `<command> -> <result>`.

mod support;

use std::time::Duration;

use gmws::{CloseCode, CloseReason, Config, Handler, Hub, Payload, SocketId, TimerHandle};
use serde_json::{json, Value};
use support::*;

/// A timer the handler created.
struct Timer {
    handle: TimerHandle,
    /// The socket it is tied to.
    tied: Option<SocketId>,
    /// Where its firing is reported.
    report_to: SocketId,
    fires: u64,
}

/// The command interpreter.
#[derive(Default)]
struct Commands {
    /// Timers by index.
    timers: Vec<Timer>,
    /// Receives a line for every `on_close`.
    watcher: Option<SocketId>,
    /// Timer indexes that fired for a socket that was not online.
    fired_offline: Vec<usize>,
}

fn sid(me: SocketId, word: &str) -> SocketId {
    if word == "me" {
        me
    } else {
        word.parse().expect("socket id")
    }
}

fn sorted(ids: Vec<SocketId>) -> String {
    let mut ids: Vec<u64> = ids.iter().map(|s| s.as_u64()).collect();
    ids.sort_unstable();
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("[{}]", ids.join(","))
}

/// Split `n` words off `rest`; the remainder is the last argument.
fn words(rest: &str, n: usize) -> (Vec<&str>, &str) {
    let mut out = Vec::new();
    let mut tail = rest;
    for _ in 0..n {
        let (w, t) = tail.split_once(' ').unwrap_or((tail, ""));
        out.push(w);
        tail = t;
    }
    (out, tail)
}

fn json_arg(text: &str) -> Value {
    serde_json::from_str(text).expect("json argument")
}

impl Commands {
    fn run(&mut self, hub: &mut Hub, me: SocketId, line: &str) -> String {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        // The first word as a socket id, and the rest.
        let (w, tail) = words(rest, 1);
        let target = || sid(me, w[0]);
        let out = match cmd {
            "echo" => rest.to_owned(),
            "batch" => rest
                .split(" | ")
                .map(|line| self.run(hub, me, line))
                .collect::<Vec<_>>()
                .join(" | "),
            "panic" => panic!("the test asked for a panic"),
            "join" => format!("{:?}", hub.join_group(target(), tail)),
            "leave" => hub.leave_group(target(), tail).to_string(),
            "ungroup" => hub.ungroup(rest).to_string(),
            "group" => format!(
                "sockets={} clients={} members={}",
                hub.group_sockets_count(rest),
                hub.group_clients_count(rest),
                sorted(hub.group_members(rest))
            ),
            "groups_of" => {
                let mut groups = hub.socket_groups(target());
                groups.sort();
                groups.join(",")
            }
            "bind" => format!("{:?}", hub.bind_client(target(), tail)),
            "unbind" => format!("{:?}", hub.unbind_client(target())),
            "client_id" => format!("{:?}", hub.client_id(target())),
            "client_sockets" => sorted(hub.client_sockets(rest)),
            "online_socket" => hub.is_socket_online(target()).to_string(),
            "online_client" => hub.is_client_online(rest).to_string(),
            "send_to_socket" => hub.send_to_socket(target(), tail).is_ok().to_string(),
            "send_result" => format!("{:?}", hub.send_to_socket(target(), tail)),
            "send_bytes" => hub
                .send_to_socket(target(), Payload::Binary(tail.as_bytes()))
                .is_ok()
                .to_string(),
            "send_json" => hub
                .send_to_socket(target(), &json_arg(tail))
                .is_ok()
                .to_string(),
            "send_to_client" => hub.send_to_client(w[0], tail).to_string(),
            "send_to_all" => hub.send_to_all(rest).to_string(),
            "send_to_all_clients" => hub.send_to_all_clients(rest).to_string(),
            "send_to_group" => {
                let (w, text) = words(rest, 2);
                let exclude: Vec<SocketId> = match w[1] {
                    "-" => Vec::new(),
                    list => list.split(',').map(|x| sid(me, x)).collect(),
                };
                hub.send_to_group(w[0], text, &exclude).to_string()
            }
            "session_set" => hub
                .set_session(target(), json_arg(tail))
                .is_ok()
                .to_string(),
            "session_update" => match json_arg(tail) {
                Value::Object(fields) => hub.update_session(target(), fields).is_ok().to_string(),
                other => panic!("not an object: {other}"),
            },
            "session_get" => match hub.get_session(target()) {
                Some(v) => v.to_string(),
                None => "none".to_owned(),
            },
            "close" => {
                let (w, reason) = words(rest, 2);
                let code: u16 = w[1].parse().expect("code");
                hub.close_socket(sid(me, w[0]), CloseCode(code), reason)
                    .is_ok()
                    .to_string()
            }
            "counts" => format!(
                "sockets={} clients={} groups={} connections={}",
                hub.online_sockets(),
                hub.online_clients(),
                hub.groups_count(),
                hub.connections()
            ),
            "timer" | "interval" | "free_timer" | "free_interval" | "timer_on" => {
                let delay = Duration::from_millis(w[0].parse().expect("ms"));
                let every = cmd.ends_with("interval").then_some(delay);
                let (tied, report_to) = match cmd {
                    "free_timer" | "free_interval" => (None, sid(me, tail)),
                    "timer_on" => (Some(sid(me, tail)), me),
                    _ => (Some(me), me),
                };
                let handle = hub.add_timer(delay, every, tied);
                self.timers.push(Timer {
                    handle,
                    tied,
                    report_to,
                    fires: 0,
                });
                (self.timers.len() - 1).to_string()
            }
            "cancel" => {
                let i: usize = rest.parse().expect("index");
                hub.cancel_timer(self.timers[i].handle).to_string()
            }
            "fires" => {
                let i: usize = rest.parse().expect("index");
                format!(
                    "{} offline={}",
                    self.timers[i].fires,
                    self.fired_offline.contains(&i)
                )
            }
            "watch" => {
                self.watcher = Some(me);
                "ok".to_owned()
            }
            _ => return format!("unknown command {cmd:?}"),
        };
        format!("{cmd} -> {out}")
    }
}

impl Handler for Commands {
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        let _ = hub.send_text(socket, &format!("id {socket}"));
    }

    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let reply = self.run(hub, socket, text);
        let _ = hub.send_text(socket, &reply);
    }

    fn on_close(&mut self, hub: &mut Hub, socket: SocketId, reason: &CloseReason) {
        let Some(watcher) = self.watcher.filter(|w| *w != socket) else {
            return;
        };
        let reason = match reason {
            CloseReason::ClientClose(code) => format!("client_close({:?})", code.map(|c| c.0)),
            CloseReason::ServerClose(code) => format!("server_close({})", code.0),
            other => other.label().to_owned(),
        };
        // A closing socket takes no more messages, and says why.
        let send = hub.send_text(socket, "too late");
        let line = format!(
            "closed {socket} {reason} client={:?} groups={:?} session={:?} online={} send={send:?}",
            hub.client_id(socket),
            hub.socket_groups(socket),
            hub.get_session(socket).map(|v| v.to_string()),
            hub.is_socket_online(socket),
        );
        let _ = hub.send_text(watcher, &line);
    }

    fn on_timer(&mut self, hub: &mut Hub, timer: TimerHandle, socket: Option<SocketId>) {
        let Some(i) = self.timers.iter().position(|t| t.handle == timer) else {
            return;
        };
        let t = &mut self.timers[i];
        t.fires += 1;
        assert_eq!(socket, t.tied, "on_timer got the wrong socket");
        if socket.is_some_and(|s| !hub.is_socket_online(s)) {
            self.fired_offline.push(i);
        }
        let _ = hub.send_text(t.report_to, &format!("fired {i}"));
    }
}

/// A client of the command server, with its socket id.
struct Peer {
    client: Client,
    id: String,
}

impl Peer {
    fn connect(addr: std::net::SocketAddr) -> Peer {
        let mut client = Client::connect(addr);
        let first = client.recv_text();
        let id = first.strip_prefix("id ").expect("id greeting").to_owned();
        Peer { client, id }
    }

    /// Run a command and return its result.
    fn cmd(&mut self, line: &str) -> String {
        self.client.send_text(line);
        let reply = self.client.recv_text();
        let name = line.split(' ').next().unwrap();
        reply
            .strip_prefix(&format!("{name} -> "))
            .unwrap_or_else(|| panic!("{line:?}: unexpected reply {reply:?}"))
            .to_owned()
    }

    /// Run a command whose effect reaches the sender itself first (`delivered`),
    /// then return its result.
    fn cmd_after(&mut self, line: &str, delivered: &str) -> String {
        self.client.send_text(line);
        assert_eq!(self.client.recv_text(), delivered, "{line:?}");
        let reply = self.client.recv_text();
        let name = line.split(' ').next().unwrap();
        reply
            .strip_prefix(&format!("{name} -> "))
            .unwrap_or_else(|| panic!("{line:?}: unexpected reply {reply:?}"))
            .to_owned()
    }

    fn recv(&mut self) -> String {
        self.client.recv_text()
    }

    /// Nothing else arrived before this round trip.
    fn assert_nothing_pending(&mut self) {
        assert_eq!(self.cmd("echo sync"), "sync");
    }
}

fn server(config: Config) -> TestServer {
    start(config, Commands::default())
}

fn ids_list(ids: &[&str]) -> String {
    let mut v: Vec<u64> = ids.iter().map(|s| s.parse().unwrap()).collect();
    v.sort_unstable();
    let v: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", v.join(","))
}

/// Wait until the hub holds `n` TCP connections (closed ones fully gone).
fn wait_connections(observer: &mut Peer, n: usize) {
    let want = format!("connections={n}");
    wait_for(&format!("{n} connections"), || {
        observer.cmd("counts").ends_with(&want).then_some(())
    });
}

#[test]
fn socket_ids_are_decimal_u64_strings_and_distinct() {
    let s = server(test_config());
    let a = Peer::connect(s.addr);
    let b = Peer::connect(s.addr);
    let (x, y): (u64, u64) = (a.id.parse().unwrap(), b.id.parse().unwrap());
    assert_ne!(x, y);
    // The loop's counter starts at 1: no socket id is 0.
    assert_ne!(x, 0);
}

#[test]
fn send_to_socket_text_binary_and_json() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    assert_eq!(a.cmd(&format!("send_to_socket {} hello b", b.id)), "true");
    assert_eq!(b.recv(), "hello b");
    assert_eq!(a.cmd(&format!("send_bytes {} raw", b.id)), "true");
    assert_eq!(b.client.recv_msg(), Msg::Binary(b"raw".to_vec()));
    assert_eq!(
        a.cmd(&format!("send_json {} {{\"k\":[1,2]}}", b.id)),
        "true"
    );
    let v: Value = serde_json::from_str(&b.recv()).unwrap();
    assert_eq!(v, json!({"k": [1, 2]}));
    // To oneself.
    assert_eq!(a.cmd_after("send_to_socket me self", "self"), "true");
    // An id that never existed.
    assert_eq!(a.cmd("send_to_socket 123456789 x"), "false");
    b.assert_nothing_pending();
}

#[test]
fn binding_clients_several_sockets_per_client() {
    let s = server(test_config());
    let mut a1 = Peer::connect(s.addr);
    let mut a2 = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);

    assert_eq!(a1.cmd("online_client alice"), "false");
    assert_eq!(a1.cmd("client_id me"), "None");
    assert_eq!(a1.cmd("bind me alice"), "Ok(())");
    assert_eq!(a2.cmd("bind me alice"), "Ok(())");
    assert_eq!(b.cmd("bind me bob"), "Ok(())");
    assert_eq!(b.cmd("online_client alice"), "true");
    assert_eq!(b.cmd(&format!("client_id {}", a2.id)), "Some(\"alice\")");
    assert_eq!(b.cmd("client_sockets alice"), ids_list(&[&a1.id, &a2.id]));
    assert_eq!(
        b.cmd("counts"),
        "sockets=3 clients=2 groups=0 connections=3"
    );

    // Both sockets of alice receive.
    assert_eq!(b.cmd("send_to_client alice to alice"), "2");
    assert_eq!(a1.recv(), "to alice");
    assert_eq!(a2.recv(), "to alice");
    assert_eq!(b.cmd("send_to_client nobody x"), "0");

    // Binding again to the same id changes nothing; rebinding moves the socket.
    assert_eq!(a1.cmd("bind me alice"), "Ok(())");
    assert_eq!(b.cmd("client_sockets alice"), ids_list(&[&a1.id, &a2.id]));
    assert_eq!(a2.cmd("bind me carol"), "Ok(())");
    assert_eq!(b.cmd("client_sockets alice"), ids_list(&[&a1.id]));
    assert_eq!(b.cmd("client_sockets carol"), ids_list(&[&a2.id]));
    assert_eq!(b.cmd("send_to_client alice again"), "1");
    assert_eq!(a1.recv(), "again");
    a2.assert_nothing_pending();

    // Unbinding.
    assert_eq!(a2.cmd("unbind me"), "Some(\"carol\")");
    assert_eq!(a2.cmd("unbind me"), "None");
    assert_eq!(b.cmd("online_client carol"), "false");
    assert_eq!(b.cmd("client_sockets carol"), "[]");
    assert_eq!(
        b.cmd("counts"),
        "sockets=3 clients=2 groups=0 connections=3"
    );

    // Another socket may bind someone else's socket (the hub API allows it).
    assert_eq!(b.cmd(&format!("bind {} dave", a2.id)), "Ok(())");
    assert_eq!(a2.cmd("client_id me"), "Some(\"dave\")");
}

#[test]
fn client_id_length_limits() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    assert_eq!(a.cmd("bind me "), "Err(BadClientId)");
    let longest = "c".repeat(255);
    assert_eq!(a.cmd(&format!("bind me {longest}")), "Ok(())");
    let too_long = "c".repeat(256);
    assert_eq!(a.cmd(&format!("bind me {too_long}")), "Err(BadClientId)");
    // The failed bind kept the previous binding.
    assert_eq!(a.cmd("client_id me"), format!("Some({longest:?})"));
}

#[test]
fn send_to_all_and_send_to_all_clients() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    let mut unbound = Peer::connect(s.addr);
    assert_eq!(a.cmd("bind me alice"), "Ok(())");
    assert_eq!(b.cmd("bind me bob"), "Ok(())");

    assert_eq!(unbound.cmd_after("send_to_all everyone", "everyone"), "3");
    for p in [&mut a, &mut b] {
        assert_eq!(p.recv(), "everyone");
    }

    assert_eq!(unbound.cmd("send_to_all_clients bound only"), "2");
    assert_eq!(a.recv(), "bound only");
    assert_eq!(b.recv(), "bound only");
    unbound.assert_nothing_pending();

    // A socket that closed receives neither.
    b.client
        .send_frame(gmws::protocol::OpCode::Close, true, &1000u16.to_be_bytes());
    b.client.expect_close(1000);
    assert_eq!(a.cmd_after("send_to_all x", "x"), "2");
    assert_eq!(unbound.recv(), "x");
    assert_eq!(a.cmd_after("send_to_all_clients y", "y"), "1");
    unbound.assert_nothing_pending();
}

#[test]
fn groups_join_leave_counts_members_and_exclusions() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut a2 = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    let mut outsider = Peer::connect(s.addr);
    assert_eq!(a.cmd("bind me alice"), "Ok(())");
    assert_eq!(a2.cmd("bind me alice"), "Ok(())");

    assert_eq!(a.cmd("join me room1"), "Ok(true)");
    assert_eq!(a.cmd("join me room1"), "Ok(false)");
    assert_eq!(a2.cmd("join me room1"), "Ok(true)");
    // b joins unbound, then binds: the client count follows.
    assert_eq!(b.cmd("join me room1"), "Ok(true)");
    assert_eq!(
        outsider.cmd("group room1"),
        format!(
            "sockets=3 clients=1 members={}",
            ids_list(&[&a.id, &a2.id, &b.id])
        )
    );
    assert_eq!(b.cmd("bind me bob"), "Ok(())");
    assert_eq!(
        outsider.cmd("group room1"),
        format!(
            "sockets=3 clients=2 members={}",
            ids_list(&[&a.id, &a2.id, &b.id])
        )
    );
    assert_eq!(a.cmd("join me room2"), "Ok(true)");
    assert_eq!(outsider.cmd(&format!("groups_of {}", a.id)), "room1,room2");
    assert_eq!(
        outsider.cmd("counts"),
        "sockets=4 clients=2 groups=2 connections=4"
    );

    // Send to the group: every member, not the outsider.
    assert_eq!(outsider.cmd("send_to_group room1 - hello room"), "3");
    for p in [&mut a, &mut a2, &mut b] {
        assert_eq!(p.recv(), "hello room");
    }
    outsider.assert_nothing_pending();

    // With exclusions.
    assert_eq!(
        b.cmd(&format!("send_to_group room1 me,{} not you", a2.id)),
        "1"
    );
    assert_eq!(a.recv(), "not you");
    a2.assert_nothing_pending();
    b.assert_nothing_pending();
    assert_eq!(outsider.cmd("send_to_group nogroup - x"), "0");

    // Unbinding one of alice's sockets keeps alice counted (a2 still in).
    assert_eq!(a.cmd("unbind me"), "Some(\"alice\")");
    assert_eq!(
        outsider.cmd("group room1").split(' ').nth(1),
        Some("clients=2")
    );
    assert_eq!(a2.cmd("unbind me"), "Some(\"alice\")");
    assert_eq!(
        outsider.cmd("group room1").split(' ').nth(1),
        Some("clients=1")
    );

    // Leave.
    assert_eq!(a2.cmd("leave me room1"), "true");
    assert_eq!(a2.cmd("leave me room1"), "false");
    assert_eq!(a2.cmd("leave me neverjoined"), "false");
    assert_eq!(
        outsider.cmd("group room1"),
        format!("sockets=2 clients=1 members={}", ids_list(&[&a.id, &b.id]))
    );

    // Ungroup dissolves the group; its members no longer list it.
    assert_eq!(outsider.cmd("ungroup room1"), "2");
    assert_eq!(outsider.cmd("ungroup room1"), "0");
    assert_eq!(
        outsider.cmd("group room1"),
        "sockets=0 clients=0 members=[]"
    );
    assert_eq!(outsider.cmd(&format!("groups_of {}", a.id)), "room2");
    assert_eq!(outsider.cmd(&format!("groups_of {}", b.id)), "");
    assert_eq!(outsider.cmd("send_to_group room1 - x"), "0");
    assert_eq!(
        outsider.cmd("counts"),
        "sockets=4 clients=1 groups=1 connections=4"
    );
    // After an ungroup a socket can join again.
    assert_eq!(b.cmd("join me room1"), "Ok(true)");
    assert_eq!(
        outsider.cmd("group room1").split(' ').next(),
        Some("sockets=1")
    );
    // The last member leaving removes the group.
    assert_eq!(a.cmd("leave me room2"), "true");
    assert_eq!(
        outsider.cmd("counts"),
        "sockets=4 clients=1 groups=1 connections=4"
    );
}

#[test]
fn group_limits() {
    let mut config = test_config();
    config.max_groups_per_socket = 2;
    let s = server(config);
    let mut a = Peer::connect(s.addr);
    assert_eq!(a.cmd("join me g1"), "Ok(true)");
    assert_eq!(a.cmd("join me g2"), "Ok(true)");
    assert_eq!(a.cmd("join me g3"), "Err(TooManyGroups)");
    // Rejoining a group it is in is not a new group.
    assert_eq!(a.cmd("join me g2"), "Ok(false)");
    assert_eq!(a.cmd("leave me g1"), "true");
    assert_eq!(a.cmd("join me g3"), "Ok(true)");
    assert_eq!(a.cmd("groups_of me"), "g2,g3");

    let mut b = Peer::connect(s.addr);
    assert_eq!(b.cmd("join me "), "Err(BadGroupName)");
    let longest = "g".repeat(255);
    assert_eq!(b.cmd(&format!("join me {longest}")), "Ok(true)");
    let too_long = "g".repeat(256);
    assert_eq!(b.cmd(&format!("join me {too_long}")), "Err(BadGroupName)");
    assert_eq!(
        b.cmd("counts"),
        "sockets=2 clients=0 groups=3 connections=2"
    );
}

#[test]
fn sessions_set_update_get() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    assert_eq!(a.cmd("session_get me"), "none");
    assert_eq!(a.cmd(r#"session_set me {"name":"Ann","n":1}"#), "true");
    let get = |p: &mut Peer, who: &str| -> Value {
        serde_json::from_str(&p.cmd(&format!("session_get {who}"))).unwrap()
    };
    assert_eq!(get(&mut b, &a.id), json!({"name": "Ann", "n": 1}));
    // Merge: top-level keys replaced, new ones added, null removes.
    assert_eq!(
        b.cmd(&format!(
            r#"session_update {} {{"n":2,"x":[1],"name":null}}"#,
            a.id
        )),
        "true"
    );
    assert_eq!(get(&mut a, "me"), json!({"n": 2, "x": [1]}));
    // Replace.
    assert_eq!(a.cmd(r#"session_set me {"only":true}"#), "true");
    assert_eq!(get(&mut a, "me"), json!({"only": true}));
    // Update with no session yet starts from an empty object.
    assert_eq!(b.cmd(r#"session_update me {"k":"v","gone":null}"#), "true");
    assert_eq!(get(&mut b, "me"), json!({"k": "v"}));
    // A non-object session is replaced by an object on update.
    assert_eq!(b.cmd("session_set me 42"), "true");
    assert_eq!(get(&mut b, "me"), json!(42));
    assert_eq!(b.cmd(r#"session_update me {"k":1}"#), "true");
    assert_eq!(get(&mut b, "me"), json!({"k": 1}));
    // Sessions of an unknown socket.
    assert_eq!(b.cmd("session_get 77"), "none");
    assert_eq!(b.cmd("session_set 77 {}"), "false");
    assert_eq!(b.cmd("session_update 77 {}"), "false");
}

#[test]
fn close_socket_sends_the_code_and_reason() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    assert_eq!(b.cmd("watch"), "ok");
    assert_eq!(b.cmd(&format!("close {} 4000 bye now", a.id)), "true");
    assert_eq!(a.client.answer_close(4000), "bye now");
    let line = b.recv();
    assert!(
        line.starts_with(&format!("closed {} server_close(4000)", a.id))
            && line.ends_with("send=Err(Closing)"),
        "{line}"
    );
    assert_eq!(b.cmd(&format!("online_socket {}", a.id)), "false");
    assert_eq!(b.cmd(&format!("close {} 4000 again", a.id)), "false");
    // A handler may close its own socket.
    // (The close frame comes first; the reply is never sent.)
    b.client.send_text("close me 4321 self");
    b.client.answer_close(4321);
}

#[test]
fn is_socket_online_and_counts_follow_connects_and_closes() {
    let s = server(test_config());
    let mut obs = Peer::connect(s.addr);
    assert_eq!(
        obs.cmd("counts"),
        "sockets=1 clients=0 groups=0 connections=1"
    );
    let mut a = Peer::connect(s.addr);
    let b = Peer::connect(s.addr);
    assert_eq!(obs.cmd(&format!("online_socket {}", a.id)), "true");
    assert_eq!(obs.cmd("online_socket me"), "true");
    assert_eq!(
        obs.cmd("counts"),
        "sockets=3 clients=0 groups=0 connections=3"
    );
    // A clean close.
    a.client
        .send_frame(gmws::protocol::OpCode::Close, true, &1000u16.to_be_bytes());
    a.client.expect_close(1000);
    drop(a.client);
    // A dropped TCP connection.
    let b_id = b.id.clone();
    drop(b);
    wait_connections(&mut obs, 1);
    assert_eq!(obs.cmd(&format!("online_socket {}", a.id)), "false");
    assert_eq!(obs.cmd(&format!("online_socket {b_id}")), "false");
    assert_eq!(
        obs.cmd("counts"),
        "sockets=1 clients=0 groups=0 connections=1"
    );
}

#[test]
fn close_cleans_up_groups_and_client_binding() {
    let s = server(test_config());
    let mut obs = Peer::connect(s.addr);
    let mut a = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    assert_eq!(a.cmd("bind me alice"), "Ok(())");
    assert_eq!(a.cmd("join me room"), "Ok(true)");
    assert_eq!(a.cmd("join me solo"), "Ok(true)");
    assert_eq!(b.cmd("bind me bob"), "Ok(())");
    assert_eq!(b.cmd("join me room"), "Ok(true)");
    assert_eq!(
        obs.cmd("group room"),
        format!("sockets=2 clients=2 members={}", ids_list(&[&a.id, &b.id]))
    );
    assert_eq!(obs.cmd("watch"), "ok");

    let a_id = a.id.clone();
    drop(a); // TCP gone without a close frame
    let line = obs.recv();
    assert!(
        line.starts_with(&format!("closed {a_id} connection_lost")),
        "{line}"
    );
    assert_eq!(
        obs.cmd("group room"),
        format!("sockets=1 clients=1 members={}", ids_list(&[&b.id]))
    );
    assert_eq!(obs.cmd("group solo"), "sockets=0 clients=0 members=[]");
    assert_eq!(obs.cmd("online_client alice"), "false");
    assert_eq!(obs.cmd("client_sockets alice"), "[]");
    assert_eq!(obs.cmd("send_to_client alice x"), "0");
    assert_eq!(obs.cmd("send_to_group room - to room"), "1");
    assert_eq!(b.recv(), "to room");
    assert_eq!(
        obs.cmd("counts"),
        "sockets=2 clients=1 groups=1 connections=2"
    );

    // A clean close does the same.
    b.client
        .send_frame(gmws::protocol::OpCode::Close, true, &1000u16.to_be_bytes());
    b.client.expect_close(1000);
    let line = obs.recv();
    assert!(
        line.starts_with(&format!("closed {} client_close(Some(1000))", b.id)),
        "{line}"
    );
    assert!(obs
        .cmd("counts")
        .starts_with("sockets=1 clients=0 groups=0 "));
    assert_eq!(obs.cmd("online_client bob"), "false");
}

/// The Handler docs promise: in `on_close`, the socket's client id, groups and
/// session can still be read.
#[test]

fn on_close_can_still_read_the_sockets_data() {
    let s = server(test_config());
    let mut obs = Peer::connect(s.addr);
    let mut a = Peer::connect(s.addr);
    assert_eq!(a.cmd("bind me alice"), "Ok(())");
    assert_eq!(a.cmd("join me room"), "Ok(true)");
    assert_eq!(a.cmd(r#"session_set me {"k":1}"#), "true");
    assert_eq!(obs.cmd("watch"), "ok");
    drop(a);
    let line = obs.recv();
    assert!(
        line.ends_with(
            r#"client=Some("alice") groups=["room"] session=Some("{\"k\":1}") online=false send=Err(Closing)"#
        ),
        "{line}"
    );
}

#[test]
fn a_stale_socket_id_addresses_nothing_even_when_its_slot_is_reused() {
    let s = server(test_config());
    let mut obs = Peer::connect(s.addr);
    let mut a = Peer::connect(s.addr);
    assert_eq!(a.cmd("bind me alice"), "Ok(())");
    assert_eq!(a.cmd("join me room"), "Ok(true)");
    let stale: SocketId = a.id.parse().unwrap();
    drop(a);
    wait_connections(&mut obs, 1);

    // The next connection gets a new id (the slab may reuse the slot).
    let mut c = Peer::connect(s.addr);
    let fresh: SocketId = c.id.parse().unwrap();
    assert_eq!(fresh.loop_index(), stale.loop_index());
    assert!(fresh.local() > stale.local(), "ids count up");

    let st = stale.to_string();
    assert_eq!(obs.cmd(&format!("online_socket {st}")), "false");
    assert_eq!(
        obs.cmd(&format!("send_to_socket {st} for the dead")),
        "false"
    );
    assert_eq!(
        obs.cmd(&format!("send_result {st} for the dead")),
        "Err(UnknownSocket)"
    );
    assert_eq!(obs.cmd(&format!("send_bytes {st} x")), "false");
    assert_eq!(obs.cmd(&format!("client_id {st}")), "None");
    assert_eq!(obs.cmd(&format!("groups_of {st}")), "");
    assert_eq!(obs.cmd(&format!("join {st} other")), "Err(NotOnline)");
    assert_eq!(obs.cmd(&format!("leave {st} room")), "false");
    assert_eq!(obs.cmd(&format!("bind {st} mallory")), "Err(NotOnline)");
    assert_eq!(obs.cmd(&format!("unbind {st}")), "None");
    assert_eq!(obs.cmd(&format!("session_set {st} {{}}")), "false");
    assert_eq!(
        obs.cmd(&format!("session_update {st} {{\"a\":1}}")),
        "false"
    );
    assert_eq!(obs.cmd(&format!("session_get {st}")), "none");
    assert_eq!(obs.cmd(&format!("close {st} 4000 x")), "false");
    assert_eq!(
        obs.cmd(&format!("send_to_group room {st} x")),
        "0",
        "the old member is gone from the group"
    );
    // The new connection in that slot was left alone.
    assert_eq!(c.cmd("client_id me"), "None");
    assert_eq!(c.cmd("groups_of me"), "");
    assert_eq!(c.cmd("session_get me"), "none");
    assert_eq!(obs.cmd(&format!("online_socket {}", c.id)), "true");
    c.assert_nothing_pending();
    assert_eq!(
        obs.cmd("counts"),
        "sockets=2 clients=0 groups=0 connections=2"
    );
}

#[test]
fn a_panicking_handler_closes_only_that_socket_with_1011() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    assert_eq!(b.cmd("watch"), "ok");
    a.client.send_text("panic");
    a.client.answer_close(1011);
    let line = b.recv();
    assert!(
        line.starts_with(&format!("closed {} handler_panic", a.id)),
        "{line}"
    );
    assert_eq!(b.cmd("echo still here"), "still here");
    assert_eq!(b.cmd(&format!("online_socket {}", a.id)), "false");
    // New connections are served too.
    let mut c = Peer::connect(s.addr);
    assert_eq!(c.cmd("echo hi"), "hi");
    // The metrics count the panic.
    let metrics = http_get(s.addr, "/metrics").text();
    assert_eq!(metric_value(&metrics, "gmws_handler_panics_total"), Some(1));
}

#[test]
fn one_shot_timer_fires_once_on_its_socket() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let i = a.cmd("timer 50");
    assert_eq!(a.recv(), format!("fired {i}"));
    assert_eq!(a.cmd(&format!("fires {i}")), "1 offline=false");
    // A fired one-shot cannot be cancelled.
    assert_eq!(a.cmd(&format!("cancel {i}")), "false");
    // A zero delay fires on the next turn.
    let j = a.cmd("timer 0");
    assert_eq!(a.recv(), format!("fired {j}"));
}

#[test]
fn interval_timer_repeats_until_cancelled() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let i = a.cmd("interval 20");
    for _ in 0..3 {
        assert_eq!(a.recv(), format!("fired {i}"));
    }
    a.client.send_text(&format!("cancel {i}"));
    // Fires queued before the cancel arrive first; then the reply.
    loop {
        let line = a.recv();
        if line == format!("fired {i}") {
            continue;
        }
        assert_eq!(line, "cancel -> true");
        break;
    }
    assert_eq!(a.cmd(&format!("cancel {i}")), "false");
    let before = a.cmd(&format!("fires {i}"));
    std::thread::sleep(Duration::from_millis(200));
    // No fire came in between: the next message is the reply.
    assert_eq!(a.cmd(&format!("fires {i}")), before);
}

#[test]
fn cancelled_one_shot_never_fires() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let i = a.cmd("timer 150");
    assert_eq!(a.cmd(&format!("cancel {i}")), "true");
    // A later timer fires; the cancelled one (due earlier) did not.
    let j = a.cmd("timer 300");
    assert_eq!(a.recv(), format!("fired {j}"));
    assert_eq!(a.cmd(&format!("fires {i}")), "0 offline=false");
}

#[test]
fn a_timer_not_tied_to_a_socket_outlives_its_creator() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut target = Peer::connect(s.addr);
    let i = a.cmd(&format!("free_interval 20 {}", target.id));
    drop(a);
    for _ in 0..3 {
        assert_eq!(target.recv(), format!("fired {i}"));
    }
    target.client.send_text(&format!("cancel {i}"));
    loop {
        let line = target.recv();
        if line != format!("fired {i}") {
            assert_eq!(line, "cancel -> true");
            break;
        }
    }
    // A one-shot free timer, too.
    let j = target.cmd("free_timer 10 me");
    assert_eq!(target.recv(), format!("fired {j}"));
}

#[test]
fn a_timer_tied_to_a_socket_stops_when_it_closes() {
    let s = server(test_config());
    let mut obs = Peer::connect(s.addr);
    let mut a = Peer::connect(s.addr);
    let i = a.cmd("interval 20");
    let once = a.cmd("timer 400");
    assert_eq!(a.recv(), format!("fired {i}"));
    drop(a);
    wait_connections(&mut obs, 1);
    let count = obs.cmd(&format!("fires {i}"));
    // Well past several intervals and the one-shot's due time.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(obs.cmd(&format!("fires {i}")), count);
    assert!(count.ends_with("offline=false"), "{count}");
    assert_eq!(obs.cmd(&format!("fires {once}")), "0 offline=false");
    // Both were cancelled with the socket.
    assert_eq!(obs.cmd(&format!("cancel {i}")), "false");
    assert_eq!(obs.cmd(&format!("cancel {once}")), "false");
}

#[test]
fn tungstenite_client_drives_the_hub_too() {
    use tungstenite::Message;
    let s = server(test_config());
    let mut ws = tungstenite_connect(s.addr);
    let id = tungstenite_recv_text(&mut ws)
        .strip_prefix("id ")
        .unwrap()
        .to_owned();
    let mut a = Peer::connect(s.addr);
    ws.send(Message::text("bind me tung")).unwrap();
    assert_eq!(tungstenite_recv_text(&mut ws), "bind -> Ok(())");
    ws.send(Message::text("join me g")).unwrap();
    assert_eq!(tungstenite_recv_text(&mut ws), "join -> Ok(true)");
    assert_eq!(a.cmd("send_to_client tung via client"), "1");
    assert_eq!(tungstenite_recv_text(&mut ws), "via client");
    assert_eq!(a.cmd("send_to_group g - via group"), "1");
    assert_eq!(tungstenite_recv_text(&mut ws), "via group");
    assert_eq!(a.cmd(&format!("send_bytes {id} bin")), "true");
    assert_eq!(ws.read().unwrap(), Message::binary(b"bin".to_vec()));
    assert_eq!(a.cmd(&format!("close {id} 4001 done")), "true");
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "done");
        }
        other => panic!("expected close, got {other:?}"),
    }
    // tungstenite sends its close reply on the next read; then TCP closes.
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {}
        other => panic!("expected the connection closed, got {other:?}"),
    }
    drop(ws);
    wait_connections(&mut a, 1);
    assert_eq!(a.cmd("online_client tung"), "false");
    assert_eq!(a.cmd("group g"), "sockets=0 clients=0 members=[]");
}

#[test]
fn many_sockets_fan_out() {
    let s = server(test_config());
    let mut peers: Vec<Peer> = (0..30).map(|_| Peer::connect(s.addr)).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        assert_eq!(p.cmd(&format!("join me g{}", i % 3)), "Ok(true)");
    }
    let mut obs = Peer::connect(s.addr);
    assert_eq!(obs.cmd("send_to_group g1 - one"), "10");
    assert_eq!(obs.cmd_after("send_to_all all", "all"), "31");
    for (i, p) in peers.iter_mut().enumerate() {
        if i % 3 == 1 {
            assert_eq!(p.recv(), "one");
        }
        assert_eq!(p.recv(), "all");
    }
}

/// Past `max_fanout_writes_per_turn`, a fan-out's idle recipients are
/// written in later turns (`hub/deferred.rs`); whatever else is sent to one
/// of them meanwhile, in the same handler call or a later turn, arrives after
/// the fan-out's frame.
#[test]
fn a_fan_out_past_the_turn_bound_keeps_every_sockets_order() {
    use tungstenite::Message;
    let mut config = test_config();
    config.max_fanout_writes_per_turn = 2;
    let s = server(config);
    let mut peers: Vec<Peer> = (0..12).map(|_| Peer::connect(s.addr)).collect();
    for p in &mut peers {
        assert_eq!(p.cmd("join me g"), "Ok(true)");
    }
    let mut ws = tungstenite_connect(s.addr);
    assert!(tungstenite_recv_text(&mut ws).starts_with("id "));
    ws.send(Message::text("join me g")).unwrap();
    assert_eq!(tungstenite_recv_text(&mut ws), "join -> Ok(true)");
    let mut obs = Peer::connect(s.addr);
    let (p3, p7) = (peers[3].id.clone(), peers[7].id.clone());
    // One handler call: a fan-out, a message to one member, a second
    // fan-out (queued: one fan-out at a time is deferred), a close.
    assert_eq!(
        obs.cmd(&format!(
            "batch send_to_group g - A | send_to_socket {p3} B | send_to_group g - C | close {p7} 4001 bye"
        )),
        "send_to_group -> 13 | send_to_socket -> true | send_to_group -> 13 | close -> true"
    );
    for (i, p) in peers.iter_mut().enumerate() {
        assert_eq!(p.recv(), "A", "peer {i}");
        if i == 3 {
            assert_eq!(p.recv(), "B");
        }
        assert_eq!(p.recv(), "C", "peer {i}");
        if i == 7 {
            p.client.expect_close(4001);
        }
    }
    assert_eq!(tungstenite_recv_text(&mut ws), "A");
    assert_eq!(tungstenite_recv_text(&mut ws), "C");
    // Two messages in one write: the second is read in the same turn or
    // while the first fan-out is still being written.
    let mut two = Vec::new();
    for text in [
        "send_to_group g - D".to_owned(),
        format!("send_to_socket {p3} E"),
    ] {
        let mask = Some((random_u64() as u32).to_be_bytes());
        gmws::protocol::encoder::encode_frame(
            &mut two,
            gmws::protocol::OpCode::Text,
            true,
            text.as_bytes(),
            mask,
        );
    }
    obs.client.send_raw(&two);
    assert_eq!(obs.recv(), "send_to_group -> 12");
    assert_eq!(obs.recv(), "send_to_socket -> true");
    for (i, p) in peers.iter_mut().enumerate().filter(|(i, _)| *i != 7) {
        assert_eq!(p.recv(), "D", "peer {i}");
        if i == 3 {
            assert_eq!(p.recv(), "E");
        }
        p.assert_nothing_pending();
    }
    assert_eq!(tungstenite_recv_text(&mut ws), "D");
}

/// DESIGN.md: "a timer of a closed socket fires into nothing"; `add_timer`:
/// "a timer tied to a socket is cancelled when that socket closes".
#[test]

fn a_timer_tied_to_a_closed_socket_never_fires() {
    let s = server(test_config());
    let mut obs = Peer::connect(s.addr);
    let a = Peer::connect(s.addr);
    let stale = a.id.clone();
    drop(a);
    wait_connections(&mut obs, 1);
    let i = obs.cmd(&format!("timer_on 10 {stale}"));
    let j = obs.cmd("timer 200");
    // Timers fire in order of their due time: the stale one would come first.
    assert_eq!(obs.recv(), format!("fired {j}"));
    assert_eq!(obs.cmd(&format!("fires {i}")), "0 offline=false");
}

#[test]
fn a_timer_tied_to_another_open_socket_passes_it_to_on_timer() {
    let s = server(test_config());
    let mut obs = Peer::connect(s.addr);
    let a = Peer::connect(s.addr);
    let i = obs.cmd(&format!("timer_on 10 {}", a.id));
    assert_eq!(obs.recv(), format!("fired {i}"));
    assert_eq!(obs.cmd(&format!("fires {i}")), "1 offline=false");
}

#[test]
fn rebinding_a_group_member_moves_its_client_count() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let mut b = Peer::connect(s.addr);
    assert_eq!(a.cmd("bind me alice"), "Ok(())");
    assert_eq!(b.cmd("bind me alice"), "Ok(())");
    assert_eq!(a.cmd("join me room"), "Ok(true)");
    assert_eq!(b.cmd("join me room"), "Ok(true)");
    assert!(a.cmd("group room").starts_with("sockets=2 clients=1 "));
    assert_eq!(b.cmd("bind me bob"), "Ok(())");
    assert!(a.cmd("group room").starts_with("sockets=2 clients=2 "));
    assert_eq!(a.cmd("bind me bob"), "Ok(())");
    assert!(a.cmd("group room").starts_with("sockets=2 clients=1 "));
    assert_eq!(a.cmd("online_client alice"), "false");
    assert_eq!(
        a.cmd("counts"),
        "sockets=2 clients=1 groups=1 connections=2"
    );
    assert_eq!(a.cmd("leave me room"), "true");
    assert_eq!(b.cmd("leave me room"), "true");
    assert_eq!(
        a.cmd("counts"),
        "sockets=2 clients=1 groups=0 connections=2"
    );
}

#[test]
fn close_reason_is_cut_to_fit_a_control_frame() {
    let s = server(test_config());
    let mut a = Peer::connect(s.addr);
    let long = "é".repeat(100); // 200 bytes
    a.client.send_text(&format!("close me 4000 {long}"));
    let reason = a.client.answer_close(4000);
    assert!(reason.len() <= 123, "{}", reason.len());
    assert!(long.starts_with(&reason));
    assert!(!reason.is_empty());
}

/// DESIGN.md: codes 1004-1006, 1015 and others outside 1000-1003, 1007-1011,
/// 3000-4999 are not valid on the wire. `close_socket` with such a code must
/// either refuse (false, socket stays open) or send a valid code instead.
#[test]

fn close_socket_never_sends_a_code_invalid_on_the_wire() {
    let s = server(test_config());
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        let mut a = Peer::connect(s.addr);
        a.client.send_text(&format!("close me {code} x"));
        match a.client.recv() {
            Recv::Msg(Msg::Text(t)) => {
                assert_eq!(t, "close -> false", "code {code}");
                a.assert_nothing_pending();
            }
            Recv::Msg(Msg::Close(Some(got), _)) => assert!(
                gmws::protocol::CloseCode(got).is_valid_on_wire(),
                "close_socket({code}) sent {got}"
            ),
            other => panic!("close_socket({code}): {other:?}"),
        }
    }
}
