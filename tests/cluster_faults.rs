//! Cluster faults (issue 11 items 4 and 7) over real TCP with a real
//! redis-server: Redis cutting every subscriber off (`CLIENT KILL TYPE
//! pubsub`: the subscription comes back and delivery resumes), and Redis
//! SIGSTOPped past the lease (commands time out and are counted, the API
//! answers 503/504, local delivery goes on, the liveness probe restarts the
//! client; after SIGCONT presence is rewritten and delivery resumes).
//! Deadlines only bound waiting.

mod support;

use std::time::Duration;

use serde_json::json;
use support::cluster::*;
use support::*;

#[test]
fn subscribers_killed_by_redis_resubscribe_and_delivery_resumes() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    let (_a1, _) = member(a.addr, "alice", &["room"]);
    let (mut b1, _) = member(b.addr, "bob", &["room"]);
    wait_subscribed(&redis, "gmws:g:room", 2);
    assert_eq!(
        deliver_eventually(a.addr, "room", &mut b1, "before"),
        "before-1"
    );

    let killed = redis
        .cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(killed >= 2, "both nodes' subscribers killed ({killed})");
    wait_long("node B's pub/sub link back", || {
        (metric(b.addr, "gmws_redis_reconnects_total") >= 1).then_some(())
    });
    wait_subscribed(&redis, "gmws:g:room", 2);
    deliver_eventually(a.addr, "room", &mut b1, "after");
    assert_eq!(http_get(b.addr, "/healthz").status, 200);
}

#[test]
fn a_stopped_redis_times_out_is_counted_and_the_nodes_recover() {
    let redis = RedisServer::start();
    let (a, b, mut a1, mut b1) = alice_and_bob(&redis);

    redis.signal("STOP");
    // A question asked now waits for Redis: answered 503/504 with a JSON
    // error (Redis's timeout, or the loop's own deadline), never hanging.
    let r = http_get(a.addr, "/api/clients/bob");
    assert!(matches!(r.status, 503 | 504), "{} {}", r.status, r.text());
    assert_eq!(r.json()["cluster"], "unreachable");
    wait_long("/healthz 503 on node A", || {
        (http_get(a.addr, "/healthz").status == 503).then_some(())
    });
    // Local delivery goes on; what could not cross is counted.
    send(
        &mut a1,
        &json!({"type": "send_to_group", "data": {"group": "room", "message": "local"}}),
    );
    assert_eq!(next_message(&mut a1), "local");
    wait_long("timeouts and undeliverable sends counted on node A", || {
        (metric(a.addr, "gmws_redis_command_timeouts_total") >= 1
            && metric(a.addr, "gmws_cluster_undeliverable_total") >= 1)
            .then_some(())
    });
    // Longer than node_lease (3 s): the leases lapse in Redis meanwhile.
    std::thread::sleep(Duration::from_secs(4));

    redis.signal("CONT");
    wait_recovered(&redis, a.addr, b.addr, &mut b1);
}
