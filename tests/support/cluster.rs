//! Cluster tests' support: a real `redis-server` of the test's own on a
//! free loopback port, nodes sharing it, tungstenite members.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gmws::{Config, Gateway, Remote};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::*;

/// A redis-server of this test's own; killed (and its dir removed) on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!("gmws-cluster-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.spawn();
        server
    }

    pub fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        wait_for("redis-server to answer", || {
            self.cli(&["PING"]).filter(|s| s.contains("PONG"))
        });
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A command through redis-cli: its output, if it ran.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Subscribers of `channel` (PUBSUB NUMSUB).
    pub fn subscribers(&self, channel: &str) -> u64 {
        self.cli(&["PUBSUB", "NUMSUB", channel])
            .and_then(|s| s.lines().nth(1).and_then(|l| l.trim().parse().ok()))
            .unwrap_or(0)
    }

    /// Send `signal` (`STOP`, `CONT`) to the redis-server.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .expect("kill(1)");
            assert!(status.success(), "kill -{signal}");
        }
    }

    /// This test executable re-run as a child process running only its
    /// `child_node` test, with this server's URL in the variable `env` (the
    /// test that reads it becomes a node until it is killed).
    pub fn child_node(&self, env: &str) -> Child {
        let exe = std::env::current_exe().expect("the test executable");
        Command::new(exe)
            .args([
                "--exact",
                "child_node",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(env, self.url())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child node")
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn node_config(redis: &str) -> Config {
    let mut config = api_test_config();
    config.cluster_redis = Some(redis.to_owned());
    config.node_lease = Duration::from_secs(3);
    config
}

pub fn node(redis: &str) -> TestServer {
    start(node_config(redis), Gateway)
}

/// A node with a `Remote` of its own.
pub fn node_with_remote(redis: &str) -> (TestServer, Remote) {
    let mut remote = None;
    let server = start_with(node_config(redis), Gateway, |s| remote = Some(s.remote()));
    (server, remote.expect("a remote"))
}

/// A counter of `/metrics` on `addr` (0 when absent).
pub fn metric(addr: SocketAddr, name: &str) -> u64 {
    metric_value(&http_get(addr, "/metrics").text(), name).unwrap_or(0)
}

/// The strings of a JSON list (socket ids), sorted.
pub fn ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Wait until `/healthz` answers 200 on every node of `addrs`.
pub fn wait_healthy(addrs: &[SocketAddr]) {
    wait_long("/healthz 200 on every node", || {
        addrs
            .iter()
            .all(|&a| http_get(a, "/healthz").status == 200)
            .then_some(())
    });
}

/// Two nodes on `redis`: alice on node A and bob on node B, both in `room`,
/// both nodes subscribed to it, bob online as node A sees him.
pub fn alice_and_bob(redis: &RedisServer) -> (TestServer, TestServer, Ws, Ws) {
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    let (a1, _) = member(a.addr, "alice", &["room"]);
    let (b1, _) = member(b.addr, "bob", &["room"]);
    wait_subscribed(redis, "gmws:g:room", 2);
    wait_for("bob online, seen from node A", || {
        (http_get(a.addr, "/api/clients/bob").json()["online"] == true).then_some(())
    });
    (a, b, a1, b1)
}

/// After Redis came back: nodes `a` and `b` healthy, both subscribed to
/// `room` again, delivery from `a` to `b1` (bob's socket on `b`), and bob's
/// presence rewritten by `b` and seen from `a`.
pub fn wait_recovered(redis: &RedisServer, a: SocketAddr, b: SocketAddr, b1: &mut Ws) {
    wait_healthy(&[a, b]);
    wait_subscribed(redis, "gmws:g:room", 2);
    deliver_eventually(a, "room", b1, "back");
    wait_long("bob's presence rewritten, seen from node A", || {
        (http_get(a, "/api/clients/bob").json()["online"] == true).then_some(())
    });
    assert!(metric(b, "gmws_cluster_rewrites_total") >= 1);
}

pub type Ws = WebSocket<TcpStream>;

/// Connect, bind `client`, join `groups`; returns the socket and its id.
pub fn member(addr: SocketAddr, client: &str, groups: &[&str]) -> (Ws, String) {
    let mut ws = tungstenite_connect(addr);
    let welcome = recv(&mut ws);
    let id = welcome["data"]["socket_id"].as_str().unwrap().to_owned();
    send(
        &mut ws,
        &json!({"type": "bind", "data": {"client_id": client}}),
    );
    assert_eq!(recv(&mut ws)["type"], "bind");
    for g in groups {
        send(&mut ws, &json!({"type": "join", "data": {"group": g}}));
        assert_eq!(recv(&mut ws)["type"], "join");
    }
    (ws, id)
}

pub fn send(ws: &mut Ws, v: &Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

pub fn recv(ws: &mut Ws) -> Value {
    serde_json::from_str(&tungstenite_recv_text(ws)).unwrap()
}

/// The next message's `message` field.
pub fn next_message(ws: &mut Ws) -> Value {
    let v = recv(ws);
    assert_eq!(v["type"], "message", "{v}");
    v["data"]["message"].clone()
}

pub fn api(addr: SocketAddr, path: &str, body: Value) -> HttpResponse {
    http_post_json(addr, path, &body)
}

/// The live nodes `GET /api/nodes` lists on `addr`, and their sockets.
pub fn live_nodes(addr: SocketAddr) -> Option<(usize, u64)> {
    let v = http_get(addr, "/api/nodes").json();
    let nodes = v["nodes"].as_array()?;
    let total = nodes
        .iter()
        .filter_map(|n| n["online_sockets"].as_u64())
        .sum();
    Some((nodes.len(), total))
}

/// The cluster's totals in `GET /status` on `addr`: (open sockets,
/// distinct online clients).
pub fn cluster_totals(addr: SocketAddr) -> Option<(u64, u64)> {
    let v = http_get(addr, "/status").json();
    let c = &v["cluster"];
    Some((c["online_sockets"].as_u64()?, c["online_clients"].as_u64()?))
}

pub fn wait_subscribed(redis: &RedisServer, channel: &str, n: u64) {
    wait_for(&format!("{n} subscriber(s) of {channel}"), || {
        (redis.subscribers(channel) >= n).then_some(())
    });
}

/// The next envelope within `wait`, whatever its type (`None` if none came).
pub fn try_envelope(ws: &mut Ws, wait: Duration) -> Option<Value> {
    ws.get_ref().set_read_timeout(Some(wait)).ok()?;
    let got = loop {
        match ws.read() {
            Ok(Message::Text(t)) => break serde_json::from_str(t.as_str()).ok(),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    let _ = ws.get_ref().set_read_timeout(Some(PATIENCE));
    got
}

/// The next message's `message` field, skipping other envelopes, each read
/// within `wait` (`None` if none came).
pub fn try_message(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        let v = try_envelope(ws, wait)?;
        if v["type"] == "message" {
            return Some(v["data"]["message"].clone());
        }
    }
}

/// Send `{prefix}-{n}` to `group` through `/api` on `from` until `to`
/// receives one (messages may be lost while a link comes back: at most
/// once); returns what arrived.
pub fn deliver_eventually(from: SocketAddr, group: &str, to: &mut Ws, prefix: &str) -> Value {
    let mut n = 0;
    wait_long(
        &format!("{prefix}: delivery to {group} across nodes"),
        || {
            n += 1;
            api(
                from,
                "/api/send_to_group",
                json!({"group": group, "message": format!("{prefix}-{n}")}),
            );
            try_message(to, Duration::from_millis(300))
                .filter(|m| m.as_str().is_some_and(|s| s.starts_with(prefix)))
        },
    )
}

/// [`wait_for`] with a longer patience (30 s), for recoveries that take a
/// reconnect with backoff and a liveness probe.
pub fn wait_long<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
