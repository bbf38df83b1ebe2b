// The model the fuzzers feed: one quantizer of each kind a server holds, small limits, so that
// each input runs on a fresh model in microseconds and an input that makes the core allocate
// from a size it was sent shows up as an out-of-memory failure (run.sh sets -rss_limit_mb).
//
//   std::shared_ptr<Model> model = NewFuzzModel(kernels::HistogramLayout::kMergeable);
//   model->RecordPartial(kFuzzQuantizers[i], partial, bytes);
#ifndef QCAL_TESTS_FUZZ_FUZZ_MODEL_H_
#define QCAL_TESTS_FUZZ_FUZZ_MODEL_H_

#include <array>
#include <memory>

#include "kernels/mergeable_histogram.h"
#include "server/core/model.h"

namespace qcal::server {

// Declared: a histogram with skip_zeros and 64 bins, a per-tensor max, a per-channel max (axis
// 1); then a name the model has not seen, which takes the default input descriptor (histogram,
// 2048 bins), and one that takes the default weight descriptor (max, axis 0).
inline constexpr std::array<const char*, 5> kFuzzQuantizers = {
    "skip._input_quantizer", "tensor._input_quantizer", "channel._weight_quantizer",
    "new._input_quantizer", "new._weight_quantizer"};

// Limits of the fuzz model: 64 channels, 4096 bins, 1 MiB responses.
inline constexpr int64_t kFuzzMaxChannels = 64;

// A fresh model named "fuzz" with kFuzzQuantizers' declared quantizers, on the CPU backend.
std::shared_ptr<Model> NewFuzzModel(kernels::HistogramLayout layout);

// The ModelConfig NewFuzzModel builds (for FromSnapshot and Merge).
ModelConfig FuzzModelConfig(kernels::HistogramLayout layout);

// With QCAL_FUZZ_VERBOSE set, prints `what` and the status to stderr, so that one can see how far
// a seed gets (`QCAL_FUZZ_VERBOSE=1 build-fuzz/fuzz/fuzz_record corpus/record/*`). Returns
// status.ok().
bool Report(const char* what, const absl::Status& status);

}  // namespace qcal::server

#endif  // QCAL_TESTS_FUZZ_FUZZ_MODEL_H_
