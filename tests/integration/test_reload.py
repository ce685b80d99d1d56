"""Hot reload, config check and graceful shutdown: the real websockd, Debian's
python3-websockets as the client, and tests/plugins/marker.c (compiled here,
at run time, once per variant) as the plugin whose build a client can see:
it answers every message with "MARKER:" + the message.

Run by ctest as integ_reload (tests.cmake sets WEBSOCKD, WSH_SOURCE_DIR,
WSH_BINARY_DIR, WSH_PLUGINS_D). The long reload loop runs against the plain
(non-sanitizer) websockd if one is built (WEBSOCKD_PLAIN, or
$WSH_SOURCE_DIR/build/host/websockd), and a shorter one under the default
(sanitizer) binary. Every wait is bounded; every websockd is stopped by PID.
"""

import asyncio
import contextlib
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from websockets.exceptions import ConnectionClosed, InvalidStatusCode

import harness
from harness import ECHO_SO, WEBSOCKD, open_raw, write_route

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WSH_SOURCE_DIR",
                            os.path.normpath(os.path.join(HERE, "..", "..")))
MARKER_C = os.path.join(SOURCE_DIR, "tests", "plugins", "marker.c")
SDK_INCLUDE = os.path.join(SOURCE_DIR, "sdk", "include")
CC = shlex.split(os.environ.get("CC") or "cc")

OP_TIMEOUT = 10.0    # one client operation
TEST_TIMEOUT = 90.0  # one whole client coroutine
RELOAD_TIMEOUT = 15.0

# Filled by setUpModule: prebuilt marker variants, and the TMPDIR the daemons
# get, so that their private plugin copies can be found and checked.
VARIANTS = {}
VARIANT_DIR = None
PRIVATE_TMP = None
_OLD_TMPDIR = None

VARIANT_DEFINES = {
    "v1": ('"v1"', ()),
    "v2": ('"v2"', ()),
    "v3": ('"v3"', ()),
    "no_table": ('"nt"', ("-DNO_TABLE",)),
    "bad_abi": ('"ba"', ("-DBAD_ABI",)),
    "undefined_ref": ('"ur"', ("-DUNDEFINED_REF",)),
}


def cc_command(marker, out, defines=()):
    return CC + ["-shared", "-fPIC", "-fvisibility=hidden", "-I" + SDK_INCLUDE,
            "-DMARKER=" + marker] + list(defines) + [MARKER_C, "-o", out]


def build_marker(marker, dest, defines=()):
    """Compiles marker.c to a temporary file next to dest, then renames it
    over dest, as an installer would."""
    tmp = "%s.tmp.%d" % (dest, os.getpid())
    subprocess.run(cc_command(marker, tmp, defines), check=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    os.rename(tmp, dest)


def install(variant, dest, how="rename"):
    """Puts a prebuilt variant at dest: by rename of a fresh copy (atomic), or
    by overwriting dest in place (cp)."""
    src = VARIANTS[variant]
    if how == "rename":
        tmp = os.path.join(os.path.dirname(dest), ".%s.new" % os.path.basename(dest))
        shutil.copyfile(src, tmp)
        os.rename(tmp, dest)
    else:
        subprocess.run(["cp", src, dest], check=True, timeout=10)


def setUpModule():
    global VARIANT_DIR, PRIVATE_TMP, _OLD_TMPDIR
    VARIANT_DIR = tempfile.mkdtemp(prefix="websockd-marker-")
    procs = []
    for name, (marker, defines) in VARIANT_DEFINES.items():
        out = os.path.join(VARIANT_DIR, name + ".so")
        procs.append((name, out, subprocess.Popen(
            cc_command(marker, out, defines), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for name, out, proc in procs:
        text, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise AssertionError("cannot build marker variant %s:\n%s" % (name, text))
        VARIANTS[name] = out
    # websockd puts its private plugin copies under $TMPDIR: give it one of
    # our own so that leftovers are seen (and removed) here.
    PRIVATE_TMP = tempfile.mkdtemp(prefix="websockd-private-")
    _OLD_TMPDIR = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = PRIVATE_TMP


def tearDownModule():
    if _OLD_TMPDIR is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = _OLD_TMPDIR
    shutil.rmtree(VARIANT_DIR, ignore_errors=True)
    shutil.rmtree(PRIVATE_TMP, ignore_errors=True)


def private_dirs(pid):
    return glob.glob(os.path.join(PRIVATE_TMP, "websockd.%d.*" % pid))


# ---------------------------------------------------------------------------
# The daemon, its log and its metrics
# ---------------------------------------------------------------------------

class Daemon(harness.Daemon):
    """harness.Daemon with another binary if asked, log counting, SIGHUP
    reloads that wait for their log line, and a check that the private
    directory of plugin copies is gone after a clean exit."""

    def __init__(self, routes, binary=None, **kw):
        super().__init__(routes, **kw)
        self.binary = binary or WEBSOCKD

    def start(self):
        saved = harness.WEBSOCKD
        harness.WEBSOCKD = self.binary
        try:
            return super().start()
        finally:
            harness.WEBSOCKD = saved

    @property
    def pid(self):
        return self.proc.pid

    def route_file(self, name):
        return os.path.join(self.plugins_d, name + ".conf")

    def so(self, name="marker"):
        return os.path.join(self.plugins_d, name + ".so")

    # -- log ---------------------------------------------------------------
    def lines(self, start=0):
        with self._log_lock:
            return list(self.log_lines[start:])

    def nlines(self):
        with self._log_lock:
            return len(self.log_lines)

    def count(self, pattern, start=0):
        rx = re.compile(pattern)
        return sum(1 for l in self.lines(start) if rx.search(l))

    def wait_count(self, pattern, n, timeout=RELOAD_TIMEOUT, start=0):
        """Waits until at least n lines from `start` on match pattern."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        seen, pos = 0, start
        while True:
            new = self.lines(pos)
            pos += len(new)
            seen += sum(1 for l in new if rx.search(l))
            if seen >= n:
                return seen
            if time.time() > deadline:
                raise AssertionError("%d of %d log lines matching %r after %.0f s:\n%s"
                                     % (seen, n, pattern, timeout, self.tail()))
            if self.proc.poll() is not None:
                raise AssertionError("websockd exited %s:\n%s"
                                     % (self.proc.returncode, self.tail()))
            time.sleep(0.005)

    def tail(self, n=60):
        return "\n".join(self.lines()[-n:])

    def reload(self, why="SIGHUP"):
        """Sends SIGHUP and waits for its result line. Returns (ok, line,
        the log lines the reload wrote)."""
        pattern = r"reload \(%s\) (ok|failed)" % re.escape(why)
        start = self.nlines()
        if why == "SIGHUP":
            self.signal(signal.SIGHUP)
        self.wait_count(pattern, 1, start=start)
        new = self.lines(start)
        line = [l for l in new if re.search(pattern, l)][0]
        return " ok:" in line, line, new

    # -- process -----------------------------------------------------------
    def __exit__(self, exc_type, exc, tb):
        pid = self.proc.pid if self.proc else None
        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            if pid is not None:
                left = private_dirs(pid)
                for p in left:
                    shutil.rmtree(p, ignore_errors=True)
                if left and exc_type is None and self.proc.returncode == 0:
                    raise AssertionError("websockd exited 0 but left its private "
                                         "directory behind: %s" % left)


metrics_text = harness.metrics_text
generations = harness.generations


def sample(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    if not m:
        raise AssertionError("no %s in metrics:\n%s" % (name, text))
    return float(m.group(1))


def reloads(text, result):
    return int(sample(text, 'websockd_reloads_total{result="%s"}' % result))


def current(text, route):
    gens = [g for g in generations(text, route) if g["state"] == "current"]
    if len(gens) != 1:
        raise AssertionError("not one current generation of %s:\n%s" % (route, text))
    return gens[0]


def poll(fn, timeout=10.0, what="condition"):
    """Calls fn until it returns a true value; returns it."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def proc_figures(pid, private_dir):
    """(open fds, maps lines of the private plugin copies, distinct copies
    of marker.so mapped, VmRSS kB)."""
    fds = len(os.listdir("/proc/%d/fd" % pid))
    with open("/proc/%d/maps" % pid) as f:
        lines = [l.split()[-1] for l in f if private_dir in l]
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))
    markers = set(l for l in lines if l.endswith("-marker.so"))
    return fds, len(lines), len(markers), rss


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

run, connect, recv, ask = harness.client_helpers(TEST_TIMEOUT, OP_TIMEOUT)


async def ask_new(url, msg="hello"):
    """One exchange on a fresh connection."""
    async with connect(url) as ws:
        return await ask(ws, msg)


async def upgrade_status(url):
    try:
        async with connect(url):
            return 101
    except InvalidStatusCode as e:
        return e.status_code


async def pump(ws, name, prefix, stop, counts, window=4):
    """Sends numbered messages in windows of `window` until stop is set and
    checks that each answer is prefix + the message, in order."""
    n = 0
    while not stop.is_set():
        batch = ["%s-%d" % (name, n + i) for i in range(window)]
        for m in batch:
            await ws.send(m)
        for m in batch:
            got = await recv(ws)
            if got != prefix + m:
                raise AssertionError("%s: expected %r, got %r" % (name, prefix + m, got))
        n += window
        counts[name] = n
        await asyncio.sleep(0.002)
    return n


async def wait_counts(counts, names, at_least, timeout=30.0, tasks=()):
    deadline = time.time() + timeout
    while not all(counts.get(n, 0) >= at_least.get(n, 0) for n in names):
        for t in tasks:
            if t.done():
                t.result()  # raises the client's error
        if time.time() > deadline:
            raise AssertionError("traffic stalled: %r (wanted %r)" % (counts, at_least))
        await asyncio.sleep(0.01)


def marker_route(**extra):
    r = {"path": "/marker", "plugin": "marker.so"}
    r.update(extra)
    return r


# ---------------------------------------------------------------------------
# Reload under traffic: drain and restart
# ---------------------------------------------------------------------------

class DrainTest(unittest.TestCase):

    def test_steady_traffic_across_reload(self):
        """10 clients on /marker and 3 on /echo keep exchanging numbered
        messages while marker.so is rebuilt as v2 and SIGHUP is sent: nothing
        drops, nothing is lost or reordered, old connections stay on v1, new
        ones get v2, and the old generation drains then unloads."""
        d = Daemon({"marker": marker_route(),
                    "echo": {"path": "/echo", "plugin": ECHO_SO}})
        build_marker('"v1"', d.so())
        with d:
            url = d.url

            async def go():
                m0 = current(metrics_text(d.port), "/marker")
                e0 = current(metrics_text(d.port), "/echo")
                self.assertEqual(m0["version"], "v1")
                mws = [await connect(url("/marker")) for _ in range(10)]
                ews = [await connect(url("/echo")) for _ in range(3)]
                stop = asyncio.Event()
                counts = {}
                tasks = [asyncio.create_task(pump(ws, "m%d" % i, "v1:", stop, counts))
                         for i, ws in enumerate(mws)]
                tasks += [asyncio.create_task(pump(ws, "e%d" % i, "", stop, counts))
                          for i, ws in enumerate(ews)]
                names = ["m%d" % i for i in range(10)] + ["e%d" % i for i in range(3)]
                await wait_counts(counts, names, {n: 8 for n in names}, tasks=tasks)

                # Rebuild as v2 (compile to a temp file, rename) and reload.
                await asyncio.to_thread(build_marker, '"v2"', d.so())
                ok, line, _ = await asyncio.to_thread(d.reload)
                self.assertTrue(ok, line)
                self.assertRegex(line, r"changed /marker \(generation \d+\)")
                self.assertIn("unchanged 1", line)
                before = dict(counts)
                self.assertEqual(await ask_new(url("/marker"), "new"), "v2:new")
                await wait_counts(counts, names, {n: before[n] + 8 for n in names},
                                  tasks=tasks)

                text = await asyncio.to_thread(metrics_text, d.port)
                gens = generations(text, "/marker")
                old = [g for g in gens if g["generation"] == m0["generation"]]
                self.assertEqual(len(old), 1, text)
                self.assertEqual(old[0]["state"], "draining", text)
                self.assertEqual(old[0]["conns"], 10, text)
                self.assertEqual(old[0]["version"], "v1", text)
                new = current(text, "/marker")
                self.assertEqual(new["version"], "v2", text)
                self.assertNotEqual(new["generation"], m0["generation"])
                self.assertEqual(current(text, "/echo")["generation"], e0["generation"])
                self.assertEqual(current(text, "/echo")["conns"], 3)

                stop.set()
                done = await asyncio.gather(*tasks)
                self.assertTrue(all(n >= 16 for n in done), done)

                # Close the old clients one by one: the draining count follows,
                # and the generation disappears with its last client.
                for i, ws in enumerate(mws):
                    await ws.close()
                    self.assertEqual(ws.close_code, 1000)
                    left = 9 - i

                    def drained(left=left):
                        g = [g for g in generations(metrics_text(d.port), "/marker")
                             if g["generation"] == m0["generation"]]
                        if left == 0:
                            return not g
                        return g and g[0]["conns"] == left and g[0]["state"] == "draining"
                    await asyncio.to_thread(poll, drained, 10.0,
                                            "%d clients on the old generation" % left)
                for ws in ews:
                    self.assertIsNone(ws.close_code)  # never dropped
                    await ws.close()
                return m0["generation"]

            old_id = run(go())
            d.wait_log(r"route /marker: generation %s unloaded" % old_id, timeout=5)
            self.assertEqual(d.count(r"route /echo: generation \d+ unloaded"), 0)

    def test_reload_restart_closes_1012(self):
        """reload = restart: old clients get close 1012 and reconnect to v2;
        a drain route next to it is untouched."""
        d = Daemon({"marker": marker_route(reload="restart"),
                    "echo": {"path": "/echo", "plugin": ECHO_SO}})
        install("v1", d.so(), how="cp")
        with d:
            async def go():
                m0 = current(metrics_text(d.port), "/marker")
                mws = [await connect(d.url("/marker")) for _ in range(3)]
                ews = await connect(d.url("/echo"))
                for i, ws in enumerate(mws):
                    self.assertEqual(await ask(ws, "a%d" % i), "v1:a%d" % i)
                install("v2", d.so(), how="cp")  # overwrite in place
                ok, line, _ = await asyncio.to_thread(d.reload)
                self.assertTrue(ok, line)
                for ws in mws:
                    with self.assertRaises(ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
                    self.assertEqual(ws.close_code, 1012)
                self.assertEqual(await ask(ews, "still"), "still")
                for i in range(3):
                    self.assertEqual(await ask_new(d.url("/marker"), "b%d" % i), "v2:b%d" % i)

                def gone():
                    return not [g for g in generations(metrics_text(d.port), "/marker")
                                if g["generation"] == m0["generation"]]
                await asyncio.to_thread(poll, gone, 10.0, "old generation to go")
                await ews.close()
                return m0["generation"]

            old_id = run(go())
            d.wait_log(r"route /marker: generation %s unloaded" % old_id, timeout=5)


# ---------------------------------------------------------------------------
# Failed reloads keep the old code serving; all or nothing
# ---------------------------------------------------------------------------

class FailedReloadTest(unittest.TestCase):

    def test_failures_keep_old_code(self):
        d = Daemon({"marker": marker_route(),
                    "echo": {"path": "/echo", "plugin": ECHO_SO}})
        install("v1", d.so())
        trace = d.path("trace")
        d.routes["marker"]["options"] = {"trace": trace}
        marker_conf = d.route_file("marker")
        extra_conf = d.route_file("zz_extra")

        def write_marker_conf(**changes):
            route = dict(d.routes["marker"])
            route["options"] = dict(route["options"])
            for k, v in changes.items():
                if k == "options":
                    route["options"].update(v)
                else:
                    route[k] = v
            write_route(d.plugins_d, "marker", route)

        def write_extra(text):
            with open(extra_conf, "w") as f:
                f.write(text)

        def truncate_so():
            with open(d.so(), "r+b") as f:
                f.truncate(300)

        away = d.plugins_d + ".away"

        def restore():
            if os.path.isdir(away):
                os.rename(away, d.plugins_d)
            write_marker_conf()
            install("v1", d.so())
            if os.path.exists(extra_conf):
                os.unlink(extra_conf)

        so, conf = re.escape(d.so()), re.escape(marker_conf)
        xconf = re.escape(extra_conf)
        cases = [
            ("missing .so", lambda: write_marker_conf(plugin="gone.so"),
             conf + r": .*gone\.so: No such file or directory"),
            ("truncated .so", truncate_so,
             conf + r": " + so + r": truncated: the program header table ends at byte \d+ "
             r"but the file has 300 bytes"),
            ("no websock_handler_v1", lambda: install("no_table", d.so()),
             conf + r": " + so + r": no websock_handler_v1 symbol"),
            ("undefined symbol", lambda: install("undefined_ref", d.so()),
             conf + r": " + so + r": cannot load: .*undefined symbol: websock_no_such_function"),
            ("unknown ABI", lambda: install("bad_abi", d.so()),
             conf + r": " + so + r": unknown ABI version 99 .*version 1"),
            ("load() refuses", lambda: write_marker_conf(options={"refuse": "yes"}),
             conf + r": " + so + r": load\(\) refused the route /marker"),
            ("conf syntax error",
             lambda: write_extra("path = /extra\nplugin = marker.so\n[options\n"),
             xconf + r": line 3: syntax error"),
            ("conf unknown key",
             lambda: write_extra("path = /extra\nplugin = marker.so\nbogus_key = 1\n"),
             xconf + r": line 3: unknown key \"bogus_key\""),
            ("duplicate path",
             lambda: write_extra("path = /marker\nplugin = marker.so\n"),
             xconf + r": path /marker is already served by " + conf),
            ("plugins directory gone", lambda: os.rename(d.plugins_d, away),
             re.escape(d.plugins_d) + r": cannot read directory: No such file"),
        ]
        with d:
            async def go():
                a = await connect(d.url("/marker"))
                b = await connect(d.url("/echo"))
                self.assertEqual(await ask(a, "start"), "v1:start")
                text = metrics_text(d.port)
                gen = current(text, "/marker")["generation"]
                priv = private_dirs(d.pid)
                self.assertEqual(len(priv), 1, priv)
                copies = sorted(os.listdir(priv[0]))

                for what, apply, cause in cases:
                    with self.subTest(what):
                        text = metrics_text(d.port)
                        failed, oks = reloads(text, "failed"), reloads(text, "ok")
                        try:
                            await asyncio.to_thread(apply)
                            ok, line, new = await asyncio.to_thread(d.reload)
                            self.assertFalse(ok, line)
                            errors = [l for l in new if " error: " in l]
                            self.assertEqual(len(errors), 1, "\n".join(new))
                            self.assertIn("the previous routes keep serving", errors[0])
                            self.assertRegex(errors[0], cause)
                            text = metrics_text(d.port)
                            self.assertEqual(reloads(text, "failed"), failed + 1, text)
                            self.assertEqual(reloads(text, "ok"), oks, text)
                            self.assertEqual(sample(text, "websockd_last_reload_success"), 0)
                            self.assertEqual(current(text, "/marker")["generation"], gen)
                            self.assertEqual(len(generations(text, "/marker")), 1, text)
                            self.assertEqual(await ask(a, what), "v1:" + what)
                            self.assertEqual(await ask(b, what), what)
                            self.assertEqual(await ask_new(d.url("/marker"), "n"), "v1:n")
                            self.assertEqual(sorted(os.listdir(priv[0])), copies,
                                             "a failed load left a private copy")
                        finally:
                            # Put it back: the next reload changes nothing.
                            await asyncio.to_thread(restore)
                        ok, line, _ = await asyncio.to_thread(d.reload)
                        self.assertTrue(ok, line)
                        self.assertNotRegex(line, r"(?<!un)changed")
                        text = metrics_text(d.port)
                        self.assertEqual(current(text, "/marker")["generation"], gen)
                        self.assertEqual(sample(text, "websockd_last_reload_success"), 1)

                # All or nothing: a good change (v2) goes in ...
                await asyncio.to_thread(install, "v2", d.so())
                ok, line, _ = await asyncio.to_thread(d.reload)
                self.assertTrue(ok, line)
                self.assertEqual(await ask_new(d.url("/marker"), "n"), "v2:n")
                self.assertEqual(await ask(a, "x"), "v1:x")
                text = metrics_text(d.port)
                gen2 = current(text, "/marker")["generation"]
                # ... then v3 together with a bad file sorted after it changes
                # nothing: v3 is loaded, then thrown away.
                with open(trace, "w"):
                    pass
                await asyncio.to_thread(install, "v3", d.so())
                write_extra("path = /extra\nplugin = marker.so\nbogus_key = 1\n")
                ok, line, new = await asyncio.to_thread(d.reload)
                self.assertFalse(ok, line)
                self.assertIn("bogus_key", line)
                text = metrics_text(d.port)
                self.assertEqual(current(text, "/marker")["generation"], gen2)
                self.assertEqual(current(text, "/marker")["version"], "v2")
                self.assertNotIn('version="v3"', text)
                self.assertEqual(await ask_new(d.url("/marker"), "n"), "v2:n")
                self.assertEqual(await ask(a, "y"), "v1:y")
                self.assertEqual(await ask(b, "y"), "y")
                with open(trace) as f:
                    self.assertEqual(f.read().split("\n"), ["load v3", "unload v3", ""])
                self.assertIsNone(a.close_code)
                self.assertIsNone(b.close_code)
                await a.close()
                await b.close()
                self.assertGreater(sample(text, "websockd_last_reload_timestamp_seconds"), 0)

            run(go())


# ---------------------------------------------------------------------------
# Added, removed and unchanged routes
# ---------------------------------------------------------------------------

class RouteSetTest(unittest.TestCase):

    def test_added_and_removed_route(self):
        d = Daemon({"marker": marker_route()})
        install("v1", d.so())
        with d:
            async def go():
                self.assertEqual(await upgrade_status(d.url("/added")), 404)
                write_route(d.plugins_d, "added", {"path": "/added", "plugin": ECHO_SO})
                ok, line, _ = await asyncio.to_thread(d.reload)
                self.assertTrue(ok, line)
                self.assertRegex(line, r"added /added \(generation \d+\)")
                c = await connect(d.url("/added"))
                self.assertEqual(await ask(c, "hi"), "hi")
                gen = current(metrics_text(d.port), "/added")["generation"]

                os.unlink(d.route_file("added"))
                ok, line, _ = await asyncio.to_thread(d.reload)
                self.assertTrue(ok, line)
                self.assertRegex(line, r"removed \(draining\) /added \(generation %s\)" % gen)
                self.assertEqual(await upgrade_status(d.url("/added")), 404)
                for i in range(5):
                    self.assertEqual(await ask(c, "still %d" % i), "still %d" % i)
                gens = generations(metrics_text(d.port), "/added")
                self.assertEqual([(g["generation"], g["state"], g["conns"]) for g in gens],
                                 [(gen, "draining", 1)])
                self.assertEqual(await ask_new(d.url("/marker")), "v1:hello")
                await c.close()
                await asyncio.to_thread(
                    poll, lambda: not generations(metrics_text(d.port), "/added"),
                    10.0, "/added to be unloaded")
                return gen

            gen = run(go())
            d.wait_log(r"route /added: generation %s unloaded" % gen, timeout=5)

    def test_unchanged_routes_untouched(self):
        d = Daemon({"marker": marker_route(),
                    "echo": {"path": "/echo", "plugin": "echo.so"}})
        install("v1", d.so())
        shutil.copyfile(ECHO_SO, d.so("echo"))
        with d:
            def ids():
                text = metrics_text(d.port)
                return {r: current(text, r)["generation"] for r in ("/marker", "/echo")}

            first = ids()
            priv = private_dirs(d.pid)[0]
            install("v2", d.so())
            ok, line, new = d.reload()
            self.assertTrue(ok, line)
            self.assertIn("unchanged 1", line)
            second = ids()
            self.assertNotEqual(second["/marker"], first["/marker"])
            self.assertEqual(second["/echo"], first["/echo"])
            self.assertEqual([l for l in new if "route /echo" in l], [])

            # Only the .conf changes (a new option): a new generation of the
            # same .so, whose load() sees the new options; /echo untouched.
            d.routes["marker"]["options"] = {"colour": "blue"}
            d.write_routes()
            ok, line, new = d.reload()
            self.assertTrue(ok, line)
            self.assertRegex(line, r"changed /marker \(generation \d+\) unchanged 1$")
            third = ids()
            self.assertNotEqual(third["/marker"], second["/marker"])
            self.assertEqual(third["/echo"], first["/echo"])
            second = third
            copies = sorted(os.listdir(priv))

            # New mtimes, the same bytes (a rewritten .conf, a touched .so):
            # no new generation.
            later = time.time() + 100
            for p in (d.so(), d.so("echo"), d.route_file("echo")):
                os.utime(p, (later, later))
            d.write_routes()
            os.utime(d.route_file("marker"), (later, later))
            start = d.nlines()
            ok, line, new = d.reload()
            self.assertTrue(ok, line)
            self.assertNotRegex(line, r"(?<!un)changed")
            self.assertIn("unchanged 2", line)
            self.assertEqual(ids(), second)
            self.assertEqual(d.count(r"\(generation \d+\)$|generation \d+ unloaded", start), 0,
                             "\n".join(d.lines(start)))
            self.assertEqual(sorted(os.listdir(priv)), copies)
            self.assertEqual(len(generations(metrics_text(d.port), "/marker")), 1)
            self.assertEqual(run(ask_new(d.url("/marker"))), "v2:hello")
            self.assertEqual(run(ask_new(d.url("/echo"))), "hello")


# ---------------------------------------------------------------------------
# Many reloads under traffic: nothing leaks
# ---------------------------------------------------------------------------

def plain_websockd():
    """The non-sanitizer websockd, if one is built."""
    env = os.environ.get("WEBSOCKD_PLAIN")
    cands = [env] if env else []
    cands.append(os.path.join(SOURCE_DIR, "build", "host", "websockd"))
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            if os.path.realpath(c) != os.path.realpath(WEBSOCKD):
                return c
    return None


@contextlib.contextmanager
def asan_quarantine_off():
    """ASan keeps freed memory in a quarantine (about +130 kB of RSS per
    reload here, all of it reusable): switched off for the daemons started
    inside, so that a real leak shows in VmRSS. LeakSanitizer still runs at
    their exit; a plain binary ignores ASAN_OPTIONS."""
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = ":".join(
        x for x in (saved, "quarantine_size_mb=0",
                    "thread_local_quarantine_size_kb=0") if x)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = saved


class Traffic(threading.Thread):
    """Two clients (one on /marker, staying on its first generation, one on
    /echo) exchanging messages in a loop of their own, until stopped."""

    def __init__(self, daemon, marker_prefix):
        super().__init__(daemon=True)
        self.d = daemon
        self.prefix = marker_prefix
        self.stop_flag = threading.Event()
        self.ready = threading.Event()
        self.counts = {}
        self.error = None

    def run(self):
        async def go():
            stop = asyncio.Event()
            async with connect(self.d.url("/marker")) as m, \
                    connect(self.d.url("/echo")) as e:
                tasks = [asyncio.create_task(pump(m, "m", self.prefix, stop, self.counts, 2)),
                         asyncio.create_task(pump(e, "e", "", stop, self.counts, 2))]
                self.ready.set()
                while not self.stop_flag.is_set():
                    for t in tasks:
                        if t.done():
                            t.result()
                    await asyncio.sleep(0.02)
                stop.set()
                await asyncio.gather(*tasks)
        try:
            asyncio.run(asyncio.wait_for(go(), 300))
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.ready.set()

    def finish(self):
        self.stop_flag.set()
        self.join(timeout=30)
        if self.is_alive():
            raise AssertionError("traffic thread did not stop")
        if self.error:
            raise AssertionError("traffic client failed: %r" % (self.error,))
        return dict(self.counts)


class ReloadLoopTest(unittest.TestCase):

    def reload_loop(self, binary, n, label):
        """n reloads (v1 and v2 in turn, copied in place over marker.so) under
        traffic; returns the (fds, maps lines, mapped copies, VmRSS kB)
        figures after the warm-up and at the end."""
        warmup = 10
        # The echo.so of the same build as the binary: a sanitizer build's
        # plugins need the sanitizer runtime of its websockd.
        echo_so = os.path.join(os.path.dirname(os.path.dirname(binary)),
                               "plugins.d", "echo.so")
        d = Daemon({"marker": marker_route(),
                    "echo": {"path": "/echo", "plugin": echo_so}}, binary=binary)
        install("v1", d.so())
        t0 = time.time()
        with d:
            priv = private_dirs(d.pid)
            self.assertEqual(len(priv), 1, priv)

            def settled(want):
                # loaded: the traffic client's first generation (while it is
                # connected) and the current one; nothing else
                return len(generations(metrics_text(d.port), "/marker")) == want

            def figures_now(want, fds_at_most=None):
                poll(lambda: settled(want), 10.0, "draining generations to unload")
                # the last /metrics connection may still be closing: give it
                # up to 2 s to go before the file descriptors are counted
                deadline = time.time() + 2.0
                while True:
                    time.sleep(0.1)
                    fig = proc_figures(d.pid, priv[0])
                    if fds_at_most is None or fig[0] <= fds_at_most or time.time() > deadline:
                        return fig

            traffic = Traffic(d, "v1:")
            traffic.start()
            try:
                self.assertTrue(traffic.ready.wait(20))
                ok_pattern = r"reload \(SIGHUP\) ok"
                for i in range(n):
                    variant = "v2" if i % 2 == 0 else "v1"
                    install(variant, d.so(), how="cp")  # in place, like cp
                    start = d.nlines()
                    d.signal(signal.SIGHUP)
                    d.wait_count(r"reload \(SIGHUP\) (ok|failed)", 1, start=start)
                    self.assertEqual(d.count(ok_pattern, start), 1,
                                     "reload %d failed:\n%s" % (i, d.tail()))
                    if i % 5 == 4:
                        self.assertEqual(run(ask_new(d.url("/marker"), "r%d" % i)),
                                         "%s:r%d" % (variant, i))
                    if i + 1 == warmup:
                        warm = figures_now(2)
                end = figures_now(2, warm[0])
                counts = traffic.finish()
            finally:
                traffic.stop_flag.set()
                traffic.join(timeout=30)
            # the traffic clients are gone: only the current generation is left
            idle = figures_now(1)
            text = metrics_text(d.port)
            self.assertEqual(reloads(text, "ok"), n)
            self.assertEqual(reloads(text, "failed"), 0)
            unloaded = d.count(r"route /marker: generation \d+ unloaded")
        elapsed = time.time() - t0
        print("\n[%s] %d reloads in %.1f s, messages %r, generations unloaded %d\n"
              "  after %3d reloads: fds %d, maps lines %d (%d copies), VmRSS %d kB\n"
              "  after %3d reloads: fds %d, maps lines %d (%d copies), VmRSS %d kB (%+d kB)\n"
              "  clients gone:      fds %d, maps lines %d (%d copies), VmRSS %d kB"
              % ((label, n, elapsed, counts, unloaded, warmup) + warm + (n,) + end
                 + (end[3] - warm[3],) + idle), file=sys.stderr)
        self.assertGreater(min(counts.values()), 10, counts)
        self.assertEqual(unloaded, n)  # every generation but the current one
        self.assertLessEqual(end[0], warm[0], "file descriptors grew")
        self.assertEqual(end[1:3], warm[1:3], "mapped plugin copies grew")
        self.assertEqual(warm[2], 2)  # the traffic client's, the current one
        self.assertEqual(idle[2], 1)  # the current one
        self.assertLess(idle[0], end[0])
        return warm[3], end[3]

    def test_reload_loop_plain(self):
        binary = plain_websockd()
        if binary:
            rss0, rss1 = self.reload_loop(binary, 200, "plain " + binary)
        else:
            print("\nno plain websockd built: the long loop runs under the "
                  "sanitizer binary, with 100 reloads only", file=sys.stderr)
            with asan_quarantine_off():
                rss0, rss1 = self.reload_loop(WEBSOCKD, 100, "asan " + WEBSOCKD)
        self.assertLess(rss1 - rss0, 4096, "RSS grew by %d kB" % (rss1 - rss0))

    def test_reload_loop_asan(self):
        with asan_quarantine_off():
            rss0, rss1 = self.reload_loop(WEBSOCKD, 60, "default " + WEBSOCKD +
                                          ", ASan quarantine off")
        self.assertLess(rss1 - rss0, 4096, "RSS grew by %d kB" % (rss1 - rss0))


# ---------------------------------------------------------------------------
# websockd -t
# ---------------------------------------------------------------------------

class ConfigCheckTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="websockd-check-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def check(self, plugins_dir, *args):
        proc = subprocess.run([WEBSOCKD, "-t", "--plugins", plugins_dir] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)
        # -t loads the plugins in a throw-away generation: nothing is left.
        left = glob.glob(os.path.join(PRIVATE_TMP, "websockd.*"))
        for p in left:
            shutil.rmtree(p, ignore_errors=True)
        self.assertEqual(left, [], "websockd -t left its private directory")
        for marker in harness.SANITIZER_MARKERS:
            self.assertNotIn(marker, proc.stderr)
        return proc

    def plugins_dir(self, name, routes, sos=(("marker", "v1"),)):
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        for so, variant in sos:
            install(variant, os.path.join(d, so + ".so"))
        for rname, route in routes.items():
            write_route(d, rname, route)
        return d

    def test_good_config(self):
        trace = os.path.join(self.tmp, "trace")
        d = self.plugins_dir("good", {
            "marker": marker_route(options={"trace": trace}),
            "echo": {"path": "/echo", "plugin": ECHO_SO}})
        proc = self.check(d)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("configuration OK", proc.stdout)
        self.assertIn("2 route(s)", proc.stdout)
        with open(trace) as f:  # load() and unload() both ran
            self.assertEqual(f.read(), "load v1\nunload v1\n")
        # a good host config file too
        cfg = os.path.join(self.tmp, "websockd.conf")
        with open(cfg, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:0\nworkers = 2\nshutdown_grace_ms = 500\n")
        proc = self.check(d, "--config", cfg)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("configuration OK", proc.stdout)

    def test_bad_routes(self):
        cases = {
            "unknown_key": ({"marker": marker_route(colour="red")}, (("marker", "v1"),),
                            r"marker\.conf: line 3: unknown key \"colour\""),
            "missing_so": ({"marker": marker_route(plugin="nope.so")}, (),
                           r"marker\.conf: .*nope\.so: No such file or directory"),
            "bad_abi": ({"marker": marker_route()}, (("marker", "bad_abi"),),
                        r"marker\.conf: .*marker\.so: unknown ABI version 99"),
            "no_table": ({"marker": marker_route()}, (("marker", "no_table"),),
                         r"marker\.so: no websock_handler_v1 symbol"),
            "refuse": ({"marker": marker_route(options={"refuse": "yes"})},
                       (("marker", "v1"),), r"marker\.so: load\(\) refused"),
        }
        for name, (routes, sos, cause) in cases.items():
            with self.subTest(name):
                routes = dict(routes)
                routes["echo"] = {"path": "/echo", "plugin": ECHO_SO}
                d = self.plugins_dir(name, routes, sos)
                proc = self.check(d)
                self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
                self.assertNotIn("configuration OK", proc.stdout)
                self.assertRegex(proc.stderr, re.escape(d) + "/" + cause)
                self.assertIn("1 route(s) in %s failed the check" % d, proc.stderr)
        # two bad files: both named
        d = self.plugins_dir("two", {
            "a": {"path": "/a", "plugin": "marker.so", "bogus": "1"},
            "b": {"path": "/a", "plugin": "marker.so"},
            "c": {"path": "/c", "plugin": "marker.so"},
            "d": {"path": "/c", "plugin": "marker.so"}})
        proc = self.check(d)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("a.conf: line 3: unknown key \"bogus\"", proc.stderr)
        self.assertIn("d.conf: path /c is already served by %s/c.conf" % d, proc.stderr)
        self.assertIn("2 route(s)", proc.stderr)

    def test_bad_host_config(self):
        d = self.plugins_dir("good", {"marker": marker_route()})
        cfg = os.path.join(self.tmp, "websockd.conf")
        with open(cfg, "w") as f:
            f.write("[server]\nworkers = 2\nno_such_setting = 1\n")
        for args in (["-t"], []):
            with self.subTest(args=args):
                proc = subprocess.run(
                    [WEBSOCKD] + args + ["--plugins", d, "--config", cfg,
                                         "--listen", "127.0.0.1:0"],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
                self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
                self.assertIn(cfg, proc.stderr)
                self.assertIn("line 3", proc.stderr)
                self.assertIn('unknown setting "no_such_setting"', proc.stderr)
                self.assertNotIn("configuration OK", proc.stdout)
        left = glob.glob(os.path.join(PRIVATE_TMP, "websockd.*"))
        for p in left:
            shutil.rmtree(p, ignore_errors=True)
        self.assertEqual(left, [])


# ---------------------------------------------------------------------------
# Graceful shutdown
# ---------------------------------------------------------------------------

class ShutdownTest(unittest.TestCase):

    def shutdown_with_clients(self, sig):
        """Open clients on two routes, then sig: each sees close 1001,
        websockd exits 0, and the plugin's unload() ran."""
        d = Daemon({"marker": marker_route(),
                    "echo": {"path": "/echo", "plugin": ECHO_SO}})
        trace = d.path("trace")
        d.routes["marker"]["options"] = {"trace": trace}
        install("v1", d.so())
        with d:
            async def go():
                clients = [await connect(d.url("/marker")) for _ in range(4)]
                clients += [await connect(d.url("/echo")) for _ in range(2)]
                for ws in clients[:4]:
                    self.assertEqual(await ask(ws, "x"), "v1:x")
                t0 = time.time()
                d.signal(sig)
                for ws in clients:
                    with self.assertRaises(ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), OP_TIMEOUT)
                    self.assertEqual(ws.close_code, 1001)
                    await asyncio.wait_for(ws.wait_closed(), OP_TIMEOUT)
                rc = await asyncio.to_thread(d.proc.wait, 10)
                return rc, time.time() - t0

            rc, took = run(go())
            self.assertEqual(rc, 0, d.log())
            self.assertLess(took, 5.0)
            d.wait_log(r"signal %d: shutting down" % sig, timeout=5)
            d.wait_log(r"all connections closed; exiting", timeout=5)
            with open(trace) as f:  # unload() ran before the exit
                self.assertEqual(f.read(), "load v1\nunload v1\n")

    def test_sigterm_closes_1001_and_exits_0(self):
        self.shutdown_with_clients(signal.SIGTERM)

    def test_sigint_closes_1001_and_exits_0(self):
        self.shutdown_with_clients(signal.SIGINT)

    def test_grace_period_cuts_a_silent_client(self):
        """A client that never answers the close: with --shutdown-grace-ms
        1000 websockd still exits (0) within ~3 s."""
        d = Daemon({"marker": marker_route()}, args=["--shutdown-grace-ms", "1000"])
        install("v1", d.so())
        with d:
            s, reader = open_raw(d, "/marker")
            try:
                t0 = time.time()
                d.signal(signal.SIGTERM)
                rc = d.proc.wait(timeout=10)
                took = time.time() - t0
                code, _ = reader.close_frame()
                self.assertEqual(code, 1001)
                self.assertTrue(reader.at_eof(5))
            finally:
                s.close()
            self.assertEqual(rc, 0, d.log())
            self.assertGreater(took, 0.8)
            self.assertLess(took, 3.0, d.log())
            d.wait_log(r"grace period over, cutting 1 connection", timeout=5)

    def test_second_signal_exits_at_once(self):
        d = Daemon({"marker": marker_route()}, args=["--shutdown-grace-ms", "10000"],
                   expect_exit=None)
        install("v1", d.so())
        with d:
            s, reader = open_raw(d, "/marker")
            try:
                d.signal(signal.SIGTERM)
                d.wait_log(r"shutting down", timeout=5)
                code, _ = reader.close_frame()  # the shutdown has begun
                self.assertEqual(code, 1001)
                t0 = time.time()
                d.signal(signal.SIGTERM)
                rc = d.proc.wait(timeout=10)
                took = time.time() - t0
            finally:
                s.close()
            self.assertNotEqual(rc, 0)
            self.assertLess(took, 1.5)
            d.wait_log(r"second signal", timeout=5)


    # Regression: the second signal's _exit(1) used to leave the registry's
    # private directory ($TMPDIR/websockd.<pid>.XXXXXX) and the plugin copies
    # in it behind.
    def test_second_signal_leaves_no_private_copies(self):
        d = Daemon({"marker": marker_route()}, args=["--shutdown-grace-ms", "10000"],
                   expect_exit=None)
        install("v1", d.so())
        with d:
            s, _ = open_raw(d, "/marker")
            try:
                d.signal(signal.SIGTERM)
                d.wait_log(r"shutting down", timeout=5)
                d.signal(signal.SIGTERM)
                d.proc.wait(timeout=10)
            finally:
                s.close()
            left = private_dirs(d.pid)
            contents = [os.listdir(p) for p in left]
            self.assertEqual(left, [], "left behind: %s %s" % (left, contents))


# ---------------------------------------------------------------------------
# --watch
# ---------------------------------------------------------------------------

class WatchTest(unittest.TestCase):

    def test_watch_reloads_without_a_signal(self):
        d = Daemon({"marker": marker_route()}, args=["--watch"])
        install("v1", d.so())
        with d:
            async def newest(expect, deadline):
                while True:
                    got = await ask_new(d.url("/marker"), "w")
                    if got == expect + ":w" or time.time() > deadline:
                        return got
                    await asyncio.sleep(0.05)

            async def go():
                a = await connect(d.url("/marker"))
                self.assertEqual(await ask(a, "a"), "v1:a")
                t0 = time.time()
                install("v2", d.so(), how="rename")
                self.assertEqual(await newest("v2", t0 + 3.0), "v2:w")
                took_rename = time.time() - t0
                self.assertEqual(await ask(a, "b"), "v1:b")  # drains on v1
                await asyncio.to_thread(d.wait_log, r"reload \(--watch\) ok", 5)
                # and again, overwriting in place
                t0 = time.time()
                install("v3", d.so(), how="cp")
                self.assertEqual(await newest("v3", t0 + 3.0), "v3:w")
                took_cp = time.time() - t0
                self.assertEqual(await ask(a, "c"), "v1:c")
                # a broken build: the reload fails, v3 keeps serving
                start = d.nlines()
                install("bad_abi", d.so(), how="rename")
                await asyncio.to_thread(d.wait_count, r"reload \(--watch\) failed.*"
                                        r"unknown ABI version 99", 1, 5.0, start)
                self.assertEqual(await ask_new(d.url("/marker"), "w"), "v3:w")
                # a route file dropped in appears by itself
                t0 = time.time()
                write_route(d.plugins_d, "added", {"path": "/added", "plugin": "marker.so"})
                install("v1", d.so(), how="rename")
                while await upgrade_status(d.url("/added")) != 101 and time.time() < t0 + 3:
                    await asyncio.sleep(0.05)
                self.assertEqual(await ask_new(d.url("/added"), "w"), "v1:w")
                self.assertEqual(await newest("v1", t0 + 3.0), "v1:w")
                self.assertEqual(await ask(a, "d"), "v1:d")
                self.assertIsNone(a.close_code)
                await a.close()
                return took_rename, took_cp

            took = run(go())
            print("\n--watch: v2 served %.2f s after the rename, v3 %.2f s after cp"
                  % took, file=sys.stderr)
            self.assertEqual(d.count(r"reload \(SIGHUP\)"), 0)
            self.assertEqual(d.count(r"reload \(--watch\) failed"), 1, d.log())


if __name__ == "__main__":
    unittest.main()
