#include "tests/fuzz/fuzz_model.h"

#include <cstdio>
#include <cstdlib>

#include "google/protobuf/stubs/logging.h"
#include "spdlog/spdlog.h"

namespace qcal::server {
namespace {

// The core logs warnings for odd but accepted data (an amax of 0 in a TensorRT cache), and
// protobuf each string field of invalid UTF-8 it refuses to parse; at millions of inputs they
// would only slow the run and bury the crash reports.
const bool kQuiet = [] {
  spdlog::set_level(spdlog::level::err);
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return true;
}();

}  // namespace

ModelConfig FuzzModelConfig(kernels::HistogramLayout layout) {
  QuantizerSpec skip{.name = kFuzzQuantizers[0], .num_bins = 64, .skip_zeros = true};
  QuantizerSpec tensor{.name = kFuzzQuantizers[1], .calibrator = CalibratorKind::kMax};
  QuantizerSpec channel{.name = kFuzzQuantizers[2], .axis = 1, .calibrator = CalibratorKind::kMax};
  return {.name = "fuzz",
          .quantizers = {skip, tensor, channel},
          .histogram_layout = layout,
          .limits = {.max_channels = kFuzzMaxChannels,
                     .max_num_bins = 4096,
                     .max_response_bytes = int64_t{1} << 20}};
}

std::shared_ptr<Model> NewFuzzModel(kernels::HistogramLayout layout) {
  absl::StatusOr<std::shared_ptr<Model>> model = Model::Create(FuzzModelConfig(layout));
  if (!model.ok()) {
    // The configuration is fixed: failing here is a bug of the harness, not of the input.
    std::fprintf(stderr, "fuzz model: %s\n", model.status().ToString().c_str());
    std::abort();
  }
  return *std::move(model);
}

bool Report(const char* what, const absl::Status& status) {
  static const bool verbose = std::getenv("QCAL_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  return status.ok();
}

}  // namespace qcal::server
