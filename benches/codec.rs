//! Codec benchmarks for `gmws-protocol`: masking, frame decode and encode,
//! UTF-8 validation, and a memory-bandwidth baseline to read them against.
//!
//! Run: `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`
//! (about 3.5 minutes; the 512 MiB cases allocate 1 GiB). Every group reports
//! `Throughput::Bytes` of payload, so criterion prints GiB/s next to each time.
//!
//! - `baseline`: `memcpy` (reads and writes each byte once, as in-place
//!   masking does) and an 8-byte-word XOR loop in place: what "memory speed"
//!   means on this machine at 64 KiB and 1 MiB (in L2) and 512 MiB (past L3,
//!   so DRAM; 10 samples).
//! - `mask`: [`apply_mask`] at 16 B to 512 MiB, on an aligned buffer and (64
//!   KiB, 1 MiB) one byte off alignment, as a payload after a frame header
//!   is, and the byte-by-byte [`apply_mask_fallback`] at 64 KiB.
//! - `decode`: a server-role decoder on one masked frame. Decoding unmasks the
//!   payload in place, so a binary frame decoded again sees XOR-toggled bytes:
//!   the work (header parse, checks, unmask) is identical every iteration and
//!   nothing else is timed. A text frame must hold valid UTF-8 each time, so
//!   its iterations copy the masked frame into a reused buffer first; that
//!   copy is timed, and `copy_only` measures it alone for subtraction.
//!   As on a socket, the payload starts after the 6-, 8- or 14-byte header,
//!   off 16-byte alignment. `binary_in_4k_reads` feeds 64 KiB in 4 KiB pieces
//!   (the streaming path that appends to the decoder's message buffer).
//! - `encode`: a server (unmasked) binary frame into a reused `Vec`, and a
//!   client (masked) one at 64 KiB.
//! - `utf8`: [`Utf8Validator`] against `std::str::from_utf8` on ASCII and
//!   multibyte text, and the validator fed in 1000-byte pieces that split
//!   code points.
#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gmws_protocol::decoder::{Decoder, Limits, Message, Role};
use gmws_protocol::encoder::encode_frame;
use gmws_protocol::mask::{apply_mask, apply_mask_fallback};
use gmws_protocol::utf8::Utf8Validator;
use gmws_protocol::OpCode;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const KIB: usize = 1024;
/// Twice the 260 MiB L3 of the machine the numbers in the report came from.
const DRAM: usize = 512 * 1024 * KIB;

/// `len` bytes of text: multibyte (2-, 3- and 4-byte code points) or ASCII,
/// padded with ASCII to the exact length.
fn text(len: usize, multibyte: bool) -> Vec<u8> {
    let sample = if multibyte {
        "κόσμε 日本語の文 🎉€ "
    } else {
        "{\"op\":\"publish\",\"topic\":\"news\"} "
    };
    let mut s = String::with_capacity(len);
    while s.len() + sample.len() <= len {
        s.push_str(sample);
    }
    while s.len() < len {
        s.push('a');
    }
    s.into_bytes()
}

/// A client's frame: masked with [`KEY`].
fn masked_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode, true, payload, Some(KEY));
    out
}

fn baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    for size in [64 * KIB, 1024 * KIB, DRAM] {
        let src = vec![0x5au8; size];
        let mut dst = vec![0xa5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.sample_size(if size == DRAM { 10 } else { 100 });
        g.bench_function(BenchmarkId::new("memcpy", size), |b| {
            b.iter(|| dst.copy_from_slice(black_box(&src)))
        });
        g.bench_function(BenchmarkId::new("xor_u64_words", size), |b| {
            let word = u64::from_ne_bytes([KEY, KEY].concat().try_into().unwrap());
            b.iter(|| {
                for lane in black_box(&mut dst).chunks_exact_mut(8) {
                    let x = u64::from_ne_bytes(lane.try_into().unwrap()) ^ word;
                    lane.copy_from_slice(&x.to_ne_bytes());
                }
            })
        });
    }
    g.finish();
}

fn mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for size in [16, 128, KIB, 64 * KIB, 1024 * KIB, DRAM] {
        let mut buf = vec![0x5au8; size + 1];
        g.throughput(Throughput::Bytes(size as u64));
        g.sample_size(if size == DRAM { 10 } else { 100 });
        g.bench_function(BenchmarkId::new("apply_mask", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf[..size]), KEY, 0))
        });
        if size == 64 * KIB || size == 1024 * KIB {
            g.bench_function(BenchmarkId::new("apply_mask_unaligned", size), |b| {
                b.iter(|| apply_mask(black_box(&mut buf[1..]), KEY, 1))
            });
        }
        if size == 64 * KIB {
            g.bench_function(BenchmarkId::new("fallback", size), |b| {
                b.iter(|| apply_mask_fallback(black_box(&mut buf[..size]), KEY, 0))
            });
        }
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let mut decoder = Decoder::new(Role::Server, Limits::default());
    for size in [16, KIB, 64 * KIB] {
        let mut frame = masked_frame(OpCode::Binary, &vec![0xa5; size]);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("binary", size), |b| {
            b.iter(|| match decoder.decode(black_box(&mut frame)) {
                Ok((_, Some(Message::Binary(p)))) => p.len(),
                other => panic!("{other:?}"),
            })
        });
    }

    let size = 64 * KIB;
    let mut frame = masked_frame(OpCode::Binary, &vec![0xa5; size]);
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function(BenchmarkId::new("binary_in_4k_reads", size), |b| {
        b.iter(|| {
            let mut delivered = 0;
            let mut at = 0;
            while at < frame.len() {
                let end = (at + 4 * KIB).min(frame.len());
                // Each piece is a whole header or payload-only, so it is consumed whole.
                match decoder.decode(black_box(&mut frame[at..end])) {
                    Ok((n, message)) => {
                        assert!(n > 0, "a piece was not consumed");
                        delivered += message.map_or(0, |_| 1);
                        at += n;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(delivered, 1);
        })
    });

    let size = KIB;
    for (name, multibyte) in [
        ("text_ascii_incl_copy", false),
        ("text_multibyte_incl_copy", true),
    ] {
        let frame = masked_frame(OpCode::Text, &text(size, multibyte));
        let mut buf = frame.clone();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new(name, size), |b| {
            b.iter(|| {
                buf.copy_from_slice(&frame);
                match decoder.decode(black_box(&mut buf)) {
                    Ok((_, Some(Message::Text(t)))) => t.len(),
                    other => panic!("{other:?}"),
                }
            })
        });
    }
    let frame = masked_frame(OpCode::Text, &text(size, true));
    let mut buf = frame.clone();
    g.bench_function(BenchmarkId::new("copy_only", size), |b| {
        b.iter(|| buf.copy_from_slice(black_box(&frame)))
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(64 * KIB + 14);
    for size in [16, KIB, 64 * KIB] {
        let payload = vec![0xa5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("server_binary", size), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, OpCode::Binary, true, black_box(&payload), None);
                out.len()
            })
        });
        if size == 64 * KIB {
            g.bench_function(BenchmarkId::new("client_binary_masked", size), |b| {
                b.iter(|| {
                    out.clear();
                    encode_frame(
                        &mut out,
                        OpCode::Binary,
                        true,
                        black_box(&payload),
                        Some(KEY),
                    );
                    out.len()
                })
            });
        }
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    for size in [KIB, 64 * KIB] {
        for (kind, multibyte) in [("ascii", false), ("multibyte", true)] {
            let input = text(size, multibyte);
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(BenchmarkId::new(format!("validator/{kind}"), size), |b| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    v.finish(black_box(&input)).is_ok()
                })
            });
            g.bench_function(BenchmarkId::new(format!("std/{kind}"), size), |b| {
                b.iter(|| std::str::from_utf8(black_box(&input)).is_ok())
            });
            if size == 64 * KIB && multibyte {
                g.bench_function(
                    BenchmarkId::new("validator_1000b_pieces/multibyte", size),
                    |b| {
                        b.iter(|| {
                            let mut v = Utf8Validator::new();
                            let ok = black_box(&input).chunks(1000).all(|p| v.feed(p).is_ok());
                            ok && v.is_complete()
                        })
                    },
                );
            }
        }
    }
    g.finish();
}

criterion_group!(benches, baseline, mask, decode, encode, utf8);
criterion_main!(benches);
