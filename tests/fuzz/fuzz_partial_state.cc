// Pre-aggregated batches (RecordRequest.partial) on arbitrary bytes: a serialized
// qcal.v1.PartialState decoded as the gRPC front-end decodes it (PartialStateFromProto) and
// merged into a quantizer of each kind (Model::RecordPartial: histograms with and without
// skip_zeros, per-tensor and per-channel maxima), empty or already holding data. A refused state
// must change nothing; an accepted one must leave a model whose amax can be computed.
//
// Input: one options byte (bit 0: the reference histogram layout; bit 1: the quantizers hold a
// batch first; bits 2-3: ComputeAmax with max / percentile / mse / entropy after the merges),
// then the serialized PartialState. Seeds: corpus/partial_state, written by make_corpus.py.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "qcal/v1/calibration.pb.h"
#include "server/rpc/proto_convert.h"
#include "server/storage/model_state.h"
#include "tests/fuzz/fuzz_model.h"

namespace qcal::server {
namespace {

// The model's whole state as bytes, to see that a refused merge changed nothing.
std::string StateBytes(const Model& model) {
  absl::StatusOr<ModelSnapshot> snapshot = model.Snapshot();
  if (!snapshot.ok()) std::abort();
  v1::ModelState proto;
  ModelSnapshotToProto(*snapshot, &proto);
  // A call, even a refused one, is a use of the model (--model-ttl counts from it).
  proto.clear_last_used_unix_seconds();
  std::string bytes;
  proto.SerializeToString(&bytes);
  return bytes;
}

void Run(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const uint8_t options = data[0];
  v1::PartialState proto;
  if (!proto.ParseFromArray(data + 1, static_cast<int>(size - 1))) return;

  std::shared_ptr<Model> model = NewFuzzModel((options & 1) ? kernels::HistogramLayout::kReference
                                                            : kernels::HistogramLayout::kMergeable);
  if (options & 2) {
    // 2 x 4 values: 4 channels along the per-channel quantizer's axis 1.
    const std::vector<float> values = {0.5f, -1.0f, 2.0f, 0.0f, -3.0f, 1.5f, 0.0f, 4.0f};
    const std::vector<int64_t> shape = {2, 4};
    for (const char* quantizer : kFuzzQuantizers) {
      if (!model->Record(quantizer, shape, values, 32).ok()) std::abort();
    }
  }
  const int64_t bytes = static_cast<int64_t>(size - 1);
  for (const char* quantizer : kFuzzQuantizers) {
    absl::StatusOr<PartialState> partial = PartialStateFromProto(proto, "fuzz", quantizer);
    if (!Report("decode", partial.status())) return;
    const std::string before = StateBytes(*model);
    absl::StatusOr<BatchStats> applied = model->RecordPartial(quantizer, *partial, bytes);
    if (!Report(quantizer, applied.status()) && StateBytes(*model) != before) {
      std::fprintf(stderr, "fuzz_partial_state: a refused state changed quantizer %s: %s\n",
                   quantizer, applied.status().ToString().c_str());
      std::abort();
    }
  }
  static const char* const kMethods[] = {"max", "percentile", "mse", "entropy"};
  Report("compute amax",
         model->ComputeAmax({.params = {.method = kMethods[(options >> 2) & 3]}}).status());
  for (const char* quantizer : kFuzzQuantizers) (void)model->GetHistogram(quantizer);
}

}  // namespace
}  // namespace qcal::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qcal::server::Run(data, size);
  return 0;
}
