//! The canary: a bound client on its own thread that sends `{"type":"ping"}`
//! every interval and expects `{"type":"pong"}`, answering the server's
//! heartbeats. It records every error, the round-trip times and the largest
//! gap between two pongs; a case fails if the canary saw an error or a gap
//! over a second.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::ws::{Frame, Ws};
use super::PATIENCE;

/// The largest gap between two pongs a case tolerates.
pub const MAX_GAP: Duration = Duration::from_secs(1);

/// How a canary behaves.
#[derive(Clone, Debug)]
pub struct CanaryOptions {
    /// Time between pings.
    pub interval: Duration,
    /// On a close 1001 (server shutdown) or EOF, reconnect and bind again
    /// instead of recording an error (the graceful-restart case).
    pub reconnect: bool,
    /// Client id to bind.
    pub client_id: String,
    /// Group to join after binding.
    pub group: Option<String>,
}

impl CanaryOptions {
    pub fn new(client_id: &str) -> CanaryOptions {
        CanaryOptions {
            interval: Duration::from_millis(100),
            reconnect: false,
            client_id: client_id.to_owned(),
            group: Some("canary".to_owned()),
        }
    }
}

/// What the canary saw.
#[derive(Debug, Default)]
pub struct CanaryReport {
    pub name: String,
    pub pongs: u64,
    pub max_gap: Duration,
    pub rtts: Vec<Duration>,
    pub errors: Vec<String>,
    pub reconnects: u32,
    /// Text messages other than pongs (e.g. group messages).
    pub messages: Vec<String>,
    pub heartbeat_pings: u64,
}

impl CanaryReport {
    /// The `q` quantile (0..=1) of the round-trip times.
    pub fn rtt_quantile(&self, q: f64) -> Duration {
        quantile(&self.rtts, q)
    }

    pub fn summary(&self) -> String {
        format!(
            "canary {}: {} pongs, max gap {} ms, rtt p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {} heartbeat pings answered, {} reconnects, {} errors",
            self.name,
            self.pongs,
            self.max_gap.as_millis(),
            ms(self.rtt_quantile(0.5)),
            ms(self.rtt_quantile(0.99)),
            ms(self.rtt_quantile(1.0)),
            self.heartbeat_pings,
            self.reconnects,
            self.errors.len()
        )
    }

    /// Panic unless the canary saw no error, no gap over [`MAX_GAP`], and pongs.
    pub fn assert_ok(&self) {
        assert!(
            self.errors.is_empty(),
            "{}: {:?}",
            self.summary(),
            self.errors
        );
        assert!(self.pongs > 0, "{}: no pong at all", self.summary());
        assert!(
            self.max_gap <= MAX_GAP,
            "{}: a gap over {MAX_GAP:?}",
            self.summary()
        );
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile of `values` (nearest rank).
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A running canary; [`Canary::stop`] returns its report.
pub struct Canary {
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<CanaryReport>>,
    name: String,
}

fn connect(addr: SocketAddr, options: &CanaryOptions) -> std::io::Result<Ws> {
    let mut ws = Ws::connect(addr, PATIENCE)?;
    ws.bind(&options.client_id)?;
    if let Some(group) = &options.group {
        ws.join(group)?;
    }
    Ok(ws)
}

impl Canary {
    /// Connect, bind and join (panics if that fails), then start pinging.
    pub fn start(addr: SocketAddr, options: CanaryOptions) -> Canary {
        let ws = connect(addr, &options)
            .unwrap_or_else(|e| panic!("canary {}: cannot connect: {e}", options.client_id));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let name = options.client_id.clone();
        let thread = std::thread::Builder::new()
            .name(format!("canary-{name}"))
            .spawn(move || run(addr, options, ws, &flag))
            .unwrap();
        Canary {
            started: Instant::now(),
            stop,
            thread: Some(thread),
            name,
        }
    }

    /// Stop and return the report (after at least half a second of pinging).
    pub fn stop(mut self) -> CanaryReport {
        let ran = self.started.elapsed();
        if ran < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(500) - ran);
        }
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().unwrap();
        thread.join().unwrap_or_else(|_| CanaryReport {
            name: self.name.clone(),
            errors: vec!["the canary thread panicked".into()],
            ..CanaryReport::default()
        })
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(addr: SocketAddr, options: CanaryOptions, mut ws: Ws, stop: &AtomicBool) -> CanaryReport {
    let mut report = CanaryReport {
        name: options.client_id.clone(),
        ..CanaryReport::default()
    };
    let ping = json!({"type": "ping"}).to_string();
    let mut outstanding: VecDeque<Instant> = VecDeque::new();
    let mut last_pong = Instant::now();
    let mut next_send = Instant::now();
    let mut late_reported = false;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_send {
            if let Err(e) = ws.send(gmws::protocol::OpCode::Text, ping.as_bytes()) {
                if !options.reconnect {
                    report.errors.push(format!("send: {e}"));
                    break;
                }
            } else {
                outstanding.push_back(now);
            }
            next_send += options.interval;
            if next_send < now {
                next_send = now + options.interval;
            }
        }
        if let Some(sent) = outstanding.front() {
            if now.duration_since(*sent) > MAX_GAP && !late_reported {
                report.errors.push(format!(
                    "no pong {} ms after a ping",
                    now.duration_since(*sent).as_millis()
                ));
                late_reported = true;
            }
        }
        let deadline = next_send.min(now + Duration::from_millis(20));
        let frame = match ws.next(deadline) {
            Ok(frame) => frame,
            Err(e) => Some(Frame::Close(None, format!("error: {e}"))),
        };
        let now = Instant::now();
        match frame {
            None => {}
            Some(Frame::Text(text)) => {
                let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if value["type"] == "pong" {
                    match outstanding.pop_front() {
                        Some(sent) => report.rtts.push(now.duration_since(sent)),
                        None => report.errors.push("a pong without a ping".into()),
                    }
                    report.pongs += 1;
                    report.max_gap = report.max_gap.max(now.duration_since(last_pong));
                    last_pong = now;
                } else {
                    report.messages.push(text);
                }
            }
            Some(Frame::Close(code, reason))
                if options.reconnect && code != Some(1001) && code.is_some() =>
            {
                report.errors.push(format!("closed {code:?} {reason:?}"));
                break;
            }
            Some(Frame::Close(_, _) | Frame::Eof) if options.reconnect => {
                // Answer the close (if the socket still takes it), then reconnect.
                let _ = ws.send_close(1001);
                report.heartbeat_pings += ws.pings;
                match reconnect(addr, &options, stop) {
                    Some(fresh) => {
                        ws = fresh;
                        report.reconnects += 1;
                        outstanding.clear();
                        late_reported = false;
                        next_send = Instant::now();
                    }
                    None => {
                        report.errors.push("could not reconnect within 5 s".into());
                        break;
                    }
                }
            }
            Some(frame) => {
                report.errors.push(format!("unexpected {frame:?}"));
                break;
            }
        }
    }
    report.max_gap = report.max_gap.max(last_pong.elapsed());
    report.heartbeat_pings += ws.pings;
    report
}

fn reconnect(addr: SocketAddr, options: &CanaryOptions, stop: &AtomicBool) -> Option<Ws> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) && !stop.load(Ordering::Relaxed) {
        if let Ok(ws) = connect(addr, options) {
            return Some(ws);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}
