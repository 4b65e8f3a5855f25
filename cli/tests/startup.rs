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

/// A config file in the temporary directory, unique to this test.
fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("gmws-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn a_bad_job_is_a_start_up_error_naming_the_job_and_the_field() {
    let path = config_file(
        "bad-job",
        "listen = \"127.0.0.1:0\"\n\n[[jobs]]\nname = \"tick\"\ncron = \"*/2 * * * * *\"\ntimezone = \"Europe/Berlin\"\nsend_to_group = \"room\"\nmessage = { tick = true }\n\n[[jobs]]\nname = \"nightly\"\ncron = \"30 25 * * *\"\nsend_to_all = true\n",
    );
    let out = gmws(&["serve", "--config", path.to_str().unwrap()], &[]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("job \"nightly\": cron: bad cron expression \"30 25 * * *\""),
        "{stderr}"
    );

    let path = config_file(
        "no-recipient",
        "[[jobs]]\nname = \"tick\"\nevery = 30\nmessage = \"hi\"\n",
    );
    let out = gmws(&["serve", "--config", path.to_str().unwrap()], &[]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("job \"tick\": send_to_group: one of"),
        "{stderr}"
    );

    let path = config_file("typo", "[[jobs]]\nname = \"tick\"\nevry = 30\n");
    let out = gmws(&["serve", "--config", path.to_str().unwrap()], &[]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("job \"tick\": jobs: unknown field `evry`"),
        "{stderr}"
    );
}

#[test]
fn the_binary_runs_the_jobs_of_its_config_file() {
    use std::io::{Read, Write};
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let path = config_file(
        "good-job",
        &format!(
            "listen = \"127.0.0.1:{port}\"\napi_trust_loopback = true\nlog_level = \"error\"\n\n[[jobs]]\nname = \"tick\"\nevery = 0.05\nsend_to_all = true\nmessage = {{ tick = true }}\n"
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_gmws"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn gmws");
    let get_jobs = || -> Option<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /api/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        Some(text)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = None;
    while std::time::Instant::now() < deadline {
        if let Some(text) =
            get_jobs().filter(|t| t.contains("\"runs\":") && !t.contains("\"runs\":0"))
        {
            seen = Some(text);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    let text = seen.expect("the job ran and /api/jobs shows it");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"name\":\"tick\""), "{text}");
    assert!(text.contains("\"trigger\":\"interval: 50ms\""), "{text}");
}
