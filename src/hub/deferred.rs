//! A fan-out's writes past the turn's bound, made in later turns straight
//! from the shared frame.
//!
//! A fan-out writes its frame at once to each idle recipient while the turn
//! has fan-out writes left (`max_fanout_writes_per_turn`, the fairness
//! bound). The idle recipients past the bound are not given a queued copy
//! each, visited again by the flush: they are marked
//! [`Dirty::Deferred`](crate::connection::Dirty::Deferred) and listed here,
//! in slot order, and each later turn's flush writes the next ones, as many
//! as its bound allows, visiting each socket once. They go before the
//! sockets with queued fan-out frames: the list never grows, so those wait
//! a bounded number of turns, and a stream of queued fan-outs cannot starve
//! the list.
//!
//! One fan-out at a time is deferred: a fan-out that comes while one is
//! still being written queues its frame as before, which keeps a socket's
//! unsent frames on its queue, where `max_backpressure` and the memory
//! budget see them. Order is kept: anything queued on a deferred socket
//! (a reply, a pong, another fan-out, a close) first queues the deferred
//! frame ([`Hub::undefer`]); such a socket is no longer marked, and the
//! turn that reaches its entry passes it by.

use crate::compression::Outgoing;
use crate::connection::Dirty;
use crate::socket_id::SocketId;

use super::Hub;

/// The sockets a fan-out still has to write, in slot order.
#[derive(Debug)]
pub(crate) struct Deferred {
    frame: Outgoing,
    payload_len: usize,
    /// Slot and id of each socket (an entry whose slot now holds another
    /// socket, or one no longer marked, is passed by).
    sockets: Vec<(usize, SocketId)>,
    /// The first entry not yet written.
    next: usize,
}

impl Deferred {
    /// Sockets of `frame` (of a `payload_len`-byte message) to write later,
    /// listed in slot order.
    pub(crate) fn new(
        frame: Outgoing,
        payload_len: usize,
        sockets: Vec<(usize, SocketId)>,
    ) -> Self {
        Deferred {
            frame,
            payload_len,
            sockets,
            next: 0,
        }
    }

    /// Entries not yet reached.
    pub(crate) fn remaining(&self) -> usize {
        self.sockets.len() - self.next
    }
}

impl Hub {
    /// Slot `key` is about to have something queued: if it waits for the
    /// deferred fan-out's frame, queue that frame first.
    pub(crate) fn undefer(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.dirty != Dirty::Deferred {
            return;
        }
        conn.dirty = Dirty::Fanout;
        self.dirty_fanout.push(key);
        if let Some(job) = &self.deferred {
            let frame = job.frame.frame_for(
                conn.deflate,
                job.payload_len,
                &mut self.compression,
                &self.gauge,
            );
            conn.output.push_shared(frame.clone(), &mut self.pool);
        }
        self.account(key);
    }

    /// Write the deferred fan-out's next sockets, as many as the turn's
    /// fan-out writes allow; what a socket does not take is queued on it.
    pub(crate) fn write_deferred(&mut self) {
        let Some(mut job) = self.deferred.take() else {
            return;
        };
        while self.fanout_writes_left > 0 {
            let Some(&(key, id)) = job.sockets.get(job.next) else {
                return; // done: the job is dropped
            };
            job.next += 1;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.id != id || conn.dirty != Dirty::Deferred {
                continue; // gone, or its frame was queued meanwhile
            }
            conn.dirty = Dirty::Clean;
            self.fanout_writes_left -= 1;
            let frame = job.frame.frame_for(
                conn.deflate,
                job.payload_len,
                &mut self.compression,
                &self.gauge,
            );
            // An error is left to the flush, which meets it again and drops
            // the connection.
            let written = std::io::Write::write(&mut conn.stream, frame.bytes()).unwrap_or(0);
            if written < frame.len() {
                conn.output
                    .push_shared_from(frame.clone(), written, &mut self.pool);
                conn.dirty = Dirty::Fanout;
                self.dirty_fanout.push(key);
                self.check_queue(key);
            }
        }
        if job.remaining() > 0 {
            self.deferred = Some(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    use gmws_protocol::decoder::{Decoder, Role};

    use super::*;
    use crate::config::Config;
    use crate::connection::Connection;

    /// A loop's hub (deferring allowed) with `n` open sockets in group
    /// "g"; each socket's id, slot and peer end.
    fn hub_with(n: usize) -> (Hub, TcpListener, Vec<(SocketId, usize, TcpStream)>) {
        let bus = crate::bus::Bus::detached().expect("bus");
        let mut hub = Hub::new(Arc::new(Config::default()), bus, 0);
        hub.defer_fanout = true;
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let sockets = (0..n).map(|_| open(&mut hub, &listener)).collect();
        (hub, listener, sockets)
    }

    fn open(hub: &mut Hub, listener: &TcpListener) -> (SocketId, usize, TcpStream) {
        let peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        peer.set_nonblocking(true).expect("nonblocking");
        let (stream, addr) = listener.accept().expect("accept");
        stream.set_nonblocking(true).expect("nonblocking");
        let decoder = Decoder::new(Role::Server, hub.config().frame_limits());
        let key = hub.insert(
            |id| Connection::new(mio::net::TcpStream::from_std(stream), id, addr, decoder),
            false,
        );
        hub.enter_open(key);
        let id = hub.conns[key].id;
        assert_eq!(hub.join_group(id, "g"), Ok(true));
        (id, key, peer)
    }

    /// What reached `peer` so far (loopback: a write is in the peer's
    /// queue when it returns).
    fn received(peer: &mut TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Write what slot `key` has queued, as the loop's flush would.
    fn flush(hub: &mut Hub, key: usize) {
        hub.conns[key].dirty = Dirty::Clean;
        assert!(hub.write_now(key));
    }

    fn text(s: &str) -> Vec<u8> {
        let mut frame = vec![0x81, s.len() as u8];
        frame.extend_from_slice(s.as_bytes());
        frame
    }

    #[test]
    fn sockets_past_the_bound_are_written_in_later_turns_once_each() {
        let (mut hub, _l, mut sockets) = hub_with(5);
        hub.fanout_writes_left = 2;
        assert_eq!(hub.send_to_group("g", "A", &[]), 5);
        let got: Vec<bool> = sockets
            .iter_mut()
            .map(|(_, _, p)| received(p) == text("A"))
            .collect();
        assert_eq!(
            got.iter().filter(|g| **g).count(),
            2,
            "the bound's two, at once"
        );
        assert_eq!(hub.deferred.as_ref().map(|d| d.remaining()), Some(3));
        // Two turns: two sockets, then the last one; then the job is gone.
        for (turn, expect) in [(0, 2), (1, 1)] {
            hub.fanout_writes_left = 2;
            hub.write_deferred();
            let now = sockets
                .iter_mut()
                .map(|(_, _, p)| received(p))
                .filter(|got| *got == text("A"))
                .count();
            assert_eq!(now, expect, "turn {turn}");
        }
        assert!(hub.deferred.is_none());
        assert!(hub.dirty_fanout.is_empty() && hub.dirty.is_empty());
        for (_, key, peer) in &mut sockets {
            assert_eq!(hub.conns[*key].dirty, Dirty::Clean);
            assert!(received(peer).is_empty(), "each socket got it once");
        }
    }

    #[test]
    fn what_is_queued_on_a_deferred_socket_goes_after_its_frame() {
        let (mut hub, _l, mut sockets) = hub_with(4);
        hub.fanout_writes_left = 0;
        assert_eq!(hub.send_to_group("g", "A", &[]), 4);
        let (s0, s1, s2, s3) = (sockets[0].0, sockets[1].0, sockets[2].0, sockets[3].0);
        // A message to one socket, a second fan-out (queued: one fan-out is
        // deferred at a time), a close.
        assert!(hub.send_to_socket(s0, "B").is_ok());
        assert_eq!(hub.send_to_group("g", "C", &[s2, s3]), 2);
        assert!(hub
            .close_socket(s1, gmws_protocol::CloseCode(4001), "x")
            .is_ok());
        for (_, key, _) in &sockets[..2] {
            flush(&mut hub, *key);
        }
        let close = [0x88, 3, 0x0f, 0xa1, b'x'];
        assert_eq!(
            received(&mut sockets[0].2),
            [text("A"), text("B"), text("C")].concat()
        );
        assert_eq!(
            received(&mut sockets[1].2),
            [&text("A")[..], &text("C"), &close].concat()
        );
        // The job writes only the sockets nothing was queued on.
        assert!(received(&mut sockets[2].2).is_empty());
        hub.fanout_writes_left = 10;
        hub.write_deferred();
        assert!(hub.deferred.is_none());
        for (_, _, peer) in &mut sockets[..2] {
            assert!(received(peer).is_empty());
        }
        assert_eq!(received(&mut sockets[2].2), text("A"));
        assert_eq!(received(&mut sockets[3].2), text("A"));
    }

    #[test]
    fn a_slot_taken_by_a_new_socket_meanwhile_is_passed_by() {
        let (mut hub, listener, mut sockets) = hub_with(3);
        hub.fanout_writes_left = 0;
        assert_eq!(hub.send_to_group("g", "A", &[]), 3);
        let (_, gone, _) = sockets.remove(1);
        assert!(hub.remove(gone).is_some());
        let (_, key, mut newcomer) = open(&mut hub, &listener);
        assert_eq!(key, gone, "the slab gives the freed slot again");
        hub.fanout_writes_left = 10;
        hub.write_deferred();
        assert!(
            received(&mut newcomer).is_empty(),
            "not the newcomer's frame"
        );
        for (_, _, peer) in &mut sockets {
            assert_eq!(received(peer), text("A"));
        }
    }
}
