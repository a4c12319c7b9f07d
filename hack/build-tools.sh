#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager),
# the real node's kubelet and kube-scheduler, and helm from their Go modules under hack/tools/, into a cache outside the
# repository. A binary that is already built is skipped, so later runs take
# seconds.
#
#   hack/build-tools.sh            build whatever is missing, then print the bin dir
#   hack/build-tools.sh --dir      print the bin dir only (no build)
#
# KUBEBUILDER_ASSETS (the setup-envtest convention) may point at a folder that
# already holds etcd and kube-apiserver; those are then used and not built.
set -euo pipefail

ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.35.4
HELM_VERSION=v3.21.4

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${APPROVAL_GATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/approval-gate}"
bindir="$cache/bin/kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"

if [[ "${1:-}" == "--dir" ]]; then
  echo "$bindir"
  exit 0
fi

log() { echo "build-tools: $*" >&2; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    log "Go is needed to build $1 (or set KUBEBUILDER_ASSETS to a folder holding etcd and kube-apiserver)"
    exit 1
  fi
}

# build NAME MODULE_DIR PACKAGE LDFLAGS
build() {
  local name="$1" moddir="$2" pkg="$3" ldflags="$4"
  if [[ -x "$bindir/$name" ]]; then
    return 0
  fi
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$name" ]]; then
    log "using $name from KUBEBUILDER_ASSETS"
    ln -sf "$KUBEBUILDER_ASSETS/$name" "$bindir/$name"
    return 0
  fi
  need_go "$name"
  log "building $name from $pkg (first run only; several minutes)"
  local tmp
  tmp="$(mktemp "$bindir/.$name.XXXXXX")"
  (
    cd "$root/hack/tools/$moddir"
    GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
      go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg"
  )
  mv -f "$tmp" "$bindir/$name"
  log "built $bindir/$name"
}

mkdir -p "$bindir"
kv=(${KUBE_VERSION//./ })
build etcd etcd go.etcd.io/etcd/server/v3 ""
kube_ldflags="-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=${kv[0]#v} -X k8s.io/component-base/version.gitMinor=${kv[1]} -X k8s.io/component-base/version.gitTreeState=clean"
build kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
# Same module (hack/tools/kube-apiserver pins k8s.io/kubernetes): tests that
# need garbage collection run its garbagecollector controller.
build kube-controller-manager kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"
# The real node: kubelet and kube-scheduler from the same pinned module.
build kubelet kube-apiserver k8s.io/kubernetes/cmd/kubelet "$kube_ldflags"
build kube-scheduler kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler "$kube_ldflags"
build helm helm helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
echo "$bindir"
