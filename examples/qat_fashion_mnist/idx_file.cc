#include "examples/qat_fashion_mnist/idx_file.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <memory>

#include "absl/strings/str_cat.h"

namespace qcal::examples {
namespace {

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly `size` bytes; false at end of file or on an error.
bool ReadExactly(gzFile file, void* out, size_t size) {
  auto* bytes = static_cast<unsigned char*>(out);
  while (size > 0) {
    // gzread takes an unsigned count: read in chunks of at most 1 GiB.
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size, size_t{1} << 30));
    const int n = gzread(file, bytes, chunk);
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdxGz(const std::string& path) {
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  // Magic: two zero bytes, the element type, the number of dimensions; then one big-endian
  // uint32 per dimension.
  std::array<unsigned char, 4> magic;
  if (!ReadExactly(file.get(), magic.data(), magic.size()) || magic[0] != 0 || magic[1] != 0) {
    return absl::DataLossError(absl::StrCat(path, ": not an IDX file (bad magic number)"));
  }
  if (magic[2] != 0x08) {
    return absl::DataLossError(absl::StrCat(path, ": element type 0x", absl::Hex(magic[2]),
                                            ", expected 0x08 (unsigned byte)"));
  }
  IdxArray array;
  size_t count = 1;
  for (int d = 0; d < magic[3]; ++d) {
    std::array<unsigned char, 4> be;
    if (!ReadExactly(file.get(), be.data(), be.size())) {
      return absl::DataLossError(absl::StrCat(path, ": truncated header"));
    }
    const int64_t size =
        (int64_t{be[0]} << 24) | (int64_t{be[1]} << 16) | (int64_t{be[2]} << 8) | int64_t{be[3]};
    array.shape.push_back(size);
    count *= static_cast<size_t>(size);
  }
  array.data.resize(count);
  if (!ReadExactly(file.get(), array.data.data(), count)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated data (expected ", count, " bytes)"));
  }
  unsigned char extra;
  if (gzread(file.get(), &extra, 1) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": bytes after the data"));
  }
  return array;
}

}  // namespace qcal::examples
