#include "server/tables/trt_cache.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/quant_bound.h"
#include "kernels/quant_format.h"
#include "server/base/status_util.h"
#include "server/tables/qdq_scale.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {
namespace {

// TensorRT's INT8 is signed: it reads every cache entry as scale x 127. Every quantizer written
// to the cache is therefore written with this bound, whatever its own is_unsigned.
constexpr int kTrtNumBits = 8;

// A cache line is "<name>: <hex>": a name holding this could be read as another name and scale.
constexpr absl::string_view kLineSeparator = ": ";

// The per-tensor amax an activation quantizer's entry contributes, with the entry it came from.
struct Candidate {
  float amax = 0.0f;
  const QuantizerAmax* entry = nullptr;
};

std::string Subject(absl::string_view quantizer, absl::string_view tensor) {
  return absl::StrCat("quantizer '", quantizer, "' tensor '", tensor, "'");
}

// Collects, per cache key, the largest amax of the activation quantizers that can be written.
class Selection {
 public:
  // Offers `entry`'s amax for the line keyed `tensor`. Weights and empty entries are ignored;
  // entries TensorRT cannot take (not 8-bit, a key that would make the line ambiguous) are left
  // out with a warning. INVALID_ARGUMENT for a num_bits outside kernels::QuantBound's range.
  absl::Status Offer(const std::string& tensor, const QuantizerAmax& entry) {
    if (IsWeightQuantizer(entry.name) || entry.amax.empty()) return absl::OkStatus();
    // An FP8 quantizer's amax maps to 448, not 127: written as INT8 it would give TensorRT a
    // scale for a different format. Issue 5's rule: the cache is INT8 only.
    if (entry.format == kernels::QuantFormat::kFp8E4M3) {
      fp8_.push_back(Subject(entry.name, tensor));
      return absl::OkStatus();
    }
    const absl::StatusOr<float> bound = kernels::QuantBound(entry.num_bits, entry.is_unsigned);
    if (!bound.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantizer '", entry.name, "': ", bound.status().message()));
    }
    if (entry.num_bits != kTrtNumBits) {
      warnings_.push_back(absl::StrCat(Subject(entry.name, tensor), " is ", entry.num_bits,
                                       "-bit; TensorRT's cache holds 8-bit integer quantizers "
                                       "only: left out"));
      return absl::OkStatus();
    }
    if (absl::StrContains(tensor, kLineSeparator)) {
      warnings_.push_back(absl::StrCat(Subject(entry.name, tensor), " left out: the ",
                                       tensor == entry.name ? "quantizer" : "tensor",
                                       " name contains \": \", which would make its cache line "
                                       "ambiguous"));
      return absl::OkStatus();
    }
    const Candidate candidate{.amax = *std::max_element(entry.amax.begin(), entry.amax.end()),
                              .entry = &entry};
    auto [it, inserted] = tensors_.emplace(tensor, candidate);
    if (!inserted && candidate.amax > it->second.amax) it->second = candidate;
    return absl::OkStatus();
  }

  // Cache key -> the candidate written there, in key order.
  const std::map<std::string, Candidate>& tensors() const { return tensors_; }

  // The warnings, with the FP8 quantizers left out said in one: an all-FP8 model has one per
  // quantizer, which would bury every other warning of each ComputeAmax.
  std::vector<std::string> TakeWarnings() {
    constexpr size_t kNamed = 8;
    constexpr absl::string_view kWhy =
        "TensorRT's cache holds 8-bit integer quantizers only: left out (export a QDQ ONNX model "
        "for FP8)";
    if (fp8_.size() == 1) {
      warnings_.push_back(absl::StrCat(fp8_.front(), " is FP8 (fp8_e4m3); ", kWhy));
    } else if (!fp8_.empty()) {
      const size_t named = std::min(fp8_.size(), kNamed);
      std::string list = absl::StrJoin(fp8_.begin(), fp8_.begin() + named, ", ");
      if (fp8_.size() > named) absl::StrAppend(&list, " and ", fp8_.size() - named, " more");
      warnings_.push_back(
          absl::StrCat(fp8_.size(), " FP8 (fp8_e4m3) quantizers, ", list, "; ", kWhy));
    }
    return std::move(warnings_);
  }

 private:
  std::map<std::string, Candidate> tensors_;
  std::vector<std::string> warnings_;
  std::vector<std::string> fp8_;  // Subject() of each FP8 quantizer offered
};

}  // namespace

absl::StatusOr<TrtCache> TrtCacheText(
    const AmaxTable& table,
    const std::map<std::string, std::vector<std::string>>& tensor_quantizers) {
  Selection selection;
  std::set<std::string> bound;
  for (const auto& [tensor, quantizers] : tensor_quantizers) {
    for (const std::string& quantizer : quantizers) {
      bound.insert(quantizer);
      const auto entry = table.quantizers.find(quantizer);
      if (entry == table.quantizers.end()) continue;
      QCAL_RETURN_IF_ERROR(selection.Offer(tensor, entry->second));
    }
  }
  for (const auto& [name, entry] : table.quantizers) {
    if (bound.contains(name)) continue;
    QCAL_RETURN_IF_ERROR(selection.Offer(name, entry));
  }

  const absl::StatusOr<float> signed_bound = kernels::QuantBound(kTrtNumBits, false);
  if (!signed_bound.ok()) return signed_bound.status();
  TrtCache out{.text = absl::StrCat(kTrtCacheHeader, "\n"), .warnings = {}};
  std::vector<std::string> notes = selection.TakeWarnings();
  for (const auto& [tensor, candidate] : selection.tensors()) {
    const QuantizerAmax& entry = *candidate.entry;
    if (entry.is_unsigned) {
      notes.push_back(absl::StrCat(Subject(entry.name, tensor),
                                   " is unsigned; TensorRT's INT8 is signed, so it is written as "
                                   "signed INT8 (scale amax / 127, amax ",
                                   absl::StrFormat("%g", candidate.amax), ")"));
    }
    const absl::StatusOr<std::vector<float>> scale =
        ScalesFromAmax(std::span<const float>(&candidate.amax, 1), *signed_bound,
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
