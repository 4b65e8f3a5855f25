//! Helpers of the fault suite (tests/faults.rs): the real `gmws` binary as a
//! child process, what /proc says about it, a client that reports errors
//! instead of panicking, and the canary.
#![allow(dead_code, missing_docs)]

pub mod canary;
pub mod ws;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::support::{random_u64, PATIENCE};

/// The `gmws` binary: `FAULTS_GMWS_BIN` when set, else `gmws` in this test
/// executable's profile directory (target/<profile>/deps/faults-<hash> →
/// target/<profile>/gmws). The binary belongs to the `gmws-cli` package,
/// which cargo does not build for this package's tests: scripts/faults.sh
/// builds it first (`cargo build --release --bins --examples`).
pub fn gmws_bin() -> PathBuf {
    let path = match std::env::var_os("FAULTS_GMWS_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe().expect("the test executable's path");
            let profile = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("the test executable is in target/<profile>/deps");
            profile.join(format!("gmws{}", std::env::consts::EXE_SUFFIX))
        }
    };
    assert!(
        path.is_file(),
        "the gmws binary is missing at {}: run scripts/faults.sh (it runs `cargo build --release --bins --examples` first), or build it with `cargo build --release -p gmws-cli`, or set FAULTS_GMWS_BIN",
        path.display()
    );
    path
}

/// A free loopback port (bound, then released: the child binds it next).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Pids of the children alive, so the watchdog can kill them before it ends
/// the process.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Have the watchdog kill `pid` too.
pub fn register_child(pid: u32) {
    CHILDREN.lock().unwrap().push(pid);
}

pub fn forget_child(pid: u32) {
    CHILDREN.lock().unwrap().retain(|p| *p != pid);
}

/// Send `signal` (a name such as TERM, STOP, CONT, KILL) to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Bound a case in time: past `limit`, print `what`, kill the children and
/// end the whole test process (a hung case must not hang the suite).
pub struct Watchdog {
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    pub fn new(what: &'static str, limit: Duration) -> Watchdog {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&done);
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("FAULT SUITE: {what} exceeded its time bound of {limit:?}: killing the children and aborting");
            for pid in CHILDREN.lock().unwrap().iter() {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
            std::process::exit(3);
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A log line of the server with the time it was read.
pub type LogLine = (Instant, String);

/// A `gmws serve` child process on a loopback port, killed on drop.
pub struct Gmws {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<LogLine>>>,
    exit: Option<ExitStatus>,
}

/// How to start a server.
pub struct Spawn<'a> {
    /// Command words before the binary (e.g. `prlimit --nofile=256:256`).
    pub wrapper: &'a [&'a str],
    pub addr: Option<SocketAddr>,
    /// `--key value` flags.
    pub flags: &'a [(&'a str, &'a str)],
}

impl Gmws {
    /// `gmws serve --listen <free port> --log-level warn --workers 2
    /// --api-trust-loopback true <flags>`.
    pub fn start(flags: &[(&str, &str)]) -> Gmws {
        Gmws::spawn(Spawn {
            wrapper: &[],
            addr: None,
            flags,
        })
    }

    pub fn spawn(spec: Spawn<'_>) -> Gmws {
        let mut server = Gmws::spawn_only(spec);
        server.wait_ready();
        server
    }

    /// Start the process without waiting for it to listen.
    pub fn spawn_only(spec: Spawn<'_>) -> Gmws {
        let addr = spec.addr.unwrap_or_else(free_addr);
        let mut command = match spec.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(gmws_bin());
                c
            }
            None => Command::new(gmws_bin()),
        };
        command.arg("serve").arg("--listen").arg(addr.to_string());
        let has = |key: &str| spec.flags.iter().any(|(k, _)| *k == key);
        if !has("log-level") {
            command.args(["--log-level", "warn"]);
        }
        // The suite runs against two event loops (issue 10), whatever the
        // machine's CPU count.
        if !has("workers") {
            command.args(["--workers", "2"]);
        }
        // The cases call /api/ from loopback without a key, which the server
        // refuses unless told to trust loopback.
        if !has("api-key") && !has("api-trust-loopback") {
            command.args(["--api-trust-loopback", "true"]);
        }
        for (key, value) in spec.flags {
            command.arg(format!("--{key}")).arg(value);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("GMWS_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", gmws_bin().display()));
        let pid = child.id();
        register_child(pid);
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Gmws {
            child,
            pid,
            addr,
            log,
            exit: None,
        }
    }

    /// Wait until the port accepts connections (panics if the process dies).
    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(s) = TcpStream::connect(self.addr) {
                drop(s);
                return;
            }
            if let Some(status) = self.try_exit() {
                panic!("gmws exited at start ({status}):\n{}", self.log_text());
            }
            assert!(
                start.elapsed() < PATIENCE,
                "gmws did not listen on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                forget_child(self.pid);
            }
        }
        self.exit
    }

    /// Panic unless the process is still running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_exit() {
            panic!("gmws exited ({status}):\n{}", self.log_text());
        }
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    pub fn log_lines(&self) -> Vec<LogLine> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Resident memory in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        proc_status_field(self.pid, "VmRSS")
    }

    /// Open file descriptors.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The server's open descriptors once the connection of a test's last
    /// HTTP request is gone: the least count seen over 300 ms. (The server
    /// closes that connection when it reads the client's FIN, a moment after
    /// the test has its response, so a single reading may still count it.)
    pub fn settled_fds(&self) -> usize {
        let until = Instant::now() + Duration::from_millis(300);
        let mut least = self.fds();
        while Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
            least = least.min(self.fds());
        }
        least
    }

    /// CPU time used (user + system) in clock ticks (1/100 s).
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid)
    }

    /// `GET /status` as JSON.
    pub fn status(&self) -> Value {
        crate::support::http_get(self.addr, "/status").json()
    }

    /// `GET /metrics` as text.
    pub fn metrics(&self) -> String {
        crate::support::http_get(self.addr, "/metrics").text()
    }

    /// One metric line's value (`name` may carry labels).
    pub fn metric(&self, name: &str) -> u64 {
        let text = self.metrics();
        crate::support::metric_value(&text, name)
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }

    /// `GET /api/groups/:group` → (sockets, clients).
    pub fn group(&self, group: &str) -> (u64, u64) {
        let v = crate::support::http_get(self.addr, &format!("/api/groups/{group}")).json();
        (
            v["sockets"].as_u64().unwrap_or(0),
            v["clients"].as_u64().unwrap_or(0),
        )
    }

    /// `GET /api/clients/:id` → online.
    pub fn client_online(&self, client_id: &str) -> bool {
        crate::support::http_get(self.addr, &format!("/api/clients/{client_id}")).json()["online"]
            == true
    }
}

impl Drop for Gmws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        forget_child(self.pid);
    }
}

/// A field of /proc/PID/status in its unit (kB for memory).
pub fn proc_status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// This process's soft limit on open files.
pub fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A TcpExt counter of /proc/net/netstat (e.g. TCPAbortOnClose: connections
/// reset because they were closed with unread data).
pub fn tcp_ext(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The accept queue length of the listening socket on `port` (from
/// /proc/net/tcp: a LISTEN socket's rx_queue is its current backlog). The
/// listening sockets come first in that file, so reading stops at the first
/// other one (the file may hold thousands of TIME_WAIT lines).
pub fn listen_backlog(port: u16) -> u64 {
    let Ok(file) = std::fs::File::open("/proc/net/tcp") else {
        return 0;
    };
    for line in BufReader::new(file).lines().skip(1) {
        let Ok(line) = line else { break };
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[3] != "0A" {
            break;
        }
        let local_port = cols[1]
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        if local_port == Some(port) {
            return cols[4]
                .split(':')
                .nth(1)
                .and_then(|q| u64::from_str_radix(q, 16).ok())
                .unwrap_or(0);
        }
    }
    0
}

/// Read everything from `r` until EOF on a thread; the lines go to a channel.
pub fn line_channel(r: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Poll `probe` every 5 ms until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A case's numbers, printed in one line at the end (run with --nocapture).
pub fn report(case: &str, start: Instant, facts: &[(&str, String)]) {
    let facts: Vec<String> = facts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "FAULTS {case}: PASS in {:.1} s; {}",
        start.elapsed().as_secs_f64(),
        facts.join(", ")
    );
}
