//! Broadcast mode: C subscribers in one group, one publisher.
//!
//! Each subscriber binds (`{"type":"bind","data":{"client_id":"load-N"}}`,
//! with a token signed by `--auth-secret` if given, `sub` the client id and
//! `exp` an hour ahead; no `aud` or `iss`) and joins the group. Once
//! all are in or have failed (one still binding or joining after three
//! `--timeout`s counts as a `timeout` and is dropped), the publisher sends
//! messages to the group, either with `POST /api/send_to_group` on one
//! keep-alive HTTP connection or with a `send_to_group` envelope on its own
//! bound socket (which is not in the group). A published message is the
//! string `gmws-load SEQ T_NS` padded with `x` to `--size` bytes, where
//! `T_NS` is the publication time in nanoseconds on the load generator's
//! clock; a subscriber's delivery latency is its receive time minus `T_NS`.
//!
//! With `--rate 0` (the default) the next message is published as soon as the
//! previous one has reached every subscriber (and, over HTTP, its response
//! is in), or after `--timeout`; with `--rate N`, N per second. Deliveries of
//! messages published in the measured window are counted. Every subscriber
//! must receive every message, in order: a gap is `out_of_order`, a message
//! missing at the end is `timeout`; an API answer other than 200 with
//! `delivered` equal to the subscribers is `refused`.
//!
//! Across a cluster: `--publish-target` posts to another node than the
//! subscribers' (cross-node latency), `--also-target` connects every other
//! subscriber to a second node (a group split over two nodes); a 200 with
//! any `delivered` is then accepted, since a node counts only its own
//! sockets, and the subscribers still check every delivery. Publishing may
//! start as soon as every join is answered: a node holds a join's reply
//! until Redis has confirmed its subscription to the group's channel.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::protocol::OpCode;

use super::args::{LoadArgs, Publisher};
use super::driver::{Client, Data, Driver, Outbox, Verdict, Wire, CLOSE_WAIT};
use super::echo::SETUP_TIMEOUTS;
use super::histogram::Histogram;
use super::http::HttpPublisher;
use super::procfs;
use super::stats::{BroadcastReport, ConnCounts, ErrorCounts, ErrorKind, ServerCpu};
use super::LoadError;

/// The marker that starts every published message.
const MARKER: &str = "gmws-load ";
/// The longest wait for deliveries still missing after the window.
const MAX_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Binding,
    Joining,
    Ready,
    Gone,
}

struct Member {
    state: State,
    next_seq: u64,
}

/// Subscribers (indexes `0..subscribers`) and, with a socket publisher, the
/// publisher (index `subscribers`).
struct Broadcast {
    base: Instant,
    group: String,
    auth_secret: Option<String>,
    /// Subscribers on other nodes than the one published to: its
    /// `delivered` counts only its own sockets, so any count is taken.
    cluster: bool,
    members: Vec<Member>,
    subscribers: usize,
    /// Subscribers joined and still connected.
    ready: usize,
    /// Subscribers that failed before joining.
    lost: usize,
    http: Option<HttpPublisher>,
    /// Measured window, in ns after `base`.
    window: Option<(u64, u64)>,
    /// Publications so far; the last one's seq is `published - 1`.
    published: u64,
    /// Sum over publications of the subscribers ready at the time.
    expected: u64,
    /// Deliveries of any publication.
    received: u64,
    /// Deliveries of the latest publication.
    got_latest: u64,
    /// Subscribers ready at the latest publication.
    want_latest: u64,
    latency: Histogram,
    publications_in_window: u64,
    deliveries_in_window: u64,
    errors: ErrorCounts,
}

impl Broadcast {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn client_id(&self, i: usize) -> String {
        if i == self.subscribers {
            "load-publisher".to_owned()
        } else {
            format!("load-{i}")
        }
    }

    fn bind(&self, i: usize, out: &mut Outbox) {
        let client_id = self.client_id(i);
        let data = match &self.auth_secret {
            Some(secret) => {
                // The gateway requires an exp by default; a run is bounded
                // well within an hour.
                let exp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    + 3600;
                let claims = json!({ "sub": client_id, "exp": exp });
                let token = gmws::auth::jwt::sign_hs256(&claims, secret.as_bytes());
                json!({ "client_id": client_id, "token": token })
            }
            None => json!({ "client_id": client_id }),
        };
        let text = json!({ "type": "bind", "data": data }).to_string();
        out.send(OpCode::Text, text.as_bytes());
    }

    fn is_setup_done(&self) -> bool {
        let subs_done = self.ready + self.lost == self.subscribers;
        let publisher_done = match self.members.get(self.subscribers) {
            Some(p) => matches!(p.state, State::Ready | State::Gone),
            None => self.http.as_ref().is_some_and(HttpPublisher::is_idle),
        };
        subs_done && publisher_done
    }

    /// Whether the latest publication is still on its way.
    fn outstanding(&self) -> bool {
        let http_busy = self.http.as_ref().is_some_and(|h| !h.is_idle());
        self.published > 0 && (self.got_latest < self.want_latest || http_busy)
    }

    fn deliver(&mut self, i: usize, seq: u64, t_ns: u64) {
        let now = self.now_ns();
        self.received += 1;
        let member = &mut self.members[i];
        if seq != member.next_seq {
            self.errors.add(ErrorKind::OutOfOrder);
        }
        member.next_seq = seq + 1;
        if seq + 1 == self.published {
            self.got_latest += 1;
        }
        if self
            .window
            .is_some_and(|(start, end)| t_ns >= start && t_ns < end)
        {
            self.latency.record(now.saturating_sub(t_ns));
            self.deliveries_in_window += 1;
        }
    }

    /// The message text of publication `seq` made at `t_ns`.
    fn message(seq: u64, t_ns: u64, size: usize) -> String {
        let mut text = String::with_capacity(size.max(40));
        let _ = write!(text, "{MARKER}{seq} {t_ns} ");
        while text.len() < size {
            text.push('x');
        }
        text
    }
}

/// `(seq, t_ns)` of a delivery: the marker's two numbers, wherever the
/// envelope puts the message.
fn parse_delivery(text: &str) -> Option<(u64, u64)> {
    let at = text.find(MARKER)? + MARKER.len();
    let mut fields = text[at..].split([' ', '"']);
    let seq = fields.next()?.parse().ok()?;
    let t_ns = fields.next()?.parse().ok()?;
    Some((seq, t_ns))
}

/// The `type` of a JSON envelope.
fn envelope_type(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

impl Client for Broadcast {
    fn on_open(&mut self, i: usize, out: &mut Outbox) {
        self.members[i].state = State::Binding;
        self.bind(i, out);
    }

    fn on_data(&mut self, i: usize, data: Data<'_>, out: &mut Outbox) -> Verdict {
        let Data::Text(text) = data else {
            return Verdict::Keep; // not part of the JSON protocol; ignored
        };
        let state = self.members[i].state;
        if state == State::Ready {
            if let Some((seq, t_ns)) = parse_delivery(text) {
                self.deliver(i, seq, t_ns);
            } else if envelope_type(text).as_deref() == Some("error") {
                self.errors.add(ErrorKind::Refused);
            }
            return Verdict::Keep;
        }
        match (state, envelope_type(text).as_deref()) {
            (State::Binding, Some("bind")) if i == self.subscribers => {
                self.members[i].state = State::Ready;
            }
            (State::Binding, Some("bind")) => {
                self.members[i].state = State::Joining;
                let join = json!({ "type": "join", "data": { "group": self.group } });
                out.send(OpCode::Text, join.to_string().as_bytes());
            }
            (State::Joining, Some("join")) => {
                self.members[i].state = State::Ready;
                self.ready += 1;
            }
            (State::Binding | State::Joining, Some("error")) => {
                self.errors.add(ErrorKind::Refused);
                return Verdict::Close;
            }
            _ => {} // welcome, pong, ...
        }
        Verdict::Keep
    }

    fn on_gone(&mut self, i: usize, error: Option<ErrorKind>) {
        let member = &mut self.members[i];
        if i < self.subscribers {
            match member.state {
                State::Ready => self.ready -= 1,
                State::Connecting | State::Binding | State::Joining => self.lost += 1,
                State::Gone => {}
            }
        }
        member.state = State::Gone;
        if let Some(kind) = error {
            self.errors.add(kind);
        }
    }

    fn on_other(&mut self, event: &mio::event::Event) {
        let Some(http) = self.http.as_mut() else {
            return;
        };
        match http.on_event(event) {
            Ok(None) => {}
            Ok(Some(response)) => {
                let complete = response.status == 200
                    && response
                        .delivered
                        .is_some_and(|n| self.cluster || n >= self.want_latest);
                if !complete {
                    self.errors.add(ErrorKind::Refused);
                }
            }
            Err(kind) => {
                self.errors.add(kind);
                self.http = None; // publishing stops; the run ends at its deadline
            }
        }
    }
}

/// Run broadcast mode against `addr`.
pub fn run(args: &LoadArgs, addr: SocketAddr, wire: &Wire) -> Result<BroadcastReport, LoadError> {
    let socket_publisher = args.publisher == Publisher::Socket;
    let count = args.connections + usize::from(socket_publisher);
    let publish_addr = match &args.publish_target {
        Some(target) => crate::resolve(args, target)?,
        None => addr,
    };
    let mut driver = Driver::new(
        addr,
        &args.target,
        &args.path,
        count,
        args.connect_window,
        args.timeout,
        wire,
    )
    .map_err(LoadError::EventLoop)?;
    if let Some(also) = &args.also_target {
        driver.alternate_with(crate::resolve(args, also)?);
    }
    let http = match args.publisher {
        Publisher::Http => Some(
            HttpPublisher::connect(
                driver.registry(),
                Driver::extra_token(0),
                publish_addr,
                args.publish_target.as_deref().unwrap_or(&args.target),
                args.api_key.as_deref(),
            )
            .map_err(LoadError::EventLoop)?,
        ),
        Publisher::Socket => None,
    };
    let mut bc = Broadcast {
        base: Instant::now(),
        group: args.group.clone(),
        auth_secret: args.auth_secret.clone(),
        cluster: args.publish_target.is_some() || args.also_target.is_some(),
        members: (0..count)
            .map(|_| Member {
                state: State::Connecting,
                next_seq: 0,
            })
            .collect(),
        subscribers: args.connections,
        ready: 0,
        lost: 0,
        http,
        window: None,
        published: 0,
        expected: 0,
        received: 0,
        got_latest: 0,
        want_latest: 0,
        latency: Histogram::new(),
        publications_in_window: 0,
        deliveries_in_window: 0,
        errors: ErrorCounts::default(),
    };
    let turn = |driver: &mut Driver, bc: &mut Broadcast, wait: Duration| {
        driver.turn(bc, wait).map_err(LoadError::EventLoop)
    };

    // Setup: connect, bind, join.
    let setup_deadline = Instant::now() + SETUP_TIMEOUTS * args.timeout;
    while !(driver.settled() && bc.is_setup_done()) {
        if Instant::now() >= setup_deadline {
            // Whoever is not in by now is out: the run goes on with the rest.
            driver.give_up_setup(&mut bc);
            for i in 0..bc.members.len() {
                if matches!(bc.members[i].state, State::Binding | State::Joining) {
                    bc.errors.add(ErrorKind::Timeout);
                    driver.abort(i);
                    bc.on_gone(i, None);
                }
            }
            break;
        }
        turn(&mut driver, &mut bc, Duration::from_millis(20))?;
    }
    // Across a cluster a node answers the join of a group's first member
    // there only once Redis has confirmed its subscription to the group's
    // channel: publishing may start now.
    let joined = bc.ready;
    let start = bc.now_ns() + nanos(args.warmup);
    let end = start + nanos(args.duration);
    bc.window = Some((start, end));
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut next_publication = Instant::now();
    let mut last_publication = Instant::now();
    let mut cpu_start = None;
    let mut server_cpu = None;
    let grace = args.timeout.min(MAX_GRACE);

    loop {
        let now = Instant::now();
        let now_ns = bc.now_ns();
        if let Some(pid) = args.pid {
            if cpu_start.is_none() && now_ns >= start {
                cpu_start = procfs::times(pid).ok().map(|c| (c, now));
            }
            if let (Some((c0, t0)), None) = (cpu_start, server_cpu) {
                if now_ns >= end {
                    server_cpu = procfs::times(pid)
                        .ok()
                        .map(|c1| ServerCpu::between(c0, c1, (now - t0).as_secs_f64()));
                }
            }
        }
        if now_ns >= end {
            let all_in = bc.received >= bc.expected && !bc.outstanding();
            if all_in || now_ns >= end + nanos(grace) || bc.ready == 0 {
                break;
            }
        } else if bc.ready > 0 {
            let due = match interval {
                None => !bc.outstanding() || now.duration_since(last_publication) >= args.timeout,
                Some(_) => now >= next_publication,
            };
            let publisher_free = match &bc.http {
                Some(http) => http.is_idle(),
                None => socket_publisher && bc.members[args.connections].state == State::Ready,
            };
            if due && publisher_free {
                publish(&mut driver, &mut bc, args, now_ns)?;
                last_publication = now;
                if let Some(interval) = interval {
                    // Late publications catch up (the poll wakes in whole
                    // milliseconds); only a backlog of a second is dropped.
                    next_publication += interval;
                    if next_publication + Duration::from_secs(1) < now {
                        next_publication = now + interval;
                    }
                }
            }
        }
        let until_next_tick = if now_ns < start {
            Duration::from_nanos(start - now_ns)
        } else if now_ns < end {
            Duration::from_nanos(end - now_ns)
        } else {
            Duration::from_millis(10)
        };
        let wait = match interval {
            Some(_) => next_publication.saturating_duration_since(now),
            None => Duration::from_millis(10),
        };
        turn(
            &mut driver,
            &mut bc,
            wait.min(until_next_tick).max(Duration::from_micros(100)),
        )?;
    }
    let missing = bc.expected.saturating_sub(bc.received);
    bc.errors.add_n(ErrorKind::Timeout, missing);
    bc.http = None;
    driver.close_all(&mut bc);
    let close_deadline = Instant::now() + CLOSE_WAIT + Duration::from_millis(100);
    while !driver.finished() && Instant::now() < close_deadline {
        turn(&mut driver, &mut bc, Duration::from_millis(20))?;
    }
    Ok(BroadcastReport {
        conns: ConnCounts {
            opened: joined,
            failed: args.connections - joined,
        },
        publications: bc.publications_in_window,
        deliveries: bc.deliveries_in_window,
        seconds: args.duration.as_secs_f64(),
        latency: bc.latency,
        errors: bc.errors,
        server_cpu,
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 4)
}

/// Publish the next message.
fn publish(
    driver: &mut Driver,
    bc: &mut Broadcast,
    args: &LoadArgs,
    now_ns: u64,
) -> Result<(), LoadError> {
    let seq = bc.published;
    let text = Broadcast::message(seq, now_ns, args.size);
    let group = Value::String(args.group.clone()).to_string();
    bc.published += 1;
    bc.expected += bc.ready as u64;
    bc.want_latest = bc.ready as u64;
    bc.got_latest = 0;
    if bc
        .window
        .is_some_and(|(start, end)| now_ns >= start && now_ns < end)
    {
        bc.publications_in_window += 1;
    }
    if let Some(http) = bc.http.as_mut() {
        let body = format!(r#"{{"group":{group},"message":"{text}"}}"#);
        if let Err(kind) = http.post(&body) {
            bc.errors.add(kind);
            bc.http = None;
        }
        return Ok(());
    }
    let envelope =
        format!(r#"{{"type":"send_to_group","data":{{"group":{group},"message":"{text}"}}}}"#);
    let publisher = args.connections;
    if let Some(out) = driver.outbox(publisher) {
        out.send(OpCode::Text, envelope.as_bytes());
    }
    driver.flush(publisher, bc);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_seq_and_time() {
        let text = Broadcast::message(42, 123_456_789, 64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("gmws-load 42 123456789 x"));
        let envelope = format!(
            r#"{{"type":"message","data":{{"from":"server","to":{{"group":"g"}},"message":"{text}"}}}}"#
        );
        assert_eq!(parse_delivery(&envelope), Some((42, 123_456_789)));
        // A short size still carries the numbers.
        let short = Broadcast::message(1, 2, 4);
        assert_eq!(parse_delivery(&short), Some((1, 2)));
        assert_eq!(parse_delivery(r#"{"type":"welcome"}"#), None);
        assert_eq!(parse_delivery("gmws-load x 1"), None);
    }

    #[test]
    fn envelope_types() {
        assert_eq!(
            envelope_type(r#"{"type":"bind","data":{}}"#).as_deref(),
            Some("bind")
        );
        assert_eq!(envelope_type("not json"), None);
        assert_eq!(envelope_type("[1]"), None);
    }
}
