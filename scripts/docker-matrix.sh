#!/usr/bin/env bash
# `make docker-matrix`: builds the API image in each of its variants (DB_FEATURE default, redis,
# embedded) and the indexer image, from the real Dockerfiles over the local base images, and
# checks that each binary starts (`--version`), that each API image is labelled with its
# variant, and that a single-store image refuses the other store at start with a clear message. The variants compile the workspace once each (about 10 min apiece on 2 cores, cold).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "docker-matrix: FAILED: $*" >&2
    exit 1
}

scripts/setup-test-deps.sh >/dev/null
export DOCKER_BUILDKIT=0
eval "$(scripts/docker-base-images.sh | grep -E '^[A-Z_]+=[^ ]+$')"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

for feature in default redis embedded; do
    image=ktra-local/ktra-api:matrix-$feature
    started=$(date +%s)
    docker build -q -f Dockerfile.api --build-arg DB_FEATURE="$feature" --build-arg REVISION="$revision" \
        --build-arg RUST_IMAGE="$RUST_IMAGE" --build-arg RUNTIME_IMAGE="$API_RUNTIME_IMAGE" -t "$image" . >/dev/null \
        || fail "Dockerfile.api with DB_FEATURE=$feature"
    version=$(docker run --rm --network none "$image" --version) || fail "$image --version"
    label=$(docker image inspect -f '{{ index .Config.Labels "dev.ktra.db-feature" }}' "$image")
    [ "$label" = "$feature" ] || fail "$image is labelled $label"
    # A single-store image refuses the other store at start, naming the setting.
    missing=""
    case "$feature" in
        redis) missing=embedded ;;
        embedded) missing=redis ;;
    esac
    if [ -n "$missing" ]; then
        if refusal=$(docker run --rm --network none -e KTRA_DB_KIND="$missing" "$image" 2>&1); then
            fail "$image started with KTRA_DB_KIND=$missing"
        fi
        grep -q "setting KTRA_DB_KIND: this build has no" <<<"$refusal" \
            || fail "$image refused KTRA_DB_KIND=$missing without naming it: $refusal"
        echo "docker-matrix: $image refuses KTRA_DB_KIND=$missing: $(grep -o 'setting KTRA_DB_KIND[^"]*' <<<"$refusal" | head -n 1)"
    fi
    echo "docker-matrix: $image: $version ($(($(date +%s) - started)) s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}'))"
done

image=ktra-local/ktra-indexer:matrix
started=$(date +%s)
docker build -q -f Dockerfile.indexer --build-arg REVISION="$revision" \
    --build-arg RUST_IMAGE="$RUST_IMAGE" --build-arg RUNTIME_IMAGE="$INDEXER_RUNTIME_IMAGE" -t "$image" . >/dev/null \
    || fail "Dockerfile.indexer"
version=$(docker run --rm --network none "$image" --version) || fail "$image --version"
echo "docker-matrix: $image: $version ($(($(date +%s) - started)) s)"
