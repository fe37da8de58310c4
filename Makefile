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
	# The end-to-end tests start the real binaries; nextest builds only the
	# binaries of packages that have integration tests, so build them all first.
	$(CARGO) build --workspace --locked --bins
	$(CARGO) nextest run --workspace --locked --no-fail-fast

.PHONY: bench
bench: setup ## Run the benchmarks (release build, about 40 minutes); results in target/bench/
	$(CARGO) build --locked --release -p ktra-api -p ktra-indexer -p ktra-bench
	./target/release/ktra-bench --json target/bench/run.json run --configs embedded,redis,redis-s3,redis-wait,ktra-0.7.0
	./target/release/ktra-bench --json target/bench/indexer-growth.json indexer-growth
	./target/release/ktra-bench --json target/bench/indexer-growth-git-daemon.json indexer-growth --git-daemon --updates 100

.PHONY: bench-smoke
bench-smoke: setup ## A short run of every benchmark scenario, so the harness cannot rot (no timing is checked)
	$(CARGO) build --locked -p ktra-api -p ktra-indexer -p ktra-bench
	./target/debug/ktra-bench --json target/bench/smoke.json run --quick --configs embedded,redis-s3,redis-wait,ktra-0.7.0
	./target/debug/ktra-bench indexer-growth --sizes 100,300 --updates 10

VENV := .venv/bin
HELM := XDG_CACHE_HOME=$(CURDIR)/.tools/xdg/cache XDG_CONFIG_HOME=$(CURDIR)/.tools/xdg/config XDG_DATA_HOME=$(CURDIR)/.tools/xdg/data $(CURDIR)/.tools/helm
CHART := deploy/helm/ktra
COMPOSE := deploy/compose/compose.yaml
DB_FEATURE ?= default

.PHONY: docker-build
docker-build: ## Build both images (needs a Docker engine); DB_FEATURE=default|redis|embedded
	docker build -f Dockerfile.api --build-arg DB_FEATURE=$(DB_FEATURE) --build-arg REVISION=$$(git rev-parse HEAD) -t ktra-api:dev .
	docker build -f Dockerfile.indexer --build-arg REVISION=$$(git rev-parse HEAD) -t ktra-indexer:dev .

.PHONY: docker-base-images
docker-base-images: setup ## Build local stand-ins for every base image our files name (no registry reachable here)
	scripts/docker-base-images.sh

.PHONY: compose-test
compose-test: ## Build both images, start compose.yaml and test it with the real cargo (about 15 min cold)
	scripts/compose-test.sh

.PHONY: chart-docker-run
chart-docker-run: ## Run the images built by compose-test as the Helm chart runs them (env, user, read-only root, volumes)
	scripts/chart-docker-run.sh

.PHONY: docker-matrix
docker-matrix: ## Build the API in every variant (default, redis, embedded) and the indexer; each runs --version
	scripts/docker-matrix.sh

.PHONY: compose-up
compose-up: ## Start the whole system with docker compose (needs a Docker engine)
	test -f deploy/compose/.env || cp deploy/compose/.env.example deploy/compose/.env
	docker compose -f $(COMPOSE) up -d

.PHONY: compose-down
compose-down: ## Stop it
	docker compose -f $(COMPOSE) down

.PHONY: helm-lint
helm-lint: setup ## Lint the Helm chart (strict) for its default values and every ci/ file
	$(HELM) lint --strict $(CHART)
	for values in $(CHART)/ci/*.yaml; do $(HELM) lint --strict $(CHART) -f $$values || exit 1; done

.PHONY: deploy-check
deploy-check: setup helm-lint ## Every static check of the deployment files
	$(VENV)/docker-compose -f $(COMPOSE) --env-file deploy/compose/.env.example config --quiet
	$(VENV)/hadolint Dockerfile.api Dockerfile.indexer
	# The build stages must stay the same text in both Dockerfiles (comments aside): then the
	# layer cache compiles the workspace once for both images.
	diff <(sed -n '/^FROM .* AS chef$$/,/^FROM \$${RUNTIME_IMAGE}/p' Dockerfile.api | grep -v '^#') \
		<(sed -n '/^FROM .* AS chef$$/,/^FROM \$${RUNTIME_IMAGE}/p' Dockerfile.indexer | grep -v '^#')
	$(HELM) template ktra $(CHART) | $(VENV)/kubernetes-validate --strict --quiet -
	for values in $(CHART)/ci/*.yaml; do \
		$(HELM) template ktra $(CHART) -f $$values | $(VENV)/kubernetes-validate --strict --quiet - || exit 1; \
	done
	$(VENV)/yamllint -c .yamllint.yaml .github deploy/compose $(CHART)/values.yaml $(CHART)/Chart.yaml $(CHART)/ci $(CHART)/charts/redis/values.yaml

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all
	cd fuzz && $(CARGO) fmt

.PHONY: fmt-check
fmt-check: ## Check formatting
	$(CARGO) fmt --all --check
	cd fuzz && $(CARGO) fmt --check

.PHONY: lint
lint: ## Clippy with warnings denied
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

.PHONY: doc
doc: ## Build the docs with warnings denied
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps --locked

FUZZ_SECS ?= 60
FUZZ_SMOKE_SECS ?= 20

.PHONY: fuzz
fuzz: setup ## Fuzz the publish checks for FUZZ_SECS seconds per target (default 60)
	scripts/fuzz.sh $(FUZZ_SECS)

.PHONY: fuzz-smoke
fuzz-smoke: setup ## A short fuzz run (FUZZ_SMOKE_SECS, default 20, per target), as CI runs it
	scripts/fuzz.sh $(FUZZ_SMOKE_SECS)

.PHONY: fuzz-seeds
fuzz-seeds: ## Regenerate the committed seed corpus under fuzz/corpus/
	$(CARGO) run --locked -p ktra-publish --example fuzz_seeds -- fuzz/corpus

.PHONY: screenshots
screenshots: setup ## Refresh the README's screenshots of the pages (docs/screenshots/), taken by the browser test
	$(CARGO) build --workspace --locked --bins
	KTRA_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(CARGO) nextest run --locked -p ktra-e2e browser

.PHONY: ci
ci: fmt-check lint doc test deploy-check bench-smoke fuzz-smoke compose-test chart-docker-run ## Everything CI runs
