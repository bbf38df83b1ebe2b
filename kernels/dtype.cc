#include "kernels/dtype.h"

#include <bit>
#include <cstring>
#include <limits>

#include "kernels/parallel.h"

namespace qcal::kernels {
namespace {

static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "float32/float64 decoding assumes IEEE 754 types");

template <typename T>
T LoadLittleEndian(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) {
    if constexpr (sizeof(T) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(T) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(T) == 8) v = __builtin_bswap64(v);
  }
  return v;
}

// IEEE binary16 -> binary32, exact: normal numbers re-bias the exponent, subnormals are scaled
// (mantissa * 2^-24 is exact in float32), inf and NaN keep their class and payload.
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float BFloat16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

void DecodeRange(DType dtype, const uint8_t* bytes, size_t begin, size_t end, float* out) {
  switch (dtype) {
    case DType::kFloat32:
      if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(out + begin, bytes + begin * 4, (end - begin) * 4);
      } else {
        for (size_t i = begin; i < end; ++i) {
          out[i] = std::bit_cast<float>(LoadLittleEndian<uint32_t>(bytes + i * 4));
        }
      }
      return;
    case DType::kFloat16:
      for (size_t i = begin; i < end; ++i)
        out[i] = HalfToFloat(LoadLittleEndian<uint16_t>(bytes + i * 2));
      return;
    case DType::kBFloat16:
      for (size_t i = begin; i < end; ++i) {
        out[i] = BFloat16ToFloat(LoadLittleEndian<uint16_t>(bytes + i * 2));
      }
      return;
    case DType::kFloat64:
      // Round to nearest even; beyond float32's range this gives +-inf (IEEE conversion).
      for (size_t i = begin; i < end; ++i) {
        out[i] =
            static_cast<float>(std::bit_cast<double>(LoadLittleEndian<uint64_t>(bytes + i * 8)));
      }
      return;
  }
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kFloat64:
      return 8;
  }
  return 0;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat64:
      return "float64";
  }
  return "unknown";
}

void DecodeToFloat32(DType dtype, const uint8_t* bytes, size_t count, float* out) {
  const int chunks = ChunksFor(static_cast<int64_t>(count));
  ParallelFor(static_cast<int64_t>(count), chunks, [&](int, int64_t begin, int64_t end) {
    DecodeRange(dtype, bytes, static_cast<size_t>(begin), static_cast<size_t>(end), out);
  });
}

}  // namespace qcal::kernels
