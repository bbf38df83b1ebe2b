#!/usr/bin/env bash
# Checks that the GPU bundle's binaries need no shared library that a bare GPU machine lacks:
# only the C library, libm and the loader (libstdc++, libgcc_s, libpthread, libdl, librt are
# tolerated; libcuda is loaded at run time by cudart and never listed). Prints each binary's
# libraries; exits 1 when one is missing or not on that list.
#
#   bench/cuda_bundle_libs.sh BUNDLE_DIR
set -uo pipefail
bundle=${1:?usage: cuda_bundle_libs.sh BUNDLE_DIR}
allowed='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libstdc\+\+\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so)'
status=0
for binary in qcal_cuda_kernels_test qcal_cuda_bench; do
  path=$bundle/$binary
  if [[ ! -f $path ]]; then
    echo "$binary: missing from $bundle"
    status=1
    continue
  fi
  libs=$(ldd "$path" 2>&1)
  echo "$binary:"
  echo "$libs" | sed 's/^/  /'
  while read -r lib _; do
    [[ -z $lib ]] && continue
    name=$(basename "$lib")
    if [[ ! $name =~ $allowed ]]; then
      echo "$binary: needs $name, which a bare GPU machine may lack"
      status=1
    fi
  done <<< "$libs"
  if grep -q "not found" <<< "$libs"; then
    echo "$binary: a library is not found"
    status=1
  fi
done
exit $status
