// One Record stream, independent of gRPC: chunks in (see BatchAssembler for the chunking
// contract), each completed batch decoded and applied to the model's quantizer at once.
//
//   RecordStream stream(registry, metrics, max_batch_bytes);
//   for (RecordChunk& chunk : incoming) QCAL_RETURN_IF_ERROR(stream.Add(std::move(chunk)));
//   QCAL_ASSIGN_OR_RETURN(BatchStats totals, stream.Finish());
//
// On the first error the stream is over: batches applied before it stay applied, the refused
// one changes nothing.
#ifndef QCAL_SERVER_RECORD_STREAM_H_
#define QCAL_SERVER_RECORD_STREAM_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/batch_assembler.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/quantizer_state.h"

namespace qcal::server {

// One message of the stream (RecordRequest without the wire types).
struct RecordChunk {
  // Required in the first chunk; later ones may leave it empty or repeat it.
  std::string model{};
  // Required with `header`.
  std::string quantizer{};
  // Starts a new batch.
  std::optional<BatchHeader> header{};
  std::string data{};
};

class RecordStream {
 public:
  // Counts itself in metrics' active streams while it lives.
  RecordStream(ModelRegistry& registry, Metrics& metrics, int64_t max_batch_bytes);
  ~RecordStream();
  RecordStream(const RecordStream&) = delete;
  RecordStream& operator=(const RecordStream&) = delete;

  // Takes one chunk; applies the batch it completes.
  // Errors: INVALID_ARGUMENT for a first chunk without a model, a chunk naming another model or
  // quantizer, and the chunking errors of BatchAssembler; RESOURCE_EXHAUSTED for an over-size
  // batch; NOT_FOUND for an unknown (or since deleted) model; those of Model::Record.
  absl::Status Add(RecordChunk chunk);

  // End of the stream: what was applied. INVALID_ARGUMENT when it ends mid-batch.
  absl::StatusOr<BatchStats> Finish();

  // What was applied so far (also after an error: the batches before it).
  const BatchStats& applied() const { return applied_; }

 private:
  // Decodes and applies a complete batch, looking the model up again.
  absl::Status Apply(const Batch& batch);

  ModelRegistry& registry_;
  Metrics& metrics_;
  // Empty until the first chunk.
  std::string model_;
  BatchAssembler assembler_;
  // Decoded values of non-float32 batches, reused across batches.
  std::vector<float> scratch_;
  BatchStats applied_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_RECORD_STREAM_H_
