# bench/lib.sh - what bench/bus.sh and bench/stalls.sh share (sourced, after
# they set `tmp` to a directory of their own):
#
#   pids     every process the script starts in the background goes here
#   cleanup  stops them by PID, waits for them, removes $tmp (on EXIT)
#   free_port  a loopback port nothing listens on now (the kernel's pick)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
