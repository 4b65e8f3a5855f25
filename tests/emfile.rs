//! Accept survives file-descriptor exhaustion: the echo example under a low
//! `RLIMIT_NOFILE` (set with util-linux `prlimit`) keeps serving the clients it
//! has, does not spin, and accepts the waiting ones once descriptors free up.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn echo_example() -> PathBuf {
    // target/debug/deps/emfile-<hash> → target/debug/examples/echo
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/echo")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Send an upgrade and wait for the 101.
fn handshake(stream: &mut TcpStream, addr: SocketAddr) -> bool {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    if stream.write_all(upgrade_request(addr).as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    matches!(stream.read(&mut buf), Ok(n) if n > 12 && buf.starts_with(b"HTTP/1.1 101"))
}

#[test]
fn accept_survives_emfile() {
    // No silent pass: without util-linux's prlimit this test fails.
    assert!(
        Command::new("prlimit").arg("--version").output().is_ok(),
        "this test needs prlimit (Debian package util-linux)"
    );
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let child = Command::new("prlimit")
        .arg("--nofile=32:32")
        .arg(echo_example())
        .arg(addr.to_string())
        .env("GMWS_LOG_LEVEL", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo example");
    let mut child = Killed(child);
    let pid = child.0.id();
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < PATIENCE, "echo example did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Fill the table: the first ones get a 101, the rest wait in the backlog.
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let _ = s.write_all(upgrade_request(addr).as_bytes());
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(n) if n > 12 && buf.starts_with(b"HTTP/1.1 101") => served.push(s),
            _ => waiting.push(s),
        }
    }
    assert!(served.len() >= 10, "only {} served", served.len());
    assert!(!waiting.is_empty(), "the limit was never reached");

    // No busy loop while out of descriptors: well under half a core over 1 s.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 50,
        "{used} ticks of CPU in 1 s while out of descriptors"
    );

    // Served clients keep working.
    let frame = [0x81, 0x82, 1, 2, 3, 4, b'o' ^ 1, b'k' ^ 2];
    for s in served.iter_mut().take(3) {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(&frame).unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, &[0x81, 2, b'o', b'k']);
    }

    // Free descriptors: the waiting connections are accepted.
    for s in served.drain(..) {
        drop(s);
    }
    let mut first = waiting.remove(0);
    first.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 256];
    let n = first
        .read(&mut buf)
        .expect("a waiting connection is accepted");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let mut fresh = TcpStream::connect(addr).unwrap();
    assert!(handshake(&mut fresh, addr));

    // EMFILE is logged at most about once a second.
    drop(waiting);
    let _ = child.0.kill();
    let mut log = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let lines = log.lines().filter(|l| l.contains("accept:")).count();
    let secs = start.elapsed().as_secs() + 1;
    assert!(
        lines as u64 <= secs + 1,
        "{lines} EMFILE lines in {secs} s:\n{log}"
    );
}
