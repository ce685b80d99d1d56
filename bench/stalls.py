#!/usr/bin/env python3
"""stalls.py - where a depth-1 latency tail comes from: groups the slow
echoes that `wsload echo --slow US` lists ("slow DUE_MS LATENCY_US CONN",
on its stderr) into stalls, runs of slow echoes due within --gap ms of each
other, at least --min of them: a stretch in which every message waited,
whichever connection it was on, rather than a few unlucky ones.

  bench/stalls.py [--gap MS] [--min N] [--msgs N] FILE...
  bench/stalls.py --spin SECS


Prints one key=value line per file: slow (echoes listed), stalls,
in_stalls (slow echoes inside them), longest_ms (the longest stall, from its
first echo's due time to its last's), worst_us (the slowest echo) and, with
--msgs (the run's measured echoes), p99_share: in_stalls ÷ the 1 % of the
echoes that p99 leaves out (over 1: the stalls alone set p99).

--spin reads the clock in a loop for SECS on the core it runs on (taskset)
and counts the gaps over 0.5 ms between two reads: time the thread did not
run although it never waited, which on an idle machine is the machine's own
(a virtual CPU descheduled, the host's interrupts). It prints gaps, lost_ms
(their sum) and longest_ms.
"""

import argparse
import gc
import sys
import time


def read_slow(path):
    """[(due_ms, latency_us)] of a wsload --slow listing, by due time."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "slow":
                out.append((float(parts[1]), float(parts[2])))
    out.sort()
    return out


def stalls(slow, gap_ms, min_n):
    """The runs of at least min_n slow echoes, each due within gap_ms of the
    one before: [(first_due, last_due, count)]."""
    runs = []
    for due, _ in slow:
        if runs and due - runs[-1][1] <= gap_ms:
            runs[-1][1] = due
            runs[-1][2] += 1
        else:
            runs.append([due, due, 1])
    return [tuple(r) for r in runs if r[2] >= min_n]


def summary(slow, gap_ms, min_n, msgs=None):
    found = stalls(slow, gap_ms, min_n)
    s = {"slow": len(slow), "stalls": len(found),
         "in_stalls": sum(n for _, _, n in found),
         "longest_ms": round(max([b - a for a, b, _ in found] or [0.0]), 2),
         "worst_us": round(max([lat for _, lat in slow] or [0.0]), 1)}
    if msgs:
        s["p99_share"] = round(s["in_stalls"] / (msgs / 100.0), 2)
    return s


def spin(secs, gap_ns=500_000):
    """Gaps over gap_ns between two clock reads in secs of reading."""
    gc.disable()
    now = time.monotonic_ns
    prev = now()
    end = prev + int(secs * 1e9)
    gaps, lost, longest = 0, 0, 0
    while prev < end:
        t = now()
        if t - prev > gap_ns:
            gaps += 1
            lost += t - prev
            longest = max(longest, t - prev)
        prev = t
    return {"gaps": gaps, "lost_ms": round(lost / 1e6, 2),
            "longest_ms": round(longest / 1e6, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gap", type=float, default=2.0,
                    help="ms between two slow echoes of one stall (2)")
    ap.add_argument("--min", type=int, default=20,
                    help="slow echoes that make a stall (20)")
    ap.add_argument("--msgs", type=int, help="the run's measured echoes")
    ap.add_argument("--spin", type=float, metavar="SECS",
                    help="count this core's own gaps instead")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    if a.spin:
        print(" ".join("%s=%s" % kv for kv in spin(a.spin).items()))
        return 0
    if not a.files:
        ap.error("no listing given")
    for path in a.files:
        s = summary(read_slow(path), a.gap, a.min, a.msgs)
        print(" ".join("%s=%s" % kv for kv in s.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
