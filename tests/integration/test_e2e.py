"""End-to-end tests: the real websockd, Debian's python3-websockets as the
client (and raw sockets for what a polite client never sends).

Run by ctest as integ_e2e (tests.cmake sets WEBSOCKD, WSH_TEST_PLUGIN_DIR,
WSH_PLUGINS_D). Every socket operation and every client coroutine is bounded
by a timeout; every websockd is stopped by PID (harness.Daemon).
"""

import asyncio
import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from websockets.exceptions import ConnectionClosed, InvalidStatusCode

import harness
from harness import (ECHO_SO, RECORDER_SO, WEBSOCKD, FrameReader,
                     mask_frame, read_http_head, read_records, test_plugin,
                     upgrade_request, write_route)

OP_TIMEOUT = 10.0  # one client operation
TEST_TIMEOUT = 60.0  # one whole client coroutine


# harness.Daemon joins its log readers and closes its pipes itself.
Daemon = harness.Daemon

run, connect, recv, _ = harness.client_helpers(TEST_TIMEOUT, OP_TIMEOUT)


async def handshake_status(url, **kw):
    """The status websockets sees: 101 on success, else the refusal's status
    (the exception is returned too, for its headers)."""
    try:
        async with connect(url, **kw) as ws:
            return 101, ws
    except InvalidStatusCode as e:
        return e.status_code, e


def http_exchange(port, request, timeout=OP_TIMEOUT):
    """Sends raw bytes, reads the whole response until the server closes.
    Returns (status, headers (lower-case names), body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.settimeout(timeout)
        s.sendall(request)
        status, headers, rest = read_http_head(s)
        body = rest
        want = int(headers.get("content-length", "-1"))
        deadline = time.time() + timeout
        while (want < 0 or len(body) < want) and time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            body += chunk
        return status, headers, body
    finally:
        s.close()


def raw_request(path="/echo", version="13", key="dGhlIHNhbXBsZSBub25jZQ==",
                extra=""):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1",
             "Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


class SharedDaemon(unittest.TestCase):
    """One websockd for the whole class (set ROUTES and ARGS)."""

    ROUTES = {}
    ARGS = ()
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon({k: dict(v) for k, v in cls.ROUTES.items()},
                       workers=cls.WORKERS, args=cls.ARGS)
        for route in cls.d.routes.values():
            if route.get("options", {}).get("record") == "@":
                route["options"] = dict(route["options"])
                route["options"]["record"] = cls.d.path(route["path"].strip("/") + ".rec")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.assertIsNone(self.d.proc.poll(), "websockd died:\n" + self.d.log())

    def url(self, path):
        return self.d.url(path)


# ---------------------------------------------------------------------------
# Messages, control frames, handshake answers (one shared daemon)
# ---------------------------------------------------------------------------

class EchoTest(SharedDaemon):
    ROUTES = {
        "echo": {"path": "/echo", "plugin": ECHO_SO},
        "sub": {"path": "/sub", "plugin": ECHO_SO, "subprotocols": "b, a"},
        "origin": {"path": "/origin", "plugin": ECHO_SO,
                   "origins": "http://good.example"},
        "rec": {"path": "/rec", "plugin": RECORDER_SO,
                "options": {"record": "@", "colour": "green"}},
    }
    ARGS = ("--max-header-size", "4096")

    # -- messages -----------------------------------------------------------
    def echo(self, *messages, path="/echo"):
        async def go():
            out = []
            async with connect(self.url(path)) as ws:
                for m in messages:
                    await ws.send(m)
                    out.append(await recv(ws))
            return out
        return run(go())

    def test_text(self):
        msg = "h\u00e9llo w\u00f6rld \u2603 \U0001F600"
        self.assertEqual(self.echo(msg), [msg])

    def test_binary(self):
        msg = bytes(range(256)) * 3
        got = self.echo(msg)
        self.assertEqual(got, [msg])
        self.assertIsInstance(got[0], bytes)

    def test_empty_text_and_binary(self):
        got = self.echo("", b"")
        self.assertEqual(got, ["", b""])
        self.assertIsInstance(got[0], str)
        self.assertIsInstance(got[1], bytes)

    def test_one_mib(self):
        # exactly 1 MiB: the default max_message_size ("over it: 1009")
        text = ("0123456789abcdef" * 65536)
        binary = os.urandom(1 << 20)
        self.assertEqual(len(text), 1 << 20)
        got = self.echo(text, binary)
        self.assertEqual(got[0], text)
        self.assertEqual(got[1], binary)

    def test_over_default_limit_closes_1009(self):
        async def go():
            async with connect(self.url("/echo")) as ws:
                await ws.send(b"x" * ((1 << 20) + 1))
                with self.assertRaises(ConnectionClosed):
                    await recv(ws)
                await asyncio.wait_for(ws.wait_closed(), OP_TIMEOUT)
                return ws.close_code
        self.assertEqual(run(go()), 1009)

    def test_thousand_in_order(self):
        n = 1000

        async def go():
            async with connect(self.url("/echo")) as ws:
                async def sender():
                    for i in range(n):
                        await ws.send("message %d" % i)

                async def receiver():
                    return [await recv(ws) for _ in range(n)]
                _, got = await asyncio.gather(sender(), receiver())
                return got
        self.assertEqual(run(go()), ["message %d" % i for i in range(n)])

    def test_fragmented_by_client(self):
        async def go():
            async with connect(self.url("/echo")) as ws:
                await ws.send(["frag-one ", "frag-two ", "", "fr\u00e4g-three"])
                text = await recv(ws)
                await ws.send([b"\x00\x01", b"\x02", b"\x03\x04\x05"])
                binary = await recv(ws)
                return text, binary
        text, binary = run(go())
        self.assertEqual(text, "frag-one frag-two fr\u00e4g-three")
        self.assertEqual(binary, b"\x00\x01\x02\x03\x04\x05")

    def test_ping_answered_with_pong(self):
        async def go():
            async with connect(self.url("/echo")) as ws:
                waiter = await ws.ping(b"are you there")
                await asyncio.wait_for(waiter, OP_TIMEOUT)
                waiter = await ws.ping()
                await asyncio.wait_for(waiter, OP_TIMEOUT)
                await ws.send("still open")
                return await recv(ws)
        self.assertEqual(run(go()), "still open")

    # -- subprotocols ------------------------------------------------------
    def test_ping_seen_by_handle_control(self):
        record = self.d.routes["rec"]["options"]["record"]

        async def go():
            async with connect(self.url("/rec?ping")) as ws:
                self.assertEqual(await recv(ws), "hello")
                waiter = await ws.ping(b"thirteen byte")
                await asyncio.wait_for(waiter, OP_TIMEOUT)
        run(go())
        lines = read_records(record, until=lambda l: any(
            re.fullmatch(r"control \d+ ping 13", x) for x in l))
        self.assertTrue([x for x in lines if re.fullmatch(r"control \d+ ping 13", x)],
                        "\n".join(lines))

    def test_subprotocol_route_order_wins(self):
        async def go():
            async with connect(self.url("/sub"), subprotocols=["a", "b"]) as ws:
                return ws.subprotocol
        self.assertEqual(run(go()), "b")

    def test_subprotocol_none_in_common(self):
        async def go():
            async with connect(self.url("/sub"), subprotocols=["c"]) as ws:
                await ws.send("x")
                return ws.subprotocol, ws.response_headers.get("Sec-WebSocket-Protocol"), await recv(ws)
        self.assertEqual(run(go()), (None, None, "x"))

    def test_subprotocol_picked_by_plugin(self):
        async def go():
            async with connect(self.url("/rec?proto=a"), subprotocols=["b", "a"]) as ws:
                hello = await recv(ws)
                await ws.send("subprotocol")
                seen = await recv(ws)
                return ws.subprotocol, hello, seen, ws.response_headers.get("X-Recorder")
        self.assertEqual(run(go()), ("a", "hello", "a", "yes"))

    def test_subprotocol_plugin_pick_not_offered_is_400(self):
        status, _ = run(handshake_status(self.url("/rec?proto=zzz"), subprotocols=["a"]))
        self.assertEqual(status, 400)

    # -- origins -----------------------------------------------------------
    def test_origin_allowed(self):
        async def go():
            async with connect(self.url("/origin"), origin="http://good.example") as ws:
                await ws.send("from good")
                return await recv(ws)
        self.assertEqual(run(go()), "from good")

    def test_origin_refused_403(self):
        status, _ = run(handshake_status(self.url("/origin"), origin="http://evil.example"))
        self.assertEqual(status, 403)

    def test_no_origin_allowed(self):
        async def go():
            async with connect(self.url("/origin")) as ws:
                await ws.send("no origin")
                return await recv(ws)
        self.assertEqual(run(go()), "no origin")

    # -- refusals and plain HTTP --------------------------------------------
    def test_plugin_refuses_401(self):
        status, e = run(handshake_status(self.url("/rec"),
                                         extra_headers={"X-Test-Refuse": "1"}))
        self.assertEqual(status, 401)
        self.assertEqual(e.headers.get("WWW-Authenticate"), 'Bearer realm="test"')

    def test_plugin_refuses_401_raw(self):
        status, headers, body = http_exchange(
            self.d.port, upgrade_request("/rec", "X-Test-Refuse: 1\r\n"))
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("www-authenticate"), 'Bearer realm="test"')
        self.assertEqual(body, b"go away\n")

    def test_unknown_path_404(self):
        status, _ = run(handshake_status(self.url("/nowhere")))
        self.assertEqual(status, 404)
        status, _, _ = http_exchange(self.d.port, raw_request("/nowhere"))
        self.assertEqual(status, 404)

    def test_version_8_is_426(self):
        status, headers, _ = http_exchange(self.d.port, raw_request(version="8"))
        self.assertEqual(status, 426)
        self.assertEqual(headers.get("sec-websocket-version"), "13")

    def test_missing_key_is_400(self):
        status, _, _ = http_exchange(self.d.port, raw_request(key=None))
        self.assertEqual(status, 400)

    def test_header_over_limit_is_431(self):
        big = "X-Big: " + "a" * 5000 + "\r\n"
        status, _, _ = http_exchange(self.d.port, raw_request(extra=big))
        self.assertEqual(status, 431)
        status, _ = run(handshake_status(self.url("/echo"),
                                         extra_headers={"X-Big": "b" * 5000}))
        self.assertEqual(status, 431)
        # and a head just under the limit still upgrades
        status, _ = run(handshake_status(self.url("/echo"),
                                         extra_headers={"X-Big": "c" * 3000}))
        self.assertEqual(status, 101)

    def test_healthz(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=OP_TIMEOUT)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.read(), b"ok\n")
        finally:
            conn.close()
        status, _, body = http_exchange(
            self.d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((status, body), (200, b"ok\n"))

    def test_methods_on_known_paths(self):
        """GET and HEAD are served; another method on a known path is 405
        with Allow; an unknown path stays 404 whatever the method."""
        def ask(method, path):
            return http_exchange(self.d.port, (
                "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                % (method, path)).encode())
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            for path in ("/healthz", "/metrics", "/echo"):
                status, headers, _ = ask(method, path)
                self.assertEqual(status, 405, (method, path))
                self.assertEqual(headers.get("allow"), "GET, HEAD",
                                 (method, path))
            status, _, _ = ask(method, "/no-such-path")
            self.assertEqual(status, 404, method)
        # HEAD: the GET's head, no body
        status, headers, body = ask("HEAD", "/healthz")
        self.assertEqual((status, headers.get("content-length"), body),
                         (200, "3", b""))
        status, headers, body = ask("HEAD", "/echo")
        self.assertEqual((status, body), (426, b""))
        self.assertEqual(headers.get("sec-websocket-version"), "13")
        status, _, body = ask("GET", "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        # the refusals are counted by status
        status, _, text = ask("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertRegex(text.decode(), r'status="405"[^\n]* (1[5-9]|[2-9]\d)\n')

    def test_frame_in_same_packet_as_upgrade(self):
        s = self.d.connect_raw(timeout=OP_TIMEOUT)
        try:
            s.sendall(upgrade_request("/echo") + mask_frame(0x1, b"early bird")
                      + mask_frame(0x2, b"\x01\x02"))
            status, _, rest = read_http_head(s)
            self.assertEqual(status, 101)
            r = FrameReader(s, rest)
            self.assertEqual(r.frame(), (True, 0x1, b"early bird"))
            self.assertEqual(r.frame(), (True, 0x2, b"\x01\x02"))
            s.sendall(mask_frame(0x8, (1000).to_bytes(2, "big")))
            self.assertEqual(r.close_frame(), (1000, ""))
            self.assertTrue(r.at_eof(OP_TIMEOUT))
        finally:
            s.close()

    # -- recorder callbacks ------------------------------------------------
    def test_recorder_messages(self):
        async def go():
            async with connect(self.url("/rec?x=1")) as ws:
                out = [await recv(ws)]
                for m in ("echo:abc", "option:colour", "option:nope", "info",
                          "subprotocol", "push3", "anything"):
                    await ws.send(m)
                for _ in range(9):
                    out.append(await recv(ws))
                await ws.send(b"\x00bin")
                out.append(await recv(ws))
                return out
        self.assertEqual(run(go()), ["hello", "abc", "green", "none", "/rec",
                                     "none", "one", "two", "three", "anything",
                                     b"\x00bin"])


# ---------------------------------------------------------------------------
# The lifecycle: init / terminate exactly once, with the right reason
# ---------------------------------------------------------------------------

def parse_records(lines):
    """[(verb, id or None, rest list)] from the recorder's lines."""
    out = []
    for line in lines:
        verb, _, rest = line.partition(" ")
        if verb in ("init", "in", "control", "terminate", "handle_info",
                    "pushfail", "closefail"):
            parts = rest.split(" ", 3 if verb == "terminate" else 2)
            out.append((verb, int(parts[0]), parts[1:]))
        else:
            out.append((verb, None, [rest] if rest else []))
    return out


class LifecycleTest(unittest.TestCase):
    """22 connections ended in every way the spec names (plus two that init
    stops), against the recorder; then SIGTERM with 4 still open."""

    # name: (what the client does, expected terminate (kind, code, text or
    # None for any non-empty), expected close code the client sees (None:
    # the client dropped the TCP connection itself))
    CASES = {
        "client1000": ((1, 1000, ""), 1000),
        "client4001": ((1, 4001, "see you later"), 4001),
        "stop": ((0, 1000, ""), 1000),
        "close4002": ((0, 4002, ""), 4002),
        "error": ((4, 1011, "boom"), 1011),
        "restart": ((2, 1012, ""), 1012),
        "badresult": ((4, 1011, None), 1011),
        "drop": ((4, 1006, None), None),
        "pushstop": ((0, 4000, ""), 4000),
        "push3": ((1, 1000, ""), 1000),
        "sigterm": ((2, 1001, ""), 1001),
    }
    PLAN = (["client1000", "client4001", "stop", "close4002", "error",
             "restart", "badresult", "drop"] * 2
            + ["pushstop", "push3"] + ["sigterm"] * 4)

    def test_lifecycle(self):
        d = Daemon({"life": {"path": "/life", "plugin": RECORDER_SO,
                             "options": {"record": "@"}}}, workers=2)
        record = d.path("life.rec")
        d.routes["life"]["options"]["record"] = record
        with d:
            def inits():
                return [r[1] for r in parse_records(read_records(record))
                        if r[0] == "init"]

            async def scenario():
                conns = []  # (case, id, ws)
                initstop = []  # (id, close code seen)
                n_init = 0
                for i, case in enumerate(self.PLAN):
                    if i in (3, 15):  # two connections that init() stops
                        ws = await connect(d.url("/life?initstop&n=%d" % i))
                        with self.assertRaises(ConnectionClosed):
                            await recv(ws)
                        await asyncio.wait_for(ws.wait_closed(), OP_TIMEOUT)
                        n_init += 1
                        read_records(record, until=lambda l: len(
                            [x for x in l if x.startswith("init ")]) >= n_init)
                        initstop.append((inits()[-1], ws.close_code))
                    ws = await connect(d.url("/life?case=%s&n=%d" % (case, i)))
                    self.assertEqual(await recv(ws), "hello")
                    n_init += 1
                    all_inits = inits()
                    self.assertEqual(len(all_inits), n_init)
                    conns.append((case, all_inits[-1], ws))

                async def end(case, ws):
                    """Ends one connection; returns what the client saw."""
                    got = []
                    if case == "client1000":
                        await ws.close(1000)
                    elif case == "client4001":
                        await ws.close(4001, "see you later")
                    elif case == "drop":
                        ws.transport.abort()
                        await asyncio.wait_for(ws.wait_closed(), OP_TIMEOUT)
                        return None, None, got
                    elif case == "push3":
                        await ws.send("push3")
                        got = [await recv(ws) for _ in range(3)]
                        await ws.close(1000)
                    else:
                        cmd = {"stop": "stop", "close4002": "close:4002:bye",
                               "error": "error:boom", "restart": "restart",
                               "badresult": "bad-result",
                               "pushstop": "pushstop"}[case]
                        await ws.send(cmd)
                        try:
                            while True:
                                got.append(await recv(ws))
                        except ConnectionClosed:
                            pass
                        await asyncio.wait_for(ws.wait_closed(), OP_TIMEOUT)
                    return ws.close_code, ws.close_reason, got

                ending = [(c, i, ws) for c, i, ws in conns if c != "sigterm"]
                results = await asyncio.gather(*(end(c, ws) for c, _, ws in ending))
                seen = {i: r for (_, i, _), r in zip(ending, results)}
                ended_ids = [i for _, i, _ in ending]
                read_records(record, until=lambda l: all(
                    any(x.startswith("terminate %d " % i) for x in l)
                    for i in ended_ids))

                # SIGTERM with the rest still open: 1001 for each of them
                staying = [(c, i, ws) for c, i, ws in conns if c == "sigterm"]
                d.signal(signal.SIGTERM)

                async def shut(ws):
                    with self.assertRaises(ConnectionClosed):
                        await recv(ws, timeout=15)
                    await asyncio.wait_for(ws.wait_closed(), OP_TIMEOUT)
                    return ws.close_code, ws.close_reason, []
                results = await asyncio.gather(*(shut(ws) for _, _, ws in staying))
                seen.update({i: r for (_, i, _), r in zip(staying, results)})
                return conns, initstop, seen

            conns, initstop, seen = run(scenario(), timeout=90)
            d.proc.wait(timeout=30)
            self.assertEqual(d.proc.returncode, 0, d.log())
            d.wait_log(r"all connections closed; exiting")
            lines = read_records(record)  # before the daemon's tmp is removed

        recs = parse_records(lines)
        log = "\n".join(lines)
        # load first, unload last (after SIGTERM), once each
        self.assertEqual(lines.count("load"), 1, log)
        self.assertEqual(lines.count("unload"), 1, log)
        self.assertEqual(lines[0], "load", log)
        self.assertEqual(lines[-1], "unload", log)

        init_ids = [i for v, i, _ in recs if v == "init"]
        self.assertEqual(len(init_ids), len(set(init_ids)), log)
        self.assertEqual(len(init_ids), len(self.PLAN) + 2, log)
        terms = {}
        for v, i, rest in recs:
            if v == "terminate":
                self.assertNotIn(i, terms, "two terminates for %d:\n%s" % (i, log))
                terms[i] = (int(rest[0]), int(rest[1]), rest[2] if len(rest) > 2 else "")

        # initstop: a close (1000) for the client, no terminate
        for i, code in initstop:
            self.assertNotIn(i, terms, "terminate after init said STOP:\n" + log)
            self.assertEqual(code, 1000)

        for case, i, _ in conns:
            (kind, code, text), client_code = self.CASES[case]
            with self.subTest(case=case, id=i):
                self.assertIn(i, terms, "no terminate for %s (%d):\n%s" % (case, i, log))
                got_kind, got_code, got_text = terms[i]
                self.assertEqual((got_kind, got_code), (kind, code), log)
                if text is None:
                    self.assertTrue(got_text, "empty detail for %s" % case)
                else:
                    self.assertEqual(got_text, text)
                self.assertEqual(seen[i][0], client_code)
                # terminate after the connection's init, nothing of it after
                pos_init = recs.index(("init", i, []))
                pos_term = next(n for n, r in enumerate(recs)
                                if r[0] == "terminate" and r[1] == i)
                self.assertLess(pos_init, pos_term)
                self.assertFalse([r for r in recs[pos_term + 1:] if r[1] == i], log)
                if case == "client4001":
                    self.assertEqual(seen[i][1], "see you later")
                if case == "close4002":
                    self.assertEqual(seen[i][1], "bye")
                if case == "pushstop":
                    self.assertEqual(seen[i][2], ["bye"])
                    self.assertEqual(seen[i][1], "done")
                if case == "push3":
                    self.assertEqual(seen[i][2], ["one", "two", "three"])
        # every init but the initstop ones has exactly one terminate
        self.assertEqual(set(terms), set(init_ids) - {i for i, _ in initstop}, log)


# ---------------------------------------------------------------------------
# Command line, host config file, route and plugin failures
# ---------------------------------------------------------------------------

class CommandDaemon(Daemon):
    """A Daemon run with exactly `argv` after the binary (Daemon.start always
    adds --listen 127.0.0.1:0 and --workers, which would hide the config
    file's own settings). It must listen on 127.0.0.1 (port 0 is fine)."""

    def __init__(self, routes, argv, **kw):
        super().__init__(routes, **kw)
        self.argv = list(argv)

    def command(self):
        return [WEBSOCKD] + self.argv


def run_websockd(args, timeout=60):
    """Runs websockd to completion (for -t and --help)."""
    return subprocess.run([WEBSOCKD] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def echo_once(url, msg="ping?", **kw):
    async def go():
        async with connect(url, **kw) as ws:
            await ws.send(msg)
            return await recv(ws)
    return run(go())


class CommandLineTest(unittest.TestCase):
    def test_help_mentions_every_flag(self):
        p = run_websockd(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        for flag in ("--listen", "--plugins", "--config", "--workers"):
            self.assertIn(flag, p.stdout)
        self.assertRegex(p.stdout, r"(?<![-\w])-t\b")

    def test_listen_twice_ipv4_and_ipv6(self):
        if not ipv6_loopback_available():
            self.skipTest("::1 is not available on this machine: the IPv6 "
                          "half of --listen twice was not tested")
        with Daemon({"echo": {"path": "/echo", "plugin": ECHO_SO}},
                    args=["--listen", "[::1]:0"]) as d:
            m = d.wait_log(r"listening on \[::1\]:(\d+)")
            port6 = int(m.group(1))
            self.assertEqual(echo_once(d.url("/echo"), "v4"), "v4")
            self.assertEqual(echo_once("ws://[::1]:%d/echo" % port6, "v6"), "v6")

    def test_t_good_dir(self):
        with tempfile.TemporaryDirectory() as tmp:
            write_route(tmp, "echo", {"path": "/echo", "plugin": ECHO_SO})
            write_route(tmp, "rec", {"path": "/rec", "plugin": RECORDER_SO})
            p = run_websockd(["-t", "--plugins", tmp])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_t_bad_route(self):
        bad = test_plugin("bad_abi")
        self.assertTrue(os.path.exists(bad), bad)
        with tempfile.TemporaryDirectory() as tmp:
            write_route(tmp, "echo", {"path": "/echo", "plugin": ECHO_SO})
            write_route(tmp, "bad", {"path": "/bad", "plugin": bad})
            p = run_websockd(["-t", "--plugins", tmp])
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("bad_abi.so", p.stdout + p.stderr)
            self.assertRegex(p.stdout + p.stderr, r"ABI")

    def test_config_file(self):
        d = CommandDaemon({"echo": {"path": "/echo", "plugin": ECHO_SO}}, [])
        cfg = d.path("websockd.conf")
        with open(cfg, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:0\nplugins = %s\nworkers = 3\n"
                    "max_header_size = 2048\n" % d.plugins_d)
        d.argv = ["--config", cfg]
        with d:
            self.assertTrue(d.find_log(r"websockd ready: 3 worker"), d.log())
            self.assertEqual(echo_once(d.url("/echo"), "cfg"), "cfg")
            status, _ = run(handshake_status(d.url("/echo"),
                                             extra_headers={"X-Big": "b" * 3000}))
            self.assertEqual(status, 431)

    def test_busy_poll_setting(self):
        """busy_poll_us off (0) and at its largest (1000): every echo of 20
        concurrent clients comes back, in order; a value past 1000 is
        refused at start-up (-t exits 2 naming it)."""
        async def clients(url):
            async def one(i):
                async with connect(url) as ws:
                    for k in range(100):
                        await ws.send("%d:%d" % (i, k))
                        self.assertEqual(await recv(ws), "%d:%d" % (i, k))
            await asyncio.gather(*(one(i) for i in range(20)))
        for us in ("0", "1000"):
            with self.subTest(busy_poll_us=us):
                d = CommandDaemon({"echo": {"path": "/echo", "plugin": ECHO_SO}}, [])
                cfg = d.path("websockd.conf")
                with open(cfg, "w") as f:
                    f.write("[server]\nlisten = 127.0.0.1:0\nplugins = %s\n"
                            "workers = 2\nbusy_poll_us = %s\n" % (d.plugins_d, us))
                d.argv = ["--config", cfg]
                with d:
                    run(clients(d.url("/echo")))
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "websockd.conf")
            with open(cfg, "w") as f:
                f.write("[server]\nbusy_poll_us = 5000\n")
            p = run_websockd(["-t", "--config", cfg, "--plugins", tmp])
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("busy_poll_us", p.stderr)

    def test_cli_workers_overrides_config(self):
        d = CommandDaemon({"echo": {"path": "/echo", "plugin": ECHO_SO}}, [])
        cfg = d.path("websockd.conf")
        with open(cfg, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:0\nplugins = %s\nworkers = 3\n"
                    % d.plugins_d)
        d.argv = ["--config", cfg, "--workers", "1"]
        with d:
            self.assertTrue(d.find_log(r"websockd ready: 1 worker\(s\)"), d.log())
            self.assertEqual(echo_once(d.url("/echo"), "cli"), "cli")


class BadRouteTest(unittest.TestCase):
    """A bad route is not served, logs one line naming the file and the
    cause, and every other route is served."""

    CAUSES = {
        "missing": r"No such file or directory",
        "not_elf": r"cannot load|ELF|too short",
        "no_symbol": r"no websock_handler_v1",
        "bad_abi": r"ABI version",
        "too_small": r"too small",
        "null_handle_in": r"handle_in",
        "missing_dep": r"undefined symbol",
    }

    def check_served(self, d, path="/good"):
        self.assertEqual(echo_once(d.url(path), "still here"), "still here")

    def test_bad_plugins(self):
        for name, cause in self.CAUSES.items():
            with self.subTest(plugin=name):
                so = "missing.so" if name == "missing" else test_plugin(name)
                if name != "missing":
                    self.assertTrue(os.path.exists(so), so)
                with Daemon({"good": {"path": "/good", "plugin": ECHO_SO},
                             "zbad": {"path": "/bad", "plugin": so}}) as d:
                    self.check_served(d)
                    status, _ = run(handshake_status(d.url("/bad")))
                    self.assertEqual(status, 404)
                    base = os.path.basename(so)
                    lines = [l for l in d.log().splitlines() if base in l]
                    self.assertEqual(len(lines), 1, d.log())
                    self.assertRegex(lines[0], cause)

    def test_unknown_key(self):
        with Daemon({"good": {"path": "/good", "plugin": ECHO_SO},
                     "odd": {"path": "/odd", "plugin": ECHO_SO,
                             "colour": "blue"}}) as d:
            self.check_served(d)
            lines = [l for l in d.log().splitlines() if "odd.conf" in l]
            self.assertEqual(len(lines), 1, d.log())
            self.assertRegex(lines[0], r"unknown key")
            self.assertIn("colour", lines[0])
            self.assertRegex(lines[0], r"line \d+")
            status, _ = run(handshake_status(d.url("/odd")))
            self.assertEqual(status, 404)

    def test_duplicate_path(self):
        with Daemon({"a_first": {"path": "/dup", "plugin": ECHO_SO,
                                 "options": {"prefix": "first:"}},
                     "b_second": {"path": "/dup", "plugin": ECHO_SO},
                     "good": {"path": "/good", "plugin": ECHO_SO}}) as d:
            self.check_served(d)
            lines = [l for l in d.log().splitlines() if "b_second.conf" in l]
            self.assertEqual(len(lines), 1, d.log())
            self.assertIn("/dup", lines[0])
            # the first file keeps the path
            self.assertEqual(echo_once(d.url("/dup"), "x"), "first:x")


if __name__ == "__main__":
    unittest.main()
