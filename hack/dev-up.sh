#!/usr/bin/env bash
# Starts approval-gate-dev in the background and waits until it is ready.
set -euo pipefail
dir="${1:-.dev}"
mkdir -p "$dir"
if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  echo "dev-up: already running (pid $(cat "$dir/pid")); run 'make dev-down' first" >&2
  exit 1
fi
rm -f "$dir/ready"
nohup target/debug/approval-gate-dev --dir "$dir" >"$dir/dev.log" 2>&1 </dev/null &
echo $! >"$dir/pid"
for _ in $(seq 1 600); do
  if [[ -f "$dir/ready" ]]; then
    cat "$dir/dev.log"
    exit 0
  fi
  if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "dev-up: the control plane failed to start:" >&2
    cat "$dir/dev.log" >&2
    exit 1
  fi
  sleep 0.2
done
echo "dev-up: not ready after 120s; see $dir/dev.log" >&2
exit 1
