#!/usr/bin/python3
"""publish.py - turns a benchmark's results into what the README shows.

    publish.py RESULTS_DIR [--readme README.md] [--charts DIR]
               [--link-prefix PREFIX]

RESULTS_DIR is bench/run.sh's bench-results/ (raw.txt: one line of key=value
pairs per run; meta.sh: how it was run). It

- draws one SVG chart per scenario with gnuplot (Debian's gnuplot-nox): the
  scenario's headline figures, one panel each, the servers' medians side by
  side as bars, each labelled with its value, into DIR/<scenario>.svg
  (default RESULTS_DIR/charts);
- with --readme, replaces what lies between the README's markers

      <!-- bench-table:begin ... -->
      <!-- bench-table:end -->

  with the charts (linked as PREFIX<scenario>.svg, PREFIX defaulting to
  DIR relative to the README) above the table that `bench/run.sh --report`
  prints. Everything outside the markers is left as it is; the block is
  regenerated whole, never edited by hand.

bench/run.sh calls it after every full run (README.md, docs/bench/); the
test bench_publish runs it on the saved results in bench/testdata/.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = "<!-- bench-table:begin"
END = "<!-- bench-table:end -->"

LABELS = {"websockd-1w": "websockd ×1", "websockd-2w": "websockd ×2",
          "lws": "libwebsockets", "raw": "raw peer", "base": "websockd before"}
COLORS = {"websockd-1w": "#1f77b4", "websockd-2w": "#6baed6",
          "lws": "#ff7f0e", "raw": "#7f7f7f", "base": "#9467bd"}

# scenario: (title, [(key, panel title)]): the charted figures, in order.
CHARTS = {
    "echo64": ("echo 64 B text, 100 connections, depth 1",
               [("msgs_per_s", "messages/s (higher is better)"),
                ("p99_us", "p99 latency µs (lower is better)"),
                ("cpu_s_per_m", "server CPU s per M messages (lower is better)")]),
    "echo64i": ("echo 64 B text, 100 connections, depth 1, the servers in turns of 0.5 s",
                [("msgs_per_s", "messages/s (higher is better)"),
                 ("p99_us", "p99 latency µs (lower is better)"),
                 ("cpu_s_per_m", "server CPU s per M messages (lower is better)")]),
    "echo64r": ("echo 64 B text, 100 connections, a fixed rate (open loop)",
                [("p50_us", "p50 latency µs (lower is better)"),
                 ("p99_us", "p99 latency µs (lower is better)"),
                 ("cpu_s_per_m", "server CPU s per M messages (lower is better)")]),
    "echo64d16": ("echo 64 B text, 100 connections, depth 16",
                  [("msgs_per_s", "messages/s (higher is better)"),
                   ("p99_us", "p99 latency µs (lower is better)"),
                   ("cpu_s_per_m", "server CPU s per M messages (lower is better)")]),
    "echo16k": ("echo 16 KiB binary, 100 connections, depth 1",
                [("mb_per_s", "MB/s (higher is better)"),
                 ("p99_us", "p99 latency µs (lower is better)"),
                 ("cpu_s_per_m", "server CPU s per M messages (lower is better)")]),
    "echo1m": ("echo 1 MiB binary, 8 connections",
               [("mb_per_s", "MB/s (higher is better)"),
                ("cpu_ms_per_mb", "server CPU ms per MB (lower is better)")]),
    "echo16m": ("echo 16 MiB binary, 2 connections",
                [("mb_per_s", "MB/s (higher is better)"),
                 ("cpu_ms_per_mb", "server CPU ms per MB (lower is better)")]),
    "connect": ("connect, upgrade, close; 50 at a time",
                [("handshakes_per_s", "handshakes/s (higher is better)"),
                 ("p99_us", "p99 µs to the 101 (lower is better)"),
                 ("cpu_us_per_hs", "server CPU µs per handshake (lower is better)")]),
    "connect_half": ("connect, upgrade, close; the server held to half a core",
                     [("handshakes_per_s", "handshakes/s (higher is better)"),
                      ("cpu_us_per_hs", "server CPU µs per handshake (lower is better)")]),
    "idle": ("idle connections",
             [("rss_kb_per_conn", "server RSS KiB per connection (lower is better)")]),
    "fanout": ("broadcast to one room",
               [("first_p50_us", "µs until the first has it, p50 (lower is better)"),
                ("all_p50_us", "µs until all have it, p50 (lower is better)")]),
    "tls_connect": ("TLS connect, upgrade, close",
                    [("handshakes_per_s", "handshakes/s (higher is better)"),
                     ("cpu_us_per_hs", "server CPU µs per handshake (lower is better)")]),
    "tls_echo64": ("TLS echo 64 B, depth 1",
                   [("msgs_per_s", "messages/s (higher is better)"),
                    ("cpu_s_per_m", "server CPU s per M messages (lower is better)")]),
    "z256": ("permessage-deflate echo, JSON 256 B",
             [("cpu_s_per_m", "server CPU µs per message (lower is better)")]),
}


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def read_results(path):
    """{(scenario, server, key): [values]} from raw.txt, as run.sh's table
    reads it (failed runs left out; the same derived keys)."""
    vals = {}
    with open(path) as f:
        for line in f:
            kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
            if kv.get("failed") == "1" or "scenario" not in kv:
                continue
            num = {}
            for k, v in kv.items():
                try:
                    num[k] = float(v)
                except ValueError:
                    pass
            total = num.get("total_msgs", 0)
            if total > 0 and "server_cpu_s" in num:
                num["cpu_s_per_m"] = num["server_cpu_s"] / total * 1e6
                if num.get("size", 0) > 0:
                    num["cpu_ms_per_mb"] = (num["server_cpu_s"] * 1e3 /
                                            (total * num["size"] / 1e6))
            if kv.get("mode") == "connect" and num.get("done", 0) > 0 \
                    and "server_cpu_s" in num:
                num["cpu_us_per_hs"] = num["server_cpu_s"] / num["done"] * 1e6
            for k, v in num.items():
                vals.setdefault((kv["scenario"], kv["server"], k), []).append(v)
    return vals


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v.strip("'")
    return meta


def fmt(v):
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def gp_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def draw(scenario, servers, vals, out_svg, tmp_prefix):
    """One SVG for one scenario; returns False if it has nothing to draw."""
    title, panels = CHARTS[scenario]
    panels = [(k, t) for k, t in panels
              if any((scenario, s, k) in vals for s in servers)]
    if not panels:
        return False
    width = 330 * len(panels) + 20
    script = ["set terminal svg size %d,300 font 'sans,11' background '#ffffff'"
              % width,
              "set output " + gp_quote(out_svg),
              "set encoding utf8",
              "set multiplot layout 1,%d title %s" % (len(panels), gp_quote(title)),
              "set style fill solid 1.0 noborder",
              "set boxwidth 0.7",
              "set key off",
              "set grid ytics lc rgb '#dddddd'",
              "set xtics nomirror rotate by -25 offset -1,0",
              "set ytics nomirror",
              "set border 3",
              "set yrange [0:*]",
              "set offsets 0.5, 0.5, graph 0.15, 0"]
    for i, (key, ptitle) in enumerate(panels):
        dat = "%s-%d.dat" % (tmp_prefix, i)
        with open(dat, "w") as f:
            for j, s in enumerate(servers):
                m = median(vals.get((scenario, s, key), []))
                if m is None:
                    continue
                f.write("%d %s %s %s %s\n" % (j, gp_quote(LABELS.get(s, s)), repr(m),
                                             gp_quote(fmt(m)),
                                             int(COLORS.get(s, "#2ca02c")[1:], 16)))
        script += ["set title %s font 'sans,10'" % gp_quote(ptitle),
                   "plot %s using 1:3:(0.7):5:xtic(2) "
                   "with boxes lc rgb variable, "
                   "'' using 1:3:4 with labels offset 0,0.7 font 'sans,9'"
                   % gp_quote(dat)]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True,
                   check=True, capture_output=True)
    return True


def block(results, servers, drawn, prefix):
    table = subprocess.run([os.path.join(HERE, "run.sh"), "--report", results],
                           check=True, capture_output=True, text=True).stdout
    lines = [BEGIN + " generated by bench/run.sh (bench/publish.py) from its"
             " results; do not edit by hand: run the benchmark again -->", ""]
    for sc in drawn:
        lines.append("![%s](%s%s.svg)" % (CHARTS[sc][0], prefix, sc))
    if drawn:
        lines.append("")
    lines.append(table.rstrip("\n"))
    lines += ["", END]
    return "\n".join(lines)


def replace_block(readme, text):
    with open(readme) as f:
        old = f.read()
    b = old.find(BEGIN)
    e = old.find(END)
    if b < 0 or e < b:
        raise SystemExit("publish.py: %s has no %s ... %s markers" % (readme, BEGIN, END))
    new = old[:b] + text + old[e + len(END):]
    if new != old:
        with open(readme, "w") as f:
            f.write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--readme")
    ap.add_argument("--charts")
    ap.add_argument("--link-prefix")
    args = ap.parse_args()
    results = os.path.abspath(args.results)
    meta = read_meta(os.path.join(results, "meta.sh"))
    servers = meta["servers"].split()
    vals = read_results(os.path.join(results, "raw.txt"))
    charts = os.path.abspath(args.charts or os.path.join(results, "charts"))
    os.makedirs(charts, exist_ok=True)
    present = {sc for sc, _, _ in vals}
    drawn = []
    for sc in CHARTS:  # the README's order
        if sc in present and draw(sc, servers, vals, os.path.join(charts, sc + ".svg"),
                                  os.path.join(charts, "." + sc)):
            drawn.append(sc)
    for name in os.listdir(charts):
        if name.startswith(".") and name.endswith(".dat"):
            os.remove(os.path.join(charts, name))
    if args.readme:
        prefix = args.link_prefix
        if prefix is None:
            prefix = os.path.relpath(charts, os.path.dirname(os.path.abspath(args.readme)))
            prefix += "/"
        replace_block(args.readme, block(results, servers, drawn, prefix))
    print("publish.py: %d chart(s) in %s%s" % (len(drawn), charts,
          "; table in " + args.readme if args.readme else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
