"""The chat plugin's browser client (plugins/chat/chat.html) reconnects.

In a real browser: Debian's Chromium, headless, driven by playwright-core
(browser_chat.mjs next to this file). Two pages in one room exchange a
line; websockd is stopped (SIGTERM: the pages see 1001), left down for a
while (their attempts fail: 1006, with growing waits), and started again
on the same port; the pages come back by themselves and rejoin the room: a
python3-websockets member of it on the new host gets their new lines. A page asking for a room the plugin refuses (1008) does not
retry. Run by ctest as integ_chat_client.
"""

import asyncio
import json
import os
import subprocess
import time
import unittest

import harness
from test_console import browser_command as console_browser_command

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "browser_chat.mjs")
CHAT_HTML = os.path.join(os.environ.get("WSH_SOURCE_DIR",
                                        os.path.join(HERE, "..", "..")),
                         "plugins", "chat", "chat.html")
CHAT_SO = os.path.join(harness.PLUGINS_D, "chat.so")
ROUTES = {"chat": {"path": "/chat", "plugin": CHAT_SO}}
DOWN_S = 1.5  # how long websockd stays down

run, connect, recv, ask = harness.client_helpers(test_timeout=60)


class FixedPortDaemon(harness.Daemon):
    """A Daemon listening on a port chosen by the test, so that a second
    one can take over the first one's address."""

    def __init__(self, port, *a, **kw):
        super().__init__(*a, **kw)
        self.fixed = port

    def command(self):
        return [a.replace("127.0.0.1:0", "127.0.0.1:%d" % self.fixed)
                for a in super().command()]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChatClientTest(unittest.TestCase):
    def test_reconnects_across_restart(self):
        cmd = console_browser_command()
        cmd[-1] = SCRIPT
        port = free_port()
        first = FixedPortDaemon(port, ROUTES, workers=1).start()
        second = None
        node = subprocess.Popen(
            cmd + [CHAT_HTML, str(port)], cwd=HERE, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
        try:
            line = node.stdout.readline()
            self.assertEqual(line.strip(), '{"step":"up"}',
                             "browser_chat.mjs: %s%s" % (line, node.stderr.read()
                                                         if not line else ""))
            self.assertEqual(first.stop(), 0)  # closes with 1001
            first.check_clean()
            time.sleep(DOWN_S)  # the pages try, fail and back off
            second = FixedPortDaemon(port, ROUTES, workers=1).start()

            async def watch():
                # a member on the new host sees both pages rejoin the room
                ws = await connect(second.url("/chat?room=rr&name=watcher"))
                node.stdin.write("restarted\n")
                node.stdin.flush()
                texts = []
                while len(texts) < 2:
                    ev = json.loads(await recv(ws, 30))
                    if ev["type"] == "msg":
                        texts.append((ev["user"], ev["text"]))
                await ws.close()
                return texts

            texts = run(watch())
            out, err = node.communicate(timeout=60)
        finally:
            if node.poll() is None:
                node.kill()
                node.communicate(timeout=10)
            for d in (first, second):
                if d is not None:
                    d.__exit__(None, None, None)
        self.assertEqual(node.returncode, 0,
                         "browser_chat.mjs failed:\n%s\n%s" % (out, err))
        seen = json.loads(out.strip().splitlines()[-1])
        print("\n" + json.dumps(seen))
        self.assertEqual(texts, [("bob", "after the restart"),
                                 ("alice", "and back")])
        for who in ("alice", "bob"):
            s = seen[who]
            self.assertEqual(s["state"], "open", who)
            self.assertEqual(s["opens"], 2, who)
            # going away, then refused attempts while the host was down
            self.assertEqual(s["closes"][0], 1001, who)
            self.assertTrue(all(c == 1006 for c in s["closes"][1:]), who)
            self.assertGreaterEqual(len(s["closes"]), 2, who)
            self.assertEqual(len(s["waits"]), len(s["closes"]), who)
            # capped exponential backoff with jitter: the k-th wait lies in
            # [d/2, d] for d = 250 ms * 2^k (at most 10 s)
            for k, w in enumerate(s["waits"]):
                d = min(250 * 2 ** k, 10000)
                self.assertTrue(d / 2 - 1 <= w <= d, (who, k, w))
        # a refused room: closed with the plugin's 1008, never retried
        self.assertEqual(seen["bad"]["state"], "closed")
        self.assertEqual(seen["bad"]["closes"], [1008])
        self.assertEqual(seen["bad"]["waits"], [])


if __name__ == "__main__":
    unittest.main()
