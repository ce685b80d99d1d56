#!/usr/bin/env python3
"""make_seeds.py - writes the hand-made seeds of fuzz/corpus/*/seed-*.

The seeds are checked in; run this again only to change them
(python3 fuzz/make_seeds.py). It rewrites the seed-* files and leaves every
other file (crash-* regressions, min-* inputs kept from fuzzing) alone.

frame seeds start with two control bytes (see fuzz_frame.c): the first picks
the chunking, the second max_message (00: 1 MiB, C1: 4 bytes).
"""
import os
import struct

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


if __name__ == "__main__":
    proxyproto()
    frames()
    utf8()
    handshake()
    route()
