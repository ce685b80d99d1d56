"""The plugin SDK as a third party uses it: installed to a prefix, then
plugins built against that prefix only (CMake package and pkg-config), and
one of them served by the real websockd.

Run by ctest as integ_sdk (WSH_SOURCE_DIR names the source tree).
"""

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import websockets

import harness

SOURCE = os.environ.get("WSH_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
STEP_TIMEOUT = 120


# harness.Daemon joins its log readers and closes its pipes itself.
Daemon = harness.Daemon

def clean_env(**extra):
    """The environment for the tool runs: no sanitizer settings, no
    inherited compiler or pkg-config paths that could hide a missing one."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASAN_", "UBSAN_", "LSAN_", "TSAN_"))
           and k not in ("CFLAGS", "LDFLAGS", "CPPFLAGS", "C_INCLUDE_PATH",
                         "CPATH", "CMAKE_PREFIX_PATH", "PKG_CONFIG_PATH",
                         "PKG_CONFIG_LIBDIR", "LD_PRELOAD")}
    env.update(extra)
    return env


def sh(testcase, cmd, env=None, **kw):
    """Runs a command (list, or a string for the shell); fails the test with
    its output if it exits non-zero. Returns stdout."""
    p = subprocess.run(cmd, shell=isinstance(cmd, str), env=env or clean_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=STEP_TIMEOUT, **kw)
    if p.returncode != 0:
        testcase.fail("%s\nexited %d\nstdout:\n%s\nstderr:\n%s" % (
            cmd if isinstance(cmd, str) else shlex.join(cmd), p.returncode,
            p.stdout, p.stderr))
    return p.stdout


def defined_dynamic_symbols(testcase, so):
    out = sh(testcase, ["nm", "-D", "--defined-only", so])
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


class SdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="websock-sdk-test-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        build = os.path.join(cls.tmp, "sdk-build")
        for cmd in (["cmake", "-S", os.path.join(SOURCE, "sdk"), "-B", build],
                    ["cmake", "--install", build, "--prefix", cls.prefix]):
            p = subprocess.run(cmd, env=clean_env(), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True,
                               timeout=STEP_TIMEOUT)
            if p.returncode != 0:
                shutil.rmtree(cls.tmp, ignore_errors=True)
                raise AssertionError("%s exited %d:\n%s%s" % (
                    shlex.join(cmd), p.returncode, p.stdout, p.stderr))
        cls._echo_so = None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cmake_plugin(self, source, name, so_name):
        """Configures and builds a plugin project with only the prefix;
        returns the path of the .so."""
        build = os.path.join(self.tmp, name)
        sh(self, ["cmake", "-S", source, "-B", build,
                  "-DCMAKE_PREFIX_PATH=" + self.prefix])
        sh(self, ["cmake", "--build", build])
        so = os.path.join(build, so_name)
        self.assertTrue(os.path.isfile(so), "%s not built" % so)
        return so

    def echo_so(self):
        if SdkTest._echo_so is None:
            SdkTest._echo_so = self.cmake_plugin(
                os.path.join(SOURCE, "plugins", "echo"), "echo-build", "echo.so")
        return SdkTest._echo_so

    def assert_only_handler_exported(self, so):
        self.assertEqual(defined_dynamic_symbols(self, so), ["websock_handler_v1"],
                         "%s must export websock_handler_v1 and nothing else" % so)

    def test_a_installed_files(self):
        for rel in ("include/websock.h", "share/pkgconfig/websock.pc"):
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, rel)), rel)
        found = [os.path.join(dp, f) for dp, _, fs in os.walk(self.prefix)
                 for f in fs if f == "WebSockConfig.cmake"]
        self.assertTrue(found, "no WebSockConfig.cmake under " + self.prefix)

    def test_b_echo_with_cmake_package(self):
        self.assert_only_handler_exported(self.echo_so())

    # Regression: the .pc must follow `cmake --install --prefix P` (its
    # prefix comes from ${pcfiledir}), not the configure-time prefix.
    def test_c_echo_by_hand_with_pkg_config(self):
        env = clean_env(PKG_CONFIG_PATH=os.path.join(self.prefix, "share", "pkgconfig"))
        cflags = sh(self, ["pkg-config", "--cflags", "websock"], env=env).split()
        includes = [os.path.normpath(f[2:]) for f in cflags if f.startswith("-I")]
        self.assertIn(os.path.normpath(os.path.join(self.prefix, "include")), includes)
        out = os.path.join(self.tmp, "echo2.so")
        sh(self, "cc -shared $(pkg-config --cflags --libs websock) %s -o %s" % (
            shlex.quote(os.path.join(SOURCE, "plugins", "echo", "echo.c")),
            shlex.quote(out)), env=env)
        self.assertTrue(os.path.isfile(out))
        self.assert_only_handler_exported(out)

    def test_d_template(self):
        so = self.cmake_plugin(os.path.join(SOURCE, "sdk", "template"),
                               "template-build", "myplugin.so")
        self.assert_only_handler_exported(so)
        # and the copy the SDK installs builds just the same
        installed = os.path.join(self.prefix, "share", "websock", "template")
        self.assertTrue(os.path.isdir(installed), installed)
        so = self.cmake_plugin(installed, "installed-template-build", "myplugin.so")
        self.assert_only_handler_exported(so)

    def test_e_websockd_serves_the_built_echo(self):
        so = self.echo_so()
        with Daemon({"echo": {"path": "/echo", "plugin": so}}) as d:
            self.assertTrue(d.find_log(r"route /echo: echo 1\.0\.0 from " + re.escape(so)),
                            d.log())

            async def go():
                async with websockets.connect(d.url("/echo"), open_timeout=10,
                                              close_timeout=5) as ws:
                    await ws.send("built out of tree")
                    text = await asyncio.wait_for(ws.recv(), 10)
                    await ws.send(b"\x00\xff")
                    return text, await asyncio.wait_for(ws.recv(), 10)
            got = asyncio.run(asyncio.wait_for(go(), 30))
            self.assertEqual(got, ("built out of tree", b"\x00\xff"))


if __name__ == "__main__":
    unittest.main()
