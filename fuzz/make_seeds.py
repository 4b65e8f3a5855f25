#!/usr/bin/env python3
"""Regenerate fuzz/seeds/<target>/ (the committed seed corpora).

Each seed is a small meaningful input; the names say what it is. Run from
anywhere: python3 fuzz/make_seeds.py. The structured targets (decode_chunked,
utf8_vs_std) take `arbitrary` input: fields in order, integers little-endian, a
Vec<T> as (1, T)* 0, and the last field (a &[u8]) as the rest of the bytes
verbatim. `cargo fuzz fmt <target> <seed>` shows how a seed decodes.
"""
import os
import shutil
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 §5.7


def mask(payload, key=KEY):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(opcode, payload, fin=True, key=None):
    head = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if key else 0
    n = len(payload)
    if n < 126:
        head += bytes([m | n])
    elif n < 1 << 16:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if key:
        return head + key + mask(payload, key)
    return head + payload


TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
UTF8 = "κόσμε €𝄞".encode()

# Frame streams, each for both roles: (name, [(opcode, payload, fin)]).
STREAMS = [
    ("hello", [(TEXT, b"Hello", True)]),
    ("fragmented_hello", [(TEXT, b"Hel", False), (CONT, b"lo", True)]),
    ("ping_pong", [(PING, b"Hello", True), (PONG, b"Hello", True)]),
    ("binary_256", [(BINARY, bytes(range(256)), True)]),
    ("close_1000_bye", [(CLOSE, b"\x03\xe8bye", True)]),
    ("close_empty", [(CLOSE, b"", True)]),
    ("utf8_split_across_fragments",
     [(TEXT, UTF8[:3], False), (PING, b"", True), (CONT, UTF8[3:9], False),
      (CONT, b"", False), (CONT, UTF8[9:], True)]),
    ("text_then_close", [(TEXT, b"{\"op\":\"sub\"}", True), (CLOSE, b"\x03\xe8", True)]),
]


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def stream(frames, masked):
    return b"".join(frame(op, p, fin, KEY if masked else None) for op, p, fin in frames)


def chunked(server, max_frame, max_message, max_fragments, cuts, data):
    out = bytes([1 if server else 0, max_frame]) + struct.pack("<H", max_message)
    out += bytes([max_fragments])
    for c in cuts:
        out += b"\x01" + struct.pack("<H", c)
    return out + b"\x00" + data


def main():
    for target in ["decode_frames", "decode_chunked", "handshake", "utf8_vs_std"]:
        shutil.rmtree(os.path.join(HERE, target), ignore_errors=True)

    for name, frames in STREAMS:
        write("decode_frames", name + "_masked", stream(frames, True))
        write("decode_frames", name + "_unmasked", stream(frames, False))
    # A 64-bit length (64 KiB) with only the start of its payload: streamed.
    big = frame(BINARY, bytes(65536), key=KEY)
    write("decode_frames", "binary_64k_partial_masked", big[:64])
    write("decode_frames", "invalid_utf8_masked", frame(TEXT, b"ab\xed\xa0\x80", key=KEY))

    for name, frames in STREAMS:
        data = stream(frames, True)
        cuts = [1, 3, 7, len(data) // 2]
        write("decode_chunked", name + "_server", chunked(True, 255, 1000, 8, cuts, data))
        data = stream(frames, False)
        write("decode_chunked", name + "_client", chunked(False, 255, 1000, 8, [2, 5], data))
    data = stream([(TEXT, b"x" * 40, False), (CONT, b"y" * 40, True)], True)
    write("decode_chunked", "over_message_limit", chunked(True, 64, 60, 8, [10, 50], data))

    upgrade = (b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    write("handshake", "rfc6455_upgrade", upgrade)
    write("handshake", "upgrade_then_frame", upgrade + frame(TEXT, b"Hello", key=KEY))
    write("handshake", "version_8", upgrade.replace(b"Version: 13", b"Version: 8"))
    write("handshake", "http_1_0", upgrade.replace(b"HTTP/1.1", b"HTTP/1.0"))
    write("handshake", "post", upgrade.replace(b"GET", b"POST"))
    write("handshake", "plain_get", b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
    write("handshake", "rfc6455_response",
          b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
          b"Sec-WebSocket-Protocol: chat\r\n\r\n")

    def utf8(pieces, data):
        return b"".join(b"\x01" + bytes([p]) for p in pieces) + b"\x00" + data

    write("utf8_vs_std", "split_code_points", utf8([1, 2, 1, 3], UTF8))
    write("utf8_vs_std", "surrogate", utf8([1], b"a\xed\xa0\x80"))
    write("utf8_vs_std", "overlong", utf8([], b"\xc0\x80"))
    write("utf8_vs_std", "truncated", utf8([2], b"\xe2\x82"))
    write("utf8_vs_std", "max_code_point", utf8([1, 1, 1], b"\xf4\x8f\xbf\xbf\xf4\x90\x80\x80"))


if __name__ == "__main__":
    main()
