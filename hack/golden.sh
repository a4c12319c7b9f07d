#!/usr/bin/env bash
# Accepts the current output as the golden files (`make golden`): runs the
# golden tests, which write each output that differs from tests/golden/ to
# target/golden/ (and fail), copies those over tests/golden/ and shows what
# changed. tests/plugin.rs needs the control plane tools (APPROVAL_GATE_BIN_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
OUT=${CARGO_TARGET_DIR:-target}/golden

rm -rf "$OUT"
failed=0
"$CARGO" test --lib plugin || failed=1
"$CARGO" test --test plugin || failed=1

shopt -s nullglob
files=("$OUT"/*)
for f in "${files[@]}"; do
    cp "$f" tests/golden/
done
echo "golden: accepted ${#files[@]} file(s) from $OUT"
git diff --stat -- tests/golden
git ls-files --others --exclude-standard -- tests/golden | sed 's/^/ new: /'
if [ "$failed" = 1 ]; then
    if [ "${#files[@]}" = 0 ]; then
        echo "golden: tests failed without a golden difference; see above" >&2
        exit 1
    fi
    echo "golden: tests failed; golden differences are accepted, see above for any other failure" >&2
fi
