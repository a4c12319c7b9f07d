#!/usr/bin/env bash
# Installs what the real node and the daemonless image need, when missing:
# containerd, runc and the CNI plugins (Debian's packages), iproute2 for the
# node's bridge, musl-tools and the Rust musl target for the static binary,
# busybox-static for the demo's shell image, and Debian's chromium and
# chromium-driver for the console's browser tests. CI runs a fresh clone as
# root, so this runs there unattended; elsewhere it says what is missing.
#
#   hack/node-deps.sh          install whatever is missing
#   hack/node-deps.sh --check  exit 1 (and name them) if anything is missing
set -euo pipefail

log() { echo "node-deps: $*" >&2; }

# command -> Debian package
declare -A packages=(
  [containerd]=containerd
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [ip]=iproute2
  [musl-gcc]=musl-tools
  [/bin/busybox]=busybox-static
  [/usr/bin/chromium]=chromium
  [/usr/bin/chromedriver]=chromium-driver
)

missing=()
for probe in "${!packages[@]}"; do
  if [[ "$probe" == /* ]]; then
    [[ -x "$probe" ]] || missing+=("${packages[$probe]}")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("${packages[$probe]}")
  fi
done

musl_target=x86_64-unknown-linux-musl
has_musl_target() { rustup target list --installed 2>/dev/null | grep -qx "$musl_target"; }

if [[ "${1:-}" == "--check" ]]; then
  status=0
  if ((${#missing[@]})); then log "missing packages: ${missing[*]}"; status=1; fi
  if ! has_musl_target; then log "missing Rust target: $musl_target"; status=1; fi
  exit "$status"
fi

if ((${#missing[@]})); then
  if [[ "$(id -u)" != 0 ]]; then
    log "missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! has_musl_target; then
  log "adding the Rust target $musl_target"
  rustup target add "$musl_target" >/dev/null
fi
