#!/bin/bash
# ph.sh ROUNDS OUT: main websockd, lws, raw in turns; client waits/sleeps per msg and server sleeps per msg
rounds=$1 out=$2
vcs() { cat /proc/$1/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/ {s+=$2} END {print s+0}'; }
taskset -c 1 /work/main/build-bench/host/websockd --config a.ini > a.log 2>&1 & pa=$!
taskset -c 1 /work/main/build-bench/bench/peer_lws 24003 > lws.log 2>&1 & pl=$!
taskset -c 1 /work/main/build-bench/bench/peer_raw 24004 > raw.log 2>&1 & pr=$!
sleep 1
for r in $(seq $rounds); do
  a0=$(vcs $pa); l0=$(vcs $pl); r0=$(vcs $pr)
  o=$(taskset -c 0 /work/main/build-bench/bench/wsload echo -c 100 -p 1 -s 64 -d ${D:-2} --warmup 0.3 --ports 24001,24003,24004 2>>err.log)
  a1=$(vcs $pa); l1=$(vcs $pl); r1=$(vcs $pr)
  echo "$o" | awk -v r=$r -v sa=$((a1-a0)) -v sl=$((l1-l0)) -v sr=$((r1-r0)) '{for(i=1;i<=NF;i++){split($i,p,"="); kv[p[1]]=p[2]}; n=(kv["port"]==24001?"main":kv["port"]==24003?"lws":"raw"); sv=(n=="main"?sa:n=="lws"?sl:sr); printf "%d %-4s %6d p50 %6.0f p99 %6.0f cli%% %5.1f waits/kmsg %6.1f cli_sleeps/kmsg %6.1f srv_sleeps/kmsg %6.1f\n", r, n, kv["msgs_per_s"], kv["p50_us"], kv["p99_us"], kv["client_cpu_pct"], kv["client_waits"]*1000/kv["msgs"], kv["client_sleeps"]*1000/kv["msgs"], sv*1000/kv["total_msgs"]}' >> $out
done
kill $pa $pl $pr; wait 2>/dev/null
