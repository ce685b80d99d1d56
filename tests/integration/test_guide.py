"""sdk/README.md, the plugin author's guide, followed as a newcomer would:
every fenced block is run, in order, in a fresh home folder.

  <!-- file: NAME -->   the block is appended to NAME (relative to the
                        shell's current folder)
  <!-- run -->          a shell block, run by bash -e in one session: the
                        folder and exported variables carry over
  <!-- start -->        the websockd command line; the test starts it
                        (harness.Daemon: stopped by PID, sanitizer-checked)
  <!-- output -->       what the run block before it printed
  <!-- skip: REASON --> not run (the reason is required)

A block without a marker fails the test, so no snippet escapes it. The SDK
is the one the guide's own "Install" block builds and installs into the
temporary home (cmake --install, as integ_sdk does). Stand-ins on PATH:
`python3` is Debian's /usr/bin/python3 (python3-websockets), `websockd`
the websockd under test (for `websockd -t`), `sudo` runs its command, and
`systemctl reload websockd` sends SIGHUP to the test's daemon. The one
substitution: 127.0.0.1:8080 becomes that daemon's ephemeral port. The
guide's own blocks redeploy its counter plugin under `reload = handoff`
with a client connected (the test checks the log: handed off, none
closed); then the test itself checks a redeploy of the room under `reload
= drain` with python3-websockets.

Run by ctest as integ_guide.
"""

import asyncio
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import unittest

import websockets

import harness

SOURCE = os.environ.get("WSH_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GUIDE = os.path.join(SOURCE, "sdk", "README.md")
STEP_TIMEOUT = 300
OP_TIMEOUT = 10
GUIDE_ADDR = "127.0.0.1:8080"
MARKER = re.compile(r"^<!-- (file: (?P<file>\S+)|(?P<kind>run|start|output)"
                    r"|skip: (?P<why>.+\S)) -->$")


def guide_blocks():
    """[(kind, arg, text, line)] for every fenced block of the guide."""
    with open(GUIDE) as f:
        lines = f.read().split("\n")
    blocks, marker, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            marker = m
        elif line.startswith("```"):
            start = i + 1
            i += 1
            while i < len(lines) and lines[i] != "```":
                i += 1
            text = "\n".join(lines[start:i]) + "\n"
            if marker is None:
                raise AssertionError("sdk/README.md:%d: a fenced block "
                                     "without a marker comment" % start)
            if marker.group("file"):
                blocks.append(("file", marker.group("file"), text, start))
            elif marker.group("why"):
                blocks.append(("skip", marker.group("why"), text, start))
            else:
                blocks.append((marker.group("kind"), None, text, start))
            marker = None
        elif line.strip():
            marker = None  # a marker belongs to the block right after it
        i += 1
    return blocks


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASAN_", "UBSAN_", "LSAN_", "TSAN_", "WSH_"))
           and k not in ("CFLAGS", "LDFLAGS", "CPPFLAGS", "C_INCLUDE_PATH",
                         "CPATH", "CMAKE_PREFIX_PATH", "PKG_CONFIG_PATH",
                         "PKG_CONFIG_LIBDIR", "LD_PRELOAD", "LD_LIBRARY_PATH",
                         "WEBSOCKD", "MAKEFLAGS")}
    env.update(extra)
    return env


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP
             | stat.S_IXOTH)


class GuideDaemon(harness.Daemon):
    """websockd with the guide's own command line."""

    def __init__(self, argv):
        super().__init__({})
        self.argv = argv

    def command(self):
        return self.argv


class Session:
    """One shell session across the guide's run blocks."""

    def __init__(self, home):
        self.home = home
        self.state = os.path.join(home, ".guide-session")
        os.makedirs(self.state)
        shims = os.path.join(self.state, "bin")
        os.makedirs(shims)
        os.symlink("/usr/bin/python3", os.path.join(shims, "python3"))
        os.symlink(os.path.abspath(harness.WEBSOCKD),
                   os.path.join(shims, "websockd"))
        write_exe(os.path.join(shims, "sudo"), '#!/bin/sh\nexec "$@"\n')
        self.pidfile = os.path.join(self.state, "websockd.pid")
        self.reloads = os.path.join(self.state, "reloads")
        write_exe(os.path.join(shims, "systemctl"), (
            '#!/bin/sh\n'
            '# the stand-in for systemd: reload the test\'s websockd\n'
            '[ "$1" = reload ] && [ "$2" = websockd ] || exit 1\n'
            'kill -HUP "$(cat %s)" && echo reload >> %s\n')
            % (shlex.quote(self.pidfile), shlex.quote(self.reloads)))
        self.env = clean_env(HOME=home, PATH=shims + ":" + os.environ["PATH"])
        with open(os.path.join(self.state, "cwd"), "w") as f:
            f.write(home)
        open(os.path.join(self.state, "env"), "w").close()

    def cwd(self):
        with open(os.path.join(self.state, "cwd")) as f:
            return f.read().strip()

    def script(self, body):
        st = shlex.quote(self.state)
        return ('cd "$(cat %s/cwd)"\n. %s/env\nset -e\n%s\n'
                'export -p > %s/env\npwd > %s/cwd\n' % (st, st, body, st, st))

    def run(self, body):
        return subprocess.run(["bash", "-c", self.script(body)], env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=STEP_TIMEOUT)

    def argv(self, command):
        """The command line as the session's shell expands it."""
        p = subprocess.run(["bash", "-c", self.script(
            "printf '%%s\\0' %s" % command.strip())], env=self.env,
            capture_output=True, text=True, timeout=STEP_TIMEOUT, check=True)
        return p.stdout.split("\0")[:-1]

    def reload_count(self):
        if not os.path.exists(self.reloads):
            return 0
        with open(self.reloads) as f:
            return len(f.read().split())


def normalized(text):
    """Output lines, with the die's value left out."""
    return [re.sub(r"rolled [1-6]\b", "rolled N", line.rstrip())
            for line in text.strip().splitlines()]


class GuideTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="websock-guide-")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, "src"))
        os.symlink(SOURCE, os.path.join(self.home, "src", "websockd"))
        self.session = Session(self.home)
        self.daemon = None

    def tearDown(self):
        try:
            if self.daemon is not None:
                self.daemon.__exit__(None, None, None)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def sub(self, text):
        if GUIDE_ADDR in text:
            self.assertIsNotNone(self.daemon, "%s before the daemon starts"
                                 % GUIDE_ADDR)
            text = text.replace(GUIDE_ADDR, "127.0.0.1:%d" % self.daemon.port)
        return text

    def run_block(self, text, line):
        p = self.session.run(self.sub(text))
        if p.returncode != 0:
            self.fail("sdk/README.md:%d: block exited %d\n%s\nstdout:\n%s\n"
                      "stderr:\n%s" % (line, p.returncode, text, p.stdout,
                                       p.stderr))
        want = self.session.reload_count()
        if self.daemon is not None and want > self.reloads_seen:
            deadline_pattern = r"reload \(SIGHUP\) (ok|failed)"
            for _ in range(200):
                got = re.findall(deadline_pattern, self.daemon.log())
                if len(got) >= want:
                    break
                asyncio.run(asyncio.sleep(0.05))
            got = re.findall(deadline_pattern, self.daemon.log())
            self.assertGreaterEqual(len(got), want, self.daemon.log())
            self.assertEqual(got[-1], "ok", self.daemon.log())
            self.reloads_seen = want
        return p.stdout

    def start_daemon(self, text):
        argv = self.session.argv(text)
        self.assertEqual(argv[0], "websockd", argv)
        self.assertIn(GUIDE_ADDR, argv)
        argv = [harness.WEBSOCKD] + [
            "127.0.0.1:0" if a == GUIDE_ADDR else a for a in argv[1:]]
        self.daemon = GuideDaemon(argv)
        self.daemon.start()
        with open(self.session.pidfile, "w") as f:
            f.write(str(self.daemon.proc.pid))
        self.reloads_seen = 0

    def test_follow_the_guide(self):
        blocks = guide_blocks()
        kinds = [b[0] for b in blocks]
        files = {b[1] for b in blocks if b[0] == "file"}
        self.assertEqual(kinds.count("start"), 1)
        self.assertGreaterEqual(kinds.count("output"), 1)
        for want in ("room.c", "test_room.c", "CMakeLists.txt", "room.conf",
                     "try_room.py", "counter.c", "counter.conf",
                     "try_handoff.py"):
            self.assertIn(want, files)
        last_out, deploy, ran = None, None, []
        for kind, arg, text, line in blocks:
            if kind == "file":
                with open(os.path.join(self.session.cwd(), arg), "a") as f:
                    f.write(self.sub(text))
            elif kind == "run":
                last_out = self.run_block(text, line)
                ran.append(text)
                if deploy is None and "systemctl reload websockd" in text:
                    deploy = text  # the room's
            elif kind == "start":
                self.start_daemon(text)
            elif kind == "output":
                self.assertEqual(normalized(last_out), normalized(text),
                                 "sdk/README.md:%d" % line)
        # what the guide promised happened
        room = os.path.join(self.home, "room")
        for built in ("build/room.so", "build/websock-link-check/room.so",
                      "room.so", "test_room"):
            self.assertTrue(os.path.isfile(os.path.join(room, built)), built)
        ctest = [t for t in ran if "ctest" in t]
        self.assertTrue(ctest)
        # the room, counter version 1, counter version 2 under a client
        self.assertEqual(self.session.reload_count(), 3)
        self.assertTrue(self.daemon.find_log(
            r"reload \(SIGHUP\) ok: added /room"), self.daemon.log())
        self.assertTrue(self.daemon.find_log(
            r"route /count/:room: counter 2 from "), self.daemon.log())
        # try_handoff.py's connection moved to version 2, none was closed
        # (its output block shows the count carried on)
        self.assertTrue(self.daemon.find_log(
            r"route /count/:room: 1 connection\(s\) handed off from "
            r"generation \d+ to \d+, 0 closed"), self.daemon.log())
        self.assertFalse(self.daemon.find_log(
            r"route /count/:room: \d+ connection\(s\) handed off .*, "
            r"[1-9]\d* closed"), self.daemon.log())
        self.assertIsNotNone(deploy)
        self.redeploy_drains(deploy)

    def redeploy_drains(self, deploy):
        """A new version, built and deployed with the guide's blocks while a
        client is open: under reload = drain it stays on the old generation
        and still hears the room, new code included (topics are
        host-wide)."""
        url = self.daemon.url("/room?name=")
        room_c = os.path.join(self.home, "room", "room.c")
        with open(room_c) as f:
            text = f.read()
        self.assertIn('.version = "1.0.0"', text)
        with open(room_c, "w") as f:
            f.write(text.replace('.version = "1.0.0"', '.version = "1.0.1"'))
        self.run_block("cd ~/room && cmake --build build", 0)

        async def go():
            async with websockets.connect(url + "carol",
                                          open_timeout=OP_TIMEOUT) as carol:
                got = [await asyncio.wait_for(carol.recv(), OP_TIMEOUT)]
                await asyncio.to_thread(self.run_block, deploy, 0)
                async with websockets.connect(url + "dave",
                                              open_timeout=OP_TIMEOUT) as dave:
                    await dave.send("hi")
                    for _ in range(2):
                        got.append(await asyncio.wait_for(carol.recv(),
                                                          OP_TIMEOUT))
                # a name is required: 400 before the 101
                with self.assertRaises(websockets.InvalidStatusCode) as e:
                    await websockets.connect(url[:-len("?name=")],
                                             open_timeout=OP_TIMEOUT)
                self.assertEqual(e.exception.status_code, 400)
                return got
        got = asyncio.run(asyncio.wait_for(go(), 60))
        self.assertEqual(got, ["* carol joined", "* dave joined", "dave: hi"])
        self.assertEqual(self.session.reload_count(), 4)
        self.assertTrue(self.daemon.find_log(
            r"reload \(SIGHUP\) ok: changed /room"), self.daemon.log())
        self.assertTrue(self.daemon.find_log(
            r"route /room: room 1\.0\.1 from .*\(generation \d+\)"),
            self.daemon.log())


if __name__ == "__main__":
    unittest.main()
