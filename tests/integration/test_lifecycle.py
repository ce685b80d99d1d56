"""Messages, timers, topics, workers, backpressure and limits: the real
websockd with the msgs test plugin (tests/plugins/msgs.c) and the shipped
chat plugin, driven by Debian's python3-websockets and by raw sockets (for
clients that never read, never answer pings or send their headers slowly).

Run by ctest as integ_lifecycle (tests.cmake sets WEBSOCKD,
WSH_TEST_PLUGIN_DIR, WSH_PLUGINS_D). Every wait is bounded; every websockd is
stopped by PID (harness.Daemon), and its log is checked for sanitizer reports.
"""

import asyncio
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from websockets.exceptions import ConnectionClosed, InvalidStatusCode

import harness
from harness import (FrameReader, mask_frame, read_http_head, read_records,
                     test_plugin, upgrade_request)

MSGS_SO = test_plugin("msgs")
CHAT_SO = os.path.join(harness.PLUGINS_D, "chat.so")

OP_TIMEOUT = 10.0    # one client operation
TEST_TIMEOUT = 60.0  # one whole client coroutine
MIB = 1024 * 1024
CHUNK = 64 * 1024    # msgs' flood message size
# The server's memory may grow this much while a client that does not read is
# flooded with 100 MiB: per connection at most max_unsent (4M) plus one
# message (64 KiB here), since only what is already queued counts against
# max_unsent; ASan's allocator and quarantine add their share.
RSS_BOUND = 64 * MIB
COARSE_CLOCK = 0.01  # a jiffy at HZ=100
ASAN_QUARANTINE_MB = 16  # for the daemon whose memory is measured

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class Daemon(harness.Daemon):
    """harness.Daemon that can name the worker serving a client and read its
    own memory use."""

    def rec(self, name):
        """The record file of route `name`."""
        return self.path(name + ".rec")

    def conn_ids(self, path=None):
        """Connection ids of every 101 the log shows (id % 1000 = worker)."""
        pat = r"GET %s: 101 \(conn (\d+)" % (re.escape(path) if path else r"\S+")
        return [int(x) for x in re.findall(pat, self.log())]

    def worker_of(self, local_port, timeout=5.0):
        """The worker serving the client whose local port this is."""
        m = self.wait_log(r"127\.0\.0\.1:%d GET \S+: 101 \(conn (\d+)" % local_port,
                          timeout)
        return int(m.group(1)) % 1000

    def log_count(self, pattern):
        return len(re.findall(pattern, self.log()))

    def wait_log_count(self, pattern, count, timeout=10.0):
        deadline = time.time() + timeout
        while self.log_count(pattern) < count:
            if time.time() > deadline:
                raise AssertionError("fewer than %d log lines matching %r in:\n%s"
                                     % (count, pattern, self.log()))
            time.sleep(0.02)

    def mem(self):
        """(VmRSS, VmHWM) of websockd, in bytes."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        return out["VmRSS"], out["VmHWM"]


def msgs_daemon(routes, workers=2, args=()):
    """A Daemon whose routes all use msgs.so, each with its own record file
    (each route loads its own copy of the plugin, so numbers restart)."""
    d = Daemon({}, workers=workers, args=args)
    for name, keys in routes.items():
        route = {"plugin": MSGS_SO}
        route.update(keys)
        route["options"] = {"record": d.rec(name)}
        d.routes[name] = route
    return d


run, connect, _, _ = harness.client_helpers(TEST_TIMEOUT, OP_TIMEOUT)


# -- the record file ---------------------------------------------------------

def terminations(lines):
    """{N: [(kind, code, text), ...]} from 'terminate N KIND CODE TEXT'
    lines (a list, so that a second terminate would show)."""
    out = {}
    for line in lines:
        if line.startswith("terminate "):
            parts = line.split(" ", 4)
            out.setdefault(int(parts[1]), []).append(
                (int(parts[2]), int(parts[3]), parts[4] if len(parts) > 4 else ""))
    return out


def wait_terminate(path, n, timeout=OP_TIMEOUT):
    """(kind, code, text) of connection n's one terminate line."""
    lines = read_records(path, timeout, until=lambda l: n in terminations(l))
    terms = terminations(lines).get(n)
    if not terms:
        raise AssertionError("no terminate for %d in:\n%s" % (n, "\n".join(lines)))
    if len(terms) != 1:
        raise AssertionError("%d terminates for %d in:\n%s"
                             % (len(terms), n, "\n".join(lines)))
    return terms[0]


def wait_record(path, regex, timeout=OP_TIMEOUT):
    """The match of the first record line matching regex."""
    rx = re.compile(regex)
    lines = read_records(path, timeout,
                         until=lambda l: any(rx.fullmatch(x) for x in l))
    for line in lines:
        m = rx.fullmatch(line)
        if m:
            return m
    raise AssertionError("no record line %r in:\n%s" % (regex, "\n".join(lines)))


# -- python-websockets clients -------------------------------------------------

class Client:
    """A websockets connection whose messages a reader task collects (with
    their arrival times), so a test can wait for one and still see all."""

    def __init__(self, ws):
        self.ws = ws
        self.msgs = []
        self.times = []
        self.n = None
        self._changed = asyncio.Event()
        self.done = False
        self.task = asyncio.get_running_loop().create_task(self._read())

    @property
    def port(self):
        return self.ws.local_address[1]

    async def _read(self):
        try:
            async for m in self.ws:
                self.msgs.append(m)
                self.times.append(time.monotonic())
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.done = True
            self._changed.set()

    async def wait(self, pred, start=0, timeout=OP_TIMEOUT):
        """(index, message) of the first message from `start` on for which
        pred holds."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.msgs):
                if pred(self.msgs[i]):
                    return i, self.msgs[i]
                i += 1
            if self.done:
                raise AssertionError("connection closed (%s) while waiting; last "
                                     "messages: %r" % (self.ws.close_code,
                                                       self.msgs[-5:]))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting; last messages: %r"
                                     % (self.msgs[-5:],))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def wait_text(self, text, start=0, timeout=OP_TIMEOUT):
        return (await self.wait(lambda m: m == text, start, timeout))[0]

    async def call(self, text, prefix, timeout=OP_TIMEOUT):
        """Sends a command; returns the rest of the first answer that starts
        with prefix."""
        start = len(self.msgs)
        await self.ws.send(text)
        _, m = await self.wait(lambda m: isinstance(m, str) and m.startswith(prefix),
                               start, timeout)
        return m[len(prefix):]

    async def ref(self):
        self.n = int(await self.call("self", "ref:"))
        return self.n

    def infos(self, start=0):
        return [m[5:] for m in self.msgs[start:]
                if isinstance(m, str) and m.startswith("info:")]

    async def closed(self, timeout=OP_TIMEOUT):
        """Waits until the server has closed the connection."""
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
        return self.ws.close_code

    async def close(self, code=1000, reason=""):
        await asyncio.wait_for(self.ws.close(code, reason), OP_TIMEOUT)
        await asyncio.wait_for(self.task, OP_TIMEOUT)


def counting(pred, want):
    """A predicate for Client.wait (which sees each message once) that holds
    once `want` messages have satisfied `pred`."""
    seen = [0]

    def count(m):
        if isinstance(m, str) and pred(m):
            seen[0] += 1
        return seen[0] >= want
    return count


async def open_client(url, **kw):
    return Client(await connect(url, **kw))


async def open_clients(url, count):
    """`count` clients, opened one after the other (so that round-robin puts
    consecutive ones on different workers)."""
    return [await open_client(url) for _ in range(count)]


async def close_all(clients):
    await asyncio.gather(*(c.close() for c in clients if not c.done),
                         return_exceptions=True)


# -- raw clients ---------------------------------------------------------------

def raw_open(d, path, rcvbuf=None):
    """A raw socket upgraded to `path`; rcvbuf (set before connect) keeps the
    kernel from buffering much for a client that does not read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(OP_TIMEOUT)
    s.connect(("127.0.0.1", d.port))
    s.sendall(upgrade_request(path))
    status, _, rest = read_http_head(s)
    if status != 101:
        s.close()
        raise AssertionError("upgrade to %s got %d" % (path, status))
    return s, FrameReader(s, rest)


def raw_call(s, fr, text, prefix):
    """Sends a masked text command; returns the answer after prefix."""
    s.sendall(mask_frame(OP_TEXT, text.encode()))
    while True:
        _, op, payload = fr.frame()
        if op == OP_TEXT and payload.startswith(prefix.encode()):
            return payload[len(prefix):].decode()


def answer_close(s, fr):
    """Waits for the server's close frame, answers it; returns its code."""
    s.settimeout(15)
    code, _ = fr.close_frame()
    s.sendall(mask_frame(OP_CLOSE, struct.pack("!H", code)))
    return code


def http_get(port, path):
    """(status, body text) of a plain GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=OP_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def read_until_eof(s, timeout):
    """Reads and discards until EOF or reset; returns (bytes read, seconds),
    or raises if the server keeps the connection open past timeout."""
    t0 = time.monotonic()
    total = 0
    s.settimeout(0.5)
    while time.monotonic() - t0 < timeout:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return total, time.monotonic() - t0
        if not chunk:
            return total, time.monotonic() - t0
        total += len(chunk)
    raise AssertionError("no EOF within %.1f s (%d bytes read)" % (timeout, total))


# ---------------------------------------------------------------------------
# Chat rooms: 200 clients across 2 workers
# ---------------------------------------------------------------------------

class ChatTest(unittest.TestCase):
    """4 rooms x 50 clients of the shipped chat plugin over 2 workers, each
    client sending 5 messages (when chat.so is not built: the same rooms as
    msgs topics)."""

    ROOMS = 4
    PER_ROOM = 50
    MESSAGES = 5

    def test_rooms_publish_fanout(self):
        if os.path.exists(CHAT_SO):
            self.chat_rooms("publish")
        else:
            self.topic_rooms()

    @unittest.skipUnless(os.path.exists(CHAT_SO), "chat.so not built")
    def test_rooms_broadcast_fanout(self):
        self.chat_rooms("broadcast")

    def check_rooms(self, members, received):
        """members: {room: [client names]}; received: {client: [(room,
        sender, k)]} in arrival order. Every member gets every message of its
        room exactly once, per sender in order, and nothing from another
        room."""
        for room, names in members.items():
            expected = {(room, s, k) for s in names for k in range(self.MESSAGES)}
            for name in names:
                got = received[name]
                with self.subTest(room=room, client=name):
                    self.assertEqual(len(got), len(set(got)), "duplicates")
                    self.assertEqual(set(got), expected)
                    for s in names:
                        ks = [k for (_, sender, k) in got if sender == s]
                        self.assertEqual(ks, list(range(self.MESSAGES)),
                                         "order of %s's messages" % s)

    def rooms(self):
        return {"room%d" % r: ["r%dc%d" % (r, i) for i in range(self.PER_ROOM)]
                for r in range(self.ROOMS)}

    def topic_rooms(self):
        """Rooms as msgs topics: sub:ROOM, pub:ROOM:SENDER:K -> info:..."""
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2)
        with d:
            async def go():
                members = self.rooms()
                clients = {}
                try:
                    names = [n for r in members for n in members[r]]
                    opened = await asyncio.gather(
                        *(open_client(d.url("/m")) for _ in names))
                    clients = dict(zip(names, opened))
                    subs = await asyncio.gather(*(
                        clients[n].call("sub:%s" % r, "sub:")
                        for r in members for n in members[r]))
                    self.assertEqual(set(subs), {"0"})
                    starts = {n: len(c.msgs) for n, c in clients.items()}

                    async def talk(r, n):
                        for k in range(self.MESSAGES):
                            await clients[n].ws.send("pub:%s:%s:%s:%d" % (r, r, n, k))
                    await asyncio.gather(*(talk(r, n) for r in members
                                           for n in members[r]))
                    want = self.PER_ROOM * self.MESSAGES
                    await asyncio.gather(*(
                        c.wait(counting(lambda m: m.startswith("info:"), want),
                               starts[n], 30)
                        for n, c in clients.items()))
                    await asyncio.sleep(0.3)  # anything extra would show now
                    received = {}
                    for n, c in clients.items():
                        received[n] = []
                        for info in c.infos(starts[n]):
                            room, sender, k = info.split(":")
                            received[n].append((room, sender, int(k)))
                    workers = {d.worker_of(c.port) for c in clients.values()}
                    return members, received, workers
                finally:
                    await close_all(list(clients.values()))
            members, received, workers = run(go(), timeout=90)
            self.assertEqual(workers, {0, 1})
            self.check_rooms(members, received)

    def chat_rooms(self, fanout):
        """The shipped chat plugin (plugins/chat/chat.c): connect to
        /chat?room=R&name=N; every text message goes to every member of the
        room, the sender included, as {"type":"msg","room","user","text"}."""
        d = Daemon({"chat": {"path": "/chat", "plugin": CHAT_SO,
                             "options": {"fanout": fanout}}}, workers=2)
        with d:
            async def go():
                members = self.rooms()
                clients = {}
                try:
                    # init() joins the room before the 101 goes out, so once
                    # every client is connected every room is complete
                    pairs = [(r, n) for r in members for n in members[r]]
                    opened = await asyncio.gather(*(
                        open_client(d.url("/chat?" + urllib.parse.urlencode(
                            {"room": r, "name": n})))
                        for r, n in pairs))
                    clients = dict(zip([n for _, n in pairs], opened))
                    starts = {n: len(c.msgs) for n, c in clients.items()}

                    async def talk(n):
                        for k in range(self.MESSAGES):
                            await clients[n].ws.send("%s says %d" % (n, k))
                    await asyncio.gather(*(talk(n) for n in clients))
                    want = self.PER_ROOM * self.MESSAGES
                    await asyncio.gather(*(
                        c.wait(counting(lambda m: '"type":"msg"' in m, want),
                               starts[n], 30)
                        for n, c in clients.items()))
                    await asyncio.sleep(0.3)  # anything extra would show now
                    received = {}
                    for n, c in clients.items():
                        received[n] = []
                        for obj in chat_msgs(c.msgs[starts[n]:]):
                            sender, _, k = obj["text"].split(" ")
                            self.assertEqual(obj["user"], sender)
                            received[n].append((obj["room"], sender, int(k)))
                    workers = {d.worker_of(c.port) for c in clients.values()}
                    return members, received, workers
                finally:
                    await close_all(list(clients.values()))
            members, received, workers = run(go(), timeout=90)
            self.assertEqual(workers, {0, 1})
            self.check_rooms(members, received)


    @unittest.skipUnless(os.path.exists(CHAT_SO), "chat.so not built")
    def test_announce_off(self):
        """announce = off: members hear no join or leave lines, only
        messages (the fan-out benchmark fills a room of 10,000 this way);
        websockd -t refuses another value and a key chat does not know."""
        d = Daemon({"chat": {"path": "/chat", "plugin": CHAT_SO,
                             "options": {"fanout": "broadcast",
                                         "announce": "off"}}}, workers=2)
        with d:
            async def go():
                clients = []
                try:
                    for i in range(6):
                        clients.append(await open_client(
                            d.url("/chat?room=quiet&name=q%d" % i)))
                    await clients[5].close()  # would be a leave line
                    await clients[0].ws.send("after")
                    for c in clients[:5]:
                        await c.wait(lambda m: '"text":"after"' in m)
                    await asyncio.sleep(0.3)  # anything extra would show now
                    return [c.msgs for c in clients[:5]]
                finally:
                    await close_all(clients)
            got = run(go(), timeout=60)
        want = ['{"type":"msg","room":"quiet","user":"q0","text":"after"}']
        for msgs in got:
            self.assertEqual(msgs, want)
        for opts, why in ((("announce", "maybe"),), "load() refused the route"), \
                         ((("anounce", "off"),), 'unknown option "anounce"'):
            with tempfile.TemporaryDirectory(prefix="websockd-chat-") as tmp:
                harness.write_route(tmp, "chat", {
                    "path": "/chat", "plugin": CHAT_SO, "options": dict(opts)})
                p = subprocess.run([harness.WEBSOCKD, "-t", "--plugins", tmp],
                                   stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=60)
                self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertIn(why, p.stdout + p.stderr)


def chat_msgs(messages):
    """The {"type":"msg"} lines among chat messages (joins and leaves of
    other members are skipped)."""
    out = []
    for m in messages:
        if not isinstance(m, str):
            raise AssertionError("binary from chat: %r" % m[:50])
        obj = json.loads(m)
        if obj.get("type") == "msg":
            out.append(obj)
        elif obj.get("type") not in ("join", "leave"):
            raise AssertionError("unexpected chat line %r" % m)
    return out


# ---------------------------------------------------------------------------
# Workers: round-robin over 2 workers
# ---------------------------------------------------------------------------

class WorkersTest(unittest.TestCase):
    def test_100_connections_split_evenly(self):
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2)
        with d:
            async def go():
                clients = []
                try:
                    clients = await asyncio.gather(
                        *(open_client(d.url("/m")) for _ in range(100)))
                    refs = await asyncio.gather(*(c.ref() for c in clients))
                    workers = [d.worker_of(c.port) for c in clients]
                    metrics = await asyncio.get_running_loop().run_in_executor(
                        None, http_get, d.port, "/metrics")
                    return refs, workers, metrics
                finally:
                    await close_all(clients)
            refs, workers, (status, metrics) = run(go())
            self.assertEqual(sorted(refs), list(range(100)))  # all served
            self.assertEqual(status, 200)
            gauge = {int(w): int(v) for w, v in re.findall(
                r'^websockd_worker_connections\{worker="(\d+)"\} (\d+)$',
                metrics, re.M)}
            self.assertEqual(set(gauge), {0, 1}, metrics)
            self.assertEqual(sum(gauge.values()), 100, metrics)
            self.assertLessEqual(abs(gauge[0] - gauge[1]), 2, metrics)
            ids = d.conn_ids("/m")
            self.assertEqual(len(ids), 100, d.log())
            per_worker = [sum(1 for i in ids if i % 1000 == w) for w in (0, 1)]
            self.assertTrue(abs(per_worker[0] - per_worker[1]) <= 2,
                            "split %r" % per_worker)
            self.assertLessEqual(abs(per_worker[0] - 50), 1, per_worker)
            self.assertEqual(sorted(workers.count(w) for w in (0, 1)),
                             sorted(per_worker))


# ---------------------------------------------------------------------------
# Messages (websock_send), timers and topics
# ---------------------------------------------------------------------------

def asan_build():
    """Is websockd built with AddressSanitizer?"""
    try:
        with open(harness.WEBSOCKD, "rb") as f:
            return b"libasan.so" in f.read()
    except OSError:
        return False


# Regression: wsh_worker_post_send() once left the mail's `gen` field
# uninitialised, and every websock_send() delivery then released a garbage
# generation (a crash under ASan). The send tests below cover it.


async def pair_on_two_workers(d, count=2):
    """`count` clients (numbers known), the first two on different workers."""
    clients = await open_clients(d.url("/m"), count)
    for c in clients:
        await c.ref()
    w = [d.worker_of(c.port) for c in clients]
    if w[0] == w[1]:  # round-robin was moved on by another connection
        other = next((i for i in range(2, count) if w[i] != w[0]), None)
        if other is None:
            extra = await open_client(d.url("/m"))
            await extra.ref()
            clients.append(extra)
            other = len(clients) - 1
        clients[1], clients[other] = clients[other], clients[1]
    if d.worker_of(clients[0].port) == d.worker_of(clients[1].port):
        raise AssertionError("no two clients on different workers")
    return clients


class SendTest(unittest.TestCase):
    """websock_self / websock_send: one daemon per test."""

    def test_send_from_plugin_thread_in_order(self):
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2)
        with d:
            async def go():
                clients = []
                try:
                    clients = await pair_on_two_workers(d)
                    a, b = clients[:2]
                    start = len(b.msgs)
                    self.assertEqual(await a.call("thread:%d:1000" % b.n,
                                                  "thread:"), "0")
                    await b.wait_text("info:t999", start, timeout=30)
                    return b.infos(start), b.n
                finally:
                    await close_all(clients)
            infos, n = run(go())
            self.assertEqual(infos, ["t%d" % i for i in range(1000)])
            wait_record(d.rec("m"), r"thread %d 1000 0" % n)

    def test_send_from_other_connection_in_order(self):
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2)
        with d:
            async def go():
                clients = []
                try:
                    # b the target; a on the other worker, c on b's
                    clients = await open_clients(d.url("/m"), 4)
                    for x in clients:
                        await x.ref()
                    b = clients[0]
                    wb = d.worker_of(b.port)
                    a = next(x for x in clients[1:] if d.worker_of(x.port) != wb)
                    c = next(x for x in clients[1:] if d.worker_of(x.port) == wb)
                    start = len(b.msgs)
                    self.assertEqual(await a.call("send:%d:x" % b.n, "sent:"), "0")
                    await b.wait_text("info:x", start)
                    # two senders (one on b's worker, one not), interleaved:
                    # each one's messages arrive in the order sent
                    start = len(b.msgs)

                    async def burst(sender, tag):
                        for i in range(50):
                            await sender.ws.send("send:%d:%s%d" % (b.n, tag, i))
                    await asyncio.gather(burst(a, "a"), burst(c, "c"))
                    await b.wait_text("info:a49", start)
                    await b.wait_text("info:c49", start)
                    await asyncio.sleep(0.2)
                    self.assertEqual(a.msgs.count("sent:0"), 51)
                    self.assertEqual(c.msgs.count("sent:0"), 50)
                    return b.infos(start)
                finally:
                    await close_all(clients)
            infos = run(go())
            self.assertEqual([i for i in infos if i.startswith("a")],
                             ["a%d" % i for i in range(50)])
            self.assertEqual([i for i in infos if i.startswith("c")],
                             ["c%d" % i for i in range(50)])
            self.assertEqual(len(infos), 100)

    def test_send_to_itself_before_later_input(self):
        """What a callback sends to its own connection (its worker's own
        mail) reaches handle_info before input that arrived after it: the
        message sent while the callback still runs comes after the info."""
        d = msgs_daemon({"m": {"path": "/m"}}, workers=1)
        with d:
            async def go():
                a = await open_client(d.url("/m"))
                try:
                    n = await a.ref()
                    start = len(a.msgs)
                    await a.ws.send("sendwait:300:mine")
                    # the callback has sent and sleeps: "later" arrives
                    # while it runs
                    await asyncio.to_thread(wait_record, d.rec("m"),
                                            r"sendwait %d" % n)
                    await a.ws.send("echo:later")
                    await a.wait_text("later", start)
                    return a.msgs[start:]
                finally:
                    await close_all([a])
            self.assertEqual(run(go()), ["sendwait:0", "info:mine", "later"])

    def test_send_to_itself_in_a_chain_still_serves_input(self):
        """A handle_info that sends to its own connection again and again
        (each message the next one's sender) does not hold the worker: the
        input that arrives meanwhile is answered long before the chain
        ends."""
        d = msgs_daemon({"m": {"path": "/m"}}, workers=1)
        with d:
            async def go():
                a = await open_client(d.url("/m"))
                try:
                    start = len(a.msgs)
                    self.assertEqual(await a.call("chain:300000", "chain:"), "0")
                    await a.ws.send("echo:during")
                    during = await a.wait_text("during", start)
                    chained = await a.wait_text("chained", start, timeout=60)
                    return during, chained
                finally:
                    await close_all([a])
            during, chained = run(go())
            self.assertLess(during, chained)

    def test_input_is_served_in_the_order_it_came(self):
        """A worker takes its connections' input in the order it arrived,
        whatever it served last: A's second message, which came after B's,
        is answered after it although A was served in the worker's last
        turn (level-triggered, epoll kept A ahead of sockets that became
        ready after that turn began)."""
        d = msgs_daemon({"m": {"path": "/m"}}, workers=1)
        with d:
            rec = d.rec("m")

            async def go():
                y, a, x, b = clients = await open_clients(d.url("/m"), 4)
                try:
                    for c in clients:
                        await c.ref()
                    starts = [len(c.msgs) for c in clients]
                    # the worker sleeps in Y's callback: A's and X's input
                    # wait, in that order, and come in one turn
                    await y.ws.send("sleep:300")
                    await asyncio.to_thread(wait_record, rec,
                                            r"in %d sleep:300" % y.n)
                    await a.ws.send("order")
                    await asyncio.sleep(0.05)
                    await x.ws.send("sleep:400")
                    # A is answered, then X's callback sleeps: B's input,
                    # then A's next, wait for the next turn
                    await asyncio.to_thread(wait_record, rec,
                                            r"in %d sleep:400" % x.n)
                    await b.ws.send("order")
                    await asyncio.sleep(0.05)
                    await a.ws.send("order")
                    def order(m):
                        return isinstance(m, str) and m.startswith("order:")
                    _, bm = await b.wait(order, starts[3])
                    i, first = await a.wait(order, starts[1])
                    _, second = await a.wait(order, i + 1)
                    return int(first[6:]), int(bm[6:]), int(second[6:])
                finally:
                    await close_all(clients)
            a1, b1, a2 = run(go())
            self.assertEqual(a1, 1)
            self.assertLess(b1, a2, "A's later input was served before B's")

    def test_send_to_closed_connection_is_enoent(self):
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2)
        with d:
            rec = d.rec("m")

            async def go():
                clients = []
                try:
                    clients = await pair_on_two_workers(d)
                    a, gone = clients[:2]
                    await gone.close()
                    self.assertEqual(wait_terminate(rec, gone.n)[:2], (1, 1000))
                    self.assertEqual(await a.call("gone", "gone:"), "-6")
                    self.assertEqual(await a.call("gone:%d" % gone.n, "gone:"), "-6")
                    self.assertEqual(await a.call("send:%d:x" % gone.n, "sent:"), "-6")
                    self.assertEqual(await a.call("thread:%d:5" % gone.n, "thread:"),
                                     "0")
                    wait_record(rec, r"thread %d 0 5" % gone.n)
                    # new connections may take the closed one's slot: the
                    # old ref must not reach them
                    fresh = await open_clients(d.url("/m"), 2)
                    clients += fresh
                    for f in fresh:
                        await f.ref()
                    self.assertEqual(await a.call("send:%d:stale" % gone.n, "sent:"),
                                     "-6")
                    await asyncio.sleep(0.2)
                    for f in fresh:
                        self.assertNotIn("info:stale", f.msgs)
                finally:
                    await close_all(clients)
            run(go())


class TimersTopicsTest(unittest.TestCase):
    """websock_send_after / websock_cancel_timer and topics: one daemon."""

    @classmethod
    def setUpClass(cls):
        cls.d = msgs_daemon({"m": {"path": "/m"}}, workers=2,
                            args=("--close-timeout-ms", "1000"))
        cls.d.start()
        cls.rec = cls.d.rec("m")

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.assertIsNone(self.d.proc.poll(), "websockd died:\n" + self.d.log())

    def url(self):
        return self.d.url("/m")

    # -- websock_send_after ---------------------------------------------------
    def test_send_after_timing(self):
        async def go():
            clients = []
            try:
                clients = [await open_client(self.url())]
                a = clients[0]
                start = len(a.msgs)
                t0 = time.monotonic()
                await a.ws.send("after:200:x")
                _, m = await a.wait(lambda m: m.startswith("timer:"), start)
                self.assertGreater(int(m[6:]), 0)
                i = await a.wait_text("info:x", start, timeout=5)
                return a.times[i] - t0
            finally:
                await close_all(clients)
        elapsed = run(go())
        # libevent may time with CLOCK_MONOTONIC_COARSE (a jiffy behind the
        # clock Python reads): allow that much early
        self.assertGreaterEqual(elapsed, 0.2 - COARSE_CLOCK)
        self.assertLess(elapsed, 0.2 + 1.5)

    def test_send_after_order_and_cancel(self):
        async def go():
            clients = []
            try:
                clients = await open_clients(self.url(), 2)
                a, b = clients
                start = len(a.msgs)
                late = int(await a.call("after:300:late", "timer:"))
                early = int(await a.call("after:100:early", "timer:"))
                doomed = int(await a.call("after:400:doomed", "timer:"))
                self.assertEqual(len({late, early, doomed}), 3)
                # cancel before it fires: never arrives
                self.assertEqual(await a.call("cancel:%d" % doomed, "cancel:"), "0")
                self.assertEqual(await a.call("cancel:%d" % doomed, "cancel:"), "-6")
                # another connection cannot cancel a's timer
                self.assertEqual(await b.call("cancel:%d" % late, "cancel:"), "-6")
                await a.wait_text("info:late", start, timeout=5)
                await asyncio.sleep(0.5 + 0.1)  # past the doomed one's time
                self.assertNotIn("info:doomed", a.msgs)
                self.assertLess(a.msgs.index("info:early"), a.msgs.index("info:late"))
                # cancel after it fired: ENOENT
                fired = int(await a.call("after:20:fired", "timer:"))
                await a.wait_text("info:fired", start)
                self.assertEqual(await a.call("cancel:%d" % fired, "cancel:"), "-6")
                self.assertEqual(await a.call("cancel:987654", "cancel:"), "-6")
                # a timer dies with its connection
                await b.call("after:150:orphan", "timer:")
                await b.close()
                await asyncio.sleep(0.3)
            finally:
                await close_all(clients)
        run(go())
        self.assertIsNone(self.d.proc.poll(), self.d.log())

    # -- topics -----------------------------------------------------------------
    def test_topics_across_workers(self):
        async def go():
            clients = []
            try:
                clients = await open_clients(self.url(), 4)
                for c in clients:
                    await c.ref()
                a, b, c, p = clients
                self.assertEqual({self.d.worker_of(x.port) for x in (a, b, c)},
                                 {0, 1})
                for x in (a, b, c):
                    self.assertEqual(await x.call("sub:news", "sub:"), "0")
                self.assertEqual(await a.call("sub:news", "sub:"), "0")  # twice
                self.assertEqual(await b.call("sub:marker-b", "sub:"), "0")
                self.assertEqual(await p.call("sub:", "sub:"), "-1")
                s = {x: len(x.msgs) for x in clients}
                self.assertEqual(await p.call("pub:news:1", "pub:"), "0")
                for x in (a, b, c):
                    await x.wait_text("info:1", s[x])
                # unsubscribe stops delivery; the marker, published after,
                # proves nothing of news:2 is still on its way to b
                self.assertEqual(await b.call("unsub:news", "unsub:"), "0")
                self.assertEqual(await b.call("unsub:news", "unsub:"), "-6")
                self.assertEqual(await p.call("pub:news:2", "pub:"), "0")
                self.assertEqual(await p.call("pub:marker-b:m", "pub:"), "0")
                for x in (a, c):
                    await x.wait_text("info:2", s[x])
                await b.wait_text("info:m", s[b])
                # a closed connection leaves its topics
                await c.close()
                wait_terminate(self.rec, c.n)
                self.assertEqual(await p.call("pub:news:3", "pub:"), "0")
                await a.wait_text("info:3", s[a])
                # the publisher gets its own message when subscribed
                self.assertEqual(await a.call("pub:news:4", "pub:"), "0")
                await a.wait_text("info:4", s[a])
                # broadcast: the frame itself, no handle_info
                for x in (a, b):
                    self.assertEqual(await x.call("sub:room", "sub:"), "0")
                self.assertEqual(await p.call("bcast:room:hello all", "bcast:"), "0")
                for x in (a, b):
                    await x.wait_text("hello all", s[x])
                self.assertEqual(await p.call("bcast:nobody:x", "bcast:"), "0")
                self.assertEqual(await p.call("pub:nobody:x", "pub:"), "0")
                await asyncio.sleep(0.2)
                return {x: x.msgs[s[x]:] for x in clients}
            finally:
                await close_all(clients)
        got = run(go())
        a, b, c, p = list(got)
        infos = lambda x: [m for m in got[x] if m.startswith("info:")]
        self.assertEqual(infos(a), ["info:1", "info:2", "info:3", "info:4"])
        self.assertEqual(infos(b), ["info:1", "info:m"])
        self.assertEqual(infos(c), ["info:1", "info:2"])
        self.assertEqual(infos(p), [])
        self.assertEqual(got[a].count("hello all"), 1)
        self.assertEqual(got[b].count("hello all"), 1)
        self.assertNotIn("hello all", got[p])


# ---------------------------------------------------------------------------
# terminate(): the reason for every way a connection ends
# ---------------------------------------------------------------------------

class TerminateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = msgs_daemon({"m": {"path": "/m"},
                             "idle": {"path": "/idle", "idle_timeout_ms": 300}},
                            workers=2, args=("--close-timeout-ms", "1000"))
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.assertIsNone(self.d.proc.poll(), "websockd died:\n" + self.d.log())

    def ended_by_command(self, command):
        """Sends a stopping command; returns (close code seen, terminate)."""
        async def go():
            c = await open_client(self.d.url("/m"))
            try:
                await c.ref()
                await c.ws.send(command)
                return await c.closed(), c.n
            finally:
                await close_all([c])
        code, n = run(go())
        return code, wait_terminate(self.d.rec("m"), n)

    def test_client_close(self):
        async def go():
            c = await open_client(self.d.url("/m"))
            await c.ref()
            await c.close(4001, "bye now")
            return c.n
        self.assertEqual(wait_terminate(self.d.rec("m"), run(go())),
                         (1, 4001, "bye now"))

    def test_plugin_stop(self):
        self.assertEqual(self.ended_by_command("stop"), (1000, (0, 1000, "")))

    def test_restart_stop(self):
        self.assertEqual(self.ended_by_command("restart"), (1012, (2, 1012, "")))

    def test_error_stop(self):
        self.assertEqual(self.ended_by_command("error:boom"), (1011, (4, 1011, "boom")))

    def test_idle_timeout(self):
        async def go():
            c = await open_client(self.d.url("/idle"))
            try:
                await c.ref()
                t0 = time.monotonic()
                code = await c.closed(timeout=5)
                return code, time.monotonic() - t0, c.n
            finally:
                await close_all([c])
        code, elapsed, n = run(go())
        self.assertEqual(code, 1001)
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 1.5)
        self.assertEqual(wait_terminate(self.d.rec("idle"), n)[:2], (3, 1001))

    def test_idle_timeout_many_at_once(self):
        """200 silent raw clients opened together on the 300 ms route are
        all closed with 1001 "idle timeout" and terminate(timeout), while
        one that keeps talking stays open past their deadline."""
        # each asks its number right after its upgrade: asked after all
        # 201 upgrades, the first ones' 300 ms could pass on a busy machine
        clients, ns = [], []
        try:
            for _ in range(200):
                clients.append(raw_open(self.d, "/idle"))
                ns.append(int(raw_call(*clients[-1], "self", "ref:")))
            talker = raw_open(self.d, "/idle")
            clients.append(talker)
            raw_call(talker[0], talker[1], "self", "ref:")
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.7:
                raw_call(talker[0], talker[1], "self", "ref:")
                time.sleep(0.1)
            for s, fr in clients[:-1]:
                self.assertEqual(fr.close_frame(), (1001, "idle timeout"))
            raw_call(talker[0], talker[1], "self", "ref:")  # still open
        finally:
            for s, _ in clients:
                s.close()
        for n in ns:
            self.assertEqual(wait_terminate(self.d.rec("idle"), n)[:2], (3, 1001))

    def test_protocol_error_unmasked_frame(self):
        s, fr = raw_open(self.d, "/m")
        try:
            n = int(raw_call(s, fr, "self", "ref:"))
            s.sendall(mask_frame(OP_TEXT, b"self", mask=False))
            code, _ = fr.close_frame()
            self.assertEqual(code, 1002)
        finally:
            s.close()
        kind, code, text = wait_terminate(self.d.rec("m"), n)
        self.assertEqual((kind, code), (4, 1002))
        self.assertTrue(text, "no detail for a protocol error")

    def test_tcp_reset_mid_frame(self):
        s, fr = raw_open(self.d, "/m")
        n = int(raw_call(s, fr, "self", "ref:"))
        frame = mask_frame(OP_TEXT, b"x" * 1000)
        s.sendall(frame[:300])  # header and part of the payload
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
        kind, code, text = wait_terminate(self.d.rec("m"), n)
        self.assertEqual((kind, code), (4, 1006))
        self.assertTrue(text)

    def test_eof_without_close_frame(self):
        """websock.h: ERROR with 1006 when the TCP connection ended without a
        close frame (a reset, an EOF)."""
        s, fr = raw_open(self.d, "/m")
        n = int(raw_call(s, fr, "self", "ref:"))
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(fr.at_eof(5))
        s.close()
        kind, code, text = wait_terminate(self.d.rec("m"), n)
        self.assertEqual((kind, code), (4, 1006))
        self.assertTrue(text)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_closes_1001(self):
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2)
        with d:
            rec = d.rec("m")
            s, fr = raw_open(d, "/m")
            raw_n = int(raw_call(s, fr, "self", "ref:"))

            async def go():
                clients = await open_clients(d.url("/m"), 3)
                for c in clients:
                    await c.ref()
                loop = asyncio.get_running_loop()
                raw = loop.run_in_executor(None, answer_close, s, fr)
                status = await loop.run_in_executor(None, d.stop)
                codes = [await c.closed(timeout=15) for c in clients]
                return status, codes, [c.n for c in clients], await raw
            try:
                status, codes, ns, raw_code = run(go())
            finally:
                s.close()
            self.assertEqual(status, 0, d.log())
            self.assertEqual(codes, [1001] * 3)
            self.assertEqual(raw_code, 1001)
            lines = read_records(rec)
        terms = terminations(lines)
        for n in ns + [raw_n]:
            self.assertEqual(terms.get(n), [(2, 1001, "")], "\n".join(lines))
        self.assertEqual(lines[-1], "unload", "\n".join(lines))

    def test_sigterm_while_plugin_thread_sends(self):
        """A plugin thread still sending when the host stops: the host stays
        valid until unload() returns, and msgs' unload() waits for it."""
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2)
        with d:
            rec = d.rec("m")

            async def go():
                clients = await pair_on_two_workers(d)
                a, b = clients[:2]
                start = len(b.msgs)
                # 2000 messages, 1 ms apart: still sending when SIGTERM comes
                self.assertEqual(await a.call("thread:%d:2000:1000" % b.n,
                                              "thread:"), "0")
                await b.wait_text("info:t10", start)
                status = await asyncio.get_running_loop().run_in_executor(
                    None, d.stop)
                codes = [await c.closed(timeout=15) for c in clients]
                return status, codes, b.infos(start), b.n
            status, codes, infos, n = run(go())
            self.assertEqual(status, 0, d.log())
            self.assertEqual(set(codes), {1001})
            self.assertEqual(infos, ["t%d" % i for i in range(len(infos))])
            lines = read_records(rec)
        m = [l for l in lines if l.startswith("thread %d " % n)]
        self.assertEqual(len(m), 1, "\n".join(lines))
        sent, enoent = map(int, m[0].split()[2:])
        self.assertEqual(sent + enoent, 2000)
        self.assertGreater(enoent, 0, "the thread ended before the host")
        self.assertGreaterEqual(sent, len(infos))
        self.assertEqual(lines[-1], "unload", "\n".join(lines))


# ---------------------------------------------------------------------------
# A broadcast's sends through io_uring (network/sendq.c), and without it
# ---------------------------------------------------------------------------

def uring_counts(port):
    """(sends, enters) of /metrics' io_uring broadcast counters."""
    text = harness.metrics_text(port)
    sends = re.search(r"^websockd_broadcast_uring_sends_total (\d+)$", text, re.M)
    enters = re.search(r"^websockd_broadcast_uring_enters_total (\d+)$", text, re.M)
    if not sends or not enters:
        raise AssertionError("no io_uring counters in /metrics:\n" + text)
    return int(sends.group(1)), int(enters.group(1))


class BroadcastUringTest(unittest.TestCase):
    """websock_broadcast (and websock_publish: a handle_info per member,
    whose pushes are written when the members are settled together) to 40
    python3-websockets clients, two raw clients that read nothing until the
    end (their sockets fill: what the kernel does not take is queued and
    written later) and one that resets its connection first, on one
    worker: with io_uring on (the default) and off. Every member gets every
    message once and in order either way; with it on, /metrics counts the
    sends made many per io_uring_enter, with it off none; the daemon goes
    on serving."""

    READERS = 40
    FRAMES = 60
    BODY = 8 * 1024

    def check(self, mode, verb="bcast"):
        """The run; verb bcast or pub. Returns the io_uring counters."""
        # what a member gets: the frame itself, or msgs' "info:" + it
        head = "" if verb == "bcast" else "info:"
        d = msgs_daemon({"b": {"path": "/b"}}, workers=1,
                        args=["--io-uring", mode])
        with d:
            slow = [raw_open(d, "/b", rcvbuf=8 * 1024) for _ in range(2)]
            gone = raw_open(d, "/b")
            try:
                for s, fr in slow + [gone]:
                    self.assertEqual(raw_call(s, fr, "sub:wide", "sub:"), "0")
                # a reset, not a close: the server finds out when it writes
                gone[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
                gone[0].close()
                body = "x" * self.BODY

                async def go():
                    readers = await open_clients(d.url("/b"), self.READERS)
                    pub = await open_client(d.url("/b"))
                    try:
                        starts = []
                        for r in readers:
                            self.assertEqual(await r.call("sub:wide", "sub:"), "0")
                            starts.append(len(r.msgs))
                        for i in range(self.FRAMES):
                            self.assertEqual(await pub.call(
                                "%s:wide:%03d%s" % (verb, i, body), verb + ":"),
                                "0")
                        last = "%s%03d" % (head, self.FRAMES - 1)
                        size = len(head) + 3 + self.BODY
                        got = []
                        for r, start in zip(readers, starts):
                            await r.wait(lambda m: m.startswith(last), start, 30)
                            got.append([m[len(head):len(head) + 3]
                                        for m in r.msgs[start:]
                                        if len(m) == size])
                        return got
                    finally:
                        await close_all(readers + [pub])
                got = run(go(), timeout=120)
                want = ["%03d" % i for i in range(self.FRAMES)]
                for g in got:
                    self.assertEqual(g, want)
                for s, fr in slow:  # now they read: everything, in order
                    s.settimeout(OP_TIMEOUT)
                    seen = []
                    while len(seen) < self.FRAMES:
                        _, op, payload = fr.frame()
                        if (op == OP_TEXT and
                                len(payload) == len(head) + 3 + self.BODY):
                            seen.append(payload[len(head):len(head) + 3].decode())
                    self.assertEqual(seen, want)
                    # and the connection still answers
                    self.assertEqual(raw_call(s, fr, "sub:other", "sub:"), "0")
            finally:
                for s, _ in slow:
                    s.close()
            return uring_counts(d.port)

    def test_on(self):
        sends, enters = self.check("on")
        # 43 members, the first of each broadcast sent by itself
        self.assertGreaterEqual(sends, self.FRAMES * (self.READERS + 1))
        self.assertGreater(enters, 0)
        self.assertLess(enters * 10, sends)

    def test_off(self):
        self.assertEqual(self.check("off"), (0, 0))

    def test_publish_on(self):
        sends, enters = self.check("on", "pub")
        # each publish: 42 members' pushes settled together
        self.assertGreaterEqual(sends, self.FRAMES * (self.READERS + 1))
        self.assertLess(enters * 10, sends)

    def test_publish_off(self):
        self.assertEqual(self.check("off", "pub"), (0, 0))


# ---------------------------------------------------------------------------
# Backpressure: a client that never reads
# ---------------------------------------------------------------------------

class BackpressureTest(unittest.TestCase):
    """Raw clients upgrade, learn their number, then stop reading while msgs
    pushes 100 MiB at them (max_unsent = 4M)."""

    measured = {}

    @classmethod
    def setUpClass(cls):
        common = {"max_unsent": "4M", "pause_reading_at": "1M"}
        cls.d = msgs_daemon({
            "close": dict(common, path="/close", on_max_unsent="close"),
            "drop": dict(common, path="/drop", on_max_unsent="drop"),
        }, workers=2, args=("--close-timeout-ms", "1000"))
        # ASan keeps freed memory in a quarantine (256 MB by default) that
        # counts in RSS: every freed copy of a message would look like growth.
        # A small quarantine (still catching recent use-after-free) lets RSS
        # show what websockd itself holds.
        cls.asan_options = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = ":".join(
            x for x in (cls.asan_options, "quarantine_size_mb=%d" % ASAN_QUARANTINE_MB)
            if x)
        try:
            cls.d.start()
        finally:
            if cls.asan_options is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = cls.asan_options

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)
        if cls.measured:
            print("\nRSS growth while flooding (MiB): " + ", ".join(
                "%s rss %+.1f hwm %+.1f" % (k, v[0] / MIB, v[1] / MIB)
                for k, v in sorted(cls.measured.items())))

    def setUp(self):
        self.assertIsNone(self.d.proc.poll(), "websockd died:\n" + self.d.log())

    def flood(self, route, command):
        """Starts the flood on a non-reading client; returns (sock, reader,
        number, record match of the flood's result line, rss and hwm growth)."""
        s, fr = raw_open(self.d, "/" + route, rcvbuf=64 * 1024)
        n = int(raw_call(s, fr, "self", "ref:"))
        rss0, hwm0 = self.d.mem()
        s.sendall(mask_frame(OP_TEXT, command.encode()))
        verb = command.split(":")[0]
        m = wait_record(self.d.rec(route), r"%s %d (\d+) (\d+) (\d+)" % (verb, n),
                        timeout=30)
        rss1, hwm1 = self.d.mem()
        growth = (rss1 - rss0, hwm1 - hwm0)
        self.measured["%s %s" % (route, command)] = growth
        self.assertLess(growth[0], RSS_BOUND, "RSS grew %d bytes" % growth[0])
        self.assertLess(growth[1], RSS_BOUND, "peak RSS grew %d bytes" % growth[1])
        return s, fr, n, tuple(int(x) for x in m.groups()), growth

    def check_closed_by_policy(self, route, command):
        cut_before = self.d.log_count(r"no close frame from the peer in time")
        s, fr, n, (ok, efull, eclosed), _ = self.flood(route, command)
        try:
            self.assertEqual(efull, 0)
            self.assertGreater(ok, 0)
            self.assertGreater(eclosed, 0)  # refused from the limit on
            self.assertLess(ok * CHUNK, 100 * MIB // 2)
            kind, code, text = wait_terminate(self.d.rec(route), n)
            self.assertEqual((kind, code), (4, 1008), text)
            # we never read, so our close frame is stuck behind the data:
            # the close timeout (1 s) cuts the TCP connection
            self.d.wait_log_count(r"no close frame from the peer in time",
                                  cut_before + 1, timeout=10)
            total, _ = read_until_eof(s, 10)
            self.assertLess(total, ok * (CHUNK + 10) + 4096)
        finally:
            s.close()

    def test_flood_close_policy(self):
        self.check_closed_by_policy("close", "flood:100")

    def test_floodinfo_close_policy(self):
        self.check_closed_by_policy("close", "floodinfo:100")

    def test_broadcast_to_non_reader_closes_it(self):
        """websock_broadcast: each subscriber's policy applies; the reading
        ones keep getting every frame. Connections alternate between the 2
        workers, so the second reader shares the non-reader's worker, where
        the non-reader is the topic's first member: it is closed (and leaves
        the topic) while that broadcast is delivered to it, before the rest
        of the members are looked at, and the reader still gets it once."""
        rec = self.d.rec("close")
        s, fr = raw_open(self.d, "/close", rcvbuf=64 * 1024)
        try:
            self.assertEqual(raw_call(s, fr, "sub:firehose", "sub:"), "0")
            n = int(raw_call(s, fr, "self", "ref:"))
            rss0, hwm0 = self.d.mem()

            async def go():
                readers = await open_clients(self.d.url("/close"), 2)
                pub = await open_client(self.d.url("/close"))
                try:
                    starts = []
                    for reader in readers:
                        self.assertEqual(await reader.call("sub:firehose", "sub:"), "0")
                        starts.append(len(reader.msgs))
                    body = "x" * (CHUNK - 16)
                    for i in range(200):  # 12.8 MB
                        self.assertEqual(await pub.call(
                            "bcast:firehose:%03d%s" % (i, body), "bcast:"), "0")
                    got = []
                    for reader, start in zip(readers, starts):
                        await reader.wait(lambda m: m.startswith("199"), start, 30)
                        got.append([m[:3] for m in reader.msgs[start:]])
                    workers = {self.d.worker_of(c.port) for c in readers}
                    return got, workers
                finally:
                    await close_all(readers + [pub])
            got, workers = run(go())
            self.assertEqual(workers, {0, 1})
            for g in got:
                self.assertEqual(g, ["%03d" % i for i in range(200)])
            kind, code, text = wait_terminate(rec, n)
            self.assertEqual((kind, code), (4, 1008), text)
            rss1, hwm1 = self.d.mem()
            growth = (rss1 - rss0, hwm1 - hwm0)
            self.measured["close bcast 200x64KiB"] = growth
            self.assertLess(growth[0], RSS_BOUND)
            self.assertLess(growth[1], RSS_BOUND)
        finally:
            s.close()

    def check_drop_policy(self, command):
        s, fr, n, (ok, efull, eclosed), _ = self.flood("drop", command)
        rec = self.d.rec("drop")
        try:
            self.assertEqual(eclosed, 0)
            self.assertGreater(ok, 0)
            self.assertGreater(efull, 0)
            self.assertEqual(ok + efull, 100 * MIB // CHUNK)
            # reading pauses: over pause_reading_at, what the client sends is
            # not processed... That needs the host to hold more than the mark:
            # floodinfo keeps pushing across loop turns until the kernel's
            # socket buffers (megabytes on loopback) are full and the host's
            # own queue stays at max_unsent. flood's single callback queues
            # just max_unsent, which those kernel buffers take whole: the
            # host's queue is then empty and reading rightly goes on.
            s.sendall(mask_frame(OP_TEXT, b"unsent"))
            time.sleep(1.5)  # also past the close timeout: still open
            lines = read_records(rec)
            self.assertNotIn(n, terminations(lines), "\n".join(lines))
            if command.startswith("floodinfo"):
                self.assertNotIn("in %d unsent" % n, lines)
            # ...until the client reads: then everything that was accepted
            # arrives, in order, and the command is answered
            binary = 0
            texts = []
            s.settimeout(OP_TIMEOUT)
            while not any(t.startswith("unsent:") for t in texts):
                _, op, payload = fr.frame()
                if op == OP_BINARY:
                    self.assertFalse(texts, "binary after the result text")
                    self.assertEqual(len(payload), CHUNK)
                    binary += 1
                elif op == OP_TEXT:
                    texts.append(payload.decode())
                else:
                    self.fail("unexpected opcode %d" % op)
            self.assertEqual(binary, ok)
            verb = command.split(":")[0]
            # the result text itself may have been dropped (EFULL) in
            # floodinfo's last tick; flood's is pushed once the queue has
            # passed max_unsent (its last accepted push passed it), so it
            # is dropped like every push after that
            if verb == "flood":
                self.assertTrue(texts[0].startswith("unsent:"), texts)
            self.assertLessEqual(int(texts[-1][len("unsent:"):]), MIB)
            wait_record(rec, r"in %d unsent" % n)
            s.sendall(mask_frame(OP_CLOSE, struct.pack("!H", 1000)))
            self.assertEqual(fr.close_frame()[0], 1000)
            self.assertEqual(wait_terminate(rec, n)[:2], (1, 1000))
        finally:
            s.close()

    def test_flood_drop_policy(self):
        self.check_drop_policy("flood:100")

    def test_floodinfo_drop_policy(self):
        self.check_drop_policy("floodinfo:100")


# ---------------------------------------------------------------------------
# Limits: max connections, handshake timeout, server pings
# ---------------------------------------------------------------------------

class LimitsTest(unittest.TestCase):
    def test_max_connections(self):
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2,
                        args=("--max-connections", "5"))
        with d:
            async def status():
                try:
                    async with connect(d.url("/m")) as ws:
                        await ws.send("self")
                        await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
                        return 101
                except InvalidStatusCode as e:
                    return e.status_code

            async def go():
                clients = []
                try:
                    clients = await open_clients(d.url("/m"), 5)
                    for c in clients:
                        await c.ref()
                    self.assertEqual(await status(), 503)
                    self.assertEqual(await status(), 503)
                    await clients[0].close()
                    # the slot is free once the server has let go of it
                    deadline = time.monotonic() + 5
                    got = None
                    while time.monotonic() < deadline:
                        try:
                            c = await open_client(d.url("/m"))
                            clients.append(c)
                            got = await c.ref()
                            break
                        except InvalidStatusCode as e:
                            self.assertEqual(e.status_code, 503)
                            await asyncio.sleep(0.05)
                    self.assertIsNotNone(got, "no room after a close")
                    self.assertEqual(await status(), 503)
                finally:
                    await close_all(clients)
            run(go())
            self.assertTrue(d.find_log(r"503 \(max_connections reached\)"), d.log())

    def test_handshake_timeout(self):
        d = msgs_daemon({"m": {"path": "/m"}}, workers=2,
                        args=("--handshake-timeout-ms", "500"))
        with d:
            result = {}

            def slow():
                """One header byte every 100 ms."""
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                t0 = time.monotonic()
                data = b""
                try:
                    s.settimeout(0.1)
                    for byte in upgrade_request("/m"):
                        try:
                            s.send(bytes([byte]))
                        except OSError:
                            break
                        try:
                            chunk = s.recv(4096)
                            if not chunk:
                                result["eof"] = time.monotonic() - t0
                                break
                            data += chunk
                        except socket.timeout:
                            pass
                        except ConnectionResetError:
                            result["eof"] = time.monotonic() - t0
                            break
                        if time.monotonic() - t0 > 5:
                            break
                    s.settimeout(3)
                    while "eof" not in result:
                        try:
                            chunk = s.recv(4096)
                        except (socket.timeout, ConnectionResetError):
                            result["eof"] = time.monotonic() - t0
                            result["how"] = "timeout/reset"
                            break
                        if not chunk:
                            result["eof"] = time.monotonic() - t0
                        data += chunk
                finally:
                    result["data"] = data
                    s.close()

            t = threading.Thread(target=slow)
            t.start()

            async def meanwhile():
                c = await open_client(d.url("/m"))
                try:
                    self.assertEqual(await c.call("echo:served", "served"), "")
                finally:
                    await c.close()
            run(meanwhile())
            t.join(15)
            self.assertFalse(t.is_alive())
            self.assertIn("eof", result)
            self.assertNotEqual(result.get("how"), "timeout/reset", result)
            self.assertGreaterEqual(result["eof"], 0.45)
            self.assertLess(result["eof"], 1.5)
            # the README: "the whole request head must arrive by then (408)"
            self.assertTrue(result["data"].startswith(b"HTTP/1.1 408"),
                            result["data"][:100])

    def test_server_pings(self):
        d = msgs_daemon({"ping": {"path": "/ping", "ping_interval_ms": 200,
                                  "ping_timeout_ms": 300}},
                        workers=2, args=("--close-timeout-ms", "1000"))
        with d:
            rec = d.rec("ping")
            # a client that never answers pings
            s, fr = raw_open(d, "/ping")
            n = int(raw_call(s, fr, "self", "ref:"))
            t0 = time.monotonic()
            pings = 0
            try:
                while True:
                    _, op, payload = fr.frame()
                    if op == OP_PING:
                        pings += 1
                    elif op == OP_CLOSE:
                        elapsed = time.monotonic() - t0
                        code = struct.unpack("!H", payload[:2])[0]
                        break
            finally:
                s.close()
            self.assertGreaterEqual(pings, 1)
            self.assertEqual(code, 1001)
            self.assertLess(elapsed, 1.5)
            self.assertEqual(wait_terminate(rec, n)[:2], (3, 1001))

            # python-websockets answers pings: still open after 1.5 s
            async def polite():
                c = await open_client(d.url("/ping"))
                try:
                    await c.ref()
                    await asyncio.sleep(1.5)
                    self.assertFalse(c.done, "closed: %s" % c.ws.close_code)
                    self.assertEqual(await c.call("echo:still here", "still"),
                                     " here")
                    return c.n
                finally:
                    await c.close()
            polite_n = run(polite())
            self.assertEqual(wait_terminate(rec, polite_n), (1, 1000, ""))


if __name__ == "__main__":
    unittest.main()
