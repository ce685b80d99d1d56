"""The README's first screen, as a new user follows it: its two commands in
their order in one clone, and every command it shows after the run command
alone (python3-websockets and curl installed by the run set-up, working
against websockd serving the default plugins.d as scripts/run.sh serves it).
"""

import os
import pty
import re
import select
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import PLUGINS_D, Daemon

SOURCE_DIR = os.environ.get("WSH_SOURCE_DIR", "../..")
OP_TIMEOUT = 15.0


def first_screen():
    """The sh code blocks above the README's first section heading."""
    with open(os.path.join(SOURCE_DIR, "README.md")) as f:
        text = f.read()
    head = text.split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", head, re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                commands.append(line)
    return commands


def configure_lines(script):
    """The `cmake -S . -B build ...` configure lines of a set-up script."""
    with open(os.path.join(SOURCE_DIR, script)) as f:
        return [line.strip() for line in f
                if re.match(r"\s*cmake -S \. -B build(\s|$)", line)]


def run_setup_packages(args=()):
    out = subprocess.run([os.path.join(SOURCE_DIR, "scripts/setup.sh"),
                          "--list"] + list(args), check=True,
                         capture_output=True, text=True).stdout
    return set(out.split())


def with_dependencies(pkgs):
    """The packages and those they directly depend on (what installing them
    brings for certain)."""
    out = set(pkgs)
    for p in pkgs:
        deps = subprocess.run(["dpkg-query", "-W", "-f=${Pre-Depends},${Depends}", p],
                              capture_output=True, text=True).stdout
        for alt in deps.split(","):
            name = alt.split("|")[0].split("(")[0].split(":")[0].strip()
            if name:
                out.add(name)
    return out


def package_of(path):
    """The Debian package that owns a file (by the path as given, else by
    the path its symbolic links resolve to)."""
    for p in (path, os.path.realpath(path)):
        out = subprocess.run(["dpkg", "-S", p], capture_output=True,
                             text=True).stdout
        if out:
            return out.split(":", 1)[0]
    return None


class DefaultPluginsDaemon(Daemon):
    """websockd serving the staged default plugins.d, as scripts/run.sh does."""

    def command(self):
        return super().command()[:3] + ["--plugins", PLUGINS_D]


class ReadmeFirstScreenTest(unittest.TestCase):
    def test_first_screen_names_the_two_scripts_in_order(self):
        cmds = first_screen()
        self.assertGreaterEqual(len(cmds), 2, cmds)
        self.assertEqual(cmds[:2], ["./scripts/run.sh", "./scripts/test.sh"])

    def test_test_command_builds_tests_after_the_run_command(self):
        """run.sh then test.sh in one clone: the test command's build must
        have the tests (and their plugins), whatever run.sh configured."""
        run_lines = configure_lines("scripts/run.sh")
        test_lines = configure_lines("scripts/test.sh")
        self.assertTrue(run_lines and test_lines)
        tmp = tempfile.mkdtemp(prefix="websockd-readme-")
        try:
            for line in run_lines + test_lines:
                argv = shlex.split(line.split(">", 1)[0])
                argv[argv.index("-S") + 1] = SOURCE_DIR
                argv[argv.index("-B") + 1] = tmp
                subprocess.run(argv, check=True, capture_output=True,
                               timeout=120)
            targets = subprocess.run(
                ["cmake", "--build", tmp, "--target", "help"], check=True,
                capture_output=True, text=True, timeout=60).stdout
            for target in ("faulty", "recorder", "test_frame"):
                self.assertRegex(targets, r"\.\.\. %s\b" % target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_try_it_commands_come_with_the_run_command(self):
        """Every program the first screen runs is installed by the run
        command's set-up (scripts/setup.sh without --test)."""
        base = with_dependencies(run_setup_packages())
        for cmd in first_screen()[2:]:
            prog = shlex.split(cmd)[0]
            path = shutil.which(prog)
            self.assertIsNotNone(path, cmd)
            self.assertIn(package_of(path), base, cmd)
            if "-m" in cmd:  # python3 -m MODULE: the module's package too
                module = shlex.split(cmd)[shlex.split(cmd).index("-m") + 1]
                where = subprocess.run(
                    [path, "-c", "import %s; print(%s.__file__)" %
                     (module, module)], capture_output=True, text=True,
                    check=True).stdout.strip()
                self.assertIn(package_of(where), base, cmd)

    def test_try_it_commands_work(self):
        """Each command of the first screen, run against websockd serving the
        default plugins.d (on a free port instead of 8080)."""
        cmds = first_screen()[2:]
        self.assertTrue(cmds)
        with DefaultPluginsDaemon({}) as d:
            for cmd in cmds:
                argv = [a.replace("127.0.0.1:8080", "127.0.0.1:%d" % d.port)
                        for a in shlex.split(cmd)]
                if "websockets" in argv:
                    self.check_interactive_echo(argv)
                elif os.path.basename(argv[0]) == "curl":
                    out = subprocess.run(argv, capture_output=True, text=True,
                                         timeout=OP_TIMEOUT).stdout
                    self.assertRegex(out, r"^HTTP/1\.1 200 ")
                    self.assertTrue(out.rstrip().endswith("ok"), out)
                else:
                    self.fail("no check for README command %r" % cmd)

    def check_interactive_echo(self, argv):
        """The websockets client in a terminal: type a line, see it back."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(argv[0], argv)
        out = b""

        def read_until(token):
            nonlocal out
            deadline = time.time() + OP_TIMEOUT
            while token not in out and time.time() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
            return token in out

        try:
            self.assertTrue(read_until(b"Connected to"), out)
            os.write(fd, b"hello from the README\n")
            self.assertTrue(read_until(b"< hello from the README"), out)
            os.write(fd, b"\x04")  # end of input: the client closes
            deadline = time.time() + OP_TIMEOUT
            while time.time() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if select.select([fd], [], [], 0.1)[0]:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        pass
            else:
                self.fail("the websockets client did not exit")
            self.assertEqual(status, 0, out)
        finally:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            os.close(fd)


if __name__ == "__main__":
    unittest.main()
