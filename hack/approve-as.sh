#!/usr/bin/env bash
# Approves an ApprovalRequest by appending an approval to its status, as the
# identity in KUBECONFIG_FILE. A stand-in until `kubectl approve` ships.
#   hack/approve-as.sh KUBECONFIG_FILE NAMESPACE NAME [COMMENT]
set -euo pipefail
kc="$1" ns="$2" name="$3" comment="${4:-}"
user="$(kubectl --kubeconfig "$kc" auth whoami -o jsonpath='{.status.userInfo.username}')"
groups="$(kubectl --kubeconfig "$kc" auth whoami -o jsonpath='{.status.userInfo.groups}')"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
approval="{\"user\":\"$user\",\"groups\":$groups,\"time\":\"$now\",\"comment\":\"$comment\"}"
status="$(kubectl --kubeconfig "$kc" -n "$ns" get apr "$name" -o jsonpath='{.status}')"
if [[ -z "$status" ]]; then
  patch="[{\"op\":\"add\",\"path\":\"/status\",\"value\":{\"approvals\":[$approval]}}]"
elif kubectl --kubeconfig "$kc" -n "$ns" get apr "$name" -o jsonpath='{.status.approvals}' | grep -q .; then
  patch="[{\"op\":\"add\",\"path\":\"/status/approvals/-\",\"value\":$approval}]"
else
  patch="[{\"op\":\"add\",\"path\":\"/status/approvals\",\"value\":[$approval]}]"
fi
kubectl --kubeconfig "$kc" -n "$ns" patch apr "$name" --subresource=status --type=json -p "$patch"
