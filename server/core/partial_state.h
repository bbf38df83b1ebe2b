// A pre-aggregated batch (RecordRequest.partial without the wire types): state a trainer computed
// from tensors instead of sending them, and the check that it cannot corrupt a quantizer's state.
//
//   PartialState partial{.batches = 4, .elements = 4096, .nonfinite = 0, .state = histogram};
//   QCAL_RETURN_IF_ERROR(CheckPartialState(spec, max_channels, /*channels=*/0, partial));
#ifndef QCAL_SERVER_CORE_PARTIAL_STATE_H_
#define QCAL_SERVER_CORE_PARTIAL_STATE_H_

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "kernels/mergeable_histogram.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

// A max calibrator's state (qcal.v1.MaxState).
struct MaxPartial {
  // One value per tensor, or one per channel along `axis`; each finite and >= 0.
  std::vector<float> amax{};
  // The quantizer's axis as declared (QuantizerSpec::axis); nullopt per tensor.
  std::optional<int> axis{};
};

struct PartialState {
  // Tensors counted (>= 1), the values they held, and how many of those were NaN or +-inf (left
  // out of the state).
  int64_t batches = 0;
  int64_t elements = 0;
  int64_t nonfinite = 0;
  // A histogram in the mergeable layout, canonical (kernels/mergeable_histogram.h), or maxima.
  std::variant<kernels::MergeableState, MaxPartial> state{};
};

// Checks `partial` against a quantizer of `spec` whose max calibrator holds `channels` values (0
// before data, and for histograms), changing nothing. Messages name the quantizer and the field.
// - FAILED_PRECONDITION: a histogram for a max calibrator or maxima for a histogram; a histogram
//   for the reference layout (its bins depend on arrival order, so counts made elsewhere cannot
//   be added).
// - INVALID_ARGUMENT: batches < 1, elements or nonfinite negative, nonfinite > elements; a
//   histogram that kernels::ValidateMergeableState refuses for spec.num_bins, or whose counts
//   (with zeros) do not add up to elements - nonfinite (at most that with skip_zeros; zeros must
//   be 0 then); maxima negative or not finite, a per-tensor state without exactly one value or
//   with an axis, a per-channel state whose axis is not the spec's, with no values, or with
//   another count than the `channels` of earlier batches.
// - RESOURCE_EXHAUSTED: more per-channel values than `max_channels` (--max-channels).
absl::Status CheckPartialState(const QuantizerSpec& spec, int64_t max_channels, int64_t channels,
                               const PartialState& partial);

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_PARTIAL_STATE_H_
