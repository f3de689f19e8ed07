#!/usr/bin/env bash
# Runs a command in a container image's root file system the way a container runtime
# would, for a machine that can build images but not run containers: in a mount
# namespace of its own, the root file system bind-mounted read-only, /proc, a /dev with
# null, zero, random and urandom, a tmpfs on /tmp, one volume bind-mounted read-write,
# the image's environment only (plus the AUGURY_* variables of the caller, as `-e`
# would pass them), its working directory and user (no supplementary groups; the
# capabilities a non-root user has, none). The network is the host's.
#
# Usage (as root):
#   run-rootfs.sh ROOTFS UID:GID WORKDIR ENV_FILE VOLUME_DIR:MOUNT_POINT -- COMMAND [ARG...]
# ENV_FILE holds the image's environment, one NAME=VALUE a line. The command replaces
# this script's process (exec all the way), so signals reach it; its mounts go with it.
set -euo pipefail
if [ "$#" -lt 7 ] || [ "$6" != "--" ]; then
    echo "usage: run-rootfs.sh ROOTFS UID:GID WORKDIR ENV_FILE VOLUME_DIR:MOUNT_POINT -- COMMAND [ARG...]" >&2
    exit 2
fi
if [ -z "${RUN_ROOTFS_NAMESPACE:-}" ]; then
    RUN_ROOTFS_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$@"
fi
root=$(realpath "$1") user=$2 workdir=$3 env_file=$4 volume=$5
shift 6
uid=${user%%:*} gid=${user#*:}
volume_dir=${volume%%:*} mount_point=${volume#*:}
for dir in proc dev tmp "${mount_point#/}"; do
    [ -d "$root/$dir" ] || { echo "run-rootfs.sh: $root has no /$dir" >&2; exit 2; }
done

mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$root/dev"
for device in null zero random urandom; do
    touch "$root/dev/$device"
    mount --bind "/dev/$device" "$root/dev/$device"
done
mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/tmp"
mount --bind "$volume_dir" "$root$mount_point"
# Read-only from here on; the mounts above stay as they are.
mount -o remount,bind,ro "$root"

environment=()
while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] && environment+=("$line")
done <"$env_file"
for name in ${RUN_ROOTFS_PASS:-}; do
    if [ -n "${!name+set}" ]; then environment+=("$name=${!name}"); fi
done
exec env -i "${environment[@]}" "$(command -v unshare)" --root="$root" --wd="$workdir" \
    --setgid="$gid" --setuid="$uid" -- "$@"
