// What one model may make the server hold or send: the server's --max-* flags that bound a
// model's state and responses, so that no request can make the server allocate without bound or
// build a response that its clients would refuse (or protobuf could not serialize).
//
//   ModelConfig config{.name = "net", .limits = {.max_channels = 1 << 16}};
#ifndef QCAL_SERVER_CORE_MODEL_LIMITS_H_
#define QCAL_SERVER_CORE_MODEL_LIMITS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/core/state_budget.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

struct ModelLimits {
  // Channels a per-channel max calibrator may keep (--max-channels): each costs 4 bytes of state
  // and about 20 bytes in every amax table response. 2^20 is above any layer's channel count (a
  // 256K-token vocabulary's embedding rows included).
  int64_t max_channels = int64_t{1} << 20;
  // Bins a histogram may start with (--max-num-bins). The first batch allocates them however
  // small it is (16 bytes per bin), and the entropy and mse searches cost O(bins x 2^num_bits):
  // 2^16 bins keep a search in milliseconds. (Growth may still append bins up to
  // kernels::Histogram's limit, coarsening past it.)
  int max_num_bins = 1 << 16;
  // The largest response ComputeAmax, GetAmaxTable, GetHistogram, GetModel and ListModels build
  // (--max-response-bytes): qcal's clients accept 256 MiB, and protobuf cannot serialize 2 GiB.
  int64_t max_response_bytes = int64_t{256} << 20;
  // Quantizers one model may hold, declared or created by Record, partial states or a LoadState
  // merge (--max-quantizers-per-model). 65536 is twice the quantizers of a 64-expert MoE
  // transformer of 80 layers.
  int64_t max_quantizers = 65536;
  // The server-wide budget that the model's state, stored amax table and ONNX model are charged
  // to (--max-state-bytes); null: counted against nothing. Not owned: it outlives the model (a
  // plain pointer keeps ModelLimits, and the options that hold it, trivially copyable values).
  StateBudget* state_budget = nullptr;
};

// RESOURCE_EXHAUSTED naming `where`, the count and --max-quantizers-per-model when `count`
// quantizers are more than limits.max_quantizers.
absl::Status CheckQuantizerCount(int64_t count, const ModelLimits& limits, absl::string_view where);

// RESOURCE_EXHAUSTED, naming the quantizer (or "default descriptor") and --max-num-bins, for a
// histogram spec with num_bins above limits.max_num_bins.
absl::Status CheckSpecLimits(const QuantizerSpec& spec, const ModelLimits& limits);

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_MODEL_LIMITS_H_
