# approval-gate: `make dev` runs the system on a local control plane,
# `make test` runs every test. See README.md.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
DEV_DIR ?= .dev

# The folder holding etcd, kube-apiserver and helm (built on first use).
BIN_DIR = $(shell hack/build-tools.sh --dir)
export APPROVAL_GATE_BIN_DIR = $(BIN_DIR)

.PHONY: all tools build test unit integration lint fmt crds dev dev-up dev-down clean-dev

all: build

## tools: build etcd, kube-apiserver and helm from their Go modules (cached)
tools:
	@hack/build-tools.sh >/dev/null

build:
	$(CARGO) build --all-targets

## test: unit and integration tests against a real etcd + kube-apiserver
test: tools
	$(CARGO) test --lib --bins --tests --no-fail-fast

## lint: formatting and clippy, as CI checks them
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## crds: regenerate crds/ from the Rust types
crds:
	$(CARGO) run --quiet --bin approval-gate -- crds --out-dir crds

## dev: start the local control plane in the foreground until Ctrl-C
dev: tools
	$(CARGO) build --bin approval-gate-dev --bin approval-gate --bin kubectl-approve
	target/debug/approval-gate-dev --dir $(DEV_DIR)

## dev-up: start the local control plane in the background and wait until ready
dev-up: tools
	$(CARGO) build --bin approval-gate-dev --bin approval-gate --bin kubectl-approve
	hack/dev-up.sh $(DEV_DIR)

## dev-down: stop what dev-up started
dev-down:
	hack/dev-down.sh $(DEV_DIR)

## bench: load-test the webhook over TLS with oha against a bare TLS server (not part of test)
.PHONY: bench
bench:
	hack/bench.sh

## bench-operator: expiry lateness, start-up reconcile throughput and idle cost of the operator process on a local control plane (not part of test)
.PHONY: bench-operator
bench-operator: tools
	$(CARGO) build --release --bin approval-gate
	$(CARGO) bench --bench operator

## completions: regenerate plugin/completions from the plugin
completions:
	$(CARGO) build --quiet --bin kubectl-approve
	for s in bash zsh fish; do target/debug/kubectl-approve completion $$s > plugin/completions/kubectl-approve.$$s; done
