//! The `gmws` binary: the ready-to-run gateway, and the load generator.
//!
//! `gmws serve [--config FILE] [--listen ADDR] [--<key> VALUE ...]` (the
//! default command) runs [`gmws::Gateway`] with the configuration from flags,
//! `GMWS_*` environment variables, a TOML file and the defaults, in that order
//! of precedence (`command`). `gmws load ...` runs the load generator
//! (the `gmws-load` crate). `gmws --help` lists every key (`help`).
//!
//! Exit status: 0 after a clean stop or help; 1 when the server cannot start
//! or its loop fails; 2 for a bad command line or configuration.

#![forbid(unsafe_code)]

mod command;
mod help;
mod logger;
mod serve;

use std::process::ExitCode;

use command::{parse_command, Command};

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
    match command {
        Command::Help(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Command::Load(args) => gmws_load::main(&args),
        Command::Serve(config, jobs) => serve::run(config, &jobs, &warnings),
    }
}
