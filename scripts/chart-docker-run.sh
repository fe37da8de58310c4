#!/usr/bin/env bash
# `make chart-docker-run`: runs both images as the Helm chart would, without Kubernetes. The
# chart is rendered (`helm template`, default values plus an S3 endpoint and key Secret), and
# each image runs under `docker run` with exactly what the rendered pod gives its container:
# the environment (ConfigMap and env, Secret values resolved), user and group, fsGroup, a
# read-only root file system, dropped capabilities, no privilege escalation, the memory limit,
# emptyDir volumes as tmpfs and the volume claim as a Docker volume. Redis and SeaweedFS run
# under the names the chart points at; then a publish must be served and reach the git index.
# Needs the images `make compose-test` builds (ktra-local/ktra-api:compose-test, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { echo "chart-docker-run: $*"; }
fail() {
    echo "chart-docker-run: FAILED: $*" >&2
    exit 1
}

scripts/setup-test-deps.sh >/dev/null
eval "$(scripts/docker-base-images.sh | grep -E '^[A-Z_]+=[^ ]+$')"
API_IMAGE=${API_IMAGE:-ktra-local/ktra-api:compose-test}
INDEXER_IMAGE=${INDEXER_IMAGE:-ktra-local/ktra-indexer:compose-test}
for image in "$API_IMAGE" "$INDEXER_IMAGE"; do
    docker image inspect "$image" >/dev/null 2>&1 || fail "no image $image (run make compose-test first)"
done

work=$(mktemp -d /tmp/ktra-chart-run.XXXXXX)
name="ktra-chart-$(basename "$work" | cut -d. -f2 | tr 'A-Z' 'a-z')"
containers=()
cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        for container in "${containers[@]}"; do
            echo "--- $container" >&2
            docker logs --tail 20 "$container" >&2 2>&1 || true
        done
    fi
    for container in "${containers[@]}"; do docker rm -f -v "$container" >/dev/null 2>&1 || true; done
    docker volume rm "$name-indexer-data" >/dev/null 2>&1 || true
    docker network rm "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

s3_key=chart-run-access-key
s3_secret=chart-run-secret-key
XDG_CACHE_HOME=$work/xdg XDG_CONFIG_HOME=$work/xdg XDG_DATA_HOME=$work/xdg .tools/helm template ktra deploy/helm/ktra \
    --set objectStorage.s3.endpoint=http://seaweedfs:8333 \
    --set objectStorage.s3.allowHttp=true \
    --set objectStorage.s3.existingSecret=ktra-s3 >"$work/chart.yaml"

# docker run arguments for a rendered workload's first container, one per line. Secrets the
# chart only names (existingSecret) get the values this run gives them.
.venv/bin/python - "$work/chart.yaml" "$work" "$name" "$s3_key" "$s3_secret" <<'PY'
import base64, sys, yaml
chart, out, name, s3_key, s3_secret = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(chart)) if d]
by_kind = lambda kind: {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
configmaps, secrets = by_kind("ConfigMap"), by_kind("Secret")
given = {"ktra-s3": {"access-key-id": s3_key, "secret-access-key": s3_secret}}

def secret_value(ref):
    if ref["name"] in secrets:
        secret = secrets[ref["name"]]
        if ref["key"] in secret.get("stringData", {}):
            return secret["stringData"][ref["key"]]
        return base64.b64decode(secret["data"][ref["key"]]).decode()
    return given[ref["name"]][ref["key"]]

memory_units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
for kind, workload, tag in (("Deployment", "ktra-api", "api"), ("StatefulSet", "ktra-indexer", "indexer")):
    pod = by_kind(kind)[workload]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = item["value"] if "value" in item else secret_value(item["valueFrom"]["secretKeyRef"])
    with open(f"{out}/{tag}.env", "w") as env_file:
        for key, value in env.items():
            assert "\n" not in str(value), key
            env_file.write(f"{key}={value}\n")
    pod_security = pod.get("securityContext", {})
    security = {**pod_security, **container.get("securityContext", {})}
    args = [f"--env-file={out}/{tag}.env",
            f"--user={security['runAsUser']}:{security['runAsGroup']}"]
    if "fsGroup" in pod_security:
        args.append(f"--group-add={pod_security['fsGroup']}")
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    for capability in security.get("capabilities", {}).get("drop", []):
        args.append(f"--cap-drop={capability}")
    if security.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    memory = container.get("resources", {}).get("limits", {}).get("memory")
    if memory:
        args.append(f"--memory={int(memory[:-2]) * memory_units[memory[-2:]]}")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in by_kind(kind)[workload]["spec"].get("volumeClaimTemplates", [])}
    for mount in container.get("volumeMounts", []):
        if mount["name"] in claims:
            args.append(f"--volume={name}-{tag}-{mount['name']}:{mount['mountPath']}")
        elif "emptyDir" in volumes.get(mount["name"], {}):
            args.append(f"--tmpfs={mount['mountPath']}")
        else:
            sys.exit(f"{workload}: no docker equivalent for volume {mount['name']}")
    with open(f"{out}/{tag}.args", "w") as args_file:
        args_file.write("\n".join(args) + "\n")
PY
say "api: $(tr '\n' ' ' <"$work/api.args" | sed "s|$work/||g")"
say "indexer: $(tr '\n' ' ' <"$work/indexer.args" | sed "s|$work/||g")"

# The servers the rendered environment names, under those names.
redis_host=$(sed -n 's|^KTRA_DB_REDIS_URL=redis://\([^:/]*\).*|\1|p' "$work/api.env")
bucket=$(sed -n 's|^KTRA_S3_BUCKET=||p' "$work/api.env")
[ -n "$redis_host" ] && [ -n "$bucket" ] || fail "the rendered API environment names no Redis or bucket"
docker network create "$name" >/dev/null
run() {
    local container="$name-$1"
    shift
    containers+=("$container")
    docker run -d --name "$container" --network "$name" "$@" >/dev/null
}
run redis --network-alias "$redis_host" "$REDIS_IMAGE" redis-server
run seaweedfs --network-alias seaweedfs -e AWS_ACCESS_KEY_ID="$s3_key" -e AWS_SECRET_ACCESS_KEY="$s3_secret" \
    "$SEAWEEDFS_IMAGE" mini -dir=/data -ip.bind=0.0.0.0 -admin.ui=false "-bucket=$bucket"
mapfile -t indexer_args <"$work/indexer.args"
mapfile -t api_args <"$work/api.args"
run indexer --network-alias ktra-indexer "${indexer_args[@]}" "$INDEXER_IMAGE"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The bucket exists before the API's first request.
deadline=$(($(date +%s) + 60))
until docker exec "$name-seaweedfs" sh -c "echo s3.bucket.list | weed shell -master=127.0.0.1:9333 2>/dev/null | grep -qw $bucket"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "SeaweedFS never created the bucket"
    sleep 1
done
run api -p "127.0.0.1:$port:8000" "${api_args[@]}" "$API_IMAGE"
api=http://127.0.0.1:$port

deadline=$(($(date +%s) + 90))
until curl -fsS -o /dev/null "$api/readyz" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the API never got ready"
    sleep 1
done
for container in "$name-api" "$name-indexer"; do
    [ "$(docker inspect -f '{{.State.Status}} {{.HostConfig.ReadonlyRootfs}}' "$container")" = "running true" ] \
        || fail "$container is not running with a read-only root file system"
done
say "both images run as the chart runs them; the API is ready"

token=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"password":"chart run password"}' \
    "$api/ktra/api/v1/new_user/alice" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
python3 - "$work/body" <<'PY'
import io, json, struct, sys, tarfile
name, vers = "ktra-chart-run", "1.0.0"
manifest = f'[package]\nname = "{name}"\nversion = "{vers}"\nedition = "2021"\n'.encode()
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w:gz") as tar:
    info = tarfile.TarInfo(f"{name}-{vers}/Cargo.toml")
    info.size = len(manifest)
    tar.addfile(info, io.BytesIO(manifest))
meta = json.dumps({"name": name, "vers": vers, "deps": [], "features": {}}).encode()
crate = raw.getvalue()
open(sys.argv[1], "wb").write(struct.pack("<I", len(meta)) + meta + struct.pack("<I", len(crate)) + crate)
PY
code=$(curl -s -o "$work/publish.out" -w '%{http_code}' -X PUT -H "Authorization: $token" \
    --data-binary "@$work/body" "$api/api/v1/crates/new")
[ "$code" = 200 ] || { cat "$work/publish.out" >&2; fail "the publish got $code"; }
curl -fsS "$api/index/kt/ra/ktra-chart-run" | grep -q '"vers":"1.0.0"' || fail "the sparse index lacks the publish"
curl -fsS -o /dev/null "$api/api/v1/crates/ktra-chart-run/1.0.0/download" -L || fail "the crate file does not download"
# The git index (on the indexer's volume) has it: verify-index, with the API's environment.
deadline=$(($(date +%s) + 60))
until docker run --rm --network "$name" "${api_args[@]}" "$API_IMAGE" verify-index >"$work/verify.out" 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/verify.out" >&2; fail "verify-index found differences"; }
    sleep 2
done
say "PASSED: a publish served and in the git index"
