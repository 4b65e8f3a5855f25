//! The `gmws` binary: the ready-to-run gateway.
//!
//! `gmws serve [--config FILE] [--listen ADDR] [--<key> VALUE ...]` (the
//! default command) runs [`gmws::Gateway`] with the configuration from flags,
//! `GMWS_*` environment variables, a TOML file and the defaults, in that order
//! of precedence. `gmws --help` lists every key.

use std::process::ExitCode;

use gmws::cli::{parse_command, Command};
use gmws::log::{parse_level, LevelFilter, StderrLogger};
use gmws::{Gateway, Server};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (command, warnings) = match parse_command(&args, &env) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("gmws: {e}\nTry `gmws --help`.");
            return ExitCode::from(2);
        }
    };
    let config = match command {
        Command::Help(text) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Command::Load(args) => {
            return gmws::load::main(&args);
        }
        Command::Serve(config) => config,
    };
    StderrLogger::init(parse_level(&config.log_level).unwrap_or(LevelFilter::Info));
    for warning in warnings {
        log::warn!("{warning}");
    }
    if config.auth_secret.is_none() {
        log::warn!("no auth_secret set: `bind` trusts the client_id a client sends (set auth_secret to require HS256 tokens)");
    }
    match (config.api_key.is_some(), config.api_trust_loopback) {
        (true, _) => {}
        (false, false) => log::info!(
            "no api_key set: /api/ is refused (set api_key, or api_trust_loopback to let loopback peers in without a key)"
        ),
        (false, true) => log::warn!(
            "api_trust_loopback: /api/ answers every loopback peer without a key; behind a reverse proxy on this host that is every client (set api_key instead)"
        ),
    }
    let listen = config.listen;
    let mut server = match Server::bind(config, Gateway) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = server.shutdown_handle();
    match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    log::info!("signal {signal}: shutting down");
                    handle.shutdown();
                }
            });
        }
        Err(e) => log::warn!("cannot install signal handlers: {e}"),
    }
    log::info!(
        "gmws listening on http://{} (demo page at /)",
        server.local_addr()
    );
    match server.run() {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
