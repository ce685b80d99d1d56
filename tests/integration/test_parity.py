"""Parity: the SDK's test library and the real websockd run one plugin the
same way. tests/parity/script.txt is played against the recorder plugin
twice: by python3-websockets through the real daemon, and by
tests/parity/parity_sdk.c through libwebsock_test. Both must print the same
client-side events and make the plugin record the same callbacks, in the
same order, with the same results (pushfail/closefail codes, terminate
reasons).

Run by ctest as integ_parity (WSH_PARITY_SDK names the driver).
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

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "parity", "script.txt")
ADDITIONS = os.path.join(HERE, "..", "parity", "additions.txt")
DRIVER = os.environ.get("WSH_PARITY_SDK", "build/tests/parity_sdk")
OP_TIMEOUT = 10.0
SYNC = "#sync"


def script_steps(script=SCRIPT):
    with open(script, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                cmd, _, arg = line.partition(" ")
                yield cmd, arg


class DaemonClient:
    """Plays the script against the daemon; collects the client's events."""

    def __init__(self, daemon, record=None):
        self.d = daemon
        self.record = record
        self.out = []
        self.ws = None
        self.generation = 1

    def closed(self, ws):
        self.out.append("closed %s %s" % (ws.close_code, ws.close_reason))
        self.ws = None

    async def drain(self):
        """Sends echo:#sync and prints everything up to its echo."""
        ws = self.ws
        try:
            await ws.send("echo:" + SYNC)
            while True:
                msg = await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
                if isinstance(msg, bytes):
                    self.out.append("recv binary %d %s" % (len(msg), msg.decode()))
                elif msg != SYNC:
                    self.out.append("recv text " + msg)
                else:
                    return
        except websockets.ConnectionClosed:
            await ws.wait_closed()
            self.closed(ws)

    async def connect(self, arg, refuse):
        query, _, protos = arg.partition(" ")
        url = self.d.url("/parity" + ("" if query == "-" else "?" + query))
        kw = {"ping_interval": None, "open_timeout": OP_TIMEOUT,
              "close_timeout": 5, "max_size": None}
        if protos:
            kw["subprotocols"] = protos.split(",")
        if refuse:
            kw["extra_headers"] = {"X-Test-Refuse": "yes"}
        try:
            self.ws = await websockets.connect(url, **kw)
        except websockets.InvalidStatusCode as e:
            self.out.append("status %d" % e.status_code)
            return
        self.out.append("status 101")

    async def open(self, path):
        kw = {"ping_interval": None, "open_timeout": OP_TIMEOUT,
              "close_timeout": 5, "max_size": None}
        try:
            self.ws = await websockets.connect(self.d.url(path), **kw)
        except websockets.InvalidStatusCode as e:
            self.out.append("status %d" % e.status_code)
            return
        self.out.append("status 101")
        await self.drain()

    async def step(self, cmd, arg):
        if cmd in ("connect", "refuse"):
            await self.connect(arg, cmd == "refuse")
        elif cmd == "open":
            await self.open(arg)
            return
        elif self.ws is None:
            return
        elif cmd == "text":
            await self.ws.send(arg)
        elif cmd == "binary":
            await self.ws.send(arg.encode())
        elif cmd == "ping":
            await (await self.ws.ping(arg.encode()))
        elif cmd == "handoff":
            await asyncio.to_thread(self.handoff)
        elif cmd == "close":
            code, _, text = arg.partition(" ")
            await self.ws.close(int(code), text)
            self.closed(self.ws)
            return
        else:
            raise AssertionError("unknown step " + cmd)
        if self.ws is not None:
            await self.drain()

    def handoff(self):
        """reload = handoff: a changed .conf, SIGHUP, the connection moved
        (one worker), and the old generation's unload() recorded."""
        def unloads():
            return sum(1 for l in harness.read_records(self.record) if l == "unload")
        before = unloads()
        self.generation += 1
        route = self.d.routes["parity"]
        route["options"]["generation"] = str(self.generation)
        harness.write_route(self.d.plugins_d, "parity", route)
        start = len(self.d.log().splitlines())
        self.d.signal(signal.SIGHUP)
        deadline = time.time() + 20
        rx = re.compile(r"worker 0: route /parity: 1 connection\(s\) handed off")
        while not any(rx.search(l) for l in self.d.log().splitlines()[start:]):
            if time.time() > deadline:
                raise AssertionError("no handoff:\n" + self.d.log()[-4000:])
            time.sleep(0.01)
        harness.read_records(self.record, timeout=10,
                             until=lambda ls: sum(1 for l in ls if l == "unload") > before)

    async def play(self, script=SCRIPT):
        for cmd, arg in script_steps(script):
            await self.step(cmd, arg)


class ParityTest(unittest.TestCase):
    def via_daemon(self, tmp):
        record = os.path.join(tmp, "daemon.rec")
        routes = {"parity": {"path": "/parity", "plugin": harness.RECORDER_SO,
                             "subprotocols": "chat, superchat",
                             "reload": "handoff",
                             "options": {"record": record, "color": "blue"}}}
        with harness.Daemon(routes, workers=1) as d:
            client = DaemonClient(d, record)
            asyncio.run(asyncio.wait_for(client.play(), 120))
        return client.out, harness.read_records(record)

    def via_sdk(self, tmp):
        record = os.path.join(tmp, "sdk.rec")
        p = subprocess.run([DRIVER, harness.RECORDER_SO, SCRIPT, record],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.splitlines(), harness.read_records(record)

    def test_same_events_and_callbacks(self):
        with tempfile.TemporaryDirectory(prefix="websockd-parity-") as tmp:
            d_out, d_rec = self.via_daemon(tmp)
            s_out, s_rec = self.via_sdk(tmp)
        # the script is not trivial: it reaches every kind of close
        self.assertIn("closed 1011 internal error", d_out)
        self.assertIn("closed 1012 service restart", d_out)
        self.assertIn("recv text moved", d_out)  # a handoff happened
        self.assertTrue(any(l.startswith("import ") for l in d_rec), d_rec)
        self.assertGreater(len(d_rec), 60)
        self.assertEqual(d_out, s_out,
                         "client events differ (daemon first, then SDK)")
        self.assertEqual(d_rec, s_rec,
                         "recorded callbacks differ (daemon first, then SDK)")


class AdditionsParityTest(unittest.TestCase):
    """tests/parity/additions.txt against tests/plugins/additions.c on a
    pattern route: path parameters, the plugin's context, where handle_info
    messages came from, topic counts and negative results, the same through
    the daemon and the test library."""

    ROUTE = "/rooms/:room/*"

    def test_same_events(self):
        so = harness.test_plugin("additions")
        with harness.Daemon({"r": {"path": self.ROUTE, "plugin": so,
                                   "options": {"greeting": "hey"}}},
                            workers=1) as d:
            client = DaemonClient(d)
            asyncio.run(asyncio.wait_for(client.play(ADDITIONS), 120))
        with tempfile.TemporaryDirectory(prefix="websockd-parity-") as tmp:
            p = subprocess.run([DRIVER, so, ADDITIONS,
                                os.path.join(tmp, "none.rec"), self.ROUTE,
                                "greeting=hey"],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        # the script reaches what it is about
        for line in ("recv text init room=a b rest=x/y ctx=hey",
                     "recv text info publish news p", "status 400",
                     "status 403", "status 404", "closed 1011 internal error"):
            self.assertIn(line, client.out)
        self.assertEqual(client.out, p.stdout.splitlines(),
                         "client events differ (daemon first, then SDK)")


if __name__ == "__main__":
    unittest.main()
