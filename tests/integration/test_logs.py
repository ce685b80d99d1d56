"""Logs an operator's tools can read: log_format = json gives one JSON
object per line (time, level, event, fields), and every closed WebSocket
connection gets one line at info level (route, peer, duration, messages and
bytes each way, close code, who closed), which log_connections = off turns
off. Through the real daemon with python3-websockets and raw sockets.
"""

import asyncio
import json
import re
import socket
import time
import unittest

import websockets

from harness import (ECHO_SO, Daemon, FrameReader, mask_frame, read_http_head,
                     test_plugin, upgrade_request)

OP_TIMEOUT = 10.0
ROUTES = {"echo": {"path": "/echo", "plugin": ECHO_SO},
          "who": {"path": "/who", "plugin": test_plugin("whoami")}}


async def echo_session(url, messages, close_code=1000):
    async with websockets.connect(url, open_timeout=OP_TIMEOUT,
                                  local_addr=("127.0.0.7", 0)) as ws:
        for m in messages:
            await ws.send(m)
            await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
        await ws.close(code=close_code, reason="bye")


def wait_for(d, pred, timeout=OP_TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        hits = [line for line in d.log().splitlines() if pred(line)]
        if hits:
            return hits
        time.sleep(0.02)
    raise AssertionError("no such log line in:\n" + d.log())


class JsonLogTest(unittest.TestCase):
    def test_every_line_is_json_and_connections_are_logged(self):
        with Daemon(ROUTES, args=["--log-format", "json",
                                  "--trusted-proxies", "127.0.0.1"]) as d:
            asyncio.run(echo_session(d.url("/echo"),
                                     ["hello", b"\x00" * 1000], 4001))
            hits = wait_for(d, lambda l: '"conn_closed"' in l)
            ev = json.loads(hits[0])
            self.assertEqual(ev["level"], "info")
            self.assertRegex(ev["time"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(ev["route"], "/echo")
            self.assertTrue(ev["peer"].startswith("127.0.0.7:"), ev)
            self.assertEqual((ev["msgs_in"], ev["bytes_in"]), (2, 1005))
            self.assertEqual((ev["msgs_out"], ev["bytes_out"]), (2, 1005))
            self.assertEqual((ev["close_code"], ev["closed_by"]),
                             (4001, "client"))
            self.assertGreaterEqual(ev["duration_ms"], 0)
            # a peer behind a trusted proxy is logged as the client
            s = d.connect_raw(OP_TIMEOUT)
            s.sendall(upgrade_request("/who", "X-Forwarded-For: 203.0.113.4\r\n"))
            status, _, rest = read_http_head(s)
            self.assertEqual(status, 101)
            s.close()  # no close frame: lost
            hits = wait_for(d, lambda l: '"/who"' in l and "conn_closed" in l)
            ev = json.loads(hits[0])
            self.assertEqual((ev["peer"], ev["closed_by"], ev["close_code"]),
                             ("203.0.113.4:0", "lost", 1006))
            # a quote and bytes that are not UTF-8 in a free-form line
            s = d.connect_raw(OP_TIMEOUT)
            s.sendall(b'GET /no"such\xff HTTP/1.1\r\nHost: x\r\n\r\n')
            read_http_head(s)
            s.close()
        for line in d.log().splitlines():
            obj = json.loads(line)  # every line, startup to exit
            self.assertTrue({"time", "level", "event"} <= set(obj), obj)
            if obj["event"] == "log":
                self.assertIn("msg", obj)

    def test_server_closes_are_logged_as_such(self):
        with Daemon({"echo": {"path": "/echo", "plugin": ECHO_SO,
                              "max_message_size": "1K"}}) as d:
            s = d.connect_raw(OP_TIMEOUT)
            s.sendall(upgrade_request("/echo"))
            status, _, rest = read_http_head(s)
            self.assertEqual(status, 101)
            s.sendall(mask_frame(0x2, b"x" * 2000))  # over the limit: 1009
            r = FrameReader(s, rest)
            self.assertEqual(r.close_frame()[0], 1009)
            s.close()
            hits = wait_for(d, lambda l: "conn_closed" in l)
            self.assertRegex(hits[0], r" info: conn_closed route=/echo "
                             r"peer=127\.0\.0\.1:\d+ conn=\d+ duration_ms=\d+ "
                             r"msgs_in=0 bytes_in=0 msgs_out=0 bytes_out=0 "
                             r"close_code=1009 closed_by=server$")


class ConnectionLinesOffTest(unittest.TestCase):
    def test_off(self):
        with Daemon(ROUTES, args=["--log-connections", "off"]) as d:
            asyncio.run(echo_session(d.url("/echo"), ["a"]))
            time.sleep(0.3)
        self.assertNotIn("conn_closed", d.log())

    def test_bad_values(self):
        import subprocess
        from harness import WEBSOCKD
        for args in (["--log-format", "xml"], ["--log-connections", "maybe"]):
            p = subprocess.run([WEBSOCKD, "-t", "--plugins", "/nonexistent"]
                               + args, capture_output=True, text=True,
                               timeout=OP_TIMEOUT)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(args[1], p.stderr)


if __name__ == "__main__":
    unittest.main()
