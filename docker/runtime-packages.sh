#!/bin/sh
# Prints the packages (dpkg's: Debian's or Ubuntu's) that hold the shared libraries the given
# binaries load, as ldd resolves them, one a line, sorted. A library that no package owns (the
# project's own libqcal_proto.so, found through the build folder) is named on stderr; one that
# ldd cannot find fails the run.
#   docker/runtime-packages.sh BINARY...
# Dockerfile.cuda's build stage writes its runtime stage's package list with it: the CUDA base
# is Ubuntu, whose library package names (libgrpc29t64, ...) differ from Debian 12's.
# tests/e2e/test_docker_runtime_packages.py checks it against its own ldd and dpkg -S.
set -eu
libs=$(ldd "$@")
if echo "$libs" | grep 'not found' >&2; then
  echo "runtime-packages: ldd cannot find the libraries above" >&2
  exit 1
fi
# ldd names a library by the path it found (/lib/... on a merged /usr, where dpkg may record
# /usr/lib/...); a symlink may be recorded only under its target's name. One dpkg -S for all the
# names (one per library costs seconds), then each library takes the first name dpkg knows.
paths=$(echo "$libs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
names() { echo "$1"; echo "/usr$1"; readlink -f "$1"; }
owners=$(for lib in $paths; do names "$lib"; done | xargs dpkg -S 2>/dev/null || true)
for lib in $paths; do
  owner=""
  for name in $(names "$lib"); do
    owner=$(echo "$owners" | awk -v path="$name" '{ n = index($0, ": ") }
      n && substr($0, n + 2) == path {
        split(substr($0, 1, n - 1), pkgs, ", "); print pkgs[1]; exit }')
    [ -z "$owner" ] || break
  done
  if [ -z "$owner" ]; then
    echo "runtime-packages: no package owns $lib" >&2
  else
    echo "${owner%%:*}"
  fi
done | sort -u
