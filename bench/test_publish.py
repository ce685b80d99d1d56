#!/usr/bin/python3
"""bench_publish: bench/publish.py on saved results (bench/testdata/
bench-results: made-up round numbers, three rounds, one failed run), so the
table's medians and ratios and the charts' bars are known in advance. No
benchmark runs here: only the generator is tested."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "testdata", "bench-results")
SVG_NS = "{http://www.w3.org/2000/svg}"

BEFORE = "# Title\n\nText before.\n\n## Performance\n\nProse above.\n\n"
AFTER = "\n\nProse below, | not a table |.\n"
README = (BEFORE + "<!-- bench-table:begin -->\nstale table\n"
          "<!-- bench-table:end -->" + AFTER)


def publish(*args):
    return subprocess.run(["/usr/bin/python3", os.path.join(HERE, "publish.py"),
                           RESULTS] + list(args), capture_output=True, text=True)


def svg_texts(path):
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()).strip() for t in root.iter(SVG_NS + "text")]


def svg_bars(path, rgb):
    """The bars of one colour: gnuplot draws a filled box as a polygon."""
    root = ET.parse(path).getroot()
    return [p for p in root.iter(SVG_NS + "polygon")
            if re.sub(r"\s", "", p.get("fill", "")) == "rgb(%d,%d,%d)" % rgb]


WEBSOCKD1 = (31, 119, 180)
LWS = (255, 127, 14)
RAW = (127, 127, 127)


class Publish(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench-publish-")
        self.readme = os.path.join(self.tmp, "README.md")
        self.charts = os.path.join(self.tmp, "docs", "bench")
        with open(self.readme, "w") as f:
            f.write(README)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_ok(self):
        r = publish("--readme", self.readme, "--charts", self.charts)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.readme) as f:
            return f.read()

    def test_table_between_the_markers(self):
        text = self.run_ok()
        self.assertTrue(text.startswith(BEFORE), "text above the markers changed")
        self.assertTrue(text.endswith(AFTER), "text below the markers changed")
        self.assertNotIn("stale table", text)
        block = text[len(BEFORE):-len(AFTER)]
        self.assertTrue(block.startswith("<!-- bench-table:begin"))
        self.assertTrue(block.endswith("<!-- bench-table:end -->"))
        # medians of three rounds (the failed lws run left out), the ratios
        self.assertIn("| echo 64 B text, 100 conns, depth 1 | msgs/s ↑ | 175000 |"
                      " 129000 | 163000 | 175000 | 1.07 | 1.00 |", block)
        self.assertIn("|  | latency p99 µs ↓ | 900 | 4500 | 950 | 1050 | 0.95 | 0.86 |",
                      block)
        # derived: server_cpu_s / total_msgs * 1e6
        self.assertIn("|  | server CPU s per M msgs ↓ | 5.60 | 6.50 | 5.90 | 5.60 |"
                      " 0.95 | 1.00 |", block)
        self.assertIn("| connect, upgrade, close; 50 at a time | handshakes/s ↑ |"
                      " 22500 | 19200 | 20400 | 19050 | 1.10 | 1.18 |", block)
        # derived: server_cpu_s / done * 1e6 (what the client does not cap)
        self.assertIn("|  | server CPU µs per handshake ↓ | 30.0 | 45.0 | 45.0 |"
                      " 45.0 | 0.67 | 0.67 |", block)
        self.assertIn("| idle connections | server RSS KiB per conn ↓ | 0.25 | 0.30 |"
                      " 5.17 | 8.35 | 0.05 | 0.03 |", block)
        self.assertIn("|  | µs until the first has it, p50 ↓ | 250 | 300 | – | 190 |"
                      " – | 1.32 |", block)
        # scenarios that were not run have no rows
        self.assertNotIn("depth 16", block)
        self.assertNotIn("TLS: connect", block)
        # the charts sit above the table, linked relative to the README
        charts = re.findall(r"!\[[^]]*\]\(([^)]*)\)", block)
        self.assertEqual(charts, ["docs/bench/echo64.svg", "docs/bench/connect.svg",
                                  "docs/bench/idle.svg", "docs/bench/fanout.svg"])
        self.assertLess(block.index("fanout.svg"), block.index("| scenario |"))

    def test_regenerating_changes_nothing(self):
        first = self.run_ok()
        svg = open(os.path.join(self.charts, "echo64.svg")).read()
        self.assertEqual(self.run_ok(), first)
        self.assertEqual(open(os.path.join(self.charts, "echo64.svg")).read(), svg)
        self.assertEqual(sorted(os.listdir(self.charts)),
                         ["connect.svg", "echo64.svg", "fanout.svg", "idle.svg"])

    def test_charts_draw_the_medians_side_by_side(self):
        self.run_ok()
        echo = os.path.join(self.charts, "echo64.svg")
        texts = svg_texts(echo)
        self.assertIn("echo 64 B text, 100 connections, depth 1", texts)
        for label in ("websockd ×1", "websockd ×2", "libwebsockets", "raw peer"):
            self.assertEqual(texts.count(label), 3, label)  # one per panel
        for value in ("175000", "129000", "163000", "900", "4500", "5.60", "6.50"):
            self.assertIn(value, texts)
        # three panels, one bar per server in each
        for rgb in (WEBSOCKD1, LWS, RAW):
            self.assertEqual(len(svg_bars(echo, rgb)), 3, rgb)
        # taller for the bigger median: websockd ×1 (175000) over lws (163000)
        def height(poly):
            ys = [float(p.split(",")[1]) for p in poly.get("points").split()]
            return max(ys) - min(ys)
        self.assertGreater(height(svg_bars(echo, WEBSOCKD1)[0]),
                           height(svg_bars(echo, LWS)[0]))
        # connect: handshakes/s, p99 and the server's CPU per handshake
        conn = os.path.join(self.charts, "connect.svg")
        self.assertIn("server CPU µs per handshake (lower is better)",
                      svg_texts(conn))
        self.assertIn("30.0", svg_texts(conn))
        self.assertEqual(len(svg_bars(conn, WEBSOCKD1)), 3)
        # fanout has no libwebsockets bars (an echo server: no rooms)
        fan = os.path.join(self.charts, "fanout.svg")
        self.assertNotIn("libwebsockets", svg_texts(fan))
        self.assertEqual(len(svg_bars(fan, LWS)), 0)
        self.assertEqual(len(svg_bars(fan, WEBSOCKD1)), 2)

    def test_a_readme_without_markers_is_refused(self):
        with open(self.readme, "w") as f:
            f.write("# no markers here\n")
        r = publish("--readme", self.readme, "--charts", self.charts)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("markers", r.stderr + r.stdout)
        with open(self.readme) as f:
            self.assertEqual(f.read(), "# no markers here\n")

    def test_the_readme_has_the_markers(self):
        with open(os.path.join(HERE, "..", "README.md")) as f:
            text = f.read()
        self.assertEqual(text.count("<!-- bench-table:begin"), 1)
        self.assertEqual(text.count("<!-- bench-table:end -->"), 1)
        section = text.split("\n## Performance\n", 1)[1].split("\n## ", 1)[0]
        self.assertIn("<!-- bench-table:begin", section)
        for link in re.findall(r"!\[[^]]*\]\((docs/bench/[^)]*)\)", section):
            self.assertTrue(os.path.exists(os.path.join(HERE, "..", link)), link)


if __name__ == "__main__":
    unittest.main()
