#!/usr/bin/env bash
# bench/stalls.sh - where the depth-1 latency tail comes from (issue 18,
# target 3): websockd with one worker, libwebsockets (peer_lws) and the raw
# epoll echo (peer_raw), each on core 1, take echo64r's open loop in turn
# (wsload on core 0: 100 connections, 64 B, ECHO_RATE messages a second,
# latency from when each was due), and every echo slower than --slow µs is
# listed (wsload --slow) and grouped into stalls by bench/stalls.py: runs of
# at least 20 slow echoes due within 2 ms of each other, a stretch in which
# every message waited, on every connection. One line per run: the p50 and
# p99, then how much of the p99's 1 % the stalls took (p99_share over 1:
# the stalls alone set the p99). The last lines: medians per server. First,
# the machine alone: what a thread spinning on each core, nothing else
# running, loses in gaps over 0.5 ms (stalls.py --spin).
#
#   bench/stalls.sh [--build-dir DIR] [--rounds N] [--secs S] [--slow US]
#
#   --build-dir  a built tree with host/websockd, bench/wsload, bench/peer_*
#                and plugins.d/echo.so (default: build)
#   --rounds N   rounds, the servers alternating (default 6)
#   --secs S     measured seconds per run (default 5; 1 s of warm-up first)
#   --slow US    what counts as slow (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build rounds=6 secs=5 slow=300 rate=${ECHO_RATE:-20000}
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --slow) slow=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "stalls.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for f in host/websockd bench/wsload bench/peer_lws bench/peer_raw \
         plugins.d/echo.so; do
  [ -x "$build_dir/$f" ] || [ -f "$build_dir/$f" ] ||
    { echo "stalls.sh: no $build_dir/$f (build it first)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/websockd-stalls.XXXXXX)
. bench/lib.sh # pids, cleanup (on EXIT), free_port

mkdir "$tmp/plugins.d"
cp "$build_dir/plugins.d/echo.so" "$tmp/plugins.d/"
printf 'path = /echo\nplugin = echo.so\n' >"$tmp/plugins.d/echo.conf"
declare -A port
port[websockd]=$(free_port)
cat >"$tmp/websockd.ini" <<EOF
[server]
listen = 127.0.0.1:${port[websockd]}
plugins = $tmp/plugins.d
workers = 1
log_level = warn
EOF
taskset -c 1 "$build_dir/host/websockd" --config "$tmp/websockd.ini" \
  >"$tmp/websockd.log" 2>&1 &
pids+=($!)
port[lws]=$(free_port)
taskset -c 1 "$build_dir/bench/peer_lws" "${port[lws]}" >"$tmp/lws.log" 2>&1 &
pids+=($!)
port[raw]=$(free_port)
taskset -c 1 "$build_dir/bench/peer_raw" "${port[raw]}" >"$tmp/raw.log" 2>&1 &
pids+=($!)
for s in websockd lws raw; do # listening within 10 s
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${port[$s]}") 2>/dev/null && break
    sleep 0.1
  done
done

# the machine alone first: each core's own gaps (stalls.py --spin)
spins=()
for core in 0 1; do
  taskset -c "$core" bench/stalls.py --spin "$secs" >"$tmp/spin$core.txt" &
  spins+=($!)
done
wait "${spins[@]}"
echo "# the machine alone, $secs s: core 0 $(cat "$tmp/spin0.txt"); core 1 $(cat "$tmp/spin1.txt")"
echo "# round server p50_us p99_us msgs slow stalls in_stalls longest_ms worst_us p99_share"
for r in $(seq "$rounds"); do
  for s in websockd lws raw; do
    line=$(taskset -c 0 "$build_dir/bench/wsload" echo --port "${port[$s]}" \
      -c 100 -s 64 -d "$secs" --warmup 1 --rate "$rate" --slow "$slow" \
      2>"$tmp/slow.txt")
    get() { grep -o "\b$1=[0-9.]*" <<<"$line" | head -1 | cut -d= -f2; }
    msgs=$(get msgs)
    st=$(bench/stalls.py --msgs "$msgs" "$tmp/slow.txt")
    echo "$r $s $(get p50_us) $(get p99_us) $msgs $(sed 's/[a-z_0-9]*=//g' <<<"$st")"
  done
done | tee "$tmp/runs.txt"
# medians per server: p50, p99, stalls, p99_share
awk '!/^#/ { k = $2; n[k]++; p50[k, n[k]] = $3; p99[k, n[k]] = $4;
             st[k, n[k]] = $7; sh[k, n[k]] = $11 }
  function med(a, k, m,   v, i, j, t) {
    for (i = 1; i <= m; i++) v[i] = a[k, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
      if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
    return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
  END { for (k in n) printf "median %s p50_us=%s p99_us=%s stalls=%s p99_share=%s\n",
          k, med(p50, k, n[k]), med(p99, k, n[k]), med(st, k, n[k]), med(sh, k, n[k]) }' \
  "$tmp/runs.txt" | sort
