//! Scheduled jobs once per cluster (issue 13, item 5) over real TCP: a real
//! `redis-server` of each test's own, gmws nodes sharing it (in-process
//! servers, or this test executable re-run as a child node that is
//! SIGKILLed), tungstenite clients in a group. Each run of a job pushes a
//! message stamped with its occurrence's time and the node that ran it to
//! the group, so every member sees, for each occurrence, how many runs it
//! had across the nodes. Deadlines are generous and only bound waiting.

mod support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gmws::scheduler::{Fire, JobOptions, Trigger};
use gmws::{Config, Envelope, EnvelopeHandler, Gateway, Hub, Server, SocketId};
use serde_json::{json, Value};
use support::cluster::RedisServer;
use support::*;
use tungstenite::{Message, WebSocket};

/// How long a test waits for a number of occurrences at most.
const LONG: Duration = Duration::from_secs(90);

/// The gateway, whose jobs push `{"job", "at" (ms), "node"}` to `room`.
struct Stamped;

impl EnvelopeHandler for Stamped {
    fn on_connect(&mut self, hub: &mut Hub, socket: SocketId) {
        EnvelopeHandler::on_connect(&mut Gateway, hub, socket);
    }

    fn on_message(&mut self, hub: &mut Hub, socket: SocketId, message: &Envelope) {
        EnvelopeHandler::on_message(&mut Gateway, hub, socket, message);
    }

    fn on_job(&mut self, hub: &mut Hub, job: &Fire) {
        let node = hub.cluster().map_or(0, |c| c.node());
        let text = json!({"type": "message", "data": {
            "job": job.name, "at": job.scheduled.timestamp_millis(), "node": node
        }})
        .to_string();
        hub.send_to_group("room", text.as_str(), &[]);
    }
}

fn node_config(redis: &str) -> Config {
    let mut config = api_test_config();
    config.cluster_redis = Some(redis.to_owned());
    config.node_lease = Duration::from_secs(3);
    config
}

/// `tick` every second (aligned on whole seconds in a cluster) and, with
/// `cron`, `cron` every second by a cron expression with seconds.
fn add_jobs(server: &mut Server<Stamped>, cron: bool) {
    let options = JobOptions {
        misfire_grace: Duration::from_secs(5),
        ..JobOptions::default()
    };
    let every = Trigger::every(Duration::from_secs(1)).unwrap();
    server.add_job("tick", every, options.clone()).unwrap();
    if cron {
        let cron = Trigger::cron("* * * * * *").unwrap();
        server.add_job("cron", cron, options).unwrap();
    }
}

fn node(redis: &str, cron: bool) -> TestServer {
    start_with(node_config(redis), Stamped, |s| add_jobs(s, cron))
}

type Ws = WebSocket<TcpStream>;

/// Connect, bind `client`, join `room`.
fn member(addr: SocketAddr, client: &str) -> Ws {
    let mut ws = tungstenite_connect(addr);
    for request in [
        json!({"type": "bind", "data": {"client_id": client}}),
        json!({"type": "join", "data": {"group": "room"}}),
    ] {
        ws.send(Message::text(request.to_string())).unwrap();
        loop {
            let reply: Value = serde_json::from_str(&tungstenite_recv_text(&mut ws)).unwrap();
            if reply["type"] == request["type"] {
                break;
            }
        }
    }
    ws
}

/// One job message a member got: job, occurrence (ms), node that ran it,
/// and when it arrived.
#[derive(Clone, Debug)]
struct Seen {
    job: String,
    at: i64,
    node: u64,
    arrived: i64,
}

/// A member's messages, read on a thread of their own until stopped.
struct Collector {
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    fn start(mut ws: Ws) -> Collector {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&seen), Arc::clone(&stop));
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match ws.read() {
                    Ok(Message::Text(text)) => {
                        let v: Value = serde_json::from_str(text.as_str()).unwrap();
                        let d = &v["data"];
                        if let (Some(job), Some(at)) = (d["job"].as_str(), d["at"].as_i64()) {
                            s.lock().unwrap().push(Seen {
                                job: job.to_owned(),
                                at,
                                node: d["node"].as_u64().unwrap_or(0),
                                arrived: now_ms(),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => panic!("collector: {e}"),
                }
            }
        });
        Collector {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The messages of `job` seen so far.
    fn of(&self, job: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.job == job).cloned().collect()
    }

    /// Wait (up to [`LONG`]) until `n` distinct occurrences of `job` with
    /// `at` later than `after` were seen.
    fn wait_for(&self, job: &str, after: i64, n: usize) {
        let start = Instant::now();
        loop {
            let got = runs_per_occurrence(&self.of(job))
                .range(after + 1..)
                .count();
            if got >= n {
                return;
            }
            assert!(start.elapsed() < LONG, "{got} of {n} occurrences of {job}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("collector thread");
        }
        let seen = self.seen.lock().unwrap();
        seen.clone()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs seen per occurrence (ms → count).
fn runs_per_occurrence(seen: &[Seen]) -> BTreeMap<i64, usize> {
    let mut runs = BTreeMap::new();
    for s in seen {
        *runs.entry(s.at).or_insert(0) += 1;
    }
    runs
}

/// The occurrences (whole seconds) strictly between the first and the last
/// one seen, with their runs (0 for one never seen): the first and last
/// are left out, as the member may have joined or stopped reading while
/// they were delivered.
fn interior(seen: &[Seen]) -> Vec<(i64, usize)> {
    let runs = runs_per_occurrence(seen);
    let (Some(first), Some(last)) = (runs.keys().next(), runs.keys().next_back()) else {
        return Vec::new();
    };
    (first / 1000 + 1..last / 1000)
        .map(|s| (s * 1000, runs.get(&(s * 1000)).copied().unwrap_or(0)))
        .collect()
}

/// Job `name`'s entry in `/api/jobs` on `addr`.
fn job_status(addr: SocketAddr, name: &str) -> Value {
    let jobs = http_get(addr, "/api/jobs").json();
    jobs["jobs"]
        .as_array()
        .and_then(|a| a.iter().find(|j| j["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

fn counter(addr: SocketAddr, name: &str, field: &str) -> u64 {
    job_status(addr, name)[field].as_u64().unwrap_or(0)
}

/// The claim keys of `job` in Redis: occurrence (ms) → the node that holds it.
fn claims(redis: &RedisServer, job: &str) -> BTreeMap<i64, u64> {
    let script = "local out = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do \
                  table.insert(out, k) table.insert(out, redis.call('GET', k)) end return out";
    let pattern = format!("gmws:job:{job}:*");
    let out = redis
        .cli(&["EVAL", script, "0", &pattern])
        .unwrap_or_default();
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter_map(|pair| {
            let at = pair.first()?.rsplit(':').next()?.parse().ok()?;
            let node = pair.get(1)?.trim().parse().ok()?;
            Some((at, node))
        })
        .collect()
}

#[test]
fn two_nodes_run_each_occurrence_once() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url(), true), node(&redis.url(), true));
    let (ca, cb) = (
        Collector::start(member(a.addr, "alice")),
        Collector::start(member(b.addr, "bob")),
    );
    let start = now_ms();
    for job in ["tick", "cron"] {
        ca.wait_for(job, start, 22);
        cb.wait_for(job, start, 22);
    }
    let (seen_a, seen_b) = (ca.finish(), cb.finish());
    for job in ["tick", "cron"] {
        for (who, seen) in [("alice on A", &seen_a), ("bob on B", &seen_b)] {
            let seen: Vec<Seen> = seen.iter().filter(|s| s.job == job).cloned().collect();
            let interior = interior(&seen);
            assert!(interior.len() >= 20, "{who}, {job}: {interior:?}");
            let wrong: Vec<_> = interior.iter().filter(|(_, n)| *n != 1).collect();
            assert!(wrong.is_empty(), "{who}, {job}: runs ≠ 1 at {wrong:?}");
        }
        // Every occurrence was claimed once, by the node that ran it.
        let keys = claims(&redis, job);
        for s in seen_a.iter().filter(|s| s.job == job) {
            assert_eq!(keys.get(&s.at), Some(&s.node), "{job} at {}", s.at);
        }
        let (runs, elsewhere, skipped) = [a.addr, b.addr].iter().fold((0, 0, 0), |acc, addr| {
            (
                acc.0 + counter(*addr, job, "runs"),
                acc.1 + counter(*addr, job, "claimed_elsewhere"),
                acc.2 + counter(*addr, job, "skipped_unreachable"),
            )
        });
        assert!(
            runs >= 22 && elsewhere >= 20,
            "{job}: {runs} runs, {elsewhere} lost"
        );
        assert_eq!(skipped, 0, "{job}");
    }
    let metrics = http_get(a.addr, "/metrics").text();
    assert!(
        metrics.contains("gmws_job_claimed_elsewhere_total{job=\"tick\"}"),
        "{metrics}"
    );
}

/// Run by `a_killed_node_leaves_no_double_and_no_gap` as a child process:
/// a node with the `tick` job in the cluster of `GMWS_TEST_SCHED_REDIS`,
/// until it is killed.
#[test]
fn child_node() {
    let Ok(url) = std::env::var("GMWS_TEST_SCHED_REDIS") else {
        return;
    };
    let _server = node(&url, false);
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_killed_node_leaves_no_double_and_no_gap() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), false);
    let me = http_get(a.addr, "/status").json()["node"].as_u64().unwrap();
    let mut child = redis.child_node("GMWS_TEST_SCHED_REDIS");
    let collector = Collector::start(member(a.addr, "alice"));
    // The child takes part: it holds claims, and its runs reach alice.
    let start = Instant::now();
    while !collector.of("tick").iter().any(|s| s.node != me) {
        assert!(start.elapsed() < LONG, "no run of the child node seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    collector.wait_for("tick", 0, 12);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let killed = now_ms();
    collector.wait_for("tick", killed, 12);
    let seen = collector.finish();
    let interior = interior(&seen);
    assert!(interior.len() >= 22, "{interior:?}");
    let doubled: Vec<_> = interior.iter().filter(|(_, n)| *n > 1).collect();
    assert!(doubled.is_empty(), "run more than once: {doubled:?}");
    // An occurrence the child claimed just before it died is lost (claims
    // are never taken over): at most the one in the second of the kill.
    let lost: Vec<_> = interior.iter().filter(|(_, n)| *n == 0).collect();
    assert!(
        lost.iter()
            .all(|(at, _)| (killed - 2000..=killed + 1000).contains(at))
            && lost.len() <= 1,
        "lost {lost:?} (killed at {killed})"
    );
    // After the kill (and its second), node A ran every occurrence.
    let keys = claims(&redis, "tick");
    for s in seen.iter().filter(|s| s.at > killed + 1000) {
        assert_eq!(s.node, me, "{s:?}");
        assert_eq!(keys.get(&s.at), Some(&me), "{s:?}");
    }
    assert!(seen.iter().any(|s| s.node != me && s.at < killed));
}

#[test]
fn without_redis_runs_are_skipped_and_counted_and_none_doubled_after() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis.url(), false), node(&redis.url(), false));
    let ca = Collector::start(member(a.addr, "alice"));
    let _bob = member(b.addr, "bob");
    ca.wait_for("tick", 0, 3);

    redis.kill();
    let stopped = now_ms();
    let skipped_by = |addr| counter(addr, "tick", "skipped_unreachable");
    let start = Instant::now();
    while skipped_by(a.addr) < 3 || skipped_by(b.addr) < 3 {
        assert!(start.elapsed() < LONG, "skips not counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = http_get(a.addr, "/metrics").text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("gmws_job_skipped_unreachable_total{job=\"tick\"}"))
        .unwrap_or_default();
    assert!(
        line.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()) >= Some(3),
        "{metrics}"
    );

    redis.spawn();
    let restarted = now_ms();
    ca.wait_for("tick", restarted, 5);
    let seen = ca.finish();
    let runs = runs_per_occurrence(&seen);
    let doubled: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "run more than once: {doubled:?}");
    // Nothing of the outage was run late once Redis was back: a run
    // arrives within its grace (5 s) of its occurrence, and none of the
    // seconds Redis was away (past the claims in flight) ran.
    for s in &seen {
        assert!(s.arrived - s.at < 5000, "{s:?}");
        assert!(
            !(stopped + 3000..restarted).contains(&s.at),
            "ran while Redis was down: {s:?}"
        );
    }
}
