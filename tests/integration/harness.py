"""Starts the real websockd for integration tests and stops it by PID.

Run under Debian's /usr/bin/python3 (python3-websockets). ctest passes:
  WEBSOCKD             the websockd binary
  WSH_TEST_PLUGIN_DIR  the built test plugins (recorder.so, bad_abi.so, ...)
  WSH_PLUGINS_D        the staged default plugins.d (echo.so, ...)

    with Daemon({"echo": {"path": "/echo", "plugin": ECHO_SO}}) as d:
        ... connect to d.url("/echo") ...
    # on exit: SIGTERM, wait, assert exit status 0 and no sanitizer report
"""

import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

WEBSOCKD = os.environ.get("WEBSOCKD", "build/host/websockd")
TEST_PLUGIN_DIR = os.environ.get("WSH_TEST_PLUGIN_DIR", "build/tests/plugins")
PLUGINS_D = os.environ.get("WSH_PLUGINS_D", "build/plugins.d")
ECHO_SO = os.path.join(PLUGINS_D, "echo.so")
RECORDER_SO = os.path.join(TEST_PLUGIN_DIR, "recorder.so")

OP_TIMEOUT = 10.0    # one client operation
TEST_TIMEOUT = 60.0  # one whole client coroutine

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "WARNING: ThreadSanitizer")


def test_plugin(name):
    return os.path.join(TEST_PLUGIN_DIR, name + ".so")


def write_route(dirname, name, route):
    """Writes dirname/name.conf from a dict; 'options' is a dict section."""
    lines = []
    for key, value in route.items():
        if key != "options":
            lines.append("%s = %s" % (key, value))
    if route.get("options"):
        lines.append("[options]")
        for key, value in route["options"].items():
            lines.append("%s = %s" % (key, value))
    with open(os.path.join(dirname, name + ".conf"), "w") as f:
        f.write("\n".join(lines) + "\n")


class Daemon:
    """One websockd process on an ephemeral loopback port."""

    def __init__(self, routes, workers=2, args=(), start_timeout=20.0,
                 expect_exit=0):
        self.routes = routes
        self.workers = workers
        self.args = list(args)
        self.start_timeout = start_timeout
        self.expect_exit = expect_exit
        self.tmp = tempfile.mkdtemp(prefix="websockd-test-")
        self.plugins_d = os.path.join(self.tmp, "plugins.d")
        os.mkdir(self.plugins_d)
        self.log_lines = []
        self._log_lock = threading.Lock()
        self.proc = None
        self.port = None

    # -- files --------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_routes(self):
        for name, route in self.routes.items():
            write_route(self.plugins_d, name, route)

    # -- process ------------------------------------------------------------
    def command(self):
        """The command line (a subclass may replace it)."""
        # debug: tests read the per-connection lines (101 with the conn id)
        return [WEBSOCKD, "--listen", "127.0.0.1:0", "--plugins", self.plugins_d,
                "--workers", str(self.workers), "--log-level", "debug"] + self.args

    def start(self):
        self.write_routes()
        cmd = self.command()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            m = self.find_log(r"listening on 127\.0\.0\.1:(\d+)")
            if m and self.find_log(r"websockd ready"):
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise AssertionError("websockd did not start:\n" + self.log())

    def _read_log(self):
        for line in self.proc.stderr:
            with self._log_lock:
                self.log_lines.append(line.rstrip("\n"))

    def _read_out(self):
        for _ in self.proc.stdout:
            pass

    def log(self):
        with self._log_lock:
            return "\n".join(self.log_lines)

    def find_log(self, pattern):
        return re.search(pattern, self.log())

    def wait_log(self, pattern, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.find_log(pattern)
            if m:
                return m
            time.sleep(0.02)
        raise AssertionError("no log line matching %r in:\n%s" % (pattern, self.log()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20.0):
        """SIGTERM, wait, and return the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("websockd did not exit after SIGTERM:\n" + self.log())
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def check_clean(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                raise AssertionError("sanitizer report from websockd:\n" + text)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            status = self.stop()
            if exc_type is None:
                self.check_clean()
                if self.expect_exit is not None and status != self.expect_exit:
                    raise AssertionError("websockd exited %s:\n%s" % (status, self.log()))
        finally:
            self.kill()
            self.close_pipes()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def close_pipes(self):
        """Once the process is gone: join the log readers, close the pipes."""
        for name in ("_reader", "_out_reader"):
            t = getattr(self, name, None)
            if t is not None:
                t.join(timeout=5)
        if self.proc is not None:
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None and not f.closed:
                    try:
                        f.close()
                    except Exception:
                        pass

    # -- clients ------------------------------------------------------------
    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def connect_raw(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.settimeout(timeout)
        return s



def start_quarantined(d, quarantine_mb):
    """Starts Daemon d with ASan's quarantine (256 MB by default, and counted
    in RSS) cut to quarantine_mb, so that RSS shows what websockd holds; the
    environment is restored; d is stopped if it does not start."""
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = ":".join(
        x for x in (saved, "quarantine_size_mb=%d" % quarantine_mb) if x)
    try:
        d.start()
    except BaseException:
        d.__exit__(None, None, None)
        raise
    finally:
        if saved is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = saved
    return d


def metrics_text(port, timeout=10.0):
    """GET /metrics: the page's text (an AssertionError unless 200)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise AssertionError("GET /metrics: %d %s" % (resp.status, body))
        return body
    finally:
        conn.close()


LABEL_RX = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def generations(text, route=None):
    """websockd_connections samples: a list of dicts (labels + 'conns')."""
    out = []
    for line in text.splitlines():
        if line.startswith("websockd_connections{"):
            labels, _, value = line.rpartition("} ")
            g = dict(LABEL_RX.findall(labels))
            g["conns"] = int(value)
            if route is None or g["route"] == route:
                out.append(g)
    return out

def read_records(path, timeout=5.0, until=None):
    """Lines the recorder plugin wrote; waits until `until` (a predicate on the
    list of lines) holds or the timeout passes."""
    deadline = time.time() + timeout
    while True:
        try:
            with open(path) as f:
                lines = [l.rstrip("\n") for l in f]
        except FileNotFoundError:
            lines = []
        if until is None or until(lines) or time.time() > deadline:
            return lines
        time.sleep(0.02)


# -- raw WebSocket bytes (for what a polite client never sends) -------------

UPGRADE_TEMPLATE = ("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n{extra}\r\n")


def upgrade_request(path, extra=""):
    return UPGRADE_TEMPLATE.format(path=path, extra=extra).encode()


def read_http_head(sock, limit=65536):
    """Reads up to the blank line; returns (status, headers dict, rest bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise AssertionError("response head too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def mask_frame(opcode, payload, fin=True, rsv=0, mask=True, key=b"\x37\xfa\x21\x3d",
               length=None):
    """A client frame; `length` overrides the encoded length (for lies)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    head = bytes([b0])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


class FrameReader:
    """Reads server frames (unmasked) from a raw socket."""

    def __init__(self, sock, initial=b""):
        self.sock = sock
        self.buf = initial

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed with %d of %d bytes" % (len(self.buf), n))
            self.buf += chunk

    def frame(self):
        """Returns (fin, opcode, payload)."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("server frame is masked")
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n = int.from_bytes(self.buf[2:4], "big")
            off = 4
        elif n == 127:
            self._need(10)
            n = int.from_bytes(self.buf[2:10], "big")
            off = 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def close_frame(self):
        """Skips data frames until a close; returns (code or None, reason)."""
        while True:
            fin, op, payload = self.frame()
            if op == 0x8:
                if len(payload) >= 2:
                    return int.from_bytes(payload[:2], "big"), payload[2:].decode()
                return None, ""

    def at_eof(self, timeout=5.0):
        """True if the server closes the TCP connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def open_raw(daemon, path, extra=""):
    """Raw socket with the upgrade done; returns (sock, FrameReader)."""
    s = daemon.connect_raw()
    s.sendall(upgrade_request(path, extra))
    status, headers, rest = read_http_head(s)
    if status != 101:
        raise AssertionError("upgrade to %s got %d" % (path, status))
    return s, FrameReader(s, rest)


# -- python3-websockets clients ----------------------------------------------

def client_helpers(test_timeout=TEST_TIMEOUT, op_timeout=OP_TIMEOUT,
                   close_timeout=5):
    """run, connect, recv and ask with one test file's deadlines:

        run, connect, recv, ask = harness.client_helpers(test_timeout=90)

    run(coro) runs a client coroutine with an overall deadline; connect(url,
    **kw) is websockets.connect without a size limit or keepalive pings;
    recv(ws) waits at most op_timeout; ask(ws, msg) sends and returns the
    answer."""
    import websockets  # python3-websockets: only the client tests need it

    def run(coro, timeout=test_timeout):
        return asyncio.run(asyncio.wait_for(coro, timeout))

    def connect(url, **kw):
        kw.setdefault("max_size", None)
        kw.setdefault("open_timeout", op_timeout)
        kw.setdefault("close_timeout", close_timeout)
        kw.setdefault("ping_interval", None)
        return websockets.connect(url, **kw)

    async def recv(ws, timeout=op_timeout):
        return await asyncio.wait_for(ws.recv(), timeout)

    async def ask(ws, msg):
        await ws.send(msg)
        return await recv(ws)

    return run, connect, recv, ask

