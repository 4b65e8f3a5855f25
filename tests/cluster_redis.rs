//! The Redis client (`gmws::cluster::redis`) against a real `redis-server`.
//!
//! Each test starts its own redis-server on a free loopback port (no
//! persistence, a temp dir) and kills it at the end. The server must be on
//! PATH; the tests install nothing (CI: `apt-get install redis-server`).
//! Deadlines are generous (10 s) and only bound waiting for things to happen.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmws::cluster::redis::{
    Link, RedisClient, RedisError, RedisEvent, RedisEvents, RedisHandle, RedisOptions, Reply,
};

const DEADLINE: Duration = Duration::from_secs(10);

fn redis_server_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not on PATH: these tests need a real Redis \
                 (Debian/Ubuntu: apt-get install redis-server)"
            )
        })
}

/// A redis-server of this test's own; killed (and its dir removed) on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    fn start(extra: &[&str]) -> RedisServer {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!(
            "gmws-redis-{}-{}-{}",
            std::process::id(),
            port,
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_server_path())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        // Ready when it answers anything (NOAUTH too) on its port.
        let until = Instant::now() + DEADLINE;
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return;
                }
            }
            assert!(
                Instant::now() < until,
                "redis-server did not come up on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Killed with SIGKILL and started again on the same port, empty.
    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn options() -> RedisOptions {
    let mut o = RedisOptions::default();
    o.backoff_max = Duration::from_millis(500);
    o.connect_timeout = Duration::from_secs(2);
    o
}

fn start(url: &str, options: RedisOptions) -> (RedisHandle, RedisEvents) {
    RedisClient::start(url, options).unwrap_or_else(|e| panic!("start {url}: {e}"))
}

/// Waits for the first event `pick` accepts, skipping the others.
#[track_caller]
fn wait_for<T>(
    events: &RedisEvents,
    what: &str,
    mut pick: impl FnMut(RedisEvent) -> Option<T>,
) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => {
                if let Some(found) = pick(event) {
                    return found;
                }
            }
            Err(RecvTimeoutError::Timeout) => panic!("no {what} within {DEADLINE:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("events closed waiting for {what}"),
        }
    }
}

#[track_caller]
fn wait_up(events: &RedisEvents, link: Link) {
    wait_for(events, &format!("{link:?} up"), |e| match e {
        RedisEvent::Connected(l) | RedisEvent::Reconnected(l) if l == link => Some(()),
        _ => None,
    });
}

/// Waits until `pick` has named both links.
#[track_caller]
fn wait_links(events: &RedisEvents, what: &str, mut pick: impl FnMut(RedisEvent) -> Option<Link>) {
    let (mut commands, mut pubsub) = (false, false);
    wait_for(events, what, |e| {
        match pick(e) {
            Some(Link::Commands) => commands = true,
            Some(Link::PubSub) => pubsub = true,
            None => {}
        }
        (commands && pubsub).then_some(())
    });
}

/// Waits for both links' `Reconnected` (each was lost and is back).
#[track_caller]
fn wait_both_back(events: &RedisEvents) {
    wait_links(events, "both links back", |e| match e {
        RedisEvent::Reconnected(link) => Some(link),
        _ => None,
    });
}

#[track_caller]
fn wait_both_up(events: &RedisEvents) {
    wait_links(events, "both links up", |e| match e {
        RedisEvent::Connected(link) | RedisEvent::Reconnected(link) => Some(link),
        _ => None,
    });
}

#[track_caller]
fn wait_message(events: &RedisEvents) -> (Vec<u8>, Vec<u8>) {
    wait_for(events, "a message", |e| match e {
        RedisEvent::Message { channel, payload } => Some((channel, payload)),
        _ => None,
    })
}

/// Waits until Redis counts `n` subscribers on `channel` (a subscribe made
/// once the link is up is not confirmed by any event).
#[track_caller]
fn wait_subscribers(redis: &RedisHandle, channel: &str, n: i64) {
    let want = Ok(Reply::Array(vec![
        Reply::Bulk(channel.as_bytes().to_vec()),
        Reply::Integer(n),
    ]));
    let until = Instant::now() + DEADLINE;
    while call(redis, &["PUBSUB", "NUMSUB", channel]) != want {
        assert!(
            Instant::now() < until,
            "{channel} never had {n} subscribers"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Publishes on a subscribed channel and waits for the message.
#[track_caller]
fn round_trip(redis: &RedisHandle, events: &RedisEvents, channel: &str, payload: &str) {
    redis
        .publish(channel.as_bytes(), payload.as_bytes())
        .expect("publish");
    let want = (channel.as_bytes().to_vec(), payload.as_bytes().to_vec());
    assert_eq!(wait_message(events), want);
}

/// Sends a command and (this test thread) waits for its reply.
fn call(redis: &RedisHandle, args: &[&str]) -> Result<Reply, RedisError> {
    let rx = send(redis, args);
    rx.recv_timeout(DEADLINE)
        .expect("a reply within the deadline")
}

fn send(redis: &RedisHandle, args: &[&str]) -> Receiver<Result<Reply, RedisError>> {
    let (tx, rx) = sync_channel(1);
    redis
        .command(args, move |reply| {
            let _ = tx.try_send(reply);
        })
        .expect("queued");
    rx
}

#[test]
fn commands_and_a_thousand_pipelined_incrs() {
    let server = RedisServer::start(&[]);
    let (redis, events) = start(&server.url(), options());
    wait_up(&events, Link::Commands);

    assert_eq!(
        call(&redis, &["SET", "k", "v"]),
        Ok(Reply::Status(b"OK".to_vec()))
    );
    assert_eq!(call(&redis, &["GET", "k"]), Ok(Reply::Bulk(b"v".to_vec())));
    assert_eq!(call(&redis, &["GET", "nothing"]), Ok(Reply::Nil));
    assert!(
        matches!(call(&redis, &["NOSUCHCOMMAND"]), Err(RedisError::Reply(e)) if e.starts_with("ERR"))
    );

    // 1,000 INCRs queued at once: each callback gets its own count, so the
    // replies were matched in order.
    let (tx, rx) = sync_channel(1000);
    for i in 0..1000i64 {
        let tx = tx.clone();
        redis
            .command(["INCR", "counter"], move |reply| {
                let _ = tx.try_send((i, reply));
            })
            .expect("queued");
    }
    for _ in 0..1000 {
        let (i, reply) = rx.recv_timeout(DEADLINE).expect("every INCR answered");
        assert_eq!(reply, Ok(Reply::Integer(i + 1)), "INCR #{i}");
    }
    let m = redis.metrics();
    assert!(m.commands_sent >= 1004, "{m:?}");
    assert_eq!(m.replies, m.commands_sent, "{m:?}");
    assert_eq!(m.latency_count, m.replies, "{m:?}");
    assert_eq!(m.error_replies, 1, "{m:?}");
    redis.shutdown();
    assert_eq!(redis.command(["PING"], |_| {}), Err(RedisError::Shutdown));
    // The bus ends: the events receiver disconnects.
    let until = Instant::now() + DEADLINE;
    while events.recv_timeout(DEADLINE) != Err(RecvTimeoutError::Disconnected) {
        assert!(Instant::now() < until, "the bus thread did not end");
    }
}

#[test]
fn publish_subscribe_round_trip() {
    let server = RedisServer::start(&[]);
    // The owner's mio loop is woken when events are posted.
    let mut poll = mio::Poll::new().expect("poll");
    let waker = mio::Waker::new(poll.registry(), mio::Token(7)).expect("waker");
    let mut o = options();
    o.events_waker = Some(Arc::new(waker));
    let (redis, events) = start(&server.url(), o);
    let mut woken = mio::Events::with_capacity(4);
    poll.poll(&mut woken, Some(DEADLINE)).expect("poll");
    assert!(
        woken.iter().any(|e| e.token() == mio::Token(7)),
        "not woken"
    );
    redis.subscribe(["news", "sport"]).expect("subscribe");
    wait_both_up(&events);
    wait_subscribers(&redis, "news", 1);
    wait_subscribers(&redis, "sport", 1);

    let payload = b"binary \r\n\0 payload".to_vec();
    redis.publish(b"news", &payload).expect("publish");
    assert_eq!(wait_message(&events), (b"news".to_vec(), payload));

    redis.unsubscribe(["news"]).expect("unsubscribe");
    wait_subscribers(&redis, "news", 0);
    redis.publish(b"news", b"not for us").expect("publish");
    round_trip(&redis, &events, "sport", "goal");
    let m = redis.metrics();
    assert_eq!((m.messages_received, m.publish_failures), (2, 0), "{m:?}");
}

#[test]
fn a_barrier_confirms_the_subscriptions_asked_before_it() {
    let server = RedisServer::start(&[]);
    let (redis, events) = start(&server.url(), options());
    redis.subscribe(["first"]).expect("subscribe");
    wait_both_up(&events);
    // Once the link is up: three channels, then a barrier; its event means
    // Redis applied all three, so a publish now reaches us.
    redis.subscribe(["a", "b", "c"]).expect("subscribe");
    redis.barrier(7).expect("barrier");
    let token = wait_for(&events, "barrier 7", |e| match e {
        RedisEvent::Confirmed(t) => Some(t),
        _ => None,
    });
    assert_eq!(token, 7);
    for channel in ["a", "b", "c"] {
        assert_eq!(
            call(&redis, &["PUBSUB", "NUMSUB", channel]),
            Ok(Reply::Array(vec![
                Reply::Bulk(channel.as_bytes().to_vec()),
                Reply::Integer(1)
            ]))
        );
    }
    round_trip(&redis, &events, "c", "hello");
    // Unsubscribes are covered too.
    redis.unsubscribe(["a"]).expect("unsubscribe");
    redis.barrier(8).expect("barrier");
    let token = wait_for(&events, "barrier 8", |e| match e {
        RedisEvent::Confirmed(t) => Some(t),
        _ => None,
    });
    assert_eq!(token, 8);
    assert_eq!(
        call(&redis, &["PUBSUB", "NUMSUB", "a"]),
        Ok(Reply::Array(vec![
            Reply::Bulk(b"a".to_vec()),
            Reply::Integer(0)
        ]))
    );
}

#[test]
fn auth_with_requirepass() {
    let server = RedisServer::start(&["--requirepass", "s3cret"]);
    let port = server.port;

    // A wrong password: the links never come up, attempts are counted, and
    // commands fail with an error naming AUTH or no connection.
    let (wrong, _events) = start(&format!("redis://:nope@127.0.0.1:{port}"), options());
    let until = Instant::now() + DEADLINE;
    while wrong.metrics().connect_failures < 2 {
        assert!(Instant::now() < until, "AUTH failures not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    match call(&wrong, &["PING"]) {
        Err(RedisError::Auth(e)) => {
            assert!(e.contains("WRONGPASS") || e.contains("invalid"), "{e}")
        }
        Err(RedisError::NotConnected) => {}
        other => panic!("PING with a wrong password: {other:?}"),
    }

    let (redis, events) = start(&format!("redis://:s3cret@127.0.0.1:{port}"), options());
    redis.subscribe(["c"]).expect("subscribe");
    wait_both_up(&events);
    wait_subscribers(&redis, "c", 1);
    round_trip(&redis, &events, "c", "authenticated");
}

#[test]
fn select_picks_the_database() {
    let server = RedisServer::start(&[]);
    let (db5, events5) = start(&format!("{}/5", server.url()), options());
    let (db0, events0) = start(&server.url(), options());
    wait_up(&events5, Link::Commands);
    wait_up(&events0, Link::Commands);
    assert!(call(&db5, &["SET", "where", "five"]).is_ok());
    assert_eq!(
        call(&db5, &["GET", "where"]),
        Ok(Reply::Bulk(b"five".to_vec()))
    );
    assert_eq!(call(&db0, &["GET", "where"]), Ok(Reply::Nil));
    assert_eq!(
        call(&db0, &["SELECT", "5"]),
        Ok(Reply::Status(b"OK".to_vec()))
    );
    assert_eq!(
        call(&db0, &["GET", "where"]),
        Ok(Reply::Bulk(b"five".to_vec()))
    );
}

#[test]
fn a_stopped_redis_times_commands_out_and_the_client_recovers() {
    let server = RedisServer::start(&[]);
    let mut o = options();
    o.command_timeout = Duration::from_millis(500);
    o.pubsub_ping_interval = Duration::from_millis(500);
    let (redis, events) = start(&server.url(), o);
    redis.subscribe(["c"]).expect("subscribe");
    wait_both_up(&events);
    wait_subscribers(&redis, "c", 1);

    server.signal("STOP");
    // TCP stays open: only the timeout can tell.
    let started = Instant::now();
    let replies: Vec<_> = (0..5).map(|_| send(&redis, &["PING"])).collect();
    for rx in replies {
        let reply = rx
            .recv_timeout(DEADLINE)
            .expect("an answer within the deadline");
        assert_eq!(reply, Err(RedisError::Timeout));
    }
    assert!(started.elapsed() < DEADLINE);
    wait_links(&events, "both links to notice", |e| match e {
        RedisEvent::Disconnected { link, error } => {
            assert_eq!(error, RedisError::Timeout);
            Some(link)
        }
        _ => None,
    });
    assert!(redis.metrics().timeouts >= 5);

    server.signal("CONT");
    wait_both_back(&events);
    assert_eq!(call(&redis, &["PING"]), Ok(Reply::Status(b"PONG".to_vec())));
    round_trip(&redis, &events, "c", "after SIGCONT");
    assert!(redis.metrics().reconnects >= 2);
}

#[test]
fn a_restarted_redis_is_reconnected_and_every_channel_resubscribed() {
    let mut server = RedisServer::start(&[]);
    let (redis, events) = start(&server.url(), options());
    // 1,201 channels: three SUBSCRIBE batches of at most 500.
    let channels: Vec<String> = (0..1201).map(|i| format!("ch-{i}")).collect();
    redis
        .subscribe(channels.iter().map(String::as_str))
        .expect("subscribe");
    wait_both_up(&events);
    wait_subscribers(&redis, "ch-0", 1);
    wait_subscribers(&redis, "ch-1200", 1);
    round_trip(&redis, &events, "ch-0", "before");

    server.restart();
    wait_both_back(&events);
    // The new server knows every channel again.
    assert_eq!(call(&redis, &["PUBSUB", "NUMPAT"]), Ok(Reply::Integer(0)));
    let Ok(Reply::Array(names)) = call(&redis, &["PUBSUB", "CHANNELS", "ch-*"]) else {
        panic!("PUBSUB CHANNELS");
    };
    assert_eq!(names.len(), 1201);
    round_trip(&redis, &events, "ch-1200", "after restart");
    assert!(redis.metrics().reconnects >= 2);
}

#[test]
fn a_full_queue_is_an_error_returned_at_once() {
    let server = RedisServer::start(&[]);
    let mut o = options();
    o.queue_capacity = 4;
    o.max_in_flight = 4;
    o.command_timeout = Duration::from_secs(30);
    let (redis, events) = start(&server.url(), o);
    wait_up(&events, Link::Commands);

    // Stopped, Redis answers nothing: 4 commands fill the pipeline, 4 more
    // the queue, and the next is refused.
    server.signal("STOP");
    let mut accepted = Vec::new();
    let until = Instant::now() + DEADLINE;
    let refused = loop {
        let (tx, rx) = sync_channel(1);
        match redis.command(["PING"], move |r| {
            let _ = tx.try_send(r);
        }) {
            Ok(()) => accepted.push(rx),
            Err(e) => break e,
        }
        assert!(Instant::now() < until, "the queue never filled");
        if accepted.len() > 4 {
            // Let the bus take what it can into the pipeline.
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    assert_eq!(refused, RedisError::QueueFull);
    assert!(
        accepted.len() <= 8,
        "{} accepted past the bounds",
        accepted.len()
    );
    assert!(redis.metrics().queue_full >= 1);

    server.signal("CONT");
    for rx in accepted {
        let reply = rx.recv_timeout(DEADLINE).expect("answered after SIGCONT");
        assert_eq!(reply, Ok(Reply::Status(b"PONG".to_vec())));
    }
    assert_eq!(call(&redis, &["PING"]), Ok(Reply::Status(b"PONG".to_vec())));
}
