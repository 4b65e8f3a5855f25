//! `gmws load --tls` and `--deflate` end to end over real loopback sockets,
//! against in-test servers built from independent implementations
//! (tests/support: rustls's server side, tungstenite, miniz_oxide).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use gmws_load::{self as load, ErrorKind, LoadArgs, Mode, PayloadKind, Report};

fn echo_args(addr: SocketAddr, connections: usize, size: usize) -> LoadArgs {
    let mut args = LoadArgs::default();
    args.mode = Mode::Echo;
    args.target = addr.to_string();
    args.connections = connections;
    args.size = size;
    args.warmup = Duration::ZERO;
    args.duration = Duration::from_millis(500);
    args.timeout = Duration::from_secs(5);
    args
}

/// An echo run that counted no error and some echoes.
fn assert_clean(args: &LoadArgs) {
    let report = load::run(args).expect("load run");
    let Report::Echo(echo) = &report else {
        panic!("expected an echo report, got {report:?}");
    };
    assert_eq!(echo.errors.total(), 0, "errors: {}", echo.errors);
    assert_eq!(echo.conns.opened, args.connections);
    assert!(echo.messages > 0, "no echo counted");
}

/// A run in which every connection failed with `kind`.
fn assert_every_connection_fails(args: &LoadArgs, kind: ErrorKind) {
    let report = load::run(args).expect("load run");
    let errors = report.errors();
    assert_eq!(errors.get(kind), args.connections as u64, "{errors}");
}

#[test]
fn tls_echo_trusting_the_servers_certificate() {
    let cert = support::make_cert();
    for tls12_only in [false, true] {
        let addr = support::tls_echo(&cert, tls12_only);
        for (size, kind) in [(16, PayloadKind::Binary), (100_000, PayloadKind::Text)] {
            let mut args = echo_args(addr, 3, size);
            args.kind = kind;
            args.tls = true;
            args.tls_ca = Some(cert.pem_file.clone());
            assert_clean(&args);
        }
    }
}

#[test]
fn tls_insecure_takes_any_certificate_and_a_wrong_ca_fails() {
    let cert = support::make_cert();
    let addr = support::tls_echo(&cert, false);
    let mut args = echo_args(addr, 2, 1024);
    args.tls = true;
    args.tls_insecure = true;
    assert_clean(&args);
    // Another certificate as the CA: every handshake fails, as TLS.
    let other = support::make_cert();
    args.tls_insecure = false;
    args.tls_ca = Some(other.pem_file.clone());
    assert_every_connection_fails(&args, ErrorKind::Tls);
    // A CA file that is not there: the run cannot start.
    args.tls_ca = Some("/nonexistent/ca.pem".into());
    assert!(matches!(load::run(&args), Err(load::LoadError::Tls(_))));
}

#[test]
fn tls_against_a_plain_server_is_a_tls_error() {
    let addr = support::plain_echo();
    let mut args = echo_args(addr, 1, 16);
    args.tls = true;
    args.tls_insecure = true;
    assert_every_connection_fails(&args, ErrorKind::Tls);
}

#[test]
fn deflate_echo_round_trips_with_an_independent_inflater() {
    let addr = support::deflate_echo(None);
    for (size, kind) in [
        (16, PayloadKind::Binary),
        (1024, PayloadKind::Text),
        (200_000, PayloadKind::Binary),
    ] {
        let mut args = echo_args(addr, 3, size);
        args.kind = kind;
        args.deflate = true;
        assert_clean(&args);
    }
}

#[test]
fn a_server_that_declines_deflate_fails_every_connection() {
    let addr = support::plain_echo();
    let mut args = echo_args(addr, 3, 16);
    args.deflate = true;
    assert_every_connection_fails(&args, ErrorKind::DeflateDeclined);
}

#[test]
fn tls_and_deflate_together() {
    let cert = support::make_cert();
    let addr = support::deflate_echo(Some(&cert));
    for (size, kind) in [(16, PayloadKind::Text), (70_000, PayloadKind::Binary)] {
        let mut args = echo_args(addr, 2, size);
        args.kind = kind;
        args.tls = true;
        args.tls_ca = Some(cert.pem_file.clone());
        args.deflate = true;
        assert_clean(&args);
    }
    // The TLS peer that declines permessage-deflate: reported as such after
    // a good TLS handshake, not as a TLS error.
    let addr = support::tls_echo(&cert, false);
    let mut args = echo_args(addr, 2, 16);
    args.tls = true;
    args.tls_ca = Some(cert.pem_file.clone());
    args.deflate = true;
    assert_every_connection_fails(&args, ErrorKind::DeflateDeclined);
}
