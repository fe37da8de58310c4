#!/usr/bin/env bash
# Starts the registry with the embedded defaults (what `make run` does after building): the
# indexer in the background, the API in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

# The binaries are where cargo put them: CARGO_TARGET_DIR or build.target-dir when set.
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="${target_dir:-./target}/release"

# Loopback only unless told otherwise: this registry accepts anyone's registration, and the
# indexer's metrics need no token. Set KTRA_HTTP_ADDRESS=0.0.0.0 (and a public URL) to share it.
export KTRA_HTTP_ADDRESS="${KTRA_HTTP_ADDRESS:-127.0.0.1}"
export KTRA_INDEXER_METRICS_LISTEN="${KTRA_INDEXER_METRICS_LISTEN:-127.0.0.1:8002}"
export KTRA_HTTP_PORT="${KTRA_HTTP_PORT:-8000}"
base="${KTRA_REGISTRY_PUBLIC_URL:-http://127.0.0.1:${KTRA_HTTP_PORT}}"
export KTRA_REGISTRY_PUBLIC_URL="$base"
export KTRA_DB_DIR_PATH="${KTRA_DB_DIR_PATH:-./data/db}"
export KTRA_BLOB_DIR_PATH="${KTRA_BLOB_DIR_PATH:-./data/crates}"
export KTRA_INDEXER_LISTEN="${KTRA_INDEXER_LISTEN:-127.0.0.1:8001}"
export KTRA_INDEXER_URL="${KTRA_INDEXER_URL:-http://${KTRA_INDEXER_LISTEN}}"
export KTRA_GIT_LOCAL_PATH="${KTRA_GIT_LOCAL_PATH:-./data/indexer}"
mkdir -p ./data
# With no remote configured, a bare repository under ./data is the remote (the indexer
# creates it on first start).
export KTRA_GIT_REMOTE_URL="${KTRA_GIT_REMOTE_URL:-file://$(pwd)/data/index.git}"

"$bin/ktra-indexer" &
indexer=$!
trap 'kill "$indexer" 2>/dev/null; wait "$indexer" 2>/dev/null' EXIT

cat <<MSG

Ktra is starting on ${base} (data under ./data/).

1. Tell cargo about the registry, in ~/.cargo/config.toml (or .cargo/config.toml of a project):

    [registries.ktra]
    index = "sparse+${base}/index/"
    credential-provider = "cargo:token"

   or, through the git index the indexer keeps:

    [registries.ktra-git]
    index = "${KTRA_GIT_REMOTE_URL}"
    credential-provider = "cargo:token"

2. Create a user; the answer holds your token:

    curl -X POST -H 'Content-Type: application/json' -d '{"password":"a long password"}' ${base}/ktra/api/v1/new_user/alice

3. Log cargo in and publish:

    cargo login --registry ktra          # paste the token
    cargo publish --registry ktra        # in your crate; set publish = ["ktra"] in its Cargo.toml

   Depend on it with: my_crate = { version = "0.1", registry = "ktra" }

Stop with Ctrl-C.

MSG
"$bin/ktra-api" "$@"
