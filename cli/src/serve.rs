//! `gmws serve`: install the logger, bind the gateway, stop on SIGINT or
//! SIGTERM.

use std::process::ExitCode;

use gmws::scheduler::JobSpec;
use gmws::{Config, Gateway, Server};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::logger::StderrLogger;

/// Run the gateway with `config` (validated) until a signal stops it; log
/// `warnings` (from reading the configuration) once the logger is in. Every
/// line is written before this returns.
pub(crate) fn run(config: Config, jobs: &[JobSpec], warnings: &[String]) -> ExitCode {
    StderrLogger::init(config.log_level.filter());
    let code = serve(config, jobs, warnings);
    log::logger().flush();
    code
}

fn serve(config: Config, jobs: &[JobSpec], warnings: &[String]) -> ExitCode {
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
    let mut server = match Server::bind_with(config, |_| Gateway) {
        Ok(server) => {
            log::info!("{} event loop(s)", server.workers());
            server
        }
        Err(e) => {
            // "cannot listen on ADDR: ..." or "invalid configuration: ..."
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Checked when the file was read; loop 0 runs them.
    for (i, spec) in jobs.iter().enumerate() {
        let added = spec
            .build(i)
            .map_err(|e| e.to_string())
            .and_then(|(trigger, options)| {
                server
                    .add_job(&spec.name, trigger, options)
                    .map_err(|e| format!("job {:?}: {e}", spec.name))
            });
        if let Err(e) = added {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    }
    if !jobs.is_empty() {
        log::info!("{} scheduled job(s)", jobs.len());
    }
    let handle = server.shutdown_handle();
    let tls = server.tls();
    match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    if signal != SIGHUP {
                        log::info!("signal {signal}: shutting down");
                        handle.shutdown();
                        return;
                    }
                    // SIGHUP: read the certificate and key again; new
                    // connections get them, open ones are not touched.
                    match &tls {
                        Some(tls) => match tls.reload() {
                            Ok(()) => log::info!("SIGHUP: TLS certificate and key reloaded"),
                            Err(e) => log::error!(
                                "SIGHUP: TLS reload failed, keeping the old certificate: {e}"
                            ),
                        },
                        None => log::info!("SIGHUP: no TLS configured; nothing to reload"),
                    }
                }
            });
        }
        Err(e) => log::warn!("cannot install signal handlers: {e}"),
    }
    let scheme = if server.tls().is_some() {
        "https"
    } else {
        "http"
    };
    log::info!(
        "gmws listening on {scheme}://{} (demo page at /)",
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
