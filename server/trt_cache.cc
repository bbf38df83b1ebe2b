#include "server/trt_cache.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/quantizer_spec.h"

namespace qcal::server {
namespace {

struct Scale {
  float amax = 0.0f;
  float bound = 1.0f;
};

// The per-tensor amax of an activation quantizer's entry; nullopt for weights and empty entries.
std::optional<Scale> ActivationScale(const QuantizerAmax& entry) {
  if (IsWeightQuantizer(entry.name) || entry.amax.empty()) return std::nullopt;
  return Scale{.amax = *std::max_element(entry.amax.begin(), entry.amax.end()),
               .bound = QuantBound(entry.num_bits, entry.is_unsigned)};
}

// Keeps the larger amax for `tensor`.
void Offer(std::map<std::string, Scale>& tensors, const std::string& tensor, const Scale& scale) {
  auto [it, inserted] = tensors.emplace(tensor, scale);
  if (!inserted && scale.amax > it->second.amax) it->second = scale;
}

}  // namespace

std::string TrtCacheText(const AmaxTable& table,
                         const std::map<std::string, std::vector<std::string>>& tensor_quantizers) {
  std::map<std::string, Scale> tensors;
  std::set<std::string> bound;
  for (const auto& [tensor, quantizers] : tensor_quantizers) {
    for (const std::string& quantizer : quantizers) {
      bound.insert(quantizer);
      const auto entry = table.quantizers.find(quantizer);
      if (entry == table.quantizers.end()) continue;
      if (const std::optional<Scale> scale = ActivationScale(entry->second)) {
        Offer(tensors, tensor, *scale);
      }
    }
  }
  for (const auto& [name, entry] : table.quantizers) {
    if (bound.contains(name)) continue;
    if (const std::optional<Scale> scale = ActivationScale(entry)) Offer(tensors, name, *scale);
  }

  std::string out = absl::StrCat(kTrtCacheHeader, "\n");
  for (const auto& [tensor, scale] : tensors) {
    const float value = scale.amax > 0.0f ? scale.amax / scale.bound : 1.0f;
    uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof(bits));
    absl::StrAppendFormat(&out, "%s: %08x\n", tensor, bits);
  }
  return out;
}

}  // namespace qcal::server
