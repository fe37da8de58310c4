#!/usr/bin/env bash
# `make chart-docker-run`: runs both images as the Helm chart would, without Kubernetes. The
# chart is rendered (`helm template`, default values plus an S3 endpoint and key Secret), and
# each image runs under `docker run` with exactly what the rendered pod gives its container:
# the environment (ConfigMap and env, Secret values resolved), user and group, fsGroup, a
# read-only root file system, dropped capabilities, no privilege escalation, the memory limit,
# emptyDir volumes as tmpfs, Secret and ConfigMap volumes as read-only files with the modes and
# group the kubelet gives them, and the volume claim as a Docker volume. Redis and SeaweedFS run
# under the names the chart points at; then a publish must be served and reach the git index.
#
# Three rounds: the index on the indexer's volume only (the chart's default), then pushed to an
# ssh remote (private key and known_hosts from the chart's Secret) and to an https remote (user
# and password from the Secret, the server's private CA from the chart's ConfigMap), both served
# by the git-servers test image.
# Needs the images `make compose-test` builds (ktra-local/ktra-api:compose-test, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

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
volumes=()
cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        for container in "${containers[@]}"; do
            echo "--- $container" >&2
            docker logs --tail 20 "$container" >&2 2>&1 || true
        done
    fi
    for container in "${containers[@]}"; do docker rm -f -v "$container" >/dev/null 2>&1 || true; done
    for volume in "${volumes[@]}"; do docker volume rm "$volume" >/dev/null 2>&1 || true; done
    docker network rm "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

docker network create "$name" >/dev/null
# Starts a container named $name-$1 on the network (detached); the rest are docker run arguments.
run() {
    local container="$name-$1"
    shift
    containers+=("$container")
    docker run -d --name "$container" --network "$name" "$@" >/dev/null
}
# Removes the containers named $name-$1 for each argument.
remove() {
    local container
    for container in "$@"; do docker rm -f -v "$name-$container" >/dev/null; done
}
# Retries a command every second until it succeeds or SECONDS pass: retry SECONDS WHAT COMMAND...
retry() {
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@" >"$work/retry.out" 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/retry.out" >&2; fail "$what"; }
        sleep 1
    done
}

# The git remotes, as a company's git host serves them, on the network as git.internal.
git_host=git.internal
https_user=ktra-indexer
https_password=chart-run-git-password
mkdir -p "$work/git"
docker run --rm --network none -v "$work/git:/out" --entrypoint sh "$GIT_SERVERS_IMAGE" -c "
    set -e
    ssh-keygen -q -t ed25519 -N '' -C '' -f /out/ssh_host_key
    ssh-keygen -q -t ed25519 -N '' -C '' -f /out/client_key
    cp /out/client_key.pub /out/authorized_keys
    echo \"$git_host \$(cut -d' ' -f1,2 /out/ssh_host_key.pub)\" >/out/known_hosts
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=$git_host \
        -addext subjectAltName=DNS:$git_host -keyout /out/tls.key -out /out/tls.crt 2>/dev/null
    echo '$https_user:$https_password' >/out/users"
run git --network-alias "$git_host" -v "$work/git:/config:ro" "$GIT_SERVERS_IMAGE" index.git

s3_key=chart-run-access-key
s3_secret=chart-run-secret-key

# One round: renders the chart with the given helm arguments, runs Redis, SeaweedFS, the
# indexer and the API as it would, publishes the crate ktra-chart-ROUND, and checks it is served
# and in the git index (verify-index). The containers and the volume go afterwards.
chart_round() {
    local round=$1 out=$work/$1
    shift
    mkdir -p "$out"
    XDG_CACHE_HOME=$work/xdg XDG_CONFIG_HOME=$work/xdg XDG_DATA_HOME=$work/xdg .tools/helm template ktra deploy/helm/ktra \
        --set objectStorage.s3.endpoint=http://seaweedfs:8333 \
        --set objectStorage.s3.allowHttp=true \
        --set objectStorage.s3.existingSecret=ktra-s3 "$@" >"$out/chart.yaml"

    # docker run arguments for a rendered workload's first container, one per line. Secrets
    # the chart only names (existingSecret) get the values this run gives them.
    .venv/bin/python - "$out/chart.yaml" "$out" "$name-$round" "$s3_key" "$s3_secret" <<'PY'
import base64, os, sys, yaml
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
        if ref["key"] in secret.get("data", {}):
            return base64.b64decode(secret["data"][ref["key"]]).decode()
        # An optional key that is absent leaves the variable unset, as the kubelet does.
        assert ref.get("optional"), ref
        return None
    return given[ref["name"]][ref["key"]]

def projected_files(directory, volume, fs_group):
    """Writes a Secret or ConfigMap volume's files as the kubelet projects them: the mode
    (defaultMode, 0644 unless set) gains group read with an fsGroup, which owns the files."""
    source = volume.get("secret") or volume["configMap"]
    mode = source.get("defaultMode", 0o644)
    if fs_group is not None:
        mode |= 0o440
    os.makedirs(directory)
    for item in source["items"]:
        if "secret" in volume:
            value = secret_value({"name": source["secretName"], "key": item["key"]})
        else:
            value = configmaps[source["name"]]["data"][item["key"]]
        path = os.path.join(directory, item["path"])
        with open(path, "w") as projected:
            projected.write(value)
        os.chown(path, 0, fs_group if fs_group is not None else 0)
        os.chmod(path, item.get("mode", mode))
    os.chmod(directory, 0o755)

memory_units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
for kind, workload, tag in (("Deployment", "ktra-api", "api"), ("StatefulSet", "ktra-indexer", "indexer")):
    pod = by_kind(kind)[workload]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        value = item["value"] if "value" in item else secret_value(item["valueFrom"]["secretKeyRef"])
        if value is not None:
            env[item["name"]] = value
    with open(f"{out}/{tag}.env", "w") as env_file:
        for key, value in env.items():
            assert "\n" not in str(value), key
            env_file.write(f"{key}={value}\n")
    pod_security = pod.get("securityContext", {})
    security = {**pod_security, **container.get("securityContext", {})}
    args = [f"--env-file={out}/{tag}.env",
            f"--user={security['runAsUser']}:{security['runAsGroup']}"]
    fs_group = pod_security.get("fsGroup")
    if fs_group is not None:
        args.append(f"--group-add={fs_group}")
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
        volume = volumes.get(mount["name"], {})
        if mount["name"] in claims:
            args.append(f"--volume={name}-{tag}-{mount['name']}:{mount['mountPath']}")
            with open(f"{out}/volumes", "a") as listed:
                listed.write(f"{name}-{tag}-{mount['name']}\n")
        elif "emptyDir" in volume:
            args.append(f"--tmpfs={mount['mountPath']}")
        elif "secret" in volume or "configMap" in volume:
            assert mount.get("readOnly"), f"{workload}: {mount['name']} is mounted writable"
            directory = f"{out}/{tag}-{mount['name']}"
            projected_files(directory, volume, fs_group)
            args.append(f"--mount=type=bind,source={directory},target={mount['mountPath']},readonly")
        else:
            sys.exit(f"{workload}: no docker equivalent for volume {mount['name']}")
    with open(f"{out}/{tag}.args", "w") as args_file:
        args_file.write("\n".join(args) + "\n")
PY
    say "$round: api: $(tr '\n' ' ' <"$out/api.args" | sed "s|$work/||g")"
    say "$round: indexer: $(tr '\n' ' ' <"$out/indexer.args" | sed "s|$work/||g")"
    mapfile -t -O "${#volumes[@]}" volumes <"$out/volumes"

    # The servers the rendered environment names, under those names.
    local redis_host bucket port api
    redis_host=$(sed -n 's|^KTRA_DB_REDIS_URL=redis://\([^:/]*\).*|\1|p' "$out/api.env")
    bucket=$(sed -n 's|^KTRA_S3_BUCKET=||p' "$out/api.env")
    [ -n "$redis_host" ] && [ -n "$bucket" ] || fail "the rendered API environment names no Redis or bucket"
    run "$round-redis" --network-alias "$redis_host" "$REDIS_IMAGE" redis-server
    run "$round-seaweedfs" --network-alias seaweedfs -e AWS_ACCESS_KEY_ID="$s3_key" -e AWS_SECRET_ACCESS_KEY="$s3_secret" \
        "$SEAWEEDFS_IMAGE" mini -dir=/data -ip.bind=0.0.0.0 -admin.ui=false "-bucket=$bucket"
    local indexer_args api_args
    mapfile -t indexer_args <"$out/indexer.args"
    mapfile -t api_args <"$out/api.args"
    run "$round-indexer" --network-alias ktra-indexer "${indexer_args[@]}" "$INDEXER_IMAGE"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # The bucket exists before the API's first request.
    retry 60 "SeaweedFS never created the bucket" docker exec "$name-$round-seaweedfs" \
        sh -c "echo s3.bucket.list | weed shell -master=127.0.0.1:9333 2>/dev/null | grep -qw $bucket"
    run "$round-api" -p "127.0.0.1:$port:8000" "${api_args[@]}" "$API_IMAGE"
    api=http://127.0.0.1:$port

    retry 90 "the API never got ready" curl -fsS -o /dev/null "$api/readyz"
    for container in "$name-$round-api" "$name-$round-indexer"; do
        [ "$(docker inspect -f '{{.State.Status}} {{.HostConfig.ReadonlyRootfs}}' "$container")" = "running true" ] \
            || fail "$container is not running with a read-only root file system"
    done
    say "$round: both images run as the chart runs them; the API is ready"

    local crate=ktra-chart-$round token code
    token=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"password":"chart run password"}' \
        "$api/ktra/api/v1/new_user/alice" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    python3 - "$out/body" "$crate" <<'PY'
import io, json, struct, sys, tarfile
name, vers = sys.argv[2], "1.0.0"
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
    code=$(curl -s -o "$out/publish.out" -w '%{http_code}' -X PUT -H "Authorization: $token" \
        --data-binary "@$out/body" "$api/api/v1/crates/new")
    [ "$code" = 200 ] || { cat "$out/publish.out" >&2; fail "$round: the publish got $code"; }
    curl -fsS "$api/index/kt/ra/$crate" | grep -q '"vers":"1.0.0"' || fail "$round: the sparse index lacks the publish"
    curl -fsS -o /dev/null "$api/api/v1/crates/$crate/1.0.0/download" -L || fail "$round: the crate file does not download"
    # The git index (on the indexer's volume) has it: verify-index, with the API's environment.
    retry 60 "$round: verify-index found differences" \
        docker run --rm --network "$name" "${api_args[@]}" "$API_IMAGE" verify-index
    say "$round: a publish served and in the git index"
}

# The crate's index file is on the remote's main branch: pushed_to USER REPOSITORY CRATE.
pushed_to() {
    docker exec -u "$1" "$name-git" git --git-dir "$2" cat-file -e "main:kt/ra/$3"
}

chart_round local
remove local-api local-indexer local-redis local-seaweedfs

chart_round ssh \
    --set "indexer.git.remoteUrl=ssh://git@$git_host/srv/git/ssh/index.git" \
    --set-file indexer.git.sshPrivateKey="$work/git/client_key" \
    --set-file indexer.git.sshKnownHosts="$work/git/known_hosts"
retry 60 "ssh: the remote never got the crate" pushed_to git /srv/git/ssh/index.git ktra-chart-ssh
say "ssh: pushed to the ssh remote, its host key checked against the chart's known_hosts"
remove ssh-api ssh-indexer ssh-redis ssh-seaweedfs

chart_round https \
    --set "indexer.git.remoteUrl=https://$git_host/git/index.git" \
    --set "indexer.git.httpsUsername=$https_user" \
    --set "indexer.git.httpsPassword=$https_password" \
    --set-file indexer.git.caBundle="$work/git/tls.crt"
retry 60 "https: the remote never got the crate" pushed_to www-data /srv/git/https/index.git ktra-chart-https
say "https: pushed to the https remote, its certificate checked against the chart's CA bundle"
say "PASSED: the default, ssh and https rounds"
