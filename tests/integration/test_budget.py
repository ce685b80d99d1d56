"""The host-wide memory budget (max_buffered_memory) against the flood of
issue 11: connections to the shipped /echo route (16 MiB messages) that each
send all but the last byte of a 16 MB message and then wait. Before the
budget, 300 of them held 4.6 GB of websockd's RSS.

One daemon, --max-buffered-memory 256M, --workers 2, ASan's quarantine kept
at 16 MB (it counts in RSS). Clients: raw sockets for the flooders (frames
built here), Debian's python3-websockets for the polite echo client.

  test_refuses_upgrades_near_the_budget  15 flooders hold 15 x 16 MiB (94 %
      of the budget: over the 90 % mark, under the budget): a new upgrade
      gets 503 (deterministic), nobody is shed, the open echo client is
      served; one flooder leaves (88 %): upgrades are taken again
  test_flood                             64 flooders (about 1 GB, four times
      the budget) while an echo client echoes every 20 ms: flooders get
      1013 (the largest holders first), /metrics counts them, websockd's
      RSS stays under the budget plus a fixed overhead (RSS_OVERHEAD), the
      echo client keeps being answered (ECHO_WITHIN, ECHO_MAX)
"""

import asyncio
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

import websockets

import harness
from harness import read_http_head, upgrade_request
from test_bigmsg import shipped_echo_route

MIB = 1024 * 1024
BUDGET = 256 * MIB
MSG = 16_000_000                 # the flooders' message: 16 MB
HELD = 16 * MIB                  # its reassembly buffer once past 8 MiB
FLOODERS = 64
CHUNK = 256 * 1024               # a flooder sends this much at a turn
# The polite echo client's round trips under the flood (ASan build, on a
# 2-core machine shared with other jobs): the flood keeps both cores busy
# and outside load adds scheduling delays of its own (measured, unloaded:
# median 30-40 ms, max 0.9-1.3 s; with a load average of 11 on the 2 cores:
# median 68 ms, p95 1.3 s, max 4.2 s). Asserted: the median within
# ECHO_WITHIN, every echo answered within ECHO_MAX (never starved).
ECHO_WITHIN = 0.5
ECHO_MAX = 10.0
# What websockd's RSS may hold beyond the budget: its baseline (about 30 MiB
# under ASan, 5 in a release build), ASan's shadow of the heap (1/8 of it),
# its 16 MB quarantine and allocator slack, the buffers that grow by one
# read before the budget check sees them. Measured peaks: see the report
# line this test prints.
RSS_OVERHEAD = 96 * MIB
QUARANTINE_MB = 16
ZERO_KEY = b"\0\0\0\0"


def flood_head():
    return (bytes([0x82, 0x80 | 127]) + MSG.to_bytes(8, "big") + ZERO_KEY)


class Flooder:
    """A raw socket upgraded to /echo that sends all but the last byte of a
    16 MB binary message, CHUNK at a turn."""

    PAYLOAD = memoryview(bytes(MSG - 1))

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.sendall(upgrade_request("/echo"))
        status, _, rest = read_http_head(self.s)
        if status != 101:
            self.s.close()
            raise AssertionError("flooder upgrade got %d" % status)
        self.s.sendall(flood_head())
        self.s.setblocking(False)
        self.sent = 0
        self.inbox = bytearray(rest)
        self.eof = False
        self.close_code = None

    def done_sending(self):
        return self.sent >= len(self.PAYLOAD) or self.close_code or self.eof

    def send_some(self):
        try:
            n = self.s.send(self.PAYLOAD[self.sent:self.sent + CHUNK])
            self.sent += n
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True

    def read_some(self):
        try:
            data = self.s.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.eof = True
            return
        if not data:
            self.eof = True
            return
        self.inbox += data
        # the only frame websockd sends a flooder: a close frame
        if len(self.inbox) >= 4 and self.inbox[0] == 0x88:
            self.close_code = struct.unpack("!H", self.inbox[2:4])[0]

    def close(self):
        self.s.close()


def metrics(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    out = {}
    for line in data.decode().splitlines():
        m = re.match(r"(websockd_[a-z_]+) (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def upgrade_status(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(upgrade_request("/echo"))
        return read_http_head(s)[0]
    finally:
        s.close()


ECHO_CLIENT = r"""
import asyncio, sys, time, websockets
async def go(url):
    async with websockets.connect(url) as ws:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        stop = loop.run_in_executor(None, sys.stdin.read)
        i = 0
        while not stop.done():
            t0 = time.monotonic()
            await ws.send("echo %d" % i)
            answer = await asyncio.wait_for(ws.recv(), 10)
            if answer != "echo %d" % i:
                raise SystemExit("wrong echo %r" % answer)
            print("%.6f" % (time.monotonic() - t0), flush=True)
            i += 1
            await asyncio.sleep(0.02)
asyncio.run(go(sys.argv[1]))
"""


class EchoClient:
    """python3-websockets in its own process (no GIL shared with the
    flooders): one text echo every 20 ms until stopped; keeps each round
    trip's time."""

    def __init__(self, url):
        self.p = subprocess.Popen([sys.executable, "-c", ECHO_CLIENT, url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.first = self.p.stdout.readline().strip()

    def finish(self):
        """Stops it; returns (round-trip times, exit status, stderr)."""
        try:
            out, err = self.p.communicate("", timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        return [float(x) for x in out.split()], self.p.returncode, err


class MemoryBudgetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = harness.Daemon(
            {"echo": shipped_echo_route()},
            args=["--max-buffered-memory", "256M", "--close-timeout-ms", "1000",
                  "--log-level", "info"])
        harness.start_quarantined(cls.d, QUARANTINE_MB)

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def rss(self):
        with open("/proc/%d/status" % self.d.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def wait_buffered(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            m = metrics(self.d.port)
            if pred(m["websockd_buffered_bytes"]) or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def echo_client(self):
        c = EchoClient(self.d.url("/echo"))
        if c.first != "ready":
            self.fail("echo client: %r" % (c.finish(),))
        return c

    def stop_echo(self, c):
        times, status, err = c.finish()
        self.assertEqual(status, 0, err)
        self.assertTrue(times)
        return times

    def test_metrics_show_the_budget(self):
        m = metrics(self.d.port)
        self.assertEqual(m["websockd_max_buffered_memory_bytes"], BUDGET)
        for k in ("websockd_buffered_bytes", "websockd_connections_shed_total",
                  "websockd_upgrades_refused_memory_total"):
            self.assertIn(k, m)

    def test_refuses_upgrades_near_the_budget(self):
        self.wait_buffered(lambda b: b == 0)
        echo = self.echo_client()
        shed0 = metrics(self.d.port)["websockd_connections_shed_total"]
        flooders = [Flooder(self.d.port) for _ in range(15)]
        try:
            for f in flooders:
                f.s.setblocking(True)
                f.s.sendall(f.PAYLOAD)
            m = self.wait_buffered(lambda b: b >= 15 * HELD)
            self.assertEqual(m["websockd_buffered_bytes"], 15 * HELD)
            self.assertLess(m["websockd_buffered_bytes"], BUDGET)
            refused0 = m["websockd_upgrades_refused_memory_total"]
            self.assertEqual(upgrade_status(self.d.port), 503)
            m = metrics(self.d.port)
            self.assertEqual(m["websockd_upgrades_refused_memory_total"],
                             refused0 + 1)
            self.assertEqual(m["websockd_connections_shed_total"], shed0)
            flooders.pop().close()
            self.wait_buffered(lambda b: b <= 14 * HELD)
            self.assertEqual(upgrade_status(self.d.port), 101)
        finally:
            for f in flooders:
                f.close()
        times = self.stop_echo(echo)
        self.assertLess(max(times), ECHO_MAX)
        self.wait_buffered(lambda b: b == 0)

    def test_flood(self):
        self.wait_buffered(lambda b: b == 0)
        m0 = metrics(self.d.port)
        logged0 = self.d.log().count("host over max_buffered_memory")
        echo = self.echo_client()
        rss0 = self.rss()
        peak = [rss0]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                try:
                    peak[0] = max(peak[0], self.rss())
                except (OSError, AssertionError):
                    return
                time.sleep(0.01)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        flooders = []
        t0 = time.monotonic()
        try:
            sel = selectors.DefaultSelector()
            for _ in range(FLOODERS):
                f = Flooder(self.d.port)
                flooders.append(f)
                sel.register(f.s, selectors.EVENT_READ | selectors.EVENT_WRITE, f)
            while time.monotonic() - t0 < 40:
                busy = [f for f in flooders if not f.done_sending()]
                if not busy:
                    break
                for key, ev in sel.select(0.1):
                    f = key.data
                    if ev & selectors.EVENT_READ and not f.eof:
                        f.read_some()
                    if ev & selectors.EVENT_WRITE:
                        if f.done_sending():
                            sel.modify(f.s, selectors.EVENT_READ, f)
                        else:
                            f.send_some()
                    if f.eof:
                        sel.unregister(f.s)
            flood_s = time.monotonic() - t0
            # the close frames of the last ones shed
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for key, ev in sel.select(0.1):
                    key.data.read_some()
                    if key.data.eof:
                        sel.unregister(key.data.s)
                m = metrics(self.d.port)
                if m["websockd_buffered_bytes"] <= BUDGET and \
                        m["websockd_connections_shed_total"] - \
                        m0["websockd_connections_shed_total"] == \
                        sum(f.close_code is not None for f in flooders):
                    break
            sel.close()
            sampling.set()
            sampler.join(5)
            m = metrics(self.d.port)
            shed = [f for f in flooders if f.close_code is not None]
            holding = [f for f in flooders if f.close_code is None]
            codes = {f.close_code for f in shed}
            times = self.stop_echo(echo)
            print("\nflood: %d flooders (%d MB sent) in %.1f s: %d shed with %s, "
                  "%d holding; buffered now %.1f MiB of %d MiB; websockd RSS "
                  "%.1f MiB before, peak %.1f MiB (budget + %.1f MiB); echo "
                  "client: %d echoes, median %.1f ms, p95 %.1f ms, max %.1f ms"
                  % (len(flooders), sum(f.sent for f in flooders) // 10**6,
                     flood_s, len(shed), sorted(codes), len(holding),
                     m["websockd_buffered_bytes"] / MIB, BUDGET // MIB,
                     rss0 / MIB, peak[0] / MIB, (peak[0] - BUDGET) / MIB,
                     len(times), sorted(times)[len(times) // 2] * 1000,
                     sorted(times)[len(times) * 95 // 100] * 1000,
                     max(times) * 1000))
            self.assertEqual(codes, {1013})
            # the flood asked for several times the budget
            self.assertGreater(sum(f.sent for f in flooders), 2 * BUDGET)
            self.assertGreater(len(shed), 0)
            if all(f.done_sending() for f in flooders):
                # those left hold at most the budget: 16 MiB each
                self.assertLessEqual(len(holding), BUDGET // HELD)
                self.assertGreaterEqual(len(shed), FLOODERS - BUDGET // HELD)
            self.assertEqual(m["websockd_connections_shed_total"] -
                             m0["websockd_connections_shed_total"], len(shed))
            self.assertLessEqual(m["websockd_buffered_bytes"], BUDGET)
            self.assertLess(peak[0], BUDGET + RSS_OVERHEAD)
            self.assertLess(sorted(times)[len(times) // 2], ECHO_WITHIN)
            self.assertLess(max(times), ECHO_MAX)
            self.assertEqual(
                self.d.log().count("host over max_buffered_memory") - logged0,
                len(shed))
        finally:
            sampling.set()
            for f in flooders:
                f.close()
        # everything they held is released; the host serves again
        m = self.wait_buffered(lambda b: b == 0)
        self.assertEqual(m["websockd_buffered_bytes"], 0)
        self.assertEqual(upgrade_status(self.d.port), 101)


class BudgetConfigTest(unittest.TestCase):
    """max_buffered_memory from the host config file, --max-buffered-memory
    over it, and a bad value refused (exit 2, the setting named)."""

    def test_config_file_and_flag(self):
        d = harness.Daemon({"echo": shipped_echo_route()})
        cfg = d.path("host.ini")
        with open(cfg, "w") as f:
            f.write("[server]\nmax_buffered_memory = 64M\n")
        d.args = ["--config", cfg]
        with d:
            self.assertEqual(
                metrics(d.port)["websockd_max_buffered_memory_bytes"], 64 * MIB)
        d = harness.Daemon({"echo": shipped_echo_route()},
                           args=["--max-buffered-memory", "2G"])
        with d:
            self.assertEqual(
                metrics(d.port)["websockd_max_buffered_memory_bytes"], 2 << 30)
        m = metrics  # default: 1 GiB
        d = harness.Daemon({"echo": shipped_echo_route()})
        with d:
            self.assertEqual(m(d.port)["websockd_max_buffered_memory_bytes"],
                             1 << 30)

    def test_bad_value(self):
        for bad in ("100", "lots", "0"):
            p = subprocess.run([harness.WEBSOCKD, "--max-buffered-memory", bad,
                                "-t", "--plugins", "/nonexistent"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("max_buffered_memory: invalid value", p.stderr)


if __name__ == "__main__":
    unittest.main()
