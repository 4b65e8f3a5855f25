//! Accepting connections, and refusing them with an answer when a limit is
//! reached: `max_connections`, `max_pending_handshakes` and
//! `max_connections_per_ip` are answered at once (503 or 429, then close),
//! never left waiting in the kernel's backlog. Idle keep-alive connections
//! have a limit of their own (`max_idle_http`) and never hold up new ones.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gmws_protocol::decoder::{Decoder, Role};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::admission::{Admission, Refusal};
use super::event_loop::Loop;
use super::WAKER;
use crate::connection::{Connection, DeadlineKind, State};
use crate::handler::Handler;
use crate::hub::TimerEvent;

/// Wait before retrying `accept` after running out of file descriptors.
const ACCEPT_RETRY_MS: u64 = 100;

impl<H: Handler> Loop<H> {
    pub(super) fn accept_all(&mut self) {
        while !self.accept_paused {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.add_conn(stream, addr),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    let now = Instant::now();
                    if self
                        .last_exhaustion_log
                        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
                    {
                        log::warn!(
                            "accept: {e}; pausing accepts ({} connections held)",
                            self.hub.conns.len()
                        );
                        self.last_exhaustion_log = Some(now);
                    }
                    self.pause_accept();
                    return;
                }
                // ECONNABORTED and friends concern one pending connection only.
                Err(e) => log::debug!("accept: {e}"),
            }
        }
    }

    fn pause_accept(&mut self) {
        if !self.accept_paused {
            self.accept_paused = true;
            self.hub
                .timers
                .insert(self.hub.now + ACCEPT_RETRY_MS, TimerEvent::AcceptRetry);
        }
    }

    pub(super) fn resume_accept(&mut self) {
        if self.accept_paused {
            self.accept_paused = false;
            self.accept_all();
        }
    }

    /// A connection this loop accepted itself (one loop: no acceptor).
    fn add_conn(&mut self, stream: TcpStream, addr: SocketAddr) {
        // IPv4 peers on a dual-stack listener arrive IPv4-mapped: count them
        // (and exempt them) as the IPv4 addresses they are.
        let addr = SocketAddr::new(canonical_ip(addr.ip()), addr.port());
        match self.admission.admit(&self.hub.bus, addr) {
            Ok(()) => self.hold(stream, addr),
            Err(why) => self.refuse_at_accept(stream, addr, why),
        }
    }

    /// Answer a refused connection at once (never left waiting in the
    /// kernel's backlog), then close it.
    pub(super) fn refuse_at_accept(
        &mut self,
        mut stream: TcpStream,
        addr: SocketAddr,
        why: Refusal,
    ) {
        self.hub.metrics.connections_accepted += 1;
        self.hub.metrics.connections_refused += 1;
        let status = why.status();
        crate::log::peer_log!(
            "{} reached: refusing a connection from {addr} ({status})",
            why.limit()
        );
        // Take what the client sent already, so that closing with unread
        // input does not turn into a reset that eats the answer.
        let mut sink = [0u8; 4096];
        let _ = stream.read(&mut sink);
        if self.tls.is_none() {
            // (Through TLS there is no answer without a handshake: the
            // connection is only closed.)
            let response =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write(response.as_bytes());
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }

    /// Hold an admitted connection (counted in the totals already): it
    /// reads its request head next.
    pub(super) fn hold(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        self.hub.metrics.connections_accepted += 1;
        let _ = stream.set_nodelay(true);
        let key = self.hub.conns.vacant_key();
        if key >= WAKER.0 || key >= crate::hub::MAX_SLOTS {
            Admission::release(&self.hub.bus, addr);
            return;
        }
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
        {
            log::warn!("register: {e}");
            Admission::release(&self.hub.bus, addr);
            return;
        }
        let tls = match &self.tls {
            Some(tls) => match tls.accept() {
                Ok(session) => Some(Box::new(session)),
                Err(e) => {
                    log::warn!("TLS session for {addr}: {e}");
                    let _ = self.poll.registry().deregister(&mut stream);
                    Admission::release(&self.hub.bus, addr);
                    return;
                }
            },
            None => None,
        };
        let decoder = Decoder::new(Role::Server, self.limits);
        let key = self.hub.insert(
            |id| {
                let mut conn = Connection::new(stream, id, addr, decoder);
                conn.tls = tls;
                conn
            },
            true,
        );
        self.hub.arm_deadline(key, DeadlineKind::Handshake);
    }

    /// A keep-alive connection finished a request and has nothing pending:
    /// it waits for the next one, at most `http_idle_timeout`, and at most
    /// `max_idle_http` connections wait so (the oldest are closed first).
    pub(super) fn go_idle(&mut self, key: usize) {
        if let Some(conn) = self.hub.conns.get_mut(key) {
            conn.input.release(); // an idle connection holds no buffer
        }
        self.hub.account(key);
        self.hub.set_state(key, State::Http { idle: true });
        self.hub.arm_deadline(key, DeadlineKind::HttpIdle);
        if let Some(conn) = self.hub.conns.get(key) {
            if let Some(timer) = conn.deadline {
                self.hub.idle_order.push_back((conn.id, timer));
            }
        }
        while self.hub.counts.idle_http > self.config.max_idle_http {
            let Some((id, timer)) = self.hub.idle_order.pop_front() else {
                break;
            };
            let current = self.hub.conn(id).is_some_and(|c| {
                c.state == (State::Http { idle: true }) && c.deadline == Some(timer)
            });
            if current {
                self.hub.metrics.idle_http_closed += 1;
                log::debug!(
                    "socket {id}: closing the oldest idle keep-alive connection (max_idle_http)"
                );
                if let Some(key) = self.hub.key(id) {
                    self.drop_conn(key);
                }
            }
        }
        // Entries of connections that went busy again or closed are stale:
        // keep the queue in proportion to the idle connections.
        let idle = self.hub.counts.idle_http;
        if self.hub.idle_order.len() > 2 * idle + 64 {
            let mut order = std::mem::take(&mut self.hub.idle_order);
            order.retain(|(id, timer)| {
                self.hub.conn(*id).is_some_and(|c| {
                    c.state == (State::Http { idle: true }) && c.deadline == Some(*timer)
                })
            });
            self.hub.idle_order = order;
        }
    }
}

/// The IPv4 address of an IPv4-mapped IPv6 address, else the address.
pub(crate) fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or system is out of a resource.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}
