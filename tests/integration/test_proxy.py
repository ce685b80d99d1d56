"""websockd behind a reverse proxy: Debian's nginx in front on loopback
(upgrade headers proxied) with python3-websockets through it; the client's
address from X-Forwarded-For only when the peer is a trusted proxy; and
listeners that take the PROXY protocol (v1 and v2, as HAProxy sends it),
spoken by raw sockets.

Clients connect from 127.0.0.5 (any 127/8 address is this machine) so that
their address differs from the proxy's (127.0.0.1).
"""

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import websockets

from harness import (WEBSOCKD, FrameReader, Daemon, mask_frame, read_http_head,
                     test_plugin, upgrade_request, ECHO_SO)

OP_TIMEOUT = 15.0
CLIENT_IP = "127.0.0.5"
WHOAMI_SO = test_plugin("whoami")
ROUTES = {"who": {"path": "/who", "plugin": WHOAMI_SO},
          "echo": {"path": "/echo", "plugin": ECHO_SO,
                   "max_message_size": "2M"}}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    """nginx in the foreground (no daemon, one process), proxying
    127.0.0.1:port to websockd as its documentation says for WebSocket."""

    def __init__(self, upstream_port):
        self.tmp = tempfile.mkdtemp(prefix="websockd-nginx-")
        self.port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        t = self.tmp
        with open(conf, "w") as f:
            f.write("""
daemon off;
master_process off;
worker_processes 1;
error_log %(t)s/error.log info;
pid %(t)s/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %(t)s/body;
  proxy_temp_path %(t)s/proxy;
  fastcgi_temp_path %(t)s/fastcgi;
  uwsgi_temp_path %(t)s/uwsgi;
  scgi_temp_path %(t)s/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream websockd { server 127.0.0.1:%(up)d; }
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      proxy_pass http://websockd;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 1h;
      proxy_buffering off;
    }
  }
}
""" % {"t": t, "up": upstream_port, "port": self.port})
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.tmp, "-c", conf, "-e",
             os.path.join(self.tmp, "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.time() + OP_TIMEOUT
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError("nginx did not start: " + self.error_log())

    def error_log(self):
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=OP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


async def who_and_echo(url, messages=(), extra_headers=None):
    """Connects from CLIENT_IP; returns the address the plugin saw and the
    echoes of messages."""
    async with websockets.connect(url, open_timeout=OP_TIMEOUT,
                                  max_size=None, local_addr=(CLIENT_IP, 0),
                                  extra_headers=extra_headers) as ws:
        who = await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
        echoes = []
        for m in messages:
            await ws.send(m)
            echoes.append(await asyncio.wait_for(ws.recv(), OP_TIMEOUT))
        return who, echoes


class BehindNginxTest(unittest.TestCase):
    def run_behind_nginx(self, args):
        with Daemon(ROUTES, args=args) as d:
            nginx = Nginx(d.port)
            try:
                url = "ws://127.0.0.1:%d/who" % nginx.port
                msgs = ["hello", b"\x00\x01binary", "x" * 70000,
                        bytes(range(256)) * 4096]
                who, echoes = asyncio.run(who_and_echo(url, msgs))
                self.assertEqual(echoes, msgs)
                return who, d
            finally:
                nginx.stop()

    def test_trusted_proxy_gives_the_client_address(self):
        who, _ = self.run_behind_nginx(["--trusted-proxies", "127.0.0.1"])
        self.assertEqual(who, CLIENT_IP + ":0")

    def test_untrusted_proxy_is_the_peer(self):
        who, _ = self.run_behind_nginx([])
        self.assertTrue(who.startswith("127.0.0.1:"), who)
        self.assertNotEqual(who, "127.0.0.1:0")
        who, _ = self.run_behind_nginx(["--trusted-proxies", "10.0.0.0/8"])
        self.assertTrue(who.startswith("127.0.0.1:"), who)

    def test_forged_header_from_an_untrusted_client(self):
        """A client that is not a trusted proxy cannot name its address."""
        with Daemon(ROUTES, args=["--trusted-proxies", "127.0.0.1"]) as d:
            who, _ = asyncio.run(who_and_echo(
                d.url("/who"), extra_headers={"X-Forwarded-For": "6.6.6.6"}))
            self.assertTrue(who.startswith(CLIENT_IP + ":"), who)
            self.assertNotEqual(who, CLIENT_IP + ":0")

    def test_forged_left_part_through_the_proxy(self):
        """What the client wrote into X-Forwarded-For is left of what nginx
        appended: the rightmost untrusted address wins."""
        with Daemon(ROUTES, args=["--trusted-proxies", "127.0.0.1"]) as d:
            nginx = Nginx(d.port)
            try:
                who, _ = asyncio.run(who_and_echo(
                    "ws://127.0.0.1:%d/who" % nginx.port,
                    extra_headers={"X-Forwarded-For": "6.6.6.6"}))
                self.assertEqual(who, CLIENT_IP + ":0")
            finally:
                nginx.stop()

    def test_bad_trusted_proxies_is_a_config_error(self):
        for args in (["--trusted-proxies", "10.0.0.0/33"],
                     ["-t", "--trusted-proxies", "10.0.0.0/33"],
                     ["--listen-proxy", "nowhere"]):
            p = subprocess.run([WEBSOCKD, "--plugins", "/nonexistent"] + args,
                               capture_output=True, text=True,
                               timeout=OP_TIMEOUT)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(args[-1], p.stderr)


class ProxyDaemon(Daemon):
    """websockd with a plain listener and a PROXY protocol listener."""

    def command(self):
        return super().command() + ["--listen-proxy", "127.0.0.1:0"]

    def start(self):
        super().start()
        m = self.wait_log(r"listening on 127\.0\.0\.1:(\d+) \(PROXY protocol\)")
        self.proxy_port = int(m.group(1))
        return self


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, dst, sport, dport, local=False, tlvs=b""):
    if local:
        return V2_SIG + b"\x20\x00" + struct.pack(">H", 0)
    if ":" in src:
        fam, a = 0x21, (socket.inet_pton(socket.AF_INET6, src) +
                        socket.inet_pton(socket.AF_INET6, dst))
    else:
        fam, a = 0x11, socket.inet_aton(src) + socket.inet_aton(dst)
    body = a + struct.pack(">HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack(">H", len(body)) + body


class ProxyProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = ProxyDaemon(ROUTES).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def who_via(self, header, chunked=False):
        s = socket.create_connection(("127.0.0.1", self.d.proxy_port),
                                     timeout=OP_TIMEOUT)
        try:
            data = header + upgrade_request("/who")
            if chunked:
                for i in range(len(data)):
                    s.send(data[i:i + 1])
            else:
                s.sendall(data)
            status, _, rest = read_http_head(s)
            self.assertEqual(status, 101)
            r = FrameReader(s, rest)
            fin, op, who = r.frame()
            s.sendall(mask_frame(0x1, b"after"))
            self.assertEqual(r.frame(), (True, 0x1, b"after"))
            return who.decode()
        finally:
            s.close()

    def test_v1(self):
        self.assertEqual(self.who_via(
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"),
            "192.0.2.1:56324")
        self.assertEqual(self.who_via(
            b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n", chunked=True),
            "[2001:db8::1]:4000")

    def test_v1_unknown_and_v2_local_keep_the_socket_address(self):
        self.assertTrue(self.who_via(b"PROXY UNKNOWN\r\n")
                        .startswith("127.0.0.1:"))
        self.assertTrue(self.who_via(v2_header(None, None, 0, 0, local=True))
                        .startswith("127.0.0.1:"))

    def test_v2(self):
        self.assertEqual(self.who_via(
            v2_header("203.0.113.9", "198.51.100.2", 40000, 443)),
            "203.0.113.9:40000")
        self.assertEqual(self.who_via(
            v2_header("2001:db8::9", "2001:db8::2", 1, 443,
                      tlvs=b"\x01\x00\x08http/1.1"), chunked=True),
            "[2001:db8::9]:1")

    def test_no_or_bad_header_is_closed(self):
        for first in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                      b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n",
                      b"PROXY TCP4 " + b"1" * 200,
                      V2_SIG + b"\x31\x11\x00\x0c" + bytes(12)):
            s = socket.create_connection(("127.0.0.1", self.d.proxy_port),
                                         timeout=OP_TIMEOUT)
            try:
                s.sendall(first)
                got = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                self.assertEqual(got, b"", first)  # closed, nothing said
            except ConnectionResetError:
                pass
            finally:
                s.close()
        # everyone else still served, on both listeners
        self.assertEqual(self.who_via(b"PROXY TCP4 192.0.2.7 1.1.1.1 7 7\r\n"),
                         "192.0.2.7:7")
        who, _ = asyncio.run(who_and_echo(self.d.url("/who")))
        self.assertTrue(who.startswith(CLIENT_IP + ":"))

    def test_plain_listener_ignores_proxy_headers(self):
        """A PROXY line on the plain listener is a bad HTTP request."""
        s = self.d.connect_raw(timeout=OP_TIMEOUT)
        try:
            s.sendall(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n" +
                      upgrade_request("/who"))
            status, _, _ = read_http_head(s)
            self.assertEqual(status, 400)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
