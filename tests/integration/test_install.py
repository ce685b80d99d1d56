"""websockd as an operator installs it: the man pages against --help and
the daemon's own keys, systemd's notify protocol and the switch to an
unprivileged user, and the Debian packages built with CPack, installed on
this machine, checked, served from and removed.

Run by ctest as integ_install (as root: the package test installs with dpkg
and binds a port below 1024).
"""

import asyncio
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

import websockets

from harness import WEBSOCKD, Daemon

SOURCE = os.environ.get("WSH_SOURCE_DIR", "../..")
OP_TIMEOUT = 15.0
STEP_TIMEOUT = 600


def man_text(page):
    with open(os.path.join(SOURCE, "man", page)) as f:
        return f.read()


def man_section(text, title):
    """The roff source of one .SH section."""
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH |\Z)" % re.escape(title), text,
                  re.S | re.M)
    return m.group(1) if m else ""


def man_keys(section):
    """The keys a websockd.conf(5) section documents (.BI/.BR key " = ...")."""
    return set(re.findall(r'^\.B[IR] ([a-z_]+) "? ?=', section, re.M))


def help_options():
    out = subprocess.run([WEBSOCKD, "--help"], capture_output=True, text=True,
                         check=True, timeout=OP_TIMEOUT).stdout
    return set(re.findall(r"--([a-z][a-z-]+)", out))


def source_route_keys():
    """The keys the route reader compares against (host/**/route.c)."""
    keys = set()
    for path in glob.glob(os.path.join(SOURCE, "host", "**", "route.c"),
                          recursive=True):
        with open(path) as f:
            keys |= set(re.findall(r'strcmp\(name, "([a-z_]+)"\)', f.read()))
    return keys


class NotifyListener:
    """A NOTIFY_SOCKET as systemd provides it: a datagram socket anyone may
    write to."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.settimeout(OP_TIMEOUT)

    def expect(self, *states):
        got = self.sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in got.splitlines())
        for state in states:
            key, value = state.split("=", 1)
            assert fields.get(key) == value, (state, got)
        return fields

    def close(self):
        self.sock.close()


async def echo_once(url, text):
    async with websockets.connect(url, open_timeout=OP_TIMEOUT) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), OP_TIMEOUT)


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


class ManPagesTest(unittest.TestCase):
    def test_every_option_of_help_is_in_websockd_8_and_back(self):
        documented = set(re.findall(r"\\-\\-([a-z][a-z\\-]+)",
                                    man_section(man_text("websockd.8"),
                                                "OPTIONS")))
        documented = {d.replace("\\-", "-") for d in documented}
        self.assertEqual(help_options(), documented)

    def test_every_host_key_is_documented_and_known(self):
        text = man_text("websockd.conf.5")
        keys = man_keys(man_section(text, "HOST CONFIG FILE"))
        # each --help option that is a setting has its key
        flags_only = {"help", "version", "test", "config", "watch"}
        want = {o.replace("-", "_") for o in help_options() - flags_only}
        self.assertEqual(keys, want)
        # and the daemon knows each key (a bad value, never an unknown key)
        tmp = tempfile.mkdtemp(prefix="websockd-man-")
        try:
            for key in sorted(keys) + ["no_such_key"]:
                conf = os.path.join(tmp, "host.conf")
                with open(conf, "w") as f:
                    f.write("[server]\n%s = !bogus!\n" % key)
                p = subprocess.run([WEBSOCKD, "-t", "--config", conf,
                                    "--plugins", tmp], capture_output=True,
                                   text=True, timeout=OP_TIMEOUT)
                unknown = "unknown setting" in p.stderr
                self.assertEqual(unknown, key == "no_such_key",
                                 (key, p.stderr))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_every_route_key_is_documented_and_known(self):
        keys = man_keys(man_section(man_text("websockd.conf.5"),
                                    "ROUTE FILES"))
        self.assertEqual(keys, source_route_keys())
        tmp = tempfile.mkdtemp(prefix="websockd-man-")
        try:
            for key in sorted(keys - {"path", "plugin"}) + ["no_such_key"]:
                with open(os.path.join(tmp, "r.conf"), "w") as f:
                    f.write("path = /r\nplugin = none.so\n%s = !bogus!\n" % key)
                p = subprocess.run([WEBSOCKD, "-t", "--plugins", tmp],
                                   capture_output=True, text=True,
                                   timeout=OP_TIMEOUT)
                self.assertNotEqual(p.returncode, 0, key)
                self.assertEqual("unknown key" in p.stderr,
                                 key == "no_such_key", (key, p.stderr))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class NotifyDaemon(Daemon):
    """A Daemon started with NOTIFY_SOCKET in its environment."""

    def __init__(self, routes, notify_path, **kw):
        super().__init__(routes, **kw)
        self.notify_path = notify_path

    def start(self):
        os.environ["NOTIFY_SOCKET"] = self.notify_path
        try:
            return super().start()
        finally:
            del os.environ["NOTIFY_SOCKET"]


class ServiceTest(unittest.TestCase):
    def setUp(self):
        self.assertEqual(os.geteuid(), 0, "the service tests run as root")

    def test_notify_and_user(self):
        """READY once serving, RELOADING then READY around a reload (which
        works as the unprivileged user: the plugin copy is made), STOPPING on
        SIGTERM; the daemon runs as --user after binding."""
        tmp = tempfile.mkdtemp(prefix="websockd-notify-")
        os.chmod(tmp, 0o755)
        listener = NotifyListener(tmp)
        echo = os.path.join(os.environ["WSH_PLUGINS_D"], "echo.so")
        try:
            d = NotifyDaemon({"echo": {"path": "/echo", "plugin": echo}},
                             listener.path, args=["--user", "nobody"])
            os.chmod(d.tmp, 0o755)
            with d:
                listener.expect("READY=1")
                self.assertEqual(uid_of(d.proc.pid)[:2], [65534, 65534])
                self.assertEqual(asyncio.run(echo_once(d.url("/echo"), "a")),
                                 "a")
                with open(os.path.join(d.plugins_d, "echo.conf"), "a") as f:
                    f.write("idle_timeout_ms = 60000\n")
                d.signal(signal.SIGHUP)
                listener.expect("RELOADING=1")
                listener.expect("READY=1")
                d.wait_log(r"reload \(SIGHUP\) ok: changed /echo")
                self.assertEqual(asyncio.run(echo_once(d.url("/echo"), "b")),
                                 "b")
                d.signal(signal.SIGTERM)
                listener.expect("STOPPING=1")
                self.assertEqual(d.proc.wait(timeout=OP_TIMEOUT), 0)
        finally:
            listener.close()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_unknown_user_fails_the_check_and_the_start(self):
        tmp = tempfile.mkdtemp(prefix="websockd-user-")
        try:
            p = subprocess.run([WEBSOCKD, "-t", "--plugins", tmp, "--user",
                                "no-such-user-here"], capture_output=True,
                               text=True, timeout=OP_TIMEOUT)
            self.assertEqual(p.returncode, 1)
            self.assertIn("no-such-user-here", p.stderr)
            p = subprocess.run([WEBSOCKD, "--plugins", tmp, "--listen",
                                "127.0.0.1:0", "--user", "no-such-user-here"],
                               capture_output=True, text=True,
                               timeout=OP_TIMEOUT)
            self.assertEqual(p.returncode, 1)
            self.assertIn("no-such-user-here", p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def free_low_port():
    for port in range(990, 900, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port below 1024")


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=STEP_TIMEOUT, **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (
            " ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


class DebianPackagesTest(unittest.TestCase):
    def setUp(self):
        self.assertEqual(os.geteuid(), 0, "the package test runs as root")

    PACKAGE_FILES = {
        "websockd": ["./usr/sbin/websockd", "./usr/lib/websockd/echo.so",
                     "./usr/lib/websockd/chat.so",
                     "./usr/lib/websockd/clock.so",
                     "./etc/websockd/websockd.conf",
                     "./etc/websockd/plugins.d/echo.conf",
                     "./etc/websockd/plugins.d/chat.conf",
                     "./etc/websockd/plugins.d/clock.conf",
                     "./usr/lib/systemd/system/websockd.service",
                     "./usr/share/man/man8/websockd.8.gz",
                     "./usr/share/man/man5/websockd.conf.5.gz"],
        "websockd-dev": ["./usr/include/websock.h",
                         "./usr/include/websock_test.h",
                         "./usr/lib/pkgconfig/websock.pc",
                         "./usr/lib/pkgconfig/websock-test.pc",
                         "./usr/lib/pkgconfig/websock-check.pc",
                         "./usr/lib/websock/libwebsock-stubs.so",
                         "./usr/lib/cmake/WebSock/WebSockConfig.cmake",
                         "./usr/share/websock/template/myplugin.c",
                         "./usr/share/websock/template/test_myplugin.c"],
    }

    def test_build_install_serve_remove(self):
        tmp = tempfile.mkdtemp(prefix="websockd-deb-")
        os.chmod(tmp, 0o755)  # the websockd user reaches the notify socket
        build = os.path.join(tmp, "build")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASAN_", "UBSAN_", "LSAN_", "TSAN_"))}
        installed = False
        try:
            run(["cmake", "-S", SOURCE, "-B", build, "-DWSH_TESTS=OFF",
                 "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], env=env)
            run(["cmake", "--build", build, "-j2"], env=env)
            run(["cpack", "-G", "DEB"], cwd=build, env=env)
            debs = {}
            for name in ("websockd", "websockd-dev"):
                found = glob.glob(os.path.join(build, name + "_*.deb"))
                self.assertEqual(len(found), 1, (name, found))
                debs[name] = found[0]
                listing = run(["dpkg-deb", "-c", found[0]])
                paths = {line.split()[-1] for line in listing.splitlines()}
                for want in self.PACKAGE_FILES[name]:
                    self.assertIn(want, paths, name)
            # all the SDK's .pc files in one directory
            dev = run(["dpkg-deb", "-c", debs["websockd-dev"]])
            self.assertEqual({os.path.dirname(line.split()[-1])
                              for line in dev.splitlines()
                              if line.endswith(".pc")}, {"./usr/lib/pkgconfig"})
            depends = run(["dpkg-deb", "-f", debs["websockd"], "Depends"])
            for lib in ("libevent-core", "libhttp-parser", "libinih",
                        "libssl3", "libsystemd0", "adduser"):
                self.assertIn(lib, depends)
            conffiles = run(["dpkg-deb", "-I", debs["websockd"], "conffiles"])
            self.assertIn("/etc/websockd/websockd.conf", conffiles)

            run(["dpkg", "-i", debs["websockd"], debs["websockd-dev"]])
            installed = True
            # the installed link-time check, from pkg-config's own path
            self.assertIn("-Wl,-z,defs /usr/lib/pkgconfig/../../lib/websock/"
                          "libwebsock-stubs.so",
                          run(["pkg-config", "--libs", "websock-check"]))
            self.assertIn("websockd:", run(["getent", "passwd", "websockd"]))
            out = run(["/usr/sbin/websockd", "-t", "--config",
                       "/etc/websockd/websockd.conf"])
            self.assertIn("configuration OK (3 route(s)", out)
            run(["systemd-analyze", "verify",
                 "/lib/systemd/system/websockd.service"])
            # the man pages are there (as dpkg installed them) and render
            for page in ("man8/websockd.8.gz", "man5/websockd.conf.5.gz"):
                self.assertIn(("/usr/share/man/" + page).encode(),
                              subprocess.run(["dpkg", "-L", "websockd"],
                                             capture_output=True).stdout)
            self.assertIn("SIGHUP", run(["man", "-l", os.path.join(
                SOURCE, "man", "websockd.8")]))
            self.serve_installed(tmp)
        finally:
            if installed:
                subprocess.run(["dpkg", "--purge", "websockd", "websockd-dev"],
                               capture_output=True, timeout=STEP_TIMEOUT)
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertFalse(os.path.exists("/usr/sbin/websockd"))
        self.assertFalse(os.path.exists("/etc/websockd"))

    def serve_installed(self, tmp):
        """The installed daemon as the unit starts it (root, then the
        websockd user), on a port below 1024, serving the installed /echo."""
        port = free_low_port()
        listener = NotifyListener(tmp)
        env = dict(os.environ, NOTIFY_SOCKET=listener.path)
        p = subprocess.Popen(["/usr/sbin/websockd", "--config",
                              "/etc/websockd/websockd.conf", "--listen",
                              "127.0.0.1:%d" % port], env=env,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            listener.expect("READY=1")
            websockd_uid = int(run(["id", "-u", "websockd"]))
            self.assertEqual(uid_of(p.pid)[0], websockd_uid)
            url = "ws://127.0.0.1:%d/echo" % port
            self.assertEqual(asyncio.run(echo_once(url, "installed")),
                             "installed")
            p.send_signal(signal.SIGHUP)
            listener.expect("RELOADING=1")
            listener.expect("READY=1")
            p.send_signal(signal.SIGTERM)
            listener.expect("STOPPING=1")
            self.assertEqual(p.wait(timeout=OP_TIMEOUT), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()
            listener.close()


if __name__ == "__main__":
    unittest.main()
