#!/usr/bin/env python3
"""make_seeds.py - writes the hand-made seeds of fuzz/corpus/*/seed-*.

The seeds are checked in; run this again only to change them
(python3 fuzz/make_seeds.py). It rewrites the seed-* files and leaves every
other file (crash-* regressions, min-* inputs kept from fuzzing) alone.

frame seeds start with two control bytes (see fuzz_frame.c): the first picks
the chunking, the second max_message (00: 1 MiB, C1: 4 bytes). deflate seeds
also start with two (fuzz_deflate.c), negotiate seeds with one
(fuzz_negotiate.c); conn_pmd seeds with two, then the client's
Sec-WebSocket-Extensions value and a newline (fuzz_conn_pmd.c).
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
RFC_KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 §5.7's masking key


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --------------------------------------------------------------------------
# frame

def frame(op, payload=b"", fin=True, key=RFC_KEY, rsv=0, form=None):
    """A client frame; key None: unmasked; form 126/127 forces a length form."""
    n = len(payload)
    b = bytes([(0x80 if fin else 0) | rsv << 4 | op])
    m = 0x80 if key is not None else 0
    if form is None:
        form = 0 if n <= 125 else 126 if n <= 0xFFFF else 127
    if form == 0:
        b += bytes([m | n])
    elif form == 126:
        b += bytes([m | 126]) + struct.pack(">H", n)
    else:
        b += bytes([m | 127]) + struct.pack(">Q", n)
    if key is None:
        return b + payload
    return b + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def close(code=None, reason=b""):
    return frame(0x8, b"" if code is None else struct.pack(">H", code) + reason)


def frames():
    text, binary, cont = 0x1, 0x2, 0x0
    ping, pong = 0x9, 0xA
    seeds = {
        # RFC 6455 §5.7, masked as a client sends them
        "rfc-hello-masked": frame(text, b"Hello"),
        "rfc-hello-unmasked": frame(text, b"Hello", key=None),
        "rfc-fragmented": frame(text, b"Hel", fin=False) + frame(cont, b"lo"),
        "rfc-ping-pong": frame(ping, b"Hello") + frame(pong, b"Hello"),
        "rfc-binary-256": frame(binary, bytes(range(256))),
        "binary-64bit-form": frame(binary, b"x" * 300, form=127),
        "binary-16bit-form-short": frame(binary, b"abc", form=126),
        "ping-between-fragments": frame(text, b"frag", fin=False)
        + frame(ping, b"p") + frame(cont, b"ment", fin=False)
        + frame(pong) + frame(cont, b"ed"),
        "binary-three-fragments": frame(binary, b"\x00\xff", fin=False)
        + frame(cont, b"", fin=False) + frame(cont, b"\x80"),
        "empty-messages": frame(text) + frame(binary) + frame(ping)
        + frame(text, fin=False) + frame(cont),
        "utf8-split-across-fragments": frame(text, b"\xe2", fin=False)
        + frame(cont, b"\x82", fin=False) + frame(cont, b"\xac ok"),
        "utf8-multibyte": frame(text, "é € 𝄞 κόσμε".encode()),
        "close-1000-reason": close(1000, b"bye"),
        "close-empty": close(),
        "close-3000-4999": close(3000, "é".encode()) + close(4999),
        "close-then-data": close(1001) + frame(text, b"late"),
        "close-reason-123": close(1000, b"r" * 123),
        "text-150-multibyte": frame(text, "é".encode() * 75),
        "many-frames": b"".join(
            frame(op, bytes([i]) * i)
            for i, op in enumerate([text, binary, ping, pong] * 8)),
        # refused
        "bad-close-one-byte": frame(0x8, b"\x03"),
        "bad-close-1005": close(1005),
        "bad-close-999": close(999),
        "bad-close-5000": close(5000),
        "bad-close-reason-utf8": close(1000, b"\xc0\x80"),
        "bad-text-overlong": frame(text, b"ab\xc0\x80"),
        "bad-text-surrogate": frame(text, b"\xed\xa0\x80"),
        "bad-text-beyond-10ffff": frame(text, b"\xf4\x90\x80\x80"),
        "bad-text-ends-in-code-point": frame(text, b"ok\xe2\x82"),
        "bad-text-fragment-invalid": frame(text, b"ok", fin=False)
        + frame(cont, b"\xff"),
        "bad-rsv1": frame(text, b"x", rsv=4),
        "bad-rsv3": frame(binary, b"x", rsv=1),
        "bad-opcode-3": frame(0x3, b"x"),
        "bad-opcode-b": frame(0xB),
        "bad-continuation-first": frame(cont, b"x"),
        "bad-data-inside-message": frame(text, b"a", fin=False)
        + frame(binary, b"b"),
        "bad-fragmented-ping": frame(ping, b"x", fin=False),
        "bad-ping-126": frame(ping, b"x" * 126),
        "bad-ping-16bit-form": frame(ping, b"x", form=126),
        "bad-64bit-high-bit": bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1])
        + RFC_KEY,
        "huge-length-header": bytes([0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0])
        + RFC_KEY + b"data",
        "truncated-header": bytes([0x81, 0xFE, 0x01]),
    }
    for name, data in seeds.items():
        write("frame", name, b"\x00\x00" + data)
    # the same streams cut in other ways, and under a 4-byte max_message
    write("frame", "chunks-4-hello", b"\x01\x00" + seeds["rfc-fragmented"])
    write("frame", "chunks-256-fragments",
          b"\x04\x00" + seeds["ping-between-fragments"])
    write("frame", "chunks-16k-many", b"\x07\x00" + seeds["many-frames"])
    write("frame", "max4-too-big", b"\x03\xc1" + frame(binary, b"12345"))
    write("frame", "max4-fragments-too-big",
          b"\x02\xc1" + frame(text, b"123", fin=False) + frame(cont, b"45"))
    write("frame", "no-limit", b"\x05\xc0" + seeds["rfc-binary-256"])


# --------------------------------------------------------------------------
# utf8

def utf8():
    seeds = {
        "ascii": b"Hello, world! " * 3,
        "autobahn-6.2": "Hello-µ@ßöäüàá-UTF-8!!".encode(),
        "kosme": "κόσμε".encode(),
        "boundaries": "\u0080\u07ff\u0800\ud7ff\ue000\ufffd\uffff"
        "\U00010000\U0010ffff".encode(),
        "all-lengths": "aé€𝄞".encode() * 4,
        "nul": b"a\x00b",
        "bom": b"\xef\xbb\xbftext",
        "empty": b"",
        "bad-stray-continuation": b"abc\x80def",
        "bad-overlong-2": b"\xc0\xaf",
        "bad-overlong-3": b"\xe0\x80\xaf",
        "bad-overlong-4": b"\xf0\x80\x80\xaf",
        "bad-surrogate-high": b"a\xed\xa0\x80",
        "bad-surrogate-low": b"a\xed\xbf\xbf",
        "bad-cesu8-pair": b"\xed\xa0\xbd\xed\xb2\xa9",
        "bad-beyond-10ffff": b"\xf4\x90\x80\x80",
        "bad-f5": b"\xf5\x80\x80\x80",
        "bad-5-byte": b"\xf8\x88\x80\x80\x80",
        "bad-6-byte": b"\xfc\x84\x80\x80\x80\x80",
        "bad-fe-ff": b"\xfe\xff",
        "bad-second-byte": b"\xe2\x28\xa1",
        "bad-third-byte": b"\xe2\x82\x28",
        "truncated-2": b"ok\xc3",
        "truncated-3": b"ok\xe2\x82",
        "truncated-4": b"ok\xf0\x9d\x84",
        "truncated-surrogate-prefix": b"ok\xed\xa0",
        # the ASCII fast path: a bad byte at each offset of a word
        "ascii-word-then-bad": b"abcdefgh" * 3 + b"\xff",
    }
    for i in range(8):
        seeds["bad-at-%d" % i] = b"x" * (16 + i) + b"\x80" + b"y" * 9
    for name, data in seeds.items():
        write("utf8", name, data)


# --------------------------------------------------------------------------
# handshake

def http(lines, tail=b""):
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + tail


def handshake():
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
    base = ["Host: server.example.com", "Upgrade: websocket",
            "Connection: Upgrade", key, "Sec-WebSocket-Version: 13"]
    seeds = {
        "rfc-6455": http(["GET /chat HTTP/1.1"] + base[:4] +
                         ["Origin: http://example.com",
                          "Sec-WebSocket-Protocol: chat, superchat",
                          "Sec-WebSocket-Version: 13"]),
        "chrome": http([
            "GET /echo?room=1 HTTP/1.1", "Host: 127.0.0.1:8080",
            "Connection: Upgrade", "Pragma: no-cache",
            "Cache-Control: no-cache",
            "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Upgrade: websocket", "Origin: http://127.0.0.1:8080",
            "Sec-WebSocket-Version: 13", "Accept-Encoding: gzip, deflate, br",
            "Accept-Language: en-US,en;q=0.9",
            "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
            "Sec-WebSocket-Extensions: permessage-deflate; "
            "client_max_window_bits"]),
        "firefox": http([
            "GET /echo HTTP/1.1", "Host: localhost:8080",
            "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) "
            "Gecko/20100101 Firefox/121.0",
            "Accept: */*", "Sec-WebSocket-Version: 13",
            "Origin: http://localhost:8080",
            "Sec-WebSocket-Extensions: permessage-deflate",
            "Sec-WebSocket-Key: Yp3o2aOnLxq4M2ZyXv3xMQ==",
            "Connection: keep-alive, Upgrade", "Sec-Fetch-Dest: empty",
            "Sec-Fetch-Mode: websocket", "Sec-Fetch-Site: same-origin",
            "Pragma: no-cache", "Upgrade: websocket"]),
        "curl": http([
            "GET /echo HTTP/1.1", "Host: 127.0.0.1:8080",
            "User-Agent: curl/7.88.1", "Accept: */*",
            "Upgrade: websocket", "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: 9gnyKz8cGUZB3Cd3hTH2Tg==",
            "Connection: Upgrade"]),
        "python-websockets": http([
            "GET /echo HTTP/1.1", "Host: 127.0.0.1:8080",
            "Upgrade: websocket", "Connection: Upgrade",
            "Sec-WebSocket-Key: 8LmzJ1fyx6JcpDkGWyEJVA==",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Extensions: permessage-deflate; "
            "client_max_window_bits",
            "User-Agent: Python/3.11 websockets/10.4"]),
        "node-ws": http([
            "GET /chat HTTP/1.1", "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: mP5qs3cEVQ2zJ4cqvyVh1g==",
            "Connection: Upgrade", "Upgrade: websocket",
            "Sec-WebSocket-Protocol: v1.chat,v2.chat",
            "Sec-WebSocket-Extensions: permessage-deflate; "
            "client_max_window_bits", "Host: localhost:8080"]),
        "absolute-uri": http(["GET ws://server.example.com/chat?x=1 HTTP/1.1"]
                             + base),
        "absolute-uri-no-path": http(["GET http://server.example.com HTTP/1.1"]
                                     + base),
        "protocols-two-headers": http(
            ["GET /p HTTP/1.1"] + base +
            ["Sec-WebSocket-Protocol: mqtt", "Sec-WebSocket-Protocol: chat"]),
        "lowercase-and-tabs": http([
            "GET / HTTP/1.1", "host: h", "upgrade: WebSocket",
            "connection: keep-alive,\tUPGRADE\t",
            "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==",
            "sec-websocket-version: 13", "x-empty:"]),
        "frames-after-head": http(["GET /echo HTTP/1.1"] + base,
                                  tail=bytes([0x81, 0x85]) + RFC_KEY + bytes(
                                      c ^ RFC_KEY[i % 4]
                                      for i, c in enumerate(b"Hello"))),
        "healthz": http(["GET /healthz HTTP/1.1", "Host: x"]),
        "content-length-zero": http(["GET / HTTP/1.1"] + base +
                                    ["Content-Length: 0"]),
        "headers-in-pieces-http2": http(["GET / HTTP/2.0"] + base),
        # refused
        "bad-version-8": http(["GET / HTTP/1.1"] + base[:4] +
                              ["Sec-WebSocket-Version: 8"]),
        "bad-no-key": http(["GET / HTTP/1.1"] + base[:3] + base[4:]),
        "bad-two-keys": http(["GET / HTTP/1.1"] + base + [key]),
        "bad-short-key": http(["GET / HTTP/1.1"] + base[:3] +
                              ["Sec-WebSocket-Key: c2hvcnQ="] + base[4:]),
        "bad-post": http(["POST /chat HTTP/1.1"] + base),
        "bad-http10": http(["GET /chat HTTP/1.0"] + base),
        "bad-two-hosts": http(["GET / HTTP/1.1", "Host: a"] + base),
        "bad-body": http(["GET / HTTP/1.1"] + base + ["Content-Length: 5"],
                         tail=b"hello"),
        "bad-chunked": http(["GET / HTTP/1.1"] + base +
                            ["Transfer-Encoding: chunked"], tail=b"0\r\n\r\n"),
        "bad-obs-fold": http(["GET / HTTP/1.1"] + base[:2] +
                             ["Connection: keep-alive,", " Upgrade"] +
                             base[3:]),
        "bad-fragment": http(["GET /chat#frag HTTP/1.1"] + base),
        "bad-asterisk": http(["OPTIONS * HTTP/1.1"] + base),
        "bad-connect": http(["CONNECT server.example.com:443 HTTP/1.1"] +
                            base),
        "bad-scheme": http(["GET ftp://x/chat HTTP/1.1"] + base),
        "bad-no-colon": http(["GET / HTTP/1.1", "Host: x", "NoColonHere"]),
        "bad-space-in-name": http(["GET / HTTP/1.1", "Host : x"]),
        "bad-control-in-value": http(["GET / HTTP/1.1", "Host: x\x01y"]),
        "bad-garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "bare-lf": ("\n".join(["GET /lf HTTP/1.1"] + base) + "\n\n").encode(),
        "incomplete": http(["GET / HTTP/1.1"] + base)[:-2],
        "too-many-headers": http(["GET / HTTP/1.1"] +
                                 ["X-%d: v" % i for i in range(101)]),
        "too-long-431": http(["GET / HTTP/1.1", "Host: x",
                              "X-Long: " + "a" * 8200]),
    }
    for name, data in seeds.items():
        write("handshake", name, data)


# --------------------------------------------------------------------------
# route (and host config: the same target reads both)

def route():
    seeds = {
        "readme-route": """\
path = /chat                  ; required: the URL path
plugin = chat.so              ; required: relative to this .conf file
subprotocols = v2.chat, v1.chat ; offered in this order of preference
origins = https://example.com, https://www.example.com ; others get 403
max_message_size = 1M         ; default 1M; over it: close 1009
idle_timeout_ms = 60000       ; default none; then close 1001, terminate(timeout)
reload = drain                ; drain | restart: what a reload does to open connections
max_unsent = 4M               ; bytes queued for one client, at most (default 4M)
on_max_unsent = close         ; close (1008, the default) | drop (push says WEBSOCK_EFULL)
pause_reading_at = 1M         ; stop reading a client while its unsent bytes are above
ping_interval_ms = 30000      ; default none: server pings; no pong within
ping_timeout_ms = 10000       ; ping_timeout_ms: close 1001, terminate(timeout)

[options]                     ; handed to the plugin's load(), and to
room_limit = 100              ; websock_conn_option()
""",
        "echo": "path = /echo\nplugin = echo.so\n",
        "absolute-plugin": "path = /a\nplugin = /usr/lib/x.so\nreload = restart\n"
        "on_max_unsent = drop\nmax_unsent = 64k\npause_reading_at = 1g\n",
        "options-only-and-comments": "# a comment\n; another\n\npath=/o\n"
        "plugin=o.so\n[options]\na=1\nb = two words\nempty_next=\n",
        "crlf": "path = /crlf\r\nplugin = c.so\r\n[options]\r\nk = v\r\n",
        "bom": "\ufeffpath = /bom\nplugin = b.so\n",
        "multiline": "path = /m\nplugin = m.so\n[options]\nlist = a\n  b\n",
        "bad-unknown-key": "path = /x\nplugin = x.so\ncolour = blue\n",
        "bad-unknown-section": "path = /x\nplugin = x.so\n[server]\nworkers=2\n",
        "bad-no-plugin": "path = /x\n",
        "bad-no-path": "plugin = x.so\n",
        "bad-path": "path = chat\nplugin = x.so\n",
        "bad-path-query": "path = /chat?x=1\nplugin = x.so\n",
        "bad-twice": "path = /a\npath = /b\nplugin = x.so\n",
        "bad-lists-twice": "path = /a\nplugin = x.so\norigins = a\norigins = b\n",
        "bad-size": "path = /a\nplugin = x.so\nmax_message_size = 0\n",
        "bad-size-overflow": "path = /a\nplugin = x.so\n"
        "max_unsent = 99999999999999999G\n",
        "bad-number": "path = /a\nplugin = x.so\nidle_timeout_ms = -1\n",
        "bad-reload": "path = /a\nplugin = x.so\nreload = never\n",
        "bad-syntax": "path = /a\nplugin = x.so\n[options\nno equals sign\n",
        "bad-long-line": "path = /a\nplugin = x.so\n[options]\nk = " + "v" * 250
        + "\n",
        # host config files
        "readme-config": """\
[server]
listen = 127.0.0.1:8080
listen = [::1]:8080
plugins = /etc/websockd/plugins.d
workers = 4
max_header_size = 8192        ; largest request head; over it: 431
handshake_timeout_ms = 10000  ; the whole request head must arrive by then (408)
max_connections = 10000       ; open WebSocket connections; past it: 503
close_timeout_ms = 5000       ; a peer that never answers our close is cut off
shutdown_grace_ms = 10000
log_level = info              ; error, warn, info, debug
""",
        "config-minimal": "[server]\nlog_level = warning\nmax_header_size = 1M\n"
        "slow_callback_ms = 250\n",
        "config-bad-workers": "[server]\nworkers = 257\n",
        "config-bad-section": "[client]\nworkers = 1\n",
        "config-bad-key": "[server]\nthreads = 4\n",
        "config-no-section": "workers = 2\n",
        "config-bad-level": "[server]\nlog_level = loud\n",
    }
    for name, data in seeds.items():
        write("route", name, data.encode())


# --------------------------------------------------------------------------
# bus_msg: the bus's wire format (host/bus/bus_msg.h: 44 bytes of header,
# the topic, the payload), reference strings and Redis addresses

PUBLISH, BROADCAST, SEND, COUNTS = 1, 2, 3, 4


def msg(kind, opcode, topic, payload, origin=0x0102030405060708, seq=1,
        to=(0, 0, 0, 0), version=1, tlen=None, plen=None):
    tlen = len(topic) if tlen is None else tlen
    plen = len(payload) if plen is None else plen
    return (struct.pack(">BBBBQQQIIII", version, kind, opcode, tlen, origin,
                        seq, to[0], to[1], to[2], to[3], plen)
            + topic + payload)


def counts(*entries):
    """A counts payload: (topic, count) entries."""
    return b"".join(struct.pack(">B", len(t)) + t + struct.pack(">I", n)
                    for t, n in entries)


def bus_msg():
    seeds = {
        "publish-room": msg(PUBLISH, 0, b"room", b"hello"),
        "publish-empty-payload": msg(PUBLISH, 0, b"r", b""),
        "broadcast-text": msg(BROADCAST, 1, b"news", b"headline"),
        "broadcast-binary-1k": msg(BROADCAST, 2, b"bin", bytes(range(256)) * 4),
        "topic-255": msg(PUBLISH, 0, b"t" * 255, b"x"),
        "send": msg(SEND, 0, b"", b"direct", to=(0xfeed, 1, 42, 7)),
        "send-max-target": msg(SEND, 0, b"", b"", to=(2**64 - 1, 2**32 - 1,
                                                     2**32 - 1, 2**32 - 1)),
        "bad-version": msg(PUBLISH, 0, b"room", b"x", version=2),
        "bad-kind": msg(9, 0, b"room", b"x"),
        "bad-opcode-close": msg(BROADCAST, 8, b"room", b"x"),
        "bad-send-with-topic": msg(SEND, 0, b"room", b"x", to=(1, 0, 0, 0)),
        "bad-zero-origin": msg(PUBLISH, 0, b"room", b"x", origin=0),
        "bad-nul-in-topic": msg(PUBLISH, 0, b"ro\0m", b"x"),
        "bad-short-payload": msg(PUBLISH, 0, b"room", b"xy", plen=3),
        "bad-huge-payload": msg(PUBLISH, 0, b"room", b"", plen=0xFFFFFFFF),
        "bad-trailing-byte": msg(PUBLISH, 0, b"room", b"x") + b"!",
        "bad-header-only": msg(PUBLISH, 0, b"room", b"x")[:44],
        "counts-one": msg(COUNTS, 0, b"", counts((b"room", 3))),
        "counts-many": msg(COUNTS, 0, b"", counts(
            *[(b"t%d" % i, i) for i in range(40)], (b"t0", 0))),
        "counts-max": msg(COUNTS, 0, b"", counts((b"t" * 255, 2**32 - 1),
                                                 (b"x", 0))),
        "counts-payload-only": counts((b"a", 1), (b"b", 2), (b"a", 0)),
        "bad-counts-empty": msg(COUNTS, 0, b"", b""),
        "bad-counts-cut-entry": msg(COUNTS, 0, b"", counts((b"room", 3))[:-1]),
        "bad-counts-zero-topic": msg(COUNTS, 0, b"", b"\0\0\0\0\1"),
        "bad-counts-nul": msg(COUNTS, 0, b"", counts((b"ro\0m", 1))),
        "bad-counts-with-topic": msg(COUNTS, 0, b"room", counts((b"a", 1))),
        "bad-counts-opcode": msg(COUNTS, 1, b"", counts((b"a", 1))),
        "ref": b"00c0ffee12345678.1.42.7",
        "ref-max": b"ffffffffffffffff.4294967295.4294967295.4294967295",
        "ref-upper": b"00C0FFEE12345678.0.0.0",
        "ref-bad-leading-zero": b"00c0ffee12345678.01.42.7",
        "ref-bad-overflow": b"00c0ffee12345678.1.42.4294967296",
        "addr-host-port": b"127.0.0.1:6379",
        "addr-ipv6": b"[::1]:6380",
        "addr-unix": b"/run/redis/redis.sock",
        "addr-bad-port": b"redis:65536",
    }
    for name, data in seeds.items():
        write("bus_msg", name, data)


# proxyproto

def proxyproto():
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    def v2(vercmd, fam, body):
        return sig + bytes([vercmd, fam]) + struct.pack(">H", len(body)) + body
    a4 = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 56324, 443)
    a6 = bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack(">HH", 1, 2)
    seeds = {
        "v1-tcp4": b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n",
        "v1-tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n",
        "v1-unknown": b"PROXY UNKNOWN\r\n",
        "v1-bad-port": b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
        "v2-inet": v2(0x21, 0x11, a4) + b"GET",
        "v2-inet6-tlv": v2(0x21, 0x21, a6 + b"\x01\x00\x02h2\x04\x00\x00"),
        "v2-local": v2(0x20, 0x00, b""),
        "v2-unix": v2(0x21, 0x31, bytes(216)),
        "v2-bad-tlv": v2(0x21, 0x11, a4 + b"\x01\x00\x09x"),
        "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for name, data in seeds.items():
        write("proxyproto", name, data)
# negotiate: a control byte (mode, windows; see fuzz_negotiate.c), then
# Sec-WebSocket-Extensions values separated by newlines

def negotiate():
    seeds = {
        "chrome": "permessage-deflate; client_max_window_bits",
        "firefox": "permessage-deflate",
        "python-websockets": "permessage-deflate; client_max_window_bits=12"
        "; server_max_window_bits=12",
        "all-params": "permessage-deflate; server_no_context_takeover; "
        "client_no_context_takeover; server_max_window_bits=10; "
        "client_max_window_bits=9",
        "server-window-8": "permessage-deflate; server_max_window_bits=8, "
        "permessage-deflate",
        "client-window-8": "permessage-deflate; client_max_window_bits=8",
        "quoted": 'permessage-deflate; server_max_window_bits="1\\1"; '
        'client_max_window_bits="10"',
        "duplicate": "permessage-deflate; client_max_window_bits; "
        "client_max_window_bits=10",
        "unknown": "permessage-deflate; foo=bar, permessage-deflate",
        "several-headers": "x-webkit-deflate-frame\npermessage-deflate; bad"
        "\npermessage-deflate; server_no_context_takeover",
        "other-extension-quoted-comma": 'foo; a="b,c", permessage-deflate',
        "unterminated-quote": 'permessage-deflate; a="b, permessage-deflate'
        "\npermessage-deflate",
        "empty-elements": " , ,permessage-deflate ;client_max_window_bits = "
        "11 ,,",
        "bad-values": "permessage-deflate; server_max_window_bits=010, "
        "permessage-deflate; client_max_window_bits=16, permessage-deflate;"
        " server_no_context_takeover=1",
    }
    for name, text in seeds.items():
        # shared with 15-bit windows; and dedicated, server 12, client 10
        write("negotiate", name, b"\xf9" + text.encode())
        write("negotiate", name + "-dedicated", b"\x4e" + text.encode())


# --------------------------------------------------------------------------
# deflate: two control bytes (kind of state and client window, size limit;
# see fuzz_deflate.c), then client frames, compressed ones with RSV1

def pmd(*messages, wbits=15, takeover=True):
    """Each message compressed as RFC 7692 §7.2.1 says (tail removed)."""
    out = []
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    for m in messages:
        if not takeover:
            c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
        z = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        assert z.endswith(b"\x00\x00\xff\xff")
        out.append(z[:-4])
    return out


def deflate():
    text, binary, cont, ping = 0x1, 0x2, 0x0, 0x9
    rsv1 = 4  # frame()'s rsv is shifted to bit 6
    hello = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    json = b"".join(b'{"user":%d,"text":"hello room"},' % i for i in range(200))
    a, b = pmd(json, json)
    bomb = pmd(bytes(1 << 20))[0]
    seeds = {
        "rfc-hello": frame(text, hello, rsv=rsv1),
        "rfc-fragmented": frame(text, hello[:3], fin=False, rsv=rsv1)
        + frame(ping, b"p") + frame(cont, hello[3:]),
        "rfc-shared-window": frame(text, hello, rsv=rsv1)
        + frame(text, bytes([0xF2, 0x00, 0x11, 0x00, 0x00]), rsv=rsv1),
        "rfc-stored": frame(binary, bytes([0x00, 0x05, 0x00, 0xFA, 0xFF])
                            + b"Hello\x00", rsv=rsv1),
        "rfc-bfinal": frame(text, bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07,
                                         0x00, 0x00]), rsv=rsv1),
        "empty": frame(text, b"", rsv=rsv1) + frame(text, b"\x00", rsv=rsv1),
        "json-takeover": frame(text, a, rsv=rsv1) + frame(text, b, rsv=rsv1),
        "json-fragments": frame(text, a[:10], fin=False, rsv=rsv1)
        + frame(cont, a[10:100], fin=False) + frame(cont, a[100:])
        + frame(cont, b"", fin=True),
        "mixed-plain": frame(text, b"plain") + frame(binary, hello, rsv=rsv1),
        "window-9": frame(binary, pmd(json, wbits=9)[0], rsv=rsv1),
        "bomb-1mib": frame(binary, bomb, rsv=rsv1),
        "corrupt": frame(binary, b"\xff\xff\xff", rsv=rsv1),
        "truncated": frame(binary, hello[:5], rsv=rsv1),
        "rsv1-continuation": frame(text, hello[:3], fin=False, rsv=rsv1)
        + frame(cont, hello[3:], rsv=rsv1),
        "rsv1-ping": frame(ping, b"p", rsv=rsv1),
    }
    for name, data in seeds.items():
        write("deflate", name, b"\x00\x00" + data)
    # other states and limits: shared, no takeover with a 9-bit client
    # window, and limits of 64 bytes and 4032 bytes
    write("deflate", "shared-json", b"\x02\x00" + seeds["json-takeover"])
    write("deflate", "no-takeover-window-9",
          b"\x05\x00" + seeds["window-9"])
    write("deflate", "limit-64", b"\x00\xc1" + seeds["json-takeover"])
    write("deflate", "bomb-limit-4k", b"\x02\xff"
          + frame(binary, bomb, rsv=rsv1))


# --------------------------------------------------------------------------
# conn_pmd: two control bytes (route mode and client window, size limit and
# min_size; see fuzz_conn_pmd.c), the client's offer and a newline, then
# the client's frames

def conn_pmd():
    text, binary, cont, ping, close_op = 0x1, 0x2, 0x0, 0x9, 0x8
    rsv1 = 4
    json = b"".join(b'{"user":%d,"text":"hello room"},' % i for i in range(100))
    ded15, shared15 = 0x1C, 0x1D  # dedicated / shared, client window 15
    a, b = pmd(json, json)
    s1, s2 = pmd(json, json[::-1], takeover=False)
    w12 = pmd(json, json[:500], wbits=12)
    bomb = pmd(bytes(1 << 20))[0]
    # a 9-bit server window at a route's defaults (byte 0 bit 7: level 1,
    # memLevel 5): the echoes, 90 to 114 bytes, make the dedicated deflater
    # restart from the last quarter of its window several times between
    # the fuzzer's random trims (deflate.c, rebase)
    parts = [json[i * 37:i * 37 + 90 + 8 * (i % 4)] for i in range(100)]
    restarts = b"".join(frame(text, z, rsv=rsv1) for z in pmd(*parts))
    seeds = {
        "chrome-takeover": (ded15, 0x00,
                            "permessage-deflate; client_max_window_bits",
                            frame(text, a, rsv=rsv1) + frame(text, b, rsv=rsv1)),
        "python-window-12": (ded15, 0x00,
                             "permessage-deflate; client_max_window_bits=12",
                             frame(text, w12[0], rsv=rsv1)
                             + frame(text, w12[1], rsv=rsv1)),
        "shared-firefox": (shared15, 0x00, "permessage-deflate",
                           frame(text, s1, rsv=rsv1) + frame(binary, s2, rsv=rsv1)),
        "dedicated-no-takeover": (ded15, 0x00,
                                  "permessage-deflate; "
                                  "client_no_context_takeover; "
                                  "server_no_context_takeover",
                                  frame(text, s1, rsv=rsv1)
                                  + frame(text, s2, rsv=rsv1)),
        "fragments-ping": (ded15, 0x00, "permessage-deflate",
                           frame(text, a[:10], fin=False, rsv=rsv1)
                           + frame(ping, b"p") + frame(cont, a[10:100], fin=False)
                           + frame(cont, a[100:]) + frame(text, b"plain")),
        "empty-and-tail": (shared15, 0x00, "permessage-deflate",
                           frame(text, b"", rsv=rsv1)
                           + frame(binary, s1[:20], fin=False, rsv=rsv1)
                           + frame(cont, s1[20:], fin=False)
                           + frame(cont, b"", fin=True)),
        "bomb-limit-4k": (shared15, 0xFF, "permessage-deflate",
                          frame(binary, bomb, rsv=rsv1)),
        "corrupt": (ded15, 0x00, "permessage-deflate",
                    frame(binary, b"\xff\xff\xff", rsv=rsv1)),
        "text-not-utf8": (ded15, 0x00, "permessage-deflate",
                          frame(text, pmd(b"ok \xc3\x28 no")[0], rsv=rsv1)),
        "no-offer-rsv1": (ded15, 0x00, "",
                          frame(text, b"hello") + frame(text, s1, rsv=rsv1)),
        "declined-window-8": (ded15, 0x00,
                              "permessage-deflate; server_max_window_bits=8",
                              frame(text, s1, rsv=rsv1)),
        "rsv1-continuation": (ded15, 0x00, "permessage-deflate",
                              frame(text, a[:3], fin=False, rsv=rsv1)
                              + frame(cont, a[3:], rsv=rsv1)),
        "min-size-63-close": (ded15, 0x3F, "permessage-deflate",
                              frame(text, pmd(b"short")[0], rsv=rsv1)
                              + frame(text, a, rsv=rsv1)
                              + frame(close_op, struct.pack("!H", 1000) + b"bye")
                              + frame(text, b"ignored")),
        "restart-window-9": (ded15 | 0x80, 0x00,
                             "permessage-deflate; server_max_window_bits=9",
                             restarts),
        "several-offers": (0x0C, 0x00,
                           "permessage-deflate; foo, permessage-deflate; "
                           "client_max_window_bits=9; server_max_window_bits=10",
                           frame(binary, pmd(json, wbits=9)[0], rsv=rsv1)
                           + frame(binary, json)),
    }
    for name, (b0, b1, offer, frames_) in seeds.items():
        write("conn_pmd", name, bytes([b0, b1]) + offer.encode() + b"\n"
              + frames_)


if __name__ == "__main__":
    proxyproto()
    frames()
    utf8()
    handshake()
    route()
    bus_msg()
    negotiate()
    deflate()
    conn_pmd()
