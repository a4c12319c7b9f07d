#!/usr/bin/env bash
# Builds approval-gate's container images without a container daemon, as OCI
# archives that `ctr images import`, `docker load` and `podman load` read:
#
#   <out>/approval-gate.oci.tar  the static binary on an empty base, user 65532,
#                                named as the chart's default image (IMAGE)
#   <out>/pause.oci.tar          the pod sandbox's pause process (PAUSE_IMAGE)
#   <out>/shell.oci.tar          busybox, for the demo's `kubectl exec` (SHELL_IMAGE)
#
#   hack/image.sh [OUT_DIR]      default OUT_DIR: target/oci
#
# The binaries are built for x86_64-unknown-linux-musl (static) with the
# `image` profile; tools/image writes the layouts. The Dockerfile produces the
# same layout for approval-gate with docker or podman.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-target/oci}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
IMAGE="${IMAGE:-ghcr.io/approval-gate/approval-gate:$version}"
PAUSE_IMAGE="${PAUSE_IMAGE:-docker.io/approval-gate/pause:dev}"
SHELL_IMAGE="${SHELL_IMAGE:-docker.io/approval-gate/shell:dev}"
target=x86_64-unknown-linux-musl
cargo="${CARGO:-cargo}"

hack/node-deps.sh
"$cargo" build --locked --profile image --target "$target" \
  -p approval-gate --bin approval-gate -p approval-gate-pause --bin pause
"$cargo" build --locked -p approval-gate-image
bin="target/$target/image"
tool="target/debug/approval-gate-image"

"$tool" --name "$IMAGE" --out "$out/approval-gate.oci.tar" \
  --file "/approval-gate=$bin/approval-gate" \
  --user 65532:65532 --entrypoint /approval-gate --cmd serve
"$tool" --name "$PAUSE_IMAGE" --out "$out/pause.oci.tar" \
  --file "/pause=$bin/pause" --user 65535:65535 --entrypoint /pause
links=()
for applet in sh ls cat echo id env hostname ps sleep touch mkdir rm printf true false; do
  links+=(--symlink "/bin/$applet=busybox")
done
"$tool" --name "$SHELL_IMAGE" --out "$out/shell.oci.tar" \
  --file /bin/busybox=/bin/busybox "${links[@]}" --user 65532:65532 \
  --cmd=/bin/sh --cmd=-c --cmd="trap 'exit 0' TERM; while true; do sleep 1; done"
ls -l "$out"/*.oci.tar | awk '{print "image: " $NF " (" $5 " bytes)"}' >&2
