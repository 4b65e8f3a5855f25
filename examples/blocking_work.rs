//! Slow work off the event loop: a handler hands a blocking job (here a
//! simulated 200 ms database query, what GMWebSockets' `m_singledb` helper
//! did on the loop itself) to worker threads, and the workers answer the
//! socket through a [`Remote`]. Meanwhile the loop goes on serving every
//! other socket: `echo` messages are answered at once.
//!
//! `cargo run --example blocking_work -- 127.0.0.1:8092`, then send
//! `query 42` (answered in ~200 ms) and `echo hi` (answered at once).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use gmws::{Config, Handler, Hub, Remote, Server, SocketId};

/// A job for the workers: who asked, and what.
pub struct Job {
    /// The socket to answer.
    pub socket: SocketId,
    /// The query.
    pub query: String,
}

/// The handler of each loop: queries go to the workers, echoes come back now.
pub struct Queries {
    jobs: Sender<Job>,
}

impl Queries {
    /// A handler posting its queries to `jobs`.
    pub fn new(jobs: Sender<Job>) -> Queries {
        Queries { jobs }
    }
}

impl Handler for Queries {
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        match text.split_once(' ') {
            Some(("query", query)) => {
                let job = Job {
                    socket,
                    query: query.to_owned(),
                };
                if self.jobs.send(job).is_err() {
                    let _ = hub.send_text(socket, "error: no workers");
                }
            }
            Some(("echo", rest)) => {
                let _ = hub.send_text(socket, rest);
            }
            _ => {
                let _ = hub.send_text(socket, "say `query X` or `echo X`");
            }
        }
    }
}

/// Start `n` worker threads that take jobs from `jobs`, run the blocking
/// `work` on each query, and answer through `remote`.
pub fn start_workers(
    n: usize,
    jobs: Receiver<Job>,
    remote: Remote,
    work: impl Fn(&str) -> String + Send + Sync + 'static,
) {
    let rx = Arc::new(Mutex::new(jobs));
    let work = Arc::new(work);
    for i in 0..n {
        let (rx, remote, work) = (Arc::clone(&rx), remote.clone(), Arc::clone(&work));
        thread::Builder::new()
            .name(format!("db-worker-{i}"))
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else {
                    return; // every handler is gone: the server stopped
                };
                let answer = work(&job.query);
                if let Err(e) = remote.send_to_socket(job.socket, &answer) {
                    eprintln!("{}: not answered: {e}", job.socket);
                }
            })
            .expect("spawn a worker");
    }
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    let mut config = Config::default();
    if let Some(addr) = std::env::args().nth(1) {
        config.listen = addr.parse().map_err(std::io::Error::other)?;
    }
    config.auth_timeout = Duration::ZERO;
    let (jobs, queue) = channel::<Job>();
    // One handler per loop, each with its end of the workers' queue.
    let mut server = Server::bind_with(config, move |_| Queries::new(jobs.clone()))?;
    start_workers(4, queue, server.remote(), |query| {
        thread::sleep(Duration::from_millis(200)); // the blocking query
        format!("result of {query}")
    });
    eprintln!("blocking_work: listening on {}", server.local_addr());
    server.run()
}
