#!/usr/bin/env bash
# Mutation testing of the pure security core (`make mutants`, not part of
# `make test`). Installs the pinned cargo-mutants when missing, then mutates the
# files listed in .cargo/mutants.toml and runs the library's unit tests against
# each mutant. The report lands in target/mutants.out/ (caught.txt, missed.txt,
# unviable.txt, timeout.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

MUTANTS_VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$MUTANTS_VERSION"; then
    cargo install --locked "cargo-mutants@$MUTANTS_VERSION"
fi

# One build at a time: the machine this runs on in CI has two cores.
exec cargo mutants --jobs 1 --output target "$@"
