"""The plugin SDK as a third party uses it: built and installed to a
prefix, then plugins built against that prefix only (CMake package and
pkg-config), and one of them served by the real websockd; the link-time
check (libwebsock-stubs: websock-check.pc, websock_link_check()) against
websock.h and what websockd exports.

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
                    ["cmake", "--build", build, "-j2"],
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
        # every .pc in one directory, beside the libraries they name
        for rel in ("include/websock.h", "include/websock_test.h",
                    "lib/pkgconfig/websock.pc", "lib/pkgconfig/websock-test.pc",
                    "lib/pkgconfig/websock-check.pc",
                    "lib/websock/libwebsock-stubs.so"):
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, rel)), rel)
        self.assertEqual(
            sorted(f for dp, _, fs in os.walk(self.prefix) for f in fs
                   if f.endswith(".pc")),
            sorted(os.listdir(os.path.join(self.prefix, "lib", "pkgconfig"))))
        found = [os.path.join(dp, f) for dp, _, fs in os.walk(self.prefix)
                 for f in fs if f == "WebSockConfig.cmake"]
        self.assertTrue(found, "no WebSockConfig.cmake under " + self.prefix)

    def test_b_echo_with_cmake_package(self):
        self.assert_only_handler_exported(self.echo_so())

    # Regression: the .pc must follow `cmake --install --prefix P` (its
    # prefix comes from ${pcfiledir}), not the configure-time prefix.
    def test_c_echo_by_hand_with_pkg_config(self):
        env = clean_env(PKG_CONFIG_PATH=self.pkg_config_path())
        cflags = sh(self, ["pkg-config", "--cflags", "websock"], env=env).split()
        includes = [os.path.normpath(f[2:]) for f in cflags if f.startswith("-I")]
        self.assertIn(os.path.normpath(os.path.join(self.prefix, "include")), includes)
        out = os.path.join(self.tmp, "echo2.so")
        sh(self, "cc -shared $(pkg-config --cflags --libs websock) %s -o %s" % (
            shlex.quote(os.path.join(SOURCE, "plugins", "echo", "echo.c")),
            shlex.quote(out)), env=env)
        self.assertTrue(os.path.isfile(out))
        self.assert_only_handler_exported(out)

    def pkg_config_path(self):
        return os.path.join(self.prefix, "lib", "pkgconfig")

    def test_d_template(self):
        so = self.cmake_plugin(os.path.join(SOURCE, "sdk", "template"),
                               "template-build", "myplugin.so")
        self.assert_only_handler_exported(so)
        # and the copy the SDK installs builds just the same
        installed = os.path.join(self.prefix, "share", "websock", "template")
        self.assertTrue(os.path.isdir(installed), installed)
        so = self.cmake_plugin(installed, "installed-template-build", "myplugin.so")
        self.assert_only_handler_exported(so)
        # its unit test (log capture included) and its link-time check ran
        build = os.path.join(self.tmp, "installed-template-build")
        out = sh(self, ["ctest", "--test-dir", build, "--output-on-failure"])
        self.assertIn("100% tests passed, 0 tests failed out of 1", out)
        self.assertTrue(os.path.isfile(os.path.join(
            build, "websock-link-check", "myplugin.so")))
        self.assertNotIn("libwebsock-stubs", needed(self, so))

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


    # The link-time check: libwebsock-stubs has exactly the functions of
    # websock.h, which are exactly the websock_* functions websockd (and the
    # test library) export; a misspelt call fails the checked link naming
    # the symbol; a plugin that passes records no NEEDED on the stubs and
    # runs in websockd.
    def test_f_header_stubs_and_websockd_agree(self):
        header = header_functions(os.path.join(SOURCE, "sdk", "include",
                                               "websock.h"))
        self.assertIn("websock_push", header)
        self.assertGreater(len(header), 30)
        stubs = exported_websock(self, os.path.join(
            self.prefix, "lib", "websock", "libwebsock-stubs.so"))
        self.assertEqual(stubs, header, "libwebsock-stubs vs websock.h")
        self.assertEqual(exported_websock(self, harness.WEBSOCKD), header,
                         "websockd's exports vs websock.h")
        self.assertEqual(exported_websock(self, os.path.join(
            self.prefix, "lib", "libwebsock_test.so")), header,
            "libwebsock_test's exports vs websock.h")
        # and the stubs have no SONAME a plugin could come to need
        self.assertNotIn("SONAME", sh(self, ["readelf", "-d", os.path.join(
            self.prefix, "lib", "websock", "libwebsock-stubs.so")]))

    def write_plugin(self, name, text, cmake=True):
        src = os.path.join(self.tmp, name + "-src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, name + ".c"), "w") as f:
            f.write(text)
        if cmake:
            with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
                f.write(CHECKED_CMAKE % (name, name))
        return src

    def test_g_misspelt_call_fails_the_checked_link(self):
        src = self.write_plugin("misspelt", MISSPELT_C)
        c_file = os.path.join(src, "misspelt.c")
        env = clean_env(PKG_CONFIG_PATH=self.pkg_config_path())
        # unchecked, it links (and would fail only when websockd loads it)
        sh(self, "cc $(pkg-config --cflags --libs websock) %s -o %s" % (
            shlex.quote(c_file), shlex.quote(os.path.join(src, "m.so"))),
            env=env)
        # pkg-config websock-check: the link fails and names the symbol
        p = subprocess.run(
            "cc $(pkg-config --cflags websock) %s "
            "$(pkg-config --libs websock-check) -o /dev/null"
            % shlex.quote(c_file), shell=True, env=env, capture_output=True,
            text=True, timeout=STEP_TIMEOUT)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("undefined reference to `websock_pushh'", p.stderr)
        # CMake LINK_CHECK: the build fails the same way
        build = os.path.join(self.tmp, "misspelt-build")
        sh(self, ["cmake", "-S", src, "-B", build,
                  "-DCMAKE_PREFIX_PATH=" + self.prefix])
        p = subprocess.run(["cmake", "--build", build], env=clean_env(),
                           capture_output=True, text=True,
                           timeout=STEP_TIMEOUT)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("undefined reference to `websock_pushh'",
                      p.stdout + p.stderr)

    def test_h_checked_plugin_needs_no_stubs_and_runs(self):
        echo_c = os.path.join(SOURCE, "plugins", "echo", "echo.c")
        with open(echo_c) as f:
            src = self.write_plugin("checked", f.read())
        env = clean_env(PKG_CONFIG_PATH=self.pkg_config_path())
        sh(self, "cc $(pkg-config --cflags websock) %s "
           "$(pkg-config --libs websock-check) -o /dev/null"
           % shlex.quote(os.path.join(src, "checked.c")), env=env)
        so = self.cmake_plugin(src, "checked-build", "checked.so")
        self.assertTrue(os.path.isfile(os.path.join(
            self.tmp, "checked-build", "websock-link-check", "checked.so")))
        self.assertEqual([n for n in needed(self, so) if "websock" in n], [])
        self.assert_only_handler_exported(so)
        with Daemon({"checked": {"path": "/checked", "plugin": so}}) as d:
            async def go():
                async with websockets.connect(d.url("/checked"),
                                              open_timeout=10,
                                              close_timeout=5) as ws:
                    await ws.send("checked at link time")
                    return await asyncio.wait_for(ws.recv(), 10)
            self.assertEqual(asyncio.run(asyncio.wait_for(go(), 30)),
                             "checked at link time")

def needed(testcase, so):
    """The DT_NEEDED entries of a shared object."""
    out = sh(testcase, ["readelf", "-d", so])
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", out)


def header_functions(path):
    """The functions a header declares, read from its text independently of
    the build's generator: comments and preprocessor lines removed, each
    "websock_name(" left is a declaration."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"\\\n", " ", text)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    return sorted(set(re.findall(r"\b(websock_\w+)\s*\(", text)))


def exported_websock(testcase, path):
    return sorted(n for n in defined_dynamic_symbols(testcase, path)
                  if n.startswith("websock_") and not n.startswith("websock_test"))


# A plugin with one misspelt call: websock_pushh. Declared by hand, as a
# typo in a declaration (or a call to a function of a newer header) would
# be; it compiles, and only a -z defs link can catch it before the host
# refuses it at load.
MISSPELT_C = r"""
#include <websock.h>
int websock_pushh(websock_conn *conn, websock_opcode op, const void *d,
                  size_t n);
static int in(websock_conn *c, void **s, websock_opcode op, const uint8_t *d,
              size_t n) {
  (void)s;
  return websock_pushh(c, op, d, n) == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
}
WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "misspelt", .version = "1", .handle_in = in};
"""

CHECKED_CMAKE = """cmake_minimum_required(VERSION 3.20)
project(checked LANGUAGES C)
find_package(WebSock 1 REQUIRED)
websock_add_plugin(%s LINK_CHECK %s.c)
"""


if __name__ == "__main__":
    unittest.main()
