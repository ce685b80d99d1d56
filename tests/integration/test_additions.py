"""The SDK additions of issue 16 through the real websockd: path routes with
parameters (":name", a last "*"), their precedence and conflicts, where a
handle_info message came from, the plugin-wide context, what a negative
websock_* result does, topic subscriber counts, log lines that name the
route, plugin and generation, and the option_keys check. The plugin is
tests/plugins/additions.c; the clients are Debian's python3-websockets and
raw sockets (for requests a client library would not send).

Run by ctest as integ_additions. Every daemon is stopped by PID.
"""

import asyncio
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import websockets

import harness
from harness import WEBSOCKD, read_http_head, upgrade_request, write_route

ADDITIONS_SO = harness.test_plugin("additions")
run, connect, recv, ask = harness.client_helpers(test_timeout=60)


def route(path, greeting, **extra):
    r = {"path": path, "plugin": ADDITIONS_SO}
    r.update({k: v for k, v in extra.items() if k != "options"})
    r["options"] = dict({"greeting": greeting}, **extra.get("options", {}))
    return r


def raw_status(d, path):
    """The status of an upgrade request for path, sent on a raw socket."""
    s = d.connect_raw()
    try:
        s.sendall(upgrade_request(path))
        status, _, _ = read_http_head(s)
        return status
    finally:
        s.close()


def check_t(routes):
    """websockd -t on a directory of these routes: (exit status, output)."""
    with tempfile.TemporaryDirectory(prefix="websockd-additions-") as tmp:
        for name, r in routes.items():
            write_route(tmp, name, r)
        p = subprocess.run([WEBSOCKD, "-t", "--plugins", tmp],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr, tmp


class PathRoutes(unittest.TestCase):
    ROUTES = {
        "a_exact": route("/chat/lobby", "exact"),
        "b_room": route("/chat/:room", "room"),
        "c_files": route("/files/*", "files"),
        "d_special": route("/files/special/:room", "special"),
    }

    def test_precedence_and_values(self):
        with harness.Daemon(self.ROUTES) as d:
            async def init_line(path):
                async with connect(d.url(path)) as ws:
                    return await recv(ws)

            async def scenario():
                # exact beats the pattern that also matches
                self.assertEqual(await init_line("/chat/lobby"),
                                 "init room=- rest=- ctx=exact")
                self.assertEqual(await init_line("/chat/abc"),
                                 "init room=abc rest=- ctx=room")
                # percent-decoded, UTF-8 included
                self.assertEqual(await init_line("/chat/a%20b%C3%A9"),
                                 "init room=a b\u00e9 rest=- ctx=room")
                # the star takes the rest: nothing, one or several segments
                self.assertEqual(await init_line("/files"),
                                 "init room=- rest= ctx=files")
                self.assertEqual(await init_line("/files/"),
                                 "init room=- rest= ctx=files")
                self.assertEqual(await init_line("/files/a/b%2Fc.txt"),
                                 "init room=- rest=a/b/c.txt ctx=files")
                # more literal segments beat a star
                self.assertEqual(await init_line("/files/special/x"),
                                 "init room=x rest=- ctx=special")
                self.assertEqual(await init_line("/files/special/x/y"),
                                 "init room=- rest=special/x/y ctx=files")
                # the values stay readable for the connection's life
                async with connect(d.url("/chat/r1?q=1")) as ws:
                    await recv(ws)
                    self.assertEqual(await ask(ws, "params"),
                                     "params room=r1 rest=-")
                    self.assertEqual(await ask(ws, "ctx"), "ctx room late=-4")
            run(scenario())
            # refusals: what does not decode, what does not match, upgrade()
            self.assertEqual(raw_status(d, "/chat/a%2Fb"), 400)
            self.assertEqual(raw_status(d, "/chat/a%zz"), 400)
            self.assertEqual(raw_status(d, "/chat/a%00"), 400)
            self.assertEqual(raw_status(d, "/chat/%"), 400)
            self.assertEqual(raw_status(d, "/chat/"), 404)
            self.assertEqual(raw_status(d, "/chat/a/b"), 404)
            self.assertEqual(raw_status(d, "/filesx"), 404)
            self.assertEqual(raw_status(d, "/chat/forbidden"), 403)
            # metrics and logs name the route by its pattern
            text = harness.metrics_text(d.port)
            self.assertIn('websockd_connections{route="/chat/:room"', text)
            self.assertIn('websockd_connections{route="/files/*"', text)
            d.wait_log(r"route /chat/:room: additions 1\.0\.0 from ")

    def test_conflicts_are_config_errors(self):
        for a, b in (("/a/:x", "/a/:y"), ("/:x/b", "/a/:y"),
                     ("/a/*", "/a/*"), ("/:x/*", "/:y/*")):
            status, out, tmp = check_t({"one": route(a, "1"),
                                        "two": route(b, "2")})
            self.assertNotEqual(status, 0, out)
            # the same pattern twice is the same path twice
            self.assertRegex(out, "conflicts with" if a != b
                             else "is already served by")
            self.assertIn(os.path.join(tmp, "one.conf"), out)
            self.assertIn(os.path.join(tmp, "two.conf"), out)
        # a more specific pattern, an exact path and a star side by side
        status, out, _ = check_t({"one": route("/a/:x", "1"),
                                  "two": route("/a/*", "2"),
                                  "three": route("/a/b", "3"),
                                  "four": route("/:x/:y/c", "4")})
        self.assertEqual(status, 0, out)
        # bad patterns name the file and the line
        for bad, why in (("/a/*/b", "'*' is allowed only"),
                         ("/a/:", "a parameter needs a name"),
                         ("/a/:x/:x", "given twice"),
                         ("/a/x*", "'*' is allowed only")):
            status, out, tmp = check_t({"one": route(bad, "1")})
            self.assertNotEqual(status, 0, out)
            self.assertIn(os.path.join(tmp, "one.conf") + ": line 1:", out)
            self.assertIn(why, out)

    def test_conflict_on_reload_keeps_serving(self):
        with harness.Daemon({"one": route("/a/:x", "old")}) as d:
            write_route(d.plugins_d, "two", route("/a/:y", "new"))
            d.signal(signal.SIGHUP)
            d.wait_log(r"reload \(SIGHUP\) failed; the previous routes keep "
                       r"serving: .*two\.conf: path /a/:y conflicts with path "
                       r"/a/:x of .*one\.conf: both match /a/x")

            async def scenario():
                async with connect(d.url("/a/q")) as ws:
                    self.assertEqual(await recv(ws),
                                     "init room=- rest=- ctx=old")
            run(scenario())


class Messages(unittest.TestCase):
    def test_info_sources(self):
        with harness.Daemon({"r": route("/r/:room", "g")}) as d:
            async def scenario():
                async with connect(d.url("/r/x")) as ws:
                    await recv(ws)
                    self.assertEqual(await ask(ws, "source"), "source none")
                    m = re.fullmatch(r"timer (\d+)", await ask(ws, "timer"))
                    self.assertIsNotNone(m)
                    self.assertEqual(await recv(ws),
                                     "info timer %s t" % m.group(1))
                    await ws.send("self")
                    self.assertEqual(await recv(ws),
                                     "info send s timer=0 topic=(null)")
                    self.assertEqual(await ask(ws, "sub:news"),
                                     "subscribers news 1")
                    await ws.send("pub:news")
                    self.assertEqual(await recv(ws), "info publish news p")
            run(scenario())

    def test_topic_subscribers_every_worker(self):
        with harness.Daemon({"r": route("/r/:room", "g")}, workers=2) as d:
            async def count(ws, topic="t"):
                return int((await ask(ws, "count:" + topic)).split()[-1])

            async def scenario():
                conns = [await connect(d.url("/r/%d" % i)) for i in range(6)]
                try:
                    for ws in conns:
                        await recv(ws)
                    for i, ws in enumerate(conns):
                        self.assertEqual(await ask(ws, "sub:t"),
                                         "subscribers t %d" % (i + 1))
                    # twice is one subscription
                    self.assertEqual(await ask(conns[0], "sub:t"),
                                     "subscribers t 6")
                    self.assertEqual(await count(conns[5], "other"), 0)
                    self.assertEqual(await ask(conns[1], "unsub:t"),
                                     "subscribers t 5")
                    for ws in conns[2:4]:
                        await ws.close()
                    deadline = time.time() + 10
                    while await count(conns[0]) != 3 and time.time() < deadline:
                        await asyncio.sleep(0.02)
                    self.assertEqual(await count(conns[0]), 3)
                finally:
                    for ws in conns:
                        await ws.close()
            run(scenario())


class AcrossHosts(unittest.TestCase):
    def test_publish_from_another_host_is_a_publish(self):
        """Two hosts on one redis-server: a publish on A reaches B's
        handle_info as WEBSOCK_INFO_PUBLISH with its topic; the subscriber
        count stays per host."""
        import test_bus  # its Redis helper (redis-server stopped by PID)
        redis = test_bus.Redis().start()
        try:
            args = ["--redis", "127.0.0.1:%d" % redis.port]
            with harness.Daemon({"r": route("/r/:room", "g")}, workers=1,
                                args=args) as a, \
                    harness.Daemon({"r": route("/r/:room", "g")}, workers=1,
                                   args=args) as b:
                async def scenario():
                    async with connect(a.url("/r/a")) as wa, \
                            connect(b.url("/r/b")) as wb:
                        await recv(wa)
                        await recv(wb)
                        self.assertEqual(await ask(wb, "sub:news"),
                                         "subscribers news 1")
                        # B is on the topic's channel once it says so
                        # (besides its own and the control channel)
                        test_bus.wait_metric(b, "bus_channels",
                                             lambda v: v >= 3)
                        await wa.send("pub:news")
                        self.assertEqual(await recv(wb),
                                         "info publish news p")
                        self.assertEqual(await ask(wa, "count:news"),
                                         "subscribers news 0")
                run(scenario())
        finally:
            redis.cleanup()


def redis_publish(port, channel, payload):
    """PUBLISH payload (bytes) on channel through a raw RESP connection;
    returns the number of receivers Redis reports."""
    parts = [b"PUBLISH", channel.encode(), payload]
    cmd = b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p)
                                 for p in parts)
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(cmd)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(64)
            if not chunk:
                break
            reply += chunk
    return int(reply[1:].strip())


def counts_message(origin, entries, seq=1):
    """A bus message of kind 4 (counts) from origin with (topic, count)
    entries, as host/bus/bus_msg.h lays it out."""
    payload = b"".join(struct.pack(">B", len(t)) + t + struct.pack(">I", n)
                       for t, n in entries)
    return (struct.pack(">BBBBQQQIIII", 1, 4, 0, 0, origin, seq, 0, 0, 0, 0,
                        len(payload)) + payload)


def publish_message(origin, topic, seq=1):
    """A valid publish (kind 1) of "p" to topic from origin."""
    return (struct.pack(">BBBBQQQIIII", 1, 1, 0, len(topic), origin, seq, 0,
                        0, 0, 0, 1) + topic + b"p")


class CountsAcrossHosts(unittest.TestCase):
    """websock_topic_subscribers_all through three websockd on one
    redis-server: the count rises as clients subscribe on other hosts,
    falls as they leave, and a SIGKILLed host is forgotten within the
    documented 10 s; malformed and oversized announcements on the control
    channel are refused or cut to the caps, and counted."""

    def test_counts_across_hosts(self):
        import test_bus  # its Redis helper (redis-server stopped by PID)
        redis = test_bus.Redis().start()
        try:
            args = ["--redis", "127.0.0.1:%d" % redis.port]
            routes = {"r": route("/r/:room", "g")}
            with harness.Daemon(routes, workers=1, args=args) as a, \
                    harness.Daemon(routes, workers=2, args=args) as b, \
                    harness.Daemon(routes, workers=1, args=args,
                                   expect_exit=None) as c:
                run(self.scenario(redis, a, b, c, test_bus))
        finally:
            redis.cleanup()

    async def scenario(self, redis, a, b, c, test_bus):
        async def total(ws, topic="room"):
            reply = await ask(ws, "all:" + topic)
            self.assertTrue(reply.startswith("all %s " % topic), reply)
            return int(reply.split()[-1])

        async def until(ws, want, within, topic="room"):
            t0 = time.time()
            while True:
                got = await total(ws, topic)
                if got == want:
                    return time.time() - t0
                if time.time() - t0 > within:
                    self.fail("all:%s stayed %d, not %d, for %.1f s" %
                              (topic, got, want, within))
                await asyncio.sleep(0.05)

        for d in (a, b, c):  # own channel and control channel
            test_bus.wait_metric(d, "bus_channels", lambda v: v >= 2)
        wa = await connect(a.url("/r/a"))
        wb = [await connect(b.url("/r/b%d" % i)) for i in range(3)]
        wc = await connect(c.url("/r/c"))
        try:
            for ws in [wa, wc] + wb:
                await recv(ws)
            self.assertEqual(await total(wa), 0)
            # subscribers on B (two workers) and C show on A within ~1 s
            for ws in wb + [wc]:
                await ask(ws, "sub:room")
            took = await until(wa, 4, 5.0)
            self.assertEqual(await ask(wa, "count:room"), "subscribers room 0")
            await until(wb[0], 4, 5.0)  # and on B: its 3 plus C's 1
            # A's own subscriber counts at once, exactly
            self.assertEqual(await ask(wa, "sub:room"), "subscribers room 1")
            self.assertEqual(await total(wa), 5)
            await until(wc, 5, 5.0)
            # leaving: an unsubscribe and a close on B
            self.assertEqual(await ask(wb[0], "unsub:room"),
                             "subscribers room 2")
            await wb[1].close()
            took = max(took, await until(wa, 3, 5.0))
            self.assertLess(took, 3.0)  # coalesced at most once a second
            await until(wb[2], 3, 5.0)  # 1 here, A's, C's
            # C killed: still counted at first (nothing says it is gone),
            # forgotten once its last announcement is 10 s old
            self.assertEqual(test_bus.metrics(a)["websockd_bus_counts_hosts"],
                             2)
            c.kill()
            t0 = time.time()
            self.assertEqual(await total(wa), 3)
            await until(wa, 2, 13.0)
            gone = time.time() - t0
            self.assertGreater(gone, 5.0)   # its last refresh was < 3.5 s old
            self.assertLess(gone, 11.5)     # 10 s after it, a tick at most
            test_bus.wait_metric(a, "bus_counts_hosts", lambda v: v == 1,
                                 timeout=3)
            await until(wb[2], 2, 3.0)

            # Hostile announcements on the control channel.
            m0 = test_bus.metrics(a)
            ch = "c:counts"
            self.assertGreaterEqual(redis_publish(redis.port, ch, b"garbage"), 2)
            good = counts_message(0x1234, [(b"room", 7)])
            for bad in (good[:-1],                       # short
                        good + b"\0",                    # trailing byte
                        counts_message(0x1234, [(b"", 7)]),   # empty topic
                        counts_message(0x1234, [(b"r\0m", 7)]),  # NUL
                        counts_message(0, [(b"room", 7)]),    # origin 0
                        counts_message(0x1234, []),           # no entry
                        publish_message(0x1234, b"room")):    # a publish
                redis_publish(redis.port, ch, bad)
            # a counts message on a topic channel is not a count either
            redis_publish(redis.port, "t:room", good)
            test_bus.wait_metric(a, "bus_invalid_total",
                                 lambda v: v >= m0["websockd_bus_invalid_total"]
                                 + 9, timeout=5)
            self.assertEqual(await total(wa), 2)
            # one host announcing more topics than a receiver keeps for one
            # host (8192): the rest are dropped and counted
            many = [(b"t%d" % i, 1) for i in range(9000)] + [(b"room", 7)]
            redis_publish(redis.port, ch, counts_message(0x1234, many))
            test_bus.wait_metric(
                a, "bus_counts_dropped_total",
                lambda v: v >= m0["websockd_bus_counts_dropped_total"] + 809,
                timeout=5)
            m1 = test_bus.metrics(a)
            self.assertEqual(m1["websockd_bus_counts_dropped_total"] -
                             m0["websockd_bus_counts_dropped_total"], 809)
            # B's count of room, and the fake host's 8192
            self.assertEqual(m1["websockd_bus_counts_entries"], 1 + 8192)
            self.assertEqual(await total(wa, "t0"), 1)
            self.assertEqual(await total(wa, "t8999"), 0)  # dropped
            self.assertEqual(await total(wa), 2)  # "room" came too late
            # the fake host announces room at 0: nothing to forget, no harm
            redis_publish(redis.port, ch,
                          counts_message(0x1234, [(b"t0", 0), (b"room", 0)]))
            await until(wa, 0, 5.0, topic="t0")
            self.assertEqual(await total(wa), 2)
        finally:
            for ws in [wa, wc] + wb:
                await ws.close()


class NegativeResults(unittest.TestCase):
    def test_results(self):
        routes = {
            "drop": route("/drop", "d", max_unsent="1K",
                          on_max_unsent="drop"),
            "close": route("/close", "c", max_unsent="1K"),
            "plain": route("/plain", "p"),
        }
        with harness.Daemon(routes) as d:
            async def scenario():
                # EFULL returned as it is: the connection carries on
                async with connect(d.url("/drop")) as ws:
                    await recv(ws)
                    await ws.send("flood:3:65536")
                    first = await recv(ws)
                    self.assertEqual(len(first), 65536)
                    self.assertEqual(await ask(ws, "params"),
                                     "params room=- rest=-")
                # ECLOSED returned as it is: the 1008 under way stands
                async with connect(d.url("/close")) as ws:
                    await recv(ws)
                    await ws.send("flood:3:65536")
                    self.assertEqual(len(await recv(ws)), 65536)
                    with self.assertRaises(websockets.ConnectionClosed):
                        await recv(ws)
                    self.assertEqual(ws.close_code, 1008)
                # another websock_* code: an error stop, 1011
                async with connect(d.url("/plain")) as ws:
                    await recv(ws)
                    await ws.send("ret:-2")
                    with self.assertRaises(websockets.ConnectionClosed):
                        await recv(ws)
                    self.assertEqual(ws.close_code, 1011)
                # a value that is no websock_* code: an invalid result
                async with connect(d.url("/plain")) as ws:
                    await recv(ws)
                    await ws.send("ret:-99")
                    with self.assertRaises(websockets.ConnectionClosed):
                        await recv(ws)
                    self.assertEqual(ws.close_code, 1011)
            run(scenario())
            d.wait_log(r"terminate \(reason 4, code 1011, callback returned "
                       r"WEBSOCK_ENOMEM \(out of memory\)\)")
            d.wait_log(r"terminate \(reason 4, code 1011, callback returned an "
                       r"invalid result\)")
            d.wait_log(r"terminate \(reason 4, code 1008, backpressure")


class LogsAndOptions(unittest.TestCase):
    def test_log_lines_name_route_plugin_generation(self):
        routes = {"r": route("/r/:room", "hi", options={"log_thread": "1"})}
        with harness.Daemon(routes) as d:
            who = r"route /r/:room plugin additions generation 1: "
            d.wait_log(who + "loaded with greeting hi")
            d.wait_log(who + "hello from a plugin thread")
            # the context reaches upgrade()/init() through the request
            async def scenario():
                async with connect(d.url("/r/x")) as ws:
                    self.assertEqual(await recv(ws),
                                     "init room=x rest=- ctx=hi")
            run(scenario())
            self.assertEqual(d.stop(), 0)
        log = d.log()
        # unload() first, then unload_context() with the context load() set
        unload = log.find(who + "unloading")
        freed = log.find(who + "context freed: hi")
        self.assertGreaterEqual(unload, 0, log)
        self.assertGreater(freed, unload, log)

    def test_unknown_option_key(self):
        status, out, tmp = check_t({"r": route("/r", "hi",
                                               options={"greting": "x"})})
        self.assertNotEqual(status, 0, out)
        self.assertIn(os.path.join(tmp, "r.conf") +
                      ': line 5: unknown option "greting" in [options] '
                      "(plugin additions knows: greeting, log_thread)", out)
        status, out, _ = check_t({"r": route("/r", "hi",
                                             options={"log_thread": "0"})})
        self.assertEqual(status, 0, out)
        # on SIGHUP: refused, the old generation keeps serving
        with harness.Daemon({"r": route("/r", "old")}) as d:
            write_route(d.plugins_d, "r", route("/r", "new",
                                                options={"greting": "x"}))
            d.signal(signal.SIGHUP)
            d.wait_log(r"reload \(SIGHUP\) failed; the previous routes keep "
                       r'serving: .*r\.conf: line 5: unknown option "greting"')

            async def scenario():
                async with connect(d.url("/r")) as ws:
                    self.assertEqual(await recv(ws),
                                     "init room=- rest=- ctx=old")
            run(scenario())


if __name__ == "__main__":
    unittest.main()
