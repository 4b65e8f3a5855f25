//! The built-in routes: health, status, metrics, the demo page, gmws.js.

use std::fmt::Write as _;

use serde_json::json;

use crate::cluster::redis::LATENCY_BUCKETS_US;

use crate::http::response::Response;
use crate::hub::Hub;
use crate::metrics::Metrics;

/// The demo page served at `GET /`.
pub const DEMO_PAGE: &str = include_str!("demo.html");

/// The JavaScript client (`clients/js/gmws.js`, an ES module) served at
/// `GET /gmws.js`.
pub const GMWS_JS: &str = include_str!("../../../clients/js/gmws.js");

/// `GET /healthz`: 200, or 503 while this node is in a cluster whose Redis
/// it cannot reach (unless `cluster_healthz` is off).
pub fn healthz(hub: &Hub) -> Response {
    match hub.cluster() {
        Some(cluster) if !cluster.is_reachable() && hub.config().cluster_healthz => {
            Response::text(503, "cluster unreachable\n")
        }
        _ => Response::text(200, "ok\n"),
    }
}

/// `GET /status`: online sockets, clients, groups, uptime; in a cluster,
/// this node's number and the cluster's totals ([`crate::cluster::Cluster::totals`]:
/// sockets summed over the live nodes, distinct client ids; as last read,
/// up to a quarter of `node_lease` old).
pub fn status(hub: &Hub) -> Response {
    let mut body = json!({
        "online_sockets": hub.online_sockets(),
        "online_clients": hub.online_clients(),
        "groups": hub.groups_count(),
        "uptime_s": hub.uptime_secs(),
    });
    if let (Some(cluster), Some(map)) = (hub.cluster(), body.as_object_mut()) {
        let totals = cluster.totals();
        map.insert("node".to_owned(), json!(cluster.node()));
        map.insert(
            "cluster".to_owned(),
            json!({
                "reachable": cluster.is_reachable(),
                "nodes": totals.nodes,
                "online_sockets": totals.online_sockets,
                "online_clients": totals.online_clients,
                "age_ms": totals.age.map(|a| a.as_millis() as u64),
            }),
        );
    }
    Response::json(200, &body)
}

/// The Redis command latency as a Prometheus histogram
/// (`gmws_redis_command_latency_us`, cumulative buckets, sum and count).
fn latency_histogram(out: &mut String, r: &crate::cluster::redis::RedisMetricsSnapshot) {
    let name = "gmws_redis_command_latency_us";
    let _ = writeln!(
        out,
        "# HELP {name} Redis command latency (queued to reply), microseconds.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0u64;
    for (bound, n) in LATENCY_BUCKETS_US.iter().zip(r.latency_buckets) {
        cumulative = cumulative.saturating_add(n);
        if *bound == u64::MAX {
            let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        } else {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
    }
    let _ = writeln!(out, "{name}_sum {}", r.latency_us_sum);
    let _ = writeln!(out, "{name}_count {}", r.latency_count);
}

/// `GET /`: the demo page, unless `demo_page = false`.
pub fn demo(hub: &Hub) -> Response {
    if hub.config().demo_page {
        Response::html(200, DEMO_PAGE)
    } else {
        Response::error(404, "not found")
    }
}

/// `GET /gmws.js`: the JavaScript client, whatever `demo_page` says (the demo
/// page loads it, and so may an application's own pages).
pub fn gmws_js() -> Response {
    Response::with_body(
        200,
        "text/javascript; charset=utf-8",
        GMWS_JS.as_bytes().to_vec(),
    )
    .with_header("Cache-Control", "no-cache")
}

/// `GET /metrics`: Prometheus text exposition format 0.0.4.
///
/// With several loops, counters are the sum of what every other loop
/// published (as of its last turn, at most a millisecond later) and this
/// loop's live numbers; each loop's gauges are also given labelled
/// `loop="N"`.
pub fn metrics(hub: &Hub) -> Response {
    let bus = &hub.bus;
    let (m, connections, pending, idle, each) = if bus.shared() {
        let (sum, each) = bus.stats_with(Some((hub.loop_index(), hub.live_stats())));
        (
            sum.metrics,
            sum.connections,
            sum.pending_http,
            sum.idle_http,
            each,
        )
    } else {
        let c = hub.counts;
        (
            hub.metrics().clone(),
            hub.connections(),
            c.pending_http,
            c.idle_http,
            Vec::new(),
        )
    };
    let m = &m;
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP gmws_{name} {help}\n# TYPE gmws_{name} {kind}\ngmws_{name} {value}\n"
        );
    };
    metric(
        "connections",
        "gauge",
        "TCP connections held.",
        connections as u64,
    );
    metric(
        "online_sockets",
        "gauge",
        "Open WebSockets.",
        hub.online_sockets() as u64,
    );
    metric(
        "online_clients",
        "gauge",
        "Distinct bound client ids.",
        hub.online_clients() as u64,
    );
    metric(
        "groups",
        "gauge",
        "Groups with members.",
        hub.groups_count() as u64,
    );
    metric(
        "buffered_bytes",
        "gauge",
        "Bytes buffered for peers (held against max_buffer_memory).",
        hub.buffered_bytes() as u64,
    );
    metric(
        "pending_http_connections",
        "gauge",
        "Connections reading a request head (held against max_pending_handshakes).",
        pending as u64,
    );
    metric(
        "idle_http_connections",
        "gauge",
        "Keep-alive HTTP connections between requests (held against max_idle_http).",
        idle as u64,
    );
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        hub.uptime_secs(),
    );
    metric(
        "connections_accepted_total",
        "counter",
        "TCP connections accepted.",
        m.connections_accepted,
    );
    metric(
        "connections_refused_total",
        "counter",
        "Connections refused at accept (max_connections, max_pending_handshakes, max_connections_per_ip).",
        m.connections_refused,
    );
    metric(
        "handshakes_total",
        "counter",
        "WebSocket handshakes completed.",
        m.handshakes,
    );
    metric(
        "handshake_failures_total",
        "counter",
        "Handshakes and request heads refused.",
        m.handshake_failures,
    );
    metric(
        "http_requests_total",
        "counter",
        "Plain HTTP requests served.",
        m.http_requests,
    );
    metric(
        "messages_in_total",
        "counter",
        "Data messages received.",
        m.messages_in,
    );
    metric(
        "messages_out_total",
        "counter",
        "Data messages queued to clients.",
        m.messages_out,
    );
    metric(
        "messages_compressed_total",
        "counter",
        "Data messages queued compressed (permessage-deflate).",
        m.messages_compressed,
    );

    metric(
        "bytes_in_total",
        "counter",
        "Payload bytes received.",
        m.bytes_in,
    );
    metric(
        "bytes_out_total",
        "counter",
        "Payload bytes queued.",
        m.bytes_out,
    );
    metric(
        "protocol_errors_total",
        "counter",
        "Connections failed for protocol errors.",
        m.protocol_errors,
    );
    metric(
        "memory_sheds_total",
        "counter",
        "Connections closed for holding the most when over max_buffer_memory.",
        m.memory_sheds,
    );
    metric(
        "idle_http_closed_total",
        "counter",
        "Idle keep-alive connections closed for max_idle_http.",
        m.idle_http_closed,
    );
    metric(
        "fanout_rate_limited_total",
        "counter",
        "Client sends refused by client_fanout_rate.",
        m.fanout_rate_limited,
    );
    metric(
        "handler_panics_total",
        "counter",
        "Handler panics caught.",
        m.handler_panics,
    );
    metric(
        "bus_posts_refused_total",
        "counter",
        "Posts to a loop refused because its inbox was full (sends, Remote calls).",
        bus.posts_refused.load(std::sync::atomic::Ordering::Relaxed),
    );
    metric("loops", "gauge", "Event loops.", bus.loops() as u64);
    if let Some(cluster) = &bus.cluster {
        let c = cluster.metrics();
        let r = cluster.redis_metrics();
        for (name, kind, help, value) in [
            (
                "cluster_reachable",
                "gauge",
                "1 while Redis is reachable.",
                u64::from(cluster.is_reachable()),
            ),
            (
                "cluster_published_total",
                "counter",
                "Sends published to the other nodes.",
                c.published,
            ),
            (
                "cluster_undeliverable_total",
                "counter",
                "Sends that could not cross to the other nodes (delivered here only).",
                c.undeliverable,
            ),
            (
                "cluster_received_total",
                "counter",
                "Messages received from other nodes.",
                c.received,
            ),
            (
                "cluster_gaps_total",
                "counter",
                "Messages of other nodes lost, by sequence numbers.",
                c.gaps,
            ),
            (
                "cluster_malformed_total",
                "counter",
                "Received messages that could not be read.",
                c.malformed,
            ),
            (
                "cluster_probe_failures_total",
                "counter",
                "Liveness probes that did not come back (client restarted).",
                c.probe_failures,
            ),
            (
                "cluster_lease_lapses_total",
                "counter",
                "Times this node found its lease lapsed.",
                c.lease_lapses,
            ),
            (
                "cluster_rewrites_total",
                "counter",
                "Full rewrites of this node's presence.",
                c.rewrites,
            ),
            (
                "redis_reconnects_total",
                "counter",
                "Redis connections that came back after being lost.",
                r.reconnects,
            ),
            (
                "redis_publish_failures_total",
                "counter",
                "PUBLISH commands that got no reply or an error.",
                r.publish_failures,
            ),
            (
                "redis_commands_total",
                "counter",
                "Commands sent to Redis.",
                r.commands_sent,
            ),
            (
                "redis_command_timeouts_total",
                "counter",
                "Commands that got no reply within the command timeout.",
                r.timeouts,
            ),
            (
                "redis_connection_lost_total",
                "counter",
                "Commands failed because their connection was lost or down.",
                r.connection_lost,
            ),
            (
                "redis_connect_failures_total",
                "counter",
                "Connect or handshake attempts to Redis that failed.",
                r.connect_failures,
            ),
            (
                "redis_error_replies_total",
                "counter",
                "Commands Redis answered with an error.",
                r.error_replies,
            ),
            (
                "redis_queue_full_total",
                "counter",
                "Commands refused because the Redis client's queue was full.",
                r.queue_full,
            ),
            (
                "redis_messages_received_total",
                "counter",
                "Pub/sub messages received from Redis.",
                r.messages_received,
            ),
            (
                "redis_messages_dropped_total",
                "counter",
                "Pub/sub messages dropped: the cluster thread was behind.",
                r.messages_dropped,
            ),
        ] {
            metric(name, kind, help, value);
        }
        latency_histogram(&mut out, &r);
    }
    if !each.is_empty() {
        out.push_str("# HELP gmws_loop_connections TCP connections held by each loop.\n# TYPE gmws_loop_connections gauge\n");
        for (i, s) in each.iter().enumerate() {
            let _ = writeln!(
                out,
                "gmws_loop_connections{{loop=\"{i}\"}} {}",
                s.connections
            );
        }
        out.push_str("# HELP gmws_loop_online_sockets Open WebSockets of each loop.\n# TYPE gmws_loop_online_sockets gauge\n");
        for (i, s) in each.iter().enumerate() {
            let _ = writeln!(out, "gmws_loop_online_sockets{{loop=\"{i}\"}} {}", s.online);
        }
    }
    out.push_str(
        "# HELP gmws_closes_total WebSocket closes by reason.\n# TYPE gmws_closes_total counter\n",
    );
    for (label, count) in Metrics::CLOSE_LABELS.iter().zip(m.closes) {
        let _ = writeln!(out, "gmws_closes_total{{reason=\"{label}\"}} {count}");
    }
    job_metrics(&mut out, bus);
    Response::with_body(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        out.into_bytes(),
    )
}

/// Each job's counters (as its loop last published them), labelled by job:
/// runs, misfires and, in a cluster, occurrences claimed by another node
/// and occurrences skipped because Redis could not be asked.
fn job_metrics(out: &mut String, bus: &crate::bus::Bus) {
    let jobs = bus.jobs_lock();
    if jobs.is_empty() {
        return;
    }
    type Counter = fn(&crate::scheduler::JobStatus) -> u64;
    let series: [(&str, &str, Counter); 4] = [
        (
            "job_runs_total",
            "Runs of each job made on this node.",
            |s| s.runs,
        ),
        (
            "job_misfires_total",
            "Runs of each job skipped for being later than its grace time.",
            |s| s.misfires,
        ),
        (
            "job_claimed_elsewhere_total",
            "Occurrences of each job that another node claimed (cluster).",
            |s| s.claimed_elsewhere,
        ),
        (
            "job_skipped_unreachable_total",
            "Occurrences of each job skipped because Redis could not be asked (cluster).",
            |s| s.skipped_unreachable,
        ),
    ];
    for (name, help, value) in series {
        let _ = write!(
            out,
            "# HELP gmws_{name} {help}\n# TYPE gmws_{name} counter\n"
        );
        for (job, (_, status)) in jobs.iter() {
            let label = job
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(out, "gmws_{name}{{job=\"{label}\"}} {}", value(status));
        }
    }
}
