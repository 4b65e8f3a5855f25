//! A redis-server of a test's own on a free loopback port (`#[path]`-included
//! by the tests that need one).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::support::wait_for;

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
        let dir = std::env::temp_dir().join(format!("gmws-redis-{}-{port}", std::process::id()));
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

    /// Subscribers of `channel` (PUBSUB NUMSUB).
    pub fn subscribers(&self, channel: &str) -> u64 {
        self.cli(&["PUBSUB", "NUMSUB", channel])
            .and_then(|s| s.lines().nth(1).and_then(|l| l.trim().parse().ok()))
            .unwrap_or(0)
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
