//! The plain HTTP side of the server on arbitrary bytes: request heads
//! (`parse_request`, default `HeadLimits`), the Host / Content-Length /
//! Transfer-Encoding checks, bodies, the router, the built-in routes and the
//! `/api/` endpoints, on a hub with open sockets (bound, unbound, in groups,
//! one with a session), through `gmws::bench_support::feed_http`, which runs
//! the event loop's own steps (pipelined requests one after the other).
//!
//! Input: `mode`, `split`, then the bytes a client sends.
//! - `mode & 3`: 0 `api_key` set; 1 `api_key` set and `api_trust_loopback`;
//!   2 no key, `api_trust_loopback`; 3 no key (the API is refused).
//!   The key is `fuzz-api-key` (`Authorization: Bearer fuzz-api-key`).
//! - `mode >> 2 & 3`: the peer: 127.0.0.1, 192.0.2.7, ::ffff:127.0.0.1, 2001:db8::1.
//! - `mode & 16`: tight limits (64-byte bodies and sessions, no demo page,
//!   one allowed origin `http://a.example`, subprotocol `chat`).
//!
//! The bytes are served twice on fresh hubs: in one read, then in two reads
//! cut at `split / 255` of their length. Both must answer the same bytes
//! (but for the order of a group's members, a hash set's, and the buffered
//! bytes `/metrics` reports, with the lengths), end in the same
//! state, and deliver the same frames to the sockets (what a server answers
//! should not depend on how TCP cut the stream). The answers are not compared
//! once a socket was closed by a request: lookups pipelined after the close
//! in the same read still see it (a known divergence, see README.md).
//! Also checked:
//! the answer starts with a status line, an upgrade's with a 101; every frame
//! queued on a socket is a whole JSON envelope or a close frame; the hub's
//! client and group indexes stay consistent.
#![no_main]

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;

use gmws::bench_support::{
    close_http, discard_output, feed_http, new_hub, open_http, take_output, HttpRoutes,
};
use gmws::connection::State;
use gmws::{Config, Gateway};
use libfuzzer_sys::fuzz_target;

const API_KEY: &str = "fuzz-api-key";

thread_local! {
    /// The built-in routes hold no state: made once, not per run.
    static ROUTES: RefCell<HttpRoutes> = RefCell::new(HttpRoutes::builtin());
}

fn config(mode: u8) -> Config {
    let mut config = Config::default();
    match mode & 3 {
        0 => config.api_key = Some(API_KEY.to_owned()),
        1 => {
            config.api_key = Some(API_KEY.to_owned());
            config.api_trust_loopback = true;
        }
        2 => config.api_trust_loopback = true,
        _ => {}
    }
    if mode & 16 != 0 {
        config.max_http_body = 64;
        config.max_session_size = 64;
        config.demo_page = false;
        config.allowed_origins = vec!["http://a.example".to_owned()];
        config.protocols = vec!["chat".to_owned()];
    }
    config
}

fn peer(mode: u8) -> SocketAddr {
    let peer = [
        "127.0.0.1:40000",
        "192.0.2.7:40000",
        "[::ffff:127.0.0.1]:40000",
        "[2001:db8::1]:40000",
    ][usize::from(mode >> 2 & 3)];
    peer.parse().expect("a socket address")
}

/// What a run produced: the connection's answer, its last state, the bytes
/// it still waits on (while reading HTTP), the frames each socket got.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    answer: Vec<u8>,
    state: Option<State>,
    pending: Option<usize>,
    delivered: Vec<Vec<u8>>,
    requests: u64,
    /// Some socket stopped being online (closed through the API).
    closed: bool,
}

fn run(mode: u8, reads: &[&[u8]]) -> Run {
    let mut hub = new_hub(config(mode));
    let sockets = common::populate(&mut hub);
    let mut gateway = Gateway;
    let conn = open_http(&mut hub, common::stream(), peer(mode)).expect("HTTP connection");
    let mut answer = Vec::new();
    let (mut state, mut pending) = (Some(State::NEW), Some(0));
    // A read of 0 bytes is EOF to the loop: only non-empty reads.
    for bytes in reads.iter().filter(|b| !b.is_empty()) {
        let read =
            ROUTES.with_borrow_mut(|routes| feed_http(&mut hub, &mut gateway, routes, conn, bytes));
        answer.extend_from_slice(&read.output);
        // Bytes after a final answer are discarded and counted: not compared.
        state = read.state.map(|s| match s {
            State::Finishing { .. } => State::Finishing { discarded: 0 },
            other => other,
        });
        // Once upgraded or finishing, later bytes are not HTTP: not compared.
        pending = matches!(state, Some(State::Http { .. })).then_some(read.pending);
    }
    if !answer.is_empty() {
        assert!(
            answer.starts_with(b"HTTP/1.1 "),
            "answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    if state == Some(State::Open) {
        let at = find(&answer, b"HTTP/1.1 101 ").expect("an upgraded connection was answered 101");
        // After the 101: the welcome envelope, a frame like any other.
        let head_end = find(&answer[at..], b"\r\n\r\n").expect("the 101 head ends");
        common::check_frames(&answer[at + head_end + 4..]);
    }
    let closed = sockets.iter().any(|s| !hub.is_socket_online(*s));
    let delivered: Vec<Vec<u8>> = sockets.iter().map(|s| take_output(&mut hub, *s)).collect();
    for frames in &delivered {
        common::check_frames(frames);
    }
    close_http(&mut hub, &mut gateway, conn);
    common::check_indexes(&hub, &sockets);
    let requests = hub.metrics().http_requests;
    discard_output(&mut hub);
    Run {
        answer,
        state,
        pending,
        delivered,
        requests,
        closed,
    }
}

/// Where `needle` first occurs in `haystack`, compared byte by byte: slice
/// equality would call `memcmp`, which libFuzzer intercepts and records at
/// every position (most of a run's time on a 30 KB answer).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    (0..haystack.len().saturating_sub(rest.len()))
        .find(|&i| haystack[i] == first && rest.iter().zip(&haystack[i + 1..]).all(|(a, b)| a == b))
}

/// Remove the digits at `at` in `answer`.
fn mask_number(answer: &mut Vec<u8>, at: usize) {
    let digits = answer[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    answer.drain(at..at + digits);
}

/// `/metrics`' `gmws_buffered_bytes` counts the buffers the connection holds
/// at the time, which depend on how the stream was cut into reads: mask it,
/// and every `Content-Length` (a `HEAD /metrics` has the length alone).
fn mask_buffered_bytes(answer: &mut Vec<u8>) {
    const GAUGE: &[u8] = b"\ngmws_buffered_bytes ";
    const LENGTH: &[u8] = b"\r\nContent-Length: ";
    let mut from = 0;
    while let Some(at) = find(&answer[from..], GAUGE) {
        from += at + GAUGE.len();
        mask_number(answer, from);
    }
    let mut from = 0;
    while let Some(at) = find(&answer[from..], LENGTH) {
        from += at + LENGTH.len();
        mask_number(answer, from);
    }
}

/// `/api/groups/:group` lists members in hash-set order, which differs from
/// one hub to the next: sort each `"members":[...]` list before comparing.
fn sort_members(answer: &mut [u8]) {
    const KEY: &[u8] = b"\"members\":[";
    let mut from = 0;
    while let Some(at) = find(&answer[from..], KEY) {
        let start = from + at + KEY.len();
        let Some(len) = answer[start..].iter().position(|&b| b == b']') else {
            return;
        };
        let list = &mut answer[start..start + len];
        let mut items: Vec<Vec<u8>> = list.split(|&b| b == b',').map(<[u8]>::to_vec).collect();
        items.sort();
        list.copy_from_slice(&items.join(&b',')[..]);
        from = start + len;
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, split, input @ ..] = data else {
        return;
    };
    let mut whole = run(*mode, &[input]);
    let (first, second) = input.split_at(input.len() * usize::from(*split) / 255);
    let mut cut = run(*mode, &[first, second]);
    for run in [&mut whole, &mut cut] {
        sort_members(&mut run.answer);
        mask_buffered_bytes(&mut run.answer);
    }
    if whole.closed || cut.closed {
        // Known divergence: a socket closed by a request stays in the client
        // and group indexes until the loop runs `on_close`, after the read:
        // a lookup pipelined in the same read still lists it, one in a later
        // read does not (see README.md). Compare all but the answer.
        whole.answer.clear();
        cut.answer.clear();
    }
    if whole != cut {
        let text = |r: &Run| String::from_utf8_lossy(&r.answer).into_owned();
        panic!(
            "one read vs. two reads cut at {}:\n{}\n{:?}\n---\n{}\n{:?}",
            first.len(),
            text(&whole),
            Run {
                answer: Vec::new(),
                ..whole
            },
            text(&cut),
            Run {
                answer: Vec::new(),
                ..cut
            },
        );
    }
});
