#!/usr/bin/env python3
"""Regenerate fuzz/seeds/<target>/ (the committed seed corpora).

Each seed is a small meaningful input; the names say what it is. Run from
anywhere: python3 fuzz/make_seeds.py. The structured targets (decode_chunked,
utf8_vs_std) take `arbitrary` input: fields in order, integers little-endian, a
Vec<T> as (1, T)* 0, and the last field (a &[u8]) as the rest of the bytes
verbatim. `cargo fuzz fmt <target> <seed>` shows how a seed decodes.

http_request: a mode byte, a split byte, then the bytes a client sends;
json_envelope: a mode byte, then messages separated by 0xFF, each a byte
choosing the sender (and the clock's step) followed by its text. The header
comments of fuzz_targets/http_request.rs and json_envelope.rs give the bits.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct
import zlib

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


def deflate(message):
    """Raw DEFLATE ending in a sync flush, its 00 00 ff ff tail removed (RFC 7692)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (c.compress(message) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def rsv1(data):
    """Set RSV1 (compressed) on the frame at the start of `data`."""
    return bytes([data[0] | 0x40]) + data[1:]


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
    for target in ["decode_frames", "decode_chunked", "handshake", "utf8_vs_std",
                   "http_request", "json_envelope"]:
        shutil.rmtree(os.path.join(HERE, target), ignore_errors=True)

    for name, frames in STREAMS:
        write("decode_frames", name + "_masked", stream(frames, True))
        write("decode_frames", name + "_unmasked", stream(frames, False))
    # A 64-bit length (64 KiB) with only the start of its payload: streamed.
    big = frame(BINARY, bytes(65536), key=KEY)
    write("decode_frames", "binary_64k_partial_masked", big[:64])
    write("decode_frames", "invalid_utf8_masked", frame(TEXT, b"ab\xed\xa0\x80", key=KEY))
    # permessage-deflate (the target also decodes with compression on): a
    # compressed text whole and in two frames (RSV1 on the first only), and
    # 200 KB of zeros in a few hundred bytes (inflation must stop at the limit).
    text = deflate(b"permessage-deflate " * 40)
    write("decode_frames", "deflate_text_masked", rsv1(frame(TEXT, text, key=KEY)))
    write("decode_frames", "deflate_text_unmasked", rsv1(frame(TEXT, text)))
    write("decode_frames", "deflate_fragmented_masked",
          rsv1(frame(TEXT, text[:10], False, KEY)) + frame(CONT, text[10:], key=KEY))
    write("decode_frames", "deflate_bomb_masked", rsv1(frame(BINARY, deflate(bytes(200000)), key=KEY)))

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

    http_request_seeds(upgrade)
    json_envelope_seeds()


# The sockets common::populate opens, then the HTTP connection: a
# bench_support hub is node 0, loop 0, so an id is the hub's connection
# counter, from 1 (src/socket_id.rs).
SOCKET = [str(n) for n in range(1, 8)]
API_KEY = "fuzz-api-key"
# http_request modes: api_key set (0), api_key + api_trust_loopback (1), no key
# + api_trust_loopback (2), no key (3); peer 127.0.0.1 (0 << 2), 192.0.2.7
# (1 << 2), ::ffff:127.0.0.1 (2 << 2), 2001:db8::1 (3 << 2); tight limits (16).
API_KEY_SET, KEY_TRUST, TRUST, NO_KEY = 0, 1, 2, 3
REMOTE, MAPPED_LOOPBACK, REMOTE_V6 = 1 << 2, 2 << 2, 3 << 2
TIGHT = 16


def get(path, *headers, version=b"1.1", method=b"GET", host=b"gmws.example"):
    head = method + b" " + path.encode() + b" HTTP/" + version + b"\r\n"
    if host is not None:
        head += b"Host: " + host + b"\r\n"
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def api(method, path, body=None, key=API_KEY, *headers):
    extra = list(headers)
    if key is not None:
        extra.append(b"Authorization: Bearer " + key.encode())
    if body is None:
        return get(path, *extra, method=method)
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    extra += [b"Content-Type: application/json", b"Content-Length: " + str(len(data)).encode()]
    return get(path, *extra, method=method) + data


def http_request_seeds(upgrade):
    def seed(name, data, mode=API_KEY_SET, split=128):
        write("http_request", name, bytes([mode, split]) + data)

    seed("get_status", get("/status"))
    seed("pipelined_gets",
         get("/healthz") + get("/status?verbose=1&x=%20") + get("/metrics", method=b"HEAD")
         + get("/") + get("/nope") + get("/status", method=b"DELETE") + get("/status", method=b"BREW"))
    seed("pipelined_split_early", get("/healthz") + get("/status"), split=10)
    seed("keep_alive_then_close",
         get("/healthz", b"Connection: close") + get("/status"), split=200)
    seed("http_1_0", get("/status", version=b"1.0", host=None)
         + get("/healthz", b"Connection: keep-alive", version=b"1.0"), split=60)
    seed("post_send_to_group",
         api(b"POST", "/api/send_to_group",
             {"group": "room", "message": {"text": "hello"}, "exclude": [SOCKET[1]]}))
    seed("post_sends",
         api(b"POST", "/api/send_to_client", {"client_id": "alice", "message": "hi"})
         + api(b"POST", "/api/send_to_client", {"client_id": 42, "message": [1, 2.5, None]})
         + api(b"POST", "/api/send_to_socket", {"socket_id": SOCKET[4], "message": True})
         + api(b"POST", "/api/send_to_all", {"message": {"n": 1}})
         + api(b"POST", "/api/send_to_group", {"group": "lobby"})
         + api(b"POST", "/api/send_to_socket", {"socket_id": "x", "message": 1}), split=90)
    seed("sessions",
         api(b"GET", f"/api/sockets/{SOCKET[0]}/session")
         + api(b"PUT", f"/api/sockets/{SOCKET[3]}/session", {"cart": [1, 2], "name": "guest"})
         + api(b"PATCH", f"/api/sockets/{SOCKET[0]}/session", {"n": None, "seen": True})
         + api(b"PATCH", f"/api/sockets/{SOCKET[0]}/session", [1])
         + api(b"GET", f"/api/sockets/{SOCKET[6]}/session"), split=250)
    seed("lookups",
         api(b"GET", "/api/clients/alice") + api(b"GET", "/api/clients/al%69ce")
         + api(b"GET", "/api/clients/%zz") + api(b"GET", "/api/groups/room")
         + api(b"GET", "/api/groups/r%2Fm") + api(b"GET", "/api/clients/")
         + api(b"POST", "/api/clients/alice"))
    seed("close_socket",
         api(b"POST", f"/api/sockets/{SOCKET[1]}/close", {"code": 4000, "reason": "bye"})
         + api(b"POST", f"/api/sockets/{SOCKET[2]}/close")
         + api(b"POST", f"/api/sockets/{SOCKET[3]}/close", {"code": 1005})
         + api(b"GET", "/api/groups/room") + get("/status"), split=40)
    seed("session_too_large",
         api(b"PUT", f"/api/sockets/{SOCKET[0]}/session", {"x": "y" * 70}), mode=API_KEY_SET | TIGHT)
    seed("api_wrong_key",
         api(b"GET", "/api/clients/alice", None, "wrong")
         + api(b"GET", "/api/clients/alice", None, None, b"Authorization: bearer   fuzz-api-key")
         + api(b"GET", "/api/clients/alice", None, None, b"Authorization: Basic fuzz-api-key"))
    seed("api_no_key_refused", api(b"GET", "/api/groups/room", None, None), mode=NO_KEY)
    seed("api_trusted_loopback", api(b"GET", "/api/groups/room", None, None), mode=TRUST)
    seed("api_trusted_mapped_loopback",
         api(b"POST", "/api/send_to_all", {"message": 1}, None), mode=TRUST | MAPPED_LOOPBACK)
    seed("api_trust_remote_refused",
         api(b"GET", "/api/groups/room", None, None), mode=TRUST | REMOTE)
    seed("api_key_remote", api(b"GET", "/api/clients/bob"), mode=KEY_TRUST | REMOTE_V6)
    seed("upgrade", upgrade)
    seed("get_then_upgrade_then_frame",
         get("/healthz") + upgrade + frame(TEXT, b"Hello", key=KEY), split=20)
    seed("upgrade_restricted",
         upgrade.replace(b"http://example.com", b"http://a.example"), mode=TIGHT)
    seed("upgrade_bad_origin", upgrade, mode=TIGHT)
    seed("no_host", get("/status", host=None))
    seed("two_hosts", get("/status", b"Host: other.example"))
    seed("chunked", get("/api/send_to_all", b"Transfer-Encoding: chunked", method=b"POST")
         + b"5\r\nhello\r\n0\r\n\r\n")
    seed("te_and_cl", get("/status", b"Transfer-Encoding: chunked", b"Content-Length: 5") + b"hello")
    seed("two_content_lengths", get("/status", b"Content-Length: 1", b"Content-Length: 1") + b"xx")
    seed("bad_content_length", get("/status", b"Content-Length: +5") + b"hello")
    seed("body_too_large", api(b"POST", "/api/send_to_all", {"message": "z" * 80}), mode=API_KEY_SET | TIGHT)
    seed("body_incomplete", api(b"POST", "/api/send_to_all", {"message": "abc"})[:-4], split=255)
    seed("body_split", api(b"POST", "/api/send_to_all", {"message": "abc"}), split=240)
    seed("too_many_headers", get("/status", *[b"X-%d: y" % i for i in range(70)]))
    seed("options_star", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    seed("garbage", b"\x00\x01GET / HTTP/1.1\r\n\r\n")
    seed("bare_lf", b"GET /status HTTP/1.1\nHost: a\n\n")


# json_envelope modes: auth_secret (1), tight limits (2), nothing allowed (4).
SECRET = b"fuzz-auth-secret-0123456789abcdef"
JWT, TIGHT_JSON, FORBID = 1, 2, 4
EXP_2100 = 4102444800


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(
        json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def env(kind, data=None):
    value = {"type": kind}
    if data is not None:
        value["data"] = data
    return json.dumps(value, separators=(",", ":")).encode()


def json_envelope_seeds():
    def seed(name, mode, messages):
        data = bytes([mode]) + b"\xff".join(bytes([socket]) + text for socket, text in messages)
        write("json_envelope", name, data)

    seed("bind_join_send", 0, [
        (4, env("bind", {"client_id": "carol"})),
        (4, env("join", {"group": "room"})),
        (4, env("send_to_group", {"group": "room", "message": {"text": "hi"}})),
        (4, env("send_to_client", {"client_id": "alice", "message": "psst"})),
        (4, env("send_to_all", {"message": [1, 2, 3]})),
        (0, env("send_to_group", {"group": "lobby", "message": None})),
        (4, env("leave", {"group": "room"})),
        (4, env("ping")),
    ])
    seed("not_bound", 0, [
        (3, env("join", {"group": "room"})),
        (3, env("send_to_all", {"message": 1})),
        (3, env("ping")),
        (3, env("whatever", {})),
    ])
    seed("bad_json", 0, [
        (0, b"{"), (0, b"[]"), (0, b'{"type":1}'), (0, b"null"), (0, b""),
        (0, b'{"type":"join","data":"room"}'), (0, b'{"type":"join"}'),
        (0, b"[" * 200 + b"]" * 200), (0, "\u00e9\u20ac".encode()),
    ])
    seed("rebind_and_numbers", 0, [
        (0, env("bind", {"client_id": "bob"})),
        (0, env("send_to_group", {"group": "lobby", "message": "x"})),
        (1, env("bind", {"client_id": 12345})),
        (1, env("join", {"group": 5})),
        (5, env("send_to_client", {"client_id": 12345, "message": 1.5})),
        (2, env("bind", {"client_id": ""})),
        (2, env("bind", {})),
    ])
    good = {"sub": "carol", "exp": EXP_2100, "iss": "gmws-fuzz", "aud": "gmws"}
    seed("jwt_bind", JWT, [
        (4, env("bind", {"client_id": "carol", "token": jwt(good)})),
        (4, env("join", {"group": "room"})),
        (3, env("bind", {"client_id": "carol", "token": jwt(good, secret=b"x" * 32)})),
        (3, env("bind", {"client_id": "dave", "token": jwt(good)})),
        (3, env("bind", {"client_id": "carol", "token": jwt(dict(good, exp=1000))})),
        (3, env("bind", {"client_id": "carol", "token": jwt({"sub": "carol", "iss": "gmws-fuzz",
                                                              "aud": ["x", "gmws"]})})),
        (3, env("bind", {"client_id": "carol", "token": jwt(dict(good, iss="other"))})),
        (3, env("bind", {"client_id": "carol", "token": jwt(dict(good, aud=["x"]))})),
        (3, env("bind", {"client_id": "carol", "token": jwt(good, header={"alg": "none"})})),
        (3, env("bind", {"client_id": "carol"})),
        (3, env("bind", {"client_id": "carol", "token": "a.b.c"})),
    ])
    seed("jwt_numeric_sub", JWT, [
        (4, env("bind", {"client_id": 7, "token": jwt(dict(good, sub=7, nbf=0, exp=EXP_2100 + 0.5))})),
        (4, env("send_to_client", {"client_id": "7", "message": "me"})),
    ])
    seed("tight_limits", TIGHT_JSON, [
        (0, env("join", {"group": "third"})),
        (1, env("join", {"group": "far-too-long-a-name"})),
        (0, env("send_to_all", {"message": "m" * 300})),
        (5, env("send_to_group", {"group": "room", "message": "r" * 200})),
        (5, env("send_to_group", {"group": "room", "message": "r" * 200})),
        (5, env("send_to_group", {"group": "room", "message": "r" * 200})),
        (5 | 0xF8, env("send_to_group", {"group": "room", "message": "r" * 200})),
        (2, env("bind", {"client_id": "too-long-id"})),
        (2, b"x"), (2, b"x"), (2, b"x"), (2, b"x"), (2, b"x"),
        (2, env("ping")),
    ])
    seed("forbidden", FORBID, [
        (0, env("join", {"group": "x"})),
        (0, env("send_to_all", {"message": 1})),
        (4, env("bind", {"client_id": "eve"})),
        (4, env("send_to_client", {"client_id": "alice", "message": 1})),
    ])


if __name__ == "__main__":
    main()
