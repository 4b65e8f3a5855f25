//! The cluster (issue 11) over real TCP: a real `redis-server` started by
//! each test on a free loopback port, two gmws nodes sharing it (in-process
//! servers, or this test executable re-run as a child process for the one
//! that is SIGKILLed), and tungstenite clients. Deadlines are generous and
//! only bound waiting for things to happen.

mod support;

use std::time::{Duration, Instant};

use gmws::Gateway;
use serde_json::json;
use support::cluster::*;
use support::*;

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn sends_of_every_kind_cross_nodes_with_exclusions() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    let (mut a1, a1_id) = member(a.addr, "alice", &["room"]);
    let (mut b1, b1_id) = member(b.addr, "bob", &["room"]);
    let (mut b2, _) = member(b.addr, "alice", &[]);
    assert_ne!(a1_id, b1_id);
    wait_subscribed(&redis, "gmws:g:room", 2);
    wait_subscribed(&redis, "gmws:c:alice", 2);

    // A client's group send on node A reaches the member on node B.
    send(
        &mut a1,
        &json!({"type": "send_to_group", "data": {"group": "room", "message": "hi"}}),
    );
    assert_eq!(next_message(&mut a1), "hi");
    assert_eq!(next_message(&mut b1), "hi");

    // The API on node B acts on node A's sockets, with exclusions.
    let r = api(
        b.addr,
        "/api/send_to_group",
        json!({"group": "room", "message": 1, "exclude": [b1_id]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(next_message(&mut a1), 1);
    let r = api(
        b.addr,
        "/api/send_to_group",
        json!({"group": "room", "message": 2, "exclude": [a1_id]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(next_message(&mut b1), 2, "b1 got 2 first: 1 excluded it");
    // send_to_client across nodes: alice has a socket on each.
    let r = api(
        b.addr,
        "/api/send_to_client",
        json!({"client_id": "alice", "message": 3}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(next_message(&mut a1), 3);
    assert_eq!(next_message(&mut b2), 3);
    // send_to_socket from node B to a socket of node A.
    let r = api(
        b.addr,
        "/api/send_to_socket",
        json!({"socket_id": a1_id, "message": 4}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(next_message(&mut a1), 4, "1 went to a1 only, before");
    // send_to_all from node A reaches every socket of both.
    let r = api(a.addr, "/api/send_to_all", json!({"message": 5}));
    assert_eq!(r.status, 200);
    for ws in [&mut a1, &mut b1, &mut b2] {
        assert_eq!(next_message(ws), 5);
    }

    // The live nodes and the cluster totals.
    wait_for("both nodes in /api/nodes with their sockets", || {
        live_nodes(a.addr).filter(|&(n, total)| n == 2 && total == 3)
    });
    assert_eq!(http_get(a.addr, "/api/nodes").json()["reachable"], true);
    let status = http_get(b.addr, "/status").json();
    assert!(status["node"].as_u64().is_some(), "{status}");
    let metrics = http_get(b.addr, "/metrics").text();
    assert!(
        metric_value(&metrics, "gmws_cluster_received_total").unwrap_or(0) >= 2,
        "{metrics}"
    );
    assert_eq!(metric_value(&metrics, "gmws_cluster_gaps_total"), Some(0));
    assert_eq!(metric_value(&metrics, "gmws_cluster_reachable"), Some(1));
}

#[test]
fn without_redis_local_delivery_goes_on_the_api_says_503_and_it_recovers() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    // A third node that keeps /healthz at 200 whatever Redis does.
    let mut quiet_config = node_config(&redis.url());
    quiet_config.cluster_healthz = false;
    let quiet = start(quiet_config, Gateway);
    let (mut a1, _) = member(a.addr, "alice", &["room"]);
    let (mut b1, _) = member(b.addr, "bob", &["room"]);
    wait_subscribed(&redis, "gmws:g:room", 2);
    assert_eq!(http_get(a.addr, "/healthz").status, 200);

    redis.kill();
    wait_for("/healthz 503 on node A", || {
        (http_get(a.addr, "/healthz").status == 503).then_some(())
    });
    wait_for("node Q to see Redis gone", || {
        let metrics = http_get(quiet.addr, "/metrics").text();
        (metric_value(&metrics, "gmws_cluster_reachable") == Some(0)).then_some(())
    });
    assert_eq!(
        http_get(quiet.addr, "/healthz").status,
        200,
        "cluster_healthz = false"
    );
    let r = api(
        a.addr,
        "/api/send_to_group",
        json!({"group": "room", "message": "local"}),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.json();
    assert_eq!(body["delivered_locally"], 1, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("cluster unreachable"),
        "{body}"
    );
    assert_eq!(next_message(&mut a1), "local");
    let metrics = http_get(a.addr, "/metrics").text();
    assert!(metric_value(&metrics, "gmws_cluster_undeliverable_total").unwrap_or(0) >= 1);
    assert_eq!(metric_value(&metrics, "gmws_cluster_reachable"), Some(0));

    // Redis back on the same port, empty: both nodes resubscribe and
    // rewrite their presence; delivery across nodes works again.
    redis.spawn();
    wait_for("/healthz 200 on both nodes", || {
        (http_get(a.addr, "/healthz").status == 200 && http_get(b.addr, "/healthz").status == 200)
            .then_some(())
    });
    wait_subscribed(&redis, "gmws:g:room", 2);
    let r = api(
        a.addr,
        "/api/send_to_group",
        json!({"group": "room", "message": "back"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(next_message(&mut a1), "back");
    assert_eq!(next_message(&mut b1), "back");
    wait_for("presence rewritten after the restart", || {
        redis
            .cli(&["HLEN", "gmws:client:bob"])
            .filter(|s| s.trim() == "1")
    });
}

/// Run by `a_sigkilled_node_vanishes_within_the_lease` as a child process:
/// a node of the cluster in `GMWS_TEST_CHILD_REDIS`, with a bound socket of
/// its own, until it is killed.
#[test]
fn child_node() {
    let Ok(url) = std::env::var("GMWS_TEST_CHILD_REDIS") else {
        return;
    };
    let server = node(&url);
    let (_ws, id) = member(server.addr, "carol", &["room"]);
    println!("CHILD-READY {} {id}", server.addr);
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_sigkilled_node_vanishes_within_the_lease() {
    let redis = RedisServer::start();
    let mut cluster = None;
    let a = start_with(node_config(&redis.url()), Gateway, |server| {
        cluster = server.hub().cluster().cloned();
    });
    let cluster = cluster.expect("node A is in a cluster");
    let mut child = redis.child_node("GMWS_TEST_CHILD_REDIS");
    let live = |want: usize| live_nodes(a.addr).and_then(|(n, total)| (n == want).then_some(total));
    wait_for("the child node in /api/nodes with its socket", || {
        live(2).filter(|total| *total == 1)
    });
    wait_for("carol online in Redis", || {
        redis
            .cli(&["HLEN", "gmws:client:carol"])
            .filter(|s| s.trim() == "1")
    });
    wait_for("carol in the cluster's distinct clients", || {
        cluster_totals(a.addr).filter(|&t| t == (1, 1))
    });
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let killed = Instant::now();
    wait_for("the killed node gone from /api/nodes", || live(1));
    wait_for("carol gone from the cluster's distinct clients", || {
        cluster_totals(a.addr).filter(|&t| t == (0, 0))
    });
    // The sweep left nothing of the dead node behind.
    wait_for("the dead node's client set swept", || {
        redis
            .cli(&["HLEN", "gmws:clients"])
            .filter(|s| s.trim() == "0")
    });
    assert_eq!(
        redis
            .cli(&["SCARD", "gmws:nodes"])
            .map(|s| s.trim().to_owned()),
        Some("1".to_owned())
    );
    // Gone within node_lease (3 s) plus a reading (¾ lease TTL + ¼ lease
    // refresh): well inside this generous bound.
    assert!(killed.elapsed() < DEADLINE, "{:?}", killed.elapsed());
    let (tx, rx) = std::sync::mpsc::channel();
    cluster.client_sockets("carol", move |r| {
        let _ = tx.send(r);
    });
    let sockets = rx
        .recv_timeout(DEADLINE)
        .expect("an answer")
        .expect("from Redis");
    assert!(sockets.is_empty(), "{sockets:?}");
}

#[test]
fn a_join_is_answered_once_the_nodes_subscription_is_confirmed() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    wait_healthy(&[a.addr, b.addr]);
    let (mut b1, _) = member(b.addr, "bob", &[]);
    // Each join makes the group's first member on node B; as soon as its
    // reply arrives, node A publishes to the group: it must get there.
    for i in 0..20 {
        let group = format!("fresh-{i}");
        send(
            &mut b1,
            &json!({"type": "join", "id": i, "data": {"group": group}}),
        );
        let reply = recv(&mut b1);
        assert_eq!((&reply["type"], &reply["id"]), (&json!("join"), &json!(i)));
        let r = api(
            a.addr,
            "/api/send_to_group",
            json!({"group": group, "message": format!("m{i}")}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(next_message(&mut b1), json!(format!("m{i}")));
    }
    // With Redis stopped (shorter than any of the node's timeouts) the
    // SUBSCRIBE cannot be confirmed, so the reply waits for Redis.
    redis.signal("STOP");
    send(
        &mut b1,
        &json!({"type": "join", "id": "held", "data": {"group": "late"}}),
    );
    let early = try_envelope(&mut b1, Duration::from_millis(300));
    redis.signal("CONT");
    assert_eq!(early, None, "answered before Redis could confirm");
    let reply = recv(&mut b1);
    assert_eq!(reply["type"], "join", "{reply}");
    assert_eq!(reply["id"], "held");
    let r = api(
        a.addr,
        "/api/send_to_group",
        json!({"group": "late", "message": "after"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(next_message(&mut b1), "after");
    assert_eq!(metric(b.addr, "gmws_cluster_gaps_total"), 0);
    // Redis stopped for good: the reply is not held forever (it goes after
    // the Redis command timeout, 1.5 s with this lease), Redis still down.
    redis.signal("STOP");
    send(
        &mut b1,
        &json!({"type": "join", "id": "stuck", "data": {"group": "never"}}),
    );
    let reply = recv(&mut b1);
    redis.signal("CONT");
    assert_eq!(
        (&reply["type"], &reply["id"]),
        (&json!("join"), &json!("stuck"))
    );
}
