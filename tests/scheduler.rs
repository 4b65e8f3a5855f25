//! Scheduled jobs over TCP: a job pushes to a group through the gateway, and
//! `/api/jobs` lists, pauses, runs and resumes it, on one loop and across two.

mod support;

use std::time::Duration;

use gmws::scheduler::{JobOptions, Trigger};
use gmws::{Gateway, Handler, Hub, Server};
use serde_json::{json, Value};
use support::*;

/// A gateway job every 100 ms pushing `{"tick": true}` to group `room`.
fn add_tick<H: Handler + 'static>(server: &mut Server<H>) {
    let options = JobOptions {
        data: json!({ "to": { "group": "room" }, "message": { "tick": true } }),
        ..JobOptions::default()
    };
    let every = Trigger::every(Duration::from_millis(100)).unwrap();
    server.add_job("tick", every, options).unwrap();
}

/// A tungstenite client bound as `client` and in group `room`.
fn member(addr: std::net::SocketAddr, client: &str) -> tungstenite::WebSocket<std::net::TcpStream> {
    let mut ws = tungstenite_connect(addr);
    let welcome: Value = serde_json::from_str(&tungstenite_recv_text(&mut ws)).unwrap();
    assert_eq!(welcome["type"], "welcome");
    for request in [
        json!({"type": "bind", "data": {"client_id": client}}),
        json!({"type": "join", "data": {"group": "room"}}),
    ] {
        ws.send(tungstenite::Message::text(request.to_string()))
            .unwrap();
        loop {
            let reply: Value = serde_json::from_str(&tungstenite_recv_text(&mut ws)).unwrap();
            if reply["type"] == request["type"] {
                break;
            }
        }
    }
    ws
}

/// The next message envelope a member gets from the scheduler.
fn next_tick(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Value {
    loop {
        let m: Value = serde_json::from_str(&tungstenite_recv_text(ws)).unwrap();
        if m["type"] == "message" && m["data"]["from"] == "scheduler" {
            return m;
        }
    }
}

fn job(addr: std::net::SocketAddr) -> Value {
    let jobs = http_get(addr, "/api/jobs").json();
    jobs["jobs"][0].clone()
}

#[test]
fn a_gateway_job_pushes_to_its_group_and_the_api_pauses_runs_and_resumes_it() {
    let server = start_with(api_test_config(), Gateway, add_tick);
    let mut ws = member(server.addr, "alice");
    let tick = next_tick(&mut ws);
    assert_eq!(
        tick["data"],
        json!({"from": "scheduler", "job": "tick", "to": {"group": "room"}, "message": {"tick": true}})
    );

    let listed = job(server.addr);
    assert_eq!(listed["name"], "tick");
    assert_eq!(listed["trigger"], "interval: 100ms");
    assert_eq!(listed["timezone"], "UTC");
    assert_eq!(listed["loop"], 0);
    assert!(listed["runs"].as_u64().unwrap() >= 1, "{listed}");
    assert!(listed["next_run"].is_string(), "{listed}");

    let paused = http_post_json(server.addr, "/api/jobs/tick/pause", &json!({}));
    assert_eq!(paused.status, 200, "{}", paused.text());
    assert_eq!(paused.json()["job"]["paused"], true);
    // Paused: the runs stop (a run may have been on its way already).
    let runs = job(server.addr)["runs"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(job(server.addr)["runs"].as_u64().unwrap(), runs);
    assert!(job(server.addr)["next_run"].is_null());

    // Run now, while paused: one message.
    let ran = http_post_json(server.addr, "/api/jobs/tick/run", &json!({}));
    assert_eq!(ran.status, 200, "{}", ran.text());
    let tick = next_tick(&mut ws);
    assert_eq!(tick["data"]["job"], "tick");
    assert_eq!(job(server.addr)["runs"].as_u64().unwrap(), runs + 1);

    let resumed = http_post_json(server.addr, "/api/jobs/tick/resume", &json!({}));
    assert_eq!(resumed.status, 200);
    wait_for("runs after resume", || {
        (job(server.addr)["runs"].as_u64().unwrap() > runs + 1).then_some(())
    });

    assert_eq!(
        http_post_json(server.addr, "/api/jobs/nope/run", &json!({})).status,
        404
    );
    assert_eq!(
        http_post_json(server.addr, "/api/jobs/tick/explode", &json!({})).status,
        404
    );
}

#[test]
fn jobs_are_refused_without_the_api_key() {
    let server = start_with(test_config(), Gateway, add_tick);
    assert_eq!(http_get(server.addr, "/api/jobs").status, 403);
    assert_eq!(
        http_post_json(server.addr, "/api/jobs/tick/pause", &json!({})).status,
        403
    );
}

#[test]
fn with_two_loops_any_loop_lists_the_job_and_posts_actions_to_its_loop() {
    let mut config = api_test_config();
    config.workers = 2;
    let mut server = Server::bind_with(config, |_| Gateway).expect("bind");
    add_tick(&mut server);
    let server = run(server);
    // Fresh connections go to the loops in turn: each lists the job, and of
    // two requests in a row one is served by loop 0, one by loop 1.
    for _ in 0..2 {
        let listed = job(server.addr);
        assert_eq!(
            (listed["name"].as_str(), listed["loop"].as_u64()),
            (Some("tick"), Some(0))
        );
    }
    let mut statuses: Vec<u16> = (0..2)
        .map(|_| http_post_json(server.addr, "/api/jobs/tick/pause", &json!({})).status)
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        vec![200, 202],
        "one answered on loop 0, one posted to it"
    );
    wait_for("paused", || {
        job(server.addr)["paused"].as_bool().filter(|p| *p)
    });
}

/// A library handler's own job on its loop; a panic in `on_job` costs
/// nothing but that run.
struct Counting {
    runs: u32,
}

impl Handler for Counting {
    fn on_job(&mut self, hub: &mut Hub, job: &gmws::scheduler::Fire) {
        self.runs += 1;
        if self.runs == 1 {
            panic!("the first run panics");
        }
        hub.send_to_all(format!("{} run {}", job.name, self.runs).as_str());
    }
}

#[test]
fn a_panicking_job_hook_does_not_stop_the_loop_or_the_job() {
    let server = start_with(test_config(), Counting { runs: 0 }, |server| {
        let every = Trigger::every(Duration::from_millis(50)).unwrap();
        server
            .add_job("count", every, JobOptions::default())
            .unwrap();
    });
    let mut client = Client::connect(server.addr);
    let text = client.recv_text();
    assert!(text.starts_with("count run "), "{text}");
    let metrics = http_get(server.addr, "/metrics").text();
    assert!(
        metric_value(&metrics, "gmws_handler_panics_total").unwrap_or(0) >= 1,
        "{metrics}"
    );
}
