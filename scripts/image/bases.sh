#!/usr/bin/env bash
# Makes the two local base images the container test (tests/container.rs) builds the
# Dockerfile on, since this machine cannot pull images: each is a Debian root file system
# made by debootstrap from Debian's packages and imported with podman.
#
#   build:   Debian minbase + a C toolchain (gcc: SQLite and aws-lc are C) + CA bundle.
#            It has no Rust: the test mounts the host's toolchain and cargo registry into
#            the build read-only, and this image's environment points cargo at them
#            (PATH, CARGO_HOME) and keeps it offline.
#   runtime: Debian minbase: glibc and libgcc_s like a distroless "cc" or a slim Debian
#            base, and like the latter no CA bundle (the Dockerfile must bring it).
#
# Usage: scripts/image/bases.sh WORKDIR
# Prints the build image's name, then the runtime image's, one a line. An image that
# exists already is kept: its tag names the Debian suite and a hash of what it is made
# of, so a change makes a new one. WORKDIR holds the root file systems while they are made.
# Needs root, debootstrap (AUGURY_DEBOOTSTRAP) and podman (AUGURY_PODMAN).
set -euo pipefail
work=${1:?usage: bases.sh WORKDIR}
suite=bookworm
mirror=http://deb.debian.org/debian
podman=${AUGURY_PODMAN:-podman}
debootstrap=${AUGURY_DEBOOTSTRAP:-debootstrap}

# The build stage's toolchain and registry are mounted here by the test.
rust_env=(
    --change 'ENV PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV CARGO_HOME=/opt/cargo-home'
    --change 'ENV CARGO_NET_OFFLINE=true'
)

# tag NAME PACKAGES [podman import options...]: the image's name and tag.
tag() {
    echo "localhost/augury-base-$1:$suite-$(echo "$*" | sha256sum | cut -c1-12)"
}

# make_image TAG PACKAGES [podman import options...]
make_image() {
    local tag=$1 packages=$2
    shift 2
    if "$podman" image exists "$tag"; then
        return
    fi
    local root="$work/rootfs-${tag##*/}"
    root=${root%%:*}
    rm -rf "$root"
    "$debootstrap" --variant=minbase ${packages:+--include="$packages"} "$suite" "$root" "$mirror" >"$root.log" 2>&1 ||
        { cat "$root.log" >&2; exit 1; }
    # What a container image does not need: apt's lists and caches, logs, man pages.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/var/log/* "$root"/usr/share/man "$root"/usr/share/doc "$root"/usr/share/locale
    tar -C "$root" --numeric-owner -c . | "$podman" import --quiet "$@" - "$tag" >/dev/null
    rm -rf "$root" "$root.log"
}

mkdir -p "$work"
build_packages=ca-certificates,gcc,libc6-dev
build_tag=$(tag build "$build_packages" "${rust_env[@]}")
runtime_tag=$(tag runtime "")
make_image "$build_tag" "$build_packages" "${rust_env[@]}" &
build=$!
make_image "$runtime_tag" "" &
runtime=$!
wait "$build"
wait "$runtime"
echo "$build_tag"
echo "$runtime_tag"
