//! The `gmws` binary at start-up, as a child process: what it prints and how
//! it exits when the configuration is refused or the address is taken.

use std::net::TcpListener;
use std::process::{Command, Output};

/// `gmws ARGS` with no `GMWS_*` variable from the test's environment, plus
/// `vars`.
fn gmws(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gmws"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GMWS_")) {
        command.env_remove(key);
    }
    command.args(args).envs(vars.iter().copied());
    command.output().expect("run gmws")
}

#[test]
fn a_short_auth_secret_is_refused_naming_the_key_never_the_secret() {
    let out = gmws(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("GMWS_AUTH_SECRET", "short-s3cret")],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auth_secret: must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains("short-s3cret"), "{stderr}");
}

#[test]
fn a_bad_value_names_key_value_and_source() {
    let out = gmws(&["--max-connections", "lots"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("gmws: flag --max-connections: bad value `lots` for max_connections"),
        "{stderr}"
    );
}

#[test]
fn a_taken_address_is_a_start_up_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = gmws(&["--listen", &addr, "--log-level", "error"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("ERROR cannot listen on {addr}: ")),
        "{stderr}"
    );
}

#[test]
fn help_lists_the_keys() {
    let out = gmws(&["--help"], &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("--ping-interval SECONDS"), "{stdout}");
    assert!(
        stdout.contains("[env GMWS_LOG_LEVEL] (default info)"),
        "{stdout}"
    );
}
