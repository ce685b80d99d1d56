#!/usr/bin/python3
"""bench_stalls: bench/stalls.py on made-up listings (the stalls and their
share of the p99 known in advance), then bench/stalls.sh for one short
round against the build's websockd and peers (WSH_BUILD_DIR): every run
line is there, with wsload's figures and a stall summary. No speed is
asserted."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import stalls  # noqa: E402


def listing(dues, latency=500.0):
    return "".join("slow %.3f %.1f %d\n" % (d, latency, i % 100)
                   for i, d in enumerate(dues))


class StallsTest(unittest.TestCase):
    def summary_of(self, text, msgs=None):
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write(text)
            f.flush()
            return stalls.summary(stalls.read_slow(f.name), 2.0, 20, msgs)

    def test_stall_and_scattered(self):
        # 30 slow echoes 0.05 ms apart (a 1.45 ms stall), then 10 scattered
        # ones 50 ms apart, and wsload's other stderr lines ignored
        dues = [1000 + 0.05 * i for i in range(30)] + \
               [2000 + 50 * i for i in range(10)]
        text = "wsload: warming up\n" + listing(dues) + "slow x y\n"
        s = self.summary_of(text, msgs=100000)
        self.assertEqual(s["slow"], 40)
        self.assertEqual(s["stalls"], 1)
        self.assertEqual(s["in_stalls"], 30)
        self.assertAlmostEqual(s["longest_ms"], 1.45, places=2)
        self.assertEqual(s["worst_us"], 500.0)
        self.assertEqual(s["p99_share"], 0.03)  # 30 of 1,000

    def test_too_few_or_too_far_is_no_stall(self):
        # 19 close together; 40 each 2.5 ms after the one before
        dues = [0.1 * i for i in range(19)] + [100 + 2.5 * i for i in range(40)]
        s = self.summary_of(listing(dues))
        self.assertEqual((s["slow"], s["stalls"], s["in_stalls"]), (59, 0, 0))
        self.assertNotIn("p99_share", s)

    def test_spin_reads_for_its_time(self):
        t0 = time.monotonic()
        s = stalls.spin(0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertEqual(sorted(s), ["gaps", "longest_ms", "lost_ms"])
        # both rounded alike: the sum is never below its largest gap
        self.assertGreaterEqual(s["lost_ms"], s["longest_ms"])
        self.assertEqual(s["gaps"] == 0, s["lost_ms"] == 0)

    def test_out_of_order_lines(self):
        # wsload lists echoes as they come back, not as they were due
        dues = [5 + 0.1 * i for i in range(25)]
        s = self.summary_of(listing(list(reversed(dues))))
        self.assertEqual((s["stalls"], s["in_stalls"]), (1, 25))


@unittest.skipUnless(os.environ.get("WSH_BUILD_DIR"),
                     "WSH_BUILD_DIR names the build to run stalls.sh with")
class StallsScriptTest(unittest.TestCase):
    def test_one_short_round(self):
        # its own process group: on a timeout, the servers it started go
        # with it
        p = subprocess.Popen([os.path.join(HERE, "stalls.sh"), "--build-dir",
                              os.environ["WSH_BUILD_DIR"], "--rounds", "1",
                              "--secs", "1", "--slow", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            out, err = p.communicate()
            self.fail("stalls.sh did not end in 120 s:\n" + out + err)
        self.assertEqual(p.returncode, 0, out + err)
        runs = [l.split() for l in out.splitlines()
                if re.match(r"1 (websockd|lws|raw) ", l)]
        self.assertEqual([r[1] for r in runs], ["websockd", "lws", "raw"],
                         out)
        for r in runs:
            # p50, p99, msgs (20,000 a second offered), then the summary:
            # at --slow 1 every echo is slow
            p50, p99, msgs, slow = float(r[2]), float(r[3]), int(r[4]), int(r[5])
            self.assertGreater(p50, 0)
            self.assertGreaterEqual(p99, p50)
            self.assertGreater(msgs, 10000)
            self.assertEqual(slow, msgs, r)
            self.assertEqual(len(r), 11, r)
        self.assertRegex(out, r"# the machine alone, 1 s: core 0 gaps=\d+ "
                         r"lost_ms=[\d.]+ longest_ms=[\d.]+; core 1 gaps=")
        medians = [l for l in out.splitlines() if l.startswith("median ")]
        self.assertEqual(len(medians), 3, out)


if __name__ == "__main__":
    unittest.main()
