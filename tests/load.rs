//! `gmws load` against a real echo server: a short echo run through the
//! library function, every echo checked.

mod support;

use std::time::Duration;

use gmws::load::{self, LoadArgs, Mode, PayloadKind, Report};

fn echo_args(addr: std::net::SocketAddr) -> LoadArgs {
    let mut args = LoadArgs::default();
    args.mode = Mode::Echo;
    args.target = addr.to_string();
    args.connections = 4;
    args.size = 1024;
    args.warmup = Duration::ZERO;
    args.duration = Duration::from_secs(1);
    args.timeout = Duration::from_secs(5);
    args
}

#[test]
fn echo_one_second_four_connections() {
    let server = support::start_echo(support::test_config());
    let mut args = echo_args(server.addr);
    // The server runs in this process: its CPU time and context switches
    // are read from /proc like a separate server's.
    args.pid = Some(std::process::id());
    let report = load::run(&args).expect("load run");
    let Report::Echo(echo) = &report else {
        panic!("expected an echo report, got {report:?}");
    };
    assert_eq!(echo.errors.total(), 0, "errors: {}", echo.errors);
    assert_eq!(echo.conns.opened, 4);
    assert_eq!(echo.conns.failed, 0);
    assert!(echo.messages > 0, "no echo counted");
    assert_eq!(echo.rtt.count(), echo.messages);
    let line = report.result_line(&args);
    assert!(
        line.starts_with("RESULT mode=echo conns=4 size=1024 kind=binary"),
        "{line}"
    );
    assert!(line.contains(" errors=0 "), "{line}");
    let measured = |key: &str| {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert!(
        measured("server_cpu_us_per_msg=").is_some_and(|v| v > 0.0),
        "{line}"
    );
    assert!(
        measured("server_switches_per_msg=").is_some_and(|v| v >= 0.0),
        "{line}"
    );
}

#[test]
fn text_echo_with_small_messages() {
    let server = support::start_echo(support::test_config());
    let mut args = echo_args(server.addr);
    args.kind = PayloadKind::Text;
    args.size = 16;
    args.threads = 2;
    let report = load::run(&args).expect("load run");
    assert_eq!(report.errors().total(), 0, "errors: {}", report.errors());
    let Report::Echo(echo) = report else {
        panic!("expected an echo report");
    };
    assert!(echo.messages > 0);
}
