//! examples/blocking_work.rs over TCP: a slow job handed to a worker thread
//! is answered through the Remote, and meanwhile the other sockets' echoes
//! are not held up (two loops, clients on both). The "query" blocks until
//! the test lets it go, so the order is certain, not a matter of timing.

#[path = "../examples/blocking_work.rs"]
mod example;
mod support;

use std::sync::mpsc::{channel, sync_channel};
use std::sync::Mutex;

use gmws::Server;
use support::*;

#[test]
fn slow_work_on_a_thread_does_not_hold_up_other_sockets() {
    let mut config = test_config();
    config.workers = 2;
    let (jobs, queue) = channel();
    let server = Server::bind_with(config, move |_| example::Queries::new(jobs.clone())).unwrap();
    let (release, gate) = sync_channel::<()>(0);
    let (started_tx, started) = sync_channel::<()>(1);
    let gate = Mutex::new(gate);
    example::start_workers(1, queue, server.remote(), move |query| {
        let _ = started_tx.send(());
        let _ = gate.lock().unwrap().recv(); // blocked until the test says so
        format!("result of {query}")
    });
    let server = support::run(server);
    let mut asker = Client::connect(server.addr);
    let mut others: Vec<Client> = (0..4).map(|_| Client::connect(server.addr)).collect();
    asker.send_text("query 42");
    started.recv().unwrap(); // the worker is inside the blocking query
                             // Every other socket's echo comes back while the query is still blocked.
    for round in 0..5 {
        for c in &mut others {
            c.send_text(&format!("echo {round}"));
            assert_eq!(c.recv_text(), round.to_string());
        }
    }
    release.send(()).unwrap();
    assert_eq!(asker.recv_text(), "result of 42");
}
