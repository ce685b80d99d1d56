#!/usr/bin/env bash
# bench/run.sh - websockd's load benchmark, the one command: installs what it
# needs, builds a RelWithDebInfo tree (build-bench/), then runs every
# scenario against websockd with one worker and with all workers, against a
# libwebsockets echo server (peer_lws) and against a raw epoll echo that only
# unmasks (peer_raw, the ceiling), alternating the servers over the rounds,
# and prints one Markdown table of medians with websockd's ratio to each
# peer. Servers run on core 1 (websockd with all workers is not pinned), the
# load generator (wsload) on core 0.
#
#   bench/run.sh [--short] [--rounds N] [--build-dir DIR] [--perf]
#                [--scenarios "echo1m echo16m ..."]
#   bench/run.sh --report DIR/bench-results     (the table again, no runs)
#   bench/publish.py DIR/bench-results --readme README.md --charts docs/bench
#                                      (the README's charts and table again)
#
#   --short      seconds, not minutes: tiny durations, one round, 1,000 idle
#                connections, 64 KiB and 256 KiB for the 1 and 16 MiB echoes
#                (the test suite runs this; no speed is asserted, but every
#                echo is checked and a sanitizer report fails it)
#   --rounds N   rounds (default 3, or $ROUNDS)
#   --build-dir  use an existing build tree (host/websockd, bench/wsload,
#                bench/peer_*, plugins.d) instead of installing and building
#   --scenarios  run only these (default: all of them: echo64 echo64i
#                echo64r echo64d16 echo16k echo1m echo16m connect connect_half
#                idle fanout idlemax, and
#                permessage-deflate's z256 z4k z64k zbin (JSON-like text of
#                256 B, 4 KiB, 64 KiB; random binary of 4 KiB), z256d z4kd
#                z64kd (websockd's dedicated mode), zidle, zfanout)
#
# permessage-deflate: websockd ×1 (route /z: compression = shared; /zd:
# dedicated) next to libwebsockets with its own permessage-deflate
# (peer_lws --deflate, at lws's defaults); wsload --deflate compresses what
# it sends and inflates what comes back. zfanout reads websockd's /metrics
# for the deflate calls per compressed broadcast.
#   --publish    regenerate README.md's table and the charts in docs/bench/
#                (bench/publish.py) even for a run of some --scenarios; a
#                full run (no --short, no --scenarios) always does, and
#                --no-publish keeps everything in DIR/bench-results/ (whose
#                charts/ every run but --short draws)
#   --baseline DIR  also run the websockd of another build tree DIR (say
#                main's, for a change's before and after) as the server
#                "base", one worker, pinned like websockd ×1: the table's
#                "×1 ÷ base" column is after ÷ before, in the same run
#   --servers "websockd-1w lws raw ..."  only these servers (default: all)
#   --perf       also profile websockd (1 worker) during the 64 B depth-16
#                echo of the last round: perf record -e cpu-clock -g; the top
#                symbols land beside the results
#
# echo64i is echo64 with every server up at once and wsload driving them in
# turns (wsload echo --ports: a warm-up on each, then slices of 0.5 s, each
# after a 50 ms lead-in, the order rotated every pass, until each has the
# same measured time): on a shared VM whose speed changes within seconds,
# servers measured one after the other (echo64) can meet different
# machines; in turns they meet the same one. Server CPU is each server's
# own, as elsewhere; others' CPU is the machine's less all the servers and
# the client.
#
# echo64r is echo64 as an open loop: 100 connections, 20,000 messages of
# 64 B a second in all (ECHO_RATE), sent when due whatever came back, the
# latency counted from when each was due (wsload --rate). Every server is
# below its capacity there, so the p99 is what the server adds to a
# message, not the client's queue (in the closed loop at depth 1 the
# latency is 100 ÷ the throughput, which the client's core caps).
#
# connect_half is connect with the server held to half a core (its process
# in a CPU cgroup, a quota of 5 ms per 10 ms: cgroup v1's cpu controller or
# v2's cpu.max, as root), so that the server, not the client's core, is
# what runs out: on two cores the plain connect run is client-bound. Where
# no CPU cgroup can be made, it is skipped with a line that says so.
#
# FANOUT_SUBS=N sets the fanout's subscribers (default 10,000). The chat
# route runs with `announce = off`: a join line to every member would make
# filling the room grow as N² (and the raw peer announces nothing).
#
# On a shared machine: before each run the script waits up to QUIET_WAIT
# seconds (default 60) for the cores to be idle, and a run during which other
# processes used more than NOISE_MAX % of a core (default 25) is run again,
# up to twice; the table says how many runs were noisy all the same.
#
# Results: DIR/bench-results/: raw.txt (one line per run), table.md, logs/.
set -euo pipefail

say() { echo "bench: $*" >&2; }

# ---- set-up and build --------------------------------------------------------
install_and_build() {
  scripts/setup.sh
  if ! dpkg-query -W -f='${Status}' libwebsockets-dev 2>/dev/null | grep -q "ok installed"; then
    if [ "$(id -u)" -eq 0 ]; then
      say "installing libwebsockets-dev (the peer_lws server)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq --no-install-recommends libwebsockets-dev >/dev/null ||
        { apt-get update -qq &&
          apt-get install -y -qq --no-install-recommends libwebsockets-dev >/dev/null; }
    else
      say "libwebsockets-dev is missing; as root: apt-get install -y libwebsockets-dev"
      say "(running without the libwebsockets peer)"
    fi
  fi
  build_dir=$root/build-bench
  mkdir -p "$build_dir"
  say "building $build_dir (RelWithDebInfo)"
  if ! { cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSH_TESTS=OFF &&
         cmake --build "$build_dir" -j"$(nproc)"; } >"$build_dir/bench-build.log" 2>&1; then
    tail -30 "$build_dir/bench-build.log" >&2
    say "the build failed (log: $build_dir/bench-build.log)"
    exit 1
  fi
}

# websockd's routes: echo, and the chat plugin (rooms, fanout = broadcast)
# when the build has one and it loads.
write_routes() {
  cp "$build_dir/plugins.d/echo.so" "$out/plugins.d/"
  cat >"$out/plugins.d/echo.conf" <<'EOF'
path = /echo
plugin = echo.so
max_message_size = 16777216
EOF
  cat >"$out/plugins.d/z.conf" <<'EOF'
path = /z
plugin = echo.so
max_message_size = 16777216
compression = shared
EOF
  cat >"$out/plugins.d/zd.conf" <<'EOF'
path = /zd
plugin = echo.so
max_message_size = 16777216
compression = dedicated
EOF
  have_chat=0
  if [ ! -e "$build_dir/plugins.d/chat.so" ]; then
    say "no chat plugin in $build_dir/plugins.d: websockd's fanout is not measured"
    return 0
  fi
  cp "$build_dir/plugins.d/chat.so" "$out/plugins.d/"
  cat >"$out/plugins.d/chat.conf" <<'EOF'
path = /chat
plugin = chat.so
compression = shared

[options]
fanout = broadcast
announce = off
EOF
  if "$websockd" -t --plugins "$out/plugins.d" >"$out/logs/websockd-t.log" 2>&1; then
    have_chat=1
  else
    say "the chat route does not load (see $out/logs/websockd-t.log): no fanout for websockd"
    rm -f "$out/plugins.d/chat.conf" "$out/plugins.d/chat.so"
  fi
}

# ---- servers -------------------------------------------------------------------
# port_free PORT: nothing listens there (IPv4; state 0A is LISTEN).
port_free() {
  ! awk -v p="$(printf '%04X' "$1")" 'NR > 1 && $4 == "0A" &&
    substr($2, index($2, ":") + 1) == p { found = 1; exit } END { exit !found }' /proc/net/tcp
}

pick_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 10000))
    port_free "$p" && { echo "$p"; return; }
  done
  say "no free port"
  exit 1
}

# start_server NAME: starts it on a free port; sets srv_pid and srv_port.
start_server() {
  local name=$1 tls=${2:-0} log=$out/logs/$1.log cfg workers=1 listen
  srv_port=$(pick_port)
  case "$name" in
    websockd-*|base)
      [ "$name" = websockd-2w ] && workers=$(nproc)
      cfg=$out/$name.ini
      listen="listen = 127.0.0.1:$srv_port"
      # TLS: the measured port is the TLS one (the plain one picks its own)
      [ "$tls" = 1 ] && listen="listen = 127.0.0.1:0
listen_tls = 127.0.0.1:$srv_port
tls_cert = $out/tls/server.pem
tls_key = $out/tls/server.key"
      cat >"$cfg" <<EOF
[server]
$listen
plugins = $out/plugins.d
workers = $workers
log_level = warn
max_connections = 30000
EOF
      if [ "$name" = websockd-1w ]; then
        "${pin_server[@]}" "$websockd" --config "$cfg" >>"$log" 2>&1 &
      elif [ "$name" = base ]; then
        "${pin_server[@]}" "$base_websockd" --config "$cfg" >>"$log" 2>&1 &
      else
        "$websockd" --config "$cfg" >>"$log" 2>&1 & # all workers, all cores
      fi ;;
    lws)
      local zflag=()
      [[ "${cur_sc:-}" == z* ]] && zflag=(--deflate)
      if [ "$tls" = 1 ]; then
        "${pin_server[@]}" "$peer_lws" "$srv_port" "$out/tls/server.pem" \
          "$out/tls/server.key" >>"$log" 2>&1 &
      else
        "${pin_server[@]}" "$peer_lws" "$srv_port" "${zflag[@]}" >>"$log" 2>&1 &
      fi ;;
    raw) "${pin_server[@]}" "$peer_raw" "$srv_port" >>"$log" 2>&1 & ;;
  esac
  srv_pid=$!
  for _ in $(seq 100); do
    if ! kill -0 "$srv_pid" 2>/dev/null; then
      say "$name exited at start (see $log)"
      exit 1
    fi
    port_free "$srv_port" || return 0
    sleep 0.05
  done
  say "$name does not listen on $srv_port"
  exit 1
}

# stop_pid PID: TERM, up to 15 s, then KILL.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

stop_server() {
  [ -n "${srv_pid:-}" ] || return 0
  stop_pid "$srv_pid"
  srv_pid=""
}

# cg_init: a CPU cgroup that holds a process to half a core (5 ms per 10 ms),
# in cgroup v1's cpu hierarchy or in cgroup v2 with the cpu controller; sets
# cg_dir ("" when none can be made here: connect_half is then skipped).
cg_init() {
  cg_dir=""
  local d v2
  if [ -w /sys/fs/cgroup/cpu ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    d=/sys/fs/cgroup/cpu/websockd-bench-$$
    if mkdir "$d" 2>/dev/null; then
      if echo 10000 >"$d/cpu.cfs_period_us" && echo 5000 >"$d/cpu.cfs_quota_us"; then
        cg_dir=$d
        return 0
      fi
      rmdir "$d"
    fi
  fi
  v2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
  if [ -n "$v2" ] && grep -qw cpu "$v2/cgroup.controllers" 2>/dev/null; then
    grep -qw cpu "$v2/cgroup.subtree_control" ||
      echo +cpu >"$v2/cgroup.subtree_control" 2>/dev/null || true
    d=$v2/websockd-bench-$$
    if mkdir "$d" 2>/dev/null; then
      if echo "5000 10000" >"$d/cpu.max" 2>/dev/null; then
        cg_dir=$d
        return 0
      fi
      rmdir "$d"
    fi
  fi
  say "no CPU cgroup can be made here (root, cgroup v1 cpu or v2 cpu.max): connect_half is not measured"
}

cleanup() {
  stop_server
  local p
  for p in "${turn_pids[@]}"; do stop_pid "$p"; done
  [ -n "${cg_dir:-}" ] && rmdir "$cg_dir" 2>/dev/null
  [ -n "${load_pid:-}" ] && kill -TERM "$load_pid" 2>/dev/null
  [ -n "${perf_pid:-}" ] && kill -INT "$perf_pid" 2>/dev/null
  return 0
}

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# ticks_s A B: clock ticks from A to B, in seconds.
ticks_s() { awk -v a="$1" -v b="$2" -v t="$clk_tck" 'BEGIN {printf "%.2f", (b - a) / t}'; }
# others_pct BUSY0 BUSY1 SERVER_TICKS WALL_S CLIENT_S: what the machine did
# meanwhile but the servers and the client, in % of a core.
others_pct() {
  awk -v a="$1" -v b="$2" -v s="$3" -v w="$4" -v cl="$5" -v t="$clk_tck" \
    'BEGIN {printf "%.0f", ((b - a) - s - cl * t) / t / w * 100}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
sys_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# wait_quiet: waits (up to QUIET_WAIT s) until less than a fifth of a core
# is busy over half a second.
wait_quiet() {
  [ "$short" = 1 ] && return 0
  local a b
  for _ in $(seq "${QUIET_WAIT:-60}"); do
    a=$(sys_busy); sleep 0.5; b=$(sys_busy)
    [ $(((b - a) * 200 / clk_tck)) -lt 20 ] && return 0
    sleep 0.5
  done
  say "the machine stays busy ($(((b - a) * 200 / clk_tck)) % of a core): measuring anyway"
}

# ---- scenarios -----------------------------------------------------------------
set_scenarios() {
  if [ "$short" = 1 ]; then
    echo_t=(-d 0.3); connect_n=500; idle_n=1000; fan_m=100; fan_k=5
    # TLS handshakes are slow on the sanitizer build: fewer, and time for them
    tls_connect_n=50; tls_idle_n=50; tls_c=10; tls_echo_t=(-d 1)
    # the test suite runs this on its sanitizer build (wsload and the peers
    # sanitized too): a 16 MiB echo can take seconds there, so the big
    # scenarios only check their plumbing, with 64 KiB and 256 KiB messages
    big_t=(-d 1); big_s=(64k 256k)
    idlemax_n=$(($(ulimit -n) - 100))
    [ "$idlemax_n" -le 1500 ] || idlemax_n=1500
  else
    echo_t=(-d 5 --warmup 1); connect_n=20000; idle_n=10000
    fan_m=${FANOUT_SUBS:-10000}; fan_k=20
    tls_connect_n=5000; tls_idle_n=$idle_n; tls_c=100; tls_echo_t=("${echo_t[@]}")
    big_t=(-d 10 --warmup 2) # 16 MiB echoes take a fraction of a second each
    big_s=(1m 16m)
    # as many as the open-files limit allows: the client needs one fd per
    # connection too, the server a few of its own (listener, loops, plugins)
    idlemax_n=$(($(ulimit -n) - 100))
  fi
  scenarios=(echo64 echo64i echo64r echo64d16 echo16k echo1m echo16m connect connect_half idle
             fanout idlemax
             z256 z256d z4k z4kd z64k z64kd zbin zidle zfanout
             tls_connect tls_resume tls_echo64 tls_echo16k tls_idle)
  if [ -n "$only" ]; then
    read -r -a scenarios <<<"$only"
  fi
}

# args_for SCENARIO: the wsload command line (the port comes after).
args_for() {
  case "$1" in
    echo64|echo64i) echo echo -c 100 -p 1 -s 64 "${echo_t[@]}" ;;
    echo64r) echo echo -c 100 -s 64 --rate "${ECHO_RATE:-20000}" "${echo_t[@]}" ;;
    echo64d16) echo echo -c 100 -p 16 -s 64 "${echo_t[@]}" ;;
    echo16k) echo echo -c 100 -p 1 -s 16k --binary "${echo_t[@]}" ;;
    echo1m) echo echo -c 8 -p 1 -s "${big_s[0]}" --binary "${big_t[@]}" ;;
    echo16m) echo echo -c 2 -p 1 -s "${big_s[1]}" --binary "${big_t[@]}" ;;
    connect|connect_half) echo connect -n "$connect_n" -c 50 ;;
    tls_connect) echo connect -n "$tls_connect_n" -c 50 --tls ;;
    tls_resume) echo connect -n "$tls_connect_n" -c 50 --tls --resume ;;
    tls_echo64) echo echo -c "$tls_c" -p 1 -s 64 --tls "${tls_echo_t[@]}" ;;
    tls_echo16k) echo echo -c "$tls_c" -p 1 -s 16k --binary --tls "${tls_echo_t[@]}" ;;
    tls_idle) echo idle -n "$tls_idle_n" -c 50 --hold 300 --tls ;;
    idle) echo idle -n "$idle_n" -c 200 --hold 300 ;;
    idlemax) echo idle -n "$idlemax_n" -c 200 --hold 300 ;;
    fanout) echo fanout -m "$fan_m" -n "$fan_k" -c 200 --timeout 180 \
              --path "/chat?room=bench&name=s{i}" --pub-path "/chat?room=bench&name=pub" ;;
    z256|z256d) echo echo -c 100 -p 1 -s 256 --json --deflate --path "/z${1#z256}" "${echo_t[@]}" ;;
    z4k|z4kd) echo echo -c 100 -p 1 -s 4k --json --deflate --path "/z${1#z4k}" "${echo_t[@]}" ;;
    z64k|z64kd) echo echo -c 20 -p 1 -s 64k --json --deflate --path "/z${1#z64k}" "${echo_t[@]}" ;;
    zbin) echo echo -c 100 -p 1 -s 4k --binary --random --deflate --path /z "${echo_t[@]}" ;;
    zidle) echo idle -n "$idle_n" -c 200 --hold 300 --deflate --path /z ;;
    zfanout) echo fanout -m "$fan_m" -n "$fan_k" -c 200 --timeout 180 --deflate \
              --path "/chat?room=bench&name=s{i}" --pub-path "/chat?room=bench&name=pub" ;;
  esac
}

applies() { # applies SCENARIO SERVER
  case "$1/$2" in
    fanout/lws|zfanout/lws) return 1 ;; # an echo server: no rooms
    connect_half/*) [ -n "$cg_dir" ] ;;
    z*/raw|z*/websockd-2w|z*d/lws) return 1 ;; # deflate: websockd ×1 and lws
    zfanout/websockd-1w) [ "$have_chat" = 1 ] ;;
    tls_*/websockd-1w | tls_*/lws) return 0 ;;
    tls_*/*) return 1 ;; # TLS: websockd ×1 next to libwebsockets
    idlemax/websockd-1w) return 0 ;;
    idlemax/*) return 1 ;; # websockd's own limit, once per round
    fanout/websockd-*|fanout/base) [ "$have_chat" = 1 ] ;;
    *) return 0 ;;
  esac
}

# measure ROUND SCENARIO SERVER: one run on a fresh server; sets `result`
# (the line for raw.txt), `noise` (others' CPU %) and `run_rc`.
measure() {
  local round=$1 sc=$2 name=$3 line="" extra="" args prof=""
  local t0 t1 c0 c1 b0 b1 r0 r1 lf wall cl
  run_rc=0
  [ "$sc" = echo64i ] && { measure_turns "$round" "$sc"; return; }
  wait_quiet
  cur_sc=$sc
  start_server "$name" "$([ "${sc#tls_}" != "$sc" ] && echo 1 || echo 0)"
  # the whole process, every thread, into the half-core group
  [ "$sc" = connect_half ] && echo "$srv_pid" >"$cg_dir/cgroup.procs"
  read -r -a args <<<"$(args_for "$sc")"
  c0=$(proc_ticks "$srv_pid"); b0=$(sys_busy); t0=$(date +%s%N)
  r0=$(rss_kb "$srv_pid")
  if [ "$perf" = 1 ] && [ "$sc" = echo64d16 ] && [ "$name" = websockd-1w ] &&
     [ "$round" = "$rounds" ]; then
    prof=$out/perf-websockd-1w-echo64d16
    perf record -e cpu-clock -g -p "$srv_pid" -o "$prof.data" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  if [ "$sc" = idle ] || [ "$sc" = idlemax ] || [ "$sc" = zidle ] ||
     [ "$sc" = tls_idle ]; then
    local held=$idle_n
    [ "$sc" = idlemax ] && held=$idlemax_n
    [ "$sc" = tls_idle ] && held=$tls_idle_n
    # Hold the connections, read the server's RSS, then let them go.
    lf=$out/logs/idle-$name-$round.out
    "${pin_client[@]}" "$wsload" "${args[@]}" --port "$srv_port" >"$lf" 2>>"$out/logs/wsload.log" &
    load_pid=$!
    for _ in $(seq 1200); do
      grep -q '^open ' "$lf" && break
      kill -0 "$load_pid" 2>/dev/null || break
      sleep 0.05
    done
    sleep 0.5
    r1=$(rss_kb "$srv_pid")
    kill -TERM "$load_pid" 2>/dev/null || true
    wait "$load_pid" || run_rc=$?
    load_pid=""
    line=$(grep '^mode=' "$lf" || true)
    extra="rss_before_kb=$r0 rss_after_kb=$r1 rss_kb_per_conn=$(awk -v a="$r0" -v b="$r1" \
      -v n="$held" 'BEGIN {printf "%.2f", (b - a) / n}')"
  else
    line=$("${pin_client[@]}" "$wsload" "${args[@]}" --port "$srv_port" \
             2>>"$out/logs/wsload.log") || run_rc=$?
  fi
  c1=$(proc_ticks "$srv_pid"); b1=$(sys_busy); t1=$(date +%s%N)
  if [ "$sc" = zfanout ]; then # deflate calls per compressed broadcast
    local m
    m=$(curl -s "http://127.0.0.1:$srv_port/metrics" || true)
    extra+=" z_bcast=$(echo "$m" | awk '/^websockd_broadcast_compressed_total / {print $2}')"
    extra+=" z_deflates=$(echo "$m" | awk '/^websockd_broadcast_deflates_total / {print $2}')"
    extra+=" z_sends=$(echo "$m" | awk '/^websockd_broadcast_compressed_sends_total / {print $2}')"
  fi
  if [ -n "$prof" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
  fi
  stop_server
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
  # Everything the machine did meanwhile but the server and the client.
  cl=$(echo "$line" | sed -n 's/.*client_total_cpu_s=\([0-9.]*\).*/\1/p')
  noise=$(others_pct "$b0" "$b1" $((c1 - c0)) "$wall" "${cl:-0}")
  extra+=" server_cpu_s=$(ticks_s "$c0" "$c1") wall_s=$wall others_cpu_pct=$noise"
  if [ "$run_rc" -ne 0 ] || [ -z "$line" ]; then
    line="${line:-mode=$sc} failed=1"
    [ "$run_rc" -ne 0 ] || run_rc=1
  fi
  result="round=$round scenario=$sc server=$name $line $extra"
}

# measure_turns ROUND SCENARIO: echo64i, echo64 with every server running at
# once and wsload driving them in turn (wsload echo --ports, in slices of
# half a second, the order rotated every pass; see run_echo_turns in
# wsload.c), so that each meets the machine's phases as the others do. One
# line per server in `result`; server CPU per server, as in measure.
measure_turns() {
  local round=$1 sc=$2 i n k name args ports="" out_l t0 t1 b0 b1 wall cl sum
  local names=() c0=() c1=() line lines=""
  run_rc=0
  wait_quiet
  cur_sc=$sc
  turn_pids=() turn_ports=()
  n=${#servers[@]}
  for i in $(seq 0 $((n - 1))); do
    name=${servers[$(((i + round - 1) % n))]}
    applies "$sc" "$name" || continue
    start_server "$name" 0
    names+=("$name"); turn_pids+=("$srv_pid"); turn_ports+=("$srv_port")
    srv_pid=""
    ports+=${ports:+,}$srv_port
  done
  read -r -a args <<<"$(args_for "$sc")"
  for k in "${!turn_pids[@]}"; do c0[k]=$(proc_ticks "${turn_pids[k]}"); done
  b0=$(sys_busy); t0=$(date +%s%N)
  out_l=$("${pin_client[@]}" "$wsload" "${args[@]}" --ports "$ports" \
            2>>"$out/logs/wsload.log") || run_rc=$?
  for k in "${!turn_pids[@]}"; do c1[k]=$(proc_ticks "${turn_pids[k]}"); done
  b1=$(sys_busy); t1=$(date +%s%N)
  for k in "${!turn_pids[@]}"; do stop_pid "${turn_pids[k]}"; done
  sum=0
  for k in "${!turn_pids[@]}"; do sum=$((sum + c1[k] - c0[k])); done
  turn_pids=()
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
  cl=$(echo "$out_l" | sed -n '1s/.*client_total_cpu_s=\([0-9.]*\).*/\1/p')
  noise=$(others_pct "$b0" "$b1" "$sum" "$wall" "${cl:-0}")
  for k in "${!names[@]}"; do
    line=$(echo "$out_l" | grep " port=${turn_ports[k]} " || true)
    if [ "$run_rc" -ne 0 ] || [ -z "$line" ]; then
      line="${line:-mode=$sc} failed=1"
      [ "$run_rc" -ne 0 ] || run_rc=1
    fi
    lines+=${lines:+$'\n'}"round=$round scenario=$sc server=${names[k]} $line"
    lines+=" server_cpu_s=$(ticks_s "${c0[k]}" "${c1[k]}") wall_s=$wall"
    lines+=" others_cpu_pct=$noise"
  done
  result=$lines
}

# run_one ROUND SCENARIO SERVER: measures, again if others were busy.
run_one() {
  local round=$1 sc=$2 name=$3 try
  for try in 1 2 3; do
    measure "$round" "$sc" "$name"
    [ "$run_rc" -ne 0 ] && break
    [ "$short" = 1 ] || [ "$noise" -le "${NOISE_MAX:-25}" ] && break
    echo "$result" >>"$out/noisy.txt"
    [ "$try" = 3 ] || say "round $round $sc $name: others used $noise % of a core; again"
  done
  echo "$result" >>"$out/raw.txt"
  if [ "$run_rc" -ne 0 ]; then
    say "FAILED: round $round $sc on $name (exit $run_rc): $result (see $out/logs)"
    failures=$((failures + 1))
  else
    say "round $round/$rounds $sc $name: $(echo "$result" | cut -d' ' -f4- | cut -c1-140)"
  fi
}

# ---- the table -------------------------------------------------------------------
# print_table DIR: the Markdown table of DIR/raw.txt (medians, ratios).
print_table() {
  local dir=$1
  # shellcheck disable=SC1091
  . "$dir/meta.sh"
  echo "websockd load benchmark, $date, $rounds round(s)$([ "$short" = 1 ] && echo ', SHORT mode: the numbers mean nothing')"
  echo "machine: $machine"
  echo "wsload on core 0; the servers on core 1, but websockd ×2 ($workers2 workers) unpinned"
  echo
  awk -v servers="$servers" '
    function median(key,   n, i, j, t, a) {
      n = split(vals[key], a, " ")
      if (n == 0) return ""
      for (i = 2; i <= n; i++) {
        t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
      }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function fmt(v) {
      if (v == "") return "–"
      v += 0
      if (v >= 100) return sprintf("%.0f", v)
      if (v >= 10) return sprintf("%.1f", v)
      return sprintf("%.2f", v)
    }
    function ratio(a, b) {
      return (a == "" || b == "" || b + 0 == 0) ? "–" : sprintf("%.2f", a / b)
    }
    function label(s) {
      if (s == "websockd-1w") return "websockd ×1"
      if (s == "websockd-2w") return "websockd ×2"
      return s
    }
    function row(sc, key, title, metric,   line, i, w1, m) {
      if (!(sc in seen)) return # not measured in this run
      line = "| " title " | " metric " |"
      w1 = median(sc SUBSEP key SUBSEP "websockd-1w")
      for (i = 1; i <= ns; i++) line = line " " fmt(median(sc SUBSEP key SUBSEP sv[i])) " |"
      for (i = 1; i <= ns; i++) if (sv[i] !~ /^websockd/) {
        m = median(sc SUBSEP key SUBSEP sv[i])
        line = line " " (key ~ /client|window|others/ ? "" : ratio(w1, m)) " |"
      }
      print line
    }
    {
      delete kv
      for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
      if (kv["failed"] == 1) next
      seen[kv["scenario"]] = 1; seen["all"] = 1
      if (kv["rate"] != "" && kv["mode"] == "echo") rate = kv["rate"]
      if (kv["total_msgs"] > 0) kv["cpu_s_per_m"] = kv["server_cpu_s"] / kv["total_msgs"] * 1e6
      if (kv["mode"] == "connect" && kv["done"] > 0) kv["cpu_us_per_hs"] = kv["server_cpu_s"] / kv["done"] * 1e6
      if (kv["z_bcast"] > 0) kv["z_deflates_per_bcast"] = kv["z_deflates"] / kv["z_bcast"]
      if (kv["total_msgs"] > 0 && kv["size"] > 0)
        kv["cpu_ms_per_mb"] = kv["server_cpu_s"] * 1e3 / (kv["total_msgs"] * kv["size"] / 1e6)
      for (k in kv) {
        vals[kv["scenario"] SUBSEP k SUBSEP kv["server"]] = vals[kv["scenario"] SUBSEP k SUBSEP kv["server"]] " " kv[k]
        vals["all" SUBSEP k SUBSEP kv["server"]] = vals["all" SUBSEP k SUBSEP kv["server"]] " " kv[k]
      }
    }
    END {
      ns = split(servers, sv, " ")
      hdr = "| scenario | metric |"; sep = "| --- | --- |"
      for (i = 1; i <= ns; i++) { hdr = hdr " " label(sv[i]) " |"; sep = sep " ---: |" }
      for (i = 1; i <= ns; i++) if (sv[i] !~ /^websockd/) { hdr = hdr " ×1 ÷ " label(sv[i]) " |"; sep = sep " ---: |" }
      print hdr; print sep
      row("echo64", "msgs_per_s", "echo 64 B text, 100 conns, depth 1", "msgs/s ↑")
      row("echo64", "p50_us", "", "latency p50 µs ↓")
      row("echo64", "p99_us", "", "latency p99 µs ↓")
      row("echo64", "p999_us", "", "latency p99.9 µs ↓")
      row("echo64", "cpu_s_per_m", "", "server CPU s per M msgs ↓")
      row("echo64", "client_cpu_pct", "", "client CPU %")
      row("echo64i", "msgs_per_s", "the same, the servers in turns of 0.5 s", "msgs/s ↑")
      row("echo64i", "p50_us", "", "latency p50 µs ↓")
      row("echo64i", "p99_us", "", "latency p99 µs ↓")
      row("echo64i", "p999_us", "", "latency p99.9 µs ↓")
      row("echo64i", "cpu_s_per_m", "", "server CPU s per M msgs ↓")
      row("echo64r", "p50_us", "echo 64 B text, 100 conns, " rate " msgs/s offered (open loop)", "latency p50 µs ↓")
      row("echo64r", "p99_us", "", "latency p99 µs ↓")
      row("echo64r", "p999_us", "", "latency p99.9 µs ↓")
      row("echo64r", "msgs_per_s", "", "msgs/s echoed")
      row("echo64r", "skipped", "", "messages skipped (connection at 64 in flight)")
      row("echo64r", "cpu_s_per_m", "", "server CPU s per M msgs ↓")
      row("echo64r", "client_cpu_pct", "", "client CPU %")
      row("echo64d16", "msgs_per_s", "echo 64 B text, 100 conns, depth 16", "msgs/s ↑")
      row("echo64d16", "p50_us", "", "latency p50 µs ↓")
      row("echo64d16", "p99_us", "", "latency p99 µs ↓")
      row("echo64d16", "p999_us", "", "latency p99.9 µs ↓")
      row("echo64d16", "cpu_s_per_m", "", "server CPU s per M msgs ↓")
      row("echo64d16", "client_cpu_pct", "", "client CPU %")
      row("echo16k", "msgs_per_s", "echo 16 KiB binary, 100 conns, depth 1", "msgs/s ↑")
      row("echo16k", "mb_per_s", "", "MB/s (payload, one way) ↑")
      row("echo16k", "p50_us", "", "latency p50 µs ↓")
      row("echo16k", "p99_us", "", "latency p99 µs ↓")
      row("echo16k", "p999_us", "", "latency p99.9 µs ↓")
      row("echo16k", "cpu_s_per_m", "", "server CPU s per M msgs ↓")
      row("echo16k", "client_cpu_pct", "", "client CPU %")
      row("echo1m", "msgs_per_s", "echo 1 MiB binary, 8 conns, depth 1", "msgs/s ↑")
      row("echo1m", "mb_per_s", "", "MB/s (payload, one way) ↑")
      row("echo1m", "p50_us", "", "latency p50 µs ↓")
      row("echo1m", "p99_us", "", "latency p99 µs ↓")
      row("echo1m", "cpu_ms_per_mb", "", "server CPU ms per MB ↓")
      row("echo1m", "client_cpu_pct", "", "client CPU %")
      row("echo16m", "msgs_per_s", "echo 16 MiB binary, 2 conns, depth 1", "msgs/s ↑")
      row("echo16m", "mb_per_s", "", "MB/s (payload, one way) ↑")
      row("echo16m", "p50_us", "", "latency p50 µs ↓")
      row("echo16m", "p99_us", "", "latency p99 µs ↓")
      row("echo16m", "cpu_ms_per_mb", "", "server CPU ms per MB ↓")
      row("echo16m", "client_cpu_pct", "", "client CPU %")
      row("connect", "handshakes_per_s", "connect, upgrade, close; 50 at a time", "handshakes/s ↑")
      row("connect", "p99_us", "", "p99 µs to the 101 ↓")
      row("connect", "cpu_us_per_hs", "", "server CPU µs per handshake ↓")
      row("connect", "client_cpu_pct", "", "client CPU %")
      row("connect_half", "handshakes_per_s", "the same, the server held to half a core", "handshakes/s ↑")
      row("connect_half", "p99_us", "", "p99 µs to the 101 ↓")
      row("connect_half", "cpu_us_per_hs", "", "server CPU µs per handshake ↓")
      row("connect_half", "client_cpu_pct", "", "client CPU %")
      row("idle", "rss_kb_per_conn", "idle connections", "server RSS KiB per conn ↓")
      row("idlemax", "open", "idle connections up to the fd limit", "connections held ↑")
      row("idlemax", "rss_kb_per_conn", "", "server RSS KiB per conn ↓")
      row("tls_connect", "handshakes_per_s", "TLS: connect (full handshake, ECDSA P-256), upgrade, close", "handshakes/s ↑")
      row("tls_connect", "p99_us", "", "p99 µs to the 101 ↓")
      row("tls_connect", "cpu_us_per_hs", "", "server CPU µs per handshake ↓")
      row("tls_connect", "client_cpu_pct", "", "client CPU %")
      row("tls_resume", "handshakes_per_s", "TLS: the same, resumed (session ticket)", "handshakes/s ↑")
      row("tls_resume", "resumed", "", "handshakes resumed")
      row("tls_resume", "cpu_us_per_hs", "", "server CPU µs per handshake ↓")
      row("tls_resume", "client_cpu_pct", "", "client CPU %")
      row("tls_echo64", "msgs_per_s", "TLS: echo 64 B text, 100 conns, depth 1", "msgs/s ↑")
      row("tls_echo64", "p99_us", "", "latency p99 µs ↓")
      row("tls_echo64", "cpu_s_per_m", "", "server CPU s per M msgs ↓")
      row("tls_echo64", "client_cpu_pct", "", "client CPU %")
      row("tls_echo16k", "msgs_per_s", "TLS: echo 16 KiB binary, 100 conns, depth 1", "msgs/s ↑")
      row("tls_echo16k", "cpu_s_per_m", "", "server CPU s per M msgs ↓")
      row("tls_echo16k", "client_cpu_pct", "", "client CPU %")
      row("tls_idle", "rss_kb_per_conn", "TLS: idle connections", "server RSS KiB per conn ↓")
      row("fanout", "all_p50_us", "fanout: 1 publisher, 1 room", "µs until all have it, p50 ↓")
      row("fanout", "all_p99_us", "", "µs until all have it, p99 ↓")
      row("fanout", "first_p50_us", "", "µs until the first has it, p50 ↓")
      row("fanout", "window_cpu_pct", "", "client CPU % while delivering")
      row("z256", "cpu_s_per_m", "deflate echo, JSON 256 B, 100 conns (websockd: shared)", "server CPU µs per msg ↓")
      row("z256", "cpu_ms_per_mb", "", "server CPU ms per MB ↓")
      row("z256", "z_in_ratio", "", "compressed ÷ original (server → client)")
      row("z256", "msgs_per_s", "", "msgs/s ↑")
      row("z256d", "cpu_s_per_m", "deflate echo, JSON 256 B (websockd: dedicated)", "server CPU µs per msg ↓")
      row("z256d", "z_in_ratio", "", "compressed ÷ original (server → client)")
      row("z4k", "cpu_s_per_m", "deflate echo, JSON 4 KiB, 100 conns (shared)", "server CPU µs per msg ↓")
      row("z4k", "cpu_ms_per_mb", "", "server CPU ms per MB ↓")
      row("z4k", "z_in_ratio", "", "compressed ÷ original (server → client)")
      row("z4kd", "cpu_s_per_m", "deflate echo, JSON 4 KiB (dedicated)", "server CPU µs per msg ↓")
      row("z4kd", "z_in_ratio", "", "compressed ÷ original (server → client)")
      row("z64k", "cpu_s_per_m", "deflate echo, JSON 64 KiB, 20 conns (shared)", "server CPU µs per msg ↓")
      row("z64k", "cpu_ms_per_mb", "", "server CPU ms per MB ↓")
      row("z64k", "z_in_ratio", "", "compressed ÷ original (server → client)")
      row("z64kd", "cpu_s_per_m", "deflate echo, JSON 64 KiB (dedicated)", "server CPU µs per msg ↓")
      row("z64kd", "z_in_ratio", "", "compressed ÷ original (server → client)")
      row("zbin", "cpu_s_per_m", "deflate echo, random binary 4 KiB (shared)", "server CPU µs per msg ↓")
      row("zbin", "cpu_ms_per_mb", "", "server CPU ms per MB ↓")
      row("zbin", "z_in_share", "", "share of echoes sent compressed")
      row("zidle", "rss_kb_per_conn", "idle connections, deflate negotiated (shared)", "server RSS KiB per conn ↓")
      row("zfanout", "all_p50_us", "fanout with deflate (shared subscribers)", "µs until all have it, p50 ↓")
      row("zfanout", "z_deflates_per_bcast", "", "deflate calls per compressed broadcast")
      row("all", "others_cpu_pct", "every run", "others CPU % (noise)")
    }
  ' "$dir/raw.txt"
  echo
  [ "$short" = 1 ] ||
    echo "Medians of $rounds rounds. Ratios: websockd with 1 worker ÷ the peer (↑ rows: over 1 is better; ↓ rows: under 1)."
  echo "Idle: $idle_n connections, server RSS (VmRSS) after − before, ÷ $idle_n; up to the fd limit (websockd ×1 only): $idlemax_n asked for, the open-files limit being $fd_limit per process. Fanout: $fan_m subscribers, $fan_k publishes of 64 B$([ "$have_chat" = 1 ] || echo '; websockd: no chat plugin in this build, not measured')."
  grep -q 'scenario=connect_half ' "$dir/raw.txt" &&
    echo "Held to half a core (connect_half): the server's process in a CPU cgroup with a quota of 5 ms per 10 ms period, so that the server is the limit and not the client's core."
  echo "TLS: websockd ×1 and libwebsockets (its OpenSSL build) with the same ECDSA P-256 certificate, made per run; wsload --tls is OpenSSL too (TLS 1.3, X25519, the certificate not verified); resumed: each handshake resumes the newest session ticket."
  echo "Server CPU: /proc/PID/stat utime+stime around each run ÷ every message echoed (warm-up included); for 1 and 16 MiB, ÷ the MB echoed. Client CPU: wsload's getrusage over the measured window (100 % = its core saturated). Others: the machine's busy time less server and client, in % of a core; runs over ${NOISE_MAX:-25} % are run again (twice at most): $noisy_kept noisy run(s) kept."
}

# ---- main --------------------------------------------------------------------------
main() {
  cd "$(dirname "$0")/.."
  root=$PWD
  short=0 rounds=${ROUNDS:-3} build_dir="" perf=0 report="" only="" publish=""
  baseline="" only_servers=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --short) short=1 ;;
      --rounds) rounds=$2; shift ;;
      --build-dir) build_dir=$2; shift ;;
      --perf) perf=1 ;;
      --publish) publish=1 ;;
      --baseline) baseline=$2; shift ;;
      --servers) only_servers=$2; shift ;;
      --no-publish) publish=0 ;;
      --scenarios) only=$2; shift ;;
      --report) report=$2; shift ;;
      -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
      *) say "unknown argument $1 (see --help)"; return 2 ;;
    esac
    shift
  done
  if [ -n "$report" ]; then
    print_table "$report"
    return 0
  fi
  [ "$short" = 1 ] && rounds=1

  [ -n "$build_dir" ] || install_and_build
  build_dir=$(cd "$build_dir" && pwd)
  websockd=$build_dir/host/websockd
  wsload=$build_dir/bench/wsload
  peer_raw=$build_dir/bench/peer_raw
  peer_lws=$build_dir/bench/peer_lws
  for f in "$websockd" "$wsload" "$peer_raw" "$build_dir/plugins.d/echo.so"; do
    [ -e "$f" ] || { say "missing $f (build it first)"; return 1; }
  done

  out=$build_dir/bench-results
  rm -rf "$out"
  mkdir -p "$out/plugins.d" "$out/logs"
  : >"$out/raw.txt"
  # Open files up to the hard limit (10,000 idle connections, 10,000
  # subscribers) for the servers and the load generator alike.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  clk_tck=$(getconf CLK_TCK)
  if [ "$(nproc)" -ge 2 ]; then
    pin_client=(taskset -c 0)
    pin_server=(taskset -c 1)
  else
    pin_client=()
    pin_server=()
    say "one core: nothing pinned, client and server share it"
  fi
  write_routes
  # TLS: one ECDSA P-256 certificate for websockd and libwebsockets alike
  mkdir -p "$out/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$out/tls/server.key" -out "$out/tls/server.pem" -days 30 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    2>>"$out/logs/openssl.log"
  servers=(websockd-1w websockd-2w)
  if [ -x "$peer_lws" ]; then servers+=(lws); else say "no peer_lws (libwebsockets-dev missing): skipped"; fi
  servers+=(raw)
  if [ -n "$baseline" ]; then
    base_websockd=$(cd "$baseline" && pwd)/host/websockd
    [ -x "$base_websockd" ] || { say "no $base_websockd"; return 1; }
    servers+=(base)
  fi
  if [ -n "$only_servers" ]; then
    local s keep=()
    for s in "${servers[@]}"; do
      [[ " $only_servers " == *" $s "* ]] && keep+=("$s")
    done
    servers=("${keep[@]}")
  fi
  set_scenarios
  failures=0 srv_pid="" load_pid="" perf_pid="" cg_dir="" turn_pids=()
  trap cleanup EXIT
  [[ " ${scenarios[*]} " == *" connect_half "* ]] && cg_init

  say "servers: ${servers[*]}; scenarios: ${scenarios[*]}; $rounds round(s)"
  local start round sc i n name
  start=$(date +%s)
  n=${#servers[@]}
  for round in $(seq "$rounds"); do
    for sc in "${scenarios[@]}"; do
      if [ "$sc" = echo64i ]; then # every server at once, in turns
        run_one "$round" "$sc" all
        continue
      fi
      for i in $(seq 0 $((n - 1))); do
        name=${servers[$(((i + round - 1) % n))]} # each round starts with the next
        if applies "$sc" "$name"; then
          run_one "$round" "$sc" "$name"
        fi
      done
    done
  done

  if [ "$perf" = 1 ] && [ -e "$out/perf-websockd-1w-echo64d16.data" ]; then
    perf report -i "$out/perf-websockd-1w-echo64d16.data" --no-children --sort dso,sym \
      --stdio -g none 2>/dev/null | grep '%' | grep -v '^#' | head -40 \
      >"$out/perf-websockd-1w-echo64d16.top.txt" || true
  fi
  # A sanitizer build (the test suite's) must have reported nothing.
  local reports
  reports=$(grep -l -E "ERROR: (Address|Leak|Thread)Sanitizer|runtime error:" \
              "$out"/logs/* 2>/dev/null || true)
  if [ -n "$reports" ]; then
    say "sanitizer reports in: $(echo "$reports" | tr '\n' ' ')"
    failures=$((failures + 1))
  fi

  local noisy_kept
  noisy_kept=$(awk -v m="${NOISE_MAX:-25}" '{for (i = 1; i <= NF; i++)
    if ($i ~ /^others_cpu_pct=/) { split($i, p, "="); if (p[2] + 0 > m) k++ }} END {print k + 0}' \
    "$out/raw.txt")
  [ "$short" = 1 ] && noisy_kept=0
  local cpu_model
  cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  cat >"$out/meta.sh" <<EOF
date='$(date -u +%Y-%m-%d)'
rounds=$rounds
short=$short
servers='${servers[*]}'
workers2=$(nproc)
machine='$(nproc) × ${cpu_model:-?}$(grep -qw hypervisor /proc/cpuinfo && echo ' (a virtual machine)'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo ?)'
idle_n=$idle_n
idlemax_n=$idlemax_n
fd_limit=$(ulimit -n)
fan_m=$fan_m
fan_k=$fan_k
have_chat=$have_chat
noisy_kept=$noisy_kept
NOISE_MAX=${NOISE_MAX:-25}
EOF
  print_table "$out" | tee "$out/table.md"
  # The README's table and charts come from these results, never by hand.
  [ -n "$publish" ] || { [ "$short" = 0 ] && [ -z "$only" ] && publish=1 || publish=0; }
  if [ "$publish" = 1 ]; then
    /usr/bin/python3 bench/publish.py "$out" --readme README.md --charts docs/bench >&2
  elif [ "$short" = 0 ]; then
    /usr/bin/python3 bench/publish.py "$out" >&2
  fi
  say "raw results: $out/raw.txt; $(($(date +%s) - start)) s"
  if [ "$failures" -ne 0 ]; then
    say "$failures run(s) failed"
    return 1
  fi
}

main "$@"; exit $? # one line: editing this file during a run is then harmless
