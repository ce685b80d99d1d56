#!/usr/bin/env bash
# Sets up, builds and runs every test: the whole suite under AddressSanitizer
# and UBSan (Debug), after a warnings-as-errors release build; then the
# threaded code (slots, topics, the bus and its loop thread, and the daemon
# under the messaging tests, across hosts and with wss:// clients) under
# ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
jobs=$(nproc)
# build/ may have been configured by scripts/run.sh (without the tests):
# say every setting this command relies on.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSH_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
# The instruction budget of the hot path (bench/budget.json) is measured on
# this non-sanitized build, under callgrind: it cannot run under ASan/TSan.
ctest --test-dir build --output-on-failure --timeout 300 -R '^perf_budget$'
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWSH_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
# npm packages for the tests, in tests/integration/node_modules (one npm
# command for all of them: a --no-save install removes what it was not
# given): playwright-core, which drives Debian's chromium for the browser
# tests (integ_console) and must not download a browser of its own; and
# the package ws: its perMessageDeflate is the Node client of integ_deflate,
# and integ_node uses it where Node has no WebSocket client of its own.
npm_pkgs=(playwright-core@1 ws@8)
for p in "${npm_pkgs[@]}"; do
  if [ ! -d "tests/integration/node_modules/${p%@*}" ]; then
    (cd tests/integration && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      PUPPETEER_SKIP_DOWNLOAD=1 \
      npm install --no-save --no-package-lock "${npm_pkgs[@]}")
    break
  fi
done
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 300

cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DWSH_TSAN=ON >/dev/null
cmake --build build-tsan -j"$jobs"
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
ctest --test-dir build-tsan --output-on-failure --timeout 300 \
  -R '^(unit_slots|unit_topic|unit_bus|unit_tls|unit_hotlock|integ_e2e|integ_lifecycle|integ_bus|integ_handoff|integ_additions|integ_tls)$'
