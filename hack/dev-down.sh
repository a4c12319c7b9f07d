#!/usr/bin/env bash
# Stops what hack/dev-up.sh started and waits until it has exited.
set -euo pipefail
dir="${1:-.dev}"
if [[ ! -f "$dir/pid" ]]; then
  echo "dev-down: nothing running"
  exit 0
fi
pid="$(cat "$dir/pid")"
if kill -TERM "$pid" 2>/dev/null; then
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$dir/pid" "$dir/ready"
echo "dev-down: stopped"
