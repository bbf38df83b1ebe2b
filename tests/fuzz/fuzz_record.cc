// A Record stream fed arbitrary requests: serialized qcal.v1.RecordRequest messages, decoded as
// the gRPC front-end decodes them (RecordChunkFromProto) and fed through RecordStream (the
// batch assembler, the batch decoder, partial states) into a real model.
//
// Input: one options byte (bit 0: the reference histogram layout instead of the mergeable one;
// bits 1-2: after the stream, ComputeAmax with max / percentile / mse / entropy; bit 3: skip it),
// then RecordRequest frames (fuzz_frames.h). Seeds: corpus/record, written by make_corpus.py.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/time/time.h"
#include "qcal/v1/calibration.pb.h"
#include "server/core/call_control.h"
#include "server/core/inflight_budget.h"
#include "server/core/metrics.h"
#include "server/core/model_registry.h"
#include "server/core/record_stream.h"
#include "server/rpc/proto_convert.h"
#include "tests/fuzz/fuzz_frames.h"
#include "tests/fuzz/fuzz_model.h"

namespace qcal::server {
namespace {

// A batch may hold 1 MiB, and the budget two of them: a single stream never waits for it.
constexpr int64_t kMaxBatchBytes = int64_t{1} << 20;

void CheckOrAbort(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_record: %s\n", what);
    std::abort();
  }
}

void RunStream(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const uint8_t options = data[0];
  static Metrics* metrics = new Metrics();
  static InflightBudget* budget =
      new InflightBudget(2 * kMaxBatchBytes, absl::ZeroDuration(), nullptr);
  const NoCallControl call;

  ModelRegistry registry;
  std::shared_ptr<Model> model = NewFuzzModel((options & 1) ? kernels::HistogramLayout::kReference
                                                            : kernels::HistogramLayout::kMergeable);
  CheckOrAbort(registry.Insert(model).ok(), "cannot insert the model");

  fuzz::FrameReader frames(data + 1, size - 1);
  bool ok = true;
  BatchStats told;  // what the stream says it applied (RecordResponse)
  {
    RecordStream stream(registry, *metrics, kMaxBatchBytes, *budget, IdleTrimmer::Activity(), call);
    while (std::optional<std::string_view> frame = frames.Next()) {
      v1::RecordRequest request;
      // gRPC ends the call on a message that does not parse.
      if (!request.ParseFromArray(frame->data(), static_cast<int>(frame->size()))) break;
      absl::StatusOr<RecordChunk> chunk = RecordChunkFromProto(request);
      if (!Report("decode", chunk.status()) || !Report("add", stream.Add(*std::move(chunk)))) {
        ok = false;
        break;
      }
    }
    if (ok) ok = Report("finish", stream.Finish().status());
    told = stream.applied();
  }
  CheckOrAbort(budget->reserved_bytes() == 0, "a reservation outlived its stream");

  // What the model holds must be readable whatever was fed into it, and add up to what the
  // client was told.
  const ModelInfo info = model->Info();
  BatchStats held;
  for (const QuantizerInfo& quantizer : info.quantizers) held += quantizer.stats;
  told.partials = 0;  // a quantizer's statistics leave it 0
  if (!(held == told)) {
    std::fprintf(stderr,
                 "fuzz_record: the stream applied %lld batches / %lld elements, the model holds "
                 "%lld / %lld\n",
                 static_cast<long long>(told.batches), static_cast<long long>(told.elements),
                 static_cast<long long>(held.batches), static_cast<long long>(held.elements));
    std::abort();
  }
  for (const QuantizerInfo& quantizer : info.quantizers) {
    if (quantizer.spec.calibrator == CalibratorKind::kHistogram) {
      (void)model->GetHistogram(quantizer.spec.name);
    }
  }
  if (options & 8) return;
  static const char* const kMethods[] = {"max", "percentile", "mse", "entropy"};
  AmaxRequest request{.params = {.method = kMethods[(options >> 1) & 3]}};
  Report("compute amax", model->ComputeAmax(request).status());
  (void)model->Snapshot();
}

}  // namespace
}  // namespace qcal::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qcal::server::RunStream(data, size);
  return 0;
}
