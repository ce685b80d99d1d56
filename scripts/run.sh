#!/usr/bin/env bash
# Sets up, builds and runs websockd in the foreground on 127.0.0.1:8080 with
# the default plugins.d/ (echo at ws://127.0.0.1:8080/echo). Extra arguments
# go to websockd (say --listen '[::]:9000').
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSH_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
if [ $# -eq 0 ]; then
  set -- --listen 127.0.0.1:8080
fi
exec build/host/websockd --plugins build/plugins.d "$@"
