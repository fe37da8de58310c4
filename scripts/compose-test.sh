#!/usr/bin/env bash
# `make compose-test`: what our users run, tested end to end. Builds both images from the real
# Dockerfiles, starts the real deploy/compose/compose.yaml with .env.example (plus
# scripts/compose.local-images.yaml, which only swaps upstream images for local stand-ins), and
# drives it with the real cargo:
#   1. publishes three crates with dependencies over the sparse index, builds a dependent over
#      the sparse index and again over the git daemon's git:// index, yanks one;
#   2. kills the indexer (SIGKILL) during a burst of 200 publishes, starts it again: the git
#      index converges, nothing lost or doubled, and `ktra-api verify-index` agrees;
#   3. restarts the API during a second burst: every publish that got a 200 is there;
#   4. `down` (volumes kept) and `up`: users, tokens, crates, files and the git index survive;
#   5. `down -v`.
# Any wrong result exits non-zero. The compose project has its own name and ports, and is
# removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

started=$(date +%s)
phase_started=$started
say() { echo "compose-test [$(($(date +%s) - started)) s]: $*"; }
fail() {
    echo "compose-test: FAILED: $*" >&2
    exit 1
}
phase() {
    local now
    now=$(date +%s)
    say "--- $* (previous phase: $((now - phase_started)) s)"
    phase_started=$now
}

scripts/setup-test-deps.sh >/dev/null
export DOCKER_BUILDKIT=0

phase "base images"
eval "$(scripts/docker-base-images.sh | grep -E '^[A-Z_]+=[^ ]+$')"

phase "images from Dockerfile.api and Dockerfile.indexer"
export KTRA_IMAGE_REGISTRY=ktra-local KTRA_VERSION=compose-test
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
build_started=$(date +%s)
docker build -q -f Dockerfile.api --build-arg DB_FEATURE=default --build-arg REVISION="$revision" \
    --build-arg RUST_IMAGE="$RUST_IMAGE" --build-arg RUNTIME_IMAGE="$API_RUNTIME_IMAGE" \
    -t "$KTRA_IMAGE_REGISTRY/ktra-api:$KTRA_VERSION" . >/dev/null
say "Dockerfile.api built in $(($(date +%s) - build_started)) s"
build_started=$(date +%s)
docker build -q -f Dockerfile.indexer --build-arg REVISION="$revision" \
    --build-arg RUST_IMAGE="$RUST_IMAGE" --build-arg RUNTIME_IMAGE="$INDEXER_RUNTIME_IMAGE" \
    -t "$KTRA_IMAGE_REGISTRY/ktra-indexer:$KTRA_VERSION" . >/dev/null
say "Dockerfile.indexer built in $(($(date +%s) - build_started)) s"
for image in ktra-api ktra-indexer; do
    say "$image: $(docker image inspect -f '{{.Size}}' "$KTRA_IMAGE_REGISTRY/$image:$KTRA_VERSION" | awk '{printf "%.1f MB", $1 / 1e6}')"
done

alone=""
work=$(mktemp -d /tmp/ktra-compose-test.XXXXXX)
project="ktra-ct-$(basename "$work" | cut -d. -f2 | tr 'A-Z' 'a-z')"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export KTRA_API_PORT KTRA_GIT_PORT KTRA_PUBLIC_URL
KTRA_API_PORT=$(free_port)
KTRA_GIT_PORT=$(free_port)
KTRA_PUBLIC_URL=http://127.0.0.1:$KTRA_API_PORT
api=$KTRA_PUBLIC_URL
git_url=git://127.0.0.1:$KTRA_GIT_PORT/index.git

compose() {
    "$root/.venv/bin/docker-compose" -p "$project" --project-directory "$root/deploy/compose" \
        -f "$root/deploy/compose/compose.yaml" -f "$root/scripts/compose.local-images.yaml" \
        --env-file "$root/deploy/compose/.env.example" "$@"
}
cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        echo "compose-test: the services' last log lines:" >&2
        compose logs --no-color --tail 40 >&2 2>/dev/null || true
    fi
    compose down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    [ -z "$alone" ] || docker rm -f -v "$alone" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_healthy() {
    local service="$1" deadline=$(($(date +%s) + 180)) id state
    while :; do
        id=$(compose ps -q "$service" 2>/dev/null || true)
        state=$( [ -n "$id" ] && docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || echo none)
        [ "$state" = healthy ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || fail "$service is not healthy after 180 s (state: $state)"
        sleep 1
    done
}

# The path of a crate's file in the index (cargo's layout).
index_path() {
    local name="${1,,}"
    case ${#name} in
        1) echo "1/$name" ;;
        2) echo "2/$name" ;;
        3) echo "3/${name:0:1}/$name" ;;
        *) echo "${name:0:2}/${name:2:2}/$name" ;;
    esac
}
sparse_file() { curl -fsS "$api/index/$(index_path "$1")"; }
# A fresh clone of the git index, in $work/git-index.
clone_git_index() {
    rm -rf "$work/git-index"
    git clone -q "$git_url" "$work/git-index"
}
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

phase "compose up"
volumes_before=$(docker volume ls -q | sort)
compose up -d --wait --wait-timeout 300 >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "compose up"; }
say "project $project: API at $api, git index at $git_url"

# --- 1. cargo over both indexes ----------------------------------------------------------------
phase "cargo: publish, build over sparse and git, yank"
password="compose-test password"
create_user() {
    curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"password\":\"$password\"}" \
        "$api/ktra/api/v1/new_user/$1" | json '["token"]'
}
alice=$(create_user alice)
bob=$(create_user bob)
[ -n "$alice" ] && [ -n "$bob" ] || fail "new_user answered no token"

cargo_home() {
    mkdir -p "$1"
    cat >"$1/config.toml" <<EOF
[registries.ktra]
index = "sparse+$api/index/"
credential-provider = "cargo:token"

[registries.ktra-git]
index = "$git_url"
credential-provider = "cargo:token"
EOF
}
cargo_home "$work/cargo-home"
export CARGO_REGISTRIES_KTRA_TOKEN=$alice CARGO_TARGET_DIR=$work/target
new_crate() {
    local name="$1" deps="$2" body="$3" kind="${4:-lib}"
    mkdir -p "$work/crates/$name/src"
    cat >"$work/crates/$name/Cargo.toml" <<EOF
[package]
name = "$name"
version = "0.1.0"
edition = "2021"
description = "A crate of Ktra's compose test"
license = "MIT"

[dependencies]
$deps
EOF
    if [ "$kind" = bin ]; then
        echo "$body" >"$work/crates/$name/src/main.rs"
    else
        echo "$body" >"$work/crates/$name/src/lib.rs"
    fi
}
new_crate ktra-ct-alpha "" 'pub fn alpha() -> u32 { 1 }'
new_crate ktra-ct-beta 'ktra-ct-alpha = { version = "0.1", registry = "ktra" }' \
    'pub fn beta() -> u32 { ktra_ct_alpha::alpha() + 1 }'
new_crate ktra-ct-gamma 'ktra-ct-alpha = { version = "0.1", registry = "ktra" }
ktra-ct-beta = { version = "0.1", registry = "ktra" }' \
    'pub fn gamma() -> u32 { ktra_ct_alpha::alpha() + ktra_ct_beta::beta() }'
for name in ktra-ct-alpha ktra-ct-beta ktra-ct-gamma; do
    (cd "$work/crates/$name" && CARGO_HOME="$work/cargo-home" cargo publish -q --registry ktra --allow-dirty) \
        || fail "cargo publish $name"
    say "published $name"
done

# A dependent, built with a cargo that has never seen the registry, through each index.
for registry in ktra ktra-git; do
    home="$work/cargo-home-$registry"
    cargo_home "$home"
    new_crate "dependent-$registry" "ktra-ct-gamma = { version = \"0.1\", registry = \"$registry\" }" \
        'fn main() { assert_eq!(ktra_ct_gamma::gamma(), 3); println!("gamma = 3"); }' bin
    if [ "$registry" = ktra-git ]; then
        # The indexer pushes after the publish answered; wait for the three crates.
        deadline=$(($(date +%s) + 60))
        until clone_git_index 2>/dev/null && [ -f "$work/git-index/$(index_path ktra-ct-gamma)" ]; do
            [ "$(date +%s)" -lt "$deadline" ] || fail "the git index never got ktra-ct-gamma"
            sleep 1
        done
    fi
    (cd "$work/crates/dependent-$registry" && CARGO_HOME="$home" cargo run -q) >"$work/run.out" \
        || fail "building the dependent over $registry"
    grep -qx 'gamma = 3' "$work/run.out" || fail "the dependent over $registry printed $(cat "$work/run.out")"
    say "built and ran a dependent over $registry"
done
grep -q "source = \"registry+$git_url\"" "$work/crates/dependent-ktra-git/Cargo.lock" \
    || fail "the git dependent's lockfile does not name the git index"

CARGO_HOME="$work/cargo-home" cargo yank -q --registry ktra ktra-ct-gamma@0.1.0 || fail "cargo yank"
sparse_file ktra-ct-gamma | grep -q '"yanked":true' || fail "the sparse index does not show the yank"
deadline=$(($(date +%s) + 60))
until clone_git_index && grep -q '"yanked":true' "$work/git-index/$(index_path ktra-ct-gamma)"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the git index never showed the yank"
    sleep 1
done
say "yanked ktra-ct-gamma 0.1.0 (sparse and git index)"

# --- bursts of publishes through the HTTP API ------------------------------------------------
# Publish bodies as cargo sends them: little-endian u32 length + JSON metadata, then u32
# length + the .crate (a gzipped tar whose Cargo.toml matches the metadata).
make_bodies() {
    local prefix="$1" crates="$2" versions="$3"
    python3 - "$work/bodies" "$prefix" "$crates" "$versions" <<'PY'
import io, json, os, struct, sys, tarfile
out, prefix, crates, versions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, prefix + ".list"), "w") as listing:
    for c in range(crates):
        for v in range(versions):
            name, vers = f"{prefix}-{c}", f"1.0.{v}"
            manifest = f'[package]\nname = "{name}"\nversion = "{vers}"\nedition = "2021"\n'.encode()
            files = {"Cargo.toml": manifest, "src/lib.rs": f"pub const V: u32 = {v};\n".encode()}
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for path, data in files.items():
                    info = tarfile.TarInfo(f"{name}-{vers}/{path}")
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
            meta = json.dumps({"name": name, "vers": vers, "deps": [], "features": {},
                               "authors": [], "description": "burst", "license": "MIT"}).encode()
            crate = raw.getvalue()
            path = os.path.join(out, f"{name}-{vers}.body")
            with open(path, "wb") as body:
                body.write(struct.pack("<I", len(meta)) + meta + struct.pack("<I", len(crate)) + crate)
            listing.write(f"{name} {vers} {path}\n")
PY
}
cat >"$work/publish-one.sh" <<'EOF'
#!/usr/bin/env bash
# publish-one.sh NAME VERSION BODY: one publish; appends "NAME VERSION HTTP-STATUS" to $RESULTS.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X PUT -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$3" "$API/api/v1/crates/new")
echo "$1 $2 $code" >>"$RESULTS"
EOF
chmod +x "$work/publish-one.sh"
# burst PREFIX TOKEN PARALLEL: publishes every body of PREFIX, PARALLEL at a time, in the
# background.
burst() {
    : >"$work/$1.results"
    RESULTS="$work/$1.results" TOKEN="$2" API="$api" \
        xargs -P "$3" -L 1 "$work/publish-one.sh" <"$work/bodies/$1.list" &
    burst_pid=$!
}
wait_results() {
    local file="$1" count="$2" deadline=$(($(date +%s) + 120))
    until [ "$(wc -l <"$file")" -ge "$count" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "fewer than $count publishes answered in 120 s"
        sleep 0.2
    done
}
# check_burst PREFIX: every publish that got 200 is in the sparse index and, once the indexer
# caught up, in the git index, each version once; nothing else of PREFIX is.
check_burst() {
    local prefix="$1"
    python3 - "$work/$prefix.results" "$api" "$work/git-index" <<'PY' || return 1
import json, sys, urllib.error, urllib.request, os
results, api, git = sys.argv[1], sys.argv[2], sys.argv[3]
accepted, answered = {}, {}
for line in open(results):
    name, vers, code = line.split()
    answered.setdefault(name, {})[vers] = code
    if code == "200":
        accepted.setdefault(name, set()).add(vers)
def path(name):
    return f"{name[:2]}/{name[2:4]}/{name}"
def sparse_versions(name):
    try:
        text = urllib.request.urlopen(f"{api}/index/{path(name)}").read().decode()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []  # every publish of this crate fell into the restart
        raise
    return [json.loads(l)["vers"] for l in text.splitlines() if l]
bad = []
for name in sorted(answered):
    sparse = sparse_versions(name)
    gitfile = os.path.join(git, path(name))
    gitvers = [json.loads(l)["vers"] for l in open(gitfile).read().splitlines() if l] if os.path.exists(gitfile) else []
    want = accepted.get(name, set())
    for label, got in (("sparse", sparse), ("git", gitvers)):
        if len(got) != len(set(got)):
            bad.append(f"{name}: {label} index lists a version twice")
        missing = want - set(got)
        if missing:
            bad.append(f"{name}: {label} index lacks accepted {sorted(missing)}")
        # A publish without a 200 (connection refused, timeout) may have landed; a version
        # nobody sent may not.
        unknown = set(got) - set(answered[name])
        if unknown:
            bad.append(f"{name}: {label} index has versions never published {sorted(unknown)}")
    if sorted(sparse) != sorted(gitvers):
        bad.append(f"{name}: the git index differs from the sparse index")
if bad:
    print("\n".join(bad[:20]))
    sys.exit(1)
PY
}
converge() {
    local prefix="$1" deadline=$(($(date +%s) + 180))
    until clone_git_index 2>/dev/null && check_burst "$prefix" >"$work/check.out" 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/check.out" >&2; fail "$prefix: the git index did not converge in 180 s"; }
        sleep 2
    done
}
verify_index() {
    compose run --rm --no-deps -T api verify-index >"$work/verify.out" 2>&1 \
        || { cat "$work/verify.out" >&2; fail "ktra-api verify-index found differences"; }
    grep -q '^missing from the git index: 0$' "$work/verify.out" || { cat "$work/verify.out" >&2; fail "verify-index output"; }
}
summary() {
    awk '{count[$3]++} END {for (code in count) printf "%s x %d  ", code, count[code]}' "$work/$1.results"
}

# --- the API image alone: `docker run IMAGE` serves a publish, its data on the volume ---------
phase "the API image alone"
port=$(free_port)
alone=$(docker run -d -p "127.0.0.1:$port:8000" "$KTRA_IMAGE_REGISTRY/ktra-api:$KTRA_VERSION")
deadline=$(($(date +%s) + 60))
until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { docker logs "$alone" >&2; fail "the API image alone never got ready"; }
    sleep 0.5
done
token=$(curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"password\":\"$password\"}" \
    "http://127.0.0.1:$port/ktra/api/v1/new_user/alice" | json '["token"]') || fail "the API image alone: new_user"
make_bodies ktra-ct-alone 1 1
read -r name vers body <"$work/bodies/ktra-ct-alone.list"
code=$(curl -s -o "$work/alone.out" -w '%{http_code}' -X PUT -H "Authorization: $token" \
    --data-binary "@$body" "http://127.0.0.1:$port/api/v1/crates/new")
[ "$code" = 200 ] || { cat "$work/alone.out" >&2; docker logs "$alone" >&2; fail "the API image alone refused a publish ($code)"; }
curl -fsS "http://127.0.0.1:$port/index/$(index_path "$name")" | grep -q "\"vers\":\"$vers\"" \
    || fail "the API image alone does not index its publish"
mounts=$(docker inspect -f '{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}' "$alone")
[ "$mounts" = "volume:/var/lib/ktra " ] || fail "the API image alone mounts $mounts"
# What is on the volume, and whose it is (the image has no shell: look from another container).
docker run --rm --network none --volumes-from "$alone" "$INDEXER_RUNTIME_IMAGE" \
    sh -c 'stat -c "%u %n" /var/lib/ktra /var/lib/ktra/db /var/lib/ktra/crates && find /var/lib/ktra/crates -type f' \
    >"$work/volume.out"
grep -q '^65532 /var/lib/ktra$' "$work/volume.out" || { cat "$work/volume.out" >&2; fail "the volume is not the image user's"; }
# Crate files are stored under the canonical name (`-` as `_`).
grep -q "/${name//-/_}/$vers-.*\.crate$" "$work/volume.out" || { cat "$work/volume.out" >&2; fail "the crate file is not on the volume"; }
docker rm -f -v "$alone" >/dev/null
alone=""
say "docker run with nothing else served a publish; data on the volume /var/lib/ktra, owned by 65532"

# --- 2. the indexer killed during a burst ----------------------------------------------------
phase "indexer killed during a burst of 200 publishes"
make_bodies ktra-ct-burst 10 20
# Four at a time, so the burst outlasts `compose kill`; while the indexer is down each publish
# waits out KTRA_INDEXER_ACK_TIMEOUT_MS, and 30 of them are answered before it starts again.
burst ktra-ct-burst "$alice" 4
wait_results "$work/ktra-ct-burst.results" 20
compose kill -s KILL indexer >/dev/null 2>&1
answers=$(wc -l <"$work/ktra-ct-burst.results")
say "killed the indexer after $answers answers"
[ "$answers" -lt 170 ] || fail "the burst ended before the indexer was killed"
wait_results "$work/ktra-ct-burst.results" $((answers + 30))
compose start indexer >/dev/null 2>&1
answers=$(wc -l <"$work/ktra-ct-burst.results")
say "started the indexer after $answers answers"
[ "$answers" -lt 200 ] || fail "the burst ended before the indexer was started again"
wait "$burst_pid" || fail "the burst's publisher failed"
say "burst answered: $(summary ktra-ct-burst)"
[ "$(wc -l <"$work/ktra-ct-burst.results")" -eq 200 ] || fail "not every publish answered"
[ "$(grep -c ' 200$' "$work/ktra-ct-burst.results")" -eq 200 ] \
    || fail "publishes failed while the indexer was down (the API hands index updates over later)"
wait_healthy indexer
converge ktra-ct-burst
verify_index
say "the git index converged: 200 versions, none lost or doubled; verify-index agrees"

# --- 3. the API restarted during a burst ----------------------------------------------------
phase "API restarted during a burst of 150 publishes"
make_bodies ktra-ct-restart 10 15
burst ktra-ct-restart "$bob" 4
wait_results "$work/ktra-ct-restart.results" 40
compose restart -t 10 api >/dev/null 2>&1
answers=$(wc -l <"$work/ktra-ct-restart.results")
say "restarted the API after $answers answers"
[ "$answers" -lt 150 ] || fail "the burst ended before the API restarted"
wait "$burst_pid" || fail "the burst's publisher failed"
say "burst answered: $(summary ktra-ct-restart)"
[ "$(grep -c ' 200$' "$work/ktra-ct-restart.results")" -ge 40 ] || fail "too few publishes succeeded"
wait_healthy api
converge ktra-ct-restart
verify_index
say "every publish that got 200 is in the sparse and the git index"

# --- 4. down and up again, volumes kept ------------------------------------------------------
phase "down (volumes kept) and up"
snapshot() {
    local name
    for name in ktra-ct-alpha ktra-ct-beta ktra-ct-gamma ktra-ct-burst-0 ktra-ct-burst-9 ktra-ct-restart-5; do
        echo "== $name"
        sparse_file "$name"
    done
    clone_git_index
    git -C "$work/git-index" rev-parse HEAD
    (cd "$work/git-index" && git ls-files -s)
}
snapshot >"$work/before" || fail "snapshot before down"
compose down --timeout 10 >/dev/null 2>&1
compose up -d --wait --wait-timeout 300 >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "compose up after down"; }
snapshot >"$work/after" || fail "snapshot after up"
diff -u "$work/before" "$work/after" >&2 || fail "crates or the git index changed across down and up"
say "crates, index lines and the git index (same commit) survived"
# Files: every version's .crate downloads and matches the index's checksum.
for name in ktra-ct-alpha ktra-ct-beta ktra-ct-gamma ktra-ct-burst-3; do
    sparse_file "$name" | python3 -c '
import json, sys
for line in sys.stdin:
    if line.strip():
        entry = json.loads(line)
        print(entry["name"], entry["vers"], entry["cksum"])' | while read -r crate vers cksum; do
        got=$(curl -fsSL "$api/api/v1/crates/$crate/$vers/download" | sha256sum | cut -d' ' -f1)
        [ "$got" = "$cksum" ] || fail "$crate $vers: the downloaded file does not match the index"
    done
done
say "crate files survived (checksums match)"
# Users: the password still logs in. Tokens: the old one still publishes (unyanks).
curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"password\":\"$password\"}" \
    "$api/ktra/api/v1/login/alice" | json '["token"]' >/dev/null || fail "alice cannot log in after down and up"
CARGO_HOME="$work/cargo-home" cargo yank -q --undo --registry ktra ktra-ct-gamma@0.1.0 \
    || fail "alice's token no longer works after down and up"
sparse_file ktra-ct-gamma | grep -q '"yanked":false' || fail "the unyank did not show"
# A cargo that never saw the registry builds the dependent over the git index again.
rm -rf "$work/cargo-home-ktra-git/registry" "$work/crates/dependent-ktra-git/Cargo.lock"
deadline=$(($(date +%s) + 60))
until clone_git_index && grep -q '"yanked":false' "$work/git-index/$(index_path ktra-ct-gamma)"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the git index never showed the unyank"
    sleep 1
done
(cd "$work/crates/dependent-ktra-git" && CARGO_HOME="$work/cargo-home-ktra-git" cargo run -q) >"$work/run.out" \
    || fail "building the dependent over the git index after down and up"
verify_index
say "users, tokens, crates, files and the git index survived down and up"

# --- 5. down -v ------------------------------------------------------------------------------
phase "down -v"
compose down -v --timeout 10 >/dev/null 2>&1
left=$(docker volume ls -q --filter "label=com.docker.compose.project=$project")
[ -z "$left" ] || fail "volumes left after down -v: $left"
# Anonymous volumes too (an image's VOLUME that compose does not mount): `down` without -v
# leaves them behind, one per `up`.
left=$(comm -13 <(echo "$volumes_before") <(docker volume ls -q | sort))
[ -z "$left" ] || fail "anonymous volumes left behind: $left"
say "PASSED in $(($(date +%s) - started)) s"
