#!/usr/bin/env bash
# Fuzzes each target for SECONDS: fuzz/run.sh [-j N] SECONDS [target...]
# (targets: frame utf8 handshake route bus_msg proxyproto negotiate deflate tls_hello conn_pmd; default all of them, N at a time,
# default 1). Builds the libFuzzer targets with clang in build-fuzz, then runs
# each on a scratch corpus (build-fuzz/corpus/NAME, where new inputs go) that
# also reads the seeds in fuzz/corpus/NAME, which it never writes. Crashing
# inputs land in build-fuzz/artifacts/NAME/, logs in build-fuzz/logs/.
# Prints per target: runs, coverage (cov/ft), crashes. Exits 1 if any target
# crashed. Replay an input: build-fuzz/fuzz/fuzz_NAME FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

parallel=1
if [ "${1:-}" = "-j" ]; then
  parallel=$2
  shift 2
fi
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [-j N] SECONDS [frame|utf8|handshake|route|bus_msg|proxyproto|negotiate|deflate|tls_hello|conn_pmd]..." >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame utf8 handshake route bus_msg proxyproto negotiate deflate tls_hello conn_pmd)

# Per-target options: inputs long enough for a 431 (8 KiB head) and for a
# few frames with 16-bit lengths; a dictionary where one helps.
declare -A opts=(
  [frame]="-max_len=8192"
  [utf8]="-max_len=4096"
  [handshake]="-max_len=10000 -dict=fuzz/dict/handshake.dict"
  [route]="-max_len=4096 -dict=fuzz/dict/route.dict"
  [bus_msg]="-max_len=4096"
  [tls_hello]="-max_len=4096"
  [proxyproto]="-max_len=1400"
  [negotiate]="-max_len=1024 -dict=fuzz/dict/negotiate.dict"
  [deflate]="-max_len=16384"
  [conn_pmd]="-max_len=16384 -dict=fuzz/dict/negotiate.dict"
)
for t in "${targets[@]}"; do
  [ -n "${opts[$t]:-}" ] || { echo "$0: unknown target $t" >&2; exit 2; }
done

# clang and its fuzzer runtime (Debian: clang, libclang-rt-NN-dev).
have_fuzzer() {
  command -v clang >/dev/null &&
    echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) {return 0;}' |
    clang -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null
}
if ! have_fuzzer; then
  rt="libclang-rt-$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)-dev"
  [ "$rt" != "libclang-rt--dev" ] || rt=libclang-rt-dev
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y clang "$rt" >/dev/null
  else
    echo "$0: needs clang with libFuzzer: apt-get install clang $rt" >&2
    exit 1
  fi
fi

build=build-fuzz
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWSH_TESTS=OFF -DWSH_FUZZ=ON >/dev/null
[ -d "$build/fuzz" ] || {
  echo "$0: fuzz/ is not in the build: the top-level CMakeLists.txt needs" \
    "'if(WSH_TESTS OR WSH_FUZZ) add_subdirectory(fuzz) endif()'" >&2
  exit 1
}
cmake --build "$build" -j"$(nproc)" \
  --target "${targets[@]/#/fuzz_}" >/dev/null
mkdir -p "$build/logs"

run_one() {
  local t=$1 work=$build/corpus/$1 art=$build/artifacts/$1/
  mkdir -p "$work" "$art"
  # shellcheck disable=SC2086 # opts holds several flags
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$art" ${opts[$t]} \
    "$work" "fuzz/corpus/$t" >"$build/logs/$t.log" 2>&1 || true
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

status=0
printf '%-10s %12s %8s %8s %8s\n' target runs cov ft crashes
for t in "${targets[@]}"; do
  log=$build/logs/$t.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(grep -c 'Test unit written to' "$log" || true)
  [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  printf '%-10s %12s %8s %8s %8s\n' "$t" "${runs:-?}" "${cov:-?}" \
    "${ft:-?}" "$crashes"
  if [ "$crashes" != 0 ] || ! grep -q '^Done ' "$log"; then
    status=1
    grep -E 'Test unit written to|check failed|ERROR: ' "$log" | sed 's/^/  /'
  fi
done
exit $status
