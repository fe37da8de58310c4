#!/usr/bin/env bash
# Starts the registry with the embedded defaults (what `make run` does after building).
set -euo pipefail
cd "$(dirname "$0")/.."

export KTRA_HTTP_PORT="${KTRA_HTTP_PORT:-8000}"
export KTRA_DB_DIR_PATH="${KTRA_DB_DIR_PATH:-./data/db}"
export KTRA_BLOB_DIR_PATH="${KTRA_BLOB_DIR_PATH:-./data/crates}"
base="${KTRA_REGISTRY_PUBLIC_URL:-http://127.0.0.1:${KTRA_HTTP_PORT}}"
mkdir -p ./data

cat <<MSG

Ktra is starting on ${base} (data under ./data/).

1. Tell cargo about the registry, in ~/.cargo/config.toml (or .cargo/config.toml of a project):

    [registries.ktra]
    index = "sparse+${base}/index/"
    credential-provider = "cargo:token"

2. Create a user; the answer holds your token:

    curl -X POST -H 'Content-Type: application/json' -d '{"password":"a long password"}' ${base}/ktra/api/v1/new_user/alice

3. Log cargo in and publish:

    cargo login --registry ktra          # paste the token
    cargo publish --registry ktra        # in your crate; set publish = ["ktra"] in its Cargo.toml

   Depend on it with: my_crate = { version = "0.1", registry = "ktra" }

Stop with Ctrl-C.

MSG
exec ./target/release/ktra-api "$@"
