// The .npy reader of the clients (ParseNpy, client/npy.cc) on arbitrary bytes: a parsed array
// must hold exactly prod(shape) * itemsize bytes, and nothing may be allocated from a header's
// shape before the data is there. Seeds: corpus/npy (client/testdata's files and edge cases).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "qcal/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qcal::NpyArray> array = qcal::ParseNpy(bytes);
  if (!array.ok()) return 0;
  // prod(shape) * itemsize, in unsigned arithmetic that cannot trap: ParseNpy must have refused
  // a shape whose byte count overflows.
  uint64_t expected = qcal::DTypeSize(array->dtype);
  for (int64_t dim : array->shape) {
    if (dim < 0) std::abort();
    expected *= static_cast<uint64_t>(dim);
  }
  if (array->data.size() != expected || array->data.size() > size) {
    std::fprintf(stderr, "fuzz_npy: %zu data bytes, the shape says %llu\n", array->data.size(),
                 static_cast<unsigned long long>(expected));
    std::abort();
  }
  (void)array->view();
  return 0;
}
