#!/usr/bin/env bash
# Installs the local OpenID Connect provider (hack/oidc: panva's oidc-provider
# and hack/oidc/server.mjs) into a cache outside the repository, then prints
# the folder that holds server.mjs. Run it with `node <folder>/server.mjs`;
# server.mjs describes its environment (OIDC_ISSUER, OIDC_TLS_CERT,
# OIDC_TLS_KEY, OIDC_CLIENTS). An installed folder is reused, so later runs
# take well under a second. npm fetches from the registry only on install.
#
#   hack/oidc-provider.sh          install when missing, then print the folder
#   hack/oidc-provider.sh --dir    print the folder only (no install)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/hack/oidc"
files=(package.json package-lock.json server.mjs)
cache="${APPROVAL_GATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/approval-gate}"

log() { echo "oidc-provider: $*" >&2; }

# The folder is named after the content of the three files, so any change to
# them installs afresh.
hash="$(cd "$src" && cat "${files[@]}" | sha256sum | cut -c1-16)"
dir="$cache/oidc-provider-$hash"

if [[ "${1:-}" == "--dir" ]]; then
  echo "$dir"
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "$tool is needed to run the local OpenID Connect provider (install Node.js 20 or later with npm)"
    exit 1
  fi
done

# .installed is written last, so an interrupted install is redone.
if [[ ! -f "$dir/.installed" ]]; then
  log "installing into $dir (first run only)"
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.oidc-provider-$hash.XXXXXX")"
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  for f in "${files[@]}"; do
    cp "$src/$f" "$tmp/$f"
  done
  (cd "$tmp" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
  touch "$tmp/.installed"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
  # Older installs are of no further use.
  for old in "$cache"/oidc-provider-*; do
    if [[ "$old" != "$dir" && -d "$old" ]]; then
      log "removing $old"
      rm -rf "$old"
    fi
  done
fi
echo "$dir"
