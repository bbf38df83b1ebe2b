#include "server/trt_cache.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/quant_bound.h"
#include "server/onnx/qdq_scale.h"
#include "server/quantizer_spec.h"

namespace qcal::server {
namespace {

// The per-tensor amax an activation quantizer's entry contributes, with the entry it came from.
struct Candidate {
  float amax = 0.0f;
  const QuantizerAmax* entry = nullptr;
};

// nullopt for weights and empty entries.
std::optional<Candidate> ActivationCandidate(const QuantizerAmax& entry) {
  if (IsWeightQuantizer(entry.name) || entry.amax.empty()) return std::nullopt;
  return Candidate{.amax = *std::max_element(entry.amax.begin(), entry.amax.end()),
                   .entry = &entry};
}

// Keeps the larger amax for `tensor`.
void Offer(std::map<std::string, Candidate>& tensors, const std::string& tensor,
           const Candidate& candidate) {
  auto [it, inserted] = tensors.emplace(tensor, candidate);
  if (!inserted && candidate.amax > it->second.amax) it->second = candidate;
}

}  // namespace

absl::StatusOr<TrtCache> TrtCacheText(
    const AmaxTable& table,
    const std::map<std::string, std::vector<std::string>>& tensor_quantizers) {
  std::map<std::string, Candidate> tensors;
  std::set<std::string> bound;
  for (const auto& [tensor, quantizers] : tensor_quantizers) {
    for (const std::string& quantizer : quantizers) {
      bound.insert(quantizer);
      const auto entry = table.quantizers.find(quantizer);
      if (entry == table.quantizers.end()) continue;
      if (const std::optional<Candidate> candidate = ActivationCandidate(entry->second)) {
        Offer(tensors, tensor, *candidate);
      }
    }
  }
  for (const auto& [name, entry] : table.quantizers) {
    if (bound.contains(name)) continue;
    if (const std::optional<Candidate> candidate = ActivationCandidate(entry)) {
      Offer(tensors, name, *candidate);
    }
  }

  TrtCache out{.text = absl::StrCat(kTrtCacheHeader, "\n"), .warnings = {}};
  std::vector<std::string> notes;
  for (const auto& [tensor, candidate] : tensors) {
    const QuantizerAmax& entry = *candidate.entry;
    const absl::StatusOr<float> bound = kernels::QuantBound(entry.num_bits, entry.is_unsigned);
    if (!bound.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantizer '", entry.name, "': ", bound.status().message()));
    }
    const absl::StatusOr<std::vector<float>> scale =
        ScalesFromAmax(std::span<const float>(&candidate.amax, 1), *bound,
                       {.quantizer = entry.name, .tensor = tensor, .axis = std::nullopt}, &notes);
    if (!scale.ok()) return scale.status();
    uint32_t bits = 0;
    std::memcpy(&bits, scale->data(), sizeof(bits));
    absl::StrAppendFormat(&out.text, "%s: %08x\n", tensor, bits);
  }
  for (std::string& note : notes) {
    out.warnings.push_back(absl::StrCat("TensorRT calibration cache: ", note));
  }
  return out;
}

}  // namespace qcal::server
