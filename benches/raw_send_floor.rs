//! The floor under any fan-out: one plain `send()` of the same frame to each
//! of N loopback sockets, no framework, measured as gmws's fan-out is (the
//! sender's CPU per delivery, deliveries per second).
//!
//! `cargo bench --bench raw_send_floor -- -c 10000 -s 150 -d 5 -w 1`
//!
//! The sender accepts N loopback connections from a reader process (this
//! program again, with `--reader`: the receiving ends live in another
//! process, as `gmws load broadcast`'s subscribers do, and the 20,000
//! descriptors would not fit one process here). The reader drains them with
//! epoll and writes one byte to its stdout each time a whole publication has
//! arrived. The sender writes one frame (a 2-4 byte WebSocket header and an
//! `s`-byte payload) to every socket, then sleeps until the reader reports
//! the publication complete (as `gmws load broadcast` waits for every
//! delivery before the next publication, and as a server sleeps in
//! `epoll_wait` meanwhile), for `d` seconds after `w` seconds of warm-up. The
//! sender's CPU time is its process's, from `/proc/self/stat`. The last line
//! is `RESULT mode=floor conns=N frame_bytes=F deliveries=D deliveries_per_s=R
//! sender_cpu_us_per_delivery=C`.
//!
//! `--reader-cpu N` runs the reader on CPU N: pin the sender to another CPU
//! (`taskset -c 0 ... --reader-cpu 1`) to measure it as a pinned server is
//! measured beside `gmws load` on its own CPU. Where sender and reader share
//! a CPU, the reader rarely sleeps mid-publication and the sender seldom pays
//! for waking it, so the floor comes out lower than a server's conditions.
//!
//! Plain `cargo bench` (no `-c`) runs a small smoke (500 sockets, 1 s).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn arg(args: &[String], flag: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's utime + stime in microseconds (`/proc/self/stat`).
fn cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    ticks as f64 * 1e6 / 100.0
}

/// The reader process: connect `conns` sockets to `addr`, drain them, and
/// write a byte to stdout per `per_publication` bytes received.
fn reader(addr: SocketAddr, conns: usize, per_publication: u64) {
    let mut poll = mio::Poll::new().expect("poll");
    let mut streams = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nonblocking(true).expect("nonblocking");
        let mut s = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, mio::Token(i), mio::Interest::READABLE)
            .expect("register");
        streams.push(s);
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"r");
    let _ = out.flush();
    let mut events = mio::Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut received, mut reported) = (0u64, 0u64);
    // A socket at EOF can be reported again (a hang-up after the read
    // side's edge): count each once, or the count wraps and this never ends.
    let mut closed = vec![false; conns];
    let mut open = conns;
    while open > 0 {
        let polled = poll.poll(&mut events, Some(Duration::from_secs(10)));
        if polled.is_ok() && events.is_empty() {
            // The sender publishes without pause until it closes the
            // sockets: ten silent seconds mean something is stuck. Leaving
            // closes the pipe, and the sender stops too.
            eprintln!("floor reader: nothing for 10 s at {received} bytes; stopping");
            std::process::exit(1);
        }
        for event in events.iter() {
            let i = event.token().0;
            if closed[i] {
                continue;
            }
            let s = &mut streams[i];
            loop {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => received += n as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    _ => {
                        // EOF or an error: this socket is done.
                        closed[i] = true;
                        open -= 1;
                        break;
                    }
                }
            }
        }
        while received >= (reported + 1) * per_publication {
            reported += 1;
            if out.write_all(b".").and_then(|()| out.flush()).is_err() {
                return;
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--reader") {
        let addr = args[i + 1].parse().expect("reader address");
        let conns = args[i + 2].parse().expect("reader connections");
        let per_publication = args[i + 3].parse().expect("reader bytes");
        return reader(addr, conns, per_publication);
    }
    let smoke = !args.iter().any(|a| a == "-c");
    let conns = arg(&args, "-c", 500) as usize;
    let size = arg(&args, "-s", 150) as usize;
    let duration = Duration::from_secs(arg(&args, "-d", if smoke { 1 } else { 5 }));
    let warmup = Duration::from_secs(arg(&args, "-w", 1));

    // A server-to-client binary frame: unmasked, FIN, opcode 2.
    let mut frame = vec![0x82u8];
    match size {
        0..=125 => frame.push(size as u8),
        126..=0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            frame.push(127);
            frame.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    frame.extend(std::iter::repeat_n(b'x', size));
    let per_publication = (frame.len() * conns) as u64;

    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("addr");
    let exe = std::env::current_exe().expect("own path");
    // `--reader-cpu N`: run the reader on CPU N (through util-linux's
    // taskset), as `gmws load` runs on its own CPU beside a pinned server;
    // otherwise it inherits this process's CPUs.
    let mut child = match args.iter().position(|a| a == "--reader-cpu") {
        Some(i) => {
            let mut c = Command::new("taskset");
            c.args(["-c", args.get(i + 1).map_or("1", String::as_str)])
                .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = child
        .args([
            "--reader",
            &addr.to_string(),
            &conns.to_string(),
            &per_publication.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the reader");
    let mut progress = child.stdout.take().expect("reader stdout");
    let mut senders = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        s.set_nonblocking(true).expect("nonblocking");
        senders.push(s);
    }
    let mut byte = [0u8; 1];
    progress.read_exact(&mut byte).expect("the reader is ready");

    let mut publish = |senders: &mut [TcpStream]| {
        for s in senders.iter_mut() {
            let mut sent = 0;
            while sent < frame.len() {
                match s.write(&frame[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        // Sleep until the reader has all of it.
        progress.read_exact(&mut byte).expect("reader progress");
    };
    let warm_until = Instant::now() + warmup;
    while Instant::now() < warm_until {
        publish(&mut senders);
    }
    let (cpu0, t0) = (cpu_us(), Instant::now());
    let mut publications = 0u64;
    while t0.elapsed() < duration {
        publish(&mut senders);
        publications += 1;
    }
    let (cpu, elapsed) = (cpu_us() - cpu0, t0.elapsed());
    drop(senders);
    let _ = child.wait();
    let deliveries = publications * conns as u64;
    let rate = deliveries as f64 / elapsed.as_secs_f64();
    let per = cpu / deliveries as f64;
    println!(
        "floor: {conns} sockets, {} B frames, {publications} publications, {rate:.0} deliveries/s, sender CPU {per:.3} us per delivery",
        frame.len()
    );
    println!(
        "RESULT mode=floor conns={conns} frame_bytes={} deliveries={deliveries} deliveries_per_s={rate:.0} sender_cpu_us_per_delivery={per:.3}",
        frame.len()
    );
}
