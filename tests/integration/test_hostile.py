"""Hardening: hostile clients and faulty plugins against the real websockd.

Every case is bounded in time and runs over loopback. Polite clients are
Debian's python3-websockets; hostile ones are raw sockets (socket,
selectors). One daemon per class (--workers 2, --close-timeout-ms 1000,
--handshake-timeout-ms 2000 where slow clients are involved), stopped by PID
by harness.Daemon, whose log is checked for sanitizer reports and whose exit
status must be 0 (except the crash case, which must die by SIGSEGV).

docs/hostile.md is the table of every hostile input tried here (and in
test_conformance.py, test_lifecycle.py and test_e2e.py), what websockd
answers, and the test that proves it.

Classes:
  SlowHeadersTest     1,000 slow-header clients at once (408), a polite
                      client served meanwhile, fds back to the baseline
  HttpAbuseTest       heads over the size and count limits (431), a body on
                      the upgrade (400), pipelined requests, half-closes
                      around the handshake, a lingering client, TLS and
                      HTTP/2 prefaces and other non-HTTP bytes
  FrameAbuseTest      garbage after the upgrade (1002), seeded random bytes
                      and random frames, TCP resets at every stage of a
                      frame, half-closed connections, lengths of 2^63 and
                      2^63-1, a message in 65,536 fragments
  ConnectionFloodTest --max-connections 50: 50 more get 503; recovers
  NonReaderTest       clients that never read: echo pauses reading (bounded
                      memory, nothing lost); a plugin flood closes with 1008
  ControlFloodTest    pings from a client that reads no pong (expected
                      failure: websockd bug, see the comment there)
  FdExhaustionTest    websockd out of fds (expected failure: websockd bug,
                      see the comment there)
  FaultyPluginTest    tests/plugins/faulty.c: init fails or returns 7, load()
                      refuses, pushes after a stop and from terminate, sends
                      to a closed connection, pushes past max_unsent, blocks
                      a callback; the echo route is served after each
  CrashTest           a plugin that segfaults takes the process down
                      (SIGSEGV) after one log line naming plugin, callback
                      and route; the non-sanitizer build in
                      WSH_SOURCE_DIR/build (scripts/test.sh builds it first)
"""

import asyncio
import contextlib
import os
import random
import re
import resource
import selectors
import socket
import struct
import sys
import threading
import time
import unittest

from websockets.exceptions import ConnectionClosed, InvalidStatusCode

import harness
from harness import (ECHO_SO, FrameReader, mask_frame, read_http_head,
                     read_records, test_plugin, upgrade_request)

FAULTY_SO = test_plugin("faulty")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
MIB = 1024 * 1024
CHUNK = 64 * 1024           # faulty's flood and drip message size
OP_TIMEOUT = 10.0           # one client operation
HANDSHAKE_TIMEOUT_MS = 2000
CLOSE_TIMEOUT_MS = 1000
SLACK = 2.0                 # seconds on top of a server deadline (ASan, ctest -j)
SERVED_WITHIN = 1.0         # a polite client's connect + echo, under attack
RSS_BOUND = 64 * MIB        # growth allowed while a client does not read:
                            # max_unsent (4M) + one message (1M) + the
                            # allocator's and ASan's slack
ASAN_QUARANTINE_MB = 16
ZERO_KEY = b"\x00\x00\x00\x00"  # a valid mask that leaves the payload as is
COMMON_ARGS = ("--close-timeout-ms", str(CLOSE_TIMEOUT_MS),
               "--handshake-timeout-ms", str(HANDSHAKE_TIMEOUT_MS))


# ---------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------

class Daemon(harness.Daemon):
    """harness.Daemon that counts its fds, reads its memory use, names the
    worker of a client, and may run another binary."""

    def __init__(self, routes, binary=None, **kw):
        kw.setdefault("workers", 2)
        super().__init__(routes, **kw)
        self.binary = binary or harness.WEBSOCKD

    def start(self):
        saved = harness.WEBSOCKD
        harness.WEBSOCKD = self.binary
        try:
            return super().start()
        finally:
            harness.WEBSOCKD = saved

    def rec(self, name):
        return self.path(name + ".rec")

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def wait_fds(self, baseline, timeout=5.0):
        """Waits until websockd has at most `baseline` fds; returns the count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.fds()
            if n <= baseline or time.monotonic() > deadline:
                return n
            time.sleep(0.05)

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def worker_of(self, local_port, path, timeout=5.0):
        m = self.wait_log(r"127\.0\.0\.1:%d GET %s: 101 \(conn (\d+)"
                          % (local_port, re.escape(path)), timeout)
        return int(m.group(1)) % 1000

    def log_count(self, pattern):
        return len(re.findall(pattern, self.log()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def start_class_daemon(routes, args=(), quarantine=False, **kw):
    """Starts a Daemon for a test class (stopped by stop_class_daemon)."""
    d = Daemon(routes, args=args, **kw)
    if quarantine:
        return harness.start_quarantined(d, ASAN_QUARANTINE_MB)
    try:
        return d.start()
    except BaseException:
        d.__exit__(None, None, None)
        raise


@contextlib.contextmanager
def running(d):
    """For a Daemon already started: stops it by PID on the way out (with
    harness's exit-status and sanitizer checks if nothing failed)."""
    try:
        yield d
    except BaseException:
        d.__exit__(*sys.exc_info())
        raise
    d.__exit__(None, None, None)


def raise_nofile(need):
    """Raises this process's soft RLIMIT_NOFILE to the hard limit (websockd,
    started after, inherits it); fails if even that is below `need`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise AssertionError("RLIMIT_NOFILE hard limit %d < %d needed" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

run, connect, _, _ = harness.client_helpers(60.0, OP_TIMEOUT, close_timeout=3)


async def echo_once(url, text, timeout=OP_TIMEOUT):
    """(answer, seconds for connect + echo) from python-websockets."""
    t0 = time.monotonic()
    async with connect(url, open_timeout=timeout) as ws:
        await ws.send(text)
        answer = await asyncio.wait_for(ws.recv(), timeout)
        return answer, time.monotonic() - t0


def assert_serving(test, d, path="/echo"):
    """websockd is up and serves a polite client on `path` and /healthz."""
    test.assertTrue(d.alive(), "websockd died:\n" + d.log())
    answer, _ = run(echo_once(d.url(path), "still serving"))
    test.assertEqual(answer, "still serving")
    data, eof = exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    test.assertTrue(data.startswith(b"HTTP/1.1 200 ") and eof, data[:80])


def raw_connect(d, rcvbuf=None, timeout=OP_TIMEOUT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", d.port))
    return s


def raw_upgrade(d, path="/echo", rcvbuf=None, extra=""):
    """A raw socket upgraded to path; returns (sock, FrameReader)."""
    s = raw_connect(d, rcvbuf)
    s.sendall(upgrade_request(path, extra))
    status, _, rest = read_http_head(s)
    if status != 101:
        s.close()
        raise AssertionError("upgrade to %s got %d" % (path, status))
    return s, FrameReader(s, rest)


def reset(s):
    """Closes with a TCP reset (SO_LINGER 0)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def read_to_eof(s, timeout):
    """(bytes read, True if EOF or reset came within timeout)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def exchange(port, data, timeout=5.0, shut_wr=False, pause=0.0, chunk=None):
    """Sends `data` on a new connection (in pieces of `chunk` bytes, `pause`
    apart, if asked; then shutdown(SHUT_WR) if asked) and reads to EOF.
    Returns (bytes read, True if the server closed within timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            if chunk:
                for i in range(0, len(data), chunk):
                    s.sendall(data[i:i + chunk])
                    if pause:
                        time.sleep(pause)
            else:
                s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before we were done
        return read_to_eof(s, timeout)
    finally:
        s.close()


def responses(data):
    """[(status, headers dict, body)] of the HTTP responses in data (each
    with a Content-Length, as websockd's refusals have)."""
    out = []
    while data.startswith(b"HTTP/1.1 "):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        data = rest[n:]
    return out


def close_frame(code, reason=b""):
    return mask_frame(OP_CLOSE, struct.pack("!H", code) + reason)


def parse_frames(buf):
    """Complete server frames in buf: [(fin, opcode, payload)], rest."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        if b1 & 0x80:
            raise AssertionError("masked server frame")
        n, off = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < off + n:
            break
        out.append((bool(b0 & 0x80), b0 & 0x0F, buf[off:off + n]))
        buf = buf[off + n:]
    return out, buf


def close_code_of(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


# ---------------------------------------------------------------------------
# 1,000 slow-header clients
# ---------------------------------------------------------------------------

SLOW_CLIENTS = 1000
SLOW_BYTE_EVERY = 0.2
SLOW_REST = b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 400 + b"\r\n"


class SlowHeadersTest(unittest.TestCase):
    """Slowloris: a thousand clients that send their request head one byte
    every 200 ms. The handshake deadline (2 s) cuts each with 408; a polite
    client is served meanwhile; websockd's fds return to their baseline."""

    @classmethod
    def setUpClass(cls):
        raise_nofile(SLOW_CLIENTS + 200)
        cls.d = start_class_daemon({"echo": {"path": "/echo", "plugin": ECHO_SO}},
                                   args=COMMON_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_1000_slow_header_clients(self):
        d = self.d
        run(echo_once(d.url("/echo"), "warm up"))
        baseline = settled_fds(d)
        timeouts_before = d.log_count(r"handshake timeout")
        socks, t_open = [], []
        sel = selectors.DefaultSelector()
        polite = {}
        try:
            for i in range(SLOW_CLIENTS):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                s.sendall(b"GET /echo HTTP/1.1\r\n")
                s.setblocking(False)
                socks.append(s)
                t_open.append(time.monotonic())
                sel.register(s, selectors.EVENT_READ, i)
            opened = time.monotonic()
            cut = [None] * SLOW_CLIENTS     # seconds from open to EOF/reset
            data = [b""] * SLOW_CLIENTS
            sent = [0] * SLOW_CLIENTS

            def polite_client():
                try:
                    polite["answer"], polite["elapsed"] = run(
                        echo_once(d.url("/echo"), "served", timeout=5), 10)
                except BaseException as e:  # reported by the main thread
                    polite["error"] = repr(e)

            helper = None
            next_tick = time.monotonic() + SLOW_BYTE_EVERY
            deadline = opened + HANDSHAKE_TIMEOUT_MS / 1000 + SLACK + 1
            left = SLOW_CLIENTS
            while left and time.monotonic() < deadline:
                if helper is None and time.monotonic() - opened > 0.5:
                    helper = threading.Thread(target=polite_client)
                    helper.start()
                timeout = max(0.0, next_tick - time.monotonic())
                for key, _ in sel.select(timeout):
                    i = key.data
                    try:
                        chunk = socks[i].recv(4096)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        chunk = b""
                    if chunk:
                        data[i] += chunk
                        continue
                    cut[i] = time.monotonic() - t_open[i]
                    sel.unregister(socks[i])
                    socks[i].close()
                    left -= 1
                if time.monotonic() >= next_tick:
                    next_tick += SLOW_BYTE_EVERY
                    for i, s in enumerate(socks):
                        if cut[i] is None and sent[i] < len(SLOW_REST):
                            try:
                                s.send(SLOW_REST[sent[i]:sent[i] + 1])
                                sent[i] += 1
                            except (BlockingIOError, BrokenPipeError,
                                    ConnectionResetError):
                                pass
            if helper is not None:
                helper.join(15)
        finally:
            for s in socks:
                s.close()
            sel.close()

        self.assertEqual(polite.get("error"), None, polite)
        self.assertEqual(polite.get("answer"), "served", polite)
        self.assertLess(polite["elapsed"], SERVED_WITHIN,
                        "polite client took %.3f s among %d slow ones"
                        % (polite["elapsed"], SLOW_CLIENTS))
        still_open = [i for i in range(SLOW_CLIENTS) if cut[i] is None]
        self.assertEqual(still_open, [], "%d slow clients not cut within %.1f s"
                         % (len(still_open), HANDSHAKE_TIMEOUT_MS / 1000 + SLACK))
        limit = HANDSHAKE_TIMEOUT_MS / 1000
        self.assertGreaterEqual(min(cut), limit * 0.9,
                                "a slow client was cut before the deadline")
        self.assertLess(max(cut), limit + SLACK)
        no_408 = [i for i in range(SLOW_CLIENTS)
                  if not data[i].startswith(b"HTTP/1.1 408 ")]
        self.assertEqual(no_408, [], "no 408 for %d clients, e.g. %r"
                         % (len(no_408), data[no_408[0]][:80] if no_408 else b""))
        self.assertGreaterEqual(d.log_count(r"handshake timeout") - timeouts_before,
                                SLOW_CLIENTS)
        after = d.wait_fds(baseline, timeout=CLOSE_TIMEOUT_MS / 1000 + SLACK + 2)
        self.assertLessEqual(after, baseline, "websockd fds %d, baseline %d"
                         % (after, baseline))
        assert_serving(self, d)
        print("\n1000 slow clients: polite client %.3f s; cut after %.2f-%.2f s"
              % (polite["elapsed"], min(cut), max(cut)))


# ---------------------------------------------------------------------------
# HTTP abuse before the upgrade
# ---------------------------------------------------------------------------

# A TLS 1.2 ClientHello's first bytes: a browser pointed at wss:// on a ws://
# port.
TLS_HELLO = bytes.fromhex(
    "160301020001" "0001fc0303") + bytes(range(32)) + b"\x20" + bytes(32) + \
    bytes.fromhex("0024130113021303c02bc02fcca9cca8c02cc030c00ac009c013c014"
                  "009c009d002f0035000a0100")
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class HttpAbuseTest(unittest.TestCase):
    """What comes before the 101: every refusal is one response with
    Connection: close, then EOF; nothing hangs until the handshake deadline
    unless the client really is slow."""

    @classmethod
    def setUpClass(cls):
        cls.d = start_class_daemon({"echo": {"path": "/echo", "plugin": ECHO_SO}},
                                   args=COMMON_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.assertTrue(self.d.alive(), "websockd died:\n" + self.d.log())

    def refused(self, data, status, **kw):
        """Sends data; exactly one response with `status` must come, with
        Connection: close, then EOF, well before the handshake deadline."""
        t0 = time.monotonic()
        got, eof = exchange(self.d.port, data, **kw)
        elapsed = time.monotonic() - t0
        self.assertTrue(eof, "no EOF after %r" % got[:200])
        rs = responses(got)
        self.assertEqual([r[0] for r in rs], [status], got[:300])
        self.assertEqual(rs[0][1].get("connection"), "close", rs[0][1])
        self.assertLess(elapsed, HANDSHAKE_TIMEOUT_MS / 1000,
                        "answered only at the handshake deadline")
        return rs[0]

    def test_header_bytes_over_limit_431(self):
        big = upgrade_request("/echo", "X-Big: " + "b" * 9000 + "\r\n")
        # in one piece, and in 512-byte pieces (the limit is crossed inside
        # a later read)
        self.refused(big, 431)
        self.refused(big, 431, chunk=512, pause=0.002)
        # a head that never ends: answered at the limit, not buffered
        endless = b"GET /echo HTTP/1.1\r\nX-Endless: " + b"e" * (4 * MIB)
        self.refused(endless, 431)

    def test_too_many_headers_431(self):
        # upgrade_request has 5 headers; 100 in all are allowed, 101 are not
        ok = "".join("X-H%d: v\r\n" % i for i in range(95))
        s, _ = raw_upgrade(self.d, extra=ok)
        s.close()
        over = "".join("X-H%d: v\r\n" % i for i in range(96))
        self.refused(upgrade_request("/echo", over), 431)

    def test_body_on_upgrade_400(self):
        self.refused(upgrade_request("/echo", "Content-Length: 5\r\n") + b"hello", 400)
        self.refused(upgrade_request("/echo", "Transfer-Encoding: chunked\r\n")
                     + b"5\r\nhello\r\n0\r\n\r\n", 400)
        # Content-Length: 0 announces no body: upgraded
        s, _ = raw_upgrade(self.d, extra="Content-Length: 0\r\n")
        s.close()

    def test_pipelined_http_requests(self):
        """Two requests in one segment: websockd answers the first with
        Connection: close and closes; the second is never answered."""
        get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        status, headers, body = self.refused(get + get, 200)
        self.assertEqual(body, b"ok\n")
        # an upgrade pipelined behind a plain GET is not upgraded
        status, _, _ = self.refused(get + upgrade_request("/echo"), 200)
        # a GET pipelined behind an upgrade is WebSocket bytes, not HTTP:
        # 'G' (0x47) has RSV1 set -> close 1002
        s = raw_connect(self.d)
        try:
            s.sendall(upgrade_request("/echo") + get)
            status, _, rest = read_http_head(s)
            self.assertEqual(status, 101)
            r = FrameReader(s, rest)
            self.assertEqual(r.close_frame()[0], 1002)
            self.assertTrue(r.at_eof(3))
        finally:
            s.close()

    def test_half_close_mid_handshake(self):
        """shutdown(SHUT_WR) after half a request head: closed at once,
        without a response (the client cannot send the rest)."""
        head = upgrade_request("/echo")
        for cut in (1, 20, len(head) // 2, len(head) - 2):
            t0 = time.monotonic()
            got, eof = exchange(self.d.port, head[:cut], shut_wr=True)
            self.assertTrue(eof, "cut at %d" % cut)
            self.assertLess(time.monotonic() - t0, 1.0,
                            "cut at %d: closed only at the deadline" % cut)
            self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 400 "),
                            "cut at %d: %r" % (cut, got[:100]))

    def test_half_close_after_request_head(self):
        """A whole upgrade request, then shutdown(SHUT_WR): the 101 goes
        out, then websockd sees the EOF and closes (nothing else)."""
        got, eof = exchange(self.d.port, upgrade_request("/echo"), shut_wr=True)
        self.assertTrue(eof)
        rs = got.partition(b"\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 101 "), got[:100])
        self.assertEqual(rs[2], b"", "bytes after the 101: %r" % rs[2][:50])
        # a plain GET the same way is still answered
        got, eof = exchange(self.d.port, b"GET /healthz HTTP/1.1\r\n\r\n", shut_wr=True)
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:100])

    def test_lingering_close_is_bounded(self):
        """After a refusal websockd shuts its side and reads what still
        comes (so that our unread bytes do not turn its close into a reset
        that could destroy the response), but only for close_timeout_ms: a
        client that keeps sending and never closes is cut."""
        s = raw_connect(self.d)
        try:
            t0 = time.monotonic()
            s.sendall(upgrade_request("/echo", "Content-Length: 5\r\n") + b"hello")
            cut = None
            while time.monotonic() - t0 < CLOSE_TIMEOUT_MS / 1000 + SLACK + 2:
                time.sleep(0.05)
                try:
                    s.send(b"x")
                except (BrokenPipeError, ConnectionResetError):
                    cut = time.monotonic() - t0
                    break
            self.assertIsNotNone(cut, "still lingering after %.1f s" % (time.monotonic() - t0))
            self.assertGreater(cut, CLOSE_TIMEOUT_MS / 1000 * 0.8,
                               "cut before the close timeout")
            self.assertLess(cut, CLOSE_TIMEOUT_MS / 1000 + SLACK)
        finally:
            s.close()

    def test_not_http_at_all(self):
        """A TLS ClientHello, an HTTP/2 preface, NUL bytes, binary, a huge
        method: 400 at once. Requests http-parser takes as HTTP but that
        are no upgrade (HTTP/0.9 style, version 9.9) get the plain-HTTP
        answer of a WebSocket route, 426; an upgrade over HTTP/1.0, 400."""
        for name, data, status in (
                ("tls", TLS_HELLO, 400), ("h2", H2_PREFACE, 400),
                ("nul", b"\x00" * 64 + b"\r\n\r\n", 400),
                ("binary", bytes(range(256)) * 4, 400),
                ("long_method", b"A" * 5000 + b" / HTTP/1.1\r\n\r\n", 400),
                ("http09", b"GET /echo\r\n\r\n", 426),
                ("version_9_9", b"GET /echo HTTP/9.9\r\n\r\n", 426),
                ("upgrade_http10",
                 upgrade_request("/echo").replace(b"HTTP/1.1", b"HTTP/1.0"), 400)):
            with self.subTest(input=name):
                self.refused(data, status)
        assert_serving(self, self.d)


# ---------------------------------------------------------------------------
# Frame abuse after the upgrade
# ---------------------------------------------------------------------------

FUZZ_CONNECTIONS = 100
FUZZ_SEED = 6455
VALID_SERVER_CODES = set(range(1000, 1004)) | set(range(1007, 1015)) | \
    set(range(3000, 5000))


def random_frames(rng):
    """1 to 6 client frames, mostly well formed, some not (for fuzzing)."""
    out = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.08:
            op = rng.choice([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
        else:
            op = rng.choice([OP_CONT, OP_TEXT, OP_TEXT, OP_BINARY, OP_BINARY,
                             OP_CLOSE, OP_PING, OP_PONG])
        n = rng.choice([0, 1, 2, 5, 125, 126, 127, 200, 65535, 65536, 70000])
        if op >= 8 and rng.random() < 0.8:
            n = min(n, 125)
        if op == OP_TEXT or (op == OP_CONT and rng.random() < 0.5):
            payload = ("é€𝄞a" * (n // 4 + 1)).encode()[:n]
            if payload and rng.random() < 0.2:
                payload = payload[:-1] + bytes([rng.choice([0x80, 0xC0, 0xFF, 0xED])])
        elif op == OP_CLOSE and n >= 2:
            code = rng.choice([1000, 1001, 1002, 1005, 1006, 1011, 1015, 2000,
                               3000, 4999, 5000, 0, 65535])
            payload = struct.pack("!H", code) + b"r" * (n - 2)
        else:
            payload = bytes(rng.getrandbits(8) for _ in range(min(n, 256))) * \
                (n // 256 + 1)
            payload = payload[:n]
        fin = rng.random() < 0.75
        rsv = rng.choice([1, 2, 4, 7]) if rng.random() < 0.05 else 0
        mask = rng.random() > 0.05
        length = None
        if rng.random() < 0.05:
            length = rng.choice([n + rng.randint(1, 1000), 5 * MIB, (1 << 63) - 1])
        key = bytes(rng.getrandbits(8) for _ in range(4))
        out.append(mask_frame(op, payload, fin=fin, rsv=rsv, mask=mask, key=key,
                              length=length))
    return b"".join(out)


class FrameAbuseTest(unittest.TestCase):
    """Garbage, resets, half-closes and lies after the 101, on the echo
    plugin; /small has max_message_size 65536."""

    @classmethod
    def setUpClass(cls):
        cls.d = start_class_daemon({
            "echo": {"path": "/echo", "plugin": ECHO_SO, "max_message_size": "4M"},
            "small": {"path": "/small", "plugin": ECHO_SO,
                      "max_message_size": "65536"},
        }, args=COMMON_ARGS)
        run(echo_once(cls.d.url("/echo"), "warm up"))
        cls.baseline = settled_fds(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.assertTrue(self.d.alive(), "websockd died:\n" + self.d.log())

    def assert_fds_back(self):
        n = self.d.wait_fds(self.baseline, timeout=CLOSE_TIMEOUT_MS / 1000 + SLACK + 2)
        self.assertLessEqual(n, self.baseline, "websockd keeps %d fds (baseline %d)"
                         % (n, self.baseline))

    def expect_close(self, wire, code, path="/echo"):
        """Sends wire after the upgrade: a close with `code` must be the only
        frame, then EOF (websockd fails the connection without waiting)."""
        s, r = raw_upgrade(self.d, path)
        try:
            try:
                s.sendall(wire)
            except (BrokenPipeError, ConnectionResetError):
                pass
            s.settimeout(5)
            fin, op, payload = r.frame()
            self.assertEqual(op, OP_CLOSE, "frame %d before the close" % op)
            self.assertEqual(close_code_of(payload), code, payload)
            self.assertTrue(r.at_eof(3), "no EOF after the close")
            return payload
        finally:
            s.close()

    def test_garbage_after_upgrade(self):
        rng = random.Random(FUZZ_SEED)
        garbage = bytearray(rng.getrandbits(8) for _ in range(4096))
        garbage[0] |= 0x70  # RSV1-3 set: a protocol error at the first byte
        self.expect_close(bytes(garbage), 1002)
        self.expect_close(b"\xff" * 65536, 1002)
        assert_serving(self, self.d)

    def fuzz(self, blobs, what):
        """Sends each blob after its own upgrade, all at once; then reads
        for up to 2 s. Whatever websockd makes of the bytes, it must answer
        with well-formed server frames (whole messages, unmasked), end with
        a close frame with a valid code if it ends the connection, send
        nothing after it, and keep serving others."""
        conns = []
        try:
            for blob in blobs:
                s, r = raw_upgrade(self.d)
                s.settimeout(2)
                try:
                    s.sendall(blob)
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    pass  # websockd failed the connection before the end
                s.setblocking(False)
                conns.append([s, r.buf, False])
            sel = selectors.DefaultSelector()
            for i, c in enumerate(conns):
                sel.register(c[0], selectors.EVENT_READ, i)
            deadline = time.monotonic() + 2.0
            open_left = len(conns)
            while open_left and time.monotonic() < deadline:
                for key, _ in sel.select(0.1):
                    c = conns[key.data]
                    try:
                        chunk = c[0].recv(65536)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        chunk = b""
                    if chunk:
                        c[1] += chunk
                    else:
                        c[2] = True
                        sel.unregister(c[0])
                        open_left -= 1
            sel.close()
            codes = {}
            for i, (s, buf, eof) in enumerate(conns):
                frames, rest = parse_frames(buf)
                ops = [op for _, op, _ in frames]
                self.assertTrue(set(ops) <= {OP_TEXT, OP_BINARY, OP_CLOSE, OP_PONG},
                                "%s %d: opcodes %r" % (what, i, ops))
                self.assertTrue(all(fin for fin, _, _ in frames),
                                "%s %d: a fragmented server frame" % (what, i))
                if OP_CLOSE in ops:
                    self.assertEqual(ops.index(OP_CLOSE), len(ops) - 1,
                                     "%s %d: frames after the close" % (what, i))
                    self.assertEqual(rest, b"", "%s %d: bytes after the close" % (what, i))
                    code = close_code_of(frames[-1][2])
                    self.assertIn(code, VALID_SERVER_CODES | {None},
                                  "%s %d" % (what, i))
                    codes[code] = codes.get(code, 0) + 1
                elif eof:
                    self.fail("%s %d: EOF without a close frame" % (what, i))
            print("\n%s: %d connections; close codes %r; %d still waiting for "
                  "more bytes" % (what, len(conns), sorted(codes.items(), key=str),
                                  sum(1 for c in conns if not c[2])))
        finally:
            for c in conns:
                reset(c[0])
        assert_serving(self, self.d)
        self.assert_fds_back()

    def test_random_garbage_never_crashes(self):
        """Seeded random bytes (1 to 4096 of them) after the 101."""
        rng = random.Random(FUZZ_SEED + 1)
        self.fuzz([bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
                   for _ in range(FUZZ_CONNECTIONS)], "random bytes")

    def test_random_frames_never_crash(self):
        """Seeded random sequences of 1 to 6 frames, mostly well formed:
        any opcode (reserved ones now and then), FIN or not, RSV bits,
        unmasked frames, lengths at the 7/16/64-bit edges and over
        /echo's 4M, length lies, invalid UTF-8, random close codes."""
        rng = random.Random(FUZZ_SEED + 2)
        self.fuzz([random_frames(rng) for _ in range(2 * FUZZ_CONNECTIONS)],
                  "random frames")

    def test_message_in_65536_one_byte_fragments(self):
        """A 64 KiB message in 65,536 fragments of one byte (458 KB of
        headers): reassembled and echoed whole, in bounded time."""
        body = bytes(random.Random(FUZZ_SEED).getrandbits(8) for _ in range(65536))
        wire = [mask_frame(OP_BINARY, body[:1], fin=False, key=ZERO_KEY)]
        wire += [mask_frame(OP_CONT, body[i:i + 1], fin=False, key=ZERO_KEY)
                 for i in range(1, 65535)]
        wire.append(mask_frame(OP_CONT, body[65535:], key=ZERO_KEY))
        s, r = raw_upgrade(self.d)
        try:
            t0 = time.monotonic()
            s.sendall(b"".join(wire))
            s.settimeout(OP_TIMEOUT)
            self.assertEqual(r.frame(), (True, OP_BINARY, body))
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            s.close()

    def test_tcp_reset_mid_frame(self):
        """A reset at every stage of a frame, of a fragmented message, and
        with echoes still queued: websockd frees the connection and serves."""
        payload = bytes(1000)
        big = mask_frame(OP_BINARY, bytes(MIB), key=ZERO_KEY)
        cases = {
            "first_byte": mask_frame(OP_TEXT, payload)[:1],
            "mid_16bit_length": mask_frame(OP_TEXT, payload)[:3],
            "mid_64bit_length": big[:6],
            "mid_mask_key": big[:12],
            "mid_payload_1mib": big[:300000],
            "after_first_fragment": mask_frame(OP_TEXT, b"part", fin=False)
            + mask_frame(OP_CONT, b"xx", fin=False)[:4],
            "mid_close_frame": close_frame(1000, b"bye")[:5],
        }
        for name, wire in cases.items():
            with self.subTest(cut=name):
                s, r = raw_upgrade(self.d)
                s.sendall(wire)
                time.sleep(0.05)
                reset(s)
        # a client that sent 8 MiB of echo requests, read nothing, and reset
        s, r = raw_upgrade(self.d, rcvbuf=65536)
        s.settimeout(0.5)
        frame = mask_frame(OP_BINARY, bytes(CHUNK), key=ZERO_KEY)
        try:
            for _ in range(128):
                s.sendall(frame)
        except (socket.timeout, BlockingIOError):
            pass  # websockd stopped reading: its queue for us is full
        reset(s)
        self.assertTrue(self.d.alive(), self.d.log())
        assert_serving(self, self.d)
        self.assert_fds_back()

    def test_half_closed_after_upgrade(self):
        """shutdown(SHUT_WR) right after the 101: websockd sees the EOF (a
        TCP close without a close frame, 1006 to the plugin) and closes."""
        s, r = raw_upgrade(self.d)
        try:
            s.shutdown(socket.SHUT_WR)
            data, eof = read_to_eof(s, 3)
            self.assertTrue(eof, "still open 3 s after our FIN")
            self.assertEqual(r.buf + data, b"")
        finally:
            s.close()

    def test_half_close_after_close_frame(self):
        """Our close frame, then our FIN: websockd still answers the close,
        then closes."""
        s, r = raw_upgrade(self.d)
        try:
            s.sendall(close_frame(1000, b"bye"))
            s.shutdown(socket.SHUT_WR)
            s.settimeout(3)
            self.assertEqual(r.close_frame(), (1000, "bye"))
            self.assertTrue(r.at_eof(3))
        finally:
            s.close()

    def test_half_close_after_message(self):
        """A message, then our FIN (no close frame): websockd closes the
        connection at once, without a close frame; the echo goes out if
        the socket took it before (what is still unsent when websockd
        drops the connection would be lost; since issue 11 it is
        written first: see docs/hostile.md, B7 and test_bigmsg.py)."""
        echoed = 0
        for _ in range(20):
            s, r = raw_upgrade(self.d)
            try:
                s.sendall(mask_frame(OP_TEXT, b"last words"))
                s.shutdown(socket.SHUT_WR)
                data, eof = read_to_eof(s, 3)
                self.assertTrue(eof, "still open 3 s after our FIN")
                frames, rest = parse_frames(r.buf + data)
                self.assertEqual(rest, b"")
                self.assertIn(frames, ([], [(True, OP_TEXT, b"last words")]))
                echoed += bool(frames)
            finally:
                s.close()
        print("\nhalf-close after a message: echoed %d of 20" % echoed)
        self.assertTrue(self.d.alive())

    def test_length_2p63(self):
        """A header announcing 2^63 bytes (the most significant bit must be
        0): 1002 at once, even with payload bytes streaming behind it."""
        head = bytes([0x82, 0x80 | 127]) + (1 << 63).to_bytes(8, "big") + b"\x01\x02\x03\x04"
        rss0 = self.d.rss()
        self.expect_close(head + bytes(256 * 1024), 1002)
        self.expect_close(head, 1002, path="/small")
        self.assertLess(self.d.rss() - rss0, RSS_BOUND)

    def test_length_2p63_minus_1(self):
        """2^63-1 bytes is a valid length, over every route's
        max_message_size: 1009 at the header, no payload awaited."""
        head = bytes([0x82, 0x80 | 127]) + ((1 << 63) - 1).to_bytes(8, "big") + b"\x01\x02\x03\x04"
        rss0 = self.d.rss()
        self.expect_close(head, 1009, path="/small")
        self.expect_close(head + bytes(256 * 1024), 1009, path="/echo")
        # text, and a fragment: the same
        self.expect_close(bytes([0x01, 0xFF]) + ((1 << 63) - 1).to_bytes(8, "big")
                          + b"\x01\x02\x03\x04", 1009, path="/small")
        self.assertLess(self.d.rss() - rss0, RSS_BOUND)


# ---------------------------------------------------------------------------
# A connection flood past --max-connections
# ---------------------------------------------------------------------------

MAX_CONNECTIONS = 50


class ConnectionFloodTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = start_class_daemon(
            {"echo": {"path": "/echo", "plugin": ECHO_SO}},
            args=COMMON_ARGS + ("--max-connections", str(MAX_CONNECTIONS)))

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def upgrade_many(self, n):
        """n upgrades sent at once; returns [(sock, status, headers, rest)]."""
        socks = [raw_connect(self.d) for _ in range(n)]
        for s in socks:
            s.sendall(upgrade_request("/echo"))
        out = []
        for s in socks:
            status, headers, rest = read_http_head(s)
            out.append((s, status, headers, rest))
        return out

    def open_connections(self):
        data, _ = exchange(self.d.port, b"GET /metrics HTTP/1.1\r\n\r\n")
        m = re.search(rb"^websockd_open_connections (\d+)$", data, re.M)
        self.assertIsNotNone(m, data[:2000])
        return int(m.group(1))

    def test_flood_past_max_connections(self):
        d = self.d
        base503 = d.log_count(r"503 \(max_connections reached\)")
        got = self.upgrade_many(2 * MAX_CONNECTIONS)
        try:
            statuses = [g[1] for g in got]
            self.assertEqual(statuses.count(101), MAX_CONNECTIONS, statuses)
            self.assertEqual(statuses.count(503), MAX_CONNECTIONS, statuses)
            for s, status, headers, rest in got:
                if status == 503:
                    self.assertEqual(headers.get("connection"), "close")
                    data, eof = read_to_eof(s, 3)
                    self.assertTrue(eof, "503 without EOF")
            # plain HTTP is not counted: /healthz still answers
            data, _ = exchange(d.port, b"GET /healthz HTTP/1.1\r\n\r\n")
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:80])
            self.assertEqual(self.open_connections(), MAX_CONNECTIONS)
            # the open ones still work
            for s, status, headers, rest in got:
                if status == 101:
                    s.sendall(mask_frame(OP_TEXT, b"alive"))
                    self.assertEqual(FrameReader(s, rest).frame(), (True, OP_TEXT, b"alive"))
        finally:
            for g in got:
                g[0].close()  # no close frame: an abrupt end (1006)
        self.assertEqual(d.log_count(r"503 \(max_connections reached\)") - base503,
                         MAX_CONNECTIONS)
        # the host recovers: once every slot is free, 50 new ones succeed
        deadline = time.monotonic() + 5
        while self.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.open_connections(), 0)
        got = self.upgrade_many(MAX_CONNECTIONS)
        try:
            self.assertEqual([g[1] for g in got], [101] * MAX_CONNECTIONS)
            status, _ = run(self.status_of_polite())
            self.assertEqual(status, 503)
            for s, _, _, rest in got:
                s.sendall(close_frame(1000))
            for s, _, _, rest in got:
                s.settimeout(5)
                self.assertEqual(FrameReader(s, rest).close_frame()[0], 1000)
        finally:
            for g in got:
                g[0].close()
        deadline = time.monotonic() + 5
        while self.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert_serving(self, d)

    async def status_of_polite(self):
        try:
            async with connect(self.d.url("/echo")):
                return 101, None
        except InvalidStatusCode as e:
            return e.status_code, e


# ---------------------------------------------------------------------------
# Clients that never read
# ---------------------------------------------------------------------------

class NonReaderTest(unittest.TestCase):
    """Backpressure against a client that never reads: echo (defaults:
    max_unsent 4M, pause_reading_at 1M) stops reading it, and nothing is
    lost; faulty's drip (max_unsent 1M, close) is closed with 1008 and cut
    after the close timeout. Memory stays bounded; others are served."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon({}, args=COMMON_ARGS)
        cls.d.routes = {
            "echo": {"path": "/echo", "plugin": ECHO_SO},
            "drip": {"path": "/drip", "plugin": FAULTY_SO, "max_unsent": "1M",
                     "on_max_unsent": "close",
                     "options": {"record": cls.d.rec("drip")}},
        }
        harness.start_quarantined(cls.d, ASAN_QUARANTINE_MB)

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.assertTrue(self.d.alive(), "websockd died:\n" + self.d.log())

    def served_meanwhile(self):
        answer, elapsed = run(echo_once(self.d.url("/echo"), "meanwhile"))
        self.assertEqual(answer, "meanwhile")
        self.assertLess(elapsed, SERVED_WITHIN)
        return elapsed

    def test_echo_client_that_never_reads(self):
        d = self.d
        s, r = raw_upgrade(d, rcvbuf=65536)
        frame = mask_frame(OP_BINARY, bytes(CHUNK), key=ZERO_KEY)
        rss0 = d.rss()
        s.setblocking(False)
        complete = pos = 0
        stuck_since = None
        t0 = time.monotonic()
        while True:
            try:
                n = s.send(frame[pos:])
            except BlockingIOError:
                now = time.monotonic()
                stuck_since = stuck_since or now
                if now - stuck_since > 1.0:
                    break
                time.sleep(0.01)
                continue
            stuck_since = None
            pos += n
            if pos == len(frame):
                complete += 1
                pos = 0
            self.assertLess(complete * CHUNK, 512 * MIB,
                            "websockd kept reading a client that never reads")
            self.assertLess(time.monotonic() - t0, 30)
        accepted = complete * len(frame) + pos
        growth = d.rss() - rss0
        elapsed = self.served_meanwhile()
        print("\nnon-reading echo client: %.1f MiB accepted before websockd "
              "stopped reading; RSS %+.1f MiB; others served in %.3f s"
              % (accepted / MIB, growth / MIB, elapsed))
        self.assertLess(growth, RSS_BOUND)
        # now read: every whole message comes back, in order, nothing lost
        s.setblocking(True)
        s.settimeout(OP_TIMEOUT)
        result = {}

        def reader():
            n = 0
            try:
                while True:
                    fin, op, payload = r.frame()
                    if op == OP_BINARY:
                        if len(payload) != CHUNK:
                            result["bad"] = len(payload)
                        n += 1
                    elif op == OP_CLOSE:
                        result["close"] = close_code_of(payload)
                        break
            except Exception as e:
                result["error"] = repr(e)
            result["n"] = n
        t = threading.Thread(target=reader)
        t.start()
        if pos:
            s.sendall(frame[pos:])
            complete += 1
        s.sendall(close_frame(1000))
        t.join(60)
        try:
            self.assertFalse(t.is_alive(), "reader still reading")
            self.assertEqual(result.get("error"), None, result)
            self.assertEqual(result.get("bad"), None, result)
            self.assertEqual(result["n"], complete)
            self.assertEqual(result.get("close"), 1000)
            self.assertTrue(r.at_eof(3))
        finally:
            s.close()

    def test_plugin_floods_client_that_never_reads(self):
        d = self.d
        rec = d.rec("drip")
        cut_before = d.log_count(r"no close frame from the peer in time")
        s, r = raw_upgrade(d, "/drip", rcvbuf=65536)
        try:
            s.settimeout(5)
            fin, op, payload = r.frame()
            self.assertEqual(op, OP_TEXT)
            self.assertTrue(payload.startswith(b"ready:"), payload)
            n = int(payload.decode().split(":")[1])
            rss0 = d.rss()
            s.sendall(mask_frame(OP_TEXT, b"drip:64"))
            lines = read_records(rec, 20, until=lambda ls: any(
                l.startswith("drip %d " % n) for l in ls))
            m = [l for l in lines if l.startswith("drip %d " % n)]
            self.assertTrue(m, "\n".join(lines))
            ok, efull, eclosed = map(int, m[0].split()[2:])
            self.assertEqual(efull, 0)
            self.assertGreater(ok, 0)
            self.assertGreater(eclosed, 0)
            self.assertLess(ok * CHUNK, 32 * MIB)
            lines = read_records(rec, 10, until=lambda ls: any(
                l.startswith("terminate %d " % n) for l in ls))
            term = [l for l in lines if l.startswith("terminate %d " % n)]
            self.assertEqual(len(term), 1, "\n".join(lines))
            self.assertTrue(term[0].startswith("terminate %d 4 1008 " % n), term[0])
            self.served_meanwhile()
            # our close frame is stuck behind the data we do not read: the
            # close timeout cuts the TCP connection
            deadline = time.monotonic() + CLOSE_TIMEOUT_MS / 1000 + SLACK + 3
            while (d.log_count(r"no close frame from the peer in time") <= cut_before
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            self.assertGreater(d.log_count(r"no close frame from the peer in time"),
                               cut_before, d.log())
            growth = d.rss() - rss0
            self.assertLess(growth, RSS_BOUND)
            data, eof = read_to_eof(s, 10)
            self.assertTrue(eof)
            self.assertLess(len(r.buf) + len(data), ok * (CHUNK + 10) + 4096)
        finally:
            s.close()


class ControlFloodTest(unittest.TestCase):
    """A client that sends pings and never reads the pongs."""

    # Regression: the pong that answers a ping once skipped max_unsent, and
    # reading never paused for a plugin without handle_control: 200 MiB of
    # pings grew RSS by 290 MiB.
    def test_ping_flood_from_client_that_never_reads(self):
        d = start_class_daemon({"echo": {"path": "/echo", "plugin": ECHO_SO}},
                               args=COMMON_ARGS, quarantine=True)
        with running(d):
            s, r = raw_upgrade(d, rcvbuf=65536)
            blob = mask_frame(OP_PING, b"p" * 125, key=ZERO_KEY) * 8000  # 1 MiB
            rss0 = d.rss()
            sent = pos = 0
            stuck = closed = False
            stuck_since = None
            s.setblocking(False)
            t0 = time.monotonic()
            try:
                while sent < 96 * MIB and time.monotonic() - t0 < 15:
                    try:
                        n = s.send(blob[pos:])
                    except BlockingIOError:
                        stuck_since = stuck_since or time.monotonic()
                        if time.monotonic() - stuck_since > 1.0:
                            stuck = True
                            break
                        time.sleep(0.01)
                        continue
                    stuck_since = None
                    sent += n
                    pos = (pos + n) % len(blob)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            growth = d.rss() - rss0
            reset(s)
            print("\nping flood: %.1f MiB of pings sent; stopped reading: %s; "
                  "closed: %s; RSS %+.1f MiB" % (sent / MIB, stuck, closed,
                                                 growth / MIB))
            assert_serving(self, d)
            self.assertTrue(stuck or closed, "websockd read %.0f MiB of pings from "
                            "a client that reads no pong" % (sent / MIB))
            self.assertLess(growth, RSS_BOUND)


class FdExhaustionTest(unittest.TestCase):
    """websockd out of file descriptors (its RLIMIT_NOFILE at 64)."""

    # Regression: on EMFILE the listener once stayed enabled and the main
    # thread spun on the pending connection (180,000 log lines); now it
    # stops accepting for 500 ms at a time and logs once per pause.
    def test_accept_when_out_of_fds(self):
        d = Daemon({"echo": {"path": "/echo", "plugin": ECHO_SO}},
                   args=("--close-timeout-ms", "1000",
                         "--handshake-timeout-ms", "500"))
        try:
            d.start()
            # websockd raises its soft limit to the hard one at start-up:
            # cap both from outside, once it runs
            resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
        except BaseException:
            d.__exit__(None, None, None)
            raise
        with running(d):
            baseline = settled_fds(d)
            socks = [socket.create_connection(("127.0.0.1", d.port), timeout=5)
                     for _ in range(100)]  # the backlog takes what websockd cannot
            try:
                lines0, cpu0, t0 = d.log_count(r"accept on fd"), cpu_seconds(d), \
                    time.monotonic()
                time.sleep(1.0)
                lines = d.log_count(r"accept on fd") - lines0
                cpu = cpu_seconds(d) - cpu0
                elapsed = time.monotonic() - t0
            finally:
                for s in socks:
                    s.close()
            # it recovers once fds are free
            self.assertLessEqual(d.wait_fds(baseline, timeout=5), baseline)
            assert_serving(self, d)
            print("\nout of fds: %d accept error lines and %.2f s CPU in %.2f s"
                  % (lines, cpu, elapsed))
            self.assertLess(lines, 20, "log flooded with accept errors")
            self.assertLess(cpu, 0.3 * elapsed, "websockd spins on accept()")


def settled_fds(d, settle=1.5):
    """websockd's fd count once the connections that just closed are gone
    (a closing connection lingers until the peer's EOF): the lowest count
    seen over `settle` seconds."""
    low = d.fds()
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(0.1)
        low = min(low, d.fds())
    return low


def cpu_seconds(d):
    with open("/proc/%d/stat" % d.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# Faulty plugins
# ---------------------------------------------------------------------------

def wait_line(path, regex, timeout=OP_TIMEOUT):
    rx = re.compile(regex)
    lines = read_records(path, timeout, until=lambda ls: any(rx.fullmatch(l) for l in ls))
    for line in lines:
        m = rx.fullmatch(line)
        if m:
            return m
    raise AssertionError("no record %r in:\n%s" % (regex, "\n".join(lines)))


class FaultyPluginTest(unittest.TestCase):
    """tests/plugins/faulty.c on several routes of one daemon, with the echo
    plugin on /echo: after each fault, /echo is served and websockd is up."""

    @classmethod
    def setUpClass(cls):
        d = cls.d = Daemon({}, args=COMMON_ARGS)

        def faulty(name, **keys):
            route = {"path": "/" + name, "plugin": FAULTY_SO}
            options = {"record": d.rec(name)}
            options.update(keys.pop("options", {}))
            route.update(keys)
            route["options"] = options
            d.routes[name] = route
        d.routes["echo"] = {"path": "/echo", "plugin": ECHO_SO}
        faulty("faulty")
        faulty("initfail", options={"mode": "initfail"})
        faulty("initbad", options={"mode": "initbad"})
        faulty("loadrefuse", options={"mode": "loadrefuse"})
        faulty("fclose", max_unsent="1M", on_max_unsent="close")
        faulty("fdrop", max_unsent="1M", on_max_unsent="drop")
        try:
            d.start()
        except BaseException:
            d.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.assertTrue(self.d.alive(), "websockd died:\n" + self.d.log())

    def tearDown(self):
        assert_serving(self, self.d)

    async def open_faulty(self, path="/faulty"):
        ws = await connect(self.d.url(path))
        ready = await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
        self.assertTrue(ready.startswith("ready:"), ready)
        return ws, int(ready.split(":")[1])

    async def closed_with(self, ws):
        """Messages until the close; returns (messages, code, reason)."""
        msgs = []
        try:
            while True:
                msgs.append(await asyncio.wait_for(ws.recv(), OP_TIMEOUT))
        except ConnectionClosed:
            pass
        return msgs, ws.close_code, ws.close_reason

    def test_load_refuses(self):
        d = self.d
        lines = [l for l in d.log().splitlines() if "load() refused" in l]
        self.assertEqual(len(lines), 1, d.log())
        self.assertIn("/loadrefuse", lines[0])
        self.assertIn("loadrefuse.conf", lines[0])
        self.assertEqual(read_records(d.rec("loadrefuse")), ["load refused"])
        status = None
        try:
            run(echo_once(d.url("/loadrefuse"), "x"))
        except InvalidStatusCode as e:
            status = e.status_code
        self.assertEqual(status, 404)

    def test_init_fails(self):
        async def go():
            async with connect(self.d.url("/initfail")) as ws:
                return await self.closed_with(ws)
        msgs, code, reason = run(go())
        self.assertEqual((msgs, code, reason), ([], 4000, "no"))
        rec = self.d.rec("initfail")
        n = int(wait_line(rec, r"initclose (\d+) 0").group(1))
        time.sleep(0.2)
        self.assertFalse([l for l in read_records(rec)
                          if l.startswith("terminate %d " % n)],
                         "terminate after init said STOP")

    def test_init_invalid_result(self):
        async def go():
            async with connect(self.d.url("/initbad")) as ws:
                return await self.closed_with(ws)
        msgs, code, reason = run(go())
        self.assertEqual((msgs, code), ([], 1011))
        self.d.wait_log(r"route /initbad: init returned 7 \(neither WEBSOCK_OK "
                        r"nor WEBSOCK_STOP\)")
        time.sleep(0.2)
        self.assertFalse([l for l in read_records(self.d.rec("initbad"))
                          if l.startswith("terminate ")])

    def test_push_after_stop(self):
        async def go():
            ws, n = await self.open_faulty()
            try:
                await ws.send("pushafterstop")
                return n, await self.closed_with(ws)
            finally:
                await ws.close()
        n, (msgs, code, reason) = run(go())
        # pushes before the STOP returned go out before the close frame
        self.assertEqual((msgs, code, reason), (["bye", "after close"], 1000, "bye"))
        rec = self.d.rec("faulty")
        wait_line(rec, r"afterclose %d 0 0" % n)
        wait_line(rec, r"terminate %d 0 1000 " % n)
        # inside terminate: push, close and send_after all WEBSOCK_ECLOSED
        wait_line(rec, r"termcalls %d -3 -3 -3" % n)

    def test_terminate_after_client_close_refuses_push(self):
        async def go():
            ws, n = await self.open_faulty()
            await ws.close(4001, "client leaves")
            return n
        n = run(go())
        rec = self.d.rec("faulty")
        wait_line(rec, r"terminate %d 1 4001 client leaves" % n)
        wait_line(rec, r"termcalls %d -3 -3 -3" % n)

    def test_send_to_gone_connection(self):
        rec = self.d.rec("faulty")

        async def go():
            gone, gone_n = await self.open_faulty()
            await gone.close()
            wait_line(rec, r"terminate %d 1 1000 " % gone_n)
            await asyncio.sleep(0.1)  # the slot is freed right after terminate
            ws, n = await self.open_faulty()
            try:
                await ws.send("sendgone")
                return gone_n, n, await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
            finally:
                await ws.close()
        gone_n, n, answer = run(go())
        self.assertEqual(answer, "sendgone:-6")
        wait_line(rec, r"sendgone %d %d -6" % (n, gone_n))

    def test_push_past_max_unsent_close(self):
        async def go():
            ws, n = await self.open_faulty("/fclose")
            try:
                await ws.send("flood")
                return n, await self.closed_with(ws)
            finally:
                await ws.close()
        n, (msgs, code, reason) = run(go())
        rec = self.d.rec("fclose")
        m = wait_line(rec, r"flood %d (\d+) (\d+) (\d+) (\d+)" % n)
        ok, efull, eclosed, other = map(int, m.groups())
        self.assertEqual((efull, other), (0, 0))
        self.assertEqual(ok + eclosed, 1024)
        self.assertGreater(ok, 0)
        # taken while the queue is within max_unsent (1M), the last one
        # passing it
        self.assertLessEqual((ok - 1) * CHUNK, MIB)
        # what was accepted arrives, then the 1008 (the result text was refused)
        self.assertEqual(len(msgs), ok)
        self.assertTrue(all(isinstance(x, bytes) and len(x) == CHUNK for x in msgs))
        self.assertEqual(code, 1008)
        wait_line(rec, r"terminate %d 4 1008 .*" % n)

    def test_push_past_max_unsent_drop(self):
        async def go():
            ws, n = await self.open_faulty("/fdrop")
            try:
                await ws.send("flood")
                await ws.send("still open?")
                msgs = []
                while True:
                    m = await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
                    msgs.append(m)
                    if isinstance(m, str):
                        break
                return n, msgs
            finally:
                await ws.close()
        n, msgs = run(go())
        m = wait_line(self.d.rec("fdrop"), r"flood %d (\d+) (\d+) (\d+) (\d+)" % n)
        ok, efull, eclosed, other = map(int, m.groups())
        self.assertEqual((eclosed, other), (0, 0))
        self.assertEqual(ok + efull, 1024)
        self.assertGreater(efull, 0)
        # pushes are taken while the queue is within max_unsent (1M): 16 of
        # 64 KiB; the result text came after the queue passed it and was
        # dropped too; the connection stays open and answers
        self.assertLessEqual((ok - 1) * CHUNK, MIB)
        self.assertEqual(len(msgs) - 1, ok)
        self.assertTrue(all(isinstance(x, bytes) for x in msgs[:-1]))
        self.assertEqual(msgs[-1], "still open?")

    def test_slow_callback_logged_other_worker_serves(self):
        d = self.d

        async def go():
            ws, n = await self.open_faulty()
            w_faulty = d.worker_of(ws.local_address[1], "/faulty")
            others = []
            try:
                other = None
                for _ in range(4):
                    e = await connect(d.url("/echo"))
                    others.append(e)
                    if d.worker_of(e.local_address[1], "/echo") != w_faulty:
                        other = e
                        break
                self.assertIsNotNone(other, "no echo client on the other worker")
                await ws.send("sleep:1000")
                await asyncio.sleep(0.1)
                t0 = time.monotonic()
                await other.send("not blocked")
                answer = await asyncio.wait_for(other.recv(), OP_TIMEOUT)
                rtt = time.monotonic() - t0
                slept = await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
                await ws.close()
                return answer, rtt, slept
            finally:
                for e in others:
                    await e.close()
        answer, rtt, slept = run(go())
        self.assertEqual((answer, slept), ("not blocked", "slept:1000"))
        self.assertLess(rtt, 0.6, "the other worker waited for the blocked one")
        m = d.wait_log(r"route /faulty: handle_in\(\) of plugin faulty took (\d+) ms")
        self.assertGreaterEqual(int(m.group(1)), 1000)


# ---------------------------------------------------------------------------
# A plugin that crashes (non-sanitizer build)
# ---------------------------------------------------------------------------

def plain_build():
    """(websockd, faulty.so, echo.so) of the non-sanitizer build in
    WSH_SOURCE_DIR/build; fails if it is not built."""
    src = os.environ.get("WSH_SOURCE_DIR") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = os.path.join(src, "build")
    files = (os.path.join(build, "host", "websockd"),
             os.path.join(build, "tests", "plugins", "faulty.so"),
             os.path.join(build, "plugins.d", "echo.so"))
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise AssertionError(
            "the crash test needs the non-sanitizer build (%s missing); build "
            "it with: cmake -S %s -B %s && cmake --build %s -j (scripts/test.sh "
            "does)" % (", ".join(missing), src, build, build))
    with open(files[0], "rb") as f:
        image = f.read()
    if b"libasan" in image or b"libtsan" in image:
        raise AssertionError("%s is a sanitizer build: its fatal-signal "
                             "line is off" % files[0])
    return files


class CrashTest(unittest.TestCase):
    def test_plugin_segfault_takes_the_process_down_with_one_line(self):
        """README, "When a plugin misbehaves": a crashing plugin takes the
        whole process down (clients see 1006), after one log line naming the
        plugin, the callback and the route."""
        websockd, faulty_so, echo_so = plain_build()
        core = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))  # no core file
        d = Daemon({"echo": {"path": "/echo", "plugin": echo_so},
                    "faulty": {"path": "/faulty", "plugin": faulty_so}},
                   binary=websockd, args=COMMON_ARGS, expect_exit=None)
        try:
            with d:
                async def go():
                    bystander = await connect(d.url("/echo"))
                    await bystander.send("before")
                    self.assertEqual(await asyncio.wait_for(bystander.recv(), 5),
                                     "before")
                    ws = await connect(d.url("/faulty"))
                    await asyncio.wait_for(ws.recv(), 5)
                    await ws.send("crash")
                    codes = []
                    for c in (ws, bystander):
                        try:
                            await asyncio.wait_for(c.recv(), 10)
                        except ConnectionClosed:
                            pass
                        codes.append(c.close_code)
                    return codes
                codes = run(go())
                d.proc.wait(10)
                self.assertEqual(d.proc.returncode, -11, d.log())
                self.assertEqual(codes, [1006, 1006])
                d.wait_log(r"fatal signal")
                time.sleep(0.1)
                lines = [l for l in d.log().splitlines() if "fatal signal" in l]
                self.assertEqual(len(lines), 1, d.log())
                self.assertRegex(lines[0],
                                 r"^websockd: fatal signal 11 in plugin faulty, "
                                 r"handle_in\(\) of route /faulty, conn \d+; exiting$")
        finally:
            resource.setrlimit(resource.RLIMIT_CORE, core)


if __name__ == "__main__":
    unittest.main()
