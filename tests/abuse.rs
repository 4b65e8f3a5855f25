//! Issue 8's reproductions as fault-suite cases: the release `gmws` binary
//! as a child process on loopback, a canary pinging throughout, each case
//! bounded in time. `#[ignore]`d like tests/faults.rs; scripts/faults.sh runs
//! both files, one case at a time, each printing one `FAULTS …: PASS` line.
//!
//! - case11: 20 clients each broadcast 100 KB at once to fast readers:
//!   nobody is closed (backpressure counts what the kernel refused).
//! - case12: a connection pipelines 4 MB of `GET /` and never reads: the
//!   server's RSS stays bounded.
//! - case13: 1,024 idle keep-alive HTTP connections: a new client's
//!   handshake completes within a second.
//! - case14: a `send_to_all` storm to 2,000 sockets, with the default limits
//!   (the canary's p99 stays under 50 ms) and with the per-socket rate limit
//!   off (the per-turn fan-out bound alone: under 100 ms).
//! - case15: a Close frame then a FIN, and an HTTP request then a FIN: the
//!   answer arrives, 200 times of 200 each; 500 refused requests in a burst
//!   leave at most 20 log lines a second.

mod faults_support;
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use faults_support::canary::{ms, Canary, CanaryOptions};
use faults_support::ws::{json_frame, Frame, Ws};
use faults_support::*;
use serde_json::json;
use support::{read_http_response, read_to_close};

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn case11_broadcast_burst_to_fast_readers() {
    let _dog = Watchdog::new("case11", Duration::from_secs(60));
    let start = Instant::now();
    let server = Gmws::start(&[("allow-send-to-all", "true")]);
    let addr = server.addr;
    let canary = Canary::start(addr, CanaryOptions::new("canary"));
    let n = 20;
    let barrier = Arc::new(Barrier::new(n));
    let message = "m".repeat(100_000);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let message = message.clone();
            thread::spawn(move || -> Result<usize, String> {
                let mut ws = Ws::connect(addr, PATIENCE).map_err(|e| e.to_string())?;
                ws.bind(&format!("c{i}")).map_err(|e| e.to_string())?;
                barrier.wait();
                ws.send_json(&json!({"type": "send_to_all", "data": {"message": message}}))
                    .map_err(|e| e.to_string())?;
                let deadline = Instant::now() + PATIENCE;
                let mut got = 0;
                while got < n {
                    match ws.next(deadline).map_err(|e| e.to_string())? {
                        Some(Frame::Text(t)) if t.contains("\"message\"") => got += 1,
                        Some(Frame::Text(t)) => return Err(format!("unexpected: {t:.200}")),
                        Some(other) => return Err(format!("client {i}: {other:?} after {got}")),
                        None => return Err(format!("client {i}: {got} of {n} in time")),
                    }
                }
                Ok(got)
            })
        })
        .collect();
    let results: Vec<Result<usize, String>> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        server.metric("gmws_closes_total{reason=\"backpressure\"}"),
        0
    );
    let report_c = canary.stop();
    report_c.assert_ok();
    report(
        "case11_broadcast_burst",
        start,
        &[
            ("clients", n.to_string()),
            ("deliveries", (n * n).to_string()),
            ("closed", "0".to_owned()),
            ("canary", report_c.summary()),
        ],
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn case12_pipelining_without_reading() {
    let _dog = Watchdog::new("case12", Duration::from_secs(60));
    let start = Instant::now();
    let mut server = Gmws::start(&[]);
    let addr = server.addr;
    let canary = Canary::start(addr, CanaryOptions::new("canary"));
    let rss_before = server.rss_kib();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let batch: Vec<u8> = request
        .iter()
        .copied()
        .cycle()
        .take(request.len() * 1000)
        .collect();
    let mut pushed = 0usize;
    while pushed < 4 << 20 {
        match s.write(&batch) {
            Ok(n) => pushed += n,
            Err(_) => break, // the kernel's buffers are full: the server stopped reading
        }
    }
    thread::sleep(Duration::from_millis(500));
    let rss_growth = server.rss_kib() as i64 - rss_before as i64;
    let buffered = server.metric("gmws_buffered_bytes");
    assert!(rss_growth < 16 * 1024, "RSS grew by {rss_growth} KiB");
    drop(s);
    let report_c = canary.stop();
    report_c.assert_ok();
    server.assert_running();
    report(
        "case12_pipelining_without_reading",
        start,
        &[
            ("pipelined_bytes_accepted_by_kernel", pushed.to_string()),
            ("rss_growth", format!("{rss_growth}KiB")),
            ("server_buffered_bytes", buffered.to_string()),
            ("canary", report_c.summary()),
        ],
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn case13_idle_keep_alive_connections() {
    let _dog = Watchdog::new("case13", Duration::from_secs(90));
    let start = Instant::now();
    let server = Gmws::start(&[]);
    let addr = server.addr;
    let canary = Canary::start(addr, CanaryOptions::new("canary"));
    let mut idle = Vec::new();
    for _ in 0..1024 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(read_http_response(&mut s).status, 200);
        idle.push(s);
    }
    let t = Instant::now();
    let mut ws = Ws::connect(addr, Duration::from_secs(1)).expect("a new client within a second");
    let handshake = t.elapsed();
    ws.bind("newcomer").unwrap();
    assert!(handshake < Duration::from_secs(1), "{handshake:?}");
    // With several loops the gauge sums what each published (at most a
    // millisecond old): wait for it to settle.
    let idle_gauge = poll_until(PATIENCE, || {
        let n = server.metric("gmws_idle_http_connections");
        (n == 1024).then_some(n)
    })
    .unwrap_or_else(|| server.metric("gmws_idle_http_connections"));
    assert_eq!(idle_gauge, 1024);
    let report_c = canary.stop();
    report_c.assert_ok();
    report(
        "case13_idle_keep_alive",
        start,
        &[
            ("idle_keep_alive", idle_gauge.to_string()),
            ("new_handshake", secs(handshake)),
            ("canary", report_c.summary()),
        ],
    );
}

/// `count` open WebSockets, read and thrown away by one thread until `stop`.
fn drained_sockets(
    addr: SocketAddr,
    count: usize,
    stop: Arc<AtomicBool>,
) -> (thread::JoinHandle<()>, Arc<AtomicU64>) {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let ws = Ws::connect(addr, PATIENCE).expect("connect");
        let (stream, _, _) = ws.into_parts();
        stream.set_nonblocking(true).unwrap();
        streams.push(stream);
    }
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&bytes);
    // An epoll loop, so the reader spends its CPU on sockets with data, not
    // on 2,000 empty reads a pass (it shares this machine's two cores with
    // the server).
    let reader = thread::spawn(move || {
        let mut poll = mio::Poll::new().unwrap();
        let mut streams: Vec<mio::net::TcpStream> = streams
            .into_iter()
            .map(mio::net::TcpStream::from_std)
            .collect();
        for (i, s) in streams.iter_mut().enumerate() {
            poll.registry()
                .register(s, mio::Token(i), mio::Interest::READABLE)
                .unwrap();
        }
        let mut events = mio::Events::with_capacity(1024);
        let mut buf = vec![0u8; 256 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let _ = poll.poll(&mut events, Some(Duration::from_millis(20)));
            for event in events.iter() {
                let s = &mut streams[event.token().0];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
            }
        }
    });
    (reader, bytes)
}

/// One storm: a bound client pipelines 2,000 `send_to_all`s to `sockets`
/// drained sockets; returns the canary's report and the bytes delivered.
fn storm(
    flags: &[(&str, &str)],
    sockets: usize,
) -> (faults_support::canary::CanaryReport, u64, String) {
    let server = Gmws::start(flags);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (reader, delivered) = drained_sockets(addr, sockets, Arc::clone(&stop));
    let mut options = CanaryOptions::new("canary");
    options.interval = Duration::from_millis(20);
    let canary = Canary::start(addr, options);
    thread::sleep(Duration::from_millis(300));
    let mut stormer = Ws::connect(addr, PATIENCE).unwrap();
    stormer.bind("stormer").unwrap();
    let mut frames = Vec::new();
    for i in 0..2000 {
        frames.extend(json_frame(
            &json!({"type": "send_to_all", "data": {"message": {"n": i, "pad": "x".repeat(60)}}}),
        ));
    }
    let (mut stream, _, _) = stormer.into_parts();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(&frames);
    // Run for 4 s, draining the stormer's own socket too.
    stream.set_nonblocking(true).unwrap();
    let until = Instant::now() + Duration::from_secs(4);
    let mut buf = vec![0u8; 256 * 1024];
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
            Err(_) => break,
        }
    }
    let report_c = canary.stop();
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    let limited = server.metric("gmws_fanout_rate_limited_total");
    (
        report_c,
        delivered.load(Ordering::Relaxed),
        format!("rate_limited={limited}"),
    )
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn case14_send_to_all_storm() {
    let _dog = Watchdog::new("case14", Duration::from_secs(120));
    let start = Instant::now();
    let sockets = 2000;
    let (limited, limited_bytes, limited_note) = storm(&[("allow-send-to-all", "true")], sockets);
    let (unlimited, unlimited_bytes, _) = storm(
        &[("allow-send-to-all", "true"), ("client-fanout-rate", "0")],
        sockets,
    );
    // With the rate limit off the loop spends every turn on the storm (up to
    // 1,024 writes, 5-9 ms) while the 2,000 subscribers' reader competes with
    // it for the VM's two CPUs: measured 16-46 ms here, and 52 ms once while
    // the machine was compiling. The bound for that arm is what separates
    // "bounded per turn" from the unbounded loop before it (836 ms).
    let bounds = [
        ("default limits", &limited, 50),
        ("rate limit off", &unlimited, 100),
    ];
    for (what, r, bound_ms) in bounds {
        r.assert_ok();
        let p99 = r.rtt_quantile(0.99);
        assert!(
            p99 < Duration::from_millis(bound_ms),
            "{what}: {}",
            r.summary()
        );
    }
    report(
        "case14_send_to_all_storm",
        start,
        &[
            ("sockets", sockets.to_string()),
            ("default_limits_bytes_delivered", limited_bytes.to_string()),
            ("default_limits", limited_note),
            (
                "default_limits_canary_p99_ms",
                format!("{:.2}", ms(limited.rtt_quantile(0.99))),
            ),
            (
                "rate_limit_off_bytes_delivered",
                unlimited_bytes.to_string(),
            ),
            (
                "rate_limit_off_canary_p99_ms",
                format!("{:.2}", ms(unlimited.rtt_quantile(0.99))),
            ),
            ("canary_default", limited.summary()),
            ("canary_rate_limit_off", unlimited.summary()),
        ],
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn case15_half_close() {
    let _dog = Watchdog::new("case15", Duration::from_secs(60));
    let start = Instant::now();
    let server = Gmws::start(&[]);
    let addr = server.addr;
    let canary = Canary::start(addr, CanaryOptions::new("canary"));
    let trials = 200;
    let mut close_replies = 0;
    let mut http_responses = 0;
    for _ in 0..trials {
        let mut ws = Ws::connect(addr, PATIENCE).unwrap();
        ws.send_close(1000).unwrap();
        ws.stream.shutdown(Shutdown::Write).unwrap();
        loop {
            match ws.next(Instant::now() + PATIENCE).unwrap() {
                Some(Frame::Close(Some(1000), _)) => {
                    close_replies += 1;
                    break;
                }
                Some(Frame::Text(_)) => {}
                other => panic!("after Close + FIN: {other:?}"),
            }
        }
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        if read_to_close(&mut s).starts_with("HTTP/1.1 200 ") {
            http_responses += 1;
        }
    }
    assert_eq!(close_replies, trials);
    assert_eq!(http_responses, trials);

    // Log lines a peer causes are rate-limited: 500 refused requests in a
    // burst leave at most 20 a second (plus one window's worth).
    let lines_before = server.log_lines().len();
    let burst = Instant::now();
    for _ in 0..500 {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(b"NONSENSE\r\n\r\n");
    }
    let burst = burst.elapsed();
    thread::sleep(Duration::from_millis(300));
    let logged = server.log_lines().len() - lines_before;
    let allowed = 20 * (burst.as_secs() as usize + 2);
    assert!(
        logged <= allowed,
        "{logged} lines for 500 refusals in {burst:?}"
    );
    let report_c = canary.stop();
    report_c.assert_ok();
    report(
        "case15_half_close",
        start,
        &[
            ("close_replies", format!("{close_replies}/{trials}")),
            ("http_responses", format!("{http_responses}/{trials}")),
            ("log_lines_for_500_refusals", logged.to_string()),
            ("canary", report_c.summary()),
        ],
    );
}
