#!/usr/bin/env bash
# Makes the base image the Dockerfiles take as BASE_IMAGE, from Debian's packages, where no image
# registry is reachable: debootstrap --variant=minbase bookworm into a folder, then buildah
# imports that folder as an image. Needs root, debootstrap and buildah (Debian's packages; not
# part of scripts/install-deps.sh: CI does not build images).
#   docker/make-base.sh [IMAGE]     (default localhost/debian:bookworm-slim)
# MIRROR (default: the first Debian mirror in /etc/apt's sources), SECURITY_MIRROR (default
# MIRROR followed by -security, as Debian's mirrors lay it out) and WORK_DIR (default a fresh
# temporary folder, removed at the end) can be set.
set -euo pipefail
IMAGE=${1:-localhost/debian:bookworm-slim}
STORAGE=(--storage-driver vfs)

for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null ||
    { echo "make-base: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
if [[ -z ${MIRROR:-} ]]; then
  # The machine's own Debian mirror (a URI ending in /debian), from either sources format.
  MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.{list,sources} 2>/dev/null |
    grep -oE '^[^#]*https?://[^ ]+/debian/?( |$)' | grep -oE 'https?://[^ ]+' | head -n1 || true)
  [[ -n $MIRROR ]] || { echo "make-base: no Debian mirror in /etc/apt; set MIRROR" >&2; exit 1; }
fi

SECURITY_MIRROR=${SECURITY_MIRROR:-${MIRROR%/}-security}

WORK=${WORK_DIR:-$(mktemp -d)}
ROOTFS=$WORK/rootfs
cleanup() { [[ -n ${WORK_DIR:-} ]] || rm -rf "$WORK"; }
trap cleanup EXIT

echo "make-base: debootstrap bookworm from $MIRROR into $ROOTFS"
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR"
# As debian:bookworm-slim: bookworm, its updates and its security suite in debian.sources; no
# package lists or caches in the image (apt-get update fetches them).
rm -f "$ROOTFS"/etc/apt/sources.list
cat >"$ROOTFS"/etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Slim, as debian:bookworm-slim: no documentation, manual pages or translations, now or from
# packages installed later (dpkg's path-exclude); the copyright files stay.
cat >"$ROOTFS"/etc/dpkg/dpkg.cfg.d/slim <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
find "$ROOTFS"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* \
  "$ROOTFS"/usr/share/lintian/*
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
  "$ROOTFS"/var/cache/apt/archives/*.deb

container=$(buildah "${STORAGE[@]}" from scratch)
buildah "${STORAGE[@]}" copy "$container" "$ROOTFS" /
buildah "${STORAGE[@]}" config --cmd /bin/bash \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
buildah "${STORAGE[@]}" commit --format docker --rm "$container" "$IMAGE"
echo "make-base: $IMAGE"
buildah "${STORAGE[@]}" images "$IMAGE"
