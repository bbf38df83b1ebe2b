// One LoadState stream, independent of gRPC: the pieces of a state file are collected (up to a
// size limit), and when the stream ends the whole file is decoded and checked, then a model is
// created from it or it is merged into an existing model (Model::FromSnapshot, Model::Merge).
//
//   StateLoad load(registry, config, max_bytes);
//   QCAL_RETURN_IF_ERROR(load.Add({.model = "net", .merge = false, .data = piece}));
//   QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, load.Finish());
#ifndef QCAL_SERVER_CORE_STATE_LOAD_H_
#define QCAL_SERVER_CORE_STATE_LOAD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/model.h"
#include "server/core/model_registry.h"

namespace qcal::server {

// One message of the stream (LoadStateRequest without the wire types).
struct StateLoadChunk {
  // Required in the first chunk; later ones may leave it empty or repeat it.
  std::string model{};
  // First chunk: create (false) or merge (true). A later chunk may repeat true only if the
  // first said so.
  bool merge = false;
  // A piece of the serialized StateFile.
  std::string data{};
};

class StateLoad {
 public:
  // `base` gives a created model its backend and limits (the bytes received are charged to its
  // limits.state_budget until the load is destroyed); files larger than `max_bytes` are
  // refused.
  StateLoad(ModelRegistry& registry, ModelConfig base, int64_t max_bytes);
  StateLoad(const StateLoad&) = delete;
  StateLoad& operator=(const StateLoad&) = delete;

  // Errors: INVALID_ARGUMENT for a first chunk without a model (or one that is not a name), a
  // chunk naming another model, merge set after a first chunk without it; RESOURCE_EXHAUSTED
  // once the bytes exceed max_bytes (--max-batch-bytes), or --max-state-bytes has no room for
  // them.
  absl::Status Add(StateLoadChunk chunk);

  // Decodes the file and creates or merges. The decoded file is charged to
  // base.limits.state_budget (SnapshotBytes) until the model is built or merged.
  // INVALID_ARGUMENT for an empty stream and DecodeStateFile's errors; RESOURCE_EXHAUSTED when
  // --max-state-bytes has no room for the decoded file; without merge: ALREADY_EXISTS for a name
  // in use, and Model::FromSnapshot's errors; with merge: NOT_FOUND for an unknown model, and
  // Model::Merge's errors. A refused load changes nothing.
  absl::StatusOr<std::shared_ptr<Model>> Finish();

  // The model named by the first chunk (empty before it), and whether it was a merge.
  const std::string& model() const { return model_; }
  bool merge() const { return merge_; }

 private:
  // Makes `charge` hold the decoded file's SnapshotBytes; the budget's RESOURCE_EXHAUSTED.
  absl::Status ChargeDecoded(const ModelSnapshot& snapshot, StateBudget::Charge& charge) const;

  ModelRegistry& registry_;
  const ModelConfig base_;
  const int64_t max_bytes_;
  // Empty until the first chunk.
  std::string model_;
  bool merge_ = false;
  std::string bytes_;
  StateBudget::Charge received_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_STATE_LOAD_H_
