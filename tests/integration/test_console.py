"""The browser pages: the dev console (--devconsole) and /status.

In a real browser: Debian's Chromium, headless, driven by playwright-core
(browser_console.mjs next to this file; scripts/test.sh installs
playwright-core into tests/integration/node_modules without any browser
download). Its screenshots land in $WSH_BINARY_DIR/artifacts/. Over raw
sockets: who gets which page, the headers, and that without the flags
nothing changes. Run by ctest as integ_console.
"""

import json
import os
import shutil
import signal
import socket
import tempfile
import subprocess
import unittest

import harness
from harness import ECHO_SO, open_raw

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "browser_console.mjs")
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(os.environ.get("WSH_BINARY_DIR", "build"),
                         "artifacts")
NODE_TIMEOUT = 120  # the script bounds itself at 90 s
ROUTES = {"echo": {"path": "/echo", "plugin": ECHO_SO},
          "other": {"path": "/other", "plugin": ECHO_SO}}

Daemon = harness.Daemon


def http(d, method, path, host="127.0.0.1", port=None, extra=""):
    """One plain HTTP request; returns (status, headers, body bytes)."""
    s = socket.create_connection((host, port or d.port), timeout=10)
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
                   % (method, path, host, extra)).encode())
        status, headers, rest = harness.read_http_head(s)
        body = rest
        while True:  # the host closes after a plain answer
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body
    finally:
        s.close()


def browser_command():
    """[node, script] if Chromium and playwright-core are there, or raises
    with what to install."""
    node = shutil.which("node") or shutil.which("nodejs")
    missing = []
    if not node:
        missing.append("node (scripts/setup.sh --test)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("Debian's chromium (scripts/setup.sh --test)")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        missing.append("playwright-core in tests/integration/node_modules "
                       "(scripts/test.sh installs it)")
    if missing:
        raise AssertionError("cannot run the browser test: missing " +
                             ", ".join(missing))
    return [node, SCRIPT]


class BrowserTest(unittest.TestCase):
    def test_console_and_status_page_in_chromium(self):
        cmd = browser_command()
        with Daemon(ROUTES, args=["--devconsole"]) as d:
            # a draining generation with one connection, and two reloads
            # (one failed) for the status page to show
            held, _ = open_raw(d, "/echo")
            try:
                harness.write_route(d.plugins_d, "echo", dict(
                    ROUTES["echo"], idle_timeout_ms=600000))
                d.signal(signal.SIGHUP)
                d.wait_log(r"reload \(SIGHUP\) ok: changed /echo")
                harness.write_route(d.plugins_d, "broken",
                                    {"path": "/broken"})
                d.signal(signal.SIGHUP)
                d.wait_log(r"reload \(SIGHUP\) failed")
                os.remove(os.path.join(d.plugins_d, "broken.conf"))
                for name in ("console.png", "status.png"):
                    if os.path.exists(os.path.join(ARTIFACTS, name)):
                        os.remove(os.path.join(ARTIFACTS, name))
                p = subprocess.run(cmd + [str(d.port), ARTIFACTS],
                                   capture_output=True, text=True,
                                   timeout=NODE_TIMEOUT, cwd=HERE,
                                   env=dict(os.environ,
                                            PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
            finally:
                held.close()
        self.assertEqual(p.returncode, 0,
                         "browser_console.mjs failed:\n%s\n%s\nwebsockd:\n%s"
                         % (p.stdout, p.stderr, d.log()))
        seen = json.loads(p.stdout.strip().splitlines()[-1])
        # the console: the echo of each message, the close code
        self.assertEqual(seen["console"]["closed"], "4001 done here")
        # the status page: every route, the draining generation, both reloads
        routes = sorted(map(tuple, seen["status"]["routes"]))
        self.assertEqual(routes, [("/echo", "current"), ("/echo", "draining"),
                                  ("/other", "current")])
        self.assertEqual(seen["status"]["reloads"], ["failed", "ok"])
        self.assertNotEqual(seen["status"]["before"], seen["status"]["after"])
        # only this host was asked for anything
        prefix = ("http://127.0.0.1:%d/" % d.port,
                  "ws://127.0.0.1:%d/" % d.port)
        for url in seen["requests"] + seen["websockets"]:
            self.assertTrue(url.startswith(prefix), url)
        # the daemon saw the browser's session: its close code answered
        self.assertRegex(d.log(), r"GET /status: 200")
        for name in ("console.png", "status.png"):
            with open(os.path.join(ARTIFACTS, name), "rb") as f:
                head = f.read(8)
            self.assertEqual(head, b"\x89PNG\r\n\x1a\n", name)
            self.assertGreater(os.path.getsize(os.path.join(ARTIFACTS, name)),
                               10000, name)


class PlainHttpTest(unittest.TestCase):
    def test_without_the_flags_nothing_changes(self):
        with Daemon(ROUTES) as d:
            status, headers, body = http(d, "GET", "/echo")
            self.assertEqual(status, 426)
            self.assertEqual(headers.get("sec-websocket-version"), "13")
            self.assertEqual(http(d, "GET", "/status")[0], 404)

    def test_console_page_and_its_headers(self):
        with Daemon(ROUTES, args=["--devconsole"]) as d:
            status, headers, body = http(d, "GET", "/echo")
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
            self.assertEqual(headers["cache-control"], "no-store")
            self.assertEqual(headers["x-content-type-options"], "nosniff")
            csp = headers["content-security-policy"]
            for part in ("default-src 'none'", "connect-src 'self'",
                         "frame-ancestors 'none'"):
                self.assertIn(part, csp)
            self.assertNotIn("unsafe", csp)
            self.assertIn(b"websockd console", body)
            self.assertEqual(int(headers["content-length"]), len(body))
            # nothing from elsewhere: no URL in the page but its own
            self.assertNotIn(b"http://", body)
            self.assertNotIn(b"https://", body)
            self.assertNotIn(b"src=", body)
            # HEAD: the same head, no body; another method: 405 as before
            status, headers, body = http(d, "HEAD", "/echo")
            self.assertEqual((status, body), (200, b""))
            self.assertEqual(http(d, "POST", "/echo")[0], 405)
            # every route has its page; others are still 404
            self.assertEqual(http(d, "GET", "/other")[0], 200)
            self.assertEqual(http(d, "GET", "/nosuch")[0], 404)
            # --devconsole serves /status too
            status, headers, body = http(d, "GET", "/status")
            self.assertEqual(status, 200)
            self.assertIn(b"websockd status", body)
            self.assertEqual(http(d, "POST", "/status")[0], 405)
            # and the upgrade itself is untouched
            s, reader = open_raw(d, "/echo")
            s.sendall(harness.mask_frame(0x1, b"still echoes"))
            self.assertEqual(reader.frame(), (True, 0x1, b"still echoes"))
            s.close()

    def test_status_page_alone(self):
        with Daemon(ROUTES, args=["--status-page"]) as d:
            self.assertEqual(http(d, "GET", "/status")[0], 200)
            self.assertEqual(http(d, "GET", "/echo")[0], 426)

    def test_addresses_not_allowed_get_what_they_got_before(self):
        # 127.0.0.1 is outside these ranges: /status refuses it with 403 (as
        # nginx's deny), a route answers 426 as without the console
        allow = "10.0.0.0/8, 192.168.1.7, fd00::/8"
        with Daemon(ROUTES, args=["--devconsole", "--console-allow", allow]) as d:
            status, _, body = http(d, "GET", "/status")
            self.assertEqual((status, body), (403, b"Forbidden.\n"))
            self.assertEqual(http(d, "GET", "/echo")[0], 426)
            d.wait_log(r"GET /status: 403 \(status page: address not in "
                       r"console_allow\)")
        with Daemon(ROUTES, args=["--devconsole", "--console-allow",
                                  "127.0.0.2/32, 127.0.1.0/24"]) as d:
            self.assertEqual(http(d, "GET", "/status")[0], 403)
        with Daemon(ROUTES, args=["--devconsole", "--console-allow",
                                  "127.0.0.1"]) as d:
            self.assertEqual(http(d, "GET", "/status")[0], 200)
            # what a proxy on loopback relays is not loopback's to see
            for header in ("X-Forwarded-For: 127.0.0.1",
                           "Forwarded: for=127.0.0.1", "X-Real-IP: 127.0.0.1"):
                self.assertEqual(http(d, "GET", "/status",
                                      extra=header + "\r\n")[0], 403, header)
                self.assertEqual(http(d, "GET", "/echo",
                                      extra=header + "\r\n")[0], 426, header)

    def test_ipv6_loopback_is_allowed_by_default_and_can_be_refused(self):
        for allow, want in ((None, 200), ("127.0.0.0/8", 403),
                            ("::/0", 200)):
            args = ["--devconsole", "--listen", "[::1]:0"]
            if allow:
                args += ["--console-allow", allow]
            with Daemon(ROUTES, args=args) as d:
                port = int(d.wait_log(r"listening on \[::1\]:(\d+)").group(1))
                self.assertEqual(http(d, "GET", "/status", host="::1",
                                      port=port)[0], want, allow)

    def test_bad_settings_are_refused_at_start(self):
        for args, says in (
                (["--console-allow", "300.1.1.1"], "console_allow"),
                (["--console-allow", "10.0.0.0/33"], "console_allow"),
                (["--console-allow", "localhost"], "console_allow")):
            p = subprocess.run([harness.WEBSOCKD, "-t"] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(says, p.stderr)
        tmp = tempfile.mkdtemp(prefix="websockd-console-")
        try:
            conf = os.path.join(tmp, "host.conf")
            for text, ok in (("devconsole = maybe", False),
                             ("status_page = 2", False),
                             ("devconsole = on\nstatus_page = off\n"
                              "console_allow = 127.0.0.1, ::1", True)):
                with open(conf, "w") as f:
                    f.write("[server]\n%s\n" % text)
                p = subprocess.run([harness.WEBSOCKD, "-t", "--config", conf,
                                    "--plugins", tmp], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode == 2, not ok, (text, p.stderr))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
