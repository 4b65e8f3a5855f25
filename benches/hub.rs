//! Hub benchmarks, in memory (no event loop, no syscalls):
//! `cargo bench --bench hub --features bench-internals`.
//!
//! - `fan_out`: `send_to_group` of a 16-byte and a 1 KiB text to 10,000
//!   members: encode once, queue on every socket; reported per delivery.
//! - `churn`: bind, join 4 groups, leave one, close, for one socket among
//!   10,000 (the socket is replaced so the population stays constant).
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gmws::bench_support::{add_sockets, discard_output, drop_socket, new_hub};
use gmws::{Config, Hub, SocketId};

const MEMBERS: usize = 10_000;

fn loopback_stream() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let _server = listener.accept().expect("accept");
    client
}

fn populated_hub(stream: &TcpStream) -> (Hub, Vec<SocketId>) {
    let mut hub = new_hub(Config::default());
    let ids = add_sockets(&mut hub, stream, MEMBERS).expect("sockets");
    (hub, ids)
}

fn fan_out(c: &mut Criterion) {
    let stream = loopback_stream();
    let (mut hub, ids) = populated_hub(&stream);
    for id in &ids {
        hub.join_group(*id, "room").expect("join");
    }
    let mut group = c.benchmark_group("fan_out");
    group.throughput(Throughput::Elements(MEMBERS as u64));
    for size in [16usize, 1024] {
        let text = "x".repeat(size);
        group.bench_function(format!("send_to_group_10k_{size}B"), |b| {
            b.iter(|| {
                let n = hub.send_to_group("room", black_box(text.as_str()), &[]);
                discard_output(&mut hub);
                n
            })
        });
    }
    group.finish();
}

/// Sockets are added in batches outside the timed region (each is a file
/// descriptor), then bound, joined to 4 groups, taken out of one and closed.
fn churn(c: &mut Criterion) {
    let stream = loopback_stream();
    let (mut hub, ids) = populated_hub(&stream);
    for (i, id) in ids.iter().enumerate() {
        hub.bind_client(*id, &format!("user{i}")).expect("bind");
        hub.join_group(*id, &format!("g{}", i % 100)).expect("join");
    }
    let mut group = c.benchmark_group("churn");
    group.bench_function("bind_join4_leave_close_among_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(2000);
                left -= batch;
                let fresh = add_sockets(&mut hub, &stream, batch as usize).expect("sockets");
                let start = Instant::now();
                for (i, id) in fresh.iter().enumerate() {
                    hub.bind_client(*id, &format!("churn{i}")).expect("bind");
                    for g in ["g1", "g2", "g3", "g4"] {
                        hub.join_group(*id, g).expect("join");
                    }
                    hub.leave_group(*id, "g2");
                    drop_socket(&mut hub, *id);
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, fan_out, churn);
criterion_main!(benches);
