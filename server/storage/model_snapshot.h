// A model's whole state as plain values (qcal.v1.ModelState without the wire types): what
// SaveState writes, LoadState creates a model from or merges into one, and --data-dir (issue 7)
// keeps. model_state.h converts it to and from the proto; state_file.h wraps that in the
// versioned, checksummed file.
//
//   QCAL_ASSIGN_OR_RETURN(ModelSnapshot snapshot, model->Snapshot());
//   std::string file = EncodeStateFile(snapshot);
#ifndef QCAL_SERVER_STORAGE_MODEL_SNAPSHOT_H_
#define QCAL_SERVER_STORAGE_MODEL_SNAPSHOT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kernels/mergeable_histogram.h"
#include "server/device/calibrator.h"
#include "server/tables/amax_table.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

// One quantizer: its spec, its counters and its calibrator's state.
struct QuantizerSnapshot {
  // With spec.layout set to the model's layout.
  QuantizerSpec spec{};
  // Declared at CreateModel (ResetModel keeps it) rather than created by its first Record.
  bool declared = false;
  // Batches (a partial state counts its own batches), values, non-finite values among them, and
  // bytes received; all >= 0, nonfinite <= elements.
  int64_t batches = 0;
  int64_t elements = 0;
  int64_t nonfinite = 0;
  int64_t bytes = 0;
  // std::monostate before the first batch; MaxValues for a max calibrator; MergeableState or
  // ReferenceState (by spec.layout) for a histogram.
  CalibratorState state{};
};

struct ModelSnapshot {
  // The name it was saved from (informative: LoadState names the target).
  std::string model{};
  kernels::HistogramLayout layout = kernels::HistogramLayout::kMergeable;
  QuantizerSpec default_input{};
  QuantizerSpec default_weight{};
  // Declared and Record-created quantizers, in name order.
  std::vector<QuantizerSnapshot> quantizers{};
  // The uploaded float ONNX model (serialized ModelProto), empty when none, and its tensor_map.
  std::string onnx{};
  std::map<std::string, std::string> tensor_map{};
  // The stored amax table; nullopt when none was computed since the last reset.
  std::optional<AmaxTable> amax_table{};
  // Exactly-once sessions (ModelState.sessions): session_id -> the last sequence applied.
  std::map<std::string, int64_t> sessions{};
  // When a call last used the model, in seconds since the Unix epoch (--model-ttl counts from
  // it); 0: unknown (a version 1 state file), counted from the load.
  int64_t last_used_unix_seconds = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_MODEL_SNAPSHOT_H_
