// The amax table of a model: what ComputeAmax produces, GetAmaxTable serves and the QDQ export
// reads. Plain data; serialization lives in amax_table_json.h and trt_cache.h. The quantization
// bound of an entry is kernels::QuantBound(num_bits, is_unsigned) (kernels/quant_bound.h).
#ifndef QCAL_SERVER_TABLES_AMAX_TABLE_H_
#define QCAL_SERVER_TABLES_AMAX_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kernels/quant_format.h"

namespace qcal::server {

// Every member has a default initializer, so designated initializers may leave members out
// without GCC's -Wmissing-field-initializers.
struct QuantizerAmax {
  std::string name{};
  // One value (per tensor) or one per channel along `axis`. Every value finite and >= 0.
  std::vector<float> amax{};
  std::optional<int> axis{};
  int num_bits = 8;
  bool is_unsigned = false;
  // "max", "entropy", "mse" or "percentile": what produced this amax.
  std::string method{};
  int64_t batches = 0;
  int64_t elements = 0;
  int64_t nonfinite = 0;
  // kFp8E4M3: scale = amax / 448 (num_bits 8, signed).
  kernels::QuantFormat format = kernels::QuantFormat::kInt;
};

struct AmaxTable {
  std::string model{};
  // The method asked for (quantizers with a max calibrator report "max" in their own entry).
  std::string method{};
  // Keyed (and so ordered) by quantizer name.
  std::map<std::string, QuantizerAmax> quantizers{};
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_TABLES_AMAX_TABLE_H_
