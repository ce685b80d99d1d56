#!/bin/bash
# idle_malloc.sh - bytes of malloc in use per idle WebSocket connection in a
# running websockd, deterministically (no RSS noise): glibc's
# mallinfo2().uordblks (every arena, mmap'd chunks aside), read with gdb
# before and after N connections to the echo route are opened and left
# idle by bench/wsload, divided by N. The kernel's socket and epoll memory
# is not in it.
#
#   bench/idle_malloc.sh BUILD_DIR [N] [LOG_LEVEL] [ROUTE_SETTINGS]
#
# BUILD_DIR: a build with websockd, bench/wsload and plugins.d/echo.so
# (RelWithDebInfo: the sanitizers' allocators are not glibc's). N defaults
# to 5000, LOG_LEVEL to warn (the benchmark's); `info` (the default level)
# adds what log_connections' closing line needs. ROUTE_SETTINGS: more lines
# for the echo route, as words KEY=VALUE (say "idle_timeout_ms=60000
# ping_interval_ms=30000"). Arrays that grow past glibc's mmap threshold
# are mmap'd, outside uordblks: those (hblkhd) are added. Prints one line:
#   conns=N level=L route=SETTINGS before=B after=A mmapped=M per_conn=P rss_per_conn=R
# (B and A: uordblks + hblkhd; M: the part of A - B that is hblkhd; R: the
# server's VmRSS growth over the same N connections, in bytes per
# connection, as bench/run.sh's idle scenario reads it: whole pages)
# Needs gdb and ptrace rights over our own children (ptrace_scope 0 or 1).
set -euo pipefail

build=${1:?usage: idle_malloc.sh BUILD_DIR [N] [LOG_LEVEL] [ROUTE_SETTINGS]}
n=${2:-5000}
level=${3:-warn}
settings=${4:-}
websockd=$build/host/websockd
wsload=$build/bench/wsload
for f in "$websockd" "$wsload" "$build/plugins.d/echo.so"; do
  [ -e "$f" ] || { echo "idle_malloc: no $f" >&2; exit 2; }
done

dir=$(mktemp -d)
srv=
cli=
cleanup() {
  [ -n "$cli" ] && kill "$cli" 2>/dev/null && wait "$cli" 2>/dev/null
  [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

mkdir "$dir/plugins.d"
cp "$build/plugins.d/echo.so" "$dir/plugins.d/"
printf 'path = /echo\nplugin = echo.so\nmax_message_size = 16777216\n' \
  >"$dir/plugins.d/echo.conf"
for kv in $settings; do
  printf '%s = %s\n' "${kv%%=*}" "${kv#*=}" >>"$dir/plugins.d/echo.conf"
done
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$dir/websockd.ini" <<EOF
[server]
listen = 127.0.0.1:$port
plugins = $dir/plugins.d
workers = 1
log_level = $level
max_connections = 30000
EOF
ulimit -n "$(ulimit -Hn)"
"$websockd" --config "$dir/websockd.ini" >"$dir/websockd.log" 2>&1 &
srv=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

# mallinfo2 returns its struct through a hidden pointer (SysV x86-64 and
# AArch64 alike): call it with a buffer; hblkhd is its fifth field,
# uordblks its eighth. The buffer is the same 80 bytes in both readings.
# Prints "uordblks hblkhd".
in_use() {
  gdb -p "$srv" -batch -nx \
    -ex 'set $b = (unsigned long *) malloc(80)' \
    -ex 'call ((void (*)(unsigned long *)) mallinfo2)($b)' \
    -ex 'printf "uordblks %lu %lu\n", $b[7], $b[4]' \
    -ex 'call (void) free($b)' 2>/dev/null | awk '/^uordblks/ {print $2, $3}'
}

# one connection first: what the first of anything allocates (the slot
# chunk, the loop's lists) is not per connection
"$wsload" idle -n 1 -c 1 --hold 3600 --port "$port" --path /echo \
  >"$dir/warm.out" 2>&1 &
warm=$!
for _ in $(seq 100); do grep -q '^open' "$dir/warm.out" && break; sleep 0.05; done
sleep 0.5
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$srv/status"; }
rss0=$(rss)
before=$(in_use)
"$wsload" idle -n "$n" -c 200 --hold 3600 --port "$port" --path /echo \
  >"$dir/idle.out" 2>&1 &
cli=$!
for _ in $(seq 1200); do grep -q '^open' "$dir/idle.out" && break; sleep 0.1; done
grep -q "^open $n" "$dir/idle.out" || { echo "idle_malloc: not all open:" >&2; cat "$dir/idle.out" >&2; exit 1; }
sleep 1
rss1=$(rss)
after=$(in_use)
kill "$warm" 2>/dev/null; wait "$warm" 2>/dev/null || true
read -r before_u before_h <<<"$before"
read -r after_u after_h <<<"$after"
before=$((before_u + before_h))
after=$((after_u + after_h))
echo "conns=$n level=$level route=${settings// /,} before=$before after=$after mmapped=$((after_h - before_h)) per_conn=$(( (after - before) / n )) rss_per_conn=$(( (rss1 - rss0) * 1024 / n ))"
