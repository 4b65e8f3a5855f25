//! `gmws load` against a real echo server: a short echo run through the
//! library function, every echo checked. The server is the `gmws` library in
//! this process, on an ephemeral loopback port.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use gmws::{Config, Handler, Hub, Server, ShutdownHandle, SocketId};
use gmws_load::{self as load, LoadArgs, Mode, PayloadKind, Report};

/// Echoes every message to its sender.
struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, hub: &mut Hub, socket: SocketId, text: &str) {
        let _ = hub.send_text(socket, text);
    }

    fn on_binary(&mut self, hub: &mut Hub, socket: SocketId, data: &[u8]) {
        let _ = hub.send_binary(socket, data);
    }
}

/// An echo server on its own thread, shut down on drop.
struct EchoServer {
    addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Port 0 on loopback, heartbeats and the auth deadline off.
fn start_echo() -> EchoServer {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.ping_interval = Duration::ZERO;
    config.auth_timeout = Duration::ZERO;
    let mut server = Server::bind(config, Echo).expect("bind");
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run().expect("server loop"));
    EchoServer {
        addr,
        handle,
        thread: Some(thread),
    }
}

fn echo_args(addr: SocketAddr) -> LoadArgs {
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
    let server = start_echo();
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
    let server = start_echo();
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
