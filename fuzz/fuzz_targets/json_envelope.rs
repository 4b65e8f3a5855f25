//! The gateway's JSON envelope protocol on arbitrary text: `Gateway::on_text`
//! (`EnvelopeHandler`'s `dispatch_envelope`: bad JSON, `ping`, `bind` through
//! `on_auth`, then the gateway's `join`, `leave`, `send_to_*`) on a hub with
//! open sockets (bound, unbound, in groups), every client action allowed.
//! State carries from one message to the next within an input.
//!
//! Input: `mode`, then messages separated by `0xFF` (a byte UTF-8 never
//! holds). A message is one byte `h`, then its text: it is sent by socket
//! `(h & 7) % 6` (skipped if that socket is closed, or if the text is not
//! UTF-8, as the loop never hands such a frame to `on_text`), after the clock
//! moved `(h >> 3) * 250` ms (token buckets refill, windows pass).
//! - `mode & 1`: `auth_secret` set (`bind` needs an HS256 token signed with
//!   `fuzz-auth-secret-0123456789abcdef`, `sub` = the client id, an `exp`,
//!   `iss` `gmws-fuzz`, `aud` `gmws`); else any client id binds.
//! - `mode & 2`: tight limits: 256-byte messages, 2 groups per socket,
//!   8-byte group names and client ids, a fan-out rate of 2 KB/s with a
//!   4 KB burst, 4 invalid messages per 10 s (the socket is closed past it).
//! - `mode & 4`: every client action disallowed instead of allowed.
//!
//! After each message, as the loop would: `on_close` for what closed, then
//! every queued frame must be a whole JSON envelope (or a close frame), and
//! the hub's client and group indexes consistent; the output is discarded.
#![no_main]

mod common;

use gmws::bench_support::{advance_clock, discard_output, new_hub, notify_closed, take_output};
use gmws::{Config, Gateway, Handler};
use libfuzzer_sys::fuzz_target;

fn config(mode: u8) -> Config {
    let mut config = Config::default();
    let allow = mode & 4 == 0;
    config.allow_join = allow;
    config.allow_send_to_all = allow;
    config.allow_send_to_group = allow;
    config.allow_send_to_client = allow;
    if mode & 1 != 0 {
        config.auth_secret = Some("fuzz-auth-secret-0123456789abcdef".to_owned());
        config.auth_issuer = Some("gmws-fuzz".to_owned());
        config.auth_audience = Some("gmws".to_owned());
    }
    if mode & 2 != 0 {
        config.max_message_size = 256;
        config.max_groups_per_socket = 2;
        config.max_group_name = 8;
        config.max_client_id = 8;
        config.client_fanout_rate = 2000;
        config.client_fanout_burst = 4000;
        config.invalid_message_limit = 4;
    }
    config
}

fuzz_target!(|data: &[u8]| {
    let [mode, messages @ ..] = data else {
        return;
    };
    let mut hub = new_hub(config(*mode));
    let sockets = common::populate(&mut hub);
    let mut gateway = Gateway;
    for message in messages.split(|&b| b == 0xFF) {
        let [head, text @ ..] = message else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(text) else {
            continue;
        };
        advance_clock(&mut hub, u64::from(head >> 3) * 250);
        let socket = sockets[usize::from(head & 7) % sockets.len()];
        if !hub.is_socket_online(socket) {
            continue;
        }
        gateway.on_text(&mut hub, socket, text);
        notify_closed(&mut hub, &mut gateway);
        for s in &sockets {
            common::check_frames(&take_output(&mut hub, *s));
        }
        common::check_indexes(&hub, &sockets);
        discard_output(&mut hub);
    }
});
