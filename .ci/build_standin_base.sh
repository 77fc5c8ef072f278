#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image when Docker Hub cannot be reached:
# a minimal Debian bookworm root filesystem with the distribution's Python 3.11 (3.11.2 in
# /usr/bin, where the real image has 3.11.14 in /usr/local/bin), imported under the real tag.
# A test/CI helper only: the product's Dockerfile never refers to it. Skips when the tag exists.
# Usage: .ci/build_standin_base.sh [TAG]   (needs root, debootstrap and a Docker engine)
set -euo pipefail
tag="${1:-$(sed -n 's/^FROM \([^ ]*\) AS serve-base$/\1/p' "$(dirname "$0")/../Dockerfile")}"
if [ -z "$tag" ]; then
  echo "standin: cannot read the runtime base image from the Dockerfile" >&2
  exit 2
fi
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "standin: $tag already present, not rebuilt"
  exit 0
fi
rootfs="$(mktemp -d /tmp/standin-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "standin: building $tag from Debian bookworm packages (one to three minutes)"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
  bookworm "$rootfs" >/tmp/standin-debootstrap.log 2>&1 \
  || { echo "standin: debootstrap failed, see /tmp/standin-debootstrap.log" >&2; exit 1; }
# Locally added CAs (e.g. an egress proxy's) live outside the packaged bundle on Debian: copy
# them so pip inside the build trusts the same hosts as this machine.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
echo "standin: imported $tag"
