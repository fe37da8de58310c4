# Ktra: the two commands are `make run` and `make test`; `make help` lists the rest.

CARGO ?= cargo
SHELL := /usr/bin/env bash

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: run
run: ## Build and start the registry with embedded storage on port 8000, data under ./data/
	$(CARGO) build --locked --release -p ktra-api -p ktra-indexer
	scripts/run.sh

.PHONY: setup
setup: ## Install what the tests need (idempotent)
	scripts/setup-test-deps.sh

.PHONY: test
test: setup ## Install what the tests need, then run every test
	$(CARGO) nextest run --workspace --locked --no-fail-fast

.PHONY: bench
bench: setup ## Run the benchmarks (release build, about 40 minutes); results in target/bench/
	$(CARGO) build --locked --release -p ktra-api -p ktra-indexer -p ktra-bench
	./target/release/ktra-bench --json target/bench/run.json run --configs embedded,redis,redis-s3
	./target/release/ktra-bench --json target/bench/indexer-growth.json indexer-growth
	./target/release/ktra-bench --json target/bench/indexer-growth-git-daemon.json indexer-growth --git-daemon --updates 100

.PHONY: bench-smoke
bench-smoke: setup ## A short run of every benchmark scenario, so the harness cannot rot (no timing is checked)
	$(CARGO) build --locked -p ktra-api -p ktra-indexer -p ktra-bench
	./target/debug/ktra-bench --json target/bench/smoke.json run --quick --configs embedded,redis-s3
	./target/debug/ktra-bench indexer-growth --sizes 100,300 --updates 10

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: fmt-check
fmt-check: ## Check formatting
	$(CARGO) fmt --all --check

.PHONY: lint
lint: ## Clippy with warnings denied
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

.PHONY: doc
doc: ## Build the docs with warnings denied
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps --locked

.PHONY: ci
ci: fmt-check lint doc test bench-smoke ## Everything CI runs
