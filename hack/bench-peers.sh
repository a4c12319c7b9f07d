#!/usr/bin/env bash
# Compares the webhook with peer admission controllers on this machine, with
# everything built locally (see BENCHMARKS.md, "Peers"): OPA Gatekeeper and
# Kyverno, built from their Go modules pinned in hack/tools/gatekeeper and
# hack/tools/kyverno, and approval-gate itself.
# Not part of `make test`.
#
#   make bench-peers                      build what is missing, then measure (about 2 minutes after the builds)
#   hack/bench-peers.sh --peers gatekeeper,approval-gate   only these (default: gatekeeper,kyverno,approval-gate)
#   hack/bench-peers.sh                   the same
#   hack/bench-peers.sh --build-only      build the peers only, then print their folder
#   hack/bench-peers.sh --dir             print the peers' folder only (no build)
#   hack/bench-peers.sh --patches 200     extra flags go to the bench driver (benches/peers.rs)
#
# The first builds take about 2 (Gatekeeper) and 9 (Kyverno) minutes on 2
# cores; the binaries are cached outside the repository, next to the control
# plane's, and skipped when already built. etcd and kube-apiserver come from
# hack/build-tools.sh, oha from the same cache hack/bench.sh installs it into
# (OHA=/path/to/oha uses another one).
#
# What the driver does: a local etcd + kube-apiserver (crates/testenv), then
#  1. direct over TLS: the 8,888-byte Deployment UPDATE AdmissionReview of
#     benches/webhook_load.rs, POSTed with oha (32 connections, 10 s after a
#     2 s warm-up, keep-alive) to each webhook's validating endpoint; server
#     CPU per request from /proc/<pid>/stat;
#  2. end to end: sequential PATCHes of a Deployment through the
#     kube-apiserver with no webhook, then with each webhook registered, and
#     the latency each one adds.
# All traffic goes to 127.0.0.1 (only Gatekeeper's Prometheus exporter, which
# has no address flag, listens on all interfaces, on a free port), every
# process is a child of the driver and is stopped when it exits, and every
# run is bounded in time.
set -euo pipefail

GATEKEEPER_VERSION=v3.23.1
KYVERNO_VERSION=v1.19.1
OHA_VERSION=1.16.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${APPROVAL_GATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/approval-gate}"
peerdir="$cache/peers"

if [[ "${1:-}" == "--dir" ]]; then
  echo "$peerdir"
  exit 0
fi

log() { echo "bench-peers: $*" >&2; }

# build NAME MODULE_DIR PACKAGE LDFLAGS
build() {
  local name="$1" moddir="$2" pkg="$3" ldflags="$4"
  if [[ -x "$peerdir/$name" ]]; then
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    log "Go is needed to build $name"
    exit 1
  fi
  log "building $name from $pkg (first run only; several minutes)"
  local tmp
  tmp="$(mktemp "$peerdir/.$name.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the file to remove if the build fails
  trap "rm -f '$tmp'" EXIT
  (
    cd "$root/hack/tools/$moddir"
    GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
      go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg"
  )
  mv -f "$tmp" "$peerdir/$name"
  trap - EXIT
  log "built $peerdir/$name"
}

mkdir -p "$peerdir"
build "gatekeeper-$GATEKEEPER_VERSION" gatekeeper github.com/open-policy-agent/gatekeeper/v3 \
  "-X github.com/open-policy-agent/gatekeeper/v3/pkg/version.Version=$GATEKEEPER_VERSION"
build "kyverno-$KYVERNO_VERSION" kyverno github.com/kyverno/kyverno/cmd/kyverno \
  "-X github.com/kyverno/kyverno/pkg/version.BuildVersion=$KYVERNO_VERSION"
if [[ "${1:-}" == "--build-only" ]]; then
  echo "$peerdir"
  exit 0
fi

oha="${OHA:-$cache/oha/bin/oha}"
if [[ -z "${OHA:-}" ]] && ! "$oha" --version 2>/dev/null | grep -qF "$OHA_VERSION"; then
  log "installing oha $OHA_VERSION into $cache/oha (first run only)"
  cargo install oha --locked --version "$OHA_VERSION" --root "$cache/oha"
fi
log "using $("$oha" --version) from $oha"

bindir="$("$root/hack/build-tools.sh")"
# The peers' CRDs come from their pinned modules' source.
module_dir() {
  (cd "$root/hack/tools/$1" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' "$2")
}
gatekeeper_source="$(module_dir gatekeeper github.com/open-policy-agent/gatekeeper/v3)"
kyverno_source="$(module_dir kyverno github.com/kyverno/kyverno)"
cd "$root"
mkdir -p target/bench
# The release binary is what the driver registers as approval-gate's webhook;
# approval-gate's direct server is benches/webhook_load.rs's (`serve --kind webhook`).
cargo build --release --bin approval-gate
webhook_load="$(cargo bench --bench webhook_load --no-run --message-format=json \
  | sed -n 's/.*"executable":"\([^"]*\/webhook_load-[^"]*\)".*/\1/p' | tail -n 1)"
if [[ ! -x "$webhook_load" ]]; then
  log "could not find the webhook_load bench binary"
  exit 1
fi
APPROVAL_GATE_BIN_DIR="$bindir" cargo bench --bench peers -- \
  --oha "$oha" \
  --gatekeeper "$peerdir/gatekeeper-$GATEKEEPER_VERSION" \
  --gatekeeper-source "$gatekeeper_source" \
  --kyverno "$peerdir/kyverno-$KYVERNO_VERSION" \
  --kyverno-source "$kyverno_source" \
  --webhook-load "$webhook_load" \
  --json-out target/bench/peers.json \
  --markdown-out target/bench/peers.md \
  "$@"
log "figures written to target/bench/peers.md and target/bench/peers.json"
