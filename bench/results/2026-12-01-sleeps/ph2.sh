#!/bin/bash
# ph2.sh ROUNDS OUT: main, variant (SPIN env), lws, raw in turns
rounds=$1 out=$2
vcs() { cat /proc/$1/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/ {s+=$2} END {print s+0}'; }
tks() { awk '{print $14+$15}' /proc/$1/stat; }
taskset -c 1 ${A:-/tmp/cl/wtb/build/host/websockd} --config a.ini > a.log 2>&1 & pa=$!
taskset -c 1 ${B:-/work/main/build-bench/host/websockd} --config b.ini > b.log 2>&1 & pb=$!
taskset -c 1 /work/main/build-bench/bench/peer_lws 24003 > lws.log 2>&1 & pl=$!
taskset -c 1 /work/main/build-bench/bench/peer_raw 24004 > raw.log 2>&1 & pr=$!
sleep 1
pids=($pa $pb $pl $pr); names=(old new lws raw); ports=(24001 24002 24003 24004)
for r in $(seq $rounds); do
  for k in 0 1 2 3; do v0[k]=$(vcs ${pids[k]}); c0[k]=$(tks ${pids[k]}); done
  o=$(taskset -c 0 /work/main/build-bench/bench/wsload echo -c 100 -p 1 -s 64 -d ${D:-2} --warmup 0.3 --ports 24001,24002,24003,24004 2>>err.log)
  for k in 0 1 2 3; do v1[k]=$(vcs ${pids[k]}); c1[k]=$(tks ${pids[k]}); done
  for k in 0 1 2 3; do
    echo "$o" | grep " port=${ports[k]} " | awk -v r=$r -v n=${names[k]} -v sv=$((v1[k]-v0[k])) -v cpu=$((c1[k]-c0[k])) '{for(i=1;i<=NF;i++){split($i,p,"="); kv[p[1]]=p[2]}; printf "%d %-4s %6d p50 %6.0f p99 %6.0f cli%% %5.1f waits/kmsg %6.1f srv_sleeps/kmsg %6.1f srv_cpu_us/msg %5.2f\n", r, n, kv["msgs_per_s"], kv["p50_us"], kv["p99_us"], kv["client_cpu_pct"], kv["client_waits"]*1000/kv["msgs"], sv*1000/kv["total_msgs"], cpu*10000/kv["total_msgs"]}'
  done >> $out
done
kill $pa $pb $pl $pr; wait 2>/dev/null
