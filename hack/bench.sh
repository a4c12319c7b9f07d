#!/usr/bin/env bash
# Load-tests the webhook over TLS with oha, next to a bare always-allow TLS
# server (the ceiling) and one that only parses the review, at 100, 10,000
# and 100,000 ApprovalRequests in the index. See BENCHMARKS.md for the method and the last figures.
#
#   hack/bench.sh                     everything (about 2 minutes after the build)
#   hack/bench.sh --sizes 100 --seconds 3   extra flags go to the bench driver
#   hack/bench.sh --instructions --sizes 100,10000   instructions per admission
#                                     with callgrind (valgrind) instead of load
#
# oha is installed from crates.io on first use, into a cache outside the
# repository (a few minutes on 2 cores); OHA=/path/to/oha uses another one.
# All traffic goes to 127.0.0.1, and every run is bounded in time.
set -euo pipefail

OHA_VERSION=1.16.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${APPROVAL_GATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/approval-gate}/oha"

log() { echo "bench: $*" >&2; }

oha="${OHA:-$cache/bin/oha}"
if [[ -z "${OHA:-}" ]] && ! "$oha" --version 2>/dev/null | grep -qF "$OHA_VERSION"; then
  log "installing oha $OHA_VERSION into $cache (first run only)"
  cargo install oha --locked --version "$OHA_VERSION" --root "$cache"
fi
log "using $("$oha" --version) from $oha"

# --instructions runs callgrind: Debian's valgrind, installed when missing.
if [[ " $* " == *" --instructions "* ]] && ! command -v valgrind >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    log "--instructions needs valgrind; run as root or: sudo apt-get install valgrind"
    exit 1
  fi
  log "installing valgrind"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

cd "$root"
mkdir -p target/bench
# cargo bench builds with the release-based bench profile and passes --bench.
cargo bench --bench webhook_load -- --oha "$oha" --json-out target/bench/webhook_load.json "$@"
log "JSON summary written to target/bench/webhook_load.json"
