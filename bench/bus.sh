#!/usr/bin/env bash
# bench/bus.sh - fan-out across hosts through Redis (issue 15): one publisher
# on host A, M subscribers of one chat room (fanout = broadcast) spread over
# hosts A, B and C (three websockd, one worker each, sharing a redis-server
# with persistence off), next to the same run on one host. For each message
# size (64 B and 1 KiB):
#
#   serial   one publish at a time, the next once every subscriber has it:
#            time until all have it (p50/p99) and deliveries/s (M / p50)
#   rate     R publishes per second for N publishes, not waiting: every
#            delivery timed from its publish (p50/p99), delivered/s, lost
#
#   bench/bus.sh [--short] [--build-dir DIR] [--subs M] [--rate R] [--n N]
#
#   --short      a few seconds (64 B only, 300 subscribers, 20 publishes,
#                rate 100 for 100): the test suite runs it; every delivery is checked
#                (wsload exits 1 on a lost or duplicated message), no speed
#                is asserted
#   --build-dir  an existing tree (host/websockd, bench/wsload, plugins.d);
#                default build-bench, built RelWithDebInfo if missing
#
# Every process it starts it stops by PID. Results: one line per run on
# stdout (wsload's key=value line, prefixed with the setup).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { echo "bus-bench: $*" >&2; }

short=0 build_dir= subs=3000 rate=1000 n=2000 serial_n=200 sizes="64 1024" settle=1
while [ $# -gt 0 ]; do
  case "$1" in
  --short) short=1 ;;
  --build-dir) build_dir=$2; shift ;;
  --subs) subs=$2; shift ;;
  --rate) rate=$2; shift ;;
  --n) n=$2; shift ;;
  *) say "unknown option $1"; exit 2 ;;
  esac
  shift
done
if [ "$short" = 1 ]; then
  subs=300 rate=100 n=100 serial_n=20 sizes=64 settle=0.3
fi
if [ -z "$build_dir" ]; then
  build_dir=$root/build-bench
  if [ ! -x "$build_dir/host/websockd" ] || [ ! -x "$build_dir/bench/wsload" ]; then
    say "building $build_dir (RelWithDebInfo)"
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSH_TESTS=OFF >/dev/null
    cmake --build "$build_dir" -j2 >/dev/null
  fi
fi
websockd=$build_dir/host/websockd
wsload=$build_dir/bench/wsload
redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)

tmp=$(mktemp -d /tmp/websockd-busbench.XXXXXX)
. bench/lib.sh # pids, cleanup (on EXIT), free_port

mkdir -p "$tmp/plugins.d"
cp "$build_dir/plugins.d/chat.so" "$tmp/plugins.d/"
cat >"$tmp/plugins.d/chat.conf" <<'EOF'
path = /chat
plugin = chat.so

[options]
fanout = broadcast
EOF

redis_port=$(free_port)
"$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$tmp" --daemonize no --loglevel warning >"$tmp/redis.log" 2>&1 &
pids+=($!)

# start_host VAR LOG [--redis ADDR]: starts one websockd, its port in VAR
# (not in a subshell: its PID must stay in pids)
start_host() {
  local var=$1 log=$2
  shift 2
  "$websockd" --listen 127.0.0.1:0 --plugins "$tmp/plugins.d" --workers 1 \
    --max-connections 20000 "$@" 2>"$log" &
  pids+=($!)
  for _ in $(seq 1 200); do
    if grep -q 'websockd ready' "$log"; then
      printf -v "$var" '%s' "$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)"
      return 0
    fi
    sleep 0.05
  done
  say "websockd did not start: $(cat "$log")"
  exit 1
}

# wait_bus PORT...: every host's bus is up
wait_bus() {
  for p in "$@"; do
    for _ in $(seq 1 200); do
      curl -s "http://127.0.0.1:$p/metrics" | grep -q '^websockd_bus_connected 1' && break
      sleep 0.05
    done
  done
}

start_host single "$tmp/single.log"
start_host a "$tmp/a.log" --redis "127.0.0.1:$redis_port"
start_host b "$tmp/b.log" --redis "127.0.0.1:$redis_port"
start_host c "$tmp/c.log" --redis "127.0.0.1:$redis_port"
wait_bus "$a" "$b" "$c"

status=0
run() { # run LABEL ARGS...: one wsload run, its line prefixed
  local label=$1
  shift
  local line
  if line=$("$wsload" fanout -c 200 --timeout 120 --settle "$settle" \
      --path "/chat?room=bench&name=s{i}" --pub-path "/chat?room=bench&name=pub" "$@"); then
    echo "$label $line"
  else
    echo "$label FAILED $line"
    status=1
  fi
}

for size in $sizes; do
  run "hosts=1 size=$size" -m "$subs" -n "$serial_n" -s "$size" --port "$single"
  run "hosts=3 size=$size" -m "$subs" -n "$serial_n" -s "$size" --ports "$a,$b,$c"
  run "hosts=1 size=$size" -m "$subs" -n "$n" -s "$size" --rate "$rate" --port "$single"
  run "hosts=3 size=$size" -m "$subs" -n "$n" -s "$size" --rate "$rate" --ports "$a,$b,$c"
done
for p in "$single" "$a" "$b" "$c"; do
  curl -s "http://127.0.0.1:$p/metrics" | grep -E '^websockd_bus_(published|received|dropped)_total' |
    sed "s/^/port=$p /" >&2
done
for f in "$tmp"/*.log; do
  if grep -qE 'ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer' "$f"; then
    say "sanitizer report in $f"
    cat "$f" >&2
    status=1
  fi
done
exit $status
