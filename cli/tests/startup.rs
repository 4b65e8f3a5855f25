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

#[test]
fn a_missing_tls_file_is_a_start_up_error_naming_it() {
    let out = gmws(
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS: /nonexistent/cert.pem: "), "{stderr}");
}

/// A CA, and leaves for 127.0.0.1 it signs into `dir`'s cert.pem/key.pem.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA");
        Ca { cert, key }
    }

    /// Write a new leaf; returns its DER.
    fn issue(&self, dir: &std::path::Path) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf");
        std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("write cert");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key");
        leaf.der().to_vec()
    }

    /// The certificate `port` presents in a TLS handshake.
    fn presented(&self, port: u16) -> Option<Vec<u8>> {
        use std::sync::Arc;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).ok()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").ok()?;
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).ok()?;
        }
        Some(conn.peer_certificates()?.first()?.to_vec())
    }
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let dir = std::env::temp_dir().join(format!("gmws-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = Ca::new();
    let first = ca.issue(&dir);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_gmws"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "error",
        ])
        .args(["--tls-cert", cert.to_str().expect("path")])
        .args(["--tls-key", key.to_str().expect("path")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn gmws");
    let wait_for = |want: &[u8]| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if ca.presented(port).as_deref() == Some(want) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    };
    let served_first = wait_for(&first);
    let second = ca.issue(&dir);
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill -HUP");
    let served_second = wait_for(&second);
    let alive = child.try_wait().ok().flatten().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(served_first, "the first certificate was served");
    assert!(hup.success());
    assert!(
        served_second,
        "after SIGHUP, new connections get the new certificate"
    );
    assert!(alive, "SIGHUP does not stop the server");
}
