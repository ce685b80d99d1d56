"""TLS (wss://) through the real websockd, with clients that are not ours.

Certificates are made at test time: tests/tls/make_certs.sh writes a test CA,
a.test (ECDSA P-256), b.test and *.b.test (RSA 2048), a client certificate
and others; this file adds one for 127.0.0.1 (ECDSA, signed by the same CA)
and a second one for it (another serial) to swap in on reload.

Clients: Debian's python3-websockets over wss:// verifying against the test
CA, Node's WebSocket (node_client.mjs, the same checks as test_node.py) with
NODE_EXTRA_CA_CERTS, curl --cacert for /healthz and /metrics, openssl
s_client for the protocol checks (TLS 1.1 refused, ALPN, SNI, resumption),
raw sockets wrapped in Python's ssl for the conformance cases and raw bytes
for bad input. Run by ctest as integ_tls.
"""

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import harness
import test_conformance as conformance
from harness import ECHO_SO

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WSH_SOURCE_DIR", os.path.join(HERE, "..", ".."))
MAKE_CERTS = os.path.join(SOURCE_DIR, "tests", "tls", "make_certs.sh")
TLSINFO_SO = harness.test_plugin("tlsinfo")

run, connect, recv, ask = harness.client_helpers(test_timeout=90)

CERTS = None  # the directory, made once for the whole file


def cert(name):
    return os.path.join(CERTS, name)


def make_ip_cert(name, serial):
    """A certificate for 127.0.0.1 (and localhost) signed by the test CA."""
    ext = os.path.join(CERTS, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", cert(name + ".key"),
         "-out", cert(name + ".csr"), "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    subprocess.run(
        ["openssl", "x509", "-req", "-in", cert(name + ".csr"), "-CA",
         cert("ca.pem"), "-CAkey", cert("ca.key"), "-set_serial", str(serial),
         "-days", "365", "-out", cert(name + ".pem"), "-extfile", ext],
        check=True, capture_output=True, timeout=60)


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="websockd-tls-certs-")
    subprocess.run(["sh", MAKE_CERTS, CERTS], check=True, capture_output=True,
                   timeout=120)
    make_ip_cert("ip", 2001)
    make_ip_cert("ip2", 2002)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def client_context(client_cert=None):
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    if client_cert:
        ctx.load_cert_chain(cert(client_cert + ".pem"), cert(client_cert + ".key"))
    return ctx


class TlsDaemon(harness.Daemon):
    """websockd with a plain and a TLS listener; the TLS settings in a host
    config file (tls_cert/tls_key for 127.0.0.1, [tls] sections for a.test
    and b.test, more [server] lines from `server`)."""

    def __init__(self, routes, server="", sections=True, copy_certs=False,
                 **kw):
        super().__init__(routes, **kw)
        self.server = server
        self.sections = sections
        self.tls_port = None
        self.cert_file = cert("ip.pem")
        self.key_file = cert("ip.key")
        if copy_certs:  # the reload tests change them
            self.cert_file = self.path("server.pem")
            self.key_file = self.path("server.key")
            shutil.copy(cert("ip.pem"), self.cert_file)
            shutil.copy(cert("ip.key"), self.key_file)

    def command(self):
        conf = self.path("websockd.conf")
        lines = ["[server]", "listen_tls = 127.0.0.1:0",
                 "tls_cert = " + self.cert_file, "tls_key = " + self.key_file]
        lines += [l for l in self.server.splitlines() if l.strip()]
        if self.sections:
            lines += ['[tls "a"]', "cert = " + cert("a-ec.pem"),
                      "key = " + cert("a-ec.key"),
                      '[tls "b"]', "cert = " + cert("b-rsa.pem"),
                      "key = " + cert("b-rsa.key")]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return super().command() + ["--config", conf]

    def start(self):
        super().start()
        m = self.wait_log(r"listening on 127\.0\.0\.1:(\d+) \(TLS\)")
        self.tls_port = int(m.group(1))
        return self

    def wss(self, path):
        return "wss://127.0.0.1:%d%s" % (self.tls_port, path)

    def https(self, path):
        return "https://127.0.0.1:%d%s" % (self.tls_port, path)

    def connect_tls(self, timeout=5.0, ctx=None, server_hostname="127.0.0.1"):
        s = socket.create_connection(("127.0.0.1", self.tls_port),
                                     timeout=timeout)
        s = (ctx or client_context()).wrap_socket(
            s, server_hostname=server_hostname)
        s.settimeout(timeout)
        return s

    def connect_tcp_tls_port(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.tls_port),
                                     timeout=timeout)
        s.settimeout(timeout)
        return s


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args),
                          capture_output=True, text=True, timeout=30)


def s_client(port, *args, stdin_delay=0.5, stdin=""):
    """openssl s_client against the TLS port; its output (stdout+stderr)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-CAfile", cert("ca.pem")] + list(args)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    time.sleep(stdin_delay)  # let it read the session tickets
    try:
        if stdin:  # after the handshake; then time for the answer
            p.stdin.write(stdin)
            p.stdin.flush()
            time.sleep(1)
        out, _ = p.communicate(input="", timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out


def metric(text, name, labels=""):
    m = re.search(r"(?m)^%s%s (\d+)$" % (re.escape(name), re.escape(labels)),
                  text)
    return int(m.group(1)) if m else None


def serial_of(port, servername=None):
    """The serial number of the certificate the server shows."""
    ctx = client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=servername or "127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                        "-serial"], input=der, capture_output=True,
                       timeout=30)
    return int(p.stdout.decode().strip().split("=")[1], 16)


ROUTES = {"echo": {"path": "/echo", "plugin": ECHO_SO}}


class Serving(unittest.TestCase):
    """One daemon: wss:// with python3-websockets and Node, curl, s_client."""

    @classmethod
    def setUpClass(cls):
        cls.d = TlsDaemon(dict(ROUTES, **{
            "sub": {"path": "/sub", "plugin": ECHO_SO, "subprotocols": "a, b"},
            "rec": {"path": "/rec", "plugin": harness.RECORDER_SO,
                    "options": {"record": "@"}},
        }), workers=2)
        cls.d.routes["rec"]["options"]["record"] = cls.d.path("rec.rec")
        try:
            cls.d.start()
        except BaseException:
            cls.d.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_python_websockets_wss_echo(self):
        async def go():
            async with connect(self.d.wss("/echo"), ssl=client_context()) as ws:
                self.assertEqual(await ask(ws, "hello"), "hello")
                big = os.urandom(1 << 20)
                self.assertEqual(await ask(ws, big), big)
                # many small messages in one burst, answered in order
                for i in range(300):
                    await ws.send("m%d" % i)
                for i in range(300):
                    self.assertEqual(await recv(ws), "m%d" % i)
            # the plain listener serves beside it
            async with connect(self.d.url("/echo")) as ws:
                self.assertEqual(await ask(ws, "plain"), "plain")
        run(go())

    def test_client_refuses_an_untrusted_server(self):
        ctx = ssl.create_default_context()  # the system CAs: not our test CA
        async def go():
            with self.assertRaises(ssl.SSLCertVerificationError):
                async with connect(self.d.wss("/echo"), ssl=ctx):
                    pass
        run(go())

    def test_curl_healthz_and_metrics(self):
        p = curl("--cacert", cert("ca.pem"), self.d.https("/healthz"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "ok")
        p = curl("--cacert", cert("ca.pem"), "-o", "/dev/null", "-w",
                 "%{http_code} %{http_version}", self.d.https("/nothing"))
        self.assertEqual(p.stdout, "404 1.1")
        p = curl("--cacert", cert("ca.pem"), self.d.https("/metrics"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreaterEqual(metric(p.stdout, "websockd_tls_handshakes_total"), 1)
        self.assertGreaterEqual(metric(p.stdout, "websockd_tls_version_total",
                                       '{version="TLSv1.3"}'), 1)
        self.assertRegex(p.stdout, r'websockd_tls_certificate_expiry_timestamp_'
                         r'seconds\{label="default",file="[^"]*ip\.pem",'
                         r'key_type="EC"\} \d{10}')
        self.assertRegex(p.stdout, r'label="b",file="[^"]*b-rsa\.pem",'
                         r'key_type="RSA"')

    def test_node_websocket_wss(self):
        import test_node
        cmd = test_node.node_command()
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=cert("ca.pem"))
        record = self.d.path("rec.rec")
        p = subprocess.run(cmd + [test_node.CLIENT, "wss://127.0.0.1:%d"
                                  % self.d.tls_port, record],
                           cwd=HERE, stdin=subprocess.DEVNULL, env=env,
                           capture_output=True, text=True,
                           timeout=test_node.NODE_TIMEOUT)
        report = "node exited %d\nstdout:\n%s\nstderr:\n%s" % (
            p.returncode, p.stdout, p.stderr)
        self.assertEqual(p.returncode, 0, report)
        for name in test_node.CHECKS:
            self.assertRegex(p.stdout, r"(?m)^ok %s(:|$)" % re.escape(name),
                             report)

    def test_s_client_tls11_refused(self):
        out = s_client(self.d.tls_port, "-tls1_1", stdin_delay=0)
        self.assertIn("alert protocol version", out)
        self.assertIn("New, (NONE), Cipher is (NONE)", out)
        self.assertIn("no peer certificate available", out)

    def test_s_client_tls12_and_alpn(self):
        out = s_client(self.d.tls_port, "-tls1_2", "-alpn", "h2,http/1.1")
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"Protocol\s*:\s*TLSv1\.2")
        self.assertIn("ALPN protocol: http/1.1", out)
        out = s_client(self.d.tls_port, "-alpn", "h2", stdin_delay=0)
        self.assertIn("no application protocol", out.lower())

    def test_s_client_sni_chooses_the_certificate(self):
        for name, subject in (("a.test", "CN = a.test"),
                              ("b.test", "CN = b.test"),
                              ("www.b.test", "CN = b.test")):
            out = s_client(self.d.tls_port, "-servername", name,
                           "-verify_hostname", name, stdin_delay=0.2)
            self.assertIn("subject=" + subject, out, name)
            self.assertIn("Verify return code: 0 (ok)", out, name)
        out = s_client(self.d.tls_port, "-noservername", stdin_delay=0.2)
        self.assertIn("subject=CN = 127.0.0.1", out)  # the default

    def test_s_client_renegotiation_refused(self):
        """A TLS 1.2 client that asks to renegotiate ("R") is refused with
        the no_renegotiation alert; the server goes on serving."""
        out = s_client(self.d.tls_port, "-tls1_2", stdin="R\n")
        self.assertIn("RENEGOTIATING", out)
        self.assertIn("no renegotiation", out)
        p = curl("--cacert", cert("ca.pem"), self.d.https("/healthz"))
        self.assertEqual(p.stdout.strip(), "ok", p.stderr)

    def test_s_client_resumption(self):
        sess = self.d.path("sess.pem")
        for version in ("-tls1_3", "-tls1_2"):
            out = s_client(self.d.tls_port, version, "-sess_out", sess)
            self.assertIn("New, TLSv1.", out)
            out = s_client(self.d.tls_port, version, "-sess_in", sess)
            self.assertIn("Reused, TLSv1.", out, version)
        p = curl("--cacert", cert("ca.pem"), self.d.https("/metrics"))
        self.assertGreaterEqual(metric(p.stdout, "websockd_tls_resumed_total"), 2)


# -- the raw-socket conformance cases, over TLS --------------------------------

# A representative set of test_conformance's cases: each kind of violation,
# valid data split at every offset, the closing handshake, fail-fast.
CONFORMANCE_OVER_TLS = re.compile(
    r"test_violation_(unmasked_text|rsv1_text|opcode_3|opcode_b_in_message|"
    r"len64_msb|ping_len126|.*utf8.*|.*fragment.*)$|"
    r"test_data_.*$|test_split_(violation_unmasked_text|.*text.*)$|"
    r"test_close_(valid_reason|empty|during_fragmented_message|"
    r"then_data_ignored_same_segment|valid_1000|valid_4000)$|"
    r"test_ping_then_close_same_segment$|test_nothing_after_close$|"
    r"test_fail_fast_.*$")


class TlsConformance(conformance.Conformance):
    """test_conformance's Conformance cases over an SSL-wrapped socket."""

    @classmethod
    def setUpClass(cls):
        d = TlsDaemon(cls.ROUTES, sections=False, args=conformance.DAEMON_ARGS)
        d.connect_raw = d.connect_tls  # harness.open_raw dials through it
        try:
            d.start()
        except BaseException:
            d.__exit__(None, None, None)
            raise
        cls.daemon = d


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    for cls in (Serving, Reload, BadInput, MutualTls, Check):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    names = [n for n in loader.getTestCaseNames(TlsConformance)
             if CONFORMANCE_OVER_TLS.match(n)]
    suite.addTests(TlsConformance(n) for n in names)
    return suite


# -- reload ---------------------------------------------------------------------

class Reload(unittest.TestCase):
    def test_reload_swaps_the_certificate_under_live_clients(self):
        d = TlsDaemon(ROUTES, copy_certs=True, sections=False)
        with d:
            self.assertEqual(serial_of(d.tls_port), 2001)
            stop = threading.Event()
            counts, errors = [0] * 4, []

            async def client(i):
                async with connect(d.wss("/echo"), ssl=client_context()) as ws:
                    while not stop.is_set():
                        msg = "c%d-%d" % (i, counts[i])
                        if await ask(ws, msg) != msg:
                            raise AssertionError("bad echo")
                        counts[i] += 1
                        await asyncio.sleep(0.005)

            async def clients():
                try:
                    await asyncio.gather(*(client(i) for i in range(4)))
                except BaseException as e:  # reported below
                    errors.append(e)

            t = threading.Thread(target=lambda: run(clients()))
            t.start()
            try:
                time.sleep(0.5)
                before = list(counts)
                shutil.copy(cert("ip2.pem"), d.cert_file)
                shutil.copy(cert("ip2.key"), d.key_file)
                d.signal(signal.SIGHUP)
                d.wait_log(r"TLS reload \(SIGHUP\) ok")
                # new handshakes get the new certificate at once
                self.assertEqual(serial_of(d.tls_port), 2002)
                time.sleep(0.5)
            finally:
                stop.set()
                t.join(timeout=30)
            self.assertEqual(errors, [])
            for b, a in zip(before, counts):
                self.assertGreater(a, b, "a live client stopped echoing")

    def test_failed_reload_keeps_the_old_certificate(self):
        d = TlsDaemon(ROUTES, copy_certs=True, sections=False)
        with d:
            async def echo_once():
                async with connect(d.wss("/echo"), ssl=client_context()) as ws:
                    self.assertEqual(await ask(ws, "x"), "x")
            # a key that does not match the certificate
            shutil.copy(cert("other.key"), d.key_file)
            d.signal(signal.SIGHUP)
            m = d.wait_log(r".*TLS reload \(SIGHUP\) failed.*")
            self.assertIn(d.key_file, m.group(0))
            self.assertEqual(len(re.findall(r"TLS reload \(SIGHUP\) failed",
                                            d.log())), 1)
            self.assertEqual(serial_of(d.tls_port), 2001)
            run(echo_once())
            # a missing certificate file
            os.unlink(d.cert_file)
            d.signal(signal.SIGHUP)
            deadline = time.time() + 10
            while (len(re.findall(r"TLS reload \(SIGHUP\) failed", d.log())) < 2
                   and time.time() < deadline):
                time.sleep(0.02)
            lines = [l for l in d.log().splitlines()
                     if "TLS reload (SIGHUP) failed" in l]
            self.assertEqual(len(lines), 2, d.log())
            self.assertIn(d.cert_file, lines[1])
            self.assertEqual(serial_of(d.tls_port), 2001)
            run(echo_once())


# -- bad input on the TLS port ---------------------------------------------------

class BadInput(unittest.TestCase):
    def test_bad_input_gets_its_answer_and_others_are_served(self):
        d = TlsDaemon(ROUTES, sections=False,
                      args=["--handshake-timeout-ms", "700"])
        with d:
            fds = lambda: len(os.listdir("/proc/%d/fd" % d.proc.pid))

            async def live():
                async with connect(d.wss("/echo"), ssl=client_context()) as ws:
                    self.assertEqual(await ask(ws, "before"), "before")
                    fds0 = fds()
                    await asyncio.to_thread(self.bad_clients, d)
                    self.assertEqual(await ask(ws, "after"), "after")
                    # nothing leaked: every bad client's socket is closed
                    deadline = time.time() + 5
                    while fds() > fds0 and time.time() < deadline:
                        await asyncio.sleep(0.02)
                    self.assertEqual(fds(), fds0)
            run(live())
            p = curl("--cacert", cert("ca.pem"), d.https("/metrics"))
            failed = lambda r: metric(p.stdout,
                                      "websockd_tls_handshakes_failed_total",
                                      '{reason="%s"}' % r)
            self.assertEqual(failed("plain_http"), 1, p.stdout)
            self.assertGreaterEqual(failed("malformed") + failed("version"), 1)
            self.assertEqual(failed("timeout"), 1, p.stdout)
            self.assertGreaterEqual(failed("truncated"), 1, p.stdout)
            for reason in ("plain_http", "timeout", "truncated"):
                self.assertRegex(d.log(), r"debug: 127\.0\.0\.1:\d+: TLS "
                                 r"handshake failed: %s" % reason)

    def bad_clients(self, d):
        # plain HTTP: nginx's 400, then the server closes
        s = d.connect_tcp_tls_port()
        with s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data)
        self.assertIn(b"The plain HTTP request was sent to HTTPS port", data)
        # garbage: closed
        self.assert_closed(d, b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64)
        self.assert_closed(d, os.urandom(300))
        # a truncated ClientHello, then the client's FIN
        hello = self.client_hello(d)
        self.assert_closed(d, hello[:len(hello) // 2], shut=True)
        # a client that stops mid-handshake: cut at the handshake deadline
        s = d.connect_tcp_tls_port(timeout=5)
        with s:
            s.sendall(hello[:20])
            t0 = time.time()
            self.assertEqual(s.recv(4096), b"")
            self.assertLess(time.time() - t0, 4)
        # a TLS client on the plain port: a clean failure, no hang
        with socket.create_connection(("127.0.0.1", d.port), timeout=5) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionResetError,
                                    ConnectionAbortedError, OSError)):
                client_context().wrap_socket(raw, server_hostname="127.0.0.1")

    def client_hello(self, d):
        """The bytes of a real ClientHello (Python's ssl, in memory)."""
        ctx = client_context()
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        return out.read()

    def assert_closed(self, d, data, shut=False):
        s = d.connect_tcp_tls_port()
        with s:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
            try:
                while s.recv(4096):
                    pass  # an alert at most
            except ConnectionResetError:
                pass


# -- mutual TLS and what plugins see --------------------------------------------

class MutualTls(unittest.TestCase):
    def test_client_certificates_and_the_sdk(self):
        d = TlsDaemon({"info": {"path": "/info", "plugin": TLSINFO_SO}},
                      sections=False,
                      server="tls_client_ca = " + cert("ca.pem"))
        with d:
            async def go():
                async with connect(d.wss("/info"),
                                   ssl=client_context("client")) as ws:
                    first = await recv(ws)
                    self.assertEqual(await ask(ws, "x"), "x")
                return first
            first = run(go())
            subject = "CN=client one,O=websockd tests"
            self.assertEqual(first, "upgrade tls=1 subject=%s; init tls=1 "
                             "subject=%s" % (subject, subject))

            # no certificate, or one of another CA: refused in the handshake
            for who in (None, "rogue-client"):
                async def refused():
                    with self.assertRaises((ssl.SSLError, OSError,
                                            Exception)) as cm:
                        async with connect(d.wss("/info"),
                                           ssl=client_context(who)) as ws:
                            await recv(ws)
                    return cm.exception
                run(refused())
            p = curl("--cacert", cert("ca.pem"), "--cert", cert("client.pem"),
                     "--key", cert("client.key"), d.https("/metrics"))
            self.assertGreaterEqual(
                metric(p.stdout, "websockd_tls_handshakes_failed_total",
                       '{reason="client_cert"}'), 2, p.stdout)

    def test_plain_tcp_says_no_tls(self):
        d = TlsDaemon({"info": {"path": "/info", "plugin": TLSINFO_SO}},
                      sections=False)
        with d:
            async def go():
                async with connect(d.url("/info")) as ws:
                    plain = await recv(ws)
                async with connect(d.wss("/info"), ssl=client_context()) as ws:
                    tls = await recv(ws)
                return plain, tls
            plain, tls = run(go())
            self.assertEqual(plain, "upgrade tls=0 subject=-; init tls=0 subject=-")
            self.assertEqual(tls, "upgrade tls=1 subject=-; init tls=1 subject=-")


# -- -t and start-up ------------------------------------------------------------

class Check(unittest.TestCase):
    def check(self, server):
        tmp = tempfile.mkdtemp(prefix="websockd-tls-check-")
        try:
            os.mkdir(os.path.join(tmp, "plugins.d"))
            harness.write_route(os.path.join(tmp, "plugins.d"), "echo",
                                {"path": "/echo", "plugin": ECHO_SO})
            conf = os.path.join(tmp, "websockd.conf")
            with open(conf, "w") as f:
                f.write("[server]\nlisten_tls = 127.0.0.1:0\n" + server)
            t = subprocess.run([harness.WEBSOCKD, "-t", "--config", conf,
                                "--plugins", os.path.join(tmp, "plugins.d")],
                               capture_output=True, text=True, timeout=60)
            # and starting with the same settings
            p = subprocess.Popen([harness.WEBSOCKD, "--config", conf,
                                  "--listen", "127.0.0.1:0", "--plugins",
                                  os.path.join(tmp, "plugins.d")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            try:
                _, err = p.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                _, err = p.communicate(timeout=20)
                return t, None, err
            return t, p.returncode, err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_check_ok_and_expiry_warning(self):
        t, status, _ = self.check("tls_cert = %s\ntls_key = %s\n"
                                  % (cert("soon.pem"), cert("soon.key")))
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("configuration OK", t.stdout)
        self.assertRegex(t.stderr, r"warning: TLS: .*soon\.pem: certificate "
                         r"expires on .* \(in (9|10) days\)")
        self.assertIsNone(status)  # it served until SIGTERM

    def test_check_and_start_refuse_a_mismatched_key(self):
        t, status, err = self.check("tls_cert = %s\ntls_key = %s\n"
                                    % (cert("a-ec.pem"), cert("other.key")))
        self.assertEqual(t.returncode, 1)
        self.assertIn(cert("other.key"), t.stderr)
        self.assertEqual(status, 2, err)
        self.assertIn(cert("other.key"), err)

    def test_listen_tls_needs_a_certificate(self):
        t, status, err = self.check("")
        self.assertEqual(t.returncode, 2, t.stderr)
        self.assertEqual(status, 2)
        self.assertIn("listen_tls", err)


if __name__ == "__main__":
    unittest.main()
