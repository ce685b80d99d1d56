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
