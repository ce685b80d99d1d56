"""Live code upgrade (reload = handoff) through the real websockd, with
Debian's python3-websockets as the client, and a plugin built against the
SDK 1.0 header kept as a fixture.

The plugin is tests/plugins/counter.c in three builds (plugins.cmake):
counter.so ("v1"), counter_v2.so ("v2") and counter_plain.so ("p1", without
export_state / import_state). Each connection's state is a count of the
events it handled; every answer is "VERSION COUNT WHAT", so a client sees
which code answered and that the count goes on across a reload with nothing
lost, repeated or reordered. A build is deployed as an operator would:
copied next to the route's .so, then renamed over it, then SIGHUP.

Run by ctest as integ_handoff (tests.cmake sets WEBSOCKD and
WSH_TEST_PLUGIN_DIR); scripts/test.sh runs it under ASan+UBSan and TSan.
Every wait is bounded; every websockd is stopped by PID.
"""

import asyncio
import os
import re
import shutil
import signal
import time
import unittest

from websockets.exceptions import ConnectionClosed

import harness
from harness import generations, metrics_text, read_records, test_plugin, write_route

OP_TIMEOUT = 10.0
TEST_TIMEOUT = 90.0
RELOAD_TIMEOUT = 20.0

run, connect, recv, ask = harness.client_helpers(TEST_TIMEOUT, OP_TIMEOUT)

HANDOFF_RX = (r"worker (\d+): route %s: (\d+) connection\(s\) handed off from "
              r"generation (\d+) to (\d+), (\d+) closed with 1012")


class Daemon(harness.Daemon):
    """harness.Daemon with deploys by copy-then-rename and SIGHUP reloads
    that wait for their result line and for every worker's handoff line."""

    def so(self):
        return os.path.join(self.plugins_d, "counter.so")

    def deploy(self, build):
        """Copies a built plugin next to the route's .so, then renames it
        over it (atomic: the daemon never sees half a file)."""
        tmp = os.path.join(self.plugins_d, ".counter.so.new")
        shutil.copyfile(test_plugin(build), tmp)
        os.rename(tmp, self.so())

    def nlines(self):
        with self._log_lock:
            return len(self.log_lines)

    def lines_from(self, start):
        with self._log_lock:
            return list(self.log_lines[start:])

    def wait_lines(self, pattern, n, start, timeout=RELOAD_TIMEOUT):
        """The first n log lines from `start` on that match pattern."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            got = [m for m in (rx.search(l) for l in self.lines_from(start)) if m]
            if len(got) >= n:
                return got[:n]
            if time.time() > deadline or self.proc.poll() is not None:
                raise AssertionError("%d of %d log lines matching %r:\n%s"
                                     % (len(got), n, pattern, self.log()[-6000:]))
            time.sleep(0.01)

    def reload(self, route="/counter", handoff=True):
        """SIGHUP; waits for "reload (SIGHUP) ok" and, if handoff, for each
        worker's handoff line. Returns (log position, handoff matches)."""
        start = self.nlines()
        self.signal(signal.SIGHUP)
        self.wait_lines(r"reload \(SIGHUP\) ok", 1, start)
        moves = []
        if handoff:
            moves = self.wait_lines(HANDOFF_RX % re.escape(route), self.workers, start)
        return start, moves


def counter_route(d, build="counter", keys=None, **options):
    """The /counter route (reload = handoff, and `keys`) on a build of
    counter.c, deployed; options go to its [options]."""
    d.deploy(build)
    opts = {"record": d.path("record.txt")}
    opts.update(options)
    route = {"path": "/counter", "plugin": "counter.so", "reload": "handoff"}
    route.update(keys or {})
    route["options"] = opts
    return route


def start(build="counter", workers=2, keys=None, **options):
    d = Daemon({}, workers=workers)
    d.routes = {"counter": counter_route(d, build, keys, **options)}
    return d


def parse(answer):
    version, count, what = answer.split(" ", 2)
    return version, int(count), what


def moved(matches):
    """(connections handed off, connections closed) over every worker."""
    return (sum(int(m.group(2)) for m in matches),
            sum(int(m.group(5)) for m in matches))


class Client:
    """One connection's view: every answer checked against the count."""

    def __init__(self, ws, name):
        self.ws, self.name = ws, name
        self.count = 0
        self.versions = []  # the versions seen, in order, without repeats
        self.answers = []

    async def take(self):
        version, count, what = parse(await recv(self.ws))
        if count != self.count + 1:
            raise AssertionError("%s: count %d after %d (%s %s)"
                                 % (self.name, count, self.count, version, what))
        self.count = count
        if not self.versions or self.versions[-1] != version:
            self.versions.append(version)
        self.answers.append(what)
        return version, what

    async def ask(self, msg):
        await self.ws.send(msg)
        return await self.take()


async def pump(client, stop, window=6):
    """Sends windows of numbered messages (every third window also asks for
    three messages to itself, mail in flight) until stop is set; checks that
    every answer comes, in order, with the count one up."""
    n = rounds = 0
    while not stop.is_set():
        rounds += 1
        sent = ["%s-%d" % (client.name, n + i) for i in range(window)]
        if rounds % 3 == 0:
            sent.append("self:3")
        for m in sent:
            await client.ws.send(m)
        want = list(sent) + (["info:s0", "info:s1", "info:s2"] if rounds % 3 == 0 else [])
        got_msgs, got_infos = [], []
        for _ in range(len(want)):
            _, what = await client.take()
            (got_infos if what.startswith("info:") else got_msgs).append(what)
        if got_msgs != sent or got_infos != want[len(sent):]:
            raise AssertionError("%s: sent %r then %r, got %r and %r"
                                 % (client.name, sent, want[len(sent):], got_msgs, got_infos))
        n += window
        await asyncio.sleep(0.002)


async def until(pred, tasks, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    while not pred():
        for t in tasks:
            if t.done():
                t.result()  # a client's error
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.01)


def current(d, route="/counter"):
    gens = generations(metrics_text(d.port), route)
    return [g for g in gens if g["state"] == "current"], \
           [g for g in gens if g["state"] != "current"]


class HandoffTest(unittest.TestCase):

    def test_steady_traffic_across_rebuild(self):
        """Four clients keep steady traffic (windows of messages, mail to
        themselves) while counter.so is rebuilt as v2 and SIGHUP is sent:
        no client is closed, every count goes on by one, nothing is lost or
        reordered, the answers come from v2 afterwards, the old generation
        unloads without a terminate() of its own, and the new one counts
        the four connections."""
        d = start()
        with d:
            url = d.url("/counter")

            async def go():
                clients = [Client(await connect(url), "c%d" % i) for i in range(4)]
                stop = asyncio.Event()
                tasks = [asyncio.create_task(pump(c, stop)) for c in clients]
                await until(lambda: all(c.count >= 30 for c in clients), tasks,
                            what="traffic on v1")
                (g1,), _ = await asyncio.to_thread(current, d)
                d.deploy("counter_v2")
                _, moves = await asyncio.to_thread(d.reload)
                self.assertEqual(moved(moves), (4, 0))
                at = [c.count for c in clients]
                await until(lambda: all(c.count >= a + 30 and c.versions[-1] == "v2"
                                        for c, a in zip(clients, at)), tasks,
                            what="traffic on v2")
                stop.set()
                await asyncio.gather(*tasks)
                for c in clients:
                    self.assertEqual(c.versions, ["v1", "v2"], c.name)
                    self.assertIsNone(c.ws.close_code, c.name)
                # a new connection starts its own count on v2
                fresh = Client(await connect(url), "fresh")
                self.assertEqual(await fresh.ask("hello"), ("v2", "hello"))
                cur, old = await asyncio.to_thread(current, d)
                self.assertEqual(cur[0]["conns"], 5)
                self.assertNotEqual(cur[0]["generation"], g1["generation"])
                self.assertEqual(old, [])  # the old one is gone: no connection left
                for c in clients + [fresh]:
                    await c.ws.close()
                return g1["generation"], [c.count for c in clients + [fresh]]

            old_id, counts = run(go())
            d.wait_log(r"route /counter: generation %s unloaded" % old_id)
            records = read_records(d.path("record.txt"),
                                   until=lambda ls: len(ls) >= 5)
        # terminate() ran once per connection, in v2, with the whole count
        self.assertEqual(sorted(records),
                         sorted("terminate v2 %d 1000" % n for n in counts))

    def test_deadlines_follow_the_route(self):
        """A connection handed off takes the new route's idle timeout (the
        worker's deadlines are filed by slot, not by generation): none on
        v1, then idle_timeout_ms = 400 on v2, which closes it with 1001
        "idle timeout" 400 ms after its last message; another, opened on
        that route and handed back to one without a timeout, stays open
        well past it."""
        d = start()
        with d:
            async def go():
                a = Client(await connect(d.url("/counter")), "a")
                self.assertEqual(await a.ask("x"), ("v1", "x"))
                d.deploy("counter_v2")
                d.routes["counter"]["idle_timeout_ms"] = 400
                d.write_routes()
                _, moves = await asyncio.to_thread(d.reload)
                self.assertEqual(moved(moves), (1, 0))
                t0 = time.monotonic()  # a's last message: sent after t0
                self.assertEqual(await a.ask("y"), ("v2", "y"))
                await asyncio.wait_for(a.ws.wait_closed(), 5)
                self.assertGreaterEqual(time.monotonic() - t0, 0.39)
                self.assertEqual((a.ws.close_code, a.ws.close_reason),
                                 (1001, "idle timeout"))

                b = Client(await connect(d.url("/counter")), "b")
                self.assertEqual(await b.ask("x"), ("v2", "x"))
                d.deploy("counter")
                del d.routes["counter"]["idle_timeout_ms"]
                d.write_routes()
                _, moves = await asyncio.to_thread(d.reload)
                self.assertEqual(moved(moves), (1, 0))
                await asyncio.sleep(1.0)  # silent, past 400 ms
                self.assertIsNone(b.ws.close_code)
                self.assertEqual(await b.ask("z"), ("v1", "z"))
                await b.ws.close()
            run(go())

    def test_path_params_carry_over(self):
        """On a pattern route (/counter/:room), websock_conn_param() in the
        new code still gives what the path captured, after the old
        generation is gone (its names were once borrowed from the old
        route's pattern: a use-after-free under ASan)."""
        d = start(keys={"path": "/counter/:room"})
        with d:
            async def go():
                c = Client(await connect(d.url("/counter/kit%20chen")), "c")
                self.assertEqual(await c.ask("param:room"),
                                 ("v1", "param:room=kit chen"))
                d.deploy("counter_v2")
                _, moves = await asyncio.to_thread(d.reload, "/counter/:room")
                self.assertEqual(moved(moves), (1, 0))
                await asyncio.to_thread(
                    d.wait_log, r"route /counter/:room: generation \d+ unloaded")
                self.assertEqual(await c.ask("param:room"),
                                 ("v2", "param:room=kit chen"))
                self.assertEqual(await c.ask("param:nope"),
                                 ("v2", "param:nope=-"))
                await c.ws.close()
            run(go())

    def test_timers_and_topics_carry_over(self):
        """A timer set and a topic joined under v1 fire and deliver to the
        new code. Two reloads back to back (v2, then only the .conf changes:
        a new generation of the same .so, tag b), the second sent before the
        workers report the first handoff: the connection moves twice, in
        order, without closing."""
        d = start()
        with d:
            url = d.url("/counter")

            async def go():
                a = Client(await connect(url), "a")
                self.assertEqual(await a.ask("sub:news"), ("v1", "sub:news"))
                self.assertEqual(await a.ask("after:3000:tick"),
                                 ("v1", "after:3000:tick"))
                at = d.nlines()
                d.deploy("counter_v2")
                d.signal(signal.SIGHUP)
                await asyncio.to_thread(d.wait_lines, r"reload \(SIGHUP\) ok", 1, at)
                write_route(d.plugins_d, "counter",
                            counter_route(d, "counter_v2", tag="b"))
                d.signal(signal.SIGHUP)
                await asyncio.to_thread(d.wait_lines, r"reload \(SIGHUP\) ok", 2, at)
                moves = await asyncio.to_thread(
                    d.wait_lines, HANDOFF_RX % "/counter", 4, at)
                self.assertEqual(moved(moves), (2, 0))  # once per reload
                pairs = sorted((int(m.group(3)), int(m.group(4))) for m in moves)
                self.assertEqual(pairs[0][1], pairs[2][0], pairs)  # 1->2, 2->3
                version, what = await a.take()  # the timer, after the moves
                self.assertEqual(what, "info:tick")
                self.assertIn(version, ("v2", "v2/b"))
                b = Client(await connect(url), "b")
                self.assertEqual(await b.ask("pub:news:hello"),
                                 ("v2/b", "pub:news:hello"))
                self.assertEqual(await a.take(), ("v2/b", "info:hello"))
                self.assertEqual(await a.ask("x"), ("v2/b", "x"))
                self.assertEqual(a.count, 5)
                self.assertIsNone(a.ws.close_code)
                await a.ws.close()
                await b.ws.close()

            run(go())

    def test_export_or_import_fails(self):
        """A connection whose export_state fails is closed with 1012 and
        the old generation's terminate() gets its state (also when it tried
        to export more than the new route's max_message_size: refused with
        WEBSOCK_ETOOBIG); one whose import_state fails is closed with 1012
        and the new generation's terminate() gets what import left; the
        others carry on on v2."""
        d = start(keys={"max_message_size": "64K"})
        with d:
            url = d.url("/counter")

            async def go():
                ok = Client(await connect(url), "ok")
                bad_out = Client(await connect(url), "out")
                bad_in = Client(await connect(url), "in")
                fat = Client(await connect(url), "fat")
                for c in (ok, bad_out, bad_in, fat):
                    await c.ask("one")
                    await c.ask("two")
                await bad_out.ask("fail-export")
                await bad_in.ask("fail-import")
                await fat.ask("fat-export")
                d.deploy("counter_v2")
                _, moves = await asyncio.to_thread(d.reload)
                self.assertEqual(moved(moves), (1, 3))
                for c in (bad_out, bad_in, fat):
                    with self.assertRaises(ConnectionClosed):
                        await recv(c.ws)
                    self.assertEqual(c.ws.close_code, 1012, c.name)
                self.assertEqual(await ok.ask("three"), ("v2", "three"))
                self.assertEqual(ok.count, 3)
                await ok.ws.close()

            run(go())
            records = read_records(d.path("record.txt"),
                                   until=lambda ls: len(ls) >= 4)
            self.assertIsNotNone(d.find_log(
                r"export_state\(\) of plugin counter \(generation \d+\) "
                r"returned -7: closing with 1012"))  # WEBSOCK_ETOOBIG
        self.assertEqual(sorted(records), ["terminate v1 3 1012",  # export failed
                                           "terminate v1 3 1012",  # too big
                                           "terminate v2 3 1000",  # ok, closed
                                           "terminate v2 3 1012"])  # import failed

    def test_without_callbacks_drains(self):
        """An old build without export_state, then a new build without
        import_state: each reload drains instead (logged), and the old
        connections stay open on the old code."""
        d = start("counter_plain")
        with d:
            url = d.url("/counter")

            async def go():
                p = Client(await connect(url), "p")
                self.assertEqual(await p.ask("a"), ("p1", "a"))
                d.deploy("counter")
                at, _ = await asyncio.to_thread(d.reload, handoff=False)
                await asyncio.to_thread(
                    d.wait_lines, r"route /counter: reload = handoff, but the old "
                    r"plugin has no export_state: generation \d+ drains instead", 1, at)
                v1 = Client(await connect(url), "v1")
                self.assertEqual(await v1.ask("b"), ("v1", "b"))
                self.assertEqual(await p.ask("c"), ("p1", "c"))
                d.deploy("counter_plain")
                at, _ = await asyncio.to_thread(d.reload, handoff=False)
                await asyncio.to_thread(
                    d.wait_lines, r"route /counter: reload = handoff, but the new "
                    r"plugin has no import_state: generation \d+ drains instead", 1, at)
                self.assertEqual(await v1.ask("d"), ("v1", "d"))
                self.assertEqual(await p.ask("e"), ("p1", "e"))
                self.assertEqual((p.count, v1.count), (3, 2))
                cur, old = await asyncio.to_thread(current, d)
                self.assertEqual(sorted(g["conns"] for g in old), [1, 1])
                self.assertEqual(cur[0]["conns"], 0)
                self.assertEqual(d.find_log(HANDOFF_RX % "/counter"), None)
                await p.ws.close()
                await v1.ws.close()

            run(go())


class OldHeaderTest(unittest.TestCase):

    def test_plugin_built_against_sdk_1_0_header(self):
        """old_echo.so, built against tests/fixtures/websock_v1_0.h (the
        header before any table field was appended), loads, answers with
        its [options] prefix, and its shorter table reads as having no
        export_state: a `reload = handoff` drains it."""
        d = Daemon({"old": {"path": "/old", "plugin": test_plugin("old_echo"),
                            "reload": "handoff", "options": {"prefix": "old:"}}})
        with d:
            async def go():
                ws = await connect(d.url("/old"))
                self.assertEqual(await ask(ws, "hi"), "old:hi")
                write_route(d.plugins_d, "old", {
                    "path": "/old", "plugin": test_plugin("old_echo"),
                    "reload": "handoff", "options": {"prefix": "new:"}})
                at, _ = await asyncio.to_thread(d.reload, "/old", False)
                await asyncio.to_thread(
                    d.wait_lines, r"route /old: reload = handoff, but the old "
                    r"plugin has no export_state", 1, at)
                self.assertEqual(await ask(ws, "still"), "old:still")
                async with connect(d.url("/old")) as ws2:
                    self.assertEqual(await ask(ws2, "hi"), "new:hi")
                await ws.close()

            run(go())


if __name__ == "__main__":
    unittest.main()
