"""Node.js's own WebSocket client against the real websockd.

Starts websockd with the harness and runs node_client.mjs (next to this file)
against it. Node's WebSocket is global from Node 22, behind
--experimental-websocket on Node 20; older Node only has the npm "ws"
package (in tests/integration/node_modules), used only if neither works.
Run by ctest as integ_node.
"""

import os
import re
import shutil
import subprocess
import unittest

import harness
from harness import ECHO_SO, RECORDER_SO, read_records

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "node_client.mjs")
NODE_TIMEOUT = 120  # the script bounds itself at 90 s

CHECKS = ["text", "binary", "empty", "1 MiB", "500 in order", "subprotocol",
          "client close 4001", "server close 4002"]

HAS_WEBSOCKET = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"


# harness.Daemon joins its log readers and closes its pipes itself.
Daemon = harness.Daemon

def node_command():
    """[node, flags...] that gives a WebSocket client, or raises with why."""
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        raise AssertionError("node is not installed (scripts/setup.sh --test "
                             "installs Debian's nodejs)")
    for flags in ([], ["--experimental-websocket"]):
        p = subprocess.run([node] + flags + ["-e", HAS_WEBSOCKET],
                           capture_output=True, text=True, timeout=30)
        if p.returncode == 0:
            return [node] + flags
    if os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        return [node]
    version = subprocess.run([node, "--version"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    raise AssertionError("node %s has no WebSocket client (neither global nor "
                         "with --experimental-websocket) and "
                         "tests/integration/node_modules/ws is not installed"
                         % version)


class NodeClientTest(unittest.TestCase):
    def test_node_client(self):
        cmd = node_command()
        d = Daemon({
            "echo": {"path": "/echo", "plugin": ECHO_SO},
            "sub": {"path": "/sub", "plugin": ECHO_SO, "subprotocols": "a, b"},
            "rec": {"path": "/rec", "plugin": RECORDER_SO,
                    "options": {"record": "@"}},
        })
        record = d.path("rec.rec")
        d.routes["rec"]["options"]["record"] = record
        with d:
            p = subprocess.run(cmd + [CLIENT, "ws://127.0.0.1:%d" % d.port, record],
                               cwd=HERE, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True,
                               timeout=NODE_TIMEOUT)
            read_records(record, until=lambda l: any(
                re.match(r"terminate \d+ 0 4002 ", x) for x in l))
            status = d.stop()  # SIGTERM: unload is recorded before exit
            self.assertEqual(status, 0, d.log())
            lines = read_records(record)  # before the daemon's tmp is removed
        out = p.stdout
        report = "node exited %d\nstdout:\n%s\nstderr:\n%s\nrecord:\n%s" % (
            p.returncode, out, p.stderr, "\n".join(lines))
        self.assertEqual(p.returncode, 0, report)
        for name in CHECKS:
            self.assertRegex(out, r"(?m)^ok %s(:|$)" % re.escape(name), report)
        self.assertNotIn("FAIL", out, report)
        self.assertIn("done: %d checks, 0 failed" % len(CHECKS), out, report)
        # what the recorder saw of the two closes
        self.assertTrue([l for l in lines
                         if re.fullmatch(r"terminate \d+ 1 4001 node says bye", l)],
                        report)
        self.assertTrue([l for l in lines
                         if re.fullmatch(r"terminate \d+ 0 4002 ", l)], report)
        self.assertEqual(lines.count("load"), 1, report)
        self.assertEqual(lines[-1], "unload", report)


if __name__ == "__main__":
    unittest.main()
