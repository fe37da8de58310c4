#!/usr/bin/env bash
# Installs what the test suite needs. Idempotent: each step checks before installing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install --locked cargo-nextest@0.9.143
fi
