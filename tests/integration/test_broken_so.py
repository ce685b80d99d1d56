"""A broken plugin .so must never take websockd down: the shipped echo plugin
cut at many offsets (a half-finished cp or scp), a plugin whose constructor
crashes, each tried by SIGHUP under live connections, by --watch, at start-up
and by `websockd -t`. Also: a failed reload gives its generation number back,
and /metrics tells two builds of one plugin version apart.

Clients: Debian's python3-websockets. Run by ctest as integ_broken_so
(tests.cmake sets WEBSOCKD, WSH_PLUGINS_D, WSH_TEST_PLUGIN_DIR,
WSH_SOURCE_DIR). Every wait is bounded; every websockd is stopped by PID.
"""

import asyncio
import hashlib
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest


import harness
from harness import ECHO_SO, WEBSOCKD, test_plugin, write_route

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WSH_SOURCE_DIR",
                            os.path.normpath(os.path.join(HERE, "..", "..")))
MARKER_C = os.path.join(SOURCE_DIR, "tests", "plugins", "marker.c")
SDK_INCLUDE = os.path.join(SOURCE_DIR, "sdk", "include")
CC = shlex.split(os.environ.get("CC") or "cc")

OP_TIMEOUT = 10.0
RELOAD_TIMEOUT = 20.0


# ---------------------------------------------------------------------------
# Where to cut: the ELF layout of the file
# ---------------------------------------------------------------------------

def elf_layout(data):
    """(program header table (start, end), [PT_LOAD (start, end)], section
    header table (start, end)) of a little-endian ELF64 file."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not ELF64 LE"
    (phoff, shoff) = struct.unpack_from("<QQ", data, 32)
    (phentsize, phnum, shentsize, shnum) = struct.unpack_from("<HHHH", data, 54)
    loads = []
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_filesz:
            loads.append((p_offset, p_offset + p_filesz))
    return (phoff, phoff + phnum * phentsize), loads, (shoff, shoff + shnum * shentsize)


def cut_offsets(data, spread=20):
    """Offsets from 64 bytes to just short of the whole file: inside the ELF
    header's reach and the program headers, at the start, quarters and end of
    each loadable segment, around the section headers, and `spread` evenly
    spaced ones."""
    size = len(data)
    (ph0, ph1), loads, (sh0, sh1) = elf_layout(data)
    cuts = {64, 65, 100, ph0 + 1, (ph0 + ph1) // 2, ph1 - 1, ph1, size - 1, size - 64}
    for start, end in loads:
        length = end - start
        cuts.update({start + 1, start + length // 4, start + length // 2,
                     start + 3 * length // 4, end - 1})
    cuts.update({sh0 - 1, sh0, sh0 + 1, sh1 - 1})
    cuts.update(64 + (size - 64) * k // spread for k in range(1, spread))
    return sorted(c for c in cuts if 64 <= c < size)


def where(data, off):
    """Which part of the file a cut at `off` falls in (for the summary)."""
    (ph0, ph1), loads, (sh0, sh1) = elf_layout(data)
    if off < ph1:
        return "program headers"
    for i, (start, end) in enumerate(loads, 1):
        if start < off < end:
            return "segment %d" % i
    if off >= sh0:
        return "section headers"
    return "between segments"


# ---------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------

class Daemon(harness.Daemon):
    """harness.Daemon with SIGHUP reloads that wait for their result line."""

    def so(self, name="echo"):
        return os.path.join(self.plugins_d, name + ".so")

    def lines(self, start=0):
        with self._log_lock:
            return list(self.log_lines[start:])

    def nlines(self):
        with self._log_lock:
            return len(self.log_lines)

    def wait_result(self, why, start):
        rx = re.compile(r"reload \(%s\) (ok|failed)" % re.escape(why))
        deadline = time.time() + RELOAD_TIMEOUT
        while True:
            new = self.lines(start)
            hits = [l for l in new if rx.search(l)]
            if hits:
                return " ok:" in hits[0], hits[0], new
            if self.proc.poll() is not None:
                raise AssertionError("websockd exited %s:\n%s"
                                     % (self.proc.returncode, "\n".join(self.lines()[-40:])))
            if time.time() > deadline:
                raise AssertionError("no reload result line:\n" + "\n".join(new))
            time.sleep(0.005)

    def reload(self):
        start = self.nlines()
        self.signal(signal.SIGHUP)
        return self.wait_result("SIGHUP", start)


metrics_text = harness.metrics_text
generations = harness.generations


run, connect, _, ask = harness.client_helpers(240, OP_TIMEOUT)


async def ask_new(url, msg):
    async with connect(url) as ws:
        return await ask(ws, msg)


def write_cut(path, data, n):
    """What `head -c n echo.so > path` does: the file rewritten in place."""
    with open(path, "wb") as f:
        f.write(data[:n])


def summarise(results):
    """{cause without numbers: [(offset, part)...]} as lines for stderr."""
    by = {}
    for off, part, cause in results:
        key = re.sub(r"\d+", "N", cause)
        by.setdefault(key, []).append("%d(%s)" % (off, part))
    return "\n".join("  %3d x %s: %s" % (len(v), k, " ".join(v)) for k, v in sorted(by.items()))


def cause_of(line, so):
    """The part of an error line after the .so path."""
    i = line.find(so + ": ")
    return line[i + len(so) + 2:] if i >= 0 else line


# ---------------------------------------------------------------------------
# Truncated copies of echo.so
# ---------------------------------------------------------------------------

class TruncatedTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(ECHO_SO, "rb") as f:
            cls.data = f.read()
        cls.cuts = cut_offsets(cls.data)

    def test_offsets_cover_the_file(self):
        (ph0, ph1), loads, (sh0, sh1) = elf_layout(self.data)
        self.assertGreaterEqual(len(self.cuts), 40)
        self.assertGreaterEqual(len(loads), 2)
        for start, end in loads:
            self.assertTrue([c for c in self.cuts if start < c < end], (start, end))
        self.assertTrue([c for c in self.cuts if c < ph1])
        self.assertEqual(self.cuts[-1], len(self.data) - 1)

    def test_sighup_with_cut_files_under_live_connections(self):
        d = Daemon({"echo": {"path": "/echo", "plugin": "echo.so"}})
        shutil.copyfile(ECHO_SO, d.so())
        results = []
        with d:
            async def go():
                live = [await connect(d.url("/echo")) for _ in range(3)]
                for i, ws in enumerate(live):
                    self.assertEqual(await ask(ws, "hello %d" % i), "hello %d" % i)
                gen = generations(metrics_text(d.port), "/echo")
                self.assertEqual(len(gen), 1)
                for off in self.cuts:
                    if d.proc.poll() is not None:
                        break  # the subtest that saw it die has failed
                    with self.subTest(offset=off):
                        write_cut(d.so(), self.data, off)
                        ok, line, new = await asyncio.to_thread(d.reload)
                        self.assertFalse(ok, "a %d-byte echo.so was loaded: %s" % (off, line))
                        errors = [l for l in new if " error: " in l]
                        self.assertEqual(len(errors), 1, "\n".join(new))
                        self.assertIn(d.so() + ": ", errors[0])
                        results.append((off, where(self.data, off),
                                        cause_of(errors[0], d.so())))
                        for i, ws in enumerate(live):
                            msg = "cut %d on %d" % (off, i)
                            self.assertEqual(await ask(ws, msg), msg)
                        self.assertEqual(await ask_new(d.url("/echo"), "new"), "new")
                        self.assertIsNone(d.proc.poll())
                # The whole file again: nothing changed since the start.
                shutil.copyfile(ECHO_SO, d.so())
                ok, line, _ = await asyncio.to_thread(d.reload)
                self.assertTrue(ok, line)
                self.assertIn("unchanged 1", line)
                self.assertEqual(generations(metrics_text(d.port), "/echo"), gen)
                for ws in live:
                    self.assertIsNone(ws.close_code)
                    await ws.close()

            t0 = time.time()
            run(go())
            took = time.time() - t0
        print("\n%d cuts of echo.so (%d bytes) by SIGHUP in %.1f s, each refused:\n%s"
              % (len(results), len(self.data), took, summarise(results)), file=sys.stderr)

    def test_check_mode_with_cut_files(self):
        tmp = tempfile.mkdtemp(prefix="websockd-cut-")
        try:
            write_route(tmp, "echo", {"path": "/echo", "plugin": "echo.so"})
            so = os.path.join(tmp, "echo.so")
            for off in self.cuts:
                with self.subTest(offset=off):
                    write_cut(so, self.data, off)
                    p = subprocess.run([WEBSOCKD, "-t", "--plugins", tmp],
                                       stdin=subprocess.DEVNULL, capture_output=True,
                                       text=True, timeout=60)
                    self.assertEqual(p.returncode, 1, p.stderr)
                    self.assertRegex(p.stderr, re.escape(so) + r": (truncated: |not )")
                    for marker in harness.SANITIZER_MARKERS:
                        self.assertNotIn(marker, p.stderr)
            shutil.copyfile(ECHO_SO, so)
            p = subprocess.run([WEBSOCKD, "-t", "--plugins", tmp], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# A constructor that crashes: the probe takes the hit
# ---------------------------------------------------------------------------

class ProbeTest(unittest.TestCase):

    def test_crashing_constructor_sighup_watch_startup_and_check(self):
        crash = test_plugin("ctor_crash")
        cause = r"crashed while being probed: signal 7 \(Bus error\)"
        d = Daemon({"echo": {"path": "/echo", "plugin": "echo.so"},
                    "zcrash": {"path": "/crash", "plugin": crash}},
                   args=["--watch"])
        shutil.copyfile(ECHO_SO, d.so())
        with d:
            # start-up: the crashing route is left out, the others serve
            d.wait_log(re.escape(crash) + ": " + cause)
            self.assertEqual(len([l for l in d.lines() if " error: " in l]), 1, d.log())

            async def go():
                ws = await connect(d.url("/echo"))
                self.assertEqual(await ask(ws, "a"), "a")
                # the crashing route goes: --watch reloads by itself
                start = d.nlines()
                os.unlink(os.path.join(d.plugins_d, "zcrash.conf"))
                ok, line, _ = await asyncio.to_thread(d.wait_result, "--watch", start)
                self.assertTrue(ok, line)
                # the crashing plugin renamed over echo.so: --watch tries it
                start = d.nlines()
                shutil.copyfile(crash, d.so() + ".tmp")
                os.rename(d.so() + ".tmp", d.so())
                ok, line, _ = await asyncio.to_thread(d.wait_result, "--watch", start)
                self.assertFalse(ok, line)
                self.assertRegex(line, re.escape(d.so()) + ": " + cause)
                self.assertEqual(await ask(ws, "b"), "b")
                # and SIGHUP
                ok, line, new = await asyncio.to_thread(d.reload)
                self.assertFalse(ok, line)
                self.assertRegex(line, re.escape(d.so()) + ": " + cause)
                self.assertEqual(len([l for l in new if " error: " in l]), 1, "\n".join(new))
                self.assertEqual(await ask(ws, "c"), "c")
                self.assertEqual(await ask_new(d.url("/echo"), "n"), "n")
                self.assertIsNone(ws.close_code)
                await ws.close()

            run(go())
            self.assertIsNone(d.proc.poll())
        # -t: exit 1, the file named
        tmp = tempfile.mkdtemp(prefix="websockd-crash-")
        try:
            write_route(tmp, "crash", {"path": "/crash", "plugin": crash})
            p = subprocess.run([WEBSOCKD, "-t", "--plugins", tmp], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertRegex(p.stderr, re.escape(crash) + ": " + cause)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Generation numbers and the build label
# ---------------------------------------------------------------------------

def build_marker(out, opt):
    """marker.c as version "v1" (the same version string), at -O0 or -O2:
    two builds of one plugin version with different content."""
    subprocess.run(CC + ["-shared", "-fPIC", "-fvisibility=hidden", opt, "-I" + SDK_INCLUDE,
                         '-DMARKER="v1"', MARKER_C, "-o", out],
                   check=True, timeout=60, stdin=subprocess.DEVNULL)


def sha12(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


class GenerationTest(unittest.TestCase):

    def test_failed_reloads_keep_numbers_and_builds_differ(self):
        tmp = tempfile.mkdtemp(prefix="websockd-builds-")
        try:
            a, b = os.path.join(tmp, "a.so"), os.path.join(tmp, "b.so")
            build_marker(a, "-O0")
            build_marker(b, "-O2")
            self.assertNotEqual(sha12(a), sha12(b))
            # a broken route sorted first must not take number 1 at start-up
            d = Daemon({"aa_broken": {"path": "/broken", "plugin": "broken.so"},
                        "marker": {"path": "/marker", "plugin": "marker.so"}})
            with open(os.path.join(d.plugins_d, "broken.so"), "w") as f:
                f.write("not a shared object\n")
            shutil.copyfile(a, d.so("marker"))
            with d:
                async def go():
                    d.wait_log(r"route /marker: marker v1 from .* \(generation 1\)")
                    old = await connect(d.url("/marker"))
                    self.assertEqual(await ask(old, "x"), "v1:x")
                    (g,) = generations(metrics_text(d.port), "/marker")
                    self.assertEqual((g["generation"], g["version"], g["build"]),
                                     ("1", "v1", sha12(a)))
                    # two failed reloads: a broken marker.so, then one that
                    # loads but with a broken route file next to it
                    with open(d.so("marker"), "w") as f:
                        f.write("half a file")
                    ok, line, _ = await asyncio.to_thread(d.reload)
                    self.assertFalse(ok, line)
                    shutil.copyfile(b, d.so("marker"))
                    os.rename(os.path.join(d.plugins_d, "aa_broken.conf"),
                              os.path.join(d.plugins_d, "zz_broken.conf"))
                    ok, line, _ = await asyncio.to_thread(d.reload)
                    self.assertFalse(ok, line)
                    os.unlink(os.path.join(d.plugins_d, "zz_broken.conf"))
                    # the good build: the next number after the last loaded
                    ok, line, new = await asyncio.to_thread(d.reload)
                    self.assertTrue(ok, line)
                    self.assertIn("changed /marker (generation 2)", line)
                    self.assertTrue([l for l in new if re.search(
                        r"route /marker: marker v1 from .* \(generation 2\)", l)], "\n".join(new))
                    gens = {g["generation"]: g for g in
                            generations(metrics_text(d.port), "/marker")}
                    self.assertEqual(sorted(gens), ["1", "2"], gens)
                    self.assertEqual(gens["1"]["state"], "draining")
                    self.assertEqual(gens["2"]["state"], "current")
                    self.assertEqual(gens["1"]["version"], gens["2"]["version"])
                    self.assertEqual(gens["1"]["build"], sha12(a))
                    self.assertEqual(gens["2"]["build"], sha12(b))
                    self.assertEqual(await ask(old, "y"), "v1:y")
                    await old.close()

                run(go())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
